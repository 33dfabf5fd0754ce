"""Bookkeeping shared by the cloud and carrier gateway kinds: slot tables, holds, idle expiry.

Every kind here keeps, per allocation owner (a public address, a VM's slice, a subscriber's
blocks) and per uniqueness key (a destination, or every destination for endpoint-independent
kinds), a :class:`Table`: a ``bytearray`` with one cell per port the owner may give, 0 where
the translated tuple is free.  A free port is found with ``bytearray.find`` (no Python loop
over ports).  A flow's mapping holds its cell while live and for the kind's hold after it
ends; holds of one length end in FIFO order, so they sit in one ``deque`` per length and
end lazily when a later call settles them (as conntrack's do in ``sim.nat.linux``).

Idle timeouts: the gateway removes a flow with no traffic for its idle timeout.  The model
does not see packets, so whoever owns the connection says when it falls idle
(:meth:`SlotGateway.went_idle`, with the TCP keepalive interval if probes run) and when
traffic resumes (:meth:`SlotGateway.touch`, False when the gateway has dropped the flow
meanwhile, so the request on it fails).  A flow nobody declares idle is taken as busy.
"""

from __future__ import annotations

import math
from collections import deque
from typing import TYPE_CHECKING, Any, ClassVar

from sim.nat.base import FIN, IDLE, RST, UDP, Counters, DestinationUse, Gateway, Mapping

if TYPE_CHECKING:
    from sim.nat.base import GatewayConfig
    from sim.randomness import Stream

GONE, LIVE, HELD, EXPIRED = 0, 1, 2, 3
ABSENT = 4  # a cell outside what the owner currently has (CGN blocks not allocated)
_HOLD, _IDLE = 0, 1


class Table:
    """Cells of one owner towards one uniqueness key, the held count, and the pressure
    bookkeeping (``use``) they report into."""

    __slots__ = ("cells", "held", "owners", "use")

    def __init__(self, size: int, use: DestinationUse) -> None:
        self.cells = bytearray(size)
        self.held = 0
        self.use = use
        self.owners: dict[int, SlotMapping] = {}  # slot -> the mapping holding it


class SlotMapping(Mapping):
    """A flow's translation: its table and slot, state, hold end and idle deadline."""

    __slots__ = ("idle_at", "protocol", "slot", "state", "table", "until")

    table: Table
    slot: int
    state: int
    protocol: str
    until: float
    idle_at: float


