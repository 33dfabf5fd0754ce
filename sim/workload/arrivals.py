"""Arrival processes: each yields absolute attempt times within a load's window.

Times are absolute simulated seconds (a burst's ``at`` and a schedule's points are not
relative to ``start``).  Every process knows how many arrivals to expect in a window
(:func:`expected_count`), so the offered load is known before a run.

The time-varying processes are non-homogeneous Poisson processes, generated exactly:
a schedule by inverting its cumulative rate (piecewise linear or quadratic), a diurnal
load by thinning a Poisson process at its peak rate (Lewis and Shedler, 1979), an on/off
load by laying a Poisson process's "on time" onto the on periods.  All draw in blocks.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, TypeAlias

import numpy as np

from sim.randomness import BLOCK, Stream

if TYPE_CHECKING:  # dispatch is on ``kind``: the scenario module builds on this one
    from sim.config.types import (
        Burst,
        ConstantArrivalSpec,
        Diurnal,
        OnOff,
        Poisson,
        Scenario,
        Schedule,
        TraceArrival,
    )

    ArrivalSpec: TypeAlias = (
        Poisson | ConstantArrivalSpec | Burst | OnOff | Schedule | Diurnal | TraceArrival
    )


def attempt_times(spec: ArrivalSpec, stream: Stream, start: float, stop: float) -> Iterator[float]:
    """Attempt times t with start <= t < stop, in order."""
    if spec.kind == "poisson":
        yield from _poisson(spec.rate, stream, start, stop)
    elif spec.kind == "constant":
        for i in range(_constant_count(spec.interval, start, stop)):
            yield start + i * spec.interval  # multiply, not accumulate: no drift
    elif spec.kind == "burst":
        if start <= spec.at < stop:
            for _ in range(spec.count):
                yield spec.at
    elif spec.kind == "onoff":
        yield from _onoff(spec, stream, start, stop)
    elif spec.kind == "schedule":
        yield from _inverted(_Cumulative(spec), stream, start, stop)
    elif spec.kind == "diurnal":
        yield from _thinned(spec, stream, start, stop)
    elif spec.kind == "trace":
        i, j = trace_window(spec, start, stop)
        yield from spec.trace.times[i:j].tolist()
    else:  # pragma: no cover - the schema's union is closed
        raise TypeError(f"unknown arrival {spec!r}")


def trace_window(spec: TraceArrival, start: float, stop: float) -> tuple[int, int]:
    """Rows [i, j) of the trace whose time falls in [start, stop)."""
    times = spec.trace.times
    return int(np.searchsorted(times, start, "left")), int(np.searchsorted(times, stop, "left"))


def expected_count(spec: ArrivalSpec, start: float, stop: float) -> float:
    """The expected number of arrivals in [start, stop) (exact for constant, burst, trace)."""
    span = max(0.0, stop - start)
    if spec.kind == "poisson":
        return spec.rate * span
    if spec.kind == "constant":
        return float(_constant_count(spec.interval, start, stop))
    if spec.kind == "burst":
        inside = start <= spec.at < stop
        return (float(spec.count) if spec.count < 10**300 else math.inf) if inside else 0.0
    if spec.kind == "onoff":
        return spec.rate * _on_time(spec, span)
    if spec.kind == "schedule":
        cumulative = _Cumulative(spec)
        return max(0.0, cumulative.at(stop) - cumulative.at(start))
    if spec.kind == "diurnal":
        return _diurnal_integral(spec, start, stop) if span else 0.0
    if spec.kind == "trace":
        i, j = trace_window(spec, start, stop)
        return float(j - i)
    raise TypeError(f"unknown arrival {spec!r}")  # pragma: no cover


def rate_at(spec: ArrivalSpec, t: float) -> float:
    """The instantaneous rate of a Poisson-type process (for plots and tests)."""
    if spec.kind == "poisson":
        return spec.rate
    if spec.kind == "schedule":
        return _Cumulative(spec).rate(t)
    if spec.kind == "diurnal":
        return _diurnal_rate(spec, np.array([t]))[0]
    raise TypeError(f"{spec.kind} has no instantaneous rate")


def _constant_count(interval: float, start: float, stop: float) -> int:
    """How many of start + i * interval fall before stop, as computed in floating point
    (the quotient alone can round either way: 0.1 + 3 * 0.1 > 0.4)."""
    n = max(0, math.ceil((stop - start) / interval))
    while n > 0 and start + (n - 1) * interval >= stop:
        n -= 1
    while start + n * interval < stop:
        n += 1
    return n


def _poisson(rate: float, stream: Stream, start: float, stop: float) -> Iterator[float]:
    t = start
    scale = 1.0 / rate
    rng = stream.rng
    while True:
        for gap in rng.exponential(scale, BLOCK).tolist():
            t += gap
            if t >= stop:
                return
            yield t


# -- on/off -------------------------------------------------------------------------------


def _on_time(spec: OnOff, span: float) -> float:
    """On time within the first ``span`` seconds after the load's start."""
    cycle = spec.on + spec.off
    whole, rest = divmod(span, cycle)
    return whole * spec.on + min(rest, spec.on)


