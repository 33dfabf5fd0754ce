"""Keep-alive pools (sim/workload/keepalive.py): requests borrow connections.

Every expected value is derived in its test's docstring: renewal arguments for Poisson
requests, Little's law for a busy pool, and hand-worked timelines for the small cases
(constant arrivals and fixed durations chosen so no two events share an instant).
"""

from __future__ import annotations

import math
from typing import Any

import sim

DEST = "10.0.0.1:443"


def scenario(
    loads: list[dict[str, Any]], duration: float, bin: float | None = None, **host: Any
) -> sim.Scenario:
    # exact TIME_WAIT ends (no timer-wheel buckets): the expected times here are worked out
    # by hand from the TIME_WAIT length; tests/test_timerwheel.py covers the buckets
    return sim.parse_scenario(
        {
            "name": "ka",
            "duration": duration,
            **({"bin": bin} if bin is not None else {}),
            "hosts": [{"name": "h", "timer_wheel": False, **host}],
            "destinations": [{"name": "d", "address": DEST}],
            "load": loads,
        }
    )


def requests(
    arrival: dict[str, Any], duration: Any, keepalive: dict[str, Any], **kw: Any
) -> dict[str, Any]:
    """A keep-alive load: ``arrival`` are requests, each lasting a fixed ``duration``."""
    return {
        "name": "req",
        "destination": "d",
        "arrival": arrival,
        "lifetime": {"kind": "fixed", "value": duration},
        "keepalive": keepalive,
        **kw,
    }


def constant(interval: Any, **kw: Any) -> dict[str, Any]:
    return {"kind": "constant", "interval": interval, **kw}


def events_of(result: sim.Result, kind: str) -> list[float]:
    ev = result.events
    return [float(t) for t in ev.loc[ev["event"] == kind, "time_s"]]


# -- requests per connection under Poisson requests ---------------------------------------

LAM = 2.0  # requests per second
T_IDLE = 1.0  # idle timeout, s
D_REQ = 0.001  # request duration, s
HORIZON = 50_000.0  # s: about 100,000 requests


def _p_new() -> float:
    """P(a request does not continue the current connection).

    A request lasts d, then its connection idles; the next request (gap G ~ Exp(lam))
    reuses it iff d <= G < d + T.  G >= d + T: the idle timer closed it first (probability
    e^{-lam (T + d)}); G < d: it is still busy and a second connection opens (probability
    1 - e^{-lam d}; the older one then idles out, being second in LIFO order).  Either way
    the request starts a new run on a fresh connection, so
        p = e^{-lam (T + d)} + 1 - e^{-lam d}
    which tends to e^{-lam T} as d -> 0 (lam = 2, T = 1, d = 1 ms: p = 0.1370 against
    e^{-2} = 0.1353, a 1.3% correction worth keeping at this run length).
    """
    return math.exp(-LAM * (T_IDLE + D_REQ)) + 1 - math.exp(-LAM * D_REQ)


def _run_poisson(keepalive: dict[str, Any]) -> dict[str, Any]:
    sc = scenario(
        [requests({"kind": "poisson", "rate": LAM}, D_REQ, keepalive)],
        HORIZON,
        time_wait=0,
    )
    return sim.run(sc, seed=11).summary["requests"]


def _renewal_check(req: dict[str, Any], mean_run: float, var_run: float) -> None:
    """Runs X_i (requests per connection) are i.i.d.; over n requests the number of
    connections C satisfies E[C] ~ n / E[X], Var[C] ~ n Var[X] / E[X]^3 (renewal CLT).
    Tolerance: 4 sd of C, which for the plain case is the binomial sd sqrt(n p (1-p))."""
    n = req["succeeded"]
    c = req["connections"]
    assert req["attempted"] == n  # a pool without a limit in reach never refuses
    assert n > 0.95 * LAM * HORIZON
    expected = n / mean_run
    sd = math.sqrt(n * var_run / mean_run**3)
    assert abs(c - expected) <= 4 * sd, (c, expected, sd)
    # the summary's ratio n / C, within what that band of C allows
    assert n / (expected + 4 * sd) <= req["requests_per_connection"] <= n / (expected - 4 * sd)


