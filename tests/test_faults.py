"""Faults and interruptions while results are written: nothing mixed, nothing leaked.

- In process: an interruption (Ctrl-C, SIGTERM) or a failed write (ENOSPC) injected at
  each write of a run saved over an earlier one: the earlier run stays whole, no stage
  is left, one line, the documented exit code.
- Real faults (root, skipped elsewhere): a full tmpfs, a read-only --out, SIGTERM and
  SIGKILL to a running ``portsim run``, Ctrl-C/SIGTERM/SIGKILL to a sweep with workers.
Waits are bounded polls (hang protection), never timing assertions.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import sim.atomic
from sim.atomic import Terminated
from sim.cli import main

ROOT = Path(__file__).resolve().parent.parent
FLAGSHIP = ROOT / "scenarios" / "linux-one-backend-500rps.toml"
SMALL = ["--set", "duration=10s"]


def folder_state(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def hidden_leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if p.name.startswith(".")]


@pytest.fixture
def earlier(tmp_path: Path, capsys) -> Path:
    """An earlier run (seed 1, no events) in tmp/parent/out."""
    out = tmp_path / "parent" / "out"
    assert main(["run", str(FLAGSHIP), *SMALL, "--seed", "1", "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    return out


def _count_writes(monkeypatch, tmp_path: Path) -> int:
    """How many files a run with --events writes (so each can be interrupted)."""
    calls = []
    real = sim.atomic.write_bytes

    def counting(path: Path, data: bytes) -> None:
        calls.append(path)
        real(path, data)

    monkeypatch.setattr(sim.atomic, "write_bytes", counting)
    out = tmp_path / "count"
    assert main(["run", str(FLAGSHIP), *SMALL, "--events", "--out", str(out), "--quiet"]) == 0
    monkeypatch.setattr(sim.atomic, "write_bytes", real)
    return len(calls)


def _fail_at(k: int, exc: BaseException) -> Callable[[Path, bytes], None]:
    real = sim.atomic.write_bytes
    seen = [0]

    def failing(path: Path, data: bytes) -> None:
        seen[0] += 1
        if seen[0] == k:
            raise exc
        real(path, data)

    return failing


FAULTS = {
    "ctrl-c": (KeyboardInterrupt(), 130, "interrupted"),
    "sigterm": (Terminated(signal.SIGTERM), 143, "terminated"),
    "enospc": (OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "x"), 1, "disk is full"),
    "erofs": (OSError(errno.EROFS, os.strerror(errno.EROFS), "x"), 1, "read-only file system"),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_fault_at_each_write_keeps_the_earlier_run(
    earlier: Path, tmp_path: Path, capsys, monkeypatch, fault: str
) -> None:
    exc, code, fragment = FAULTS[fault]
    before = folder_state(earlier)
    writes = _count_writes(monkeypatch, tmp_path)
    assert writes >= 6  # scenario, series, histograms, raster, events, png, summary
    capsys.readouterr()
    for k in range(1, writes + 1):
        monkeypatch.setattr(sim.atomic, "write_bytes", _fail_at(k, exc))
        rc = main(["run", str(FLAGSHIP), *SMALL, "--seed", "2", "--events", "--out", str(earlier)])
        err = capsys.readouterr().err
        assert rc == code, (k, err)
        assert fragment in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1
        assert folder_state(earlier) == before, f"earlier run changed at write {k}"
        assert hidden_leftovers(earlier.parent) == [], f"stage left at write {k}"


@pytest.mark.parametrize("fault", ["ctrl-c", "sigterm"])
def test_interrupt_at_the_swap_keeps_the_earlier_run(
    earlier: Path, capsys, monkeypatch, fault: str
) -> None:
    exc, code, _ = FAULTS[fault]
    before = folder_state(earlier)

    def interrupted(a: Path, b: Path) -> bool:
        raise exc

    monkeypatch.setattr(sim.atomic, "exchange", interrupted)
    rc = main(["run", str(FLAGSHIP), *SMALL, "--seed", "2", "--out", str(earlier), "--quiet"])
    assert rc == code
    assert folder_state(earlier) == before
    assert hidden_leftovers(earlier.parent) == []


def test_swap_without_renameat2_keeps_one_run(earlier: Path, capsys, monkeypatch) -> None:
    """Where RENAME_EXCHANGE is missing, two renames: the new run in, the old one gone."""
    monkeypatch.setattr(sim.atomic, "exchange", lambda a, b: False)
    rc = main(["run", str(FLAGSHIP), *SMALL, "--seed", "2", "--out", str(earlier)])
    out = capsys.readouterr().out
    assert rc == 0 and "replaced results of an earlier run" in out
    assert json.loads((earlier / "summary.json").read_text())["seed"] == 2
    assert hidden_leftovers(earlier.parent) == []


def test_rerun_without_events_drops_the_old_events(tmp_path: Path, capsys, monkeypatch) -> None:
    """Issue 11 item 2: a folder holds exactly one run's files."""
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(FLAGSHIP), *SMALL, "--events", "--quiet"]) == 0
    folder = tmp_path / "results" / "linux-one-backend-500rps"
    used = next(  # a port the run used (a never-used port gets no timeline)
        line.split(",")[5]
        for line in (folder / "events.csv").read_text().splitlines()[1:]
        if line.split(",")[3] == "connect"
    )
    assert main(["port", "results/linux-one-backend-500rps", used]) == 0
    assert (folder / "events.csv").exists() and (folder / f"port-{used}.png").exists()
    capsys.readouterr()
    assert main(["run", str(FLAGSHIP), *SMALL, "--seed", "5"]) == 0
    out = capsys.readouterr().out
    assert "replaced results of an earlier run in results/linux-one-backend-500rps/" in out
    names = {p.name for p in folder.iterdir()}
    assert "events.csv" not in names and f"port-{used}.png" not in names
    assert json.loads((folder / "summary.json").read_text())["seed"] == 5
    assert hidden_leftovers(folder.parent) == []


