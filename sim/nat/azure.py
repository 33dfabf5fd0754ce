"""Azure outbound SNAT: the Load Balancer's (kind ``azure-lb``) and NAT Gateway (``azure-natgw``).

``azure-lb`` (default outbound access and load-balancer outbound rules).  Documented in
Microsoft, "Source Network Address Translation (SNAT) for outbound connections",
https://learn.microsoft.com/azure/load-balancer/load-balancer-outbound-connections, and
"Outbound rules Azure Load Balancer", https://learn.microsoft.com/azure/load-balancer/outbound-rules:

* 64,000 SNAT ports per frontend address; each load-balancing or inbound NAT rule takes a
  block of 8;
* ports are preallocated per VM (per IP configuration, per protocol) by backend pool size:
  1-50 VMs 1,024; 51-100 512; 101-200 256; 201-400 128; 401-800 64; 801-1,000 32; or,
  with an outbound rule, ``allocatedOutboundPorts`` (a multiple of 8; the sum over the pool
  must fit the frontends, otherwise the configuration is rejected);
* several frontends are used one at a time: VMs draw from the first until its ports are
  gone (MicrosoftDocs/azure-docs#81893 asks why the others stay unused);
* TCP uses one SNAT port per (destination address, destination port): a port serves
  several destinations at once; UDP one per destination address whatever the port;
* a port is freed 240 s after FIN/ACK, 15 s after an RST, and at the idle timeout (4 min
  by default, 4-120 min with outbound rules); at the idle timeout the flow is silently
  dropped unless TCP reset on idle (``enableTcpReset``) is on;
* the pool growing into the next tier reclaims ports from each VM, and the flows on
  reclaimed ports are lost.
Older revisions of the page say ports are taken "from lowest to highest, the first
available port", which this model does.  Inferred: which port numbers a slice has (the
numbers are labels here), and that a flow lost to a reclaim behaves as an idle-timed-out one.

``azure-natgw``.  Documented in Microsoft, "Azure NAT Gateway resource",
https://learn.microsoft.com/azure/nat-gateway/nat-gateway-resource, and "Source Network
Address Translation (SNAT) with Azure NAT Gateway",
https://learn.microsoft.com/azure/nat-gateway/nat-gateway-snat:

* 64,512 SNAT ports per public address, up to 16 addresses; TCP and UDP inventories apart;
* no preallocation: any VM of the attached subnets takes ports on demand;
* a new flow gets a random available port; when none is available, a port in use towards
  other destinations is reused (connections to one destination always get distinct ports);
* 50,000 concurrent connections per address to one destination endpoint, 2 million in all;
* port reuse cooldowns to the same destination: 65 s after FIN, 16 s after RST, 65 s for
  UDP (Microsoft: "subject to change");
* TCP idle timeout 4 min by default (4-120 min), UDP 4 min fixed; a flow dropped at idle
  gets a one-way RST when traffic shows up on it.
Inferred: how addresses are chosen (random here), whether a port freed by the idle timeout
gets a cooldown (``idle_cooldown``, 0), and the random choice as a random start followed by
the next available port.  The half-open cooldown (30 s) has no flow to apply to: the
model's destinations always answer.
"""

from __future__ import annotations

from array import array
from typing import TYPE_CHECKING, Any, ClassVar

from sim.nat.base import FIN, IDLE, RST, UDP, DestinationUse, Mapping
from sim.nat.slots import (
    EXPIRED,
    HELD,
    LIVE,
    SlotGateway,
    SlotMapping,
    Table,
    flag,
    integer,
    member_label,
    number,
    random_free,
    resize,
)
from sim.nat_kinds import AZURE_LB_POOL_TABLE, default_of

if TYPE_CHECKING:
    from sim.nat.base import GatewayConfig
    from sim.randomness import Stream

SNAT_FAILED = "SNAT_connection_failed"  # "SNAT Connection Count", state Failed


def ports_per_vm(pool_size: int) -> int:
    """Default preallocation for a backend pool of ``pool_size`` VMs (Microsoft's table,
    :data:`sim.nat_kinds.AZURE_LB_POOL_TABLE`, which the sizing calculator reads too); 0
    beyond the table."""
    for largest, ports in AZURE_LB_POOL_TABLE:
        if pool_size <= largest:
            return ports
    return 0


