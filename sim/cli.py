"""The ``portsim`` command: run, check, presets, plot.  No model logic lives here.

Exit codes: 0 the command completed (failed connections are results), 2 bad scenario or
usage (one line per problem, no traceback, nothing written), 1 internal error.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from sim.scenario import ScenarioError, load_scenario
from sim.verdict import key_figures, verdict
from sim.version import VERSION


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="portsim",
        description="Simulate ephemeral port allocation and exhaustion (SimPy).",
    )
    parser.add_argument("--version", action="version", version=f"portsim {VERSION}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run a scenario file and write results")
    run.add_argument("scenario", help="scenario file (TOML)")
    run.add_argument("--out", help="output directory (default: results/<scenario name>/)")
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a scenario key, e.g. load[0].arrival.rate=400",
    )
    run.add_argument("--seed", type=int, help="random seed (overrides the scenario's)")
    run.add_argument(
        "--events", action="store_true", help="also write events.csv (one row per action)"
    )
    run.add_argument("--no-plots", action="store_true", help="do not write pressure.png")
    run.add_argument("--quiet", action="store_true", help="no progress bar, only the verdict line")

    check = sub.add_parser("check", help="validate a scenario file without running it")
    check.add_argument("scenario")
    check.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")

    sweep = sub.add_parser(
        "sweep", help="run a grid of scenario variants x replications, with 95 % intervals"
    )
    sweep.add_argument("sweep", help="sweep file (with base = ...), or a scenario file")
    sweep.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2,...",
        help="a swept key and its values, e.g. load[0].arrival.rate=100,200,400",
    )
    sweep.add_argument("--replications", type=int, help="runs per grid point (default 3)")
    sweep.add_argument("--seed", type=int, help="root seed of the replications (default 1)")
    sweep.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    sweep.add_argument(
        "--workers", type=int, help="local worker processes (default: the number of cores)"
    )
    sweep.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="run on a dask.distributed scheduler at ADDRESS, or 'local' for a LocalCluster",
    )
    sweep.add_argument(
        "--metric",
        dest="metrics",
        action="append",
        metavar="KEY",
        help="summary figure to plot (repeatable), e.g. steady_state.blocking",
    )
    sweep.add_argument("--out", help="output directory (default: results/<sweep name>/)")
    sweep.add_argument("--no-plots", action="store_true")
    sweep.add_argument("--quiet", action="store_true", help="no progress bar")

    sub.add_parser("presets", help="list operating-system presets")
    sub.add_parser("schema", help="print the scenario JSON schema (scenarios/schema.json)")

    port = sub.add_parser("port", help="the lives of one port in a run saved with --events")
    port.add_argument("results", help="a result directory written by 'portsim run --events'")
    port.add_argument("port", type=int, help="local port number")
    port.add_argument("--out", help="timeline PNG (default: port-PORT.png in the directory)")

    cap = sub.add_parser(
        "capacity",
        help="Erlang-B: expected pressure, refusal and the sustainable rate to one destination",
    )
    cap.add_argument("--range", default="32768-60999", help="port range LOW-HIGH (Linux default)")
    cap.add_argument("--time-wait", default="60s", help="hold after close (TIME_WAIT)")
    cap.add_argument("--lifetime", default="1s", help="mean connection lifetime")
    cap.add_argument("--rate", type=float, required=True, help="new connections per second")
    cap.add_argument(
        "--target-blocking",
        type=float,
        default=0.001,
        help="refusal probability for the sustainable rate (default 0.001)",
    )
    cap.add_argument("--json", action="store_true", help="print JSON")

    _kernel_parser(sub)

    plot = sub.add_parser("plot", help="re-plot a saved run, or overlay several")
    plot.add_argument("results", nargs="+", help="result directories written by 'portsim run'")
    plot.add_argument(
        "--out",
        help="PNG file (default: pressure.png in the run's directory, "
        "or comparison.png in the current directory for several runs)",
    )
    return parser


def _kernel_parser(sub: Any) -> None:
    kernel = sub.add_parser(
        "kernel",
        help="replay a scenario on the running Linux kernel (root, network namespaces) "
        "beside the model",
    )
    kernel.add_argument("scenario", help="scenario file (TOML)")
    kernel.add_argument("--out", help="output directory (default: results/<name>-kernel/)")
    kernel.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    kernel.add_argument("--seed", type=int, help="random seed (overrides the scenario's)")
    kernel.add_argument(
        "--events", action="store_true", help="also write events.csv with the kernel's ports"
    )
    kernel.add_argument("--quiet", action="store_true", help="no progress line")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed its usage line
        return int(exc.code or 0)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "check":
            return _check(args)
        if args.command == "presets":
            return _presets()
        if args.command == "sweep":
            return _sweep(args)
        if args.command == "capacity":
            return _capacity(args)
        if args.command == "port":
            return _port(args)
        if args.command == "kernel":
            from sim.replay.command import kernel_command

            return kernel_command(
                args.scenario, args.overrides, args.seed, args.out, args.events, args.quiet
            )
        if args.command == "schema":
            from sim.scenario import scenario_json_schema

            print(json.dumps(scenario_json_schema(), indent=2))
            return 0
        return _plot(args)
    except ScenarioError as exc:
        for line in exc.problems:
            print(line, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("portsim: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into head & co: not an error of ours
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _check(args: argparse.Namespace) -> int:
    sc = load_scenario(args.scenario, args.overrides)
    from sim.scenario import estimated_events

    print(
        f"{args.scenario}: ok: {sc.name}, {len(sc.hosts)} host(s), {len(sc.destinations)} "
        f"destination(s), {len(sc.load)} load(s), about {estimated_events(sc):.3g} events"
    )
    return 0


class _Progress:
    """A tqdm bar on a terminal, shown only once a run has taken more than ~2 s."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.start = time.perf_counter()
        self.bar: Any = None

    def __call__(self, fraction: float) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            if time.perf_counter() - self.start < 2.0:
                return
            from tqdm import tqdm

            self.bar = tqdm(total=100, unit="%", desc="simulating", leave=False, file=sys.stderr)
        self.bar.n = round(100 * fraction)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _run(args: argparse.Namespace) -> int:
    from sim.engine import run
    from sim.result import summary_json, write_text

    sc = load_scenario(args.scenario, args.overrides)
    out = Path(args.out) if args.out else Path("results") / sc.name
    blocker = next((p for p in [out, *out.parents] if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise ScenarioError([f"--out {out}: {blocker} exists and is not a directory"])
    progress = _Progress(enabled=not args.quiet and sys.stderr.isatty())
    seed = sc.seed if args.seed is None else args.seed
    try:
        result = run(sc, seed=seed, events=args.events, progress=progress)
    except Exception as exc:  # a model bug: record it whole, say so, exit 1
        progress.close()
        out.mkdir(parents=True, exist_ok=True)
        failure = {
            "scenario": sc.name,
            "seed": seed,
            "version": f"portsim {VERSION}",
            "error": f"{type(exc).__name__}: {exc}",
            "duration_s": sc.duration,
            "traceback": traceback.format_exc(),
        }
        write_text(out / "summary.json", summary_json(failure))
        print(
            f"portsim: internal error: {type(exc).__name__}: {exc} (details in {out}/summary.json)",
            file=sys.stderr,
        )
        return 1
    progress.close()
    result.save(out, plots=not args.no_plots)
    print(verdict(result.summary))
    if not args.quiet:
        for line in key_figures(result.summary):
            print(f"  {line}")
        print(f"  results: {out}/")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from sim import sweeps

    spec = sweeps.load_sweep(args.sweep, args.grid, args.replications, args.seed, args.overrides)
    problems = []
    if args.workers is not None and args.workers < 1:
        problems.append(f"--workers: must be >= 1 (got {args.workers})")
    for metric in args.metrics or []:
        if metric not in sweeps.METRICS:
            problems.append(f"--metric {metric}: unknown; one of: {', '.join(sweeps.METRICS)}")
    out = Path(args.out) if args.out else Path("results") / spec.name
    blocker = next((p for p in [out, *out.parents] if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        problems.append(f"--out {out}: {blocker} exists and is not a directory")
    if problems:
        raise ScenarioError(problems)
    if args.metrics:
        spec.metrics = args.metrics
    workers = args.workers or sweeps.default_workers()
    bar = None
    if not args.quiet and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=0, unit="run", desc=spec.name, file=sys.stderr)

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar.total = total
            bar.n = done
            bar.refresh()

    try:
        runs = sweeps.execute(spec, out, workers=workers, dask=args.dask, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    if not args.no_plots:
        sweeps.write_plots(spec, runs, out)
    failed = int((runs["error"].fillna("") != "").sum()) if len(runs) else 0
    points = len(spec.points())
    print(
        f"{spec.name}: {len(runs)} runs ({points} grid point(s) x {spec.replications} "
        f"replication(s)), {failed} failed; results: {out}/"
    )
    for line in _sweep_table(sweeps.summarise(runs, spec), list(spec.grid), spec.metrics):
        print(f"  {line}")
    return 0


def _sweep_table(table, keys: list[str], metrics: list[str]) -> list[str]:
    """Each grid point's chosen metrics as mean [95 % CI]."""
    lines = []
    for row in table.to_dict("records"):
        point = ", ".join(f"{k}={row[k]}" for k in keys) or "base"
        figures = "; ".join(
            f"{m} {row[f'{m}.mean']:.4g} [{row[f'{m}.ci_low']:.4g}, {row[f'{m}.ci_high']:.4g}]"
            for m in metrics
        )
        failed = f" ({row['failed_runs']} failed)" if row["failed_runs"] else ""
        lines.append(f"{point}: {figures}{failed}")
    return lines


def _presets() -> int:
    from sim.ports.linux import kernel_profile
    from sim.presets import PRESETS

    rows = [("preset", "range", "TIME_WAIT", "policy", "scope", "source")]
    for p in PRESETS.values():
        if p.policy == "linux":
            prof = kernel_profile(p.kernel or "6.18")
            (lo, hi), policy = prof.default_range, f"linux {prof.generation}"
        else:
            (lo, hi), policy = p.port_range or (0, 0), p.policy
            if p.udp_policy:
                policy += f" (udp {p.udp_policy})"
        tw = f"{p.time_wait_s:g} s"
        if p.time_wait_local_s is not None or p.time_wait_loopback_s is not None:
            local = p.time_wait_local_s if p.time_wait_local_s is not None else p.time_wait_s
            loop = p.time_wait_loopback_s if p.time_wait_loopback_s is not None else local
            tw += f" ({local:g} local, {loop:g} loopback)"
        rows.append((p.name, f"{lo}-{hi}", tw, policy, p.scope, p.source))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1])
    return 0


def _port(args: argparse.Namespace) -> int:
    from sim.plots import port_timeline_figure, save_figure
    from sim.port_history import describe
    from sim.result import Result

    path = Path(args.results)
    if not (path / "events.csv").is_file():
        raise ScenarioError(
            [f"{args.results}: no events.csv: run the scenario with --events to keep port lives"]
        )
    if not 1 <= args.port <= 65535:
        raise ScenarioError([f"port: must be within 1..65535 (got {args.port})"])
    lives = Result.load(path).port_history(args.port)
    for line in describe(lives, args.port):
        print(line)
    out = Path(args.out) if args.out else path / f"port-{args.port}.png"
    save_figure(port_timeline_figure(lives, args.port), out)
    print(f"wrote {out}")
    return 0


def _capacity(args: argparse.Namespace) -> int:
    import re

    from sim.analytic import capacity
    from sim.units import parse_duration

    problems = []
    match = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", args.range)
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)) <= 65535:
        problems.append(f"--range: expected LOW-HIGH within 1-65535 (got {args.range!r})")
    times = {}
    for flag, value in (("--time-wait", args.time_wait), ("--lifetime", args.lifetime)):
        try:
            times[flag] = parse_duration(value)
        except ValueError as exc:
            problems.append(f"{flag}: {exc} (got {value!r})")
    if not (args.rate >= 0 and math.isfinite(args.rate)):
        problems.append(f"--rate: must be a finite number >= 0 (got {args.rate})")
    if not 0 < args.target_blocking < 1:
        problems.append(f"--target-blocking: must be between 0 and 1 (got {args.target_blocking})")
    if problems:
        raise ScenarioError(problems)
    ports = int(match.group(2)) - int(match.group(1)) + 1
    result = capacity(
        ports, args.rate, times["--lifetime"], times["--time-wait"], args.target_blocking
    )
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
        return 0
    print(f"pool: {ports:,} ports; each held {result.holding_s:g} s (lifetime + TIME_WAIT)")
    print(f"offered load: {result.offered_load:,.1f} erlangs at {args.rate:g} connections/s")
    print(
        f"expected pressure: {100 * result.pressure:.1f} % ({result.mean_in_use:,.0f} ports in use)"
    )
    print(f"refusal probability (Erlang B): {result.blocking:.3g}")
    target = args.target_blocking
    print(f"sustainable rate at {target:g} refusal: {result.max_rate:,.1f} connections/s")
    return 0


def _plot(args: argparse.Namespace) -> int:
    from sim.plots import overlay_figure, pressure_figure, save_figure
    from sim.result import Result

    results, problems = [], []
    for name in args.results:
        path = Path(name)
        if not (path / "summary.json").is_file() or not (path / "series.csv").is_file():
            problems.append(f"{name}: not a result directory (no summary.json and series.csv)")
            continue
        try:
            results.append(Result.load(path))
        except (OSError, ValueError, json.JSONDecodeError) as exc:
            problems.append(f"{name}: cannot read results: {exc}")
    if problems:
        raise ScenarioError(problems)
    if len(results) == 1:
        out = Path(args.out) if args.out else Path(args.results[0]) / "pressure.png"
        save_figure(pressure_figure(results[0]), out)
    else:
        out = Path(args.out) if args.out else Path("comparison.png")
        names = [
            str(r.summary.get("scenario") or n) for r, n in zip(results, args.results, strict=True)
        ]
        if len(set(names)) < len(names):
            names = list(args.results)
        save_figure(overlay_figure(results, names), out)
    print(f"wrote {out}")
    return 0
