"""The ``portsim`` command: run, check, presets, plot.  No model logic lives here.

Exit codes: 0 the command completed (failed connections are results), 2 bad scenario,
usage, input file or output path (one line per problem, no traceback, nothing written),
1 internal error or a write that failed midway (a full disk: one line, nothing half
written), 130 interrupted (Ctrl-C), 143 terminated (SIGTERM).
"""

from __future__ import annotations

import argparse
import errno
import json
import math
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from sim.atomic import OutputError, Terminated, describe_os_error, terminate_as_exception
from sim.scenario import ScenarioError, load_scenario
from sim.verdict import key_figures, verdict
from sim.version import VERSION


def _seed_arg(text: str) -> int:
    """--seed: an integer in 0..2^63-1 (what a scenario's seed may be)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0 (got {text!r})") from None
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"must be within 0..2^63-1 (got {text})")
    return value


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
    run.add_argument("--seed", type=_seed_arg, help="random seed (overrides the scenario's)")
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
    sweep.add_argument("--seed", type=_seed_arg, help="root seed of the replications (default 1)")
    sweep.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    sweep.add_argument(
        "--workers",
        type=int,
        help="local worker processes (default: the number of cores; at most one per run)",
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

    plot = sub.add_parser("plot", help="re-plot a saved run, or overlay several")
    plot.add_argument("results", nargs="+", help="result directories written by 'portsim run'")
    plot.add_argument(
        "--out",
        help="PNG file (default: pressure.png in the run's directory, "
        "or comparison.png in the current directory for several runs)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed its usage line
        return int(exc.code or 0)
    with terminate_as_exception():
        code = _dispatch(args)
    return _flush_stdout(code)


def _flush_stdout(code: int) -> int:
    """Standard output that cannot be written (``> /dev/full``) is one line, not a
    traceback at exit."""
    try:
        sys.stdout.flush()
    except OSError as exc:
        _stdout_to_devnull()
        print(
            f"portsim: cannot write to standard output: {describe_os_error(exc)}", file=sys.stderr
        )
        return code or 1
    return code


def _stdout_to_devnull() -> None:
    import contextlib
    import os

    with contextlib.suppress(OSError, ValueError):  # no real descriptor: captured output
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _dispatch(args: argparse.Namespace) -> int:
    from sim.result_reader import ResultFolderError
    from sim.safe_paths import InputFileError

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
        if args.command == "schema":
            from sim.scenario import scenario_json_schema

            print(json.dumps(scenario_json_schema(), indent=2))
            return 0
        return _plot(args)
    except ScenarioError as exc:
        for line in exc.problems:
            print(_printable(line), file=sys.stderr)
        return 2
    except (OutputError, ResultFolderError, InputFileError) as exc:
        print(_printable(f"portsim: {exc}"), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("portsim: interrupted; nothing half written", file=sys.stderr)
        return 130
    except Terminated:
        print("portsim: terminated; nothing half written", file=sys.stderr)
        return 143
    except BrokenPipeError:  # output piped into head & co: not an error of ours
        _stdout_to_devnull()
        return 0
    except OSError as exc:  # a write failed midway: a full disk, a file system gone read-only
        if exc.filename is None and exc.errno in _STDOUT_ERRORS:  # files are named (sim.atomic)
            _stdout_to_devnull()
            print(
                f"portsim: cannot write to standard output: {describe_os_error(exc)}",
                file=sys.stderr,
            )
            return 1
        where = f" {exc.filename}" if exc.filename else ""
        print(
            _printable(
                f"portsim: cannot write{where}: {describe_os_error(exc)}; nothing half written"
            ),
            file=sys.stderr,
        )
        return 1


_STDOUT_ERRORS = {errno.ENOSPC, errno.EIO, errno.EBADF, errno.EFBIG, errno.EDQUOT}


def _printable(text: str) -> str:
    """Control characters (ESC, BEL, ...) shown escaped, so that no text from a file can
    drive the terminal or forge output lines."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


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
    from sim.safe_paths import open_stage

    sc = load_scenario(args.scenario, args.overrides)
    out = Path(args.out) if args.out else Path("results") / sc.name
    _check_resources(sc, args.events)
    # the folder is written aside and swapped in at the end; creating the stage now finds
    # a read-only or full file system, a path under a file or a symlink loop before the run
    stage = open_stage(out)
    try:
        progress = _Progress(enabled=not args.quiet and sys.stderr.isatty())
        seed = sc.seed if args.seed is None else args.seed
        try:
            result = run(sc, seed=seed, events=args.events, progress=progress)
        except Exception as exc:  # a model bug: record it whole, say so, exit 1
            progress.close()
            failure = {
                "scenario": sc.name,
                "seed": seed,
                "version": f"portsim {VERSION}",
                "error": f"{type(exc).__name__}: {exc}",
                "duration_s": sc.duration,
                "traceback": traceback.format_exc(),
            }
            write_text(stage.path / "summary.json", summary_json(failure))
            stage.commit()
            print(
                f"portsim: internal error: {type(exc).__name__}: {exc} "
                f"(details in {out}/summary.json)",
                file=sys.stderr,
            )
            return 1
        progress.close()
        result.write_files(stage.path, plots=not args.no_plots)
        stage.commit()
    finally:
        stage.discard()
    print(verdict(result.summary))
    replaced = f"replaced results of an earlier run in {out}/" if stage.replaced else None
    if not args.quiet:
        for line in key_figures(result.summary):
            print(f"  {line}")
        print(f"  results: {out}/")
        if replaced:
            print(f"  ({replaced})")
    elif replaced:
        print(f"portsim: {replaced}", file=sys.stderr)
    return 0


