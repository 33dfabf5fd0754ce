"""Sweeps: a grid of scenario variants x replications, on local processes or a Dask cluster.

Every grid point is validated before any run starts.  Replication r of every grid point
runs with the same seed, derived from the r-th ``SeedSequence.spawn`` child of the sweep's
root seed (common random numbers: differences between grid points are not drowned by seed
noise; NumPy, "Parallel random number generation",
numpy.org/doc/stable/reference/random/parallel.html).  A run is keyed by its resolved
scenario and seed, so an interrupted sweep resumes without redoing finished runs, and the
results are the same whatever the backend or the number of workers.  ``runs.csv`` is
rewritten whole (temporary file, then rename) as runs finish, so an interruption loses at
most the last second and the file is valid at every instant; on resume a row counts as
finished only when it parses whole (every column, numbers where numbers go, no error).  An
interruption (Ctrl-C, SIGTERM) cancels the runs not started and terminates the workers at
once; workers also die with the main process if it is killed (Linux: PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import copy
import csv
import datetime
import hashlib
import io
import itertools
import json
import math
import os
import re
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.config.errors import ScenarioError, show
from sim.config.load import parse_scenario, read_toml
from sim.config.overrides import assign, parse_value
from sim.safe_paths import MAX_NAME, InputFileError, name_problem, read_regular
from sim.summary.paths import lookup
from sim.version import VERSION

if TYPE_CHECKING:
    import pandas as pd

    from sim.config.types import Scenario
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
SWEEP_KEYS = {"name", "base", "replications", "seed", "grid", "set", "metrics"}
DEFAULT_SWEEP_SEED = 1
MAX_RUNS = 100_000  # grid points x replications: each run is a process task and a row


@dataclass
class Sweep:
    """A validated sweep: the base scenario's document, the grid and the replications."""

    name: str
    base: dict[str, Any]  # the base scenario as decoded TOML (before grid values)
    base_dir: Path  # data files in the base scenario are relative to it
    grid: dict[str, list[Any]]
    replications: int = 3
    seed: int = DEFAULT_SWEEP_SEED
    metrics: list[str] = field(default_factory=lambda: list(DEFAULT_PLOTS))
    source: str = "<sweep>"

    def points(self) -> list[dict[str, Any]]:
        """Grid points in order: the first key varies slowest."""
        keys = list(self.grid)
        return [dict(zip(keys, values, strict=True)) for values in _product(self.grid)]

    def seeds(self) -> list[int]:
        return replication_seeds(self.seed, self.replications)

    def scenarios(self) -> list[Scenario]:
        """Every grid point's scenario, validated; ScenarioError lists every problem."""
        problems: list[str] = []
        out: list[Scenario] = []
        for i, point in enumerate(self.points()):
            where = f"{self.source} grid point {i} ({_describe(point)})"
            data = copy.deepcopy(self.base)
            assigned = [assign(data, key, value, self.source) for key, value in point.items()]
            bad = [f"{where}: grid {p}" for p in assigned if p]
            if bad:
                problems += bad
                continue
            try:
                out.append(parse_scenario(data, where, self.base_dir))
            except ScenarioError as exc:
                problems += exc.problems
        if problems:
            raise ScenarioError(problems)
        return out


def _product(grid: dict[str, list[Any]]) -> Iterator[tuple[Any, ...]]:
    return itertools.product(*grid.values()) if grid else iter([()])


def _describe(point: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_cell(v)}" for k, v in point.items()) or "base"


