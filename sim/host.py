"""The host: TCP and UDP sockets from connect() or bind() to close and TIME_WAIT's end.

Each connection is a chain of SimPy callbacks (attempt -> close -> TIME_WAIT end), not a
process: about twice as fast (measured with benchmarks/throughput.py).  Port choice is delegated to
the pure policies in ``sim.ports``; this module owns the states and their timing:

* close by the client: the client holds TIME_WAIT for ``time_wait`` (60 s on Linux,
  TCP_TIMEWAIT_LEN) unless ``tcp_max_tw_buckets`` TIME_WAIT sockets already exist, in which
  case the socket is destroyed at once (``tcp_time_wait``, net/ipv4/tcp_minisocks.c, T4);
* close by the server: the peer holds TIME_WAIT, the client keeps nothing (``tcp_time_wait``);
* reset (SO_LINGER 0): no TIME_WAIT (``tcp_close``, net/ipv4/tcp.c, T8);
* ``tcp_tw_reuse``: a TIME_WAIT entry may be taken over by a new connect() to the same
  4-tuple once the reuse delay has passed, if the peer sent timestamps; value 2 applies to
  loopback only (``tcp_twsk_unique``, net/ipv4/tcp_ipv4.c, T2, T3).  The entry is marked
  usable at that moment, so the scan never needs to look at clocks.
* UDP: a connected socket holds its port for its lifetime, no TIME_WAIT (``udp_lib_get_port``).

Kernel functions are Linux 6.18's; T and E numbers are observations in docs/sources.md.
"""

from __future__ import annotations

import ipaddress
import math
from collections import deque
from heapq import heappush
from typing import TYPE_CHECKING, Any

import numpy as np
from simpy import Environment
from simpy.events import NORMAL

from sim.channel import Channel, Tally, never
from sim.ip import ip, network
from sim.nat.route import ConnectStats
from sim.ports.bsd import FreeBsdThrottle, FreeBsdThrottledUdp
from sim.ports.cells import BUSY, EXCLUDED, LIVE, NOT_TIME_WAIT, STATIC, TW_BIT, UDP_STATIC
from sim.ports.linux import ConnectState, select_bind, select_udp
from sim.ports.policy import Policy, make_policy
from sim.ports.table import (
    BindMap,
    Layout,
    Pool,
    PortTable,
    SparsePortTable,
    find_natural,
    port_table,
)
from sim.randomness import Stream
from sim.resolve import ResolvedHost
from sim.sockets import CLOSED, ESTABLISHED, TIME_WAIT, TW_REUSABLE, Socket
from sim.syn import linear_timeouts_for, syn_schedule
from sim.timerwheel import WheelTimer, default_start
from sim.wakeup import WakeUp, shared_callbacks

if TYPE_CHECKING:
    from sim.config.types import Destination, HostSpec
    from sim.fleet import Fleet
    from sim.nat.base import Gateway
    from sim.recorder import ProbeCounts
    from sim.summary.types import Timers


_new_socket = _new_wake_up = object.__new__


class _NoPolicy:
    """The generic policy of a Linux host, whose scans are called directly: never used."""

    name = "linux"
    error = "EADDRNOTAVAIL"
    cursor = -1

    def select(self, cells: bytearray, layout: Layout, key: object, now: float) -> tuple[int, int]:
        raise RuntimeError("a Linux host scans with sim.ports.linux, not a generic policy")


NO_POLICY: Policy = _NoPolicy()


class _Closing:
    """What ``Host._on_close`` reads from a timeout event, for a close not from one."""

    __slots__ = ("_value",)

    def __init__(self, sock: Socket) -> None:
        self._value = sock


class HostConnectionSlots:
    """The slots of :class:`Host` that every connection reads, in a base class of their own.

    CPython lays out a class's own ``__slots__`` sorted by name, after its bases' (``type_new``
    sorts them: Objects/typeobject.c, ``type_new_copy_slots``, 3.11), so the order they are
    declared in does not keep them together; a base class does.  A fleet's members are many
    and each is touched rarely, so what one connection reads of its host should share few
    cache lines (tests/test_slot_layout.py checks the layout)."""

    __slots__ = (
        "_close_callbacks",
        "due",
        "env",
        "fleet",
        "forced_reuse",
        "live",
        "lo",
        "log",
        "max_tw",
        "member",
        "probes",
        "reuse_fifo",
        "several_tw",
        "table",
        "tw_count",
        "tw_fifo",
        "tw_rst",
    )


