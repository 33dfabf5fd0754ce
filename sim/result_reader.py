"""Reading a saved run's folder back, validated: ``plot``, ``port`` and ``compare`` use it.

A result folder is user input like any other: it may be from another version, edited by
hand, truncated, or crafted.  Each loader reads a regular file of bounded size, checks the
shape the rest of portsim relies on (JSON object types, CSV columns and numbers, the npz
arrays, loaded with ``allow_pickle=False``) and raises :class:`ResultFolderError` with
one line naming the file and what is wrong.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from sim.safe_paths import RESULT_LIMIT, InputFileError, read_regular
from sim.summary.paths import json_types

if TYPE_CHECKING:
    import pandas as pd

    from sim.summary.types import Summary

JSON_LIMIT = 64 << 20
MAX_JSON_DEPTH = 32


class ResultFolderError(Exception):
    """A result folder (or one of its files) that cannot be used; one line."""


def _bytes(path: Path, limit: int) -> bytes:
    try:
        return read_regular(path, limit)
    except InputFileError as exc:
        raise ResultFolderError(str(exc)) from None


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of a decoded JSON value, stopping past ``limit``."""
    stack = [(value, 1)]
    deepest = 0
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        children = (
            node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        )
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _json(path: Path) -> Any:
    data = _bytes(path, JSON_LIMIT)
    try:
        value = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ResultFolderError(f"{path}: not a text file (not UTF-8)") from None
    except RecursionError:
        raise ResultFolderError(f"{path}: JSON nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise ResultFolderError(f"{path}: not valid JSON (line {exc.lineno})") from None
    if _depth(value, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise ResultFolderError(f"{path}: JSON nested too deeply (over {MAX_JSON_DEPTH} levels)")
    return value


_NUMBER = (int, float)
# the summary fields that readers use; the types they must have when present come from
# summary.json's typed shape (sim.summary.types)
_READ_FIELDS = (
    "scenario",
    "seed",
    "duration_s",
    "bin_s",
    "error",
    "connections",
    "connections.attempted",
    "connections.succeeded",
    "connections.failed",
    "connections.failed_by_error",
    "pressure",
    "pressure.peak",
    "pressure.mean",
    "pressure.peak_time_s",
    "pressure.worst_destination",
    "pressure.worst_host",
    "pressure.peak_ports",
    "pressure.range_ports",
    "probes",
    "steady_state",
    "analytic",
    "hosts",
    "destinations",
    "loads",
    "requests",
    "retries",
    "first_failure_s",
)
_SUMMARY_TYPES: dict[str, tuple[type, ...]] = {key: json_types(key) for key in _READ_FIELDS}


def _lookup(data: dict[str, Any], dotted: str) -> tuple[bool, Any]:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def validate_summary(summary: Any, where: str) -> Summary:
    """The summary dict, the fields readers use of their declared types (bool is not a
    number); fields a reader does not use are not checked (older summaries load)."""
    if not isinstance(summary, dict):
        raise ResultFolderError(f"{where}: expected a JSON object (got a {type(summary).__name__})")
    for key, types in _SUMMARY_TYPES.items():
        present, value = _lookup(summary, key)
        if not present:
            continue
        if isinstance(value, bool) or not isinstance(value, types):
            names = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise ResultFolderError(f"{where}: {key}: expected {names} (got {_short(value)})")
        if isinstance(value, float) and not math.isfinite(value):
            raise ResultFolderError(f"{where}: {key}: not a finite number")
    hosts = summary.get("hosts", [])
    if not all(isinstance(h, dict) for h in hosts):
        raise ResultFolderError(f"{where}: hosts: expected a list of objects")
    for i, host in enumerate(hosts):
        size = host.get("range_ports")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int)):
            raise ResultFolderError(f"{where}: hosts[{i}].range_ports: expected an integer")
    return cast("Summary", summary)


def _short(value: Any) -> str:
    text = json.dumps(value)[:40]
    return text.encode("unicode_escape").decode("ascii")


def read_summary(folder: Path) -> Summary:
    path = folder / "summary.json"
    return validate_summary(_json(path), str(path))


def _csv(path: Path, required: tuple[str, ...], numeric: tuple[str, ...]) -> pd.DataFrame:
    import pandas as pd

    data = _bytes(path, RESULT_LIMIT)
    if not data.strip():
        raise ResultFolderError(f"{path}: empty; expected columns {','.join(required)}")
    try:
        frame = pd.read_csv(
            io.BytesIO(data), keep_default_na=False, na_values={c: [""] for c in numeric}
        )
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise ResultFolderError(f"{path}: not a readable CSV file ({first})") from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ResultFolderError(
            f"{path}: missing column(s) {', '.join(missing)}: not written by this version"
        )
    for column in numeric:
        if column not in frame.columns:
            continue
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna() & frame[column].notna()
        if bad.any() or not np.isfinite(values.dropna().to_numpy(dtype=float)).all():
            row = int(np.flatnonzero(bad.to_numpy())[0]) + 2 if bad.any() else 0
            where = f" (line {row})" if row else ""
            raise ResultFolderError(f"{path}: {column}: not a finite number{where}")
        frame[column] = values
    return frame


