"""Socket lifecycle on a simulated Linux host: TIME_WAIT, reuse, closes, binds, UDP, errors.

Small ranges and hand-placed arrivals, so each expected number is worked out by hand from
the Linux 6.18 kernel function cited per test (net/ipv4/, see docs/sources.md; T and E
numbers are the observations listed there)."""

from __future__ import annotations

from typing import Any

import pytest

import sim

REMOTE = "10.0.0.1:443"
REMOTE2 = "10.0.0.2:443"
LOOP = "127.0.0.1:9000"


def scenario(
    loads: list[dict[str, Any]], duration: float = 200, bin: float | None = None, **host: Any
) -> sim.Scenario:
    # exact TIME_WAIT ends (no timer-wheel buckets): the expected times here are worked out
    # by hand from the TIME_WAIT length; tests/test_timerwheel.py covers the buckets
    host = {"name": "h", "port_range": [40000, 40009], "timer_wheel": False, **host}
    return sim.parse_scenario(
        {
            "name": "t",
            "duration": duration,
            **({"bin": bin} if bin else {}),
            "hosts": [host],
            "destinations": [
                {"name": "remote", "address": REMOTE},
                {"name": "remote2", "address": REMOTE2},
                {"name": "loop", "address": LOOP},
            ],
            "load": loads,
        }
    )


def burst(dest: str, count: int, at: float, life: Any = "1s", **kw: Any) -> dict[str, Any]:
    return {
        "destination": dest,
        "arrival": {"kind": "burst", "count": count, "at": at},
        "lifetime": {"kind": "fixed", "value": life},
        **kw,
    }


def outcomes(result: sim.Result, event: str = "connect") -> list[tuple[float, str, Any]]:
    ev = result.events
    rows = ev[ev["event"].isin(["connect", "fail"])]
    return [
        (float(t), d, int(p) if e == event else err)
        for t, d, e, p, err in zip(
            rows.time_s, rows.destination, rows.event, rows.local_port, rows.error, strict=True
        )
    ]


def test_time_wait_blocks_the_same_destination_not_another():
    """`tcp_time_wait`, T1: 10 client closes fill a 10-port range with TIME_WAIT for one
    destination; an 11th connect there fails, a connect to another destination succeeds;
    after 60 s the ports are free again."""
    sc = scenario(
        [
            burst("remote", 10, 0),
            burst("remote", 1, 5),
            burst("remote2", 1, 5),
            burst("remote", 1, 61.5),
        ],
        tcp_tw_reuse=0,
    )
    r = sim.run(sc, events=True)
    out = outcomes(r)
    assert all(isinstance(p, int) for _, _, p in out[:10])
    at5 = {d: p for t, d, p in out if t == 5}
    assert at5[REMOTE] == "EADDRNOTAVAIL"
    assert isinstance(at5[REMOTE2], int)
    assert isinstance(out[-1][2], int) and out[-1][0] == 61.5
    ev = r.events
    ends = ev[(ev.event == "time_wait_end") & (ev.destination == REMOTE)].time_s.tolist()
    assert ends[:10] == [61.0] * 10  # closed at 1 s, + 60 s


def test_server_close_and_reset_leave_no_client_time_wait():
    """`tcp_time_wait` T8: only the active closer holds TIME_WAIT; RST leaves none."""
    for close in ("server", "reset"):
        sc = scenario(
            [burst("remote", 10, 0, close=close), burst("remote", 10, 2, close=close)],
            tcp_tw_reuse=0,
        )
        r = sim.run(sc, events=True)
        assert r.summary["connections"]["failed"] == 0
        assert (r.events.event == "time_wait_end").sum() == 0


def test_time_wait_length_is_configurable():
    sc = scenario([burst("remote", 1, 0)], time_wait="2m", tcp_tw_reuse=0)
    ev = sim.run(sc, events=True).events
    assert ev[ev.event == "time_wait_end"].time_s.tolist() == [121.0]


def test_tw_reuse_2_on_loopback_after_the_delay_not_before():
    """`tcp_twsk_unique`, T2/T3: with tcp_tw_reuse=2 a loopback TIME_WAIT is taken over once older
    than tcp_tw_reuse_delay (1000 ms: strictly after, at ms resolution); remote is not."""
    loads = [
        burst("loop", 10, 0, "0s"),
        burst("loop", 1, 0.9),
        burst("loop", 1, 1.0005),
        burst("loop", 1, 1.002),
        burst("remote", 10, 0, "0s"),
        burst("remote", 1, 30),
    ]
    r = sim.run(scenario(loads, tcp_tw_reuse=2), events=True)
    out = {(t, d): p for t, d, p in outcomes(r)}
    assert out[(0.9, LOOP)] == "EADDRNOTAVAIL"
    assert out[(1.0005, LOOP)] == "EADDRNOTAVAIL"
    assert isinstance(out[(1.002, LOOP)], int)
    assert out[(30, REMOTE)] == "EADDRNOTAVAIL"
    assert (r.events.event == "time_wait_reused").sum() == 1
    assert r.summary["hosts"][0]["time_wait_recycled"] == 1


