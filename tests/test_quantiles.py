"""The reports' nearest-rank quantile of a ``{value: count}`` histogram (sim.quantiles),
against values counted by hand."""

from __future__ import annotations

import pytest

from sim.quantiles import sparse_percentile

# 100 connects: 90 at 0 s, 9 at 1 s, 1 at 3 s
LATENCIES = {0.0: 90, 1.0: 9, 3.0: 1}


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        (0.0, 0.0),  # the smallest value
        (0.5, 0.0),  # 50 of 100 needed, 90 at or below 0 s
        (0.90, 0.0),  # 90 needed, exactly 90 at or below 0 s
        (0.91, 1.0),  # 91 needed: 90 at 0 s are one short
        (0.99, 1.0),  # 99 needed, 90 + 9 = 99 at or below 1 s
        (0.995, 3.0),  # 99.5 -> 100 needed: only the largest has them all
        (1.0, 3.0),  # the maximum
    ],
)
def test_counted_by_hand(q: float, expected: float) -> None:
    assert sparse_percentile(LATENCIES, q) == expected


def test_order_of_the_keys_does_not_matter() -> None:
    assert sparse_percentile({3.0: 1, 1.0: 9, 0.0: 90}, 0.99) == 1.0


def test_integer_values_stay_integers() -> None:
    # pool waits in ms: 3 waits of 2 ms, 1 of 40 ms; p50 needs 2 of 4, p99 needs 4 of 4
    waits = {40: 1, 2: 3}
    assert sparse_percentile(waits, 0.5) == 2 and isinstance(sparse_percentile(waits, 0.5), int)
    assert sparse_percentile(waits, 0.99) == 40


def test_empty_is_zero() -> None:
    assert sparse_percentile({}, 0.5) == 0.0
    assert sparse_percentile({}, 0.99) == 0.0


@pytest.mark.parametrize("q", [-0.1, 1.5, float("nan")])
def test_a_quantile_outside_zero_to_one_is_refused(q: float) -> None:
    with pytest.raises(ValueError, match="within 0 and 1"):
        sparse_percentile(LATENCIES, q)
