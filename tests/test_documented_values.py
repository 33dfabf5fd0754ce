"""Every documented value of every key runs.

The values are read from the schema itself (each ``Literal`` field of the scenario models,
each union tag, each OS preset), so a value added later is tested too; each is put in a
small scenario where it applies and run for a few simulated seconds.  ``policy =
"bsd-random"`` and ``"rfc6056-4"`` on a Linux host once ended in an internal error.
"""

from __future__ import annotations

import copy
import typing
from pathlib import Path
from typing import Any

import pytest

from sim.config.load import parse_scenario
from sim.config.types import Destination, HostSpec, KeepAlive, LoadSpec, Retry, Schedule
from sim.engine import run
from sim.presets import PRESETS

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "scenarios" / "data"

BASE: dict[str, Any] = {
    "name": "values",
    "duration": 3,
    "seed": 1,
    "hosts": [{"name": "client", "os": "linux"}],
    "destinations": [{"name": "api", "address": "10.0.0.10:443"}],
    "load": [
        {
            "destination": "api",
            "arrival": {"kind": "poisson", "rate": 20},
            "lifetime": {"kind": "exponential", "mean": 0.5},
        }
    ],
}


def literal_values(model: type, field: str) -> list[Any]:
    """The values a Literal field documents (through Optional and Annotated)."""
    annotation = model.model_fields[field].annotation
    for arg in (annotation, *typing.get_args(annotation)):
        if typing.get_origin(arg) is typing.Literal:
            return list(typing.get_args(arg))
    raise AssertionError(f"{model.__name__}.{field} is not a Literal")


def literal_fields(model: type) -> list[str]:
    out = []
    for name, info in model.model_fields.items():
        args = (info.annotation, *typing.get_args(info.annotation))
        if any(typing.get_origin(a) is typing.Literal for a in args) and name != "kind":
            out.append(name)
    return out


def union_tags(field: str) -> list[str]:
    """The ``kind`` tags of LoadSpec.arrival or LoadSpec.lifetime (through Optional, Annotated)."""
    tags: list[str] = []
    stack = [LoadSpec.model_fields[field].annotation]
    while stack:
        node = stack.pop()
        if hasattr(node, "model_fields") and "kind" in node.model_fields:
            tags += literal_values(node, "kind")
        else:
            stack += list(typing.get_args(node))
    return tags


def variant(key: str, value: Any) -> dict[str, Any]:
    """BASE with ``key = value`` where it applies."""
    data = copy.deepcopy(BASE)
    host, dest, load = data["hosts"][0], data["destinations"][0], data["load"][0]
    if key in (
        "linux_generation",
        "tcp_tw_reuse",
        "udp_hash_size",
        "tcp_tw_reuse_rule",
        "hz",
        "tcp_rfc1337",
    ):
        host[key] = value
    elif key == "udp_scope":  # a FreeBSD host ("4tuple" is FreeBSD 13+'s; Linux refuses it)
        host.update(os="freebsd", udp_scope=value)
        load.update(protocol="udp")
    elif key == "policy":  # on a Linux host and on a FreeBSD host
        host["policy"] = value
    elif key == "udp_policy":
        host.update(policy="linux" if value == "linux" else "sequential", udp_policy=value)
        load.update(protocol="udp")
    elif key == "scope":
        host.update(os="freebsd", scope=value)
    elif key == "os":
        host["os"] = value
    elif key == "popularity":
        data["destinations"][0] = {
            "name": "api",
            "address": "10.0.0.0/28",
            "count": 6,
            "ports": [443],
            "popularity": value,
        }
    elif key == "shape":
        load["arrival"] = {"kind": "schedule", "points": [[0, 10], [2, 40]], "shape": value}
    elif key == "on_full":
        load["keepalive"] = {"max_connections": 2, "on_full": value}
    elif key in ("close", "socket", "protocol"):
        load[key] = value
    elif key == "arrival":
        load["arrival"] = ARRIVALS[value]
        if value == "trace":
            load.pop("destination")
    elif key == "lifetime":
        load["lifetime"] = LIFETIMES[value]
    elif key == "retry":
        load["retry"] = {"kind": value}
    else:
        raise AssertionError(f"no context for {key}")
    del dest
    return data


ARRIVALS = {
    "poisson": {"kind": "poisson", "rate": 20},
    "constant": {"kind": "constant", "interval": 0.1},
    "burst": {"kind": "burst", "count": 50, "at": 1},
    "onoff": {"kind": "onoff", "rate": 30, "on": 1, "off": 1},
    "schedule": {"kind": "schedule", "points": [[0, 10], [1, 30]]},
    "diurnal": {"kind": "diurnal", "mean": 20, "period": 2},
    "trace": {"kind": "trace", "file": "trace.csv"},
}
LIFETIMES = {
    "fixed": {"kind": "fixed", "value": 0.5},
    "exponential": {"kind": "exponential", "mean": 0.5},
    "lognormal": {"kind": "lognormal", "mean": 0.5, "p99": 2},
    "pareto": {"kind": "pareto", "shape": 2.5, "mean": 0.5},
    "uniform": {"kind": "uniform", "low": 0.1, "high": 0.9},
    "empirical": {"kind": "empirical", "file": "samples.csv"},
}

CASES: list[tuple[str, Any]] = []
for _model in (HostSpec, Destination, LoadSpec, KeepAlive, Retry, Schedule):
    for _field in literal_fields(_model):
        CASES += [(_field, v) for v in literal_values(_model, _field)]
CASES += [("os", name) for name in PRESETS]
CASES += [("arrival", tag) for tag in union_tags("arrival")]
CASES += [("lifetime", tag) for tag in union_tags("lifetime")]
CASES = [(k, v) for k, v in CASES if k != "kind"]
CASES += [("retry", v) for v in literal_values(Retry, "kind")]


def test_every_kind_has_an_example() -> None:
    assert set(union_tags("arrival")) == set(ARRIVALS)
    assert set(union_tags("lifetime")) == set(LIFETIMES)
    assert ("policy", "bsd-random") in CASES and ("policy", "rfc6056-4") in CASES
    assert len(CASES) >= 80


@pytest.mark.parametrize(("key", "value"), CASES, ids=[f"{k}={v}" for k, v in CASES])
def test_documented_value_runs(tmp_path: Path, key: str, value: Any) -> None:
    (tmp_path / "trace.csv").write_text("time_s,destination,lifetime_s\n0.5,api,1\n1.5,api,0.2\n")
    (tmp_path / "samples.csv").write_text("seconds\n0.2\n0.5\n1.5\n")
    scenario = parse_scenario(variant(key, value), f"{key}={value}", tmp_path)
    summary = run(scenario, seed=1).summary
    assert summary["error"] is None
    attempted = summary["connections"]["attempted"]
    requests = (summary.get("requests") or {}).get("attempted", 0)
    assert attempted + requests > 0, "nothing ran"
    for pool in summary["analytic"].values():
        assert 0 <= pool["pressure"] <= 1
