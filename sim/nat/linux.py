"""Linux netfilter SNAT / MASQUERADE: ``net/netfilter/nf_nat_core.c`` as a gateway kind.

What a new flow gets (``get_unique_tuple``, Linux 6.18 unless a version is named):

1. without ``--random``/``--random-fully``: the mapping of another conntrack from the same
   inside (protocol, address, port), if that (public address, port) is free towards this
   destination (``find_appropriate_src``, the bysource hash; the newest one is kept here);
2. the public address: one address, or among a range ``jhash2(source, seed = destination)``
   scaled onto the range (``find_best_ips_proto``): stable per (source, destination), not
   load-aware, and never moved to another address when this one is full;
3. without the random flags: the inside port itself if it is in the range and free
   (port preservation; with a single-port range the port is kept even if taken, and the
   flow then fails at confirm);
4. otherwise ``nf_nat_l4proto_unique_tuple``: with no ``--to-ports`` the range is the
   inside port's class ([1, 511], [600, 1023] or [1024, 65535]); a random 16-bit start
   ``off`` and runs of linear probes ``min + off % size`` (``off`` wraps as a u16) of
   ``min(size, 128)`` then 64, 32, 16, 8 with a new random start each (NF_NAT_MAX_ATTEMPTS;
   "netfilter: nat: limit port clash resolution attempts", a504b703bb1d, and "remove l4
   protocol port rovers", 6ed5943f8735: Linux 5.17, backported to the 4.9-5.10 stable
   series in 2022).  From Linux 6.5 ("netfilter: nat: evict closing tcp entries on reply
   tuple collision"), when at most NF_NAT_HARDER_THRESH (32) attempts are left in a run, a
   TCP SYN may take a tuple held by a TIME_WAIT or CLOSE conntrack that was SNATed, if the
   new ISN is "after" the old entry's last sequence number (``nf_nat_used_tuple_harder``,
   ``nf_nat_may_kill``, ``nf_seq_has_advanced``).  Before 5.17 the search walked the whole
   range from a per-protocol rover (plain) or a random start (``--random-fully``).
5. nothing free: the kernel keeps a clashing tuple and ``__nf_conntrack_confirm`` drops the
   packet (``insert_failed`` and ``drop`` in ``conntrack -S``).

"Taken" is per translated 5-tuple (``nf_nat_used_tuple`` looks up the reply tuple), so a
public port in use towards another destination does not block.  Holds after a flow ends are
conntrack's timeouts (``nf_conntrack_proto_tcp.c``, ``nf_conntrack_proto_udp.c``,
Documentation/networking/nf_conntrack-sysctl.rst).  A SYN on the same inside 4-tuple as a
TIME_WAIT or CLOSE conntrack reopens it (``nf_conntrack_tcp_packet``: the old entry is
killed and the packet seen as new); a UDP packet on the inside tuple of a held UDP entry
uses that entry again.

Occupancy is a ``bytearray`` per (protocol, public address, destination) indexed by port,
searched with ``find``; holds are fixed per close kind, so they end from FIFO queues.
"""

from __future__ import annotations

import math
import socket
from collections import deque
from hashlib import blake2b
from typing import TYPE_CHECKING, Any, ClassVar

from sim.nat.base import (
    FIN,
    IDLE,
    INSERT_FAILED,
    NO_FREE_TUPLE,
    RST,
    UDP,
    DestinationUse,
    FlowKey,
    Gateway,
    GatewayConfig,
    Mapping,
    destination_label,
)
from sim.nat_kinds import default_of
from sim.ports.linux import parse_kernel

if TYPE_CHECKING:
    from sim.randomness import Stream

LIVE, CLOSING, GONE = 1, 2, 0
MAX_ATTEMPTS = 128  # NF_NAT_MAX_ATTEMPTS
HARDER_THRESH = MAX_ATTEMPTS // 4  # NF_NAT_HARDER_THRESH
FIRST_RUNS_KERNEL = (5, 17)  # bounded probe runs, random start (rovers removed)
FIRST_EVICT_KERNEL = (6, 5)  # evict closing TCP entries in the last attempts
UDP_STREAM_AFTER_S = 2.0  # a replied UDP flow still active after 2 s is a stream

