"""Values a scenario may not hold whatever the key: booleans where numbers go, control
characters and absurd lengths in text.

TOML has booleans and Python counts ``True`` as 1, so ``rate = true`` would run at 1/s and
``port_range = [40000, true]`` would reach the model as port 1; text with ESC or BEL would
drive the terminal, a line break would forge output lines.  Checked on the raw document,
so each problem names its dotted key.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

MAX_TEXT = 1000  # characters of any text value but the description
FREE_TEXT = frozenset({"description"})  # keys whose text may hold line breaks
# keys whose boolean is a likely slip for one of their numbers: say which numbers
BOOL_HINTS = {"tcp_tw_reuse": "expected 0 (off), 1 (on) or 2 (loopback only)"}


def holds_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return True
    return isinstance(value, list | tuple) and any(holds_bool(v) for v in value)


def bad_text(value: Any) -> str | None:
    """Why a text value (or one in a list) cannot be used, or None."""
    if isinstance(value, str):
        if not value.replace("\t", " ").isprintable():  # a tab, as sysctl prints ranges
            return "control characters (such as line breaks, ESC or BEL) are not allowed"
        if len(value) > MAX_TEXT:
            return f"at most {MAX_TEXT} characters (got {len(value)})"
    elif isinstance(value, list | tuple):
        return next((p for p in map(bad_text, value) if p), None)
    return None


def bool_fields(model: Any) -> frozenset[str]:
    """Fields of a pydantic model that take true/false."""
    return frozenset(
        name for name, info in model.model_fields.items() if "bool" in str(info.annotation)
    )


def plain_value_checks(
    source: str,
    data: Any,
    bool_keys: Collection[str],
    show: Callable[[object], str],
    where: str = "",
) -> list[str]:
    """Problems in a decoded document, one line each, named by dotted key."""
    problems: list[str] = []
    if isinstance(data, dict):
        items = [(f"{where}.{show(k)}" if where else show(k), k, v) for k, v in data.items()]
    elif isinstance(data, list):
        items = [(f"{where}[{i}]", None, v) for i, v in enumerate(data)]
    else:
        return problems
    for here, key, value in items:
        if isinstance(value, bool):
            if key not in bool_keys:
                expected = BOOL_HINTS.get(key, "expected a number or text")
                said = f"{expected}, not a boolean (got {str(value).lower()})"
                problems.append(f"{source}: {here}: {said}")
        elif isinstance(value, str):
            problem = bad_text(value) if key not in FREE_TEXT else None
            if problem:
                problems.append(f"{source}: {here}: {problem}")
        else:
            problems += plain_value_checks(source, value, bool_keys, show, here)
    return problems
