"""Windows specifics worked by hand: the auto-reuse range and its validation
(Windows, inferred; docs/presets/windows.md)."""

from __future__ import annotations

from typing import Any

import pytest

import sim


def windows(loads: list[dict[str, Any]], **host: Any) -> sim.Scenario:
    return sim.parse_scenario(
        {
            "name": "win",
            "duration": 100,
            "hosts": [{"name": "w", "os": "windows", "port_range": [50000, 50009], **host}],
            "destinations": [
                {"name": "a", "address": "10.0.0.1:443"},
                {"name": "b", "address": "10.0.0.2:443"},
            ],
            "load": loads,
        }
    )


def burst(dest: str, count: int, at: float, **kw: Any) -> dict[str, Any]:
    return {
        "destination": dest,
        "arrival": {"kind": "burst", "count": count, "at": at},
        "lifetime": {"kind": "fixed", "value": "inf"},
        **kw,
    }


def ports(result: sim.Result, dest: str) -> list[int]:
    ev = result.events
    rows = ev[(ev.event == "connect") & (ev.destination == dest)]
    return [int(p) for p in rows.local_port]


def test_auto_reuse_range_serves_several_destinations_then_the_dynamic_range():
    """Ports 50000-50003 form the auto-reuse range: each destination gets all four, in
    order, then ports of the dynamic range that nobody holds (50004... for a, 50006...
    for b): 12 connections fit in 10 ports."""
    r = sim.run(
        windows([burst("a", 6, 0), burst("b", 6, 1)], auto_reuse_range=[50000, 50003]), events=True
    )
    assert ports(r, "10.0.0.1:443") == [50000, 50001, 50002, 50003, 50004, 50005]
    assert ports(r, "10.0.0.2:443") == [50000, 50001, 50002, 50003, 50006, 50007]
    assert r.summary["connections"]["failed"] == 0


def test_without_auto_reuse_every_port_is_exclusive():
    r = sim.run(windows([burst("a", 6, 0), burst("b", 6, 1)], forced_reuse=False), events=True)
    assert r.summary["connections"]["succeeded"] == 10
    assert r.summary["connections"]["failed_by_error"]["WSAENOBUFS"] == 2
    assert r.summary["windows_events"] == {"4227": 0, "4231": 2}


def test_bind_sockets_do_not_use_the_auto_reuse_range():
    r = sim.run(
        windows([burst("a", 3, 0, socket="bind")], auto_reuse_range=[50000, 50003]), events=True
    )
    assert all(p > 50003 for p in ports(r, "10.0.0.1:443"))


@pytest.mark.parametrize(
    "host,fragment",
    [
        ({"auto_reuse_range": [49000, 50003]}, "must lie within the port range"),
        ({"os": "linux", "auto_reuse_range": [50000, 50003]}, "a Windows setting"),
    ],
)
def test_auto_reuse_range_is_validated(host: dict[str, Any], fragment: str):
    with pytest.raises(sim.ScenarioError) as info:
        windows([burst("a", 1, 0)], **host)
    assert any("hosts[0].auto_reuse_range" in p and fragment in p for p in info.value.problems)


def test_auto_reuse_range_keeps_peak_above_mean_and_no_erlang_b():
    """The auto-reuse ports are booked at t = 0 like any other unusable port, so the peak
    is never below the mean; and with ports shared across destinations the loss formula
    does not apply, so no analytic entry is reported."""
    loads = [
        {
            "destination": "a",
            "arrival": {"kind": "poisson", "rate": 1},
            "lifetime": {"kind": "exponential", "mean": 1},
        }
    ]
    s = sim.run(windows(loads, auto_reuse_range=[50000, 50003])).summary
    assert s["pressure"]["peak"] >= s["pressure"]["mean"] >= 0.4
    assert s["analytic"] == {}
