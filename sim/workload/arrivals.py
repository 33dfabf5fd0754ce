"""Arrival processes: objects built once from a load's ``arrival`` spec by
:func:`arrival_process`, each with ``times()`` (absolute attempt times in a window),
``expected()`` (the expected count in a window, so the offered load is known before a
run) and ``stationary`` (the same rate all along), as lifetimes are objects with
``sample()`` and ``mean``.  Consumers ask the object; nothing else switches on ``kind``.

Times are absolute simulated seconds (a burst's ``at`` and a schedule's points are not
relative to ``start``).

The time-varying processes are non-homogeneous Poisson processes, generated exactly:
a schedule by inverting its cumulative rate (piecewise linear or quadratic), a diurnal
load by thinning a Poisson process at its peak rate (Lewis and Shedler, 1979), an on/off
load by laying a Poisson process's "on time" onto the on periods.  All draw in blocks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np

from sim.randomness import BLOCK, Stream

if TYPE_CHECKING:  # annotations only: the scenario module builds on this one
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
    from sim.workload.files import Trace

    ArrivalSpec: TypeAlias = (
        Poisson | ConstantArrivalSpec | Burst | OnOff | Schedule | Diurnal | TraceArrival
    )


class ArrivalProcess:
    """One load's arrival process.  ``stationary``: the same rate all along (a steady
    state can exist); ``poisson_rate``: the rate of a homogeneous Poisson process (what
    Erlang B assumes), None for any other; ``trace``: the rows a trace replays, None for a
    generated process."""

    kind = ""
    stationary = False
    poisson_rate: float | None = None
    trace: Trace | None = None

    def times(self, stream: Stream, start: float, stop: float) -> Iterator[float]:
        """Attempt times t with start <= t < stop, in order, drawn from ``stream``."""
        raise NotImplementedError

    def expected(self, start: float, stop: float) -> float:
        """The expected number of arrivals in [start, stop)."""
        raise NotImplementedError

    def rate_at(self, t: float) -> float:
        """The instantaneous rate of a Poisson-type process (for plots and tests)."""
        raise TypeError(f"{self.kind} has no instantaneous rate")


class PoissonProcess(ArrivalProcess):
    """A homogeneous Poisson process: exponential gaps drawn in blocks."""

    kind = "poisson"
    stationary = True

    def __init__(self, spec: Poisson) -> None:
        self.rate = self.poisson_rate = spec.rate

    def times(self, stream: Stream, start: float, stop: float) -> Iterator[float]:
        return _poisson(self.rate, stream, start, stop)

    def expected(self, start: float, stop: float) -> float:
        return self.rate * max(0.0, stop - start)

    def rate_at(self, t: float) -> float:
        return self.rate


class ConstantProcess(ArrivalProcess):
    """Evenly spaced arrivals from the load's start (exact counts)."""

    kind = "constant"
    stationary = True

    def __init__(self, spec: ConstantArrivalSpec) -> None:
        self.interval = spec.interval

    def times(self, stream: Stream, start: float, stop: float) -> Iterator[float]:
        interval = self.interval
        for i in range(_constant_count(interval, start, stop)):
            yield start + i * interval  # multiply, not accumulate: no drift

    def expected(self, start: float, stop: float) -> float:
        return float(_constant_count(self.interval, start, stop))


class BurstProcess(ArrivalProcess):
    """``count`` arrivals at one instant ``at`` (exact counts)."""

    kind = "burst"

    def __init__(self, spec: Burst) -> None:
        self.at, self.count = spec.at, spec.count

    def times(self, stream: Stream, start: float, stop: float) -> Iterator[float]:
        if start <= self.at < stop:
            for _ in range(self.count):
                yield self.at

    def expected(self, start: float, stop: float) -> float:
        if not start <= self.at < stop:
            return 0.0
        return float(self.count) if self.count < 10**300 else math.inf


class OnOffProcess(ArrivalProcess):
    """Poisson at ``rate`` for ``on`` seconds, silent for ``off``, from the load's start:
    a Poisson process in "on time" u, placed at start + floor(u / on) cycles + u mod on."""

    kind = "onoff"

    def __init__(self, spec: OnOff) -> None:
        self.rate, self.on, self.off = spec.rate, spec.on, spec.off

    def times(self, stream: Stream, start: float, stop: float) -> Iterator[float]:
        on, cycle, scale = self.on, self.on + self.off, 1.0 / self.rate
        u = 0.0
        rng = stream.rng
        while True:
            u_block = u + np.cumsum(rng.exponential(scale, BLOCK))
            u = float(u_block[-1])
            periods, within = np.divmod(u_block, on)
            for t in (start + periods * cycle + within).tolist():
                if t >= stop:
                    return
                yield t

    def expected(self, start: float, stop: float) -> float:
        """Rate x on time within the first ``stop - start`` seconds after the start."""
        whole, rest = divmod(max(0.0, stop - start), self.on + self.off)
        return self.rate * (whole * self.on + min(rest, self.on))


