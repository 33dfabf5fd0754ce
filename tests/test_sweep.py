"""Sweeps: grid x replications, identical on every backend, resumable, failures recorded."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sim
import sim.engine
from sim import sweeps
from sim.cli import main
from sim.sweeps import run as sweep_run

ROOT = Path(__file__).resolve().parent.parent

BASE = """
name = "small"
duration = "40s"
[[hosts]]
name = "client"
port_range = [40000, 40999]
time_wait = "10s"
[[destinations]]
name = "api"
address = "10.0.0.10:443"
[[load]]
destination = "api"
arrival = { kind = "poisson", rate = 80 }
lifetime = { kind = "exponential", mean = "1s" }
"""


@pytest.fixture
def base(tmp_path: Path) -> Path:
    path = tmp_path / "base.toml"
    path.write_text(BASE)
    return path


def numbers(runs: pd.DataFrame) -> pd.DataFrame:
    """Everything but the wall-clock time."""
    return runs.drop(columns=["wall_s"]).reset_index(drop=True)


GRID = {"load[0].arrival.rate": [60, 100, 140]}


def test_serial_two_workers_and_dask_local_cluster_agree(base: Path) -> None:
    """The same sweep on every backend: identical rows in the same (grid) order."""
    serial = sweeps.sweep(base, GRID, replications=2, workers=1)
    pooled = sweeps.sweep(base, GRID, replications=2, workers=2)
    pytest.importorskip("dask.distributed")
    dask = sweeps.sweep(base, GRID, replications=2, workers=2, dask="local")
    assert len(serial) == 6 and (serial["error"] == "").all()
    pd.testing.assert_frame_equal(numbers(serial), numbers(pooled))
    pd.testing.assert_frame_equal(numbers(serial), numbers(dask))
    # refusals rise with the rate (1,000 ports held ~11 s each: 90/s is the capacity)
    blocking = serial.groupby("load[0].arrival.rate")["steady_state.blocking"].mean()
    assert blocking[60] < blocking[100] < blocking[140]


def test_replications_share_seeds_across_grid_points_and_reproduce_alone(base: Path) -> None:
    """Replication r of every grid point runs with the r-th spawn child's seed (common
    random numbers), and `portsim run --seed` on that point reproduces the run."""
    runs = sweeps.sweep(base, GRID, replications=3, seed=7)
    children = np.random.SeedSequence(7).spawn(3)
    expected = [
        int.from_bytes(c.generate_state(2, np.uint32).tobytes(), "little") & (2**63 - 1)
        for c in children
    ]
    for _, group in runs.groupby("point"):
        assert group["seed"].tolist() == expected
    assert len(set(expected)) == 3
    row = runs.iloc[4]  # point 1 (rate 100), replication 1
    alone = sim.run(
        sim.load_scenario(base, ["load[0].arrival.rate=100"]), seed=int(row["seed"])
    ).summary
    assert alone["connections"]["attempted"] == row["connections.attempted"]
    assert alone["steady_state"]["blocking"] == row["steady_state.blocking"]


def test_every_grid_point_is_validated_before_any_run(base: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(sim.ScenarioError) as err:
        sweeps.sweep(base, {"load[0].arrival.rate": [50, -1, "x"]}, out=out)
    text = "\n".join(err.value.problems)
    assert "grid point 1 (load[0].arrival.rate=-1)" in text
    assert "grid point 2" in text and "load[0].arrival.rate" in text
    assert "grid point 0" not in text
    assert not out.exists()


def test_resume_redoes_nothing_finished(base: Path, tmp_path: Path, monkeypatch) -> None:
    """Interrupt a serial sweep after 4 of 6 runs: runs.csv keeps the 4; the next
    invocation runs only the 2 others and the table equals an uninterrupted sweep's."""
    out = tmp_path / "out"
    calls: list[str] = []
    real = sweeps.run_one

    def counting(task):
        calls.append(task["key"])
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real(task)

    monkeypatch.setattr(sweep_run, "run_one", counting)
    with pytest.raises(KeyboardInterrupt):
        sweeps.sweep(base, GRID, replications=2, out=out)
    assert len(pd.read_csv(out / "runs.csv")) == 4
    first = list(calls[:4])
    calls.clear()
    resumed = sweeps.sweep(base, GRID, replications=2, out=out)
    assert len(calls) == 2 and not set(calls) & set(first)
    monkeypatch.setattr(sweep_run, "run_one", real)
    fresh = sweeps.sweep(base, GRID, replications=2)
    pd.testing.assert_frame_equal(numbers(resumed), numbers(fresh))
    again = sweeps.sweep(base, GRID, replications=2, out=out)
    assert len(again) == 6 and len(calls) == 2  # nothing left to run


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failing_grid_point_is_recorded_and_the_others_complete(
    base: Path, tmp_path: Path, monkeypatch, workers: int
) -> None:
    """A run that raises (here: the engine, for rate 100) is a row with its error; the
    other points run; summary.csv counts the failed runs.  Forked workers inherit the
    patch."""
    real = sim.engine.run

    def fragile(scenario, *args, **kwargs):
        if scenario.load[0].arrival.rate == 100:
            raise RuntimeError("boom at rate 100")
        return real(scenario, *args, **kwargs)

    monkeypatch.setattr(sim.engine, "run", fragile)
    out = tmp_path / "out"
    runs = sweeps.sweep(base, GRID, replications=2, out=out, workers=workers)
    failed = runs[runs["error"] != ""]
    assert failed["load[0].arrival.rate"].tolist() == [100, 100]
    assert failed["error"].str.contains("RuntimeError: boom at rate 100").all()
    assert runs.loc[runs["error"] == "", "connections.attempted"].gt(0).all()
    summary = pd.read_csv(out / "summary.csv")
    assert summary["failed_runs"].tolist() == [0, 2, 0]
    assert summary["steady_state.blocking.mean"].isna().tolist() == [False, True, False]
    # on resume, failed runs are tried again (and succeed once the cause is gone)
    monkeypatch.setattr(sim.engine, "run", real)
    rerun = sweeps.sweep(base, GRID, replications=2, out=out, workers=workers)
    assert (rerun["error"] == "").all()


