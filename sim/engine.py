"""Build a SimPy model from a Scenario and run it: thin, no file I/O.

One SimPy process per load (its arrival stream); everything per connection is callbacks
(``sim.host``, ``sim.channel``, ``sim.workload``).  Random streams come from the run's seed
with stable spawn keys (per load: 1 arrivals, 2 lifetimes, 3 destination choice, 4 retry
jitter, 6 a fleet's member choice; per gateway: 5; per host: 0), so adding a load or a
feature does not change the random numbers of the others.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from functools import partial
from heapq import heappush

import numpy as np
from simpy import Environment
from simpy.events import NORMAL, URGENT, Event

from sim.atomic import raise_if_signalled
from sim.channel import Channel
from sim.collector import clear_attributes, collector_paused
from sim.config.types import Destination, HostSpec, LoadSpec, Scenario
from sim.fleet import Fleet, Member, MemberChannels
from sim.fleet_addresses import fleet_addresses
from sim.host import Host
from sim.nat.base import Gateway, GatewayConfig
from sim.nat.kinds import make_gateway
from sim.nat.route import ConnectStats
from sim.per_host import host_series
from sim.randomness import BLOCK, LazyStream, Stream
from sim.recorder import ProbeCounts, Recorder
from sim.resolve import resolve_host
from sim.result import Result, histograms
from sim.steady_state import window_bin
from sim.summary.build import build_summary
from sim.wakeup import WakeUp, shared_callbacks
from sim.workload.arrivals import arrival_process
from sim.workload.destinations import spread
from sim.workload.files import Trace
from sim.workload.flow import Flow, TraceLifetime
from sim.workload.lifetimes import Constant as ConstantLifetime
from sim.workload.lifetimes import sampler


def _seed(seed: int, *key: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(seed, spawn_key=key)


class Model:
    """A built model: environment, hosts, loads and recorder, ready to run.

    Each ``[[load]]`` becomes a :class:`Flow` over channels (``sim.channel.Channel``: one host,
    source address and destination each); ``loads`` lists the channels, ``flows`` the loads.
    """

    def __init__(self, scenario: Scenario, seed: int, events: bool) -> None:
        self.scenario = scenario
        self.seed = seed
        self.env = env = Environment()
        self.probes = ProbeCounts()
        self.log: list[tuple] | None = [] if events else None
        self.connect = ConnectStats()  # connect latency through the gateways
        self.gateways = {  # built before the hosts behind them (sim/nat)
            g.name: make_gateway(
                GatewayConfig(g.name, g.kind, tuple(g.addresses), g.port_range, g.options),
                Stream(_seed(seed, 5, j)),
            )
            for j, g in enumerate(scenario.gateways)
        }
        # plain hosts by name; fleets (hosts with count) by name, their members built lazily
        self.hosts: dict[str, Host] = {}
        self.fleets: dict[str, Fleet] = {}
        for i, host_spec in enumerate(scenario.hosts):
            if host_spec.count is not None:
                addresses = fleet_addresses(host_spec.address, host_spec.count)
                self.fleets[host_spec.name] = Fleet(host_spec, addresses, partial(self._member, i))
            else:
                self.hosts[host_spec.name] = Host(
                    env,
                    resolve_host(host_spec),
                    Stream(_seed(seed, 0, i)),
                    self.probes,
                    self.log,
                    Stream(_seed(seed, 0, i, 1)),
                    gateway=self._gateway_of(host_spec),
                    connect_stats=self.connect,
                )
        for name, gateway in self.gateways.items():  # e.g. Azure's per-VM share by pool size
            gateway.set_inside(inside_hosts(scenario, name))
        self.loads: list[Channel] = []
        self.flows: list[Flow] = []
        self.arrivals: list[Arrivals] = []  # (kept only for dismantle)
        for i, spec in enumerate(scenario.load):
            self._build_load(i, spec)
        self.recorder = Recorder(
            scenario.bin_width,
            scenario.duration,
            list(self.hosts.values()),
            self.loads,
            self.flows,
            self.probes,
            window_bin(self),
            list(self.fleets.values()),
            gateways=self.gateways,
            connect=self.connect,
        )
        if self.recorder.n_bins > 1:
            _Tick(env, scenario.bin_width).callbacks.append(self._on_tick)

    def _on_tick(self, event: Event) -> None:
        raise_if_signalled()  # a SIGTERM whose exception was swallowed (sim.atomic)
        self.close_bin()
        if len(self.recorder.rows) < self.recorder.n_bins - 1:
            _Tick(self.env, self.scenario.bin_width).callbacks.append(self._on_tick)

    def close_bin(self) -> None:
        """A bin boundary: the hosts settle to it, the recorder reads them, then the owners
        of per-bin peaks start the next bin."""
        rec = self.recorder
        end = rec.bin_end()
        for host in rec.hosts:
            host.settle_bin(end)
        for fleet in rec.fleets:
            fleet.settle_bin(end)
        for gateway in self.gateways.values():
            gateway.settle(end)
        rec.close_bin()
        for host in rec.hosts:
            host.new_bin()
        for fleet in rec.fleets:
            fleet.new_bin()
        for gateway in self.gateways.values():
            gateway.new_bin()
        self.connect.new_bin()
        self.probes.new_bin()

    def dismantle(self) -> None:
        """Take the model apart once its result is built, so that it goes by reference
        counting rather than by a full collection (``sim.collector``): every connection's
        objects first, then the attributes of the long-lived objects, whose references
        to one another are the model's cycles.  Only ``run`` calls it: the model is then
        unusable."""
        self.env._queue.clear()
        members = [m for fleet in self.fleets.values() for m in fleet.members.values()]
        hosts = [*self.hosts.values(), *members]
        for host in hosts:
            host.drop_connections()
        for gateway in self.gateways.values():
            gateway.drop_flows()
        routes = [ch.route for ch in self.loads if ch.route is not None]
        spreads = [flow.members for flow in self.flows if flow.members is not None]
        parts = [*self.loads, *routes, *spreads, *self.flows, *self.arrivals, *hosts]
        parts += self.fleets.values()
        for part in [*parts, *self.gateways.values(), self.recorder, self.env, self]:
            clear_attributes(part)

    def _gateway_of(self, spec: HostSpec) -> Gateway | None:
        """The gateway a host's (or a fleet member's) connections go through, if any."""
        return self.gateways[spec.gateway] if spec.gateway is not None else None

    def all_hosts(self) -> list[Host]:
        """Plain hosts and the fleets' built members (what holds ports)."""
        return [*self.hosts.values(), *(m for f in self.fleets.values() for m in f.built())]

    @property
    def units(self) -> int:
        """Hosts as the summary reports them: plain hosts and fleets (one each)."""
        return len(self.hosts) + len(self.fleets)

    def _member(self, i: int, spec: HostSpec, member: int, kernel_from: Host | None) -> Member:
        """Member ``member`` of the fleet ``scenario.hosts[i]``: its streams are spawned by
        (fleet, member), so which members an arrival reaches first changes no draw."""
        seed = self.seed
        # members differ from the first only in address, which no resolved setting depends
        # on (tests/test_fleet.py): resolved once per fleet
        resolved = (
            replace(kernel_from.resolved, spec=spec)
            if kernel_from is not None
            else resolve_host(spec)
        )
        host = Member(
            self.env,
            resolved,
            LazyStream(seed, (0, i, 2, member)),
            self.probes,
            self.log,
            LazyStream(seed, (0, i, 3, member)),
            sparse=True,
            kernel_from=kernel_from,
            gateway=self._gateway_of(spec),
            connect_stats=self.connect,
        )
        host.track_reuse = member == 0  # reuse metrics: the first member's pools
        return host

    def _build_load(self, i: int, spec: LoadSpec) -> None:
        env, sc = self.env, self.scenario
        name = spec.name or f"load{i}"
        host_name = spec.host or sc.hosts[0].name
        lifetimes = (
            sampler(spec.lifetime, Stream(_seed(self.seed, 2, i))) if spec.lifetime else None
        )
        fleet = self.fleets.get(host_name)
        if fleet is not None:
            self._build_fleet_load(i, spec, name, fleet, lifetimes)
            return
        host = self.hosts[host_name]
        stop = min(spec.stop if spec.stop is not None else sc.duration, sc.duration)
        arrivals = arrival_process(spec.arrival)
        trace = arrivals.trace
        if trace is not None:
            pairs, rows = _trace_targets(sc, trace, self.hosts, host, spec.start, stop)
            probabilities = None
        else:
            members, probabilities = spread(spec, sc)
            pairs = [(host, m) for m in members]
        # a channel's lifetimes: a keep-alive pool closes its connections itself; a trace's
        # rows may carry theirs
        trace_life = TraceLifetime()
        if spec.keepalive is not None:
            lifetime: Callable[[], float] = NEVER
        elif trace is not None and trace.lifetimes is not None:
            lifetime = trace_life
        else:
            lifetime = lifetimes or _no_lifetime
        targets = []
        index = len(self.loads)
        for t, (target_host, member) in enumerate(pairs):
            probability = None if probabilities is None else float(probabilities[t])
            channels = _source_channels(
                name, spec, target_host, member, lifetime, probability, 1, index
            )
            index += len(channels)
            targets.append(channels)
        flow = Flow(
            env,
            spec,
            targets,
            probabilities,
            lifetimes,
            Stream(_seed(self.seed, 3, i)),
            Stream(_seed(self.seed, 4, i)),
            name,
            host.name,
            trace_life,
        )
        self.loads.extend(flow.channels)
        self.flows.append(flow)
        if trace is not None:
            env.process(_replay(env, flow, *rows))
            return
        times = arrivals.times(Stream(_seed(self.seed, 1, i)), spec.start, stop)
        direct = len(flow.channels) == 1 and flow.backoff is None and flow.requests is None
        self.arrivals.append(
            Arrivals(env, flow.channels[0].attempt if direct else flow.arrive, times)
        )

    def _build_fleet_load(
        self,
        i: int,
        spec: LoadSpec,
        name: str,
        fleet: Fleet,
        lifetimes: Callable[[], float] | None,
    ) -> None:
        """A load on a fleet: each arrival picks a member (``sim.fleet.MemberChannels``),
        whose channels are built the first time it is picked.  Member 0's are built now:
        every member's channels are alike, and the steady-state window, known before the
        run, reads their TIME_WAIT lengths."""
        env, sc = self.env, self.scenario
        stop = min(spec.stop if spec.stop is not None else sc.duration, sc.duration)
        dests, probabilities = spread(spec, sc)
        lifetime: Callable[[], float] = (
            NEVER if spec.keepalive is not None else lifetimes or _no_lifetime
        )
        flow = Flow(
            env,
            spec,
            [[] for _ in dests],
            probabilities,
            lifetimes,
            Stream(_seed(self.seed, 3, i)),
            Stream(_seed(self.seed, 4, i)),
            name,
            fleet.name,
        )

        def make(member: Member, target: int) -> list[Channel]:
            probability = float(probabilities[target])
            channels = _source_channels(
                name,
                spec,
                member,
                dests[target],
                lifetime,
                probability,
                fleet.count,
                len(self.loads),
            )
            flow.channels.extend(channels)
            self.loads.extend(channels)  # (the recorder's list too)
            return channels

        flow.members = MemberChannels(fleet, len(dests), make, Stream(_seed(self.seed, 6, i)))
        for target in range(len(dests)):
            flow.members.channels(target, 0)
        self.flows.append(flow)
        times = arrival_process(spec.arrival).times(
            Stream(_seed(self.seed, 1, i)), spec.start, stop
        )
        direct = (
            len(dests) == 1
            and flow.backoff is None
            and flow.requests is None
            and len(flow.channels) == 1
        )
        self.arrivals.append(Arrivals(env, flow.members.attempt if direct else flow.arrive, times))

    def run(self, progress: Callable[[float], None] | None = None) -> Result:
        wall = time.perf_counter()
        duration = self.scenario.duration
        steps = 100 if progress else 1
        with collector_paused():  # sim.collector: why
            for step in range(1, steps + 1):
                self.env.run(until=duration * step / steps)
                raise_if_signalled()
                if progress:
                    progress(step / steps)
        self.close_bin()
        wall = time.perf_counter() - wall
        summary = build_summary(self, wall)
        return Result(
            summary,
            self.recorder,
            self.log,
            self.scenario,
            histograms=histograms(self),
            host_rows=host_series(self) if self.units > 1 else None,
        )


