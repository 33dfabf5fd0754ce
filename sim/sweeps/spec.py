"""A sweep's definition: the sweep file schema, the grid and its points, replication
seeds and run keys.

Every grid point is validated before any run starts.  Replication r of every grid point
runs with the same seed, derived from the r-th ``SeedSequence.spawn`` child of the sweep's
root seed (common random numbers: differences between grid points are not drowned by seed
noise; NumPy, "Parallel random number generation",
numpy.org/doc/stable/reference/random/parallel.html).  A run is keyed by its resolved
scenario and seed (:func:`run_key`), so an interrupted sweep resumes without redoing
finished runs, and the results are the same whatever the backend or the number of workers.
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import itertools
import json
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.config.errors import ScenarioError, show, suggest
from sim.config.load import parse_scenario, read_toml
from sim.config.overrides import assign, parse_value
from sim.safe_paths import MAX_NAME, name_problem
from sim.sweeps.metrics import DEFAULT_PLOTS, METRICS
from sim.version import VERSION

if TYPE_CHECKING:
    from sim.config.types import Scenario

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
    return ", ".join(f"{k}={value_text(v)}" for k, v in point.items()) or "base"


def value_text(value: Any) -> str:
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


def scenario_sweep(
    base: Scenario,
    grid: dict[str, list[Any]] | None = None,
    replications: int | None = None,
    seed: int | None = None,
    overrides: list[str] | tuple[str, ...] = (),
) -> Sweep:
    """A sweep over a Scenario object (notebooks): its document with ``overrides`` applied,
    ``grid`` checked as a sweep file's is; every grid point validated."""
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
    return spec


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


# -- run keys -----------------------------------------------------------------------------


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
