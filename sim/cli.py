"""The ``portsim`` command: run, check, sweep, compare, plot and friends.  No model logic here.

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
from typing import TYPE_CHECKING, Any, NoReturn

from sim.atomic import (
    OutputError,
    Terminated,
    describe_os_error,
    forget_signals,
    raise_if_signalled,
    terminate_as_exception,
)
from sim.config.errors import ScenarioError
from sim.config.load import load_scenario
from sim.verdict import key_figures, verdict
from sim.version import VERSION

if TYPE_CHECKING:
    from sim.summary.types import Summary


def _seed_arg(text: str) -> int:
    """--seed: an integer in 0..2^63-1 (what a scenario's seed may be)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0 (got {text!r})") from None
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"must be within 0..2^63-1 (got {text})")
    return value


class _OneLineParser(argparse.ArgumentParser):
    """Usage errors in one line (argparse prints the whole usage block first); the
    subcommands' parsers are made of this class too."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see '{self.prog} --help')\n")


def _parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
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
    run.add_argument(
        "--json", action="store_true", help="print summary.json on stdout, nothing else"
    )

    check = sub.add_parser("check", help="validate a scenario file without running it")
    check.add_argument("scenario")
    check.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    check.add_argument(
        "--json",
        action="store_true",
        help="print ok, the counts and the resolved scenario (or the problems) as JSON",
    )

    sweep = sub.add_parser(
        "sweep", help="run a grid of scenario variants x replications, with 95 %% intervals"
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

    presets = sub.add_parser("presets", help="list operating-system presets")
    presets.add_argument("--json", action="store_true", help="print JSON")
    schema = sub.add_parser("schema", help="print the scenario JSON schema (scenarios/schema.json)")
    schema.add_argument(
        "--summary",
        action="store_true",
        help="print summary.json's schema instead (scenarios/summary.schema.json)",
    )

    port = sub.add_parser("port", help="the lives of one port in a run saved with --events")
    port.add_argument("results", help="a result directory written by 'portsim run --events'")
    port.add_argument("port", type=int, help="local port number")
    port.add_argument("--out", help="timeline PNG (default: port-PORT.png in the directory)")

    cap = sub.add_parser(
        "capacity",
        help="Erlang-B: expected pressure, refusal and the sustainable rate to one destination "
        "(of a host, or with --gateway of a NAT gateway)",
    )
    cap.add_argument("--os", help="a preset (portsim presets): its range and TIME_WAIT")
    cap.add_argument(
        "--range",
        help="port range LOW-HIGH or 'LOW HIGH' as sysctl prints it "
        "(default: the preset's, or Linux's)",
    )
    cap.add_argument("--time-wait", help="hold after close (default: the preset's, or 60s)")
    cap.add_argument("--lifetime", default="1s", help="mean connection lifetime (default 1s)")
    cap.add_argument(
        "--rate",
        type=float,
        required=True,
        help="new connections per second (per VM with --gateway)",
    )
    cap.add_argument(
        "--target-blocking",
        type=float,
        default=0.001,
        help="refusal probability for the sustainable rate (default 0.001)",
    )
    cap.add_argument("--json", action="store_true", help="print JSON")
    from sim.capacity_gateway import add_gateway_options

    add_gateway_options(cap)

    compare = sub.add_parser("compare", help="key figures of saved runs side by side")
    compare.add_argument("results", nargs="+", help="result directories written by 'portsim run'")
    compare.add_argument("--json", action="store_true", help="print JSON")

    from sim.snapshot.command import add_parser as add_inspect

    add_inspect(sub)

    _kernel_parser(sub)

    plot = sub.add_parser("plot", help="re-plot a saved run, or overlay several")
    plot.add_argument("results", nargs="+", help="result directories written by 'portsim run'")
    plot.add_argument(
        "--out",
        help="PNG file (default: pressure.png in the run's directory, "
        "or comparison.png in the current directory for several runs)",
    )
    return parser


def _unknown_command(parser: argparse.ArgumentParser, argv: list[str]) -> str | None:
    """A one-line refusal, with "did you mean", when the first word is not a subcommand."""
    from sim.config.errors import suggest

    subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    commands = list(subparsers[0].choices) if subparsers else []
    word = next((a for a in argv if not a.startswith("-")), None)
    if word is None or word in commands:
        return None
    hint = suggest(word, commands)
    return (
        f"portsim: unknown command {word!r}; {hint + ' ' if hint else ''}"
        f"commands: {', '.join(commands)}"
    )


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
    unknown = _unknown_command(parser, sys.argv[1:] if argv is None else argv)
    if unknown:
        print(unknown, file=sys.stderr)
        return 2
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


def _command(args: argparse.Namespace) -> int:
    """The command's own work; its errors are turned into exit codes by ``_dispatch``."""
    if args.command == "run":
        return _run(args)
    if args.command == "check":
        return _check(args)
    if args.command == "presets":
        return _presets(args)
    if args.command == "compare":
        return _compare(args)
    if args.command == "sweep":
        return _sweep(args)
    if args.command == "capacity":
        return _capacity(args)
    if args.command == "port":
        return _port(args)
    if args.command == "inspect":
        from sim.snapshot.command import run as inspect

        return inspect(args)
    if args.command == "kernel":
        from sim.replay.command import kernel_command

        return kernel_command(
            args.scenario, args.overrides, args.seed, args.out, args.events, args.quiet
        )
    if args.command == "schema":
        if args.summary:
            from sim.summary.schema import summary_schema

            print(json.dumps(summary_schema(), indent=2))
            return 0
        from sim.config.schema import scenario_json_schema

        print(json.dumps(scenario_json_schema(), indent=2))
        return 0
    return _plot(args)


