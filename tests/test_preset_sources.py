"""Issue 15: each preset correction against its primary source, with the expected values
derived by hand in the test (never from the simulator's output).

Sources are named in each test: Linux commits by id and first tag, FreeBSD/OpenBSD/XNU
source files and functions, RFC 6056 sections, Microsoft's event texts.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import sim
from sim.ports.linux import kernel_profile
from sim.ports.policy import make_policy
from sim.ports.table import Layout
from sim.presets import PRESETS
from sim.randomness import Stream
from tests.hosts import host_from_scenario
from tests.test_presets import LO, TINY, burst, ports, scenario

A, B = "10.0.0.1:443", "10.0.0.2:443"


# ---- 1. Linux 4.2-4.5 are G1 with 32768-60999 ------------------------------------------


def test_linux_generation_boundaries_by_first_tag() -> None:
    """07f4c90062f8 "tcp/dccp: try to not exhaust ip_local_port_range in connect()" (Eric
    Dumazet, 2015-05-24) brought ``offset &= ~1`` and changed the default range to
    32768-60999 "(instead of 32768 - 61000)".  v4.1-rc1 was tagged 2015-04-26, so a
    net-next commit of late May is first in v4.2-rc1: kernels up to 4.1 are G0 with
    61000, 4.2 onwards G1 with 60999.  1580ab63fc9a "tcp/dccp: better use of ephemeral ports
    in connect()" (2016-02-10, the two parity passes) came after v4.5-rc1 (2016-01-24), so
    it is first in v4.6-rc1: 4.5 is still G1, 4.6 is G2."""
    expected = {
        "3.16": ("G0", (32768, 61000)),
        "4.1": ("G0", (32768, 61000)),
        "4.2": ("G1", (32768, 60999)),
        "4.4": ("G1", (32768, 60999)),
        "4.5": ("G1", (32768, 60999)),
        "4.6": ("G2", (32768, 60999)),
    }
    for kernel, (generation, rng) in expected.items():
        prof = kernel_profile(kernel)
        assert (prof.generation, prof.default_range) == (generation, rng), kernel
    assert kernel_profile(PRESETS["linux-4.1"].kernel or "").generation == "G0"
    assert kernel_profile(PRESETS["linux-4.2"].kernel or "").generation == "G1"
    s = sim.run(scenario("linux", [burst("a", 1)], kernel="4.4")).summary
    assert tuple(s["hosts"][0]["port_range"]) == (32768, 60999)


@pytest.mark.parametrize("kernel", ["4.2", "4.4", "4.5"])
def test_linux_42_to_45_start_even_and_step_by_two(kernel: str) -> None:
    """G1 in 4.2's ``__inet_hash_connect``: ``offset = (hint + port_offset) & ~1``, then
    ``port = low + (i + offset) % remaining`` for i = 0, 1, ...; on success
    ``hint += (i + 2) & ~1``.  Range 40000-40007 (remaining = 8, which divides 2^32, so the
    u32 wrap of hint + port_offset does not matter), 8 connections to one destination kept
    open, hint starting at 0, E = (port_offset & ~1) mod 8 (even, unknown):
    * 1st: i = 0 -> E, hint 2;  2nd: E + 2, hint 4;  3rd: E + 4;  4th: E + 6, hint 8;
    * 5th: offset E + 8 = E is busy, i = 1 -> E + 1, hint += (1 + 2) & ~1 = 2 -> 10;
    * 6th: E + 2 busy -> E + 3;  7th: E + 5;  8th: E + 7.
    So offsets E, E+2, E+4, E+6, E+1, E+3, E+5, E+7 (mod 8).  Kernels up to 4.1 (G0,
    ``for i in 1..remaining``, ``hint += i``) give S, S+1, ..., S+7 instead."""
    r = sim.run(scenario("linux", [burst("a", 8)], kernel=kernel, port_range=TINY), events=True)
    got = [p - LO for p in ports(r)]
    e = got[0]
    assert e % 2 == 0
    assert got == [(e + d) % 8 for d in (0, 2, 4, 6, 1, 3, 5, 7)]
    r = sim.run(scenario("linux", [burst("a", 8)], kernel="4.1", port_range=TINY), events=True)
    got = [p - LO for p in ports(r)]
    assert got == [(got[0] + d) % 8 for d in range(8)]


# ---- 5. macOS: the first port after boot is 49152 -------------------------------------


def test_macos_first_port_is_first() -> None:
    """xnu ``bsd/netinet/in_pcb.c`` ``in_pcbbind`` (counting up, ``randomport`` off for TCP):
    ``++*lastport; if (*lastport < first || *lastport > last) *lastport = first;`` with
    ``lastport = &pcbinfo->ipi_lastport``, which is 0 after boot (a zeroed static
    ``inpcbinfo``).  So the first call gives 0 + 1 = 1 < 49152 -> 49152, then 49153, ...:
    ``first_offset`` is 0, not BSD's usual cursor + 1.  On 8 ports: LO, LO+1, ..., LO+7,
    and a 9th attempt fails."""
    r = sim.run(scenario("macos", [burst("a", 2)]), events=True)
    assert ports(r) == [49152, 49153]
    sc = scenario("macos", [burst("a", 8), burst("a", 1, 1.0)], port_range=TINY)
    r = sim.run(sc, events=True)
    assert ports(r) == list(range(LO, LO + 8))
    assert r.summary["connections"]["failed"] == 1


@pytest.mark.parametrize(
    ("preset", "first"),
    [
        # ns-3 ipv4-end-point-demux.cc: m_ephemeral = 49152, AllocateEphemeralPort does
        # port++ before the first check -> 49153
        ("ns3", 49153),
        # INET Tcp.cc: lastEphemeralPort = EPHEMERAL_PORTRANGE_START (1024), ++ first -> 1025
        ("omnetpp-inet", 1025),
        # NetBSD portalgo.c algo_bsd: next_ephemeral 0 is out of range -> mymax (65535)
        ("netbsd", 65535),
        # XNU in_pcbbind, ipi_lastport 0 -> first (above)
        ("macos", 49152),
    ],
)
def test_first_port_of_each_sequential_preset(preset: str, first: int) -> None:
    """``first_offset`` of every sequential preset against its source (item 5's check of
    the others).  Windows is not here: its order is inferred (docs/presets/windows.md)."""
    r = sim.run(scenario(preset, [burst("a", 1)]), events=True)
    assert ports(r) == [first]


# ---- 7. OpenBSD skips udpencap_port (4500) for UDP --------------------------------------


def test_openbsd_never_hands_out_udpencap_port_for_udp() -> None:
    """openbsd/src ``sys/netinet/in_pcb.c`` ``in_baddynamic()``: for IPPROTO_UDP, under
    ``#ifdef IPSEC`` (set in GENERIC), ``if (port == udpencap_port) return (1);`` and
    ``udpencap_port = 4500`` (``sys/netinet/ipsec_output.c``).  On 4495-4504 (10 ports, no
    other bad-dynamic port among them): 10 UDP attempts get the 9 ports other than 4500 and
    one failure; 10 TCP attempts (the TCP list has no 4500) get all 10."""
    loads = [burst("a", 10, protocol="udp"), burst("a", 10, 1.0)]
    r = sim.run(scenario("openbsd", loads, port_range=[4495, 4504]), events=True)
    assert sorted(ports(r, protocol="udp")) == [p for p in range(4495, 4505) if p != 4500]
    assert sorted(ports(r, protocol="tcp")) == list(range(4495, 4505))
    assert r.summary["connections"]["failed"] == 1


# ---- 3. FreeBSD nolocaltimewait: any of the host's own addresses -----------------------


def freebsd_close(address: str, dest: str, **host: Any) -> sim.Result:
    data: dict[str, Any] = {
        "name": "tw",
        "duration": 200,
        "hosts": [{"name": "h", "os": "freebsd", "address": address, **host}],
        "destinations": [{"name": "d", "address": dest}],
        "load": [burst("d", 1, 0.0, "1s")],
    }
    return sim.run(sim.parse_scenario(data), events=True)


def time_wait_ends(r: sim.Result) -> list[float]:
    ev = r.events
    return ev[ev.event == "time_wait_end"].time_s.tolist()


@pytest.mark.parametrize(
    ("address", "dest", "expected"),
    [
        # in_localip(192.0.2.2) on a host configured with 192.0.2.2: true -> no TIME_WAIT
        ("192.0.2.2", "192.0.2.2:443", []),
        # lo0 carries 127.0.0.1: in_localip is true
        ("192.0.2.2", "127.0.0.1:9000", []),
        # a neighbour on the same /24 is not one of the host's addresses: 2 x 30 s MSL
        ("192.0.2.2", "192.0.2.50:443", [61.0]),
        # 127.0.0.2 is not configured on lo0 (only 127.0.0.1 is): in_localip is false
        ("192.0.2.2", "127.0.0.2:9000", [61.0]),
        # IPv6: in6_localaddr(::1) is true; a remote address is not
        ("2001:db8::1", "[::1]:443", []),
        ("2001:db8::1", "[2606:4700::1]:443", [61.0]),
    ],
)
def test_freebsd_nolocaltimewait_means_the_hosts_own_addresses(
    address: str, dest: str, expected: list[float]
) -> None:
    """freebsd-src ``sys/netinet/tcp_timewait.c`` ``tcp_twstart``: ``if (V_nolocaltimewait
    && (isipv6 ? in6_localaddr(&inp->in6p_faddr) : in_localip(inp->inp_faddr)))`` the
    connection is closed without TIME_WAIT.  ``in_localip`` (``in.c``) is true when the
    address is configured on one of the host's interfaces, so a connection from 192.0.2.2
    to 192.0.2.2:443 closed by the client at 1 s keeps no TIME_WAIT (it kept 60 s before
    issue 15); the default is 1 since FreeBSD 14.0 (release notes, commit 92b3e07229ba).
    Otherwise TIME_WAIT is 2 x net.inet.tcp.msl (30 s) = 60 s: it ends at 61 s."""
    assert time_wait_ends(freebsd_close(address, dest)) == expected


def test_freebsd_nolocaltimewait_is_a_parameter() -> None:
    """``nolocaltimewait = false`` (the default before 14.0, and freebsd-12's) keeps the
    60 s TIME_WAIT towards the host's own address; the key is refused on other systems."""
    assert time_wait_ends(freebsd_close("192.0.2.2", "192.0.2.2:443", nolocaltimewait=False)) == [
        61.0
    ]
    with pytest.raises(sim.ScenarioError) as info:
        scenario("linux", [burst("a", 1)], nolocaltimewait=True)
    assert any("hosts[0].nolocaltimewait" in p for p in info.value.problems)


# ---- 6. RFC 6056 algorithms 3 and 4: 16-bit counter, unwrapped sum ----------------------


def hash_policy(alg: int, counter: int, offset: int, n: int) -> tuple[Any, Layout, bytearray]:
    """An algorithm 3 or 4 policy with its counter and F fixed by hand (algorithm 4 with
    one table entry), and an empty map of n ports."""
    policy = make_policy(f"rfc6056-{alg}", Stream(np.random.SeedSequence(7)), n, table_size=1)
    policy.offset = lambda key: offset  # type: ignore[method-assign]
    if alg == 3:
        policy.counter = counter
    else:
        policy.table[0] = counter
    return policy, Layout(n), bytearray(n)


def counter_of(policy: Any) -> int:
    return policy.counter if hasattr(policy, "counter") else policy.table[0]


@pytest.mark.parametrize("alg", [3, 4])
def test_rfc6056_hash_algorithms_wrap_the_counter_not_the_sum(alg: int) -> None:
    """RFC 6056 §3.3.3: ``port = min_ephemeral + (next_ephemeral + offset) %
    num_ephemeral; next_ephemeral++;`` (§3.3.4: ``(offset + table[index]) % num_ephemeral;
    table[index]++;`` with ``table[i] = random() % 65536``).  The counter is a 16-bit value
    (NetBSD ``portalgo.c`` ``algo_hash``/``algo_doublehash``: ``uint16_t``); the sum of two
    ``uint16_t`` is an ``int`` in C, so it is not wrapped before the modulo.

    n = 1000 ports (1000 does not divide 65536), F = 700, counter 65534, nothing busy:
    * 1st call: (65534 + 700) % 1000 = 66234 % 1000 = 234; counter -> 65535;
    * 2nd call: (65535 + 700) % 1000 = 235; counter wraps to 0;
    * 3rd call: (0 + 700) % 1000 = 700; counter -> 1;
    * 4th call: 701; the counter is then 65534 + 4 = 65538, in 16 bits 2.
    Wrapping the sum at 16 bits instead (the old model) gives (66234 & 0xFFFF) % 1000 = 698,
    then 699, 700, 701: the jump would come where the sum wraps, not the counter."""
    policy, layout, cells = hash_policy(alg, 65534, 700, 1000)
    got = [policy.select(cells, layout, "d", 0.0) for _ in range(4)]
    assert got == [(234, 1), (235, 1), (700, 1), (701, 1)]
    assert counter_of(policy) == 2


@pytest.mark.parametrize("alg", [3, 4])
def test_rfc6056_hash_scan_continues_after_the_counter_wraps(alg: int) -> None:
    """The same arithmetic inside one scan: n = 1000, F = 700, counter 65535, ports 235
    and 700 busy.  Probe 0: (65535 + 700) % 1000 = 235, busy; counter wraps to 0.  Probe 1:
    (0 + 700) % 1000 = 700, busy; probe 2: 701, free: port 701 after 3 probes, and the
    counter has been bumped on every probe (§3.3.3 increments it before the check):
    65535 + 3 = 65538, stored in 16 bits: 2."""
    policy, layout, cells = hash_policy(alg, 65535, 700, 1000)
    for k in (235, 700):
        cells[layout.cell(k)] = 1
    assert policy.select(cells, layout, "d", 0.0) == (701, 3)
    assert counter_of(policy) == 2


def test_rfc6056_alg3_jumps_once_per_counter_cycle_on_a_range_not_dividing_65536() -> None:
    """End to end on 40000-40999 (n = 1000): with nothing held (connect-and-reset), each
    port is the previous + 1 (mod 1000) except where the 16-bit counter wraps, where the
    step is (F - (65535 + F)) mod 1000 = -65535 mod 1000 = 465.  With a random start the
    wrap comes within 65,536 connections: 66,000 cycles (1 ms apart) see exactly one jump
    of 465 and otherwise steps of 1.  The port after the jump is lo + F mod 1000 (the
    counter is 0); wrapping the sum instead put it at lo + 0 whatever F (the sum wraps to
    0), so with this seed's F (F mod 1000 != 0, checked) it is not 40000."""
    loads = [
        {
            "destination": "a",
            "arrival": {"kind": "constant", "interval": 0.001},
            "lifetime": {"kind": "fixed", "value": 0},
            "close": "reset",
            "stop": 66.0,
        }
    ]
    sc = scenario("rfc6056-alg3", loads, duration=66, port_range=[40000, 40999])
    got = np.array(ports(sim.run(sc, events=True)))
    assert len(got) == 66000
    steps = np.diff(got) % 1000
    assert sorted(set(steps.tolist())) == [1, 465]
    assert int(np.sum(steps == 465)) == 1
    after = int(got[1:][steps == 465][0])
    assert after != 40000


# ---- 4. Windows forced reuse: TIME_WAIT ports only, in sequential order ------------------


def windows_run(loads: list[dict[str, Any]], port_range: list[int], **host: Any) -> sim.Result:
    return sim.run(
        scenario("windows", loads, duration=300, port_range=port_range, **host), events=True
    )


def test_windows_live_connections_are_never_shared() -> None:
    """Event 4227's text ("the selected local endpoint was recently used to connect to the
    same remote endpoint ... forcing TCP/IP to reuse a local port") speaks of a *recently
    used* endpoint: a port in TIME_WAIT.  Without SO_REUSE_UNICASTPORT / an auto-reuse range
    a port held by a live connection stays exclusive (Windows' global TCP port space).
    16 ports, 20 never-closing connections to each of 3 destinations at 0, 1 and 2 s: the
    first 16 to the first destination succeed, nothing is in TIME_WAIT, so every one of
    the other 4 + 20 + 20 = 44 attempts finds no port: WSAENOBUFS and event 4231 ("...the
    global TCP port space has failed due to all such ports being in use"), 44 times, and no
    4227.  (The old model shared ports across destinations: 48 succeeded.)"""
    loads = [burst(d, 20, float(i)) for i, d in enumerate(("a", "b", "c"))]
    s = windows_run(loads, [LO, LO + 15]).summary
    assert [ld["succeeded"] for ld in s["loads"]] == [16, 0, 0]
    assert s["connections"]["failed"] == s["connections"]["failed_by_error"]["WSAENOBUFS"] == 44
    assert s["hosts"][0]["windows_events"] == {"4227": 0, "4231": 44}


def test_windows_forced_reuse_follows_the_sequential_cursor() -> None:
    """Forced reuse takes TIME_WAIT ports in the order of the (inferred) sequential cursor,
    not in the simulator's parity layout (even offsets first).  8 ports:
    * 0 s: 8 connections to a, closed at 1 s: 40001 .. 40007, 40000 (cursor + 1 first,
      wrapping to 40000; the cursor ends on 40000), all in TIME_WAIT to a until 121 s;
    * 2, 3, 4 s: one connection to b each: no free port; forced reuse from cursor + 1:
      40001, 40002, 40003 (the parity layout would have given 40000, 40002, 40004);
    * 130 s: a's TIME_WAITs are over: 40000 and 40004 .. 40007 are free again, b holds
      40001 .. 40003: an ordinary sequential allocation to c continues from the cursor
      (40003): 40004."""
    loads = [
        burst("a", 8, 0.0, "1s"),
        burst("b", 1, 2.0),
        burst("b", 1, 3.0),
        burst("b", 1, 4.0),
        burst("c", 1, 130.0),
    ]
    r = windows_run(loads, TINY)
    assert ports(r, A) == [*range(LO + 1, LO + 8), LO]
    assert ports(r, B) == [LO + 1, LO + 2, LO + 3]
    assert ports(r, "10.0.0.3:443") == [LO + 4]
    assert r.summary["connections"]["failed"] == 0


def test_windows_forced_reuse_off_fails_at_once() -> None:
    """``forced_reuse = false``: the same 8 TIME_WAIT ports are not reused for b: 4231."""
    loads = [burst("a", 8, 0.0, "1s"), burst("b", 1, 2.0)]
    s = windows_run(loads, TINY, forced_reuse=False).summary
    assert s["hosts"][0]["windows_events"] == {"4227": 0, "4231": 1}


# ---- 2. FreeBSD 13+ connected UDP is unique by 4-tuple --------------------------------

TEN = [LO, LO + 9]


def udp_two_destinations(preset: str, **host: Any) -> dict[str, Any]:
    loads = [burst("a", 15, 0.0, protocol="udp"), burst("b", 15, 1.0, protocol="udp")]
    return sim.run(scenario(preset, loads, port_range=TEN, **host)).summary


def test_freebsd_connected_udp_shares_ports_across_destinations() -> None:
    """freebsd-src ``sys/netinet/udp_usrreq.c`` ``udp_connect`` -> ``in_pcbconnect`` ->
    ``in_pcbconnect_setup`` -> ``in_pcb_lport_dest(inp, &laddr, &lport, faddr, fport,
    ...)``: with the foreign address known, a candidate is busy only if that 4-tuple exists
    (the lookup TCP uses).  10 ports, 15 connected UDP sockets to each of two destinations,
    all kept open: each destination gets all 10 ports, 10 + 10 = 20 succeed, and the other
    5 + 5 fail with in_pcb_lport_dest's EADDRNOTAVAIL.  (Before issue 15: 10 in all.)"""
    s = udp_two_destinations("freebsd")
    assert [ld["succeeded"] for ld in s["loads"]] == [10, 10]
    assert s["connections"]["failed"] == s["connections"]["failed_by_error"]["EADDRNOTAVAIL"]
    assert s["connections"]["failed"] == 10


@pytest.mark.parametrize("preset", ["freebsd-12", "openbsd", "netbsd", "macos", "windows"])
def test_other_systems_give_connected_udp_one_port_each(preset: str) -> None:
    """The other BSDs and XNU bind a connecting UDP socket before it has a peer:
    ``in_pcbconnect`` calls ``in_pcbbind`` (OpenBSD ``in_pcbbind_locked(inp, NULL, &ina,
    ...)`` with the chosen source address; xnu ``in_pcbbind(inp, NULL, nam, p)`` while
    ``inp_laddr`` is INADDR_ANY; NetBSD likewise; FreeBSD 12 has no ``in_pcb_lport_dest``),
    and the port is picked with a *local* lookup (``in_pcblookup_local`` and friends, local
    address or wildcard, port): a port any socket uses is busy whatever its peer.  Windows
    allocates from one UDP port space.  So the same run gives 10 in all, to the first
    destination."""
    s = udp_two_destinations(preset)
    assert [ld["succeeded"] for ld in s["loads"]] == [10, 0]


def test_freebsd_udp_bind_checks_the_local_port_and_udp_scope_is_a_parameter() -> None:
    """``bind(0)`` has no peer: ``in_pcbbind`` -> ``in_pcb_lport`` with no foreign address
    looks the port up locally, so a port any connected socket uses is busy: after 10
    connected sockets to a fill the 10 ports, a bind-then-connect UDP socket to b gets
    EADDRINUSE.  ``udp_scope = "port"`` on a FreeBSD host restores one port per socket
    (10 in all); Linux refuses ``udp_scope = "4tuple"`` (``udp_lib_get_port`` ignores the
    destination)."""
    loads = [burst("a", 10, 0.0, protocol="udp"), burst("b", 1, 1.0, protocol="udp", socket="bind")]
    s = sim.run(scenario("freebsd", loads, port_range=TEN)).summary
    assert [ld["succeeded"] for ld in s["loads"]] == [10, 0]
    assert s["connections"]["failed_by_error"]["EADDRINUSE"] == 1
    s = udp_two_destinations("freebsd", udp_scope="port")
    assert [ld["succeeded"] for ld in s["loads"]] == [10, 0]
    with pytest.raises(sim.ScenarioError) as info:
        scenario("linux", [burst("a", 1)], udp_scope="4tuple")
    assert any("hosts[0].udp_scope" in p for p in info.value.problems)


# ---- inferred values are parameters ---------------------------------------------------


def alternating_tcp_udp() -> list[dict[str, Any]]:
    """A TCP attempt at 0, 2, 4, 6 s and a UDP attempt at 1, 3, 5, 7 s, all kept open."""
    return [
        {
            "destination": "a",
            "protocol": proto,
            "arrival": {"kind": "constant", "interval": 2.0},
            "lifetime": {"kind": "fixed", "value": "inf"},
            "start": start,
            "stop": 8.0,
        }
        for proto, start in (("tcp", 0.0), ("udp", 1.0))
    ]


def test_shared_counter_is_a_parameter() -> None:
    """The TCP/UDP counter shared by Windows up to 2003 is inferred (HSC's example), so it
    is a host key.  ``shared_counter = true`` on ``windows`` (first port cursor + 1): one
    cursor serves both, so the 8 alternating attempts get LO+1 .. LO+7, then LO (wrap):
    TCP LO+1, LO+3, LO+5, LO+7 and UDP LO+2, LO+4, LO+6, LO.  ``false`` on ``windows-xp``
    (first port lo): two cursors, each LO .. LO+3.  Refused with two different policies."""
    r = sim.run(
        scenario(
            "windows", alternating_tcp_udp(), duration=20, port_range=TINY, shared_counter=True
        ),
        events=True,
    )
    assert ports(r, protocol="tcp") == [LO + 1, LO + 3, LO + 5, LO + 7]
    assert ports(r, protocol="udp") == [LO + 2, LO + 4, LO + 6, LO]
    r = sim.run(
        scenario(
            "windows-xp", alternating_tcp_udp(), duration=20, port_range=TINY, shared_counter=False
        ),
        events=True,
    )
    assert ports(r, protocol="tcp") == ports(r, protocol="udp") == list(range(LO, LO + 4))
    with pytest.raises(sim.ScenarioError) as info:
        scenario("macos", [burst("a", 1)], shared_counter=True)  # TCP sequential, UDP random
    assert any("hosts[0].shared_counter" in p for p in info.value.problems)


@pytest.mark.parametrize(("rule", "whole_seconds"), [("s>1", 2), ("s>0", 1)])
def test_tcp_tw_reuse_rule_is_a_parameter(rule: str, whole_seconds: int) -> None:
    """The release of the ``time_after32`` change in ``tcp_twsk_unique`` is inferred (about
    4.18), so the rule is a host key.  Before it a TIME_WAIT could be reused when
    ``get_seconds() - tw_ts_recent_stamp > 1``; after it when
    ``time_after32(ktime_get_seconds(), tw_ts_recent_stamp)``, i.e. the whole-second clock
    has moved on by more than 1, or by at least 1.  With the clock's phase p (whole seconds
    fall at t = k - p), a TIME_WAIT stamped at t = 10.3 is reusable at floor(10.3 + p) + 2 - p
    or + 1 - p.  Refused on a non-Linux host."""
    data: dict[str, Any] = {
        "name": "rule",
        "duration": 100,
        "hosts": [{"name": "h", "os": "linux", "tcp_tw_reuse_rule": rule}],
        "destinations": [{"name": "d", "address": A}],
        "load": [burst("d", 1)],
    }
    host = host_from_scenario(sim.parse_scenario(data))[1]
    p = host.kernel.phase % 1.0
    assert host._reuse_time(10.3) == pytest.approx(math.floor(10.3 + p) + whole_seconds - p)
    with pytest.raises(sim.ScenarioError) as info:
        scenario("freebsd", [burst("a", 1)], tcp_tw_reuse_rule=rule)
    assert any("hosts[0].tcp_tw_reuse_rule" in p for p in info.value.problems)


def test_first_port_is_a_parameter() -> None:
    """Windows' first port after boot is inferred (cursor + 1 = 49153): ``first_port``
    sets where a sequential cursor starts (49152 -> 49152, 49153, ...); refused for a
    non-sequential policy and outside the range."""
    r = sim.run(scenario("windows", [burst("a", 2)], first_port=49152), events=True)
    assert ports(r) == [49152, 49153]
    for os_name, first in (("freebsd", 20000), ("windows", 1000)):
        with pytest.raises(sim.ScenarioError) as info:
            scenario(os_name, [burst("a", 1)], first_port=first)
        assert any("hosts[0].first_port" in p for p in info.value.problems)


# ---- `portsim presets` and docs/presets agree with the corrected behaviour -------------


def test_presets_table_and_docs_agree(capsys: pytest.CaptureFixture[str]) -> None:
    """`portsim presets` shows the corrected facts (4.2-4.5 G1 with 60999, up to 4.1 G0
    with 61000; FreeBSD's UDP 4-tuple scope and its nolocaltimewait), cites no research
    notes, and lists every inferred value with its host key; docs/presets/README.md's
    "What remains inferred" table names the same keys."""
    from pathlib import Path

    from sim.cli import main

    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines() if line and line[0] != " "}
    assert "32768-60999" in rows["linux-4.2"] and "linux G1" in rows["linux-4.2"]
    assert "32768-61000" in rows["linux-4.1"] and "linux G0" in rows["linux-4.1"]
    assert "udp too" in rows["freebsd"] and "0 to its own addresses" in rows["freebsd"]
    assert "udp too" not in rows["freebsd-12"]
    assert ".md §" not in out
    docs = (Path(__file__).parent.parent / "docs" / "presets" / "README.md").read_text()
    inferred = docs.split("## What remains inferred")[1]
    for preset in PRESETS.values():
        for item in preset.inferred:
            assert item in out
            key = item.rsplit("(", 1)[1].split(")")[0].split(" =")[0].split(",")[0]
            assert f"`{key}" in inferred, (preset.name, key)
