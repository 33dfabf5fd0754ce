"""Arrival processes and lifetime distributions, checked statistically with fixed seeds.

Conventions (each test says which it uses):

* A Poisson count with mean E passes when it lies within 4 standard deviations,
  |N - E| < 4 sqrt(E) (a false alarm about once in 16,000 seeds; the seeds are fixed, so a
  test either always passes or always fails).  A mean of R independent replicates passes
  within 4 standard errors, 4 sqrt(E / R).
* Counts in many bins (or many replicates) with known means E_i are judged by Pearson's
  statistic X = sum (N_i - E_i)^2 / E_i against the chi-square distribution with as many
  degrees of freedom as bins (the E_i are not fitted).  Two-sided at p = 0.001: a process
  whose variance is too small (too regular) fails as surely as one whose mean is off.
* Sample means of lifetimes pass within 4 standard errors, the error being the sample's
  (or the distribution's) standard deviation over sqrt(n); an empirical quantile passes
  when the fraction of samples below it is within 4 binomial standard errors.

The expected values are computed independently of ``sim.workload.arrivals`` (hand
integrals, or a numerical integral of the rate written out here) and compared with
``expected()`` as well, so that a wrong ``expected()`` cannot hide a wrong
generator or the other way round.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import sim
from sim.config.types import (
    Burst,
    ConstantArrivalSpec,
    Diurnal,
    Exponential,
    LogNormal,
    OnOff,
    Pareto,
    Poisson,
    Schedule,
    Uniform,
)
from sim.randomness import Stream
from sim.workload.arrivals import arrival_process
from sim.workload.lifetimes import sampler
from tests.stats import chi2_sf

P_TWO_SIDED = 0.001  # each tail of a chi-square test
SIGMAS = 4.0  # tolerance of count and mean checks, in standard deviations / errors


# ---- statistics helpers -----------------------------------------------------------------


def test_chi2_helper_matches_tables() -> None:
    """The helper against textbook critical values (5 % and 0.1 % points)."""
    assert chi2_sf(3.841, 1) == pytest.approx(0.05, rel=1e-3)
    assert chi2_sf(13.816, 2) == pytest.approx(0.001, rel=1e-3)
    assert chi2_sf(18.307, 10) == pytest.approx(0.05, rel=1e-3)
    assert chi2_sf(124.342, 100) == pytest.approx(0.05, rel=1e-3)
    assert chi2_sf(29.588, 10) == pytest.approx(0.001, rel=2e-3)


def assert_poisson_bins(observed: Sequence[int], expected: Sequence[float], what: str) -> None:
    """Pearson's chi-square, two-sided at P_TWO_SIDED, over the bins with E > 0; bins with
    E == 0 must be empty."""
    obs = np.asarray(observed, dtype=float)
    exp = np.asarray(expected, dtype=float)
    empty = exp <= 1e-12
    assert np.all(obs[empty] == 0), f"{what}: arrivals where the rate is zero: {obs[empty]}"
    stat = float(np.sum((obs[~empty] - exp[~empty]) ** 2 / exp[~empty]))
    dof = int(np.count_nonzero(~empty))
    p = chi2_sf(stat, dof)
    assert P_TWO_SIDED < p < 1 - P_TWO_SIDED, (
        f"{what}: chi-square {stat:.1f} on {dof} bins, p = {p:.2g}"
    )


def assert_count(n: int, expected: float, what: str) -> None:
    """One Poisson count within SIGMAS standard deviations of its mean."""
    assert abs(n - expected) < SIGMAS * math.sqrt(expected), (
        f"{what}: {n} arrivals, expected {expected:.1f} +- {SIGMAS} x {math.sqrt(expected):.1f}"
    )


def stream(seed: int) -> Stream:
    return Stream(np.random.SeedSequence(seed))


def times_of(spec: Any, seed: int, start: float, stop: float) -> np.ndarray:
    """Arrival times in [start, stop), checked to be inside the window and in order."""
    times = np.array(list(arrival_process(spec).times(stream(seed), start, stop)), dtype=float)
    if len(times):
        assert times[0] >= start and times[-1] < stop, "times outside [start, stop)"
        assert np.all(np.diff(times) >= 0), "times not in order"
    return times


def integral(rate: Callable[[np.ndarray], np.ndarray], a: float, b: float) -> float:
    """A numerical integral of a smooth rate over [a, b] (trapezoid, 20,001 points; the
    error is far below the statistical tolerance of any test here)."""
    t = np.linspace(a, b, 20_001)
    return float(np.trapezoid(rate(t), t))


# ---- independent reference rates ----------------------------------------------------------


def schedule_integral(points: list[tuple[float, float]], shape: str, a: float, b: float) -> float:
    """The integral of a schedule's rate over [a, b], segment by segment: zero before the
    first point, the last rate after the last point, each segment held (step) or ramped
    (linear, exact by the trapezoid rule on a straight line)."""
    total = 0.0
    pieces = [*points, (math.inf, points[-1][1])]
    for (t0, r0), (t1, r1) in itertools.pairwise(pieces):
        lo, hi = max(a, t0), min(b, t1)
        if hi <= lo:
            continue
        if shape == "step" or math.isinf(t1):
            total += r0 * (hi - lo)
        else:

            def r(t: float, t0: float = t0, r0: float = r0, t1: float = t1, r1: float = r1):
                return r0 + (r1 - r0) * (t - t0) / (t1 - t0)

            total += (hi - lo) * (r(lo) + r(hi)) / 2
    return total


def diurnal_rate(mean: float, amplitude: float, period: float, peak: float):
    def rate(t: np.ndarray) -> np.ndarray:
        return mean * (1 + amplitude * np.cos(2 * np.pi * (t - peak) / period))

    return rate


# ---- counts in a window: every Poisson-type kind -------------------------------------------

# (id, spec, start, stop, expected count worked out by hand)
REPLICATED = [
    ("poisson", Poisson(kind="poisson", rate=7), 2.0, 12.0, 70.0),
    # cycles of 3 s from t = 1: on [1, 2), [4, 5), [7, 8), then [10, 10.5) cut by stop
    ("onoff", OnOff(kind="onoff", rate=20, on=1, off=2), 1.0, 10.5, 20 * 3.5),
    # 3 s at 5/s in [1, 4), nothing in [4, 6), 4 s at 12/s in [6, 10)
    (
        "schedule-step",
        Schedule(kind="schedule", points=[(0, 5), (4, 0), (6, 12)]),
        1.0,
        10.0,
        15 + 48.0,
    ),
    # triangle 0 -> 20 -> 0 over [2, 8): area 60; zero before 2 and after 8
    (
        "schedule-linear",
        Schedule(kind="schedule", points=[(2, 0), (6, 20), (8, 0)], shape="linear"),
        0.0,
        10.0,
        60.0,
    ),
    (
        "diurnal",
        Diurnal(kind="diurnal", mean=7, amplitude=0.9, period=4, peak=1),
        0.3,
        10.3,
        integral(diurnal_rate(7, 0.9, 4, 1), 0.3, 10.3),
    ),
]


@pytest.mark.parametrize(
    ("spec", "start", "stop", "hand"),
    [pytest.param(*case[1:], id=case[0]) for case in REPLICATED],
)
def test_count_in_window_is_poisson_with_expected_count(
    spec: Any, start: float, stop: float, hand: float
) -> None:
    """400 replicates (seeds 0..399) of the count in [start, stop): ``expected()``
    equals the hand-computed mean (to 1e-6 relative), the replicates' mean is within 4
    standard errors of it, and their dispersion sum (N_r - E)^2 / E is chi-square with
    400 degrees of freedom (two-sided, p = 0.001): the variance equals the mean."""
    assert arrival_process(spec).expected(start, stop) == pytest.approx(hand, rel=1e-6)
    replicates = 400
    counts = np.array([len(times_of(spec, seed, start, stop)) for seed in range(replicates)])
    assert abs(counts.mean() - hand) < SIGMAS * math.sqrt(hand / replicates), counts.mean()
    assert_poisson_bins(counts, [hand] * replicates, f"{spec.kind} replicate counts")


def test_poisson_counts_in_one_second_bins() -> None:
    """One run of 40/s over [0, 500): the total is within 4 sd of 20,000 and the 500
    one-second counts pass the two-sided chi-square test against 40 each (independent
    Poisson counts: the index of dispersion is 1)."""
    spec = Poisson(kind="poisson", rate=40)
    times = times_of(spec, 11, 0.0, 500.0)
    assert_count(len(times), arrival_process(spec).expected(0.0, 500.0), "poisson total")
    counts, _ = np.histogram(times, bins=np.arange(0, 501))
    assert_poisson_bins(counts, [40.0] * 500, "poisson 1 s bins")


# ---- constant and burst: exact ---------------------------------------------------------


@pytest.mark.parametrize(
    ("interval", "start", "stop", "count"),
    [
        (0.5, 0.0, 10.0, 20),  # a multiple: the arrival at stop is excluded
        (0.5, 0.0, 10.1, 21),  # just past: it is included
        (0.25, 3.0, 4.0, 4),
        (2.0, 1.0, 2.0, 1),  # shorter than one interval: the one at start
        (0.001, 0.0, 1.0, 1000),
    ],
)
def test_constant_is_exact(interval: float, start: float, stop: float, count: int) -> None:
    """``constant`` yields start + i * interval for i = 0 .. count - 1 exactly (binary
    fractions, so the arithmetic is exact) and ``expected()`` says count."""
    spec = ConstantArrivalSpec(kind="constant", interval=interval)
    times = list(arrival_process(spec).times(stream(0), start, stop))
    assert times == [start + i * interval for i in range(count)]
    assert arrival_process(spec).expected(start, stop) == count


def test_constant_times_stay_inside_the_half_open_window() -> None:
    """``times()`` promises start <= t < stop.  For decimal windows and intervals,
    as users write them (start = "100ms", stop = "400ms", interval = "100ms": arrivals at
    0.1, 0.2, 0.3 s, three of them), every yielded time must be below stop and their
    number must equal ``expected()``.  Checked over windows [a/10, b/10) for
    0 <= a < 20, a < b < a + 40, intervals 0.1, 0.3 and 0.7 s."""
    bad = []
    for interval in (0.1, 0.3, 0.7):
        spec = ConstantArrivalSpec(kind="constant", interval=interval)
        for a in range(20):
            for b in range(a + 1, a + 40):
                start, stop = a / 10, b / 10
                times = list(arrival_process(spec).times(stream(0), start, stop))
                outside = [t for t in times if not start <= t < stop]
                if outside or len(times) != arrival_process(spec).expected(start, stop):
                    bad.append((interval, start, stop, len(times), outside))
    assert not bad, f"{len(bad)} windows, e.g. (interval, start, stop, n, outside) {bad[:3]}"


@pytest.mark.parametrize(
    ("at", "start", "stop", "inside"),
    [
        (5.0, 0.0, 10.0, True),
        (0.0, 0.0, 10.0, True),
        (10.0, 0.0, 10.0, False),
        (2.0, 3.0, 9.0, False),
    ],
)
def test_burst_is_exact(at: float, start: float, stop: float, inside: bool) -> None:
    """A burst of 37 at ``at``: all 37 at that very time if start <= at < stop, else
    none, and ``expected()`` agrees."""
    spec = Burst(kind="burst", count=37, at=at)
    times = list(arrival_process(spec).times(stream(0), start, stop))
    assert times == ([at] * 37 if inside else [])
    assert arrival_process(spec).expected(start, stop) == (37 if inside else 0)


# ---- on/off --------------------------------------------------------------------------------


def test_onoff_is_silent_when_off_and_poisson_per_on_period() -> None:
    """rate 50/s, on 2 s, off 3 s, load window [1, 201): 40 cycles, on periods
    [1 + 5c, 3 + 5c).  No arrival falls in an off period (exact); the 40 on-period counts
    pass the two-sided chi-square test against 100 each; the total is within 4 sd of
    ``expected()`` = 4,000."""
    spec = OnOff(kind="onoff", rate=50, on=2, off=3)
    start, stop = 1.0, 201.0
    times = times_of(spec, 5, start, stop)
    phase = (times - start) % 5.0
    assert np.all(phase < 2.0), f"arrivals in off periods at {times[phase >= 2.0][:5]}"
    cycle = ((times - start) // 5.0).astype(int)
    counts = np.bincount(cycle, minlength=40)
    assert len(counts) == 40
    assert arrival_process(spec).expected(start, stop) == pytest.approx(4000)
    assert_count(len(times), 4000, "onoff total")
    assert_poisson_bins(counts, [100.0] * 40, "onoff per on period")
    # within an on period the process is homogeneous: 4 bins of 0.5 s
    within, _ = np.histogram(phase, bins=[0, 0.5, 1.0, 1.5, 2.0])
    assert_poisson_bins(within, [1000.0] * 4, "onoff within on periods")


@pytest.mark.parametrize(
    ("stop", "on_time"),
    [(2.0, 2.0), (4.0, 2.0), (6.0, 3.0), (10.0, 4.0), (11.5, 5.5), (12.5, 6.0)],
)
def test_onoff_expected_count_counts_on_time(stop: float, on_time: float) -> None:
    """on 2 s, off 3 s from a load starting at 0: on time in [0, stop) by hand (stop
    mid-off, mid-on, at a boundary), times the rate."""
    spec = OnOff(kind="onoff", rate=10, on=2, off=3)
    assert arrival_process(spec).expected(0.0, stop) == pytest.approx(10 * on_time)


# ---- schedule ------------------------------------------------------------------------------

STEP = [(10.0, 20.0), (30.0, 0.0), (50.0, 40.0), (70.0, 5.0)]
LINEAR = [(10.0, 0.0), (30.0, 40.0), (40.0, 40.0), (55.0, 0.0), (65.0, 0.0), (80.0, 30.0)]


@pytest.mark.parametrize(
    ("points", "shape", "start", "zero"),
    [
        pytest.param(STEP, "step", 0.0, [(0, 10), (30, 50)], id="step"),
        pytest.param(LINEAR, "linear", 0.0, [(0, 10), (55, 65)], id="linear"),
        pytest.param(STEP, "step", 25.0, [(30, 50)], id="step-from-25"),
        pytest.param(LINEAR, "linear", 17.3, [(55, 65)], id="linear-from-17.3"),
    ],
)
def test_schedule_counts_follow_the_integral_of_the_rate(
    points: list[tuple[float, float]], shape: str, start: float, zero: list[tuple[float, float]]
) -> None:
    """Rates held (step) or ramped (linear), with a zero-rate stretch, a ramp down to zero
    and back up (linear), and nothing before the first point.  Over [start, 100): counts in
    2.5 s sub-windows pass the two-sided chi-square test against the rate's integral over
    each (computed here segment by segment), which ``expected()`` and ``rate_at`` also
    match; where the rate is zero there is no arrival at all."""
    spec = Schedule(kind="schedule", points=points, shape=shape)
    stop = 100.0
    edges = np.arange(start, stop + 1e-9, 2.5)
    if edges[-1] < stop:
        edges = np.append(edges, stop)
    windows = list(itertools.pairwise(edges.tolist()))
    expected = [schedule_integral(points, shape, a, b) for a, b in windows]
    for (a, b), e in zip(windows, expected, strict=True):
        assert arrival_process(spec).expected(a, b) == pytest.approx(e, rel=1e-9, abs=1e-9)
    for t in (5.0, 10.0, 20.0, 29.9, 35.0, 47.5, 60.0, 75.0, 99.0):
        assert arrival_process(spec).rate_at(t) == pytest.approx(
            schedule_integral(points, shape, t, t + 1e-7) / 1e-7, rel=1e-5, abs=1e-5
        )
    times = times_of(spec, 3, start, stop)
    assert_count(len(times), sum(expected), f"{shape} total")
    counts, _ = np.histogram(times, bins=edges)
    assert_poisson_bins(counts, expected, f"{shape} from {start}")
    for a, b in zero:
        assert not np.any((times >= a) & (times < b)), f"arrivals in [{a}, {b}) at rate 0"


def test_schedule_before_the_first_point_gives_nothing() -> None:
    """A load window ending at the first point sees no arrival and expects none, whatever
    the shape (the rate is zero before the first point)."""
    for shape in ("step", "linear"):
        spec = Schedule(kind="schedule", points=[(10, 50), (20, 50)], shape=shape)
        for seed in range(20):
            assert times_of(spec, seed, 0.0, 10.0).size == 0
        assert arrival_process(spec).expected(0.0, 10.0) == 0
        assert arrival_process(spec).rate_at(9.999) == 0


def test_schedule_linear_ramp_down_to_zero_ends_the_arrivals() -> None:
    """points (0, 30) -> (10, 0), linear: the rate falls to zero at 10 s and stays there
    (the last rate holds).  Over [0, 1000): the count is within 4 sd of the triangle's area
    150; no arrival at or after 10 s; inside the ramp the times have density proportional
    to 10 - t: in 1 s bins the chi-square test passes against 30 * (10 - t) integrated."""
    spec = Schedule(kind="schedule", points=[(0, 30), (10, 0)], shape="linear")
    assert arrival_process(spec).expected(0.0, 1000.0) == pytest.approx(150.0)
    pooled: list[np.ndarray] = []
    for seed in range(20):
        times = times_of(spec, seed, 0.0, 1000.0)
        assert len(times) == 0 or times[-1] < 10.0, times[-1]
        pooled.append(times)
    all_times = np.concatenate(pooled)  # 20 independent runs: 3,000 expected
    assert_count(len(all_times), 20 * 150, "ramp-down total over 20 runs")
    counts, _ = np.histogram(all_times, bins=np.arange(0, 11))
    expected = [20 * schedule_integral([(0, 30), (10, 0)], "linear", a, a + 1) for a in range(10)]
    assert_poisson_bins(counts, expected, "ramp-down 1 s bins")


def test_schedule_step_holds_the_last_rate() -> None:
    """After the last point the last rate holds: (0, 0) -> (5, 8), step, over [0, 505):
    within 4 sd of 8 x 500 = 4,000, none before 5 s."""
    spec = Schedule(kind="schedule", points=[(0, 0), (5, 8)])
    times = times_of(spec, 9, 0.0, 505.0)
    assert times.size and times[0] >= 5.0
    assert_count(len(times), 4000, "step last rate")


# ---- diurnal -------------------------------------------------------------------------------


def test_diurnal_counts_in_phase_bins_follow_the_integral() -> None:
    """mean 40/s, amplitude 0.8, period 50 s, peak 15 s, over [0, 1000) = 20 periods.
    Arrivals folded into 25 phase bins of 2 s pass the two-sided chi-square test against
    20 x the rate's numerical integral over each bin; the total is within 4 sd of 40,000
    (= ``expected()``)."""
    spec = Diurnal(kind="diurnal", mean=40, amplitude=0.8, period=50, peak=15)
    rate = diurnal_rate(40, 0.8, 50, 15)
    expected = arrival_process(spec).expected(0, 1000)
    assert expected == pytest.approx(integral(rate, 0, 1000), rel=1e-6)
    assert expected == pytest.approx(40_000, rel=1e-9)
    times = times_of(spec, 21, 0.0, 1000.0)
    assert_count(len(times), 40_000, "diurnal total")
    counts, _ = np.histogram(times % 50.0, bins=np.arange(0, 51, 2))
    expected = [20 * integral(rate, a, a + 2) for a in range(0, 50, 2)]
    assert_poisson_bins(counts, expected, "diurnal phase bins")


@pytest.mark.parametrize(("peak", "where"), [(15.0, 15.0), (None, 25.0), (48.0, 48.0)])
def test_diurnal_peaks_where_configured(peak: float | None, where: float) -> None:
    """The density of phases is proportional to 1 + A cos(theta - peak), whose mean
    direction is the peak (half a period in by default).  The arrivals' circular mean
    phase lies within 4 standard errors of it (standard error sqrt(mean sin^2 / n) / R,
    R the mean resultant length, about 0.01 rad here); ``rate_at`` is highest there."""
    spec = Diurnal(kind="diurnal", mean=40, amplitude=0.8, period=50, peak=peak)
    times = times_of(spec, 4, 0.0, 1000.0)
    theta = 2 * np.pi * times / 50.0
    c, s = np.cos(theta).mean(), np.sin(theta).mean()
    resultant = math.hypot(c, s)
    # A / 2 for this density; the standard error of a mean cosine is sqrt((1/2 - R^2) / n),
    # about 0.003 for n = 40,000: 4 of them
    assert resultant == pytest.approx(0.4, abs=SIGMAS * math.sqrt((0.5 - 0.16) / len(times)))
    direction = math.atan2(s, c)
    se = math.sqrt(np.mean(np.sin(theta - direction) ** 2) / len(times)) / resultant
    gap = (direction - 2 * np.pi * where / 50.0 + np.pi) % (2 * np.pi) - np.pi
    assert abs(gap) < SIGMAS * se, f"peak at {direction * 50 / (2 * np.pi) % 50:.2f} s"
    assert arrival_process(spec).rate_at(where) == pytest.approx(40 * 1.8)
    assert arrival_process(spec).rate_at(where + 25.0) == pytest.approx(40 * 0.2)


# ---- trace ---------------------------------------------------------------------------------

TRACE = """time_s,destination,lifetime_s,host
0.5,api,1,h1
1.0,api,0.25,h1
1.0,10.0.1.2:80,inf,h2
1.1,10.0.1.1:80,2.5,h1
1.3000000000000003,api,inf,h2
2.2,api,inf,h2
2.2,api,0.1,h2
3.14159,10.0.1.3:80,1e-3,h1
3.14159,api,0.7,h1
7.77,api,inf,h2
9.999999,api,0.5,h1
10.0,api,1,h1
12.5,api,1,h2
"""
ADDRESSES = {"api": "10.0.0.1:443"}  # a row names a destination, or a set member's ip:port


def trace_scenario(tmp_path: Path, text: str = TRACE, **load: Any) -> sim.Scenario:
    (tmp_path / "trace.csv").write_text(text)
    return sim.parse_scenario(
        {
            "name": "trace",
            "duration": 20,
            "hosts": [
                {"name": "h1", "address": "192.0.2.1"},
                # two ports: api from h2 holds both from 2.2 s on (lifetime inf)
                {"name": "h2", "address": "192.0.2.2", "port_range": [40000, 40001]},
            ],
            "destinations": [
                {"name": "api", "address": "10.0.0.1:443"},
                {"name": "pool", "count": 3, "address": "10.0.1.0/24", "ports": [80]},
            ],
            "load": [
                {
                    "host": "h1",
                    "arrival": {"kind": "trace", "file": "trace.csv"},
                    "start": 1.0,
                    "stop": 10.0,
                    **load,
                }
            ],
        },
        "trace.toml",
        base=tmp_path,
    )


def trace_rows(text: str, start: float, stop: float) -> list[tuple[float, str, float, str]]:
    """The trace's rows in [start, stop), parsed here with float() like any CSV reader."""
    out = []
    for line in text.strip().splitlines()[1:]:
        t, dest, life, host = line.split(",")
        if start <= float(t) < stop:
            out.append((float(t), ADDRESSES.get(dest, dest), float(life), host))
    return out


