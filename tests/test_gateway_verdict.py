"""What the terminal answer says of a run behind a gateway: the clients' connects first, the
gateway's bound beside each host's own, each host's own (local) ports apart from the gateway,
and connects still retransmitting at the end counted where they are."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import sim
from sim.units import format_percent, format_rate
from sim.verdict import key_figures, verdict
from tests.test_gateways import scenario

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("close", "hold"),
    [("client", 120.0), ("reset", 10.0)],  # conntrack TIME_WAIT after FIN, CLOSE after RST
)
def test_the_gateway_sustains_its_tuples_over_lifetime_and_hold(close: str, hold: float) -> None:
    """10 tuples (--to-ports 1024-1033, one address), connections of 2 s: at most
    10 / (2 + hold) new connections per second into the pool."""
    s = sim.run(scenario(lifetime="2s", close=close)).summary
    bound = s["gateways"]["gw"]["sustainable"]
    assert bound["tuples"] == 10
    assert bound["holding_s"] == 2.0 + hold
    assert bound["per_s"] == pytest.approx(10 / (2.0 + hold))
    assert bound["towards"] == "tcp 203.0.113.10:443"
    assert bound["per_vm"] is False
    # the default kernel (6.18) evicts closing entries (6.5+): the bound is before that
    assert bound["holds_may_end_early"] is True


def test_before_65_closing_entries_hold_their_tuple() -> None:
    s = sim.run(scenario(lifetime="2s", gateway={"kernel": "6.1"})).summary
    assert s["gateways"]["gw"]["sustainable"]["holds_may_end_early"] is False


def test_two_addresses_take_what_the_busiest_address_takes() -> None:
    """netfilter hashes each (source, destination) to one address and the busiest fills
    first: the bound is one address's 10 tuples / 122 s over the busiest address's share
    of the connects, counted here from the events (the addresses flows were given)."""
    two = {"addresses": ["198.51.100.1", "198.51.100.2"]}
    r = sim.run(scenario(lifetime="2s", gateway=two), events=True)
    given = r.events[r.events.event == "translated"].public_address.value_counts()
    share = given.max() / given.sum()
    bound = r.summary["gateways"]["gw"]["sustainable"]
    assert bound["tuples"] == 20
    assert bound["busiest_address_share"] == pytest.approx(share)
    assert bound["per_s"] == pytest.approx(10 / 122 / share)
    (line,) = [x for x in verdict(r.summary).splitlines() if x.startswith("Gateway gw ")]
    # the formula as printed gives the rate printed (10 / 122 / share, not 20 / 122)
    assert (
        f"at most {format_rate(10 / 122 / share)} new connections/s into that pool (10 tuples "
        f"of the busiest of its 2 addresses / 122 s held / {format_percent(share)}, its share"
    ) in line


def test_the_two_snat_address_node_takes_what_its_comment_says() -> None:
    """The scenario's comment: the hash puts 53 pods on one address, so the node takes
    537 / 0.53 = 1,013 connects/s in all, not 2 x 537 (its pods' connects vary a little
    around an even share each: within 1 %)."""
    sc = sim.load_scenario(ROOT / "scenarios" / "k8s-node-two-snat-addresses.toml")
    bound = sim.run(sc).summary["gateways"]["node"]["sustainable"]
    assert bound["busiest_address_share"] == pytest.approx(0.53, rel=0.01)
    assert bound["per_s"] == pytest.approx(64512 / 120.2 / 0.53, rel=0.01)


def test_the_verdict_gives_the_gateways_bound_and_says_it_binds_first() -> None:
    """Each host's own ports allow 28,232 / (2 s + 60 s TIME_WAIT) = 455/s; the gateway
    10 / 122 s = 0.082/s: that binds first."""
    s = sim.run(scenario(lifetime="2s")).summary
    text = verdict(s) + "\n" + "\n".join(key_figures(s))
    assert "it sustains at most 0.082 new connections/s into that pool (10 tuples / 122 s" in text
    capacity = [line for line in text.splitlines() if "capacity of h0" in line]
    assert len(capacity) == 1
    assert "at most 455 new connections/s per destination" in capacity[0]
    assert capacity[0].endswith(
        "; its gateway gw takes at most 0.082/s into its worst pool (tcp 203.0.113.10:443) "
        "from all 3 hosts behind it: that binds first"
    )


def test_connects_still_retransmitting_are_counted_on_their_host() -> None:
    """3 hosts each connect at 0, 1, ..., 4 s through 10 tuples held for ever: the first 10
    connects get one, the other 5 retransmit their SYN until 127 s (tcp_syn_retries 6), so at
    60 s they are still connecting: one host has 1 of them, the two others 2 each."""
    s = sim.run(scenario(duration=60.0)).summary
    waiting = {h["name"]: h["gateway"]["still_connecting_at_end"] for h in s["hosts"]}
    assert sorted(waiting.values()) == [1, 2, 2]
    assert all(h["gateway"]["name"] == "gw" for h in s["hosts"])
    lines = verdict(s).splitlines()
    assert lines[0].startswith(
        "Exhaustion at gateway gw (linux-masquerade): of 15 connects, 5 were still "
        "retransmitting at the end; peak pressure 100 %"
    )
    for host, n in waiting.items():
        (line,) = [x for x in lines if x.startswith(f"No local port exhaustion on host {host} ")]
        assert "every connect succeeded" not in line
        connects = "1 connect still retransmitting its SYN" if n == 1 else f"{n} connects"
        assert f"no connect was refused a local port, {5 - n} succeeded; {connects}" in line
        assert line.endswith(" at the end (dropped at gateway gw)")


def test_no_host_steady_state_when_the_run_reports_none() -> None:
    """The AWS load test is too short for a steady state: no host line may give one."""
    sc = sim.load_scenario(ROOT / "scenarios" / "aws-natgw-load-test.toml")
    lines = key_figures(sim.run(sc).summary)
    assert any(
        line.startswith("steady state: not reported, the run is too short") for line in lines
    )
    assert not [line for line in lines if "steady state (from" in line]


def test_a_vm_slice_is_named_by_its_host() -> None:
    """Cloud NAT gives each VM a slice: the report names the VM by its host, not by the
    order it first used the gateway (the scenario's hosts are builder-1 and builder-2)."""
    sc = sim.load_scenario(ROOT / "scenarios" / "cloudnat-ci-builders.toml")
    worst = sim.run(sc).summary["gateways"]["cloudnat"]["pressure"]["worst_destination"]
    assert worst in ("tcp 140.82.112.3:443 from builder-1", "tcp 140.82.112.3:443 from builder-2")


def test_a_fleet_member_is_named_by_its_fleet_and_address() -> None:
    from sim.nat.base import inside_name

    class Pod:
        name, address, member = "pods", "10.244.1.7", 5

    class Vm:
        name, address, member = "builder-1", "10.0.0.2", -1

    assert inside_name(Pod()) == "pods 10.244.1.7"
    assert inside_name(Vm()) == "builder-1"


def test_a_gateways_line_counts_its_own_clients_only() -> None:
    """Two hosts behind the gateway (5 tuples; each connects at 0..4 s, connections held
    for ever) and one host without a gateway (5 connects): the gateway's clients made 10
    connects, 5 of them still retransmitting at 60 s; the run made 15."""
    doc = scenario_doc(hosts=2, tuples="1024-1028", duration=60.0)
    doc["hosts"].append({"name": "direct", "address": "10.0.0.9"})
    doc["load"].append({**doc["load"][0], "host": "direct"})
    s = sim.run(sim.parse_scenario(doc)).summary
    assert s["gateways"]["gw"]["clients"] == {
        "tcp_connects": 10,
        "timed_out": 0,
        "delayed": 0,
        "still_connecting_at_end": 5,
        "udp_no_reply": 0,
    }
    assert s["connections"]["attempted"] == 10  # 5 through the gateway, 5 direct
    line = verdict(s).splitlines()[0]
    assert line.startswith(
        "Exhaustion at gateway gw (linux-masquerade): of 10 connects, 5 were still "
        "retransmitting at the end; "
    )


def scenario_doc(hosts: int, tuples: str, duration: float) -> dict[str, Any]:
    """As ``tests.test_gateways.scenario`` (lifetime for ever), as a document to extend."""
    sc = scenario(hosts=hosts, duration=duration, gateway={"port_range": tuples})
    return sc.model_dump(mode="json", exclude_none=True, by_alias=True)


def test_flows_cut_by_a_scale_out_are_told() -> None:
    """Azure LB: a scale-out shrinks each VM's slice and cuts the live flows on the ports
    it takes back; the gateway's line says how many (summary ``reclaimed_flows``)."""
    sc = sim.load_scenario(ROOT / "scenarios" / "aks-snat-scale-out.toml")
    s = sim.run(sc).summary
    cut = s["gateways"]["lb"]["reclaimed_flows"]
    assert cut > 0
    (line,) = [x for x in verdict(s).splitlines() if "gateway lb " in x]
    assert f"; {cut:,} live flows cut when the backend pool scaled" in line


def test_slow_request_rates_are_not_rounded_to_zero() -> None:
    from sim.verdict import requests_headline

    r = {
        "offered_per_s": 0.0025,
        "served_per_s": 0.00125,
        "pool_limit_per_s": None,
        "waited": 0,
        "wait_s": {"mean": 0.0, "p99": 0.0},
        "failed": 0,
        "attempted": 2,
        "queue_growing": False,
    }
    line = requests_headline(r)  # type: ignore[arg-type]
    assert line.startswith("Requests served: 0.00125 served per second of 0.0025 offered")


def test_first_drop_is_the_first_dropped_syn_and_the_key_figures_say_so() -> None:
    """One host connecting at 0, 1, ... 11 s, never closing, into 10 tuples: the 11th
    connect (at 10 s) finds none; the events log says so too."""
    r = sim.run(scenario(hosts=1, connects=12), events=True)
    drops = r.events[r.events.event == "syn_dropped"]
    first = r.summary["gateways"]["gw"]["first_drop_s"]
    assert first == drops.time_s.min() == 10.0
    figures = key_figures(r.summary)
    assert "first drop at gateway gw: 10.0 s (a new flow's first SYN or datagram" in "\n".join(
        figures
    )
    assert any(line.startswith("pressure of the hosts' own ports: peak") for line in figures)
    calm = sim.run(scenario(hosts=1, connects=10)).summary  # 10 flows into 10 tuples
    assert calm["gateways"]["gw"]["first_drop_s"] is None
    assert not any("first drop" in line for line in key_figures(calm))


def test_connects_waiting_makes_attempts_into_connects_begun() -> None:
    """One host connecting at 0, 1, ... 11 s into 10 tuples: the connects at 10 and 11 s
    retransmit their SYN until ETIMEDOUT; ``attempts`` counts them only then, and
    ``connects_waiting`` holds them meanwhile, so attempts + its change per bin is what
    began in the bin (the plot's line: sim.plots._begun)."""
    from sim.plots import _begun

    series = sim.run(scenario(hosts=1, connects=12)).series
    begun, label = _begun(series, gateway=True)
    assert label == "connects begun"
    starts, ends = series["t_start_s"].to_numpy(), series["t_end_s"].to_numpy()
    expected = [sum(1 for k in range(12) if a <= k < b) for a, b in zip(starts, ends, strict=True)]
    assert list(begun) == expected
    at = series.set_index("t_start_s")["connects_waiting"]
    assert at[at.index <= 10.0].iloc[-1] == 1 and at[at.index <= 11.0].iloc[-1] == 2
    assert series["connects_waiting"].iloc[-1] == 0  # both timed out within the 400 s


def test_capacity_lines_name_what_they_divide() -> None:
    """The bound's words fit the protocol and a keep-alive line names its terms (a new
    user read "lifetime + TIME_WAIT" on a UDP host and "K connections / L s" as text
    never filled in)."""
    from sim.verdict import _own_capacity

    def line(per: str, method: str = "bound") -> str:
        capacity = {
            "method": method,
            "per": per,
            "ports": 100,
            "holding_s": 0.5,
            "sustainable_per_s": 200.0,
            "why_not_erlang_b": None,
        }
        return _own_capacity({"name": "h", "capacity": capacity})  # type: ignore[typeddict-item]

    assert "(bound: 100 ports / 0.5 s held, lifetime + TIME_WAIT)" in line("destination")
    udp = line("host (connected UDP: a port serves one socket)")
    assert "(bound: 100 ports / 0.5 s held, lifetime: UDP has no TIME_WAIT)" in udp
    pools = line("host (requests over every keep-alive pool)", "keepalive_pool")
    assert "each pool's connections / the mean time a request takes one" in pools
    assert "K connections" not in pools


def test_a_vm_slice_is_its_own_in_every_vms_line() -> None:
    """Cloud NAT gives each VM its own slice: each VM's line gives the slice's size, and
    names the gateway's worst slice as the gateway's, not as this VM's."""
    sc = sim.load_scenario(ROOT / "scenarios" / "cloudnat-ci-builders.toml")
    s = sim.run(sc).summary
    lines = [x for x in key_figures(s) if x.strip().startswith("capacity of builder-")]
    assert len(lines) == 2
    for text in lines:
        assert "gives each VM a slice of its own: at most 0.529/s into a slice of 64 tuples" in text
        assert "(the gateway's worst: tcp 140.82.112.3:443 from builder-1)" in text


def test_busiest_address_is_the_one_whose_own_ports_filled_most() -> None:
    """Two addresses of 10 ports, 3 hosts x 3 never-closing connects: netfilter hashes each
    host onto one address, so the addresses hold what their hosts opened (counted from the
    events); the pressure over both (9 of 20) understates the busier one."""
    two = {"addresses": ["198.51.100.1", "198.51.100.2"]}
    r = sim.run(scenario(hosts=3, connects=3, gateway=two), events=True)
    given = r.events[r.events.event == "translated"].public_address.value_counts()
    pressure = r.summary["gateways"]["gw"]["pressure"]
    assert pressure["peak"] == 9 / 20
    busiest = pressure["busiest_address"]
    assert busiest == {"address": given.idxmax(), "peak": given.max() / 10}
    (line,) = [x for x in verdict(r.summary).splitlines() if x.startswith("Gateway gw ")]
    assert (
        f"(its busiest address {given.idxmax()}: {format_percent(given.max() / 10)} of its 10)"
        in line
    )
    one = sim.run(scenario(hosts=3, connects=3)).summary["gateways"]["gw"]["pressure"]
    assert "busiest_address" not in one  # one address: the pressure is its own