def test_a_first_run_says_nothing_about_replacing(tmp_path: Path, capsys) -> None:
    out = tmp_path / "new"
    assert main(["run", str(FLAGSHIP), *SMALL, "--out", str(out)]) == 0
    assert "replaced" not in capsys.readouterr().out


# ---- a signal whose exception is swallowed -----------------------------------------------
# A Cython-compiled module reports an exception raised while it registers its types with
# collections.abc as "unraisable" and goes on: numpy.random's first import (a run's first
# seed) does, and a SIGTERM landing there was lost, the run going on to the end (once in
# CI; 4 of 40 SIGTERMs sent as a run started, by hand).  A bare ``except BaseException``
# stands in for it here.

STOPS = {
    "sigterm": (signal.SIGTERM, 143, "terminated"),
    "ctrl-c": (signal.SIGINT, 130, "interrupted"),
}


def _swallowed(sig: int) -> None:
    """Send ``sig`` to this process inside code that swallows whatever it raises."""
    try:
        os.kill(os.getpid(), sig)
        time.sleep(5)  # interrupted by the signal: its handler runs here, within the try
    except BaseException:  # swallowing is the point
        pass


def _swallow_once(sig: int, real: Callable[..., Any]) -> Callable[..., Any]:
    done = []

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not done:
            done.append(1)
            _swallowed(sig)
        return real(*args, **kwargs)

    return wrapped