def test_requests_per_connection_is_e_to_the_lambda_t():
    """Poisson requests at lam = 2/s lasting 1 ms, idle timeout T = 1 s, no other limit.

    Each request continues the current connection with probability 1 - p (see _p_new), so
    a connection serves G ~ Geometric(p) requests: E[G] = 1/p = 7.30 (-> e^{lam T} = 7.389
    as d -> 0), Var[G] = (1-p)/p^2, and the connection count over n requests is
    1 + Binomial(n - 1, p): sd sqrt(n p (1-p)) = 109 for n = 100,000, so 4 sd is 3.2% of
    C = 13,700; the ratio n / C must lie within what that band of C allows.
    """
    p = _p_new()
    assert abs(math.exp(LAM * T_IDLE) * p - 1) < 0.014  # 1/p is e^{lam T} but for d
    req = _run_poisson({"max_connections": 100, "idle_timeout": T_IDLE})
    _renewal_check(req, 1 / p, (1 - p) / p**2)
    assert req["failed"] == 0 and req["waited"] == 0


def test_requests_per_connection_with_max_requests():
    """As above with max_requests = M = 3: a connection also closes after its M-th request,
    so it serves X = min(G, M) requests, G ~ Geometric(p):
        P(X = k) = (1-p)^{k-1} p (k < M),  P(X = M) = (1-p)^{M-1}
        E[X] = sum_{k<M} P(G > k) = (1 - (1-p)^M) / p = 2.60 for p = 0.137
    (2.61 with p = e^{-2}).  Var[X] from the same distribution; tolerance 4 sd of the
    renewal count (see _renewal_check)."""
    p = _p_new()
    m = 3
    probs = [(1 - p) ** (k - 1) * p for k in range(1, m)] + [(1 - p) ** (m - 1)]
    mean = sum(k * q for k, q in zip(range(1, m + 1), probs, strict=True))
    assert math.isclose(mean, (1 - (1 - p) ** m) / p)
    var = sum(k * k * q for k, q in zip(range(1, m + 1), probs, strict=True)) - mean**2
    req = _run_poisson({"max_connections": 100, "idle_timeout": T_IDLE, "max_requests": m})
    _renewal_check(req, mean, var)


# -- the pool against a heavy load --------------------------------------------------------

RATE = 500.0  # requests per second, each lasting 1 s: lam d = 500 in service (Little)
RUN = 30.0


def _heavy(keepalive: dict[str, Any] | None, events: bool = False) -> sim.Result:
    load = {
        "name": "req",
        "destination": "d",
        "arrival": {"kind": "poisson", "rate": RATE},
        "lifetime": {"kind": "fixed", "value": "1s"},
    }
    if keepalive is not None:
        load["keepalive"] = keepalive
    sc = scenario([load], RUN, bin=0.1, time_wait="60s")
    return sim.run(sc, seed=5, events=events)


