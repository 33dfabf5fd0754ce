"""Waits before retrying a refused connect(): none, fixed or exponential, with jitter."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sim.config.types import Retry
    from sim.randomness import Stream


class Backoff:
    """``delay(n)``: the wait before retry ``n`` (1 = the first retry, after attempt 1).

    fixed: ``base``; exponential: ``base * factor**(n - 1)``, at most ``max_delay``; with
    ``jitter`` the wait is drawn uniformly from [0, that) ("full jitter")."""

    __slots__ = ("attempts", "base", "cap", "factor", "jitter", "kind", "stream")

    def __init__(self, spec: Retry, stream: Stream) -> None:
        self.kind = spec.kind
        self.attempts = spec.attempts
        self.base = spec.base
        self.factor = spec.factor if spec.kind == "exponential" else 1.0
        self.cap = spec.max_delay
        self.jitter = spec.jitter
        self.stream = stream

    def ceiling(self, n: int) -> float:
        """The wait before retry ``n`` without jitter."""
        try:
            wait = self.base * self.factor ** (n - 1)
        except OverflowError:
            wait = float("inf")
        return wait if self.cap is None else min(wait, self.cap)

    def delay(self, n: int) -> float:
        wait = self.ceiling(n)
        return wait * self.stream.uniform() if self.jitter else wait
