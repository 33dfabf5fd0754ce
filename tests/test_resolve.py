"""sim.resolve: the scenario's key, else the preset's value, else the default -- the one
rule behind a host's policy and kernel everywhere (validation, the host, inspect)."""

from __future__ import annotations

import dataclasses

import pytest

import sim
from sim.resolve import DEFAULT_KERNEL, host_kernel, host_policy, is_linux, resolve_host


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


def test_resolved_host_takes_the_scenario_then_the_preset() -> None:
    """Expected values from the presets' tables (sim/presets.py) and the kernel facts:
    Linux 4.2+ range 32768-60999, TIME_WAIT 60 s, tcp_tw_reuse 2 and the ms age rule from
    6.14; NetBSD's MSL classes (10 s local, 2 s loopback); macOS's UDP policy and first
    port; Windows' forced reuse."""
    linux, netbsd, macos, pinned_mac, windows, other = (
        resolve_host(h)
        for h in hosts(
            {"os": "linux"},
            {"os": "netbsd", "time_wait": 30},
            {"os": "macos"},
            {"os": "macos", "policy": "sequential", "first_port": 50000},
            {"os": "windows", "forced_reuse": False},
            {"os": "linux", "policy": "sequential", "tcp_rfc1337": 0, "time_wait_rst": 0.5},
        )
    )
    assert (linux.linux, linux.policy, linux.scope) == (True, "linux", "4tuple")
    assert linux.port_range == (32768, 60999) and linux.time_wait == 60.0
    assert (linux.tw_reuse, linux.tw_reuse_rule, linux.timer_wheel) == (2, "ms", True)
    # the scenario's TIME_WAIT, the preset's local and loopback lengths
    assert (netbsd.time_wait, netbsd.time_wait_local, netbsd.time_wait_loopback) == (30, 10, 2)
    assert (netbsd.linux, netbsd.tw_reuse, netbsd.scope) == (False, 0, "local_address")
    assert netbsd.udp_policy == "sequential-down"  # no UDP policy of its own: the TCP one
    assert (macos.udp_policy, macos.first_offset) == ("bsd-random", 0)
    # a policy named in the scenario is UDP's too; first_port is an offset from 49152
    assert (pinned_mac.udp_policy, pinned_mac.first_offset) == ("sequential", 848)
    assert windows.windows and not windows.forced_reuse
    assert resolve_host(hosts({"os": "windows"})[0]).forced_reuse
    # another policy on a Linux preset: the kernel's range, none of its TIME_WAIT machinery
    assert (other.linux, other.profile, other.port_range) == (False, None, (32768, 60999))
    assert (other.tw_reuse, other.timer_wheel, other.time_wait_rst) == (0, False, 0.0)


def test_resolved_host_is_frozen() -> None:
    resolved = resolve_host(hosts({"os": "linux"})[0])
    with pytest.raises(dataclasses.FrozenInstanceError):
        resolved.time_wait = 1.0  # type: ignore[misc]
