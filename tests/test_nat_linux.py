"""The Linux SNAT kind against net/netfilter/nf_nat_core.c, by hand arithmetic.

Expected values come from the kernel's rules (the loop transcribed port by port below, the
--to-ports sizes, conntrack's timeouts), never from the model's own output."""

from __future__ import annotations

import random

import numpy as np
import pytest

from sim.nat.base import INSERT_FAILED, NO_FREE_TUPLE, GatewayConfig, Mapping
from sim.nat.kinds import KINDS, make_gateway
from sim.nat.linux import (
    LinuxMasquerade,
    _scan,
    address_index,
    port_class,
)
from sim.randomness import Stream

DST = "203.0.113.10"
DST2 = "203.0.113.11"


def gateway(
    kind: str = "linux-masquerade",
    addresses: tuple[str, ...] = ("198.51.100.1",),
    port_range: tuple[int, int] | None = None,
    seed: int = 1,
    **options: object,
) -> LinuxMasquerade:
    options.setdefault("confirm_window", 0.0)  # no race unless a test studies it
    config = GatewayConfig("gw", kind, addresses, port_range, dict(options))
    gw = make_gateway(config, Stream(np.random.SeedSequence(seed)))
    assert isinstance(gw, LinuxMasquerade)
    return gw


def pod(i: int) -> str:
    return f"10.244.1.{i + 2}"


def test_kinds_registered() -> None:
    assert set(KINDS) >= {"linux-masquerade", "k8s-node"}


def reference_probe(cells: bytearray, lo: int, size: int, off: int, i0: int, i1: int) -> int:
    """The kernel's probe loop, port by port: ``for (i...; off++) port = min + off % size``
    with a u16 ``off`` (nf_nat_l4proto_unique_tuple)."""
    o = (off + i0) & 0xFFFF
    for i in range(i0, i1):
        if cells[lo + o % size] == 0:
            return i
        o = (o + 1) & 0xFFFF
    return -1


def test_scan_matches_the_kernel_loop() -> None:
    rng = random.Random(7)
    for _ in range(3000):
        lo = rng.choice([1, 600, 1024, 30000])
        size = rng.choice([1, 5, 10, 100, 424, 511, 64512 if lo == 1024 else 1000])
        cells = bytearray(65536)
        fill = rng.random()
        for p in range(lo, lo + size):
            cells[p] = 1 if rng.random() < fill else 0
        off = rng.choice([rng.randrange(65536), 65535 - rng.randrange(130)])
        attempts = min(size, 128)
        i0 = rng.randrange(attempts)
        assert _scan(cells, lo, size, off, i0, attempts) == reference_probe(
            cells, lo, size, off, i0, attempts
        )


def test_port_classes() -> None:
    # nf_nat_l4proto_unique_tuple without --to-ports
    assert port_class(80) == (1, 511)
    assert port_class(700) == (600, 1023)
    assert port_class(40000) == (1024, 65535)


def test_ten_ports_three_hosts_one_destination() -> None:
    """--to-ports of 10, never-closing flows: exactly 10 mappings, then nothing is free."""
    gw = gateway(port_range=(1024, 1033))
    results = [
        gw.translate(0.0, "tcp", h, pod(h), 40000 + k, DST, 443)
        for k in range(10)
        for h in range(3)
    ]
    mapped = [r for r in results if isinstance(r, Mapping)]
    assert len(mapped) == 10
    assert sorted(m.port for m in mapped) == list(range(1024, 1034))
    assert results.count(NO_FREE_TUPLE) == 20
    assert gw.counters.dropped_by_reason[NO_FREE_TUPLE] == 20


def test_ten_ports_two_destinations_give_twenty() -> None:
    """5-tuple uniqueness: the same 10 public ports serve each destination."""
    gw = gateway(port_range=(1024, 1033))
    ok = 0
    for k in range(15):
        for h in range(3):
            for dst in (DST, DST2):
                ok += isinstance(gw.translate(0.0, "tcp", h, pod(h), 40000 + k, dst, 443), Mapping)
    assert ok == 20


