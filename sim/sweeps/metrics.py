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
