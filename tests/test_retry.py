"""Retries after a refused connect() (sim/workload/retry.py, sim/workload/flow.py).

Small cases are hand-worked on a two-port range that another load fills; the storm is
worked out round by round; jitter is checked on the Backoff itself against the uniform
distribution it should draw from.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np
import pytest

import sim
from sim.config.types import Retry
from sim.randomness import Stream
from sim.workload.retry import Backoff

DEST = "10.0.0.1:443"


def scenario(loads: list[dict[str, Any]], duration: float, **host: Any) -> sim.Scenario:
    return sim.parse_scenario(
        {
            "name": "retry",
            "duration": duration,
            "hosts": [{"name": "h", **host}],
            "destinations": [{"name": "d", "address": DEST}],
            "load": loads,
        }
    )


def holder(life: Any, **kw: Any) -> dict[str, Any]:
    """Load A: two connections at t = 0 that fill ports 40000-40001 for ``life``."""
    return {
        "name": "A",
        "destination": "d",
        "arrival": {"kind": "burst", "count": 2, "at": 0},
        "lifetime": {"kind": "fixed", "value": life},
        **kw,
    }


def retrier(retry: dict[str, Any]) -> dict[str, Any]:
    """Load B: one connection at t = 1 that retries when refused."""
    return {
        "name": "B",
        "destination": "d",
        "arrival": {"kind": "burst", "count": 1, "at": 1},
        "lifetime": {"kind": "fixed", "value": "1s"},
        "retry": retry,
    }


def attempt_times(result: sim.Result) -> list[float]:
    ev = result.events
    rows = ev[ev["event"].isin(["connect", "fail"])]
    return [float(t) for t in rows["time_s"]]


def fail_times(result: sim.Result) -> list[float]:
    ev = result.events
    return [float(t) for t in ev.loc[ev["event"] == "fail", "time_s"]]


def two_ports(loads: list[dict[str, Any]], duration: float = 30) -> sim.Result:
    sc = scenario(loads, duration, port_range=[40000, 40001])
    return sim.run(sc, seed=1, events=True)


# -- hand-worked: one connection against a full range -------------------------------------


def test_fixed_retries_then_gives_up():
    """A holds both ports forever.  B's attempt 1 at t = 1 is refused; fixed base 1 s
    without jitter: retries at 2 and 3, refused too; max_attempts 3 counts the first, so
    B gives up after the attempt at 3.  retries 2, gave_up 1, recovered 0; connects
    attempted 2 (A) + 3 (B) = 5, of which B's 3 failed."""
    retry = {"kind": "fixed", "base": "1s", "max_attempts": 3, "jitter": False}
    result = two_ports([holder("inf"), retrier(retry)])
    assert fail_times(result) == [1.0, 2.0, 3.0]
    s = result.summary
    assert s["retries"] == {"retries": 2, "gave_up": 1, "recovered": 0}
    assert s["connections"]["attempted"] == 5
    assert s["connections"]["succeeded"] == 2
    assert s["connections"]["failed"] == 3
    assert s["connections"]["failed_by_error"]["EADDRNOTAVAIL"] == 3
    assert s["loads"][1]["retries"] == s["retries"]
    assert "retries" not in s["loads"][0]  # A does not retry
    series = result.series
    assert int(series["retries"].sum()) == 2
    assert int(series["gave_up"].sum()) == 1


@pytest.mark.parametrize(
    ("max_delay", "expected"),
    [(None, [1.0, 2.0, 4.0, 8.0]), ("3s", [1.0, 2.0, 4.0, 7.0])],
)
def test_exponential_retries(max_delay: str | None, expected: list[float]):
    """Exponential base 1 s, factor 2, max_attempts 4, no jitter: waits 1, 2, 4 before
    retries 1-3, so attempts at 1, 2, 4, 8; with max_delay 3 s the waits are 1, 2, 3:
    attempts at 1, 2, 4, 7.  Every one refused: retries 3, gave_up 1."""
    retry = {
        "kind": "exponential",
        "base": "1s",
        "factor": 2,
        "max_attempts": 4,
        "jitter": False,
        **({"max_delay": max_delay} if max_delay else {}),
    }
    result = two_ports([holder("inf"), retrier(retry)])
    assert fail_times(result) == expected
    assert result.summary["retries"] == {"retries": 3, "gave_up": 1, "recovered": 0}
    assert result.summary["connections"]["attempted"] == 2 + 4


