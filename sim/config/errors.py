"""Scenario errors in the project's words: one line each, naming the file and the key.

Loading never raises anything but :class:`ScenarioError`, whose ``problems`` are one line
each (``file: dotted.key: message (got value)``), so the CLI can print every problem at once
and exit 2 without a traceback.

pydantic's messages ("Input tag 'possion' found using 'kind' does not match any of the
expected tags", "Extra inputs are not permitted") describe its machinery, not the scenario
file.  :func:`describe` turns each error into what a user can act on: the key's place, what
is expected there and, for a misspelled key, kind or choice, the closest valid one.  It
only reads the models' annotations (to know which keys and choices exist at a place), so
this module depends on pydantic and nothing else of the project.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ValidationError


class ScenarioError(Exception):
    """Every problem found in a scenario, one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


# A model's keys are listed in the message when there are at most this many.
MAX_LISTED = 16


def suggest(word: object, choices: Iterable[object], *, cutoff: float = 0.6) -> str:
    """``'did you mean "poisson"?'`` for the closest choice, or ``""`` (difflib ratio at
    least ``cutoff``)."""
    choice = closest(word, choices, cutoff=cutoff)
    return "" if choice is None else f"did you mean {_quoted(choice)}?"


def closest(word: object, choices: Iterable[object], *, cutoff: float = 0.6) -> object | None:
    """The choice closest to ``word`` (difflib ratio at least ``cutoff``), unless it is
    ``word`` itself; None when none is close."""
    if not isinstance(word, str) or not word:
        return None
    names = {str(c): c for c in choices}
    close = difflib.get_close_matches(word, list(names), n=1, cutoff=cutoff)
    if not close or close[0] == word:
        return None
    return names[close[0]]


def _quoted(value: object) -> str:
    """A choice as a TOML user writes it; anything odd (line breaks, quotes) as its repr."""
    if not isinstance(value, str):
        return str(value)
    plain = value.isprintable() and '"' not in value and len(value) <= 60
    return f'"{value}"' if plain else repr(value)[:60]


def _choices(values: Iterable[object]) -> str:
    return ", ".join(str(v) for v in values)


# ---- where an error is: the annotation at a location -------------------------------------


