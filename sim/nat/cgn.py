"""Carrier-grade NAT: port block allocation (kind ``cgn-pba``) and deterministic NAT
(``cgn-deterministic``).

``cgn-pba`` follows the behavioural RFCs a CGN must meet: RFC 4787 "NAT Behavioral
Requirements for Unicast UDP" (REQ-1 endpoint-independent mapping, REQ-2 paired pooling,
REQ-5 UDP mapping timer, 5 min recommended; https://www.rfc-editor.org/rfc/rfc4787),
RFC 5382 "NAT Behavioral Requirements for TCP" (REQ-1 endpoint-independent mapping, REQ-5
established idle >= 2 h 4 min, transitory >= 4 min; https://www.rfc-editor.org/rfc/rfc5382)
and RFC 6888 "Common Requirements for Carrier-Grade NATs (CGNs)" (REQ-2 paired pooling by
default, REQ-4 a per-subscriber port limit, REQ-8 a freed port not given to a new mapping
for 120 s; https://www.rfc-editor.org/rfc/rfc6888).  The block allocation is Juniper's
``secured-port-block-allocation`` (block size 128, up to 8 blocks per subscriber, ports
below 1024 unused; an inactive block with no ports in use goes back to the pool;
https://juniper.net/documentation/en_US/junos13.2/topics/reference/configuration-statement/secured-port-block-allocation-edit-services.html).
Endpoint-independent mapping means a public port belongs to one internal (address, port)
for every destination, so a subscriber has as many concurrent internal endpoints as its
blocks have ports.  On failure RFC 6888 REQ-11 / RFC 5508 REQ-8 ask for an ICMP
destination unreachable (type 3 code 13); the model's route treats it as a dropped SYN.
Inferred: the port choice inside the blocks (a random start, then the next free port:
RFC 6888 REQ-15 asks for ports hard to guess), the first address with a free block for a
new subscriber, and the hold after a mapping's last flow: REQ-8's 120 s after a TCP close
(``closing_hold``, 0 s, can add a lingering closing state: RFC 5382's 4 min transitory
timer bounds how soon an *idle* closing session may be abandoned, not a clean close), and
after a UDP flow's last packet the mapping timer (5 min) then the 120 s.

``cgn-deterministic`` is RFC 7422 "Deterministic Address Mapping to Reduce Logging in
Carrier-Grade NAT Deployments" (https://www.rfc-editor.org/rfc/rfc7422) as FD.io VPP's
det44 plugin implements it (``src/plugins/nat/det44/det44.h``, ``det44_in2out.c``):
with ``sharing_ratio`` subscribers per public address, each gets
``ports_per_host = (65535 - 1023) // sharing_ratio`` ports; subscriber k (its offset in the
inside prefix) uses address ``k // sharing_ratio`` and ports from
``1024 + ports_per_host * (k % sharing_ratio)``; a session probes linearly inside that range
from ``inner_port % ports_per_host`` for a port free towards its destination; at most 1,000
sessions per subscriber (DET44_SES_PER_USER); det44's default timeouts (``det44.c``
``det44_reset_timeouts``): UDP 300 s, TCP established 7,440 s, TCP transitory 240 s.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any, ClassVar

from sim.nat.base import FIN, IDLE, RST, UDP, DestinationUse, Mapping
from sim.nat.slots import (
    ABSENT,
    SlotGateway,
    SlotMapping,
    Table,
    integer,
    member_label,
    number,
    random_free,
)
from sim.nat_kinds import default_of

if TYPE_CHECKING:
    from sim.nat.base import GatewayConfig
    from sim.randomness import Stream

PER_SUBSCRIBER_LIMIT = "subscriber_port_limit"  # RFC 6888 REQ-4: the subscriber's blocks are full
POOL_EXHAUSTED = "pool_exhausted"  # no free block on the subscriber's (paired) address
OUT_OF_PORTS = "out_of_ports"  # det44: the subscriber's range has no port free to this destination
SESSION_LIMIT = "session_limit"  # det44: DET44_SES_PER_USER sessions
NO_RANGE = "no_range"  # det44: the subscriber lies outside what the addresses cover


class Subscriber:
    """A PBA subscriber: its paired address, its blocks (slot i*block.. of ``table``) and
    the bindings of its internal ports."""

    __slots__ = ("address", "bindings", "block_held", "blocks", "index", "newest", "table")

    def __init__(self, index: int, table: Table, max_blocks: int) -> None:
        self.index = index
        self.address = -1
        self.table = table
        self.blocks: list[int] = [-1] * max_blocks  # public block number, -1 when absent
        self.block_held = [0] * max_blocks
        self.newest = -1
        self.bindings: dict[tuple[str, int], Binding] = {}


class Binding(SlotMapping):
    """An endpoint-independent mapping: one internal (protocol, port) to one public port,
    shared by that port's flows (``flows`` live or lingering)."""

    __slots__ = ("flows", "inner", "subscriber")

    subscriber: Subscriber
    inner: tuple[str, int]
    flows: int


