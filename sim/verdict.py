"""The terminal answer: a verdict a user can act on, then the key figures."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, cast

from sim import waves
from sim.nat.report import gateway_headlines, idle_timeout_lines
from sim.units import format_duration, format_rate
from sim.units import format_percent as _pct
from sim.waves import episodes_text

if TYPE_CHECKING:
    from sim.summary.types import (
        DestinationEntry,
        HostEntry,
        HostGateway,
        RefusalWaves,
        Requests,
        Retries,
        Summary,
    )

ERLANG_LINES = 3  # pools with an Erlang B line on the terminal (the most loaded)
# errors a host behind a gateway gets when the gateway drops its packets (sim/nat/route.py)
GATEWAY_ERRORS = ("ETIMEDOUT", "no_reply")


def plural(n: int, one: str, many: str | None = None) -> str:
    """``1 pool``, ``3 pools``: generated text agrees with its number."""
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def udp_port_space(label: str | None) -> str | None:
    """The host address when ``label`` names a host's UDP port space ("udp <address>":
    UDP autobind ignores the destination), else None (a destination's pool)."""
    if label and label.startswith("udp ") and ":" not in label:
        return label[4:]
    return None


def worst_pool(label: str | None) -> str:
    """The reported pool in words: its destination, or a host's UDP port space."""
    address = udp_port_space(label)
    if address is not None:
        return f"in the UDP ports of {address}, all destinations"
    return f"worst destination {label}"


def system_name(h: HostEntry) -> str:
    """How a host's system is named: the Linux kernel and generation, else the preset."""
    kernel = h["kernel"]
    return kernel if h.get("generation") and kernel else h["os"]


def unit_name(h: HostEntry) -> str:
    """``host client``, or ``fleet pods (100 members)`` for a fleet's one entry."""
    fleet = h.get("fleet")
    if fleet:
        return f"fleet {h['name']} ({plural(fleet['members'], 'member')})"
    return f"host {h['name']}"


def verdict(s: Summary) -> str:
    """The answer first: what requests experienced (keep-alive), then ports, per host when
    there are several (their counts are never added together).  One line each."""
    lines = []
    if s.get("requests"):
        lines.append(requests_headline(s["requests"]))
        lines += idle_timeout_lines(cast("dict[str, Any]", s))
    elif s.get("retries"):
        lines.append(retries_headline(s["retries"], s["connections"]["attempted"]))
    lines += gateway_headlines(
        cast("dict[str, Any]", s)
    )  # exhaustion in the middle first: it is what pods see
    hosts = s.get("hosts") or []
    if len(hosts) > 1:
        for h in hosts:
            mine = {k: d for k, d in s["destinations"].items() if d.get("host") == h["name"]}
            where = f" on {unit_name(h)} ({system_name(h)})"
            lines.append(
                _ports_headline(
                    h, mine, h["range_ports"], where, h["refusal_waves"], h.get("gateway")
                )
            )
    else:
        p = s["pressure"]
        gateway = hosts[0].get("gateway") if hosts else None
        lines.append(
            _ports_headline(
                s, s["destinations"], p.get("range_ports"), "", s.get("refusal_waves"), gateway
            )
        )
    return "\n".join(lines)


def retries_headline(r: Retries, attempted: int) -> str:
    """What a retrying application saw: arrivals that gave up, not connect() calls (a storm
    of retries multiplies the failed calls)."""
    arrivals = attempted - r["retries"]
    share = f"{100 * r['retries'] / attempted:.0f} %" if attempted else "none"
    return (
        f"Retries: {r['gave_up']:,} of {arrivals:,} arrivals gave up after retrying, "
        f"{r['recovered']:,} succeeded after retrying; the {r['retries']:,} retried connects "
        f"are {share} of all connect() calls"
    )


def _ports_headline(
    s: Summary | HostEntry,
    destinations: dict[str, DestinationEntry],
    size: int | None,
    where: str,
    waves: RefusalWaves | None,
    gateway: HostGateway | None = None,
) -> str:
    """Exhaustion or not, from one host's figures (or the run's, with one host).  Behind a
    gateway (``gateway``) this is about the host's own local ports: the gateway's line
    says what happened there."""
    conn = s["connections"]
    none = "No local port exhaustion" if gateway else "No exhaustion"
    p = s["pressure"]
    ports = ""
    if size and p.get("peak_ports") is not None:
        ports = f" ({p['peak_ports']:,} of {size:,} ports)"
    by_error = cast("dict[str, int]", conn["failed_by_error"])
    at_gateway = sum(by_error.get(e, 0) for e in GATEWAY_ERRORS)
    if conn["failed"] and conn["failed"] == at_gateway:
        errors = [e for e in GATEWAY_ERRORS if by_error.get(e)]
        return (
            f"{none}{where}: peak pressure {_pct(p['peak'])}{ports}; its "
            f"{plural(at_gateway, 'failed connect')} failed at the gateway "
            f"({'/'.join(errors)}: the SYN or datagram was dropped there)"
            + _still_connecting(gateway)
        )
    if conn["failed"]:
        failing = {k: d for k, d in destinations.items() if d.get("failed")}
        errors = [name for name, n in conn["failed_by_error"].items() if n]
        first = s["first_failure_s"]
        if len(failing) == 1:
            dest = next(iter(failing.values()))
            what = f"{conn['failed']:,} of {dest['attempted']:,} connects to {dest.get('name')}"
        else:
            what = (
                f"{conn['failed']:,} of {conn['attempted']:,} connects to "
                f"{plural(len(failing), 'destination')}"
            )
        wave = ""
        if waves and waves["stretches"] and waves["period_s"]:
            wave = (
                f"; refused in waves: {episodes_text(waves)} "
                f"every {format_duration(waves['period_s'])}"
            )
        at = format_duration(first) if first is not None else "?"
        return (
            f"Port exhaustion{where}: {what} failed with {'/'.join(errors)}, first at "
            f"{at}; peak pressure {_pct(p['peak'])}{ports}{wave}" + _still_connecting(gateway)
        )
    worst = p.get("worst_destination")
    at = f" to {worst} at {format_duration(p['peak_time_s'])}" if worst else ""
    if not conn["attempted"] and not (gateway and gateway["still_connecting_at_end"]):
        return f"{none}{where}: no connect was made"
    if gateway and gateway["still_connecting_at_end"]:
        return (
            f"{none}{where}: peak pressure {_pct(p['peak'])}{ports}{at}; no connect was "
            f"refused a local port, {conn['succeeded']:,} succeeded" + _still_connecting(gateway)
        )
    return f"{none}{where}: peak pressure {_pct(p['peak'])}{ports}{at}; every connect succeeded"


def _still_connecting(gateway: HostGateway | None) -> str:
    """``; N still retransmitting their SYN at gateway G at the end``, or ""."""
    n = gateway["still_connecting_at_end"] if gateway else 0
    if not gateway or not n:
        return ""
    return (
        f"; {plural(n, 'connect')} still retransmitting {'its' if n == 1 else 'their'} SYN "
        f"at the end (dropped at gateway {gateway['name']})"
    )


def requests_headline(r: Requests) -> str:
    """What keep-alive requests experienced: served against offered per second, the queue,
    waits and failures; whether the pool caps throughput."""
    offered, served = r["offered_per_s"], r["served_per_s"]
    rates = f"{format_rate(served)} served per second of {format_rate(offered)} offered"
    limit = r.get("pool_limit_per_s")
    cap = ""
    if limit:
        duration = r["pool_connections"] / limit
        cap = (
            f"{plural(r['pool_connections'], 'pooled connection')} at "
            f"{format_duration(duration)} per request serve at most {limit:,.0f}/s"
        )
    wait = r["wait_s"]
    waits = (
        f"{r['waited']:,} waited for a connection (served ones: mean "
        f"{format_duration(wait['mean'])}, p99 {format_duration(wait['p99'])})"
        if r["waited"]
        else "none waited for a connection"
    )
    failed = f"{r['failed']:,} of {r['attempted']:,} failed"
    if r["failed"]:
        reasons = ", ".join(
            f"{k.replace('_', ' ')} {v:,}" for k, v in r["failed_by_reason"].items() if v
        )
        failed += f" ({reasons})"
    if r["queue_growing"]:
        oldest = r.get("oldest_waiting_s")
        old = f", the oldest for {format_duration(oldest)}" if oldest else ""
        capped = f"; the pool caps throughput: {cap}" if cap else ""
        return (
            f"Requests pile up: {rates}{capped}; the queue grows without bound "
            f"(+{r['queue_growth_per_s']:,.0f}/s, {r['waiting_at_end']:,} waiting at the end"
            f"{old}); {waits}; {failed}"
        )
    near = f" ({cap})" if cap and limit and offered > 0.9 * limit else ""
    head = "Requests served" if not r["failed"] else "Requests failed"
    return f"{head}: {rates}{near}; {waits}; {failed}"


def key_figures(s: Summary) -> list[str]:
    """The figures behind the verdict, one line each; with several hosts the counts are
    each host's own (on its ``host`` line), never summed across hosts."""
    conn = s["connections"]
    p = s["pressure"]
    probes = s["probes"]
    hosts = s.get("hosts", [])
    several = len(hosts) > 1
    lines = []
    what = "pressure of the hosts' own ports" if s.get("gateways") else "pressure"
    if not several:
        errors = ", ".join(f"{k} {v:,}" for k, v in conn["failed_by_error"].items() if v)
        gateway = hosts[0].get("gateway") if hosts else None
        waiting = gateway["still_connecting_at_end"] if gateway else 0
        lines += [
            f"connects: {conn['attempted']:,} attempted, {conn['succeeded']:,} succeeded, "
            f"{conn['failed']:,} failed ({errors or 'none'})"
            + (f", {waiting:,} more still retransmitting their SYN at the end" if waiting else ""),
            f"{what}: peak {_pct(p['peak'])}, time-weighted mean {_pct(p['mean'])} "
            f"({worst_pool(p.get('worst_destination'))})",
        ]
    together = f", all {len(hosts)} hosts together" if several else ""  # (not kept per host)
    lines.append(
        f"ports probed per connect() that got a port{together}: mean {probes['mean']:.1f}, "
        f"p99 {probes['p99']:.0f}, max {probes['max']}"
        + (f"; a refused one probed {probes['refused_mean']:,.0f}" if probes.get("refused") else "")
    )
    if not several and (first := s.get("first_failure_s")) is not None:
        lines.append(f"first failure: {format_duration(first)}")
    for name, g in (s.get("gateways") or {}).items():
        if (dropped := g.get("first_drop_s")) is not None:  # long before the first failure
            lines.append(
                f"first drop at gateway {name}: {format_duration(dropped)} (a new flow's first "
                "SYN or datagram: flows can be delayed or refused there from then on)"
            )
    steady = s.get("steady_state")
    reason = steady.get("not_stationary_because") if steady else None
    if reason is None and steady and not steady.get("stationary", True):
        reason = "the load varies in time"
    if reason:
        lines.append(f"steady state: not reported, {reason} (see series.csv)")
    elif steady and steady["attempted"] and not several:
        pressure = _pct(steady["pressure_mean"] or 0)
        lines.append(
            f"steady state (from {format_duration(steady['window_s'][0])}): "
            f"{_pct(steady['blocking'])} refused, mean {what} {pressure}"
        )
    if not several and (wave := waves.describe(s.get("refusal_waves"))):
        lines.append(wave)
    pools = s.get("analytic") or {}
    shown = sorted(pools.items(), key=lambda item: -item[1]["offered_load"])[:ERLANG_LINES]
    for dest, a in shown:
        each = " (each member)" if a.get("per") == "member" else ""
        lines.append(
            f"Erlang B for {dest}{each}: {a['offered_load']:,.0f} erlangs on {a['ports']:,} ports, "
            f"{_pct(a['blocking'])} refused (simulated {_pct(a['simulated_blocking'])}); "
            f"sustainable {a['max_rate_at_0.001']:,.0f}/s at 0.1 % refused"
        )
    if len(pools) > len(shown):
        more = plural(len(pools) - len(shown), "more pool")
        lines.append(f"Erlang B for {more}: analytic in summary.json")
    retries = s.get("retries")
    if retries:
        lines.append(
            f"retries: {retries['retries']:,} retried connects, {retries['recovered']:,} "
            f"succeeded after retrying, {retries['gave_up']:,} gave up"
        )
    requests = s.get("requests")
    if requests:
        lines.append(
            f"requests: {requests['attempted']:,} attempted, {requests['succeeded']:,} served, "
            f"{requests['failed']:,} failed, {requests['waited']:,} waited for a connection, "
            f"{requests['waiting_at_end']:,} still waiting at the end; "
            f"{plural(requests['connections'], 'connection')} opened "
            f"({requests['requests_per_connection']:.1f} requests each)"
        )
    for h in hosts:
        lines.append(_host_line(h, s))
        if several:
            lines += [f"  {line}" for line in _host_details(h, steady=reason is None)]
        if h.get("capacity"):
            lines.append(("  " if several else "") + capacity_line(h, s))
    simulated = format_duration(s["duration_s"])
    lines.append(f"simulated {simulated} in {s['run']['wall_s']:.1f} s (seed {s['seed']})")
    return lines


def _host_line(h: HostEntry, s: Summary) -> str:
    conn = h.get("connections")
    if conn is None:  # a summary written before hosts carried their own counts
        loads = [ld for ld in s.get("loads", []) if ld["host"] == h["name"]]
        conn = {
            "attempted": sum(ld["attempted"] for ld in loads),
            "failed": sum(ld["failed"] for ld in loads),
        }
    tuning = (
        f"tcp_tw_reuse={h['tcp_tw_reuse']}"
        if h.get("generation")
        else f"policy {h['policy']}, scope {h['scope']}"
    )
    events = h.get("windows_events")
    logged = (
        ", events " + ", ".join(f"{k}: {v:,}" for k, v in events.items() if v)
        if events and any(events.values())
        else ""
    )
    if h.get("time_wait_overflow"):
        logged += (
            f", {h['time_wait_overflow']:,} closes skipped TIME_WAIT (tcp_max_tw_buckets full)"
        )
    lo, hi = h["port_range"]
    fleet = h.get("fleet")
    if fleet:  # one line for the whole fleet: its members and the worst one
        worst = fleet.get("worst_member")
        logged += (
            f"; {fleet['members_used']:,} members used, {fleet['members_failing']:,} failing"
            + (f", worst {worst['address']} ({_pct(worst['pressure_peak'])})" if worst else "")
        )
    return (
        f"{unit_name(h)} ({system_name(h)}): range {lo}-{hi} "
        f"({h['range_ports']:,} ports), TIME_WAIT {h['time_wait_s']:g} s, {tuning}; "
        f"{conn['failed']:,} of {conn['attempted']:,} connects failed{logged}"
    )


def _host_details(h: HostEntry, *, steady: bool = True) -> list[str]:
    """A host's own pressure, steady-state refusal (unless the run has none to report:
    ``steady``) and refusal waves (several hosts)."""
    lines = []
    p = h.get("pressure") or {}
    if p.get("worst_destination"):
        lines.append(
            f"pressure: peak {_pct(p['peak'])}, time-weighted mean {_pct(p['mean'])} "
            f"({worst_pool(p['worst_destination'])})"
        )
    window = h.get("steady_state")
    if steady and window and window["attempted"]:
        lines.append(
            f"steady state (from {format_duration(window['window_s'][0])}): "
            f"{_pct(window['blocking'])} refused"
        )
    if wave := waves.describe(h.get("refusal_waves")):
        lines.append(wave)
    return lines


def capacity_line(h: HostEntry, s: Summary) -> str:
    """The host's capacity answer, labelled with the method that gave it; behind a gateway,
    with the gateway's bound beside it (of the run's summary ``s``), which may bind first."""
    return _own_capacity(h) + _gateway_capacity(h, s)


def _gateway_capacity(h: HostEntry, s: Summary) -> str:
    """``; its gateway ... takes at most N/s ...``: the gateway's bound beside the host's
    own, and whether it binds first: against this host's own rate for a VM's slice (Azure
    LB, Cloud NAT), else against what all the hosts behind the gateway take together."""
    gateway = h.get("gateway")
    if gateway is None:
        return ""
    g = (s.get("gateways") or {}).get(gateway["name"])
    bound = g.get("sustainable") if g else None
    if not bound or not math.isfinite(bound["per_s"]):
        return ""
    if bound["per_vm"]:
        own = _own_rate(h)
        text = (
            f"; its gateway {gateway['name']} gives each VM a slice of its own: at most "
            f"{format_rate(bound['per_s'])}/s into a slice of {bound['tuples']:,} tuples "
            f"(the gateway's worst: {bound['towards']})"
        )
    else:
        behind = [x for x in s.get("hosts") or [] if _gateway_name(x) == gateway["name"]]
        rates = [_own_rate(x) for x in behind]
        own = None if None in rates else sum(r for r in rates if r is not None)
        count = sum(_members(x) for x in behind)
        who = "the one host behind it" if count == 1 else f"all {count:,} hosts behind it"
        text = (
            f"; its gateway {gateway['name']} takes at most {format_rate(bound['per_s'])}/s "
            f"into its worst pool ({bound['towards']}) from {who}"
        )
    return text + (": that binds first" if own is not None and bound["per_s"] < own else "")


def _members(h: HostEntry) -> int:
    """Hosts an entry stands for: a fleet's members, else 1."""
    fleet = h.get("fleet")
    return fleet["members"] if fleet else 1


def _gateway_name(h: HostEntry) -> str | None:
    gateway = h.get("gateway")
    return gateway["name"] if gateway else None


def _own_rate(h: HostEntry) -> float | None:
    """What a host's (or a fleet's, over its members) own ports sustain, per destination."""
    c = h["capacity"]
    return c.get("fleet_sustainable_per_s") or c["sustainable_per_s"]


def _own_capacity(h: HostEntry) -> str:
    c = h["capacity"]
    per = c["per"]
    if c["method"] == "erlang_b":
        return (
            f"capacity of {h['name']}: {c['sustainable_per_s']:,.0f} new connections/s per "
            f"{per} at 0.1 % refused (Erlang B, {c['ports']:,} ports)"
        )
    if c["method"] == "bound":
        why = f"; Erlang B does not apply: {c['why_not_erlang_b']}" if c["why_not_erlang_b"] else ""
        return (
            f"capacity of {h['name']}: at most {c['sustainable_per_s']:,.0f} new connections/s "
            f"per {per} (bound: {c['ports']:,} ports / {c['holding_s']:.4g} s held, "
            f"{'lifetime: UDP has no TIME_WAIT' if 'UDP' in per else 'lifetime + TIME_WAIT'}"
            f"{why})"
        )
    if c["method"] == "keepalive_pool":
        return (
            f"capacity of {h['name']}: at most {c['sustainable_per_s']:,.0f} requests/s "
            "through its keep-alive pools (each pool's connections / the mean time a "
            "request takes one, summed over the pools); "
            "connections are reused, so ports are not the limit"
        )
    why = c.get("why_none") or c.get("why_not_erlang_b") or "no mean connection lifetime"
    return f"capacity of {h['name']}: no connection-rate answer: {why}"
