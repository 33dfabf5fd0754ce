"""Erlang's loss formula and its inverses: the port pool to one destination (or one
translated pool at a NAT gateway) as an M/G/N/N loss system.

With Poisson arrivals an attempt that finds every port busy fails and is not queued;
the refusal probability is Erlang's B formula at offered load A = rate x mean holding
time, whatever the holding-time distribution (insensitivity: B. A. Sevastyanov, Theory
Probab. Appl. 2(1), 1957; F. P. Kelly, "Reversibility and Stochastic Networks", 1979).
Shared by the host capacity answers (``sim.analytic``) and gateway sizing
(``sim.analytic_gateway``).
"""

from __future__ import annotations

import math
from functools import lru_cache


def erlang_b(servers: int, load: float) -> float:
    """Erlang's loss formula B(N, A), by the stable recursion
    B(k) = A B(k-1) / (k + A B(k-1)): no factorials, no overflow, O(N)."""
    if servers < 0 or load < 0:
        raise ValueError("servers and load must be >= 0")
    if load == 0:
        return 0.0 if servers > 0 else 1.0
    if math.isinf(load):
        return 1.0
    b = 1.0
    for k in range(1, servers + 1):
        b = load * b / (k + load * b)
        if b < 1e-300:  # underflowing: it only shrinks from here (light load, large pool)
            return 0.0
    return b


def carried_load(servers: int, load: float) -> float:
    """Ports in use on average, A (1 - B(N, A)), computed as N B(N, A) / B(N-1, A).

    The two are equal (from B(N) = A B(N-1) / (N + A B(N-1))), but A (1 - B) loses every
    digit to cancellation when B is near 1 (it gave 0 ports in use at blocking 1.0, and
    more ports in use than the pool holds); the ratio never exceeds N, as no loss system
    can hold more than its N servers."""
    if servers <= 0 or load <= 0:
        return 0.0
    if math.isinf(load):
        return float(servers)
    before = 1.0
    b = 1.0
    for k in range(1, servers + 1):
        before = b
        b = load * b / (k + load * b)
        if b < 1e-300:  # light load: hardly anything is refused, every arrival is carried
            return min(load, float(servers))
    return min(servers * b / before, float(servers))


def erlang_b_log(servers: int, load: float) -> float:
    """B(N, A) = (A^N / N!) / sum_k A^k / k!, evaluated in log space (a cross-check)."""
    if load == 0:
        return 0.0 if servers > 0 else 1.0
    terms = [k * math.log(load) - math.lgamma(k + 1) for k in range(servers + 1)]
    top = max(terms)
    return math.exp(terms[-1] - top - math.log(sum(math.exp(t - top) for t in terms)))


def offered_load(rate: float, lifetime_s: float, hold_after_close_s: float) -> float:
    """A = rate x (mean lifetime + hold after close), in erlangs (ports busy on average
    without a limit)."""
    return rate * (lifetime_s + hold_after_close_s)


@lru_cache(maxsize=256)  # one per pool size: many destinations share it
def load_for_blocking(servers: int, target: float) -> float:
    """The offered load A at which B(N, A) equals ``target``.

    Newton's method on ln B, whose derivative is N/A - 1 + B, converges in a few steps from
    A = N (each step is one O(N) recursion); bisection takes over if it strays."""
    if not 0 < target < 1:
        raise ValueError("target blocking must be between 0 and 1")
    a = float(max(servers, 1))
    for _ in range(30):
        b = erlang_b(servers, a)
        if b <= 0 or not math.isfinite(b):
            break
        error = math.log(b) - math.log(target)
        if abs(error) < 1e-10:
            return a
        slope = servers / a - 1 + b
        step = error / slope if slope > 0 else 0.0
        if not 0 < a - step < 4 * max(servers, 1) or step == 0:
            break
        a -= step
    return _bisect_load(servers, target)


def _bisect_load(servers: int, target: float) -> float:
    lo, hi = 0.0, max(1.0, 2.0 * servers)
    while erlang_b(servers, hi) < target:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        if erlang_b(servers, mid) < target:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-9 * hi:
            break
    return (lo + hi) / 2