def test_port_preservation_then_remap() -> None:
    gw = gateway()
    first = gw.translate(0.0, "tcp", 0, pod(0), 40000, DST, 443)
    assert isinstance(first, Mapping) and first.port == 40000
    # another pod with the same port to the same destination: remapped into [1024, 65535]
    second = gw.translate(0.0, "tcp", 1, pod(1), 40000, DST, 443)
    assert isinstance(second, Mapping) and second.port != 40000
    assert 1024 <= second.port <= 65535
    # the same port to another destination is a different 5-tuple: preserved again
    third = gw.translate(0.0, "tcp", 1, pod(1), 40001, DST2, 443)
    assert isinstance(third, Mapping) and third.port == 40001


def test_bysource_reuses_the_inside_ports_mapping() -> None:
    """find_appropriate_src: the same inside (address, port) keeps its public port for a
    second destination when that 5-tuple is free."""
    gw = gateway()
    gw.translate(0.0, "tcp", 0, pod(0), 40000, DST, 443)
    moved = gw.translate(0.0, "tcp", 1, pod(1), 40000, DST, 443)
    assert isinstance(moved, Mapping)
    again = gw.translate(0.0, "tcp", 1, pod(1), 40000, DST2, 443)
    assert isinstance(again, Mapping) and again.port == moved.port


def test_random_fully_skips_preservation() -> None:
    gw = gateway(random_fully=True)
    kept = 0
    for k in range(2000):
        m = gw.translate(0.0, "tcp", 0, pod(0), 32768 + k, DST, 443)
        assert isinstance(m, Mapping)
        kept += m.port == 32768 + k
    # a uniform pick over 64,512 ports matches the inside port with p = 1/64512 per flow:
    # expected 0.03 in 2,000; 3 or more has probability below 1e-5
    assert kept <= 2


def fin_then_retry(gw: LinuxMasquerade, close: str, at: float) -> object:
    m = gw.translate(0.0, "tcp", 0, pod(0), 40000, DST, 443)
    assert isinstance(m, Mapping)
    gw.release(m, 1.0, close)
    return gw.translate(at, "tcp", 1, pod(1), 40001, DST, 443)


@pytest.mark.parametrize(
    ("close", "hold"),
    [("fin", 120.0), ("rst", 10.0)],
)
def test_holds_after_close(close: str, hold: float) -> None:
    """nf_conntrack_tcp_timeout_time_wait 120 s after FIN, _close 10 s after RST; kernel
    6.1 (no eviction of closing entries) and a one-port range."""
    gw = gateway(port_range=(2000, 2000), kernel="6.1")
    assert fin_then_retry(gw, close, 1.0 + hold - 0.001) == NO_FREE_TUPLE
    gw = gateway(port_range=(2000, 2000), kernel="6.1")
    ok = fin_then_retry(gw, close, 1.0 + hold)
    assert isinstance(ok, Mapping) and ok.port == 2000


def test_conntrack_override() -> None:
    gw = gateway(port_range=(2000, 2000), kernel="6.1", conntrack={"time_wait": 30})
    assert isinstance(fin_then_retry(gw, "fin", 31.0), Mapping)


@pytest.mark.parametrize(("life", "hold"), [(1.0, 30.0), (5.0, 120.0)])
def test_udp_holds(life: float, hold: float) -> None:
    """UDP: 30 s unless the flow lasted more than 2 s (a stream): 120 s."""
    for at, expect_free in ((life + hold - 0.01, False), (life + hold, True)):
        gw = gateway(port_range=(2000, 2000))
        m = gw.translate(0.0, "udp", 0, pod(0), 40000, DST, 53)
        assert isinstance(m, Mapping)
        gw.release(m, life, "udp")
        r = gw.translate(at, "udp", 1, pod(1), 40001, DST, 53)
        assert isinstance(r, Mapping) is expect_free