def _onoff(spec: OnOff, stream: Stream, start: float, stop: float) -> Iterator[float]:
    """A Poisson process in "on time" u, placed at start + floor(u / on) cycles + u mod on."""
    cycle = spec.on + spec.off
    u = 0.0
    rng = stream.rng
    while True:
        u_block = u + np.cumsum(rng.exponential(1.0 / spec.rate, BLOCK))
        u = float(u_block[-1])
        periods, within = np.divmod(u_block, spec.on)
        for t in (start + periods * cycle + within).tolist():
            if t >= stop:
                return
            yield t


# -- schedule: invert the cumulative rate -------------------------------------------------


class _Cumulative:
    """The cumulative rate L(t) of a schedule: points (t_i, r_i); L(t_0) = 0.

    Between points the rate is r_i (step) or moves linearly to r_i+1; after the last point
    it stays at the last rate; before the first it is zero."""

    def __init__(self, spec: Schedule) -> None:
        times = np.array([t for t, _ in spec.points], dtype=np.float64)
        rates = np.array([r for _, r in spec.points], dtype=np.float64)
        linear = spec.shape == "linear"
        ends = rates[1:] if linear else rates[:-1]
        self.times, self.rates = times, rates
        self.slopes = np.zeros_like(rates)
        if linear and len(times) > 1:
            self.slopes[:-1] = (rates[1:] - rates[:-1]) / np.diff(times)
        areas = (rates[:-1] + ends) / 2 * np.diff(times)
        self.levels = np.concatenate(([0.0], np.cumsum(areas)))

    def rate(self, t: float) -> float:
        if t < self.times[0]:
            return 0.0
        i = int(np.searchsorted(self.times, t, "right")) - 1
        return float(self.rates[i] + self.slopes[i] * (t - self.times[i]))

    def at(self, t: float) -> float:
        if t <= self.times[0]:
            return 0.0
        i = int(np.searchsorted(self.times, t, "right")) - 1
        x = t - self.times[i]
        return float(self.levels[i] + self.rates[i] * x + self.slopes[i] * x * x / 2)

    def invert(self, levels: np.ndarray) -> np.ndarray:
        """The times at which L reaches ``levels`` (inf where it never does)."""
        i = np.searchsorted(self.levels, levels, "right") - 1
        d = levels - self.levels[i]
        r0, a = self.rates[i], self.slopes[i]
        # r0 x + a x^2 / 2 = d, in the form that is stable for a -> 0 and a < 0
        disc = np.maximum(r0 * r0 + 2 * a * d, 0.0)
        denom = r0 + np.sqrt(disc)
        with np.errstate(divide="ignore", invalid="ignore"):
            x = np.where(denom > 0, 2 * d / denom, np.inf)
        last = i == len(self.times) - 1
        x = np.where(last & (r0 <= 0), np.inf, x)  # the rate ends at zero: no more arrivals
        return self.times[i] + x


def _inverted(cumulative: _Cumulative, stream: Stream, start: float, stop: float):
    level = cumulative.at(start)
    rng = stream.rng
    while True:
        levels = level + np.cumsum(rng.exponential(1.0, BLOCK))
        level = float(levels[-1])
        times = cumulative.invert(levels)
        for t in times.tolist():
            if t >= stop:
                return
            if t >= start:  # guards rounding at the window's first point
                yield t


# -- diurnal: thinning --------------------------------------------------------------------


def _peak(spec: Diurnal) -> float:
    return spec.period / 2 if spec.peak is None else spec.peak


def _diurnal_rate(spec: Diurnal, t: np.ndarray) -> np.ndarray:
    phase = 2 * np.pi * (t - _peak(spec)) / spec.period
    return spec.mean * (1 + spec.amplitude * np.cos(phase))


def _diurnal_integral(spec: Diurnal, start: float, stop: float) -> float:
    w = 2 * math.pi / spec.period
    p = _peak(spec)
    swing = spec.amplitude / w * (math.sin(w * (stop - p)) - math.sin(w * (start - p)))
    return spec.mean * ((stop - start) + swing)


def _thinned(spec: Diurnal, stream: Stream, start: float, stop: float) -> Iterator[float]:
    top = spec.mean * (1 + spec.amplitude)
    t = start
    rng = stream.rng
    while True:
        times = t + np.cumsum(rng.exponential(1.0 / top, BLOCK))
        t = float(times[-1])
        keep = rng.random(BLOCK) * top < _diurnal_rate(spec, times)
        for accepted in times[keep].tolist():
            if accepted >= stop:
                return
            yield accepted
        if t >= stop:
            return


def estimated_events(sc: Scenario) -> float:
    """About three units of work per connection (arrival, close, TIME_WAIT end) plus bins:
    what ``portsim check`` reports, to tell a long run before it starts."""
    total = sc.duration / sc.bin_width
    for load in sc.load:
        stop = min(load.stop or sc.duration, sc.duration)
        n = expected_count(load.arrival, load.start, stop)
        total += 3 * n * (load.retry.attempts if load.retry else 1)
    return total


def estimated_connections(sc: Scenario) -> float:
    """Expected connection attempts over the run (retries included)."""
    total = 0.0
    for load in sc.load:
        stop = min(load.stop or sc.duration, sc.duration)
        n = expected_count(load.arrival, load.start, stop)
        total += n * (load.retry.attempts if load.retry else 1)
    return total
