"""portsim inspect on listings of sockets the test opened itself in a network namespace.

A known set (ESTABLISHED and TIME_WAIT to two IPv4 destinations and one IPv6 one, a
listener inside the range) is opened, the real ``ss``, ``/proc/net/tcp`` (and tcp6),
``netstat`` and ``lsof`` list it, and the report must give exactly those counts per pool.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sim.cli import main
from sim.config.load import load_scenario
from sim.snapshot import read_snapshot
from sim.snapshot.report import build_report, host_view
from tests.kernel.lab import kernel_available, namespace

pytestmark = pytest.mark.kernel

PROBE = Path(__file__).with_name("snapshot_probe.py")
PLAN = [["127.0.0.1", 9000, 5, 7], ["127.0.0.1", 9001, 3, 4], ["::1", 9002, 2, 1]]
LISTEN_IN_RANGE = 40500
EXPECTED = {  # pool -> (ESTABLISHED, TIME_WAIT), from PLAN
    "127.0.0.1 -> 127.0.0.1:9000": (5, 7),
    "127.0.0.1 -> 127.0.0.1:9001": (3, 4),
    "::1 -> [::1]:9002": (2, 1),
}
IPV4 = {k: v for k, v in EXPECTED.items() if "::1" not in k}
UDP_CONNECTED = 6  # and one bound, unconnected UDP socket


@pytest.fixture(scope="module")
def captured(tmp_path_factory) -> dict[str, Path]:
    ok, why = kernel_available()
    if not ok:
        pytest.skip(why)
    out = tmp_path_factory.mktemp("captures")
    command = {
        "range": "40000 40999",
        "listen_in_range": LISTEN_IN_RANGE,
        "plan": PLAN,
        "udp_connected": UDP_CONNECTED,
    }
    with namespace() as ns:
        proc = subprocess.run(
            ["ip", "netns", "exec", ns, sys.executable, "-I", str(PROBE)],
            input=json.dumps(command),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["time_wait"] == 12  # the kernel kept every TIME_WAIT (tcp_rfc1337 = 1)
    paths = {}
    for name, text in result["captures"].items():
        paths[name] = out / name
        paths[name].write_text(text)
    return paths


def _tcp(pools: dict) -> dict:
    return {k: v for k, v in pools.items() if not k.startswith("udp")}


def _pools(paths: list[Path]) -> tuple[dict, dict]:
    snaps = [read_snapshot(str(p)) for p in paths]
    report = build_report(snaps, host_view(snaps, None, None, None))
    pools = {p["pool"]: (p["established"], p["time_wait"]) for p in report["pools"]}
    return pools, report


@pytest.mark.parametrize("listing", ["ss-tan.txt", "ss-tanp.txt", "ss-tano.txt", "ss-tanH.txt"])
def test_ss_gives_the_counts_per_pool(captured, listing) -> None:
    pools, report = _pools([captured[listing], captured["sysctl.txt"]])
    assert _tcp(pools) == EXPECTED
    assert report["host"]["port_range"] == [40000, 40999]
    assert report["listeners_in_range"][0]["port"] == LISTEN_IN_RANGE
    # each pool: its own ports + the listener, out of 1000
    by_pool = {p["pool"]: p for p in report["pools"]}
    assert by_pool["127.0.0.1 -> 127.0.0.1:9000"]["pressure"] == pytest.approx(13 / 1000)
    # outside the range: the servers' accepted connections (10) and three listeners
    assert report["outside_range"]["by_state"] == {"ESTABLISHED": 10, "LISTEN": 3}


def test_proc_net_tcp_gives_the_counts_and_time_wait_left(captured) -> None:
    pools, _ = _pools([captured["proc-net-tcp.txt"], captured["sysctl.txt"]])
    assert pools == IPV4
    pools, _ = _pools(
        [captured["proc-net-tcp.txt"], captured["proc-net-tcp6.txt"], captured["sysctl.txt"]]
    )
    assert pools == EXPECTED
    rows = read_snapshot(str(captured["proc-net-tcp.txt"])).rows
    left = [r.time_wait_left_s for r in rows if r.state == "TIME_WAIT"]
    assert len(left) == 11
    assert all(50 < x <= 60 for x in left)  # TCP_TIMEWAIT_LEN = 60 s, just entered


def test_netstat_and_lsof(captured) -> None:
    if "netstat-tan.txt" in captured:
        for name in ("netstat-tan.txt", "netstat-tanp.txt"):
            pools, _ = _pools([captured[name], captured["sysctl.txt"]])
            assert pools == EXPECTED
    if "lsof.txt" in captured:  # lsof lists descriptors: no TIME_WAIT
        pools, _ = _pools([captured["lsof.txt"], captured["sysctl.txt"]])
        assert _tcp(pools) == {k: (est, 0) for k, (est, _) in EXPECTED.items()}


def test_stdin_port_question_and_scenario_out(captured, tmp_path, capsys, monkeypatch) -> None:
    import io

    text = captured["ss-tanp.txt"].read_text()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    assert main(["inspect", "-", "--range", "40000-40999", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {p["pool"]: (p["established"], p["time_wait"]) for p in report["pools"]} == EXPECTED
    port = next(
        r
        for r in read_snapshot(str(captured["ss-tanp.txt"])).rows
        if r.state == "ESTABLISHED" and r.remote_port == 9001
    ).local_port
    assert main(["inspect", str(captured["ss-tanp.txt"]), "--port", str(port)]) == 0
    said = capsys.readouterr().out
    assert (
        f"ESTABLISHED 127.0.0.1:{port} -> 127.0.0.1:9001" in said
        and "python" in said
        and " pid " in said
    )
    out = tmp_path / "from-ns"
    args = [str(captured["proc-net-tcp.txt"]), str(captured["sysctl.txt"]), "--out", str(out)]
    assert main(["inspect", *args]) == 0
    rows = (out / "initial-state.csv").read_text().splitlines()[1:]
    assert sum(",ESTABLISHED," in r for r in rows) == 8
    assert sum(",TIME_WAIT," in r for r in rows) == 11
    sc = load_scenario(out / "scenario.toml")
    assert sc.hosts[0].port_range == (40000, 40999)
    assert sc.hosts[0].listening_ports == (LISTEN_IN_RANGE,)


@pytest.mark.parametrize(
    "listing", ["ss-uan.txt", "ss-tuan.txt", "netstat-uan.txt", "proc-net-udp.txt"]
)
def test_udp_sockets_are_one_pool(captured, listing) -> None:
    """Connected UDP sockets own their port (one pool for every destination); the bound
    one holds its port too (ss: UNCONN)."""
    if listing not in captured:
        pytest.skip(f"{listing}: the tool is not installed")
    snaps = [read_snapshot(str(captured[listing])), read_snapshot(str(captured["sysctl.txt"]))]
    report = build_report(snaps, host_view(snaps, None, None, None))
    udp = next(p for p in report["pools"] if p["protocol"] == "udp")
    assert (udp["established"], udp["other"]) == (UDP_CONNECTED, 1)