def test_tw_reuse_delay_and_1_apply_to_remote_and_timestamps_are_required():
    loads = [burst("remote", 10, 0, "0s"), burst("remote", 1, 0.15)]
    r = sim.run(scenario(loads, tcp_tw_reuse=1, tcp_tw_reuse_delay="100ms"), events=True)
    assert isinstance(outcomes(r)[-1][2], int)
    r = sim.run(
        scenario(loads, tcp_tw_reuse=1, tcp_tw_reuse_delay="100ms", tcp_timestamps=False),
        events=True,
    )
    assert outcomes(r)[-1][2] == "EADDRNOTAVAIL"


def test_older_kernels_reuse_on_whole_second_boundaries():
    """`tcp_twsk_unique`: before 6.14 the rule is in whole seconds of a clock with its own phase:
    'now_s > stamp_s' (4.18-6.13) allows reuse within (0, 1] s, 'now_s - stamp_s > 1'
    (<= 4.17) within (1, 2] s."""
    for kernel, lo, hi in (("6.8", 0.0, 1.0), ("4.17", 1.0, 2.0)):
        loads = [burst("loop", 10, 0, "0s")] + [burst("loop", 1, 0.05 * i) for i in range(1, 50)]
        r = sim.run(scenario(loads, kernel=kernel, tcp_tw_reuse=1), events=True)
        first_ok = min(t for t, _, p in outcomes(r)[10:] if isinstance(p, int))
        assert lo < first_ok <= hi + 0.05


def test_max_tw_buckets_overflow_skips_time_wait():
    """`tcp_time_wait`, T4: past tcp_max_tw_buckets closing sockets are destroyed without
    TIME_WAIT."""
    sc = scenario(
        [burst("remote", 10, 0), burst("remote", 10, 2)], tcp_tw_reuse=0, tcp_max_tw_buckets=3
    )
    r = sim.run(sc, events=True)
    # at 1 s: 3 enter TIME_WAIT, 7 are destroyed; at 2 s: 7 ports free (3 connects fail),
    # and at 3 s those 7 close into a full TIME_WAIT table: 14 overflows in all
    assert r.summary["hosts"][0]["time_wait_overflow"] == 14
    assert r.summary["connections"]["failed"] == 3


def test_bind_ports_are_not_shared_and_block_connect():
    """`inet_csk_bind_conflict`; `IP_BIND_ADDRESS_NO_PORT`, E7: bind(0) ports are never handed to
    connect() autoselect, and bind(0) skips ports used by connections: 6 binds + 4 connects fill 10
    ports, whatever the destinations; the 5th connect fails with EADDRNOTAVAIL, a further bind with
    EADDRINUSE."""
    loads = [
        burst("remote", 6, 0, "inf", socket="bind"),
        burst("remote2", 5, 1, "inf"),
        burst("loop", 1, 2, "inf", socket="bind"),
    ]
    r = sim.run(scenario(loads), events=True)
    out = outcomes(r)
    bound = {p for t, _, p in out if t == 0}
    connected = [p for t, _, p in out if t == 1]
    assert not bound & set(connected[:4])
    assert connected[4] == "EADDRNOTAVAIL"
    assert out[-1][2] == "EADDRINUSE"
    ev = r.events
    binds = ev[ev.event == "bind"]
    assert len(binds) == 6  # a bind row, then a connect row with the same port
    assert (
        binds.local_port.tolist()
        == ev[(ev.event == "connect") & (ev.time_s == 0)].local_port.tolist()
    )


def test_bind_no_port_shares_ports_across_destinations():
    """`IP_BIND_ADDRESS_NO_PORT`, E7: IP_BIND_ADDRESS_NO_PORT defers the choice to connect(): 10
    ports serve 10 connections to each of two destinations."""
    loads = [
        burst("remote", 10, 0, "inf", socket="bind_no_port"),
        burst("remote2", 10, 0, "inf", socket="bind_no_port"),
    ]
    r = sim.run(scenario(loads))
    assert r.summary["connections"]["failed"] == 0