class Flow(Mapping):
    """One flow on a binding (what ``translate`` returns)."""

    __slots__ = ("binding", "open")

    binding: Binding
    open: bool


class PortBlockNat(SlotGateway):
    kind: ClassVar[str] = "cgn-pba"
    drop_reasons: ClassVar[tuple[str, ...]] = (PER_SUBSCRIBER_LIMIT, POOL_EXHAUSTED)
    idle_signal = "ECONNRESET"  # inferred
    defaults: ClassVar[dict[str, Any]] = {
        "block_size": default_of(kind, "block_size"),  # Juniper (1-60,000); FortiGate 64-4,096
        "max_blocks": default_of(kind, "blocks_per_subscriber"),  # Juniper's default
        "reuse_delay": default_of(kind, "hold_fin"),  # RFC 6888 REQ-8
        "closing_hold": 0.0,  # inferred: the session's state kept after a TCP close
        "tcp_established": default_of(kind, "idle_timeout"),  # RFC 5382 REQ-5: >= 2 h 4 min
        "udp_timeout": 300.0,  # RFC 4787 REQ-5: 5 min recommended
    }

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        opts = super().check_options(options)
        integer(opts, "block_size", 1, 60000)
        integer(opts, "max_blocks", 1, 512)
        for key in ("reuse_delay", "closing_hold", "tcp_established", "udp_timeout"):
            number(opts, key)
        return opts

    def __init__(self, config: GatewayConfig, stream: Stream) -> None:
        super().__init__(config, stream)
        opts = self.options
        self.block = int(opts["block_size"])
        self.max_blocks = int(opts["max_blocks"])
        delay = float(opts["reuse_delay"])
        closing = float(opts["closing_hold"])
        udp = float(opts["udp_timeout"])
        self.holds.update(
            {FIN: closing + delay, RST: closing + delay, UDP: udp + delay, IDLE: delay}
        )
        self.idle_timeouts = {"tcp": float(opts["tcp_established"]), "udp": udp}
        self.blocks_per_address = self.ports() // self.block
        if self.blocks_per_address < 1:
            raise ValueError(f"block_size: larger than the port range ({self.ports()} ports)")
        self.free_blocks = [bytearray(self.blocks_per_address) for _ in self.addresses]
        self.subscribers: dict[int, Subscriber] = {}
        self.blocks_allocated = 0
        self.peak_blocks = 0
        self.in_use_blocks = 0

    def drop_flows(self) -> None:
        super().drop_flows()
        for sub in self.subscribers.values():
            sub.bindings.clear()

    def _subscriber(self, member: int, now: float) -> Subscriber:
        sub = self.subscribers.get(member)
        if sub is None:
            size = self.block * self.max_blocks
            use = DestinationUse(("any", "every destination", 0), size, now)
            use.label = f"subscriber #{member} (every destination)"
            self.destinations[("any", str(member), 0)] = use
            table = self.new_table(size, use)
            table.cells[:] = bytes([ABSENT]) * size
            sub = self.subscribers[member] = Subscriber(member, table, self.max_blocks)
        return sub

    def _add_block(self, sub: Subscriber) -> int:
        """A new block for ``sub`` on its paired address; its first slot, or -1."""
        try:
            free = sub.blocks.index(-1)
        except ValueError:
            return -1
        candidates = [sub.address] if sub.address >= 0 else range(len(self.addresses))
        for a in candidates:
            b = self.free_blocks[a].find(0)
            if b >= 0:
                self.free_blocks[a][b] = 1
                sub.address = a
                sub.blocks[free] = b
                sub.newest = free
                start = free * self.block
                sub.table.cells[start : start + self.block] = bytes(self.block)
                self.blocks_allocated += 1
                self.in_use_blocks += 1
                self.peak_blocks = max(self.peak_blocks, self.in_use_blocks)
                return start
        return -2  # no block free on the paired address

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
        if now >= self.due:
            self.settle(now)
        self.counters.attempted += 1
        sub = self._subscriber(member, now)
        inner = (protocol, source_port)
        binding = sub.bindings.get(inner)
        if binding is None:
            cells = sub.table.cells
            slot = random_free(cells, self.stream.below(len(cells)))
            if slot < 0:
                slot = self._add_block(sub)
                if slot == -1:
                    return self._drop(PER_SUBSCRIBER_LIMIT)
                if slot == -2:
                    return self._drop(POOL_EXHAUSTED)
                slot += self.stream.below(self.block)
            k = slot // self.block
            port = self.lo + sub.blocks[k] * self.block + slot % self.block
            fresh: Binding = self._take(  # type: ignore[assignment]
                sub.table, slot, self.addresses[sub.address], port, protocol, now, Binding
            )
            fresh.subscriber = sub
            fresh.inner = inner
            fresh.flows = 0
            sub.bindings[inner] = binding = fresh
            sub.block_held[k] += 1
        else:
            self.counters.succeeded += 1
            if binding.state != 1:  # lingering: a new flow revives it (same endpoint)
                binding.state = 1
                binding.until = float("inf")
                binding.table.cells[binding.slot] = 1
                self.live += 1
        binding.flows += 1
        flow = object.__new__(Flow)
        flow.address = binding.address
        flow.port = binding.port
        flow.born = now
        flow.binding = binding
        flow.open = True
        return flow

    def release(self, mapping: Mapping, now: float, close: str) -> None:
        flow: Flow = mapping  # type: ignore[assignment]
        if not flow.open:
            return
        flow.open = False
        binding = flow.binding
        binding.flows -= 1
        if binding.flows <= 0:
            super().release(binding, now, close)

    def went_idle(self, mapping: Mapping, now: float, keepalive: float | None = None) -> None:
        binding = mapping.binding  # type: ignore[attr-defined]
        if binding.flows == 1:
            super().went_idle(binding, now, keepalive)

    def touch(self, mapping: Mapping, now: float) -> bool:
        return super().touch(mapping.binding, now)  # type: ignore[attr-defined]

    def _freed(self, m: SlotMapping, at: float) -> None:
        binding: Binding = m  # type: ignore[assignment]
        sub = binding.subscriber
        if sub.bindings.get(binding.inner) is binding:
            del sub.bindings[binding.inner]
        k = binding.slot // self.block
        sub.block_held[k] -= 1
        if sub.block_held[k] == 0 and k != sub.newest:  # an inactive, empty block goes back
            self.free_blocks[sub.address][sub.blocks[k]] = 0
            sub.blocks[k] = -1
            start = k * self.block
            sub.table.cells[start : start + self.block] = bytes([ABSENT]) * self.block
            self.in_use_blocks -= 1

    def capacity(self, key: tuple[str, str, int]) -> int:
        return self.block * self.max_blocks

    def summary(self, until: float) -> dict[str, Any]:
        out = super().summary(until)
        out["block_size"] = self.block
        out["max_blocks"] = self.max_blocks
        out["subscribers"] = len(self.subscribers)
        out["blocks"] = {
            "per_address": self.blocks_per_address,
            "allocated": self.blocks_allocated,  # one log line each (RFC 6888 REQ-14)
            "peak_in_use": self.peak_blocks,
        }
        return out


