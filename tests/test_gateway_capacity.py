"""Gateway sizing against the vendors' own figures and hand arithmetic.

Every expected number below is derived in its comment from a documented limit (AWS "NAT
gateway basics", Microsoft's SNAT tables, Google's Cloud NAT "Ports and addresses", RFC
6888 / Juniper PBA defaults, VPP det44) or from an Erlang B table, never from the code.
"""

from __future__ import annotations

import json
import math

import pytest

from sim.analytic_gateway import GatewayInputError, azure_lb_ports_per_vm, size_gateway
from sim.cli import main
from sim.nat_kinds import KINDS, SOURCES


def limit(sizing, name):  # type: ignore[no-untyped-def]
    return next(lim for lim in sizing.limits if lim.name == name)


# ---- AWS NAT Gateway -------------------------------------------------------------------------


def test_aws_900_per_second_to_one_destination() -> None:
    # 55,000 concurrent per (address, destination) / (0 s lifetime + 60 s inferred hold)
    # = 916.7/s; AWS writes "approximately 900 connections per second to a single destination"
    s = size_gateway("aws-natgw", vms=1, rate=100, destinations=1, lifetime_s=0)
    assert s.sustainable_per_destination == pytest.approx(55000 / 60)
    assert s.sustainable_per_destination == pytest.approx(900, rel=0.02)
    assert s.parameters["hold_fin"]["status"] == "inferred"


def test_aws_concurrency_cap_per_address_and_destination() -> None:
    # 60 VMs x 1/s living 940 s (+ 60 s hold) = 60,000 tuples to one destination: the
    # 55,000 cap binds, 2 addresses needed; spread over two destinations each needs 30,000
    one = size_gateway("aws-natgw", vms=60, rate=1, destinations=1, lifetime_s=940)
    cap = limit(one, "per_destination")
    assert (cap.capacity, cap.demand) == (55000, pytest.approx(60000))
    assert one.binding == "per_destination" and one.addresses_needed == 2
    two = size_gateway("aws-natgw", vms=60, rate=1, destinations=2, lifetime_s=940)
    assert limit(two, "per_destination").demand == pytest.approx(30000)
    assert two.addresses_needed == 1
    # 8 addresses: 440,000 concurrent to one destination, 440,000 / 60 s per second
    eight = size_gateway("aws-natgw", vms=1, rate=1, addresses=8, lifetime_s=0)
    assert limit(eight, "per_destination").capacity == 440000
    assert eight.sustainable_per_destination == pytest.approx(440000 / 60)


def test_aws_takes_at_most_eight_addresses_and_says_when_more_are_needed() -> None:
    with pytest.raises(GatewayInputError, match="at most 8"):
        size_gateway("aws-natgw", vms=1, rate=1, addresses=9)
    # 10,000/s to one destination x 60 s = 600,000 tuples: 11 addresses of 55,000
    s = size_gateway("aws-natgw", vms=10, rate=1000, lifetime_s=0)
    assert s.addresses_needed == 11
    assert "more than the 8 addresses" in s.addresses_note


def test_aws_idle_timeout_warning() -> None:
    s = size_gateway("aws-natgw", vms=1, rate=1, lifetime_s=400)
    assert any("idle timeout (350 s)" in n for n in s.notes)


# ---- Google Cloud NAT --------------------------------------------------------------------------


def test_gcp_64_ports_over_120_s_is_0_53_per_second_per_vm() -> None:
    # 64 ports / 120 s TIME_WAIT = 0.533 new connections/s per VM to one destination
    s = size_gateway("gcp-cloudnat", vms=1, rate=1, lifetime_s=0)
    assert s.sustainable_per_vm_per_destination == pytest.approx(64 / 120)
    assert round(s.sustainable_per_vm_per_destination, 2) == 0.53
    # 64 concurrent to one destination; to two destinations 64 each (128 in all)
    assert limit(s, "per_vm_allocation").capacity == 64
    two = size_gateway("gcp-cloudnat", vms=1, rate=128 / 120, destinations=2, lifetime_s=0)
    assert limit(two, "per_vm_allocation").demand == pytest.approx(64)
    assert limit(two, "per_vm_allocation").utilisation == pytest.approx(1.0)
    # 1 VM needs 1/s x 120 s = 120 ports to one destination
    assert s.ports_per_vm_needed == 120 and s.binding == "per_vm_allocation"