def test_trace_attempt_times_are_the_file_times(tmp_path: Path) -> None:
    """``times()`` of a trace yields the file's times in [start, stop) exactly
    (duplicates kept, float values bit for bit) and ``expected()`` is their number."""
    sc = trace_scenario(tmp_path)
    spec = sc.load[0].arrival
    for start, stop in ((1.0, 10.0), (0.0, 100.0), (2.2, 3.14159), (13.0, 20.0)):
        want = [t for t, *_ in trace_rows(TRACE, start, stop)]
        assert list(arrival_process(spec).times(stream(0), start, stop)) == want
        assert arrival_process(spec).expected(start, stop) == len(want)


@pytest.mark.parametrize(
    "load_lifetime", [None, {"kind": "fixed", "value": 100}], ids=["column", "column-over-load"]
)
def test_trace_replay_through_a_run(tmp_path: Path, load_lifetime: dict[str, Any] | None) -> None:
    """A full run replays the trace exactly.  The connect and fail rows of the event log,
    in order, are the trace's rows in the load's window [1, 10): the same times (==), the
    row's host (and that host's address), the row's destination (a name resolved to its
    ip:port, or a set member).  Each successful row with a finite ``lifetime_s`` closes at
    exactly time + lifetime; those with ``inf`` never close.  h2 has two ports, so its
    third and fourth rows to api fail with EADDRNOTAVAIL (worked out by hand: 1.3 s and
    2.2 s hold both ports for ever).  A load ``lifetime`` (fixed 100 s) changes nothing:
    the column wins."""
    extra = {"lifetime": load_lifetime} if load_lifetime else {}
    sc = trace_scenario(tmp_path, **extra)
    result = sim.run(sc, seed=1, events=True)
    ev = result.events
    rows = trace_rows(TRACE, 1.0, 10.0)
    tries = ev[ev.event.isin(["connect", "fail"])]
    assert tries.time_s.tolist() == [t for t, *_ in rows]
    assert tries.host.tolist() == [h for *_, h in rows]
    assert tries.destination.tolist() == [d for _, d, _, _ in rows]
    assert tries.local_address.tolist() == [
        {"h1": "192.0.2.1", "h2": "192.0.2.2"}[h] for *_, h in rows
    ]
    failed = tries[tries.event == "fail"]
    assert list(zip(failed.time_s, failed.host, failed.error, strict=True)) == [
        (2.2, "h2", "EADDRNOTAVAIL"),
        (7.77, "h2", "EADDRNOTAVAIL"),
    ]
    assert result.summary["connections"]["attempted"] == len(rows)
    assert result.summary["connections"]["failed"] == 2
    # closes: keyed by (host, port, destination), unique here (no port is reused to the
    # same destination within the run: TIME_WAIT is 60 s)
    closes = ev[ev.event == "close"]
    close_at = {
        (h, int(p), d): t
        for t, h, p, d in zip(
            closes.time_s, closes.host, closes.local_port, closes.destination, strict=True
        )
    }
    assert len(close_at) == len(closes)
    wanted = {}
    connects = tries[tries.event == "connect"]
    life_of = [life for (t, d, life, h), e in zip(rows, tries.event, strict=True) if e == "connect"]
    for (t, h, p, d), life in zip(
        zip(connects.time_s, connects.host, connects.local_port, connects.destination, strict=True),
        life_of,
        strict=True,
    ):
        if math.isfinite(life):
            wanted[(h, int(p), d)] = t + life
    assert close_at == wanted