def test_confidence_intervals_use_student_t() -> None:
    """Values 1, 2, 3, 4: mean 2.5, sd 1.291, t(3) = 3.18245, half width 2.054.  Quantiles
    from standard tables (to their printed precision): t(1) = 12.706, t(30) = 2.042,
    t(60) = 2.000, t(120) = 1.980."""
    spec = sweeps.Sweep("t", {}, Path("."), {"x": [1]}, replications=4)
    runs = pd.DataFrame({"point": 0, "x": 1, "pressure.peak": [1.0, 2.0, 3.0, 4.0], "error": ""})
    row = sweeps.summarise_by_grid_point(runs, spec).iloc[0]
    assert row["pressure.peak.mean"] == pytest.approx(2.5)
    half = 3.18245 * np.std([1, 2, 3, 4], ddof=1) / 2
    assert row["pressure.peak.ci_low"] == pytest.approx(2.5 - half, abs=1e-5)
    assert row["pressure.peak.ci_high"] == pytest.approx(2.5 + half, abs=1e-5)
    assert sweeps.t975(1) == pytest.approx(12.706, abs=5e-4)
    assert sweeps.t975(30) == pytest.approx(2.042, abs=5e-4)
    assert sweeps.t975(60) == pytest.approx(2.000, abs=1e-3)  # tables: 2.000
    assert sweeps.t975(120) == pytest.approx(1.980, abs=1e-3)  # tables: 1.980