def test_pool_cuts_connections_and_pressure():
    """500 req/s of 1 s each for 30 s on the default range (32768-60999: 28,232 ports),
    TIME_WAIT 60 s.

    Without keep-alive every request is a connection (~15,000) and nothing leaves
    TIME_WAIT within the run, so the peak pressure is ~15,000 / 28,232 = 0.53.

    With max_connections = 1000 the pool only opens a connection when every open one is
    busy and closes none (idle timeout 90 s > run), so the open count at t is the running
    maximum of N(s), the requests in service: N ~ Poisson(500) (M/D/inf, Little's law
    lam d = 500, sd 22.4).  Hence 500 <= connections = final open count <= 500 + 5 sd
    = 612 (a Poisson(500) above 612 has probability 3e-7 per second of run); no request
    waits (612 < 1000).  The time-average of the open count over t in [2, 30) is at
    least the time-average of N, whose sd is sqrt(500 / 28) = 4.2 (autocovariance
    500 (1 - |tau|)), so it is >= 500 - 4 * 4.2, and at most the final maximum.

    With max_connections = 100 the pool is overloaded (capacity 100 req/s): its 100
    connections open in the first fraction of a second and stay busy with a growing queue,
    never idle, so none closes: exactly 100 connections, close events 0, and requests wait.
    Peak pressure thus strictly falls: 0.53 > 612 / 28,232 > 100 / 28,232.
    """
    plain = _heavy(None).summary
    big_run = _heavy({"max_connections": 1000})
    big = big_run.summary
    small_run = _heavy({"max_connections": 100}, events=True)
    small = small_run.summary

    opened = [
        plain["connections"]["succeeded"],
        big["requests"]["connections"],
        small["requests"]["connections"],
    ]
    assert opened[0] > opened[1] > opened[2], opened
    peaks = [s["pressure"]["peak"] for s in (plain, big, small)]
    assert peaks[0] > peaks[1] > peaks[2], peaks
    assert abs(peaks[0] - RATE * RUN / 28232) < 0.05
    # without keep-alive every arrival was a connection, none refused
    assert plain["connections"]["failed"] == 0

    sd = math.sqrt(RATE)
    assert RATE <= opened[1] <= RATE + 5 * sd
    assert big["requests"]["waited"] == 0
    assert big["requests"]["failed"] == 0
    assert big["pressure"]["peak_ports"] == opened[1]  # all open at the end, none closed
    series = big_run.series
    steady = series.loc[series["t_start_s"] >= 2.0, "established"]
    assert RATE - 4 * math.sqrt(RATE / (RUN - 2)) <= steady.mean() <= opened[1]
    assert steady.max() == opened[1]

    closes = len(events_of(small_run, "close"))
    assert small["requests"]["waited"] > 0
    assert small["requests"]["connections"] <= 100 + closes
    assert closes == 0
    assert small["requests"]["connections"] == 100


# -- one connection, long requests: hand-worked timelines ---------------------------------


def _one_slot(keepalive: dict[str, Any]) -> sim.Result:
    """K = 1; a request every 1 s at t = 0, 1, ..., 29 (30 s run); each lasts 9.5 s.

    9.5 rather than 10 keeps a request's end off the next arrival's instant."""
    ka = {"max_connections": 1, **keepalive}
    sc = scenario([requests(constant("1s"), "9.5s", ka)], 30, bin=1.0, time_wait=0)
    return sim.run(sc, seed=1, events=True)


def test_one_slot_fail_when_full():
    """on_full = "fail": request 0 opens the connection, busy until 9.5; requests 1-9
    find it busy and fail; request 10 reuses it (idle since 9.5), busy until 19.5;
    11-19 fail; 20 reuses it until 29.5; 21-29 fail.  Served 0, 10, 20: 3; pool_full
    failures 27; one connection; nobody waits."""
    req = _one_slot({"on_full": "fail"}).summary["requests"]
    assert req["attempted"] == 30
    assert req["succeeded"] == 3
    assert req["failed"] == 27
    assert req["failed_by_reason"] == {"connect_error": 0, "pool_full": 27, "wait_timeout": 0}
    assert req["connections"] == 1
    assert req["waited"] == 0
    assert req["wait_s"]["max"] == 0.0


