"""Every listed snapshot format reads its fixtures; malformed files give one-line errors.

The fixtures in ``tests/snapshots/`` are sample texts in each tool's documented output
format (see ``tests/snapshots/README.md``); the Linux formats are also checked on real
output in ``tests/kernel/test_inspect_kernel.py``.  Expected counts are counted by hand
from the fixture texts.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.cli import main
from sim.snapshot import SnapshotError, parse_text, read_snapshot
from sim.snapshot.addresses import colon_endpoint, dotted_endpoint, proc_endpoint
from sim.snapshot.report import build_report, host_view

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "snapshots"
CORPUS = HERE / "malformed-snapshots"


def _read(name: str):
    return read_snapshot(str(FIXTURES / name))


def _pools(names: list[str], **view) -> dict[str, tuple[int, int, int]]:
    snaps = [_read(n) for n in names]
    report = build_report(snaps, host_view(snaps, view.get("os"), view.get("rng"), None))
    return {p["pool"]: (p["established"], p["time_wait"], p["other"]) for p in report["pools"]}


@pytest.mark.parametrize(
    ("name", "fmt", "rows", "unparsed"),
    [
        ("linux-ss-tan-odd.txt", "ss", 13, 1),
        ("linux-proc-net-tcp6-scoped.txt", "proc", 4, 0),
        ("macos-netstat-an-p-tcp.txt", "netstat-bsd", 10, 0),
        ("windows-netstat-ano.txt", "netstat-windows", 12, 0),
        ("windows-get-nettcpconnection-table.txt", "get-nettcpconnection", 7, 0),
        ("windows-get-nettcpconnection.csv", "get-nettcpconnection-csv", 5, 0),
        ("macos-lsof-i-n-P.txt", "lsof", 9, 0),
        ("conntrack-L.txt", "conntrack", 5, 0),
        ("linux-ss-bad-ports.txt", "ss", 0, 2),
    ],
)
def test_fixture_format_detected_and_every_line_accounted_for(name, fmt, rows, unparsed):
    snap = _read(name)
    assert (snap.format, len(snap.rows), snap.unparsed) == (fmt, rows, unparsed)


def test_linux_ss_wildcards_zones_mapped_and_odd_whitespace():
    snap = _read("linux-ss-tan-odd.txt")
    locals_ = {r.local for r in snap.rows}
    assert "127.0.0.53:53" in locals_  # 127.0.0.53%lo: the device binding dropped
    assert "*:22" in locals_ and "*:40500" in locals_  # 0.0.0.0 and * are wildcards
    assert "[fe80::1%eth0]:22" in locals_  # ss's [addr]%dev:port
    assert "10.0.0.5:41012" in locals_  # ::ffff:10.0.0.5 is the IPv4 address
    assert snap.examples == [(15, "this line is not from ss")]
    pools = _pools(["linux-ss-tan-odd.txt", "linux-sysctl-a-excerpt.txt"])
    assert pools == {
        "10.0.0.5 -> 10.0.0.10:443": (3, 3, 1),  # 41000, 41002, 41016; 3 TW; FIN-WAIT-2
        "10.0.0.5 -> 10.0.0.11:5432": (1, 0, 0),
        "2001:db8::5 -> [2001:db8::10]:443": (1, 0, 0),
    }


def test_sysctl_range_and_reserved_ports_shape_the_pressure():
    snaps = [_read("linux-ss-tan-odd.txt"), _read("linux-sysctl-a-excerpt.txt")]
    report = build_report(snaps, host_view(snaps, None, None, None))
    assert report["host"]["port_range"] == [40000, 41999]
    assert report["reserved_in_range"] == 11  # 40100-40109 and 40200
    worst = report["pools"][0]
    # 7 own ports + the listener on 40500 + 11 reserved, of 2,000
    assert worst["pressure"] == pytest.approx(19 / 2000)
    assert [x["port"] for x in report["listeners_in_range"]] == [40500]


def test_headroom_from_littles_law_by_hand():
    """3 TIME_WAIT in 60 s: 0.05 connections/s; 7 ports held: 140 s per connection."""
    snaps = [_read("linux-ss-tan-odd.txt"), _read("linux-sysctl-a-excerpt.txt")]
    report = build_report(snaps, host_view(snaps, None, None, None))
    h = report["headroom"][0]
    assert h["rate_now"] == pytest.approx(3 / 60)
    assert h["holding_s"] == pytest.approx(60 * 7 / 3)
    assert h["usable_ports"] == 2000 - 12  # the listener and the reserved ports
    assert h["rate_when_full"] == pytest.approx(1988 / 140)
    assert h["erlang_b"]["offered_load"] == pytest.approx(7.0)


def test_proc_tcp6_scoped_mapped_and_time_wait_left():
    rows = _read("linux-proc-net-tcp6-scoped.txt").rows
    assert rows[1].local == "[2001:db8::5]:41000" and rows[1].remote == "[2001:db8::10]:443"
    assert rows[2].state == "TIME_WAIT" and rows[2].time_wait_left_s == 30.0  # 0xBB8 / 100
    assert rows[3].local == "10.0.0.5:41004"  # ::ffff:10.0.0.5
    assert rows[0].local == "*:22"


def test_macos_netstat_pools_under_port_scope():
    """macOS keeps one port space for every destination (its preset's scope)."""
    pools = _pools(["macos-netstat-an-p-tcp.txt", "macos-sysctl-portrange.txt"])
    # in 49152-65535: 52344, 61001, 49321, 50110; 52340, 52338; SYN_SENT 52350, LISTEN 55000
    assert pools == {"every destination": (4, 2, 2)}
    rows = _read("macos-netstat-an-p-tcp.txt").rows
    assert rows[4].local == "[fe80::1%lo0]:49321"


def test_windows_listings_agree():
    """The same connections listed three ways give the same pool."""
    # ::1 50010, 50001; 2 TW; Bound 50005 and the listener on 49670 (one port space)
    expected_table = {"every destination": (2, 2, 2)}
    assert _pools(["windows-get-nettcpconnection-table.txt"]) == expected_table
    netstat = _pools(["windows-netstat-ano.txt", "windows-netsh-dynamicport.txt"])
    # 50001, 50010, 50011 (fe80); 50002-50003 TW; 50004 CLOSE_WAIT and 49670 listening
    assert netstat == {"every destination": (3, 2, 2)}  # UDP 5353 and 5355 are below
    csv = _pools(["windows-get-nettcpconnection.csv"])
    assert csv == {"every destination": (2, 2, 0)}


def test_lsof_counts_a_connection_once_whatever_its_descriptors():
    pools = _pools(["macos-lsof-i-n-P.txt"], os="macos")
    # 61001, 61002 (two descriptors), 50110, 49321 SYN_SENT; UDP 55123 (5353 is below)
    assert pools == {"every destination": (3, 0, 1), "udp every destination": (1, 0, 0)}
    names = {r.process for r in _read("macos-lsof-i-n-P.txt").rows}
    assert "Google pid 812" in names


def test_conntrack_reads_the_translated_port_and_time_left():
    rows = _read("conntrack-L.txt").rows
    assert rows[1].local == "203.0.113.1:1024" and rows[1].remote == "93.184.216.34:443"
    assert rows[1].time_wait_left_s == 117.0
    assert rows[4].protocol == "udp"
    pools = _pools(["conntrack-L.txt"], rng=(1024, 65535))
    assert pools["203.0.113.1 -> 93.184.216.34:443"] == (1, 2, 0)
    snaps = [_read("conntrack-L.txt")]
    assert host_view(snaps, None, None, None).time_wait_s == 120.0  # conntrack's timeout
    assert host_view(snaps, None, None, 30.0).time_wait_s == 30.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:9000", ("127.0.0.1", 9000)),
        ("[::1]:443", ("::1", 443)),
        (":::22", (None, 22)),
        ("::1:9002", ("::1", 9002)),
        ("*:*", (None, None)),
        ("0.0.0.0:0", (None, 0)),
        ("[fe80::1%eth0]:22", ("fe80::1%eth0", 22)),
        ("[fe80::1]%eth0:22", ("fe80::1%eth0", 22)),
        ("[::ffff:10.0.0.5]:80", ("10.0.0.5", 80)),
    ],
)
def test_colon_endpoints(text, expected):
    assert colon_endpoint(text) == expected


