"""Google Cloud NAT (kind ``gcp-cloudnat``).

Documented in Google Cloud, Cloud NAT "Ports and addresses",
https://cloud.google.com/nat/docs/ports-and-addresses, "Tune NAT configuration",
https://cloud.google.com/nat/docs/tune-nat-configuration, "Troubleshooting",
https://cloud.google.com/nat/docs/troubleshooting, and the Compute API ``RouterNat``
reference (https://cloud.google.com/compute/docs/reference/rest/v1/routers):

* each NAT address gives 64,512 ports (1024-65535); ports are reserved per VM: a VM's
  concurrent connections to one destination (address, port, protocol) are at most the
  ports reserved for it;
* static allocation: ``minPortsPerVm`` (64 by default; a GKE node gets at least 1,024,
  because its Pod range is at least a /24); VMs per address = 64,512 // ports per VM;
* dynamic port allocation: a minimum (a power of two, default 32) and a maximum (a power
  of two, default 65,536); Cloud NAT "detects when a VM is close to being out of ports and
  doubles the allocation", and packets may drop while the allocation grows;
* timeouts: TCP TIME_WAIT 120 s (``tcpTimeWaitTimeoutSec``: "a five-tuple ... cannot be
  reused within" it), TCP transitory idle 30 s, TCP established idle 1,200 s, UDP 30 s;
* endpoint-independent mapping (``enableEndpointIndependentMapping``): one internal
  (address, port) keeps one NAT (address, port) for every destination; not allowed with
  dynamic allocation; a new connection whose fixed NAT port is in use towards its
  destination is dropped with reason ENDPOINT_INDEPENDENCE_CONFLICT;
* failures are silent drops counted by ``dropped_sent_packets_count`` with reason
  OUT_OF_RESOURCES; ``nat_allocation_failed`` when a VM cannot get its ports.

Inferred (parameters): the growth lag of dynamic allocation (``grow_lag``: how long after a
VM nears exhaustion the doubled allocation is usable) and what "close to out of ports"
means (``grow_threshold``: the fraction of its ports a VM holds towards its busiest
destination); that the hold after an RST is the transitory timeout; the port choice inside
a slice (lowest free); that an endpoint-independent binding lasts as long as a flow of the
internal port (live or in TIME_WAIT) does; that dynamic allocations never shrink in a run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from sim.nat.base import FIN, IDLE, RST, UDP, DestinationUse, Mapping
from sim.nat.slots import (
    SlotGateway,
    SlotMapping,
    Table,
    flag,
    integer,
    member_label,
    number,
    resize,
)
from sim.nat_kinds import default_of

if TYPE_CHECKING:
    from sim.nat.base import GatewayConfig
    from sim.randomness import Stream

OUT_OF_RESOURCES = "OUT_OF_RESOURCES"
ENDPOINT_INDEPENDENCE_CONFLICT = "ENDPOINT_INDEPENDENCE_CONFLICT"


def _power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


class Vm:
    """A VM's ports: chunks of (address, first port, count) in slot order, its tables per
    destination, and, with endpoint-independent mapping, which slots are bound."""

    __slots__ = (
        "allocation",
        "bindings",
        "bound",
        "chunks",
        "failed",
        "grow_at",
        "index",
        "peak_used",
        "refs",
        "tables",
        "used",
    )

    def __init__(self, index: int) -> None:
        self.index = index
        self.allocation = 0
        self.chunks: list[tuple[int, int, int]] = []  # (address index, first port, count)
        self.tables: dict[tuple[str, str, int], Table] = {}
        self.grow_at = float("inf")
        self.failed = False
        self.bound = bytearray()
        self.bindings: dict[tuple[str, int], list[int]] = {}  # (proto, inner port) -> [slot, n]
        self.refs: list[int] = []  # flows per slot over every destination
        self.used = 0
        self.peak_used = 0


class CloudNatMapping(SlotMapping):
    __slots__ = ("inner", "vm")

    vm: Vm
    inner: tuple[str, int] | None


class CloudNat(SlotGateway):
    kind: ClassVar[str] = "gcp-cloudnat"
    drop_reasons: ClassVar[tuple[str, ...]] = (OUT_OF_RESOURCES, ENDPOINT_INDEPENDENCE_CONFLICT)
    idle_signal = "ECONNRESET"  # inferred: a later packet meets a fresh mapping, the server resets
    defaults: ClassVar[dict[str, Any]] = {
        "min_ports_per_vm": 0,  # 0: 64 static, 32 dynamic (documented defaults)
        "dynamic": default_of(kind, "dynamic"),  # enableDynamicPortAllocation
        "max_ports_per_vm": default_of(kind, "max_ports_per_vm"),  # (dynamic only)
        "grow_lag": 5.0,  # inferred: seconds until a doubled allocation is usable
        "grow_threshold": 0.9,  # inferred: "close to being out of ports"
        "endpoint_independent_mapping": default_of(kind, "eim"),
        "tcp_time_wait_timeout": default_of(kind, "hold_fin"),  # tcpTimeWaitTimeoutSec
        "tcp_transitory_idle_timeout": 30.0,  # tcpTransitoryIdleTimeoutSec
        "tcp_established_idle_timeout": default_of(kind, "idle_timeout"),
        "udp_idle_timeout": 30.0,  # udpIdleTimeoutSec
    }

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        opts = super().check_options(options)
        dynamic = flag(opts, "dynamic")
        eim = flag(opts, "endpoint_independent_mapping")
        low = integer(opts, "min_ports_per_vm", 0, 65536)
        high = integer(opts, "max_ports_per_vm", 2, 65536)
        if dynamic:
            low = low or 32
            if low < 32 or not _power_of_two(low):
                raise ValueError("min_ports_per_vm: a power of two >= 32 with dynamic = true")
            if not _power_of_two(high) or high <= low:
                raise ValueError(
                    "max_ports_per_vm: a power of two above min_ports_per_vm with dynamic = true"
                )
            if eim:
                raise ValueError(
                    "endpoint_independent_mapping: Cloud NAT does not allow it with dynamic "
                    "port allocation"
                )
        elif low > 64512:
            raise ValueError("min_ports_per_vm: at most 64,512 (one address) when static")
        opts["min_ports_per_vm"] = low or (32 if dynamic else 64)
        number(opts, "grow_lag")
        number(opts, "grow_threshold", 0.0, 1.0)
        for key in (
            "tcp_time_wait_timeout",
            "tcp_transitory_idle_timeout",
            "tcp_established_idle_timeout",
            "udp_idle_timeout",
        ):
            number(opts, key, 1.0)
        return opts

    def __init__(self, config: GatewayConfig, stream: Stream) -> None:
        super().__init__(config, stream)
        opts = self.options
        self.dynamic = bool(opts["dynamic"])
        self.eim = bool(opts["endpoint_independent_mapping"])
        self.min_ports = int(opts["min_ports_per_vm"])
        self.max_ports = int(opts["max_ports_per_vm"]) if self.dynamic else self.min_ports
        self.grow_lag = float(opts["grow_lag"])
        self.grow_threshold = float(opts["grow_threshold"])
        udp = float(opts["udp_idle_timeout"])
        self.holds.update(
            {
                FIN: float(opts["tcp_time_wait_timeout"]),
                RST: float(opts["tcp_transitory_idle_timeout"]),
                UDP: udp,
                IDLE: 0.0,
            }
        )
        self.idle_timeouts = {"tcp": float(opts["tcp_established_idle_timeout"]), "udp": udp}
        self.next_free = [self.lo] * len(self.addresses)  # bump allocator per address
        self.vms: dict[int, Vm] = {}
        self.allocation_failed = 0
        self.growths = 0

    # -- port reservation ----------------------------------------------------------------
    def _reserve(self, count: int, whole: bool) -> list[tuple[int, int, int]] | None:
        """``count`` more ports: on one address (``whole``, static allocation) or spread
        over addresses in order; None when the addresses lack them."""
        top = self.hi + 1
        if whole:
            for i, start in enumerate(self.next_free):
                if top - start >= count:
                    self.next_free[i] = start + count
                    return [(i, start, count)]
            return None
        if sum(top - s for s in self.next_free) < count:
            return None
        chunks, left = [], count
        for i, start in enumerate(self.next_free):
            take = min(top - start, left)
            if take > 0:
                chunks.append((i, start, take))
                self.next_free[i] = start + take
                left -= take
            if not left:
                break
        return chunks

    def _vm(self, member: int) -> Vm:
        vm = self.vms.get(member)
        if vm is None:
            vm = self.vms[member] = Vm(member)
            chunks = self._reserve(self.min_ports, whole=not self.dynamic)
            if chunks is None:
                vm.failed = True  # nat_allocation_failed: this VM gets no ports
                self.allocation_failed += 1
            else:
                self._grant(vm, chunks, self.min_ports)
        return vm

    def _grant(self, vm: Vm, chunks: list[tuple[int, int, int]], count: int) -> None:
        vm.chunks.extend(chunks)
        vm.allocation += count
        vm.refs.extend([0] * count)
        vm.bound.extend(bytes(count))
        for table in vm.tables.values():
            table.cells.extend(bytes(count))
            resize(table.use, vm.allocation)

    def _grow(self, vm: Vm) -> None:
        """Dynamic allocation: the doubled allocation is usable now (after the lag)."""
        vm.grow_at = float("inf")
        extra = min(vm.allocation * 2, self.max_ports) - vm.allocation
        if extra <= 0:
            return
        chunks = self._reserve(extra, whole=False)
        if chunks is None:
            self.allocation_failed += 1
            return
        self.growths += 1
        self._grant(vm, chunks, extra)

    def _where(self, vm: Vm, slot: int) -> tuple[str, int]:
        """The NAT address and port of a VM's slot."""
        for i, first, count in vm.chunks:
            if slot < count:
                return self.addresses[i], first + slot
            slot -= count
        raise IndexError(slot)

    # -- the hot path --------------------------------------------------------------------
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
        vm = self._vm(member)
        if vm.failed:
            return self._drop(OUT_OF_RESOURCES)
        if now >= vm.grow_at:
            self._grow(vm)
        dkey = (protocol, destination, destination_port)
        table = vm.tables.get(dkey)
        if table is None:
            use = DestinationUse(dkey, vm.allocation, now)
            use.label = member_label(dkey, self.member_name(member))
            self.destinations[(*dkey, member)] = use  # type: ignore[index]
            table = vm.tables[dkey] = self.new_table(vm.allocation, use)
        inner = None
        if self.eim:
            inner = (protocol, source_port)
            binding = vm.bindings.get(inner)
            if binding is not None:
                slot = binding[0]
                if table.cells[slot]:
                    return self._drop(ENDPOINT_INDEPENDENCE_CONFLICT)
            else:
                free = np.flatnonzero(
                    (np.frombuffer(vm.bound, np.uint8) == 0)
                    & (np.frombuffer(table.cells, np.uint8) == 0)
                )
                if not len(free):
                    return self._drop(OUT_OF_RESOURCES)
                slot = int(free[0])
                binding = vm.bindings[inner] = [slot, 0]
                vm.bound[slot] = 1
            binding[1] += 1
        else:
            slot = table.cells.find(0)
            if slot < 0:
                if self.dynamic and vm.grow_at == float("inf"):
                    vm.grow_at = now + self.grow_lag
                return self._drop(OUT_OF_RESOURCES)
        address, port = self._where(vm, slot)
        m: CloudNatMapping = self._take(  # type: ignore[assignment]
            table, slot, address, port, protocol, now, CloudNatMapping
        )
        m.vm = vm
        m.inner = inner
        if vm.refs[slot] == 0:
            vm.used += 1
            if vm.used > vm.peak_used:
                vm.peak_used = vm.used
        vm.refs[slot] += 1
        if (
            self.dynamic
            and vm.grow_at == float("inf")
            and table.held >= self.grow_threshold * vm.allocation
            and vm.allocation < self.max_ports
        ):
            vm.grow_at = now + self.grow_lag
        return m

    def _freed(self, m: SlotMapping, at: float) -> None:
        vm: Vm = m.vm  # type: ignore[attr-defined]
        vm.refs[m.slot] -= 1
        if vm.refs[m.slot] == 0:
            vm.used -= 1
        inner = m.inner  # type: ignore[attr-defined]
        if inner is not None:
            binding = vm.bindings[inner]
            binding[1] -= 1
            if binding[1] == 0:
                del vm.bindings[inner]
                vm.bound[binding[0]] = 0

    def ports(self) -> int:
        return self.hi - self.lo + 1

    def capacity(self, key: tuple[str, str, int]) -> int:
        return self.min_ports

    def summary(self, until: float) -> dict[str, Any]:
        out = super().summary(until)
        c = self.counters
        allocations = [vm.allocation for vm in self.vms.values()]
        out["dynamic"] = self.dynamic
        out["endpoint_independent_mapping"] = self.eim
        out["min_ports_per_vm"] = self.min_ports
        out["max_ports_per_vm"] = self.max_ports
        out["allocated_ports"] = {
            "min": min(allocations, default=0),
            "max": max(allocations, default=0),
        }
        out["allocation_growths"] = self.growths
        # as Cloud Monitoring names them (nat.googleapis.com / compute VM metrics)
        out["cloud_monitoring"] = {
            "dropped_sent_packets_count": {
                OUT_OF_RESOURCES: c.dropped_by_reason[OUT_OF_RESOURCES],
                ENDPOINT_INDEPENDENCE_CONFLICT: c.dropped_by_reason[ENDPOINT_INDEPENDENCE_CONFLICT],
            },
            "nat_allocation_failed": self.allocation_failed > 0,
            "port_usage_peak": max((vm.peak_used for vm in self.vms.values()), default=0),
        }
        return out