def test_one_slot_queue():
    """on_full = "wait": the connection is never idle, so request k starts at
    S_k = max(k, S_{k-1} + 9.5) = 9.5 k: served by t = 30 are k = 0..3 (starts 0, 9.5,
    19, 28.5), having waited 0, 8.5, 17, 25.5 s: wait max 25.5, mean over those that
    waited 17.  Requests 1-29 all queued (waited 29); 29 - 3 = 26 still wait at the end.

    The series' requests_waiting is a level at each 1 s bin end t = j (a bin boundary
    precedes the arrival at the same instant): arrivals 0..j-1, of which request 0 never
    queued and #{k >= 1: 9.5 k < j} = ceil(j / 9.5) - 1 were served, so
    waiting(j) = j - ceil(j / 9.5)."""
    result = _one_slot({"on_full": "wait"})
    req = result.summary["requests"]
    assert req["attempted"] == 30
    assert req["succeeded"] == 4
    assert req["failed"] == 0
    assert req["waited"] == 29
    assert req["waiting_at_end"] == 26
    assert req["connections"] == 1
    assert req["wait_s"]["max"] == 25.5
    assert math.isclose(req["wait_s"]["mean"], 17.0)
    series = result.series
    assert len(series) == 30
    expected = [j - math.ceil(j / 9.5) for j in range(1, 31)]
    assert series["requests_waiting"].tolist() == expected
    assert int(series["requests"].sum()) == 30
    assert int(series["requests_failed"].sum()) == 0


def test_one_slot_wait_timeout():
    """on_full = "wait", wait_timeout = 4.25 s (request k gives up at k + 4.25, never on
    an instant where the connection frees: those are multiples of 9.5).

    - 0 served at 0, until 9.5.  By 9.5, 1-5 timed out (5.25 .. 9.25); 6 is served (waited
      3.5), until 19.
    - At 19 alive are k > 14.75: 15 is served (waited 4), until 28.5; 7-14 timed out (8).
    - At 28.5 alive are k > 24.25: 25 is served (waited 3.5); 16-24 timed out (9).
    - At 30 26-29 still wait (their timeouts 30.25.. fall after the run).
    Served 4, timed out 5 + 8 + 9 = 22, waiting 4: 30 in all; wait max 4."""
    result = _one_slot({"on_full": "wait", "wait_timeout": 4.25})
    req = result.summary["requests"]
    assert req["attempted"] == 30
    assert req["succeeded"] == 4
    assert req["failed_by_reason"] == {"connect_error": 0, "pool_full": 0, "wait_timeout": 22}
    assert req["failed"] == 22
    assert req["waiting_at_end"] == 4
    assert req["waited"] == 29
    assert req["wait_s"]["max"] == 4.0
    assert int(result.series["requests_failed"].sum()) == 22


# -- closing rules: idle timeout, max_lifetime, max_requests --------------------------------


def test_idle_timeout_closes_at_last_use_plus_t_and_leaves_time_wait():
    """Requests at 1 and 4 (constant every 3 s from t = 1, stop 5), each 2 s, idle
    timeout 5 s, close = "client", TIME_WAIT 60 s.  Request 1 opens a connection, idle
    from 3; request 2 reuses it at 4 (idle 1 s < 5), idle from 6; it closes at
    6 + 5 = 11, the client holding TIME_WAIT 11 -> 71.  One connect, one close."""
    load = requests(
        constant("3s"), "2s", {"max_connections": 4, "idle_timeout": "5s"}, start=1, stop=5
    )
    result = sim.run(scenario([load], 100, time_wait="60s"), seed=1, events=True)
    assert events_of(result, "connect") == [1.0]
    assert events_of(result, "close") == [11.0]
    assert events_of(result, "time_wait") == [11.0]
    assert events_of(result, "time_wait_end") == [71.0]
    req = result.summary["requests"]
    assert req["succeeded"] == 2 and req["connections"] == 1


def test_reset_close_leaves_no_time_wait():
    """The same with close = "reset": the idle close at 11 frees the port at once."""
    load = requests(
        constant("3s"),
        "2s",
        {"max_connections": 4, "idle_timeout": "5s"},
        start=1,
        stop=5,
        close="reset",
    )
    result = sim.run(scenario([load], 100, time_wait="60s"), seed=1, events=True)
    assert events_of(result, "close") == [11.0]
    assert events_of(result, "time_wait") == []


