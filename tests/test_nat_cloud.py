"""The cloud and carrier gateway kinds against their documented limits, by hand arithmetic.

Every expected number below comes from the vendor's or the RFC's figure (55,000 per AWS
address and destination, Azure's pool-size table, GCP's ports per VM, RFC 7422's ports per
subscriber...) or from arithmetic on it stated next to the assertion, never from a run."""

from __future__ import annotations

import numpy as np
import pytest

from sim.nat.base import FIN, RST, GatewayConfig, Mapping
from sim.nat.kinds import KINDS, make_gateway
from sim.nat.slots import SlotGateway
from sim.randomness import Stream

D1 = "203.0.113.10"
D2 = "203.0.113.11"
A = tuple(f"198.51.100.{i + 1}" for i in range(20))


def gw(kind: str, n_addresses: int = 1, port_range=None, **options: object) -> SlotGateway:  # type: ignore[no-untyped-def]
    config = GatewayConfig("gw", kind, A[:n_addresses], port_range, dict(options))
    g = make_gateway(config, Stream(np.random.SeedSequence(3)))
    assert isinstance(g, SlotGateway)
    return g


def vm(i: int) -> str:
    return f"10.0.{i // 250}.{i % 250 + 2}"


def connect(g: SlotGateway, now: float, member: int, dst: str = D1, port: int = 443,
            sport: int | None = None, protocol: str = "tcp") -> Mapping | str:  # fmt: skip
    if sport is None:
        sport = 32768 + g.counters.attempted % 28000
    return g.translate(now, protocol, member, vm(member), sport, dst, port)


def fleet(g: SlotGateway, n: int, now: float = 0.0, members: int = 100, **kw: object) -> list:  # type: ignore[type-arg]
    """``n`` connections spread over ``members`` hosts; the mappings that succeeded."""
    out = []
    for k in range(n):
        r = connect(g, now, k % members, **kw)  # type: ignore[arg-type]
        if not isinstance(r, str):
            out.append(r)
    return out


def test_all_kinds_registered() -> None:
    assert set(KINDS) >= {
        "aws-natgw",
        "azure-lb",
        "azure-natgw",
        "gcp-cloudnat",
        "cgn-pba",
        "cgn-deterministic",
    }


# -- AWS NAT Gateway: 55,000 per (address, destination address, port, protocol) --------------


def test_aws_one_address_one_destination() -> None:
    g = gw("aws-natgw")
    ok = fleet(g, 60000)
    assert len(ok) == 55000
    assert g.counters.dropped_by_reason["ErrorPortAllocation"] == 5000
    assert g.summary(1.0)["cloudwatch"]["ErrorPortAllocation"] == 5000
    assert len({m.port for m in ok}) == 55000  # distinct ports to one destination


def test_aws_two_destinations_double() -> None:
    g = gw("aws-natgw")
    ok = fleet(g, 60000, dst=D1) + fleet(g, 60000, dst=D2)
    assert len(ok) == 2 * 55000  # 110,000: the limit is per destination


def test_aws_destination_port_and_protocol_are_part_of_the_key() -> None:
    g = gw("aws-natgw")
    assert len(fleet(g, 56000, port=443)) == 55000
    assert len(fleet(g, 1000, port=80)) == 1000
    assert len(fleet(g, 1000, port=443, protocol="udp")) == 1000


def test_aws_four_addresses() -> None:
    g = gw("aws-natgw", 4)
    ok = fleet(g, 230000)
    assert len(ok) == 4 * 55000
    per_address = dict.fromkeys(A[:4], 0)
    for m in ok:
        per_address[m.address] += 1
    assert set(per_address.values()) == {55000}


def test_aws_at_most_eight_addresses() -> None:
    gw("aws-natgw", 8)
    with pytest.raises(ValueError, match="at most 8"):
        gw("aws-natgw", 9)


