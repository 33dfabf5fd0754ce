"""Refusal waves: how refusals are spread in time, not only how many there are.

With a fixed TIME_WAIT a full pool empties and refills in waves one holding period apart:
the ports taken in one burst of successes come back together a period later.  A refusal
fraction such as "22 % refused" then hides that for a stretch of every period nearly every
connect fails and for the rest none does.  This module reads that off the per-bin counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sim.summary.types import RefusalWaves

REFUSING = 0.5  # a bin is "refusing" when at least half of its connects were refused


def refusal_waves(
    attempts: Sequence[int], failures: Sequence[int], bin_s: float, first_bin: int = 0
) -> RefusalWaves | None:
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
    episodes = _episodes(stretches, clean)
    return {
        "threshold": REFUSING,
        "window_s": [first_bin * bin_s, (first_bin + len(a)) * bin_s],
        "refusing_fraction": sum(refusing) / len(a),
        "refusal_free_fraction": sum(clean) / len(a),
        "longest_refusing_s": longest * bin_s,
        "stretches": len(stretches),
        "episodes": len(episodes),
        "longest_episode_s": max((n for _, n in episodes), default=0) * bin_s,
        "period_s": _period(episodes, bin_s),
    }


def _episodes(stretches: list[tuple[int, int]], clean: list[bool]) -> list[tuple[int, int]]:
    """Refusing stretches merged into episodes.  Inside an episode refusals flicker: with
    the kernel's timer wheel TIME_WAITs end in batches about 2 s apart, and each batch gives
    a moment of successes.  A gap counts as the end of an episode only when it is at least
    half the longest refusal-free stretch of the window, so the flicker does not split an
    episode while the quiet time between waves does."""
    quiet = longest_run(clean)
    merged: list[tuple[int, int]] = []
    for start, n in stretches:
        if merged and 2 * (start - (merged[-1][0] + merged[-1][1])) < quiet:
            merged[-1] = (merged[-1][0], start + n - merged[-1][0])
        else:
            merged.append((start, n))
    return merged


def _period(episodes: list[tuple[int, int]], bin_s: float) -> float | None:
    """The time between the starts of episodes, only when they recur regularly (at least
    three, the longest gap within 1.5 times the shortest); None otherwise, so that "every
    62 s" is never said of two bursts or of irregular ones."""
    gaps = sorted(b[0] - a[0] for a, b in pairwise(episodes))
    if len(gaps) < 2 or gaps[-1] > 1.5 * gaps[0]:
        return None
    return gaps[len(gaps) // 2] * bin_s


def longest_run(flags: list[bool]) -> int:
    """The longest run of consecutive true values."""
    best = run = 0
    for flag in flags:
        run = run + 1 if flag else 0
        best = max(best, run)
    return best


def describe(waves: RefusalWaves | None) -> str | None:
    """One line when refusals come in waves (some time refusing and some time refusing
    nothing); None when refusals are spread evenly or absent."""
    if waves is None or not waves["stretches"]:
        return None
    from sim.units import format_duration

    every = f" every {format_duration(waves['period_s'])}" if waves["period_s"] else ""
    pct = round(100 * waves["refusing_fraction"])
    free = round(100 * waves["refusal_free_fraction"])
    return (
        f"refusals come in {episodes_text(waves)}{every}; {pct} % of the time at least half "
        f"the connects were refused, {free} % of the time none was"
    )


def episodes_text(waves: RefusalWaves) -> str:
    """ "3 episodes of up to 8.0 s (2.0 s at most of mostly refused connects)"."""
    from sim.units import format_duration

    n, episode = waves["episodes"], waves["longest_episode_s"]
    solid = waves["longest_refusing_s"]
    text = f"{n} episode{'s' if n != 1 else ''} of up to {format_duration(episode)}"
    if solid < episode:
        text += f" ({format_duration(solid)} at most of mostly refused connects)"
    return text