def test_bucket_blocked_until_explicit_binder_leaves_on_618_not_before():
    """commit d57f4b874946, E8: an explicit binder joins a port that a connect()-autobound socket
    holds (SO_REUSEADDR on both).  While it is there, autoselect skips the port; when it leaves,
    6.18 unblocks the port at once, older kernels only when every owner has gone."""
    from sim.ports.table import PortTable

    for reset, blocked_after in ((True, False), (False, True)):
        table = PortTable(40000, 40000, reset_on_release=reset)
        pool = table.pool("dest-9001", "x")
        table.take(0, 0.0)  # s1: connect()-autobound to :9000
        table.take_explicit(0, 1.0)  # s2: bind(127.0.0.1:40000) with SO_REUSEADDR
        assert pool.unusable == 1  # s3: connect to :9001 -> EADDRNOTAVAIL
        table.release_explicit(0, 2.0)  # s2 closes
        assert (pool.unusable == 1) == blocked_after  # s4: 6.18 gets 40000
        table.release(0, 3.0)  # s1 closes: empty bucket, usable everywhere
        assert pool.unusable == 0


def test_udp_sockets_never_share_ports_and_fail_with_eagain():
    """`udp_lib_get_port`, E6: 10 ports serve 10 connected UDP sockets over two destinations; the
    11th gets EAGAIN; a bind(0) UDP socket gets EADDRINUSE; closing leaves no TIME_WAIT."""
    loads = [
        burst("remote", 5, 0, protocol="udp"),
        burst("remote2", 6, 0, protocol="udp"),
        burst("remote", 1, 0.5, protocol="udp", socket="bind"),
        burst("remote", 10, 2, protocol="udp"),
    ]
    r = sim.run(scenario(loads), events=True)
    s = r.summary
    assert s["connections"]["failed_by_error"]["EAGAIN"] == 1
    assert s["connections"]["failed_by_error"]["EADDRINUSE"] == 1
    assert s["connections"]["failed"] == 2
    assert (r.events.event == "time_wait_end").sum() == 0


def test_reserved_ports_are_skipped_and_count_as_probes():
    """`__inet_hash_connect`, E14/E16: reserved ports are never handed out, and a scan stepping over
    them counts them as probes."""
    loads = [burst("remote", 12, 0, "inf")]
    r = sim.run(
        scenario(loads, port_range=[40000, 40019], reserved_ports=["40000-40009"]), events=True
    )
    ports = [p for _, _, p in outcomes(r) if isinstance(p, int)]
    assert sorted(ports) == list(range(40010, 40020))
    ev = r.events
    assert ev[ev.event == "connect"].probes.max() > 5


def test_failures_are_results_and_the_run_goes_on():
    sc = scenario(
        [
            {
                "destination": "remote",
                "arrival": {"kind": "constant", "interval": "100ms"},
                "lifetime": {"kind": "fixed", "value": "1s"},
            }
        ],
        duration=120,
        tcp_tw_reuse=0,
    )
    s = sim.run(sc).summary
    # 10 ports each held 61 s: 10 successes per 61 s window, 1,200 attempts in all
    assert s["connections"]["attempted"] == 1200
    assert s["connections"]["succeeded"] == 20
    assert s["connections"]["failed_by_error"]["EADDRNOTAVAIL"] == 1180
    assert s["first_failure_s"] == 1.0


def test_infinite_lifetime_stays_open_and_counts_in_the_last_bin():
    sc = scenario([burst("remote", 4, 0, "inf")], duration=10, bin=1)
    r = sim.run(sc)
    assert r.series.established.iloc[-1] == 4
    assert r.series.pressure_worst.iloc[-1] == 0.4


def test_local_port_range_is_refused_where_the_kernel_has_none():
    """IP_LOCAL_PORT_RANGE exists from 6.3 (docs/sources.md G6); portsim models it for TCP."""
    with pytest.raises(sim.ScenarioError) as info:
        scenario([burst("remote", 1, 0, local_port_range=[40000, 40004])], kernel="4.6")
    assert any("load[0].local_port_range" in p and "6.3" in p for p in info.value.problems)
    with pytest.raises(sim.ScenarioError) as info:
        scenario([burst("remote", 1, 0, protocol="udp", local_port_range=[40000, 40004])])
    assert any("TCP only" in p for p in info.value.problems)


