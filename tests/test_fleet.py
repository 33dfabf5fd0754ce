"""Fleets (sim.fleet): one [[hosts]] entry with count = N runs as N members.

Expected values are hand arithmetic: member addresses from the network's usable range
(RFC 1122 3.2.1.3 network and broadcast addresses, RFC 3021 /31, RFC 4291 2.6.1 IPv6
Subnet-Router anycast), member capacity from the port range, and a chi-square test with a
fixed seed for the uniform spread of arrivals over members.
"""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

import sim
from sim.config import ScenarioError, parse_scenario
from sim.engine import Model
from sim.fleet import Fleet, LevelBounds
from sim.fleet_addresses import fleet_addresses
from sim.ports.cells import BUSY, OWNED
from sim.resolve import resolve_host
from sim.verdict import verdict


def scenario(hosts: list[dict[str, Any]], duration: float = 30, **load: Any) -> sim.Scenario:
    spec = {
        "destination": "api",
        "arrival": {"kind": "poisson", "rate": 100},
        "lifetime": {"kind": "exponential", "mean": 1},
        **load,
    }
    if len(hosts) > 1:
        spec.setdefault("host", hosts[-1]["name"])
    doc: dict[str, Any] = {
        "name": "fleet",
        "duration": duration,
        "hosts": hosts,
        "destinations": [{"name": "api", "address": "10.0.0.1:443"}],
        "load": [spec],
    }
    if any("gateway" in h for h in hosts):  # a node SNAT of 10 ports, 1 s conntrack holds
        doc["gateways"] = [
            {
                "name": "gw",
                "kind": "linux-masquerade",
                "addresses": ["198.51.100.1"],
                "port_range": "1024-1033",
                "conntrack": {"time_wait": 1, "close": 1, "udp": 1, "udp_stream": 1},
            }
        ]
    return parse_scenario(doc, "fleet.toml")


# ---- addresses ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "count", "first", "last"),
    [
        ("10.244.1.0/24", 3, "10.244.1.1", "10.244.1.3"),  # .0 is the network address
        ("10.244.1.0/24", 254, "10.244.1.1", "10.244.1.254"),  # .255 is the broadcast
        ("10.244.1.2/24", 3, "10.244.1.2", "10.244.1.4"),  # start where written
        ("10.244.1.2/24", 253, "10.244.1.2", "10.244.1.254"),
        ("10.0.0.0/31", 2, "10.0.0.0", "10.0.0.1"),  # RFC 3021: both usable
        ("10.0.0.7/32", 1, "10.0.0.7", "10.0.0.7"),
        ("10.244.0.0/16", 1000, "10.244.0.1", "10.244.3.232"),  # 1 + 999 = 3*256 + 232
        ("fd00::/126", 3, "fd00::1", "fd00::3"),  # ::0 is the Subnet-Router anycast
    ],
)
def test_member_addresses(text: str, count: int, first: str, last: str) -> None:
    addresses = fleet_addresses(text, count)
    assert addresses.address(0) == first
    assert addresses.last == last