EVENT_BYTES = 700  # memory per connection with --events: ~640 B measured, rounded up
MEMORY_SHARE = 0.5  # of the machine's memory a run may plan to use


def _check_resources(sc: Any, events: bool) -> None:
    """Refuse, before simulating, a run whose event log would not fit in memory."""
    from sim.scenario import estimated_connections

    if not events:
        return
    connections = estimated_connections(sc)
    need = connections * EVENT_BYTES
    budget = _memory_bytes() * MEMORY_SHARE
    if need > budget:
        raise ScenarioError(
            [
                f"--events: the event log would need about {need / 2**30:,.1f} GiB "
                f"(~{connections:.3g} connections x {EVENT_BYTES} B), over half of this "
                f"machine's memory ({budget / 2**30:,.1f} GiB); run without --events, or "
                "shorten duration"
            ]
        )


def _memory_bytes() -> float:
    import os

    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 8.0 * 2**30


def _sweep(args: argparse.Namespace) -> int:
    from sim import sweeps

    spec = sweeps.load_sweep(args.sweep, args.grid, args.replications, args.seed, args.overrides)
    from sim.safe_paths import check_writable_dir

    problems = []
    if args.workers is not None and args.workers < 1:
        problems.append(f"--workers: must be >= 1 (got {args.workers})")
    for metric in args.metrics or []:
        if metric not in sweeps.METRICS:
            problems.append(f"--metric {metric}: unknown; one of: {', '.join(sweeps.METRICS)}")
    if problems:
        raise ScenarioError(problems)
    out = check_writable_dir(Path(args.out) if args.out else Path("results") / spec.name)
    sweeps.check_runs_file(out)
    if args.metrics:
        spec.metrics = args.metrics
    total = len(spec.points()) * spec.replications
    cores = sweeps.default_workers()
    workers = min(args.workers or cores, total)
    if args.workers is not None and args.workers > total:
        print(f"portsim: --workers {args.workers}: {total} run(s), so {workers} worker(s)")
    if workers > cores:
        print(f"portsim: {workers} workers on {cores} core(s): they share the cores")
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
        runs = sweeps.execute(
            spec, out, workers=workers, dask=args.dask, progress=progress, notice=print
        )
    except (KeyboardInterrupt, Terminated) as stop:
        if bar is not None:
            bar.close()
        kept = sweeps.finished_count(out)
        how = "interrupted" if isinstance(stop, KeyboardInterrupt) else "terminated"
        print(
            f"portsim: {how}; {kept} finished run(s) kept in {out}/runs.csv; "
            "run the same command again to resume",
            file=sys.stderr,
        )
        return 130 if isinstance(stop, KeyboardInterrupt) else 143
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
    from sim.plots import port_timeline_figure
    from sim.port_history import describe
    from sim.result_reader import read_result

    path = Path(args.results)
    if not 1 <= args.port <= 65535:
        raise ScenarioError([f"port: must be within 1..65535 (got {args.port})"])
    if path.is_dir() and not (path / "events.csv").exists():
        raise ScenarioError(
            [f"{args.results}: no events.csv: run the scenario with --events to keep port lives"]
        )
    out = Path(args.out) if args.out else path / f"port-{args.port}.png"
    _check_figure_target(out)
    result = read_result(path)
    lives = _from_results(lambda: result.port_history(args.port), path)
    for line in describe(lives, args.port):
        print(_printable(line))
    _save(lambda: port_timeline_figure(lives, args.port), out, path)
    print(f"wrote {out}")
    return 0


