"""The lives of one port number, read back from a run's event log.

Over a run a port number has thousands of lives: taken by a connection (or a bind), held
while established, maybe held in TIME_WAIT, released, idle, taken again -- possibly by
several destinations at once, since Linux shares a port across 4-tuples.  This module
rebuilds them from ``events.csv`` the way ``ss``/``netstat`` would have shown them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

LIFE_COLUMNS = (
    "host",
    "local_address",
    "protocol",
    "destination",
    "taken_s",
    "closed_s",
    "released_s",
    "established_s",
    "time_wait_s",
    "ended_by",
    "idle_before_s",
)


@dataclass
class _Life:
    host: str
    local_address: str
    protocol: str
    destination: str
    taken: float
    closed: float | None = None
    released: float | None = None
    ended_by: str = "open at the end"


def port_lives(events: pd.DataFrame, port: int, end_s: float | None = None) -> pd.DataFrame:
    """One row per life of ``port``: holder, when taken, closed and released, how long in
    TIME_WAIT, how it ended, and how long the port sat idle before (no holder at all)."""
    import pandas as pd

    rows = events[events["local_port"] == port].sort_values("time_s", kind="stable")
    # a life is one socket on this port: (host, local address, protocol, destination) is its
    # 4-tuple, so two source addresses can hold the port at once to the same destination
    Key = tuple[str, str, str, str]
    open_lives: dict[Key, _Life] = {}  # established
    just_closed: dict[Key, _Life] = {}  # closed at the last close row
    in_time_wait: dict[Key, _Life] = {}
    lives: list[_Life] = []
    for t, host, laddr, event, proto, dest in zip(
        rows.time_s,
        rows.host,
        rows.local_address,
        rows.event,
        rows.protocol,
        rows.destination,
        strict=True,
    ):
        key = (host, laddr, proto, dest)
        if event in ("bind", "connect"):
            if key in open_lives:
                continue  # the connect row that follows the bind row of the same socket
            life = _Life(host, laddr, proto, dest, float(t))
            open_lives[key] = life
            lives.append(life)
        elif event == "close" and key in open_lives:
            life = open_lives.pop(key)
            life.closed = float(t)
            _release(life, None, "closed")  # unless a time_wait row follows
            just_closed[key] = life
        elif event == "time_wait" and key in just_closed:
            life = just_closed.pop(key)
            life.released, life.ended_by = None, "in TIME_WAIT at the end"
            in_time_wait[key] = life
        elif event in ("time_wait_end", "time_wait_reused") and key in in_time_wait:
            how = "TIME_WAIT ended" if event == "time_wait_end" else "TIME_WAIT reused"
            _release(in_time_wait.pop(key), float(t), how)
    return pd.DataFrame(_rows(lives, end_s), columns=list(LIFE_COLUMNS))


def _release(life: _Life, at: float | None, how: str) -> None:
    life.released = life.closed if at is None else at
    life.ended_by = how


def _rows(lives: list[_Life], end_s: float | None) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    busy_until = None  # the latest release among earlier lives: the port's last busy time
    for life in sorted(lives, key=lambda x: x.taken):
        idle = None
        if busy_until is not None:
            idle = max(0.0, life.taken - busy_until)
        released = life.released
        end = released if released is not None else end_s
        closed = life.closed if life.closed is not None else end_s
        established = None if closed is None else closed - life.taken
        if life.closed is None or life.ended_by == "closed":
            time_wait = 0.0
        else:  # still in TIME_WAIT at the end: count up to the end of the run
            time_wait = (released if released is not None else end_s or life.closed) - life.closed
        rows.append(
            (
                life.host,
                life.local_address,
                life.protocol,
                life.destination,
                life.taken,
                life.closed,
                released,
                established,
                time_wait,
                life.ended_by,
                idle,
            )
        )
        if end is None:
            busy_until = float("inf")
        elif busy_until is None or end > busy_until:
            busy_until = end
    return rows


def describe(lives: pd.DataFrame, port: int) -> list[str]:
    """The lives as text, one line each, the way ss would have listed the socket."""
    import pandas as pd

    if lives.empty:
        return [f"port {port}: never used in this run"]
    lines = [f"port {port}: {len(lives):,} {'life' if len(lives) == 1 else 'lives'}"]
    row: Any
    for row in lives.itertuples(index=False):
        held = "open" if pd.isna(row.established_s) else f"{row.established_s:.3f} s established"
        tw = f", {row.time_wait_s:.3f} s TIME_WAIT" if row.time_wait_s else ""
        idle = "" if pd.isna(row.idle_before_s) else f" (idle {row.idle_before_s:.3f} s before)"
        lines.append(
            f"  {row.taken_s:10.3f} s  {row.protocol} {row.local_address}:{port} -> "
            f"{row.destination}  {held}{tw}, {row.ended_by}{idle}  [{row.host}]"
        )
    return lines