@pytest.mark.parametrize("stop", sorted(STOPS))
def test_a_swallowed_signal_stops_the_run_at_its_next_bin(
    earlier: Path, capsys, monkeypatch, stop: str
) -> None:
    import sim.engine

    sig, code, word = STOPS[stop]
    if sig == signal.SIGINT and signal.getsignal(sig) is not signal.default_int_handler:
        pytest.skip("SIGINT is not Python's here (ignored, or a test runner's)")
    before = folder_state(earlier)
    monkeypatch.setattr(sim.engine, "_seed", _swallow_once(sig, sim.engine._seed))
    bins = []
    real_close = sim.engine.Model.close_bin
    monkeypatch.setattr(sim.engine.Model, "close_bin", lambda m: bins.append(1) or real_close(m))
    rc = main(["run", str(FLAGSHIP), "--set", "duration=5m", "--out", str(earlier), "--quiet"])
    err = capsys.readouterr().err
    assert rc == code, err
    assert err.strip() == f"portsim: {word}; nothing half written"
    assert bins == [], "the run went on past its first bin"  # 300 bins of 1 s otherwise
    assert folder_state(earlier) == before
    assert hidden_leftovers(earlier.parent) == []


def test_a_swallowed_signal_is_never_committed(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with (
        sim.atomic.terminate_as_exception(),
        pytest.raises(Terminated),
        sim.atomic.staged_folder(target) as stage,
    ):
        (stage.path / "summary.json").write_text("{}")
        _swallowed(signal.SIGTERM)
        stage.commit()
    assert not target.exists() and hidden_leftovers(tmp_path) == []
    sim.atomic.raise_if_signalled()  # forgotten with the block: a later run is not stopped


@pytest.mark.parametrize("stop", sorted(STOPS))
def test_a_swallowed_signal_ends_a_command_with_its_code(capsys, monkeypatch, stop: str) -> None:
    import sim.cli

    sig, code, word = STOPS[stop]
    if sig == signal.SIGINT and signal.getsignal(sig) is not signal.default_int_handler:
        pytest.skip("SIGINT is not Python's here (ignored, or a test runner's)")
    monkeypatch.setattr(sim.cli, "_presets", _swallow_once(sig, sim.cli._presets))
    assert main(["presets"]) == code
    assert capsys.readouterr().err.strip() == f"portsim: {word}; nothing half written"


def test_a_swallowed_signal_stops_a_sweep_at_its_next_run(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    """Between runs (where a pool's parent waits): the finished run is kept, no more.  The
    backend stands in for a pool: after the first run it hands out ready-made rows, so
    only the sweep's own check between rows can stop it."""
    import sim.sweeps.run

    handed = []

    def backend(tasks: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        first = sim.sweeps.run.run_one(tasks[0])
        _swallowed(signal.SIGTERM)
        for task in tasks:
            handed.append(task["key"])
            yield {**first, "key": task["key"]}

    monkeypatch.setattr(sim.sweeps.run, "_serial", backend)
    out = tmp_path / "sw"
    argv = ["sweep", str(FLAGSHIP), "--grid", "load[0].arrival.rate=100,200,300", "--workers",
            "1", "--out", str(out), "--quiet", "--no-plots", *SMALL]  # fmt: skip
    assert main(argv) == 143
    err = capsys.readouterr().err
    assert len(handed) == 1, "the sweep went on after the signal"
    assert err.strip().splitlines() == [
        f"portsim: terminated; 1 finished run(s) kept in {out}/runs.csv; "
        "run the same command again to resume"
    ]
    assert _rows(out) == 1


def test_a_signal_swallowed_before_a_sweep_runs_starts_none(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    """The seeds are drawn (numpy.random imported) before the first run starts."""
    from sim.sweeps.spec import Sweep

    monkeypatch.setattr(Sweep, "seeds", _swallow_once(signal.SIGTERM, Sweep.seeds))
    ran = []
    monkeypatch.setattr("sim.sweeps.run.run_one", lambda task: ran.append(task))
    out = tmp_path / "sw"
    argv = ["sweep", str(FLAGSHIP), "--grid", "load[0].arrival.rate=100,200", "--workers",
            "1", "--out", str(out), "--quiet", "--no-plots", *SMALL]  # fmt: skip
    assert main(argv) == 143
    assert ran == []
    assert "terminated; 0 finished run(s) kept" in capsys.readouterr().err


def test_sweep_workers_forget_the_parents_signals() -> None:
    """A worker forked after a swallowed signal must not stop its runs for it: the
    parent reports it (and stops the pool)."""
    import multiprocessing

    from sim.sweeps.run import _worker_setup

    def child() -> None:
        sim.atomic.record_signal(signal.SIGTERM)  # as if copied from the parent by fork
        _worker_setup(os.getppid())
        sys.exit(len(sim.atomic._received))

    process = multiprocessing.get_context("fork").Process(target=child)
    process.start()
    process.join(60)
    assert process.exitcode == 0


def test_a_signal_ignored_at_start_stays_ignored() -> None:
    """``nohup portsim run`` ignores SIGHUP: the run must not stop on a hangup."""
    old = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with sim.atomic.terminate_as_exception():
            assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_IGN, signal.SIG_DFL)
    finally:
        signal.signal(signal.SIGHUP, old)


# ---- real faults (root) ------------------------------------------------------------------


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def test_full_disk_is_one_line_and_keeps_the_earlier_run(tmp_path: Path, capsys) -> None:
    with tmpfs(tmp_path / "small", "600k") as disk:
        out = disk / "out"
        rc = main(["run", str(FLAGSHIP), *SMALL, "--no-plots", "--out", str(out), "--quiet"])
        assert rc == 0, capsys.readouterr().err
        before = folder_state(out)
        capsys.readouterr()
        rc = main(["run", str(FLAGSHIP), *SMALL, "--seed", "2", "--events", "--out", str(out)])
        err = capsys.readouterr().err
        assert rc == 1
        assert "No space left on device" in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1
        assert folder_state(out) == before
        assert hidden_leftovers(disk) == []


def test_full_disk_on_a_first_run_leaves_nothing(tmp_path: Path, capsys) -> None:
    with tmpfs(tmp_path / "small", "300k") as disk:
        rc = main(["run", str(FLAGSHIP), *SMALL, "--events", "--out", str(disk / "out")])
        err = capsys.readouterr().err
        assert rc == 1 and "No space left on device" in err
        assert list(disk.iterdir()) == []


def test_read_only_out_is_refused_before_the_run(tmp_path: Path, capsys, monkeypatch) -> None:
    with tmpfs(tmp_path / "ro", "1m") as disk:
        remount = subprocess.run(["mount", "-o", "remount,ro", str(disk)], capture_output=True)
        if remount.returncode != 0:
            pytest.skip("cannot remount read-only")
        ran = []
        monkeypatch.setattr("sim.engine.run", lambda *a, **k: ran.append(1))
        rc = main(["run", str(FLAGSHIP), *SMALL, "--out", str(disk / "out")])
        err = capsys.readouterr().err
        assert rc == 2 and "Read-only file system" in err and "Traceback" not in err
        assert ran == [], "the simulation ran before --out was checked"


def _default_sigint() -> None:
    """A shell's background job ignores SIGINT, and a child inherits that: undo it, so
    the child sees Ctrl-C as a user at a terminal would."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _spawn(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "sim", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,
    )


def _poll(condition: Callable[[], bool], limit_s: float = 60.0) -> bool:
    """Wait for ``condition`` (hang protection, not a timing assertion)."""
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def _signal_state(pid: int) -> str:
    """The process's state and signal masks (pending, blocked, ignored, caught: hex
    bitmaps, bit n-1 for signal n) from /proc, to tell a lost signal from a slow exit."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError as exc:
        return f"no /proc status ({exc})"
    keys = ("State", "SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt", "Threads")
    return "; ".join(line for line in lines if line.split(":")[0] in keys)


def _stages(parent: Path) -> list[Path]:
    return [p for p in parent.iterdir() if ".portsim-stage-" in p.name]


# runs the signal tests stop: hours of simulated time, so that even on a starved machine
# (the test process descheduled for seconds between seeing the stage and signalling) the
# run is still going when the signal lands (30 min took ~10 s once the model got faster)
LONG = ["--set", "duration=6h", "--set", "max_events=1e12"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_during_a_run_keeps_the_earlier_run(earlier: Path, sig: int) -> None:
    before = folder_state(earlier)
    proc = _spawn(["run", str(FLAGSHIP), *LONG, "--out", str(earlier)], earlier.parent)
    try:
        assert _poll(lambda: bool(_stages(earlier.parent))), "no stage appeared"
        proc.send_signal(sig)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:  # seen once in CI, never reproduced: say why
            state = _signal_state(proc.pid)
            proc.kill()
            err = proc.communicate()[1][-2000:]
            pytest.fail(f"the run ignored signal {sig} for 60 s: {state}; stderr: {err}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == (143 if sig == signal.SIGTERM else 130), err
    assert "Traceback" not in err
    assert folder_state(earlier) == before
    assert hidden_leftovers(earlier.parent) == []


def test_stage_of_a_killed_run_is_removed_by_the_next(earlier: Path, capsys) -> None:
    proc = _spawn(["run", str(FLAGSHIP), *LONG, "--out", str(earlier)], earlier.parent)
    try:
        assert _poll(lambda: bool(_stages(earlier.parent)))
        proc.kill()
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert _stages(earlier.parent), "SIGKILL cannot clean up: the stage is expected here"
    assert main(["run", str(FLAGSHIP), *SMALL, "--out", str(earlier), "--quiet"]) == 0
    assert hidden_leftovers(earlier.parent) == []


# ---- sweeps ------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(x) for x in found.stdout.split()]


def _gone(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    return "\nState:\tZ" in status


def _sweep_args(out: Path) -> list[str]:
    # runs of seconds each: runs.csv is rewritten at most once a second, so with runs much
    # shorter than that the whole sweep could end before the first row shows and the signal
    # would find nothing to stop
    return ["sweep", str(FLAGSHIP), "--grid", "load[0].arrival.rate=100,200,300",
            "--replications", "2", "--workers", "2", "--out", str(out), "--quiet",
            "--no-plots", "--set", "duration=15m"]  # fmt: skip


def _rows(out: Path) -> int:
    path = out / "runs.csv"
    return max(0, len(path.read_text().splitlines()) - 1) if path.exists() else 0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_sweep_stops_and_leaves_no_workers(tmp_path: Path, sig: int) -> None:
    if not Path("/proc").is_dir() or subprocess.run(["which", "pgrep"]).returncode:
        pytest.skip("needs /proc and pgrep")
    out = tmp_path / f"sw-{uuid.uuid4().hex[:6]}"
    proc = _spawn(_sweep_args(out), tmp_path)
    workers: list[int] = []
    try:
        assert _poll(lambda: len(_children(proc.pid)) >= 2), "no workers started"
        workers = _children(proc.pid)
        assert _poll(lambda: _rows(out) >= 1, 120), "no run finished"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert _poll(lambda: all(_gone(w) for w in workers), 30), "workers left running"
    if sig == signal.SIGKILL:
        return
    assert proc.returncode == (130 if sig == signal.SIGINT else 143), err
    assert "Traceback" not in err
    assert "run the same command again to resume" in err
    from sim.sweeps import finished_count

    kept = finished_count(out)
    assert 1 <= kept < 6
    assert f"{kept} finished run(s) kept" in err


def test_sweep_resume_says_what_is_done(tmp_path: Path, capsys) -> None:
    out = tmp_path / "sw"
    argv = ["sweep", str(FLAGSHIP), "--grid", "load[0].arrival.rate=100,200", "--replications",
            "1", "--workers", "1", "--out", str(out), "--quiet", "--no-plots", *SMALL]  # fmt: skip
    assert main(argv) == 0
    lines = (out / "runs.csv").read_text().splitlines()
    (out / "runs.csv").write_text("\n".join(lines[:2]) + "\n")  # forget the second run
    capsys.readouterr()
    assert main(argv) == 0
    assert "1 of 2 runs already done, running 1" in capsys.readouterr().out
