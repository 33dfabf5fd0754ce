"""`portsim kernel` on a small exhausting scenario: the model beside the running kernel.

The replay draws the model's own attempt times (same seed), and the model runs with the
kernel's HZ and jiffies clock read from /proc, so the two should refuse the same connects:
refused fraction within 1 percentage point, first refusal within 0.1 s, TIME_WAIT lifetimes
(min, median, max) within 0.1 s.  About 80 s.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from sim.cli import main
from sim.replay.lab import NS_PREFIX, kernel_available

pytestmark = pytest.mark.kernel

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "linux-kernel-replay-small.toml"


@pytest.fixture(autouse=True)
def _need_kernel() -> None:
    ok, why = kernel_available()
    if not ok:
        pytest.skip(why)


def test_kernel_replay_matches_model(tmp_path: Path, capsys) -> None:
    out = tmp_path / "replay"
    assert main(["kernel", str(SCENARIO), "--out", str(out), "--events", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "refused, whole run" in printed
    for name in ("summary.json", "series.csv", "events.csv", "comparison.png"):
        assert (out / name).is_file(), name
    # swapped in whole: exactly this run's files, and no stage left beside the folder
    assert {p.name for p in out.iterdir()} == {
        "summary.json",
        "series.csv",
        "events.csv",
        "scenario.json",
        "comparison.png",
        "model",
    }
    assert [p.name for p in tmp_path.iterdir()] == ["replay"]
    summary = json.loads((out / "summary.json").read_text())
    model, kernel = summary["comparison"]["model"], summary["comparison"]["kernel"]
    assert kernel["refused_pct"] > 10  # the scenario exhausts the range
    assert abs(model["refused_pct"] - kernel["refused_pct"]) <= 1.0
    assert abs(model["first_failure_s"] - kernel["first_failure_s"]) <= 0.1
    for key in ("tw_min", "tw_median", "tw_max"):
        assert abs(model[key] - kernel[key]) <= 0.1, key
    assert summary["kernel"]["samples_per_s"] >= 10
    left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    mine = [f"{NS_PREFIX}{side}{os.getpid()}_" for side in "cs"]  # this process's
    assert not any(name in left for name in mine)


def test_kernel_refuses_non_linux_scenario(tmp_path: Path, capsys) -> None:
    path = tmp_path / "win.toml"
    path.write_text(SCENARIO.read_text().replace('os = "linux"', 'os = "windows"'))
    assert main(["kernel", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not Linux" in err[0]
    assert not (tmp_path / "o").exists()
