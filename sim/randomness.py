"""Random streams: explicit numpy generators, drawn in blocks for speed.

A numpy scalar draw costs about a microsecond; a block of 4096 drawn at once and handed out
from a list costs a few tens of nanoseconds per value, which matters on the per-connection
path.  Each consumer (a host's kernel, a load's arrivals, a load's lifetimes) gets its own
stream spawned from the run's :class:`numpy.random.SeedSequence`, so changing one part of a
scenario does not shift the random numbers of another (common random numbers).
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import chain, repeat

import numpy as np

BLOCK = 4096


class Stream:
    """Uniform floats in [0, 1) from one generator, buffered.

    ``uniform`` is the ``__next__`` of a chain over blocks of ``BLOCK`` draws: handing out
    a value runs no Python code (``itertools.chain`` and a list iterator, in C), and a block
    is drawn when the last is used up, as a loop over an index would (the same values in
    the same order; ``tests/test_randomness.py``)."""

    __slots__ = ("rng", "uniform")

    def __init__(self, seed: np.random.SeedSequence) -> None:
        self.rng = rng = np.random.default_rng(seed)
        self.uniform: Callable[[], float] = _draws(repeat(rng).__next__)

    def below(self, n: int) -> int:
        """A uniform integer in [0, n) (n small enough for float resolution, n <= 2**32)."""
        return int(self.uniform() * n)


def _draws(generator: Callable[[], np.random.Generator]) -> Callable[[], float]:
    """Values one by one, each block drawn from ``generator()`` only when the previous one
    is used up (so a ``LazyStream`` builds its generator at its first draw, and draws
    interleaved with other uses of the generator come in the order they always did).
    Nothing here refers to the stream: a stream is no reference cycle (sim.collector)."""
    blocks = iter(lambda: generator().random(BLOCK).tolist(), None)  # a list: never None
    return chain.from_iterable(blocks).__next__


class LazyStream(Stream):
    """A stream whose seed sequence and generator are made on its first draw: a fleet
    member gets two streams (``sim.fleet``) and most never draw from them (the members
    share one kernel's), and a seeded generator costs ~12 us to build (``python -m timeit``
    on ``default_rng(SeedSequence(...))``, this project's 2-core VM), 24 ms for 1,000
    members' two each.  The numbers drawn are those of
    ``Stream(np.random.SeedSequence(entropy, spawn_key=key))``."""

    __slots__ = ("_generator",)

    def __init__(self, entropy: int, key: tuple[int, ...]) -> None:  # no super(): no rng yet
        made: list[np.random.Generator] = []

        def generator() -> np.random.Generator:
            if not made:
                seed = np.random.SeedSequence(entropy, spawn_key=key)
                made.append(np.random.default_rng(seed))
            return made[0]

        self._generator = generator
        self.uniform = _draws(generator)

    def __getattr__(self, name: str) -> object:
        if name != "rng":
            raise AttributeError(name)
        rng = self.rng = self._generator()
        return rng