def test_aws_post_close_hold_and_the_900_per_second() -> None:
    # zero-length flows at 1,024/s (exact binary times), each closed at once: the held
    # count is the successes of the last 60 s; it reaches 55,000 at attempt 55,000
    # (t = 53.7 s), and attempt k's port comes back at k/1024 + 60 = (k + 61,440)/1024,
    # so attempts 55,000 ... 61,439 fail: 6,440; after that every attempt finds the port
    # of the one 61,440 before it.
    g = gw("aws-natgw")
    failed = 0
    for k in range(70000):
        r = connect(g, k / 1024, k % 100)
        if isinstance(r, str):
            failed += 1
        else:
            g.release(r, k / 1024, FIN)
    assert failed == 61440 - 55000
    # at 900/s (below 55,000 / 60 = 916.7/s) nothing fails
    g = gw("aws-natgw")
    for k in range(90000):
        r = connect(g, k / 900, k % 100)
        assert not isinstance(r, str)
        g.release(r, k / 900, FIN)


def test_aws_idle_timeout_resets_unless_keepalive() -> None:
    g = gw("aws-natgw", per_destination_limit=1)
    m = connect(g, 0.0, 0)
    assert not isinstance(m, str)
    g.went_idle(m, 10.0)
    assert g.touch(m, 359.0)  # 349 s idle: still there
    g.went_idle(m, 359.0)
    assert isinstance(connect(g, 708.0, 1), str)  # the one port is still held
    assert not g.touch(m, 710.0)  # 351 s idle: gone, the next packet meets an RST
    assert g.idle_signal == "ECONNRESET"
    cw = g.summary(710.0)["cloudwatch"]
    assert cw["IdleTimeoutCount"] == 1
    # the expired flow freed its port at 359 + 350 = 709 s
    assert not isinstance(connect(g, 710.0, 1), str)
    # TCP keepalive every 60 s (< 350 s) keeps the flow
    g = gw("aws-natgw")
    m = connect(g, 0.0, 0)
    assert not isinstance(m, str)
    g.went_idle(m, 0.0, keepalive=60.0)
    assert g.touch(m, 10000.0)
    assert g.summary(10000.0)["idle"]["kept_alive_by_tcp_keepalive"] == 1


# -- Azure Load Balancer outbound SNAT ----------------------------------------------------


@pytest.mark.parametrize(
    ("pool", "ports"),
    [(1, 1024), (50, 1024), (51, 512), (100, 512), (101, 256), (200, 256), (201, 128),
     (400, 128), (401, 64), (800, 64), (801, 32), (1000, 32)],
)  # fmt: skip
def test_azure_lb_preallocation_table(pool: int, ports: int) -> None:
    g = gw("azure-lb", backend_pool_size=pool)
    assert len(fleet(g, ports + 10, members=1)) == ports  # one VM, one destination


def test_azure_lb_beyond_the_table_and_oversubscription() -> None:
    with pytest.raises(ValueError, match="1,000"):
        gw("azure-lb", backend_pool_size=1000, scale=[[1, 1000]])._allocation(1001)
    # Microsoft's example: 7 VMs x 10,000 ports do not fit one frontend (6 x 10,000 do)
    gw("azure-lb", backend_pool_size=6, allocated_outbound_ports=10000)
    with pytest.raises(ValueError, match="do not fit"):
        gw("azure-lb", backend_pool_size=7, allocated_outbound_ports=10000)
    with pytest.raises(ValueError, match="multiple of 8"):
        gw("azure-lb", backend_pool_size=7, allocated_outbound_ports=1001)


def test_azure_lb_tcp_key_is_destination_address_and_port() -> None:
    g = gw("azure-lb", backend_pool_size=100)  # 512 per VM
    assert len(fleet(g, 600, members=1, port=443)) == 512
    assert len(fleet(g, 600, members=1, port=80)) == 512  # same ports, another destination
    assert len(fleet(g, 600, members=1, dst=D2)) == 512


def test_azure_lb_udp_key_is_destination_address() -> None:
    g = gw("azure-lb", backend_pool_size=100)
    assert len(fleet(g, 600, members=1, protocol="udp", port=53)) == 512
    assert len(fleet(g, 10, members=1, protocol="udp", port=54)) == 0  # same address
    assert len(fleet(g, 10, members=1, protocol="udp", dst=D2, port=53)) == 10


def test_azure_lb_lowest_free_port_and_holds() -> None:
    g = gw("azure-lb", backend_pool_size=100, allocated_outbound_ports=8)
    ms = fleet(g, 8, members=1)
    assert [m.port for m in ms] == list(range(1024, 1032))  # lowest first
    g.release(ms[3], 10.0, FIN)  # freed 240 s after FIN
    g.release(ms[5], 10.0, RST)  # freed 15 s after RST
    assert isinstance(connect(g, 24.9, 0), str)
    assert connect(g, 25.0, 0).port == 1029  # type: ignore[union-attr]
    assert isinstance(connect(g, 249.9, 0), str)
    assert connect(g, 250.0, 0).port == 1027  # type: ignore[union-attr]


