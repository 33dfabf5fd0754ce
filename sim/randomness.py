"""Random streams: explicit numpy generators, drawn in blocks for speed.

A numpy scalar draw costs about a microsecond; a block of 4096 drawn at once and handed out
from a list costs a few tens of nanoseconds per value, which matters on the per-connection
path.  Each consumer (a host's kernel, a load's arrivals, a load's lifetimes) gets its own
stream spawned from the run's :class:`numpy.random.SeedSequence`, so changing one part of a
scenario does not shift the random numbers of another (common random numbers).
"""

from __future__ import annotations

import numpy as np

BLOCK = 4096


class Stream:
    """Uniform floats in [0, 1) from one generator, buffered."""

    __slots__ = ("_buf", "_i", "rng")

    def __init__(self, seed: np.random.SeedSequence) -> None:
        self.rng = np.random.default_rng(seed)
        self._buf: list[float] = []
        self._i = 0

    def uniform(self) -> float:
        i = self._i
        if i >= len(self._buf):
            self._buf = self.rng.random(BLOCK).tolist()
            i = 0
        self._i = i + 1
        return self._buf[i]

    def below(self, n: int) -> int:
        """A uniform integer in [0, n) (n small enough for float resolution, n <= 2**32)."""
        return int(self.uniform() * n)


class LazyStream(Stream):
    """A stream whose seed sequence and generator are made on its first draw: a fleet
    member gets two streams (``sim.fleet``) and most never draw from them (the members
    share one kernel's), and a seeded generator costs ~12 us to build (``python -m timeit``
    on ``default_rng(SeedSequence(...))``, this project's 2-core VM), 24 ms for 1,000
    members' two each.  The numbers drawn are those of
    ``Stream(np.random.SeedSequence(entropy, spawn_key=key))``."""

    __slots__ = ("_entropy", "_key")

    def __init__(self, entropy: int, key: tuple[int, ...]) -> None:  # no super(): no rng yet
        self._entropy = entropy
        self._key = key
        self._buf = []
        self._i = 0

    def __getattr__(self, name: str) -> object:
        if name != "rng":
            raise AttributeError(name)
        seed = np.random.SeedSequence(self._entropy, spawn_key=self._key)
        rng = self.rng = np.random.default_rng(seed)
        return rng
