"""Gateway sizing without simulation: Little's law per translated pool, then Erlang B.

At a source NAT the scarce thing is the translated tuple, held for the connection's life
plus the gateway's hold after close.  By Little's law a key (a destination seen from one
address, one VM's slice, one subscriber's blocks) keeps ``rate x (lifetime + hold)``
tuples busy on average, so the sustainable new-connection rate through a pool of P tuples
is at most ``P / (lifetime + hold)``.  Which pool that is depends on the kind: a shared pool
per (address, destination) for netfilter, AWS and Azure NAT Gateway; a slice per VM for
Azure Load Balancer and Cloud NAT; per subscriber for carrier NATs.  Each limit is compared
with its demand and the one nearest its capacity binds first.  Where arrivals are Poisson
and the gateway finds any free tuple, the refusal probability is Erlang's B formula
(:mod:`sim.analytic`).  Load is assumed spread evenly over VMs and destinations.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from sim.config.errors import suggest
from sim.erlang import erlang_b, load_for_blocking
from sim.nat_kinds import AZURE_LB_POOL_TABLE, KINDS, SOURCES, KindProfile
from sim.units import format_percent

Close = Literal["fin", "rst"]

# No address has more ports than this (GitLab's framing counts all 65,536); it also keeps
# every Erlang B pool small enough for the O(N) recursion.
MAX_PORTS = 65536
MAX_COUNT = 10**9  # VMs, destinations, addresses: beyond any gateway, and floats stay exact


class GatewayInputError(ValueError):
    """Bad sizing input: ``problems`` holds (parameter, message) pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{key}: {msg}" for key, msg in problems))
        self.problems = problems


@dataclass(frozen=True)
class Limit:
    """One capacity limit: how many tuples (or ports, or subscribers) it allows and how many
    the load needs, both in the limit's own unit."""

    name: str
    description: str
    capacity: float
    demand: float

    @property
    def utilisation(self) -> float:
        if self.capacity <= 0:
            return math.inf if self.demand > 0 else 0.0
        return self.demand / self.capacity


@dataclass(frozen=True)
class ErlangPool:
    """Erlang B for one translated pool, or why it does not apply."""

    pool: str
    applies: bool
    why: str
    servers: int = 0
    offered_load: float = 0.0
    blocking: float = 0.0
    sustainable_rate: float = 0.0  # new connections/s into this pool at the target refusal


@dataclass(frozen=True)
class GatewaySizing:
    kind: str
    title: str
    key: str
    allocation_unit: str
    endpoint_independent: bool
    vms: int
    rate_per_vm: float
    destinations: int
    lifetime_s: float
    close: str
    hold_s: float
    holding_s: float
    addresses: int
    parameters: dict[str, dict[str, Any]]
    ports_per_vm_needed: int
    allocation_per_vm: int | None
    addresses_needed: int | None
    addresses_note: str
    max_vms: int | None
    sustainable_per_destination: float
    sustainable_per_vm_per_destination: float
    sustainable_per_vm: float | None
    demand_per_destination: float
    limits: list[Limit]
    binding: str
    erlang: ErlangPool
    notes: list[str] = field(default_factory=list)

    @property
    def binding_limit(self) -> Limit:
        return next(limit for limit in self.limits if limit.name == self.binding)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for limit, raw in zip(self.limits, out["limits"], strict=True):
            raw["utilisation"] = limit.utilisation
        return out


