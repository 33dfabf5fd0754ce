"""Arrival processes: each yields absolute attempt times within a load's window.

Times are absolute simulated seconds (a burst's ``at`` is not relative to ``start``).
Each process knows its ``rate`` so the offered load can be computed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from sim.randomness import BLOCK, Stream
from sim.scenario import Burst, Constant, Poisson


def attempt_times(
    spec: Poisson | Constant | Burst, stream: Stream, start: float, stop: float
) -> Iterator[float]:
    """Attempt times t with start <= t < stop, in order."""
    if isinstance(spec, Poisson):
        yield from _poisson(spec.rate, stream, start, stop)
    elif isinstance(spec, Constant):
        n = max(0, math.ceil((stop - start) / spec.interval))
        for i in range(n):  # multiply, not accumulate, so times carry no drift
            yield start + i * spec.interval
    else:
        if start <= spec.at < stop:
            for _ in range(spec.count):
                yield spec.at


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