def _strip(annotation: Any) -> Any:
    """Annotated[X, ...] -> X; X | None -> X (repeatedly)."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


def _union_members(annotation: Any) -> list[Any]:
    if typing.get_origin(annotation) in (Union, types.UnionType):
        return [_strip(a) for a in typing.get_args(annotation) if a is not type(None)]
    return [annotation]


def _tag_of(model: Any) -> Any:
    field = model.model_fields.get("kind") if _is_model(model) else None
    if field is None:
        return None
    args = typing.get_args(_strip(field.annotation))
    return args[0] if typing.get_origin(_strip(field.annotation)) is Literal and args else None


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def annotation_at(root: type[BaseModel], loc: tuple[Any, ...]) -> Any:
    """The (stripped) annotation that validated ``loc``, or None when it cannot be told.

    A discriminated union's member appears in pydantic's location as its tag
    (``load, 0, arrival, poisson, rate``), which selects the member."""
    node: Any = root
    for part in loc:
        node = _strip(node)
        members = _union_members(node)
        if len(members) > 1:
            node = next((m for m in members if _tag_of(m) == part), None)
            if node is None:
                return None
            continue
        origin = typing.get_origin(node)
        if _is_model(node) and isinstance(part, str):
            field = node.model_fields.get(part)
            if field is None:
                return None
            node = field.annotation
        elif origin is list and isinstance(part, int):
            node = typing.get_args(node)[0]
        elif origin is tuple and isinstance(part, int):
            args = typing.get_args(node)
            if args[-1:] == (Ellipsis,):
                node = args[0]
            elif part < len(args):
                node = args[part]
            else:
                return None
        else:
            return None
    return _strip(node)


# ---- the wording --------------------------------------------------------------------------

_NAME_PATTERN = "^[A-Za-z0-9._-]+$"

_PLAIN = {
    "string_type": "expected a string (in quotes)",
    "int_type": "expected a whole number",
    "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number",
    "int_parsing_size": "a number too large",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "finite_number": "must be a finite number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "list_type": "expected a list ([...])",
    "tuple_type": "expected a list ([...])",
    "set_type": "expected a list ([...])",
    "dict_type": "expected a table ({ ... } or a [section])",
    "model_type": "expected a table ({ ... } or a [section])",
    "model_attributes_type": "expected a table ({ ... } or a [section])",
    "missing": "required",
    "none_required": "must be left out",
}


def describe(item: dict[str, Any], root: type[BaseModel]) -> tuple[tuple[Any, ...], str, bool]:
    """One pydantic error as ``(location, message, quiet)``: ``location`` may be refined
    (a union's missing or unknown ``kind`` is reported at ``...kind``), and ``quiet`` says
    the input should not be appended as ``(got ...)`` (a table, or already in the message)."""
    kind = item["type"]
    loc = tuple(item["loc"])
    ctx = item.get("ctx") or {}
    got = item.get("input")
    quiet = kind == "missing" or isinstance(got, dict)
    if kind == "list_type" and _is_model(_list_item(annotation_at(root, loc))):
        return loc, f"expected a list ([...] or [[{_loc_name(loc)}]] tables)", quiet
    if kind in _PLAIN:
        return loc, _PLAIN[kind], quiet
    if kind in ("value_error", "assertion_error"):
        msg = str(item["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
        return loc, msg, quiet or "(got " in msg
    if kind == "extra_forbidden":
        return loc, _unknown_key(root, loc), quiet
    if kind == "union_tag_invalid":
        tags = _tags(root, loc)
        hint = suggest(ctx.get("tag"), tags)
        msg = f"unknown kind; {hint + ' ' if hint else ''}one of: {_choices(tags)}"
        return (*loc, "kind"), f"{msg} (got {_quoted(ctx.get('tag'))})", True
    if kind == "union_tag_not_found":
        return (*loc, "kind"), f"required; one of: {_choices(_tags(root, loc))}", True
    if kind in ("literal_error", "enum"):
        choices = _literal_choices(root, loc)
        if choices is None:
            return loc, f"expected {ctx.get('expected', 'one of the listed values')}", quiet
        hint = suggest(got, choices)
        return loc, f"{hint + ' ' if hint else ''}expected one of: {_choices(choices)}", quiet
    bound = _bound(kind, ctx)
    if bound:
        return loc, bound, quiet
    if kind in ("too_short", "string_too_short", "too_long", "string_too_long"):
        return loc, _length(kind, ctx, got), quiet
    if kind == "string_pattern_mismatch":
        if ctx.get("pattern") == _NAME_PATTERN:
            return loc, "use only letters, digits, '.', '_' and '-'", quiet
        return loc, f"must match the pattern {ctx.get('pattern')}", quiet
    # Anything not foreseen: pydantic's sentence, made to read as ours.
    msg = str(item["msg"]).replace("Input should be", "must be").replace("Input ", "value ")
    return loc, msg, quiet


def _list_item(annotation: Any) -> Any:
    args = typing.get_args(annotation) if typing.get_origin(annotation) is list else ()
    return _strip(args[0]) if args else None


def _loc_name(loc: tuple[Any, ...]) -> str:
    names = [str(p) for p in loc if isinstance(p, str)]
    return ".".join(names) or "name"


def _bound(kind: str, ctx: dict[str, Any]) -> str:
    words = {
        "greater_than": ("gt", "must be greater than"),
        "greater_than_equal": ("ge", "must be at least"),
        "less_than": ("lt", "must be less than"),
        "less_than_equal": ("le", "must be at most"),
    }
    if kind not in words:
        return ""
    key, text = words[kind]
    limit = ctx.get(key)
    return f"{text} {limit:g}" if isinstance(limit, float) else f"{text} {limit}"


def _length(kind: str, ctx: dict[str, Any], got: Any) -> str:
    if kind == "string_too_short":
        return "must not be empty" if ctx.get("min_length") == 1 else "too short"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters"
    if kind == "too_short":
        n = ctx.get("min_length")
        return "must not be empty" if n == 1 else f"needs at least {n} items"
    n = ctx.get("max_length")
    return f"expected at most {n} items, got {ctx.get('actual_length', len(got or ()))}"


def _unknown_key(root: type[BaseModel], loc: tuple[Any, ...]) -> str:
    model = annotation_at(root, loc[:-1])
    if not _is_model(model):
        return "unknown key"
    keys = list(model.model_fields)
    hint = suggest(loc[-1], keys)
    if hint:
        return f"unknown key; {hint.replace(chr(34), '')}"
    if len(keys) <= MAX_LISTED:
        return f"unknown key; expected one of: {_choices(keys)}"
    return "unknown key (the README's scenario reference lists the keys)"


def _tags(root: type[BaseModel], loc: tuple[Any, ...]) -> list[Any]:
    union = annotation_at(root, loc)
    return [t for t in (_tag_of(m) for m in _union_members(union)) if t is not None]


def _literal_choices(root: type[BaseModel], loc: tuple[Any, ...]) -> list[Any] | None:
    annotation = annotation_at(root, loc)
    if typing.get_origin(annotation) is Literal:
        return list(typing.get_args(annotation))
    return None


# Phrases of pydantic's own wording; no message shown to a user may contain them.
PYDANTIC_PHRASES = (
    "Input should",
    "Input tag",
    "Unable to extract tag",
    "validation error",
    "type=",
    "Field required",
    "Extra inputs are not permitted",
    "should have at least",
    "should have at most",
    "String should",
    "Value error,",
    "Assertion failed",
    "valid dictionary",
    "object to extract fields from",
    "after validation",
    "pydantic",
)


# ---- one-line messages ------------------------------------------------------------------

_TAGS = {
    "arrival": {"poisson", "constant", "burst", "onoff", "schedule", "diurnal", "trace"},
    "lifetime": {"fixed", "exponential", "lognormal", "pareto", "uniform", "empirical"},
}


def show(text: object) -> str:
    """A name as it can stand in a one-line message: itself if plain, else its repr."""
    text = str(text)
    plain = text.isprintable() and len(text) <= 60 and text.strip() == text and text
    return text if plain else short(text)


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    previous: Any = None
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in _TAGS.get(previous, ()):
            previous = None
            continue  # the union's tag: the user wrote kind = ..., not this key
        else:
            out += ("." if out else "") + show(part)
        previous = part
    return out or "(top level)"


def short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def format_errors(source: str, error: ValidationError, root: type[BaseModel]) -> list[str]:
    """pydantic's errors in the project's words (:func:`describe`), one line each.

    A misspelt key that holds a table comes first, and the 'required' its correct spelling
    then gets is left out: one typo, one line (``arival = {...}`` is the cause,
    ``arrival: required`` only its consequence).  A misspelt plain value keeps both lines,
    the second naming where the value belongs."""
    items: list[dict[str, Any]] = [dict(item) for item in error.errors(include_url=False)]
    typos: set[tuple[Any, ...]] = set()
    meant: set[tuple[Any, ...]] = set()
    for item in items:
        loc = tuple(item["loc"])
        if item["type"] == "extra_forbidden":
            model = annotation_at(root, loc[:-1])
            field = closest(loc[-1], model.model_fields) if _is_model(model) else None
            if field is not None and isinstance(item.get("input"), dict):
                typos.add(loc)
                meant.add((*loc[:-1], field))
    items = [i for i in items if not (i["type"] == "missing" and tuple(i["loc"]) in meant)]
    items.sort(key=lambda item: tuple(item["loc"]) not in typos)
    flagged = {tuple(i["loc"]) for i in items if i["type"] == "extra_forbidden"}
    lines = []
    for item in items:
        misspelt = _misspelt_required(item, flagged, root)
        if misspelt is not None:
            lines.append(f"{source}: {misspelt}")
            continue
        loc, msg, quiet = describe(item, root)
        suffix = "" if quiet else f" (got {short(item.get('input'))})"
        lines.append(f"{source}: {_loc(loc)}: {msg}{suffix}")
    return lines


def _misspelt_required(
    item: dict[str, Any], flagged: set[tuple[Any, ...]], root: type[BaseModel]
) -> str | None:
    """A required key missing beside an unknown key spelt like it, in a table that takes
    keys of its own (a gateway's kind keys), so pydantic saw no unknown key: the misspelt
    key is the cause, named with the spelling it needs.  None otherwise."""
    given = item.get("input")
    if item["type"] != "missing" or not isinstance(given, dict):
        return None
    loc = tuple(item["loc"])
    model = annotation_at(root, loc[:-1])
    known = set(model.model_fields) if _is_model(model) else set()
    typo = closest(loc[-1], [k for k in given if isinstance(k, str) and k not in known])
    if typo is None or (*loc[:-1], typo) in flagged:
        return None
    meant = _quoted(loc[-1])
    return f"{_loc((*loc[:-1], typo))}: not a key; did you mean {meant}? ({meant} is required)"