def size_gateway(
    kind: str,
    *,
    vms: int,
    rate: float,
    destinations: int = 1,
    lifetime_s: float = 0.0,
    close: Close = "fin",
    target_blocking: float = 0.001,
    **params: Any,
) -> GatewaySizing:
    """Size a gateway of ``kind`` for ``vms`` VMs each opening ``rate`` new connections per
    second spread evenly over ``destinations`` destinations (address, port, protocol), each
    connection living ``lifetime_s`` and closed by ``close``.  ``params`` override the
    kind's defaults (:data:`sim.nat_kinds.KINDS`).  Raises :class:`GatewayInputError`."""
    profile = _profile(kind)
    values = _values(profile, params)
    problems: list[tuple[str, str]] = []
    if type(vms) is not int or not 1 <= vms <= MAX_COUNT:
        problems.append(("vms", f"must be a whole number in 1..{MAX_COUNT:,} (got {vms})"))
    if not (math.isfinite(rate) and rate >= 0):
        problems.append(("rate", f"must be a finite number >= 0 (got {rate})"))
    if type(destinations) is not int or not 1 <= destinations <= MAX_COUNT:
        problems.append(
            ("destinations", f"must be a whole number in 1..{MAX_COUNT:,} (got {destinations})")
        )
    if not (math.isfinite(lifetime_s) and lifetime_s >= 0):
        problems.append(("lifetime", f"must be a finite duration >= 0 (got {lifetime_s})"))
    if close not in ("fin", "rst"):
        problems.append(("close", f"must be fin or rst (got {close!r})"))
    if not 0 < target_blocking < 1:
        problems.append(("target_blocking", f"must be between 0 and 1 (got {target_blocking})"))
    problems += _check_values(profile, values)
    if problems:
        raise GatewayInputError(problems)
    hold = float(values["hold_fin"] if close == "fin" else values["hold_rst"])
    load = _Load(vms, rate, destinations, lifetime_s + hold, target_blocking)
    if not math.isfinite(load.per_destination * destinations):
        raise GatewayInputError(
            [("rate", f"rate x (lifetime + hold) x VMs is too large to count (got {rate:g}/s)")]
        )
    sizer = _SIZERS[profile.unit]
    result = sizer(profile, values, load)
    notes = result.pop("notes")
    if lifetime_s > values["idle_timeout"]:
        notes.append(
            f"connections live {lifetime_s:g} s, longer than the idle timeout "
            f"({values['idle_timeout']:g} s): they survive only if they carry traffic (or TCP "
            "keepalive) more often than that"
        )
    limits: list[Limit] = result.pop("limits")
    limits.append(_vm_range_limit(values, load, lifetime_s, close))
    binding = max(limits, key=lambda lim: lim.utilisation)
    return GatewaySizing(
        kind=profile.name,
        title=profile.title,
        key=profile.key,
        allocation_unit=profile.unit,
        endpoint_independent=_eim(profile, values),
        vms=vms,
        rate_per_vm=rate,
        destinations=destinations,
        lifetime_s=lifetime_s,
        close=close,
        hold_s=hold,
        holding_s=load.holding,
        addresses=int(values["addresses"]),
        parameters=_described(profile, values, params),
        demand_per_destination=vms * rate / destinations,
        limits=limits,
        binding=binding.name,
        notes=notes,
        **result,
    )


VM_RANGE = "vm_port_range"  # the limit of each VM's own ports (a parameter of every kind)


def _vm_range_limit(values: dict[str, Any], load: _Load, lifetime_s: float, close: Close) -> Limit:
    """Each VM's own ports: connect() takes one local port per connection to a destination
    (4-tuple uniqueness), held for the connection and the VM's TIME_WAIT after a close of
    its own (none after an RST)."""
    lo, hi = values["vm_port_range"]
    ports = hi - lo + 1
    time_wait = float(values["vm_time_wait"]) if close == "fin" else 0.0
    held = load.rate / load.destinations * (lifetime_s + time_wait)
    return Limit(
        VM_RANGE,
        f"one VM's own ports to one destination ({lo}-{hi}: {ports:,}, each held "
        f"{lifetime_s:g} s + {time_wait:g} s TIME_WAIT)",
        ports,
        held,
    )


# ---- inputs -------------------------------------------------------------------------------


def _profile(kind: str) -> KindProfile:
    profile = KINDS.get(kind)
    if profile is None:
        # kinds are compound names: 0.5 lets "aws" and "k8s" find aws-natgw and k8s-node
        hint = suggest(kind, KINDS, cutoff=0.5)
        hint = f"; {hint}" if hint else ""
        raise GatewayInputError(
            [("gateway", f"unknown kind {kind!r}{hint} (kinds: {', '.join(KINDS)})")]
        )
    return profile