def _dispatch(args: argparse.Namespace) -> int:
    from sim.result_reader import ResultFolderError
    from sim.safe_paths import InputFileError

    try:
        code = _command(args)
        raise_if_signalled()  # a signal whose exception was swallowed (sim.atomic)
        return code
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
    from sim.workload.arrivals import estimated_events

    try:
        sc = load_scenario(args.scenario, args.overrides)
    except ScenarioError as exc:
        if args.json:  # the problems on stdout for scripts; stderr still has the lines
            print(json.dumps({"file": args.scenario, "ok": False, "problems": exc.problems}))
        raise
    if args.json:
        report = {
            "file": args.scenario,
            "ok": True,
            "name": sc.name,
            "hosts": len(sc.hosts),
            "destinations": len(sc.destinations),
            "loads": len(sc.load),
            "estimated_events": estimated_events(sc),
            "scenario": sc.model_dump(mode="json"),
        }
        print(json.dumps(report, indent=2))
        return 0
    print(
        f"{args.scenario}: ok: {sc.name}, {len(sc.hosts)} host(s), {len(sc.destinations)} "
        f"destination(s), {len(sc.load)} load(s), about {estimated_events(sc):.3g} events"
    )
    return 0


class _Progress:
    """A tqdm bar on a terminal, shown only once a run has taken more than ~2 s.

    It counts simulated seconds, so its rate reads "simulated s/s": how much faster than
    real time the model runs, which is what tells a user whether to wait or shorten."""

    FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}, {rate_fmt}"

    def __init__(self, enabled: bool, duration_s: float = 1.0) -> None:
        self.enabled = enabled
        self.duration_s = duration_s
        self.start = time.perf_counter()
        self.bar: Any = None

    def __call__(self, fraction: float) -> None:
        if not self.enabled:
            return
        done = fraction * self.duration_s
        if self.bar is None:
            if time.perf_counter() - self.start < 2.0:
                return
            from tqdm import tqdm

            self.bar = tqdm(
                total=self.duration_s,
                initial=done,  # the rate counts from here, not from the bar's appearance
                unit=" simulated s",
                unit_scale=True,
                bar_format=self.FORMAT,
                desc="simulating",
                leave=False,
                file=sys.stderr,
            )
            return
        self.bar.update(done - self.bar.n)

    def stage(self, text: str) -> None:
        """Name what happens after the simulation (saving, plotting) on a bar already shown."""
        if self.bar is not None:
            self.bar.set_description_str(text)
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _run(args: argparse.Namespace) -> int:
    from sim.atomic import write_text
    from sim.engine import run
    from sim.result import summary_json
    from sim.safe_paths import open_stage

    sc = load_scenario(args.scenario, args.overrides)
    out = Path(args.out) if args.out else Path("results") / sc.name
    _check_resources(sc, args.events)
    # the folder is written aside and swapped in at the end; creating the stage now finds
    # a read-only or full file system, a path under a file or a symlink loop before the run
    stage = open_stage(out)
    try:
        bar = not (args.quiet or args.json) and sys.stderr.isatty()
        progress = _Progress(enabled=bar, duration_s=sc.duration)
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
        progress.stage("writing results")
        try:
            result.write_files(stage.path, plots=not args.no_plots)
        finally:
            progress.close()
        stage.commit()
    finally:
        stage.discard()
    replaced = f"replaced results of an earlier run in {out}/" if stage.replaced else None
    if args.json:
        print(summary_json(result.summary), end="")
        if replaced:
            print(f"portsim: {replaced}", file=sys.stderr)
        return 0
    print(verdict(result.summary))
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
    from sim.workload.arrivals import estimated_connections

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
    from sim.config.errors import suggest

    spec = sweeps.load_sweep(args.sweep, args.grid, args.replications, args.seed, args.overrides)
    from sim.safe_paths import check_writable_dir

    problems = []
    if args.workers is not None and args.workers < 1:
        problems.append(f"--workers: must be >= 1 (got {args.workers})")
    for metric in args.metrics or []:
        if metric not in sweeps.METRICS:
            hint = suggest(metric, sweeps.METRICS)
            problems.append(
                f"--metric {metric}: unknown; {hint + ' ' if hint else ''}"
                f"one of: {', '.join(sweeps.METRICS)}"
            )
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
        forget_signals()  # reported here, not again by _dispatch
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
    for line in _sweep_table(
        sweeps.summarise_by_grid_point(runs, spec), list(spec.grid), spec.metrics
    ):
        print(f"  {line}")
    return 0


