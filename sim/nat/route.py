"""A channel's path through its host's gateway: connect() becomes asynchronous.

Without a gateway a connect() is settled at once (a port, or an error).  Behind one, the
host's kernel first picks the local port as always; then the SYN reaches the gateway,
which translates it or drops it.  A dropped SYN is retransmitted by the client on its SYN
schedule (``sim.syn``), each retransmission trying the gateway again, while the socket
holds its local port in SYN_SENT; after the last, connect() fails with ETIMEDOUT.  So the
outcome of an attempt may be known only seconds later: :meth:`Route.connect` takes a
``done(socket or None)`` callback, called when it is settled (at once when the first SYN
passes).  The connection's lifetime starts when it is established.

A UDP datagram the gateway drops is lost: the flow fails at once with ``no_reply`` (the
application only ever sees its own reply timeout; retries are the load's ``retry``).

Counters live on the channel as for every connect(): ``attempted`` when the host is asked,
``succeeded`` once established, ``failed`` with ``failed_by_error['ETIMEDOUT']``.
"""

from __future__ import annotations

import math
from heapq import heappush
from typing import TYPE_CHECKING

from simpy.events import NORMAL

from sim.nat.base import FIN, RST, UDP, Gateway, Mapping
from sim.quantiles import sparse_percentile
from sim.sockets import ESTABLISHED
from sim.wakeup import WakeUp, wake_up

if TYPE_CHECKING:
    from collections.abc import Callable

    from simpy import Environment

    from sim.channel import Channel
    from sim.host import Host
    from sim.sockets import Socket

    Done = Callable[[Socket | None], None]

# the socket's state while its SYN is unanswered (sim.sockets' states are 0..3)
SYN_SENT = 4
_new_wake_up = object.__new__
UDP_NO_REPLY = "no_reply"


class ConnectStats:
    """Connect latency over every connect() through a gateway (exact: latencies are the SYN
    schedule's offsets, so a count per distinct value), and the current bin's count of
    delayed connects (read and reset by the recorder)."""

    __slots__ = ("at_once", "bin_delayed", "bin_drops", "by_latency", "pending", "timed_out")

    def __init__(self) -> None:
        self.by_latency: dict[float, int] = {}  # latency -> connects (those of 0 s aside)
        self.at_once = 0  # connects through at their first SYN (latency 0), the most
        self.bin_delayed = 0
        self.bin_drops = 0
        self.timed_out = 0
        self.pending = 0  # connects in SYN_SENT now (at the end of a run: never settled)

    def new_bin(self) -> None:
        self.bin_drops = self.bin_delayed = 0

    def record(self, latency: float) -> None:
        if not latency:
            self.at_once += 1
            return
        self.by_latency[latency] = self.by_latency.get(latency, 0) + 1
        self.bin_delayed += 1

    def summary(self, immediate_elsewhere: int = 0) -> dict[str, float | int]:
        """mean, p50, p99, max of the latencies, counting ``immediate_elsewhere`` more
        connects of 0 s (those of hosts without a gateway)."""
        counts = dict(self.by_latency)
        if self.at_once or immediate_elsewhere:
            counts[0.0] = self.at_once + immediate_elsewhere
        n = sum(counts.values())
        pending = self.pending
        if not n:
            return {
                "connects": 0,
                "delayed": 0,
                "still_connecting_at_end": pending,
                "mean": 0.0,
                "p50": 0.0,
                "p99": 0.0,
                "max": 0.0,
            }
        mean = sum(v * c for v, c in counts.items()) / n
        return {
            "connects": n,
            "still_connecting_at_end": pending,
            "delayed": sum(c for v, c in counts.items() if v > 0),
            "mean": mean,
            "p50": sparse_percentile(counts, 0.50),
            "p99": sparse_percentile(counts, 0.99),
            "max": max(counts),
        }


class SynSent:
    """A connect() whose SYN was dropped: its socket, what to do when settled, and which
    timer of the schedule comes next."""

    __slots__ = ("done", "life", "next", "sock")

    def __init__(self, sock: Socket, life: float, done: Done | None) -> None:
        self.sock = sock
        self.life = life
        self.done = done
        self.next = 0