def number(opts: dict[str, Any], key: str, low: float = 0.0, high: float = math.inf) -> float:
    """A numeric option in [low, high]; ``ValueError`` naming the key otherwise."""
    value = opts[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{key}: a number")
    if not low <= value <= high:
        top = "" if high == math.inf else f" and {high:g}"
        raise ValueError(f"{key}: {'at least ' if not top else 'between '}{low:g}{top}")
    return float(value)


def integer(opts: dict[str, Any], key: str, low: int = 0, high: int | None = None) -> int:
    value = opts[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key}: a whole number")
    if value < low or (high is not None and value > high):
        raise ValueError(f"{key}: between {low} and {high}" if high else f"{key}: >= {low}")
    return value


def flag(opts: dict[str, Any], key: str) -> bool:
    if not isinstance(opts[key], bool):
        raise ValueError(f"{key}: true or false")
    return bool(opts[key])


def random_free(cells: bytearray, start: int) -> int:
    """The first free cell at or after ``start``, wrapping: a random start and a linear
    scan, in at most two ``find`` calls; -1 when none is free."""
    i = cells.find(0, start)
    if i < 0 and start:
        i = cells.find(0, 0, start)
    return i


class SlotGateway(Gateway):
    """A gateway kind built on slot tables: holds by close kind, idle expiry, vendor-named
    drop reasons.  Subclasses fill ``holds`` and ``idle_timeouts`` and implement
    ``translate`` with :meth:`_take`."""

    drop_reasons: ClassVar[tuple[str, ...]] = ()
    # what the client sees on a flow the gateway dropped for idleness, once it sends again
    idle_signal: str = "ECONNRESET"

    def __init__(self, config: GatewayConfig, stream: Stream) -> None:
        super().__init__(config, stream)
        self.counters = Counters(dropped_by_reason=dict.fromkeys(self.drop_reasons, 0))
        self.options = self.check_options(dict(config.options))
        lo, hi = config.port_range or (1024, 65535)
        self.lo, self.hi = lo, hi
        self.holds: dict[str, float] = {FIN: 0.0, RST: 0.0, UDP: 0.0, IDLE: 0.0}
        self.idle_timeouts: dict[str, float] = {"tcp": math.inf, "udp": math.inf}
        self.queues: dict[tuple[int, Any], deque[tuple[float, SlotMapping]]] = {}
        self.due = math.inf
        self.live = 0  # flows translated and not ended
        self.held_total = 0  # translated tuples held (live or in a hold)
        self.peak_live = 0
        self.idle_expired = 0  # flows the gateway removed for idleness
        self.idle_resets = 0  # traffic that found its flow gone (the client's failure)
        self.kept_alive = 0  # idle spells kept open by TCP keepalive probes
        self.made_tables: list[Table] = []  # every table made (new_table), for drop_flows

    def new_table(self, size: int, use: DestinationUse) -> Table:
        """A table of ``size`` free cells reporting into ``use``."""
        table = Table(size, use)
        self.made_tables.append(table)
        return table

    def hold_after(self, close: str, lifetime: float) -> float:
        return self.holds.get(close, 0.0)

    def drop_flows(self) -> None:
        for table in self.made_tables:
            table.owners.clear()
        self.queues.clear()

    # -- taking and ending ---------------------------------------------------------------
    def _take(
        self,
        table: Table,
        slot: int,
        address: str,
        port: int,
        protocol: str,
        now: float,
        cls: type[SlotMapping] = SlotMapping,
    ) -> SlotMapping:
        m = object.__new__(cls)
        m.address = address
        m.port = port
        m.born = now
        m.table = table
        m.slot = slot
        m.state = LIVE
        m.protocol = protocol
        m.idle_at = math.inf
        table.cells[slot] = LIVE
        table.held += 1
        table.owners[slot] = m
        table.use.take(now)
        self.live += 1
        self.held_total += 1
        if self.live > self.peak_live:
            self.peak_live = self.live
        self.counters.succeeded += 1
        return m

    def _end(self, m: SlotMapping, at: float) -> None:
        """The translated tuple of ``m`` is free at ``at``."""
        if m.state == LIVE:
            self.live -= 1
        m.state = GONE
        table = m.table
        table.cells[m.slot] = 0
        table.held -= 1
        del table.owners[m.slot]
        table.use.give(at)
        self.held_total -= 1
        self._freed(m, at)

    def _freed(self, m: SlotMapping, at: float) -> None:
        """Kind hook: a mapping's tuple was freed (per-port reference counts, blocks)."""

    def _drop(self, reason: str) -> str:
        self.counters.drop(reason)
        return reason

    def _hold(self, m: SlotMapping, close: str, now: float) -> float:
        """Seconds the tuple stays held after the flow ends by ``close``."""
        if m.protocol == "udp":
            return self.holds[UDP]
        if close not in self.holds:
            raise ValueError(f"unknown close kind {close!r}")
        return self.holds[close]

    def release(self, mapping: Mapping, now: float, close: str) -> None:
        m: SlotMapping = mapping  # type: ignore[assignment]
        if now >= self.due:
            self.settle(now)
        if m.state != LIVE:
            return  # already gone (idle timeout, reclaimed)
        hold = self._hold(m, close, now)
        self.live -= 1
        if hold <= 0:
            m.state = HELD  # counted out of live above; _end must not count it again
            self._end(m, now)
            return
        m.state = HELD
        m.until = end = now + hold
        m.table.cells[m.slot] = HELD
        self._queue((_HOLD, hold), end, m)

    def _queue(self, key: tuple[int, Any], at: float, m: SlotMapping) -> None:
        queue = self.queues.get(key)
        if queue is None:
            queue = self.queues[key] = deque()
        queue.append((at, m))
        if at < self.due:
            self.due = at

    # -- idle timeouts -------------------------------------------------------------------
    def went_idle(self, mapping: Mapping, now: float, keepalive: float | None = None) -> None:
        """The flow carries no traffic from ``now``; with TCP keepalive probes every
        ``keepalive`` seconds it stays active at the gateway if they come before its idle
        timeout (every provider here counts any packet as activity)."""
        m: SlotMapping = mapping  # type: ignore[assignment]
        if m.state != LIVE:
            return
        timeout = self.idle_timeouts[m.protocol]
        if timeout == math.inf:
            return
        if keepalive is not None and m.protocol == "tcp" and keepalive < timeout:
            self.kept_alive += 1
            return
        m.idle_at = at = now + timeout
        self._queue((_IDLE, m.protocol), at, m)

    def touch(self, mapping: Mapping, now: float) -> bool:
        """Traffic on the flow at ``now``: True if the gateway still has it; False if it
        was dropped (idle timeout, reclaimed), and the packet meets ``idle_signal``."""
        m: SlotMapping = mapping  # type: ignore[assignment]
        if now >= self.due:
            self.settle(now)
        if m.state == LIVE:
            m.idle_at = math.inf
            return True
        self.idle_resets += 1
        return False

    def _expire(self, m: SlotMapping, at: float) -> None:
        """The idle timeout removed a live flow at ``at``."""
        self.idle_expired += 1
        hold = self.holds[IDLE]
        self.live -= 1
        if hold > 0:
            m.state = HELD
            m.until = end = at + hold
            m.table.cells[m.slot] = HELD
            self._queue((_HOLD, hold), end, m)
            m.state = EXPIRED  # a touch fails; the hold still ends it (see settle)
            return
        m.state = HELD
        self._end(m, at)
        m.state = EXPIRED

    # -- settling ------------------------------------------------------------------------
    def settle(self, now: float) -> None:
        """End the holds and idle timeouts due by ``now``, in time order."""
        queues = [(key, q) for key, q in self.queues.items() if q]
        while queues:
            best = 0
            if len(queues) > 1:
                for i in range(1, len(queues)):
                    if queues[i][1][0][0] < queues[best][1][0][0]:
                        best = i
            key, head = queues[best]
            at, m = head[0]
            if at > now:
                self.due = at
                return
            head.popleft()
            if key[0] == _HOLD:
                if m.until == at and m.state in (HELD, EXPIRED) and m.table.owners.get(m.slot) is m:
                    was = m.state
                    m.state = HELD
                    self._end(m, at)
                    if was == EXPIRED:
                        m.state = EXPIRED
            elif m.state == LIVE and m.idle_at == at:
                self._expire(m, at)
            if not head:
                queues.pop(best)
        self.due = math.inf

    # -- reporting -----------------------------------------------------------------------
    def ports(self) -> int:
        return self.hi - self.lo + 1

    def idle_summary(self) -> dict[str, Any]:
        return {
            "timeout_s": {p: (t if t != math.inf else None) for p, t in self.idle_timeouts.items()},
            "expired": self.idle_expired,
            "resets": self.idle_resets,
            "signal": self.idle_signal,
            "kept_alive_by_tcp_keepalive": self.kept_alive,
        }

    def summary(self, until: float) -> dict[str, Any]:
        out = super().summary(until)
        if self.destinations:  # the tuples the worst destination (or VM's slice) had
            worst = max(
                self.destinations.values(), key=lambda u: (u.peak / u.capacity, -u.peak_time)
            )
            out["pressure"]["capacity"] = worst.capacity
        out["holds_s"] = dict(self.holds)
        out["idle"] = self.idle_summary()
        out["peak_live"] = self.peak_live
        return out


def resize(use: DestinationUse, capacity: int) -> None:
    """The tuples behind ``use`` change (a VM's slice grows or is cut): its peak and time
    integral are rescaled so that, as fractions of the capacity, they stay what they were."""
    if capacity == use.capacity:
        return
    f = capacity / use.capacity
    use.peak *= f  # type: ignore[assignment]
    use.bin_peak *= f  # type: ignore[assignment]
    use.area *= f
    use.capacity = capacity


def member_label(dkey: tuple[Any, ...], owner: str) -> str:
    """``tcp 203.0.113.10:443 from VM #3`` (the destination seen by one owner's slice)."""
    if len(dkey) == 2:
        return f"{dkey[0]} {dkey[1]} (any port) from {owner}"
    protocol, ip, port = dkey
    return f"{protocol} {ip}:{port} from {owner}"
