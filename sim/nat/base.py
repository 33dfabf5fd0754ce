"""The contract every gateway kind implements: translate a new flow, release it, report.

A source-NAT gateway sits between hosts and destinations.  Whatever the product, it keeps
the translated 5-tuple (protocol, public address, public port, destination address,
destination port) unique and holds it for the flow's life plus a hold after the flow ends;
kinds differ in who owns the pool, how a port is chosen, and the holds.  The model asks a
kind two things on the hot path:

* :meth:`Gateway.translate`: a new flow from an inside host wants out; the answer is a
  :class:`Mapping` (public address and port) or a drop reason (a ``str``, one of
  :data:`DROP_REASONS`);
* :meth:`Gateway.release`: the flow ended with a close kind (:data:`CLOSE_KINDS`); the kind
  starts its hold, after which the translated tuple is free again.

Everything else (counters, pressure per destination, configuration) is common and lives
here, so a new kind (a cloud NAT, a carrier-grade NAT) adds only its allocation and holds.
Kinds are pure bookkeeping: no SimPy here.  Time is passed in (``now``) and holds end lazily
when a later call settles them, as a host's TIME_WAIT does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from sim.randomness import Stream

# why a translation was refused (summary ``dropped_by_reason``)
NO_FREE_TUPLE = "no_free_tuple"  # every candidate translated tuple to this destination is held
INSERT_FAILED = "insert_failed"  # lost the conntrack confirm race to a concurrent flow
DROP_REASONS: tuple[str, ...] = (NO_FREE_TUPLE, INSERT_FAILED)

# how a flow ended, which selects the kind's hold (e.g. conntrack TIME_WAIT vs CLOSE)
FIN, RST, IDLE, UDP = "fin", "rst", "idle", "udp"
CLOSE_KINDS: tuple[str, ...] = (FIN, RST, IDLE, UDP)

PROTOCOLS: tuple[str, ...] = ("tcp", "udp")


class Mapping:
    """One live translation: what the flow looks like outside, and the kind's handle on it.

    Kinds subclass it to keep their own fields (pool, state); created once per flow, so
    slots only.  ``address`` is the public address (a string), ``port`` the public port."""

    __slots__ = ("address", "born", "port")

    address: str
    port: int
    born: float


class FlowKey:
    """The flows of one inside host and source address to one destination through a
    gateway: made once per route (``Gateway.flow_key``) and passed with every connect
    (``Gateway.translate_flow``), so that a kind can keep per-route facts on it (a
    subclass) instead of looking them up per connection."""

    __slots__ = ("destination", "destination_port", "member", "protocol", "source")

    def __init__(
        self, protocol: str, member: int, source: str, destination: str, destination_port: int
    ) -> None:
        self.protocol = protocol
        self.member = member
        self.source = source
        self.destination = destination
        self.destination_port = destination_port


@dataclass
class Counters:
    """Translation counters of one gateway.

    ``attempted`` counts every translation asked for (a SYN and each retransmission of it
    tries again), ``succeeded`` those that got a mapping, ``dropped`` the others by reason."""

    attempted: int = 0
    succeeded: int = 0
    dropped: int = 0
    dropped_by_reason: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(DROP_REASONS, 0)
    )

    def drop(self, reason: str) -> None:
        self.dropped += 1
        self.dropped_by_reason[reason] += 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "attempted": self.attempted,
            "succeeded": self.succeeded,
            "dropped": self.dropped,
            "dropped_by_reason": dict(self.dropped_by_reason),
        }


def inside_name(host: object) -> str:
    """``builder-1``, or ``pods 10.244.1.7`` for a fleet's member (members share a name)."""
    name = str(getattr(host, "name", "?"))
    if getattr(host, "member", -1) >= 0:
        return f"{name} {getattr(host, 'address', '?')}"
    return name


@dataclass(frozen=True)
class GatewayConfig:
    """A gateway as the scenario gives it, with the kind's defaults already applied.

    ``port_range`` None means "by the kind's rule" (Linux: the original port's class);
    ``options`` holds the per-kind keys after the kind's own validation."""

    name: str
    kind: str
    addresses: tuple[str, ...]
    port_range: tuple[int, int] | None
    options: dict[str, Any] = field(default_factory=dict)


