"""A host's held ports at time 0 (the host key ``initial_state``): a CSV file of sockets.

Columns, with a header line: ``local_port,destination,state[,remaining_s][,local_address]``.

* ``state``: ``ESTABLISHED`` (a connection open now) or ``TIME_WAIT``.
* ``remaining_s``: for ``ESTABLISHED``, the time until the application closes it (this
  side closes first, so it then holds TIME_WAIT); empty or ``inf``: open for the whole
  run.  For ``TIME_WAIT``, the TIME_WAIT left; empty: unknown, and then assumed by the
  host's ``time_wait_age``: ``uniform`` (default; the n TIME_WAITs of a pool have
  TIME_WAIT x (i + 1/2) / n left, i = 0..n-1, as a steady rate of closes leaves them) or
  ``fresh`` (all just entered: a whole TIME_WAIT left, the pessimistic bound).  Both are
  assumptions (inferred): a listing rarely shows a TIME_WAIT's age (Linux
  ``/proc/net/tcp`` and ``ss -o`` do).
* ``local_address``: the socket's source address.  A row is counted against its port and
  its destination's pool from the host's matching source address (``address`` /
  ``addresses``), or from its primary address when it has no such address.

The rows are applied once at start-up (``sim.host.Host.preload``).
"""

from __future__ import annotations

import csv
import ipaddress
import math
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from sim.units import parse_endpoint
from sim.workload.files import DataFileError

COLUMNS = ("local_port", "destination", "state", "remaining_s", "local_address")
REQUIRED = ("local_port", "destination", "state")
STATES = ("ESTABLISHED", "TIME_WAIT")
AGES = ("uniform", "fresh")


@dataclass(frozen=True, slots=True)
class HeldPort:
    """One held port: a connection or a TIME_WAIT towards ``ip:port``."""

    line: int
    local_port: int
    destination: str  # normalised "ip:port", IPv6 in brackets
    ip: str
    port: int
    state: str
    remaining_s: float | None  # None: unknown (TIME_WAIT) or for the whole run (ESTABLISHED)
    local_address: str | None


def read_initial_state(path: str | os.PathLike[str]) -> tuple[HeldPort, ...]:
    """The rows of an initial-state CSV; DataFileError (a ValueError) names the line."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError as exc:
        raise DataFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    return _read(str(p), st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=8)
def _read(path: str, _size: int, _mtime: int) -> tuple[HeldPort, ...]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle))
    except OSError as exc:
        raise DataFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataFileError(f"{path}: not a readable CSV file ({exc})") from None
    header = [h.strip() for h in rows[0]] if rows else []
    unknown = [h for h in header if h not in COLUMNS]
    if not header or unknown or any(h not in header for h in REQUIRED):
        raise DataFileError(
            f"{path} line 1: header must name local_port, destination and state, optionally "
            f"remaining_s and local_address (got {','.join(header) or 'nothing'})"
        )
    col = {name: header.index(name) for name in header}
    out: list[HeldPort] = []
    seen: dict[tuple, int] = {}
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        where = f"{path} line {number}"
        if len(row) != len(header):
            raise DataFileError(f"{where}: expected {len(header)} fields (got {len(row)})")
        cell = {name: row[i].strip() for name, i in col.items()}
        if not cell["local_port"].isdigit() or not 1 <= int(cell["local_port"]) <= 65535:
            raise DataFileError(f"{where}: local_port: not a port (got {cell['local_port']!r})")
        try:
            dest, ip, port = parse_endpoint(cell["destination"])
        except ValueError as exc:
            raise DataFileError(
                f"{where}: destination: {exc} (got {cell['destination']!r})"
            ) from None
        state = cell["state"].upper()
        if state not in STATES:
            raise DataFileError(f"{where}: state: ESTABLISHED or TIME_WAIT (got {cell['state']!r})")
        remaining = _remaining(cell.get("remaining_s", ""), state, where)
        local = cell.get("local_address") or None
        if local is not None:
            try:
                local = str(ipaddress.ip_address(local))
            except ValueError:
                raise DataFileError(f"{where}: local_address: not an IP (got {local!r})") from None
        key = (int(cell["local_port"]), dest, local)
        if key in seen:
            raise DataFileError(
                f"{where}: port {key[0]} to {dest} is already held (line {seen[key]}): "
                "a 4-tuple is held once"
            )
        seen[key] = number
        out.append(HeldPort(number, key[0], dest, ip, port, state, remaining, local))
    return tuple(out)


def _remaining(text: str, state: str, where: str) -> float | None:
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise DataFileError(f"{where}: remaining_s: not a number (got {text!r})") from None
    if math.isnan(value) or value < 0 or (math.isinf(value) and state == "TIME_WAIT"):
        bound = "finite and >= 0" if state == "TIME_WAIT" else ">= 0 or inf"
        raise DataFileError(f"{where}: remaining_s: must be {bound} (got {text!r})")
    return None if math.isinf(value) else value


def check(rows: tuple[HeldPort, ...], lo: int, hi: int, time_wait: float) -> str | None:
    """The first row that the host cannot hold: a port outside its range, or more
    TIME_WAIT left than the host's TIME_WAIT."""
    for r in rows:
        if not lo <= r.local_port <= hi:
            return (
                f"line {r.line}: local_port {r.local_port} is outside the host's port range "
                f"{lo}-{hi} (ports outside it do not compete for connect())"
            )
        if r.state == "TIME_WAIT" and r.remaining_s is not None and r.remaining_s > time_wait:
            return (
                f"line {r.line}: remaining_s {r.remaining_s:g} is more than the host's "
                f"TIME_WAIT ({time_wait:g} s)"
            )
    return None


def time_wait_left(rows: list[HeldPort], length: float, age: str) -> list[float]:
    """TIME_WAIT left for one pool's TIME_WAIT rows: as given, else by ``age``."""
    unknown = [r for r in rows if r.remaining_s is None]
    n = len(unknown)
    assumed = iter(length * (n - i - 0.5) / n if age == "uniform" else length for i in range(n))
    return [r.remaining_s if r.remaining_s is not None else next(assumed) for r in rows]