def test_trace_without_lifetime_column_uses_the_load_lifetime(tmp_path: Path) -> None:
    """Without a ``lifetime_s`` column the load's lifetime applies to every row: fixed 2 s,
    so every row closes at its time + 2 (h1 only, ample ports)."""
    text = "time_s,destination\n0.25,api\n1.5,10.0.1.1:80\n1.5,api\n4.75,api\n"
    (tmp_path / "t2.csv").write_text(text)
    sc = sim.parse_scenario(
        {
            "name": "trace2",
            "duration": 10,
            "destinations": [
                {"name": "api", "address": "10.0.0.1:443"},
                {"name": "pool", "count": 3, "address": "10.0.1.0/24", "ports": [80]},
            ],
            "load": [
                {
                    "arrival": {"kind": "trace", "file": "t2.csv"},
                    "lifetime": {"kind": "fixed", "value": 2},
                }
            ],
        },
        "t2.toml",
        base=tmp_path,
    )
    ev = sim.run(sc, seed=3, events=True).events
    assert ev[ev.event == "connect"].time_s.tolist() == [0.25, 1.5, 1.5, 4.75]
    assert ev[ev.event == "connect"].destination.tolist() == [
        "10.0.0.1:443",
        "10.0.1.1:80",
        "10.0.0.1:443",
        "10.0.0.1:443",
    ]
    assert sorted(ev[ev.event == "close"].time_s.tolist()) == [2.25, 3.5, 3.5, 6.75]