def test_retry_recovers_when_ports_free():
    """A's connections last 2.5 s and are reset (no TIME_WAIT): the ports free at 2.5.
    B (fixed 1 s, max_attempts 3, no jitter) is refused at 1 and 2 and connects at 3:
    retries 2, recovered 1, gave_up 0; connects attempted 5, failed 2."""
    retry = {"kind": "fixed", "base": "1s", "max_attempts": 3, "jitter": False}
    result = two_ports([holder("2.5s", close="reset"), retrier(retry)])
    assert fail_times(result) == [1.0, 2.0]
    ev = result.events
    assert [float(t) for t in ev.loc[ev["event"] == "connect", "time_s"]] == [0.0, 0.0, 3.0]
    s = result.summary
    assert s["retries"] == {"retries": 2, "gave_up": 0, "recovered": 1}
    assert s["connections"]["attempted"] == 5
    assert s["connections"]["failed"] == 2


# -- a retry storm -------------------------------------------------------------------------

STORM = 1000  # connections at t = 0
PORTS = 100  # ports 40000-40099
WINDOW = 0.01  # s


def _storm(retry: dict[str, Any]) -> sim.Result:
    load = {
        "destination": "d",
        "arrival": {"kind": "burst", "count": STORM, "at": 0},
        "lifetime": {"kind": "fixed", "value": "1s"},
        "close": "reset",
        "retry": {"max_attempts": 10, **retry},
    }
    sc = scenario([load], 200, port_range=[40000, 40000 + PORTS - 1])
    return sim.run(sc, seed=4, events=True)


def _retry_peak(result: sim.Result) -> tuple[int, int]:
    """(distinct instants, most attempts in one 10 ms window) over the retries (t > 0)."""
    times = [t for t in attempt_times(result) if t > 0]
    windows = Counter(math.floor(t / WINDOW) for t in times)
    return len(set(times)), max(windows.values())


def test_fixed_retries_without_jitter_march_in_step():
    """1000 connects at t = 0 on 100 ports; each connection lives 1 s, reset on close.
    Fixed base 300 ms, no jitter, max_attempts 10: a connection's attempt n is at
    0.3 (n - 1), so every attempt falls on one of 10 instants 0, 0.3, ..., 2.7.

    - t = 0: 100 connect (until 1.0), 900 refused.
    - 0.3, 0.6, 0.9: the ports are still held: all 900 refused, each time.
    - 1.2 (attempt 5): the ports freed at 1.0; 100 connect (until 2.2), 800 refused.
    - 1.5, 1.8, 2.1: refused; 2.4 (attempt 9): 100 connect, 700 refused.
    - 2.7 (attempt 10): 700 refused and give up.
    Attempts: 100 x 1 + 100 x 5 + 100 x 9 + 700 x 10 = 8500; retries 8500 - 1000 = 7500;
    recovered 200; gave_up 700.  The densest 10 ms of retries holds 900 (at 0.3)."""
    result = _storm({"kind": "fixed", "base": "300ms", "jitter": False})
    s = result.summary
    assert s["connections"]["attempted"] == 8500
    assert s["connections"]["succeeded"] == 300
    assert s["retries"] == {"retries": 7500, "gave_up": 700, "recovered": 200}
    distinct, peak = _retry_peak(result)
    assert distinct == 9  # 0.3 .. 2.7
    assert peak == 900
    assert int(result.series["retries"].sum()) == s["retries"]["retries"]
    assert int(result.series["gave_up"].sum()) == s["retries"]["gave_up"]


def test_jitter_spreads_the_storm():
    """The same storm with exponential backoff (base 300 ms, factor 2) and full jitter.

    The 900 first retries are uniform over [0, 0.3): Binomial(900, 1/30) per 10 ms window,
    mean 30, sd 5.4; later rounds spread over [0, 0.6), [0, 1.2), ... on top, adding less
    per window than the first round (their density halves each round).  The densest
    window therefore holds well under 150 (mean <= 60, + 10 sd), against 900 in step.
    Attempts: each of the 1000 makes 1 to 10, its last within 0.3 x (2^9 - 1) = 153 s of
    t = 0, inside the 200 s run, so every connection ends connected or given up, and
    attempts = 1000 + retries.  Only the first 100 connect at attempt 1, so recovered =
    connected - 100.  A give-up needs a 10th attempt refused, i.e. made while the 100 ports
    are all held; they can be so for at most 1000 connects x 1 s / 100 ports = 10 s in
    all, mostly early, while a 10th attempt comes after 9 waits of mean 0.15 x 511 = 77 s
    in total: give-ups are rare, at most 1% here."""
    result = _storm({"kind": "exponential", "base": "300ms", "factor": 2, "jitter": True})
    s = result.summary
    distinct, peak = _retry_peak(result)
    assert distinct > 1000  # continuous waits: hardly two retries share an instant
    assert peak < 150
    attempted = s["connections"]["attempted"]
    assert STORM < attempted <= 10 * STORM
    assert attempted == STORM + s["retries"]["retries"]
    succeeded = s["connections"]["succeeded"]
    assert succeeded + s["retries"]["gave_up"] == STORM
    assert s["retries"]["recovered"] == succeeded - PORTS
    assert s["retries"]["gave_up"] <= STORM // 100
    assert int(result.series["retries"].sum()) == s["retries"]["retries"]