def test_dotted_and_proc_endpoints():
    assert dotted_endpoint("192.168.1.23.52344") == ("192.168.1.23", 52344)
    assert dotted_endpoint("*.*") == (None, None)
    assert dotted_endpoint("fe80::1%lo0.22") == ("fe80::1%lo0", 22)
    assert proc_endpoint("0100007F:2328") == ("127.0.0.1", 9000)


def test_forced_format_and_udp_ss():
    text = "ESTAB 0 0 127.0.0.1:48012 127.0.0.1:53\n"
    assert parse_text(text, "x").rows[0].protocol == "tcp"  # ss -tan is the default
    assert parse_text(text, "x", "ss-udp").rows[0].protocol == "udp"
    with pytest.raises(SnapshotError, match=r"^x: not lsof -i -n -P output \(line 1: "):
        parse_text(text, "x", "lsof")


def test_utf16_powershell_redirection_is_read(tmp_path):
    path = tmp_path / "conns.txt"
    text = (FIXTURES / "windows-get-nettcpconnection-table.txt").read_text()
    path.write_bytes(text.encode("utf-16"))  # Windows PowerShell 5.1's '>'
    assert len(read_snapshot(str(path)).rows) == 7


MALFORMED = {
    "empty.txt": "empty: expected the output of ss, netstat, lsof",
    "whitespace-only.txt": "empty: expected the output of ss, netstat, lsof",
    "gzip.txt": "not a text file (contains NUL bytes)",
    "nul-bytes.txt": "not a text file (contains NUL bytes)",
    "latin1.txt": "not a text file (not UTF-8)",
    "scenario.toml": "not a socket listing: no line looks like",
    "json.txt": "not a socket listing: no line looks like",
    "html.txt": "not a socket listing: no line looks like",
    "log-with-one-ss-line.txt": "not a socket listing: only 1 of 6 lines look like ss -tan",
    "sysctl-range-inverted.txt": "port range 60999-32768: expected LOW HIGH",
    "sysctl-range-70000.txt": "port range 1024-70000: expected LOW HIGH",
}


