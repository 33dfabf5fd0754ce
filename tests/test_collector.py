"""A run leaves no garbage per connection: ``sim.run`` drops every connection's objects
once its result is built, so they go by reference counting, not by a full collection of
the cyclic garbage collector (``sim.collector``).

The check: a full collection after a run finds next to nothing, where without the drop
it would find every object the run held at its end and the model's structure."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import pytest

import sim
from sim.nat.kinds import KINDS as GATEWAY_KINDS

KINDS = sorted(GATEWAY_KINDS)  # every kind the gateway layer has
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
    """(connections attempted, objects a full collection frees after the run).  The
    collector stays off until that collection: once back on, its first automatic
    collection of the youngest generation (where everything made while it was off
    still is) would take any cycles before we look."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        gc.collect()
        result = sim.run(sc)
        attempted = result.summary["connections"]["attempted"]
        del result
        return attempted, gc.collect()
    finally:
        if was_enabled:
            gc.enable()


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


SHIPPED = sorted((Path(__file__).resolve().parent.parent / "scenarios").glob("*.toml"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_scenarios_make_no_cycles(path: Path) -> None:
    """Retries, keep-alive pools, UDP, traces, every gateway kind: with the collector
    paused through the run (as ``sim.run`` does), anything cyclic it made would still be
    there for this collection to find."""
    sc = sim.load_scenario(path, ["duration=20"])
    garbage_after(sc)  # first use imports what the run needs
    _, garbage = garbage_after(sc)
    assert garbage < 50, garbage


@pytest.mark.parametrize("enabled", [True, False])
def test_collector_state_restored(enabled: bool) -> None:
    """``sim.run`` leaves the collector as it found it, on or off."""
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        sim.run(scenario(5, "k8s-node", None))
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()