# ---- lifetimes -----------------------------------------------------------------------------

N = 200_000  # samples per distribution


def draw(spec: Any, seed: int, n: int = N) -> tuple[np.ndarray, Any]:
    dist = sampler(spec, stream(seed))
    return np.array([dist.sample() for _ in range(n)]), dist


def assert_mean(x: np.ndarray, mean: float, sd: float | None = None, what: str = "") -> None:
    """Sample mean within 4 standard errors (sd from the sample unless given)."""
    se = (sd if sd is not None else float(x.std(ddof=1))) / math.sqrt(len(x))
    assert abs(x.mean() - mean) < SIGMAS * se, f"{what}: {x.mean():.5g} vs {mean:.5g} +- {se:.2g}"


def assert_fraction_below(x: np.ndarray, q: float, p: float, what: str) -> None:
    """The fraction of samples below q within 4 binomial standard errors of p."""
    se = math.sqrt(p * (1 - p) / len(x))
    frac = float(np.mean(x < q))
    assert abs(frac - p) < SIGMAS * se, f"{what}: {frac:.5f} below {q:.4g}, expected {p}"


def test_fixed_lifetime() -> None:
    from sim.config.types import FixedLifetimeSpec

    dist = sampler(FixedLifetimeSpec(kind="fixed", value="2.5s"), stream(0))
    assert dist.mean == 2.5 and {dist.sample() for _ in range(100)} == {2.5}
    forever = sampler(FixedLifetimeSpec(kind="fixed", value="inf"), stream(0))
    assert forever.mean == math.inf and forever.sample() == math.inf


