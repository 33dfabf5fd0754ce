"""The order of events with ``sim.engine.Arrivals``, which runs an arrival at once when it
is due before everything queued instead of sending it through SimPy's queue.

SimPy's rule (simpy.core.Environment.schedule / step, SimPy 4.1 documentation "Events"):
the queue is ordered by (time, priority, insertion id), so events at the same time and
priority are processed in the order they were scheduled (FIFO), and URGENT ones (a
process's start, the bin boundaries here) before NORMAL ones.  The shortcut must leave
that order unchanged.  Two checks, neither taking its expected values from the code
under test:

* a small timeline worked out by hand from that rule, with arrivals, lifetime ends,
  TIME_WAIT ends and bin boundaries falling on the same instants;
* larger runs compared, event by event and bin by bin, against the same model whose
  arrivals are a plain SimPy process (``env.process`` yielding ``env.timeout``: what the
  engine did before the shortcut), so every arrival goes through the queue.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator, Mapping
from typing import Any

import pytest
from simpy import Environment
from simpy.events import Event

import sim
import sim.engine

A = "10.0.0.1:443"
B = "10.0.0.2:443"


def _tie_scenario() -> sim.Scenario:
    """Every time is a multiple of 0.25 s (exact in binary floating point), so ties are
    exact.  Load b is listed first, so its start event precedes load a's."""
    return sim.parse_scenario(
        {
            "name": "order",
            "duration": 1.6,
            "bin": 0.5,
            # exact TIME_WAIT ends (no timer-wheel buckets)
            "hosts": [{"name": "h", "timer_wheel": False, "time_wait": 0.5}],
            "destinations": [{"name": "A", "address": A}, {"name": "B", "address": B}],
            "load": [
                {
                    "name": "b",
                    "destination": "B",
                    "arrival": {"kind": "burst", "at": 0.75, "count": 2},
                    "lifetime": {"kind": "fixed", "value": 0.25},
                },
                {
                    "name": "a",
                    "destination": "A",
                    "arrival": {"kind": "constant", "interval": 0.25},
                    "lifetime": {"kind": "fixed", "value": 0.5},
                },
            ],
        }
    )


# The timeline of _tie_scenario by hand.  Queue entries are (time, priority, id); ids are
# handed out in scheduling order.  Built: b's start (U), a's start (U), bin tick 0.5 (U).
#   t=0     b's start: next arrival 0.75 -> wake_b@0.75.  a's start: a0 connects (its close
#           @0.5 queued); a1 is due at 0.25, before anything queued (tick@0.5): it runs at
#           once (the shortcut); a2 @0.5 ties with the queued tick and close a0 -> queued
#           after them.
#   t=0.5   tick (URGENT); close a0 (TIME_WAIT until 1.0); connect a2 (its close @1.0).
#           a3 @0.75 ties with wake_b (queued earlier) -> queued after it.
#   t=0.75  wake_b: b0, b1 connect (closes @1.0, queued after close a2); close a1 (TIME_WAIT
#           until 1.25); connect a3 (close @1.25); a4 @1.0 -> after the tick and the closes.
#   t=1.0   tick: the bin closes, its TIME_WAIT settling excludes the end instant; close a2
#           first settles a0's TIME_WAIT end (due 1.0), then closes; b0, b1 close (TIME_WAIT
#           until 1.5); connect a4 (close @1.5).
#   t=1.25  close a3 settles a1's TIME_WAIT end, closes; connect a5.
#   t=1.5   tick; close a4 settles the TIME_WAIT ends due at 1.5 in the order they began
#           (a2, b0, b1), closes; connect a6.  a's next arrival, 1.75, is past the end (1.6).
HAND_TIMELINE = [
    (0.0, "connect", A),
    (0.25, "connect", A),
    (0.5, "close", A),
    (0.5, "time_wait", A),
    (0.5, "connect", A),
    (0.75, "connect", B),
    (0.75, "connect", B),
    (0.75, "close", A),
    (0.75, "time_wait", A),
    (0.75, "connect", A),
    (1.0, "time_wait_end", A),
    (1.0, "close", A),
    (1.0, "time_wait", A),
    (1.0, "close", B),
    (1.0, "time_wait", B),
    (1.0, "close", B),
    (1.0, "time_wait", B),
    (1.0, "connect", A),
    (1.25, "time_wait_end", A),
    (1.25, "close", A),
    (1.25, "time_wait", A),
    (1.25, "connect", A),
    (1.5, "time_wait_end", A),
    (1.5, "time_wait_end", B),
    (1.5, "time_wait_end", B),
    (1.5, "close", A),
    (1.5, "time_wait", A),
    (1.5, "connect", A),
]