class Host(HostConnectionSlots):
    """One network namespace: its sysctls, port table, kernel state and sockets."""

    __slots__ = (
        "_udp_space",
        "address",
        "auto_reuse",
        "auto_reuse_cursor",
        "connect_stats",
        "explicit_binds",
        "gateway",
        "hi",
        "hz",
        "j0",
        "kernel",
        "layout",
        "linux",
        "live_count",
        "local_network",
        "loopback",
        "name",
        "nolocaltimewait",
        "own_addresses",
        "profile",
        "resolved",
        "rst_stream",
        "scope",
        "shared_labels",
        "size",
        "source_addresses",
        "spec",
        "stream",
        "syn_schedule",
        "tally",
        "tcp_policy",
        "time_wait",
        "time_wait_local",
        "time_wait_loopback",
        "timestamps",
        "track_reuse",
        "tw_overflow",
        "tw_queues",
        "tw_recycled",
        "tw_reuse",
        "tw_reuse_delay",
        "tw_reuse_rule",
        "tw_rst_killed",
        "udp_hash",
        "udp_loads",
        "udp_policy",
        "udp_scope",
        "udp_table",
        "wheel",
        "wheel_timers",
        "windows_events",
    )

    def __init__(
        self,
        env: Environment,
        resolved: ResolvedHost,
        stream: Stream,
        probes: ProbeCounts,
        log: list[tuple] | None,
        clock_stream: Stream | None = None,
        *,
        sparse: bool = False,
        kernel_from: Host | None = None,
        gateway: Gateway | None = None,
        connect_stats: ConnectStats | None = None,
    ) -> None:
        """``sparse``: a fleet member (``sim.fleet``), whose port table keeps owners only for
        ports held; ``kernel_from``: the member whose kernel state (connect() secret and
        perturbation table, jiffies) this one shares, as namespaces of one machine do."""
        spec = resolved.spec
        self.member = -1  # index in its fleet, or -1
        # a fleet member's fleet (set by sim.fleet.Fleet.member), told of each change of the
        # member's TIME_WAIT count: the members share their TIME_WAIT queues, so one member
        # may end another's TIME_WAIT
        self.fleet: Fleet | None = None
        self.tally = Tally()  # its connect() outcomes (a fleet member: the fleet's)
        self.track_reuse = True  # reuse metrics for its first pools (a fleet: one member's)
        self.env = env
        self.resolved = resolved
        self.spec = spec
        self.name = spec.name
        self.address = spec.address
        self.source_addresses = spec.source_addresses
        self.loopback = ip(spec.address).is_loopback
        self.local_network = network(spec.local_network or f"{spec.address}/24")
        self.linux = resolved.linux
        self.scope = resolved.scope
        self.profile = resolved.profile
        self.lo, self.hi = resolved.port_range
        self.size = self.hi - self.lo + 1
        self.time_wait = resolved.time_wait
        self.time_wait_local = resolved.time_wait_local
        self.time_wait_loopback = resolved.time_wait_loopback
        self.nolocaltimewait = resolved.nolocaltimewait
        self.own_addresses = frozenset(ip(a) for a in self.source_addresses)
        self.tw_reuse = resolved.tw_reuse
        self.tw_reuse_delay = resolved.tw_reuse_delay
        # which TIME_WAIT age check tcp_tw_reuse applies (by kernel version; releases inferred)
        self.tw_reuse_rule = resolved.tw_reuse_rule
        self.max_tw = spec.tcp_max_tw_buckets
        self.timestamps = spec.tcp_timestamps
        options: dict[str, Any] = {
            "reserved": resolved.reserved_tcp,
            "listening": frozenset(spec.listening_ports),
            "reset_on_release": self.profile.bucket_reset if self.profile else True,
            # under 4-tuple scope the destination pools are reported, never the bind map
            "bind_class": BindMap if self.scope == "4tuple" else Pool,
        }
        if sparse:
            template = kernel_from.table if kernel_from is not None else None
            self.table: PortTable = SparsePortTable(self.lo, self.hi, template=template, **options)
        else:
            self.table = port_table(
                self.lo, self.hi, addresses=len(self.source_addresses), **options
            )
        self.layout = self.table.layout
        if kernel_from is not None:
            self.kernel: ConnectState | None = kernel_from.kernel
        else:
            self.kernel = ConnectState(self.profile.generation, stream) if self.profile else None
        self._init_timers(resolved, clock_stream, kernel_from)
        self.stream = stream
        self.probes = probes
        self.log = log
        # behind a NAT (sim/nat): the gateway, the SYN retransmission schedule, and where
        # connect latency through it is counted
        self.gateway = gateway
        self.syn_schedule = self._syn_schedule(spec) if gateway is not None else ()
        self.connect_stats = connect_stats if connect_stats is not None else ConnectStats()
        self.tw_count = 0
        self.tw_overflow = 0
        self.tw_recycled = 0
        # sockets in TIME_WAIT by its length, each queue in the order of their ends
        # (``Socket.until``)
        self.tw_queues: dict[float, deque[Socket]] = {}
        self.several_tw = False  # set when loads hold TIME_WAITs of different lengths
        # when the next TIME_WAIT transition is due (settle() keeps it): every action on the
        # host first settles what is due (-inf with several lengths: their merge decides)
        self.due = math.inf
        self._close_callbacks = CLOSE_CALLBACKS  # (the same list for every host)
        self.tw_fifo: deque[Socket] = self.tw_queue(self.time_wait)
        self.reuse_fifo: deque[tuple[float, Socket]] = deque()  # (reusable at, socket)
        self.udp_loads: list[str] = []
        self.explicit_binds: bool = False  # some load binds before connect (Erlang B: off)
        self.shared_labels: dict[str, None] = {}
        self._label_shared()
        self.udp_hash = spec.udp_hash_size
        self.udp_scope = resolved.udp_scope
        # connected UDP unique by 4-tuple: owners and explicit binders as for TCP
        self.udp_table: PortTable | None = (
            port_table(self.lo, self.hi, reserved=resolved.reserved_udp)
            if self.udp_scope == "4tuple"
            else None
        )
        self.forced_reuse = resolved.forced_reuse
        self.auto_reuse = self.sub_range(spec.auto_reuse_range) if spec.auto_reuse_range else None
        self.auto_reuse_cursor = self.auto_reuse[0] - 1 if self.auto_reuse else 0
        if self.auto_reuse:  # kept out of exclusive allocations (bind, the dynamic scan)
            spaces = {id(p): p for p in (self.table.bind_pool, *self.table.addr_pools)}
            a, b = self.auto_reuse
            for k in range(a, b):  # setup, once: not a hot path
                for space in spaces.values():
                    space.take(self.layout.cell(k), STATIC, 0.0)
        self.windows_events = {"4227": 0, "4231": 0}
        # Windows forced reuse may take only ports held by nobody but TIME_WAIT sockets: the
        # ports a live connection holds (counted), and those never reused (reserved,
        # listening, auto-reuse) are marked here, by cell
        self.live: bytearray | None = None
        self.live_count: list[int] = []
        if self.forced_reuse:
            self.live = bytearray(EXCLUDED if v else 0 for v in self.table.static)
            if self.auto_reuse:
                for k in range(*self.auto_reuse):  # setup, once
                    self.live[self.layout.cell(k)] = EXCLUDED
            self.live_count = [0] * self.size
        self._udp_space: Pool | None = None  # built on first use: see udp_pool
        if self.linux:
            self.tcp_policy = self.udp_policy = NO_POLICY  # Linux: sim.ports.linux, inline
        else:
            params: dict[str, Any] = {
                "first": resolved.first_offset,
                "table_size": spec.table_size,
                "increment_max": spec.increment_max,
                "randomcps": spec.randomcps,
                "randomtime": spec.randomtime,
            }
            self.tcp_policy = make_policy(resolved.policy, stream, self.size, **params)
            udp_policy = resolved.udp_policy
            if resolved.shared_counter:
                self.udp_policy = self.tcp_policy
            elif udp_policy == "freebsd-throttle" and isinstance(self.tcp_policy, FreeBsdThrottle):
                self.udp_policy = FreeBsdThrottledUdp(stream, self.tcp_policy)
            else:
                self.udp_policy = make_policy(udp_policy, stream, self.size, **params)
        if spec.initial_state is not None:
            self.preload(spec.initial_state.file, spec.initial_state.time_wait_age)

    # -- setup helpers -------------------------------------------------------------------
    def _syn_schedule(self, spec: HostSpec) -> tuple[float, ...]:
        """When a dropped SYN is retransmitted, then ETIMEDOUT (sim.syn): the kernel's
        ``tcp_syn_linear_timeouts`` default unless the scenario sets it."""
        linear = spec.tcp_syn_linear_timeouts
        if linear is None:
            linear = linear_timeouts_for(self.profile.version) if self.profile else 0
        return syn_schedule(spec.tcp_syn_retries, linear)

    def preload(self, path: str, time_wait_age: str) -> None:
        """Hold the ports of an initial state (``sim.initial_state``) at time 0, as if the
        connections had been made before the run: a one-off loop over its rows at
        start-up.  Each destination gets a channel (a ``Channel`` that no arrival drives) so
        that closing and TIME_WAIT follow the same code as every other connection."""
        from sim.config.types import Destination
        from sim.initial_state import read_initial_state, time_wait_left

        rows = read_initial_state(path)
        channels: dict[tuple[str, str], Channel] = {}
        by_channel: dict[Channel, list] = {}
        for row in rows:
            source = row.local_address if row.local_address in self.source_addresses else None
            key = (source or self.address, row.destination)
            ch = channels.get(key)
            if ch is None:
                dest = Destination(name=row.destination, address=row.destination)
                ch = channels[key] = Channel(
                    "initial_state", self, dest, never, "client", "connect", "tcp", None, source
                )
                by_channel[ch] = []
            by_channel[ch].append(row)
        waiting: list[tuple[float, Socket, Channel]] = []
        for ch, held in by_channel.items():
            timer = self.wheel_timer(ch.tw_len)  # a kernel's TIME_WAIT may show up to a
            longest = ch.tw_len + (timer.granularity_s if timer else 0.0)  # bucket more
            tws = [r for r in held if r.state == "TIME_WAIT"]
            left = dict(
                zip(map(id, tws), time_wait_left(tws, ch.tw_len, time_wait_age), strict=True)
            )
            for row in held:
                sock = self._hold(ch, row.local_port - self.lo)
                if row.state == "TIME_WAIT":  # at most this destination's TIME_WAIT: FIFO
                    waiting.append((min(left[id(row)], longest), sock, ch))
                elif row.remaining_s is not None:
                    self.env.timeout(row.remaining_s, sock).callbacks.append(self._on_close)
        waiting.sort(key=lambda w: w[0])  # each TIME_WAIT queue stays in expiry order
        reusable = []
        for until, sock, ch in waiting:
            sock.state = TIME_WAIT
            ch.dest_pool.established -= 1
            ch.dest_pool.time_wait += 1
            self.tw_count += 1
            sock.until = until
            ch.tw_queue.append(sock)
            self.due = min(self.due, until)
            if self.forced_reuse:
                ch.dest_pool.cells[sock.cell] |= TW_BIT
            if ch.reuse_tw:
                reusable.append((self._reuse_time(until - ch.tw_len), sock))
        for at, sock in sorted(reusable, key=lambda r: r[0]):
            if at <= 0:
                self._reusable(0.0, sock)
            else:
                self.reuse_fifo.append((at, sock))
                self.due = min(self.due, at)

    def _hold(self, ch: Channel, k: int) -> Socket:
        """An established connection of ``ch`` on port lo+k, made before time 0."""
        cell = self.table.take(k, 0.0, ch.addr)
        pool = ch.dest_pool
        pool.take(cell, BUSY, 0.0)
        pool.established += 1
        sock = _new_socket(Socket)
        sock.load, sock.pool, sock.k, sock.cell = ch, pool, k, cell
        sock.explicit = False
        sock.state = ESTABLISHED
        return sock

    @property
    def udp_pool(self) -> Pool:
        """The UDP port space, built the first time a UDP channel needs it (Linux's map is
        by port number, 64 KB: a fleet member without UDP loads does without)."""
        pool = self._udp_space
        if pool is None:
            reserved = self.resolved.reserved_udp
            pool = self._linux_udp_pool(reserved) if self.linux else self._udp_pool(reserved)
            self._udp_space = pool
        return pool

    def _init_timers(
        self, resolved: ResolvedHost, clock_stream: Stream | None, kernel_from: Host | None = None
    ) -> None:
        """The jiffies clock of a Linux host (timer wheel, 10 s hash windows) and the RST
        stream; ``clock_stream`` keeps their draws off the port-selection stream."""
        spec = resolved.spec
        self.hz = resolved.hz
        self.wheel = resolved.timer_wheel
        self.wheel_timers: dict[float, WheelTimer] = {}
        clock = clock_stream or Stream(np.random.SeedSequence(0))
        if kernel_from is not None:  # one machine, one jiffies clock
            self.j0: float = kernel_from.j0
            # and one timer per length: a member's close reads the first member's, not a
            # copy of its own to fetch from memory (fleet members share hz and timer_wheel)
            self.wheel_timers = kernel_from.wheel_timers
        elif spec.jiffies_at_start is not None:
            self.j0 = spec.jiffies_at_start
            if self.kernel is not None:  # one clock: the hash windows follow it too
                self.kernel.phase = (self.j0 / self.hz) % 10.0
        else:
            phase = self.kernel.phase if self.kernel is not None else 0.0
            self.j0 = default_start(self.hz, phase, clock.below(1 << 17))
        self.tw_rst = resolved.time_wait_rst  # (sim.resolve: tcp_rfc1337)
        self.tw_rst_killed = 0
        self.rst_stream = clock

    def timer_summary(self) -> Timers:
        """The jiffies clock and TIME_WAIT timer facts: the ``timers`` of its summary entry."""
        timer = self.wheel_timer(self.time_wait)
        return {
            "hz": self.hz,
            "timer_wheel": self.wheel,
            "jiffies_at_start": self.j0,
            "time_wait_granularity_s": timer.granularity_s if timer else 0.0,
            "time_wait_rst_killed": self.tw_rst_killed,
        }

    def wheel_timer(self, length: float) -> WheelTimer | None:
        """The wheel timer of a TIME_WAIT of ``length`` s, or None for exact expiry."""
        if not self.wheel:
            return None
        timer = self.wheel_timers.get(length)
        if timer is None:
            timer = self.wheel_timers[length] = WheelTimer(length, self.hz, self.j0)
        return timer

    def _linux_udp_pool(self, reserved: frozenset[int]) -> Pool:
        cells = bytearray([UDP_STATIC]) * 65536
        cells[self.lo : self.hi + 1] = bytes(self.size)
        for port in reserved:
            if self.lo <= port <= self.hi:
                cells[port] = UDP_STATIC
        pool = Pool(Layout(65536), f"udp {self.address}", cells)
        pool.unusable = pool.peak = pool.max_ever = self.size - cells.count(0)
        return pool

    def _udp_pool(self, reserved: frozenset[int]) -> Pool:
        """UDP ports for the generic policies: the same parity layout as TCP's maps."""
        cells = bytearray(self.size)
        for port in reserved:
            if self.lo <= port <= self.hi:
                cells[self.layout.cell(port - self.lo)] = UDP_STATIC
        return Pool(self.layout, f"udp {self.address}", cells)

    def time_wait_for(self, dest: Destination) -> float:
        """TIME_WAIT length towards a peer: some systems shorten it for local peers
        (NetBSD's MSL classes, tcp_subr.c; FreeBSD's nolocaltimewait, below)."""
        if self.nolocaltimewait and self.is_local_peer(dest.ip):
            return 0.0
        if dest.loopback or self.loopback:
            return self.time_wait_loopback
        if ip(dest.ip) in self.local_network:
            return self.time_wait_local
        return self.time_wait

    def is_local_peer(self, ip: str) -> bool:
        """FreeBSD ``tcp_twstart`` skips TIME_WAIT under ``nolocaltimewait`` when
        ``in_localip(faddr)`` (IPv4: the peer is an address configured on one of the host's
        interfaces: its own addresses, and lo0's 127.0.0.1, not the rest of 127/8) or
        ``in6_localaddr(faddr)`` (IPv6: ::1, link-local, or inside a configured prefix:
        here the host's ``local_network``)."""
        addr = ipaddress.ip_address(ip)
        if addr in self.own_addresses:
            return True
        if addr.version == 4:
            return addr == ipaddress.IPv4Address("127.0.0.1")
        net = self.local_network
        return addr.is_loopback or addr.is_link_local or (net.version == 6 and addr in net)

    def tw_queue(self, length: float) -> deque[Socket]:
        """The FIFO of TIME_WAIT sockets of one length: entries leave in arrival order."""
        queue = self.tw_queues.setdefault(length, deque())
        self.several_tw = len(self.tw_queues) > 1
        if self.several_tw:
            self.due = -math.inf
        return queue

    def sub_range(self, rng: tuple[int, int] | None) -> tuple[int, int] | None:
        """IP_LOCAL_PORT_RANGE as offsets [a, b): each bound is used only if inside the
        namespace range, otherwise the namespace's bound stays
        (``inet_sk_get_local_port_range``)."""
        if rng is None:
            return None
        lo = rng[0] if self.lo <= rng[0] <= self.hi else self.lo
        hi = rng[1] if self.lo <= rng[1] <= self.hi else self.hi
        if lo > hi:
            return None
        return lo - self.lo, hi - self.lo + 1

    def pools(self) -> list[Pool]:
        """Pools whose pressure is reported: one per destination for connect() under 4-tuple
        scope, the host's port space under the others, UDP if used.

        Ports taken by bind(0) show in every destination's pool as blocked, so a
        bind-before-connect load's pressure is its destination's pool too.  A view: the
        shared spaces' counts are as of the last ``settle_bin``.
        """
        if self.scope == "4tuple":
            out = list(self.table.pools.values())
        else:
            out = [pool for pool, _ in self._shared_spaces()]
        if self.udp_loads:
            if self.udp_table is not None:
                out.extend(self.udp_table.pools.values())
            else:
                out.append(self.udp_pool)
        return out

    def _shared_spaces(self) -> list[tuple[Pool, str | None]]:
        """The port spaces destinations share (scope port or local_address), each with its
        source address (None: every address); none under 4-tuple scope."""
        if self.scope == "4tuple":
            return []
        if self.scope == "local_address" and len(self.source_addresses) > 1:
            return list(zip(self.table.addr_pools, self.source_addresses, strict=True))
        return [(self.table.bind_pool, None)]

    def share_label(self, label: str) -> None:
        """A channel to ``label`` uses a shared port space: name the space by its
        destinations."""
        self.shared_labels.setdefault(label, None)
        self._label_shared()

    def _label_shared(self) -> None:
        for pool, address in self._shared_spaces():
            labels = [
                lbl
                for lbl in self.shared_labels
                if address is None or lbl.startswith(f"{address}->")
            ]
            pool.label = ", ".join(labels) or f"{address or self.address} (every port)"

    def drop_connections(self) -> None:
        """Forget every socket (``sim.engine.run`` after a run: see ``sim.collector``)."""
        for queue in self.tw_queues.values():
            queue.clear()
        self.reuse_fifo.clear()
        for pool in self.table.pools.values():
            pool.tw_reusable = None

    # -- bin boundaries (the engine's steps around the recorder's reading) ----------------
    def settle_bin(self, end: float) -> None:
        """Bring the host to the end of a bin before it is read: apply the TIME_WAIT
        transitions due before ``end`` and sum the shared spaces' established and TIME_WAIT
        counts over their destinations."""
        self.settle(end, inclusive=False)
        for pool, address in self._shared_spaces():
            dests = [p for key, p in self.table.pools.items() if address in (None, key[0])]
            pool.established = sum(p.established for p in dests)
            pool.time_wait = sum(p.time_wait for p in dests)

    def new_bin(self) -> None:
        """Start the next bin: each reported pool's peak starts from its current level."""
        for pool in self.pools():
            pool.peak = pool.unusable
        bind_pool = self.table.bind_pool
        bind_pool.peak = bind_pool.unusable

    # -- attempts (each channel calls the one that fits it: Channel.attempt) ----------------
    # Each returns the new Socket, or None when refused (retries and keep-alive pools
    # need to know).
    def attempt(self, ch: Channel) -> Socket | None:
        """One connection attempt of ``ch`` at the current time."""
        return ch.attempt()

    def autobind_connect(self, ch: Channel) -> Socket | None:
        """connect() on a fresh socket, or after bind(addr, 0) with IP_BIND_ADDRESS_NO_PORT.
        (``sim.fleet.Member.autobind_connect`` inlines it with ``_established``: keep alike.)"""
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
        cell = table.take(k, now, ch.addr)
        if pool.tw_reusable:
            self._recycle(ch, pool, k, cell, now)
        pool.take(cell, BUSY, now)
        return self._established(ch, pool, k, cell, False, probes, now)

    def _recycle(self, ch: Channel, pool: Pool, k: int, cell: int, now: float) -> None:
        """connect() took a port whose TIME_WAIT entry to this destination is reusable
        (tcp_tw_reuse): the entry is recycled (TWRecycled), its hold on the port ends."""
        tw = pool.tw_reusable.pop(cell, None) if pool.tw_reusable else None
        if tw is None:
            return
        tw.state = CLOSED
        self.table.release(k, now, ch.addr)
        self.tw_count -= 1
        if self.fleet is not None:
            self.fleet.time_wait -= 1
        self.tw_recycled += 1
        if self.log is not None:
            self._log(now, "time_wait_reused", self.lo + k, ch, 0, "")

    def bound_connect(self, ch: Channel) -> Socket | None:
        """bind(addr, 0) [+ SO_REUSEADDR], then connect(): no scan, no perturbation update."""
        ch.attempted += 1
        now = self.env.now
        if self.due <= now:
            self.settle(now)
        if self.linux:
            k, probes = select_bind(
                self.table.addr_pools[ch.addr].cells,
                self.layout,
                self.stream,
                ch.socket == "bind_reuseaddr",
                ch.sub,
            )
        else:  # BSD and others: the same generator as connect(), over the port space
            cells = self.table.addr_pools[ch.addr].cells
            k, probes = self.tcp_policy.select(cells, self.layout, None, now)
        if k < 0:
            self._fail(ch, "EADDRINUSE", probes, now)
            return None
        cell = self.table.take_explicit(k, now, ch.addr)
        if self.live is not None:
            self._hold_live(k, cell)
        if self.log is not None:
            self._log(now, "bind", self.lo + k, ch, probes, "")
        pool = ch.dest_pool
        # bind(0) never picks a port with an owner on this address, so the 4-tuple is free
        pool.take(cell, BUSY, now)
        return self._established(ch, pool, k, cell, True, probes, now)

    def policy_connect(self, ch: Channel) -> Socket | None:
        """connect() on a host whose policy is not Linux's: the policy scans the map of the
        host's scope; Windows shares a port across destinations once exhausted."""
        ch.attempted += 1
        now = self.env.now
        if self.due <= now:
            self.settle(now)
        policy = self.tcp_policy
        k = probes = -1
        if self.auto_reuse is not None and ch.socket != "bind_no_port":
            k, probes = self._auto_reuse(ch)
        if k < 0:
            k, more = policy.select(ch.pool.cells, self.layout, ch.key, now)
            probes = more if probes < 0 else probes + more
        if k < 0:
            k, error = self._exhausted(ch, policy.error)
            if k < 0:
                self._fail(ch, error, probes, now)
                return None
        cell = self.table.take(k, now, ch.addr)
        if self.live is not None:
            self._hold_live(k, cell)
        pool = ch.dest_pool
        pool.take(cell, BUSY, now)
        return self._established(ch, pool, k, cell, False, probes, now)

    def _auto_reuse(self, ch: Channel) -> tuple[int, int]:
        """Windows' auto-reuse port range (``Set-NetTCPSetting -AutoReusePortRange*``): plain
        connect() takes ports from it with 4-tuple uniqueness, so they serve many
        destinations; a sequential cursor of its own (inferred; docs/presets/windows.md).
        When nothing in it is free for this destination, the dynamic range is used (inferred)."""
        if self.auto_reuse is None:
            return -1, 0
        a, b = self.auto_reuse
        n = b - a
        k0 = a + (self.auto_reuse_cursor + 1 - a) % n
        k = find_natural(ch.dest_pool.cells, self.layout, k0, a, b)
        if k < 0:
            return -1, n
        self.auto_reuse_cursor = k
        return k, (k - k0) % n + 1

    def _exhausted(self, ch: Channel, error: str) -> tuple[int, str]:
        """What happens when the policy finds nothing.  Windows logs event 4231 ("...the
        global TCP port space has failed due to all such ports being in use") and fails
        with WSAENOBUFS.  With forced reuse (inferred from event 4227's text: the reused
        local endpoint "was recently used", i.e. it is in TIME_WAIT) it first takes the next
        port, in the order of the sequential cursor, held only by TIME_WAIT sockets none of
        which is to this destination; a port held by a live connection is never shared.  If
        the only such ports are in TIME_WAIT to this destination, the attempt fails with
        WSAEADDRINUSE and logs 4227 ("...the selected local endpoint was recently used to
        connect to the same remote endpoint")."""
        if not self.resolved.windows:
            return -1, error
        live = self.live
        if live is not None:
            n = self.size
            held = int.from_bytes(live, "little")
            usable = (held | int.from_bytes(ch.dest_pool.cells, "little")).to_bytes(n, "little")
            policy = self.tcp_policy
            start = (getattr(policy, "cursor", -1) + 1) % n
            k = find_natural(usable, self.layout, start, 0, n)
            if k >= 0:
                if hasattr(policy, "cursor"):
                    policy.cursor = k
                return k, ""
            same = ch.dest_pool.cells.translate(NOT_TIME_WAIT)
            if (held | int.from_bytes(same, "little")).to_bytes(n, "little").find(0) >= 0:
                self.windows_events["4227"] += 1
                return -1, "WSAEADDRINUSE"
        self.windows_events["4231"] += 1
        return -1, "WSAENOBUFS"

    def _hold_live(self, k: int, cell: int) -> None:
        """(Called only when ``self.live`` is kept: Windows forced reuse.)"""
        n = self.live_count[k]
        self.live_count[k] = n + 1
        if not n and self.live is not None:
            self.live[cell] |= LIVE

    def _release_live(self, k: int, cell: int) -> None:
        n = self.live_count[k] - 1
        self.live_count[k] = n
        if not n and self.live is not None:
            self.live[cell] &= ~LIVE

    def udp_attempt(self, ch: Channel) -> Socket | None:
        """A connected UDP socket (or bind(0) then connect).  One port per socket on Linux
        (``udp_lib_get_port`` ignores the destination) and on most BSDs (the implicit
        ``in_pcbbind`` checks the local port); FreeBSD 13+ connect() checks the 4-tuple
        (``udp_connect`` -> ``in_pcbconnect`` -> ``in_pcb_lport_dest`` with the foreign
        address, as for TCP), so a port serves many destinations (``udp_scope``)."""
        ch.attempted += 1
        now = self.env.now
        pool = ch.pool
        bind = ch.socket in ("bind", "bind_reuseaddr")
        table = self.udp_table
        if self.linux:
            port, probes = select_udp(pool.cells, self.lo, self.hi, self.stream, self.udp_hash)
            k, cell = port - self.lo, port
            error = "EADDRINUSE" if bind else "EAGAIN"
        else:
            # bind(0) checks the local port (in_pcbbind): any owner on it conflicts
            cells = table.bind_pool.cells if table is not None and bind else pool.cells
            k, probes = self.udp_policy.select(cells, self.layout, ch.key, now)
            cell = self.layout.cell(k) if k >= 0 else -1
            error = "EADDRINUSE" if bind else self.udp_policy.error
        if k < 0:
            self._fail(ch, error, probes, now)
            return None
        explicit = False
        if table is not None:
            explicit = bind
            cell = table.take_explicit(k, now) if bind else table.take(k, now)
        pool.take(cell, BUSY, now)
        return self._established(ch, pool, k, cell, explicit, probes, now)

    def _established(
        self, ch: Channel, pool: Pool, k: int, cell: int, explicit: bool, probes: int, now: float
    ) -> Socket:
        """The connection holds its port (inlined in ``Member.autobind_connect``: keep alike)."""
        ch.succeeded += 1
        ch.tally.succeeded += 1
        pool.established += 1
        rec = self.probes
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
        sock = _new_socket(Socket)  # Socket.__init__ without the call: per connection
        sock.load = ch
        sock.pool = pool
        sock.k = k
        sock.cell = cell
        sock.explicit = explicit
        sock.state = ESTABLISHED
        if ch.route is not None:  # through a gateway: the route starts the lifetime
            return sock
        life = ch.lifetime()
        if life != math.inf:  # env.timeout(life, sock) with _on_close, without its cost
            event = _new_wake_up(WakeUp)
            event.callbacks = self._close_callbacks
            event._value = sock
            event._ok = True
            env = self.env
            heappush(env._queue, (env._now + life, NORMAL, next(env._eid), event))
        return sock

    def _fail(
        self, ch: Channel, error: str, probes: int, now: float, *, refused: bool = True
    ) -> None:
        """A failed attempt: the host refused the call (``refused``), or a call that got a
        port failed later (``abandon``)."""
        ch.failed += 1
        ch.tally.failed += 1
        if ch.first_failure is None:
            ch.first_failure = now
        ch.failed_by_error[error] = ch.failed_by_error.get(error, 0) + 1
        if refused:
            self.probes.refusals += 1
        if probes > 0:  # a refusal costs its scan too: the whole range for Linux connect()
            rec = self.probes
            rec.refused_probe_sum += probes
            rec.refused_calls += 1
            if probes > rec.bin_probe_max:
                rec.bin_probe_max = probes
        if self.log is not None:
            self._log(now, "fail", None, ch, probes, error)

    # -- closing -------------------------------------------------------------------------
    def abandon(self, sock: Socket, error: str, now: float) -> None:
        """A connect() that never got through (its SYN or datagram went unanswered at a
        gateway, ``sim.nat.route``): the socket closes without TIME_WAIT, frees its port
        and the attempt fails with ``error``."""
        if self.due <= now:
            self.settle(now)
        sock.state = CLOSED
        sock.pool.established -= 1
        self._free(sock, now, busy=True)
        self._fail(sock.load, error, 0, now, refused=False)

    def close(self, sock: Socket) -> None:
        """The application closes the socket now (a keep-alive pool lets it go)."""
        self._on_close(_Closing(sock))

    def _on_close(self, event: Any) -> None:
        """A socket's lifetime ended: ``socket_closed`` (for a close not from a timeout)."""
        socket_closed(event)

    def _reuse_time(self, entry: float) -> float:
        """When a TIME_WAIT entered at ``entry`` may first be reused (``tcp_twsk_unique``)."""
        rule = self.tw_reuse_rule
        if rule == "ms":  # 6.14+: now_ms > entry_ms + tcp_tw_reuse_delay
            return (math.floor(entry * 1000) + round(self.tw_reuse_delay * 1000) + 1) / 1000
        if self.kernel is None:
            raise RuntimeError("TIME_WAIT reuse is modelled for Linux hosts only")
        phase = self.kernel.phase % 1.0  # whole-second clock boundaries
        whole = math.floor(entry + phase)
        return whole + (1 if rule == "s>0" else 2) - phase

    def settle(self, now: float, *, inclusive: bool = True) -> None:
        """Apply every TIME_WAIT transition due by ``now``, in time order.

        TIME_WAIT and the reuse delay are fixed per host, so entries leave in the order they
        came: two FIFO queues replace a SimPy event per connection.  They are settled before
        every action on the host and at every bin boundary, so nothing observes a stale
        state, and each transition is booked at its own time (areas, event log).
        """
        tw, reuse = self.tw_fifo, self.reuse_fifo
        if self.several_tw:  # TIME_WAIT lengths by locality: merge their queues
            self._settle_merged(now, inclusive)
            return
        if not reuse:  # the common case: only expiries, already in time order
            end = self._time_wait_end
            if inclusive:
                while tw and tw[0].until <= now:
                    end(tw.popleft())
            else:
                while tw and tw[0].until < now:
                    end(tw.popleft())
            self.due = tw[0].until if tw else math.inf
            return
        while True:
            t_tw = tw[0].until if tw else math.inf
            t_reuse = reuse[0][0] if reuse else math.inf
            t = t_tw if t_tw <= t_reuse else t_reuse
            if t > now or (t == now and not inclusive):
                self.due = t
                return
            if t_reuse <= t_tw:
                self._reusable(*reuse.popleft())
            else:
                self._time_wait_end(tw.popleft())

    def _settle_merged(self, now: float, inclusive: bool) -> None:
        reuse = self.reuse_fifo
        queues: list[deque[Any]] = [q for q in self.tw_queues.values() if q]
        if reuse:
            queues.append(reuse)

        def head_time(queue: deque[Any]) -> float:  # (reuse: (at, socket); else sockets)
            return queue[0][0] if queue is reuse else queue[0].until

        while queues:
            head = min(queues, key=head_time)
            t = head_time(head)
            if t > now or (t == now and not inclusive):
                return
            if head is reuse:
                self._reusable(*head.popleft())
            else:
                self._time_wait_end(head.popleft())
            if not head:
                queues.remove(head)

    def _reusable(self, at: float, sock: Socket) -> None:
        if sock.state != TIME_WAIT:
            return
        sock.state = TW_REUSABLE
        pool = sock.pool
        pool.time_wait -= 1
        pool.give(sock.cell, BUSY, at)
        if pool.tw_reusable is None:
            pool.tw_reusable = {}
        pool.tw_reusable[sock.cell] = sock

    def _time_wait_end(self, sock: Socket) -> None:
        """``sock``'s TIME_WAIT ends (at ``sock.until``).  (A fleet member may end another
        member's TIME_WAIT: the socket's host is used.)"""
        at = sock.until
        state = sock.state
        if state == CLOSED:
            return  # recycled by a new connection
        pool = sock.pool
        host = sock.load.host
        host.tw_count -= 1
        if host.fleet is not None:
            host.fleet.time_wait -= 1
        if state == TW_REUSABLE:
            reusable = pool.tw_reusable
            if reusable is not None:  # (always: it holds this socket)
                del reusable[sock.cell]  # its cell is already usable
        else:
            pool.time_wait -= 1
        sock.state = CLOSED
        if self.log is not None:
            self._log(at, "time_wait_end", self.lo + sock.k, sock.load, 0, "")
        if state != TW_REUSABLE:
            pool.give(sock.cell, BUSY | TW_BIT, at)
        if sock.explicit:  # _free, inlined: once per connection (TIME_WAIT is TCP only)
            host.table.release_explicit(sock.k, at, sock.load.addr)
        else:
            host.table.release(sock.k, at, sock.load.addr)

    def _free(self, sock: Socket, now: float, *, busy: bool) -> None:
        """Release the socket's hold: its 4-tuple (if still marked) and its port owner."""
        if busy:
            sock.pool.give(sock.cell, BUSY | TW_BIT, now)
        if sock.load.protocol == "udp":
            if self.udp_table is not None:
                if sock.explicit:
                    self.udp_table.release_explicit(sock.k, now)
                else:
                    self.udp_table.release(sock.k, now)
            return
        if sock.explicit:
            self.table.release_explicit(sock.k, now, sock.load.addr)
        else:
            self.table.release(sock.k, now, sock.load.addr)

    def _log(
        self, now: float, event: str, port: int | None, ch: Channel, probes: int, error: str
    ) -> None:
        if self.log is None:
            return
        self.log.append(
            (
                now,
                self.name,
                ch.source,
                event,
                ch.protocol,
                port,
                ch.dest.address,
                probes,
                error,
            )
        )


