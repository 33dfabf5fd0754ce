"""Hosts behind a gateway, end to end: what the client sees when the NAT drops its SYN.

Expected values are hand arithmetic: the --to-ports size, conntrack's holds
(nf_conntrack_proto_tcp.c) and the SYN retransmission schedule (net/ipv4/tcp_timer.c:
1, 2, 3, 4, 5, 7, 11, 19, 35, 67 s and ETIMEDOUT at 131 s from Linux 6.5; 1, 3, 7, 15,
31, 63 and 127 s before).
"""

from __future__ import annotations

from typing import Any

import pytest

import sim
from sim.result import Result

API = "203.0.113.10:443"
API2 = "203.0.113.11:443"


def scenario(
    hosts: int = 3,
    connects: int = 5,
    destinations: tuple[str, ...] = (API,),
    gateway: dict[str, Any] | None = None,
    host_keys: dict[str, Any] | None = None,
    lifetime: Any = "inf",
    close: str = "client",
    duration: float = 400.0,
    **load: Any,
) -> sim.Scenario:
    gw = {
        "name": "gw",
        "kind": "linux-masquerade",
        "addresses": ["198.51.100.1"],
        "port_range": "1024-1033",
        "confirm_window": 0.0,
        **(gateway or {}),
    }
    doc: dict[str, Any] = {
        "name": "gw-test",
        "duration": duration,
        "gateways": [gw],
        "hosts": [
            {"name": f"h{i}", "address": f"10.0.0.{i + 2}", "gateway": "gw", **(host_keys or {})}
            for i in range(hosts)
        ],
        "destinations": [{"name": f"d{j}", "address": a} for j, a in enumerate(destinations)],
        "load": [
            {
                "host": f"h{i}",
                "destination": f"d{j}",
                # connects at 0, 1, ..., connects - 1 s
                "arrival": {"kind": "constant", "interval": "1s"},
                "stop": connects - 0.5,
                "lifetime": {"kind": "fixed", "value": lifetime},
                "close": close,
                **load,
            }
            for i in range(hosts)
            for j in range(len(destinations))
        ],
    }
    return sim.parse_scenario(doc)


def fails(result: Result) -> list[float]:
    ev = result.events
    return ev.loc[ev["event"] == "fail", "time_s"].tolist()


def test_ten_ports_fifteen_never_closing_connects() -> None:
    """10 translated ports, one address, 3 hosts x 5 connects that never close: exactly
    10 succeed; the other 5 are dropped on every try and fail with ETIMEDOUT 131 s after
    their first SYN (6.18 client), having tried the gateway 1 + 10 times each."""
    result = sim.run(scenario(), events=True)
    s = result.summary
    assert s["connections"]["succeeded"] == 10
    assert s["connections"]["failed_by_error"]["ETIMEDOUT"] == 5
    assert s["connections"]["failed_by_error"]["EADDRNOTAVAIL"] == 0
    g = s["gateways"]["gw"]
    assert g["ports"] == 10
    assert g["mappings"]["succeeded"] == 10
    assert g["mappings"]["attempted"] == 10 + 5 * 11
    assert g["mappings"]["dropped_by_reason"] == {"no_free_tuple": 55, "insert_failed": 0}
    assert g["pressure"]["peak"] == 1.0
    # connects in order h0, h1, h2 at 0 s, 1 s, ...: the 11th to 15th arrive at 3 s (h1,
    # h2) and 4 s (h0, h1, h2)
    assert sorted(fails(result)) == [134.0, 134.0, 135.0, 135.0, 135.0]
    assert s["connect_latency_s"]["max"] == 0.0


def test_two_destinations_give_twenty() -> None:
    """5-tuple uniqueness: the same 10 ports serve each destination."""
    s = sim.run(scenario(destinations=(API, API2))).summary
    assert s["connections"]["succeeded"] == 20
    assert s["connections"]["failed_by_error"]["ETIMEDOUT"] == 10


@pytest.mark.parametrize(
    ("kernel", "keys", "expect"),
    [
        ("6.18", {}, [1, 2, 3, 4, 5, 7, 11, 19, 35, 67, 131]),
        ("6.4", {}, [1, 3, 7, 15, 31, 63, 127]),
        ("6.18", {"tcp_syn_retries": 2, "tcp_syn_linear_timeouts": 0}, [1, 3, 7]),
    ],
)
def test_syn_schedule_through_the_gateway(kernel: str, keys: dict, expect: list[int]) -> None:
    """One port, taken for ever by h0 at 0 s; h1's SYN at 0 s is dropped, retransmitted on
    the client kernel's schedule (each try hits the gateway again), then ETIMEDOUT."""
    sc = scenario(
        hosts=2,
        connects=1,
        gateway={"port_range": "2000-2000"},
        host_keys={"kernel": kernel, **keys},
    )
    result = sim.run(sc, events=True)
    ev = result.events
    h1 = ev[ev["host"] == "h1"]
    drops = h1.loc[h1["event"] == "syn_dropped", "time_s"].tolist()
    assert drops == [0.0, *expect[:-1]]
    assert fails(result) == [float(expect[-1])]


