"""Reading a scenario: TOML file -> ``--set`` overrides -> checks -> a validated Scenario.

Loading never raises anything but :class:`~sim.config.errors.ScenarioError`.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sim.config.checks import model_checks, reference_checks
from sim.config.errors import ScenarioError, format_errors, short, show
from sim.config.overrides import apply_overrides
from sim.config.plain_values import plain_value_checks
from sim.config.types import BOOL_KEYS, Scenario
from sim.safe_paths import SCENARIO_LIMIT, InputFileError
from sim.safe_paths import read_regular as _read_regular


def parse_scenario(
    data: Any, source: str = "<scenario>", base: str | Path | None = None
) -> Scenario:
    """Validate a decoded TOML document (a dict) into a Scenario or raise ScenarioError.

    Data files (traces, lifetime samples) are found relative to ``base`` (the scenario
    file's directory; the working directory when not given)."""
    if not isinstance(data, dict):
        raise ScenarioError([f"{source}: (top level): expected a TOML table"])
    plain = plain_value_checks(source, data, BOOL_KEYS, show)
    if plain:  # named precisely here; pydantic would repeat them at the table's level
        raise ScenarioError(plain)
    references = reference_checks(source, data)
    try:
        sc = Scenario.model_validate(data, context={"base": str(base or ".")})
    except ValidationError as exc:
        raise ScenarioError(format_errors(source, exc, Scenario) + references) from None
    problems = references or model_checks(source, sc)
    if problems:
        raise ScenarioError(problems)
    return sc


def read_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file; every failure becomes a ScenarioError naming the file."""
    source = str(path)
    try:
        raw = _read_regular(path, SCENARIO_LIMIT)
    except InputFileError as exc:
        raise ScenarioError([str(exc)]) from None
    try:
        text = raw.decode("utf-8-sig")  # a byte-order mark, as some Windows editors write
    except UnicodeDecodeError:
        raise ScenarioError([f"{source}: not a text file (not UTF-8)"]) from None
    if "\x00" in text:
        raise ScenarioError([f"{source}: not a text file (contains NUL bytes)"])
    if not text.strip():
        raise ScenarioError(
            [f"{source}: the file is empty; a scenario needs name, duration, destinations and load"]
        )
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError([f"{source}: TOML syntax error: {exc}"]) from None
    except ValueError as exc:  # tomllib's int(): more than 4300 digits, with no position
        for number, line in enumerate(text.splitlines(), 1):
            if re.search(r"\d{4300}", line):
                key = show(line.split("=", 1)[0].strip()) if "=" in line else "(value)"
                raise ScenarioError(
                    [f"{source}: {key}: integer too long, over 4300 digits (line {number})"]
                ) from None
        raise ScenarioError([f"{source}: TOML value error: {short(str(exc))}"]) from None
    except RecursionError:
        raise ScenarioError([f"{source}: TOML nesting too deep"]) from None


def load_scenario(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Scenario:
    """Load, apply ``--set key=value`` overrides, validate.  Raises ScenarioError only."""
    data = read_toml(path)
    apply_overrides(data, overrides, str(path))
    try:
        return parse_scenario(data, str(path), Path(path).parent)
    except ScenarioError as exc:
        raise ScenarioError(_blame_overrides(exc.problems, str(path), overrides)) from None


def _blame_overrides(problems: list[str], source: str, overrides: Iterable[str]) -> list[str]:
    """A problem with a value that ``--set`` gave says so: the file is fine ("f.toml:
    duration: unknown unit 'x' (got '10x')" gains " (from --set)")."""
    keys = {item.partition("=")[0].strip() for item in overrides}
    out = []
    for line in problems:
        key = line.removeprefix(f"{source}: ").partition(": ")[0]
        if line.startswith(f"{source}: ") and any(
            key == k or key.startswith((f"{k}.", f"{k}[")) for k in keys
        ):
            line += " (from --set)"
        out.append(line)
    return out