def _check_figure_target(out: Path) -> None:
    """A PNG may go to a new or regular file in an existing folder, nowhere else."""
    from sim.atomic import check_target

    check_target(out)
    if not out.parent.is_dir():
        raise OutputError(f"--out {out}: the folder {out.parent} does not exist")


def _from_results(make: Any, where: Path) -> Any:
    """Work on a loaded result folder; what its contents break is one line, not a traceback."""
    from sim.result_reader import ResultFolderError

    try:
        return make()
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise ResultFolderError(
            f"{where}: the files do not fit together ({type(exc).__name__}); "
            "not a result folder of this version"
        ) from None


def _save(make_figure: Any, out: Path, where: Path) -> None:
    """Build and render the figure (what the folder's data breaks is one line), then write."""
    from sim.plots import render_png
    from sim.result import write_bytes

    png = _from_results(lambda: render_png(make_figure()), where)
    write_bytes(out, png)


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
        from sim.result import strict_json

        print(strict_json(result.as_dict()), end="")
        return 0
    print(f"pool: {ports:,} ports; each held {result.holding_s:g} s (lifetime + TIME_WAIT)")
    offered = (
        f"{result.offered_load:,.1f}"
        if result.offered_load < 1e15
        else f"{result.offered_load:.3g}"
    )
    print(f"offered load: {offered} erlangs at {args.rate:g} connections/s")
    print(
        f"expected pressure: {100 * result.pressure:.1f} % ({result.mean_in_use:,.0f} ports in use)"
    )
    print(f"refusal probability (Erlang B): {result.blocking:.3g}")
    if result.offered_load > ports:
        print(
            f"  the offered load is more than the pool's {ports:,} ports: no more than {ports:,} "
            "can be in use, so pressure stays at most 100 % and the excess is refused"
        )
    target = args.target_blocking
    print(f"sustainable rate at {target:g} refusal: {result.max_rate:,.1f} connections/s")
    return 0


def _plot(args: argparse.Namespace) -> int:
    from sim.plots import overlay_figure, pressure_figure
    from sim.result_reader import ResultFolderError, read_result

    results, problems = [], []
    for name in args.results:
        try:
            results.append(read_result(Path(name), events=False))
        except ResultFolderError as exc:
            problems.append(str(exc))
    if problems:
        raise ScenarioError(problems)
    if len(results) == 1:
        out = Path(args.out) if args.out else Path(args.results[0]) / "pressure.png"
        _check_figure_target(out)
        _save(lambda: pressure_figure(results[0]), out, Path(args.results[0]))
    else:
        out = Path(args.out) if args.out else Path("comparison.png")
        _check_figure_target(out)
        names = [
            str(r.summary.get("scenario") or n) for r, n in zip(results, args.results, strict=True)
        ]
        if len(set(names)) < len(names):
            names = list(args.results)
        _save(lambda: overlay_figure(results, names), out, Path(args.results[0]))
    print(f"wrote {out}")
    return 0
