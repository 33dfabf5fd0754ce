"""The simulated kinds (sim/nat/) and the sizing table (sim/nat_kinds.py) agree on every
default they share: one figure per source, whichever part of portsim reads it."""

from __future__ import annotations

import numpy as np
import pytest

from sim.analytic_gateway import azure_lb_ports_per_vm
from sim.nat.azure import ports_per_vm
from sim.nat.base import FIN, IDLE, RST, GatewayConfig
from sim.nat.kinds import make_gateway
from sim.nat_kinds import KINDS
from sim.randomness import Stream


def summary(kind: str, **options: object) -> dict:  # type: ignore[type-arg]
    config = GatewayConfig("gw", kind, ("198.51.100.1",), None, dict(options))
    return make_gateway(config, Stream(np.random.SeedSequence(1))).summary(0.0)  # type: ignore[return-value]


def table(kind: str, key: str) -> object:
    return KINDS[kind].params[key].value


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("aws-natgw", {}),
        ("azure-lb", {"backend_pool_size": 10}),
        ("azure-natgw", {}),
        ("gcp-cloudnat", {}),
        ("cgn-pba", {}),
        ("cgn-deterministic", {}),
    ],
)
def test_holds_and_idle_timeouts(kind: str, options: dict) -> None:  # type: ignore[type-arg]
    s = summary(kind, **options)
    assert s["holds_s"][FIN] == table(kind, "hold_fin")
    assert s["holds_s"][RST] == table(kind, "hold_rst")
    assert s["idle"]["timeout_s"]["tcp"] == table(kind, "idle_timeout")
    assert IDLE in s["holds_s"]


def test_limits() -> None:
    assert summary("aws-natgw")["per_destination_limit"] == table(
        "aws-natgw", "per_destination_cap"
    )
    assert summary("azure-natgw")["per_destination_limit"] == table(
        "azure-natgw", "per_destination_cap"
    )
    assert summary("azure-lb", backend_pool_size=10)["ports"] == table(
        "azure-lb", "ports_per_address"
    )
    assert summary("gcp-cloudnat")["min_ports_per_vm"] == table("gcp-cloudnat", "ports_per_vm")
    dynamic = summary("gcp-cloudnat", dynamic=True)
    assert dynamic["min_ports_per_vm"] == table("gcp-cloudnat", "dynamic_min_ports_per_vm")
    assert dynamic["max_ports_per_vm"] == table("gcp-cloudnat", "max_ports_per_vm")
    pba = summary("cgn-pba")
    assert pba["block_size"] == table("cgn-pba", "block_size")
    assert pba["max_blocks"] == table("cgn-pba", "blocks_per_subscriber")
    det = summary("cgn-deterministic")
    assert det["sharing_ratio"] == table("cgn-deterministic", "sharing_ratio")
    assert det["sessions_per_subscriber"] == table("cgn-deterministic", "sessions_per_subscriber")


@pytest.mark.parametrize("pool", [1, 50, 51, 100, 101, 200, 201, 400, 401, 800, 801, 1000])
def test_azure_lb_allocation_by_pool_size(pool: int) -> None:
    # one table, two lookups: the simulated gateway's and the sizing calculator's
    assert ports_per_vm(pool) == azure_lb_ports_per_vm(pool)


@pytest.mark.parametrize("kind", ["linux-masquerade", "k8s-node"])
def test_linux_conntrack_timeouts(kind: str) -> None:
    """The netfilter kinds' conntrack timeouts are the table's holds and idle timeout
    (nf_conntrack_proto_tcp.c's tcp_timeouts; kube-proxy's 24 h established for k8s)."""
    conntrack = summary(kind)["conntrack"]
    assert conntrack["time_wait"] == table(kind, "hold_fin") == 120.0
    assert conntrack["close"] == table(kind, "hold_rst") == 10.0
    expected_established = 86400.0 if kind == "k8s-node" else 432000.0
    assert conntrack["established"] == table(kind, "idle_timeout") == expected_established
