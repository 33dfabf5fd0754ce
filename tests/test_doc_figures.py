"""Figures the docs quote from shipped scenarios, checked against runs of those scenarios.

Each figure is read from the doc's own text (a regular expression over the sentence that
quotes it), so a doc edited without the model, or a model change that leaves the docs
behind, fails here.  The scenarios are the fast ones (about 17 s in all on an idle
machine); ``k8s-node-pods-no-keepalive`` (20 s alone) is left to its arithmetic.  The
README table's "~" figures are checked to the significant digits they show.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest

import sim
from sim.engine import Model
from sim.fleet_addresses import fleet_addresses

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SCENARIOS = ROOT / "scenarios"


def _quoted(doc: str, pattern: str) -> re.Match[str]:
    """The one match of ``pattern`` (whitespace in it matches any run, line breaks too)."""
    text = (ROOT / doc).read_text()
    found = list(re.finditer(pattern.replace(" ", r"\s+"), text, re.DOTALL))
    assert len(found) == 1, f"{doc}: {pattern!r} matched {len(found)} times"
    return found[0]


def _number(text: str) -> float:
    return float(text.replace(",", ""))


@cache
def _summary(name: str) -> dict[str, Any]:
    return dict(sim.run(sim.load_scenario(SCENARIOS / f"{name}.toml")).summary)


def test_keepalive_pods_connections_and_node_share() -> None:
    """docs/gateways.md and the README table: keep-alive pools open N connections for all
    180,161 requests, the node's peak 1.1 % of its tuples, nothing dropped."""
    doc = _quoted(
        "docs/gateways.md",
        r"`k8s-node-pods-keepalive.toml`: keep-alive pools: ([\d,]+) connections, ([\d.]+) %"
        r" of the node's tuples",
    )
    readme = _quoted(
        "README.md",
        r"([\d,]+) connections for ([\d,]+) requests, ([\d.]+) % of the node's tuples, nothing"
        r" dropped",
    )
    s = _summary("k8s-node-pods-keepalive")
    node = s["gateways"]["node"]
    for connections, share in ((doc[1], doc[2]), (readme[1], readme[3])):
        assert s["requests"]["connections"] == _number(connections)
        assert round(100 * node["pressure"]["peak"], 1) == _number(share)
    assert s["requests"]["attempted"] == s["requests"]["succeeded"] == _number(readme[2])
    assert node["mappings"]["dropped"] == 0


def test_two_snat_addresses_split_and_limit() -> None:
    """docs/gateways.md: the hash puts 53 pods on one address and 47 on the other, no
    spill-over, and the node's limit 537 / 0.53 = 1,013 connects/s, not 1,073.

    The split is read from the gateway after the run (its cached (pod, destination) ->
    address choices); the limit is arithmetic on the scenario: 64,512 tuples per address
    held 0.2 s (mean life) + 120 s (conntrack TIME_WAIT) = 120.2 s give 64,512 / 120.2 =
    536.7/s per address; the busier address takes 0.53 of the load, so the node manages
    536.7 / 0.53 = 1,012.7/s; two even halves would give 2 x 536.7 = 1,073.4/s."""
    m = _quoted(
        "docs/gateways.md",
        r"the hash puts (\d+) pods on one address and (\d+) on the other; no spill-over; the"
        r" node's limit is (\d+) / ([\d.]+) = ([\d,]+) connects/s, not ([\d,]+)",
    )
    more, fewer, per_address, share, limit, even = (_number(g) for g in m.groups())
    sc = sim.load_scenario(SCENARIOS / "k8s-node-two-snat-addresses.toml")
    model = Model(sc, sc.seed, events=False)
    result = model.run()
    gateway = model.gateways["node"]
    members = fleet_addresses(sc.hosts[0].address, 100)
    pods = {members.address(i) for i in range(100)}
    choices: dict[str, int] = {}
    for (source, _destination), index in gateway.address_of.items():  # type: ignore[attr-defined]
        choices[source] = index
    assert set(choices) == pods  # every pod connected
    counts = sorted((list(choices.values()).count(i) for i in (0, 1)), reverse=True)
    assert counts == [more, fewer]
    mappings = result.summary["gateways"]["node"]["mappings"]
    assert mappings["dropped"] == 0  # no spill-over needed: no tuple ran out
    assert mappings["succeeded"] == mappings["attempted"]

    hold = 0.2 + 120.0
    assert round(64512 / hold) == per_address
    assert share == more / 100
    assert round(64512 / hold / share) == limit
    assert round(2 * 64512 / hold) == even


def test_no_keepalive_node_rate_arithmetic() -> None:
    """docs/gateways.md: "the node's 64,512 tuples (537 connects/s at 120.2 s held)": the
    range 1024-65535 is 64,512 ports, 64,512 / 120.2 = 536.7.  (The run's own figures, ~110
    s to fill, p99 67 s, 4,207 ETIMEDOUT, take 20 s to run and are not checked here.)"""
    m = _quoted(
        "docs/gateways.md",
        r"the node's ([\d,]+) tuples \((\d+) connects/s at ([\d.]+) s held\)",
    )
    tuples, rate, hold = (_number(g) for g in m.groups())
    assert tuples == 65535 - 1024 + 1
    assert round(tuples / hold) == rate


