"""From a snapshot to a scenario that starts from it (``portsim inspect --out DIR``).

Writes ``initial-state.csv`` (the held ports, ``sim.initial_state``) and
``scenario.toml``: a host with the snapshot's range, TIME_WAIT, listeners and reserved
ports that starts from those ports, and a load to the worst pool to fill in (its rate and
lifetime are the estimates of the report when the pool shows TIME_WAIT, placeholders
otherwise).  States map to what the model holds: SYN_SENT, SYN_RECV, CLOSE_WAIT are open
connections (ESTABLISHED); FIN_WAIT1, FIN_WAIT2 and CLOSING close from this side and end
in TIME_WAIT (a whole TIME_WAIT left, inferred); LAST_ACK and CLOSE are left out (their
ports are about to be freed, with no TIME_WAIT on this side).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

from sim.atomic import write_text
from sim.snapshot.model import SocketRow
from sim.snapshot.report import HostView

OPEN = {"ESTABLISHED", "SYN_SENT", "SYN_RECV", "CLOSE_WAIT"}
CLOSING = {"TIME_WAIT", "FIN_WAIT1", "FIN_WAIT2", "CLOSING"}
STATE_CSV = "initial-state.csv"
SCENARIO = "scenario.toml"
MAX_POOLS = 512


def _plain(ip: str) -> str:
    return ip.partition("%")[0]  # a scenario address has no zone


def _dest(row: SocketRow) -> str:
    ip = _plain(row.remote_ip or "")
    return f"[{ip}]:{row.remote_port}" if ":" in ip else f"{ip}:{row.remote_port}"


def state_rows(rows: list[SocketRow], view: HostView) -> tuple[list[list[str]], int]:
    """CSV rows for the connected TCP sockets in the range, and how many were left out:
    closing states, and the pools beyond the ``MAX_POOLS`` fullest (each simulated pool
    is a map of the whole range, ~28 KB on Linux; a machine can talk to thousands)."""
    out, skipped = [], 0
    seen: set[tuple] = set()
    for r in rows:
        if r.protocol != "tcp" or not r.connected or r.local_port is None:
            continue
        if not view.lo <= r.local_port <= view.hi:
            continue
        key = (r.local_port, _dest(r), _plain(r.local_ip or ""))
        if key in seen:
            continue
        seen.add(key)
        if r.state in OPEN:
            out.append([str(r.local_port), key[1], "ESTABLISHED", "", key[2]])
        elif r.state in CLOSING:
            left = ""
            if r.state == "TIME_WAIT" and r.time_wait_left_s is not None:
                left = f"{min(r.time_wait_left_s, view.time_wait_s):g}"
            elif r.state != "TIME_WAIT":
                left = f"{view.time_wait_s:g}"
            out.append([str(r.local_port), key[1], "TIME_WAIT", left, key[2]])
        else:
            skipped += 1
    sizes = Counter((r[4], r[1]) for r in out)
    if len(sizes) > MAX_POOLS:
        kept = {key for key, _ in sizes.most_common(MAX_POOLS)}
        skipped += sum(n for key, n in sizes.items() if key not in kept)
        out = [r for r in out if (r[4], r[1]) in kept]
    return out, skipped


def _toml(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(value) if isinstance(value, float) else str(value)


def _name(out: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", out.resolve().name).strip("-")
    return name or "from-snapshot"


def write_scenario(
    out: Path,
    rows: list[SocketRow],
    report: dict[str, Any],
    view: HostView,
    time_wait_age: str = "uniform",
) -> tuple[Path, Path, int, int]:
    """Write the CSV and the scenario into ``out``; returns their paths, the rows written
    and the sockets left out."""
    held, skipped = state_rows(rows, view)
    locals_ = Counter(r[4] for r in held if r[4])
    address = locals_.most_common(1)[0][0] if locals_ else "192.0.2.1"
    worst = next((h for h in report["headroom"] if h.get("rate_now")), None)
    pools = [p for p in report["pools"] if p["protocol"] == "tcp"]
    target = next(
        (p["destination"] for p in pools if p["destination"] != "every destination"), None
    )
    target = target or (held[0][1] if held else "198.51.100.10:443")
    rate = f"{worst['rate_now']:.6g}" if worst else "10"
    life = max(worst["holding_s"] - view.time_wait_s, 0.0) if worst else 1.0
    listening = sorted({x["port"] for x in report["listeners_in_range"]})
    lines = [
        f"# Written by portsim inspect from: {', '.join(s['file'] for s in report['sources'])}",
        "# The host starts from the ports the snapshot holds (initial-state.csv): "
        f"{len(held):,} sockets,",
        f"# {skipped:,} left out (closing, or beyond the {MAX_POOLS} fullest pools).",
        f"# TIME_WAITs of unknown age: {time_wait_age}ly aged (host.initial_state.time_wait_age).",
        "# FILL IN the load: the rate and lifetime below are "
        + (
            "estimates from the worst pool's TIME_WAIT (Little's law)."
            if worst
            else "placeholders (the snapshot shows no TIME_WAIT to estimate them)."
        ),
        f"name = {_toml(_name(out))}",
        'duration = "10m"',
        "",
        "[[hosts]]",
        'name = "client"',
        f"os = {_toml(view.os)}",
        f"address = {_toml(address)}",
        f"port_range = [{view.lo}, {view.hi}]",
        f"time_wait = {_toml(float(view.time_wait_s))}",
    ]
    if listening:
        lines.append(f"listening_ports = {_toml(listening)}")
    if report["reserved_in_range"]:
        reserved = sorted(
            {
                p
                for s in report["sources"]
                for p in s.get("reserved_ports", [])
                if view.lo <= p <= view.hi
            }
        )
        if reserved:
            lines.append(f"reserved_ports = {_toml(reserved)}")
    lines += [
        f"initial_state = {{ file = {_toml(STATE_CSV)}, time_wait_age = {_toml(time_wait_age)} }}",
        "",
        "[[destinations]]",
        'name = "worst"',
        f"address = {_toml(target)}",
        "",
        "[[load]]",
        'destination = "worst"',
        f'arrival = {{ kind = "poisson", rate = {rate} }}  # FILL IN: connections per second',
        f'lifetime = {{ kind = "fixed", value = {life:.6g} }}  # FILL IN: seconds open',
        "",
    ]
    out.mkdir(parents=True, exist_ok=True)
    csv_text = "local_port,destination,state,remaining_s,local_address\n" + "".join(
        ",".join(r) + "\n" for r in held
    )
    csv_path, toml_path = out / STATE_CSV, out / SCENARIO
    for path, text in ((csv_path, csv_text), (toml_path, "\n".join(lines))):
        write_text(path, text)  # whole or not at all
    return csv_path, toml_path, len(held), skipped