def test_exponential_lifetime_mean() -> None:
    """mean 2 s: ``.mean`` is 2, the sample mean is within 4 standard errors of it, and the
    median is 2 ln 2 (binomial check at the 50 % point)."""
    x, dist = draw(Exponential(kind="exponential", mean=2), 1)
    assert dist.mean == 2 and x.min() >= 0
    assert_mean(x, 2.0, what="exponential")
    assert_fraction_below(x, 2 * math.log(2), 0.5, "exponential median")


def test_lognormal_from_mean_and_p99() -> None:
    """mean 1 s, p99 8 s: the sample mean is within 4 standard errors of ``.mean`` = 1 and
    99 % of the samples (within 4 binomial standard errors) lie below 8 s."""
    spec = LogNormal(kind="lognormal", mean=1, p99=8)
    x, dist = draw(spec, 2)
    assert dist.mean == pytest.approx(1.0)
    assert_mean(x, 1.0, what="lognormal mean")
    assert_fraction_below(x, 8.0, 0.99, "lognormal p99")
    assert_fraction_below(x, math.exp(spec.mu), 0.5, "lognormal median e^mu")


def test_lognormal_mu_sigma_form_agrees() -> None:
    """The mu/sigma form with the mu and sigma solved from mean 1 s, p99 8 s gives back
    mean 1 and p99 8 (closed forms e^(mu + sigma^2/2), e^(mu + 2.326 sigma)); its samples'
    logs have mean mu and standard deviation sigma (4 standard errors; the sd's standard
    error is sigma / sqrt(2n) for a normal sample) and 99 % of them lie below 8 s."""
    solved = LogNormal(kind="lognormal", mean=1, p99=8)
    spec = LogNormal(kind="lognormal", mu=solved.mu, sigma=solved.sigma)
    assert spec.mean == pytest.approx(1.0, rel=1e-9)
    assert spec.p99 == pytest.approx(8.0, rel=1e-9)
    x, dist = draw(spec, 3)
    assert dist.mean == pytest.approx(1.0)
    logs = np.log(x)
    assert_mean(logs, solved.mu, sd=solved.sigma, what="log mean")
    assert abs(logs.std() - solved.sigma) < SIGMAS * solved.sigma / math.sqrt(2 * N)
    assert_fraction_below(x, 8.0, 0.99, "mu/sigma p99")
    # and the other way: mean and p99 derived from a chosen mu, sigma
    other = LogNormal(kind="lognormal", mu=0.5, sigma=0.4)
    assert other.mean == pytest.approx(math.exp(0.5 + 0.08))
    assert other.p99 == pytest.approx(math.exp(0.5 + 2.3263478740408408 * 0.4))


