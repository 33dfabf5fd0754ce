"""Which summary figures a sweep tabulates (one column each in runs.csv), read from a
run's summary.json by their dotted keys."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sim.summary.paths import lookup

if TYPE_CHECKING:
    from sim.summary.types import Summary

METRICS = (  # summary figures in runs.csv, dotted as in summary.json
    "connections.attempted",
    "connections.succeeded",
    "connections.failed",
    "connections.failed_fraction",
    "pressure.peak",
    "pressure.mean",
    "first_failure_s",
    "probes.mean",
    "probes.p99",
    "steady_state.attempted",
    "steady_state.failed",
    "steady_state.blocking",
    "steady_state.pressure_mean",
    "analytic.blocking",
    "analytic.pressure",
    "requests.attempted",
    "requests.succeeded",
    "requests.failed",
    "requests.waited",
    "requests.connections",
    "requests.requests_per_connection",
    "requests.waiting_at_end",
    "requests.wait_s.mean",
    "requests.wait_s.p99",
    "requests.wait_s.max",
    "retries.retries",
    "retries.gave_up",
)


DEFAULT_PLOTS = ("pressure.peak", "steady_state.blocking")

# fractions in the summary, shown in % as `portsim run` and `compare` show them
PERCENT = frozenset(
    {
        "connections.failed_fraction",
        "pressure.peak",
        "pressure.mean",
        "steady_state.blocking",
        "steady_state.pressure_mean",
        "analytic.blocking",
        "analytic.pressure",
    }
)


def unit_of(metric: str) -> tuple[float, str]:
    """(factor, unit) to show a metric in: fractions as %, times in s, counts bare."""
    if metric in PERCENT:
        return 100.0, "%"
    if metric == "first_failure_s" or metric.startswith("requests.wait_s."):
        return 1.0, "s"
    return 1.0, ""


def axis_label(key: str) -> str:
    """A grid key as an axis label, with the unit of the keys whose unit is known."""
    if key.endswith(".arrival.rate"):
        return f"{key} (per second)"
    return key


def metrics_of(summary: Summary) -> dict[str, float | None]:
    """The METRICS of one run (paths checked against the summary's types by the tests)."""
    out: dict[str, float | None] = {}
    for metric in METRICS:
        if metric == "connections.failed_fraction":
            conn = summary["connections"]
            out[metric] = conn["failed"] / conn["attempted"] if conn["attempted"] else 0.0
        elif metric.startswith("analytic."):  # Erlang B, when one pool is predicted
            pools = summary.get("analytic") or {}
            figure = metric.partition(".")[2]
            out[metric] = lookup(next(iter(pools.values())), figure) if len(pools) == 1 else None
        else:
            value = lookup(summary, metric)
            out[metric] = value if isinstance(value, int | float) else None
    return out