@pytest.mark.parametrize(
    ("text", "count", "fragment"),
    [
        ("10.244.1.0/24", 255, "has 254 usable host addresses"),
        ("10.244.1.2/24", 254, "has 253 usable host addresses from 10.244.1.2"),
        ("10.0.0.7/32", 2, "has 1 usable host address from"),
        ("fd00::/126", 4, "has 3 usable host addresses"),
        ("10.244.1.255/24", 1, "not a usable host address"),
        ("10.244.1.5", 1, "with count, address is a network"),
        ("10.244.1.0/33", 1, "expected a network"),
    ],
)
def test_member_addresses_refused(text: str, count: int, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        fleet_addresses(text, count)


def test_config_error_is_one_line_naming_file_and_key() -> None:
    with pytest.raises(ScenarioError) as info:
        scenario([{"name": "pods", "count": 300, "address": "10.244.1.0/24"}])
    (problem,) = info.value.problems
    assert problem.startswith("fleet.toml: hosts[0].address: 10.244.1.0/24 has 254 usable")
    assert "\n" not in problem


def test_resolved_address_is_canonical() -> None:
    sc = scenario([{"name": "pods", "count": 3, "address": "10.244.1.0/24"}])
    assert sc.hosts[0].address == "10.244.1.0/24"
    assert sc.hosts[0].fleet
    sc = scenario([{"name": "pods", "count": 3, "address": " 10.244.1.2/24"}])
    assert sc.hosts[0].address == "10.244.1.2/24"


# ---- members ---------------------------------------------------------------------------


def test_members_built_on_first_use() -> None:
    """A 1,000-member fleet given a handful of arrivals builds member 0 (the shared kernel)
    and at most one member per arrival; the others cost nothing."""
    sc = scenario(
        [{"name": "pods", "count": 1000, "address": "10.244.0.0/16"}],
        arrival={"kind": "burst", "count": 5, "at": 1},
    )
    model = Model(sc, sc.seed, False)
    model.run()
    fleet = model.fleets["pods"]
    assert 1 <= len(fleet.members) <= 6
    assert model.loads and sum(ld.attempted for ld in model.loads) == 5


def test_members_share_one_kernel_and_sparse_tables() -> None:
    sc = scenario([{"name": "pods", "count": 4, "address": "10.244.1.0/24"}])
    model = Model(sc, sc.seed, False)
    fleet: Fleet = model.fleets["pods"]
    a, b = fleet.member(1), fleet.member(2)
    assert a.kernel is b.kernel is fleet.kernel_host.kernel  # table_perturb and secret
    assert a.j0 == b.j0 == fleet.kernel_host.j0  # one jiffies clock
    assert a.address == "10.244.1.2" and b.address == "10.244.1.3"
    assert a.table.static is fleet.kernel_host.table.static
    assert a.table.owners == {}  # no port held, no owner entry


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"os": "windows"},
        {"os": "macos"},
        {"os": "freebsd", "time_wait": 30},
        {"kernel": "4.19", "port_range": "40000-40999", "reserved_ports": [40010]},
    ],
)
def test_members_settings_are_the_first_members_but_for_the_address(extra: dict) -> None:
    """Members take the first member's resolved settings with their own table (the engine
    resolves a fleet once): each must equal its own spec resolved afresh."""
    sc = scenario([{"name": "pods", "count": 4, "address": "10.244.1.0/24", **extra}])
    fleet: Fleet = Model(sc, sc.seed, False).fleets["pods"]
    for index in (1, 3):
        member = fleet.member(index)
        assert member.resolved == resolve_host(member.spec)
        assert member.resolved.spec.address == member.address == f"10.244.1.{index + 1}"


def test_member_capacity_by_hand() -> None:
    """3 members with 2 ports each, 200 never-ending connects: each member holds 2, so 6
    succeed and 194 fail with EADDRNOTAVAIL (all 3 members are picked unless the 200
    uniform draws all miss one: probability 3 * (2/3)**200, about 1e-35)."""
    sc = scenario(
        [{"name": "pods", "count": 3, "address": "10.244.1.0/24", "port_range": "40000-40001"}],
        arrival={"kind": "burst", "count": 200, "at": 1},
        lifetime={"kind": "fixed", "value": "inf"},
    )
    s = sim.run(sc).summary
    assert s["connections"]["succeeded"] == 6
    assert s["connections"]["failed_by_error"]["EADDRNOTAVAIL"] == 194
    (entry,) = s["hosts"]
    assert entry["fleet"]["members"] == 3
    assert entry["fleet"]["members_used"] == 3
    assert entry["fleet"]["members_failing"] == 3
    assert entry["fleet"]["first_address"] == "10.244.1.1"
    assert entry["fleet"]["last_address"] == "10.244.1.3"
    assert entry["pressure"]["peak"] == 1.0  # 2 of 2 ports
    assert s["pressure"]["worst_host"] == "pods"
    assert s["pressure"]["worst_member"].startswith("10.244.1.")
    assert entry["connections"]["attempted"] == 200


def test_capacity_is_members_times_a_member() -> None:
    """Erlang B per member: each of 10 members gets rate/10 (uniform thinning of a Poisson
    stream is Poisson), so the fleet sustains 10x a member's rate."""
    sc = scenario(
        [{"name": "pods", "count": 10, "address": "10.244.1.0/24"}],
        arrival={"kind": "poisson", "rate": 50},
    )
    s = sim.run(sc).summary
    capacity = s["hosts"][0]["capacity"]
    assert capacity["method"] == "erlang_b"
    assert capacity["members"] == 10
    assert capacity["fleet_sustainable_per_s"] == pytest.approx(10 * capacity["sustainable_per_s"])
    (pool,) = s["analytic"].values()
    assert pool["per"] == "member"
    assert pool["rate"] == pytest.approx(50 / 10)


