"""Data files a scenario points to: request traces and lifetime samples (CSV).

Read once per file version (cached on path, size and modification time) so that validating
a scenario and running it do not parse a large trace twice.  Every problem raises
:class:`DataFileError` with a message fit for a scenario error line (it names the line).

Only regular files are read, at most ``DATA_LIMIT`` bytes (a FIFO or ``/dev/zero`` is
refused, not waited on or read without end).  An error quotes a file's text only where it
looks like what was expected (column names, something meant as a number): a file that is
not a CSV of the expected shape is named, never echoed.
"""

from __future__ import annotations

import csv
import errno
import io
import math
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from sim.safe_paths import DATA_LIMIT, InputFileError, open_error, read_regular

TRACE_COLUMNS = ("time_s", "destination", "lifetime_s", "host")
TRACE_REQUIRED = ("time_s", "destination")


class DataFileError(ValueError):
    """A data file that cannot be used; the message says where and why."""


@dataclass(frozen=True)
class Trace:
    """A replayable trace: times in order, destinations and hosts as codes into names."""

    times: np.ndarray  # float64, non-decreasing
    destinations: tuple[str, ...]
    destination_codes: np.ndarray  # int32 index into destinations
    lifetimes: np.ndarray | None  # float64 seconds (inf allowed), or None without the column
    hosts: tuple[str, ...] | None
    host_codes: np.ndarray | None

    def window(self, start: float, stop: float) -> tuple[int, int]:
        """Rows [i, j) whose time falls in [start, stop)."""
        times = self.times
        return int(np.searchsorted(times, start, "left")), int(np.searchsorted(times, stop, "left"))


def _key(path: Path) -> tuple[str, int, int]:
    try:
        st = path.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP or path.is_symlink():  # "a symbolic link loop" & co
            raise DataFileError(str(open_error(path, exc))) from None
        raise DataFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    return str(path), st.st_size, st.st_mtime_ns


def _rows(path: Path):
    try:
        text = read_regular(path, DATA_LIMIT).decode("utf-8-sig")
    except InputFileError as exc:
        raise DataFileError(str(exc)) from None
    except UnicodeDecodeError:
        raise DataFileError(f"{path}: not a text file (not UTF-8)") from None
    if "\x00" in text:
        raise DataFileError(f"{path}: not a text file (contains NUL bytes)")
    try:
        yield from csv.reader(io.StringIO(text, newline=""))
    except csv.Error as exc:
        raise DataFileError(f"{path}: not a readable CSV file ({exc})") from None


_NUMBERISH = re.compile(r"[-+0-9.eE_a-zA-Z ]{1,24}")  # a cell meant as a number: "1,5", "nan"
_NAMEISH = re.compile(r"[A-Za-z_][A-Za-z0-9_ ]{0,30}")  # a cell meant as a column name


def _quote(text: str, pattern: re.Pattern[str]) -> str:
    """``(got 'text')`` when the text looks like what was expected, else nothing."""
    return f" (got {text!r})" if pattern.fullmatch(text) else ""


def _number(text: str, where: str, column: str, *, allow_inf: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        raise DataFileError(f"{where}: {column}: not a number{_quote(text, _NUMBERISH)}") from None
    if math.isnan(value) or value < 0 or (math.isinf(value) and not allow_inf):
        bound = ">= 0 or inf" if allow_inf else "finite and >= 0"
        raise DataFileError(f"{where}: {column}: must be {bound}{_quote(text, _NUMBERISH)}")
    return value


def read_trace(path: str | os.PathLike[str]) -> Trace:
    """Read ``time_s,destination[,lifetime_s][,host]`` rows (a header line first)."""
    return _read_trace(*_key(Path(path)))


@lru_cache(maxsize=8)
def _read_trace(path: str, _size: int, _mtime: int) -> Trace:
    rows = _rows(Path(path))
    header = [h.strip() for h in next(rows, [])]
    if not header:
        raise DataFileError(f"{path}: empty; expected a header line time_s,destination")
    unknown = [h for h in header if h not in TRACE_COLUMNS]
    missing = [h for h in TRACE_REQUIRED if h not in header]
    if unknown or missing or len(set(header)) != len(header):
        shown = ",".join(header)
        quoted = f" (got {shown})" if all(_NAMEISH.fullmatch(h) for h in header) else ""
        raise DataFileError(
            f"{path} line 1: header must name time_s and destination, optionally lifetime_s "
            f"and host, once each{quoted}"
        )
    col = {name: header.index(name) for name in header}
    times: list[float] = []
    dests: list[str] = []
    lives: list[float] = []
    hosts: list[str] = []
    last = 0.0
    for number, row in enumerate(rows, start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        where = f"{path} line {number}"
        if len(row) != len(header):
            raise DataFileError(f"{where}: expected {len(header)} fields (got {len(row)})")
        t = _number(row[col["time_s"]].strip(), where, "time_s", allow_inf=False)
        if t < last:
            raise DataFileError(f"{where}: time_s: times must not go back (got {t} after {last})")
        last = t
        dest = row[col["destination"]].strip()
        if not dest:
            raise DataFileError(f"{where}: destination: empty")
        times.append(t)
        dests.append(dest)
        if "lifetime_s" in col:
            text = row[col["lifetime_s"]].strip()
            lives.append(_number(text, where, "lifetime_s", allow_inf=True))
        if "host" in col:
            host = row[col["host"]].strip()
            if not host:
                raise DataFileError(f"{where}: host: empty")
            hosts.append(host)
    if not times:
        raise DataFileError(f"{path}: no rows after the header")
    dest_names, dest_codes = np.unique(np.array(dests, dtype=object), return_inverse=True)
    host_names = host_codes = None
    if hosts:
        names, codes = np.unique(np.array(hosts, dtype=object), return_inverse=True)
        host_names, host_codes = tuple(str(n) for n in names), codes.astype(np.int32)
    return Trace(
        times=np.array(times, dtype=np.float64),
        destinations=tuple(str(n) for n in dest_names),
        destination_codes=dest_codes.astype(np.int32),
        lifetimes=np.array(lives, dtype=np.float64) if "lifetime_s" in col else None,
        hosts=host_names,
        host_codes=host_codes,
    )


def read_samples(path: str | os.PathLike[str]) -> np.ndarray:
    """Lifetime samples in seconds: one column (a header line naming it is allowed)."""
    return _read_samples(*_key(Path(path)))


@lru_cache(maxsize=8)
def _read_samples(path: str, _size: int, _mtime: int) -> np.ndarray:
    values: list[float] = []
    for number, row in enumerate(_rows(Path(path)), start=1):
        cells = [c.strip() for c in row]
        if not any(cells):
            continue
        where = f"{path} line {number}"
        if len(cells) != 1:
            raise DataFileError(f"{where}: expected one value per line (got {len(cells)})")
        if number == 1 and not _looks_numeric(cells[0]):
            continue  # a header
        values.append(_number(cells[0], where, "sample", allow_inf=False))
    if not values:
        raise DataFileError(f"{path}: no samples")
    samples = np.array(values, dtype=np.float64)
    samples.setflags(write=False)
    return samples


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
