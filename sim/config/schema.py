"""The scenario's JSON schema, published as scenarios/schema.json for editors
(``portsim schema`` prints it)."""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import GenerateJsonSchema

from sim.config.types import Scenario, SpecModel


def _titles() -> dict[str, str]:
    """Class name -> the title a table shows in the schema, where they differ (``HostSpec``
    is the ``Host`` table)."""
    out = {}
    for model in SpecModel.__subclasses__():
        title = model.model_config.get("title")
        if title and title != model.__name__:
            out[model.__name__] = title
    return out


class _TableNames(GenerateJsonSchema):
    """Definitions named by their tables' titles, so the schema speaks the file's terms."""

    titles = _titles()

    def normalize_name(self, name: str) -> str:
        return super().normalize_name(self.titles.get(name, name))


def scenario_json_schema() -> dict[str, Any]:
    """The JSON schema published as scenarios/schema.json for editors."""
    schema = Scenario.model_json_schema(schema_generator=_TableNames)
    schema["title"] = "portsim scenario"
    return schema