def _saturated_fleet(
    arrival: dict[str, Any], lifetime: dict[str, Any], **host: Any
) -> sim.Scenario:
    """4 members with 10 ports each (40000-40009), TIME_WAIT 1 s, exact TIME_WAIT ends (no
    timer-wheel buckets), 10.5 s; ``host`` overrides those."""
    spec = {
        "name": "pods",
        "count": 4,
        "address": "10.244.1.0/24",
        "port_range": "40000-40009",
        "time_wait": 1,
        "timer_wheel": False,
        **host,
    }
    doc = {
        "name": "saturated",
        "duration": 10.5,
        "bin": 2.0,
        "hosts": [spec],
        "destinations": [{"name": "api", "address": "10.0.0.1:443"}],
        "load": [{"destination": "api", "arrival": arrival, "lifetime": lifetime}],
    }
    return parse_scenario(doc, "saturated.toml")


def test_fleet_port_exhaustion_rate_by_hand() -> None:
    """N = 4 members, R = 10 ports each, lifetime L = 1 s (fixed), TIME_WAIT T = 1 s: a
    port is held L + T = 2 s per connection, so a member sustains at most R / (L + T) =
    10 / 2 = 5 new connections/s and the fleet N R / (L + T) = 4 * 10 / 2 = 20/s.

    Constant arrivals (not Poisson, so the summary gives that bound, not Erlang B) every
    1 ms = 1000/s, 250/s per member: far above 5/s, so every port is taken again within a
    few ms of its TIME_WAIT ending (a member's gap exceeds 0.1 s with probability
    (3/4)**100, about 3e-13).  Each port thus serves one connection per 2 s cycle, the
    cycles starting at about 0, 2, 4, 6, 8 and 10 s: 6 cycles in the 10.5 s run, so
    4 * 10 * 6 = 240 connections succeed of the 10.5 / 0.001 = 10,500 attempted, and every
    2 s bin (the last one 0.5 s) holds one cycle: 40 successes, i.e. the 20/s above."""
    sc = _saturated_fleet({"kind": "constant", "interval": 0.001}, {"kind": "fixed", "value": 1})
    result = sim.run(sc)
    s = result.summary
    capacity = s["hosts"][0]["capacity"]
    assert capacity["method"] == "bound"
    assert capacity["ports"] == 10
    assert capacity["holding_s"] == 2.0
    assert capacity["sustainable_per_s"] == pytest.approx(5.0)
    assert capacity["fleet_sustainable_per_s"] == pytest.approx(20.0)
    assert s["connections"]["attempted"] == 10_500
    assert s["connections"]["succeeded"] == 240
    assert s["connections"]["failed_by_error"]["EADDRNOTAVAIL"] == 10_500 - 240
    assert result.series["successes"].tolist() == [40] * 6


def test_fleet_erlang_b_capacity_by_hand() -> None:
    """Erlang B with c = 2 ports per member solves by hand: B(2, A) = (A^2 / 2) /
    (1 + A + A^2 / 2) = 0.001 (the 0.1 % target) gives 0.4995 A^2 - 0.001 A - 0.001 = 0,
    A = (0.001 + sqrt(0.001^2 + 4 * 0.4995 * 0.001)) / (2 * 0.4995) = 0.0457559 erlangs.
    Holding: exponential lifetime of mean 1 s plus TIME_WAIT 60 s = 61 s (exact TIME_WAIT
    ends: the timer wheel's buckets would add half a bucket), so a member sustains A / 61 =
    7.5010e-4 new connections/s and 5 members 3.7505e-3/s."""
    pods = {
        "name": "pods",
        "count": 5,
        "address": "10.244.1.0/24",
        "port_range": "40000-40001",
        "time_wait": 60,
        "timer_wheel": False,
    }
    sc = scenario(
        [pods],
        arrival={"kind": "poisson", "rate": 0.1},
        lifetime={"kind": "exponential", "mean": 1},
    )
    capacity = sim.run(sc).summary["hosts"][0]["capacity"]
    assert capacity["method"] == "erlang_b"
    assert capacity["ports"] == 2
    assert capacity["holding_s"] == pytest.approx(61.0)
    assert capacity["sustainable_per_s"] == pytest.approx(0.0457559 / 61, rel=1e-5)
    assert capacity["fleet_sustainable_per_s"] == pytest.approx(5 * 0.0457559 / 61, rel=1e-5)