def test_max_lifetime_retires_connections():
    """max_lifetime 3.2 s, requests every 1 s at 0..9 lasting 0.5 s (10 s run).
    A connection is closed after the request that ends at age >= 3.2: born 0, it serves
    0, 1, 2, 3 and closes at 3.5 (age 3.5); request 4 opens one born at 4, closing at 7.5;
    request 8 opens a third, serving 8 and 9 (idle from 9.5 with a timer at
    min(90, 8 + 3.2 - 9.5) -> 11.2, after the run).  Connects 0, 4, 8; closes 3.5, 7.5."""
    ka = {"max_connections": 4, "max_lifetime": 3.2}
    load = requests(constant("1s"), "0.5s", ka, close="reset")
    result = sim.run(scenario([load], 10), seed=1, events=True)
    assert events_of(result, "connect") == [0.0, 4.0, 8.0]
    assert events_of(result, "close") == [3.5, 7.5]
    req = result.summary["requests"]
    assert req["succeeded"] == 10 and req["connections"] == 3


def test_max_lifetime_closes_an_idle_connection_at_its_age():
    """One request at 0 lasting 1 s, max_lifetime 3.2 s, idle timeout 90 s: the idle
    connection's timer is min(90, 0 + 3.2 - 1) after 1, so it closes at exactly 3.2."""
    ka = {"max_connections": 4, "max_lifetime": 3.2}
    load = requests({"kind": "burst", "count": 1, "at": 0}, "1s", ka, close="reset")
    result = sim.run(scenario([load], 10), seed=1, events=True)
    assert events_of(result, "close") == [3.2]


def test_max_requests_one_is_a_connection_per_request():
    """max_requests = 1: every request's connection closes after it, so connections ==
    requests served, and each connection but those still busy at the end has closed."""
    ka = {"max_connections": 1000, "max_requests": 1}
    load = requests({"kind": "poisson", "rate": 50}, "0.2s", ka, close="reset")
    result = sim.run(scenario([load], 20), seed=3, events=True)
    req = result.summary["requests"]
    assert req["succeeded"] > 800  # ~1000 expected
    assert req["connections"] == req["succeeded"] == req["attempted"]
    assert req["requests_per_connection"] == 1.0
    connects = events_of(result, "connect")
    assert len(connects) == req["connections"]
    still_busy = sum(t >= 20 - 0.2 for t in connects)
    assert len(events_of(result, "close")) == len(connects) - still_busy


# -- connect failures ---------------------------------------------------------------------


def test_connect_failure_is_a_failed_request():
    """Ports 40000-40001; a plain load holds both from t = 0 forever; the keep-alive load's
    requests at 1, 2, 3 each find no idle connection, try to open one and are refused
    (EADDRNOTAVAIL): 3 requests failed as connect_error, 0 connections, and the refused
    opens free their pool slots (max_connections = 1 never blocks the next one)."""
    holder = {
        "name": "holder",
        "destination": "d",
        "arrival": {"kind": "burst", "count": 2, "at": 0},
        "lifetime": {"kind": "fixed", "value": "inf"},
    }
    load = requests(constant("1s"), "0.5s", {"max_connections": 1}, start=1, stop=4)
    result = sim.run(scenario([holder, load], 10, port_range=[40000, 40001]), seed=1)
    s = result.summary
    req = s["requests"]
    assert req["attempted"] == 3
    assert req["succeeded"] == 0
    assert req["failed_by_reason"] == {"connect_error": 3, "pool_full": 0, "wait_timeout": 0}
    assert req["connections"] == 0
    assert s["connections"]["failed_by_error"]["EADDRNOTAVAIL"] == 3
    per_load = s["loads"][1]["requests"]  # the counters; rates over the window are run-wide
    assert per_load == {k: req[k] for k in per_load}


# -- determinism --------------------------------------------------------------------------