def test_gcp_vms_per_address_documented_examples() -> None:
    # Google: 1 address at 64 ports per VM -> 64,512 / 64 = 1,008 VMs; at 4,096 -> 15 VMs
    assert size_gateway("gcp-cloudnat", vms=1, rate=0).max_vms == 1008
    assert size_gateway("gcp-cloudnat", vms=1, rate=0, ports_per_vm=4096).max_vms == 15


def test_gitlab_448_vms_and_the_documented_441() -> None:
    # GitLab sized Cloud NAT as (65,536 / 2,048) x 14 = 448 VMs. Google documents 64,512
    # usable ports per address (1024-65535): floor(14 x 64,512 / 2,048) = 441 VMs, and
    # 448 VMs need ceil(448 x 2,048 / 64,512) = 15 addresses.
    documented = size_gateway("gcp-cloudnat", vms=448, rate=0, ports_per_vm=2048, addresses=14)
    assert documented.max_vms == 441 and documented.allocation_per_vm == 2048
    assert documented.addresses_needed == 15
    gitlab = size_gateway(
        "gcp-cloudnat",
        vms=448,
        rate=0,
        ports_per_vm=2048,
        addresses=14,
        ports_per_address=65536,
    )
    assert gitlab.max_vms == 448 and gitlab.addresses_needed == 14


def test_gcp_dynamic_allocation_doubles_to_a_power_of_two() -> None:
    # 2/s x (2 s + 120 s) = 244 ports -> the next power of 2 is 256 (from the minimum 32)
    s = size_gateway("gcp-cloudnat", vms=10, rate=2, lifetime_s=2, dynamic=True)
    assert s.ports_per_vm_needed == 244 and s.allocation_per_vm == 256
    assert not s.erlang.applies
    # the ceiling is maxPortsPerVm 65,536, but one address holds only 64,512
    assert limit(s, "per_vm_allocation").capacity == 64512
    with pytest.raises(GatewayInputError, match="power of 2"):
        size_gateway("gcp-cloudnat", vms=1, rate=1, dynamic=True, dynamic_min_ports_per_vm=48)
    with pytest.raises(GatewayInputError, match="endpoint-independent"):
        size_gateway("gcp-cloudnat", vms=1, rate=1, dynamic=True, eim=True)


def test_gcp_endpoint_independent_mapping_shares_ports_across_destinations() -> None:
    # with EIM a VM's 64 ports serve every destination: 64 / 120 s in all, 0.267/s to each of 2
    s = size_gateway("gcp-cloudnat", vms=1, rate=1, destinations=2, lifetime_s=0, eim=True)
    assert s.sustainable_per_vm == pytest.approx(64 / 120)
    assert s.sustainable_per_vm_per_destination == pytest.approx(64 / 120 / 2)
    assert limit(s, "per_vm_allocation").demand == pytest.approx(120)


# ---- Linux netfilter -----------------------------------------------------------------------------


def test_linux_to_ports_10_with_two_addresses() -> None:
    # --to-ports 10 ports, 2 addresses: 20 tuples to one destination / 120 s TIME_WAIT
    # = 0.167/s for the fleet; one VM is hashed to one address: 10 / 120 = 0.083/s
    s = size_gateway(
        "linux-masquerade", vms=2, rate=0.01, lifetime_s=0, port_range=(40000, 40009), addresses=2
    )
    assert s.sustainable_per_destination == pytest.approx(20 / 120)
    assert s.sustainable_per_vm_per_destination == pytest.approx(10 / 120)
    # after an RST the conntrack CLOSE state holds 10 s: 20 / 10 = 2/s
    rst = size_gateway(
        "linux-masquerade",
        vms=2,
        rate=0.01,
        lifetime_s=0,
        close="rst",
        port_range=(40000, 40009),
        addresses=2,
    )
    assert rst.sustainable_per_destination == pytest.approx(2.0)


def test_linux_erlang_b_per_address_matches_the_table() -> None:
    # 2 VMs x (5/120)/s x 120 s = 10 erlangs to one destination, 5 per address of 10 ports:
    # B(10, 5) = 0.018385 (standard Erlang B table)
    s = size_gateway(
        "linux-masquerade", vms=2, rate=5 / 120, lifetime_s=0, port_range=(1024, 1033), addresses=2
    )
    assert s.erlang.servers == 10
    assert s.erlang.offered_load == pytest.approx(5.0)
    assert s.erlang.blocking == pytest.approx(0.018385, rel=1e-4)