def test_pareto_mean_with_finite_variance() -> None:
    """shape 3, scale 1: mean 1.5 (= scale * shape / (shape - 1)), variance 0.75 (finite
    for shape > 2, so the standard error is sqrt(0.75 / n)); no sample below the scale.
    Given by ``mean`` instead, the same distribution (scale 1)."""
    spec = Pareto(kind="pareto", shape=3, scale=1)
    x, dist = draw(spec, 4)
    assert dist.mean == pytest.approx(1.5)
    assert x.min() >= 1.0
    assert_mean(x, 1.5, sd=math.sqrt(0.75), what="pareto shape 3")
    assert Pareto(kind="pareto", shape=3, mean=1.5).scale == pytest.approx(1.0)


def test_pareto_heavy_tail_median() -> None:
    """shape 1.5 (infinite variance: the sample mean converges too slowly to test), scale
    2: the median is scale * 2**(1/shape); the 90 % point scale * 10**(1/shape) (binomial
    checks)."""
    spec = Pareto(kind="pareto", shape=1.5, scale=2)
    x, dist = draw(spec, 5)
    assert dist.mean == pytest.approx(6.0)
    assert x.min() >= 2.0
    assert_fraction_below(x, 2 * 2 ** (1 / 1.5), 0.5, "pareto median")
    assert_fraction_below(x, 2 * 10 ** (1 / 1.5), 0.9, "pareto p90")


def test_uniform_lifetime() -> None:
    """low 2, high 5: every sample in [2, 5], mean 3.5 within 4 standard errors (sd
    3 / sqrt(12)), a quarter below 2.75."""
    x, dist = draw(Uniform(kind="uniform", low=2, high="5s"), 6)
    assert dist.mean == 3.5
    assert x.min() >= 2.0 and x.max() <= 5.0
    assert_mean(x, 3.5, sd=3 / math.sqrt(12), what="uniform")
    assert_fraction_below(x, 2.75, 0.25, "uniform quartile")