def _cell(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def replication_seeds(seed: int, replications: int) -> list[int]:
    """Run seed of each replication: 63 bits from the r-th spawn child of the root.

    An integer, so that ``portsim run BASE --seed N`` reproduces any run of a sweep."""
    children = np.random.SeedSequence(seed).spawn(replications)
    return [
        int.from_bytes(c.generate_state(2, np.uint32).tobytes(), "little") & (2**63 - 1)
        for c in children
    ]


# -- loading ------------------------------------------------------------------------------


def _hint(word: str, choices: Iterable[str]) -> str:
    from sim.config.errors import suggest

    hint = suggest(word, sorted(choices)).replace('"', "")
    return f"; {hint}" if hint else ""


def load_sweep(
    path: str | Path,
    grid: list[str] | tuple[str, ...] = (),
    replications: int | None = None,
    seed: int | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    values: dict[str, list[Any]] | None = None,
) -> Sweep:
    """A sweep from a sweep file (``base = ...``), or from a scenario file plus ``--grid``.

    Command-line ``--grid KEY=V1,V2`` texts, then ``values`` (a Python grid), add to (or
    replace) the file's grid."""
    source = str(path)
    raw = read_toml(path)
    problems: list[str] = []
    if "base" in raw:
        unknown = sorted(set(raw) - SWEEP_KEYS)
        problems += [f"{source}: {show(k)}: not a sweep key{_hint(k, SWEEP_KEYS)}" for k in unknown]
        base_path = raw["base"]
        if not isinstance(base_path, str):
            problems.append(f"{source}: base: expected a scenario file path")
            raise ScenarioError(problems)
        base_file = Path(path).parent / base_path
        base = read_toml(base_file)
        base_dir = base_file.parent
        name = raw.get("name", _default_name(Path(base_path).stem))
        file_grid = raw.get("grid", {})
        if not isinstance(file_grid, dict):
            problems.append(f"{source}: grid: expected a table of dotted keys and value lists")
            file_grid = {}
        fixed = raw.get("set", {})
        if not isinstance(fixed, dict):
            problems.append(f"{source}: set: expected a table of dotted keys and values")
            fixed = {}
        for key, value in fixed.items():
            problem = assign(base, key, value, str(base_file))
            if problem:
                problems.append(f"{source}: set.{problem}")
    else:
        base, base_dir, file_grid, name = raw, Path(path).parent, {}, None
        raw = {}
    full_grid: dict[str, list[Any]] = {}
    for key, listed in file_grid.items():
        if not isinstance(listed, list) or not listed:
            problems.append(f"{source}: grid.{show(key)}: expected a non-empty list of values")
            continue
        full_grid[key] = listed
    for item in grid:
        key, sep, text = item.partition("=")
        if not sep or not key.strip() or not text.strip():
            problems.append(f"--grid {show(item)}: expected KEY=V1,V2,...")
            continue
        full_grid[key.strip()] = _grid_values(text)
    for key, options in (values or {}).items():
        if not isinstance(key, str) or not isinstance(options, list | tuple) or not options:
            problems.append(f"grid {show(key)}: expected a non-empty list of values")
            continue
        full_grid[key] = list(options)
    for item in overrides:
        key, sep, text = item.partition("=")
        problem = assign(base, key.strip(), parse_value(text.strip()), source) if sep else "x"
        if problem:
            problems.append(f"--set {show(item)}: expected KEY=VALUE of the base scenario")
    for key, listed in list(full_grid.items()):
        if any(_holds_date(v) for v in listed):
            problems.append(
                f"{source}: grid.{show(key)}: TOML dates and times are not scenario values "
                '(write durations as 60 or "60s")'
            )
            del full_grid[key]
    problems += _repeated_values(full_grid, f"{source}: grid.")
    reps = replications if replications is not None else raw.get("replications", 3)
    if not isinstance(reps, int) or isinstance(reps, bool) or not 1 <= reps <= 10_000:
        problems.append(f"{source}: replications: must be an integer in 1..10000 (got {reps!r})")
    root = seed if seed is not None else raw.get("seed", DEFAULT_SWEEP_SEED)
    if not isinstance(root, int) or isinstance(root, bool) or root < 0:
        problems.append(f"{source}: seed: must be an integer >= 0 (got {root!r})")
    metrics = raw.get("metrics", list(DEFAULT_PLOTS))
    if not isinstance(metrics, list) or not all(isinstance(m, str) for m in metrics):
        problems.append(f"{source}: metrics: expected a list of summary keys")
        metrics = list(DEFAULT_PLOTS)
    unknown_metrics = [m for m in metrics if m not in METRICS]
    if unknown_metrics:
        problems.append(
            f"{source}: metrics: unknown {show(unknown_metrics[0])}; one of: {', '.join(METRICS)}"
        )
    runs = math.prod(len(v) for v in full_grid.values()) * (reps if isinstance(reps, int) else 1)
    if runs > MAX_RUNS:
        problems.append(
            f"{source}: grid: {runs:.3g} runs (grid points x replications), over the limit of "
            f"{MAX_RUNS:,}: the table alone would need about {runs * 2e3 / 2**30:.3g} GiB; "
            "fewer values or replications"
        )
    if name is None:
        given = base.get("name")
        stem = given if isinstance(given, str) else Path(path).stem
        name = _default_name(stem)
    problem = name_problem(name)
    if problem:
        problems.append(f"{source}: name: {problem} (got {show(name)})")
    if problems:
        raise ScenarioError(problems)
    sweep = Sweep(str(name), base, base_dir, full_grid, reps, root, metrics, source)
    sweep.scenarios()  # every grid point validated before any run
    return sweep


def _default_name(stem: str) -> str:
    """``<stem>-sweep``, made a safe folder name (odd characters as ``-``, cut to fit)."""
    return re.sub(r"[^A-Za-z0-9._-]", "-", stem)[: MAX_NAME - len("-sweep")] + "-sweep"


def _holds_date(value: Any) -> bool:
    """A TOML date, time or date-time, alone or inside a list or table."""
    if isinstance(value, datetime.date | datetime.time):
        return True
    if isinstance(value, dict):
        return any(_holds_date(v) for v in value.values())
    return isinstance(value, list) and any(_holds_date(v) for v in value)


def _grid_values(text: str) -> list[Any]:
    """``100,200,400`` or a TOML array ``[[1, 2], [3, 4]]``; each item parsed as TOML."""
    text = text.strip()
    if text.startswith("["):
        value = parse_value(text)
        if isinstance(value, list):
            return value
    return [parse_value(part.strip()) for part in text.split(",")]


# -- running ------------------------------------------------------------------------------


def run_key(scenario: dict[str, Any], seed: int) -> str:
    """A run's identity: its resolved scenario, the contents of the data files it reads
    (an edited trace is a new run), its seed and the portsim version."""
    files = [
        _digest(table["file"], *_stat(table["file"]))
        for load in scenario.get("load", [])
        for table in (load.get("arrival"), load.get("lifetime"))
        if isinstance(table, dict) and isinstance(table.get("file"), str)
    ]
    text = json.dumps([scenario, files, seed, VERSION], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _stat(path: str) -> tuple[int, int]:
    st = Path(path).stat()
    return st.st_size, st.st_mtime_ns


@lru_cache(maxsize=32)
def _digest(path: str, _size: int, _mtime: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def run_one(task: dict[str, Any]) -> dict[str, Any]:
    """Run one scenario (as a JSON-able dict) with one seed; never raises: an error is
    recorded in the row.  Top level and plain data in and out, so it can be shipped to a
    process or a Dask worker."""
    from sim.engine import run

    start = time.perf_counter()
    row: dict[str, Any] = {"key": task["key"]}
    try:
        scenario = parse_scenario(task["scenario"], task["source"])
        summary = run(scenario, seed=task["seed"]).summary
        row.update(metrics_of(summary))
        row["error"] = ""
    except Exception as exc:  # recorded, and the sweep goes on
        row["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
    row["wall_s"] = round(time.perf_counter() - start, 3)
    return row


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


Backend = Callable[[list[dict[str, Any]]], Iterator[dict[str, Any]]]


def _serial(tasks: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for task in tasks:
        yield run_one(task)


def _worker_setup(parent: int) -> None:
    """In each worker: leave Ctrl-C to the main process (which stops the pool), and die
    with it if it is killed (Linux prctl PR_SET_PDEATHSIG; elsewhere the worker notices
    at its next task)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for sig in (signal.SIGTERM, signal.SIGHUP):  # not the parent's cleanup handler (fork)
        signal.signal(sig, signal.SIG_DFL)
    try:
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1  # linux/prctl.h
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before the death signal was armed
        os._exit(1)


def _stop_pool(pool: ProcessPoolExecutor, futures: dict[Future, Any]) -> None:
    """Cancel the runs not started and terminate the workers now (not after their runs)."""
    for future in futures:
        future.cancel()
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    deadline = time.monotonic() + 2.0
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()


def _processes(workers: int) -> Backend:
    """A pool of worker processes.  A worker that dies (killed, out of memory, a crash in
    C) breaks the whole pool: the runs it took down are tried again in a fresh pool, and
    those that break a pool again, alone, so only the culprit is recorded as failed."""

    def backend(tasks: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        pending = tasks
        for attempt in range(3):
            size = 1 if attempt == 2 else workers
            groups = [[t] for t in pending] if attempt == 2 else [pending]
            broken: list[dict[str, Any]] = []
            for group in groups:
                pool = ProcessPoolExecutor(
                    max_workers=size, initializer=_worker_setup, initargs=(os.getpid(),)
                )
                futures: dict[Future, Any] = {}
                try:
                    futures = {pool.submit(run_one, task): task for task in group}
                    for future in as_completed(futures):
                        try:
                            yield future.result()
                        except BrokenProcessPool:
                            broken.append(futures[future])
                except BaseException:  # Ctrl-C, SIGTERM, or the consumer stopped
                    _stop_pool(pool, futures)
                    raise
                pool.shutdown(wait=True)
            if not broken:
                return
            pending = broken
        for task in pending:
            yield {"key": task["key"], "error": "worker process died (BrokenProcessPool)"}

    return backend


def _dask(address: str, workers: int) -> Backend:
    def backend(tasks: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        try:
            from dask.distributed import Client, LocalCluster
            from dask.distributed import as_completed as dask_completed
        except ImportError:
            raise ScenarioError(
                ["--dask: dask is not installed; pip install 'portsim[dask]'"]
            ) from None
        if address == "local":
            cluster = LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
            )
            client = Client(cluster)
        else:
            cluster = None
            try:
                client = Client(address, timeout=10)
            except (OSError, TimeoutError, ValueError) as exc:
                raise ScenarioError(
                    [f"--dask {address}: cannot reach the scheduler ({type(exc).__name__})"]
                ) from None
        try:
            # pure=False: identical submissions must not collapse into one task
            futures = client.map(run_one, tasks, pure=False)
            task_of = {future.key: task for future, task in zip(futures, tasks, strict=True)}
            for future in dask_completed(futures):
                try:
                    yield future.result()
                except Exception as exc:  # e.g. KilledWorker: the task killed its workers
                    error = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
                    yield {"key": task_of[future.key]["key"], "error": error}
        finally:
            client.close()
            if cluster is not None:
                cluster.close()

    return backend


def execute(
    sweep: Sweep,
    out: str | Path | None = None,
    workers: int = 1,
    dask: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    notice: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Run every (grid point, replication) not already in ``out/runs.csv``; return runs.

    ``notice`` hears one line on resume ("N of M runs already done, running K")."""
    import pandas as pd

    scenarios = sweep.scenarios()
    points = sweep.points()
    seeds = sweep.seeds()
    tasks: list[dict[str, Any]] = []
    meta: list[dict[str, Any]] = []
    for p, (point, scenario) in enumerate(zip(points, scenarios, strict=True)):
        dumped = scenario.model_dump(mode="json")
        for r, seed in enumerate(seeds):
            key = run_key(dumped, seed)
            meta.append({"key": key, "point": p, **point, "replication": r, "seed": seed})
            tasks.append({"key": key, "scenario": dumped, "seed": seed, "source": sweep.source})
    out_dir = Path(out) if out is not None else None
    if out_dir is not None:
        check_runs_file(out_dir)
    done = _finished(out_dir)
    todo = [t for t in tasks if t["key"] not in done]
    rows = {key: row for key, row in done.items() if key in {t["key"] for t in tasks}}
    if rows and notice is not None:
        notice(f"{len(rows)} of {len(tasks)} runs already done, running {len(todo)}")
    if dask is not None:
        backend = _dask(dask, workers)
    elif workers > 1 and len(todo) > 1:
        backend = _processes(min(workers, len(todo)))
    else:
        backend = _serial
    last_write = time.monotonic()
    if progress:
        progress(len(rows), len(tasks))
    try:
        for row in backend(todo):
            rows[row["key"]] = row
            if progress:
                progress(len(rows), len(tasks))
            if out_dir is not None and time.monotonic() - last_write > 1.0:
                _write_runs(out_dir, _frame(meta, rows, pd))
                last_write = time.monotonic()
    finally:  # interrupted or not, what finished is kept (whole file, then rename)
        if out_dir is not None and rows:
            _write_runs(out_dir, _frame(meta, rows, pd))
    frame = _frame(meta, rows, pd)
    frame.attrs["sweep"] = sweep  # so summarise_by_grid_point(runs) knows the grid
    if out_dir is not None:
        from sim.atomic import write_text

        write_text(
            out_dir / "summary.csv", summarise_by_grid_point(frame, sweep).to_csv(index=False)
        )
        from sim.result import strict_json

        write_text(out_dir / "sweep.json", strict_json(_describe_sweep(sweep)))
    return frame


def _frame(meta: list[dict[str, Any]], rows: dict[str, dict[str, Any]], pd) -> pd.DataFrame:
    """Runs in grid order (not completion order): the same table from any backend."""
    records = [{**m, **rows[m["key"]]} for m in meta if m["key"] in rows]
    frame = pd.DataFrame.from_records(records)
    if frame.empty:
        return frame
    columns = [c for c in frame.columns if c not in ("wall_s", "error")] + ["wall_s", "error"]
    return frame[columns]


def _finished(out_dir: Path | None) -> dict[str, dict[str, Any]]:
    """Rows of a previous attempt that completed without error, by run key.

    A row counts only when it parses whole: as many fields as the header, a run key, an
    empty error, numbers (or nothing) in every metric column.  A file without the key,
    error or a metric column, or that cannot be read, counts nothing (it is rewritten)."""
    if out_dir is None:
        return {}
    path = out_dir / "runs.csv"
    if not path.exists():
        return {}
    try:
        text = read_regular(path, 1 << 30).decode("utf-8")
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except (InputFileError, UnicodeDecodeError, csv.Error):
        return {}  # unreadable: start again (it is rewritten whole)
    if not rows:
        return {}
    header = rows[0]
    if not {"key", "error", "wall_s", *METRICS} <= set(header):
        return {}
    col = {name: i for i, name in enumerate(header)}
    out: dict[str, dict[str, Any]] = {}
    for row in rows[1:]:
        record = _parse_row(row, header, col)
        if record is not None:
            out[record["key"]] = record
    return out


_KEY = re.compile(r"[0-9a-f]{20}")


def _parse_row(row: list[str], header: list[str], col: dict[str, int]) -> dict[str, Any] | None:
    """A finished run's record from a runs.csv row, or None if the row is not one."""
    if len(row) != len(header) or not _KEY.fullmatch(row[col["key"]]) or row[col["error"]]:
        return None
    record: dict[str, Any] = {"key": row[col["key"]], "error": ""}
    for name in (*METRICS, "wall_s"):
        cell = row[col[name]].strip()
        if not cell:
            record[name] = None
            continue
        try:
            value = float(cell)
        except ValueError:
            return None
        if not math.isfinite(value):
            return None
        record[name] = int(value) if value.is_integer() and "." not in cell else value
    if record["wall_s"] is None:
        return None
    return record


def finished_count(out_dir: Path) -> int:
    """How many finished runs ``out_dir/runs.csv`` holds (for the resume hint)."""
    return len(_finished(out_dir))


def check_runs_file(out_dir: Path) -> None:
    """Refuse, before any run, a ``runs.csv`` that cannot be replaced (a directory, a
    device): it is where finished runs are kept."""
    from sim.atomic import OutputError, check_target

    try:
        check_target(out_dir / "runs.csv")
    except OutputError as exc:
        raise OutputError(f"{exc} (a sweep keeps its finished runs in it: move it away)") from None


def _write_runs(out_dir: Path, frame: pd.DataFrame) -> None:
    from sim.atomic import write_text

    out_dir.mkdir(parents=True, exist_ok=True)
    write_text(out_dir / "runs.csv", frame.to_csv(index=False, lineterminator="\n"))


def _describe_sweep(sweep: Sweep) -> dict[str, Any]:
    return {
        "name": sweep.name,
        "source": sweep.source,
        "grid": sweep.grid,
        "replications": sweep.replications,
        "seed": sweep.seed,
        "replication_seeds": sweep.seeds(),
        "metrics": sweep.metrics,
    }


# -- statistics ---------------------------------------------------------------------------


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
                raise ValueError(f"runs of grid point {p} do not have {key}={_cell(value)}")
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


def default_workers() -> int:
    return os.cpu_count() or 1


def sweep(
    base: str | Path | Scenario,
    grid: dict[str, list[Any]] | None = None,
    *,
    replications: int | None = None,
    seed: int | None = None,
    workers: int = 1,
    dask: str | None = None,
    out: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    plots: bool = True,
) -> pd.DataFrame:
    """Run a sweep from Python (notebooks): one row per run, in grid order.

    ``base`` is a sweep file, a scenario file or a Scenario; ``grid`` maps dotted keys to
    value lists (added to a sweep file's grid).  With ``out`` the files of ``portsim
    sweep`` are written there and finished runs found there are not run again."""
    from sim.config.types import Scenario as ScenarioModel

    if isinstance(base, ScenarioModel):
        data = base.model_dump(mode="json")
        for item in overrides:
            key, _, text = item.partition("=")
            problem = assign(data, key.strip(), parse_value(text.strip()), base.name)
            if problem:
                raise ScenarioError([f"--set {problem}"])
        spec = Sweep(
            f"{base.name}-sweep",
            data,
            Path.cwd(),
            _check_grid(grid or {}),
            3 if replications is None else replications,
            DEFAULT_SWEEP_SEED if seed is None else seed,
            source=base.name,
        )
        spec.scenarios()
    else:
        spec = load_sweep(base, (), replications, seed, overrides, values=grid)
    if out is not None:
        from sim.safe_paths import check_writable_dir

        out = check_writable_dir(Path(out), flag="out")  # before any run; never a foreign folder
    runs = execute(spec, out, workers=workers, dask=dask)
    if out is not None and plots:
        write_plots(spec, runs, Path(out))
    return runs


def _check_grid(grid: dict[str, Any]) -> dict[str, list[Any]]:
    problems = [
        f"grid {show(key)}: expected a non-empty list of values"
        for key, options in grid.items()
        if not isinstance(options, list | tuple) or not options
    ]
    if problems:
        raise ScenarioError(problems)
    checked = {key: list(options) for key, options in grid.items()}
    problems = _repeated_values(checked, "grid ")
    if problems:
        raise ScenarioError(problems)
    return checked


def _repeated_values(grid: dict[str, list[Any]], prefix: str) -> list[str]:
    """A value twice in one key's list would make two grid points with the same run key.

    Compared by equality, so 60 and 60.0 (one rate once validated) count as the same."""
    problems = []
    for key, listed in grid.items():
        if any(a == b for i, a in enumerate(listed) for b in listed[i + 1 :]):
            problems.append(f"{prefix}{show(key)}: values must be distinct (got {listed})")
    return problems


def write_plots(spec: Sweep, runs: pd.DataFrame, out_dir: Path) -> list[Path]:
    """One PNG per chosen metric against the first grid key, with 95 % bands."""
    from sim.plots import save_figure, sweep_figure

    if not spec.grid or runs.empty:
        return []
    table = summarise_by_grid_point(runs, spec)
    paths = []
    for metric in spec.metrics:
        path = out_dir / f"sweep-{metric.replace('.', '-')}.png"
        save_figure(sweep_figure(table, list(spec.grid), metric, spec.name), path)
        paths.append(path)
    return paths