def test_linux_erlang_b_loads_the_busiest_address_with_whole_vms() -> None:
    # one VM hashed to one of 4 addresses: 500/s x (1 s + 120 s) = 60,500 erlangs on that
    # address's 64,512 tuples, not a quarter of it; 5 VMs over 2 addresses: at least 3 VMs'
    # flows on the busier one, 3 x 1/s x 121 s = 363 erlangs
    one = size_gateway("linux-masquerade", vms=1, rate=500, lifetime_s=1, addresses=4)
    assert one.erlang.offered_load == pytest.approx(60500)
    five = size_gateway("linux-masquerade", vms=5, rate=1, lifetime_s=1, addresses=2)
    assert five.erlang.offered_load == pytest.approx(363)
    assert "the busiest address at best" in five.erlang.pool


def test_linux_three_vms_on_two_addresses_crowd_one() -> None:
    # 3 VMs x 200/s x (1 s + 120 s) = 24,200 tuples each; hashed whole onto 2 addresses,
    # the busiest carries 2 of them at best: 48,400 of 64,512 (75 %), and the node takes
    # 64,512 / 121 s = 533/s per address x 3 VMs / 2 on the busiest = 800/s, not 1,066
    s = size_gateway("k8s-node", vms=3, rate=200, lifetime_s=1, addresses=2)
    assert limit(s, "per_destination").demand == pytest.approx(48400)
    assert limit(s, "per_destination").utilisation == pytest.approx(48400 / 64512)
    assert s.sustainable_per_destination == pytest.approx(64512 / 121 * 3 / 2)
    assert s.addresses_needed == 2  # 2 VMs fit one address (2 x 24,200 <= 64,512)
    # 24,200 is 86 % of a VM's 28,232 ports: it reuses them within the hold (reopens)
    assert any("reopens the old conntrack entry" in n for n in s.notes)


def test_linux_one_vm_cannot_spill_to_another_address() -> None:
    # one VM needs 0.1/s x 120 s = 12 tuples to one destination; its address has 10: adding
    # addresses does not help (hash of source and destination, no spill-over)
    s = size_gateway(
        "linux-masquerade", vms=1, rate=0.1, lifetime_s=0, port_range=(40000, 40009), addresses=4
    )
    assert s.addresses_needed is None
    assert "no address count is enough" in s.addresses_note
    assert s.binding in ("per_vm_destination", "per_destination")
    assert limit(s, "per_vm_destination").utilisation == pytest.approx(1.2)


def test_k8s_node_holds_like_netfilter() -> None:
    # default range 1024-65535 (64,512) / 120 s TIME_WAIT = 537.6/s
    s = size_gateway("k8s-node", vms=1, rate=1, lifetime_s=0)
    assert s.sustainable_per_destination == pytest.approx(64512 / 120)
    assert s.parameters["idle_timeout"]["value"] == 86400


# ---- Azure -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pool", "ports"),
    [
        (1, 1024),
        (50, 1024),
        (51, 512),
        (100, 512),
        (101, 256),
        (200, 256),
        (201, 128),
        (400, 128),
        (401, 64),
        (800, 64),
        (801, 32),
        (1000, 32),
    ],
)
def test_azure_lb_pool_size_table(pool: int, ports: int) -> None:
    # Microsoft's table: 1-50 -> 1,024; 51-100 -> 512; ...; 801-1,000 -> 32; each port held
    # 240 s after FIN, so one VM sustains ports / 240 per second to one destination
    assert azure_lb_ports_per_vm(pool) == ports
    s = size_gateway("azure-lb", vms=pool, rate=0.01, lifetime_s=0)
    assert limit(s, "per_vm_allocation").capacity == ports
    assert s.sustainable_per_vm_per_destination == pytest.approx(ports / 240)
    assert s.addresses_needed == 1  # every row of the table fits one frontend's 64,000