def read_series(folder: Path) -> pd.DataFrame:
    from sim.recorder import SERIES_COLUMNS

    frame = _csv(folder / "series.csv", tuple(SERIES_COLUMNS), tuple(SERIES_COLUMNS))
    from sim.recorder import WORST_COLUMNS

    for column in WORST_COLUMNS:  # written since the worst pool is tracked; 0 before
        if column not in frame.columns:
            frame[column] = 0
        else:
            frame[column] = _numeric_column(frame, column, folder / "series.csv")
    from sim.recorder import GATEWAY_COLUMNS

    for column in GATEWAY_COLUMNS:  # runs with gateways only
        if column in frame.columns:
            frame[column] = _numeric_column(frame, column, folder / "series.csv")
    return frame


def read_host_series(folder: Path) -> pd.DataFrame:
    """hosts.csv (runs with several hosts): per host and bin, its connects and worst pool."""
    from sim.per_host import HOST_SERIES_COLUMNS

    numeric = tuple(c for c in HOST_SERIES_COLUMNS if c != "host")
    return _csv(folder / "hosts.csv", tuple(HOST_SERIES_COLUMNS), numeric)


def _numeric_column(frame: pd.DataFrame, column: str, path: Path) -> pd.Series:
    import pandas as pd

    values = pd.to_numeric(frame[column], errors="coerce")
    if values.isna().any() or not np.isfinite(values.to_numpy(dtype=float)).all():
        raise ResultFolderError(f"{path}: {column}: not a finite number")
    return values


def read_events(folder: Path) -> pd.DataFrame:
    """events.csv with ports as integers within 0..65535 (empty where none was taken)."""
    from sim.recorder import EVENT_COLUMNS

    path = folder / "events.csv"
    frame = _csv(path, tuple(EVENT_COLUMNS), ("time_s", "local_port", "probes"))
    ports = frame["local_port"].dropna()
    if len(ports) and ((ports != ports.round()).any() or ports.min() < 0 or ports.max() > 65535):
        raise ResultFolderError(f"{path}: local_port: expected port numbers 0..65535")
    frame["local_port"] = frame["local_port"].astype("Int64")
    for column in ("host", "local_address", "event", "protocol", "destination", "error"):
        frame[column] = frame[column].astype(str)
    return frame


def read_histograms(folder: Path) -> dict[str, list[list[float]]]:
    path = folder / "histograms.json"
    if not path.exists():
        return {}
    data = _json(path)
    if not isinstance(data, dict):
        raise ResultFolderError(f"{path}: expected a JSON object of histograms")
    for key, rows in data.items():
        ok = isinstance(rows, list) and all(
            isinstance(r, list)
            and len(r) == 2
            and all(isinstance(x, _NUMBER) and not isinstance(x, bool) for x in r)
            for r in rows
        )
        if not ok:
            raise ResultFolderError(f"{path}: {_short(key)}: expected [[value, count], ...]")
    return data


def read_raster(folder: Path) -> dict[str, Any]:
    """raster.npz: times_s (n), occupancy (groups x n, uint8), lo, hi, label."""
    path = folder / "raster.npz"
    if not path.exists():
        return {}
    data = _bytes(path, RESULT_LIMIT)
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            raster = {k: npz[k] for k in npz.files}
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise ResultFolderError(f"{path}: not a readable npz file ({type(exc).__name__})") from None
    need = ("times_s", "occupancy", "lo", "hi", "label")
    missing = [k for k in need if k not in raster]
    if missing:
        raise ResultFolderError(f"{path}: missing array(s) {', '.join(missing)}")
    times, occupancy = raster["times_s"], raster["occupancy"]
    if times.ndim != 1 or not np.issubdtype(times.dtype, np.number):
        raise ResultFolderError(f"{path}: times_s: expected a list of numbers")
    if occupancy.ndim != 2 or occupancy.dtype != np.uint8 or occupancy.shape[1] != len(times):
        raise ResultFolderError(f"{path}: occupancy: expected groups x times of uint8")
    out: dict[str, Any] = {"times_s": times, "occupancy": occupancy}
    for key in ("lo", "hi"):
        value = raster[key]
        if value.ndim != 0 or not np.issubdtype(value.dtype, np.integer):
            raise ResultFolderError(f"{path}: {key}: expected a port number")
        out[key] = int(value)
    if not 0 <= out["lo"] <= out["hi"] <= 65535:
        raise ResultFolderError(f"{path}: lo, hi: expected a port range within 0..65535")
    label = raster["label"]
    if label.ndim != 0 or label.dtype.kind != "U":
        raise ResultFolderError(f"{path}: label: expected a text")
    out["label"] = str(label)
    return out


@dataclass
class SavedRun:
    """What a result folder holds, validated (``Result.load`` makes a Result of it)."""

    summary: Summary
    series: pd.DataFrame
    histograms: dict[str, list[list[float]]]
    raster: dict[str, Any] | None
    host_series: pd.DataFrame | None
    log: list[tuple] | None


def read_saved(folder: Path, *, events: bool = True) -> SavedRun:
    """A saved run's files (no scenario object: the folder holds its JSON)."""
    if not folder.is_dir():
        raise ResultFolderError(f"{folder}: not a result directory (no such folder)")
    for name in ("summary.json", "series.csv"):
        if not (folder / name).exists():
            raise ResultFolderError(
                f"{folder}: not a result directory (no {name}; written by 'portsim run')"
            )
    summary = read_summary(folder)
    series = read_series(folder)
    histograms = read_histograms(folder)
    raster = read_raster(folder)
    host_series = read_host_series(folder) if (folder / "hosts.csv").exists() else None
    log = None
    if events and (folder / "events.csv").exists():
        log = list(read_events(folder).itertuples(index=False, name=None))
    return SavedRun(summary, series, histograms, raster, host_series, log)
