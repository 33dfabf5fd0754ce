"""The host: TCP and UDP sockets from connect() or bind() to close and TIME_WAIT's end.

Each connection is a chain of SimPy callbacks (attempt -> close -> TIME_WAIT end), not a
process: about twice as fast (engine-and-ecosystem.md §2.1).  Port choice is delegated to
the pure policies in ``sim.ports``; this module owns the states and their timing:

* close by the client: the client holds TIME_WAIT for ``time_wait`` (60 s on Linux,
  TCP_TIMEWAIT_LEN) unless ``tcp_max_tw_buckets`` TIME_WAIT sockets already exist, in which
  case the socket is destroyed at once (linux.md §3.1, §3.2, T4);
* close by the server: the peer holds TIME_WAIT, the client keeps nothing (§3.1);
* reset (SO_LINGER 0): no TIME_WAIT (§3.2, T8);
* ``tcp_tw_reuse``: a TIME_WAIT entry may be taken over by a new connect() to the same
  4-tuple once the reuse delay has passed, if the peer sent timestamps; value 2 applies to
  loopback only (§3.3, T2, T3).  The entry is marked usable at that moment, so the scan
  never needs to look at clocks.
* UDP: a connected socket holds its port for its lifetime, no TIME_WAIT (§6).
"""

from __future__ import annotations

import ipaddress
import math
from collections import deque
from functools import partial
from typing import TYPE_CHECKING

from simpy import Environment

from sim.ports.linux import (
    ConnectState,
    connect_selector,
    kernel_profile,
    select_bind,
    select_udp,
)
from sim.ports.table import BUSY, Layout, Pool, PortTable
from sim.presets import get_preset
from sim.randomness import Stream

if TYPE_CHECKING:
    from collections.abc import Callable

    from sim.recorder import Recorder
    from sim.scenario import Destination
    from sim.scenario import Host as HostSpec

ESTABLISHED, TIME_WAIT, TW_REUSABLE, CLOSED = 1, 2, 3, 0
UDP_STATIC = 2


class Socket:
    """One connection's state; lives from a successful attempt to the end of TIME_WAIT."""

    __slots__ = ("cell", "explicit", "k", "load", "pool", "state")

    def __init__(self, load: Load, pool: Pool, k: int, cell: int, explicit: bool) -> None:
        self.load = load
        self.pool = pool
        self.k = k
        self.cell = cell
        self.explicit = explicit
        self.state = ESTABLISHED


class Load:
    """A load bound to its host and destination, with its counters."""

    __slots__ = (
        "attempt",
        "attempted",
        "close",
        "dest",
        "failed",
        "failed_by_error",
        "first_failure",
        "holds_time_wait",
        "host",
        "key",
        "label",
        "lifetime",
        "name",
        "pool",
        "protocol",
        "reuse_tw",
        "select",
        "socket",
        "step1",
        "sub",
        "succeeded",
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
    ) -> None:
        self.name = name
        self.host = host
        self.dest = dest
        self.label = dest.address
        self.lifetime = lifetime
        self.close = close
        self.socket = socket
        self.protocol = protocol
        self.key = (host.address, dest.ip, dest.port)
        self.attempted = self.succeeded = self.failed = 0
        self.failed_by_error: dict[str, int] = {}
        self.first_failure: float | None = None
        self.sub = host.sub_range(local_port_range)
        self.step1 = self.sub is not None and host.profile.per_socket_step1
        if protocol == "udp":
            self.pool = host.udp_pool
            host.udp_loads.append(self.label)
        elif socket in ("bind", "bind_reuseaddr"):
            self.pool = host.table.pool(self.key, self.label)  # 4-tuple bookkeeping
        else:
            self.pool = host.table.pool(self.key, self.label)
        self.select = connect_selector(
            self.pool.cells, host.layout, host.kernel, self.key, self.sub, self.step1
        )
        if protocol == "udp":
            self.attempt = partial(host.udp_attempt, self)
        elif socket in ("bind", "bind_reuseaddr"):
            self.attempt = partial(host.bound_connect, self)
        else:
            self.attempt = partial(host.autobind_connect, self)
        self.holds_time_wait = protocol == "tcp" and close == "client" and host.time_wait > 0
        tw_reuse = host.tw_reuse
        # value 2: loopback only, by either end's address (linux.md §3.3)
        loopback = dest.loopback or ipaddress.ip_address(host.address).is_loopback
        self.reuse_tw = host.timestamps and (tw_reuse == 1 or (tw_reuse == 2 and loopback))


