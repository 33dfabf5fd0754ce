"""The presets beyond Linux against their primary sources: ranges, TIME_WAIT, port order, scope,
Windows events, the statistics of the RFC 6056 algorithms and FreeBSD 12's throttle.

Sources are named per test; docs/sources.md lists them with titles and addresses.  Small ranges and
hand-placed arrivals make most expectations exact; the statistical tests use fixed seeds and state
their tolerance in the docstring."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from simpy import Environment

import sim
from sim.channel import Channel
from sim.config.load import parse_scenario
from sim.host import Host
from sim.sockets import ESTABLISHED
from tests.hosts import host_from_scenario, live_sockets

REMOTE = "10.0.0.1:443"
REMOTE2 = "10.0.0.2:443"
REMOTE3 = "10.0.0.3:443"
LOCAL = "192.0.2.50:80"  # in the default host address's /24 (192.0.2.1)
LOOP = "127.0.0.1:9000"
DESTINATIONS = {"a": REMOTE, "b": REMOTE2, "c": REMOTE3, "local": LOCAL, "loop": LOOP}
LO = 40000  # the tiny ranges used below start here
TINY = [LO, LO + 7]

# chi-square critical values at p = 0.001, by degrees of freedom
CHI2_999 = {3: 16.266, 6: 22.458, 13: 34.528}


def scenario(
    os_name: str,
    loads: list[dict[str, Any]],
    duration: float = 300.0,
    bin: float | None = None,
    **host: Any,
) -> sim.Scenario:
    data: dict[str, Any] = {
        "name": "presets",
        "duration": duration,
        **({"bin": bin} if bin else {}),
        "hosts": [{"name": "h", "os": os_name, **host}],
        "destinations": [{"name": n, "address": a} for n, a in DESTINATIONS.items()],
        "load": loads,
    }
    return sim.parse_scenario(data)


def burst(dest: str, count: int, at: float = 0.0, life: Any = "inf", **kw: Any) -> dict[str, Any]:
    return {
        "destination": dest,
        "arrival": {"kind": "burst", "count": count, "at": at},
        "lifetime": {"kind": "fixed", "value": life},
        **kw,
    }


def cycles(
    dest: str, interval: float, stop: float, start: float = 0.0, **kw: Any
) -> dict[str, Any]:
    """Connect-and-reset cycles: each connection is gone (no TIME_WAIT) before the next."""
    return {
        "destination": dest,
        "arrival": {"kind": "constant", "interval": interval},
        "lifetime": {"kind": "fixed", "value": 0},
        "close": "reset",
        "start": start,
        "stop": stop,
        **kw,
    }


def connects(
    result: sim.Result, dest: str | None = None, protocol: str | None = None
) -> list[tuple[float, int]]:
    """(time, port) of the successful attempts, in order."""
    ev = result.events
    rows = ev[ev.event == "connect"]
    if dest is not None:
        rows = rows[rows.destination == dest]
    if protocol is not None:
        rows = rows[rows.protocol == protocol]
    return [(float(t), int(p)) for t, p in zip(rows.time_s, rows.local_port, strict=True)]


def ports(result: sim.Result, dest: str | None = None, protocol: str | None = None) -> list[int]:
    return [p for _, p in connects(result, dest, protocol)]


def chi_square(counts: dict[int, int], categories: list[int]) -> float:
    total = sum(counts.get(c, 0) for c in categories)
    expected = total / len(categories)
    return sum((counts.get(c, 0) - expected) ** 2 / expected for c in categories)


# ---- 1. ranges and TIME_WAIT ----------------------------------------------------------

RFC_RANGE = (1024, 65535)
FACTS = [
    # preset, default range, TIME_WAIT towards remote / local (same /24) / loopback peers
    # (None: no TIME_WAIT at all), section
    ("freebsd", (10000, 65535), 60.0, 60.0, None, "tcp_timer.h; nolocaltimewait=1 since 14.0"),
    ("freebsd-12", (10000, 65535), 60.0, 60.0, 60.0, "tcp_timer.h, before nolocaltimewait=1"),
    ("openbsd", (1024, 49151), 60.0, 60.0, 60.0, "OpenBSD `in_pcbpickport`"),
    ("netbsd", (49152, 65535), 60.0, 10.0, 2.0, "NetBSD portalgo.c MSL classes"),
    ("macos", (49152, 65535), 30.0, 30.0, 30.0, "XNU in_pcb.c MSL 15 s"),
    ("windows", (49152, 65535), 120.0, 120.0, 120.0, "KB314053 TcpTimedWaitDelay"),
    ("windows-xp", (1025, 5000), 120.0, 120.0, 120.0, "KB314053 MaxUserPort"),
    ("ns3", (49152, 65535), 240.0, 240.0, 240.0, "ns-3 MaxSegLifetime 120 s"),
    ("omnetpp-inet", (1024, 4999), 240.0, 240.0, 240.0, "INET msl 120 s"),
    *[
        (f"rfc6056-alg{i}", RFC_RANGE, 60.0, 60.0, 60.0, "RFC 6056 §2.1 (TIME_WAIT chosen)")
        for i in range(1, 6)
    ],
]


@pytest.mark.parametrize(
    ("preset", "rng", "remote", "local", "loopback", "section"),
    FACTS,
    ids=[f[0] for f in FACTS],
)
def test_range_and_time_wait(
    preset: str,
    rng: tuple[int, int],
    remote: float,
    local: float,
    loopback: float | None,
    section: str,
) -> None:
    """Each preset's documented range and TIME_WAIT (RFC 6056 §2.1; FreeBSD tcp_timer.h; OpenBSD
    `in_pcbpickport`; NetBSD portalgo.c; XNU in_pcb.c; Microsoft KB929851/KB314053; ns-3, INET; the
    section of each is in its parameters): in the summary, in the port handed out, and in behaviour:
    a client close at 1 s ends its TIME_WAIT at exactly 1 s + TIME_WAIT, by peer class (NetBSD
    NetBSD portalgo.c: local 10 s, loopback 2 s; FreeBSD tcp_timer.h: no TIME_WAIT on
    loopback)."""
    sc = scenario(preset, [burst(d, 1, 0.0, "1s") for d in ("a", "local", "loop")])
    r = sim.run(sc, events=True)
    host = r.summary["hosts"][0]
    assert tuple(host["port_range"]) == rng, section
    assert host["time_wait_s"] == remote, section
    used = ports(r)
    assert len(used) == 3 and all(rng[0] <= p <= rng[1] for p in used), section
    ev = r.events
    closes = ev[ev.event == "close"]
    assert closes.time_s.tolist() == [1.0, 1.0, 1.0]
    ends = ev[ev.event == "time_wait_end"]
    got = {d: t for t, d in zip(ends.time_s, ends.destination, strict=True)}
    expected = {REMOTE: 1.0 + remote, LOCAL: 1.0 + local}
    if loopback is not None:
        expected[LOOP] = 1.0 + loopback
    assert got == expected, section
    assert len(ends) == len(expected)  # one TIME_WAIT per client close, no more


# ---- 2. port order --------------------------------------------------------------------

# macOS left this list (issue 15): XNU's cursor starts at 0, so its first port is lo itself
# (test_preset_sources.test_macos_first_port_is_first)
SEQUENTIAL_UP = ["ns3", "windows", "omnetpp-inet"]


@pytest.mark.parametrize("preset", SEQUENTIAL_UP)
def test_sequential_up_starts_at_cursor_plus_one_and_wraps_to_lo(preset: str) -> None:
    """FreeBSD `in_pcb_lport_dest`; ns-3; INET BSD convention (cursor + 1 first, wrap to the first
    port), XNU in_pcb.c TCP with randomize_ports = 0, Windows (sequential
    global cursor, inferred): on 8 ports the burst gets lo+1 .. lo+7 then lo, and a 9th attempt
    fails."""
    sc = scenario(preset, [burst("a", 8), burst("a", 1, 1.0)], port_range=TINY)
    r = sim.run(sc, events=True)
    assert ports(r) == [*range(LO + 1, LO + 8), LO]
    assert r.summary["connections"]["failed"] == 1


@pytest.mark.parametrize(
    ("preset", "expected"),
    # macOS hands out lo, lo+1, lo+2 first (ipi_lastport starts at 0, issue 15), then 3, 4
    [("ns3", [LO + 4, LO + 5]), ("macos", [LO + 3, LO + 4]), ("netbsd", [LO + 4, LO + 3])],
)
def test_sequential_cursor_moves_on_past_freed_ports(preset: str, expected: list[int]) -> None:
    """NetBSD portalgo.c; XNU in_pcb.c; ns-3: the cursor stays on the last port handed out; ports
    freed behind it are not taken again before the cursor comes round (3 connections reset at 1 s, 2
    more at 2 s continue after the first three)."""
    sc = scenario(
        preset, [burst("a", 3, 0.0, "1s", close="reset"), burst("a", 2, 2.0)], port_range=TINY
    )
    r = sim.run(sc, events=True)
    assert [p for t, p in connects(r) if t == 2.0] == expected


@pytest.mark.parametrize(
    ("preset", "first"),
    [
        ("ns3", 49153),  # ns-3 "the first allocation is 49153"
        ("omnetpp-inet", 1025),  # INET "the first allocation is 1025"
        ("netbsd", 65535),  # NetBSD portalgo.c "counting down from anonportmax"
        ("windows-xp", 1025),  # HSC "after TCP gets 1025, the next UDP ... 1026"
    ],
)
def test_first_port_on_the_default_range(preset: str, first: int) -> None:
    """The very first port each simulator/OS hands out on its default range."""
    r = sim.run(scenario(preset, [burst("a", 2)]), events=True)
    step = -1 if preset == "netbsd" else 1
    assert ports(r) == [first, first + step]


def test_netbsd_counts_down_from_hi_and_fails_with_eagain() -> None:
    """NetBSD portalgo.c: the default "bsd" algorithm counts down from the top port,
    ``p = cursor if in range else hi; cursor = p - 1``, and returns EAGAIN when exhausted."""
    r = sim.run(scenario("netbsd", [burst("a", 9)], port_range=TINY), events=True)
    assert ports(r) == list(range(LO + 7, LO - 1, -1))
    assert r.summary["connections"]["failed_by_error"]["EAGAIN"] == 1


@pytest.mark.parametrize(
    ("preset", "protocol"),
    [("freebsd", "tcp"), ("openbsd", "tcp"), ("freebsd-12", "tcp"), ("macos", "udp")],
)
def test_random_start_never_first_probes_lo(preset: str, protocol: str) -> None:
    """FreeBSD `in_pcb_lport_dest`, OpenBSD `in_pcbpickport`, XNU in_pcb.c (
    UDP): a fresh random start uniform in [first, last - 1] on every call, first probe start + 1, so
    on an empty range port ``first`` is never handed out (it is reached only by wrapping) and lo+1
    .. hi are equally likely.  2,100 connect-and-reset cycles on 8 ports (1/s, under FreeBSD 12's
    throttle rate): lo never appears, every attempt takes one probe, the other 7 ports pass a
    chi-square test at p = 0.001 (22.46, df 6; 300 expected each).  Successive ports are independent
    (no stored cursor is followed): a +1 step has probability 6/49 = 0.12; we require under 0.3 of
    2,099 steps, where a cursor-following allocator gives 1.0."""
    sc = scenario(
        preset, [cycles("a", 1.0, 2100.0, protocol=protocol)], duration=2100, port_range=TINY
    )
    r = sim.run(sc, events=True)
    got = ports(r, protocol=protocol)
    assert len(got) == 2100
    counts = Counter(got)
    assert counts[LO] == 0
    assert chi_square(counts, list(range(LO + 1, LO + 8))) < CHI2_999[6]
    ev = r.events
    assert set(ev[ev.event == "connect"].probes) == {1}
    steps = np.diff(got) % 8
    assert np.mean(steps == 1) < 0.3


def test_openbsd_skips_its_bad_dynamic_ports() -> None:
    """OpenBSD `in_pcbpickport`: 2049 is on both "bad dynamic" lists and is never auto-assigned: on
    2045-2054 ten TCP and ten UDP attempts get the other 9 ports each and one failure each.  FreeBSD
    on the same range does hand out 2049 (the test would notice a range without it)."""
    loads = [burst("a", 10), burst("a", 10, 1.0, protocol="udp")]
    r = sim.run(scenario("openbsd", loads, port_range=[2045, 2054]), events=True)
    others = sorted(set(range(2045, 2055)) - {2049})
    assert sorted(ports(r, protocol="tcp")) == others
    assert sorted(ports(r, protocol="udp")) == others
    assert r.summary["connections"]["failed"] == 2
    r = sim.run(scenario("freebsd", loads, port_range=[2045, 2054]), events=True)
    assert 2049 in ports(r, protocol="tcp") and 2049 in ports(r, protocol="udp")


def alternating(until: float = 8.0) -> list[dict[str, Any]]:
    """A TCP attempt at 0, 2, 4, 6 s and a UDP attempt at 1, 3, 5, 7 s, all kept open."""
    return [
        {
            "destination": "a",
            "protocol": proto,
            "arrival": {"kind": "constant", "interval": 2.0},
            "lifetime": {"kind": "fixed", "value": "inf"},
            "start": start,
            "stop": until,
        }
        for proto, start in (("tcp", 0.0), ("udp", 1.0))
    ]


def test_windows_xp_shares_one_counter_between_tcp_and_udp() -> None:
    """Microsoft KB929851/KB314053 (HSC): Windows 2000/XP/2003 allocate from one counter shared by
    TCP and UDP, starting at the first port ("after TCP gets 1025, the next UDP request gets 1026"):
    alternating TCP and UDP attempts get lo, lo+1, ... in turn, TCP the even offsets and UDP the odd
    ones.  Vista and later (Microsoft KB929851/KB314053: per transport) keep two counters, so both
    protocols get lo+1 .. lo+4 (BSD convention, cursor + 1)."""
    r = sim.run(scenario("windows-xp", alternating(), duration=20, port_range=TINY), events=True)
    assert [p for _, p in connects(r)] == list(range(LO, LO + 8))
    assert ports(r, protocol="tcp") == [LO, LO + 2, LO + 4, LO + 6]
    assert ports(r, protocol="udp") == [LO + 1, LO + 3, LO + 5, LO + 7]
    r = sim.run(scenario("windows", alternating(), duration=20, port_range=TINY), events=True)
    assert ports(r, protocol="tcp") == ports(r, protocol="udp") == list(range(LO + 1, LO + 5))


# ---- 3. scope -------------------------------------------------------------------------

PORT_SCOPE = [
    ("macos", {}),
    ("windows", {"forced_reuse": False}),
    ("windows-xp", {}),
    ("ns3", {}),
    ("omnetpp-inet", {}),
    ("netbsd", {}),
    ("openbsd", {}),
    ("freebsd-12", {}),
]
TUPLE_SCOPE = ["freebsd", "linux", *[f"rfc6056-alg{i}" for i in range(1, 6)]]


def three_destinations(per_destination: int) -> list[dict[str, Any]]:
    return [burst(d, per_destination, float(i)) for i, d in enumerate(("a", "b", "c"))]


@pytest.mark.parametrize(("preset", "overrides"), PORT_SCOPE, ids=[p for p, _ in PORT_SCOPE])
def test_port_scope_runs_out_at_the_range_size(preset: str, overrides: dict[str, Any]) -> None:
    """scope S_PORT / S_LADDR (OpenBSD `in_pcbpickport`; NetBSD portalgo.c; XNU in_pcb.c; Windows,
    inferred; ns-3; INET, FreeBSD <= 12 `in_pcb_lport_dest`): a port is busy for every
    destination, so 8 ports carry 8 connections in all: of 10 attempts to each of 3 destinations (30
    concurrent), exactly 8 succeed, all to the first destination."""
    sc = scenario(preset, three_destinations(10), port_range=TINY, **overrides)
    s = sim.run(sc).summary
    assert s["connections"]["succeeded"] == 8
    assert [ld["succeeded"] for ld in s["loads"]] == [8, 0, 0]


@pytest.mark.parametrize("preset", TUPLE_SCOPE)
def test_4tuple_scope_gives_each_destination_the_whole_range(preset: str) -> None:
    """scope S_4TUPLE (FreeBSD >= 13 `in_pcb_lport_dest`, RFC 6056 §2.3 for TCP, Linux):
    each destination gets all 8 ports: of 16 attempts to each of 3 destinations, 8 + 8 + 8 succeed.
    (16, not 10, because algorithms 2 and 5 can fail with ports free, RFC 6056 §3.3.)"""
    sc = scenario(preset, three_destinations(16), port_range=TINY)
    s = sim.run(sc).summary
    assert [ld["succeeded"] for ld in s["loads"]] == [8, 8, 8]
    assert s["connections"]["succeeded"] == 24


# ---- 4. Windows events ----------------------------------------------------------------


def test_windows_without_forced_reuse_logs_4231_per_failure() -> None:
    """Windows, inferred: with the port space exhausted every attempt fails with WSAENOBUFS and logs
    event 4231, whatever the destination: 8 ports, 10 attempts to a then 3 to b: 5 failures,
    5 events, no 4227."""
    sc = scenario(
        "windows", [burst("a", 10), burst("b", 3, 1.0)], port_range=TINY, forced_reuse=False
    )
    s = sim.run(sc).summary
    assert s["connections"]["failed"] == 5
    assert s["connections"]["failed_by_error"]["WSAENOBUFS"] == 5
    assert s["hosts"][0]["windows_events"] == {"4227": 0, "4231": 5}


def test_windows_forced_reuse_takes_time_wait_ports_and_4227_on_time_wait() -> None:
    """Windows (inferred from event 4227's text): once every port is taken, Windows reuses
    a local port that "was recently used" (in TIME_WAIT) and has no connection to the requested
    destination, in the order of its sequential cursor; if the only candidates are in TIME_WAIT
    towards it, the attempt fails with WSAEADDRINUSE and logs 4227.

    Corrected in issue 15: forced reuse used to take any port without a connection to the
    destination, live ones included, in the parity layout's order (even ports first); a
    port held by a live connection now stays exclusive.

    By hand, 8 ports 40000-40007, TIME_WAIT 120 s:
    * 0 s: 8 connections to a (40001 .. 40007, 40000; the cursor ends on 40000), closed by
      the client at 1 s: all 8 ports in TIME_WAIT towards a until 121 s;
    * 5 s: a again: every port is in TIME_WAIT to a: WSAEADDRINUSE, 4227;
    * 5 s: b: forced reuse takes the cursor's next TIME_WAIT port, 40001;
    * 6 s: 8 more to b: 40002 .. 40007, 40000, then every port is held by a live
      connection to b: WSAENOBUFS, 4231;
    * 130 s: a again: its TIME_WAITs ended at 121 s, but b's live connections hold all 8
      ports and are never shared: WSAENOBUFS, 4231.
    """
    loads = [
        burst("a", 8, 0.0, "1s"),
        burst("a", 1, 5.0),
        burst("b", 1, 5.0),
        burst("b", 8, 6.0),
        burst("a", 1, 130.0),
    ]
    r = sim.run(scenario("windows", loads, duration=200, port_range=TINY), events=True)
    s = r.summary
    ev = r.events
    fails = ev[ev.event == "fail"]
    assert list(zip(fails.time_s, fails.destination, fails.error, strict=True)) == [
        (5.0, REMOTE, "WSAEADDRINUSE"),
        (6.0, REMOTE2, "WSAENOBUFS"),
        (130.0, REMOTE, "WSAENOBUFS"),
    ]
    assert s["hosts"][0]["windows_events"] == {"4227": 1, "4231": 2}
    assert ports(r, REMOTE) == [*range(LO + 1, LO + 8), LO]
    assert ports(r, REMOTE2) == [*range(LO + 1, LO + 8), LO]
    assert s["connections"]["failed"] == 3


# ---- 5. statistics --------------------------------------------------------------------


def test_rfc6056_alg3_walks_sequentially_per_destination() -> None:
    """RFC 6056 §3.3 alg 3: offset F(laddr, raddr, rport) + one global counter bumped on every
    probe. With one destination and nothing held (connect-and-reset at 1/s, 1,000 cycles) each port
    is the previous + 1 mod n, exactly (n = 256 divides 2^16, so the RFC's 16-bit counter wraps
    without a jump, RFC 6056 §3.3 note).  With two destinations alternating, the shared counter
    makes each destination step by 2."""
    rng = [LO, LO + 255]
    r = sim.run(
        scenario("rfc6056-alg3", [cycles("a", 1.0, 1000.0)], duration=1000, port_range=rng),
        events=True,
    )
    got = ports(r)
    assert len(got) == 1000
    assert set(np.diff(got) % 256) == {1}
    loads = [cycles("a", 2.0, 1000.0), cycles("b", 2.0, 1000.0, start=1.0)]
    r = sim.run(scenario("rfc6056-alg3", loads, duration=1000, port_range=rng), events=True)
    for dest in (REMOTE, REMOTE2):
        assert set(np.diff(ports(r, dest)) % 256) == {2}


def test_rfc6056_alg4_separate_counters_keep_each_destination_sequential() -> None:
    """RFC 6056 §3.3 alg 4: a second keyed hash picks one of T counters; with T = 65,536 two
    destinations almost surely get different counters (1 - 2^-16), so each keeps stepping by
    1 even when they alternate, unlike alg 3 above."""
    loads = [cycles("a", 2.0, 1000.0), cycles("b", 2.0, 1000.0, start=1.0)]
    r = sim.run(
        scenario("rfc6056-alg4", loads, duration=1000, port_range=[LO, LO + 255], table_size=65536),
        events=True,
    )
    for dest in (REMOTE, REMOTE2):
        assert set(np.diff(ports(r, dest)) % 256) == {1}


def test_rfc6056_alg5_steps_are_uniform_in_1_to_n() -> None:
    """RFC 6056 §3.3 alg 5: ``next += 1 + random() % N`` before each probe.  With nothing held
    (connect-and-reset, 3,000 cycles), N = 20 and n = 32,768 (divides 2^16: no wrap jump),
    each step mod n is in 1..20; all 20 values occur; the mean is 10.5 +- 0.5 (standard
    error 5.77/sqrt(2999) = 0.105, so about 4.7 standard errors)."""
    sc = scenario(
        "rfc6056-alg5",
        [cycles("a", 1.0, 3000.0)],
        duration=3000,
        port_range=[32768, 65535],
        increment_max=20,
    )
    got = ports(sim.run(sc, events=True))
    steps = np.diff(got) % 32768
    assert set(steps) == set(range(1, 21))
    assert abs(steps.mean() - 10.5) < 0.5


def test_rfc6056_alg2_is_uniform_over_free_ports() -> None:
    """RFC 6056 §3.3 alg 2: a fresh uniform draw per try, so the port chosen is uniform over the
    free ones.  10 ports, 3 held by "inf" connections, then 7,000 connect-and-reset cycles: held
    ports never come out and the 7 free ones pass a chi-square test at p = 0.001 (22.46, df 6; 1,000
    expected each)."""
    loads = [burst("a", 3), cycles("a", 1.0, 7001.0, start=1.0)]
    r = sim.run(
        scenario("rfc6056-alg2", loads, duration=7001, port_range=[LO, LO + 9]), events=True
    )
    held = [p for t, p in connects(r) if t == 0.0]
    assert len(held) == 3
    cycled = [p for t, p in connects(r) if t > 0]
    assert len(cycled) == 7000  # a miss needs 10 busy draws in a row: (3/10)^10 = 6e-6
    counts = Counter(cycled)
    assert not set(held) & set(counts)
    free = sorted(set(range(LO, LO + 10)) - set(held))
    assert chi_square(counts, free) < CHI2_999[6]


def test_rfc6056_alg2_is_uniform_when_most_draws_miss() -> None:
    """RFC 6056 §3.3 alg 2 near full, where RandomPick's first 16 single draws often all miss and
    the rest of the n draws are taken from the geometric law: the port must still be uniform over
    the free ones.  40 ports, 36 reserved, 4 free: 8,000 attempts fail with probability 0.9^40 =
    0.015 (tolerance +-0.01, sigma 0.0014); the successes, and separately those that needed more
    than 16 draws (0.9^16 - 0.9^40 = 0.17 of attempts, about 1,360), pass a chi-square test over the
    4 free ports at p = 0.001 (16.27, df 3)."""
    free = [LO, LO + 13, LO + 27, LO + 39]
    reserved = [p for p in range(LO, LO + 40) if p not in free]
    sc = scenario(
        "rfc6056-alg2",
        [cycles("a", 1.0, 8000.0)],
        duration=8000,
        port_range=[LO, LO + 39],
        reserved_ports=reserved,
    )
    r = sim.run(sc, events=True)
    assert abs(r.summary["connections"]["failed"] / 8000 - 0.9**40) < 0.01
    ev = r.events
    ok = ev[ev.event == "connect"]
    assert set(ok.local_port) == set(free)
    assert chi_square(Counter(ok.local_port.tolist()), free) < CHI2_999[3]
    late = ok[ok.probes > 16].local_port.tolist()
    assert 1100 < len(late) < 1600
    assert chi_square(Counter(late), free) < CHI2_999[3]


def test_rfc6056_alg2_fails_with_a_port_free() -> None:
    """RFC 6056 §3.3 alg 2 can fail with free ports: n draws with replacement all miss with
    probability (1 - k/n)^n.  20 ports, 19 reserved, 1 free: (19/20)^20 = 0.3585 per
    attempt (RandomPick draws 16 times one by one, then the further misses are geometric: a
    failure is 16 + misses >= 20, the same law).  5,000 attempts: the rate is within
    +-0.03 (standard deviation 0.0068, about 4.4 sigma); a failure costs n = 20 probes.
    Algorithm 1 scans and never fails while a port is free."""
    loads = [cycles("a", 1.0, 5000.0)]
    host = {"port_range": [LO, LO + 19], "reserved_ports": [f"{LO + 1}-{LO + 19}"]}
    r = sim.run(scenario("rfc6056-alg2", loads, duration=5000, **host), events=True)
    c = r.summary["connections"]
    assert c["attempted"] == 5000
    assert abs(c["failed"] / 5000 - 0.95**20) < 0.03
    assert c["failed_by_error"]["EADDRNOTAVAIL"] == c["failed"]
    ev = r.events
    assert set(ev[ev.event == "fail"].probes) == {20}
    assert set(ports(r)) == {LO}
    s = sim.run(scenario("rfc6056-alg1", loads, duration=5000, **host)).summary
    assert s["connections"]["failed"] == 0


def test_rfc6056_alg1_favours_the_port_after_a_busy_run() -> None:
    """RFC 6056 §3.3 alg 1: a uniform start, then a linear scan, so a free port right after a run of
    B busy ports is chosen whenever the start falls in the run or on it: probability
    (B + 1)/n, against 1/n for a free port after a free one, i.e. B + 1 times as often.
    n = 20, B = 5 (40005-40009 held as reserved ports), 6,000 connect-and-reset cycles:
    40010 comes out with frequency 6/20 = 0.30 +- 0.025 (sigma 0.0059, about 4.2 sigma),
    the 14 other free ports are uniform (chi-square at p = 0.001: 34.53, df 13)."""
    host = {"port_range": [LO, LO + 19], "reserved_ports": [f"{LO + 5}-{LO + 9}"]}
    r = sim.run(
        scenario("rfc6056-alg1", [cycles("a", 1.0, 6000.0)], duration=6000, **host),
        events=True,
    )
    got = ports(r)
    assert len(got) == 6000
    counts = Counter(got)
    assert not set(range(LO + 5, LO + 10)) & set(counts)
    assert abs(counts[LO + 10] / 6000 - 0.30) < 0.025
    others = [p for p in range(LO, LO + 20) if not LO + 5 <= p <= LO + 10]
    assert chi_square(counts, others) < CHI2_999[13]
    ratio = counts[LO + 10] / (sum(counts[p] for p in others) / len(others))
    assert 5.0 < ratio < 7.0


def throttle_run(preset: str, burst_interval: float, protocol: str = "tcp") -> sim.Result:
    """Connect-and-reset at 1/burst_interval for 20 s, then at 1/s until 120 s."""
    loads = [
        cycles("a", burst_interval, 20.0, protocol=protocol),
        cycles("a", 1.0, 120.0, start=20.0, protocol=protocol),
    ]
    return sim.run(scenario(preset, loads, duration=120), events=True)


def steps_between(got: list[tuple[float, int]], t0: float, t1: float) -> np.ndarray:
    """Port steps (mod the range) into the allocations made in [t0, t1)."""
    times = np.array([t for t, _ in got])
    diffs = np.diff([p for _, p in got]) % 55536
    return diffs[(times[1:] >= t0) & (times[1:] < t1)]


def test_freebsd12_throttle_turns_sequential_and_back_after_45s() -> None:
    """FreeBSD 12 `ipport_tick`: a 1 Hz callout sets stoprandom = randomtime (45) when more than
    randomcps (10) allocations happened in the past second, else counts it down; while it is
    non-zero TCP allocation is sequential.  50/s for 20 s, then 1/s (connect-and-reset, nothing
    held): * [0, 1): before the first callout, random starts (a +1 step has probability about
      2/55,535; we allow none of 49);
    * [1, 65): sequential, every step exactly +1 (the callout at 20 s saw 50 allocations;
      the ones at 21 .. 65 s count 45 down to 0);
    * [65, 120): random again: no +1 step among 55 (same odds as above).
    FreeBSD main (FreeBSD 12 `ipport_tick` "gone in main") stays random throughout; 8/s (not above
    10) never throttles."""
    got = connects(throttle_run("freebsd-12", 0.02))
    assert len(got) == 1000 + 100
    assert not np.any(steps_between(got, 0.0, 1.0) == 1)
    sequential = steps_between(got, 1.0, 65.0)
    assert len(sequential) == 950 + 45 and set(sequential) == {1}
    after = steps_between(got, 65.0, 120.0)
    assert len(after) == 55 and not np.any(after == 1)
    assert np.mean(steps_between(connects(throttle_run("freebsd", 0.02)), 1.0, 65.0) == 1) < 0.01
    assert np.mean(steps_between(connects(throttle_run("freebsd-12", 0.125)), 0, 120) == 1) < 0.01


@pytest.mark.parametrize(("count", "sequential"), [(10, False), (11, True)])
def test_freebsd12_throttle_needs_more_than_randomcps_in_a_second(
    count: int, sequential: bool
) -> None:
    """FreeBSD 12 `ipport_tick`: the callout compares the allocations of the past second with
    randomcps (10): ``tcpallocs <= lastcount + randomcps`` keeps random starts.  A burst of 10 at
    0.5 s leaves the next allocation (1.5 s) random; a burst of 11 makes it the last port + 1. (A
    random start lands there with probability about 2/55,535.)"""
    loads = [burst("a", count, 0.5), burst("a", 1, 1.5)]
    got = connects(sim.run(scenario("freebsd-12", loads, duration=10), events=True))
    assert len(got) == count + 1
    assert ((got[-1][1] - got[-2][1]) % 55536 == 1) == sequential


def test_freebsd12_throttle_leaves_udp_random() -> None:
    """FreeBSD 12 `ipport_tick`: the throttle only ever makes TCP sequential; UDP at 50/s keeps
    random starts."""
    got = connects(throttle_run("freebsd-12", 0.02, protocol="udp"))
    assert np.mean(steps_between(got, 1.0, 65.0) == 1) < 0.01


# ---- 6. properties under random operations --------------------------------------------

PROP_LOADS = [
    # destination, socket, close, protocol
    ("a", "connect", "client", "tcp"),
    ("b", "connect", "reset", "tcp"),
    ("a", "bind", "client", "tcp"),
    ("loop", "connect", "client", "tcp"),
    ("local", "connect", "client", "tcp"),
    ("b", "bind_no_port", "server", "tcp"),
    ("a", "connect", "client", "udp"),
]
PROP_PRESETS = ["linux", *[f[0] for f in FACTS]]
PROP_RANGE = (LO, LO + 11)
PROP_RESERVED = LO + 3


def build_host(
    preset: str, scope: str, forced_reuse: bool
) -> tuple[Environment, Host, list[Channel], list[tuple]]:
    sc = parse_scenario(
        {
            "name": "prop",
            "duration": 1e6,
            "hosts": [
                {
                    "name": "h",
                    "os": preset,
                    "scope": scope,
                    "forced_reuse": forced_reuse,
                    "port_range": list(PROP_RANGE),
                    "reserved_ports": [PROP_RESERVED],
                    "time_wait": 3,  # local/loopback lengths stay the preset's (NetBSD, FreeBSD)
                }
            ],
            "destinations": [{"name": n, "address": a} for n, a in DESTINATIONS.items()],
            "load": [
                {
                    "destination": d,
                    "socket": s,
                    "close": c,
                    "protocol": p,
                    "arrival": {"kind": "burst", "count": 1, "at": 0},
                    "lifetime": {"kind": "exponential", "mean": 1.5},
                }
                for d, s, c, p in PROP_LOADS
            ],
        }
    )
    return host_from_scenario(sc)


def check_invariants(env: Environment, host: Host) -> None:
    host.settle(env.now)
    socks = live_sockets(env, host)
    tcp = [s for s in socks if s.load.protocol == "tcp"]
    # no two live TCP sockets (TIME_WAIT included) share a 4-tuple
    tuples = [(s.k, s.load.dest.ip, s.load.dest.port) for s in tcp]
    assert len(tuples) == len(set(tuples)), sorted(tuples)
    udp = [s.k for s in socks if s.load.protocol == "udp"]
    assert len(udp) == len(set(udp))
    # port and local-address scope: one live TCP socket per port, unless Windows shares
    # ports across destinations on purpose (forced reuse, Windows, inferred) -- and then only with
    # TIME_WAIT sockets: two connections that are not in TIME_WAIT never share (issue 15)
    sharing = host.forced_reuse and host.resolved.windows
    if host.scope != "4tuple":
        tcp_ports = [s.k for s in tcp if not sharing or s.state == ESTABLISHED]
        assert len(tcp_ports) == len(set(tcp_ports)), sorted(tcp_ports)
    # an explicitly bound port is never shared
    for s in tcp:
        if s.explicit:
            assert sum(1 for o in tcp if o.k == s.k) == 1
    # nothing outside the range, on a reserved port or on a bad-dynamic port
    skip = set(host.resolved.preset.skip_tcp)
    for s in tcp:
        assert 0 <= s.k < host.size and host.lo + s.k != PROP_RESERVED
        assert host.lo + s.k not in skip
    # ownership matches the live sockets, and so does the port map of the host
    table = host.table
    for k in range(host.size):
        owners = sum(1 for s in tcp if s.k == k)
        assert table.owners[k] == owners
        cell = table.bind_pool.cells[table.layout.cell(k)]
        assert bool(cell) == (owners > 0 or host.lo + k == PROP_RESERVED)


steps_strategy = st.lists(
    st.tuples(st.integers(0, len(PROP_LOADS) - 1), st.floats(0.001, 2.0)), max_size=50
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    preset=st.sampled_from(PROP_PRESETS),
    scope=st.sampled_from(["port", "local_address", "4tuple"]),
    forced_reuse=st.booleans(),
    steps=steps_strategy,
)
def test_random_operations_never_duplicate_a_4tuple(
    preset: str, scope: str, forced_reuse: bool, steps: list[tuple[int, float]]
) -> None:
    """scope: whatever the generator and the scope, no two live sockets share a 4-tuple, and
    under port / local-address scope no two live TCP sockets share a port (Windows' forced
    reuse aside).  Live sockets are read off the SimPy queue and the TIME_WAIT queues."""
    if preset == "linux":  # Linux keeps 4-tuple scope (refused otherwise: tested below)
        scope = "4tuple"
    if not preset.startswith("windows"):
        forced_reuse = False  # a Windows behaviour, refused elsewhere
    env, host, loads, log = build_host(preset, scope, forced_reuse)
    for index, dt in steps:
        n_log = len(log)
        host.attempt(loads[index])
        outcome = [row for row in log[n_log:] if row[3] in ("connect", "fail")]
        assert len(outcome) == 1
        check_invariants(env, host)
        env.run(until=env.now + dt)
        check_invariants(env, host)
    env.run(until=env.now + 1000)  # everything closes and leaves TIME_WAIT
    check_invariants(env, host)
    assert not any(host.table.owners)


# ---- Linux keeps 4-tuple scope; forced reuse is Windows' ---------------------------------


@pytest.mark.parametrize(
    ("host", "key", "fragment"),
    [
        ({"scope": "port"}, "hosts[0].scope", "4-tuple"),
        ({"scope": "local_address"}, "hosts[0].scope", "4-tuple"),
        ({"forced_reuse": True}, "hosts[0].forced_reuse", "a Windows behaviour"),
    ],
)
def test_linux_host_refuses_other_scopes_and_forced_reuse(
    host: dict[str, Any], key: str, fragment: str
) -> None:
    """scope; Windows, inferred: the Linux model is 4-tuple connect() uniqueness with its own
    TIME_WAIT reuse; a port-only scope or Windows' forced reuse would mix two systems (and once
    leaked ports): the scenario is refused, naming the key."""
    with pytest.raises(sim.ScenarioError) as info:
        scenario("linux", [burst("a", 1)], port_range=[LO, LO], **host)
    assert any(key in p and fragment in p for p in info.value.problems)