NEVER = ConstantLifetime(math.inf)


def _source_channels(
    name: str,
    spec: LoadSpec,
    host: Host,
    dest: Destination,
    lifetime: Callable[[], float],
    probability: float | None,
    members: int,
    first_index: int,
) -> list[Channel]:
    """A load's channels from ``host`` to ``dest``: one per source address (TCP; UDP
    binds none), each offered ``probability`` of the load's arrivals split over the source
    addresses and the fleet's ``members`` (1 for a plain host); a trace (no
    probabilities) offers each its rows, share 1."""
    sources = host.source_addresses if spec.protocol == "tcp" else [None]
    share = 1.0 if probability is None else probability / len(sources) / members
    return [
        Channel(
            name,
            host,
            dest,
            lifetime,
            spec.close,
            spec.socket,
            spec.protocol,
            spec.local_port_range,
            source,
            share=share,
            index=first_index + k,
        )
        for k, source in enumerate(sources)
    ]


def _no_lifetime() -> float:
    """A load without a lifetime spec, keep-alive pool or trace lifetimes (validation
    refuses it): never called."""
    raise ValueError("this load has no lifetimes")


class _Tick(Event):
    """A bin boundary, scheduled URGENT so it precedes any attempt at the same instant."""

    def __init__(self, env: Environment, delay: float) -> None:
        self.env = env
        self.callbacks = []
        self._value = None
        self._ok = True
        env.schedule(self, URGENT, delay)