def test_retransmission_succeeds_when_the_hold_ends() -> None:
    """One port; h0's connection at 0 s ends by RST at 1 s, so conntrack holds the tuple
    in CLOSE for 10 s (to 11 s).  h1 connects at 2 s: dropped at 2, 3, 4, 5, 6, 7 and 9 s,
    let through by the retransmission at 2 + 11 = 13 s: connect latency 11 s."""
    sc = sim.parse_scenario(
        {
            "name": "hold",
            "duration": 60,
            "gateways": [
                {
                    "name": "gw",
                    "kind": "linux-masquerade",
                    "addresses": ["198.51.100.1"],
                    "port_range": "2000-2000",
                    "kernel": "6.1",  # no eviction of closing entries
                }
            ],
            "hosts": [
                {"name": "h0", "address": "10.0.0.2", "gateway": "gw"},
                {"name": "h1", "address": "10.0.0.3", "gateway": "gw"},
            ],
            "destinations": [{"name": "api", "address": API}],
            "load": [
                {
                    "host": "h0",
                    "destination": "api",
                    "arrival": {"kind": "constant", "interval": "100s"},
                    "lifetime": {"kind": "fixed", "value": 1},
                    "close": "reset",
                },
                {
                    "host": "h1",
                    "destination": "api",
                    "arrival": {"kind": "constant", "interval": "100s"},
                    "start": 2,
                    "lifetime": {"kind": "fixed", "value": "inf"},
                },
            ],
        }
    )
    result = sim.run(sc, events=True)
    s = result.summary
    assert s["connections"]["succeeded"] == 2
    assert s["connect_latency_s"]["max"] == 11.0
    assert s["connect_latency_s"]["connects"] == 2
    ev = result.events
    drops = ev.loc[ev["event"] == "syn_dropped", "time_s"].tolist()
    assert drops == [2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 9.0]
    translated = ev[ev["event"] == "translated"]
    assert translated["time_s"].tolist() == [0.0, 13.0]
    assert translated["public_port"].tolist() == [2000, 2000]
    assert result.series["connects_delayed"].sum() == 1


def test_time_wait_hold_after_fin() -> None:
    """One port: h0 and h1 connect at 0 s; h0 gets the tuple, closes with FIN at 1 s and
    conntrack holds it in TIME_WAIT to 121 s (gateway kernel 6.1: no eviction).  h1's
    retransmissions at 1 ... 67 s all fall inside the hold: ETIMEDOUT at 131 s."""
    sc = scenario(
        hosts=2,
        connects=1,
        gateway={"port_range": "2000-2000", "kernel": "6.1"},
        lifetime=1,
        duration=300,
    )
    result = sim.run(sc, events=True)
    assert fails(result) == [131.0]
    assert result.summary["connections"]["succeeded"] == 1


def test_keepalive_and_retries_on_top() -> None:
    """A keep-alive pool whose opens go through a full gateway: the requests fail after
    ETIMEDOUT, counted as connect errors; an application retry after it tries again."""
    sc = scenario(
        hosts=2,
        connects=1,
        gateway={"port_range": "2000-2000"},
        keepalive={"max_connections": 1, "idle_timeout": "1000s"},
        retry={"kind": "fixed", "max_attempts": 2, "base": "1s", "jitter": False},
        lifetime=0.5,
        duration=400,
    )
    s = sim.run(sc).summary
    requests = s["requests"]
    assert requests["attempted"] == 2
    assert requests["succeeded"] == 1
    # h1's open: ETIMEDOUT at 131 s, retried 1 s later, ETIMEDOUT again at 132 + 131 s
    assert s["connections"]["failed_by_error"]["ETIMEDOUT"] == 2
    assert requests["failed"] == 1


