"""Rules for ``[[gateways]]`` and the hosts behind them (issue 16), one line per problem.

On the raw document: duplicate gateway names and hosts naming a gateway that does not
exist ("did you mean").  On the validated scenario: the kind and its own keys (the kind
checks them: ``check_options``), address ranges the kind can take, SNAT ranges that
overlap, hosts behind a gateway that are not Linux or talk to loopback.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from sim.config.errors import short, show, suggest
from sim.config.types import GATEWAY_KEYS, Scenario
from sim.nat.kinds import KINDS
from sim.nat.linux import LinuxMasquerade
from sim.presets import PRESETS
from sim.resolve import is_linux


def gateway_reference_checks(source: str, raw: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    gateways = raw.get("gateways")
    items = [g for g in gateways if isinstance(g, dict)] if isinstance(gateways, list) else []
    names = [g.get("name") for g in items]
    seen: set[str] = set()
    for i, name in enumerate(names):
        if isinstance(name, str):
            if name in seen:
                problems.append(f"{source}: gateways[{i}].name: duplicate name (got {short(name)})")
            seen.add(name)
    defined = ", ".join(show(n) for n in dict.fromkeys(n for n in names if isinstance(n, str)))
    hosts = raw.get("hosts")
    for i, host in enumerate(hosts if isinstance(hosts, list) else []):
        if not isinstance(host, dict):
            continue
        name = host.get("gateway")
        if isinstance(name, str) and name not in seen:
            hint = suggest(name, sorted(seen))
            problems.append(
                f"{source}: hosts[{i}].gateway: no such gateway; {hint + ' ' if hint else ''}"
                f"defined: {defined or '(none)'} (got {short(name)})"
            )
    return problems


def gateway_model_checks(source: str, sc: Scenario) -> list[str]:
    problems: list[str] = []
    for i, g in enumerate(sc.gateways):
        where = f"{source}: gateways[{i}]"
        kind = KINDS.get(g.kind)
        if kind is None:
            hint = suggest(g.kind, KINDS)
            problems.append(
                f"{where}.kind: unknown gateway kind; {hint + ' ' if hint else ''}one of: "
                f"{', '.join(KINDS)} (got {short(g.kind)})"
            )
            continue
        inside = sum(h.count or 1 for h in sc.hosts if h.gateway == g.name)  # fleets: members
        try:
            kind.check_options(g.options)
            kind.check_setup(tuple(g.addresses), g.options, inside)
        except KeyError as exc:
            key = str(exc.args[0])
            hint = suggest(key.split(".")[-1], _option_names(kind, key))
            problems.append(
                f"{where}.{key}: not a key of kind {g.kind}; {hint + ' ' if hint else ''}"
                f"its keys: {', '.join(_option_names(kind, key))}"
            )
        except ValueError as exc:
            problems.append(f"{where}.{exc}")
        if issubclass(kind, LinuxMasquerade):
            problems += _range_checks(where, g.addresses)
    problems += _overlap_checks(source, sc)
    gateway_addresses = {a: g.name for g in sc.gateways for a in g.addresses}
    behind = {h.name: h for h in sc.hosts if h.gateway is not None}
    for i, host in enumerate(sc.hosts):
        if host.gateway is None:
            continue
        where = f"{source}: hosts[{i}]"
        if host.initial_state is not None:
            problems.append(
                f"{where}.initial_state: not modelled behind a gateway (the held ports would "
                "need the gateway's mappings too)"
            )
        if host.os in PRESETS and not is_linux(host):  # (an unknown os is reported already)
            problems.append(
                f"{where}.gateway: hosts behind a gateway must run the Linux policy (the SYN "
                f"retransmission schedule is Linux's); this host is {host.os!r}"
            )
        if ipaddress.ip_address(host.address.split("/")[0]).is_loopback:
            problems.append(
                f"{where}.gateway: a loopback host does not reach a gateway (got address "
                f"{host.address})"
            )
        for address in host.source_addresses:
            if address in gateway_addresses:
                problems.append(
                    f"{where}.address: {address} is an address of gateway "
                    f"{show(gateway_addresses[address])}; inside hosts need their own"
                )
    for i, load in enumerate(sc.load):
        routed = behind.get(load.host or sc.hosts[0].name)
        if routed is None:
            continue
        known = {d.name: d for d in sc.destinations}
        for name in load.destination_names:
            dest = known.get(name)
            if dest is not None and not dest.generated and dest.loopback:
                problems.append(
                    f"{source}: load[{i}]: host {show(routed.name)} goes through gateway "
                    f"{show(routed.gateway)}, but destination {show(name)} is loopback "
                    f"({dest.address}), which never leaves the host"
                )
    return problems


def _option_names(kind: type, key: str) -> list[str]:
    """The keys ``key`` could have meant: a conntrack hold's, or the table's (the keys
    every gateway takes, then the kind's own)."""
    if key.startswith("conntrack."):
        from sim.nat.linux import CONNTRACK_DEFAULTS

        return list(CONNTRACK_DEFAULTS)
    return [*GATEWAY_KEYS, *kind.defaults]  # type: ignore[attr-defined]


def _range_checks(where: str, addresses: list[str]) -> list[str]:
    """nf_nat_core.c takes one address range a-b: several addresses must be consecutive
    IPv4 (the address hash is modelled for IPv4)."""
    if len(addresses) < 2:
        return []
    ips = sorted(ipaddress.ip_address(a) for a in addresses)
    if ips[0].version != 4:
        return [f"{where}.addresses: several IPv6 addresses are not modelled (give one)"]
    if int(ips[-1]) - int(ips[0]) + 1 != len(ips):
        return [
            f"{where}.addresses: SNAT takes one range a-b: give consecutive addresses "
            f"(got {', '.join(addresses)})"
        ]
    return []


def _overlap_checks(source: str, sc: Scenario) -> list[str]:
    """Two gateways translating to the same address with overlapping port ranges would
    share the same conntrack tuples: one gateway with both hosts is what that means."""
    problems = []
    for j, b in enumerate(sc.gateways):
        for i, a in enumerate(sc.gateways[:j]):
            shared = sorted(set(a.addresses) & set(b.addresses))
            if not shared:
                continue
            lo_a, hi_a = a.port_range or (1, 65535)
            lo_b, hi_b = b.port_range or (1, 65535)
            if lo_a <= hi_b and lo_b <= hi_a:
                problems.append(
                    f"{source}: gateways[{j}].port_range: overlaps gateway {show(a.name)} "
                    f"(gateways[{i}]) on address {shared[0]}; give them disjoint port ranges "
                    "or one gateway"
                )
    return problems