class Arrivals:
    """A generated arrival process as a chain of wake-ups, without a SimPy Process: its
    resume machinery cost more per arrival than the arrival itself.  The events are a
    process's, in the same order: an urgent start event at construction (a process's
    Initialize), then at each arrival time the arrivals due and the next timeout.

    Two shortcuts keep that order exactly:

    * one wake-up event serves every arrival: only one is ever queued, and SimPy has taken
      its callbacks before it calls them, so it can be queued again from its own callback;
    * an arrival due before everything already queued is the event SimPy would pop next, so
      it runs at once, the clock moved to it, without the trip through the queue (about
      half the arrivals at moderate load).  The clock takes the value the queue would have
      given it (``now + delay``, not ``t``: they can differ in the last bit), and the event
      id it does not draw changes nothing: ids order only events of equal time and
      priority, and the others keep their relative order.
    """

    __slots__ = ("_callbacks", "_wake", "arrive", "env", "times")

    def __init__(self, env: Environment, arrive: Callable[[], object], times: Iterator[float]):
        self.env = env
        self.arrive = arrive
        self.times = times
        self._wake = wake = object.__new__(WakeUp)  # (no Event.__init__: see sim.wakeup)
        wake._ok = True
        wake._value = None
        self._callbacks = shared_callbacks(self._due)
        start = Event(env)
        start.callbacks.append(self._next)
        start._ok = True
        start._value = None
        env.schedule(start, URGENT)

    def _next(self, event: Event) -> None:
        """Arrivals due now (several may share an instant) or before anything queued, then
        a wake-up at the next one."""
        env = self.env
        queue = env._queue
        arrive = self.arrive
        for t in self.times:
            now = env._now
            delay = t - now
            if delay > 0:
                at = now + delay  # where env.timeout(delay) would land
                if queue and queue[0][0] <= at:  # a queued event comes first (or ties)
                    wake = self._wake
                    wake.callbacks = self._callbacks
                    heappush(queue, (at, NORMAL, next(env._eid), wake))
                    return
                env._now = at
            arrive()

    def _due(self, event: Event) -> None:
        self.arrive()
        self._next(event)