def test_empirical_draws_file_values_with_the_files_mean(tmp_path: Path) -> None:
    """Samples file (a header, then 0.5, 1, 1, 2.5, 10): draws are only those values, in
    proportion 1:2:1:1 (two-sided chi-square, p = 0.001), ``.mean`` is the file's mean 3.0
    and the sample mean is within 4 standard errors of it."""
    (tmp_path / "life.csv").write_text("lifetime_s\n0.5\n1\n1\n2.5\n10\n")
    sc = sim.parse_scenario(
        {
            "name": "emp",
            "duration": 1,
            "destinations": [{"name": "a", "address": "10.0.0.1:443"}],
            "load": [
                {
                    "destination": "a",
                    "arrival": {"kind": "poisson", "rate": 1},
                    "lifetime": {"kind": "empirical", "file": "life.csv"},
                }
            ],
        },
        "emp.toml",
        base=tmp_path,
    )
    spec = sc.load[0].lifetime
    assert spec.mean == pytest.approx(3.0)
    x, dist = draw(spec, 7)
    assert dist.mean == pytest.approx(3.0)
    values, counts = np.unique(x, return_counts=True)
    assert values.tolist() == [0.5, 1.0, 2.5, 10.0]
    assert_poisson_bins(counts, [N / 5, 2 * N / 5, N / 5, N / 5], "empirical frequencies")
    assert_mean(x, 3.0, what="empirical")


# ---- bad inputs: ScenarioError naming the key ---------------------------------------------


def problems(load: dict[str, Any], base: Path | None = None) -> str:
    """The ScenarioError text for a one-load scenario (fails the test if none is raised)."""
    data = {
        "name": "bad",
        "duration": 10,
        "destinations": [{"name": "a", "address": "10.0.0.1:443"}],
        "load": [load],
    }
    with pytest.raises(sim.ScenarioError) as info:
        sim.parse_scenario(data, "bad.toml", base=base)
    return str(info.value)


def poisson_load(**lifetime: Any) -> dict[str, Any]:
    return {"destination": "a", "arrival": {"kind": "poisson", "rate": 1}, "lifetime": lifetime}


def trace_load(file: str = "t.csv", **extra: Any) -> dict[str, Any]:
    return {"arrival": {"kind": "trace", "file": file}, **extra}


def test_error_lognormal_p99_below_mean() -> None:
    text = problems(poisson_load(kind="lognormal", mean=2, p99=1))
    assert "bad.toml: load[0].lifetime: p99 must be above mean" in text


def test_error_lognormal_p99_equal_to_mean() -> None:
    text = problems(poisson_load(kind="lognormal", mean=2, p99=2))
    assert "load[0].lifetime: p99 must be above mean" in text


def test_error_lognormal_p99_too_far_above_mean() -> None:
    """p99 / mean above e^(z^2/2) ~ 15 has no lognormal."""
    text = problems(poisson_load(kind="lognormal", mean=1, p99=16))
    assert "load[0].lifetime: p99 must be above mean and at most ~15x" in text


def test_error_lognormal_forms_disagree() -> None:
    text = problems(poisson_load(kind="lognormal", mean=5, mu=0, sigma=1))
    assert "load[0].lifetime: give mean and p99, or mu and sigma; mean disagrees" in text


def test_error_lognormal_mean_alone() -> None:
    text = problems(poisson_load(kind="lognormal", mean=5))
    assert "load[0].lifetime: give mean and p99, or mu and sigma" in text


def test_error_pareto_shape_at_most_one() -> None:
    assert "load[0].lifetime.shape:" in problems(poisson_load(kind="pareto", shape=1, scale=1))


def test_error_pareto_without_scale_or_mean() -> None:
    text = problems(poisson_load(kind="pareto", shape=2))
    assert "load[0].lifetime: give scale (the minimum) or mean" in text


def test_error_uniform_high_not_above_low() -> None:
    text = problems(poisson_load(kind="uniform", low=3, high=3))
    assert "load[0].lifetime: high must be above low" in text


def test_error_schedule_times_equal() -> None:
    load = {
        "destination": "a",
        "arrival": {"kind": "schedule", "points": [[0, 1], [5, 2], [5, 3]]},
        "lifetime": {"kind": "fixed", "value": 1},
    }
    assert "load[0].arrival.points: times must increase" in problems(load)


def test_error_schedule_times_decreasing() -> None:
    load = {
        "destination": "a",
        "arrival": {"kind": "schedule", "points": [[10, 1], [5, 2]], "shape": "linear"},
        "lifetime": {"kind": "fixed", "value": 1},
    }
    assert "load[0].arrival.points: times must increase" in problems(load)


def test_error_schedule_negative_rate() -> None:
    load = {
        "destination": "a",
        "arrival": {"kind": "schedule", "points": [[0, 1], [5, -2]]},
        "lifetime": {"kind": "fixed", "value": 1},
    }
    assert "load[0].arrival.points" in problems(load)


def test_error_diurnal_amplitude_above_one() -> None:
    load = {
        "destination": "a",
        "arrival": {"kind": "diurnal", "mean": 1, "amplitude": 1.5},
        "lifetime": {"kind": "fixed", "value": 1},
    }
    assert "load[0].arrival.amplitude:" in problems(load)


def test_error_onoff_zero_off() -> None:
    load = {
        "destination": "a",
        "arrival": {"kind": "onoff", "rate": 1, "on": 1, "off": 0},
        "lifetime": {"kind": "fixed", "value": 1},
    }
    assert "load[0].arrival.off:" in problems(load)


def test_error_trace_file_missing(tmp_path: Path) -> None:
    text = problems(trace_load("nope.csv"), tmp_path)
    assert "load[0].arrival.file: cannot read" in text and "nope.csv" in text


