"""Named access to summary fields by dotted path (``"requests.wait_s.p99"``), checked
against the typed shape.

Sweep metrics (``runs.csv`` columns) and ``portsim compare`` figures name summary fields
by path, and the result-folder reader checks the types of the fields readers use; here
those paths are looked up in the types of :mod:`sim.summary.types`, so a renamed or
retyped field fails where the path is declared (``field_type``) rather than reading None.
"""

from __future__ import annotations

import types
from typing import Any, Literal, Union, get_args, get_origin

from typing_extensions import get_type_hints, is_typeddict

from sim.summary.types import Summary

# the per-pool maps: a path through them names a field of one entry ("analytic.blocking")
_KEYED_MAPS = ("analytic", "destinations", "gateways")


def lookup(summary: Any, dotted: str) -> Any:
    """The value at ``dotted`` in a summary, or None when a part is absent or null."""
    node = summary
    for part in dotted.split("."):
        if not isinstance(node, dict) or node.get(part) is None:
            return None
        node = node[part]
    return node


def field_type(dotted: str) -> Any:
    """The declared type of the field at ``dotted``; KeyError when the summary has no such
    field.  Through a per-pool map (``analytic``, ``destinations``) the path continues
    into one entry's fields."""
    node: Any = Summary
    parts = dotted.split(".")
    i = 0
    while i < len(parts):
        part = parts[i]
        node = _without_none(node)
        if not is_typeddict(node):
            raise KeyError(dotted)
        hints = get_type_hints(node)
        if part not in hints:
            raise KeyError(dotted)
        node = hints[part]
        if get_origin(node) is dict and part in _KEYED_MAPS and i + 1 < len(parts):
            node = get_args(node)[1]
            entry = _without_none(node)
            # a path may name the entry's key (gateways.<name>.kind) or not (metrics)
            if is_typeddict(entry) and parts[i + 1] not in get_type_hints(entry):
                i += 1
        i += 1
    return node


def json_types(dotted: str) -> tuple[type, ...]:
    """The Python types a field at ``dotted`` may have once read back from JSON: an int
    where a float is declared, ``dict`` for a nested object, ``type(None)`` for null."""
    out: list[type] = []
    for option in _options(field_type(dotted)):
        if option is float:
            out += [int, float]
        elif is_typeddict(option) or get_origin(option) is dict:
            out.append(dict)
        elif get_origin(option) is list:
            out.append(list)
        elif get_origin(option) is Literal:
            out += [type(v) for v in get_args(option)]
        else:
            out.append(option)
    return tuple(dict.fromkeys(out))


def is_number(dotted: str) -> bool:
    """Whether the field at ``dotted`` is a number (possibly null)."""
    return set(json_types(dotted)) - {type(None)} <= {int, float}


def _options(declared: Any) -> list[Any]:
    if get_origin(declared) in (Union, types.UnionType):
        return [o for a in get_args(declared) for o in _options(a)]
    return [declared]


def _without_none(declared: Any) -> Any:
    options = [o for o in _options(declared) if o is not type(None)]
    return options[0] if len(options) == 1 else declared
