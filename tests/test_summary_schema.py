"""summary.json's published schema: current, closed (every key declared), and enforced.

Every shipped scenario's summary is validated against it in
tests/test_cli.py::test_every_scenario_runs_at_a_short_horizon; here, that the file is the
one the types generate and that the schema refuses what a summary must not hold.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, ValidationError

import sim
from sim.cli import main
from sim.result import strict_json

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_FILE = ROOT / "scenarios" / "summary.schema.json"


def test_published_summary_schema_is_current(capsys):
    """scenarios/summary.schema.json is what `portsim schema --summary` prints."""
    assert main(["schema", "--summary"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(SCHEMA_FILE.read_text())


@pytest.fixture(scope="module")
def summary() -> dict[str, Any]:
    """A real run's summary as written (four hosts: Linux, Windows, macOS, FreeBSD)."""
    scenario = sim.load_scenario(
        ROOT / "scenarios" / "compare-os-one-backend.toml", ["duration=20"]
    )
    return json.loads(strict_json(sim.run(scenario).summary))


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    return Draft202012Validator(json.loads(SCHEMA_FILE.read_text()))


def test_a_real_summary_is_valid(summary, validator):
    validator.validate(summary)
    assert len(summary["hosts"]) == 4 and "windows_events" in summary


@pytest.mark.parametrize(
    "path, value",
    [
        (("undeclared",), 1),  # a top-level key the types do not name
        (("hosts", 0, "undeclared"), 1),  # ... inside a host
        (("connections", "attempted"), "3"),  # a count as text
        (("pressure", "peak"), None),  # a required figure unknown
        (("steady_state", "stationary"), 1),  # not a boolean
        (("hosts", 1, "capacity", "method"), "guess"),  # not one of the methods
    ],
)
def test_the_schema_refuses(summary, validator, path, value):
    bad = copy.deepcopy(summary)
    node = bad
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ValidationError):
        validator.validate(bad)


@pytest.mark.parametrize("key", ["connections", "run", "hosts"])
def test_the_schema_requires(summary, validator, key):
    bad = copy.deepcopy(summary)
    del bad[key]
    with pytest.raises(ValidationError):
        validator.validate(bad)