class Host:
    """One network namespace: its sysctls, port table, kernel state and sockets."""

    def __init__(
        self,
        env: Environment,
        spec: HostSpec,
        stream: Stream,
        recorder: Recorder,
        log: list[tuple] | None,
    ) -> None:
        preset = get_preset(spec.os)
        self.env = env
        self.spec = spec
        self.name = spec.name
        self.address = spec.address
        self.profile = kernel_profile(spec.kernel or preset.kernel or "6.18", spec.linux_generation)
        self.lo, self.hi = spec.port_range or self.profile.default_range
        self.size = self.hi - self.lo + 1
        self.time_wait = spec.time_wait if spec.time_wait is not None else preset.time_wait_s
        self.tw_reuse = (
            spec.tcp_tw_reuse if spec.tcp_tw_reuse is not None else self.profile.default_tw_reuse
        )
        self.tw_reuse_delay = spec.tcp_tw_reuse_delay
        self.max_tw = spec.tcp_max_tw_buckets
        self.timestamps = spec.tcp_timestamps
        self.table = PortTable(
            self.lo,
            self.hi,
            reserved=frozenset(spec.reserved_ports),
            listening=frozenset(spec.listening_ports),
            reset_on_release=self.profile.bucket_reset,
        )
        self.layout = self.table.layout
        self.kernel = ConnectState(self.profile.generation, stream)
        self.stream = stream
        self.rec = recorder
        self.log = log
        self.tw_count = 0
        self.tw_fifo: deque[tuple[float, Socket]] = deque()  # (expiry, socket), in order
        self.reuse_fifo: deque[tuple[float, Socket]] = deque()  # (reusable at, socket)
        self.tw_overflow = 0
        self.tw_recycled = 0
        self.udp_loads: list[str] = []
        self.udp_hash = spec.udp_hash_size
        self.udp_pool = self._udp_pool(frozenset(spec.reserved_ports))

    # -- setup helpers -------------------------------------------------------------------
    def _udp_pool(self, reserved: frozenset[int]) -> Pool:
        cells = bytearray([UDP_STATIC]) * 65536
        cells[self.lo : self.hi + 1] = bytes(self.size)
        for port in reserved:
            if self.lo <= port <= self.hi:
                cells[port] = UDP_STATIC
        pool = Pool(Layout(65536), f"udp {self.address}", cells)
        pool.unusable = pool.peak = pool.max_ever = self.size - cells.count(0)
        return pool

    def sub_range(self, rng: tuple[int, int] | None) -> tuple[int, int] | None:
        """IP_LOCAL_PORT_RANGE as offsets [a, b): each bound is used only if inside the
        namespace range, otherwise the namespace's bound stays (linux.md §5)."""
        if rng is None:
            return None
        lo = rng[0] if self.lo <= rng[0] <= self.hi else self.lo
        hi = rng[1] if self.lo <= rng[1] <= self.hi else self.hi
        if lo > hi:
            return None
        return lo - self.lo, hi - self.lo + 1

    def pools(self) -> list[Pool]:
        """Pools whose pressure is reported: one per destination for connect(), UDP if used.

        Ports taken by bind(0) show in every destination's pool as blocked, so a
        bind-before-connect load's pressure is its destination's pool too.
        """
        out = list(self.table.pools.values())
        if self.udp_loads:
            out.append(self.udp_pool)
        return out

    # -- attempts (each load calls the one that fits it: Load.attempt) -------------------
    def attempt(self, load: Load) -> None:
        """One connection attempt of ``load`` at the current time."""
        load.attempt()

    def autobind_connect(self, load: Load) -> None:
        """connect() on a fresh socket, or after bind(addr, 0) with IP_BIND_ADDRESS_NO_PORT."""
        load.attempted += 1
        now = self.env.now
        tw, reuse = self.tw_fifo, self.reuse_fifo
        if (tw and tw[0][0] <= now) or (reuse and reuse[0][0] <= now):
            self.settle(now)
        k, probes = load.select(now)
        if k < 0:
            self._fail(load, "EADDRNOTAVAIL", probes, now)
            return
        pool = load.pool
        table = self.table
        cell = table.take(k, now)
        tw = pool.tw_reusable.pop(cell, None) if pool.tw_reusable else None
        if tw is not None:  # recycle the TIME_WAIT entry of this 4-tuple (TWRecycled)
            tw.state = CLOSED
            table.release(k, now)
            self.tw_count -= 1
            self.tw_recycled += 1
            if self.log is not None:
                self._log(now, "time_wait_reused", self.lo + k, load, 0, "")
        pool.take(cell, BUSY, now)
        self._established(load, pool, k, cell, False, probes, now)

    def bound_connect(self, load: Load) -> None:
        """bind(addr, 0) [+ SO_REUSEADDR], then connect(): no scan, no perturbation update."""
        load.attempted += 1
        now = self.env.now
        tw, reuse = self.tw_fifo, self.reuse_fifo
        if (tw and tw[0][0] <= now) or (reuse and reuse[0][0] <= now):
            self.settle(now)
        k, probes = select_bind(
            self.table.bind_pool.cells,
            self.layout,
            self.stream,
            load.socket == "bind_reuseaddr",
            load.sub,
        )
        if k < 0:
            self._fail(load, "EADDRINUSE", probes, now)
            return
        cell = self.table.take_explicit(k, now)
        if self.log is not None:
            self._log(now, "bind", self.lo + k, load, probes, "")
        pool = load.pool
        # bind(0) never picks a port with an owner on this address, so the 4-tuple is free
        pool.take(cell, BUSY, now)
        self._established(load, pool, k, cell, True, probes, now)

    def udp_attempt(self, load: Load) -> None:
        """A connected UDP socket (or bind(0) then connect): autobind, no sharing."""
        load.attempted += 1
        now = self.env.now
        pool = self.udp_pool
        port, probes = select_udp(pool.cells, self.lo, self.hi, self.stream, self.udp_hash)
        if port < 0:
            error = "EAGAIN" if load.socket in ("connect", "bind_no_port") else "EADDRINUSE"
            self._fail(load, error, probes, now)
            return
        pool.take(port, BUSY, now)
        self._established(load, pool, port - self.lo, port, False, probes, now)

    def _established(
        self, load: Load, pool: Pool, k: int, cell: int, explicit: bool, probes: int, now: float
    ) -> None:
        load.succeeded += 1
        pool.established += 1
        rec = self.rec
        rec.probe_sum += probes
        rec.probe_hist[probes] += 1
        if probes > rec.bin_probe_max:
            rec.bin_probe_max = probes
        if self.log is not None:
            self._log(now, "connect", self.lo + k, load, probes, "")
        life = load.lifetime()
        if life != math.inf:
            sock = Socket(load, pool, k, cell, explicit)
            self.env.timeout(life, sock).callbacks.append(self._on_close)

    def _fail(self, load: Load, error: str, probes: int, now: float) -> None:
        load.failed += 1
        if load.first_failure is None:
            load.first_failure = now
        load.failed_by_error[error] = load.failed_by_error.get(error, 0) + 1
        if self.log is not None:
            self._log(now, "fail", None, load, probes, error)

    # -- closing -------------------------------------------------------------------------
    def _on_close(self, event) -> None:
        sock: Socket = event._value
        now = self.env.now
        tw, reuse = self.tw_fifo, self.reuse_fifo
        if (tw and tw[0][0] <= now) or (reuse and reuse[0][0] <= now):
            self.settle(now)
        load = sock.load
        pool = sock.pool
        pool.established -= 1
        if self.log is not None:
            self._log(now, "close", self.lo + sock.k, load, 0, "")
        if load.holds_time_wait:
            if self.tw_count < self.max_tw:
                sock.state = TIME_WAIT
                self.tw_count += 1
                pool.time_wait += 1
                self.tw_fifo.append((now + self.time_wait, sock))
                if load.reuse_tw and not sock.explicit:
                    at = self._reuse_time(now)
                    if at - now < self.time_wait:
                        self.reuse_fifo.append((at, sock))
                return
            self.tw_overflow += 1  # TCPTimeWaitOverflow: destroyed without TIME_WAIT
        sock.state = CLOSED
        self._free(sock, now, busy=True)

    def _reuse_time(self, entry: float) -> float:
        """When a TIME_WAIT entered at ``entry`` may first be reused (linux.md §3.3)."""
        rule = self.profile.tw_delay_rule
        if rule == "ms":  # 6.14+: now_ms > entry_ms + tcp_tw_reuse_delay
            return (math.floor(entry * 1000) + round(self.tw_reuse_delay * 1000) + 1) / 1000
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
        if not reuse:  # the common case: only expiries, already in time order
            end = self._time_wait_end
            if inclusive:
                while tw and tw[0][0] <= now:
                    end(*tw.popleft())
            else:
                while tw and tw[0][0] < now:
                    end(*tw.popleft())
            return
        while True:
            t_tw = tw[0][0] if tw else math.inf
            t_reuse = reuse[0][0] if reuse else math.inf
            t = t_tw if t_tw <= t_reuse else t_reuse
            if t > now or (t == now and not inclusive):
                return
            if t_reuse <= t_tw:
                self._reusable(*reuse.popleft())
            else:
                self._time_wait_end(*tw.popleft())

    def _reusable(self, at: float, sock: Socket) -> None:
        if sock.state != TIME_WAIT:
            return
        sock.state = TW_REUSABLE
        pool = sock.pool
        pool.time_wait -= 1
        pool.give(sock.cell, BUSY, at)
        pool.tw_reusable[sock.cell] = sock

    def _time_wait_end(self, at: float, sock: Socket) -> None:
        state = sock.state
        if state == CLOSED:
            return  # recycled by a new connection
        pool = sock.pool
        self.tw_count -= 1
        if state == TW_REUSABLE:
            del pool.tw_reusable[sock.cell]  # its cell is already usable
        else:
            pool.time_wait -= 1
        sock.state = CLOSED
        if self.log is not None:
            self._log(at, "time_wait_end", self.lo + sock.k, sock.load, 0, "")
        self._free(sock, at, busy=state != TW_REUSABLE)

    def _free(self, sock: Socket, now: float, *, busy: bool) -> None:
        """Release the socket's hold: its 4-tuple (if still marked) and its port owner."""
        if busy:
            sock.pool.give(sock.cell, BUSY, now)
        if sock.load.protocol == "udp":
            return
        if sock.explicit:
            self.table.release_explicit(sock.k, now)
        else:
            self.table.release(sock.k, now)

    def _log(
        self, now: float, event: str, port: int | None, load: Load, probes: int, error: str
    ) -> None:
        self.log.append(
            (now, self.name, self.address, event, load.protocol, port, load.label, probes, error)
        )