def socket_closed(event: Any) -> None:
    """A socket's lifetime ended (the callback of its lifetime's timeout: the hot path,
    hence the event rather than the socket as argument): its host's close.  One function
    for every host (the host is the socket's channel's), so no bound method per host
    is fetched per connection, and a fleet member reports its close here rather than
    in a second call (a fleet's members are many, each touched rarely)."""
    sock: Socket = event._value
    ch = sock.load
    host = ch.host
    now = host.env.now
    if host.due <= now:
        host.settle(now)
    route = ch.route
    if route is not None:  # the gateway starts its hold (conntrack TIME_WAIT, ...)
        route.gateway.release(sock.mapping, now, route.close_kind)
    pool = sock.pool
    pool.established -= 1
    fleet = host.fleet
    if fleet is not None:
        fleet.established -= 1
    if host.live is not None and ch.protocol == "tcp":
        host._release_live(sock.k, sock.cell)
    if host.log is not None:
        host._log(now, "close", host.lo + sock.k, ch, 0, "")
    if ch.close == "server" and pool.use is not None:  # (None: not tracked)
        pool.use.server_closed(sock.k, now + ch.dest.time_wait)
    if ch.holds_time_wait:
        if host.tw_rst and host.rst_stream.uniform() < host.tw_rst:
            host.tw_rst_killed += 1  # the peer's RST arrives at once: no TIME_WAIT
        elif host.tw_count < host.max_tw:
            sock.state = TIME_WAIT
            host.tw_count += 1
            if fleet is not None:
                fleet.time_wait += 1
            pool.time_wait += 1
            timer = ch.tw_timer
            end = now + ch.tw_len if timer is None else timer.expiry(now)
            sock.until = end
            ch.tw_queue.append(sock)
            if end < host.due:
                host.due = end
            if host.log is not None:
                host._log(now, "time_wait", host.lo + sock.k, ch, 0, "")
            if host.forced_reuse:
                pool.cells[sock.cell] |= TW_BIT
            if ch.reuse_tw and not sock.explicit:
                at = host._reuse_time(now)
                if at < end:
                    host.reuse_fifo.append((at, sock))
                    if at < host.due:
                        host.due = at
            return
        else:
            host.tw_overflow += 1  # TCPTimeWaitOverflow: destroyed without TIME_WAIT
    sock.state = CLOSED
    host._free(sock, now, busy=True)


CLOSE_CALLBACKS = shared_callbacks(socket_closed)
