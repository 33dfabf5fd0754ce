"""A run leaves no garbage per connection: ``sim.run`` drops every connection's objects
once its result is built, so they go by reference counting, not by a full collection of
the cyclic garbage collector (``sim.collector``).

The check: a full collection after a run finds next to nothing, where without the drop
it would find every object the run held at its end and the model's structure."""

from __future__ import annotations

import gc
from typing import Any

import pytest

import sim

KINDS = [
    "linux-masquerade",
    "k8s-node",
    "aws-natgw",
    "azure-lb",
    "azure-natgw",
    "gcp-cloudnat",
    "cgn-pba",
    "cgn-deterministic",
]
# enough ports for every connection of the longer run (the point is holding, not refusing)
OPTIONS: dict[str, dict[str, Any]] = {
    "azure-lb": {"allocated_outbound_ports": 16000},
    "gcp-cloudnat": {"min_ports_per_vm": 16384},
    "cgn-pba": {"block_size": 4096},
    "cgn-deterministic": {"sharing_ratio": 1, "sessions_per_subscriber": 20000},
}


def scenario(duration: float, gateway: str | None, count: int | None) -> sim.Scenario:
    host: dict[str, Any] = {"name": "app", "address": "10.1.0.0/24" if count else "10.1.0.5"}
    doc: dict[str, Any] = {
        "name": "garbage",
        "duration": duration,
        "destinations": [{"name": "api", "address": "10.0.0.1:443"}],
        "load": [
            {
                "host": "app",
                "destination": "api",
                "arrival": {"kind": "poisson", "rate": 100},
                "lifetime": {"kind": "exponential", "mean": 2},
            }
        ],
    }
    if count:
        host["count"] = count
    if gateway:
        host["gateway"] = "gw"
        doc["gateways"] = [
            {"name": "gw", "kind": gateway, "addresses": ["198.51.100.7"]}
            | OPTIONS.get(gateway, {})
        ]
    doc["hosts"] = [host]
    return sim.parse_scenario(doc)


def garbage_after(sc: sim.Scenario) -> tuple[int, int]:
    """(connections attempted, objects a full collection frees after the run)."""
    gc.collect()
    result = sim.run(sc)
    attempted = result.summary["connections"]["attempted"]
    del result
    return attempted, gc.collect()


@pytest.mark.parametrize(
    ("gateway", "count"),
    [(None, None), (None, 20), *((kind, None) for kind in KINDS), ("k8s-node", 20)],
)
def test_a_run_leaves_no_garbage(gateway: str | None, count: int | None) -> None:
    garbage_after(scenario(1, gateway, count))  # first use imports what the run needs
    attempted, garbage = garbage_after(scenario(90, gateway, count))
    assert attempted > 8000  # 100/s for 90 s
    # the model is taken apart: nothing per connection, per host or per member is left
    # for the collector (20 members, each a host with channels, pools and tables, would
    # leave hundreds of objects; a leak per connection thousands)
    assert garbage < 50, garbage


def test_collector_thresholds_restored() -> None:
    before = gc.get_threshold()
    sim.run(scenario(5, "k8s-node", None))
    assert gc.get_threshold() == before