def test_same_seed_same_summary():
    """A run is a function of scenario and seed: two runs agree on every summary field
    but the wall-clock time, and on the series; another seed gives other counts."""
    ka = {"max_connections": 20, "idle_timeout": "2s", "max_requests": 5, "wait_timeout": 1}
    load = {
        "destination": "d",
        "arrival": {"kind": "poisson", "rate": 40},
        "lifetime": {"kind": "exponential", "mean": "0.3s"},
        "keepalive": ka,
        "retry": {"kind": "exponential", "base": "50ms", "max_attempts": 4},
    }
    sc = scenario([load], 60, port_range=[40000, 40015], time_wait=1)

    def strip(summary: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in summary.items() if k != "run"}

    a, b = sim.run(sc, seed=9), sim.run(sc, seed=9)
    assert strip(a.summary) == strip(b.summary)
    assert a.series.equals(b.series)
    other = sim.run(sc, seed=10).summary
    assert other["requests"] != a.summary["requests"]


def _pool_scenario(**load_extra: Any) -> dict[str, Any]:
    load = {
        "destination": "api",
        "arrival": {"kind": "poisson", "rate": 1000},
        "lifetime": {"kind": "fixed", "value": 2},
    }
    load.update(load_extra)
    return {
        "name": "pool-regressions",
        "duration": 10,
        "hosts": [{"name": "client", "port_range": [40000, 40001]}],
        "destinations": [{"name": "api", "address": "10.0.0.10:443"}],
        "load": [load],
    }


def test_queued_requests_whose_opens_all_fail_do_not_recurse() -> None:
    """Two ports, connections used once: when one closes, each queued request tries to
    open its own and is refused at once (the ports are in TIME_WAIT).  Thousands queue, and
    each must fail as connect_error without nesting a call per request (RecursionError)."""
    sc = sim.parse_scenario(_pool_scenario(keepalive={"max_connections": 2, "max_requests": 1}))
    req = sim.run(sc, seed=1).summary["requests"]
    assert req["succeeded"] == 2  # the two ports, then TIME_WAIT holds them past the run
    assert req["failed_by_reason"]["connect_error"] > 1000
    assert req["attempted"] == req["succeeded"] + req["failed"] + req["waiting_at_end"]


def test_idle_timers_do_not_pile_up_with_requests() -> None:
    """5,000 requests/s of 20 ms on a pool with a 90 s idle timeout: ~100 connections go
    idle 5,000 times a second.  At most one idle timer per connection is pending, so the
    event queue holds about connections + requests in flight, not rate x idle timeout
    (450,000)."""
    from sim.engine import Model

    data = _pool_scenario(
        arrival={"kind": "poisson", "rate": 5000},
        lifetime={"kind": "exponential", "mean": "20ms"},
        keepalive={"max_connections": 512, "idle_timeout": "90s"},
    )
    data["hosts"][0].pop("port_range")
    model = Model(sim.parse_scenario(data), seed=1, events=False)
    model.run()
    pending = len(model.env._queue)
    connections = model.flows[0].requests.connections
    assert connections < 512
    assert pending < 2 * connections + 1000


def test_the_pool_limit_is_per_destination_across_source_addresses() -> None:
    """Two source addresses, max_connections 1, on_full fail: a request that finds the one
    connection busy fails, and the next one (after it is idle) reuses it, whichever
    address it came from: never two connections to the destination at once."""
    data = _pool_scenario(
        arrival={"kind": "constant", "interval": 1},
        lifetime={"kind": "fixed", "value": 1.5},
        keepalive={"max_connections": 1, "on_full": "fail"},
    )
    data["hosts"][0] = {"name": "client", "addresses": ["192.0.2.1", "192.0.2.2"]}
    result = sim.run(sim.parse_scenario(data), events=True)
    req = result.summary["requests"]
    assert req["connections"] == 1
    # requests at 0, 1, ..., 9: 0 opens (busy to 1.5), 1 fails, 2 reuses (busy to 3.5), ...
    assert req["succeeded"] == 5 and req["failed_by_reason"]["pool_full"] == 5