class DestinationUse:
    """Held translated tuples towards one destination ``(protocol, ip, port)`` over every
    public address: the level, its peak (overall and in the current bin) and its time
    integral, updated at each change so that the mean is exact."""

    __slots__ = ("area", "bin_peak", "capacity", "held", "label", "peak", "peak_time", "since")

    def __init__(self, key: tuple[str, str, int], capacity: int, now: float) -> None:
        self.label = destination_label(key)
        self.capacity = capacity
        self.held = 0
        self.peak = 0
        self.peak_time = now
        self.bin_peak = 0
        self.area = 0.0
        self.since = now

    def take(self, now: float) -> None:
        held = self.held
        self.area += held * (now - self.since)
        self.since = now
        held += 1
        self.held = held
        if held > self.bin_peak:
            self.bin_peak = held
            if held > self.peak:
                self.peak = held
                self.peak_time = now

    def give(self, now: float) -> None:
        self.area += self.held * (now - self.since)
        self.since = now
        self.held -= 1

    def mean(self, until: float) -> float:
        """Time-averaged fraction held over [0, until]."""
        area = self.area + self.held * (until - self.since)
        return area / until / self.capacity if until > 0 else 0.0


class Gateway:
    """The interface of a gateway kind, with the counters and pressure every kind reports.

    Pressure is per destination ``(protocol, destination ip, destination port)``: the
    fraction of the translated tuples to it (over every public address) that are held, live
    or in a post-close hold.  A kind calls ``use(key, now).take(now)`` when it maps a flow
    and ``.give(now)`` when a hold ends.
    """

    kind: ClassVar[str] = ""
    # per-kind scenario keys beyond name, kind, addresses and port_range, with defaults
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, config: GatewayConfig, stream: Stream) -> None:
        self.config = config
        self.stream = stream  # the gateway's own random stream (port choice, races)
        self.name = config.name
        self.addresses = config.addresses
        self.counters = Counters()
        self.destinations: dict[tuple[str, str, int], DestinationUse] = {}
        self.members: dict[int, int] = {}  # id(inside host) -> its member index
        self.member_names: list[str] = []  # by member index: how reports name the host
        self.delayed_connects = 0  # through only after SYN retransmissions (sim.nat.route)
        # when a connect's first SYN (or datagram) was first dropped here (sim.nat.route):
        # connects wait from then on, well before any of them times out
        self.first_drop_s: float | None = None

    def member(self, host: object) -> int:
        """A stable index for an inside host (the order hosts first use the gateway)."""
        index = self.members.get(id(host))
        if index is None:
            index = self.members[id(host)] = len(self.members)
            self.member_names.append(inside_name(host))
        return index

    def member_name(self, index: int) -> str:
        """Inside host ``index`` as reports name it: its name, a fleet member's with its
        address (``VM #3`` for an index no host was given, as in the unit tests' drives)."""
        return self.member_names[index] if index < len(self.member_names) else f"VM #{index}"

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        """The kind's keys with defaults filled in; raises ``KeyError`` naming an unknown
        key and ``ValueError`` for a bad value (the config layer turns both into one-line
        errors naming the file and key)."""
        for key in options:
            if key not in cls.defaults:
                raise KeyError(key)
        return {**cls.defaults, **options}

    @classmethod
    def check_setup(cls, addresses: tuple[str, ...], options: dict[str, Any], inside: int) -> None:
        """Raise ``ValueError`` ("key: why") for a setup the vendor refuses: too many
        addresses, or per-host ports that do not fit the ``inside`` hosts behind it."""

    def set_inside(self, inside: int) -> None:
        """How many hosts are behind the gateway (the model tells it before the run)."""

    def hold_after(self, close: str, lifetime: float) -> float:
        """Seconds a translated tuple stays held after a flow of ``lifetime`` seconds ends
        by ``close``: with the lifetimes, how long the gateway's pool takes to fill."""
        raise NotImplementedError

    def drop_flows(self) -> None:
        """Forget every mapping (``sim.engine.run`` after a run: see ``sim.collector``);
        kinds that keep mappings clear their own holders."""

    # -- the hot path (every kind implements these) ------------------------------------
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
        """Translate a new flow, or refuse it: the mapping, or a reason in DROP_REASONS.

        ``member`` identifies the inside host (an index the model gives each host behind
        this gateway); ``source`` and ``source_port`` are the inside address and the port
        the host's kernel chose."""
        raise NotImplementedError

    def flow_key(
        self, protocol: str, member: int, source: str, destination: str, destination_port: int
    ) -> FlowKey:
        """The key a route passes to :meth:`translate_flow` (kinds may return a subclass)."""
        return FlowKey(protocol, member, source, destination, destination_port)

    def translate_flow(self, flow: FlowKey, now: float, source_port: int) -> Mapping | str:
        """:meth:`translate` for a route's ``flow`` (what ``sim.nat.route`` calls); kinds
        that keep per-route facts on their keys override it."""
        return self.translate(
            now,
            flow.protocol,
            flow.member,
            flow.source,
            source_port,
            flow.destination,
            flow.destination_port,
        )

    def release(self, mapping: Mapping, now: float, close: str) -> None:
        """The flow of ``mapping`` ended at ``now`` by ``close`` (one of CLOSE_KINDS): start
        the kind's hold; the tuple is free to other flows when the hold ends."""
        raise NotImplementedError

    # -- idle timeouts (kinds that drop idle flows override these) -----------------------
    # what the client meets when it sends on a flow the gateway dropped for idleness
    idle_signal: str = "ECONNRESET"

    def went_idle(self, mapping: Mapping, now: float, keepalive: float | None = None) -> None:
        """The flow carries no traffic from ``now`` (a pooled connection put back idle);
        ``keepalive`` is the interval of the host's TCP keepalive probes, if any."""

    def touch(self, mapping: Mapping, now: float) -> bool:
        """Traffic on the flow at ``now``: False when the gateway dropped it meanwhile."""
        return True

    def settle(self, now: float) -> None:
        """End every hold due by ``now`` (kinds with holds override; called before sampling)."""

    def ports(self) -> int:
        """Translated ports per public address (the range size) for the summary."""
        raise NotImplementedError

    def capacity(self, key: tuple[str, str, int]) -> int:
        """Translated tuples towards one destination (every address): ports x addresses by
        default; kinds with per-destination limits override."""
        return self.ports() * len(self.addresses)

    def use(self, key: tuple[str, str, int], now: float) -> DestinationUse:
        """The bookkeeping of one destination, created on first use."""
        use = self.destinations.get(key)
        if use is None:
            use = self.destinations[key] = DestinationUse(key, self.capacity(key), now)
        return use

    # -- reporting ---------------------------------------------------------------------
    def bin_worst(self) -> tuple[float, str | None]:
        """The worst destination's peak pressure in the current bin, and its label (read
        only: settle first, then :meth:`new_bin`)."""
        worst, label = 0.0, None
        for use in self.destinations.values():
            p = use.bin_peak / use.capacity
            if p > worst:
                worst, label = p, use.label
        return worst, label

    def new_bin(self) -> None:
        """Start the next bin: its peaks start from the current levels."""
        for use in self.destinations.values():
            use.bin_peak = use.held

    def sample_bin(self, now: float) -> tuple[float, str | None]:
        """Settle to ``now``, read the bin's worst destination, start the next bin."""
        self.settle(now)
        out = self.bin_worst()
        self.new_bin()
        return out

    def pressure_summary(self, until: float) -> dict[str, Any]:
        """peak, peak time, and the time-averaged pressure of the destination that peaked."""
        self.settle(until)
        if not self.destinations:
            return {"peak": 0.0, "mean": 0.0, "peak_time_s": 0.0, "worst_destination": None}
        worst = max(self.destinations.values(), key=lambda u: (u.peak / u.capacity, -u.peak_time))
        return {
            "peak": worst.peak / worst.capacity,
            "mean": worst.mean(until),
            "peak_time_s": worst.peak_time,
            "worst_destination": worst.label,
        }

    def summary(self, until: float) -> dict[str, Any]:
        """``gateways.<name>`` in summary.json; kinds add their own keys."""
        return {
            "kind": self.kind,
            "addresses": list(self.addresses),
            "ports": self.ports(),
            "mappings": self.counters.as_dict(),
            "first_drop_s": self.first_drop_s,
            "pressure": self.pressure_summary(until),
        }


def destination_label(key: tuple[str, str, int]) -> str:
    """``tcp 203.0.113.10:443`` for a destination key."""
    protocol, ip, port = key
    return f"{protocol} {ip}:{port}" if ":" not in ip else f"{protocol} [{ip}]:{port}"