def test_the_corpus_is_covered():
    assert sorted(MALFORMED) == sorted(p.name for p in CORPUS.iterdir())


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_snapshot_one_line_exit_2(name, capsys, tmp_path):
    out = tmp_path / "out"
    assert main(["inspect", str(CORPUS / name), "--out", str(out)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{CORPUS / name}: ")
    assert MALFORMED[name] in lines[0]
    assert "Traceback" not in captured.err and captured.out == ""
    assert not out.exists()  # nothing written


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--range", "9-1"], "--range: expected LOW-HIGH within 1-65535"),
        (["--time-wait", "soon"], "--time-wait: "),
        (["--os", "linuz"], "--os: unknown preset"),
        (["--port", "70000"], "--port: must be within 1..65535"),
    ],
)
def test_bad_options_one_line_exit_2(args, expected, capsys):
    assert main(["inspect", str(FIXTURES / "linux-ss-tan-odd.txt"), *args]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(expected)


def test_port_question(capsys):
    assert main(["inspect", str(FIXTURES / "windows-netstat-ano.txt"), "--port", "50004"]) == 0
    out = capsys.readouterr().out
    assert "tcp CLOSE_WAIT 10.0.0.5:50004 -> 20.42.65.92:443, pid 4567" in out
    assert main(["inspect", str(FIXTURES / "windows-netstat-ano.txt"), "--port", "61234"]) == 0
    out = capsys.readouterr().out
    assert "no socket holds it" in out and "peer's port of: tcp ESTABLISHED 10.0.0.5:3389" in out


def test_littles_law_recovers_a_real_steady_load():
    """linux-ss-tanp-steady.txt is real ss -tanp output after 75 s of a steady load in a
    namespace: 20 connections/s to 127.0.0.1:9000 and 2/s to :9001, each open 2 s, the
    client closing first (the script measured 19.98/s).  The rate estimated from the
    TIME_WAITs is within 3 % and the holding time within 1 s of 2 s + 60 s."""
    snaps = [_read("linux-ss-tanp-steady.txt"), _read("linux-sysctl-range.txt")]
    report = build_report(snaps, host_view(snaps, None, None, None))
    by_pool = {h["pool"]: h for h in report["headroom"]}
    fast, slow = by_pool["127.0.0.1 -> 127.0.0.1:9000"], by_pool["127.0.0.1 -> 127.0.0.1:9001"]
    assert fast["rate_now"] == pytest.approx(20, rel=0.03)
    assert slow["rate_now"] == pytest.approx(2, rel=0.03)
    assert fast["holding_s"] == pytest.approx(62, abs=1)
    assert slow["holding_s"] == pytest.approx(62, abs=1)


def test_readme_example_is_the_real_output(tmp_path, monkeypatch, capsys):
    """The README's example report is what inspect prints for the steady-load capture."""
    (tmp_path / "sockets.txt").write_text((FIXTURES / "linux-ss-tanp-veth.txt").read_text())
    (tmp_path / "range.txt").write_text((FIXTURES / "linux-sysctl-range.txt").read_text())
    monkeypatch.chdir(tmp_path)
    assert main(["inspect", "sockets.txt", "range.txt"]) == 0
    assert main(["inspect", "sockets.txt", "--port", "33504"]) == 0
    readme = (HERE.parent / "README.md").read_text()
    for line in capsys.readouterr().out.splitlines():
        assert line in readme


def test_out_keeps_the_fullest_pools(tmp_path, monkeypatch):
    """Beyond MAX_POOLS pools the emptiest are left out, and counted."""
    from sim.snapshot import to_scenario
    from sim.snapshot.report import unique_sockets

    monkeypatch.setattr(to_scenario, "MAX_POOLS", 1)
    snaps = [_read("linux-ss-tan-odd.txt"), _read("linux-sysctl-a-excerpt.txt")]
    view = host_view(snaps, None, None, None)
    rows, skipped = to_scenario.state_rows(unique_sockets(snaps), view)
    # kept: 10.0.0.10:443 (3 ESTAB, 3 TW, the FIN-WAIT-2 as TIME_WAIT); left: 2 pools of 1
    assert len(rows) == 7 and skipped == 2
    assert {r[1] for r in rows} == {"10.0.0.10:443"}


def test_erlang_b_only_where_it_applies():
    """Loopback peers recycle TIME_WAIT after 1 s (tcp_tw_reuse = 2), and an odd-sized
    Linux range can refuse with a port free: no Erlang B there; the rate still stands."""
    snaps = [_read("linux-ss-tanp-steady.txt"), _read("linux-sysctl-range.txt")]
    loopback = build_report(snaps, host_view(snaps, None, None, None))["headroom"][0]
    assert loopback["erlang_b"] is None and "loopback" in loopback["erlang_b_not_applicable"]
    assert loopback["rate_now"] == pytest.approx(20, rel=0.03)
    snaps = [_read("linux-ss-tan-odd.txt")]
    odd = build_report(snaps, host_view(snaps, None, (41000, 41998), None))["headroom"][0]
    assert odd["erlang_b"] is None and "odd-sized" in odd["erlang_b_not_applicable"]
    even = build_report(snaps, host_view(snaps, None, (41000, 41999), None))["headroom"][0]
    assert even["erlang_b"]["offered_load"] == pytest.approx(7.0)


def test_littles_law_and_erlang_b_on_a_real_remote_backend():
    """linux-ss-tanp-veth.txt: real ss -tanp of a client after 100 s of 20 connections/s
    to 10.99.0.2:443 (open 2 s) and 2/s to :5432 (open 30 s) over a veth pair (19.99/s
    measured).  Rates within 3 % (the kernel's TIME_WAIT ran ~61.6 s, not 60), holding
    times within 1 s of 62 s and 90 s, and Erlang B applies (a remote peer)."""
    snaps = [_read("linux-ss-tanp-veth.txt"), _read("linux-sysctl-range.txt")]
    report = build_report(snaps, host_view(snaps, None, None, None))
    by_pool = {h["pool"]: h for h in report["headroom"]}
    web, db = by_pool["10.99.0.1 -> 10.99.0.2:443"], by_pool["10.99.0.1 -> 10.99.0.2:5432"]
    assert web["rate_now"] == pytest.approx(20, rel=0.03)
    assert db["rate_now"] == pytest.approx(2, rel=0.03)
    assert web["holding_s"] == pytest.approx(62, abs=1)
    assert db["holding_s"] == pytest.approx(90, abs=1)
    # Erlang B on 28,232 ports at ~1,273 erlangs: nothing refused
    assert web["erlang_b"]["blocking_now"] < 1e-12


def test_local_address_scope_has_a_port_space_per_address():
    """FreeBSD 12 (scope local_address, range 10000-65535): one pool per source address;
    the wildcard listener on 55000 is a pool of its own."""
    pools = _pools(["macos-netstat-an-p-tcp.txt"], os="freebsd-12")
    assert pools == {
        "192.168.1.23 -> every destination": (2, 2, 1),  # 52344, 61001; 2 TW; SYN_SENT
        "fe80::1%lo0 -> every destination": (1, 0, 0),
        "2001:db8::5 -> every destination": (1, 0, 0),
        "every destination": (0, 0, 1),
    }


def test_a_misspelt_preset_gets_a_suggestion(tmp_path, capsys):
    snapshot = tmp_path / "ss.txt"
    snapshot.write_text("ESTAB 0 0 192.0.2.1:40000 10.0.0.10:443\n")
    assert main(["inspect", "--os", "linx", str(snapshot)]) == 2
    assert 'did you mean "linux"?' in capsys.readouterr().err
