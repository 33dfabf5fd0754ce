"""Rules across a scenario's tables, which no single field's validator can see.

:func:`reference_checks` runs on the raw document (so its problems are reported together
with field errors): duplicate names, references to hosts and destinations, start and stop.
:func:`model_checks` runs on the validated scenario: presets, kernel versions, policy
combinations, held ports, the port range, the work estimate.
"""

from __future__ import annotations

import math
from typing import Any

from sim.config.errors import short, show, suggest
from sim.config.gateways import gateway_model_checks, gateway_reference_checks
from sim.config.types import MAX_RUN_BINS, HostSpec, Scenario
from sim.initial_state import check, read_initial_state
from sim.ports.linux import kernel_profile
from sim.presets import PRESETS
from sim.resolve import (
    ResolvedHost,
    host_kernel,
    host_policy,
    host_preset,
    is_linux,
    resolve_host,
)
from sim.timerwheel import granularity
from sim.units import parse_duration
from sim.workload.arrivals import arrival_process, estimated_events


def _table_list(raw: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items = raw.get(key)
    return [x for x in items if isinstance(x, dict)] if isinstance(items, list) else []


def reference_checks(source: str, raw: dict[str, Any]) -> list[str]:
    """Rules across tables, checked on the raw document so that they are reported together
    with field errors: duplicate names, references to hosts and destinations, ranges."""
    problems: list[str] = []
    hosts = _table_list(raw, "hosts") if "hosts" in raw else [{"name": HostSpec().name}]
    names: dict[str, list[Any]] = {}
    for kind, items in (("hosts", hosts), ("destinations", _table_list(raw, "destinations"))):
        names[kind] = [x.get("name", HostSpec().name if kind == "hosts" else None) for x in items]
        seen: set[str] = set()
        for i, name in enumerate(names[kind]):
            if not isinstance(name, str):
                continue
            if name in seen:
                problems.append(f"{source}: {kind}[{i}].name: duplicate name (got {short(name)})")
            seen.add(name)
    defined = {
        k: ", ".join(show(n) for n in dict.fromkeys(n for n in v if isinstance(n, str)))
        for k, v in names.items()
    }
    loads = raw.get("load")
    for i, load in enumerate(loads if isinstance(loads, list) else []):
        if not isinstance(load, dict):
            continue
        where = f"{source}: load[{i}]"
        host = load.get("host")
        if host is None and len(hosts) > 1:
            problems.append(f"{where}.host: required when there are several hosts")
        elif isinstance(host, str) and host not in names["hosts"]:
            hint = suggest(host, [n for n in names["hosts"] if isinstance(n, str)])
            problems.append(
                f"{where}.host: no such host; {hint + ' ' if hint else ''}defined: "
                f"{defined['hosts']} (got {short(host)})"
            )
        problems += _destination_checks(where, load, names["destinations"], defined)
        try:
            start, stop = parse_duration(load.get("start", 0)), parse_duration(load["stop"])
        except (KeyError, ValueError):
            pass  # no stop, or a bad value that the field check reports
        else:
            if stop <= start:
                problems.append(f"{where}.stop: must be after start (got {load['stop']!r})")
    problems += gateway_reference_checks(source, raw)
    return problems


def _destination_checks(
    where: str, load: dict[str, Any], names: list[str], defined: dict[str, str]
) -> list[str]:
    """``destination`` or ``destinations`` (with ``weights``), or neither for a trace."""
    problems = []
    single, several = load.get("destination"), load.get("destinations")
    arrival = load.get("arrival")
    trace = isinstance(arrival, dict) and arrival.get("kind") == "trace"
    if single is not None and several is not None:
        problems.append(f"{where}: give destination or destinations, not both")
    elif single is None and several is None and not trace:
        problems.append(f"{where}.destination: required (or destinations = [...])")
    elif trace and (single is not None or several is not None):
        key = "destination" if single is not None else "destinations"
        problems.append(f"{where}.{key}: a trace names each request's destination itself")
    if "lifetime" not in load and not trace:
        problems.append(f"{where}.lifetime: required")
    listed = [(f"{where}.destination", single)] if single is not None else []
    if isinstance(several, list):
        listed += [(f"{where}.destinations[{j}]", d) for j, d in enumerate(several)]
        if len({d for d in several if isinstance(d, str)}) != len(several):
            problems.append(f"{where}.destinations: names must be distinct")
    for key, dest in listed:
        if isinstance(dest, str) and dest not in names:
            hint = suggest(dest, [n for n in names if isinstance(n, str)])
            problems.append(
                f"{key}: no such destination; {hint + ' ' if hint else ''}defined: "
                f"{defined['destinations'] or '(none)'} (got {short(dest)})"
            )
    weights = load.get("weights")
    if weights is not None:
        if several is None:
            problems.append(f"{where}.weights: weights go with destinations = [...]")
        elif (
            isinstance(weights, list) and isinstance(several, list) and len(weights) != len(several)
        ):
            problems.append(
                f"{where}.weights: one weight per destination ({len(several)}) (got {len(weights)})"
            )
    return problems


def _kernel_before(kernel: str, version: tuple[int, int]) -> bool:
    try:
        return kernel_profile(kernel).version < version
    except ValueError:
        return False  # reported as a bad kernel string


def model_checks(source: str, sc: Scenario) -> list[str]:
    """Rules that need validated values: presets, kernel versions, times, work estimate."""
    problems: list[str] = []
    for i, host in enumerate(sc.hosts):
        where = f"{source}: hosts[{i}]"
        if host.os not in PRESETS:
            hint = suggest(host.os, PRESETS)
            problems.append(
                f"{where}.os: unknown preset; {hint + ' ' if hint else ''}one of: "
                f"{', '.join(PRESETS)} (got {short(host.os)})"
            )
        if host.kernel is not None:
            try:
                kernel_profile(host.kernel)
            except ValueError as exc:
                problems.append(f"{where}.kernel: {exc} (got {short(host.kernel)})")
    # each host as it will run, resolved once (None: unknown preset or bad kernel, reported)
    resolved_hosts = [_resolved(h) if h.os in PRESETS else None for h in sc.hosts]
    for i, host in enumerate(sc.hosts):
        if host.os not in PRESETS:
            continue
        preset = host_preset(host)
        linux = is_linux(host)
        if linux and host.scope not in (None, "4tuple"):
            problems.append(
                f"{source}: hosts[{i}].scope: the Linux policy keeps 4-tuple uniqueness for "
                f"connect() (got {host.scope!r})"
            )
        if host.udp_policy is not None and (host.udp_policy == "linux") != linux:
            problems.append(
                f"{source}: hosts[{i}].udp_policy: {host.udp_policy!r} with the "
                f"{'Linux' if linux else 'non-Linux'} TCP policy: the Linux UDP autobind "
                '(udp_lib_get_port) goes with policy = "linux" only; set both'
            )
        if host.forced_reuse and not preset.name.startswith("windows"):
            problems.append(
                f"{source}: hosts[{i}].forced_reuse: a Windows behaviour; this host is {host.os!r}"
            )
        if linux and host.udp_scope not in (None, "port", "local_address"):
            problems.append(
                f"{source}: hosts[{i}].udp_scope: Linux UDP autobind ignores the destination "
                f"(udp_lib_get_port) (got {host.udp_scope!r})"
            )
        if host.tcp_tw_reuse_rule is not None and not linux:
            problems.append(
                f"{source}: hosts[{i}].tcp_tw_reuse_rule: a Linux behaviour; this host uses "
                f"the {host_policy(host)!r} policy"
            )
        resolved = resolved_hosts[i]
        if resolved is None:
            continue  # a bad kernel or generation, reported above
        tcp_policy, udp_policy = resolved.policy, resolved.udp_policy
        if host.shared_counter and (linux or udp_policy != tcp_policy):
            problems.append(
                f"{source}: hosts[{i}].shared_counter: one cursor for TCP and UDP (Windows <= "
                f"2003) needs one non-Linux policy for both (got {tcp_policy!r} and "
                f"{udp_policy!r})"
            )
        lo, hi = resolved.port_range
        if host.first_port is not None:
            if tcp_policy != "sequential":
                problems.append(
                    f"{source}: hosts[{i}].first_port: only the sequential policy has a first "
                    f"port (this host uses {tcp_policy!r})"
                )
            elif not lo <= host.first_port <= hi:
                problems.append(
                    f"{source}: hosts[{i}].first_port: must lie within the port range {lo}-{hi} "
                    f"(got {host.first_port})"
                )
        if host.nolocaltimewait is not None and preset.family != "freebsd":
            problems.append(
                f"{source}: hosts[{i}].nolocaltimewait: a FreeBSD sysctl; this host is {host.os!r}"
            )
        if host.auto_reuse_range is None:
            continue
        a, b = host.auto_reuse_range
        if is_linux(host):
            problems.append(
                f"{source}: hosts[{i}].auto_reuse_range: a Windows setting; this host runs the "
                "Linux policy"
            )
        elif not lo <= a <= b <= hi:
            problems.append(
                f"{source}: hosts[{i}].auto_reuse_range: must lie within the port range "
                f"{lo}-{hi} (got {[a, b]})"
            )
    problems += _initial_state_checks(source, sc, resolved_hosts)
    linux_hosts = {h.name for h in sc.hosts if h.os not in PRESETS or is_linux(h)}
    kernels = {h.name: host_kernel(h) for h in sc.hosts if h.os in PRESETS}
    problems += _workload_checks(source, sc)
    problems += _usable_port_checks(source, sc, resolved_hosts)
    problems += gateway_model_checks(source, sc)
    bins = sc.duration / sc.bin_width
    if bins > MAX_RUN_BINS:
        problems.append(
            f"{source}: bin: the run would have {bins:.3g} time bins (duration / bin), needing "
            f"about {bins * 250 / 2**30:.3g} GiB; at most {MAX_RUN_BINS:,}: widen bin"
        )
    for i, load in enumerate(sc.load):
        host_name = load.host or sc.hosts[0].name
        if load.local_port_range is not None and load.protocol == "udp":
            problems.append(
                f"{source}: load[{i}].local_port_range: modelled for TCP only (UDP autobind "
                "scans the host's range here)"
            )
        elif (
            load.local_port_range is not None
            and host_name in linux_hosts
            and host_name in kernels
            and _kernel_before(kernels[host_name], (6, 3))
        ):
            problems.append(
                f"{source}: load[{i}].local_port_range: IP_LOCAL_PORT_RANGE exists from Linux "
                f"6.3 (host {show(host_name)} runs {kernels[host_name]})"
            )
        if load.local_port_range is not None and host_name not in linux_hosts:
            problems.append(
                f"{source}: load[{i}].local_port_range: IP_LOCAL_PORT_RANGE is modelled for "
                f"Linux hosts only (host {show(host_name)} uses another policy)"
            )
    if not problems:
        estimate = estimated_events(sc)
        if estimate > sc.max_events:
            advice = (
                f"raise max_events (--set max_events={estimate * 1.1:.2g})"
                if estimate < 1e15
                else "shorten duration or lower the rates"
            )
            problems.append(
                f"{source}: max_events: the run would take about {estimate:.3g} events, over the "
                f"limit of {sc.max_events:.3g}; {advice}"
            )
    return problems


def _initial_state_checks(
    source: str, sc: Scenario, resolved_hosts: list[ResolvedHost | None]
) -> list[str]:
    """Held ports must fit the host: inside its range, no more TIME_WAIT than it holds."""
    problems = []
    for i, (host, resolved) in enumerate(zip(sc.hosts, resolved_hosts, strict=True)):
        if host.initial_state is None or resolved is None:
            continue  # (no preset or a bad kernel: reported)
        lo, hi = resolved.port_range
        tw = max(resolved.time_wait, resolved.time_wait_local, resolved.time_wait_loopback)
        if resolved.timer_wheel:  # rounded up to a wheel bucket
            tw += granularity(round(tw * resolved.hz), resolved.hz) / resolved.hz
        problem = check(read_initial_state(host.initial_state.file), lo, hi, tw)
        if problem:
            problems.append(f"{source}: hosts[{i}].initial_state.file: {problem}")
    return problems


def _resolved(host: HostSpec) -> ResolvedHost | None:
    """The host as it will run (``sim.resolve``: the one place presets and kernels are
    applied), or None when its kernel or generation is bad (reported on its own)."""
    try:
        return resolve_host(host)
    except ValueError:
        return None


def _usable_port_checks(
    source: str, sc: Scenario, resolved_hosts: list[ResolvedHost | None]
) -> list[str]:
    """A host whose every port is reserved has nothing to hand out: refused here rather
    than run with every connect failing for a reason the user did not mean."""
    problems = []
    for i, (host, resolved) in enumerate(zip(sc.hosts, resolved_hosts, strict=True)):
        if not host.reserved_ports or resolved is None:
            continue  # (no preset or a bad kernel: reported)
        lo, hi = resolved.port_range
        reserved = resolved.reserved_tcp
        if all(p in reserved for p in range(lo, hi + 1)):
            problems.append(
                f"{source}: hosts[{i}].reserved_ports: every port of the range {lo}-{hi} is "
                "reserved: no port is left to allocate"
            )
    return problems


def _workload_checks(source: str, sc: Scenario) -> list[str]:
    """Lifetimes, traces, keep-alive: rules that need the validated load."""
    problems: list[str] = []
    hosts = {h.name for h in sc.hosts}
    fleets = {h.name: h.count for h in sc.hosts if h.count is not None}
    members = sc.member_names()
    for i, load in enumerate(sc.load):
        where = f"{source}: load[{i}]"
        trace = arrival_process(load.arrival).trace
        host_name = load.host or sc.hosts[0].name
        if trace is not None and host_name in fleets:
            problems.append(
                f"{where}.arrival: a trace replays one host's connects; host "
                f"{show(host_name)} is a fleet (count = {fleets[host_name]})"
            )
        elif trace is not None and trace.hosts is not None:
            fleet_rows = [h for h in trace.hosts if h in fleets]
            if fleet_rows:
                problems.append(
                    f"{where}.arrival.file: a trace row names fleet {show(fleet_rows[0])}: "
                    "trace rows name single hosts"
                )
        if load.lifetime is None and trace is not None and trace.lifetimes is None:
            problems.append(f"{where}.lifetime: required (the trace has no lifetime_s column)")
        if trace is not None:
            unknown = [d for d in trace.destinations if d not in members]
            if unknown:
                problems.append(
                    f"{where}.arrival.file: destination {show(unknown[0])} is not a destination"
                    f" name or a member ip:port ({len(unknown)} unknown)"
                )
            if trace.hosts is not None:
                stray = [h for h in trace.hosts if h not in hosts]
                if stray:
                    problems.append(f"{where}.arrival.file: no such host {show(stray[0])}")
        if load.keepalive is not None and load.protocol != "tcp":
            problems.append(f"{where}.keepalive: keep-alive pools are for TCP loads")
        ka_life = (load.lifetime.mean or 0.0) if load.keepalive and load.lifetime else 0.0
        if not math.isfinite(ka_life):
            problems.append(
                f"{where}.lifetime: with keepalive it is each request's duration; it must be finite"
            )
    return problems