# conntrack timeouts in seconds (net.netfilter.nf_conntrack_*_timeout_* defaults)
CONNTRACK_DEFAULTS: dict[str, float] = {
    "time_wait": default_of("linux-masquerade", "hold_fin"),  # tcp_timeout_time_wait
    "close": default_of("linux-masquerade", "hold_rst"),  # tcp_timeout_close: an RST
    "established": default_of("linux-masquerade", "idle_timeout"),  # 5 days
    "close_wait": 60.0,  # tcp_timeout_close_wait
    "udp": 30.0,  # udp_timeout
    "udp_stream": 120.0,  # udp_timeout_stream
}


def port_class(port: int) -> tuple[int, int]:
    """The range a port is remapped in when the rule names no ports
    (``nf_nat_l4proto_unique_tuple``): privileged ports stay privileged."""
    if port < 512:
        return 1, 511
    if port < 1024:
        return 600, 1023
    return 1024, 65535


def _rol32(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & 0xFFFFFFFF


def jhash2(words: tuple[int, ...], initval: int) -> int:
    """``jhash2(k, length, initval)`` (include/linux/jhash.h: Bob Jenkins' lookup3): mix
    three words at a time while more than three are left, add the last one to three, then
    the final avalanche."""
    m = 0xFFFFFFFF
    a = b = c = (0xDEADBEEF + (len(words) << 2) + initval) & m
    k = list(words)
    while len(k) > 3:
        a = (a + k[0]) & m
        b = (b + k[1]) & m
        c = (c + k[2]) & m
        a, b, c = _mix(a, b, c)
        k = k[3:]
    if not k:
        return c
    a = (a + k[0]) & m
    if len(k) > 1:
        b = (b + k[1]) & m
    if len(k) > 2:
        c = (c + k[2]) & m
    return _final(a, b, c)


def _mix(a: int, b: int, c: int) -> tuple[int, int, int]:
    """``__jhash_mix``."""
    m = 0xFFFFFFFF
    a = ((a - c) & m) ^ _rol32(c, 4)
    c = (c + b) & m
    b = ((b - a) & m) ^ _rol32(a, 6)
    a = (a + c) & m
    c = ((c - b) & m) ^ _rol32(b, 8)
    b = (b + a) & m
    a = ((a - c) & m) ^ _rol32(c, 16)
    c = (c + b) & m
    b = ((b - a) & m) ^ _rol32(a, 19)
    a = (a + c) & m
    c = ((c - b) & m) ^ _rol32(b, 4)
    b = (b + a) & m
    return a, b, c


def _final(a: int, b: int, c: int) -> int:
    """``__jhash_final``: c is the hash."""
    m = 0xFFFFFFFF
    c = ((c ^ b) - _rol32(b, 14)) & m
    a = ((a ^ c) - _rol32(c, 11)) & m
    b = ((b ^ a) - _rol32(a, 25)) & m
    c = ((c ^ b) - _rol32(b, 16)) & m
    a = ((a ^ c) - _rol32(c, 4)) & m
    b = ((b ^ a) - _rol32(a, 14)) & m
    return ((c ^ b) - _rol32(b, 24)) & m


def _raw_word(address: str) -> int:
    """An IPv4 address as the kernel reads ``(u32 *)&u3`` on a little-endian CPU: the
    network-order bytes taken as a host integer."""
    return int.from_bytes(socket.inet_aton(address), "little")


def address_index(source: str, destination: str, n: int, persistent: bool = False) -> int:
    """Which of ``n`` consecutive SNAT addresses a (source, destination) pair uses:
    ``find_best_ips_proto`` for IPv4, ``minip + reciprocal_scale(j, n)`` with ``j`` the
    jhash2 of the inside source as the whole ``union nf_inet_addr`` (four words, the IPv4
    address in the first), seeded by the destination's first word (0 with
    ``--persistent``).  Checked against Linux 6.18 (tests/kernel/test_snat_address.py)."""
    if n == 1:
        return 0
    seed = 0 if persistent else _raw_word(destination)
    j = jhash2((_raw_word(source), 0, 0, 0), seed)
    return (j * n) >> 32


class LinuxFlow(FlowKey):
    """A route's flows through a Linux gateway, with what every connect of it would
    otherwise look up: its destination key and pools, its public address (by the hash of
    source and destination, fixed per route) and the number of its inside tuple."""

    __slots__ = ("confirm", "dkey", "fast_floor", "fast_pool", "index", "inner", "pools")

    dkey: tuple[str, str, int]  # (protocol, destination, destination port)
    pools: list[Pool | None] | None  # the destination's pools, once the gateway has them
    index: int  # which public address (-1: not yet computed)
    inner: int  # the inside tuple without its port, numbered (LinuxMasquerade.inner_of)
    # with random_fully and bounded runs (the common case), the route's pool once known:
    # a connect from a port >= ``fast_floor`` then draws its start in it at once
    fast_pool: Pool | None
    fast_floor: int
    confirm: bool  # a TCP flow through a gateway with a confirm window: queued (pending)


class LinuxMapping(Mapping):
    """A conntrack entry's NAT side: its pool, state, inside tuple and hold end."""

    __slots__ = ("inner", "pool", "source_key", "state", "until")

    pool: Pool
    state: int
    # the inside tuple (protocol, member, inside port, destination, destination port) as a
    # number: its route's number << 16 | the inside port (LinuxMasquerade.inner_tuple)
    inner: int
    # (protocol, inside address, inside port): the bysource key; None with random_fully,
    # which never looks a source up
    source_key: tuple[str, str, int] | None
    until: float


class Pool:
    """Translated ports of one (protocol, public address, destination), indexed by port:
    ``cells`` is 0 where the tuple is free, ``live`` 1 where a live conntrack holds it
    (the rest of the held ones are closing: TIME_WAIT, CLOSE or a UDP hold)."""

    __slots__ = ("address", "cells", "closing", "held", "live", "peak", "udp", "use")

    def __init__(self, address: str, use: DestinationUse, udp: bool) -> None:
        self.address = address
        self.udp = udp  # its protocol is UDP (else TCP)
        self.use = use  # the destination's held count, over every address
        self.cells = bytearray(65536)
        self.live = bytearray(65536)
        # port -> its closing entry: built the first time an eviction search needs it
        # (LinuxMasquerade._closing_of), kept from then on; most pools never need it
        self.closing: dict[int, LinuxMapping] | None = None
        # tuples held at this address and their peak: netfilter never spills a flow to
        # another address, so with several the busiest fills first (summary)
        self.held = 0
        self.peak = 0


def _scan(cells: bytearray, lo: int, size: int, off: int, i0: int, i1: int) -> int:
    """First i in [i0, i1) whose port ``lo + ((off + i) & 0xFFFF) % size`` has a 0 cell, or
    -1: the kernel's probe ``for (i...; off++) port = min + off % range_size`` with a u16
    ``off``, in at most four ``find`` calls (a u16 wrap, then a ring wrap each)."""
    if i0 >= i1:
        return -1
    v0, v1 = off + i0, off + i1
    if v0 >= 65536:
        v0 -= 65536
        v1 -= 65536
    if v1 <= 65536:  # the common case: no u16 wrap in this window
        return _ring(cells, lo, size, v0 % size, i1 - i0, i0)
    first = _ring(cells, lo, size, v0 % size, 65536 - v0, i0)
    if first >= 0:
        return first
    return _ring(cells, lo, size, 0, v1 - 65536, i0 + 65536 - v0)


def _ring(cells: bytearray, lo: int, size: int, start: int, length: int, i: int) -> int:
    """First free of ``length`` ring positions from ``start`` (i numbers the first), or -1."""
    end = start + length
    found = cells.find(0, lo + start, lo + (end if end < size else size))
    if found >= 0:
        return i + found - lo - start
    if end > size:
        found = cells.find(0, lo, lo + end - size)
        if found >= 0:
            return i + size - start + found - lo
    return -1


def _head_time(queue: deque[LinuxMapping]) -> float:
    return queue[0].until


class LinuxMasquerade(Gateway):
    """``iptables -t nat -j MASQUERADE`` (one address) or ``-j SNAT --to-source a-b``."""

    kind: ClassVar[str] = "linux-masquerade"
    defaults: ClassVar[dict[str, Any]] = {
        "random_fully": False,  # NF_NAT_RANGE_PROTO_RANDOM_FULLY (--random-fully)
        "persistent": False,  # NF_NAT_RANGE_PERSISTENT: the address hash ignores the destination
        "kernel": "6.18",  # which nf_nat_core.c: runs from 5.17, eviction from 6.5
        "conntrack": {},  # timeouts overriding CONNTRACK_DEFAULTS
        # how long a new conntrack stays unconfirmed (invisible to other CPUs' NAT searches)
        # between the NAT hook and __nf_conntrack_confirm; 0 disables the race.  Measured
        # on Linux 6.18.44 (docs/nat-kernel-check.md): SYNs clashed when 0-5.5 us apart in
        # one run, 6.7 us in another on a busier machine; 10 us covers both.  The window
        # depends on the machine and its load, hence a parameter
        "confirm_window": 10e-6,
        # inferred: the chance a new SYN's ISN is "after" the old entry's last sequence
        # (nf_seq_has_advanced): ISNs of different inside 4-tuples carry independent keyed
        # offsets (secure_tcp_seq, net/core/secure_seq.c), so about half
        "evict_seq_advanced": 0.5,
    }

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        opts = super().check_options(options)
        conntrack = opts["conntrack"]
        if not isinstance(conntrack, dict):
            raise ValueError("conntrack: a table of timeouts in seconds")
        for key, value in conntrack.items():
            if key not in CONNTRACK_DEFAULTS:
                raise KeyError(f"conntrack.{key}")
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"conntrack.{key}: a number of seconds >= 0")
        for key in ("random_fully", "persistent"):
            if not isinstance(opts[key], bool):
                raise ValueError(f"{key}: true or false")
        parse_kernel(str(opts["kernel"]))
        for key, top in (("confirm_window", math.inf), ("evict_seq_advanced", 1.0)):
            value = opts[key]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{key}: a number")
            if not 0 <= value <= top:
                raise ValueError(f"{key}: between 0 and {top}")
        return opts

    def __init__(self, config: GatewayConfig, stream: Stream) -> None:
        super().__init__(config, stream)
        opts = self.check_options(dict(config.options))
        self.random_fully: bool = opts["random_fully"]
        self.persistent: bool = opts["persistent"]
        self.kernel_version = parse_kernel(str(opts["kernel"]))
        self.runs = self.kernel_version >= FIRST_RUNS_KERNEL
        # --random-fully with bounded runs: no bysource, no preservation, a random start
        self.fully_runs = self.random_fully and self.runs
        self.evict = self.kernel_version >= FIRST_EVICT_KERNEL
        self.timeouts = {**CONNTRACK_DEFAULTS, **opts["conntrack"]}
        # a TCP close kind's hold, looked up once per release
        self.tcp_holds = {
            FIN: self.timeouts["time_wait"],
            RST: self.timeouts["close"],
            IDLE: 0.0,  # the entry timed out: nothing is left to hold
        }
        self.window = float(opts["confirm_window"])
        self.seq_advanced = float(opts["evict_seq_advanced"])
        # the ISN comparison's outcome is fixed per (new flow, old entry): a retransmitted
        # SYN carries the same ISN and meets the same verdict (see _seq_has_advanced)
        self.isn_salt = int(self.stream.uniform() * 2**53)
        self.syn_inner = -1  # the inside tuple (numbered) of the SYN being placed
        # inside tuples without their port, numbered in order of first use: a conntrack
        # entry's inside tuple is a number (number << 16 | port), hashed as an int
        self.inner_numbers: dict[tuple[str, int, str, str, int], int] = {}
        self.inner_tuples: list[tuple[str, int, str, str, int]] = []
        self.first_source: dict[int, str] = {}  # each inside host's first source address
        self.port_range = config.port_range
        lo, hi = config.port_range or (1024, 65535)  # (an ephemeral port's class)
        self.fully_range = (lo, hi - lo + 1)
        self.n_addresses = len(self.addresses)
        self.pools: dict[tuple[str, str, int], list[Pool | None]] = {}
        self.bysource: dict[tuple[str, str, int], LinuxMapping] = {}
        self.address_of: dict[tuple[str, str], int] = {}  # (source, destination) -> address
        self.closed_inner: dict[int, LinuxMapping] = {}
        # closing entries by hold length, each queue in the order of their ends (``until``):
        # an entry is queued once (a revived UDP entry goes on as a new object, _revive)
        self.queues: dict[float, deque[LinuxMapping]] = {}
        self.due = math.inf
        # entries not yet confirmed, in the order they were made (each its born, pool, port)
        self.pending: deque[LinuxMapping] = deque()
        self.rovers = {"tcp": 0, "udp": 0}  # before 5.17: per-protocol rover
        self.evicted = self.reopened = self.reused_udp = 0

    # -- the hot path ------------------------------------------------------------------
    def flow_key(
        self, protocol: str, member: int, source: str, destination: str, destination_port: int
    ) -> LinuxFlow:
        flow = LinuxFlow(protocol, member, source, destination, destination_port)
        flow.dkey = (protocol, destination, destination_port)
        flow.pools = None
        flow.index = -1
        flow.fast_pool = None
        # (``--to-ports`` given, or else only from an unprivileged port: its class's range)
        flow.fast_floor = 0 if self.port_range else 1024
        flow.confirm = self.window > 0 and protocol == "tcp"
        flow.inner = self.inner_of(protocol, member, source, destination, destination_port)
        return flow

    def inner_of(
        self, protocol: str, member: int, source: str, destination: str, destination_port: int
    ) -> int:
        """The number of an inside tuple without its port, shifted for the port.  The
        source address is part of it: a host with several addresses has a conntrack
        entry per address for the same port and destination."""
        key = (protocol, member, source, destination, destination_port)
        number = self.inner_numbers.get(key)
        if number is None:
            number = self.inner_numbers[key] = len(self.inner_tuples)
            self.inner_tuples.append(key)
            self.first_source.setdefault(member, source)
        return number << 16

    def inner_tuple(self, inner: int) -> tuple[str | int, ...]:
        """The inside tuple of a number, as (protocol, member, port, destination, port),
        then the source address if it is not the host's first (so the eviction draws of
        hosts with one address, keyed by this tuple, are those they always were)."""
        protocol, member, source, destination, destination_port = self.inner_tuples[inner >> 16]
        tail = () if source == self.first_source[member] else (source,)
        return protocol, member, inner & 0xFFFF, destination, destination_port, *tail

    def translate(
        self,
        now: float,
        protocol: str,
        member: int,
        source: str,
        source_port: int,
        destination: str,
        destination_port: int,
    ) -> Mapping | str:
        flow = self.flow_key(protocol, member, source, destination, destination_port)
        return self.translate_flow(flow, now, source_port)

    def translate_flow(self, flow: FlowKey, now: float, source_port: int) -> Mapping | str:
        if now >= self.due:
            self.settle(now)
        route: LinuxFlow = flow  # type: ignore[assignment]
        counters = self.counters
        counters.attempted += 1
        inner = route.inner | source_port
        if self.closed_inner:
            old = self.closed_inner.get(inner)
            if old is not None:
                if route.protocol == "udp":  # the held entry carries the new packets
                    self.reused_udp += 1
                    counters.succeeded += 1
                    return self._revive(old)
                self._end(old, now)  # a SYN on a closing 4-tuple reopens: old entry killed
                self.reopened += 1
        pending = self.pending
        hidden = None
        if pending:
            if pending[-1].born > now - self.window:  # some are still unconfirmed
                hidden = self._hide_unconfirmed(now)
            else:
                pending.clear()
        pool = route.fast_pool
        if pool is not None and source_port >= route.fast_floor:
            # (``_choose`` and the first probe of ``_runs``, inlined: the common case)
            lo, size = self.fully_range
            off = int(self.stream.uniform() * 65536)  # get_random_u16()
            port = lo + off % size
            if pool.cells[port]:
                self.syn_inner = inner  # read by _harder, for the eviction verdict
                port = self._runs(pool, lo, size, route.protocol, now, off)
        else:
            self.syn_inner = inner
            pools = route.pools
            if pools is None:
                pools = self.pools.get(route.dkey)
                if pools is None:
                    pools = self.pools[route.dkey] = [None] * self.n_addresses
                route.pools = pools
            pool, port = self._choose(pools, route, source_port, now)
            if self.fully_runs:  # the route's pool is known from now on
                route.fast_pool = pool
        if hidden:
            for p, q in hidden:
                p.cells[q] = LIVE
                p.live[q] = 1
            if port >= 0 and (pool, port) in hidden:
                counters.drop(INSERT_FAILED)  # both confirm this tuple: the later one loses
                return INSERT_FAILED
        if port < 0:
            counters.drop(NO_FREE_TUPLE)
            return NO_FREE_TUPLE
        entry = object.__new__(LinuxMapping)
        entry.address = pool.address
        entry.port = port
        entry.born = now
        entry.pool = pool
        entry.state = LIVE
        entry.inner = inner
        pool.cells[port] = LIVE
        pool.live[port] = 1
        pool.use.take(now)
        held = pool.held + 1
        pool.held = held
        if held > pool.peak:
            pool.peak = held
        if self.random_fully:  # the bysource lookup is skipped (_choose): nothing to keep
            entry.source_key = None
        else:
            entry.source_key = key = (route.protocol, route.source, source_port)
            self.bysource[key] = entry
        if route.confirm:
            pending.append(entry)
        counters.succeeded += 1
        return entry

    def _choose(
        self, pools: list[Pool | None], route: LinuxFlow, source_port: int, now: float
    ) -> tuple[Pool, int]:
        """``get_unique_tuple``: (pool, port), port -1 when nothing is free."""
        if self.port_range is not None:
            lo, hi = self.port_range
        elif source_port >= 1024:  # port_class of an ephemeral port, without the call
            lo, hi = 1024, 65535
        else:
            lo, hi = port_class(source_port)
        keep = not self.random_fully
        dkey = route.dkey
        if keep:
            m = self.bysource.get((route.protocol, route.source, source_port))
            if m is not None and (self.port_range is None or lo <= m.port <= hi):
                p = self._pool(pools, dkey, self.addresses.index(m.address), now)
                if not p.cells[m.port]:
                    return p, m.port
        index = route.index
        if index < 0:  # stable per (source, destination): computed once per pair
            if self.n_addresses == 1:
                index = 0
            else:
                pair = (route.source, route.destination)
                index = self.address_of.get(pair, -1)
                if index < 0:
                    n = self.n_addresses
                    index = self.address_of[pair] = address_index(
                        route.source, route.destination, n, self.persistent
                    )
            route.index = index
        pool = pools[index] or self._pool(pools, dkey, index, now)
        if keep and lo <= source_port <= hi:
            # a one-port range keeps the port even when taken (it then fails at confirm)
            if not pool.cells[source_port]:
                return pool, source_port
            if lo == hi:
                return pool, -1
        if self.runs:
            return pool, self._runs(pool, lo, hi - lo + 1, route.protocol, now)
        return pool, self._rover(pool, lo, hi - lo + 1, route.protocol)

    def _runs(
        self, pool: Pool, lo: int, size: int, protocol: str, now: float, off: int = -1
    ) -> int:
        """``nf_nat_l4proto_unique_tuple`` from 5.17: runs of 128, 64, 32, 16, 8 probes.
        ``off``: the first run's start if already drawn."""
        uniform = self.stream.uniform
        attempts = size if size < MAX_ATTEMPTS else MAX_ATTEMPTS
        harder = self.evict and protocol == "tcp"
        cells = pool.cells
        while True:
            if off < 0:
                off = int(uniform() * 65536)  # get_random_u16()
            plain = attempts - HARDER_THRESH if harder else attempts
            if plain > 0:
                # the first probe (i = 0) is free in the common case: answer it without
                # the window arithmetic of _scan (same port, same draws)
                port = lo + off % size
                if not cells[port]:
                    return port
                i = _scan(cells, lo, size, off, 1, plain)
                if i >= 0:
                    return lo + ((off + i) & 0xFFFF) % size
            else:
                plain = 0
            if plain < attempts:
                port = self._harder(pool, lo, size, off, plain, attempts, now)
                if port >= 0:
                    return port
            if attempts >= size or attempts < 16:
                return -1
            attempts //= 2
            off = -1

    def _harder(
        self, pool: Pool, lo: int, size: int, off: int, i: int, attempts: int, now: float
    ) -> int:
        """The last NF_NAT_HARDER_THRESH probes of a run (6.5+): a free tuple, or one held
        by a closing TCP entry whose sequence has been passed (evicted)."""
        live = pool.live
        while i < attempts:
            i = _scan(live, lo, size, off, i, attempts)
            if i < 0:
                return -1
            port = lo + ((off + i) & 0xFFFF) % size
            if not pool.cells[port]:
                return port
            closing = pool.closing
            if closing is None:
                closing = self._closing_of(pool)
            entry = closing.get(port)
            if entry is not None and self._seq_has_advanced(entry):
                self._end(entry, now)
                self.evicted += 1
                return port
            i += 1
        return -1

    def _closing_of(self, pool: Pool) -> dict[int, LinuxMapping]:
        """The closing entries of ``pool`` by port, indexed now and kept from now on: every
        closing entry waits in one hold queue (those ended early or revived are no longer
        CLOSING there), so none is missed."""
        pool.closing = {
            e.port: e
            for queue in self.queues.values()
            for e in queue
            if e.state == CLOSING and e.pool is pool
        }
        return pool.closing

    def _seq_has_advanced(self, entry: LinuxMapping) -> bool:
        """``nf_seq_has_advanced`` for the SYN being placed against a closing ``entry``:
        whether its ISN is "after" the old flow's last sequence.  ISNs of different inside
        4-tuples carry independent keyed offsets (secure_tcp_seq, net/core/secure_seq.c),
        so the answer is a fair draw with chance ``evict_seq_advanced`` -- but one draw per
        (flow, entry): a retransmission repeats its ISN and the entry's sequence end has
        not moved, so the kernel answers it the same (measured: a SYN refused once stays
        refused until the entry expires, docs/nat-kernel-check.md).  Hence a keyed hash of
        the pair rather than a fresh random number."""
        syn, old = self.inner_tuple(self.syn_inner), self.inner_tuple(entry.inner)
        key = repr((self.isn_salt, syn, old, entry.born)).encode()
        draw = int.from_bytes(blake2b(key, digest_size=8).digest(), "big") / 2**64
        return draw < self.seq_advanced

    def _rover(self, pool: Pool, lo: int, size: int, protocol: str) -> int:
        """Before 5.17: the whole range from the protocol's rover (random with the flag)."""
        off = self.stream.below(65536) if self.random_fully else self.rovers[protocol]
        i = _scan(pool.cells, lo, size, off, 0, size)
        if not self.random_fully:
            self.rovers[protocol] = (off + (i if i >= 0 else size - 1)) & 0xFFFF
        return -1 if i < 0 else lo + ((off + i) & 0xFFFF) % size

    def _hide_unconfirmed(self, now: float) -> list[tuple[Pool, int]]:
        """Tuples taken less than ``confirm_window`` ago are not yet in the conntrack hash:
        another flow's search cannot see them (kubernetes/kubernetes#56903)."""
        pending = self.pending
        edge = now - self.window
        while pending and pending[0].born <= edge:
            pending.popleft()
        hidden = []
        for entry in pending:
            pool, port = entry.pool, entry.port
            if pool.live[port]:
                pool.cells[port] = 0
                pool.live[port] = 0
                hidden.append((pool, port))
        return hidden

    # -- holds -------------------------------------------------------------------------
    def release(self, mapping: Mapping, now: float, close: str) -> None:
        entry: LinuxMapping = mapping  # type: ignore[assignment]
        if entry.state != LIVE:
            return
        if now >= self.due:
            self.settle(now)
        if entry.pool.udp:
            stream = now - entry.born > UDP_STREAM_AFTER_S
            hold = self.timeouts["udp_stream"] if stream else self.timeouts["udp"]
        else:
            hold = self.tcp_holds.get(close, -1.0)
            if hold < 0:
                raise ValueError(f"unknown close kind {close!r}")
        if hold <= 0:
            self._end(entry, now)
            return
        pool = entry.pool
        port = entry.port
        entry.state = CLOSING
        entry.until = end = now + hold
        pool.cells[port] = CLOSING
        pool.live[port] = 0
        if pool.closing is not None:
            pool.closing[port] = entry
        self.closed_inner[entry.inner] = entry
        queue = self.queues.get(hold)
        if queue is None:
            queue = self.queues[hold] = deque()
        queue.append(entry)
        if end < self.due:
            self.due = end

    def hold_after(self, close: str, lifetime: float) -> float:
        if close == UDP:  # (as release: a flow still active after 2 s is a stream)
            stream = lifetime > UDP_STREAM_AFTER_S
            return self.timeouts["udp_stream"] if stream else self.timeouts["udp"]
        return self.tcp_holds.get(close, 0.0)

    def drop_flows(self) -> None:
        for pools in self.pools.values():
            for pool in pools:
                if pool is not None and pool.closing is not None:
                    pool.closing.clear()
        for holder in (self.bysource, self.closed_inner, self.queues, self.pending):
            holder.clear()

    def settle(self, now: float) -> None:
        """End the holds due by ``now`` in time order (a merge of the per-length FIFOs)."""
        if len(self.queues) == 1:  # one hold length so far: its FIFO is in time order
            for queue in self.queues.values():
                while queue and queue[0].until <= now:
                    entry = queue.popleft()
                    if entry.state == CLOSING:  # (else ended early: evicted, reopened)
                        self._end(entry, entry.until)
                self.due = queue[0].until if queue else math.inf
            return
        queues = [q for q in self.queues.values() if q]
        while queues:
            head = min(queues, key=_head_time) if len(queues) > 1 else queues[0]
            entry = head[0]
            end = entry.until
            if end > now:
                self.due = end
                return
            head.popleft()
            if entry.state == CLOSING:
                self._end(entry, end)
            if not head:
                queues.remove(head)
        self.due = math.inf

    def _end(self, entry: LinuxMapping, now: float) -> None:
        """The conntrack entry is gone at ``now``: its translated tuple is free."""
        entry.state = GONE
        pool = entry.pool
        port = entry.port
        pool.cells[port] = 0
        pool.live[port] = 0
        closing = pool.closing
        if closing is not None and closing.get(port) is entry:
            del closing[port]
        if self.closed_inner.get(entry.inner) is entry:
            del self.closed_inner[entry.inner]
        key = entry.source_key
        if key is not None and self.bysource.get(key) is entry:
            del self.bysource[key]
        pool.use.give(now)
        pool.held -= 1

    def _revive(self, entry: LinuxMapping) -> LinuxMapping:
        """A held UDP entry carries a new flow on the same inside tuple: it goes on as a
        new object (same tuple, same birth), so that the old one, still in its hold's
        queue, is skipped there (each queued object is released once)."""
        revived = object.__new__(LinuxMapping)
        for name in ("address", "port", "born", "pool", "inner", "source_key"):
            setattr(revived, name, getattr(entry, name))
        revived.state = LIVE
        entry.state = GONE  # (its tuple stays held: by the revived entry)
        pool = entry.pool
        pool.cells[entry.port] = LIVE
        pool.live[entry.port] = 1
        if pool.closing is not None:
            del pool.closing[entry.port]
        del self.closed_inner[entry.inner]
        key = entry.source_key
        if key is not None and self.bysource.get(key) is entry:
            self.bysource[key] = revived
        return revived

    # -- pools -------------------------------------------------------------------------
    def _pool(
        self, pools: list[Pool | None], dkey: tuple[str, str, int], index: int, now: float
    ) -> Pool:
        pool = pools[index]
        if pool is None:
            pool = pools[index] = Pool(self.addresses[index], self.use(dkey, now), dkey[0] == "udp")
        return pool

    # -- reporting ---------------------------------------------------------------------
    def _busiest_address(self, worst: str | None) -> dict[str, Any] | None:
        """With several addresses, the one whose tuples to the worst destination peaked
        highest: its own share fills first (no spill-over), so the pressure over all of
        them understates how close it came."""
        if self.n_addresses < 2 or worst is None:
            return None
        for dkey, pools in self.pools.items():
            if destination_label(dkey) == worst:
                top = max((p for p in pools if p is not None), key=lambda p: p.peak)
                return {"address": top.address, "peak": top.peak / self.ports()}
        return None

    def ports(self) -> int:
        """The ``--to-ports`` range size, else the [1024, 65535] class (64,512 ports):
        inside hosts' ephemeral ports are unprivileged."""
        lo, hi = self.port_range or (1024, 65535)
        return hi - lo + 1

    def summary(self, until: float) -> dict[str, Any]:
        out = super().summary(until)
        dropped = self.counters.dropped
        out["random_fully"] = self.random_fully
        out["kernel"] = ".".join(map(str, self.kernel_version))
        out["conntrack"] = dict(self.timeouts)
        # as `conntrack -S` counts them: a dropped SYN fails at confirm (nf_ct_resolve_clash)
        out["conntrack_stats"] = {
            "insert": self.counters.succeeded - self.reused_udp,
            "insert_failed": dropped,
            "drop": dropped,
        }
        busiest = self._busiest_address(out["pressure"]["worst_destination"])
        if busiest is not None:
            out["pressure"]["busiest_address"] = busiest
        out["closing_evicted"] = self.evicted
        out["reopened"] = self.reopened
        return out


class K8sNode(LinuxMasquerade):
    """A Kubernetes node's pod SNAT: MASQUERADE with kube-proxy's conntrack settings
    (``pkg/proxy/apis/config/v1alpha1/defaults.go``: TCP established 24 h, close-wait 1 h)
    and ``--random-fully``, which kube-proxy and the kubelet add to their MASQUERADE rules
    when iptables supports it (``pkg/proxy/iptables/proxier.go``,
    ``pkg/kubelet/kubelet_network_linux.go``), as do the CNIs that masquerade pod egress
    (flannel-io/flannel#1040; the AWS VPC CNI's ``AWS_VPC_K8S_CNI_RANDOMIZESNAT=prng``)."""

    kind: ClassVar[str] = "k8s-node"
    defaults: ClassVar[dict[str, Any]] = {
        **LinuxMasquerade.defaults,
        "random_fully": True,
        "conntrack": {"established": default_of(kind, "idle_timeout"), "close_wait": 3600.0},
    }

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        merged = dict(options)
        if "conntrack" in merged and isinstance(merged["conntrack"], dict):
            merged["conntrack"] = {**cls.defaults["conntrack"], **merged["conntrack"]}
        return super().check_options(merged)
