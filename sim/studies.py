"""Small studies for notebooks: one scenario run at several rates, with replications.

Replication r of every rate uses the r-th child of one SeedSequence (common random numbers,
so differences between rates are sharper).  Runs are serial here; sweeps over many
parameters and machines are the sweep module's job.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from sim.engine import run
from sim.scenario import Scenario, parse_scenario


def with_rate(scenario: Scenario, rate: float, load: int = 0) -> Scenario:
    """The scenario with ``load[load].arrival.rate`` set (validated again)."""
    data = scenario.model_dump(mode="json")
    data["load"][load]["arrival"]["rate"] = rate
    return parse_scenario(data, f"{scenario.name} (rate {rate:g})")


def rate_sweep(
    scenario: Scenario, rates: list[float], replications: int = 3, seed: int = 1, load: int = 0
) -> pd.DataFrame:
    """One row per (rate, replication): steady-state attempts, refusals and pressure, and
    the Erlang-B prediction where it applies."""
    children = np.random.SeedSequence(seed).spawn(replications)
    rows = []
    for rate in rates:
        sc = with_rate(scenario, rate, load)
        for r, child in enumerate(children):
            summary = run(sc, seed=int(child.generate_state(1)[0])).summary
            steady = summary["steady_state"]
            analytic = next(iter(summary["analytic"].values()), {})
            rows.append(
                {
                    "rate": rate,
                    "replication": r,
                    "attempted": steady["attempted"],
                    "failed": steady["failed"],
                    "blocking": steady["blocking"],
                    "pressure_mean": steady["pressure_mean"],
                    "erlang_b": analytic.get("blocking"),
                    "erlang_pressure": analytic.get("pressure"),
                }
            )
    return pd.DataFrame(rows)


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
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
        _t95(n) * sd / math.sqrt(n) if n > 1 and sd == sd else 0.0
        for n, sd in zip(out["n"], out["blocking_sd"], strict=True)
    ]
    return out


# Student t 0.975 quantiles for 1..30 degrees of freedom; the normal 1.96 beyond
_T975 = (
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
)


def _t95(n: int) -> float:
    """Two-sided 95 % Student t quantile for a mean of n values (n - 1 degrees of freedom)."""
    return _T975[n - 2] if 2 <= n <= 31 else 1.96