def test_error_trace_unsorted(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("time_s,destination,lifetime_s\n2,a,1\n1,a,1\n")
    text = problems(trace_load(), tmp_path)
    assert "load[0].arrival.file:" in text
    assert "t.csv line 3: time_s: times must not go back" in text


def test_error_trace_bad_header(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("time,destination,lifetime_s\n1,a,1\n")
    text = problems(trace_load(), tmp_path)
    assert "load[0].arrival.file:" in text
    assert "line 1: header must name time_s and destination" in text


def test_error_trace_empty(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("")
    assert "load[0].arrival.file:" in (text := problems(trace_load(), tmp_path))
    assert "empty; expected a header line" in text


def test_error_trace_header_only(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("time_s,destination\n")
    assert "no rows after the header" in problems(trace_load(lifetime=_fixed()), tmp_path)


def test_error_trace_negative_time(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("time_s,destination\n-1,a\n")
    text = problems(trace_load(lifetime=_fixed()), tmp_path)
    assert "line 2: time_s: must be finite and >= 0" in text


def test_error_trace_bad_lifetime(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("time_s,destination,lifetime_s\n1,a,soon\n")
    assert "line 2: lifetime_s: not a number" in problems(trace_load(), tmp_path)


def test_error_trace_unknown_destination(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("time_s,destination,lifetime_s\n1,a,1\n2,elsewhere,1\n")
    text = problems(trace_load(), tmp_path)
    assert "load[0].arrival.file: destination elsewhere is not a destination" in text


def test_error_trace_unknown_host(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("time_s,destination,lifetime_s,host\n1,a,1,ghost\n")
    assert "load[0].arrival.file: no such host ghost" in problems(trace_load(), tmp_path)


def test_error_trace_without_lifetimes(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("time_s,destination\n1,a\n")
    text = problems(trace_load(), tmp_path)
    assert "load[0].lifetime: required (the trace has no lifetime_s column)" in text


def test_error_trace_with_destination(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("time_s,destination,lifetime_s\n1,a,1\n")
    text = problems(trace_load(destination="a"), tmp_path)
    assert "load[0].destination: a trace names each request's destination itself" in text


def _fixed() -> dict[str, Any]:
    return {"kind": "fixed", "value": 1}


def test_error_empirical_file_empty(tmp_path: Path) -> None:
    (tmp_path / "s.csv").write_text("lifetime_s\n\n")
    text = problems(poisson_load(kind="empirical", file="s.csv"), tmp_path)
    assert "load[0].lifetime.file:" in text and "no samples" in text


def test_error_empirical_file_missing(tmp_path: Path) -> None:
    text = problems(poisson_load(kind="empirical", file="gone.csv"), tmp_path)
    assert "load[0].lifetime.file: cannot read" in text


def test_error_empirical_negative_sample(tmp_path: Path) -> None:
    (tmp_path / "s.csv").write_text("1\n2\n-3\n")
    text = problems(poisson_load(kind="empirical", file="s.csv"), tmp_path)
    assert "load[0].lifetime.file:" in text and "line 3: sample: must be finite and >= 0" in text


def test_error_empirical_two_columns(tmp_path: Path) -> None:
    (tmp_path / "s.csv").write_text("1,2\n")
    text = problems(poisson_load(kind="empirical", file="s.csv"), tmp_path)
    assert "line 1: expected one value per line" in text


def test_trace_times_survive_floating_point_delays(tmp_path: Path) -> None:
    """5,000 rows at 4-decimal times: each connect is logged at the row's time exactly,
    although now + (t - now) can round one unit away from t (0.063 then 0.6)."""
    rng = np.random.default_rng(5)
    times = np.sort(np.round(rng.uniform(0, 50, 5000), 4))
    times[:2] = [0.063, 0.6]
    times = np.sort(times)
    (tmp_path / "t.csv").write_text(
        "time_s,destination\n" + "".join(f"{float(t)!r},api\n" for t in times)
    )
    sc = sim.parse_scenario(
        {
            "name": "exact",
            "duration": 60,
            "destinations": [{"name": "api", "address": "10.0.0.1:443"}],
            "load": [
                {
                    "arrival": {"kind": "trace", "file": "t.csv"},
                    "lifetime": {"kind": "fixed", "value": 0.01},
                    "close": "reset",
                }
            ],
        },
        base=tmp_path,
    )
    events = sim.run(sc, events=True).events
    logged = events[events.event.isin(["connect", "fail"])].time_s.to_numpy()
    assert logged.tolist() == times.tolist()


# ---- what each process says about itself ------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "stationary", "poisson_rate"),
    [
        (Poisson(kind="poisson", rate=250.0), True, 250.0),
        (ConstantArrivalSpec(kind="constant", interval=0.5), True, None),
        (Burst(kind="burst", count=10, at=1.0), False, None),
        (OnOff(kind="onoff", rate=10.0, on=2.0, off=3.0), False, None),
        (Schedule(kind="schedule", points=[(0.0, 5.0), (10.0, 5.0)]), False, None),
        (Diurnal(kind="diurnal", mean=40.0, amplitude=0.8, period=50.0), False, None),
    ],
    ids=["poisson", "constant", "burst", "onoff", "schedule", "diurnal"],
)
def test_process_says_whether_a_steady_state_and_erlang_b_apply(
    spec: Any, stationary: bool, poisson_rate: float | None
) -> None:
    """Only a homogeneous process offers the same rate all along (Poisson and constant);
    only a Poisson one is what Erlang B assumes (the rate its spec names).  A schedule
    whose points hold one rate is still a schedule: it is zero before its first point."""
    process = arrival_process(spec)
    assert process.stationary is stationary
    assert process.poisson_rate == poisson_rate
    assert process.trace is None


def test_trace_process_carries_its_rows(tmp_path: Path) -> None:
    """A trace is neither stationary nor Poisson, and hands its rows to the engine."""
    process = arrival_process(trace_scenario(tmp_path).load[0].arrival)
    assert process.trace is not None
    assert not process.stationary and process.poisson_rate is None
    assert process.trace.window(0.0, 100.0) == (0, len(trace_rows(TRACE, 0.0, 100.0)))