def test_cli_sweep_file_with_grid_set_and_plots(base: Path, tmp_path: Path, capsys) -> None:
    sweep_file = tmp_path / "study.toml"
    sweep_file.write_text(
        'name = "study"\nbase = "base.toml"\nreplications = 2\nseed = 3\n'
        'metrics = ["steady_state.blocking", "pressure.peak"]\n'
        '[set]\nduration = "30s"\n'
        '[grid]\n"load[0].arrival.rate" = [60, 120]\n'
    )
    out = tmp_path / "out"
    grid = ["--grid", "hosts[0].time_wait=5,10"]
    code = main(["sweep", str(sweep_file), *grid, "--out", str(out), "--workers", "2", "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("study: 8 runs (4 grid point(s) x 2 replication(s)), 0 failed")
    assert "load[0].arrival.rate=60, hosts[0].time_wait=5: steady_state.blocking" in printed[1]
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 8 and set(runs["hosts[0].time_wait"]) == {5, 10}
    summary = pd.read_csv(out / "summary.csv")
    assert len(summary) == 4
    # a longer TIME_WAIT holds ports longer: more refusals at 120/s
    high = summary[summary["load[0].arrival.rate"] == 120].set_index("hosts[0].time_wait")
    assert high.loc[5, "steady_state.blocking.mean"] < high.loc[10, "steady_state.blocking.mean"]
    for name in ("sweep-steady_state-blocking.png", "sweep-pressure-peak.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    meta = json.loads((out / "sweep.json").read_text())
    assert meta["replications"] == 2 and meta["seed"] == 3
    assert json.loads(json.dumps(meta["grid"]))["load[0].arrival.rate"] == [60, 120]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--grid", "load[0].arrival.rate=10,-5"], "grid point 1 (load[0].arrival.rate=-5)"),
        (["--grid", "nonsense"], "--grid nonsense: expected KEY=V1,V2,..."),
        (["--grid", "load[3].rate=1"], "no list entry [3]"),
        (["--replications", "0"], "replications: must be an integer in 1..10000"),
        (["--metric", "pressure.nope"], "--metric pressure.nope: unknown"),
        (["--workers", "0"], "--workers: must be >= 1"),
    ],
)
def test_cli_sweep_bad_input_exits_2_and_writes_nothing(
    base: Path, tmp_path: Path, capsys, args: list[str], fragment: str
) -> None:
    out = tmp_path / "out"
    code = main(["sweep", str(base), "--out", str(out), "--quiet", *args])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert fragment in captured.err and "Traceback" not in captured.err
    assert not out.exists()


def test_sweep_file_unknown_key_and_missing_base(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('base = "nowhere.toml"\nreplication = 3\n')
    assert main(["sweep", str(bad), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"{bad}: replication: not a sweep key" in err or "nowhere.toml: cannot read" in err


def test_a_scenario_object_can_be_swept_from_python(base: Path) -> None:
    scenario = sim.load_scenario(base)
    runs = sim.sweep(scenario, {"hosts[0].time_wait": [5, 20]}, replications=2)
    assert runs["hosts[0].time_wait"].tolist() == [5, 5, 20, 20]
    assert (runs["error"] == "").all()


SWEEP_FILES = sorted((ROOT / "scenarios" / "sweeps").glob("*.toml"))


@pytest.mark.parametrize("path", SWEEP_FILES, ids=lambda p: p.name)
def test_every_sweep_file_runs_at_a_short_horizon(path: Path, tmp_path: Path, capsys) -> None:
    """Each shipped sweep, 2 replications of 10 s per grid point."""
    out = tmp_path / "out"
    args = ["sweep", str(path), "--replications", "2", "--set", "duration=10"]
    assert main([*args, "--out", str(out), "--workers", "2", "--quiet"]) == 0
    runs = pd.read_csv(out / "runs.csv", keep_default_na=False)
    spec = sweeps.load_sweep(path)
    assert len(runs) == 2 * len(spec.points()) and (runs["error"] == "").all()
    for metric in spec.metrics:
        name = f"sweep-{metric.replace('.', '-')}.png"
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_there_are_sweep_files() -> None:
    assert SWEEP_FILES


def test_summarise_knows_the_runs_grid_and_refuses_a_mismatched_one(base: Path) -> None:
    grid = {"load[0].arrival.rate": [60, 140], "hosts[0].time_wait": [5, 10]}
    runs = sim.sweep(base, grid, replications=2)
    table = sweeps.summarise_by_grid_point(runs)
    assert table[["load[0].arrival.rate", "hosts[0].time_wait"]].values.tolist() == [
        [60, 5],
        [60, 10],
        [140, 5],
        [140, 10],
    ]
    first = runs[(runs["load[0].arrival.rate"] == 140) & (runs["hosts[0].time_wait"] == 10)]
    assert table.iloc[3]["pressure.peak.mean"] == pytest.approx(first["pressure.peak"].mean())
    swapped = sweeps.load_sweep(base, replications=2, values=dict(reversed(list(grid.items()))))
    with pytest.raises(ValueError, match="do not have"):
        sweeps.summarise_by_grid_point(runs, swapped)


@pytest.mark.parametrize("values", [300, [], None])
def test_python_grid_values_must_be_non_empty_lists(base: Path, values) -> None:
    with pytest.raises(sim.ScenarioError, match="expected a non-empty list of values"):
        sim.sweep(base, {"load[0].arrival.rate": values})


def test_a_worker_that_dies_fails_only_its_own_run(base: Path, monkeypatch) -> None:
    """A run that kills its worker process (as an out-of-memory kill would) breaks the
    process pool; the other runs are tried again and complete, and only the culprit is
    recorded as failed."""
    import os

    real = sim.engine.run

    def deadly(scenario, *args, **kwargs):
        if scenario.load[0].arrival.rate == 100 and kwargs.get("seed") is not None:
            os._exit(9)
        return real(scenario, *args, **kwargs)

    monkeypatch.setattr(sim.engine, "run", deadly)
    runs = sweeps.sweep(base, GRID, replications=2, workers=2)
    failed = runs[runs["error"] != ""]
    assert failed["load[0].arrival.rate"].tolist() == [100, 100]
    assert failed["error"].str.contains("worker process died").all()
    assert (runs.loc[runs["error"] == "", "connections.attempted"] > 0).sum() == 4


def test_unreachable_dask_scheduler_and_out_under_a_file_are_usage_errors(
    base: Path, tmp_path: Path, capsys
) -> None:
    pytest.importorskip("dask.distributed")
    code = main(
        ["sweep", str(base), "--dask", "tcp://127.0.0.1:9", "--quiet", "--out", str(tmp_path / "d")]
    )
    err = capsys.readouterr().err
    assert code == 2 and "--dask tcp://127.0.0.1:9: cannot reach the scheduler" in err
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main(["sweep", str(base), "--out", str(afile / "sub"), "--quiet"]) == 2
    assert "exists and is not a directory" in capsys.readouterr().err


def test_duplicate_grid_values_are_refused(base: Path) -> None:
    with pytest.raises(sim.ScenarioError, match="values must be distinct"):
        sim.sweep(base, {"load[0].arrival.rate": [60, 60]})


def test_duplicate_grid_values_are_refused_for_a_scenario_object_too(base: Path) -> None:
    """Regression: ``sim.sweep(scenario, grid)`` took [60, 60] and ran two grid points with
    the same run key; it refuses them like the file path, before any run."""
    scenario = sim.load_scenario(base)
    with pytest.raises(sim.ScenarioError, match=r"grid load\[0\]\.arrival\.rate: values must be"):
        sim.sweep(scenario, {"load[0].arrival.rate": [60, 60.0]}, replications=1)
    rows = sim.sweep(scenario, {"load[0].arrival.rate": [60, 61]}, replications=1)
    assert rows["load[0].arrival.rate"].tolist() == [60, 61]


def test_an_edited_data_file_is_a_new_run(tmp_path: Path) -> None:
    """The run key covers the data files' contents: after editing the trace, resuming
    into the same directory runs again instead of reusing the stale rows."""
    (tmp_path / "t.csv").write_text("time_s,destination\n1,api\n2,api\n")
    (tmp_path / "s.toml").write_text(
        'name = "t"\nduration = 5\n[[destinations]]\nname = "api"\naddress = "10.0.0.1:443"\n'
        '[[load]]\narrival = { kind = "trace", file = "t.csv" }\n'
        'lifetime = { kind = "fixed", value = 1 }\n'
    )
    out = tmp_path / "out"
    first = sim.sweep(tmp_path / "s.toml", replications=1, out=out)
    (tmp_path / "t.csv").write_text("time_s,destination\n1,api\n2,api\n3,api\n")
    second = sim.sweep(tmp_path / "s.toml", replications=1, out=out)
    assert first["connections.attempted"].tolist() == [2]
    assert second["connections.attempted"].tolist() == [3]
    assert first["key"].tolist() != second["key"].tolist()


SWEEP_HEAD = 'base = "base.toml"\n'


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("replication = 3\n", "replication: not a sweep key; did you mean replications?"),
        ("grid = 5\n", "grid: expected a table of dotted keys and value lists"),
        ("set = 5\n", "set: expected a table of dotted keys and values"),
        (
            '[grid]\n"load[0].arrival.rate" = []\n',
            "grid.load[0].arrival.rate: expected a non-empty",
        ),
        ('[grid]\n"load[0].arrival.rate" = 5\n', "grid.load[0].arrival.rate: expected a non-empty"),
        ('[grid]\n"load[0].arrival.rate" = [5, 5.0]\n', "values must be distinct"),
        ('[set]\n"load[7].arrival.rate" = 5\n', "set.load[7].arrival.rate"),
        ("replications = true\n", "replications: must be an integer in 1..10000 (got True)"),
        ("replications = 10001\n", "replications: must be an integer in 1..10000 (got 10001)"),
        ("seed = -1\n", "seed: must be an integer >= 0 (got -1)"),
        ('seed = "one"\n', "seed: must be an integer >= 0 (got 'one')"),
        ('metrics = "pressure.peak"\n', "metrics: expected a list of summary keys"),
        ('metrics = ["pressure.nope"]\n', "metrics: unknown pressure.nope; one of: "),
    ],
)
def test_sweep_file_validation(base: Path, tmp_path: Path, body: str, problem: str) -> None:
    """Each sweep-file check names the file and the key in one line."""
    path = tmp_path / "s.toml"
    path.write_text(SWEEP_HEAD + body)
    with pytest.raises(sim.ScenarioError) as caught:
        sweeps.load_sweep(path)
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith(f"{path}: ")
    assert problem in caught.value.problems[0]


def test_sweep_file_base_must_be_a_path_and_overrides_must_be_key_value(
    base: Path, tmp_path: Path
) -> None:
    path = tmp_path / "s.toml"
    path.write_text("base = 3\n")
    with pytest.raises(sim.ScenarioError) as caught:
        sweeps.load_sweep(path)
    assert caught.value.problems == [f"{path}: base: expected a scenario file path"]
    path.write_text(SWEEP_HEAD)
    with pytest.raises(sim.ScenarioError) as caught:
        sweeps.load_sweep(path, overrides=["no-equals-sign"])
    assert caught.value.problems == [
        "--set no-equals-sign: expected KEY=VALUE of the base scenario"
    ]
    with pytest.raises(sim.ScenarioError) as caught:
        sweeps.load_sweep(path, values={"load[0].arrival.rate": 5})  # type: ignore[dict-item]
    assert caught.value.problems == [
        "grid load[0].arrival.rate: expected a non-empty list of values"
    ]


def test_a_valid_sweep_file_sets_the_base_and_keeps_its_settings(
    base: Path, tmp_path: Path
) -> None:
    path = tmp_path / "s.toml"
    path.write_text(
        SWEEP_HEAD + 'name = "n"\nreplications = 2\nseed = 7\nmetrics = ["pressure.peak"]\n'
        '[set]\n"hosts[0].time_wait" = "5s"\n[grid]\n"load[0].arrival.rate" = [10, 20]\n'
    )
    spec = sweeps.load_sweep(path)
    assert (spec.name, spec.replications, spec.seed, spec.metrics) == (
        "n",
        2,
        7,
        ["pressure.peak"],
    )
    assert spec.grid == {"load[0].arrival.rate": [10, 20]}
    assert spec.base["hosts"][0]["time_wait"] == "5s"
    assert [s.hosts[0].time_wait for s in spec.scenarios()] == [5.0, 5.0]
    assert [s.load[0].arrival.rate for s in spec.scenarios()] == [10.0, 20.0]


def test_rate_study_runs_are_the_sweep_runs(base: Path) -> None:
    """sim.studies (notebooks 01 and 04) is a view of a sweep over the rate: replication r
    of every rate runs with the r-th of the sweep's replication seeds, so its figures are
    those of ``portsim run`` of that rate with that seed."""
    from sim.studies import rate_sweep

    scenario = sim.load_scenario(base)
    rows = rate_sweep(scenario, [60, 120], replications=2, seed=5)
    assert rows[["rate", "replication"]].values.tolist() == [[60, 0], [60, 1], [120, 0], [120, 1]]
    seeds = sweeps.replication_seeds(5, 2)
    for row in rows.itertuples():
        data = scenario.model_dump(mode="json")
        data["load"][0]["arrival"]["rate"] = row.rate
        summary = sim.run(sim.parse_scenario(data), seed=seeds[row.replication]).summary
        steady = summary["steady_state"]
        assert (row.attempted, row.failed) == (steady["attempted"], steady["failed"])
        assert row.blocking == steady["blocking"]
        assert row.erlang_b == next(iter(summary["analytic"].values()))["blocking"]


def test_rate_study_summary_by_hand() -> None:
    """Refusals 0.1, 0.2, 0.3 at one rate: mean 0.2, sd 0.1, 95 % half-width
    t(2) x 0.1 / sqrt(3) = 4.30265 x 0.057735 = 0.248414; one replication: no interval."""
    from sim.studies import summarise_by_rate

    runs = pd.DataFrame(
        {
            "rate": [100, 100, 100, 200],
            "blocking": [0.1, 0.2, 0.3, 0.5],
            "erlang_b": [0.15, 0.15, 0.15, 0.4],
            "pressure_mean": [0.5, 0.6, 0.7, 0.9],
        }
    )
    table = summarise_by_rate(runs).set_index("rate")
    assert table.loc[100, "blocking_mean"] == pytest.approx(0.2)
    assert table.loc[100, "blocking_sd"] == pytest.approx(0.1)
    assert table.loc[100, "blocking_ci95"] == pytest.approx(0.248414, abs=1e-6)
    assert table.loc[100, "pressure_mean"] == pytest.approx(0.6)
    assert (table.loc[200, "n"], table.loc[200, "blocking_ci95"]) == (1, 0.0)
    assert table.loc[200, "erlang_b"] == 0.4