def test_eviction_of_closing_entries_from_6_5() -> None:
    """nf_nat_used_tuple_harder: in the last 32 attempts a TIME_WAIT entry is evicted when
    the sequence has advanced (forced here); 6.4 has no such path."""
    gw = gateway(port_range=(2000, 2000), kernel="6.5", evict_seq_advanced=1.0)
    r = fin_then_retry(gw, "fin", 2.0)
    assert isinstance(r, Mapping) and r.port == 2000 and gw.evicted == 1
    gw = gateway(port_range=(2000, 2000), kernel="6.4", evict_seq_advanced=1.0)
    assert fin_then_retry(gw, "fin", 2.0) == NO_FREE_TUPLE
    gw = gateway(port_range=(2000, 2000), kernel="6.5", evict_seq_advanced=0.0)
    assert fin_then_retry(gw, "fin", 2.0) == NO_FREE_TUPLE


def test_eviction_only_in_the_last_32_probes() -> None:
    """A 128-port range full of TIME_WAIT entries: the first run's first 96 probes cannot
    evict, so with eviction certain the chosen port is the 97th probe of the first run."""
    gw = gateway(port_range=(2000, 2127), kernel="6.18", evict_seq_advanced=1.0, seed=3)
    fills = [gw.translate(0.0, "tcp", 0, pod(0), 40000 + k, DST, 443) for k in range(128)]
    for m in fills:  # all live while filling: one draw each, no eviction
        assert isinstance(m, Mapping)
        gw.release(m, 0.5, "fin")
    off = Stream(np.random.SeedSequence(3))
    off.uniform()  # the gateway's first draw: its ISN-verdict salt (LinuxMasquerade.__init__)
    for _ in range(128):  # the same stream: the draws the fills made
        off.below(65536)
    start = off.below(65536)
    r = gw.translate(1.0, "tcp", 1, pod(1), 50000, DST, 443)
    assert isinstance(r, Mapping)
    assert r.port == 2000 + (((start + 96) & 0xFFFF) % 128)


def test_reopen_same_inside_tuple() -> None:
    """A SYN on the inside 4-tuple of a TIME_WAIT conntrack reopens it (any kernel)."""
    gw = gateway(port_range=(2000, 2000), kernel="6.1")
    m = gw.translate(0.0, "tcp", 0, pod(0), 40000, DST, 443)
    assert isinstance(m, Mapping)
    gw.release(m, 1.0, "fin")
    again = gw.translate(5.0, "tcp", 0, pod(0), 40000, DST, 443)
    assert isinstance(again, Mapping) and again.port == 2000 and gw.reopened == 1


def test_address_hash_is_stable_and_spreads() -> None:
    addresses = [f"198.51.100.{i}" for i in range(1, 5)]
    counts = [0] * 4
    for i in range(4000):
        src = f"10.{i // 250}.{i % 250}.7"
        a = address_index(src, DST, 4)
        assert a == address_index(src, DST, 4)
        counts[a] += 1
    # binomial(4000, 1/4): mean 1000, sd 27.4; 5 sd either side
    assert all(863 <= c <= 1137 for c in counts), counts
    assert len(addresses) == 4
    # --persistent: the destination no longer seeds the hash
    src = "10.0.0.9"
    assert {address_index(src, f"203.0.113.{d}", 4, persistent=True) for d in range(50)} == {
        address_index(src, DST, 4, persistent=True)
    }
    assert len({address_index(src, f"203.0.113.{d}", 4) for d in range(50)}) > 1


def test_no_spill_over_to_another_address() -> None:
    """find_best_ips_proto picks one address per (source, destination); a full one does not
    send the flow to the other."""
    addresses = ("198.51.100.1", "198.51.100.2")
    gw = gateway(addresses=addresses, port_range=(2000, 2000))
    # two inside sources hashing to the same address
    srcs = [f"10.244.{i // 200}.{i % 200 + 1}" for i in range(400)]
    by = {}
    for s in srcs:
        by.setdefault(address_index(s, DST, 2), []).append(s)
    a, b = by[0][:2]
    assert isinstance(gw.translate(0.0, "tcp", 0, a, 40000, DST, 443), Mapping)
    assert gw.translate(0.0, "tcp", 1, b, 40000, DST, 443) == NO_FREE_TUPLE
    other = by[1][0]
    m = gw.translate(0.0, "tcp", 2, other, 40000, DST, 443)
    assert isinstance(m, Mapping) and m.address == addresses[1]


W = 10e-6  # the kind's default confirm window


