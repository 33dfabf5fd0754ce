"""sim.resolve: the scenario's key, else the preset's value, else the default -- the one
rule behind a host's policy and kernel everywhere (validation, the host, inspect)."""

from __future__ import annotations

import sim
from sim.resolve import DEFAULT_KERNEL, host_kernel, host_policy, is_linux


def hosts(*specs: dict) -> list:
    sc = sim.parse_scenario(
        {
            "name": "r",
            "duration": 1,
            "hosts": [{"name": f"h{i}", **s} for i, s in enumerate(specs)],
            "destinations": [{"name": "d", "address": "10.0.0.1:80"}],
            "load": [
                {
                    "destination": "d",
                    "arrival": {"kind": "poisson", "rate": 1},
                    "lifetime": {"kind": "fixed", "value": 1},
                    "host": "h0",
                }
            ],
        }
    )
    return sc.hosts


def test_scenario_then_preset_then_default() -> None:
    linux, old, pinned, bsd, forced = hosts(
        {"os": "linux"},
        {"os": "linux-5.12"},
        {"os": "linux-5.12", "kernel": "6.8"},
        {"os": "freebsd"},
        {"os": "freebsd", "policy": "sequential"},
    )
    assert DEFAULT_KERNEL == "6.18"
    assert host_kernel(linux) == "6.18"  # the linux preset names 6.18 itself
    assert host_kernel(old) == "5.12" and host_kernel(pinned) == "6.8"
    assert [host_policy(h) for h in (linux, bsd, forced)] == ["linux", "bsd-random", "sequential"]
    assert [is_linux(h) for h in (linux, old, bsd)] == [True, True, False]
