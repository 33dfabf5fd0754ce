"""Running a sweep: every (grid point, replication) not already finished, on one of three
backends (in this process, worker processes, a Dask cluster), with ``runs.csv`` kept.

``runs.csv`` is rewritten whole (temporary file, then rename) as runs finish, so an
interruption loses at most the last second and the file is valid at every instant; on
resume a row counts as finished only when it parses whole (every column, numbers where
numbers go, no error).  An interruption (Ctrl-C, SIGTERM) cancels the runs not started and
terminates the workers at once; workers also die with the main process if it is killed
(Linux: PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim.atomic import forget_signals, raise_if_signalled
from sim.config.errors import ScenarioError
from sim.config.load import parse_scenario
from sim.safe_paths import InputFileError, read_regular
from sim.sweeps.metrics import METRICS, metrics_of
from sim.sweeps.spec import Sweep, load_sweep, run_key, scenario_sweep
from sim.sweeps.stats import summarise_by_grid_point

if TYPE_CHECKING:
    import pandas as pd

    from sim.config.types import Scenario


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
    forget_signals()  # the parent's, copied by fork: the parent reports them
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
    raise_if_signalled()  # (the seeds import numpy.random: where one is swallowed)
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
            raise_if_signalled()  # a signal whose exception was swallowed (sim.atomic)
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
        spec = scenario_sweep(base, grid, replications, seed, overrides)
    else:
        spec = load_sweep(base, (), replications, seed, overrides, values=grid)
    if out is not None:
        from sim.safe_paths import check_writable_dir

        out = check_writable_dir(Path(out), flag="out")  # before any run; never a foreign folder
    runs = execute(spec, out, workers=workers, dask=dask)
    if out is not None and plots:
        write_plots(spec, runs, Path(out))
    return runs


def write_plots(spec: Sweep, runs: pd.DataFrame, out_dir: Path) -> list[Path]:
    """The sweep's figures (``sim.plots.save_sweep_figures``) from its summary table;
    matplotlib is imported here only, not in the workers."""
    if not spec.grid or runs.empty:
        return []
    from sim.plots import save_sweep_figures

    table = summarise_by_grid_point(runs, spec)
    return save_sweep_figures(table, list(spec.grid), spec.metrics, spec.name, out_dir)
