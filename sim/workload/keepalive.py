"""Keep-alive connection pools: requests borrow connections, new ones only when needed.

One pool per destination a load talks to, as HTTP clients keep one per host (Go's net/http
``MaxConnsPerHost``, urllib3's ``PoolManager``); with several source addresses its new
connections take them in turn.  A request
takes the most recently idled connection (LIFO: urllib3's ``ConnectionPool.QueueCls`` is a
``queue.LifoQueue``, and Go's Transport reuses its newest idle connection; this lets the
surplus connections of a quiet spell reach their idle timeout); if none is idle and fewer
than ``max_connections`` are open (or opening) it opens one; otherwise it waits in FIFO
order, or fails when the pool is configured to.  A connection is closed when it has been
idle for ``idle_timeout``, and after the request that reaches ``max_requests`` or ends
past ``max_lifetime``.  Who holds TIME_WAIT then is the load's ``close``.
"""

from __future__ import annotations

from collections import deque
from functools import partial
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from simpy import Environment

    from sim.channel import Channel
    from sim.config.types import KeepAlive
    from sim.sockets import Socket
    from sim.workload.flow import Flow


class Requests:
    """Request counters of one load (over all its pools), streamed: no per-request rows."""

    __slots__ = (
        "attempted",
        "connections",
        "failed",
        "failed_by",
        "opening",
        "succeeded",
        "wait_max",
        "wait_ms",
        "wait_sum",
        "waited",
        "waiting",
    )

    def __init__(self) -> None:
        self.attempted = self.succeeded = self.failed = self.waited = 0
        self.connections = 0  # connections opened
        self.waiting = 0  # requests queued now (a level)
        self.opening = 0  # requests whose connection is being opened (retries pending)
        # and, for pools behind a gateway (sim/nat), gateway_idle_timeout: the request went
        # out on a pooled connection the gateway had dropped for idleness
        self.failed_by = {"connect_error": 0, "pool_full": 0, "wait_timeout": 0}
        self.wait_sum = 0.0
        self.wait_max = 0.0
        self.wait_ms: dict[int, int] = {}  # served requests that waited, by whole ms

    def fail(self, reason: str) -> None:
        self.failed += 1
        self.failed_by[reason] += 1

    def served_after(self, wait: float) -> None:
        self.wait_sum += wait
        self.wait_max = max(self.wait_max, wait)
        ms = int(wait * 1000)
        if ms >= 1000:  # three significant digits above a second: bounded keys
            ms = round(ms, 3 - len(str(ms)))
        self.wait_ms[ms] = self.wait_ms.get(ms, 0) + 1


class Connection:
    __slots__ = ("born", "busy", "closed", "idle_since", "requests", "sock", "timer")

    def __init__(self, sock: Socket, now: float) -> None:
        self.sock = sock
        self.born = now
        self.busy = False
        self.closed = False
        self.idle_since = now
        self.requests = 0
        self.timer = False  # an idle-timeout event is pending (at most one per connection)


class Waiter:
    __slots__ = ("arrived", "done", "duration")

    def __init__(self, arrived: float, duration: float) -> None:
        self.arrived = arrived
        self.duration = duration
        self.done = False


