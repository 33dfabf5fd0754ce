"""The terminal answer: a verdict a user can act on, then the key figures."""

from __future__ import annotations

from typing import Any

from sim.units import format_duration

ERLANG_LINES = 3  # pools with an Erlang B line on the terminal (the most loaded)


def _pct(x: float) -> str:
    """Percent with the digits that matter: 41 %, 6.4 %, 0.12 %."""
    if x >= 0.1 or x == 0:
        return f"{100 * x:.0f} %"
    return f"{100 * x:.1f} %" if x >= 0.01 else f"{100 * x:.2f} %"


def verdict(s: dict[str, Any]) -> str:
    conn = s["connections"]
    p = s["pressure"]
    ports = ""
    if p.get("range_ports"):
        ports = f" ({p['peak_ports']:,} of {p['range_ports']:,} ports)"
    if conn["failed"]:
        failing = {k: d for k, d in s["destinations"].items() if d.get("failed")}
        errors = [name for name, n in conn["failed_by_error"].items() if n]
        first = s["first_failure_s"]
        if len(failing) == 1:
            key, dest = next(iter(failing.items()))
            where = dest.get("name", key)
            what = f"{conn['failed']:,} of {dest['attempted']:,} connects to {where}"
        else:
            what = (
                f"{conn['failed']:,} of {conn['attempted']:,} connects to "
                f"{len(failing)} destinations"
            )
        return (
            f"Port exhaustion: {what} failed with {'/'.join(errors)}, first at "
            f"{format_duration(first)}; peak pressure {_pct(p['peak'])}{ports}"
        )
    dest = p.get("worst_destination")
    at = f" to {dest} at {format_duration(p['peak_time_s'])}" if dest else ""
    requests = s.get("requests") or {}
    lost = ""
    if requests.get("failed"):
        reasons = ", ".join(
            f"{k.replace('_', ' ')} {v:,}" for k, v in requests["failed_by_reason"].items() if v
        )
        lost = (
            f"; but {requests['failed']:,} of {requests['attempted']:,} requests failed ({reasons})"
        )
    return (
        f"No exhaustion: peak pressure {_pct(p['peak'])}{ports}{at}; every connect succeeded{lost}"
    )


def key_figures(s: dict[str, Any]) -> list[str]:
    conn = s["connections"]
    p = s["pressure"]
    probes = s["probes"]
    errors = ", ".join(f"{k} {v:,}" for k, v in conn["failed_by_error"].items() if v) or "none"
    lines = [
        f"connects: {conn['attempted']:,} attempted, {conn['succeeded']:,} succeeded, "
        f"{conn['failed']:,} failed ({errors})",
        f"pressure: peak {_pct(p['peak'])}, time-weighted mean {_pct(p['mean'])} "
        f"(worst destination {p.get('worst_destination')})",
        f"ports probed per connect(): mean {probes['mean']:.1f}, p99 {probes['p99']:.0f}, "
        f"max {probes['max']}",
    ]
    if s.get("first_failure_s") is not None:
        lines.append(f"first failure: {format_duration(s['first_failure_s'])}")
    steady = s.get("steady_state")
    if steady and steady["attempted"] and not steady.get("stationary", True):
        lines.append("steady state: not reported, the load varies in time (see series.csv)")
    elif steady and steady["attempted"]:
        pressure = _pct(steady["pressure_mean"] or 0)
        lines.append(
            f"steady state (from {format_duration(steady['window_s'][0])}): "
            f"{_pct(steady['blocking'])} refused, mean pressure {pressure}"
        )
    pools = s.get("analytic") or {}
    shown = sorted(pools.items(), key=lambda item: -item[1]["offered_load"])[:ERLANG_LINES]
    for dest, a in shown:
        lines.append(
            f"Erlang B for {dest}: {a['offered_load']:,.0f} erlangs on {a['ports']:,} ports, "
            f"{_pct(a['blocking'])} refused (simulated {_pct(a['simulated_blocking'])}); "
            f"sustainable {a['max_rate_at_0.001']:,.0f}/s at 0.1 % refused"
        )
    if len(pools) > len(shown):
        lines.append(f"Erlang B for {len(pools) - len(shown)} more pools: analytic in summary.json")
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
            f"{requests['failed']:,} failed, {requests['waited']:,} waited for a connection; "
            f"{requests['connections']:,} connections opened "
            f"({requests['requests_per_connection']:.1f} requests each)"
        )
    for h in s.get("hosts", []):
        loads = [ld for ld in s.get("loads", []) if ld["host"] == h["name"]]
        attempted = sum(ld["attempted"] for ld in loads)
        failed = sum(ld["failed"] for ld in loads)
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
        system = h["kernel"] if h.get("generation") else h["os"]
        lo, hi = h["port_range"]
        lines.append(
            f"host {h['name']} ({system}): range {lo}-{hi} "
            f"({h['range_ports']:,} ports), TIME_WAIT {h['time_wait_s']:g} s, {tuning}; "
            f"{failed:,} of {attempted:,} connects failed{logged}"
        )
    simulated = format_duration(s["duration_s"])
    lines.append(f"simulated {simulated} in {s['run']['wall_s']:.1f} s (seed {s['seed']})")
    return lines
