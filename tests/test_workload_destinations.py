"""Where a load's connections go: weights, generated destination sets (naming, order,
Zipf or uniform popularity), and hosts with several source addresses.

Statistical checks use fixed seeds and these tolerances:

* Attempts split over destinations are multinomial (the number of attempts is fixed by a
  constant arrival process).  Pearson's statistic against the configured probabilities is
  compared with chi-square on k - 1 degrees of freedom, two-sided at p = 0.001 (bins with
  an expected count under 20 are pooled with their neighbours first).
* Single shares pass within 4 binomial standard errors, sqrt(p (1 - p) / n).
* A Zipf exponent fitted by weighted least squares on log(count) against log(rank)
  (weights: the expected counts, as var(log N) ~ 1 / E) passes within 4 of its standard
  errors of the configured one.

The port-exhaustion checks are exact and worked out by hand from `__inet_hash_connect`;
`inet_csk_bind_conflict` (ports shared across destinations by 4-tuple; bind(addr, 0) avoids ports
owned on the same local address only; an explicitly bound port is skipped by connect() from every
address) and from the uniqueness scope of the BSD-style presets."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import sim
from tests.stats import chi2_sf

P_TWO_SIDED = 0.001
SIGMAS = 4.0
A, B = "192.0.2.1", "192.0.2.2"


# ---- statistics helpers -----------------------------------------------------------------


def pooled(observed: np.ndarray, expected: np.ndarray, least: float = 20.0):
    """Merge consecutive bins until each expected count is at least ``least`` (the last
    partial group joins the one before)."""
    obs_out: list[float] = []
    exp_out: list[float] = []
    o = e = 0.0
    for oi, ei in zip(observed, expected, strict=True):
        o, e = o + oi, e + ei
        if e >= least:
            obs_out.append(o)
            exp_out.append(e)
            o = e = 0.0
    if e > 0:
        obs_out[-1] += o
        exp_out[-1] += e
    return np.array(obs_out), np.array(exp_out)


def assert_multinomial(observed: Any, p: Any, what: str) -> None:
    """Counts against probabilities ``p``: Pearson's chi-square on k - 1 degrees of freedom,
    two-sided at P_TWO_SIDED, after pooling bins expecting under 20."""
    obs = np.asarray(observed, dtype=float)
    probs = np.asarray(p, dtype=float)
    assert probs.sum() == pytest.approx(1.0)
    obs, exp = pooled(obs, obs.sum() * probs)
    stat = float(np.sum((obs - exp) ** 2 / exp))
    dof = len(obs) - 1
    sf = chi2_sf(stat, dof)
    assert P_TWO_SIDED < sf < 1 - P_TWO_SIDED, (
        f"{what}: chi-square {stat:.1f}, {dof} dof, p={sf:.2g}"
    )


def assert_share(n: int, total: int, p: float, what: str) -> None:
    se = math.sqrt(p * (1 - p) / total)
    assert abs(n / total - p) < SIGMAS * se, f"{what}: share {n / total:.4f}, expected {p:.4f}"


# ---- scenarios -----------------------------------------------------------------------------


def scenario(
    destinations: list[dict[str, Any]],
    loads: list[dict[str, Any]],
    duration: float = 10,
    hosts: list[dict[str, Any]] | None = None,
) -> sim.Scenario:
    data: dict[str, Any] = {
        "name": "dest",
        "duration": duration,
        "destinations": destinations,
        "load": loads,
    }
    if hosts is not None:
        data["hosts"] = hosts
    return sim.parse_scenario(data, "dest.toml")


def steady(n: int, duration: float = 10, **load: Any) -> dict[str, Any]:
    """``n`` attempts spread evenly over ``duration`` (a constant process: the total is
    exact, so the split is multinomial); short lifetimes, far from any exhaustion."""
    return {
        "arrival": {"kind": "constant", "interval": duration / n},
        "lifetime": {"kind": "fixed", "value": "10ms"},
        **load,
    }


def attempted(result: sim.Result, names: list[str]) -> np.ndarray:
    d = result.summary["destinations"]
    return np.array([d[name]["attempted"] for name in names])


# ---- weights -------------------------------------------------------------------------------


def test_weights_split_attempts_in_proportion() -> None:
    """weights 1 : 2 : 5 over three destinations, 10,000 attempts (seed 7): the attempts
    per destination pass the chi-square test against 1/8, 2/8, 5/8, and each share is
    within 4 binomial standard errors; nothing fails."""
    sc = scenario(
        [
            {"name": "a", "address": "10.0.0.1:443"},
            {"name": "b", "address": "10.0.0.2:443"},
            {"name": "c", "address": "10.0.0.3:8443"},
        ],
        [steady(10_000, destinations=["a", "b", "c"], weights=[1, 2, 5])],
    )
    r = sim.run(sc, seed=7)
    counts = attempted(r, ["10.0.0.1:443", "10.0.0.2:443", "10.0.0.3:8443"])
    assert counts.sum() == 10_000 and r.summary["connections"]["failed"] == 0
    p = [1 / 8, 2 / 8, 5 / 8]
    assert_multinomial(counts, p, "weights 1:2:5")
    for n, share, name in zip(counts, p, "abc", strict=True):
        assert_share(int(n), 10_000, share, name)


def test_no_weights_means_equal_shares() -> None:
    """Four destinations without weights: 8,000 attempts split evenly (chi-square)."""
    dests = [{"name": f"d{i}", "address": f"10.0.0.{i}:443"} for i in range(1, 5)]
    sc = scenario(dests, [steady(8_000, destinations=[d["name"] for d in dests])])
    counts = attempted(sim.run(sc, seed=8), [d["address"] for d in dests])
    assert counts.sum() == 8_000
    assert_multinomial(counts, [0.25] * 4, "equal shares")


def test_weight_of_a_set_is_shared_by_popularity() -> None:
    """destinations = [one, set], weights 1 : 3, the set four members with Zipf s = 1:
    one gets 1/4, member r of the set gets 3/4 x (1/r) / H_4 (H_4 = 25/12); 12,000
    attempts, chi-square on the five destinations."""
    sc = scenario(
        [
            {"name": "one", "address": "10.0.0.1:443"},
            {
                "name": "set",
                "count": 4,
                "address": "10.9.0.0/29",
                "ports": [80],
                "popularity": "zipf",
            },
        ],
        [steady(12_000, destinations=["one", "set"], weights=[1, 3])],
    )
    names = ["10.0.0.1:443", *(f"10.9.0.{i}:80" for i in range(1, 5))]
    counts = attempted(sim.run(sc, seed=9), names)
    h4 = 25 / 12
    p = [0.25, *(0.75 / r / h4 for r in range(1, 5))]
    assert counts.sum() == 12_000
    assert_multinomial(counts, p, "weights over a set")


# ---- generated sets ------------------------------------------------------------------------


def zipf_set(s: float | None = None, count: int = 200, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": "set",
        "count": count,
        "address": "10.1.0.0/24",
        "ports": [443],
        "popularity": "zipf",
        **extra,
    }
    if s is not None:
        out["zipf_s"] = s
    return out


def test_set_members_are_named_ip_port_in_network_order() -> None:
    """count 200 in 10.1.0.0/24, port 443: members 10.1.0.1:443 ... 10.1.0.200:443 (the
    network's host addresses in order), and a run reports exactly those destinations."""
    sc = scenario([zipf_set()], [steady(2_000, destinations=["set"])])
    want = [f"10.1.0.{i}:443" for i in range(1, 201)]
    assert [m.name for m in sc.destinations[0].members()] == want
    assert [m.address for m in sc.destinations[0].members()] == want
    r = sim.run(sc, seed=1)
    assert sorted(r.summary["destinations"]) == sorted(want)
    assert attempted(r, want).sum() == 2_000


@pytest.mark.parametrize(("s", "seed"), [(None, 11), (1.5, 12)], ids=["s=1 (default)", "s=1.5"])
def test_zipf_popularity_follows_one_over_rank_to_the_s(s: float | None, seed: int) -> None:
    """200 members, Zipf exponent s (1 by default), 30,000 attempts.  The probability of
    rank r is r**-s / sum_k k**-s.  Checked: the shares of ranks 1, 2, 3 and 10 (4 binomial
    standard errors), the chi-square test over all 200 ranks (tail bins pooled to >= 20
    expected), and the slope of log(count) on log(rank) over ranks 1..50: -s within 4
    standard errors (weighted least squares)."""
    exponent = 1.0 if s is None else s
    sc = scenario([zipf_set(s)], [steady(30_000, duration=30, destinations=["set"])], 30)
    names = [f"10.1.0.{i}:443" for i in range(1, 201)]
    counts = attempted(sim.run(sc, seed=seed), names)
    n = int(counts.sum())
    assert n == 30_000
    ranks = np.arange(1, 201)
    p = ranks**-exponent / np.sum(ranks**-exponent)
    for r in (1, 2, 3, 10):
        assert_share(int(counts[r - 1]), n, float(p[r - 1]), f"rank {r}")
    assert_multinomial(counts, p, f"zipf s={exponent}")
    # slope on ranks 1..50 (expected counts >= 30 there for both exponents)
    x, y, w = np.log(ranks[:50]), np.log(counts[:50]), n * p[:50]
    xm = np.sum(w * x) / np.sum(w)
    ym = np.sum(w * y) / np.sum(w)
    slope = np.sum(w * (x - xm) * (y - ym)) / np.sum(w * (x - xm) ** 2)
    se = 1 / math.sqrt(np.sum(w * (x - xm) ** 2))
    assert abs(slope + exponent) < SIGMAS * se, f"slope {slope:.3f} +- {se:.3f}, s {exponent}"


def test_uniform_popularity_is_flat() -> None:
    """50 members, uniform popularity (the default), 20,000 attempts: 400 each expected;
    chi-square on 49 degrees of freedom, and the top ten ranks get no more than their
    share (binomial, 4 standard errors)."""
    sc = scenario(
        [{"name": "set", "count": 50, "address": "10.2.0.0/24", "ports": [443]}],
        [steady(20_000, destinations=["set"])],
    )
    names = [f"10.2.0.{i}:443" for i in range(1, 51)]
    counts = attempted(sim.run(sc, seed=13), names)
    assert counts.sum() == 20_000
    assert_multinomial(counts, [1 / 50] * 50, "uniform popularity")
    assert_share(int(counts[:10].sum()), 20_000, 0.2, "ranks 1-10")


def test_several_ports_enumerate_ip_major() -> None:
    """ports [443, 8443], count 5: each address with every port in turn, then the next
    address: .1:443, .1:8443, .2:443, .2:8443, .3:443; a run reports those five."""
    sc = scenario(
        [{"name": "set", "count": 5, "address": "10.3.0.0/24", "ports": [443, 8443]}],
        [steady(1_000, destinations=["set"])],
    )
    want = ["10.3.0.1:443", "10.3.0.1:8443", "10.3.0.2:443", "10.3.0.2:8443", "10.3.0.3:443"]
    assert [m.address for m in sc.destinations[0].members()] == want
    assert [(m.ip, m.port) for m in sc.destinations[0].members()] == [
        (w.split(":")[0], int(w.split(":")[1])) for w in want
    ]
    r = sim.run(sc, seed=2)
    assert sorted(r.summary["destinations"]) == sorted(want)
    assert attempted(r, want).sum() == 1_000


def test_ipv6_set_members_are_bracketed() -> None:
    """count 3 in 2001:db8::/126 (three usable: ::1 to ::3), port 443: named
    "[2001:db8::1]:443" and so on."""
    sc = scenario(
        [{"name": "set", "count": 3, "address": "2001:db8::/126", "ports": [443]}],
        [steady(300, destinations=["set"])],
    )
    want = [f"[2001:db8::{i}]:443" for i in range(1, 4)]
    assert [m.address for m in sc.destinations[0].members()] == want


@pytest.mark.parametrize(
    ("network", "ports", "count", "room"),
    [
        ("10.4.0.0/24", [443], 255, 254),
        ("10.4.0.0/24", [443, 8443], 509, 508),
        ("10.4.0.0/30", [443], 3, 2),
        ("10.4.0.7/32", [443, 444, 445], 4, 3),
    ],
)
def test_count_larger_than_the_network_holds_is_an_error(
    network: str, ports: list[int], count: int, room: int
) -> None:
    """The set's room is usable host addresses (a /24 has 254, a /30 two, a /32 its one)
    times ports; one more is a ScenarioError naming the destination, the count and the
    room; exactly the room is accepted."""
    dest = {"name": "set", "address": network, "ports": ports}
    load = steady(10, destinations=["set"])
    with pytest.raises(sim.ScenarioError) as info:
        scenario([{**dest, "count": count}], [load])
    text = str(info.value)
    assert "dest.toml: destinations[0]: count" in text
    assert f"count {count} is more than" in text and f"holds ({room})" in text
    sc = scenario([{**dest, "count": room}], [load])
    assert len(sc.destinations[0].members()) == room


# ---- several source addresses --------------------------------------------------------------

FOREVER = {"kind": "fixed", "value": "inf"}


def linux_host(addresses: list[str], **extra: Any) -> dict[str, Any]:
    return {"name": "h", "port_range": [40000, 40009], "addresses": addresses, **extra}


def tries(result: sim.Result, destination: str | None = None):
    ev = result.events
    rows = ev[ev.event.isin(["connect", "fail"])]
    if destination is not None:
        rows = rows[rows.destination == destination]
    return rows


@pytest.mark.parametrize("addresses", [[A], [A, B]], ids=["one address", "two addresses"])
def test_each_source_address_has_its_own_four_tuples(addresses: list[str]) -> None:
    """Linux, range 40000-40009 (10 ports), connections that never close, 30 attempts
    0.1 s apart to one destination.  Each source address holds exactly 10 connections (the
    4-tuple includes the local address, `__inet_hash_connect`), so one address gives 10 and two
    give 20 before the first EADDRNOTAVAIL; arrivals take the addresses round robin, so
    the events' local_address alternates A, B, A, B ...; each address uses all 10 ports."""
    sc = scenario(
        [{"name": "x", "address": "10.0.0.1:443"}],
        [
            {
                "destination": "x",
                "arrival": {"kind": "constant", "interval": 0.1},
                "lifetime": FOREVER,
            }
        ],
        duration=3,
        hosts=[linux_host(addresses)],
    )
    r = sim.run(sc, seed=3, events=True)
    rows = tries(r)
    assert len(rows) == 30
    held = 10 * len(addresses)
    assert (rows.event.iloc[:held] == "connect").all()
    assert (rows.event.iloc[held:] == "fail").all()
    assert set(rows.error.iloc[held:]) == {"EADDRNOTAVAIL"}
    assert rows.local_address.tolist() == [addresses[i % len(addresses)] for i in range(30)]
    for address in addresses:
        mine = rows[(rows.local_address == address) & (rows.event == "connect")]
        assert sorted(mine.local_port.tolist()) == list(range(40000, 40010))
    summary = r.summary["destinations"]
    if len(addresses) == 1:
        assert summary["10.0.0.1:443"]["succeeded"] == 10
        assert summary["10.0.0.1:443"]["failed"] == 20
    else:
        for address in addresses:
            entry = summary[f"{address}->10.0.0.1:443"]
            assert (entry["attempted"], entry["succeeded"], entry["failed"]) == (15, 10, 5)


def test_bind_on_one_address_ignores_connections_from_another() -> None:
    """`inet_csk_bind_conflict` (E6b): bind(addr, 0) avoids ports owned on the same local address
    only. Range 40000-40009, addresses A and B.  At 0 s one connect() (from A, the first in the
    round robin) takes a port p to x and keeps it.  At 1 s, 20 bind(0)-then-connect() sockets to y
    alternate A, B: the 10 from B take all 10 ports, p included; those from A take the other 9, and
    A's tenth fails with EADDRINUSE."""
    sc = scenario(
        [{"name": "x", "address": "10.0.0.1:443"}, {"name": "y", "address": "10.0.0.2:443"}],
        [
            {"destination": "x", "arrival": {"kind": "burst", "count": 1}, "lifetime": FOREVER},
            {
                "destination": "y",
                "socket": "bind",
                "arrival": {"kind": "burst", "count": 20, "at": 1},
                "lifetime": FOREVER,
            },
        ],
        duration=3,
        hosts=[linux_host([A, B])],
    )
    r = sim.run(sc, seed=4, events=True)
    first = tries(r, "10.0.0.1:443")
    assert first.local_address.tolist() == [A] and first.event.tolist() == ["connect"]
    p = int(first.local_port.iloc[0])
    binds = tries(r, "10.0.0.2:443")
    assert binds.local_address.tolist() == [A, B] * 10
    from_b = binds[binds.local_address == B]
    assert (from_b.event == "connect").all()
    assert sorted(from_b.local_port.tolist()) == list(range(40000, 40010))  # p included
    from_a = binds[binds.local_address == A]
    assert from_a.event.tolist().count("connect") == 9
    assert sorted(from_a[from_a.event == "connect"].local_port.tolist()) == sorted(
        set(range(40000, 40010)) - {p}
    )
    assert from_a[from_a.event == "fail"].error.tolist() == ["EADDRINUSE"]
    bound = r.events[r.events.event == "bind"]
    assert len(bound) == 19


@pytest.mark.parametrize(
    ("socket", "blocked"),
    [("bind", True), ("bind_reuseaddr", True), ("connect", False), ("bind_no_port", False)],
)
def test_explicitly_bound_port_blocks_connect_from_every_address(
    socket: str, blocked: bool
) -> None:
    """`__inet_hash_connect` (E7): connect() autoselect skips a port whose bind bucket holds an
    explicit binder, on any local address.  Range 40000-40009, addresses A and B.  At 0 s
    one socket to x from A takes port q by ``socket``; at 1 s, 20 plain connect()s to
    another destination y alternate A, B.  After bind(A, 0) [with SO_REUSEADDR] neither A
    nor B may use q: 9 + 9 succeed, 2 fail.  A port taken by connect() (or chosen at
    connect() after IP_BIND_ADDRESS_NO_PORT) is shared across destinations by 4-tuple:
    all 20 succeed."""
    sc = scenario(
        [{"name": "x", "address": "10.0.0.1:443"}, {"name": "y", "address": "10.0.0.2:443"}],
        [
            {
                "destination": "x",
                "socket": socket,
                "arrival": {"kind": "burst", "count": 1},
                "lifetime": FOREVER,
            },
            {
                "destination": "y",
                "arrival": {"kind": "burst", "count": 20, "at": 1},
                "lifetime": FOREVER,
            },
        ],
        duration=3,
        hosts=[linux_host([A, B])],
    )
    r = sim.run(sc, seed=5, events=True)
    first = tries(r, "10.0.0.1:443")
    assert first.local_address.tolist() == [A] and first.event.tolist() == ["connect"]
    q = int(first.local_port.iloc[0])
    later = tries(r, "10.0.0.2:443")
    assert later.local_address.tolist() == [A, B] * 10
    ok = later[later.event == "connect"]
    for address in (A, B):
        ports = sorted(ok[ok.local_address == address].local_port.tolist())
        if blocked:
            assert ports == sorted(set(range(40000, 40010)) - {q}), address
        else:
            assert ports == list(range(40000, 40010)), address
    fails = later[later.event == "fail"]
    assert len(fails) == (2 if blocked else 0)
    assert set(fails.error) <= {"EADDRNOTAVAIL"}


@pytest.mark.parametrize(
    ("os", "addresses", "held"),
    [
        ("openbsd", [A], 10),
        ("openbsd", [A, B], 20),  # local_address scope: each address has the whole range
        ("macos", [A], 10),
        ("macos", [A, B], 10),  # port scope: a port is busy host-wide
    ],
)
def test_uniqueness_scope_with_two_addresses(os: str, addresses: list[str], held: int) -> None:
    """A port busy for connect() is busy per local address (OpenBSD, scope local_address)
    or host-wide (macOS, scope port).  Range 40000-40009, connections that never close,
    40 attempts 0.1 s apart over two destinations (so 4-tuple sharing would allow more):
    local_address scope holds 10 per address (20 with two), port scope 10 in all, with
    no port used twice; the rest fail."""
    sc = scenario(
        [{"name": "x", "address": "10.0.0.1:443"}, {"name": "y", "address": "10.0.0.2:443"}],
        [
            {
                "destinations": ["x", "y"],
                "arrival": {"kind": "constant", "interval": 0.1},
                "lifetime": FOREVER,
            }
        ],
        duration=4,
        hosts=[linux_host(addresses, os=os)],
    )
    r = sim.run(sc, seed=6, events=True)
    assert r.summary["hosts"][0]["scope"] == {"openbsd": "local_address", "macos": "port"}[os]
    rows = tries(r)
    assert len(rows) == 40
    ok = rows[rows.event == "connect"]
    assert len(ok) == held
    assert r.summary["connections"]["succeeded"] == held
    assert r.summary["connections"]["failed"] == 40 - held
    if os == "openbsd":
        for address in addresses:
            ports = ok[ok.local_address == address].local_port.tolist()
            assert sorted(ports) == list(range(40000, 40010)), address
    else:
        assert sorted(ok.local_port.tolist()) == list(range(40000, 40010))