def test_azure_lb_frontends_one_at_a_time() -> None:
    # 100 VMs x 512 = 51,200 fit the first frontend: the second is never used
    g = gw("azure-lb", 2, backend_pool_size=100)
    fleet(g, 100, members=100)
    assert g.summary(1.0)["frontends_used"] == [A[0]]
    # 1,024 per VM: 64,000 // 1,024 = 62 VMs on the first frontend, VMs 62-99 on the second
    g = gw("azure-lb", 2, backend_pool_size=100, allocated_outbound_ports=1024)
    ms = fleet(g, 100, members=100)
    assert [m.address for m in ms].count(A[0]) == 62
    assert [m.address for m in ms].count(A[1]) == 38


def test_azure_lb_scale_out_reclaims_ports() -> None:
    # 50 VMs get 1,024 each; at t = 100 the pool grows to 51: 512 each. A VM holding
    # 600 flows to one destination loses the 88 on slots 512-599 and cannot open more.
    g = gw("azure-lb", backend_pool_size=50, scale=[[100, 51]])
    ms = fleet(g, 600, members=1)
    assert len(ms) == 600
    assert isinstance(connect(g, 100.0, 0), str)
    lost = [m for m in ms if not g.touch(m, 101.0)]
    assert len(lost) == 88
    assert g.idle_signal == "ETIMEDOUT"  # silent drop without tcp_reset
    s = g.summary(101.0)
    assert s["reclaimed_flows"] == 88
    assert s["azure_monitor"]["Allocated SNAT Ports"] == 512


def test_azure_lb_idle_timeout_range() -> None:
    with pytest.raises(ValueError, match="idle_timeout"):
        gw("azure-lb", backend_pool_size=1, idle_timeout=60)
    g = gw("azure-lb", backend_pool_size=1, tcp_reset=True)
    m = connect(g, 0.0, 0)
    g.went_idle(m, 0.0)  # type: ignore[arg-type]
    assert not g.touch(m, 241.0)  # type: ignore[arg-type]
    assert g.idle_signal == "ECONNRESET"


# -- Azure NAT Gateway -----------------------------------------------------------------------


def test_azure_natgw_50000_per_address_and_destination() -> None:
    g = gw("azure-natgw")
    assert len(fleet(g, 51000)) == 50000
    g = gw("azure-natgw", 2)
    assert len(fleet(g, 101000)) == 100000


def test_azure_natgw_reuses_ports_across_destinations() -> None:
    # 64,512 ports: 50,000 to D1 leave 14,512 unused; 50,000 to D2 take those first,
    # then 35,488 ports already in use towards D1
    g = gw("azure-natgw")
    a = fleet(g, 50000, dst=D1)
    b = fleet(g, 50000, dst=D2)
    assert len(a) == len(b) == 50000
    assert g.summary(1.0)["ports_reused_across_destinations"] == 50000 - 14512
    assert len({m.port for m in a} | {m.port for m in b}) == 64512


def test_azure_natgw_cooldowns() -> None:
    g = gw("azure-natgw", per_destination_limit=1)
    m = connect(g, 0.0, 0)
    g.release(m, 1.0, FIN)  # type: ignore[arg-type]
    assert isinstance(connect(g, 65.9, 0), str)
    m = connect(g, 66.0, 0)
    assert not isinstance(m, str)
    g.release(m, 70.0, RST)
    assert isinstance(connect(g, 85.9, 0), str)
    assert not isinstance(connect(g, 86.0, 0), str)
    with pytest.raises(ValueError, match="at most 16"):
        gw("azure-natgw", 17)


# -- GCP Cloud NAT ---------------------------------------------------------------------------


def test_gcp_64_static_ports() -> None:
    g = gw("gcp-cloudnat")
    assert len(fleet(g, 100, members=1, dst=D1)) == 64
    assert len(fleet(g, 100, members=1, dst=D2)) == 64  # 128 to two destinations
    assert len(fleet(g, 100, members=1, dst=D1, port=80)) == 64  # the 3-tuple has the port
    s = g.summary(1.0)["cloud_monitoring"]
    assert s["dropped_sent_packets_count"]["OUT_OF_RESOURCES"] == 3 * 36


