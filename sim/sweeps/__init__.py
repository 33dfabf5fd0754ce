"""Sweeps: a grid of scenario variants x replications, on local processes or a Dask cluster.

``spec`` defines a sweep (the sweep file, the grid, seeds, run keys), ``run`` runs it
(backends, runs.csv, resume), ``stats`` summarises replications (Student t),
``metrics`` names the summary figures tabulated.  The names below are the public API
(``portsim sweep``, ``sim.sweep`` and the notebooks use them).
"""

from sim.sweeps.metrics import DEFAULT_PLOTS, METRICS, metrics_of
from sim.sweeps.run import (
    check_runs_file,
    default_workers,
    execute,
    finished_count,
    run_one,
    sweep,
    write_plots,
)
from sim.sweeps.spec import (
    DEFAULT_SWEEP_SEED,
    MAX_RUNS,
    SWEEP_KEYS,
    Sweep,
    load_sweep,
    replication_seeds,
    run_key,
    scenario_sweep,
)
from sim.sweeps.stats import summarise_by_grid_point, t975

__all__ = [
    "DEFAULT_PLOTS",
    "DEFAULT_SWEEP_SEED",
    "MAX_RUNS",
    "METRICS",
    "SWEEP_KEYS",
    "Sweep",
    "check_runs_file",
    "default_workers",
    "execute",
    "finished_count",
    "load_sweep",
    "metrics_of",
    "replication_seeds",
    "run_key",
    "run_one",
    "scenario_sweep",
    "summarise_by_grid_point",
    "sweep",
    "t975",
    "write_plots",
]
