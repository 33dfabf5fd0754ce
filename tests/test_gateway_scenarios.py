"""The issue-17 scenarios answer their questions: the figures their comments derive by hand.

Each runs as shipped and with the change its comments propose (as ``--set`` would)."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import sim

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"


def doc(name: str) -> dict[str, Any]:
    return tomllib.loads((SCENARIOS / f"{name}.toml").read_text())


def run(d: dict[str, Any]) -> dict[str, Any]:
    return sim.run(sim.parse_scenario(d)).summary


def test_aws_load_test_one_address_then_four() -> None:
    d = doc("aws-natgw-load-test")
    s = run(d)
    # 1,200/s x 60.1 s > 55,000: the first 55,000 by 46 s, then each port again once its
    # 60 s hold ends (all before 107 s): 2 x 55,000 in two minutes
    assert s["connections"]["succeeded"] == 2 * 55000
    assert s["gateways"]["natgw"]["cloudwatch"]["ErrorPortAllocation"] > 0
    four = copy.deepcopy(d)
    four["gateways"][0]["addresses"] = [f"198.51.100.{i}" for i in (7, 8, 9, 10)]
    four["duration"] = "70s"  # past the first holds' end
    s = run(four)
    assert s["gateways"]["natgw"]["mappings"]["dropped"] == 0
    assert s["connections"]["succeeded"] == s["connections"]["attempted"]


def test_cloudnat_ci_builders() -> None:
    d = doc("cloudnat-ci-builders")
    s = run(d)
    c = s["connections"]
    # two bursts per builder, 64 ports each: 4 x 64 connect; every other fetch times out
    # (the last retransmission comes before the first port's TIME_WAIT ends)
    assert c["succeeded"] == 4 * 64
    assert c["failed_by_error"]["ETIMEDOUT"] == c["attempted"] - 4 * 64
    big = copy.deepcopy(d)
    big["gateways"][0]["min_ports_per_vm"] = 1024
    assert run(big)["gateways"]["cloudnat"]["mappings"]["dropped"] == 0
    dynamic = copy.deepcopy(d)
    dynamic["gateways"][0].update(dynamic=True, min_ports_per_vm=32)
    s = run(dynamic)
    assert s["connections"]["failed"] == 0
    assert s["connect_latency_s"]["delayed"] > 0  # caught by a growth
    assert s["gateways"]["cloudnat"]["allocated_ports"]["max"] == 256  # 32 -> 256 for ~150


def test_keepalive_behind_aws_idle_timeout() -> None:
    d = doc("keepalive-behind-aws-idle-timeout")
    s = run(d)
    # 12 h / 400 s = 108 calls; every other one finds its connection dropped at 350 s idle
    assert s["requests"]["attempted"] == 108
    assert s["requests"]["failed_by_reason"]["gateway_idle_timeout"] == 54
    assert s["gateways"]["natgw"]["idle"]["resets"] == 54
    d["load"][0]["tcp_keepalive"] = "60s"
    s = run(d)
    assert s["requests"]["failed"] == 0
    assert s["requests"]["connections"] == 1


def test_aks_scale_out() -> None:
    d = doc("aks-snat-scale-out")
    before = copy.deepcopy(d)
    before["duration"] = "299s"  # 600 ports held per node < 1,024
    assert run(before)["gateways"]["lb"]["mappings"]["dropped"] == 0
    s = run(d)
    g = s["gateways"]["lb"]
    assert g["mappings"]["dropped"] > 0  # 600 > 512 after the scale-out
    assert g["reclaimed_flows"] > 0
    assert g["azure_monitor"]["Allocated SNAT Ports"] == 512
    fixed = copy.deepcopy(d)
    fixed["gateways"][0]["allocated_outbound_ports"] = 1024
    assert run(fixed)["gateways"]["lb"]["mappings"]["dropped"] == 0


def test_a_fleet_is_the_backend_pool() -> None:
    # 60 VMs as one fleet behind the load balancer: a pool of 51-100 gets 512 ports each
    s = run(
        {
            "name": "fleet-lb",
            "duration": "10s",
            "hosts": [{"name": "vms", "count": 60, "address": "10.0.0.0/24", "gateway": "lb"}],
            "gateways": [{"name": "lb", "kind": "azure-lb", "addresses": ["198.51.100.7"]}],
            "destinations": [{"name": "api", "address": "203.0.113.10:443"}],
            "load": [
                {
                    "host": "vms",
                    "destination": "api",
                    "arrival": {"kind": "poisson", "rate": 100},
                    "lifetime": {"kind": "fixed", "value": "1s"},
                }
            ],
        }
    )
    g = s["gateways"]["lb"]
    assert (g["backend_pool_size"], g["ports_per_vm"]) == (60, 512)
    assert g["mappings"]["dropped"] == 0
