"""The portsim command: every scenario runs, outputs exist and parse, runs are deterministic."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from sim.cli import main
from sim.recorder import SERIES_COLUMNS
from sim.result import EVENT_COLUMNS

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = sorted((ROOT / "scenarios").glob("*.toml"))
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
    hosts = [h["name"] for h in summary["hosts"]]
    requests = 1 if summary.get("requests") else 0
    assert len(verdict) == len(hosts) + requests
    if requests:
        assert verdict[0].startswith(("Requests served:", "Requests failed:", "Requests pile up:"))
    for line, host in zip(verdict[requests:], hosts, strict=True):
        where = f" on host {host} (" if len(hosts) > 1 else ":"
        assert line.startswith(("Port exhaustion" + where, "No exhaustion" + where)), line
    assert summary.keys() >= SUMMARY_KEYS
    assert summary["error"] is None and summary["duration_s"] == 20
    conn = summary["connections"]
    assert conn["attempted"] == conn["succeeded"] + conn["failed"] > 0
    assert sum(conn["failed_by_error"].values()) == conn["failed"]
    assert 0 <= summary["pressure"]["mean"] <= summary["pressure"]["peak"] <= 1
    series = pd.read_csv(out / "series.csv")
    assert list(series.columns[: len(SERIES_COLUMNS)]) == list(SERIES_COLUMNS)
    assert series.t_end_s.iloc[-1] == 20 and series.attempts.sum() == conn["attempted"]
    events = pd.read_csv(out / "events.csv", dtype={"error": str})
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

    clock = iter([0.0, 0.5, 2.5, 3.0])
    monkeypatch.setattr(cli.time, "perf_counter", lambda: next(clock))
    bar = cli._Progress(enabled=True)  # started at t = 0
    bar(0.1)  # 0.5 s: too early for a bar
    assert bar.bar is None
    bar(0.5)  # 2.5 s: the bar appears at 50 %
    assert bar.bar is not None and bar.bar.n == 50
    bar.close()
    quiet = cli._Progress(enabled=False)
    quiet(1.0)
    assert quiet.bar is None


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