class ScheduleProcess(ArrivalProcess):
    """A Poisson process whose rate follows the schedule's points, generated by inverting
    its cumulative rate."""

    kind = "schedule"

    def __init__(self, spec: Schedule) -> None:
        self.cumulative = _Cumulative(spec)

    def times(self, stream: Stream, start: float, stop: float) -> Iterator[float]:
        return _inverted(self.cumulative, stream, start, stop)

    def expected(self, start: float, stop: float) -> float:
        cumulative = self.cumulative
        return max(0.0, cumulative.at(stop) - cumulative.at(start))

    def rate_at(self, t: float) -> float:
        return self.cumulative.rate(t)


class DiurnalProcess(ArrivalProcess):
    """A Poisson process with rate ``mean * (1 + amplitude * cos(2 pi (t - peak) / period))``,
    generated by thinning a Poisson process at the peak rate."""

    kind = "diurnal"

    def __init__(self, spec: Diurnal) -> None:
        self.mean, self.amplitude, self.period = spec.mean, spec.amplitude, spec.period
        self.peak = spec.period / 2 if spec.peak is None else spec.peak

    def _rate(self, t: np.ndarray) -> np.ndarray:
        phase = 2 * np.pi * (t - self.peak) / self.period
        return self.mean * (1 + self.amplitude * np.cos(phase))

    def times(self, stream: Stream, start: float, stop: float) -> Iterator[float]:
        top = self.mean * (1 + self.amplitude)
        t = start
        rng = stream.rng
        while True:
            times = t + np.cumsum(rng.exponential(1.0 / top, BLOCK))
            t = float(times[-1])
            keep = rng.random(BLOCK) * top < self._rate(times)
            for accepted in times[keep].tolist():
                if accepted >= stop:
                    return
                yield accepted
            if t >= stop:
                return

    def expected(self, start: float, stop: float) -> float:
        if stop <= start:
            return 0.0
        w = 2 * math.pi / self.period
        p = self.peak
        swing = self.amplitude / w * (math.sin(w * (stop - p)) - math.sin(w * (start - p)))
        return self.mean * ((stop - start) + swing)

    def rate_at(self, t: float) -> float:
        return self._rate(np.array([t]))[0]


class TraceProcess(ArrivalProcess):
    """A CSV trace's rows, replayed exactly (exact counts)."""

    kind = "trace"

    def __init__(self, spec: TraceArrival) -> None:
        self.trace = self.rows = spec.trace

    def times(self, stream: Stream, start: float, stop: float) -> Iterator[float]:
        i, j = self.rows.window(start, stop)
        yield from self.rows.times[i:j].tolist()

    def expected(self, start: float, stop: float) -> float:
        i, j = self.rows.window(start, stop)
        return float(j - i)


_PROCESSES: dict[str, Callable[[Any], ArrivalProcess]] = {  # by the spec's kind
    p.kind: p
    for p in (
        PoissonProcess,
        ConstantProcess,
        BurstProcess,
        OnOffProcess,
        ScheduleProcess,
        DiurnalProcess,
        TraceProcess,
    )
}


def arrival_process(spec: ArrivalSpec) -> ArrivalProcess:
    """The process a validated ``arrival`` spec describes (the one place that reads its
    ``kind``)."""
    return _PROCESSES[spec.kind](spec)


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


def _inverted(
    cumulative: _Cumulative, stream: Stream, start: float, stop: float
) -> Iterator[float]:
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


def estimated_events(sc: Scenario) -> float:
    """About three units of work per connection (arrival, close, TIME_WAIT end) plus bins:
    what ``portsim check`` reports, to tell a long run before it starts."""
    total = sc.duration / sc.bin_width
    for load in sc.load:
        stop = min(load.stop or sc.duration, sc.duration)
        n = arrival_process(load.arrival).expected(load.start, stop)
        total += 3 * n * (load.retry.attempts if load.retry else 1)
    return total


def estimated_connections(sc: Scenario) -> float:
    """Expected connection attempts over the run (retries included)."""
    total = 0.0
    for load in sc.load:
        stop = min(load.stop or sc.duration, sc.duration)
        n = arrival_process(load.arrival).expected(load.start, stop)
        total += n * (load.retry.attempts if load.retry else 1)
    return total