def test_several_time_wait_lengths_with_reuse_settle_in_time_order() -> None:
    """The settle path that merges TIME_WAIT queues of several lengths with the reuse queue.
    One port, tcp_tw_reuse = 1 (reuse delay 1000 ms, 6.14+ rule: reusable from entry +
    1.001 s), TIME_WAIT 10 s towards the local network and 60 s elsewhere.  By hand:
    L (local) 0 -> close 1 (TIME_WAIT to 11, reusable 2.001); R (remote) 0 -> close 2
    (to 62, reusable 3.001); at 2.5 a connect to L takes over L's TIME_WAIT, one to R fails
    (R's is not reusable yet); the 2.5 connection closes at 3.5 (TIME_WAIT to 13.5); at 4
    R's TIME_WAIT is taken over; it closes at 6 (to 66, past the end).  So the only expiry
    is at 13.5, booked at its own time although R's 60 s entry is older."""

    def once(dest: str, at: float, life: float) -> dict[str, Any]:
        return {
            "destination": dest,
            "arrival": {"kind": "burst", "count": 1, "at": at},
            "lifetime": {"kind": "fixed", "value": life},
        }

    sc = sim.parse_scenario(
        {
            "name": "tw-merge",
            "duration": 20,
            "hosts": [
                {
                    "name": "h",
                    "os": "linux",
                    "port_range": [40000, 40000],
                    "tcp_tw_reuse": 1,
                    "timer_wheel": False,  # exact expiry: the wheel's grid is tested apart
                    "time_wait": 60,
                    "time_wait_local": 10,
                    "local_network": "192.168.1.0/24",
                }
            ],
            "destinations": [
                {"name": "L", "address": "192.168.1.5:80"},
                {"name": "R", "address": "10.0.0.1:80"},
            ],
            "load": [
                once("L", 0, 1),
                once("R", 0, 2),
                once("L", 2.5, 1),
                once("R", 2.5, 2),
                once("R", 4, 2),
            ],
        }
    )
    ev = sim.run(sc, events=True).events
    L, R = "192.168.1.5:80", "10.0.0.1:80"
    assert list(zip(ev.time_s, ev.event, ev.destination, strict=True)) == [
        (0.0, "connect", L),
        (0.0, "connect", R),
        (1.0, "close", L),
        (1.0, "time_wait", L),
        (2.0, "close", R),
        (2.0, "time_wait", R),
        (2.5, "time_wait_reused", L),
        (2.5, "connect", L),
        (2.5, "fail", R),
        (3.5, "close", L),
        (3.5, "time_wait", L),
        (4.0, "time_wait_reused", R),
        (4.0, "connect", R),
        (6.0, "close", R),
        (6.0, "time_wait", R),
        (13.5, "time_wait_end", L),
    ]
    assert ev.error[ev.event == "fail"].tolist() == ["EADDRNOTAVAIL"]


def test_multi_address_table_release_frees_a_port_per_address() -> None:
    """A host with two local addresses: bind(addr, 0) must avoid a port only while an owner
    holds it from the same address, while the bind bucket (per port) stays owned until the
    last owner leaves.  Port 40001 (offset 1) taken from both addresses, then released from
    address 0, then from address 1."""
    from sim.ports.cells import OWNED
    from sim.ports.table import MultiAddressTable, port_table

    table = port_table(40000, 40003, addresses=2)
    assert isinstance(table, MultiAddressTable)
    cell = table.layout.cell(1)
    a0, a1 = table.addr_pools
    assert table.take(1, 0.0, addr=0) == cell
    table.take(1, 1.0, addr=1)
    assert (a0.cells[cell], a1.cells[cell], table.bind_pool.cells[cell]) == (OWNED,) * 3
    assert table.owners[1] == 2
    table.release(1, 2.0, addr=0)
    assert (a0.cells[cell], a1.cells[cell], table.bind_pool.cells[cell]) == (0, OWNED, OWNED)
    assert (a0.unusable, a1.unusable, table.bind_pool.unusable) == (0, 1, 1)
    assert table.owners[1] == 1 and table.addr_owners == [[0, 0, 0, 0], [0, 1, 0, 0]]
    table.release(1, 4.0, addr=1)
    assert (a0.cells[cell], a1.cells[cell], table.bind_pool.cells[cell]) == (0, 0, 0)
    assert table.owners[1] == 0
    # time-weighted occupancy: address 0 held it 0..2 s, address 1 1..4 s, the bucket 0..4 s
    assert (a0.mean_unusable(4.0), a1.mean_unusable(4.0)) == (0.5, 0.75)
    assert table.bind_pool.mean_unusable(4.0) == 1.0