def test_gcp_vms_per_address() -> None:
    # 64,512 // 64 = 1,008 VMs per address; the 1,009th gets no ports
    g = gw("gcp-cloudnat")
    for k in range(1008):
        assert not isinstance(connect(g, 0.0, k), str)
    assert connect(g, 0.0, 1008) == "OUT_OF_RESOURCES"
    assert g.summary(1.0)["cloud_monitoring"]["nat_allocation_failed"] is True
    # GKE nodes with 2,048: 64,512 // 2,048 = 31 per address; the 32nd node (in the order
    # they first send) gets the second address
    g = gw("gcp-cloudnat", 2, min_ports_per_vm=2048)
    addresses = [connect(g, 0.0, k).address for k in range(32)]  # type: ignore[union-attr]
    assert addresses == [A[0]] * 31 + [A[1]]


def test_gcp_time_wait_then_0_53_per_second() -> None:
    g = gw("gcp-cloudnat")
    ms = fleet(g, 64, members=1)
    for m in ms:
        g.release(m, 0.0, FIN)
    assert isinstance(connect(g, 119.9, 0), str)
    assert len(fleet(g, 100, now=120.0, members=1)) == 64
    # one destination, closing at once: 64 ports / 120 s = 0.533/s sustained. At 0.5/s
    # (a connection every 2 s) nothing fails; at 0.6/s (every 5/3 s) some do.
    for gap, fails in ((2.0, False), (5 / 3, True)):
        g = gw("gcp-cloudnat")
        failed = 0
        for k in range(400):
            r = connect(g, k * gap, 0)
            if isinstance(r, str):
                failed += 1
            else:
                g.release(r, k * gap, FIN)
        assert (failed > 0) is fails


def test_gcp_dynamic_doubles_after_the_lag() -> None:
    g = gw("gcp-cloudnat", dynamic=True, max_ports_per_vm=64, grow_lag=5.0, grow_threshold=1.0)
    assert len(fleet(g, 40, members=1)) == 32  # min 32; the 32nd triggers the doubling
    assert len(fleet(g, 8, now=4.9, members=1)) == 0  # not yet usable
    assert len(fleet(g, 40, now=5.0, members=1)) == 32  # 64 now: 32 more, then max reached
    s = g.summary(6.0)
    assert s["allocated_ports"]["max"] == 64
    assert s["allocation_growths"] == 1
    with pytest.raises(ValueError, match="power of two"):
        gw("gcp-cloudnat", dynamic=True, min_ports_per_vm=48)
    with pytest.raises(ValueError, match="endpoint_independent_mapping"):
        gw("gcp-cloudnat", dynamic=True, endpoint_independent_mapping=True)


def test_gcp_endpoint_independent_mapping() -> None:
    # with EIM one internal port keeps one NAT port for every destination
    g = gw("gcp-cloudnat", endpoint_independent_mapping=True)
    a = connect(g, 0.0, 0, dst=D1, sport=40000)
    b = connect(g, 0.0, 0, dst=D2, sport=40000)
    assert a.port == b.port  # type: ignore[union-attr]
    # the client reuses its 4-tuple after its own TIME_WAIT (60 s) while Cloud NAT still
    # holds the NAT 5-tuple (120 s): ENDPOINT_INDEPENDENCE_CONFLICT, not with EIM off
    g.release(a, 1.0, FIN)  # type: ignore[arg-type]
    assert connect(g, 62.0, 0, dst=D1, sport=40000) == "ENDPOINT_INDEPENDENCE_CONFLICT"
    assert not isinstance(connect(g, 121.0, 0, dst=D1, sport=40000), str)
    off = gw("gcp-cloudnat")
    a = connect(off, 0.0, 0, dst=D1, sport=40000)
    off.release(a, 1.0, FIN)  # type: ignore[arg-type]
    assert not isinstance(connect(off, 62.0, 0, dst=D1, sport=40000), str)
    # EIM: 64 internal ports bind all 64 NAT ports; a 65th internal port fails for any
    # destination (without EIM a second destination has 64 more)
    g = gw("gcp-cloudnat", endpoint_independent_mapping=True)
    for p in range(64):
        assert not isinstance(connect(g, 0.0, 0, dst=D1, sport=40000 + p), str)
    assert connect(g, 0.0, 0, dst=D2, sport=50000) == "OUT_OF_RESOURCES"


