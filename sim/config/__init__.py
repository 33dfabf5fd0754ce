"""Scenario configuration: TOML in, a validated frozen :class:`Scenario` out.

One concept per module: :mod:`~sim.config.types` (the pydantic models and value types),
:mod:`~sim.config.schema` (the JSON schema), :mod:`~sim.config.checks` (rules across
tables), :mod:`~sim.config.overrides` (``--set``), :mod:`~sim.config.load` (reading TOML),
:mod:`~sim.config.errors` (one-line messages), :mod:`~sim.config.plain_values` (booleans
and control characters refused whatever the key).  Nothing here imports the model that
runs a scenario (stack, engine, recorder): the model depends on the configuration, never
the other way round.
"""

from sim.config.errors import ScenarioError
from sim.config.load import load_scenario, parse_scenario, read_toml
from sim.config.overrides import apply_overrides
from sim.config.schema import scenario_json_schema
from sim.config.types import Scenario

__all__ = [
    "Scenario",
    "ScenarioError",
    "apply_overrides",
    "load_scenario",
    "parse_scenario",
    "read_toml",
    "scenario_json_schema",
]
