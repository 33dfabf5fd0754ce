"""Smoke tests for the kernel lab: harness plus model-independent facts from docs/sources.md.

They check that the probe really drives the running kernel. If these fail, a model-vs-kernel
test failing says nothing about the model.
"""

from __future__ import annotations

import subprocess

import pytest

from tests.kernel.lab import KEEP_TIME_WAIT, kernel_available, namespace, run

pytestmark = pytest.mark.kernel

RANGE = "net.ipv4.ip_local_port_range"


@pytest.fixture(autouse=True)
def _need_kernel() -> None:
    ok, why = kernel_available()
    if not ok:
        pytest.skip(why)


def test_connect_even_first_shared_across_destinations_and_ns_removed() -> None:
    """E1/E3/E7: even ports first, ports shared per 4-tuple, EADDRNOTAVAIL when full."""
    with namespace() as ns:
        res = run(
            ns,
            [
                {"op": "sysctl", "name": RANGE, "value": "40000 40019"},
                {"op": "connect", "dport": 9000, "count": 22, "socket": "connect"},
                {"op": "connect", "dport": 9001, "count": 22, "socket": "connect"},
                {"op": "close", "how": "reset"},
                {"op": "sysctl", "name": RANGE, "value": "40000 40003"},
                {"op": "bind0", "count": 1},
                {"op": "connect", "dport": 9000, "count": 5},
            ],
        )
    assert ns not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert res[0] == "40000 40019"
    full = set(range(40000, 40020))
    for ports in (res[1], res[2]):
        assert len(ports) == 21 and ports[20] == "EADDRNOTAVAIL"
        assert all(p % 2 == 0 for p in ports[:10])
        assert all(p % 2 == 1 for p in ports[10:20])
        assert set(ports[:20]) == full
    assert res[3] == 0  # RST close leaves no TIME_WAIT
    # E7: a port held by bind(0) is never chosen by connect() autoselect.
    (bound,) = res[5]
    assert bound % 2 == 1
    assert res[6][-1] == "EADDRNOTAVAIL"
    assert sorted(res[6][:-1]) == sorted({40000, 40001, 40002, 40003} - {bound})


def test_bind0_odd_first_and_udp_connect_eagain() -> None:
    """E4/E4b/E6: bind(0) takes odd ports first (lower half first with SO_REUSEADDR);
    connected UDP sockets never share a port."""
    with namespace() as ns:
        res = run(
            ns,
            [
                {"op": "sysctl", "name": RANGE, "value": "40000 40019"},
                {"op": "bind0", "count": 22, "reuseaddr": False},
                {"op": "close", "how": "reset"},
                {"op": "bind0", "count": 22, "reuseaddr": True},
                {"op": "close", "how": "reset"},
                {"op": "udp_connect", "dports": [9000, 9001], "count": 22},
            ],
        )
    plain, reuse, udp = res[1], res[3], res[5]
    assert len(plain) == 21 and plain[20] == "EADDRINUSE"
    assert all(p % 2 == 1 for p in plain[:10])
    assert all(p % 2 == 0 for p in plain[10:20])
    assert len(reuse) == 21 and reuse[20] == "EADDRINUSE"
    assert set(reuse[:10]) == set(range(40000, 40010))
    assert all(p % 2 == 1 for p in reuse[:5])
    assert len(udp) == 21 and udp[20] == "EAGAIN"
    assert set(udp[:20]) == set(range(40000, 40020))


def test_time_wait_blocks_without_reuse_and_loopback_reuse_after_delay() -> None:
    """T1/T2/T3: with tw_reuse=0 ten TIME_WAITs exhaust a 10-port range for that peer
    only; tw_reuse=2 recycles one after about tcp_tw_reuse_delay (1000 ms)."""
    with namespace() as ns:
        res = run(
            ns,
            [
                KEEP_TIME_WAIT,
                {"op": "sysctl", "name": RANGE, "value": "40000 40009"},
                {"op": "sysctl", "name": "net.ipv4.tcp_tw_reuse", "value": "0"},
                {"op": "connect", "dport": 9000, "count": 10},
                {"op": "close", "how": "client"},
                {"op": "connect", "dport": 9000, "count": 1},
                {"op": "connect", "dport": 9001, "count": 1},
                {"op": "sysctl", "name": "net.ipv4.tcp_tw_reuse", "value": "2"},
                {"op": "retry_until_ok", "dport": 9000, "timeout_s": 3.0, "poll_s": 0.02},
                {"op": "tw_count", "dport": 9000},
            ],
        )
    ports, tw_after_close, again, other_peer, _, retry, tw_left = res[3:]
    assert set(ports) == set(range(40000, 40010))
    assert tw_after_close == 10
    assert again == ["EADDRNOTAVAIL"]
    assert isinstance(other_peer[0], int)
    assert retry["port"] in range(40000, 40010)
    assert retry["failures"] >= 1
    assert 0.5 <= retry["elapsed_s"] <= 1.5
    assert tw_left == 9
