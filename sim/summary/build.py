"""summary.json assembled from what each component reports.

Every section comes from the component that knows it: the channels' connects
(``sim.connects``), the recorder's pressure and probes, the port-use records' reuse
(``sim.metrics``), the steady state, Erlang B and each host's capacity
(``sim.steady_state``), refusal waves (``sim.waves``), each host (``sim.per_host``), each
pool (``sim.per_destination``), each load and its retries and requests
(``sim.workload.report``, ``sim.request_flow``).  The keys are written in the order
:class:`sim.summary.types.Summary` declares them, so an optional section lands where
the type puts it.

Adding a section: declare it in ``sim/summary/types.py`` (``NotRequired`` if some runs
lack it) at the place it should appear, let its component return that type, add one line
below, regenerate ``scenarios/summary.schema.json`` (``portsim schema --summary``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from sim.connects import connections, first_failure
from sim.fleet_report import fleet_entry
from sim.metrics import reuse_report
from sim.nat.report import gateways_report
from sim.per_destination import destinations_report, used_ports
from sim.per_host import host_report, windows_events_total
from sim.recorder import SERIES_COLUMNS, pressure_report, probes_report
from sim.request_flow import request_rates
from sim.steady_state import analytic, host_capacity, steady_state
from sim.summary.types import Summary
from sim.version import VERSION
from sim.waves import refusal_waves
from sim.workload.report import load_report, requests_counts_section, retries_section

if TYPE_CHECKING:
    from sim.engine import Model
    from sim.summary.types import RefusalWaves, Requests

_ATTEMPTS = SERIES_COLUMNS.index("attempts")
_FAILURES = SERIES_COLUMNS.index("failures")


def build_summary(model: Model, wall_s: float) -> Summary:
    """The run's summary.json (as a dict: ``sim.result`` writes it)."""
    sc = model.scenario
    rec = model.recorder
    run_connections = connections(model.loads)
    destinations = destinations_report(model)
    pools = analytic(model)
    capacities = host_capacity(model, pools)
    hosts = [  # in the scenario's order; a fleet is one entry (sim.fleet_report)
        fleet_entry(model, model.fleets[spec.name], capacities[spec.name])
        if spec.name in model.fleets
        else host_report(model, model.hosts[spec.name], capacities[spec.name])
        for spec in sc.hosts
    ]
    summary: Summary = {
        "scenario": sc.name,
        "seed": model.seed,
        "version": f"portsim {VERSION}",
        "error": None,
        "duration_s": sc.duration,
        "bin_s": sc.bin_width,
        "connections": run_connections,
        "pressure": pressure_report(rec, sc.duration),
        "probes": probes_report(rec),
        "reuse": reuse_report(used_ports(model)),
        "steady_state": steady_state(model),
        "analytic": pools,
        "refusal_waves": _run_refusal_waves(model),
        "first_failure_s": first_failure(model.loads),
        "hosts": hosts,
        "destinations": destinations,
        "loads": [load_report(flow) for flow in model.flows],
        "run": {"wall_s": round(wall_s, 3)},
    }
    if (events := windows_events_total(model)) is not None:
        summary["windows_events"] = events
    if (retries := retries_section(model.flows)) is not None:
        summary["retries"] = retries
    if model.gateways:
        summary["gateways"], summary["connect_latency_s"] = gateways_report(model)
    if (counts := requests_counts_section(model.flows)) is not None:
        requests = {**counts, **request_rates(model, model.recorder.window_bin)}
        summary["requests"] = cast("Requests", requests)
    return in_declared_order(summary)


def _run_refusal_waves(model: Model) -> RefusalWaves | None:
    """Refusal waves over the run's bins; None with several hosts (each host has its own:
    their refusals interleave)."""
    rec = model.recorder
    if model.units > 1:
        return None
    return refusal_waves(
        [r[_ATTEMPTS] for r in rec.rows],
        [r[_FAILURES] for r in rec.rows],
        rec.bin_width,
        rec.window_bin,
    )


def in_declared_order(summary: Summary) -> Summary:
    """The same summary with its keys in the order :class:`Summary` declares them."""
    given = cast("dict[str, object]", summary)
    return cast("Summary", {key: given[key] for key in Summary.__annotations__ if key in given})
