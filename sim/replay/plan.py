"""What a kernel replay does: the scenario's attempts, drawn exactly as the model draws them.

The model's attempt times, destination choices and lifetimes come from streams spawned from
the run's seed with fixed keys (``sim.engine``: per load 1 arrivals, 2 lifetimes, 3
destination choice).  The plan draws from the same streams, so the kernel sees the same
attempts at the same times; the nth successful connect of a load gets the nth lifetime,
as in the model.  Only scenarios a pair of namespaces can honestly reproduce are accepted;
the rest are refused with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sim.config.types import Scenario
from sim.engine import Model, _seed
from sim.randomness import Stream
from sim.workload.arrivals import arrival_process
from sim.workload.destinations import Chooser, spread
from sim.workload.lifetimes import sampler

MAX_RATE = 200.0  # attempts/s over all loads: measured lag p99 44 ms at 200/s, 105 ms at 400/s
MAX_DESTINATIONS = 64  # addresses and listeners set up per server namespace
MAX_ATTEMPTS = 500_000


@dataclass
class HostPlan:
    """One client namespace: its sysctls, channels and timed attempts."""

    name: str
    addresses: list[str]
    sysctls: dict[str, str]
    channels: list[dict[str, Any]] = field(default_factory=list)
    attempts: list[tuple[float, int]] = field(default_factory=list)
    lifetimes: dict[str, list[float]] = field(default_factory=dict)
    servers: set[tuple[str, int]] = field(default_factory=set)  # behind the veth
    local_servers: set[tuple[str, int]] = field(default_factory=set)  # loopback, in the client
    remote_addresses: set[str] = field(default_factory=set)  # every non-loopback destination


def refusals(sc: Scenario, where: str) -> list[str]:
    """Why this scenario cannot be replayed on the kernel (empty when it can)."""
    out: list[str] = []
    for i, host in enumerate(sc.hosts):
        key = f"{where}: hosts[{i}]"
        if (host.policy or "linux") != "linux" or not host.os.startswith("linux"):
            out.append(f"{key}.os: {host.os!r} is not Linux; a namespace runs this Linux kernel")
        if host.time_wait is not None and host.time_wait != 60:
            out.append(f"{key}.time_wait: the kernel's TIME_WAIT is fixed at 60 s")
        if host.listening_ports:
            out.append(f"{key}.listening_ports: not replayed (listeners are not set up)")
        if host.count is not None:
            out.append(f"{key}.count: fleets are not replayed (one namespace per host)")
    rate = 0.0
    for i, load in enumerate(sc.load):
        key = f"{where}: load[{i}]"
        if arrival_process(load.arrival).trace is not None:
            out.append(f"{key}.arrival: trace replays are not supported by portsim kernel")
        else:
            rate += getattr(load.arrival, "rate", 0.0) or 0.0
        if load.keepalive is not None:
            out.append(f"{key}.keepalive: keep-alive pools are not replayed")
        if load.retry is not None and load.retry.attempts > 1:
            out.append(f"{key}.retry: retries are not replayed")
    if rate > MAX_RATE:
        out.append(
            f"{where}: load: {rate:g} attempts/s in all; the replay loop keeps at most "
            f"{MAX_RATE:g}/s on time"
        )
    if len(sc.destinations) > MAX_DESTINATIONS or any(
        (d.count or 1) > MAX_DESTINATIONS for d in sc.destinations
    ):
        out.append(f"{where}: destinations: at most {MAX_DESTINATIONS} destinations are replayed")
    return out


def build(sc: Scenario, seed: int) -> list[HostPlan]:
    """The replay plan per host, from the same streams as ``sim.engine.Model``."""
    model = Model(sc, seed, events=False)  # resolves hosts, channels and their order
    plans: dict[str, HostPlan] = {}
    index: dict[int, tuple[HostPlan, int]] = {}
    for host in model.hosts.values():
        spec = host.spec
        sysctls = {
            "net.ipv4.ip_local_port_range": f"{host.lo} {host.hi}",
            "net.ipv4.ip_local_reserved_ports": ",".join(map(str, spec.reserved_ports)),
            "net.ipv4.tcp_tw_reuse": str(host.tw_reuse),
            "net.ipv4.tcp_max_tw_buckets": str(host.max_tw),
            "net.ipv4.tcp_timestamps": "1" if host.timestamps else "0",
            "net.ipv4.tcp_rfc1337": str(spec.tcp_rfc1337),
        }
        plans[host.name] = HostPlan(host.name, list(host.source_addresses), sysctls)
    for ch in model.loads:
        plan = plans[ch.host.name]
        sub = ch.sub
        plan.channels.append(
            {
                "src": ch.source,
                "dst": ch.dest.ip,
                "dport": ch.dest.port,
                "socket": ch.socket,
                "close": ch.close,
                "protocol": ch.protocol,
                "range": [ch.host.lo + sub[0], ch.host.lo + sub[1] - 1] if sub else None,
                "bind_source": ch.source != ch.host.address,
                "load": ch.index if ch.index >= 0 else 0,
                "destination": ch.dest.address,
            }
        )
        index[id(ch)] = (plan, len(plan.channels) - 1)
        endpoint = (ch.dest.ip, ch.dest.port)
        if not ch.dest.loopback:
            plan.remote_addresses.add(ch.dest.ip)
        if ch.protocol == "tcp":
            (plan.local_servers if ch.dest.loopback else plan.servers).add(endpoint)
    for i, load_spec in enumerate(sc.load):
        flow = model.flows[i]
        stop = min(load_spec.stop if load_spec.stop is not None else sc.duration, sc.duration)
        arrivals = arrival_process(load_spec.arrival)
        times = arrivals.times(Stream(_seed(seed, 1, i)), load_spec.start, stop)
        pick = Chooser(spread(load_spec, sc)[1], Stream(_seed(seed, 3, i))) if flow.pick else None
        turn = 0
        count = 0
        for t in times:
            channels = flow.targets[pick() if pick is not None else 0]
            if len(channels) == 1:
                ch = channels[0]
            else:
                ch = channels[turn % len(channels)]
                turn += 1
            plan, k = index[id(ch)]
            plan.channels[k]["load"] = i
            plan.attempts.append((t, k))
            count += 1
            if count > MAX_ATTEMPTS:
                raise ValueError(f"more than {MAX_ATTEMPTS} attempts: too long to replay")
        if load_spec.lifetime is not None:
            draw = sampler(load_spec.lifetime, Stream(_seed(seed, 2, i)))
            lives = [draw() for _ in range(count)]
        else:
            lives = []
        for plan in plans.values():
            plan.lifetimes[str(i)] = lives
    for plan in plans.values():
        plan.attempts.sort()
    return list(plans.values())
