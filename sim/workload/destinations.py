"""Where a load's arrivals go: its destinations, weighted, with generated sets spread over
their members by popularity (uniform or Zipf)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sim.randomness import BLOCK, Stream

if TYPE_CHECKING:
    from sim.config.types import Destination, LoadSpec, Scenario


def spread(load: LoadSpec, scenario: Scenario) -> tuple[list[Destination], np.ndarray]:
    """The members a load spreads over and the probability of each.

    A named destination's weight (``weights``, equal by default) is shared among a
    generated set's members in proportion to their popularity."""
    names = load.destination_names
    weights = load.weights or [1.0] * len(names)
    members: list[Destination] = []
    parts: list[np.ndarray] = []
    for name, weight in zip(names, weights, strict=True):
        dest = scenario.destination(name)
        popularity = np.asarray(dest.member_weights(), dtype=np.float64)
        members += dest.members()
        parts.append(weight * popularity / popularity.sum())
    p = np.concatenate(parts)
    return members, p / p.sum()


class Chooser:
    """Indices drawn with probabilities ``p``, in blocks (one inverse-CDF search each)."""

    __slots__ = ("_buf", "_cdf", "_rng")

    def __init__(self, p: np.ndarray, stream: Stream) -> None:
        self._cdf = np.cumsum(p)
        self._cdf[-1] = 1.0  # rounding must not leave a gap above the last member
        self._rng = stream.rng
        self._buf: list[int] = []

    def __call__(self) -> int:
        buf = self._buf
        if not buf:
            draws = self._rng.random(BLOCK)
            buf = self._buf = np.searchsorted(self._cdf, draws, "right").tolist()
            buf.reverse()
        return buf.pop()