def race_pair(gw: LinuxMasquerade, sport2: int = 40000) -> object:
    gw.translate(0.0, "tcp", 0, pod(0), 40000, DST, 443)
    return gw.translate(W / 2, "tcp", 1, pod(1), sport2, DST, 443)


def test_insert_race_with_port_preservation() -> None:
    """Two pods with the same source port inside the confirm window both keep it: the
    later confirm fails (kubernetes/kubernetes#56903)."""
    assert race_pair(gateway(confirm_window=W)) == INSERT_FAILED
    # outside the window the second sees the first and is remapped
    gw = gateway(confirm_window=W)
    gw.translate(0.0, "tcp", 0, pod(0), 40000, DST, 443)
    assert isinstance(gw.translate(1e-3, "tcp", 1, pod(1), 40000, DST, 443), Mapping)
    # no window, no race
    assert isinstance(race_pair(gateway(confirm_window=0.0)), Mapping)


def test_random_fully_shrinks_the_race() -> None:
    """With --random-fully each of two concurrent flows starts at an independent uniform
    port of a 100-port range: they clash with probability 1/100.  Without it they keep
    their (equal) source port and always clash; before 5.17, the shared rover made two
    remapped flows start at the same port and clash every time."""
    trials = 4000
    clashes = 0
    for seed in range(trials):
        gw = gateway(port_range=(1024, 1123), random_fully=True, seed=seed, confirm_window=W)
        clashes += race_pair(gw) == INSERT_FAILED
    # binomial(4000, 0.01): mean 40, sd 6.3; 4 sd either side
    assert 15 <= clashes <= 65
    keep = [
        race_pair(gateway(port_range=(40000, 40099), seed=s, confirm_window=W)) for s in range(20)
    ]
    assert keep == [INSERT_FAILED] * 20
    old = [
        race_pair(gateway(port_range=(1024, 1123), kernel="5.10", seed=s, confirm_window=W), 40001)
        for s in range(20)
    ]
    assert old == [INSERT_FAILED] * 20


def test_k8s_node_defaults() -> None:
    gw = gateway(kind="k8s-node")
    assert gw.random_fully is True
    assert gw.timeouts["established"] == 86400 and gw.timeouts["close_wait"] == 3600
    assert gw.timeouts["time_wait"] == 120
    gw = gateway(kind="k8s-node", conntrack={"time_wait": 60})
    assert gw.timeouts["established"] == 86400 and gw.timeouts["time_wait"] == 60


def test_pressure_is_held_over_capacity() -> None:
    gw = gateway(port_range=(1024, 1033))
    ms = [gw.translate(0.0, "tcp", 0, pod(0), 40000 + k, DST, 443) for k in range(4)]
    assert gw.sample_bin(1.0) == (pytest.approx(0.4), f"tcp {DST}:443")
    for m in ms:
        assert isinstance(m, Mapping)
        gw.release(m, 1.0, "fin")
    assert gw.sample_bin(60.0)[0] == pytest.approx(0.4)  # TIME_WAIT still holds them
    assert gw.sample_bin(121.0)[0] == pytest.approx(0.4)  # held until 121 s within this bin
    assert gw.sample_bin(122.0)[0] == 0.0
    # 4 of 10 tuples held from 0 to 121 s, then none: mean over 242 s is 0.4 * 121 / 242
    summary = gw.pressure_summary(242.0)
    assert summary["peak"] == pytest.approx(0.4)
    assert summary["mean"] == pytest.approx(0.2)
    assert summary["worst_destination"] == f"tcp {DST}:443"


def test_bad_options() -> None:
    with pytest.raises(KeyError):
        LinuxMasquerade.check_options({"random_fuly": True})
    with pytest.raises(KeyError):
        LinuxMasquerade.check_options({"conntrack": {"timewait": 3}})
    with pytest.raises(ValueError):
        LinuxMasquerade.check_options({"conntrack": {"time_wait": -1}})
    with pytest.raises(ValueError):
        LinuxMasquerade.check_options({"kernel": "banana"})