# -- Backoff itself ------------------------------------------------------------------------


def _backoff(**spec: Any) -> Backoff:
    return Backoff(Retry(**spec), Stream(np.random.SeedSequence(1)))


def test_backoff_ceilings():
    """fixed: base every time (factor ignored); exponential: base * factor^(n-1), capped
    by max_delay; without jitter delay == ceiling."""
    fixed = _backoff(kind="fixed", base=0.5, factor=3, jitter=False)
    assert [fixed.delay(n) for n in (1, 2, 5)] == [0.5, 0.5, 0.5]
    exp = _backoff(kind="exponential", base=0.1, factor=3, max_delay=2, jitter=False)
    assert [exp.delay(n) for n in (1, 2, 3, 4)] == pytest.approx([0.1, 0.3, 0.9, 2.0])
    assert exp.delay(1000) == 2.0  # no overflow past the cap
    assert exp.attempts == 5


def test_full_jitter_is_uniform_below_the_ceiling():
    """Full jitter draws U[0, ceiling).  For retry 3 of base 100 ms factor 2 the ceiling is
    0.4 s; over N = 20,000 draws the mean is 0.2 within 4 sd (sd of U[0, c) is c/sqrt(12),
    of the mean c/sqrt(12 N): 4 sd = 0.0033 s); a quarter fall below c/4 within 4 sd of
    a binomial proportion (0.0122); none reaches c."""
    n = 20_000
    backoff = _backoff(kind="exponential", base=0.1, factor=2, jitter=True)
    ceiling = backoff.ceiling(3)
    assert ceiling == pytest.approx(0.4)
    waits = np.array([backoff.delay(3) for _ in range(n)])
    assert waits.min() >= 0
    assert waits.max() < ceiling
    assert abs(waits.mean() - ceiling / 2) <= 4 * ceiling / math.sqrt(12 * n)
    quarter = float((waits < ceiling / 4).mean())
    assert abs(quarter - 0.25) <= 4 * math.sqrt(0.25 * 0.75 / n)
    assert len(set(waits.tolist())) == n  # continuous: no repeats


# -- retries under a keep-alive pool ------------------------------------------------------


def _pooled(holder_life: Any, **holder_kw: Any) -> sim.Result:
    """B: one request at t = 1 (lasting 1 s) through a keep-alive pool, whose connection
    open retries fixed 1 s x 3 attempts without jitter; A holds both ports."""
    load = retrier({"kind": "fixed", "base": "1s", "max_attempts": 3, "jitter": False})
    load["keepalive"] = {"max_connections": 4}
    return two_ports([holder(holder_life, **holder_kw), load])


def test_keepalive_open_is_retried_and_serves_the_request():
    """A frees its ports at 2.5 (reset).  The request at 1 finds no connection and opens
    one: refused at 1 and 2, connected at 3, where the request is served, 2 s after it
    arrived (a wait, though it never queued behind the pool's limit).  requests:
    succeeded 1, failed 0, connections 1; retries 2, recovered 1."""
    result = _pooled("2.5s", close="reset")
    s = result.summary
    assert fail_times(result) == [1.0, 2.0]
    req = s["requests"]
    assert req["attempted"] == 1
    assert req["succeeded"] == 1
    assert req["failed"] == 0
    assert req["connections"] == 1
    assert req["waited"] == 0
    assert req["wait_s"]["max"] == 2.0
    assert s["retries"] == {"retries": 2, "gave_up": 0, "recovered": 1}


def test_keepalive_open_fails_after_the_last_attempt():
    """A holds its ports forever: refused at 1, 2, 3, the open gives up and the request
    fails as connect_error; retries 2, gave_up 1, no connection."""
    result = _pooled("inf")
    s = result.summary
    assert fail_times(result) == [1.0, 2.0, 3.0]
    req = s["requests"]
    assert req["attempted"] == 1
    assert req["succeeded"] == 0
    assert req["failed_by_reason"] == {"connect_error": 1, "pool_full": 0, "wait_timeout": 0}
    assert req["connections"] == 0
    assert s["retries"] == {"retries": 2, "gave_up": 1, "recovered": 0}
    assert int(result.series["requests_failed"].sum()) == 1
