"""``portsim capacity --gateway KIND``: read the options, size the gateway, print the answer.

The first line is what a hurried reader takes away (the sustainable rate, the addresses
needed, the limit that binds); the rest shows the arithmetic and which values are
documented and which inferred.  Problems come back as one line each, naming the option.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from sim.analytic_gateway import VM_RANGE, Close, GatewayInputError, GatewaySizing, size_gateway
from sim.erlang import erlang_b
from sim.nat_kinds import KINDS
from sim.units import format_percent, format_rate, parse_duration, parse_port_range

# Options that are kind parameters, and the parameter each sets.
OPTION_PARAMS = {
    "--addresses": "addresses",
    "--ports-per-vm": "ports_per_vm",
    "--port-range": "port_range",
}
GATEWAY_ONLY = (
    "--vms",
    "--destinations",
    "--addresses",
    "--ports-per-vm",
    "--port-range",
    "--hold",
    "--close",
    "--param",
)
HOST_ONLY = ("--os", "--range", "--time-wait")


def add_gateway_options(cap: argparse.ArgumentParser) -> None:
    cap.add_argument(
        "--gateway",
        metavar="KIND",
        help=f"size a NAT gateway instead of a host: {', '.join(KINDS)}",
    )
    cap.add_argument("--vms", type=int, help="VMs (pods, subscribers) behind the gateway")
    cap.add_argument(
        "--destinations",
        type=int,
        help="destinations (address, port, protocol) the load spreads over evenly (default 1)",
    )
    cap.add_argument("--addresses", type=int, help="translated addresses (default 1)")
    cap.add_argument("--ports-per-vm", type=int, help="ports per VM (azure-lb, gcp-cloudnat)")
    cap.add_argument("--port-range", help="SNAT range LOW-HIGH (linux-masquerade, k8s-node)")
    cap.add_argument("--hold", help="hold after close (default: the kind's, by --close)")
    cap.add_argument("--close", choices=("fin", "rst"), help="how connections end (default fin)")
    cap.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other kind parameter, e.g. dynamic=true, block_size=256, sharing_ratio=1024",
    )


def _given(args: argparse.Namespace, flag: str) -> bool:
    value = getattr(args, flag.lstrip("-").replace("-", "_"), None)
    return value not in (None, [])


def gateway_problems(args: argparse.Namespace) -> list[str]:
    """Options that belong to the other mode, as one line each."""
    if args.gateway is None:
        return [f"{flag}: only with --gateway KIND" for flag in GATEWAY_ONLY if _given(args, flag)]
    problems = [
        f"{flag}: describes a host; with --gateway use --port-range and --hold"
        for flag in HOST_ONLY
        if _given(args, flag)
    ]
    if args.vms is None:
        problems.append("--vms: required with --gateway (VMs behind the gateway)")
    return problems


def _parse_param(text: str, kind: str, problems: list[str]) -> tuple[str, Any] | None:
    name, sep, raw = text.partition("=")
    name = name.strip().replace("-", "_")
    if not sep or not name:
        problems.append(f"--param: expected KEY=VALUE (got {text!r})")
        return None
    default = KINDS[kind].params.get(name) if kind in KINDS else None
    if default is None:
        return name, raw  # size_gateway names the unknown key, with "did you mean"
    try:
        if default.unit == "s":
            return name, parse_duration(raw)
        if default.unit == "range":
            return name, parse_port_range(raw)
        if default.unit == "bool":
            if raw.strip().lower() not in ("true", "false"):
                raise ValueError("expected true or false")
            return name, raw.strip().lower() == "true"
        return name, int(raw)
    except ValueError as exc:
        why = str(exc)  # (a message that quotes the value already is not quoted twice)
        problems.append(f"--param {name}: {why}" + ("" if "(got " in why else f" (got {raw!r})"))
        return None


def _flag(param: str) -> str:
    for flag, name in OPTION_PARAMS.items():
        if name == param:
            return flag
    plain = {
        "vms": "--vms",
        "rate": "--rate",
        "destinations": "--destinations",
        "lifetime": "--lifetime",
        "close": "--close",
        "target_blocking": "--target-blocking",
        "gateway": "--gateway",
    }
    if param in plain:
        return plain[param]
    if param in ("hold_fin", "hold_rst"):
        return f"--hold ({param})"
    return f"--param {param}"


def size_from_args(args: argparse.Namespace) -> tuple[GatewaySizing | None, list[str]]:
    """The sizing for the command line, or the problems (one line each)."""
    problems = gateway_problems(args)
    params: dict[str, Any] = {}
    for text in args.param:
        parsed = _parse_param(text, args.gateway, problems)
        if parsed:
            params[parsed[0]] = parsed[1]
    for flag, name in OPTION_PARAMS.items():
        value = getattr(args, flag.lstrip("-").replace("-", "_"))
        if value is None:
            continue
        if name == "port_range":
            try:
                value = parse_port_range(value)
            except ValueError as exc:
                why = str(exc)
                problems.append(
                    f"--port-range: {why}" + ("" if "(got " in why else f" (got {value!r})")
                )
                continue
        params[name] = value
    lifetime = 0.0
    try:
        lifetime = parse_duration(args.lifetime)
    except ValueError as exc:
        problems.append(f"--lifetime: {exc} (got {args.lifetime!r})")
    close: Close = "rst" if args.close == "rst" else "fin"
    if args.hold is not None:
        try:
            params[f"hold_{close}"] = parse_duration(args.hold)
        except ValueError as exc:
            problems.append(f"--hold: {exc} (got {args.hold!r})")
    if problems:
        return None, problems
    try:
        sizing = size_gateway(
            args.gateway,
            vms=args.vms,
            rate=args.rate,
            destinations=1 if args.destinations is None else args.destinations,
            lifetime_s=lifetime,
            close=close,
            target_blocking=args.target_blocking,
            **params,
        )
    except GatewayInputError as exc:
        return None, [f"{_flag(key)}: {message}" for key, message in exc.problems]
    return sizing, []


def headline(s: GatewaySizing) -> str:
    """The first line: the sustainable rate, the addresses needed, the binding limit, and
    the share refused at this demand when Erlang B puts it at 0.05 % or more."""
    if s.endpoint_independent:
        sustainable = (
            f"sustainable: {format_rate(s.sustainable_per_vm or 0)}/s per VM over all "
            f"destinations (endpoint-independent; {format_rate(s.sustainable_per_destination)}/s "
            "per destination for the fleet)"
        )
    else:
        gateway = s.sustainable_per_destination
        own = _own_ports_rate(s)
        # netfilter hashes whole VMs to addresses: the even split assumed is the best case
        hashed = "port_range" in s.parameters and s.addresses > 1 and s.vms > 1
        best = " at best" if hashed else ""
        if own is not None and s.vms * own < gateway:  # the VMs' own ports bind first
            each = (
                "the VM's own ports ("
                if s.vms == 1
                else f"the VMs' own ports ({format_rate(own)}/s from each; "
            )
            alone = (
                f"the gateway alone{best} would take {format_rate(gateway)}/s"
                if math.isfinite(gateway)
                else "the gateway alone sets no limit"
            )
            sustainable = (
                f"sustainable{best}: {format_rate(s.vms * own)}/s per destination, by {each}"
                f"{alone})"
            )
        else:
            sustainable = f"sustainable{best}: {format_rate(gateway)}/s per destination"
            if s.sustainable_per_vm_per_destination != gateway:
                sustainable += (
                    f" (at most {format_rate(s.sustainable_per_vm_per_destination)}/s from any "
                    "one VM" + (f"; {format_rate(own)}/s by its own ports" if own else "") + ")"
                )
            elif s.vms > 1:  # one pool for all: no VM has a share of its own
                sustainable += f" (shared by the {s.vms:,} VMs)"
    if s.addresses_needed is None:
        need = "no address count is enough"
    else:
        plural = "es" if s.addresses_needed != 1 else ""
        need = f"you need {s.addresses_needed} address{plural}"
        if s.allocation_per_vm is not None:
            need += f" for {s.allocation_per_vm:,} ports per VM"
            if s.ports_per_vm_needed < s.allocation_per_vm:
                need += f" (the load needs {s.ports_per_vm_needed:,})"
        else:
            need += f" ({s.ports_per_vm_needed:,} ports per VM to each destination)"
    vm = next((lim for lim in s.limits if lim.name == VM_RANGE), None)
    if vm is not None and vm.utilisation > 1 and s.binding != VM_RANGE:
        need += (
            f", but each VM needs {vm.demand:,.0f} of its own ports to one destination, "
            f"more than its {vm.capacity:,.0f} (widen ip_local_port_range, reuse "
            "connections or spread over more destinations)"
        )
    limit = s.binding_limit
    used = limit.utilisation
    state = f"{100 * used:,.0f} % used" if math.isfinite(used) else "no capacity"
    # Erlang B at this demand: the gateway's pool, or each VM's own range if it refuses more
    refusals = []
    if s.erlang.applies:
        refusals.append((s.erlang.blocking, "Erlang B"))
    if vm is not None:
        refusals.append((erlang_b(int(vm.capacity), vm.demand), "Erlang B for each VM's own ports"))
    refused = ""
    blocking, why = max(refusals, default=(0.0, ""))
    if blocking >= 0.0005:
        share = format_percent(blocking)
        refused = f"; at this demand {share} of new connections would be refused ({why})"
    return f"{sustainable}; {need}; binding limit: {limit.description} ({state}){refused}"


def _own_ports_rate(s: GatewaySizing) -> float | None:
    """What one VM's own port range sustains to one destination, when that is less than
    the gateway gives it (its ports over the time each is held: lifetime + TIME_WAIT)."""
    vm = next((lim for lim in s.limits if lim.name == VM_RANGE), None)
    per_destination = s.rate_per_vm / s.destinations
    if vm is None or not per_destination or not vm.demand:
        return None
    rate = vm.capacity / (vm.demand / per_destination)
    return rate if rate < s.sustainable_per_vm_per_destination else None


def report(s: GatewaySizing) -> list[str]:
    lines = [headline(s)]
    lines.append(f"gateway: {s.title}; unique: {s.key}; allocation: {s.allocation_unit}")
    hold = s.parameters[f"hold_{s.close}"]
    status = hold["status"]
    lines.append(
        f"each connection holds its tuple {s.holding_s:g} s: lifetime {s.lifetime_s:g} s + "
        f"{s.hold_s:g} s after {s.close.upper()} ({status})"
    )
    lines.append(
        f"demand: {s.vms:,} VM{'s' if s.vms != 1 else ''} x {s.rate_per_vm:g}/s over "
        f"{s.destinations:,} destination(s) "
        f"= {s.demand_per_destination:,.4g}/s to each destination; one VM keeps "
        f"{s.ports_per_vm_needed:,} tuples busy "
        + ("over all of them" if s.endpoint_independent else "to each")
        + " (Little's law)"
    )
    for limit in s.limits:
        used = limit.utilisation
        mark = " <- binds first" if limit.name == s.binding else ""
        pct = f"{100 * used:,.1f} %" if math.isfinite(used) else "no capacity"
        figures = f"{limit.demand:,.1f} of {limit.capacity:,.0f} ({pct})"
        lines.append(f"  limit {limit.description}: {figures}{mark}")
    if s.addresses_note:
        lines.append(f"addresses: {s.addresses_note}")
    if s.max_vms is not None:
        lines.append(
            f"{s.addresses} address(es) serve at most {s.max_vms:,} VMs at this allocation"
        )
    e = s.erlang
    if e.applies:
        lines.append(
            f"Erlang B for {e.pool}: offered {e.offered_load:,.4g} erlangs, refusal "
            f"{e.blocking:.3g}; {format_rate(e.sustainable_rate)}/s into it at the target refusal "
            f"({e.why})"
        )
    else:
        lines.append(f"Erlang B does not apply to {e.pool}: {e.why}")
    lines.extend(f"note: {n}" for n in s.notes)
    inferred = [k for k, p in s.parameters.items() if p["status"] == "inferred"]
    if inferred:
        lines.append(
            "inferred (change with --param/--hold): "
            + ", ".join(f"{k}={_shown(s.parameters[k]['value'])}" for k in inferred)
        )
    return lines


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return f"{value[0]}-{value[1]}"
    return f"{value:g}" if isinstance(value, float) else str(value)
