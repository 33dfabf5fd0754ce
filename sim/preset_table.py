"""``portsim presets``: every preset as a host of it would run, resolved by
``sim.resolve`` (the one place presets and kernels are applied), with the preset's
description and sources."""

from __future__ import annotations

from typing import Any

from sim.config.types import HostSpec
from sim.presets import PRESETS
from sim.resolve import resolve_host


def preset_table() -> list[dict[str, Any]]:
    """Every preset as ``portsim presets`` shows it: a host of that preset as it would run
    (range and behaviour generation from the kernel for Linux, TIME_WAIT towards local and
    loopback peers, the UDP policy in effect), with the preset's description and sources."""
    rows = []
    for preset in PRESETS.values():
        host = resolve_host(HostSpec(name=preset.name, os=preset.name))
        lo, hi = host.port_range
        rows.append(
            {
                "name": preset.name,
                "description": preset.description,
                "port_range": [lo, hi],
                "range_ports": hi - lo + 1,
                "time_wait_s": host.time_wait,
                "time_wait_local_s": host.time_wait_local,
                "time_wait_loopback_s": host.time_wait_loopback,
                "policy": host.policy,
                "generation": host.profile.generation if host.profile else None,
                "udp_policy": host.udp_policy,
                "scope": host.scope,
                "kernel": preset.kernel,
                "forced_reuse": host.forced_reuse,
                "nolocaltimewait": host.nolocaltimewait,
                "udp_scope": host.udp_scope,
                "source": preset.source,
                "inferred": list(preset.inferred),
            }
        )
    return rows
