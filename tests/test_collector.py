"""A run leaves no garbage per connection: ``sim.run`` drops every connection's objects
once its result is built, so they go by reference counting, not by a full collection of
the cyclic garbage collector (``sim.collector``).

The check: the objects a full collection finds after a run do not grow with the number
of connections.  A run three times as long makes three times the connections (thousands
more); a leak of even one object per connection would show as thousands more."""

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
def test_garbage_does_not_grow_with_connections(gateway: str | None, count: int | None) -> None:
    short, garbage_short = garbage_after(scenario(30, gateway, count))
    long, garbage_long = garbage_after(scenario(90, gateway, count))
    assert long - short > 4000  # ~6,000 more connections (100/s for 60 s more)
    # the same structure (hosts, pools, tables) either way: any difference is far below
    # one object per extra connection
    assert abs(garbage_long - garbage_short) < 200, (garbage_short, garbage_long)


def test_collector_thresholds_restored() -> None:
    before = gc.get_threshold()
    sim.run(scenario(5, "k8s-node", None))
    assert gc.get_threshold() == before
