"""A hostile-input corpus: what an adversarial user can type or hand portsim.

Every case must end in one line per problem (no traceback), exit 2 (or, where the input is
legitimate but extreme, a clean run), and nothing written.  Categories: scenario values,
scenario files, data files, CLI arguments, crafted result folders, sweep files and
``runs.csv`` states.  Expected fragments are the project's own messages.  The cases run
``portsim check`` (validation only) wherever that exercises the rule, so the corpus runs
in seconds.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from sim.cli import main
from sim.config.types import BOOL_KEYS

BASE = """\
name = "tiny"
duration = "5s"
seed = 3

[[hosts]]
name = "client"
os = "linux"

[[destinations]]
name = "api"
address = "10.0.0.10:443"

[[destinations]]
name = "api2"
address = "10.0.0.11:443"

[[load]]
destination = "api"
arrival = { kind = "poisson", rate = 50 }
lifetime = { kind = "exponential", mean = "1s" }
"""


@pytest.fixture
def base(tmp_path: Path) -> Path:
    folder = tmp_path / "scen"
    folder.mkdir()
    path = folder / "tiny.toml"
    path.write_text(BASE)
    return path


def clean_failure(capsys: pytest.CaptureFixture[str], rc: int, fragment: str) -> str:
    """Exit 2, the fragment in stderr, no traceback, nothing on stdout."""
    captured = capsys.readouterr()
    assert rc == 2, captured.err
    assert captured.out == ""
    assert "Traceback" not in captured.err
    assert fragment in captured.err, captured.err
    assert captured.err.strip(), "no message"
    assert "\x1b" not in captured.err and "\x07" not in captured.err
    return captured.err


# ---- scenario values ---------------------------------------------------------------------

SCENARIO_VALUES = [
    ('name=".."', "must not be '.' or '..'"),
    ('name="."', "must not be '.' or '..'"),
    ('name="a/b"', "only letters, digits"),
    ('name="/etc"', "only letters, digits"),
    (f'name="{"x" * 300}"', "at most 100 characters"),
    ('name="a\\u001b[31mb"', "control characters"),
    ('hosts[0].name="a\\u0007b"', "hosts[0].name: control characters"),
    ('destinations[0].name="api\\nFAKE: ok"', "destinations[0].name: control characters"),
    ('load[0].name="l\\u001b]0;title\\u0007"', "load[0].name: control characters"),
    ('destinations[0].address="10.0.0.10:443\\u001b"', "control characters"),
    ('hosts[0].name="' + "h" * 1200 + '"', "at most 1000 characters"),
    (
        "load[0].arrival.rate=true",
        "load[0].arrival.rate: expected a number or text, not a boolean (got true)",
    ),
    ("hosts[0].port_range=[40000, true]", "hosts[0].port_range[1]: expected a number"),
    (
        'destinations[0]={name="set", address="10.0.0.0/24", count=true, ports=[443]}',
        "destinations[0].count: expected a number",
    ),
    ("seed=true", "seed: expected a number or text, not a boolean (got true)"),
    ("max_events=false", "max_events: expected a number"),
    (
        "hosts[0].tcp_tw_reuse=true",
        "hosts[0].tcp_tw_reuse: expected 0 (off), 1 (on) or 2 (loopback only), not a boolean",
    ),
    ("hosts[0].reserved_ports=[true]", "hosts[0].reserved_ports[0]: expected a number"),
    ("hosts[0].udp_hash_size=true", "hosts[0].udp_hash_size: expected a number"),
    ('load[0].lifetime={kind="fixed", value=true}', "load[0].lifetime.value: expected a number"),
    (
        "load[0].keepalive={max_connections=true}",
        "load[0].keepalive.max_connections: expected a number",
    ),
    ('load[0].retry={kind="fixed", max_attempts=true}', "max_attempts: expected a number"),
    ('load[0].lifetime={kind="lognormal", mu=710, sigma=1}', "load[0].lifetime.mu"),
    ('load[0].lifetime={kind="lognormal", mu=40, sigma=1}', "the lognormal's mean would be"),
    ('load[0].lifetime={kind="lognormal", mean=1e300, p99=2e300}', "at most 1e+09 s"),
    ('load[0].arrival={kind="constant", interval=5e-324}', "at least 1 ns"),
    ('load[0].arrival={kind="diurnal", mean=1, period=5e-324}', "at least 1 ns"),
    ("duration=1e308", "duration: must be at most 1e+09 s"),
    ('duration="1e300d"', "duration: must be at most"),
    ("hosts[0].time_wait=1e300", "hosts[0].time_wait: must be at most"),
    ("load[0].start=1e-320", "load[0].start: must be 0 or at least 1 ns"),
    ("load[0].arrival.rate=1e308", "load[0].arrival.rate"),
    (
        'load[0]={destinations=["api","api2"], weights=[1e308, 1e308], '
        'arrival={kind="poisson", rate=5}, lifetime={kind="fixed", value=1}}',
        "load[0].weights[0]",
    ),
    ('load[0].arrival={kind="schedule", points=[[0, 1e308]]}', "load[0].arrival.points"),
    ('hosts[0].reserved_ports=["1-65535"]', "every port of the range 32768-60999 is reserved"),
    (
        'hosts[0]={name="client", os="windows", reserved_ports=["49152-65535"]}',
        "every port of the range 49152-65535 is reserved",
    ),
    ('hosts[0].udp_policy="sequential"', "hosts[0].udp_policy: 'sequential' with the Linux"),
    ('bin="1ms"', None),  # 5,000 bins: fine
    ('duration="1d"', None),  # 2,000 bins by default: fine
    ('load[0].arrival={kind="burst", count=1000000000000}', "max_events"),
    ("duration=1979-05-27", "duration"),
    ("name=07:32:00", "name"),
]
BIN_BOMB = ['duration="1d"', 'bin="1ms"']


@pytest.mark.parametrize(
    ("override", "fragment"), SCENARIO_VALUES, ids=[f"v{i}" for i in range(len(SCENARIO_VALUES))]
)
def test_scenario_values(
    base: Path, tmp_path: Path, capsys, monkeypatch, override: str, fragment: str | None
) -> None:
    monkeypatch.chdir(tmp_path)
    rc = main(["check", str(base), "--set", override])
    if fragment is None:
        assert rc == 0, capsys.readouterr().err
        return
    clean_failure(capsys, rc, fragment)


def test_bin_bomb_is_refused_with_an_estimate(base: Path, capsys) -> None:
    rc = main(["check", str(base), *[a for o in BIN_BOMB for a in ("--set", o)]])
    err = clean_failure(capsys, rc, "8.64e+07 time bins")
    assert "GiB" in err and "widen bin" in err


def test_every_bool_key_is_a_real_flag() -> None:
    """The keys allowed to hold true/false are exactly the boolean fields (and the gateway
    kinds' switches, sim/nat)."""
    assert {
        "tcp_timestamps",
        "jitter",
        "forced_reuse",
        "nolocaltimewait",
        "shared_counter",
        "timer_wheel",
        "random_fully",
        "persistent",
        "dynamic",  # gcp-cloudnat
        "endpoint_independent_mapping",  # gcp-cloudnat
        "tcp_reset",  # azure-lb
        "enforce_address_limit",  # aws-natgw, azure-natgw
    } == set(BOOL_KEYS)


# ---- scenario files --------------------------------------------------------------------


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _loop(path: Path) -> Path:
    os.symlink(path.name + ".b", path)
    os.symlink(path.name, str(path) + ".b")
    return path


def _dangling(path: Path) -> Path:
    os.symlink(path.parent / "nowhere.toml", path)
    return path


def _sparse(path: Path, size: int) -> Path:
    with open(path, "wb") as handle:
        handle.truncate(size)
    return path


SCENARIO_FILES = {
    "fifo": (lambda p: _fifo(p), "not a regular file"),
    "symlink-loop": (lambda p: _loop(p), "a symbolic link loop"),
    "dangling-symlink": (lambda p: _dangling(p), "a symbolic link to a missing file"),
    "directory": (lambda p: (p.mkdir(), p)[1], "is a directory"),
    "oversize": (lambda p: _sparse(p, 5 << 20), "too large"),
    "dev-zero": (lambda p: Path("/dev/zero"), "not a regular file"),
    "missing": (lambda p: p, "No such file"),
}


@pytest.mark.parametrize("case", sorted(SCENARIO_FILES))
def test_scenario_file_kinds(tmp_path: Path, capsys, monkeypatch, case: str) -> None:
    monkeypatch.chdir(tmp_path)
    make, fragment = SCENARIO_FILES[case]
    path = make(tmp_path / "s.toml")
    rc = main(["run", str(path), "--out", str(tmp_path / "out"), "--quiet"])
    clean_failure(capsys, rc, fragment)
    assert not (tmp_path / "out").exists()


# ---- data files ------------------------------------------------------------------------

SECRET = "root:x:0:0:SECRET-CONTENT:/root:/bin/bash\n"


def _trace_scenario(base: Path, file: str, kind: str = "trace") -> list[str]:
    if kind == "trace":
        return [
            "--set",
            f'load[0]={{arrival={{kind="trace", file="{file}"}}, '
            'lifetime={kind="fixed", value=1}}',
        ]
    return ["--set", f'load[0].lifetime={{kind="empirical", file="{file}"}}']


DATA_FILES = {
    # name: (maker(folder) -> file path text, kind, fragment, forbidden text)
    "passwd-outside-trace": (
        lambda d: _secret(d.parent) and "../secret",
        "trace",
        "header",
        "SECRET",
    ),
    "passwd-outside-samples": (
        lambda d: _secret(d.parent) and "../secret",
        "samples",
        "not a number",
        "SECRET",
    ),
    "passwd-absolute": (lambda d: str(_secret(d.parent)), "trace", "header", "SECRET"),
    "fifo-trace": (lambda d: str(_fifo(d / "f.csv")), "trace", "not a regular file", None),
    "fifo-samples": (lambda d: str(_fifo(d / "f.csv")), "samples", "not a regular file", None),
    "dev-zero": (lambda d: "/dev/zero", "trace", "not a regular file", None),
    "dev-urandom": (lambda d: "/dev/urandom", "samples", "not a regular file", None),
    "symlink-loop": (lambda d: str(_loop(d / "l.csv")), "trace", "symbolic link loop", None),
    "dangling": (lambda d: str(_dangling(d / "g.csv")), "samples", "No such file", None),
    "directory": (lambda d: (d / "dir.csv").mkdir() or "dir.csv", "trace", "is a directory", None),
    "oversize": (
        lambda d: str(_sparse(d / "big.csv", (512 << 20) + 1)),
        "trace",
        "too large",
        None,
    ),
    "binary": (
        lambda d: _write(d / "b.csv", b"\xff\xfe\x00garbage"),
        "trace",
        "not a text file",
        None,
    ),
    "nul": (
        lambda d: _write(d / "n.csv", b"time_s,destination\n1,\x00api\n"),
        "trace",
        "NUL",
        None,
    ),
    "header-escape": (
        lambda d: _write(d / "h.csv", b"time_s,\x1b[2Jdest\n1,api\n"),
        "trace",
        "header",
        "\x1b",
    ),
    "long-garbage-cell": (
        lambda d: _write(d / "c.csv", b"time_s,destination\n" + b"Q/" * 100 + b",api\n"),
        "trace",
        "time_s: not a number",
        "Q/Q/",
    ),
    "numberish-cell-echoed": (
        lambda d: _write(d / "e.csv", b"time_s,destination\n1.5.2,api\n"),
        "trace",
        "'1.5.2'",
        None,
    ),
    "samples-negative": (
        lambda d: _write(d / "s.csv", b"-3\n"),
        "samples",
        "finite and >= 0",
        None,
    ),
}


def _secret(folder: Path) -> Path:
    path = folder / "secret"
    path.write_text(SECRET * 3)
    return path


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return path.name


@pytest.mark.parametrize("case", sorted(DATA_FILES))
def test_data_files(base: Path, tmp_path: Path, capsys, monkeypatch, case: str) -> None:
    monkeypatch.chdir(tmp_path)
    make, kind, fragment, forbidden = DATA_FILES[case]
    file = make(base.parent)
    rc = main(["check", str(base), *_trace_scenario(base, file, kind)])
    err = clean_failure(capsys, rc, fragment)
    if forbidden:
        assert forbidden not in err, "the file's content was echoed"


def test_data_file_relative_to_the_scenario_not_the_working_directory(
    base: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    (base.parent / "t.csv").write_text("time_s,destination\n0.5,api\n1.0,api\n")
    monkeypatch.chdir(tmp_path)  # not the scenario's folder
    assert main(["check", str(base), *_trace_scenario(base, "t.csv")]) == 0, capsys.readouterr()


# ---- command-line arguments ----------------------------------------------------------------

CLI_CASES = [
    (["run", "{base}", "--seed", "-1"], "--seed: must be within 0..2^63-1"),
    (["run", "{base}", "--seed", "abc"], "--seed: expected an integer"),
    (["run", "{base}", "--seed", str(2**63)], "--seed: must be within"),
    (["sweep", "{base}", "--seed", "-5"], "--seed: must be within"),
    (["sweep", "{base}", "--workers", "0"], "--workers: must be >= 1"),
    (["sweep", "{base}", "--replications", "0"], "replications: must be an integer"),
    (["port", "{tmp}", "0"], "port: must be within 1..65535"),
    (["port", "{tmp}", "70000"], "port: must be within 1..65535"),
    (["port", "{tmp}", "-1"], "port: must be within 1..65535"),
    (["capacity", "--rate", "nan"], "--rate: must be a finite number"),
    (["capacity", "--rate", "inf"], "--rate: must be a finite number"),
    (["capacity", "--rate", "-1"], "--rate: must be a finite number"),
    (["capacity", "--rate", "1", "--range", "5-1"], "--range: low must be <= high (got 5-1)"),
    (["capacity", "--rate", "1", "--range", "0-10"], "--range: ports must be within 1..65535"),
    (["capacity", "--rate", "1", "--time-wait", "abc"], "--time-wait"),
    (["capacity", "--rate", "1", "--target-blocking", "1"], "--target-blocking"),
    (["run", "{base}", "--out", "/dev/null"], "exists and is not a directory"),
    (["run", "{base}", "--out", "{file}/sub"], "exists and is not a directory"),
    (["run", "{base}", "--out", "{loop}"], "a symbolic link loop"),
    (["run", "{base}", "--out", "{dangling}"], "a symbolic link to nowhere"),
    (["run", "{base}", "--out", "{foreign}"], "holds files portsim did not write"),
    (["sweep", "{base}", "--out", "{foreign}"], "holds files portsim did not write"),
    (
        ["run", "{base}", "--events", "--set", "duration=1e8", "--set", "max_events=1e15"],
        "the event log would need about",
    ),
    (["run", "{base}", "--out", "."], "holds the current directory"),
    (["run", "{base}", "--out", "/"], "the root cannot be a result folder"),
    (["plot", "{result}", "--out", "/dev/null"], "not a regular file"),
    (["plot", "{result}", "--out", "{tmp}"], "is a directory"),
    (["plot", "{result}", "--out", "{tmp}/missing/x.png"], "does not exist"),
    (["port", "{result}", "40000", "--out", "/dev/null"], "not a regular file"),
]


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small run saved with --events (shared read-only by the crafted-folder cases)."""
    folder = tmp_path_factory.mktemp("saved")
    scenario = folder / "tiny.toml"
    scenario.write_text(BASE)
    assert main(["run", str(scenario), "--out", str(folder / "run"), "--events", "--quiet"]) == 0
    return folder / "run"


@pytest.mark.parametrize(
    ("argv", "fragment"), CLI_CASES, ids=[f"c{i}" for i in range(len(CLI_CASES))]
)
def test_cli_arguments(
    base: Path, tmp_path: Path, saved_run: Path, capsys, monkeypatch, argv: list[str], fragment: str
) -> None:
    monkeypatch.chdir(tmp_path)
    afile = tmp_path / "afile"
    afile.write_text("x")
    foreign = tmp_path / "home"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("keep me")
    result = tmp_path / "result"
    shutil.copytree(saved_run, result)
    names = {
        "base": str(base),
        "tmp": str(tmp_path),
        "file": str(afile),
        "loop": str(_loop(tmp_path / "loop")),
        "dangling": str(_dangling(tmp_path / "dangle")),
        "foreign": str(foreign),
        "result": str(result),
    }
    before = sorted(p.name for p in tmp_path.iterdir())
    rc = main([a.format(**names) for a in argv])
    clean_failure(capsys, rc, fragment)
    assert (foreign / "precious.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == before, "something was written"
    assert Path("/dev/null").is_char_device()


def test_capacity_extremes_are_clamped_and_explained(capsys) -> None:
    assert main(["capacity", "--rate", "1e308", "--json"]) == 0
    text = capsys.readouterr().out
    assert "NaN" not in text and "Infinity" not in text
    data = json.loads(text)
    assert data["blocking"] == 1.0 and data["pressure"] == 1.0
    assert data["mean_in_use"] == 28232 and data["offered_load"] == "inf"
    assert main(["capacity", "--rate", "1e6"]) == 0
    out = capsys.readouterr().out
    assert "nan" not in out
    assert "expected pressure: 100.0 %" in out
    assert "no more than 28,232 can be in use" in out


def test_capacity_pressure_never_above_one_and_never_zero_when_refusing() -> None:
    from sim.analytic import capacity

    # hand arithmetic: the pool of 28,232 ports; at rates far beyond the pool every port
    # is in use (pressure -> 1), and the refusal -> 1 - N/A
    for rate in (463.0, 500.0, 1e3, 1e5, 1e9, 1e300):
        cap = capacity(28232, rate, 1.0, 60.0)
        assert 0 < cap.pressure <= 1.0
        assert cap.mean_in_use <= 28232
        if cap.blocking > 0.5:
            a = rate * 61
            assert cap.blocking == pytest.approx(1 - 28232 / a, abs=1e-3)
            assert cap.pressure > 0.99


def test_workers_are_capped_at_the_number_of_runs(base: Path, tmp_path: Path, capsys) -> None:
    rc = main(
        ["sweep", str(base), "--grid", "load[0].arrival.rate=5,10", "--replications", "1",
         "--workers", "100", "--out", str(tmp_path / "sw"), "--quiet", "--no-plots"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0
    assert "--workers 100: 2 run(s), so 2 worker(s)" in out


def test_stdout_to_dev_full_is_one_line(base: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full")
    with open("/dev/full", "w") as full:
        proc = subprocess.run(
            [sys.executable, "-m", "sim", "run", str(base), "--out", str(tmp_path / "o")],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr
    assert "cannot write to standard output" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


# ---- crafted result folders ------------------------------------------------------------------


def _summary(folder: Path, value: object) -> None:
    (folder / "summary.json").write_text(value if isinstance(value, str) else json.dumps(value))


def _npz(folder: Path, **arrays: object) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    (folder / "raster.npz").write_bytes(buffer.getvalue())


def _pickled_npz(folder: Path) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, times_s=np.array([object()], dtype=object), occupancy=np.zeros((1, 1)))
    (folder / "raster.npz").write_bytes(buffer.getvalue())


CRAFTED = {
    # name: (damage(folder), command ('plot' or 'port'), fragment)
    "events-without-summary": (lambda f: (f / "summary.json").unlink(), "port", "no summary.json"),
    "summary-list": (lambda f: _summary(f, [1, 2, 3]), "plot", "expected a JSON object"),
    "summary-string-number": (
        lambda f: _summary(f, {"scenario": "x", "duration_s": "long"}),
        "plot",
        "duration_s: expected",
    ),
    "summary-bool-number": (
        lambda f: _summary(f, {"pressure": {"range_ports": True}}),
        "plot",
        "range_ports: expected",
    ),
    "summary-nan": (
        lambda f: _summary(f, '{"pressure": {"peak": NaN}}'),
        "plot",
        "not a finite number",
    ),
    "summary-deep": (lambda f: _summary(f, "[" * 5000 + "]" * 5000), "plot", "nested too deeply"),
    "summary-deep-objects": (
        lambda f: _summary(f, '{"a":' * 100 + "1" + "}" * 100),
        "plot",
        "nested too deeply",
    ),
    "summary-not-json": (lambda f: _summary(f, "{nope"), "plot", "not valid JSON"),
    "summary-binary": (
        lambda f: (f / "summary.json").write_bytes(b"\xff\xfe\x00"),
        "plot",
        "not a text file",
    ),
    "summary-fifo": (
        lambda f: ((f / "summary.json").unlink(), os.mkfifo(f / "summary.json")),
        "plot",
        "not a regular file",
    ),
    "summary-directory": (
        lambda f: ((f / "summary.json").unlink(), (f / "summary.json").mkdir()),
        "plot",
        "is a directory",
    ),
    "series-other-columns": (
        lambda f: (f / "series.csv").write_text("a,b\n1,2\n"),
        "plot",
        "missing column(s)",
    ),
    "series-empty": (lambda f: (f / "series.csv").write_text(""), "plot", "empty"),
    "series-non-numeric": (
        lambda f: (f / "series.csv").write_text(
            (f / "series.csv").read_text().replace("\n0", "\nzero", 1)
        ),
        "plot",
        "not a finite number",
    ),
    "series-missing": (lambda f: (f / "series.csv").unlink(), "plot", "no series.csv"),
    "events-empty": (lambda f: (f / "events.csv").write_text(""), "port", "empty"),
    "events-other-columns": (
        lambda f: (f / "events.csv").write_text("x,y\n1,2\n"),
        "port",
        "missing column(s)",
    ),
    "events-non-numeric-port": (
        lambda f: (f / "events.csv").write_text(
            "time_s,host,local_address,event,protocol,local_port,destination,probes,error\n"
            "1.0,client,192.0.2.1,connect,tcp,http,api,1,\n"
        ),
        "port",
        "local_port: not a finite number",
    ),
    "events-port-out-of-range": (
        lambda f: (f / "events.csv").write_text(
            "time_s,host,local_address,event,protocol,local_port,destination,probes,error\n"
            "1.0,client,192.0.2.1,connect,tcp,70000,api,1,\n"
        ),
        "port",
        "expected port numbers 0..65535",
    ),
    "raster-broken-zip": (
        lambda f: (f / "raster.npz").write_bytes(b"PK\x03\x04broken"),
        "plot",
        "not a readable npz",
    ),
    "raster-pickle": (lambda f: _pickled_npz(f), "plot", "raster.npz"),
    "raster-missing-arrays": (lambda f: _npz(f, times_s=np.arange(3.0)), "plot", "missing array"),
    "raster-bad-shape": (
        lambda f: _npz(
            f, times_s=np.arange(3.0), occupancy=np.zeros((2, 5), np.uint8), lo=1, hi=2, label="x"
        ),
        "plot",
        "occupancy: expected",
    ),
    "histograms-wrong": (
        lambda f: (f / "histograms.json").write_text('{"probes_all": [[1, 2, 3]]}'),
        "plot",
        "expected [[value, count], ...]",
    ),
    "not-a-folder": (lambda f: None, "plot-file", "not a result directory"),
}


@pytest.mark.parametrize("case", sorted(CRAFTED))
def test_crafted_result_folders(
    saved_run: Path, tmp_path: Path, capsys, monkeypatch, case: str
) -> None:
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "r"
    shutil.copytree(saved_run, folder)
    damage, command, fragment = CRAFTED[case]
    damage(folder)
    if command == "plot":
        argv = ["plot", str(folder), "--out", str(tmp_path / "p.png")]
    elif command == "plot-file":
        argv = ["plot", str(folder / "series.csv")]
    else:
        argv = ["port", str(folder), "40000", "--out", str(tmp_path / "p.png")]
    rc = main(argv)
    clean_failure(capsys, rc, fragment)
    assert not (tmp_path / "p.png").exists()


def test_mathtext_in_names_is_drawn_literally(saved_run: Path, tmp_path: Path, capsys) -> None:
    folder = tmp_path / "r"
    shutil.copytree(saved_run, folder)
    summary = json.loads((folder / "summary.json").read_text())
    summary["scenario"] = "$x^$"
    summary["pressure"]["worst_destination"] = r"$\frac{$"
    (folder / "summary.json").write_text(json.dumps(summary))
    assert main(["plot", str(folder), "--out", str(tmp_path / "p.png")]) == 0, capsys.readouterr()
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_raster_is_loaded_without_pickle(saved_run: Path, tmp_path: Path) -> None:
    from sim.result_reader import ResultFolderError, read_raster

    folder = tmp_path / "r"
    folder.mkdir()
    _pickled_npz(folder)
    with pytest.raises(ResultFolderError, match="not a readable npz"):
        read_raster(folder)


# ---- sweep files ---------------------------------------------------------------------------

SWEEP_FILES = {
    "name-dotdot": ('name = ".."\n', "name: must not be '.' or '..'"),
    "name-absolute": ('name = "/tmp/evil"\n', "name: only letters"),
    "name-traversal": ('name = "a/../../b"\n', "name: only letters"),
    "name-escape": ('name = "a\\u001b[2Jb"\n', "name: only letters"),
    "name-long": (f'name = "{"s" * 300}"\n', "name: at most 100 characters"),
    "name-number": ("name = 5\n", "name: expected a text name"),
    "grid-date": ('[grid]\n"duration" = [1979-05-27, 1979-05-28]\n', "TOML dates and times"),
    "grid-time": ('[grid]\n"duration" = [07:32:00]\n', "TOML dates and times"),
    "grid-datetime-nested": (
        '[grid]\n"hosts[0].port_range" = [[1979-05-27T07:32:00Z, 2]]\n',
        "TOML dates and times",
    ),
    "grid-huge": (
        "[grid]\n"
        + "".join(
            f'"{key}" = {list(range(1, 101))}\n'
            for key in ("load[0].arrival.rate", "hosts[0].randomcps", "hosts[0].randomtime")
        ),
        "over the limit of 100,000",
    ),
    "replications-bool": ("replications = true\n", "replications: must be an integer"),
    "seed-bool": ("seed = true\n", "seed: must be an integer"),
    "grid-not-list": ('[grid]\n"load[0].arrival.rate" = 5\n', "expected a non-empty list"),
}


@pytest.mark.parametrize("case", sorted(SWEEP_FILES))
def test_sweep_files(base: Path, tmp_path: Path, capsys, monkeypatch, case: str) -> None:
    monkeypatch.chdir(tmp_path)
    text, fragment = SWEEP_FILES[case]
    sweep = base.parent / "s.toml"
    sweep.write_text(f'base = "tiny.toml"\n{text}')
    rc = main(["sweep", str(sweep), "--quiet", "--no-plots"])
    clean_failure(capsys, rc, fragment)
    assert not (tmp_path / "results").exists()


def test_default_sweep_names_are_safe_names(tmp_path: Path) -> None:
    """From an odd base file name, and from a base named with all 100 characters."""
    from sim.safe_paths import MAX_NAME, name_problem
    from sim.sweeps import load_sweep

    (tmp_path / "my base (v2).toml").write_text(BASE)
    sweep = tmp_path / "s.toml"
    sweep.write_text('base = "my base (v2).toml"\n')
    assert load_sweep(sweep).name == "my-base--v2--sweep"
    long = tmp_path / "long.toml"
    long.write_text(BASE.replace('"tiny"', '"' + "n" * MAX_NAME + '"', 1))
    spec = load_sweep(long)  # a scenario file as the sweep: named after the scenario
    assert name_problem(spec.name) is None
    assert spec.name == "n" * (MAX_NAME - 6) + "-sweep"


# ---- runs.csv states ---------------------------------------------------------------------


GRID = ["--grid", "load[0].arrival.rate=5,10", "--replications", "2", "--workers", "1"]


@pytest.fixture(scope="module")
def sweep_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 4-run sweep of the base scenario (copied by each runs.csv case)."""
    folder = tmp_path_factory.mktemp("sweep")
    scenario = folder / "tiny.toml"
    scenario.write_text(BASE)
    out = folder / "sw"
    assert main(["sweep", str(scenario), *GRID, "--out", str(out), "--quiet", "--no-plots"]) == 0
    return out


@pytest.fixture
def finished_sweep(base: Path, sweep_template: Path, tmp_path: Path) -> Path:
    out = tmp_path / "sw"
    shutil.copytree(sweep_template, out)
    return out


def _resume(base: Path, out: Path, capsys) -> tuple[int, str, str]:
    rc = main(["sweep", str(base), *GRID, "--out", str(out), "--quiet", "--no-plots"])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def _lines(out: Path) -> list[str]:
    return (out / "runs.csv").read_text().splitlines()


RUNS_STATES = {
    # name: (damage(lines) -> text, runs done on resume)
    "intact": (lambda ls: "\n".join(ls) + "\n", 4),
    "last-row-cut": (lambda ls: "\n".join(ls)[: -len(ls[-1]) // 2], 3),
    "row-cut-mid": (lambda ls: "\n".join([*ls[:2], ls[2][:30], *ls[3:]]) + "\n", 3),
    "missing-column": (
        lambda ls: "\n".join(",".join(line.split(",")[:-2] + line.split(",")[-1:]) for line in ls),
        0,
    ),
    "non-numeric-metric": (
        lambda ls: "\n".join([ls[0], ls[1].replace(",0.0,", ",zero,", 1), *ls[2:]]) + "\n",
        3,
    ),
    "error-row": (lambda ls: "\n".join([*ls[:-1], ls[-1].rstrip(",") + ",Boom"]) + "\n", 3),
    "bad-key": (lambda ls: "\n".join([ls[0], "zz" + ls[1][2:], *ls[2:]]) + "\n", 3),
    "empty": (lambda ls: "", 0),
    "binary": (lambda ls: "\xff\x00garbage", 0),
    "header-only": (lambda ls: ls[0] + "\n", 0),
}


@pytest.mark.parametrize("case", sorted(RUNS_STATES))
def test_runs_csv_states(base: Path, finished_sweep: Path, capsys, case: str) -> None:
    damage, done = RUNS_STATES[case]
    text = damage(_lines(finished_sweep))
    (finished_sweep / "runs.csv").write_bytes(text.encode("utf-8", "surrogateescape"))
    rc, out, err = _resume(base, finished_sweep, capsys)
    assert rc == 0, err
    assert "Traceback" not in err
    if done:
        assert f"{done} of 4 runs already done, running {4 - done}" in out
    else:
        assert "already done" not in out
    lines = _lines(finished_sweep)
    assert len(lines) == 5 and all(line.count(",") == lines[0].count(",") for line in lines)


def test_runs_csv_directory_is_refused(base: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "sw"
    (out / "runs.csv").mkdir(parents=True)
    rc, _, _ = _resume(base, out, capsys)
    assert rc == 2


def test_runs_csv_fifo_is_refused(base: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "sw"
    out.mkdir()
    os.mkfifo(out / "runs.csv")
    rc = main(["sweep", str(base), "--out", str(out), "--quiet", "--no-plots"])
    clean_failure(capsys, rc, "not a regular file")


def test_corpus_size() -> None:
    """The issue asks for at least 100 hostile cases across the categories."""
    counts = {
        "scenario values": len(SCENARIO_VALUES) + 1,
        "scenario files": len(SCENARIO_FILES),
        "data files": len(DATA_FILES) + 1,
        "CLI arguments": len(CLI_CASES) + 3,
        "crafted result folders": len(CRAFTED) + 2,
        "sweep files": len(SWEEP_FILES) + 1,
        "runs.csv states": len(RUNS_STATES) + 2,
    }
    assert sum(counts.values()) >= 100, counts
    assert all(n >= 5 for n in counts.values()), counts


def test_zipfile_is_what_numpy_raises_for_a_broken_npz() -> None:
    """The reader catches BadZipFile: numpy still raises it for a damaged archive."""
    with pytest.raises((zipfile.BadZipFile, ValueError, OSError, EOFError)):
        np.load(io.BytesIO(b"PK\x03\x04broken"), allow_pickle=False)


# ---- numbers that cannot be ------------------------------------------------------------------


def _no_constants(name: str) -> None:
    raise AssertionError(f"non-standard JSON constant {name}")


def test_json_outputs_are_standard_json(tmp_path: Path, capsys) -> None:
    """The flagship scenario: every JSON file parses without NaN/Infinity, and the loss
    model's pressure is a fraction (it was 1.0027 from A (1 - B) cancelling)."""
    flagship = Path(__file__).resolve().parent.parent / "scenarios"
    out = tmp_path / "run"
    assert main(["run", str(flagship / "linux-one-backend-500rps.toml"), "--out", str(out),
                 "--quiet", "--no-plots"]) == 0  # fmt: skip
    for name in ("summary.json", "scenario.json", "histograms.json"):
        json.loads((out / name).read_text(), parse_constant=_no_constants)
    summary = json.loads((out / "summary.json").read_text())
    for pool in summary["analytic"].values():
        assert 0 < pool["pressure"] <= 1
        assert pool["mean_in_use"] <= pool["ports"]


def test_non_finite_numbers_become_null_or_inf_text() -> None:
    from sim.result import strict_json

    text = strict_json({"a": float("nan"), "b": [float("inf"), -float("inf")], "c": 1.5})
    assert json.loads(text, parse_constant=_no_constants) == {
        "a": None,
        "b": ["inf", "-inf"],
        "c": 1.5,
    }
