"""Idle timeouts meet keep-alive (issue 17 item 6), through the whole model.

A request every 400 s on a keep-alive pool behind an AWS NAT gateway (idle timeout 350 s):
the connection has sat idle 400 s - 0.1 s > 350 s when the next request takes it, so the
gateway has dropped the flow and that request fails; the pool closes the connection, and
the request after opens a new one.  So requests alternate: 1st ok (new connection), 2nd
fails, 3rd ok (new), ... With TCP keepalive every 60 s (< 350 s) or a request every 300 s
(< 350 s) none fails.  Expected counts are that alternation, by hand."""

from __future__ import annotations

import sim

N = 20  # requests: at 0, 400, ..., 7,600 s


def scenario(interval: float, tcp_keepalive: str | None = None, kind: str = "aws-natgw",
             **gateway: object) -> sim.Scenario:  # fmt: skip
    load: dict[str, object] = {
        "destination": "api",
        "arrival": {"kind": "constant", "interval": interval},
        "lifetime": {"kind": "fixed", "value": "100ms"},
        "keepalive": {"max_connections": 4, "idle_timeout": "2h"},
    }
    if tcp_keepalive is not None:
        load["tcp_keepalive"] = tcp_keepalive
    return sim.parse_scenario(
        {
            "name": "idle",
            "duration": interval * N - 1,
            "hosts": [{"name": "worker", "address": "10.0.1.5", "gateway": "nat"}],
            "gateways": [{"name": "nat", "kind": kind, "addresses": ["198.51.100.7"], **gateway}],
            "destinations": [{"name": "api", "address": "203.0.113.10:443"}],
            "load": [load],
        }
    )


def test_idle_longer_than_the_timeout_fails_every_other_request() -> None:
    s = sim.run(scenario(400.0)).summary
    req = s["requests"]
    assert req["attempted"] == N
    assert req["failed_by_reason"]["gateway_idle_timeout"] == N // 2
    assert req["succeeded"] == N - N // 2
    idle = s["gateways"]["nat"]["idle"]
    assert idle["resets"] == N // 2
    assert idle["signal"] == "ECONNRESET"
    # the N // 2 connections (opened by requests 0, 2, ..., 18) were each dropped once at
    # 350 s idle; the 20th request (at 7,600 s) is a failing one, so none is left idle
    assert s["gateways"]["nat"]["cloudwatch"]["IdleTimeoutCount"] == N // 2
    assert req["connections"] == N // 2


def test_tcp_keepalive_or_shorter_gaps_keep_the_flow() -> None:
    for sc in (scenario(400.0, tcp_keepalive="60s"), scenario(300.0)):
        req = sim.run(sc).summary["requests"]
        assert req["failed"] == 0
        assert req["connections"] == 1  # one connection served them all


def test_keepalive_slower_than_the_timeout_does_not_help() -> None:
    req = sim.run(scenario(400.0, tcp_keepalive="400s")).summary["requests"]
    assert req["failed_by_reason"]["gateway_idle_timeout"] == N // 2


def test_azure_lb_silent_drop_and_longer_timeout() -> None:
    # Azure's load balancer: 4 min by default (240 s < 400 s: fails), silent drop
    s = sim.run(scenario(400.0, kind="azure-lb")).summary
    assert s["requests"]["failed_by_reason"]["gateway_idle_timeout"] == N // 2
    assert s["gateways"]["nat"]["idle"]["signal"] == "ETIMEDOUT"
    # idle_timeout 30 min (AKS's default): 400 s gaps are fine
    s = sim.run(scenario(400.0, kind="azure-lb", idle_timeout=1800)).summary
    assert s["requests"]["failed"] == 0


def test_verdict_names_the_fix() -> None:
    from sim.verdict import verdict

    text = verdict(sim.run(scenario(400.0)).summary)
    assert "Idle timeout at gateway nat (aws-natgw)" in text
    assert "tcp_keepalive" in text
    assert "350 s" in text
