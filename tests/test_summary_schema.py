"""summary.json's published schema: current, closed (every key declared), and enforced.

Every shipped scenario's summary is validated against it in
tests/test_cli.py::test_every_scenario_runs_at_a_short_horizon; here, that the file is the
one the types generate and that the schema refuses what a summary must not hold.
"""

from __future__ import annotations

import ast
import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, ValidationError

import sim
from sim.cli import main
from sim.result import strict_json
from sim.summary.paths import field_type, is_number, json_types, lookup
from sim.sweeps import METRICS

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


def _compare_paths() -> list[str]:
    """Every ``_path("a", "b")`` in sim/compare.py, dotted, and every
    ``_over_gateways(f, "a", "b")`` as ``gateways.a.b``."""
    tree = ast.parse((ROOT / "sim" / "compare.py").read_text())
    prefixes = {"_path": [], "_over_gateways": ["gateways"]}
    return [
        ".".join(
            prefixes[node.func.id]  # type: ignore[attr-defined]
            + [arg.value for arg in node.args if isinstance(arg, ast.Constant)]
        )
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) in prefixes
    ]


def test_compare_reads_declared_fields():
    paths = _compare_paths()
    assert "requests.wait_s.p99" in paths and len(paths) >= 20
    assert "gateways.mappings.dropped" in paths
    for dotted in paths:
        field_type(dotted)  # KeyError when the summary's types have no such field


def test_sweep_metrics_are_declared_numbers():
    """Every runs.csv metric names a number of the summary (the fraction is derived)."""
    for metric in METRICS:
        if metric != "connections.failed_fraction":
            assert is_number(metric), metric


def test_paths_resolve_through_the_types():
    assert json_types("connections.attempted") == (int,)
    assert json_types("first_failure_s") == (int, float, type(None))  # a float may read as int
    assert json_types("analytic.blocking") == (int, float)  # a field of one pool's entry
    assert json_types("hosts") == (list,)
    with pytest.raises(KeyError):
        field_type("connections.refused")
    with pytest.raises(KeyError):
        field_type("pressure.peak.more")


def test_lookup_treats_absent_and_null_alike():
    summary = {"requests": None, "connections": {"attempted": 3}}
    assert lookup(summary, "connections.attempted") == 3
    assert lookup(summary, "requests.attempted") is None
    assert lookup(summary, "retries.retries") is None


def test_notebooks_read_declared_fields():
    """The notebooks read a summary as ``x.summary["a"]["b"]`` or through a name bound in
    the same cell (``s = result.summary``; ``s["a"]["b"]``): each such path is a field."""
    found = set()
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for cell in json.loads(notebook.read_text())["cells"]:
            code = "".join(cell["source"]) if cell["cell_type"] == "code" else ""
            names = {"summary", *re.findall(r"\b(\w+) = [\w.()]*\.summary\b", code)}
            pattern = rf"\b(?:{'|'.join(names)})((?:\[\"\w+\"\])+)"
            for chain in re.findall(pattern, code):
                found.add(".".join(re.findall(r"\[\"(\w+)\"\]", chain)))
    assert {"connections", "steady_state", "probes", "requests", "hosts"} <= found
    for dotted in found:
        field_type(dotted)
