"""`portsim kernel` without a kernel: the plan draws the model's own attempts, unsupported
scenarios are refused, and the parts of the report that need no namespace."""

from __future__ import annotations

import sys
from typing import Any

import pytest

import sim
from sim.replay.driver import proc_address
from sim.replay.plan import build, refusals
from sim.replay.report import measured_hz
from sim.replay.runner import HostRun


def _scenario(**load: Any) -> sim.Scenario:
    return sim.parse_scenario(
        {
            "name": "plan",
            "duration": 30,
            "seed": 5,
            "hosts": [{"port_range": [40000, 40049], "addresses": ["192.0.2.1", "192.0.2.2"]}],
            "destinations": [
                {"name": "a", "address": "198.51.100.10:80"},
                {"name": "b", "address": "198.51.100.11:443"},
            ],
            "load": [
                {
                    "destinations": ["a", "b"],
                    "weights": [3, 1],
                    "arrival": {"kind": "poisson", "rate": 20},
                    "lifetime": {"kind": "exponential", "mean": 2},
                    "close": "client",
                    **load,
                }
            ],
        }
    )


def test_plan_is_the_models_attempts():
    """Every attempt of the model (connect or fail), with its time, source address and
    destination, is in the plan, in the same order, and nothing else is."""
    sc = _scenario()
    (plan,) = build(sc, 5)
    planned = [
        (t, plan.channels[k]["src"], plan.channels[k]["destination"]) for t, k in plan.attempts
    ]
    ev = sim.run(sc, seed=5, events=True).events
    tried = ev[ev["event"].isin(["connect", "fail"])]
    model = list(zip(tried["time_s"], tried["local_address"], tried["destination"], strict=True))
    assert len(planned) == len(model) > 400
    assert planned == model


def test_plan_lifetimes_are_the_models_in_success_order():
    """The nth successful connect gets the nth lifetime: with reset closes (no TIME_WAIT,
    about 40 connections open on 50 ports per address and destination) nothing is refused,
    and the model's close times are the attempt times plus the plan's lifetimes in order."""
    sc = _scenario(close="reset")
    (plan,) = build(sc, 5)
    lives = plan.lifetimes["0"]
    ev = sim.run(sc, seed=5, events=True).events
    connects = ev[ev["event"] == "connect"]
    assert (ev["event"] == "fail").sum() == 0
    ends = sorted(
        t + life for t, life in zip(connects["time_s"], lives, strict=False) if t + life < 30
    )
    closes = sorted(ev[ev["event"] == "close"]["time_s"])
    assert ends == pytest.approx(closes)


def test_sysctls_follow_the_host():
    sc = sim.parse_scenario(
        {
            "name": "s",
            "duration": 5,
            "hosts": [
                {
                    "port_range": [40000, 40099],
                    "reserved_ports": [40010, "40020-40022"],
                    "tcp_tw_reuse": 1,
                    "tcp_max_tw_buckets": 77,
                    "tcp_timestamps": False,
                    "tcp_rfc1337": 1,
                }
            ],
            "destinations": [{"name": "d", "address": "198.51.100.10:80"}],
            "load": [
                {
                    "destination": "d",
                    "arrival": {"kind": "poisson", "rate": 1},
                    "lifetime": {"kind": "fixed", "value": 1},
                }
            ],
        }
    )
    (plan,) = build(sc, 1)
    assert plan.sysctls == {
        "net.ipv4.ip_local_port_range": "40000 40099",
        "net.ipv4.ip_local_reserved_ports": "40010,40020,40021,40022",
        "net.ipv4.tcp_tw_reuse": "1",
        "net.ipv4.tcp_max_tw_buckets": "77",
        "net.ipv4.tcp_timestamps": "0",
        "net.ipv4.tcp_rfc1337": "1",
    }
    assert plan.remote_addresses == {"198.51.100.10"}
    assert plan.servers == {("198.51.100.10", 80)}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"hosts": [{"os": "windows"}]}, "hosts[0].os: 'windows' is not Linux"),
        ({"hosts": [{"time_wait": 30}]}, "hosts[0].time_wait: the kernel's TIME_WAIT is fixed"),
        ({"rate": 500}, "500 attempts/s in all; the replay loop keeps at most 200/s"),
        ({"retry": {"kind": "fixed", "max_attempts": 3}}, "load[0].retry: retries are not"),
    ],
)
def test_refusals_name_the_key(change: dict[str, Any], reason: str):
    raw: dict[str, Any] = {
        "name": "r",
        "duration": 5,
        "hosts": change.get("hosts", [{}]),
        "destinations": [{"name": "d", "address": "198.51.100.10:80"}],
        "load": [
            {
                "destination": "d",
                "arrival": {"kind": "poisson", "rate": change.get("rate", 10)},
                "lifetime": {"kind": "fixed", "value": 1},
                **({"retry": change["retry"]} if "retry" in change else {}),
            }
        ],
    }
    problems = refusals(sim.parse_scenario(raw), "x.toml")
    assert len(problems) == 1
    assert problems[0].startswith("x.toml: ") and reason in problems[0]


def test_a_linux_scenario_is_not_refused():
    assert refusals(_scenario(), "x.toml") == []


def test_proc_address_format():
    # /proc/net/tcp prints the address as a 32-bit word in host byte order:
    # 127.0.0.1 is bytes 7f 00 00 01, read little-endian as 0x0100007F
    if sys.byteorder == "little":
        assert proc_address("127.0.0.1") == "0100007F"
        assert proc_address("198.51.100.10") == "0A6433C6"
        # ::1: three zero words, then bytes 00 00 00 01 read little-endian as 0x01000000
        assert proc_address("::1") == "00000000000000000000000001000000"


@pytest.mark.parametrize(("grain", "hz"), [(2.048, 250), (4.096, 1000), (5.12, 100)])
def test_hz_from_batch_spacing(grain: float, hz: int):
    """TIME_WAITs ending in batches ``grain`` s apart (a few sockets each, 10 ms of spread)
    name the HZ whose 60 s bucket has that width."""
    ends = [100 + b * grain + 0.01 * i for b in range(10) for i in range(3)]
    data = {"time_waits": [[40000, "d", e - 61, e] for e in ends]}
    run = HostRun(plan=None, data=data)  # type: ignore[arg-type]
    assert measured_hz([run]) == hz