def test_dns_flood_dropped_share_and_first_drop() -> None:
    """docs/gateways.md: k8s-node-dns-flood drops 15 % of queries over 2 min, the first at
    22 s."""
    m = _quoted(
        "docs/gateways.md",
        r"`k8s-node-dns-flood.toml`: UDP, 30 s hold: (\d+) % of queries dropped over 2 min"
        r".*?first drop at (\d+) s",
    )
    s = _summary("k8s-node-dns-flood")
    assert s["duration_s"] == 120
    mappings = s["gateways"]["node"]["mappings"]
    assert round(100 * mappings["dropped"] / mappings["attempted"]) == int(m[1])
    assert s["connections"]["failed_by_error"]["no_reply"] == mappings["dropped"]
    assert round(s["first_failure_s"]) == int(m[2])


def _decimals(value: float) -> int:
    text = repr(value)
    return len(text.split(".")[1]) if "." in text else 0


def _matches(doc: Any, actual: Any, path: str) -> None:
    """Every value the doc shows equals the run's, floats to the digits the doc shows."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            assert key in actual, f"{path}.{key} not in the summary"
            _matches(value, actual[key], f"{path}.{key}")
    elif isinstance(doc, float):
        assert round(actual, _decimals(doc)) == doc, path
    else:
        assert actual == doc, path


def test_fleet_summary_example() -> None:
    """docs/fleets.md quotes the ``fleet`` entry of k8s-node-100-pods-fleet's summary
    ("numbers rounded here"): every value it shows is the run's, to the digits shown."""
    m = _quoted(
        "docs/fleets.md",
        r"\(from `scenarios/k8s-node-100-pods-fleet.toml`, numbers rounded here\)"
        r" ```json (.*?)```",
    )
    doc = json.loads("{" + m[1] + "}")["fleet"]
    assert doc["worst_member"]["attempted"] > 0  # the block parsed
    _matches(doc, _summary("k8s-node-100-pods-fleet")["hosts"][0]["fleet"], "fleet")


@pytest.mark.parametrize(
    "value", [0.01279, 93.614, 904.68, 1.0]
)  # the rounding rule the fleet check relies on
def test_decimals(value: float) -> None:
    assert round(value, _decimals(value)) == value


def _about(doc: str, actual: float) -> bool:
    """``~doc`` as the README writes it: the run's value to the significant digits the doc
    shows (trailing zeros of a whole number are not significant: ~11,800 is 3 digits)."""
    digits = doc.replace(",", "")
    whole, _, decimals = digits.partition(".")
    if decimals:
        return round(actual, len(decimals)) == float(digits)
    zeros = len(whole) - len(whole.rstrip("0"))
    scale = 10**zeros if zeros < len(whole) else 1
    return round(actual / scale) * scale == int(whole)


def _readme_row(scenario: str) -> str:
    return _quoted("README.md", rf"\| `{scenario}.toml` \| ([^\n]*) \|")[1]


def test_readme_table_figures() -> None:
    """The README's scenario table, for the fast scenarios whose figure is unambiguous."""
    row = _readme_row("linux-one-backend-500rps")
    m = re.search(r"EADDRNOTAVAIL after ~(\d+) s", row)
    assert m is not None
    assert _about(m[1], _summary("linux-one-backend-500rps")["first_failure_s"])

    row = _readme_row("http-client-keepalive")
    m = re.search(r"~(\d+) connections in all, pressure ([\d.]+) %", row)
    assert m is not None
    s = _summary("http-client-keepalive")
    assert _about(m[1], s["requests"]["connections"])
    assert _about(m[2], 100 * s["pressure"]["peak"])

    row = _readme_row("dns-resolver-udp-burst")
    m = re.search(r"([\d,]+) at once fit, ([\d,]+) get ~([\d,]+) `EAGAIN`", row)
    assert m is not None
    s = _summary("dns-resolver-udp-burst")
    assert _about(m[3], s["connections"]["failed_by_error"]["EAGAIN"])

    row = _readme_row("replayed-trace")
    m = re.search(r"a cron burst takes (\d+) % of a pool", row)
    assert m is not None
    assert _about(m[1], 100 * _summary("replayed-trace")["pressure"]["peak"])


@pytest.mark.parametrize(
    ("doc", "actual", "agrees"),
    [
        ("56", 56.15, True),
        ("56", 56.6, False),
        ("50", 47, True),
        ("50", 56, False),
        ("11,800", 11806, True),
        ("11,800", 11900, False),
        ("0.2", 0.17, True),
        ("0.2", 0.26, False),
    ],
)
def test_about(doc: str, actual: float, agrees: bool) -> None:
    assert _about(doc, actual) is agrees