def _fit(pool_size: int, fixed: int, usable: int, frontends: int) -> int:
    """Ports per VM for ``pool_size`` VMs (``fixed`` from an outbound rule, else the
    table), or ``ValueError`` when they do not fit the frontends."""
    per_vm = fixed or ports_per_vm(pool_size)
    if per_vm == 0:
        raise ValueError(
            f"backend_pool_size: default outbound access preallocates for at most 1,000 "
            f"VMs (got {pool_size}); set allocated_outbound_ports"
        )
    room = (usable // per_vm) * frontends
    if pool_size > room:
        raise ValueError(
            f"allocated_outbound_ports: {pool_size:,} VMs x {per_vm:,} ports do not fit "
            f"{frontends} frontend(s) of {usable:,} SNAT ports"
        )
    return per_vm


class Vm:
    """One backend VM's slice: its allocation, per-port reference counts (a port is used
    while any flow to any destination holds it) and its tables by destination."""

    __slots__ = ("address", "allocation", "base", "index", "peak_used", "refs", "tables", "used")

    def __init__(self, index: int) -> None:
        self.index = index
        self.allocation = 0
        self.address = ""
        self.base = 0
        self.refs: list[int] = []
        self.used = 0
        self.peak_used = 0
        self.tables: dict[tuple[Any, ...], Table] = {}


class VmMapping(SlotMapping):
    __slots__ = ("vm",)

    vm: Vm


class AzureLoadBalancer(SlotGateway):
    """Preallocated per-VM slices, filled frontend by frontend; lowest free port first."""

    kind: ClassVar[str] = "azure-lb"
    drop_reasons: ClassVar[tuple[str, ...]] = (SNAT_FAILED,)
    idle_signal = "ETIMEDOUT"  # a silent drop; ECONNRESET with tcp_reset
    defaults: ClassVar[dict[str, Any]] = {
        "ports_per_frontend": default_of(kind, "ports_per_address"),
        "rules": default_of(kind, "rules"),  # LB + inbound NAT rules (8 ports each)
        "backend_pool_size": 0,  # VMs in the backend pool; 0: the hosts behind the gateway
        "allocated_outbound_ports": 0,  # outbound rule; 0: by pool size (the table)
        "idle_timeout": default_of(kind, "idle_timeout"),  # 4 min default, 4-120 min
        "tcp_reset": False,  # enableTcpReset: an RST at idle timeout instead of a silent drop
        "fin_hold": default_of(kind, "hold_fin"),
        "rst_hold": default_of(kind, "hold_rst"),
        "scale": [],  # [[time_s, backend_pool_size], ...]: the pool resized during the run
    }

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        opts = super().check_options(options)
        integer(opts, "ports_per_frontend", 8, 64000)
        integer(opts, "rules", 0, 7999)
        integer(opts, "backend_pool_size", 0, 1000)
        ports = integer(opts, "allocated_outbound_ports", 0, 64000)
        if ports % 8:
            raise ValueError(f"allocated_outbound_ports: a multiple of 8 (got {ports})")
        number(opts, "idle_timeout", 240.0, 7200.0)
        flag(opts, "tcp_reset")
        number(opts, "fin_hold")
        number(opts, "rst_hold")
        scale = opts["scale"]
        if not isinstance(scale, list) or not all(
            isinstance(s, list | tuple)
            and len(s) == 2
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in s)
            for s in scale
        ):
            raise ValueError("scale: a list of [time_s, backend_pool_size] pairs")
        for t, size in scale:
            if t < 0 or not 1 <= size <= 1000 or size != int(size):
                raise ValueError("scale: times >= 0 and pool sizes 1-1,000")
        return opts

    def __init__(self, config: GatewayConfig, stream: Stream) -> None:
        super().__init__(config, stream)
        opts = self.options
        idle = float(opts["idle_timeout"])
        self.holds.update(
            {FIN: float(opts["fin_hold"]), RST: float(opts["rst_hold"]), UDP: idle, IDLE: 0.0}
        )
        self.idle_timeouts = {"tcp": idle, "udp": idle}
        self.tcp_reset = bool(opts["tcp_reset"])
        self.idle_signal = "ECONNRESET" if self.tcp_reset else "ETIMEDOUT"
        self.usable = int(opts["ports_per_frontend"]) - 8 * int(opts["rules"])
        self.fixed = int(opts["allocated_outbound_ports"])
        self.vms: dict[tuple[str, int], Vm] = {}  # (protocol, member): per-protocol slices
        self.schedule = sorted((float(t), int(n)) for t, n in opts["scale"])
        self.next_scale = self.schedule[0][0] if self.schedule else float("inf")
        self.pool_size = int(opts["backend_pool_size"])
        self.reclaimed = 0
        self.allocation = self._allocation(self.pool_size) if self.pool_size else 0

    def _allocation(self, pool_size: int) -> int:
        """Ports per VM for a pool of ``pool_size``: the outbound rule's, else the table's;
        ``ValueError`` when the pool does not fit (Azure rejects the configuration)."""
        return _fit(pool_size, self.fixed, self.usable, len(self.addresses))

    @classmethod
    def check_setup(cls, addresses: tuple[str, ...], options: dict[str, Any], inside: int) -> None:
        """The pool (``backend_pool_size``, else the hosts behind it, and every size in
        ``scale``) must fit the frontends, as Azure refuses the configuration otherwise."""
        opts = cls.check_options(options)
        pool = int(opts["backend_pool_size"]) or inside
        if pool and pool < inside:
            raise ValueError(
                f"backend_pool_size: {pool} is fewer than the {inside} hosts behind the gateway"
            )
        usable = int(opts["ports_per_frontend"]) - 8 * int(opts["rules"])
        fixed = int(opts["allocated_outbound_ports"])
        for size in [pool] + [int(n) for _, n in opts["scale"]]:
            if size:
                _fit(size, fixed, usable, len(addresses))

    def set_inside(self, inside: int) -> None:
        """The hosts behind the gateway are the backend pool unless the scenario says more."""
        self.set_pool_size(inside)

    def set_pool_size(self, n: int) -> None:
        """The pool size when the scenario did not give ``backend_pool_size``."""
        if not self.pool_size and n:
            self.pool_size = n
            self.allocation = self._allocation(n)

    def _vm(self, protocol: str, member: int) -> Vm:
        vm = self.vms.get((protocol, member))
        if vm is None:
            if not self.allocation:
                self.set_pool_size(max(1, len(self.members)))
            vm = self.vms[(protocol, member)] = Vm(member)
            self._place(vm, self.allocation)
        return vm

    def _place(self, vm: Vm, allocation: int) -> None:
        """The VM's slice: frontends filled one at a time, VMs in member order."""
        per_frontend = self.usable // allocation
        frontend = min(vm.index // per_frontend, len(self.addresses) - 1)
        vm.address = self.addresses[frontend]
        vm.base = self.lo + 8 * int(self.options["rules"]) + (vm.index % per_frontend) * allocation
        if allocation > vm.allocation:
            grow = allocation - vm.allocation
            vm.refs.extend([0] * grow)
            for table in vm.tables.values():
                table.cells.extend(bytes(grow))
                resize(table.use, allocation)
        vm.allocation = allocation

    def _rescale(self, at: float) -> None:
        """The pool changed size at ``at``: every VM's slice follows the table; ports cut
        from a slice are reclaimed and their flows lost."""
        self.settle(at)
        _, size = self.schedule.pop(0)
        self.next_scale = self.schedule[0][0] if self.schedule else float("inf")
        self.pool_size = size
        new = self.fixed or ports_per_vm(size)
        self.allocation = new
        for vm in self.vms.values():
            if new < vm.allocation:
                for table in vm.tables.values():
                    for slot in [s for s in table.owners if s >= new]:
                        m = table.owners[slot]
                        if m.state == LIVE:
                            self.reclaimed += 1
                            self._expire_now(m, at)
                        else:
                            self._end(m, at)
                    del table.cells[new:]
                    resize(table.use, new)
                del vm.refs[new:]
                vm.allocation = new
            self._place(vm, new)

    def _expire_now(self, m: SlotMapping, at: float) -> None:
        m.state = HELD
        self.live -= 1
        self._end(m, at)
        m.state = EXPIRED

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
        if now >= self.next_scale:
            while now >= self.next_scale:
                self._rescale(self.next_scale)
        if now >= self.due:
            self.settle(now)
        self.counters.attempted += 1
        vm = self._vm(protocol, member)
        # TCP: one port per (destination address, port); UDP: per destination address
        key: tuple[Any, ...] = (protocol, destination)
        if protocol == "tcp":
            key = (protocol, destination, destination_port)
        table = vm.tables.get(key)
        if table is None:
            use = DestinationUse((protocol, destination, destination_port), vm.allocation, now)
            use.label = member_label(key, self.member_name(member))
            self.destinations[(*key, member)] = use
            table = vm.tables[key] = self.new_table(vm.allocation, use)
        slot = table.cells.find(0)  # lowest free first
        if slot < 0:
            return self._drop(SNAT_FAILED)
        m: VmMapping = self._take(  # type: ignore[assignment]
            table, slot, vm.address, vm.base + slot, protocol, now, VmMapping
        )
        m.vm = vm
        if vm.refs[slot] == 0:
            vm.used += 1
            if vm.used > vm.peak_used:
                vm.peak_used = vm.used
        vm.refs[slot] += 1
        return m

    def _freed(self, m: SlotMapping, at: float) -> None:
        vm = m.vm  # type: ignore[attr-defined]
        if m.slot < len(vm.refs):
            vm.refs[m.slot] -= 1
            if vm.refs[m.slot] == 0:
                vm.used -= 1

    def ports(self) -> int:
        """SNAT ports per frontend address after the rules' blocks."""
        return self.usable

    def capacity(self, key: tuple[str, str, int]) -> int:
        return self.allocation or 1

    def summary(self, until: float) -> dict[str, Any]:
        out = super().summary(until)
        c = self.counters
        out["backend_pool_size"] = self.pool_size
        out["ports_per_vm"] = self.allocation
        frontends = {vm.address for vm in self.vms.values()}
        out["frontends_used"] = sorted(frontends)
        out["reclaimed_flows"] = self.reclaimed
        # as Azure Monitor names the load balancer's metrics (sums / peaks over the run)
        out["azure_monitor"] = {
            "SNAT Connection Count": {"Successful": c.succeeded, "Failed": c.dropped},
            "Allocated SNAT Ports": self.allocation,
            "Used SNAT Ports": max((vm.peak_used for vm in self.vms.values()), default=0),
        }
        return out


class NatGwMapping(SlotMapping):
    __slots__ = ("index",)

    index: int  # which public address


class AzureNatGateway(SlotGateway):
    """Ports on demand for every VM: a random fully free port, else one free towards this
    destination; cooldowns before a port goes to the same destination again."""

    kind: ClassVar[str] = "azure-natgw"
    drop_reasons: ClassVar[tuple[str, ...]] = (SNAT_FAILED,)
    idle_signal = "ECONNRESET"  # one-way RST when traffic shows up
    defaults: ClassVar[dict[str, Any]] = {
        "per_destination_limit": default_of(kind, "per_destination_cap"),
        "total_limit": default_of(kind, "total_connection_cap"),
        "fin_cooldown": default_of(kind, "hold_fin"),
        "rst_cooldown": default_of(kind, "hold_rst"),
        "udp_cooldown": 65.0,  # documented
        "idle_cooldown": 0.0,  # inferred: undocumented whether idle-freed ports cool down
        "idle_timeout": default_of(kind, "idle_timeout"),  # TCP: 4 min default, 4-120 min
        "udp_idle_timeout": 240.0,  # documented: fixed
        "enforce_address_limit": True,  # refuse more than 16 addresses
    }

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        opts = super().check_options(options)
        integer(opts, "per_destination_limit", 1, 64512)
        integer(opts, "total_limit", 1)
        for key in ("fin_cooldown", "rst_cooldown", "udp_cooldown", "idle_cooldown"):
            number(opts, key)
        number(opts, "idle_timeout", 240.0, 7200.0)
        number(opts, "udp_idle_timeout", 1.0)
        flag(opts, "enforce_address_limit")
        return opts

    @classmethod
    def check_setup(cls, addresses: tuple[str, ...], options: dict[str, Any], inside: int) -> None:
        opts = cls.check_options(options)
        if opts["enforce_address_limit"] and len(addresses) > 16:
            raise ValueError(
                f"addresses: a NAT gateway takes at most 16 public addresses, got {len(addresses)}"
            )

    def __init__(self, config: GatewayConfig, stream: Stream) -> None:
        super().__init__(config, stream)
        opts = self.options
        self.check_setup(self.addresses, opts, 0)
        self.holds.update(
            {
                FIN: float(opts["fin_cooldown"]),
                RST: float(opts["rst_cooldown"]),
                UDP: float(opts["udp_cooldown"]),
                IDLE: float(opts["idle_cooldown"]),
            }
        )
        self.idle_timeouts = {
            "tcp": float(opts["idle_timeout"]),
            "udp": float(opts["udp_idle_timeout"]),
        }
        self.limit = min(int(opts["per_destination_limit"]), self.ports())
        self.total_limit = int(opts["total_limit"])
        size = self.ports()
        # per protocol (separate inventories) and address: flows on each port, any destination
        self.refs: dict[str, list[array[int]]] = {}
        self.busy: dict[str, list[bytearray]] = {}  # 1 where refs > 0 (searched with find)
        for protocol in ("tcp", "udp"):
            self.refs[protocol] = [array("I", bytes(4 * size)) for _ in self.addresses]
            self.busy[protocol] = [bytearray(size) for _ in self.addresses]
        self.tables: dict[tuple[str, str, int], list[Table]] = {}
        self.reused = 0  # flows that got a port already in use towards other destinations

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
        if self.held_total >= self.total_limit:
            return self._drop(SNAT_FAILED)
        dkey = (protocol, destination, destination_port)
        tables = self.tables.get(dkey)
        size = self.ports()
        if tables is None:
            use = self.use(dkey, now)
            tables = self.tables[dkey] = [self.new_table(size, use) for _ in self.addresses]
        n = len(tables)
        below = self.stream.below
        first = below(n) if n > 1 else 0
        busy = self.busy[protocol]
        for pass_ in (0, 1):  # a port no flow uses, then one free towards this destination
            for j in range(n):
                i = (first + j) % n
                table = tables[i]
                if table.held >= self.limit:
                    continue
                cells = busy[i] if pass_ == 0 else table.cells
                slot = random_free(cells, below(size))
                if slot >= 0:
                    if pass_:
                        self.reused += 1
                    return self._map(table, i, slot, protocol, now)
        return self._drop(SNAT_FAILED)

    def _map(self, table: Table, i: int, slot: int, protocol: str, now: float) -> Mapping:
        m: NatGwMapping = self._take(  # type: ignore[assignment]
            table, slot, self.addresses[i], self.lo + slot, protocol, now, NatGwMapping
        )
        m.index = i
        refs = self.refs[protocol][i]
        if refs[slot] == 0:
            self.busy[protocol][i][slot] = 1
        refs[slot] += 1
        return m

    def _freed(self, m: SlotMapping, at: float) -> None:
        i = m.index  # type: ignore[attr-defined]
        refs = self.refs[m.protocol][i]
        refs[m.slot] -= 1
        if refs[m.slot] == 0:
            self.busy[m.protocol][i][m.slot] = 0

    def capacity(self, key: tuple[str, str, int]) -> int:
        return self.limit * len(self.addresses)

    def summary(self, until: float) -> dict[str, Any]:
        out = super().summary(until)
        c = self.counters
        out["per_destination_limit"] = self.limit
        out["ports_reused_across_destinations"] = self.reused
        # as Azure Monitor names the NAT gateway's metrics (sums over the run)
        out["azure_monitor"] = {
            "SNAT Connection Count": {"Attempted": c.attempted, "Failed": c.dropped},
            "Total SNAT Connection Count": self.live,
            "Dropped Packets": c.dropped + self.idle_resets,
        }
        return out