class KeepAlivePool:
    """The connections of one load to one destination (over its source addresses)."""

    def __init__(
        self, env: Environment, spec: KeepAlive, channels: list[Channel], flow: Flow
    ) -> None:
        self.env = env
        self.spec = spec
        self.channels = channels
        self.turn = 0  # new connections take the source addresses in turn
        self.admitting = False
        self.flow = flow
        if flow.requests is None:
            raise ValueError("a keep-alive pool needs a flow that counts requests")
        self.stats: Requests = flow.requests
        self.limit = spec.max_connections
        self.tcp_keepalive = flow.spec.tcp_keepalive  # probe interval of idle connections
        if any(ch.route is not None for ch in channels):
            self.stats.failed_by.setdefault("gateway_idle_timeout", 0)
        self.open = 0  # open or opening
        self.idle: deque[Connection] = deque()  # most recently idled on the right
        self.queue: deque[Waiter] = deque()

    def request(self, duration: float) -> None:
        now = self.env.now
        self.stats.attempted += 1
        conn = self._idle_connection()
        if conn is not None:
            route = conn.sock.load.route
            if route is not None and not route.gateway.touch(conn.sock.mapping, now):
                # the gateway dropped the flow while it sat idle: the request fails on it
                self.stats.fail("gateway_idle_timeout")
                self._close(conn)
                self._admit_waiters()
                return
            self._serve(conn, duration, now)
        elif self.open < self.limit:
            self.open += 1
            self._open(Waiter(now, duration))
        elif self.spec.on_full == "fail":
            self.stats.fail("pool_full")
        else:
            waiter = Waiter(now, duration)
            self.queue.append(waiter)
            self.stats.waited += 1
            self.stats.waiting += 1
            if self.spec.wait_timeout is not None:
                self.env.timeout(self.spec.wait_timeout, waiter).callbacks.append(self._timed_out)

    # -- connections ---------------------------------------------------------------------
    def _open(self, waiter: Waiter) -> None:
        channels = self.channels
        channel = channels[self.turn % len(channels)]
        self.turn += 1
        self.stats.opening += 1
        self.flow.connect(channel, None, 1, partial(self._opened, waiter))

    def _opened(self, waiter: Waiter, sock: Socket | None) -> None:
        self.stats.opening -= 1
        if sock is None:  # refused (after any retries): the request fails
            self.open -= 1
            self.stats.fail("connect_error")
            self._admit_waiters()
            return
        self.stats.connections += 1
        self._serve(Connection(sock, self.env.now), waiter.duration, waiter.arrived)

    def _serve(self, conn: Connection, duration: float, arrived: float) -> None:
        now = self.env.now
        self.stats.succeeded += 1
        if now > arrived:
            self.stats.served_after(now - arrived)
        conn.busy = True
        conn.requests += 1
        self.env.timeout(duration, conn).callbacks.append(self._done)

    def _done(self, event) -> None:
        conn: Connection = event._value
        now = self.env.now
        conn.busy = False
        spec = self.spec
        if (spec.max_requests is not None and conn.requests >= spec.max_requests) or (
            spec.max_lifetime is not None and now - conn.born >= spec.max_lifetime
        ):
            self._close(conn)
            self._admit_waiters()
            return
        waiter = self._next_waiter()
        if waiter is not None:
            self._serve(conn, waiter.duration, waiter.arrived)
            return
        conn.idle_since = now
        self.idle.append(conn)
        route = conn.sock.load.route
        if route is not None:  # its gateway's idle timeout starts (unless keepalive probes)
            route.gateway.went_idle(conn.sock.mapping, now, self.tcp_keepalive)
        if not conn.timer:
            self._arm(conn, now)

    def _deadline(self, conn: Connection) -> float:
        """When an idle connection closes: idle timeout, or its age limit if sooner."""
        deadline = conn.idle_since + self.spec.idle_timeout
        if self.spec.max_lifetime is not None:
            deadline = min(deadline, conn.born + self.spec.max_lifetime)
        return deadline

    def _arm(self, conn: Connection, now: float) -> None:
        """One pending timer per connection, re-armed when it fires early: a timer per idle
        spell would pile up (rate x idle timeout events) on a busy pool."""
        conn.timer = True
        self.env.timeout(max(0.0, self._deadline(conn) - now), conn).callbacks.append(
            self._idle_check
        )

    def _idle_check(self, event) -> None:
        conn: Connection = event._value
        conn.timer = False
        if conn.closed or conn.busy:
            return  # busy: it re-arms when it is idle again
        now = self.env.now
        if self._deadline(conn) - now > 1e-9:  # used again since this timer was set
            self._arm(conn, now)
            return
        self._close(conn)
        idle = self.idle
        while idle and idle[0].closed:  # closed ones leave lazily, oldest first
            idle.popleft()

    def _idle_connection(self) -> Connection | None:
        idle = self.idle
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn
        return None

    def _close(self, conn: Connection) -> None:
        conn.closed = True
        self.open -= 1
        conn.sock.load.host.close(conn.sock)

    # -- waiting requests ----------------------------------------------------------------
    def _next_waiter(self) -> Waiter | None:
        queue = self.queue
        while queue:
            waiter = queue.popleft()
            if not waiter.done:
                waiter.done = True
                self.stats.waiting -= 1
                return waiter
        return None

    def _admit_waiters(self) -> None:
        """A connection closed or failed to open: queued requests may open their own.

        A loop, not recursion: an open refused at once comes back here (through
        ``_opened``), which must not nest once per queued request."""
        if self.admitting:
            return
        self.admitting = True
        try:
            while self.open < self.limit:
                waiter = self._next_waiter()
                if waiter is None:
                    return
                self.open += 1
                self._open(waiter)
        finally:
            self.admitting = False

    def _timed_out(self, event) -> None:
        waiter: Waiter = event._value
        if waiter.done:
            return
        waiter.done = True
        self.stats.waiting -= 1
        self.stats.fail("wait_timeout")
        queue = self.queue
        while queue and queue[0].done:  # timed-out ones leave lazily, oldest first
            queue.popleft()
