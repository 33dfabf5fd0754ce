"""The scenario's JSON schema, published as scenarios/schema.json for editors
(``portsim schema`` prints it)."""

from __future__ import annotations

from typing import Any

from sim.config.types import Scenario


def scenario_json_schema() -> dict[str, Any]:
    """The JSON schema published as scenarios/schema.json for editors."""
    schema = Scenario.model_json_schema()
    schema["title"] = "portsim scenario"
    return schema