# -- Carrier-grade NAT -----------------------------------------------------------------------


def test_pba_per_subscriber_limit() -> None:
    # 8 blocks x 128 ports = 1,024 internal endpoints per subscriber (RFC 6888 REQ-4)
    g = gw("cgn-pba")
    ok = [connect(g, 0.0, 0, sport=20000 + p) for p in range(1025)]
    assert sum(not isinstance(r, str) for r in ok) == 1024
    assert ok[-1] == "subscriber_port_limit"
    assert len({r.address for r in ok[:-1]}) == 1  # type: ignore[union-attr]  # paired pooling


def test_pba_endpoint_independent_and_blocks_per_address() -> None:
    g = gw("cgn-pba")
    a = connect(g, 0.0, 0, dst=D1, sport=20000)
    b = connect(g, 0.0, 0, dst=D2, sport=20000)
    assert (a.address, a.port) == (b.address, b.port)  # type: ignore[union-attr]
    # 64,512 // 128 = 504 blocks per address: subscriber 504 finds none
    g = gw("cgn-pba", max_blocks=1)
    for s in range(504):
        assert not isinstance(connect(g, 0.0, s), str)
    assert connect(g, 0.0, 504) == "pool_exhausted"


def test_pba_reuse_delay() -> None:
    # a 1-port block: after the flow ends, RFC 6888's 120 s before another internal
    # endpoint may have the port; the same endpoint gets its mapping back meanwhile
    g = gw("cgn-pba", block_size=1, max_blocks=1)
    m = connect(g, 0.0, 0, sport=20000)
    g.release(m, 10.0, FIN)  # type: ignore[arg-type]
    assert isinstance(connect(g, 99.0, 0, sport=20001), str)
    again = connect(g, 100.0, 0, sport=20000)
    assert again.port == m.port  # type: ignore[union-attr]
    g.release(again, 110.0, FIN)  # type: ignore[arg-type]
    assert isinstance(connect(g, 229.9, 0, sport=20001), str)
    assert not isinstance(connect(g, 230.0, 0, sport=20001), str)
    # a closing state kept 240 s (closing_hold) adds to the 120 s
    g = gw("cgn-pba", block_size=1, max_blocks=1, closing_hold=240.0)
    g.release(connect(g, 0.0, 0, sport=20000), 10.0, FIN)  # type: ignore[arg-type]
    assert isinstance(connect(g, 369.9, 0, sport=20001), str)
    assert not isinstance(connect(g, 370.0, 0, sport=20001), str)


@pytest.mark.parametrize(
    ("ratio", "ports"), [(16, 4032), (32, 2016), (64, 1008), (128, 504), (1024, 63)]
)
def test_deterministic_ports_per_subscriber(ratio: int, ports: int) -> None:
    # (65,535 - 1,023) // sharing ratio, CSIT's table
    g = gw("cgn-deterministic", sharing_ratio=ratio)
    assert g.ports() == ports
    addr, lo, hi = g.subscriber_range(ratio - 1)  # type: ignore[attr-defined]
    assert (addr, lo, hi) == (A[0], 1024 + ports * (ratio - 1), 1024 + ports * ratio - 1)
    assert len(fleet(g, min(ports, 1000) + 5, members=1)) == min(ports, 1000)  # 1,000 sessions


def test_deterministic_range_by_inside_address() -> None:
    g = gw("cgn-deterministic", 2, sharing_ratio=64, inside_prefix="100.64.0.0/10")
    m = g.translate(0.0, "tcp", 0, "100.64.0.65", 40000, D1, 443)
    # offset 65: address 65 // 64 = 1, ports from 1024 + 1008 x 1; probe starts at
    # 40000 % 1008 = 688
    assert (m.address, m.port) == (A[1], 1024 + 1008 + 688)  # type: ignore[union-attr]
    assert g.translate(0.0, "tcp", 0, "100.64.0.128", 40000, D1, 443) == "no_range"
    g = gw("cgn-deterministic", sharing_ratio=1024)
    assert len(fleet(g, 70, members=1, dst=D1)) == 63
    assert len(fleet(g, 70, members=1, dst=D2)) == 63