def _sweep_table(table, keys: list[str], metrics: list[str]) -> list[str]:
    """Each grid point's chosen metrics as mean [95 % CI]."""
    lines = []
    for row in table.to_dict("records"):
        point = ", ".join(f"{k}={row[k]}" for k in keys) or "base"
        figures = "; ".join(_sweep_figure(row, m) for m in metrics)
        failed = f" ({row['failed_runs']} failed)" if row["failed_runs"] else ""
        lines.append(f"{point}: {figures}{failed}")
    return lines


def _sweep_figure(row: dict, metric: str) -> str:
    """mean [95 % CI]; for first_failure_s, the runs that never failed said in words."""
    from sim.sweeps.metrics import unit_of

    factor, unit = unit_of(metric)
    mean, low, high = (factor * row[f"{metric}.{k}"] for k in ("mean", "ci_low", "ci_high"))
    if mean != mean:  # NaN: no run has the figure (requests without keep-alive, ...)
        text = f"{metric}: none"
    else:
        text = f"{metric} {mean:.4g}{' ' + unit if unit else ''} [{low:.4g}, {high:.4g}]"
    clean = row.get("first_failure_s.no_failure", 0)
    if metric == "first_failure_s" and clean:
        ran = row["runs"] - row["failed_runs"]
        never = "no failure" if clean == ran else f"no failure in {clean} of {ran} runs"
        text = f"{metric}: {never}" if clean == ran else f"{text} ({never})"
    return text