class Route:
    """One channel through one gateway (one per channel of a host with ``gateway``)."""

    __slots__ = (
        "channel",
        "close_kind",
        "env",
        "flow",
        "gateway",
        "host",
        "host_attempt",
        "protocol",
        "schedule",
        "stats",
    )

    def __init__(
        self,
        env: Environment,
        channel: Channel,
        host_attempt: Callable[[Host, Channel], Socket | None],
        gateway: Gateway,
        member: int,
        schedule: tuple[float, ...],
        stats: ConnectStats,
    ) -> None:
        self.env = env
        self.channel = channel
        self.gateway = gateway
        self.schedule = schedule
        self.stats = stats
        self.host = channel.host
        self.protocol = channel.protocol
        self.close_kind = (
            UDP if channel.protocol == "udp" else RST if channel.close == "reset" else FIN
        )
        # what the gateway is told of this route's flows, once (Gateway.flow_key)
        self.flow = gateway.flow_key(
            channel.protocol, member, channel.source, channel.dest.ip, channel.dest.port
        )
        # the host's own attempt (the channel's attempt becomes this route's connect); the
        # host schedules no close for a routed channel: the lifetime starts once established.
        # A function called with host and channel: no partial and bound method per route to
        # fetch from memory per connection (a fleet has many routes)
        self.host_attempt = host_attempt

    def connect(self, done: Done | None) -> Socket | None:
        """One connect(): ``done`` (if any) gets the socket or None when settled.  Returns
        the socket when established at once, else None (refused, dropped, or pending)."""
        channel = self.channel
        host = self.host
        sock = self.host_attempt(host, channel)
        if sock is None:  # the host refused (no local port): as without a gateway
            if done is not None:
                done(None)
            return None
        life = channel.lifetime()  # drawn now: a trace row's lifetime is the current row's
        env = self.env
        now = env._now
        # _translate, inlined: once per connection
        result = self.gateway.translate_flow(self.flow, now, host.lo + sock.k)
        if type(result) is not str:  # through at once: _open with latency 0, inlined
            sock.state = ESTABLISHED
            sock.mapping = result  # type: ignore[assignment]
            self.stats.at_once += 1
            if host.log is not None:
                self._log(now, "translated", sock, result, "")  # type: ignore[arg-type]
            if life != math.inf:  # wake_up(env, life, host._on_close, sock), inlined
                event = _new_wake_up(WakeUp)
                event.callbacks = host._close_callbacks
                event._value = sock
                event._ok = True
                heappush(env._queue, (now + life, NORMAL, next(env._eid), event))
            if done is not None:
                done(sock)
            return sock
        # dropped: the host counted an attempt and its success; the attempt is counted
        # again when settled (attempted = succeeded + failed; a connect still in SYN_SENT
        # at the end of the run is neither: ConnectStats.pending)
        channel.succeeded -= 1
        channel.tally.succeeded -= 1
        channel.attempted -= 1
        self.stats.bin_drops += 1
        if self.gateway.first_drop_s is None:
            self.gateway.first_drop_s = now
        if self.protocol == "udp":
            self._give_up(sock, UDP_NO_REPLY, now)
            if done is not None:
                done(None)
            return None
        sock.state = SYN_SENT
        self.stats.pending += 1
        channel.connecting += 1
        pending = SynSent(sock, life, done)
        if host.log is not None:
            self._log(now, "syn_dropped", sock, None, result)
        wake_up(self.env, self.schedule[0], self._timer, pending)
        return None

    def _timer(self, event: object) -> None:
        """A SYN retransmission (it tries the gateway again), or the final timeout."""
        pending: SynSent = event._value  # type: ignore[attr-defined]
        sock = pending.sock
        now = self.env._now
        schedule = self.schedule
        k = pending.next
        if k == len(schedule) - 1:  # the last retransmission went unanswered
            self.stats.timed_out += 1
            self.stats.pending -= 1
            self.channel.connecting -= 1
            self._give_up(sock, "ETIMEDOUT", now)
            if pending.done is not None:
                pending.done(None)
            return
        result = self._translate(sock, now)
        if type(result) is str:
            self.stats.bin_drops += 1
            if self.host.log is not None:
                self._log(now, "syn_dropped", sock, None, result)
            pending.next = k + 1
            wake_up(self.env, schedule[k + 1] - schedule[k], self._timer, pending)
            return
        self.stats.pending -= 1
        self.channel.connecting -= 1
        self._open(sock, result, pending.life, now, schedule[k])  # type: ignore[arg-type]
        if pending.done is not None:
            pending.done(sock)

    def _translate(self, sock: Socket, now: float) -> Mapping | str:
        """One SYN (or datagram) of ``sock`` through the gateway: a mapping or a drop reason."""
        return self.gateway.translate_flow(self.flow, now, self.host.lo + sock.k)

    def _open(
        self, sock: Socket, mapping: Mapping, life: float, now: float, latency: float
    ) -> None:
        """Established: count it, remember the mapping, start the lifetime."""
        sock.state = ESTABLISHED
        sock.mapping = mapping
        channel = self.channel
        channel.attempted += 1
        channel.succeeded += 1
        channel.tally.succeeded += 1
        self.stats.record(latency)
        self.gateway.delayed_connects += 1  # (only retransmitted SYNs come here)
        if self.host.log is not None:
            self._log(now, "translated", sock, mapping, "")
        if life != math.inf:
            wake_up(self.env, life, self.host._on_close, sock)

    def _give_up(self, sock: Socket, error: str, now: float) -> None:
        """connect() failed: the socket closes from SYN_SENT (no TIME_WAIT) and frees its port."""
        self.channel.attempted += 1
        self.host.abandon(sock, error, now)

    def _log(
        self, now: float, event: str, sock: Socket, mapping: Mapping | None, error: str
    ) -> None:
        log = self.host.log
        if log is None:
            return
        ch = self.channel
        log.append(
            (
                now,
                self.host.name,
                ch.source,
                event,
                ch.protocol,
                self.host.lo + sock.k,
                ch.dest.address,
                0,
                error,
                mapping.address if mapping is not None else None,
                mapping.port if mapping is not None else None,
            )
        )
