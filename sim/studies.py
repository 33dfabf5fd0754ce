"""Rate studies for notebooks: one scenario at several rates, with replications.

A thin view of :func:`sim.sweeps.sweep` with the grid ``load[i].arrival.rate``: the same
seed derivation (replication r of every rate runs with the r-th seed of
:func:`sim.sweeps.replication_seeds`, so ``portsim sweep`` with the same root seed gives the
same runs) and the same Student t quantile (:func:`sim.sweeps.t975`).
"""

from __future__ import annotations

import math

import pandas as pd

from sim.config.types import Scenario
from sim.sweeps import sweep, t975

STUDY_COLUMNS = {  # rate_sweep's column: the sweep's metric
    "attempted": "steady_state.attempted",
    "failed": "steady_state.failed",
    "blocking": "steady_state.blocking",
    "pressure_mean": "steady_state.pressure_mean",
    "erlang_b": "analytic.blocking",
    "erlang_pressure": "analytic.pressure",
}


def rate_sweep(
    scenario: Scenario, rates: list[float], replications: int = 3, seed: int = 1, load: int = 0
) -> pd.DataFrame:
    """One row per (rate, replication): steady-state attempts, refusals and pressure, and
    the Erlang-B prediction where it applies (one pool)."""
    key = f"load[{load}].arrival.rate"
    runs = sweep(scenario, {key: list(rates)}, replications=replications, seed=seed)
    failed = runs[runs["error"] != ""]
    if len(failed):
        raise RuntimeError(f"rate {failed[key].iloc[0]}: {failed['error'].iloc[0]}")
    out = pd.DataFrame({"rate": runs[key], "replication": runs["replication"]})
    for column, metric in STUDY_COLUMNS.items():
        out[column] = runs[metric]
    return out.reset_index(drop=True)


def summarise_by_rate(runs: pd.DataFrame) -> pd.DataFrame:
    """Per rate: mean refusal and the half-width of its 95 % interval (t over replications)."""
    grouped = runs.groupby("rate")
    out = grouped.agg(
        blocking_mean=("blocking", "mean"),
        blocking_sd=("blocking", "std"),
        n=("blocking", "size"),
        erlang_b=("erlang_b", "first"),
        pressure_mean=("pressure_mean", "mean"),
    ).reset_index()
    out["blocking_ci95"] = [
        t975(n - 1) * sd / math.sqrt(n) if n > 1 and sd == sd else 0.0
        for n, sd in zip(out["n"], out["blocking_sd"], strict=True)
    ]
    return out
