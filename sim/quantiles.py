"""Quantiles of a sparse histogram ``{value: count}``: the reports' p50 and p99.

Connect latencies take few distinct values (the SYN schedule's offsets) and pool waits are
counted per millisecond, so the reports keep a count per value and read their quantiles
here, one definition for all of them (nearest rank).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from collections.abc import Mapping

V = TypeVar("V", int, float)


def sparse_percentile(counts: Mapping[V, int], q: float) -> V | float:
    """The smallest value with at least a fraction ``q`` (0 to 1) of the counts at or
    below it (nearest rank: the ceil(q * n)-th smallest of n); 0.0 when there are none.

    The value is returned as it is in ``counts`` (an int stays an int)."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile must be within 0 and 1 (got {q!r})")
    total = sum(counts.values())
    seen = 0
    for value in sorted(counts):
        seen += counts[value]
        if seen >= q * total:  # an integer reaches q * total when it reaches its ceiling
            return value
    return 0.0  # no counts (with q <= 1 the last value always reaches q * total)
