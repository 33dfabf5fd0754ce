"""A channel: one load's connections from one host, one source address, to one destination.

The channel holds what is fixed for those connections (the pools they take ports from, the
bound attempt, the Linux connect() scan, the TIME_WAIT length, queue and timer, whether
tcp_tw_reuse applies) and their counters; the host (``sim.host``) runs the attempts.
"""

from __future__ import annotations

import math
from collections import deque
from functools import partial
from typing import TYPE_CHECKING

from sim.metrics import TRACKED_POOLS, PortUse
from sim.nat.route import Route
from sim.ports.linux import Scanner, SelectCall, connect_selector

if TYPE_CHECKING:
    from collections.abc import Callable

    from sim.config.types import Destination
    from sim.host import Host
    from sim.sockets import Socket


def never() -> float:
    """The lifetime of a preloaded connection's channel: it never opens one itself."""
    return math.inf


def _no_selector(now: float) -> tuple[int, int]:
    """A channel whose host has no Linux connect() scan (UDP, or another policy)."""
    raise RuntimeError("this channel's host does not run the Linux connect() scan")


NO_SCANNER = SelectCall(_no_selector)


class _NoTimeWait(deque):
    """The TIME_WAIT queue of a channel that holds none: appending is a bug."""

    def append(self, item: object) -> None:
        raise RuntimeError("this channel holds no TIME_WAIT")


NO_TIME_WAIT: deque[Socket] = _NoTimeWait()


class Tally:
    """The outcomes of every connect() of one host, or of one fleet's members, kept as
    they happen: a bin's end reads one per host instead of summing its channels (a fleet
    of 1,000 members has 1,000 channels per destination, each a cache miss to read)."""

    __slots__ = ("failed", "succeeded")

    def __init__(self) -> None:
        self.succeeded = 0
        self.failed = 0


class ChannelConnectionSlots:
    """The slots of :class:`Channel` that every connection reads, first in memory (see
    ``sim.host.HostConnectionSlots``): a fleet has one channel per member and destination,
    each touched rarely."""

    __slots__ = (
        "addr",
        "attempted",
        "close",
        "holds_time_wait",
        "host",
        "lifetime",
        "pass1_probes",
        "pool",
        "reuse_tw",
        "route",
        "scanner",
        "succeeded",
        "tally",
        "tw_queue",
        "tw_timer",
    )