def test_tied_events_follow_simpys_fifo_rule_by_hand() -> None:
    """The event log and the attempts per bin of the hand-worked timeline above: an
    arrival tied with a queued close or a bin boundary comes after it, and the one arrival
    due before everything queued (a1) is not delayed."""
    result = sim.run(_tie_scenario(), events=True)
    log = result.events
    got = list(zip(log["time_s"].tolist(), log["event"], log["destination"], strict=True))
    assert got == HAND_TIMELINE
    # bins [0, 0.5) [0.5, 1) [1, 1.5) [1.5, 1.6): a0 a1 | a2 a3 b0 b1 | a4 a5 | a6
    assert result.series["attempts"].tolist() == [2, 4, 2, 1]
    # a connection's port is the one its close and TIME_WAIT name: the first connect (a0)
    # and the first close are the same socket, as are the close and TIME_WAIT rows
    ports = log["local_port"].tolist()
    assert ports[0] == ports[2] == ports[3] == ports[10]


def _process_arrivals(env: Environment, arrive: Callable[[], object], times: Iterator[float]):
    """The reference: arrivals as a plain SimPy process, each through the queue."""

    def process() -> Generator[Event, Any, None]:
        for t in times:
            delay = t - env.now
            if delay > 0:
                yield env.timeout(delay)
            arrive()

    return env.process(process())


def _busy_scenario(timer_wheel: bool) -> sim.Scenario:
    """Many interleavings: Poisson and constant loads on a 100-port range that fills up
    (failures), exponential lifetimes, a burst on a bin boundary, a load spread over two
    destinations (the flow's own dispatch) and a fleet; constant loads tie with each other
    and with the bins; with the timer wheel, TIME_WAIT ends fall into shared buckets.
    The Poisson loads stop at 6 and 7 s: after that only the constant loads and the burst
    run, whose arrivals often tie with the first event queued (with Poisson traffic in
    between, the first event queued is almost never at the same instant)."""
    dests = [
        {"name": "A", "address": A},
        {"name": "B", "address": B},
        {"name": "C", "address": "10.0.0.3:80"},
    ]
    return sim.parse_scenario(
        {
            "name": "busy",
            "duration": 12.0,
            "bin": 0.5,
            "hosts": [
                {
                    "name": "h",
                    "timer_wheel": timer_wheel,
                    "time_wait": 1.0,
                    "port_range": [40000, 40099],
                },
                {"name": "pods", "count": 4, "address": "10.244.1.2/24", "time_wait": 2.0},
            ],
            "destinations": dests,
            "load": [
                {
                    "name": "poisson",
                    "host": "h",
                    "destination": "A",
                    "arrival": {"kind": "poisson", "rate": 60},
                    "stop": 6.0,
                    "lifetime": {"kind": "exponential", "mean": 0.5},
                },
                {
                    "name": "tick-a",
                    "host": "h",
                    "destination": "B",
                    "arrival": {"kind": "constant", "interval": 0.125},
                    "lifetime": {"kind": "fixed", "value": 0.375},
                },
                {
                    "name": "tick-b",
                    "host": "h",
                    "destinations": ["B", "C"],
                    "arrival": {"kind": "constant", "interval": 0.25},
                    "lifetime": {"kind": "fixed", "value": 0.5},
                },
                {
                    "name": "burst",
                    "host": "h",
                    "destination": "C",
                    "arrival": {"kind": "burst", "at": 9.0, "count": 40},
                    "lifetime": {"kind": "fixed", "value": 1.0},
                },
                {
                    "name": "fleet",
                    "host": "pods",
                    "destination": "A",
                    "arrival": {"kind": "poisson", "rate": 40},
                    "start": 2.0,
                    "stop": 7.0,
                    "lifetime": {"kind": "exponential", "mean": 0.2},
                },
            ],
        }
    )


def _strip_wall(summary: Mapping[str, object]) -> dict[str, object]:
    return {k: v for k, v in summary.items() if k != "run"}


@pytest.mark.parametrize("timer_wheel", [False, True])
def test_shortcut_matches_a_plain_simpy_process(
    timer_wheel: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same events, same times, same order, same bins and summary as arrivals sent through
    SimPy's queue one by one.  The run exercises what matters: arrivals run at once and
    arrivals tied with queued events, and exhaustion (failures)."""
    sc = _busy_scenario(timer_wheel)
    fast = sim.run(sc, events=True)
    monkeypatch.setattr(sim.engine, "Arrivals", _process_arrivals)
    reference = sim.run(sc, events=True)

    ours, theirs = fast.events, reference.events
    assert len(theirs) > 2000
    assert (theirs["event"] == "fail").sum() > 0  # the range did fill up
    # each host's rows are in time order (TIME_WAIT ends are settled lazily, when their
    # own host next acts, so rows of different hosts can interleave out of time order)
    for _, rows in theirs.groupby(["host", "local_address"]):
        times = rows["time_s"].to_numpy()
        assert (times[1:] >= times[:-1]).all()
    times = theirs["time_s"].to_numpy()
    assert (times[1:] == times[:-1]).sum() > 1000  # with many exact ties
    assert ours.equals(theirs)
    assert fast.series.equals(reference.series)
    assert _strip_wall(fast.summary) == _strip_wall(reference.summary)
