"""Replication statistics: per grid point, each metric's mean and its 95 % confidence
interval (Student t over the replications, the quantile from scipy.stats)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from sim.sweeps.metrics import METRICS
from sim.sweeps.spec import value_text

if TYPE_CHECKING:
    import pandas as pd

    from sim.sweeps.spec import Sweep


def t975(df: int) -> float:
    """Student's t 97.5 % point for ``df`` degrees of freedom (two-sided 95 % intervals),
    from scipy.stats; nan below one degree of freedom."""
    if df < 1:
        return math.nan
    from scipy.stats import t

    return float(t.ppf(0.975, df))


def summarise_by_grid_point(runs: pd.DataFrame, sweep: Sweep | None = None) -> pd.DataFrame:
    """Per grid point: runs, failed runs, and each metric's mean with a 95 % confidence
    interval (Student t over the replications that produced it).  ``sweep`` defaults to
    the one the runs came from (``runs.attrs["sweep"]``, set by :func:`sweep`)."""
    import pandas as pd

    if sweep is None:
        sweep = runs.attrs.get("sweep")
        if sweep is None:
            raise ValueError(
                "these runs do not carry their sweep: pass summarise_by_grid_point(runs, sweep)"
            )
    keys = list(sweep.grid)
    rows = []
    for p, point in enumerate(sweep.points()):
        group = runs[runs["point"] == p] if "point" in runs else runs.iloc[0:0]
        for key, value in point.items():
            scalar = isinstance(value, int | float | str)
            if scalar and len(group) and key in group and not (group[key] == value).all():
                raise ValueError(f"runs of grid point {p} do not have {key}={value_text(value)}")
        ok = group[group["error"].fillna("") == ""] if "error" in group else group
        row: dict[str, Any] = {"point": p, **point, "runs": len(group), "failed_runs": 0}
        row["failed_runs"] = len(group) - len(ok)
        for metric in METRICS:
            values = ok[metric].dropna().astype(float) if metric in ok else pd.Series([])
            n = len(values)
            mean = float(values.mean()) if n else math.nan
            half = t975(n - 1) * float(values.std(ddof=1)) / math.sqrt(n) if n > 1 else math.nan
            row[f"{metric}.mean"] = mean
            row[f"{metric}.ci_low"] = mean - half
            row[f"{metric}.ci_high"] = mean + half
        # runs that never failed have no first_failure_s: count them, not drop them silently
        first = ok["first_failure_s"] if "first_failure_s" in ok else pd.Series([])
        row["first_failure_s.no_failure"] = int(first.isna().sum())
        rows.append(row)
    frame = pd.DataFrame(rows)
    return frame[["point", *keys, *[c for c in frame.columns if c not in ("point", *keys)]]]