def test_azure_lb_beyond_the_table_and_outbound_rules() -> None:
    with pytest.raises(GatewayInputError, match="stops at 1,000"):
        size_gateway("azure-lb", vms=1001, rate=1)
    # Microsoft's example: 7 VMs x 10,000 ports on one frontend (64,000) is rejected
    s = size_gateway("azure-lb", vms=7, rate=0, ports_per_vm=10000)
    assert limit(s, "ports_per_address").demand == 70000
    assert limit(s, "ports_per_address").capacity == 64000
    assert s.max_vms == 6 and s.addresses_needed == 2
    with pytest.raises(GatewayInputError, match="multiple of 8"):
        size_gateway("azure-lb", vms=7, rate=0, ports_per_vm=1001)
    # each load-balancing or inbound NAT rule takes 8 ports: 2 rules -> 63,984
    assert limit(
        size_gateway("azure-lb", vms=1, rate=0, rules=2), "ports_per_address"
    ).capacity == (63984)


def test_azure_lb_rst_frees_ports_after_15_s() -> None:
    # 1,024 ports / 15 s = 68.3/s per VM to one destination
    s = size_gateway("azure-lb", vms=1, rate=1, lifetime_s=0, close="rst")
    assert s.sustainable_per_vm_per_destination == pytest.approx(1024 / 15)
    # 1/s x (1 s + 240 s) = 241 ports: the default table's 1,024 cover it; with
    # allocatedOutboundPorts 8 the load needs 241, rounded up to a multiple of 8: 248
    fin = size_gateway("azure-lb", vms=1, rate=1, lifetime_s=1)
    assert fin.ports_per_vm_needed == 241 and fin.allocation_per_vm == 1024
    small = size_gateway("azure-lb", vms=1, rate=1, lifetime_s=1, ports_per_vm=8)
    assert small.allocation_per_vm == 248 and small.binding == "per_vm_allocation"


def test_azure_natgw_50000_per_address_per_destination() -> None:
    # 50,000 / (0 + 65 s FIN cooldown) = 769.2/s to one destination per address; 16 addresses
    s = size_gateway("azure-natgw", vms=1, rate=1, lifetime_s=0)
    assert s.sustainable_per_destination == pytest.approx(50000 / 65)
    sixteen = size_gateway("azure-natgw", vms=1, rate=1, lifetime_s=0, addresses=16)
    assert sixteen.sustainable_per_destination == pytest.approx(16 * 50000 / 65)
    with pytest.raises(GatewayInputError, match="at most 16"):
        size_gateway("azure-natgw", vms=1, rate=1, addresses=17)
    # 2,000,000 connections per gateway: 100 VMs x 100/s x (135 s + 65 s) = 2,000,000 ... +1
    full = size_gateway("azure-natgw", vms=100, rate=100.5, destinations=100, lifetime_s=135)
    assert limit(full, "total_connections").utilisation > 1
    assert full.addresses_needed is None


# ---- carrier-grade NAT ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ratio", "ports"),
    [(16, 4032), (32, 2016), (64, 1008), (128, 504), (256, 252), (512, 126), (1024, 63)],
)
def test_deterministic_ports_per_subscriber(ratio: int, ports: int) -> None:
    # 64,512 / sharing ratio (the FD.io CSIT table); 63 at 1:1,024
    s = size_gateway("cgn-deterministic", vms=ratio, rate=0, sharing_ratio=ratio)
    assert limit(s, "per_subscriber_destination").capacity == ports
    assert s.addresses_needed == 1 and s.max_vms == ratio
    more = size_gateway("cgn-deterministic", vms=ratio + 1, rate=0, sharing_ratio=ratio)
    assert more.addresses_needed == 2


def test_deterministic_rate_and_session_slots() -> None:
    # 63 ports / 240 s det44 transitory = 0.2625/s per subscriber to one destination
    s = size_gateway("cgn-deterministic", vms=1, rate=0.1, lifetime_s=0, sharing_ratio=1024)
    assert s.sustainable_per_vm_per_destination == pytest.approx(63 / 240)
    # at 1:16 a subscriber has 4,032 ports but det44 keeps 1,000 sessions per subscriber
    wide = size_gateway("cgn-deterministic", vms=1, rate=0.1, lifetime_s=0, sharing_ratio=16)
    assert wide.sustainable_per_vm_per_destination == pytest.approx(1000 / 240)
    # a subscriber needing 100 ports to one destination: at most 1:645 (64,512 // 100)
    tight = size_gateway(
        "cgn-deterministic", vms=1, rate=100 / 240, lifetime_s=0, sharing_ratio=1024
    )
    assert tight.addresses_needed is None and "1:645" in tight.addresses_note


