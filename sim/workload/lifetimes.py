"""Lifetime distributions: objects with ``sample()`` and ``mean`` (as in Ciw), so the
offered load (rate x mean holding time) is known before a run.

Values are drawn in blocks of :data:`BLOCK` (a numpy scalar draw costs ~1 us; a block's
values handed out from a list cost tens of nanoseconds) and calling the object samples.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sim.config.types import Empirical, Exponential, FixedLifetimeSpec, LogNormal, Pareto, Uniform
from sim.randomness import BLOCK, Stream

LifetimeSpec = FixedLifetimeSpec | Exponential | LogNormal | Pareto | Uniform | Empirical


class Distribution:
    """Seconds drawn from one distribution; ``mean`` is its exact mean."""

    __slots__ = ("_buf", "_draw", "mean")

    def __init__(self, mean: float, draw: Callable[[], list[float]]) -> None:
        self.mean = mean
        self._draw = draw
        self._buf: list[float] = []

    def sample(self) -> float:
        buf = self._buf
        if not buf:
            buf = self._buf = self._draw()
            buf.reverse()
        return buf.pop()

    __call__ = sample


class Constant:
    """A fixed lifetime (``inf``: the connection never closes)."""

    __slots__ = ("mean",)

    def __init__(self, value: float) -> None:
        self.mean = value

    def sample(self) -> float:
        return self.mean

    __call__ = sample


def sampler(spec: LifetimeSpec, stream: Stream) -> Distribution | Constant:
    """The distribution a lifetime spec describes, drawing from ``stream``."""
    rng = stream.rng
    if isinstance(spec, FixedLifetimeSpec):
        return Constant(spec.value)
    if isinstance(spec, Exponential):
        return Distribution(spec.mean, lambda: rng.exponential(spec.mean, BLOCK).tolist())
    if isinstance(spec, LogNormal):
        mu, sigma = _solved(spec.mu), _solved(spec.sigma)
        return Distribution(_solved(spec.mean), lambda: rng.lognormal(mu, sigma, BLOCK).tolist())
    if isinstance(spec, Pareto):
        # numpy's pareto() is Lomax (starts at 0): shift by one and scale for Pareto type I
        shape, scale = spec.shape, _solved(spec.scale)
        return Distribution(
            _solved(spec.mean), lambda: ((rng.pareto(shape, BLOCK) + 1) * scale).tolist()
        )
    if isinstance(spec, Uniform):
        low, high = spec.low, spec.high
        return Distribution(spec.mean, lambda: rng.uniform(low, high, BLOCK).tolist())
    if isinstance(spec, Empirical):
        samples = spec.samples
        return Distribution(
            float(np.mean(samples)),
            lambda: samples[rng.integers(0, len(samples), BLOCK)].tolist(),
        )
    raise TypeError(f"unknown lifetime {spec!r}")  # pragma: no cover


def lifetime_mean(spec: LifetimeSpec) -> float:
    """The mean (seconds) of a validated lifetime spec (inf for a fixed "inf")."""
    return _solved(spec.mean)


def _solved(value: float | None) -> float:
    """A parameter the scenario's validation derives when it is not given (lognormal mu and
    sigma from mean and p99, and the reverse; Pareto scale from mean, and the reverse)."""
    if value is None:
        raise ValueError("lifetime parameter not solved: the spec was not validated")
    return value
