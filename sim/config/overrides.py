"""``--set KEY=VALUE`` overrides: dotted keys (``load[0].arrival.rate``) into a decoded
scenario, values parsed as TOML, each problem one line."""

from __future__ import annotations

import itertools
import re
import tomllib
from typing import Any

from sim.config.errors import ScenarioError, show

_STEP = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*)((?:\[\d+\])*)")


def _parse_path(key: str) -> list[str | int]:
    parts: list[str | int] = []
    for piece in key.split("."):
        match = _STEP.fullmatch(piece)
        if not match:
            raise ValueError("not a dotted key such as load[0].arrival.rate")
        parts.append(match.group(1))
        parts.extend(int(i) for i in re.findall(r"\[(\d+)\]", match.group(2)))
    return parts


def parse_value(text: str) -> Any:
    """A TOML value (``400``, ``"5.12"``, ``[1, 2]``, ``{kind = "poisson", rate = 3}``),
    or the bare text when it is not valid TOML (``--set hosts[0].os=linux-4.6``)."""
    try:
        parsed = tomllib.loads(f"v = {text}")
    except (tomllib.TOMLDecodeError, ValueError, RecursionError):
        return text
    return parsed["v"] if parsed.keys() == {"v"} else text


def apply_overrides(
    data: dict[str, Any], overrides: list[str] | tuple[str, ...], source: str
) -> None:
    """Apply ``--set KEY=VALUE`` texts (values parsed as TOML) to a decoded scenario."""
    problems = []
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            problems.append(f"--set {show(item)}: expected KEY=VALUE")
            continue
        problem = assign(data, key, parse_value(text.strip()), source)
        if problem:
            problems.append(f"--set {problem}")
    if problems:
        raise ScenarioError(problems)


def assign(data: dict[str, Any], key: str, value: Any, source: str) -> str | None:
    """Set the dotted ``key`` (``load[0].arrival.rate``) to ``value``, creating tables on
    the way; returns a problem (``key: why``) instead of raising."""
    try:
        path = _parse_path(key)
    except ValueError as exc:
        return f"{show(key)}: {exc}"
    node: Any = data
    for depth, (step, nxt) in enumerate(itertools.pairwise(path)):
        if isinstance(step, int):
            if not isinstance(node, list) or step >= len(node):
                return f"{show(key)}: no list entry [{step}] in {source}"
            node = node[step]
        else:
            if isinstance(node, list):
                return _list_hint(key, path, depth)
            if not isinstance(node, dict):
                return f"{show(key)}: {step} is not a table in {source}"
            node = node.setdefault(step, [] if isinstance(nxt, int) else {})
    last = path[-1]
    if isinstance(last, int):
        if not isinstance(node, list) or last >= len(node):
            return f"{show(key)}: no list entry [{last}] in {source}"
        node[last] = value
    elif isinstance(node, dict):
        node[last] = value
    elif isinstance(node, list):
        return _list_hint(key, path, len(path) - 1)
    else:
        return f"{show(key)}: cannot set a key inside a non-table"
    return None


def _list_hint(key: str, path: list[str | int], depth: int) -> str:
    """``load.arrival.rate`` where load is a list: say so and show the indexed key."""
    fixed = [*path[:depth], 0, *path[depth:]]
    text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in fixed).lstrip(".")
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path[:depth])
    return f"{show(key)}: {where.lstrip('.')} is a list: use {text}"