class DeterministicNat(SlotGateway):
    kind: ClassVar[str] = "cgn-deterministic"
    drop_reasons: ClassVar[tuple[str, ...]] = (OUT_OF_PORTS, SESSION_LIMIT, NO_RANGE)
    idle_signal = "ECONNRESET"  # inferred
    defaults: ClassVar[dict[str, Any]] = {
        "sharing_ratio": default_of(kind, "sharing_ratio"),  # set by the prefixes (inferred)
        "inside_prefix": "",  # the subscribers' prefix; "": subscribers in order of first use
        "sessions_per_subscriber": default_of(kind, "sessions_per_subscriber"),
        "tcp_transitory": default_of(kind, "hold_fin"),  # det44 default
        "tcp_established": default_of(kind, "idle_timeout"),  # det44 default
        "udp_timeout": 300.0,  # det44 default
    }

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        opts = super().check_options(options)
        ratio = integer(opts, "sharing_ratio", 1, 64512)
        if ratio & (ratio - 1):
            raise ValueError(
                "sharing_ratio: a power of two (2^(inside prefix length - outside prefix length))"
            )
        integer(opts, "sessions_per_subscriber", 1)
        if opts["inside_prefix"]:
            try:
                ipaddress.ip_network(str(opts["inside_prefix"]), strict=False)
            except ValueError as e:
                raise ValueError(f"inside_prefix: {e}") from None
        for key in ("tcp_transitory", "tcp_established", "udp_timeout"):
            number(opts, key)
        return opts

    def __init__(self, config: GatewayConfig, stream: Stream) -> None:
        super().__init__(config, stream)
        opts = self.options
        self.ratio = int(opts["sharing_ratio"])
        self.per_host = (self.hi - self.lo + 1) // self.ratio  # (65535 - 1023) // ratio
        self.prefix = (
            ipaddress.ip_network(str(opts["inside_prefix"]), strict=False)
            if opts["inside_prefix"]
            else None
        )
        self.session_limit = int(opts["sessions_per_subscriber"])
        transitory = float(opts["tcp_transitory"])
        udp = float(opts["udp_timeout"])
        self.holds.update({FIN: transitory, RST: transitory, UDP: udp, IDLE: 0.0})
        self.idle_timeouts = {"tcp": float(opts["tcp_established"]), "udp": udp}
        self.tables: dict[tuple[int, str, str, int], Table] = {}
        self.sessions: dict[int, int] = {}  # subscriber -> live and lingering sessions

    def subscriber_range(self, k: int) -> tuple[str, int, int]:
        """RFC 7422 / det44: subscriber k's public address and port range [lo, hi]."""
        lo = self.lo + self.per_host * (k % self.ratio)
        return self.addresses[k // self.ratio], lo, lo + self.per_host - 1

    def _index(self, member: int, source: str) -> int:
        if self.prefix is None:
            return member
        return int(ipaddress.ip_address(source)) - int(self.prefix.network_address)

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
        if now >= self.due:
            self.settle(now)
        self.counters.attempted += 1
        k = self._index(member, source)
        if not 0 <= k < self.ratio * len(self.addresses):
            return self._drop(NO_RANGE)
        if self.sessions.get(k, 0) >= self.session_limit:
            return self._drop(SESSION_LIMIT)
        tkey = (k, protocol, destination, destination_port)
        table = self.tables.get(tkey)
        if table is None:
            dkey = (protocol, destination, destination_port)
            use = DestinationUse(dkey, self.per_host, now)
            use.label = member_label(dkey, f"subscriber #{k}")
            self.destinations[tkey] = use  # type: ignore[index]
            table = self.tables[tkey] = self.new_table(self.per_host, use)
        slot = random_free(table.cells, source_port % self.per_host)  # linear from inner port
        if slot < 0:
            return self._drop(OUT_OF_PORTS)
        address, lo, _ = self.subscriber_range(k)
        m: DetMapping = self._take(  # type: ignore[assignment]
            table, slot, address, lo + slot, protocol, now, DetMapping
        )
        self.sessions[k] = self.sessions.get(k, 0) + 1
        m.subscriber = k
        return m

    def _freed(self, m: SlotMapping, at: float) -> None:
        self.sessions[m.subscriber] -= 1  # type: ignore[attr-defined]

    def ports(self) -> int:
        """Ports per subscriber (the deterministic range)."""
        return self.per_host

    def capacity(self, key: tuple[str, str, int]) -> int:
        return self.per_host

    def summary(self, until: float) -> dict[str, Any]:
        out = super().summary(until)
        out["sharing_ratio"] = self.ratio
        out["ports_per_subscriber"] = self.per_host
        out["sessions_per_subscriber"] = self.session_limit
        out["subscribers"] = len(self.sessions)
        return out


class DetMapping(SlotMapping):
    __slots__ = ("subscriber",)

    subscriber: int