def _values(profile: KindProfile, params: dict[str, Any]) -> dict[str, Any]:
    unknown = [name for name in params if name not in profile.params]
    if unknown:
        problems = []
        for name in unknown:
            hint = suggest(name, profile.params)
            hint = f"{hint} " if hint else ""
            problems.append(
                (
                    name,
                    f"not a parameter of {profile.name}; {hint}its parameters: "
                    f"{', '.join(profile.params)}",
                )
            )
        raise GatewayInputError(problems)
    values = {name: d.value for name, d in profile.params.items()}
    values.update({k: v for k, v in params.items() if v is not None})
    return values


def _check_values(profile: KindProfile, values: dict[str, Any]) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for name, default in profile.params.items():
        value = values[name]
        if value is None:
            continue
        if default.unit == "bool":
            if not isinstance(value, bool):
                problems.append((name, f"must be true or false (got {value!r})"))
        elif default.unit == "range":
            ok = (
                isinstance(value, tuple)
                and len(value) == 2
                and all(type(p) is int for p in value)
                and 1 <= value[0] <= value[1] <= 65535
            )
            if not ok:
                problems.append((name, f"must be LOW-HIGH within 1..65535 (got {value!r})"))
        elif default.unit == "s":
            if isinstance(value, bool) or not isinstance(value, int | float):
                problems.append((name, f"must be a duration (got {value!r})"))
            elif not (math.isfinite(value) and value >= 0):
                problems.append((name, f"must be a finite duration >= 0 (got {value})"))
        else:
            floor = 0 if name == "rules" else 1
            top = MAX_PORTS if default.unit == "ports" else MAX_COUNT
            if type(value) is not int or value < floor:
                problems.append((name, f"must be a whole number >= {floor} (got {value!r})"))
            elif top is not None and value > top:
                problems.append((name, f"must be at most {top:,} (got {value:,})"))
    if problems:
        return problems
    cap = values.get("max_addresses")
    if cap is not None and values["addresses"] > cap:
        problems.append(
            (
                "addresses",
                f"{profile.name} takes at most {cap} addresses (got {values['addresses']})",
            )
        )
    allocated = values.get("ports_per_vm") if profile.name == "azure-lb" else None
    if allocated is not None and allocated % 8:
        problems.append(
            ("ports_per_vm", f"allocatedOutboundPorts must be a multiple of 8 (got {allocated})")
        )
    if profile.name == "gcp-cloudnat" and values["dynamic"]:
        lo, hi = values["dynamic_min_ports_per_vm"], values["max_ports_per_vm"]
        for name, v in (("dynamic_min_ports_per_vm", lo), ("max_ports_per_vm", hi)):
            if v & (v - 1):
                problems.append((name, f"must be a power of 2 under dynamic allocation (got {v})"))
        if lo < 32:
            problems.append(("dynamic_min_ports_per_vm", f"must be >= 32 (got {lo})"))
        if hi <= lo:
            problems.append(("max_ports_per_vm", f"must be above the minimum {lo} (got {hi})"))
        if values["eim"]:
            problems.append(
                ("eim", "endpoint-independent mapping cannot be used with dynamic allocation")
            )
    if profile.name == "cgn-pba" and values["block_size"] > values["ports_per_address"]:
        problems.append(
            ("block_size", f"must be at most the {values['ports_per_address']} ports of an address")
        )
    if (
        profile.name == "cgn-deterministic"
        and values["sharing_ratio"] > values["ports_per_address"]
    ):
        problems.append(
            (
                "sharing_ratio",
                f"must leave each subscriber a port (at most {values['ports_per_address']})",
            )
        )
    return problems