class Channel(ChannelConnectionSlots):
    """One load's connections from one host and source address to one destination, with
    their counters; ``attempt`` is bound to the host's attempt that fits them (the hot path)."""

    __slots__ = (
        "attempt",
        "connecting",
        "dest",
        "dest_pool",
        "failed",
        "failed_by_error",
        "first_failure",
        "index",
        "key",
        "label",
        "name",
        "protocol",
        "share",
        "socket",
        "source",
        "step1",
        "sub",
        "tw_hold",
        "tw_len",
    )

    def __init__(
        self,
        name: str,
        host: Host,
        dest: Destination,
        lifetime: Callable[[], float],
        close: str,
        socket: str,
        protocol: str,
        local_port_range: tuple[int, int] | None,
        source: str | None = None,
        *,
        share: float = 1.0,
        index: int = -1,
    ) -> None:
        self.name = name
        self.index = index  # position among the model's channels (-1: the initial state's)
        self.share = share  # this channel's part of its load's arrivals (Erlang B)
        self.host = host
        self.dest = dest
        self.source = source = source or host.address
        self.addr = host.source_addresses.index(source)
        several = len(host.source_addresses) > 1 and protocol == "tcp"
        self.label = f"{source}->{dest.address}" if several else dest.address
        self.lifetime = lifetime
        self.close = close
        self.socket = socket
        self.protocol = protocol
        self.key = (source, dest.ip, dest.port)
        self.attempted = self.succeeded = self.failed = 0
        self.connecting = 0  # connects whose SYN a gateway dropped, not settled yet (sim.nat)
        self.tally = host.tally  # the host's (or its fleet's) outcomes, beside these
        self.failed_by_error: dict[str, int] = {}
        self.first_failure: float | None = None
        self.sub = host.sub_range(local_port_range)
        profile = host.profile  # (None: not Linux)
        self.step1 = self.sub is not None and profile is not None and profile.per_socket_step1
        bind = socket in ("bind", "bind_reuseaddr")
        span = self.sub[1] - self.sub[0] if self.sub else host.size
        # probes of a full first pass: half the (even-forced) range, or all of it for the
        # one-pass step-1 scans (6.8+ per-socket range, kernels up to 4.5)
        one_pass = self.step1 or (
            host.profile is not None and host.profile.generation in ("G0", "G1")
        )
        self.pass1_probes = span if one_pass or span == 1 else span // 2
        if bind:
            host.explicit_binds = True
        if protocol == "udp":
            # one UDP port space, or (FreeBSD 13+) one 4-tuple pool per destination
            udp = host.udp_table
            pool = host.udp_pool if udp is None else udp.pool(self.key, f"udp {self.label}")
            self.pool = self.dest_pool = pool
            host.udp_loads.append(self.label)
            connect = type(host).udp_attempt
        else:
            # the 4-tuple bookkeeping is per destination; what connect() may not use is that
            # pool under 4-tuple scope, or the host's port space under the others
            self.dest_pool = host.table.pool(self.key, self.label)
            # reuse metrics for the first pools only (the others keep None: no call per
            # connection; deciding again for a later channel gives the same answer, as
            # pools are only added)
            pools = len(host.table.pools)
            if self.dest_pool.use is None and host.track_reuse and pools <= TRACKED_POOLS:
                self.dest_pool.use = PortUse(host.size)
            if host.scope == "4tuple":
                self.pool = self.dest_pool
            elif host.scope == "local_address":
                self.pool = host.table.addr_pools[self.addr]
            else:
                self.pool = host.table.bind_pool
            if host.scope != "4tuple":
                host.share_label(self.label)
            if bind:
                connect = type(host).bound_connect
            elif host.linux:
                connect = type(host).autobind_connect
            else:
                connect = type(host).policy_connect
        # the host's attempt that fits these connections (a fleet member's may be its own)
        self.attempt = partial(connect, host, self)
        kernel = host.kernel  # (None: not Linux)
        self.scanner: Scanner = (
            connect_selector(self.pool.cells, host.layout, kernel, self.key, self.sub, self.step1)
            if kernel is not None and protocol == "tcp"
            else NO_SCANNER
        )
        loopback = dest.loopback or host.loopback
        self.tw_len = host.time_wait_for(dest)
        self.holds_time_wait = protocol == "tcp" and close == "client" and self.tw_len > 0
        self.tw_queue = host.tw_queue(self.tw_len) if self.holds_time_wait else NO_TIME_WAIT
        # the kernel's TIME_WAIT timer on the wheel's grid (sim/timerwheel.py), or None
        self.tw_timer = host.wheel_timer(self.tw_len) if self.holds_time_wait else None
        # mean TIME_WAIT held: the wheel adds half a bucket on average (sim/timerwheel.py)
        self.tw_hold = self.tw_len + (self.tw_timer.granularity_s / 2 if self.tw_timer else 0.0)
        tw_reuse = host.tw_reuse
        # value 2: loopback only, by either end's address (tcp_twsk_unique)
        self.reuse_tw = (
            host.linux and host.timestamps and (tw_reuse == 1 or (tw_reuse == 2 and loopback))
        )
        # behind a NAT: connect() goes through the gateway (sim.nat.route), asynchronously
        self.route: Route | None = None
        gateway = host.gateway
        if gateway is not None:
            self.route = Route(
                host.env,
                self,
                connect,
                gateway,
                gateway.member(host),
                host.syn_schedule,
                host.connect_stats,
            )
            self.attempt = partial(self.route.connect, None)
