"""Durations as users write them: a number means seconds, strings carry a unit."""

from __future__ import annotations

import ipaddress
import math
import re

_SECONDS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
# Every spelling accepted, by the unit it means: the short forms and the words.
_SPELLINGS = {
    "us": ("us", "µs", "usec", "usecs", "microsecond", "microseconds"),
    "ms": ("ms", "msec", "msecs", "millisecond", "milliseconds"),
    "s": ("s", "sec", "secs", "second", "seconds"),
    "m": ("m", "min", "mins", "minute", "minutes"),
    "h": ("h", "hr", "hrs", "hour", "hours"),
    "d": ("d", "day", "days"),
}
_UNITS = {spelling: _SECONDS[unit] for unit, words in _SPELLINGS.items() for spelling in words}
UNITS_ACCEPTED = "us, ms, s, min (or m), h, d, or the words (microseconds ... days)"
_NUMBER = r"[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?"
# For the JSON schema: what parse_duration accepts as text (units matched case-insensitively).
DURATION_PATTERN = rf"^\s*{_NUMBER}\s*([A-Za-zµ]+)?\s*$"
_PATTERN = re.compile(rf"^\s*([-+]?{_NUMBER})\s*([a-zµ]+)?\s*$")


def parse_duration(value: object, *, allow_inf: bool = False) -> float:
    """Return seconds for ``60``, ``"60s"``, ``"500ms"``, ``"2min"``, ``"1 hour"`` (``"inf"``
    if allowed).

    Raises ValueError with a message fit for a scenario error line; an unknown unit is named
    with the list of accepted ones.
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
                raise ValueError('expected a duration such as 60, "60s", "500ms", "2min" or "1h"')
            number, unit = match.group(1), match.group(2) or "s"
            if unit not in _UNITS:
                raise ValueError(f"unknown unit {unit!r}; accepted: {UNITS_ACCEPTED}")
            seconds = float(number) * _UNITS[unit]
    else:
        raise ValueError('expected a duration such as 60, "60s" or "500ms"')
    if math.isnan(seconds) or seconds < 0:
        raise ValueError("must be a duration >= 0")
    if math.isinf(seconds) and not allow_inf:
        raise ValueError("must be finite")
    return seconds


# ---- port ranges ------------------------------------------------------------------------

PORT_RANGE_PATTERN = r"^\s*\d+\s*(-|\s)\s*\d+\s*$"


def parse_port_range(value: object) -> tuple[int, int]:
    """``[1024, 65535]``, ``"1024-65535"`` or ``"1024 65535"`` (as ``sysctl
    net.ipv4.ip_local_port_range`` prints it) -> ``(1024, 65535)``, low <= high, in 1..65535.

    Raises ValueError with a message fit for an error line."""
    expected = 'expected [low, high] or "low-high", e.g. "32768-60999"'
    if isinstance(value, list | tuple):
        if len(value) != 2 or not all(type(p) is int for p in value):
            raise ValueError(expected)
        lo, hi = value
    elif isinstance(value, str):
        match = re.fullmatch(r"\s*\[?\s*(\d+)\s*(?:-|,|\s)\s*(\d+)\s*\]?\s*", value)
        if not match:
            raise ValueError(expected)
        lo, hi = int(match.group(1)), int(match.group(2))
    else:
        raise ValueError(expected)
    if not (1 <= lo <= 65535 and 1 <= hi <= 65535):
        raise ValueError(f"ports must be within 1..65535 (got {lo}-{hi})")
    if lo > hi:
        raise ValueError(f"low must be <= high (got {lo}-{hi})")
    return lo, hi


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


def format_rate(per_second: float) -> str:
    """A rate per second in as many digits as it needs: ``2,133``, ``46.9``, ``0.529``."""
    if math.isinf(per_second):
        return "unlimited"
    if per_second >= 100:
        return f"{per_second:,.0f}"
    if per_second >= 10:
        return f"{per_second:.1f}"
    return f"{per_second:.3g}"


def format_percent(fraction: float) -> str:
    """Percent with the digits that matter: 41 %, 6.4 %, 0.12 % (the verdict's lines)."""
    if fraction >= 0.1 or fraction == 0:
        return f"{100 * fraction:.0f} %"
    return f"{100 * fraction:.1f} %" if fraction >= 0.01 else f"{100 * fraction:.2f} %"


ENDPOINT_FORMAT = 'expected "ip:port" (IPv6 in brackets: "[::1]:443")'


def parse_endpoint(text: str) -> tuple[str, str, int]:
    """``"10.0.0.5:443"`` or ``"[::1]:443"`` -> (normalised text, address, port)."""
    match = re.fullmatch(r"\s*(?:\[([0-9A-Fa-f:.]+)\]|([0-9.]+)):(\d{1,5})\s*", text)
    if not match:
        raise ValueError(ENDPOINT_FORMAT)
    ip = ipaddress.ip_address(match.group(1) or match.group(2))
    port = int(match.group(3))
    if not 1 <= port <= 65535:
        raise ValueError("port must be within 1..65535")
    return (f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"), str(ip), port