def test_pba_subscriber_blocks_stay_on_one_address() -> None:
    # paired pooling: however many blocks are allowed, one address holds 504 of 128 ports,
    # so a subscriber can never hold more than 504 x 128 = 64,512 ports
    s = size_gateway("cgn-pba", vms=1, rate=1, blocks_per_subscriber=100000)
    assert limit(s, "per_subscriber").capacity == 504 * 128


def test_port_block_allocation() -> None:
    # Juniper defaults: blocks of 128, 8 per subscriber -> 1,024 ports for all destinations
    # (endpoint-independent); 64,512 / 128 = 504 blocks per address
    s = size_gateway("cgn-pba", vms=1, rate=1, destinations=4, lifetime_s=0)
    assert limit(s, "per_subscriber").capacity == 1024
    assert limit(s, "blocks_per_address").capacity == 504
    assert s.sustainable_per_vm == pytest.approx(1024 / 120)  # RFC 6888 REQ-8 120 s
    assert s.sustainable_per_vm_per_destination == pytest.approx(1024 / 120 / 4)
    # a subscriber at 2.5/s x 120 s = 300 ports uses 3 blocks: 504 // 3 = 168 subscribers
    # per address, so 1,000 subscribers need ceil(1000 / 168) = 6 addresses
    busy = size_gateway("cgn-pba", vms=1000, rate=2.5, lifetime_s=0)
    assert busy.allocation_per_vm == 384
    assert busy.max_vms == 168 and busy.addresses_needed == 6
    # 10/s x 120 s = 1,200 ports: more than 8 x 128, whatever the addresses
    over = size_gateway("cgn-pba", vms=1, rate=10, lifetime_s=0)
    assert over.addresses_needed is None and over.binding == "per_subscriber"


# ---- the table itself -----------------------------------------------------------------------


def test_every_default_names_its_source_and_standing() -> None:
    for kind in KINDS.values():
        for name, default in kind.params.items():
            assert default.source in SOURCES, (kind.name, name)
            if default.status == "documented":
                assert not default.source.startswith(("inferred", "aws_900")), (kind.name, name)
            if default.source in ("inferred", "aws_900"):
                assert default.status == "inferred", (kind.name, name)


def test_unknown_parameter_is_named_with_a_suggestion() -> None:
    with pytest.raises(GatewayInputError) as info:
        size_gateway("cgn-pba", vms=1, rate=1, block_sise=256)
    assert 'did you mean "block_size"?' in str(info.value)


