"""Connection lifetimes: samplers with a known mean (so offered load is known)."""

from __future__ import annotations

from collections.abc import Callable

from sim.randomness import BLOCK, Stream
from sim.scenario import Exponential, Fixed


def sampler(spec: Fixed | Exponential, stream: Stream) -> Callable[[], float]:
    """A zero-argument function returning the next lifetime in seconds (``inf``: never)."""
    if isinstance(spec, Fixed):
        value = spec.value
        return lambda: value
    return _Buffered(lambda: stream.rng.exponential(spec.mean, BLOCK).tolist())


class _Buffered:
    """Hands out values drawn in blocks: numpy per-call draws cost ~1 us each."""

    __slots__ = ("_buf", "_draw")

    def __init__(self, draw: Callable[[], list[float]]) -> None:
        self._draw = draw
        self._buf: list[float] = []

    def __call__(self) -> float:
        buf = self._buf
        if not buf:
            buf = self._buf = self._draw()
            buf.reverse()
        return buf.pop()
