"""Session fixtures: each NAT lab measurement runs once and serves the kernel checks
(test_nat_kernel.py) and the model comparison (test_nat_model.py) alike."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.kernel import nat_measure as m
from tests.kernel.natlab import nat_tools

LINEAR_SYSCTL = Path("/proc/sys/net/ipv4/tcp_syn_linear_timeouts")
HOST_TW_SYSCTL = Path("/proc/sys/net/netfilter/nf_conntrack_tcp_timeout_time_wait")


def _need_nat_lab() -> None:
    tool, why = nat_tools()
    if tool is None:
        pytest.skip(why)


@pytest.fixture(scope="session")
def nat_preservation() -> dict[str, Any]:
    _need_nat_lab()
    return m.measure_port_preservation()


@pytest.fixture(scope="session")
def nat_exhaustion() -> dict[str, Any]:
    _need_nat_lab()
    return m.measure_exhaustion()


@pytest.fixture(scope="session")
def nat_holds() -> dict[str, Any]:
    _need_nat_lab()
    return m.measure_conntrack_holds()


@pytest.fixture(scope="session")
def nat_eviction() -> dict[str, Any]:
    _need_nat_lab()
    host_before = HOST_TW_SYSCTL.read_text().strip() if HOST_TW_SYSCTL.exists() else None
    out = m.measure_hold_and_eviction()
    out["host_time_wait_before"] = host_before
    out["host_time_wait_after"] = HOST_TW_SYSCTL.read_text().strip() if host_before else None
    return out


@pytest.fixture(scope="session")
def nat_syn_runs() -> dict[str, Any]:
    _need_nat_lab()
    if not LINEAR_SYSCTL.exists():
        pytest.skip("no tcp_syn_linear_timeouts sysctl (Linux < 6.5)")
    return m.measure_syn_retransmissions(m.SYN_CONFIGS)


@pytest.fixture(scope="session")
def nat_random_fully() -> dict[str, Any]:
    _need_nat_lab()
    return m.measure_random_fully(n=20)


@pytest.fixture(scope="session")
def nat_isn_order() -> dict[str, Any]:
    _need_nat_lab()
    return m.measure_isn_order(pairs=100)


@pytest.fixture(scope="session")
def nat_udp() -> dict[str, Any]:
    _need_nat_lab()
    return m.measure_udp_holds()


@pytest.fixture(scope="session")
def nat_race() -> dict[str, Any]:
    _need_nat_lab()
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("the confirm race needs two CPUs")
    return m.measure_confirm_race(trials=40)


@pytest.fixture(scope="session")
def nat_port_classes() -> dict[str, Any]:
    _need_nat_lab()
    return m.measure_port_classes()