def _presets(args: argparse.Namespace) -> int:
    from sim.preset_table import preset_table
    from sim.presets import PRESETS

    table = preset_table()
    if args.json:
        print(json.dumps(table, indent=2))
        return 0
    rows = [("preset", "range", "TIME_WAIT", "policy", "scope", "source")]
    p: dict[str, Any]
    for p in table:
        policy = p["policy"] + (f" {p['generation']}" if p["generation"] else "")
        if p["udp_policy"] not in (p["policy"], "linux"):
            policy += f" (udp {p['udp_policy']})"
        tw = f"{p['time_wait_s']:g} s"
        if (
            p["time_wait_local_s"] != p["time_wait_s"]
            or p["time_wait_loopback_s"] != p["time_wait_s"]
        ):
            tw += f" ({p['time_wait_local_s']:g} local, {p['time_wait_loopback_s']:g} loopback)"
        if p["nolocaltimewait"]:
            tw += " (0 to its own addresses)"
        scope = p["scope"] if p["udp_scope"] == "port" else f"{p['scope']}, udp too"
        lo, hi = p["port_range"]
        rows.append((p["name"], f"{lo}-{hi}", tw, policy, scope, p["source"]))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1])
    print("\ninferred (no source settles it; the host key in brackets overrides it):")
    groups: dict[tuple[str, ...], list[str]] = {}  # presets sharing one list (Linux, RFC)
    for preset in PRESETS.values():
        if preset.inferred:
            groups.setdefault(preset.inferred, []).append(preset.name)
    for inferred, names in groups.items():
        label = names[0] if len(names) == 1 else f"{PRESETS[names[0]].family} (all)"
        for item in inferred:
            print(f"  {label}: {item}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from sim.compare import NotAResult, figures, read_summary, table

    summaries, problems = [], []
    for name in args.results:
        try:
            summaries.append(read_summary(name))
        except NotAResult as exc:
            problems.append(f"{name}: {exc}")
    if problems:
        raise ScenarioError(problems)
    rows = [figures(s) for s in summaries]
    if args.json:
        runs = [{"results": name, **row} for name, row in zip(args.results, rows, strict=True)]
        print(json.dumps({"runs": runs}, indent=2))
        return 0
    for line in table(list(args.results), rows):
        print(line)
    return 0


def _port(args: argparse.Namespace) -> int:
    from sim.plots import port_timeline_figure
    from sim.port_history import describe
    from sim.result import Result

    path = Path(args.results)
    if not 1 <= args.port <= 65535:
        raise ScenarioError([f"port: must be within 1..65535 (got {args.port})"])
    if path.is_dir() and not (path / "events.csv").exists():
        raise ScenarioError(
            [f"{args.results}: no events.csv: run the scenario with --events to keep port lives"]
        )
    out = Path(args.out) if args.out else path / f"port-{args.port}.png"
    _check_figure_target(out)
    result = Result.load(path)
    lives = _from_results(lambda: result.port_history(args.port), path)
    if lives.empty:  # an answer, not an error (exit 0); an empty timeline would say nothing
        hint = _from_results(lambda: _outside_ranges(result.summary, args.port), path)
        print(_printable(f"port {args.port}: never used in this run{hint}; no timeline written"))
        return 0
    for line in describe(lives, args.port):
        print(_printable(line))
    _save(lambda: port_timeline_figure(lives, args.port), out, path)
    print(f"wrote {out}")
    return 0


def _outside_ranges(summary: Summary, port: int) -> str:
    """``" (outside every host's range: 32768-60999)"``, or nothing."""
    ranges = [tuple(h["port_range"]) for h in summary.get("hosts", []) if h.get("port_range")]
    if not ranges or any(lo <= port <= hi for lo, hi in ranges):
        return ""
    shown = ", ".join(f"{lo}-{hi}" for lo, hi in dict.fromkeys(ranges))
    return f" (outside every host's range: {shown})"


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
    from sim.atomic import write_bytes
    from sim.plots import render_png

    png = _from_results(lambda: render_png(make_figure()), where)
    write_bytes(out, png)


def _capacity(args: argparse.Namespace) -> int:
    from sim.analytic import capacity
    from sim.capacity_gateway import gateway_problems
    from sim.capacity_os import capacity_defaults
    from sim.units import parse_duration, parse_port_range

    if args.gateway is not None:
        return _gateway_capacity(args)
    problems: list[str] = gateway_problems(args)
    os_note = capacity_defaults(args, problems)  # --range and --time-wait from --os
    port_range = None
    try:
        port_range = parse_port_range(args.range)
    except ValueError as exc:
        said = str(exc)
        problems.append(f"--range: {said}" + ("" if "(got " in said else f" (got {args.range!r})"))
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
    assert port_range is not None
    ports = port_range[1] - port_range[0] + 1
    result = capacity(
        ports, args.rate, times["--lifetime"], times["--time-wait"], args.target_blocking
    )
    if args.json:
        from sim.result import strict_json

        print(strict_json(result.as_dict()), end="")
        return 0
    if os_note:
        print(os_note)
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


def _gateway_capacity(args: argparse.Namespace) -> int:
    from sim.capacity_gateway import report, size_from_args

    sizing, problems = size_from_args(args)
    if sizing is None:
        raise ScenarioError(problems)
    if args.json:
        from sim.result import strict_json

        print(strict_json(sizing.as_dict()), end="")
        return 0
    print("\n".join(report(sizing)))
    return 0


def _plot(args: argparse.Namespace) -> int:
    from sim.plots import overlay_figure, pressure_figure
    from sim.result import Result
    from sim.result_reader import ResultFolderError

    results, problems = [], []
    for name in args.results:
        try:
            results.append(Result.load(Path(name), events=False))
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
