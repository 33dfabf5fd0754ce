"""The terminal's percent (sim.units.format_percent, the verdict's and the gateways'
lines): whole percent from 10 %, one decimal from 1 %, two below."""

from __future__ import annotations

import pytest

from sim.units import format_percent


@pytest.mark.parametrize(
    ("fraction", "text"),
    [
        (0.0, "0 %"),
        (1.0, "100 %"),
        (0.41, "41 %"),
        (0.1, "10 %"),
        (0.099, "9.9 %"),
        (0.064, "6.4 %"),
        (0.01, "1.0 %"),
        (0.0012, "0.12 %"),
    ],
)
def test_digits_that_matter(fraction: float, text: str) -> None:
    assert format_percent(fraction) == text
