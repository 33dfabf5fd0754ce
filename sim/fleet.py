"""A fleet: one ``[[hosts]]`` entry with ``count = N`` run as N identical hosts.

Pods on a node or VMs in a subnet differ only in their address, so the scenario describes
them once.  Each member is a full host (its own port table, sockets and TIME_WAIT states:
each pod is its own network namespace) built the first time an arrival picks it, so a
member nothing reaches costs nothing, and one in use costs its occupancy maps
(``sim.ports.table.SparsePortTable``: one byte per port of its range for its bind map and
per destination it talks to).  Their TIME_WAIT entries wait in one set of queues, the
first member's (``Member``).

The members share one kernel: the connect() secret and perturbation table
(``table_perturb``, a global of net/ipv4/inet_hashtables.c, Linux 6.18) and the jiffies
clock, as the namespaces of one machine do.  For VMs, which each run their own kernel,
this is a simplification (inferred): the port offsets still differ per member, because
the hash keys on each member's own source address.

Loads on a fleet spread their arrivals over the members uniformly at random (each arrival
independently; a member's arrivals are then a thinning of the load's, Poisson for a
Poisson load); see ``MemberChannels``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from heapq import heappush
from typing import TYPE_CHECKING, Any

from simpy.events import NORMAL

from sim.channel import Tally
from sim.fleet_addresses import FleetAddresses
from sim.host import Host
from sim.ports.cells import BUSY, OWNED
from sim.sockets import ESTABLISHED, Socket
from sim.wakeup import WakeUp

_new_socket = _new_wake_up = object.__new__

if TYPE_CHECKING:
    from sim.channel import Channel
    from sim.config.types import HostSpec
    from sim.nat.route import Route
    from sim.ports.table import Pool
    from sim.randomness import Stream


class LevelBounds:
    """The highest of many members' levels (a count that rises and falls), kept lazily: an
    upper bound per member, raised by ``rise`` as its level rises (levels rise only by
    takes, which members report) and lowered to its true level only when ``top`` finds it
    the highest.  ``top`` reads one member, the last answer, unless a bound rose to the
    answer's level since or the answer's member fell: then the highest bound's members
    in turn (``max`` over a list, not a Python loop) until one is true.  A take costs a
    list read, not a heap push or a dict entry per member."""

    __slots__ = ("best", "bounds", "dirty")

    def __init__(self, count: int) -> None:
        self.bounds = [0] * count  # member -> at least its level (exactly, once checked)
        self.best = (0, -1)  # the last answer of ``top``
        self.dirty = False  # a bound rose to the answer's level since

    def rise(self, member: int, level: int) -> None:
        if level > self.bounds[member]:
            self.bounds[member] = level
            if level >= self.best[0]:
                self.dirty = True

    def top(self, true_level: Callable[[int], int]) -> tuple[int, int]:
        """(level, member) of the highest true level, the lowest member among equals, or
        (0, -1) when every level is 0.  (Every member below the answer's has a bound below
        its level; with no rise since, that still holds.)"""
        level, member = self.best
        if not self.dirty and member >= 0 and true_level(member) == level:
            return self.best
        bounds = self.bounds
        best = (0, -1)
        while True:
            highest = max(bounds)
            if highest <= 0:
                break
            member = bounds.index(highest)
            level = true_level(member)
            if level == highest:
                best = (level, member)
                break
            bounds[member] = level
        self.best = best
        self.dirty = False
        return best


class Member(Host):
    """A fleet member: a host that reports each change of its state to its fleet (its
    established count and the levels of its pools; ``Host`` itself reports its TIME_WAIT
    count), so that a bin's end costs the fleet the transitions due, not a visit to every
    member.

    The members share one set of TIME_WAIT queues, the first member's: every member's
    TIME_WAIT lengths and reuse delay are alike, so entries still leave in time order, and
    settling any member (or the fleet, at a bin's end) ends every member's TIME_WAITs due,
    each at its own time.  A member's ``due`` may then be earlier than the next transition
    (it settles for nothing), never later than its own."""

    __slots__ = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        first = kwargs.get("kernel_from")
        if first is not None:  # one kernel's TIME_WAIT queues, the first member's
            self.tw_queues = first.tw_queues
            self.tw_fifo = first.tw_fifo
            self.reuse_fifo = first.reuse_fifo
            self.several_tw = first.several_tw
            if self.several_tw:
                self.due = -math.inf

    def level(self) -> int:
        """The most ports any of its reported pools cannot use now."""
        return max((pool.unusable for pool in self.pools()), default=0)

    def _changed(self, sock: Socket | None, pool: Pool | None) -> None:
        """After an attempt: the pool that took a port (None: any of its pools may have
        risen, an explicit bind blocks a port in all) rises."""
        if sock is not None:
            fleet = self._fleet()
            fleet.established += 1
            fleet.rose(self, pool)

    def _fleet(self) -> Fleet:
        fleet = self.fleet
        if fleet is None:
            raise RuntimeError("a fleet member outside its fleet")
        return fleet

    def autobind_connect(self, load: Channel) -> Socket | None:
        """``Host.autobind_connect`` and ``Host._established`` in one function, then the
        fleet told (``_changed`` and ``Fleet.rose``): the fleet's hot
        path, once per connection, without two calls (keep alike with those)."""
        ch = load
        ch.attempted += 1
        now = self.env.now
        if self.due <= now:
            self.settle(now)
        k, probes = ch.scanner.select(now)
        rec = self.probes
        rec.pass_hist[probes > ch.pass1_probes][probes] += 1
        if k < 0:
            self._fail(ch, "EADDRNOTAVAIL", probes, now)
            return None
        pool = ch.pool
        table = self.table
        # SparsePortTable.take, its common case inlined: the port's first owner
        cell = (k & 1) * table.evens + (k >> 1)
        bind_pool = table.bind_pool
        if bind_pool.cells[cell] & OWNED:
            table.take(k, now, ch.addr)
        else:
            bind_pool.take(cell, OWNED, now)
        if pool.tw_reusable:
            self._recycle(ch, pool, k, cell, now)
        pool.take(cell, BUSY, now)
        # Host._established
        ch.succeeded += 1
        ch.tally.succeeded += 1
        pool.established += 1
        rec.allocations += 1
        rec.probe_sum += probes
        rec.probe_hist[probes] += 1
        if probes > rec.bin_probe_max:
            rec.bin_probe_max = probes
        if self.log is not None:
            self._log(now, "connect", self.lo + k, ch, probes, "")
        use = pool.use
        if use is not None:
            use.record(k, now)
        sock = _new_socket(Socket)
        sock.load = ch
        sock.pool = pool
        sock.k = k
        sock.cell = cell
        sock.explicit = False
        sock.state = ESTABLISHED
        if ch.route is None:  # (through a gateway, the route starts the lifetime)
            life = ch.lifetime()
            if life != math.inf:
                event = _new_wake_up(WakeUp)
                event.callbacks = self._close_callbacks
                event._value = sock
                event._ok = True
                env = self.env
                heappush(env._queue, (env._now + life, NORMAL, next(env._eid), event))
        # the fleet told
        fleet = self.fleet
        if fleet is None:
            raise RuntimeError("a fleet member outside its fleet")
        fleet.established += 1
        level = pool.unusable
        if level > fleet.bin_peak:
            fleet.bin_peak = level
            fleet.bin_pool = pool
            fleet.bin_host = self
        held = bind_pool.unusable
        if held > fleet.bin_held:
            fleet.bin_held = held
        # most takes stay within the member's bounds: rise only past them
        member = self.member
        if level > fleet.levels.bounds[member]:
            fleet.levels.rise(member, level)
        if held > fleet.bind_levels.bounds[member]:
            fleet.bind_levels.rise(member, held)
        return sock

    def policy_connect(self, load: Channel) -> Socket | None:
        sock = super().policy_connect(load)
        self._changed(sock, load.pool)
        return sock

    def bound_connect(self, load: Channel) -> Socket | None:
        self._fleet().binders.add(self.member)  # may block ports: see Fleet.settle_bin
        sock = super().bound_connect(load)
        self._changed(sock, None)
        return sock

    def udp_attempt(self, load: Channel) -> Socket | None:
        sock = super().udp_attempt(load)
        self._changed(sock, None)
        return sock

    def abandon(self, sock: Socket, error: str, now: float) -> None:
        """A connect() through a gateway that never got through: it leaves the fleet's
        established count as it leaves the member's."""
        Host.abandon(self, sock, error, now)
        self._fleet().established -= 1


class Fleet:
    """The members of one fleet, built on first use; member 0 is built at once, as the
    holder of the kernel state every member shares."""

    def __init__(
        self,
        spec: HostSpec,
        addresses: FleetAddresses,
        build: Callable[[HostSpec, int, Host | None], Member],
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self.addresses = addresses
        self.count = addresses.count
        self._build = build
        self.members: dict[int, Member] = {}  # built members by index
        self.rows: list[tuple[int, int, int, int]] = []  # per bin: see close_bin
        # kept as members change (Member and Host report): totals and levels
        self.established = self.time_wait = self.bound = 0
        self.levels = LevelBounds(self.count)  # members' worst pools: ports unusable
        self.bind_levels = LevelBounds(self.count)  # members' bind maps: ports with an owner
        self.binders: set[int] = set()  # members that bound explicitly (may block ports)
        self.bin_peak = 0  # the most ports unusable in a member pool during this bin
        self.bin_pool: Pool | None = None  # the pool that reached it
        self.bin_host: Member | None = None  # and its member
        self.bin_held = 0  # the most ports with an owner in a member's bind map, this bin
        self.start = (0, -1)  # (level, member) when this bin began
        self._start_held = 0  # the most ports with an owner in a bind map when it began
        self.bin_figures = (0, 0, 0, 0.0, 0.0)  # fixed by settle_bin, read by the recorder
        self.tally = Tally()  # every member's connect() outcomes (their channels add to it)
        self.kernel_host = self.member(0)

    def member(self, index: int) -> Member:
        """Member ``index``, built now if it was not yet."""
        host = self.members.get(index)
        if host is None:
            spec = self.spec.model_copy(
                update={
                    "count": None,
                    "address": self.addresses.address(index),
                    "local_network": self.spec.local_network or str(self.addresses.network),
                }
            )
            kernel = self.members.get(0) if index else None
            host = self.members[index] = self._build(spec, index, kernel)
            host.member = index
            host.fleet = self
            host.tally = self.tally
        return host

    @property
    def size(self) -> int:
        """Ports in each member's range (all members alike)."""
        return self.kernel_host.size

    def built(self) -> list[Member]:
        """The members built so far, in member order."""
        return [self.members[i] for i in sorted(self.members)]

    def rose(self, host: Member, pool: Pool | None) -> None:
        """A member took ports: in ``pool`` (None: maybe in any of its pools)."""
        if pool is None:
            level = host.level()
            pool = max(host.pools(), key=lambda p: p.unusable, default=None)
        else:
            level = pool.unusable
        self.levels.rise(host.member, level)
        if level > self.bin_peak and pool is not None:
            self.bin_peak = level
            self.bin_pool = pool
            self.bin_host = host
        held = host.table.bind_pool.unusable
        self.bind_levels.rise(host.member, held)
        if held > self.bin_held:
            self.bin_held = held

    def _level(self, index: int) -> int:
        return self.members[index].level()

    def _held(self, index: int) -> int:
        return self.members[index].table.bind_pool.unusable

    def settle_bin(self, t_end: float) -> None:
        """A bin's end (``sim.engine.Model.close_bin``): end every member's TIME_WAITs due
        (one pass over the shared queues, ``Member``), then fix the bin's figures
        (``bin_figures``: the established, TIME_WAIT and bound counts summed over members,
        the highest pressure any member's pool reached in the bin, the highest share of any
        member's range with an owner) and its hosts.csv row (the member pool with the
        highest peak in the bin: its established, TIME_WAIT and unusable now, and that
        peak).

        A bin's peak is the higher of the highest level when it began and the highest a
        take reached during it (levels only rise by takes, which members report): no
        visit to members that did not change.  Ports blocked by explicit binds are summed
        over the members that bound (``binders``), usually none."""
        members = self.members
        self.kernel_host.settle(t_end, inclusive=False)
        self.bound = sum(members[i].table.dynamic_blocked for i in self.binders)
        start_level, start_member = self.start
        peak, pool = self.bin_peak, self.bin_pool
        host = self.bin_host
        if start_level >= peak and start_member >= 0:
            peak = start_level
            host = members[start_member]
            pool = max(host.pools(), key=lambda p: p.unusable)
        row = (0, 0, 0, 0)
        if pool is not None and host is not None:
            if host.scope != "4tuple":  # a shared space's counts are summed when read
                host.settle_bin(t_end)
            row = (pool.established, pool.time_wait, pool.unusable, peak)
        self.rows.append(row)
        held = max(self.bin_held, self._start_held)
        size = self.size
        self.bin_figures = (self.established, self.time_wait, self.bound, peak / size, held / size)

    def new_bin(self) -> None:
        """The next bin starts from the members' levels now, the highest of each kept by
        ``LevelBounds`` (members report their takes as they happen)."""
        self.start = self.levels.top(self._level)
        self._start_held = self.bind_levels.top(self._held)[0]
        self.bin_peak, self.bin_pool, self.bin_host, self.bin_held = 0, None, None, 0

    def worst_pool(self) -> tuple[Member, Pool] | None:
        """The member pool that came closest to full: highest peak, then earliest, then the
        lowest member index (a deterministic choice among equals)."""
        best: tuple[Member, Pool] | None = None
        best_key: tuple[int, float, int] | None = None
        for index in sorted(self.members):
            host = self.members[index]
            for pool in host.pools():
                key = (-pool.max_ever, pool.max_time, index)
                if best_key is None or key < best_key:
                    best, best_key = (host, pool), key
        return best


class MemberChannels:
    """A load's channels on a fleet: per destination and member, built on first use.

    ``pick`` draws the member of one arrival, uniformly (one uniform draw from the load's
    own stream, so the spread does not move any other random number); ``channels`` gives
    (building if needed) that member's channels to a destination, one per source address."""

    __slots__ = ("_attempts", "_by_target", "_make", "_routes", "count", "fleet", "stream")

    def __init__(
        self,
        fleet: Fleet,
        targets: int,
        make: Callable[[Member, int], list[Channel]],
        stream: Stream,
    ) -> None:
        self.fleet = fleet
        self.count = fleet.count
        self.stream = stream
        self._make = make
        self._by_target: list[dict[int, list[Channel]]] = [{} for _ in range(targets)]
        # each member's attempt on its first channel to the first destination, by member
        # (None: not built yet): the hot path's one lookup, a list rather than a dict
        self._attempts: list[Callable[[], object] | None] = [None] * self.count
        # and its route, if through a gateway: connected directly (Route.connect), without
        # the channel's partial and bound method to fetch from memory per connection
        self._routes: list[Route | None] = [None] * self.count

    def pick(self) -> int:
        return int(self.stream.uniform() * self.count)

    def attempt(self) -> None:
        """An arrival of a load with one destination, no retries and no keep-alive: a
        member's connect() straight away (the hot path; ``Flow.dispatch`` otherwise)."""
        member = int(self.stream.uniform() * self.count)
        route = self._routes[member]
        if route is not None:
            route.connect(None)
            return
        attempt = self._attempts[member]
        if attempt is None:
            attempt = self.channels(0, member)[0].attempt
        attempt()

    def channels(self, target: int, member: int) -> list[Channel]:
        by_member = self._by_target[target]
        chans = by_member.get(member)
        if chans is None:
            host = self.fleet.member(member)
            chans = by_member[member] = self._make(host, target)
            if target == 0:
                self._attempts[member] = chans[0].attempt
                self._routes[member] = chans[0].route
            self.fleet.rose(host, None)  # its new pools start with their reserved ports
        return chans