def _trace_targets(
    sc: Scenario,
    trace: Trace,
    hosts: dict[str, Host],
    default: Host,
    start: float,
    stop: float,
) -> tuple[list[tuple[Host, Destination]], tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
    """The (host, destination) pairs a trace's rows in [start, stop) name, and the rows:
    times, target index per row, lifetimes (or None)."""
    i, j = trace.window(start, stop)
    named = sc.trace_targets()
    dest_codes = trace.destination_codes[i:j]
    host_codes = (
        trace.host_codes[i:j] if trace.host_codes is not None else np.zeros(j - i, np.int32)
    )
    host_list = [hosts[h] for h in trace.hosts] if trace.hosts is not None else [default]
    combined = host_codes.astype(np.int64) * len(trace.destinations) + dest_codes
    used, target_of_row = np.unique(combined, return_inverse=True)
    pairs = [
        (
            host_list[int(c) // len(trace.destinations)],
            named[trace.destinations[int(c) % len(trace.destinations)]],
        )
        for c in used
    ]
    lives = trace.lifetimes[i:j] if trace.lifetimes is not None else None
    return pairs, (trace.times[i:j], target_of_row, lives)


def _replay(env: Environment, flow: Flow, times, targets, lives):
    """Replay trace rows exactly, in chunks so a long trace costs no Python list at once."""
    timeout = env.timeout
    dispatch = flow.dispatch
    for a in range(0, len(times), BLOCK):
        t_chunk = times[a : a + BLOCK].tolist()
        g_chunk = targets[a : a + BLOCK].tolist()
        l_chunk = lives[a : a + BLOCK].tolist() if lives is not None else [None] * len(t_chunk)
        for t, target, life in zip(t_chunk, g_chunk, l_chunk, strict=True):
            now = env.now
            if t > now:
                yield timeout(_exact_delay(now, t))
            dispatch(target, life)


def _exact_delay(now: float, t: float) -> float:
    """A delay that lands on ``t`` exactly: SimPy adds it to ``now``, and ``now + (t - now)``
    can round one unit away from ``t`` (0.063 then 0.6 gives 0.5999999999999999)."""
    delay = t - now
    for _ in range(4):
        landed = now + delay
        if landed == t:
            break
        delay = math.nextafter(delay, math.inf if landed < t else -math.inf)
    return delay


def run(
    scenario: Scenario,
    seed: int | None = None,
    events: bool = False,
    progress: Callable[[float], None] | None = None,
) -> Result:
    """Run a scenario; ``seed`` overrides the scenario's; ``events`` keeps the event log."""
    model = Model(scenario, scenario.seed if seed is None else seed, events)
    with collector_paused():  # through the summary too: sim.collector
        result = model.run(progress)
        model.dismantle()
    return result


def inside_hosts(scenario: Scenario, gateway: str) -> int:
    """Hosts behind ``gateway``, a fleet counting each member."""
    return sum(spec.count or 1 for spec in scenario.hosts if spec.gateway == gateway)
