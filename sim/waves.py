"""Refusal waves: how refusals are spread in time, not only how many there are.

With a fixed TIME_WAIT a full pool empties and refills in waves one holding period apart:
the ports taken in one burst of successes come back together a period later.  A refusal
fraction such as "22 % refused" then hides that for a stretch of every period nearly every
connect fails and for the rest none does.  This module reads that off the per-bin counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any

REFUSING = 0.5  # a bin is "refusing" when at least half of its connects were refused


def refusal_waves(
    attempts: Sequence[int], failures: Sequence[int], bin_s: float, first_bin: int = 0
) -> dict[str, Any] | None:
    """Share of time refusing, the longest refusing stretch and the typical period between
    stretches, over bins ``first_bin``.. (the steady-state window), or None when nothing
    was refused there.

    Time is counted in bins: a bin refuses when at least ``REFUSING`` of its connects
    failed, refuses nothing when none did; bins without connects count as neither."""
    a = list(attempts[first_bin:])
    f = list(failures[first_bin:])
    if not a or not any(f):
        return None
    refusing = [n > 0 and fail >= REFUSING * n for n, fail in zip(a, f, strict=True)]
    clean = [n > 0 and fail == 0 for n, fail in zip(a, f, strict=True)]
    stretches: list[tuple[int, int]] = []  # (first bin, length)
    for i, r in enumerate(refusing):
        if r and stretches and stretches[-1][0] + stretches[-1][1] == i:
            stretches[-1] = (stretches[-1][0], stretches[-1][1] + 1)
        elif r:
            stretches.append((i, 1))
    longest = max((n for _, n in stretches), default=0)
    # the period: between the starts of the long stretches (at least half the longest),
    # so that a short flicker between two waves does not halve it
    starts = [i for i, n in stretches if 2 * n >= longest]
    gaps = sorted(b - a for a, b in pairwise(starts))
    period = gaps[len(gaps) // 2] * bin_s if gaps else None
    return {
        "threshold": REFUSING,
        "window_s": [first_bin * bin_s, (first_bin + len(a)) * bin_s],
        "refusing_fraction": sum(refusing) / len(a),
        "refusal_free_fraction": sum(clean) / len(a),
        "longest_refusing_s": longest * bin_s,
        "stretches": len(stretches),
        "period_s": period,
    }


def describe(waves: dict[str, Any] | None) -> str | None:
    """One line when refusals come in waves (some time refusing and some time refusing
    nothing); None when refusals are spread evenly or absent."""
    if waves is None or not waves["stretches"]:
        return None
    from sim.units import format_duration

    every = f" every {format_duration(waves['period_s'])}" if waves["period_s"] else ""
    pct = round(100 * waves["refusing_fraction"])
    free = round(100 * waves["refusal_free_fraction"])
    return (
        f"refusals come in waves: up to {format_duration(waves['longest_refusing_s'])} of "
        f"mostly refused connects{every}; {pct} % of the time at least half the connects "
        f"were refused, {free} % of the time none was"
    )