def _mixed(pod_gateway: bool, pod: bool = True) -> sim.Scenario:
    """A host "direct" (no gateway), and a host "pod" behind a k8s-node gateway of 4 ports
    (1024-1027), which its 20 connects/s overflow; ``pod_gateway`` False: the pod connects
    directly (no gateway in the scenario); ``pod`` False: the direct host alone."""
    hosts: list[dict[str, Any]] = [{"name": "direct", "address": "10.0.0.2"}]
    if pod:
        hosts.append({"name": "pod", "address": "10.0.0.3"})
    doc: dict[str, Any] = {
        "name": "mixed",
        "duration": 10,
        "hosts": hosts,
        "destinations": [{"name": "api", "address": API}],
        "load": [
            {
                "host": h["name"],
                "destination": "api",
                "arrival": {"kind": "poisson", "rate": 20},
                "lifetime": {"kind": "exponential", "mean": "100ms"},
            }
            for h in hosts
        ],
    }
    if pod_gateway:
        gw = {"name": "gw", "kind": "k8s-node", "addresses": ["198.51.100.1"]}
        doc["gateways"] = [{**gw, "port_range": "1024-1027"}]
        hosts[1]["gateway"] = "gw"
    return sim.parse_scenario(doc)


def test_hosts_without_a_gateway_unchanged() -> None:
    """A host without gateway in a run where another host's gateway drops SYNs: its summary
    section, its load's section and its every event (time, port, order) are those of the
    same run without the gateway, and of the host alone (its random streams are keyed by
    its own index, sim.engine); the gateway's columns stay empty for it.  The gateway does
    act on the pod (drops, delayed connects), so the comparison is not vacuous."""
    with_gw = sim.run(_mixed(pod_gateway=True), events=True)
    s = with_gw.summary
    pod_drops = s["gateways"]["gw"]["mappings"]["dropped"]
    assert pod_drops > 0
    assert s["connect_latency_s"]["delayed"] > 0
    # every completed connect counts in connect_latency_s, the direct host's with the pod's
    direct_ok = s["hosts"][0]["connections"]["succeeded"]
    pod_ok = s["hosts"][1]["connections"]["succeeded"]
    assert s["connect_latency_s"]["connects"] == direct_ok + pod_ok

    events = with_gw.events
    direct_events = events[events["host"] == "direct"].reset_index(drop=True)
    assert len(direct_events) > 500
    assert direct_events["public_address"].isna().all()
    assert direct_events["public_port"].isna().all()
    for other in (
        sim.run(_mixed(pod_gateway=False), events=True),
        sim.run(_mixed(False, False), events=True),
    ):
        o = other.summary
        assert o["hosts"][0]["name"] == "direct"
        assert s["hosts"][0] == o["hosts"][0]
        assert s["loads"][0] == o["loads"][0]
        theirs = other.events[other.events["host"] == "direct"].reset_index(drop=True)
        assert direct_events[list(theirs.columns)].equals(theirs)
    # the pod has the same arrivals either way, but behind the gateway those whose SYNs
    # are still being retransmitted at the end have not completed
    no_gw = sim.run(_mixed(pod_gateway=False)).summary
    waiting = s["connect_latency_s"]["still_connecting_at_end"]
    assert waiting > 0
    assert (
        s["hosts"][1]["connections"]["attempted"] + waiting
        == (no_gw["hosts"][1]["connections"]["attempted"])
    )


def test_same_bytes_twice() -> None:
    a = sim.run(scenario(), events=True)
    b = sim.run(scenario(), events=True)
    assert a.events.equals(b.events)
    assert a.series.equals(b.series)


