"""Durations as users write them: a number means seconds, strings carry a unit."""

from __future__ import annotations

import math
import re

_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PATTERN = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(us|ms|s|m|h|d)?\s*$")


def parse_duration(value: object, *, allow_inf: bool = False) -> float:
    """Return seconds for ``60``, ``"60s"``, ``"500ms"``, ``"2m"``, ``"1h"`` (``"inf"`` if allowed).

    Raises ValueError with a message fit for a scenario error line.
    """
    if isinstance(value, bool):
        raise ValueError('expected a duration such as 60, "60s" or "500ms"')
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:
            raise ValueError("must be a duration that fits in a float") from None
    elif isinstance(value, str):
        text = value.strip().lower()
        if text in ("inf", "infinity"):
            seconds = math.inf
        else:
            match = _PATTERN.match(text)
            if not match:
                raise ValueError('expected a duration such as 60, "60s", "500ms", "2m" or "1h"')
            seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    else:
        raise ValueError('expected a duration such as 60, "60s" or "500ms"')
    if math.isnan(seconds) or seconds < 0:
        raise ValueError("must be a duration >= 0")
    if math.isinf(seconds) and not allow_inf:
        raise ValueError("must be finite")
    return seconds


def format_duration(seconds: float) -> str:
    """Short human form used in terminal output (``"61.2 s"``, ``"2.5 min"``)."""
    if math.isinf(seconds):
        return "never"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
