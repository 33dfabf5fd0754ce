"""summary.json's JSON schema, generated from the typed shape (sim.summary.types).

Published as ``scenarios/summary.schema.json`` beside the scenario schema (``portsim
schema --summary`` prints it; a test checks the file is current).  Every object lists all
its keys (``additionalProperties: false``), so a key added to the summary without adding it
to the types fails the test that validates every shipped scenario's summary.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from sim.summary.types import Summary


def summary_schema() -> dict[str, Any]:
    """The JSON schema (draft 2020-12) of a completed run's summary.json."""
    schema = TypeAdapter(Summary).json_schema(mode="serialization")
    _close_objects(schema)
    schema["title"] = "portsim summary.json"
    return schema


def _close_objects(node: Any) -> None:
    """``additionalProperties: false`` on every object with named keys: the types list
    every key a summary has (maps keyed by destination keep their value schema)."""
    if isinstance(node, dict):
        if node.get("type") == "object" and "properties" in node:
            node.setdefault("additionalProperties", False)
        for value in node.values():
            _close_objects(value)
    elif isinstance(node, list):
        for value in node:
            _close_objects(value)