def test_spread_is_uniform() -> None:
    """Arrivals over 10 members, fixed seed: the chi-square statistic of the per-member
    counts (9 degrees of freedom) stays under 27.88, its 99.9th percentile; a spread
    favouring one member by 10 % of 2,000 expected would exceed it."""
    sc = scenario(
        [{"name": "pods", "count": 10, "address": "10.244.1.0/24"}],
        arrival={"kind": "poisson", "rate": 400},
        lifetime={"kind": "fixed", "value": 0.01},
        duration=50,
    )
    model = Model(sc, 7, False)
    model.run()
    counts = [0] * 10
    for ld in model.loads:
        counts[ld.host.member] += ld.attempted
    total = sum(counts)
    assert 19_000 < total < 21_000  # 400/s for 50 s
    expected = total / 10
    chi2 = sum((c - expected) ** 2 / expected for c in counts)
    assert chi2 < 27.88


VARIANTS = {
    "linux connect": ({}, {}),
    "linux bind before connect": ({}, {"socket": "bind"}),
    "linux udp": ({}, {"protocol": "udp"}),
    "linux reset": ({}, {"close": "reset"}),
    "linux tw reuse": ({"tcp_tw_reuse": 1, "tcp_tw_reuse_delay": "100ms"}, {}),
    "linux retry": ({}, {"retry": {"kind": "fixed", "base": 0.05, "max_attempts": 3}}),
    "linux keepalive": ({}, {"keepalive": {"max_connections": 2, "idle_timeout": 0.5}}),
    "freebsd": ({"os": "freebsd"}, {}),
    "windows": ({"os": "windows", "port_range": "49152-49215"}, {}),
    # behind a gateway: dropped SYNs hold their ports, then connect() times out (ETIMEDOUT
    # after 1 + 1 s with one retry) or a datagram goes unanswered (no_reply)
    "gateway tcp": ({"gateway": "gw", "tcp_syn_retries": 1}, {}),
    "gateway udp": ({"gateway": "gw"}, {"protocol": "udp"}),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_bin_figures_match_every_member_summed(variant: str) -> None:
    """The fleet's per-bin figures, kept from the changes members report, equal a visit
    to every member at every bin's end (settle, sum, and the peak any pool reached), and
    its tally of outcomes equals its channels' counts, for each kind of attempt and close
    a member can make."""
    host_keys, load_keys = VARIANTS[variant]
    host = {
        "name": "pods",
        "count": 20,
        "address": "10.244.1.0/24",
        "port_range": "40000-40063",
        "time_wait": 3,
        **host_keys,
    }
    sc = scenario(
        [host],
        arrival={"kind": "poisson", "rate": 300},
        lifetime={"kind": "exponential", "mean": 0.5},
        duration=20,
        **load_keys,
    )
    model = Model(sc, 3, False)
    fleet = model.fleets["pods"]
    size = fleet.size
    checked: list[tuple[Any, ...]] = []
    tallies: list[tuple[tuple[int, int], tuple[int, int]]] = []
    original = fleet.settle_bin

    def both(t_end: float) -> None:
        original(t_end)
        got = fleet.bin_figures
        established = time_wait = bound = 0
        peak = held = 0
        for member in fleet.members.values():
            member.settle_bin(t_end)
            time_wait += member.tw_count
            bound += member.table.dynamic_blocked
            bind = member.table.bind_pool
            held = max(held, bind.peak)  # before the pools: it may be one (scope port)
            for pool in member.pools():
                established += pool.established
                peak = max(peak, pool.peak)
                pool.peak = pool.unusable
            bind.peak = bind.unusable
        checked.append((got, (established, time_wait, bound, peak / size, held / size)))
        # the fleet's tally of outcomes against its members' channels, counted one by one
        channels = [ch for ch in model.loads if ch.host.fleet is fleet]
        counted = (sum(ch.succeeded for ch in channels), sum(ch.failed for ch in channels))
        tallies.append(((fleet.tally.succeeded, fleet.tally.failed), counted))

    fleet.settle_bin = both  # type: ignore[method-assign]
    result = model.run()
    assert len(checked) == model.recorder.n_bins
    for got, brute in checked:
        assert got == brute
    for tally, counted in tallies:
        assert tally == counted
    assert max(brute[0] for _, brute in checked) > 0  # connections were held
    assert result.summary["connections"]["succeeded"] > 0


def test_same_seed_same_summary() -> None:
    sc = scenario([{"name": "pods", "count": 50, "address": "10.244.1.0/24"}])
    a, b = sim.run(sc).summary, sim.run(sc).summary
    a.pop("run"), b.pop("run")
    assert a == b


def test_fleet_beside_a_host_one_verdict_line_each() -> None:
    sc = parse_scenario(
        {
            "name": "mixed",
            "duration": 20,
            "hosts": [
                {"name": "client"},
                {"name": "pods", "count": 100, "address": "10.244.1.0/24"},
            ],
            "destinations": [{"name": "api", "address": "10.0.0.1:443"}],
            "load": [
                {
                    "host": name,
                    "destination": "api",
                    "arrival": {"kind": "poisson", "rate": 50},
                    "lifetime": {"kind": "exponential", "mean": 1},
                }
                for name in ("client", "pods")
            ],
        }
    )
    result = sim.run(sc)
    s = result.summary
    assert [h["name"] for h in s["hosts"]] == ["client", "pods"]
    assert "fleet" not in s["hosts"][0]
    assert s["hosts"][1]["fleet"]["members"] == 100
    lines = verdict(s).splitlines()
    assert len(lines) == 2
    assert "fleet pods (100 members)" in lines[1]
    assert set(result.host_series["host"]) == {"client", "pods"}
    assert len(s["destinations"]) == 2  # one per host and destination, not per member
    fleet_dest = s["destinations"]["pods/10.0.0.1:443"]
    assert fleet_dest["attempted"] == s["hosts"][1]["connections"]["attempted"]
    assert fleet_dest["worst_member"].startswith("10.244.1.")


def test_keepalive_pools_per_member() -> None:
    """Each member keeps its own pool (each pod its own HTTP client): with 4 members and
    max_connections 2, at most 8 connections are opened to the one destination."""
    sc = scenario(
        [{"name": "pods", "count": 4, "address": "10.244.1.0/24"}],
        arrival={"kind": "poisson", "rate": 50},
        lifetime={"kind": "fixed", "value": 0.01},
        keepalive={"max_connections": 2},
    )
    s = sim.run(sc).summary
    assert s["requests"]["connections"] <= 8
    assert s["requests"]["pool_connections"] == 8
    assert math.isclose(s["requests"]["succeeded"], s["requests"]["attempted"])


def test_kernel_replay_refuses_fleets() -> None:
    from sim.replay.plan import refusals

    sc = scenario([{"name": "pods", "count": 3, "address": "10.244.1.0/24"}])
    assert any("hosts[0].count: fleets are not replayed" in p for p in refusals(sc, "f.toml"))


@pytest.mark.parametrize("os_name", ["macos", "windows", "netbsd"])
def test_one_member_fleet_reports_as_the_same_host(os_name: str) -> None:
    """A fleet of one is the host it stands for: every column of series.csv agrees,
    including the worst pool's established and TIME_WAIT counts of an OS whose port space
    all destinations share (its counts are summed over destinations when read: the fleet
    must sum them for the pool it reports, not only for members with a TIME_WAIT due, as
    it did before 2026-11-30).  These OSes choose ports without random draws, so the
    member's own random streams change nothing."""

    def series(host: dict[str, Any]) -> Any:
        doc = {
            "name": "one",
            "duration": 60,
            "seed": 2,
            "hosts": [{"name": "pods", "os": os_name, **host}],
            "destinations": [{"name": "api", "address": "10.0.0.10:443"}],
            "load": [
                {
                    "host": "pods",
                    "destination": "api",
                    "arrival": {"kind": "poisson", "rate": 20},
                    "lifetime": {"kind": "exponential", "mean": 0.5},
                }
            ],
        }
        return sim.run(parse_scenario(doc, "one.toml")).series

    fleet = series({"count": 1, "address": "10.244.1.2/24"})
    plain = series({"address": "10.244.1.2", "local_network": "10.244.1.0/24"})
    assert fleet["time_wait"].max() > 0  # TIME_WAITs held and ended during the run
    assert (fleet["worst_established"] + fleet["worst_time_wait"] > 0).any()
    assert fleet.equals(plain)


def test_level_bounds_top_is_the_highest_level_lowest_member_first() -> None:
    """``LevelBounds.top`` against a visit to every member: after random rises (reported)
    and falls (not reported), it gives the highest true level and, among members at it,
    the lowest index; (0, -1) when every level is 0.  Fixed seed; levels kept small so
    that ties are common."""
    rng = random.Random(7)
    count = 40
    levels = [0] * count
    bounds = LevelBounds(count)
    checks = ties = 0
    for _ in range(3000):
        member = rng.randrange(count)
        if rng.random() < 0.5:
            levels[member] += 1
            bounds.rise(member, levels[member])
        elif levels[member] > 0:
            levels[member] -= 1
        if rng.random() < 0.2:
            highest = max(levels)
            expected = (highest, levels.index(highest)) if highest else (0, -1)
            assert bounds.top(lambda m: levels[m]) == expected
            checks += 1
            ties += levels.count(highest) > 1
    assert checks > 500 and ties > 100  # the comparison ran, ties among them
    levels[:] = [0] * count
    assert bounds.top(lambda m: levels[m]) == (0, -1)


def test_a_members_ports_shared_by_two_destinations_count_every_owner() -> None:
    """A member's port may be held towards two destinations at once (4-tuple uniqueness):
    its bind map keeps one owner bit and counts the second owner apart (SparsePortTable;
    the member's connect inlines the first-owner case).  Checked at every bin's end
    against the destination pools themselves: a port's owners are the pools that hold it
    busy, and its bind-map bit is set exactly when one does."""
    loads = [
        {
            "host": "pods",
            "destination": name,
            "arrival": {"kind": "poisson", "rate": 200},
            "lifetime": {"kind": "exponential", "mean": 0.5},
        }
        for name in ("api", "db")
    ]
    doc: dict[str, Any] = {
        "name": "shared",
        "duration": 20,
        "hosts": [
            {
                "name": "pods",
                "count": 2,
                "address": "10.244.1.0/24",
                "port_range": "40000-40007",
                "time_wait": 1,
            }
        ],
        "destinations": [
            {"name": "api", "address": "10.0.0.1:443"},
            {"name": "db", "address": "10.0.0.2:5432"},
        ],
        "load": loads,
    }
    model = Model(parse_scenario(doc, "shared.toml"), 5, False)
    fleet = model.fleets["pods"]
    original = fleet.settle_bin
    shared_seen = [0]

    def check(t_end: float) -> None:
        original(t_end)
        for member in fleet.members.values():
            member.settle(t_end)
            table = member.table
            pools = list(table.pools.values())
            for k in range(table.size):
                cell = table.layout.cell(k)
                busy = sum(1 for pool in pools if pool.cells[cell] & BUSY)
                assert table.owner_count(k) == busy
                assert bool(table.bind_pool.cells[cell] & OWNED) == (busy > 0)
                shared_seen[0] += busy > 1

    fleet.settle_bin = check  # type: ignore[method-assign]
    model.run()
    assert shared_seen[0] > 0  # ports were held towards both destinations at once


@pytest.mark.parametrize("gateway", [False, True])
def test_one_member_linux_fleet_agrees_with_the_host_but_for_probes(gateway: bool) -> None:
    """A Linux fleet of one against the host it stands for: the member's connect (its own
    function, ``Member.autobind_connect``) and the host's give the same series in every
    column but the probe counts, which depend on the port offsets the member's own random
    streams choose; behind a ``k8s-node`` gateway with 100 ports (exhausted: random_fully
    draws from the gateway's stream, whichever inside port) the gateway's counts agree too."""

    def run(host: dict[str, Any]) -> Any:
        doc: dict[str, Any] = {
            "name": "one",
            "duration": 60,
            "seed": 2,
            "hosts": [{"name": "pods", **host}],
            "destinations": [{"name": "api", "address": "10.0.0.10:443"}],
            "load": [
                {
                    "host": "pods",
                    "destination": "api",
                    "arrival": {"kind": "poisson", "rate": 40},
                    "lifetime": {"kind": "exponential", "mean": 0.5},
                }
            ],
        }
        if gateway:
            doc["hosts"][0]["gateway"] = "node"
            doc["gateways"] = [
                {
                    "name": "node",
                    "kind": "k8s-node",
                    "addresses": ["198.51.100.7"],
                    "port_range": "1024-1123",
                }
            ]
        return sim.run(parse_scenario(doc, "one.toml"))

    fleet = run({"count": 1, "address": "10.244.1.2/24"})
    plain = run({"address": "10.244.1.2", "local_network": "10.244.1.0/24"})
    columns = [c for c in fleet.series.columns if not c.startswith("probes_")]
    assert fleet.series["time_wait"].max() > 0
    assert fleet.series[columns].equals(plain.series[columns])
    assert fleet.summary["connections"] == plain.summary["connections"]
    if gateway:
        mappings = fleet.summary["gateways"]["node"]["mappings"]
        assert mappings["dropped"] > 0  # the gateway ran out
        assert mappings == plain.summary["gateways"]["node"]["mappings"]