def test_a_revived_udp_entry_keeps_its_tuple_until_its_own_hold_ends() -> None:
    """A UDP packet on the inside tuple of a held entry carries on in that entry; when
    that flow ends too, the hold starts again from then.  Flow 1 runs 0-1 s (30 s hold, to
    31 s); flow 2 on the same inside tuple runs 5-10 s, and the entry, born at 0, is then
    a stream: held 120 s, to 130 s.  The first hold's end (31 s) must not free it."""
    gw = gateway(port_range=(2000, 2000))
    first = gw.translate(0.0, "udp", 0, pod(0), 40000, DST, 53)
    assert isinstance(first, Mapping)
    gw.release(first, 1.0, "udp")
    second = gw.translate(5.0, "udp", 0, pod(0), 40000, DST, 53)
    assert isinstance(second, Mapping) and second.port == 2000 and gw.reused_udp == 1
    gw.release(second, 10.0, "udp")
    other = gw.translate(31.0, "udp", 1, pod(1), 40001, DST, 53)
    assert other == NO_FREE_TUPLE  # still held at the first hold's end
    assert gw.translate(129.99, "udp", 1, pod(1), 40001, DST, 53) == NO_FREE_TUPLE
    freed = gw.translate(130.0, "udp", 1, pod(1), 40001, DST, 53)
    assert isinstance(freed, Mapping) and freed.port == 2000


def test_eviction_finds_entries_closed_before_its_first_search() -> None:
    """A pool's index of closing entries by port is built by the first eviction search:
    entries that closed earlier are in it.  Three flows take all three ports and close
    by FIN; a fourth flow's search (sequence check forced to pass) evicts one of them."""
    gw = gateway(port_range=(2000, 2002), kernel="6.5", evict_seq_advanced=1.0)
    flows = [gw.translate(0.0, "tcp", k, pod(k), 40000, DST, 443) for k in range(3)]
    assert all(isinstance(m, Mapping) for m in flows)
    for m in flows:
        gw.release(m, 1.0, "fin")
    r = gw.translate(2.0, "tcp", 3, pod(3), 40000, DST, 443)
    assert isinstance(r, Mapping) and r.port in (2000, 2001, 2002) and gw.evicted == 1


def test_entries_of_two_source_addresses_are_two_conntrack_entries() -> None:
    """conntrack's inside tuple has the source address: one host sending from two
    addresses with the same port to one destination makes two entries.  A SYN from the
    second address does not reopen the first address's closing entry, which keeps its
    translated port for its hold (2 ports: the SYN takes the other one; 6.4, so no
    eviction of closing entries either)."""
    gw = gateway(port_range=(2000, 2001), kernel="6.4")
    first = gw.translate(0.0, "tcp", 0, "10.0.0.1", 40000, DST, 443)
    assert isinstance(first, Mapping)
    gw.release(first, 1.0, "fin")
    second = gw.translate(2.0, "tcp", 0, "10.0.0.2", 40000, DST, 443)
    assert isinstance(second, Mapping) and second.port != first.port
    assert gw.reopened == 0
    again = gw.translate(3.0, "tcp", 0, "10.0.0.1", 40000, DST, 443)  # the same 4-tuple
    assert isinstance(again, Mapping) and gw.reopened == 1


def test_eviction_sees_the_closing_entries_of_every_source_address() -> None:
    """Two closing entries, one per source address of one host, hold both ports of the
    range; two later SYNs from other hosts (sequence check forced to pass) each evict one
    (nf_nat_used_tuple_harder), whichever port each probes first."""
    gw = gateway(port_range=(2000, 2001), kernel="6.5", evict_seq_advanced=1.0)
    flows = [gw.translate(0.0, "tcp", 0, src, 40000, DST, 443) for src in ("10.0.0.1", "10.0.0.2")]
    assert all(isinstance(m, Mapping) for m in flows)
    for m in flows:
        gw.release(m, 1.0, "fin")
    got = [gw.translate(2.0 + k, "tcp", 1 + k, pod(1 + k), 50000, DST, 443) for k in range(2)]
    assert all(isinstance(m, Mapping) for m in got) and gw.evicted == 2
    assert sorted(m.port for m in got) == [2000, 2001]  # type: ignore[union-attr]