# ---- the command ----------------------------------------------------------------------------


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["capacity", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_command_first_line_for_aws(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys, "--gateway", "aws-natgw", "--vms", "1", "--rate", "1000", "--lifetime", "0"
    )
    first = out.splitlines()[0]
    assert code == 0 and err == ""
    # 1,000/s x 60 s = 60,000 > 55,000: 2 addresses at the gateway; but the VM itself
    # holds each port 60 s after closing (TIME_WAIT): 60,000 of its 28,232 (213 %), so its
    # own range binds and refuses about 1 - 28,232 / 60,000 = 53 % (Erlang B, A >> c)
    # so the VM, not the gateway, sets the rate: 28,232 / 60 s = 470.5/s (the gateway
    # alone: 55,000 / 60 s = 917/s)
    assert first.startswith(
        "sustainable: 471/s per destination, by the VM's own ports (the gateway alone would "
        "take 917/s); you need 2 addresses"
    )
    assert "binding limit: one VM's own ports to one destination (32768-60999: 28,232" in first
    assert "(213 % used)" in first
    assert first.endswith(
        "53 % of new connections would be refused (Erlang B for each VM's own ports)"
    )
    assert "hold_fin=60" in out  # the inferred hold is listed as such


def test_first_line_rate_is_the_lowest_limit(capsys: pytest.CaptureFixture[str]) -> None:
    """The headline rate is the smallest limit (a new user read 537/s > 500/s as safe
    while the VM's own ports, named as binding on the same line, allow only 469/s)."""
    argv = ["--gateway", "k8s-node", "--lifetime", "0.2"]
    _, out, _ = run(capsys, *argv, "--vms", "1", "--rate", "500")
    # the VM: 28,232 ports / (0.2 s + 60 s TIME_WAIT) = 469.0/s; the node's one address:
    # 64,512 / (0.2 s + 120 s conntrack TIME_WAIT) = 536.7/s
    assert out.startswith(
        "sustainable: 469/s per destination, by the VM's own ports (the gateway alone would "
        "take 537/s)"
    )
    _, out, _ = run(capsys, *argv, "--vms", "2", "--rate", "600", "--addresses", "2")
    # two VMs, 469.0/s each = 938/s; the gateway's two addresses at best 2 x 536.7 = 1,073/s
    # (at best: if the hash put both VMs on one address, the gateway would take 537/s)
    assert out.startswith(
        "sustainable at best: 938/s per destination, by the VMs' own ports (469/s from each; "
        "the gateway alone at best would take 1,073/s)"
    )
    _, out, _ = run(capsys, *argv, "--vms", "1", "--rate", "500", "--addresses", "2")
    assert out.startswith("sustainable: 469/s")  # one VM, one address by hash: no split
    _, out, _ = run(capsys, *argv, "--vms", "1", "--rate", "500", "--hold", "0")
    # no hold and a lifetime of 0.2 s: 64,512 / 0.2 s = 322,560/s at the gateway
    assert "(the gateway alone would take 322,560/s)" in out.splitlines()[0]
    _, out, _ = run(capsys, "--gateway", "k8s-node", "--vms", "1", "--rate", "500",
                    "--lifetime", "0", "--hold", "0")  # fmt: skip
    assert "(the gateway alone sets no limit)" in out.splitlines()[0]  # a tuple held 0 s
    _, out, _ = run(capsys, *argv, "--vms", "100", "--rate", "6", "--addresses", "2")
    # 100 VMs x 469/s is far above the gateway: it binds, and netfilter's hash of whole VMs
    # to addresses makes the even split (50 and 50) the best case
    assert out.startswith("sustainable at best: 1,073/s per destination (at most 537/s")


def test_first_line_says_who_shares_and_what_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The first line a hurried reader takes away: a shared pool is shared, not each VM's,
    and an overloaded pool refuses most new connections."""
    _, out, _ = run(capsys, "--gateway", "aws-natgw", "--vms", "10", "--rate", "500")
    first = out.splitlines()[0]
    # one pool per address and destination for every VM: 55,000 / (1 s + 60 s) = 902/s
    assert first.startswith("sustainable: 902/s per destination (shared by the 10 VMs)")
    # 6 addresses would do for the gateway (305,000 / 55,000 = 5.5), not for the VMs: each
    # holds 500/s x (1 s + 60 s TIME_WAIT) = 30,500 of its own 28,232 ports to the API
    assert "you need 6 addresses" in first
    assert (
        "but each VM needs 30,500 of its own ports to one destination, more than its 28,232"
        in first
    )
    # offered 5,000/s x 61 s = 305,000 erlangs to 55,000 tuples: far past c, Erlang B is
    # within 1e-4 of 1 - c/A = 1 - 55,000 / 305,000 = 0.8197
    assert first.endswith("at this demand 82 % of new connections would be refused (Erlang B)")
    _, out, _ = run(capsys, "--gateway", "azure-lb", "--vms", "10", "--rate", "1")
    first = out.splitlines()[0]
    # each VM its own 1,024 ports (pool of 10: Microsoft's table), held 1 s + 240 s:
    # 1,024 / 241 = 4.25/s per VM, 42.5/s for the ten; 241 tuples busy per VM: no refusal
    assert first.startswith("sustainable: 42.5/s per destination (at most 4.25/s from any one VM)")
    assert "refused" not in first


def test_command_gitlab_in_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "--gateway",
        "gcp-cloudnat",
        "--vms",
        "448",
        "--rate",
        "0",
        "--ports-per-vm",
        "2048",
        "--addresses",
        "14",
        "--param",
        "ports_per_address=65536",
        "--json",
    )
    data = json.loads(out)
    assert code == 0 and data["max_vms"] == 448 and data["addresses_needed"] == 14
    assert data["parameters"]["ports_per_address"]["status"] == "given"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_command_answers_for_every_kind(capsys: pytest.CaptureFixture[str], kind: str) -> None:
    code, out, err = run(capsys, "--gateway", kind, "--vms", "10", "--rate", "1")
    assert code == 0 and err == ""
    assert out.splitlines()[0].startswith("sustainable: ")
    assert "binding limit: " in out.splitlines()[0]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--gateway", "aws-natgws", "--vms", "1", "--rate", "1"], 'did you mean "aws-natgw"?'),
        # a kind's first word is enough (difflib ratio 0.5: 'k8s' vs 'k8s-node' is 6/11)
        (["--gateway", "k8s", "--vms", "1", "--rate", "1"], 'did you mean "k8s-node"?'),
        (["--gateway", "aws-natgw", "--rate", "1"], "--vms: required with --gateway"),
        (["--gateway", "aws-natgw", "--vms", "0", "--rate", "1"], "--vms: must be"),
        (["--gateway", "aws-natgw", "--vms", "1", "--rate", "1", "--os", "linux"], "--os:"),
        (["--vms", "3", "--rate", "1"], "--vms: only with --gateway"),
        (["--gateway", "aws-natgw", "--vms", "1", "--rate", "1", "--addresses", "9"], "at most 8"),
        (
            ["--gateway", "cgn-pba", "--vms", "1", "--rate", "1", "--param", "blocks=4"],
            'did you mean "block_size"?',
        ),
        (
            ["--gateway", "gcp-cloudnat", "--vms", "1", "--rate", "1", "--param", "dynamic=yes"],
            "--param dynamic: expected true or false",
        ),
        (
            ["--gateway", "k8s-node", "--vms", "1", "--rate", "1", "--port-range", "9-2"],
            "--port-range: low must be <= high",
        ),
        (["--gateway", "azure-lb", "--vms", "1", "--rate", "1", "--hold", "soon"], "--hold:"),
        (["--gateway", "azure-lb", "--vms", "1", "--rate", "nan"], "--rate: must be"),
        (
            ["--gateway", "aws-natgw", "--vms", "1", "--rate", "1e308", "--lifetime", "1e300s"],
            "--rate: rate x (lifetime + hold) x VMs is too large",
        ),
        (["--gateway", "aws-natgw", "--vms", "9" * 30, "--rate", "1"], "--vms: must be"),
        (
            [
                "--gateway",
                "gcp-cloudnat",
                "--vms",
                "1",
                "--rate",
                "1",
                "--ports-per-vm",
                "99999999",
            ],
            "--ports-per-vm: must be at most 65,536",
        ),
    ],
)
def test_command_bad_input_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert expected in err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


def test_hold_override_replaces_the_inferred_value(capsys: pytest.CaptureFixture[str]) -> None:
    # with a 30 s hold: 55,000 / 30 = 1,833/s
    code, out, _ = run(
        capsys,
        "--gateway",
        "aws-natgw",
        "--vms",
        "1",
        "--rate",
        "1",
        "--lifetime",
        "0",
        "--hold",
        "30s",
        "--json",
    )
    data = json.loads(out)
    assert code == 0 and math.isclose(data["sustainable_per_destination"], 55000 / 30)
    assert data["parameters"]["hold_fin"]["status"] == "given"


def test_sim_analytic_exposes_gateway_sizing() -> None:
    """Issue 17 asks ``sim.analytic`` to expose the sizing: the same function, the same
    AWS figure (55,000 ports / 60 s hold = 916.7/s to one destination)."""
    import sim.analytic

    assert sim.analytic.size_gateway is size_gateway
    s = sim.analytic.size_gateway("aws-natgw", vms=1, rate=1, destinations=1, lifetime_s=0)
    assert s.sustainable_per_destination == pytest.approx(55000 / 60)


def test_dynamic_cloud_nat_counts_vms_at_the_allocation_it_reports() -> None:
    """1/s per VM held 1 s + 120 s needs 121 ports: dynamic allocation doubles from 32 to
    128, and 64,512 ports serve 64,512 // 128 = 504 such VMs (not 64,512 // 32 = 2,016)."""
    s = size_gateway("gcp-cloudnat", vms=10, rate=1, lifetime_s=1, dynamic=True)
    assert "(now 128)" in s.limits[0].description
    assert s.max_vms == 504