def test_verdict_calls_lost_insert_races_no_exhaustion() -> None:
    """Drops that are all insert_failed are confirm races, not a full tuple space: the
    headline must not say exhaustion (one SYN lost of 180,162, as in the two-address node)."""
    from sim.nat.report import gateway_headlines

    summary = {
        "connections": {"failed_by_error": {}},
        "connect_latency_s": {
            "connects": 180161,
            "delayed": 1,
            "still_connecting_at_end": 0,
            "p50": 0.0,
            "p99": 0.0,
            "max": 1.0,
        },
        "gateways": {
            "node": {
                "kind": "k8s-node",
                "addresses": ["198.51.100.1", "198.51.100.2"],
                "ports": 64512,
                "mappings": {
                    "attempted": 180162,
                    "succeeded": 180161,
                    "dropped": 1,
                    "dropped_by_reason": {"no_free_tuple": 0, "insert_failed": 1},
                },
                "pressure": {"peak": 0.56, "mean": 0.5, "worst_destination": "tcp api:443"},
                # as the run reports them: every TCP connect of the run is the node's
                "clients": {
                    "tcp_connects": 180161,
                    "timed_out": 0,
                    "delayed": 1,
                    "still_connecting_at_end": 0,
                    "udp_no_reply": 0,
                },
            }
        },
    }
    (line,) = gateway_headlines(summary)
    assert line.startswith("No exhaustion at gateway node (k8s-node), but 1 of 180,162")
    assert "insert race" in line and "Exhaustion" not in line
    summary["gateways"]["node"]["mappings"]["dropped_by_reason"]["no_free_tuple"] = 1
    summary["gateways"]["node"]["mappings"]["dropped"] = 2
    (line,) = gateway_headlines(summary)
    # the clients' connects first (180,161 through, 1 of them late), then the refusals
    assert line.startswith(
        "Exhaustion at gateway node (k8s-node): of 180,161 connects, 1 got through only "
        "after SYN retransmissions (connect latency p99 0 s, max 1 s); peak pressure 56 %"
    )
    assert "; 2 of 180,162 translations refused (1 no free tuple, 1 insert failed; " in line
    assert line.endswith("; not EADDRNOTAVAIL")
    # sockets waiting on SYN retransmissions hold their ports: the hosts may run out too
    summary["connections"]["failed_by_error"]["EADDRNOTAVAIL"] = 113116
    summary["connect_latency_s"]["still_connecting_at_end"] = 227320
    clients = summary["gateways"]["node"]["clients"]
    clients["still_connecting_at_end"] = 227320
    clients["tcp_connects"] = 180161 + 227320
    (line,) = gateway_headlines(summary)
    assert "not EADDRNOTAVAIL" not in line
    # 180,161 through + 227,320 still retransmitting = 407,481 connects
    assert line.startswith("Exhaustion at gateway node (k8s-node): of 407,481 connects, 1 got")
    assert " and 227,320 were still retransmitting at the end; " in line
    assert line.endswith(
        "; the hosts ran out of local ports too (113,116 EADDRNOTAVAIL: sockets waiting on "
        "SYN retransmissions hold theirs)"
    )


def test_a_linux_hosts_udp_pool_is_not_called_a_destination() -> None:
    """Linux UDP autobind ignores the destination: the pool labelled 'udp <the host's
    address>' is its UDP port space; a gateway's 'udp <ip>:<port>' is a destination."""
    from sim.verdict import worst_pool

    assert worst_pool("udp 10.244.1.56") == "in the UDP ports of 10.244.1.56, all destinations"
    assert worst_pool("10.0.0.1:443") == "worst destination 10.0.0.1:443"
    assert worst_pool("udp 198.51.100.53:53") == "worst destination udp 198.51.100.53:53"


def test_probes_count_calls_not_settled_connects() -> None:
    """Ports probed per call: behind a gateway a call that got a port settles later (or
    never: still connecting at the end), so the means divide by the calls made.  Here
    3 hosts x 5 calls all get a port from an empty range, each in one probe (the host's
    first candidate is free; nothing else is held), though 5 of them end in ETIMEDOUT
    and, with the run cut at 60 s, 5 are still connecting: the mean is 1, not
    15 probes / 10 settled connects = 1.5."""
    s = sim.run(scenario(duration=60.0)).summary
    assert s["connections"]["succeeded"] == 10
    assert s["connect_latency_s"]["still_connecting_at_end"] == 5
    assert s["probes"]["mean"] == 1.0
    assert s["probes"]["max"] == 1
    series = sim.run(scenario(duration=60.0)).series
    busy = series[series["probes_max"] > 0]
    assert (busy["probes_mean"] == 1.0).all()


def test_steady_state_waits_for_the_gateway() -> None:
    """Behind a gateway the pool that fills is the gateway's: conntrack holds a tuple
    120 s after a FIN (nf_conntrack_proto_tcp.c), and a dropped connect fails only 131 s
    after its first SYN (6.18's schedule).  With 2 s lifetimes the warmup is
    120 + 3 x 2 + 131 = 257 s, not the host's 60 + 3 x 2 = 66 s; a UDP flow of 20 ms is
    held 30 s (udp_timeout) and has no SYN to retry: 30 + 3 x 0.02 = 30.06 s."""
    tcp = scenario(hosts=1, connects=5, lifetime=2.0, duration=1000.0)
    assert sim.run(tcp).summary["steady_state"]["warmup_s"] == pytest.approx(257.0)
    udp = scenario(hosts=1, connects=5, lifetime=0.02, duration=1000.0, protocol="udp")
    assert sim.run(udp).summary["steady_state"]["warmup_s"] == pytest.approx(30.06)
