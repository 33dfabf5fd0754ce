"""UDP flows that look like DNS: short connected sockets, autobound, no TIME_WAIT.

A stub resolver opens a connected UDP socket per query and closes it when the answer (or
its timeout) comes: the port is held for the query's lifetime only (`udp_lib_get_port`).
"""

from __future__ import annotations

import math

import sim

RANGE = 60999 - 32768 + 1  # Linux default: 28,232 ports


def resolver(arrival: dict, lifetime: dict, duration: float = 10.0) -> sim.Scenario:
    return sim.parse_scenario(
        {
            "name": "dns",
            "duration": duration,
            "bin": 0.1,
            "destinations": [{"name": "dns", "address": "10.0.0.53:53"}],
            "load": [
                {
                    "destination": "dns",
                    "protocol": "udp",
                    "arrival": arrival,
                    "lifetime": lifetime,
                }
            ],
        }
    )


def test_a_burst_beyond_the_range_fails_with_eagain_and_the_ports_come_back_at_once():
    """28,300 queries at t=1 held 2 s: the whole range serves the first 28,232 (the UDP
    scan visits every chain, so any free port is found), the other 68 get EAGAIN.  At t=4
    the answers are in, no TIME_WAIT holds anything, and a second burst all succeeds."""
    sc = resolver({"kind": "burst", "count": RANGE + 68, "at": 1}, {"kind": "fixed", "value": 2})
    data = sc.model_dump(mode="json")
    data["load"].append({**data["load"][0], "arrival": {"kind": "burst", "count": 100, "at": 4}})
    result = sim.run(sim.parse_scenario(data))
    s = result.summary
    first, second = s["loads"]
    assert first["succeeded"] == RANGE
    assert first["failed"] == first["failed_by_error"]["EAGAIN"] == 68
    assert second["succeeded"] == 100 and second["failed"] == 0
    series = result.series
    assert series["time_wait"].max() == 0
    held = series.loc[series.t_end_s.between(1.1, 2.95), "established"]
    assert (held == RANGE).all()
    assert series.loc[series.t_end_s.between(3.05, 3.95), "established"].max() == 0


def test_poisson_queries_hold_ports_by_littles_law():
    """Queries at 2,000/s with lognormal lifetimes of mean 20 ms (p99 100 ms): on average
    2000 x 0.02 = 40 sockets are open (Little's law), with no TIME_WAIT.  The end-of-bin
    count over 9 s (90 bins of 0.1 s, after a 1 s warm-up) averages it; its standard error
    is under 1 (Poisson count of 40, bins ~5 holding times apart), so +-4 is > 4 s.e."""
    sc = resolver(
        {"kind": "poisson", "rate": 2000}, {"kind": "lognormal", "mean": "20ms", "p99": "100ms"}
    )
    result = sim.run(sc, seed=3)
    series = result.series
    steady = series.loc[series.t_start_s >= 1.0, "established"]
    assert math.isclose(steady.mean(), 40, abs_tol=4)
    assert series["time_wait"].max() == 0
    assert result.summary["connections"]["failed"] == 0
