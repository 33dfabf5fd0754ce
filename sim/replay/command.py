"""`portsim kernel SCENARIO`: the scenario on the running kernel, beside the model.

Refusals (not Linux, not root, a scenario a namespace cannot reproduce) are usage errors:
one line, exit 2, nothing written.
"""

from __future__ import annotations

import sys
from pathlib import Path

from sim.atomic import StagedFolder
from sim.config.errors import ScenarioError
from sim.config.load import load_scenario
from sim.config.types import Scenario
from sim.plots import save_figure
from sim.replay.lab import config_hz, jiffies_offset, kernel_available, kernel_version


def kernel_command(
    path: str,
    overrides: list[str],
    seed: int | None,
    out: str | None,
    events: bool,
    quiet: bool = False,
) -> int:
    """Replay, run the model with the kernel's clock, write both, print the comparison."""
    if sys.platform != "linux":
        raise ScenarioError([f"portsim kernel: needs Linux (this is {sys.platform})"])
    sc = load_scenario(path, overrides)
    ok, why = kernel_available()
    if not ok:
        raise ScenarioError([f"portsim kernel: {why}"])
    from sim.replay.plan import refusals
    from sim.safe_paths import open_stage

    problems = refusals(sc, path)
    if problems:
        raise ScenarioError(problems)
    seed = sc.seed if seed is None else seed
    out_dir = Path(out) if out else Path("results") / f"{sc.name}-kernel"
    # written aside and swapped in whole at the end, as `portsim run` does; opening the
    # stage now finds an unwritable --out before the namespaces are built
    stage = open_stage(out_dir)
    try:
        return _replay_into(stage, out_dir, sc, path, overrides, seed, events, quiet)
    finally:
        stage.discard()


def _replay_into(
    stage: StagedFolder,
    out_dir: Path,
    sc: Scenario,
    path: str,
    overrides: list[str],
    seed: int,
    events: bool,
    quiet: bool,
) -> int:
    from sim.atomic import write_text
    from sim.engine import run
    from sim.replay import compare, report
    from sim.replay.plan import build
    from sim.replay.runner import SAMPLE_HZ, replay
    from sim.result import summary_json
    from sim.version import VERSION

    plans = build(sc, seed)
    hz, hz_source = config_hz()
    offset = jiffies_offset(hz) if hz else None
    release = kernel_version()
    if not quiet:
        n = sum(len(p.attempts) for p in plans)
        print(
            f"replaying {n:,} attempts over {sc.duration:g} s on Linux {release} "
            f"(HZ {hz or 'unknown'}) in network namespaces...",
            file=sys.stderr,
        )
    t0, runs = replay(plans, sc.duration)
    if hz is None:
        hz, hz_source = report.measured_hz(runs), "measured from TIME_WAIT batch spacing"
    j0 = offset + t0 * hz if offset is not None and hz else None
    # the model with the kernel's version and jiffies clock (same seed: same attempts)
    extra = []
    for i in range(len(sc.hosts)):
        extra.append(f'hosts[{i}].kernel="{release}"')
        if hz:
            extra.append(f"hosts[{i}].hz={hz}")
        if j0 is not None:
            extra.append(f"hosts[{i}].jiffies_at_start={j0!r}")
    model_sc = load_scenario(path, [*overrides, *extra])
    result = run(model_sc, seed=seed, events=True)
    window_s = result.summary["steady_state"]["window_s"]
    window = (window_s[0], window_s[1]) if window_s else None
    sizes = {h["name"]: h["range_ports"] for h in result.summary["hosts"]}
    frame = report.series(runs, sc.duration, sc.bin_width, sizes)
    base = {
        "scenario": sc.name,
        "seed": seed,
        "version": f"portsim {VERSION}",
        "error": None,
        "duration_s": sc.duration,
        "bin_s": sc.bin_width,
    }
    kernel_info = {
        "release": release,
        "hz": hz,
        "hz_source": hz_source or None,
        "jiffies_at_start": j0,
        "sample_hz": SAMPLE_HZ,
    }
    summary = report.summary(runs, frame, base, window, kernel_info)
    model_side = compare.model_side(result, window)
    summary["comparison"] = {
        "model": compare.figures(model_side),
        "kernel": compare.figures(summary),
    }
    folder = stage.path
    (folder / "model").mkdir()
    result.write_files(folder / "model", plots=False)
    write_text(folder / "summary.json", summary_json(summary))
    write_text(folder / "series.csv", frame.to_csv(index=False, float_format="%.6g"))
    write_text(folder / "scenario.json", (folder / "model" / "scenario.json").read_text())
    if events:
        ev = report.events(runs)
        write_text(folder / "events.csv", ev.to_csv(index=False, float_format="%.6f"))
    lives = (
        compare.model_time_wait_lifetimes(result.events),
        report.time_wait_lifetimes(runs)[0],
    )
    fig = compare.comparison_figure(
        result.series, frame, f"{sc.name}: model vs Linux {release} (HZ {hz})", lives
    )
    save_figure(fig, folder / "comparison.png")
    stage.commit()
    lag = summary["kernel"]["arrival_lag_s"]
    print(f"{sc.name}: model vs Linux {release}, HZ {hz} ({hz_source or 'unknown'})")
    for line in compare.table(model_side, summary):
        print(f"  {line}")
    if lag["median"] is not None:
        print(
            f"  arrival lag: median {1000 * lag['median']:.2f} ms, p99 {1000 * lag['p99']:.2f} ms,"
            f" max {1000 * lag['max']:.1f} ms"
        )
    early = summary["time_wait"]["ended_early"]
    if early:
        print(f"  {early} TIME_WAIT(s) ended before 59 s in the kernel (an RST, tcp_rfc1337 = 0)")
    print(f"  results: {out_dir}/")
    if stage.replaced:
        print(f"  (replaced results of an earlier run in {out_dir}/)")
    return 0