def _described(
    profile: KindProfile, values: dict[str, Any], given: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    out = {}
    for name, default in profile.params.items():
        chosen = name in given and given[name] is not None
        value = values[name]
        out[name] = {
            "value": list(value) if isinstance(value, tuple) else value,
            "status": "given" if chosen else default.status,
            "source": "" if chosen else SOURCES[default.source],
            "meaning": default.meaning,
        }
    return out


def _eim(profile: KindProfile, values: dict[str, Any]) -> bool:
    return profile.endpoint_independent or bool(values.get("eim", False))


@dataclass(frozen=True)
class _Load:
    vms: int
    rate: float  # per VM, all destinations
    destinations: int
    holding: float  # lifetime + hold

    target_blocking: float

    @property
    def per_vm_destination(self) -> float:
        """Tuples one VM keeps busy to one destination (Little's law)."""
        return self.rate / self.destinations * self.holding

    @property
    def per_vm_total(self) -> float:
        return self.rate * self.holding

    @property
    def per_destination(self) -> float:
        """Tuples the whole fleet keeps busy to one destination."""
        return self.vms * self.per_vm_destination


def _per_second(tuples: float, holding: float) -> float:
    return tuples / holding if holding > 0 else math.inf


def _erlang(
    pool: str, servers: int, offered: float, holding: float, target: float, why: str
) -> ErlangPool:
    return ErlangPool(
        pool=pool,
        applies=True,
        why=why,
        servers=servers,
        offered_load=offered,
        blocking=erlang_b(servers, offered),
        sustainable_rate=_per_second(load_for_blocking(servers, target), holding),
    )


# ---- shared pool per address: netfilter, AWS NAT Gateway, Azure NAT Gateway ---------------


def _shared_pool(profile: KindProfile, values: dict[str, Any], load: _Load) -> dict[str, Any]:
    addresses = int(values["addresses"])
    linux = "port_range" in values
    if linux:
        lo, hi = values["port_range"]
        per_address = hi - lo + 1
        pool_name = f"--to-ports {lo}-{hi} ({per_address:,} ports)"
    else:
        per_address = min(int(values["ports_per_address"]), int(values["per_destination_cap"]))
        pool_name = f"{per_address:,} concurrent connections per address per destination"
    notes: list[str] = []
    limits = [
        Limit(
            "per_destination",
            f"{pool_name} x {addresses} address(es), to one destination",
            addresses * per_address,
            load.per_destination,
        )
    ]
    needed: int | None = max(1, math.ceil(load.per_destination / per_address))
    note = ""
    per_vm_ceiling = addresses * per_address
    sustainable = _per_second(addresses * per_address, load.holding)
    # the load on one address: an even split for the cloud kinds (assumed, undocumented)
    on_one_address = load.per_destination / addresses
    if linux:
        # netfilter hashes each VM to one address: at best the busiest carries
        # ceil(VMs / addresses) whole VMs, and it fills first
        crowd = math.ceil(load.vms / addresses)
        on_one_address = crowd * load.per_vm_destination
        limits[0] = Limit(
            "per_destination",
            f"the busiest address's {pool_name} to one destination, carrying "
            f"{crowd:,} VM(s) by hash at best",
            per_address,
            on_one_address,
        )
        sustainable = _per_second(per_address, load.holding) * load.vms / crowd
        fit = math.floor(per_address / load.per_vm_destination) if load.per_vm_destination else 0
        if fit >= 1:
            needed = max(1, math.ceil(load.vms / fit))
        vm_lo, vm_hi = values["vm_port_range"]
        vm_ports = vm_hi - vm_lo + 1
        # (a quarter: where reuse within the hold starts to matter; a threshold, inferred)
        if load.per_vm_destination > 0.25 * vm_ports:
            notes.append(
                f"one VM keeps {load.per_vm_destination:,.0f} tuples busy by this formula, "
                f"{format_percent(load.per_vm_destination / vm_ports)} of its own "
                f"{vm_ports:,} ports: it reuses ports within the gateway's hold, and a "
                "SYN on a closing 4-tuple reopens the old conntrack entry instead of taking a "
                "new tuple (nf_conntrack_proto_tcp.c), so it holds fewer and the formula "
                "overstates the demand: simulate the scenario to see how many"
            )
        per_vm_ceiling = per_address
        limits.append(
            Limit(
                "per_vm_destination",
                f"one VM to one destination: one address by hash of (source, destination), "
                f"no spill-over ({per_address:,} ports)",
                per_address,
                load.per_vm_destination,
            )
        )
        if addresses > 1:
            notes.append(
                "netfilter picks the address by a hash of (source, destination), not by load: "
                "the split assumed here (whole VMs, as even as they go) is the best case"
            )
        if load.per_vm_destination > per_address:
            needed = None
            note = (
                f"no address count is enough: one VM needs {math.ceil(load.per_vm_destination):,} "
                f"tuples to one destination and a single address gives it {per_address:,}; "
                "widen the range, add destinations or reuse connections"
            )
    cap = values.get("total_connection_cap")
    if cap is not None:
        total = load.vms * load.per_vm_total
        limits.append(Limit("total_connections", f"{cap:,} connections per gateway", cap, total))
        if total > cap:
            needed, note = (
                None,
                f"the gateway's {cap:,} connections are fewer than the {total:,.0f} needed",
            )
    most = values.get("max_addresses")
    if needed is not None and most is not None and needed > most:
        note = (
            f"more than the {most} addresses {profile.name} takes: split the traffic over gateways"
        )
    erlang = _erlang(
        f"one address's tuples to one destination ({per_address:,})"
        + (", the busiest address at best" if linux and addresses > 1 else ""),
        per_address,
        on_one_address,
        load.holding,
        load.target_blocking,
        _SHARED_WHY[profile.name] + ("" if not linux or per_address <= 128 else _LINUX_PROBES),
    )
    return {
        "ports_per_vm_needed": math.ceil(load.per_vm_destination),
        "allocation_per_vm": None,
        "addresses_needed": needed,
        "addresses_note": note,
        "max_vms": None,
        "sustainable_per_destination": sustainable,
        "sustainable_per_vm_per_destination": _per_second(per_vm_ceiling, load.holding),
        "sustainable_per_vm": None,
        "limits": limits,
        "erlang": erlang,
        "notes": notes,
    }


_SHARED_WHY = {
    "linux-masquerade": "Poisson arrivals; the kernel's probe finds a free port",
    "k8s-node": "Poisson arrivals; the kernel's probe finds a free port",
    "aws-natgw": "Poisson arrivals; assumes AWS finds any free port under the cap and spreads "
    "flows evenly over addresses (both undocumented)",
    "azure-natgw": "Poisson arrivals; a random free port (documented); flows assumed spread "
    "evenly over addresses (undocumented)",
}
_LINUX_PROBES = (
    "; above 128 ports the kernel stops after at most 248 probes, so near saturation it can "
    "miss a free port and refuse a little earlier than Erlang B says"
)


# ---- a slice per VM: Azure Load Balancer, Cloud NAT -----------------------------------------


def azure_lb_ports_per_vm(pool_size: int) -> int:
    """The default SNAT ports per VM for a backend pool of ``pool_size`` instances."""
    for largest, ports in AZURE_LB_POOL_TABLE:
        if pool_size <= largest:
            return ports
    raise GatewayInputError(
        [
            (
                "vms",
                f"Azure's default allocation table stops at {AZURE_LB_POOL_TABLE[-1][0]:,} "
                f"instances (got {pool_size:,}): give ports_per_vm (outbound rules)",
            )
        ]
    )


def _vm_slice(profile: KindProfile, values: dict[str, Any], load: _Load) -> dict[str, Any]:
    addresses = int(values["addresses"])
    usable = int(values["ports_per_address"]) - 8 * int(values.get("rules", 0))
    azure = profile.name == "azure-lb"
    dynamic = bool(values.get("dynamic", False))
    eim = _eim(profile, values)
    demand = load.per_vm_total if eim else load.per_vm_destination
    need = math.ceil(demand)
    notes: list[str] = []
    if azure:
        slice_ = values["ports_per_vm"] or azure_lb_ports_per_vm(load.vms)
        alloc = max(8, 8 * math.ceil(need / 8))
        slice_name = f"{slice_:,} SNAT ports per VM"
        notes.append(
            "frontend addresses are used one at a time: a second address's ports are handed "
            "out only once the first's are allocated"
        )
    elif dynamic:
        lo, hi = int(values["dynamic_min_ports_per_vm"]), int(values["max_ports_per_vm"])
        alloc = min(hi, max(lo, 1 << max(0, need - 1).bit_length()))
        slice_ = alloc
        slice_name = f"dynamic allocation, {lo:,} to {hi:,} ports per VM (now {alloc:,})"
        notes.append(
            "dynamic allocation doubles a VM's ports as it nears exhaustion; a burst faster "
            "than the doubling is refused meanwhile (the lag is undocumented)"
        )
    else:
        slice_ = int(values["ports_per_vm"])
        alloc = need
        slice_name = f"minPortsPerVm {slice_:,}"
    # a dynamic VM grows up to maxPortsPerVm, but no further than the addresses hold
    per_vm_ceiling = min(int(values["max_ports_per_vm"]), addresses * usable) if dynamic else slice_
    reserved = slice_ if dynamic else max(slice_, alloc)
    limits = [
        Limit(
            "per_vm_allocation",
            f"one VM's {slice_name}, "
            + (
                "shared by all destinations (endpoint-independent)" if eim else "to one destination"
            ),
            per_vm_ceiling,
            demand,
        ),
        Limit(
            "ports_per_address",
            f"{usable:,} ports per address x {addresses} address(es), every VM's allocation",
            addresses * usable,
            load.vms * slice_,
        ),
    ]
    # VMs the addresses serve at the allocation this load holds (dynamic: its current one)
    max_vms = addresses * usable // slice_
    needed: int | None = max(1, math.ceil(load.vms * reserved / usable))
    note = ""
    if dynamic and need > per_vm_ceiling:
        needed, note = (
            None,
            (
                f"one VM needs {need:,} ports, more than maxPortsPerVm {per_vm_ceiling:,}: "
                "more destinations or connection reuse"
            ),
        )
    if load.vms > max_vms and not dynamic:
        notes.append(
            f"{addresses} address(es) give {max_vms:,} VMs their {slice_:,} ports; the other "
            f"{load.vms - max_vms:,} get none"
            + (" (nat_allocation_failed)" if not azure else " (configuration rejected)")
        )
    # the fleet's ceiling to one destination: every VM at its ceiling, within the addresses
    fleet = min(load.vms * per_vm_ceiling, addresses * usable)
    if dynamic:
        erlang = ErlangPool(
            f"one VM's ports (dynamic, {lo:,} to {per_vm_ceiling:,})",
            False,
            "the allocation grows with the demand, so the pool is not a fixed number of ports",
        )
    else:
        erlang = _erlang(
            f"one VM's {slice_:,} ports" + ("" if eim else " to one destination"),
            slice_,
            demand,
            load.holding,
            load.target_blocking,
            "Poisson arrivals; "
            + (
                "the lowest free port is taken (older Azure docs), so any free port is found"
                if azure
                else "assumes Cloud NAT finds any free port of the VM's slice (undocumented)"
            ),
        )
    per_vm = _per_second(per_vm_ceiling, load.holding)
    return {
        "ports_per_vm_needed": need,
        "allocation_per_vm": reserved,
        "addresses_needed": needed,
        "addresses_note": note,
        "max_vms": max_vms,
        "sustainable_per_destination": _per_second(fleet, load.holding)
        / (load.destinations if eim else 1),
        "sustainable_per_vm_per_destination": per_vm / (load.destinations if eim else 1),
        "sustainable_per_vm": per_vm if eim else None,
        "limits": limits,
        "erlang": erlang,
        "notes": notes,
    }


# ---- carrier NAT: port blocks and deterministic ranges -----------------------------------------


def _blocks(profile: KindProfile, values: dict[str, Any], load: _Load) -> dict[str, Any]:
    addresses = int(values["addresses"])
    block, most = int(values["block_size"]), int(values["blocks_per_subscriber"])
    per_address = int(values["ports_per_address"]) // block
    # paired pooling: a subscriber's blocks all come from one address
    most = min(most, per_address)
    ceiling = block * most
    need = math.ceil(load.per_vm_total)  # endpoint-independent: every destination counts
    blocks_used = min(most, max(1, math.ceil(need / block)))
    per_address_subscribers = per_address // blocks_used
    limits = [
        Limit(
            "per_subscriber",
            f"one subscriber's {most} blocks of {block} ports ({ceiling:,}), all destinations",
            ceiling,
            load.per_vm_total,
        ),
        Limit(
            "blocks_per_address",
            f"{per_address:,} blocks per address x {addresses} address(es)",
            addresses * per_address,
            load.vms * blocks_used,
        ),
    ]
    needed: int | None = math.ceil(load.vms / per_address_subscribers)
    note = ""
    if need > ceiling:
        needed, note = (
            None,
            (
                f"no address count is enough: a subscriber needs {need:,} ports and may hold "
                f"{ceiling:,} ({most} x {block}); raise the block count or size"
            ),
        )
    per_sub = _per_second(ceiling, load.holding)
    return {
        "ports_per_vm_needed": need,
        "allocation_per_vm": blocks_used * block,
        "addresses_needed": needed,
        "addresses_note": note,
        "max_vms": addresses * per_address_subscribers,
        "sustainable_per_destination": load.vms * per_sub / load.destinations,
        "sustainable_per_vm_per_destination": per_sub / load.destinations,
        "sustainable_per_vm": per_sub,
        "limits": limits,
        "erlang": _erlang(
            f"one subscriber's {ceiling:,} ports",
            ceiling,
            load.per_vm_total,
            load.holding,
            load.target_blocking,
            "Poisson arrivals; assumes blocks are granted on demand and a free port in them "
            "is found",
        ),
        "notes": [
            "endpoint-independent mapping counts each inside (address, port) once for every "
            "destination; the demand here assumes each connection uses its own inside port "
            "(the worst case)",
        ],
    }


def _fixed_range(profile: KindProfile, values: dict[str, Any], load: _Load) -> dict[str, Any]:
    addresses = int(values["addresses"])
    ratio = int(values["sharing_ratio"])
    pph = int(values["ports_per_address"]) // ratio
    sessions = int(values["sessions_per_subscriber"])
    limits = [
        Limit(
            "per_subscriber_destination",
            f"one subscriber's {pph:,} ports ({int(values['ports_per_address']):,} / {ratio:,}) "
            "to one destination",
            pph,
            load.per_vm_destination,
        ),
        Limit(
            "sessions_per_subscriber",
            f"{sessions:,} session slots per subscriber (VPP det44), all destinations",
            sessions,
            load.per_vm_total,
        ),
        Limit(
            "subscribers_per_address",
            f"{ratio:,} subscribers per address x {addresses} address(es)",
            addresses * ratio,
            load.vms,
        ),
    ]
    need = math.ceil(load.per_vm_destination)
    needed: int | None = math.ceil(load.vms / ratio)
    note = ""
    if need > pph:
        best = int(values["ports_per_address"]) // need
        needed, note = (
            None,
            (
                f"no address count is enough at 1:{ratio:,}: a subscriber needs {need:,} ports to "
                "one destination; "
                + (
                    f"a sharing ratio of at most 1:{best:,} gives them"
                    if best >= 1
                    else "not even an address of its own gives them"
                )
            ),
        )
    per_sub_dest = _per_second(min(pph, sessions), load.holding)
    return {
        "ports_per_vm_needed": need,
        "allocation_per_vm": pph,
        "addresses_needed": needed,
        "addresses_note": note,
        "max_vms": addresses * ratio,
        "sustainable_per_destination": min(load.vms, addresses * ratio) * per_sub_dest,
        "sustainable_per_vm_per_destination": per_sub_dest,
        "sustainable_per_vm": _per_second(sessions, load.holding),
        "limits": limits,
        "erlang": _erlang(
            f"one subscriber's {pph:,} ports to one destination",
            pph,
            load.per_vm_destination,
            load.holding,
            load.target_blocking,
            "Poisson arrivals; det44 probes the whole range linearly, so any free port is found",
        ),
        "notes": [],
    }


_SIZERS = {
    "shared pool per address": _shared_pool,
    "slice per VM": _vm_slice,
    "blocks per subscriber": _blocks,
    "range per subscriber": _fixed_range,
}
