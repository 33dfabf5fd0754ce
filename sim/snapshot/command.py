"""``portsim inspect``: read snapshots, print the report (or ``--json``), answer
``--port``, write a scenario with ``--out``.  Bad input raises ScenarioError (exit 2)."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from sim.config.errors import ScenarioError


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``inspect`` subcommand's arguments."""
    from sim.snapshot.detect import FORMATS

    p = sub.add_parser(
        "inspect",
        help="what is using a machine's ports now: pools, pressure, headroom from ss/netstat/...",
    )
    p.add_argument("snapshots", nargs="+", metavar="SNAPSHOT", help="listing files; - is stdin")
    p.add_argument("--os", help="the host's preset (portsim presets); default: from the format")
    p.add_argument("--range", help="ephemeral range LOW-HIGH (default: a sysctl file, the preset)")
    p.add_argument("--time-wait", help="TIME_WAIT length, e.g. 60s (default: the preset's)")
    p.add_argument("--port", type=int, help="who holds this local port, in which state, to whom")
    p.add_argument("--format", choices=list(FORMATS), help="the listing's format (default: detect)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--out", help="write scenario.toml + initial-state.csv starting from the state")
    p.add_argument(
        "--time-wait-age",
        choices=["uniform", "fresh"],
        default="uniform",
        help="how TIME_WAITs of unknown age are assumed in --out (default uniform)",
    )


def run(args: argparse.Namespace) -> int:
    from sim.presets import PRESETS
    from sim.snapshot import SnapshotError, read_snapshot
    from sim.snapshot.report import build_report, host_view, port_lines, report_lines
    from sim.units import parse_duration

    problems = []
    rng = None
    if args.range is not None:
        match = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", args.range)
        if not match or not 1 <= int(match.group(1)) <= int(match.group(2)) <= 65535:
            problems.append(f"--range: expected LOW-HIGH within 1-65535 (got {args.range!r})")
        else:
            rng = (int(match.group(1)), int(match.group(2)))
    tw = None
    if args.time_wait is not None:
        try:
            tw = parse_duration(args.time_wait)
        except ValueError as exc:
            problems.append(f"--time-wait: {exc} (got {args.time_wait!r})")
    if args.os is not None and args.os not in PRESETS:
        from sim.config.errors import suggest

        hint = suggest(args.os, PRESETS)
        problems.append(
            f"--os: unknown preset; {hint + ' ' if hint else ''}one of: {', '.join(PRESETS)} "
            f"(got {args.os!r})"
        )
    if args.port is not None and not 1 <= args.port <= 65535:
        problems.append(f"--port: must be within 1..65535 (got {args.port})")
    if args.snapshots.count("-") > 1:
        problems.append("SNAPSHOT: standard input (-) can be read once")
    out = Path(args.out) if args.out else None
    if out is not None:
        blocker = next((p for p in [out, *out.parents] if p.exists()), None)
        if blocker is not None and not blocker.is_dir():
            problems.append(f"--out {out}: {blocker} exists and is not a directory")
    snapshots = []
    for path in args.snapshots:
        try:
            snapshots.append(read_snapshot(path, args.format))
        except SnapshotError as exc:
            problems.append(str(exc))
    if problems:
        raise ScenarioError(problems)
    view = host_view(snapshots, args.os, rng, tw)
    report = build_report(snapshots, view)
    if args.port is not None:
        for line in port_lines(snapshots, args.port, view):
            print(line)
    elif args.json:
        print(json.dumps(report, indent=2))
    else:
        for line in report_lines(report):
            print(line)
    if out is not None:
        from sim.snapshot.report import unique_sockets
        from sim.snapshot.to_scenario import write_scenario

        csv_path, toml_path, held, skipped = write_scenario(
            out, unique_sockets(snapshots), report, view, args.time_wait_age
        )
        if not args.json:
            print(
                f"wrote {toml_path} and {csv_path} ({held:,} held ports, {skipped:,} sockets "
                f"left out): fill in the load, then portsim run {toml_path}"
            )
    return 0
