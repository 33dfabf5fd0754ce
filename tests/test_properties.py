"""Properties of the port table and the Linux policies under random operation sequences.

Ground truth comes from the live sockets themselves: an open socket has a pending SimPy
event (its close) and a TIME_WAIT socket sits in its host's TIME_WAIT queue, so the test
reads them off and recomputes, port by port, what each destination's pool must say.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from simpy import Environment

from sim.config.load import parse_scenario
from sim.host import Host
from sim.ports.cells import BUSY
from sim.ports.linux import _two_pass
from sim.ports.table import Layout
from sim.sockets import ESTABLISHED, TIME_WAIT, TW_REUSABLE
from tests.hosts import host_from_scenario, live_sockets

LOADS = [
    # destination, socket, close, protocol
    ("a", "connect", "client", "tcp"),
    ("b", "connect", "reset", "tcp"),
    ("a", "bind", "client", "tcp"),
    ("lo", "bind_reuseaddr", "client", "tcp"),
    ("b", "bind_no_port", "server", "tcp"),
    ("lo", "connect", "client", "tcp"),
    ("a", "connect", "client", "udp"),
]


def build(port_range: tuple[int, int], kernel: str = "6.18"):
    sc = parse_scenario(
        {
            "name": "prop",
            "duration": 1e6,
            "hosts": [
                {
                    "name": "h",
                    "kernel": kernel,
                    "port_range": list(port_range),
                    "reserved_ports": [port_range[0] + 3],
                    "listening_ports": [port_range[0] + 6],
                    "time_wait": 3,
                    "tcp_tw_reuse_delay": "200ms",
                }
            ],
            "destinations": [
                {"name": "a", "address": "10.0.0.1:443"},
                {"name": "b", "address": "10.0.0.1:444"},
                {"name": "lo", "address": "127.0.0.1:8080"},
            ],
            "load": [
                {
                    "destination": d,
                    "socket": s,
                    "close": c,
                    "protocol": p,
                    "arrival": {"kind": "burst", "count": 1, "at": 0},
                    "lifetime": {"kind": "exponential", "mean": 1.5},
                }
                for d, s, c, p in LOADS
            ],
        }
    )
    return host_from_scenario(sc)


def check_invariants(env: Environment, host: Host) -> None:
    host.settle(env.now)  # what every action and bin boundary does before looking
    socks = live_sockets(env, host)
    tcp = [s for s in socks if s.load.protocol == "tcp"]
    # 1. no two live sockets share a 4-tuple (TIME_WAIT entries included)
    tuples = [(host.address, s.k, s.load.dest.ip, s.load.dest.port) for s in tcp]
    assert len(tuples) == len(set(tuples))
    udp_ports = [s.k for s in socks if s.load.protocol == "udp"]
    assert len(udp_ports) == len(set(udp_ports))  # UDP never shares a local port
    # 2. per destination, each port is in exactly one class, and the pool agrees
    table = host.table
    static = {p - host.lo for p in table.reserved | table.listening if host.lo <= p <= host.hi}
    explicit = {s.k for s in tcp if s.explicit}
    assert all(table.explicit[k] > 0 for k in explicit)
    for key, pool in table.pools.items():
        mine = [s for s in tcp if s.load.key == key]
        est = {s.k for s in mine if s.state == ESTABLISHED}
        tw = {s.k for s in mine if s.state == TIME_WAIT}
        assert not est & tw
        unusable = est | tw | static | explicit
        assert pool.unusable == len(unusable)
        for k in range(host.size):
            cell = pool.cells[table.layout.cell(k)]
            assert bool(cell) == (k in unusable), (key, k)
            if k in est or k in tw:
                assert cell & BUSY
        reusable = {s.k for s in mine if s.state == TW_REUSABLE}
        assert {table.layout.offset(c) for c in pool.tw_reusable or {}} == reusable
        assert pool.established == len(est) and pool.time_wait == len(tw)
    # owners: every live TCP socket owns its port
    for k in range(host.size):
        assert table.owners[k] == sum(1 for s in tcp if s.k == k)


actions = st.lists(st.tuples(st.integers(0, len(LOADS) - 1), st.floats(0.001, 1.0)), max_size=60)


@pytest.mark.parametrize("port_range", [(40000, 40011), (40001, 40011)])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=actions)
def test_random_operations_keep_the_table_consistent(port_range, steps):
    env, host, loads, log = build(port_range)
    even = host.size % 2 == 0
    for index, dt in steps:
        load = loads[index]
        explicit_before = {k for k in range(host.size) if host.table.explicit[k]}
        usable_before = host.size - load.pool.unusable
        bind_usable_before = host.size - host.table.bind_pool.unusable
        n_log = len(log)
        host.attempt(load)
        new = log[n_log:]
        outcome = [row for row in new if row[3] in ("connect", "fail")][-1]
        if (
            outcome[3] == "connect"
            and load.protocol == "tcp"
            and not load.socket.startswith("bind")
        ):
            # 3. a port held by an explicit bind is never autoselected by connect()
            assert outcome[5] - host.lo not in explicit_before
        if outcome[3] == "fail":
            if outcome[8] == "EADDRNOTAVAIL" and even:
                # 4. with an even range, connect() fails only when nothing is usable
                assert usable_before == 0
            if outcome[8] == "EADDRINUSE" and even:
                # bind(0) scans with the same geometry: odd ranges can miss a port (E5)
                assert bind_usable_before == 0
        else:
            assert outcome[3] == "connect"
        check_invariants(env, host)
        env.run(until=env.now + dt)
        check_invariants(env, host)


def test_odd_range_misses_one_even_port_depending_on_offset():
    """`__inet_hash_connect`, E5: with 11 ports, ``remaining`` is 10 and the wrap is tested against
    the end, so pass 1 misses port lo when it starts past it, or the top port when it starts
    at lo.  connect() can then fail with a port left, and succeed on a later call."""
    layout = Layout(11)
    only_lo = bytearray([1]) * 11
    only_lo[layout.cell(0)] = 0
    only_top = bytearray([1]) * 11
    only_top[layout.cell(10)] = 0
    assert _two_pass(only_lo, layout, 0, 11, 0, first_class_is_a=True)[0] == 0
    assert _two_pass(only_lo, layout, 0, 11, 2, first_class_is_a=True)[0] == -1
    assert _two_pass(only_top, layout, 0, 11, 0, first_class_is_a=True)[0] == -1
    assert _two_pass(only_top, layout, 0, 11, 2, first_class_is_a=True)[0] == 10
    # bind(0) scans the same ring second (other parity first): it misses lo the same way
    assert _two_pass(only_lo, layout, 0, 11, 2, first_class_is_a=False)[0] == -1
    assert _two_pass(only_lo, layout, 0, 11, 0, first_class_is_a=False)[0] == 0
