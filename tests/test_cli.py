"""The portsim command: every scenario runs, outputs exist and parse, runs are deterministic."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from jsonschema import Draft202012Validator

from sim.cli import main
from sim.recorder import GATEWAY_EVENT_COLUMNS, SERIES_COLUMNS
from sim.result import EVENT_COLUMNS

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = sorted((ROOT / "scenarios").glob("*.toml"))
SUMMARY_SCHEMA = Draft202012Validator(
    json.loads((ROOT / "scenarios" / "summary.schema.json").read_text())
)
SUMMARY_KEYS = {
    "scenario",
    "seed",
    "version",
    "error",
    "duration_s",
    "connections",
    "pressure",
    "probes",
    "first_failure_s",
    "run",
}


def test_there_are_scenarios():
    assert len(SCENARIOS) >= 6


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.name)
def test_every_scenario_runs_at_a_short_horizon(path: Path, tmp_path: Path, capsys):
    out = tmp_path / "out"
    code = main(
        ["run", str(path), "--out", str(out), "--set", "duration=20", "--events", "--quiet"]
    )
    assert code == 0
    verdict = capsys.readouterr().out.strip().splitlines()
    summary = json.loads((out / "summary.json").read_text())
    # one line per host (never summed), after the requests' line when a load keeps alive
    # (or the retries' line when a load retries)
    hosts = [h["name"] for h in summary["hosts"]]
    requests = 1 if summary.get("requests") or summary.get("retries") else 0
    gateways = list(summary.get("gateways") or {})  # one line each, before the hosts'
    # and one per gateway whose idle timeout reset pooled connections, before those
    idle = [g for g in (summary.get("gateways") or {}).values() if g.get("idle", {}).get("resets")]
    idle_lines = len(idle) if (summary.get("requests") or {}).get("failed") else 0
    assert len(verdict) == len(hosts) + requests + len(gateways) + idle_lines
    if requests:
        assert verdict[0].startswith(
            ("Requests served:", "Requests failed:", "Requests pile up:", "Retries:")
        )
    for line in verdict[requests : requests + idle_lines]:
        assert line.startswith("Idle timeout at gateway"), line
    gateway_lines = verdict[requests + idle_lines :]
    for line, name in zip(gateway_lines, gateways, strict=False):
        assert line.startswith((f"Exhaustion at gateway {name} (", f"Gateway {name} (")), line
    for line, host in zip(gateway_lines[len(gateways) :], summary["hosts"], strict=True):
        where = f" on host {host['name']} (" if len(hosts) > 1 else ":"
        # behind a gateway, the host's line is about its own (local) ports
        fine = "No local port exhaustion" if host.get("gateway") else "No exhaustion"
        assert line.startswith(("Port exhaustion" + where, fine + where)), line
    assert summary.keys() >= SUMMARY_KEYS
    SUMMARY_SCHEMA.validate(summary)  # every key declared, every value of its type
    assert summary["error"] is None and summary["duration_s"] == 20
    conn = summary["connections"]
    assert conn["attempted"] == conn["succeeded"] + conn["failed"] > 0
    assert sum(conn["failed_by_error"].values()) == conn["failed"]
    assert 0 <= summary["pressure"]["mean"] <= summary["pressure"]["peak"] <= 1
    series = pd.read_csv(out / "series.csv")
    assert list(series.columns[: len(SERIES_COLUMNS)]) == list(SERIES_COLUMNS)
    assert series.t_end_s.iloc[-1] == 20 and series.attempts.sum() == conn["attempted"]
    events = pd.read_csv(out / "events.csv", dtype={"error": str})
    if gateways:  # a connect is settled when translated or failed (sim/nat/route.py)
        assert list(events.columns) == [*EVENT_COLUMNS, *GATEWAY_EVENT_COLUMNS]
        assert (events.event.isin(["translated", "fail"])).sum() == conn["attempted"]
    else:
        assert list(events.columns) == list(EVENT_COLUMNS)
        assert (events.event.isin(["connect", "fail"])).sum() == conn["attempted"]
    assert events.time_s.is_monotonic_increasing
    assert (out / "pressure.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    resolved = json.loads((out / "scenario.json").read_text())
    assert resolved["duration"] == 20 and resolved["resolved"]["seed"] == summary["seed"]


def _run_files(tmp_path: Path, name: str, *extra: str) -> dict[str, bytes]:
    out = tmp_path / name
    path = ROOT / "scenarios" / "linux-one-backend-500rps.toml"
    assert (
        main(
            [
                "run",
                str(path),
                "--out",
                str(out),
                "--set",
                "duration=70",
                "--events",
                "--quiet",
                "--no-plots",
                *extra,
            ]
        )
        == 0
    )
    files = {p.name: p.read_bytes() for p in out.iterdir()}
    summary = json.loads(files.pop("summary.json"))
    summary.pop("run")
    files["summary"] = json.dumps(summary).encode()
    return files


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path):
    a = _run_files(tmp_path, "a")
    b = _run_files(tmp_path, "b")
    assert a == b
    c = _run_files(tmp_path, "c", "--seed", "7")
    assert c["series.csv"] != a["series.csv"]
    assert json.loads(c["summary"])["seed"] == 7


def test_set_override_values_are_toml(tmp_path: Path, capsys):
    path = ROOT / "scenarios" / "linux-one-backend-500rps.toml"
    out = tmp_path / "o"
    assert (
        main(
            [
                "run",
                str(path),
                "--out",
                str(out),
                "--quiet",
                "--no-plots",
                "--set",
                "duration=5",
                "--set",
                'hosts[0].kernel="5.12"',
                "--set",
                "load[0].arrival.rate=50",
            ]
        )
        == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["hosts"][0]["generation"] == "G3"
    assert 150 < summary["connections"]["attempted"] < 350


def test_default_output_directory_is_results_name(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = ROOT / "scenarios" / "linux-server-closes-first.toml"
    assert main(["run", str(path), "--set", "duration=2", "--quiet", "--no-plots"]) == 0
    assert (tmp_path / "results" / "linux-server-closes-first" / "summary.json").is_file()


def test_check_presets_and_plot(tmp_path: Path, capsys):
    path = ROOT / "scenarios" / "linux-one-backend-moderate.toml"
    assert main(["check", str(path)]) == 0
    assert "ok" in capsys.readouterr().out
    assert main(["presets"]) == 0
    table = capsys.readouterr().out
    assert "linux-4.6" in table and "32768-60999" in table and "60 s" in table
    for name, rate in (("low", "100"), ("high", "600")):
        assert (
            main(
                [
                    "run",
                    str(path),
                    "--out",
                    str(tmp_path / name),
                    "--quiet",
                    "--no-plots",
                    "--set",
                    "duration=70",
                    "--set",
                    f"load[0].arrival.rate={rate}",
                ]
            )
            == 0
        )
    assert main(["plot", str(tmp_path / "low")]) == 0
    assert (tmp_path / "low" / "pressure.png").is_file()
    overlay = tmp_path / "both.png"
    assert main(["plot", str(tmp_path / "low"), str(tmp_path / "high"), "--out", str(overlay)]) == 0
    assert overlay.read_bytes()[:4] == b"\x89PNG"
    assert main(["plot", str(tmp_path / "nothing-here")]) == 2


def test_verdict_names_the_failure(tmp_path: Path, capsys):
    path = ROOT / "scenarios" / "linux-one-backend-500rps.toml"
    assert (
        main(["run", str(path), "--out", str(tmp_path / "x"), "--no-plots", "--set", "duration=80"])
        == 0
    )
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("Port exhaustion: ")
    assert "connects to api failed with EADDRNOTAVAIL, first at 5" in out[0]
    assert "(28,232 of 28,232 ports)" in out[0]
    assert any(line.strip().startswith("connects:") for line in out[1:])


def test_internal_error_is_recorded_with_exit_1(tmp_path: Path, monkeypatch, capsys):
    import sim.engine

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(sim.engine, "run", broken)
    path = ROOT / "scenarios" / "linux-server-closes-first.toml"
    assert main(["run", str(path), "--out", str(tmp_path / "e"), "--quiet"]) == 1
    summary = json.loads((tmp_path / "e" / "summary.json").read_text())
    assert summary["error"] == "RuntimeError: boom"
    assert "boom" in capsys.readouterr().err


def test_python_dash_m_sim_and_usage_errors():
    proc = subprocess.run(
        [sys.executable, "-m", "sim", "presets"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0 and "linux" in proc.stdout
    proc = subprocess.run(
        [sys.executable, "-m", "sim", "run"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_a_byte_order_mark_is_accepted(tmp_path: Path):
    """Some Windows editors start UTF-8 files with a BOM; tomllib alone rejects it."""
    path = tmp_path / "bom.toml"
    text = (ROOT / "scenarios" / "linux-server-closes-first.toml").read_text()
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert main(["check", str(path)]) == 0


def test_published_schema_is_current(capsys):
    """scenarios/schema.json is what `portsim schema` prints (regenerate it with that)."""
    assert main(["schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((ROOT / "scenarios" / "schema.json").read_text())
    assert {"hosts", "destinations", "load", "duration"} <= printed["properties"].keys()


def test_progress_bar_only_on_a_terminal_after_two_seconds(monkeypatch, capsys):
    import sim.cli as cli

    clock = iter([0.0, 0.5, 2.5, 3.0, 4.0])
    monkeypatch.setattr(cli.time, "perf_counter", lambda: next(clock))
    bar = cli._Progress(enabled=True, duration_s=600.0)  # started at t = 0
    bar(0.1)  # 0.5 s: too early for a bar
    assert bar.bar is None
    bar(0.5)  # 2.5 s: the bar appears at 300 of 600 simulated seconds
    assert bar.bar is not None and bar.bar.n == 300 and bar.bar.total == 600
    bar(0.75)
    assert bar.bar.n == 450
    bar.close()
    quiet = cli._Progress(enabled=False, duration_s=600.0)
    quiet(1.0)
    assert quiet.bar is None


def test_progress_bar_counts_simulated_seconds_and_names_the_writing(monkeypatch):
    """The rate is simulated seconds per wall second, never "%/s"; saving is named."""
    import sim.cli as cli

    clock = iter([0.0, 3.0])
    monkeypatch.setattr(cli.time, "perf_counter", lambda: next(clock))
    bar = cli._Progress(enabled=True, duration_s=3600.0)
    bar(0.25)
    text = bar.bar.format_meter(**{**bar.bar.format_dict, "rate": 1800.0})
    assert "1.80k simulated s/s" in text and "%/s" not in text, text
    assert text.startswith("simulating:  25%"), text
    bar.stage("writing results")
    assert bar.bar.desc == "writing results"
    assert str(bar.bar).startswith("writing results:  25%")
    bar.close()


def test_run_says_writing_results_while_saving(tmp_path: Path, monkeypatch):
    import sim.cli as cli
    import sim.result

    class ShownAtOnce(cli._Progress):
        def __init__(self, enabled: bool, duration_s: float = 1.0) -> None:
            super().__init__(True, duration_s)
            self.start = -10.0  # as if the run had taken long: the bar shows at once

    seen: list[str] = []
    real_save = sim.result.Result.write_files

    def write_files(self, out_dir, *, plots=True):
        seen.append(bars[0].bar.desc)
        return real_save(self, out_dir, plots=plots)

    bars: list[cli._Progress] = []

    def make(enabled: bool, duration_s: float = 1.0) -> cli._Progress:
        bars.append(ShownAtOnce(enabled, duration_s))
        return bars[0]

    monkeypatch.setattr(cli, "_Progress", make)
    monkeypatch.setattr(sim.result.Result, "write_files", write_files)
    path = ROOT / "scenarios" / "linux-server-closes-first.toml"
    assert main(["run", str(path), "--out", str(tmp_path / "o"), "--set", "duration=5"]) == 0
    assert seen == ["writing results"]
    assert bars[0].bar.total == 5.0


def test_readme_names_every_scenario_and_ci_runs_its_commands():
    readme = (ROOT / "README.md").read_text()
    for path in SCENARIOS:
        assert path.name in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert "readme-run" in ci and "readme-test" in ci
    assert "<!-- readme-run -->" in readme and "<!-- readme-test -->" in readme


def test_every_preset_is_documented():
    """docs/presets/README.md maps every preset to a page that exists and names it."""
    import re

    from sim.presets import PRESETS

    index = ROOT / "docs" / "presets"
    pages: dict[str, Path] = {}
    for row in (index / "README.md").read_text().splitlines():
        link = re.search(r"\]\(([^)]+\.md)\)", row)
        if row.startswith("| `") and link:
            for name in re.findall(r"`([a-z0-9.-]+)`", row.split("|")[1]):
                pages[name] = index / link.group(1)
    pages.update({f"rfc6056-alg{i}": pages["rfc6056-alg1"] for i in range(2, 5)})
    for name in PRESETS:
        assert name in pages, f"{name} has no row in docs/presets/README.md"
        text = pages[name].read_text()
        assert name.split("-alg")[0] in text, (name, pages[name])


def _subcommands() -> list[str]:
    """Every subcommand the parser knows, so that new ones are covered without editing."""
    import argparse

    from sim.cli import _parser

    actions = [a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction)]
    assert len(actions) == 1
    return list(actions[0].choices)


def test_there_are_subcommands_to_check():
    assert {"run", "check", "sweep", "presets", "plot", "capacity"} <= set(_subcommands())


@pytest.mark.parametrize("argv", [["--help"], ["-h"]] + [[c, "--help"] for c in _subcommands()])
def test_help_prints_usage_and_exits_0(argv: list[str], capsys):
    """argparse %-formats help strings: a bare '%' once made `portsim --help` crash."""
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("usage: portsim")
    assert "Traceback" not in captured.err


def test_python_dash_m_sim_help():
    proc = subprocess.run(
        [sys.executable, "-m", "sim", "--help"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0 and proc.stdout.startswith("usage: portsim"), proc.stderr
    assert "Traceback" not in proc.stderr


def test_port_never_used_writes_nothing(tmp_path: Path, capsys):
    """A port the run never touched is an answer (exit 0), not an empty timeline PNG."""
    path = ROOT / "scenarios" / "linux-one-backend-moderate.toml"
    out = tmp_path / "run"
    argv = ["run", str(path), "--out", str(out), "--set", "duration=2", "--events", "--quiet"]
    assert main([*argv, "--no-plots"]) == 0
    before = sorted(p.name for p in out.iterdir())
    capsys.readouterr()
    assert main(["port", str(out), "80"]) == 0
    text = capsys.readouterr().out
    assert text.strip() == (
        "port 80: never used in this run (outside every host's range: 32768-60999); "
        "no timeline written"
    )
    assert main(["port", str(out), "40000", "--out", str(tmp_path / "t.png")]) == 0
    assert "never used" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == before
    assert not (tmp_path / "t.png").exists()


# ---- machine-readable output (--json) and compare ----------------------------------------


def test_run_json_prints_the_summary_and_nothing_else(tmp_path: Path, capsys):
    path = ROOT / "scenarios" / "linux-one-backend-500rps.toml"
    out = tmp_path / "r"
    argv = ["run", str(path), "--out", str(out), "--set", "duration=70", "--no-plots", "--json"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    printed = json.loads(captured.out)  # the whole of stdout is one JSON document
    assert printed == json.loads((out / "summary.json").read_text())
    assert printed["connections"]["failed"] > 0  # 500/s x 61 s > 28,232 ports: it fails
    assert "Port exhaustion" not in captured.out


def test_check_json(tmp_path: Path, capsys):
    path = ROOT / "scenarios" / "linux-one-backend-500rps.toml"
    assert main(["check", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True and report["name"] == "linux-one-backend-500rps"
    assert (report["hosts"], report["destinations"], report["loads"]) == (1, 1, 1)
    # 500/s for 180 s, three events per connection, plus bins: about 270,000
    assert 2.6e5 < report["estimated_events"] < 2.8e5
    assert report["scenario"]["duration"] == 180.0
    assert report["scenario"]["load"][0]["arrival"] == {"kind": "poisson", "rate": 500.0}
    rc = main(["check", str(path), "--json", "--set", "duration=soon", "--set", "seed=-1"])
    captured = capsys.readouterr()
    assert rc == 2
    report = json.loads(captured.out)
    assert report["ok"] is False and len(report["problems"]) == 2
    assert report["problems"] == captured.err.splitlines()


def test_presets_json(capsys):
    from sim.presets import PRESETS

    assert main(["presets", "--json"]) == 0
    table = {p["name"]: p for p in json.loads(capsys.readouterr().out)}
    assert set(table) == set(PRESETS)
    linux = table["linux"]
    # ip_local_port_range's default since 4.2 (07f4c90062f8) and TCP_TIMEWAIT_LEN (60 s)
    assert linux["port_range"] == [32768, 60999] and linux["range_ports"] == 28232
    assert linux["time_wait_s"] == 60 and linux["generation"] == "G4"
    assert table["linux-4.1"]["port_range"] == [32768, 61000]
    assert table["linux-4.2"]["port_range"] == [32768, 60999]
    assert table["windows"]["port_range"] == [49152, 65535]


def _fake_run(directory: Path, **figures: object) -> Path:
    """A result directory holding only a hand-written summary.json."""
    summary = {
        "scenario": directory.name,
        "seed": 3,
        "error": None,
        "duration_s": 120.0,
        "connections": {"attempted": 1000, "succeeded": 950, "failed": 50},
        "pressure": {"peak": 1.0, "mean": 0.5},
        "probes": {"mean": 12.5, "p99": 28000.0, "max": 28231},
        "steady_state": {"blocking": 0.04, "stationary": True},
        "first_failure_s": 56.0,
    }
    summary.update(figures)
    directory.mkdir()
    (directory / "summary.json").write_text(json.dumps(summary))
    return directory


def test_compare_table_and_json(tmp_path: Path, capsys):
    a = _fake_run(tmp_path / "a")
    b = _fake_run(
        tmp_path / "b",
        connections={"attempted": 400, "succeeded": 400, "failed": 0},
        first_failure_s=None,
        requests={
            "attempted": 2000,
            "failed": 20,
            "waited": 300,
            "waiting_at_end": 7,
            "wait_s": {"mean": 0.25, "p99": 1.5},
            "requests_per_connection": 50.0,
        },
    )
    assert main(["compare", str(a), str(b)]) == 0
    lines = {line.split("  ")[0]: line.split() for line in capsys.readouterr().out.splitlines()}
    assert lines["scenario"][-2:] == ["a", "b"]
    assert lines["connects attempted"][-2:] == ["1,000", "400"]
    assert lines["connects failed %"][-4:] == ["5.0", "%", "0", "%"]  # 50 / 1000
    assert lines["first failure"][-3:] == ["56.0", "s", "none"]
    assert lines["steady state refused"][-4:] == ["4.0", "%", "4.0", "%"]
    assert lines["ports probed per connect, p99"][-2:] == ["28,000", "28,000"]
    assert lines["requests failed %"][-3:] == ["-", "1.0", "%"]  # 20 / 2000
    assert lines["requests still waiting at the end"][-2:] == ["-", "7"]
    assert "retries" not in lines  # no run retried: no row
    assert main(["compare", str(a), str(b), "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert [r["results"] for r in runs] == [str(a), str(b)]
    assert runs[0]["connects_failed_fraction"] == 0.05 and runs[1]["first_failure_s"] is None
    assert runs[0]["requests_attempted"] is None and runs[1]["request_wait_p99_s"] == 1.5


def test_compare_shows_the_gateway(tmp_path: Path, capsys):
    """Behind a NAT the exhaustion is at the gateway and the client sees delay: the table
    must show it (the highest pressure over the gateways, their drops added up)."""
    gateway = {
        "a": {"pressure": {"peak": 0.5}, "mappings": {"dropped": 30}},
        "b": {"pressure": {"peak": 1.0}, "mappings": {"dropped": 12}},
    }
    latency = {"delayed": 7, "p99": 3.0, "still_connecting_at_end": 2}
    nat = _fake_run(tmp_path / "nat", gateways=gateway, connect_latency_s=latency)
    plain = _fake_run(tmp_path / "plain")
    assert main(["compare", str(nat), str(plain)]) == 0
    rows = {line.split("  ")[0]: line.split() for line in capsys.readouterr().out.splitlines()}
    assert rows["gateway pressure peak"][-3:] == ["100.0", "%", "-"]
    # 30 + 12 over the two gateways
    assert rows["gateway translations refused (each SYN retransmission too)"][-2:] == ["42", "-"]
    assert rows["connects through only after SYN retransmission"][-2:] == ["7", "-"]
    assert rows["connect latency, p99"][-3:] == ["3.0", "s", "-"]
    assert rows["connects still retransmitting at the end"][-2:] == ["2", "-"]
    assert rows["host port pressure peak"][-4:] == ["100.0", "%", "100.0", "%"]
    assert main(["compare", str(plain), str(plain)]) == 0
    labels = [line.split("  ")[0] for line in capsys.readouterr().out.splitlines()]
    assert not [label for label in labels if "gateway" in label or "SYN" in label]  # no rows


def test_compare_real_runs(tmp_path: Path, capsys):
    path = ROOT / "scenarios" / "linux-one-backend-moderate.toml"
    for rate in ("100", "200"):
        argv = ["run", str(path), "--out", str(tmp_path / rate), "--quiet", "--no-plots"]
        assert main([*argv, "--set", "duration=5", "--set", f"load[0].arrival.rate={rate}"]) == 0
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "100"), str(tmp_path / "200"), "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    for run in runs:
        summary = json.loads((Path(run["results"]) / "summary.json").read_text())
        assert run["connects_attempted"] == summary["connections"]["attempted"]
        assert run["pressure_peak"] == summary["pressure"]["peak"]
        assert run["gateway_pressure_peak"] is None  # no gateway in this scenario
    # Poisson counts over 5 s: about 500 and 1,000 attempts
    assert 400 < runs[0]["connects_attempted"] < 600 < 850 < runs[1]["connects_attempted"] < 1150


def test_compare_refuses_what_is_not_a_run(tmp_path: Path, capsys):
    good = _fake_run(tmp_path / "good")
    empty = tmp_path / "empty"
    empty.mkdir()
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "summary.json").write_text("{not json")
    failed = tmp_path / "failed"
    failed.mkdir()
    (failed / "summary.json").write_text(json.dumps({"error": "RuntimeError: boom\nmore"}))
    bad = [tmp_path / "missing", good / "summary.json", empty, broken, failed]
    rc = main(["compare", str(good), *map(str, bad)])
    captured = capsys.readouterr()
    assert rc == 2 and captured.out == ""
    lines = captured.err.splitlines()
    assert [line.split(": ")[0] for line in lines] == [str(p) for p in bad]
    assert lines[0].endswith("no such directory")
    assert "not a directory" in lines[1]
    assert lines[2].endswith("no summary.json)")
    assert "cannot read summary.json" in lines[3]
    assert lines[4].endswith("the run failed (RuntimeError: boom)")


def test_readme_command_reference_names_every_subcommand():
    readme = (ROOT / "README.md").read_text()
    reference = readme[readme.index("## The command") :]
    for command in _subcommands():
        assert f"portsim {command}" in reference, f"'portsim {command}' not in the README"
    for flag in ("run SCENARIO", "check SCENARIO", "presets [--json]", "compare RESULTS_DIR"):
        assert f"portsim {flag}" in reference
    assert "--json" in reference.split("portsim run", 1)[1].split("\n", 1)[0]


def test_compare_says_when_hosts_are_added_and_hides_a_steady_state_that_is_not(
    tmp_path: Path, capsys
):
    """A run of 4 hosts: its connects are over all of them, so the table says how many it
    adds up; a run whose load varies has no steady state, as `run` itself says."""
    one = _fake_run(tmp_path / "one", hosts=[{"name": "client"}])
    four = _fake_run(
        tmp_path / "four",
        hosts=[{"name": n} for n in ("linux", "windows", "macos", "freebsd")],
        steady_state={"blocking": 0.4, "stationary": False},
    )
    assert main(["compare", str(one), str(four), "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert [r["hosts"] for r in runs] == [None, 4]
    assert [r["steady_state_refused"] for r in runs] == [0.04, None]
    assert main(["compare", str(one), str(four)]) == 0
    rows = {line.split("  ")[0]: line for line in capsys.readouterr().out.splitlines()}
    label = "hosts (below: counts summed, pressure the worst host's, the rest over all)"
    assert rows[label].split()[-2:] == ["-", "4"]


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "x.toml", "--seed", "abc"],
        ["capacity", "--rate", "abc"],
        ["run", "x.toml", "--sett", "a=1"],
        ["presets", "linux"],
        ["port", "somewhere", "abc"],
    ],
)
def test_usage_errors_are_one_line(argv: list[str], capsys) -> None:
    """argparse's own errors (a bad type, an unknown option) say one line, exit 2."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--help" in err
