"""Several saved runs side by side (``portsim compare``): the figures a reader compares.

Only ``summary.json`` is read, so runs of different scenarios, versions or lengths compare
as well as replications of one.  A figure a run does not have (keep-alive requests in a
run without keep-alive) is ``None`` in JSON and ``-`` in the table; a row no run has is
left out of the table.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.summary.paths import lookup
from sim.units import format_duration


class NotAResult(ValueError):
    """A directory that holds no readable, completed run; the message is one line."""


@dataclass(frozen=True)
class Figure:
    key: str  # the JSON key
    label: str  # the table's row label
    get: Callable[[dict[str, Any]], Any]
    show: Callable[[Any], str]
    absent: str = "-"  # the table's cell when the run has no such figure


def _path(*keys: str) -> Callable[[dict[str, Any]], Any]:
    """A summary field by its keys (each path is checked against summary.json's types by
    tests/test_summary_schema.py); None where a run lacks it."""
    dotted = ".".join(keys)

    def get(summary: dict[str, Any]) -> Any:
        return lookup(summary, dotted)

    return get


def _fraction(numerator: Callable[[dict[str, Any]], Any], denominator: Callable) -> Callable:
    def get(summary: dict[str, Any]) -> float | None:
        top, bottom = numerator(summary), denominator(summary)
        if top is None or not bottom:
            return None
        return top / bottom

    return get


def _int(x: Any) -> str:
    return f"{x:,}"


def _pct(x: Any) -> str:
    """One decimal, more below 1 % so that small refusals stay visible: 5.0 %, 0.15 %."""
    if x == 0:
        return "0 %"
    if x >= 0.01:
        return f"{100 * x:.1f} %"
    return f"{100 * x:.2f} %" if x >= 0.001 else f"{100 * x:.3f} %"


def _number(x: Any) -> str:
    return f"{x:,.0f}" if x >= 1000 else f"{x:.4g}"


def _seconds(x: Any) -> str:
    return format_duration(x)


def _text(x: Any) -> str:
    return str(x)


def _stationary(get: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], Any]:
    """A steady-state figure only where the run found a steady state (``run`` says "not
    reported" otherwise, and so must the comparison)."""

    def only_if(summary: dict[str, Any]) -> Any:
        steady = summary.get("steady_state")
        return get(summary) if isinstance(steady, dict) and steady.get("stationary") else None

    return only_if


def _several_hosts(summary: dict[str, Any]) -> int | None:
    hosts = summary.get("hosts")
    return len(hosts) if isinstance(hosts, list) and len(hosts) > 1 else None


def _over_gateways(
    combine: Callable[[list[Any]], Any], *keys: str
) -> Callable[[dict[str, Any]], Any]:
    """A gateway figure over a run's gateways (the highest pressure, the sum of drops);
    None in a run without a gateway."""

    def get(summary: dict[str, Any]) -> Any:
        gateways = summary.get("gateways")
        if not isinstance(gateways, dict) or not gateways:
            return None
        values = [lookup(g, ".".join(keys)) for g in gateways.values() if isinstance(g, dict)]
        values = [v for v in values if v is not None]
        return combine(values) if values else None

    return get


FIGURES: tuple[Figure, ...] = (
    Figure("scenario", "scenario", _path("scenario"), _text),
    Figure("seed", "seed", _path("seed"), _text),
    # a run of several hosts: its figures below are over all of them (see its verdict)
    Figure(
        "hosts",
        "hosts (below: counts summed, pressure the worst host's, the rest over all)",
        _several_hosts,
        _int,
    ),
    Figure("duration_s", "simulated", _path("duration_s"), _seconds),
    Figure("connects_attempted", "connects attempted", _path("connections", "attempted"), _int),
    Figure("connects_failed", "connects failed", _path("connections", "failed"), _int),
    Figure(
        "connects_failed_fraction",
        "connects failed %",
        _fraction(_path("connections", "failed"), _path("connections", "attempted")),
        _pct,
    ),
    Figure("first_failure_s", "first failure", _path("first_failure_s"), _seconds, "none"),
    Figure("pressure_peak", "host port pressure peak", _path("pressure", "peak"), _pct),
    Figure(
        "pressure_mean",
        "host port pressure mean (time-weighted)",
        _path("pressure", "mean"),
        _pct,
    ),
    # behind a NAT the exhaustion is at the gateway, and the client sees delay, not refusal
    Figure(
        "gateway_pressure_peak",
        "gateway pressure peak",
        _over_gateways(max, "pressure", "peak"),
        _pct,
    ),
    Figure(
        "gateway_translations_refused",
        "gateway translations refused (each SYN retransmission too)",
        _over_gateways(sum, "mappings", "dropped"),
        _int,
    ),
    Figure(
        "connects_delayed",
        "connects through only after SYN retransmission",
        _path("connect_latency_s", "delayed"),
        _int,
    ),
    Figure(
        "connect_latency_p99_s",
        "connect latency, p99",
        _path("connect_latency_s", "p99"),
        _seconds,
    ),
    Figure(
        "connects_still_connecting_at_end",
        "connects still retransmitting at the end",
        _path("connect_latency_s", "still_connecting_at_end"),
        _int,
    ),
    Figure(
        "steady_state_refused",
        "steady state refused",
        _stationary(_path("steady_state", "blocking")),
        _pct,
    ),
    Figure("probes_mean", "ports probed per connect, mean", _path("probes", "mean"), _number),
    Figure("probes_p99", "ports probed per connect, p99", _path("probes", "p99"), _number),
    Figure("probes_max", "ports probed per connect, max", _path("probes", "max"), _number),
    Figure("retries", "retries", _path("retries", "retries"), _int),
    Figure("gave_up", "requests that gave up retrying", _path("retries", "gave_up"), _int),
    Figure("requests_attempted", "requests attempted", _path("requests", "attempted"), _int),
    Figure("requests_failed", "requests failed", _path("requests", "failed"), _int),
    Figure(
        "requests_failed_fraction",
        "requests failed %",
        _fraction(_path("requests", "failed"), _path("requests", "attempted")),
        _pct,
    ),
    Figure("requests_waited", "requests that waited", _path("requests", "waited"), _int),
    Figure(
        "requests_waiting_at_end",
        "requests still waiting at the end",
        _path("requests", "waiting_at_end"),
        _int,
    ),
    Figure(
        "request_wait_mean_s", "request wait, mean", _path("requests", "wait_s", "mean"), _seconds
    ),
    Figure("request_wait_p99_s", "request wait, p99", _path("requests", "wait_s", "p99"), _seconds),
    Figure(
        "requests_per_connection",
        "requests per connection",
        _path("requests", "requests_per_connection"),
        _number,
    ),
)


def read_summary(directory: str | Path) -> dict[str, Any]:
    """The run's summary, or NotAResult saying in one line why there is none."""
    path = Path(directory) / "summary.json"
    if not Path(directory).exists():
        raise NotAResult("no such directory")
    if not Path(directory).is_dir():
        raise NotAResult("not a directory (give the folder 'portsim run' wrote)")
    if not path.is_file():
        raise NotAResult("not a result directory (no summary.json)")
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NotAResult(f"cannot read summary.json: {type(exc).__name__}") from None
    if not isinstance(summary, dict) or not isinstance(summary.get("connections"), dict):
        if isinstance(summary, dict) and summary.get("error"):
            first = str(summary["error"]).splitlines()[0][:120]
            raise NotAResult(f"the run failed ({first})")
        raise NotAResult("summary.json is not a portsim run summary")
    return summary


def figures(summary: dict[str, Any]) -> dict[str, Any]:
    """The compared figures of one run, keyed as in ``--json``; None where absent."""
    return {f.key: f.get(summary) for f in FIGURES}


def table(names: list[str], rows: list[dict[str, Any]]) -> list[str]:
    """Figures down, runs across; rows that no run has are left out (a first failure that
    no run had is kept: "none" everywhere is the answer)."""
    lines = [["", *names]]
    for f in FIGURES:
        values = [row[f.key] for row in rows]
        if all(v is None for v in values) and f.absent == "-":
            continue
        lines.append([f.label, *(f.absent if v is None else f.show(v) for v in values)])
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    ]
