"""Error messages a user can act on (issue 11): the project's own one-liners, never pydantic's
wording; "did you mean" for misspellings; durations with any common unit; port ranges as
strings; a --set on a list that says how to index it; tcp_tw_reuse is not a boolean.

Expected suggestions are the obvious intended word for each typo; expected seconds and port
counts are hand arithmetic.
"""

from __future__ import annotations

import copy
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from sim.cli import main
from sim.config.errors import PYDANTIC_PHRASES, ScenarioError
from sim.config.load import load_scenario, parse_scenario
from sim.config.overrides import apply_overrides
from sim.units import parse_duration, parse_port_range

ROOT = Path(__file__).resolve().parent.parent
VALID = ROOT / "scenarios" / "linux-one-backend-500rps.toml"
CORPUS = sorted(p for p in (Path(__file__).parent / "malformed").iterdir() if p.is_file())
BASE = tomllib.loads(VALID.read_text())


def problems_for(edit: dict[str, Any] | None = None, sets: tuple[str, ...] = ()) -> list[str]:
    """The problems reported for the valid scenario with top-level keys replaced and --set
    overrides applied; [] when it is accepted."""
    data = copy.deepcopy(BASE)
    data.update(edit or {})
    try:
        apply_overrides(data, list(sets), "s.toml")
        parse_scenario(data, "s.toml")
    except ScenarioError as exc:
        return exc.problems
    return []


def only(edit: dict[str, Any] | None = None, sets: tuple[str, ...] = ()) -> str:
    problems = problems_for(edit, sets)
    assert len(problems) == 1, problems
    return problems[0]


# ---- no pydantic wording, anywhere -------------------------------------------------------

# Bad values for every kind of field: (a --set override) each.
HOSTILE_SETS = [
    "load[0].arrival.kind=possion",
    "load[0].arrival={rate = 5}",
    "load[0].arrival=[1, 2]",
    "load[0].arrival.rate=fast",
    "load[0].arrival.rate=-1",
    "load[0].arrival.rate=nan",
    "load[0].lifetime.kind=weibul",
    'load[0].lifetime={kind = "lognormal", mean = 1}',
    "load[0].lifetime.mean=0",
    "load[0].close=server-first",
    "load[0].socket=listen",
    "load[0].protocol=sctp",
    "load[0].keepalive={max_connections = 0}",
    'load[0].keepalive={max_connections = 3, on_full = "queue"}',
    'load[0].retry={kind = "linear"}',
    'load[0].retry={kind = "fixed", max_attempts = 5000}',
    "load[0].weights=[1, 2]",
    "load[0].destinations=[]",
    "load[0].local_port_range=[1, 2, 3]",
    "load[0].extra=1",
    "hosts[0].tcp_tw_reuse=true",
    "hosts[0].tcp_tw_reuse=3",
    "hosts[0].tcp_timestamps=maybe",
    "hosts[0].udp_hash_size=1000",
    "hosts[0].linux_generation=G9",
    "hosts[0].port_range=[0, 70000]",
    "hosts[0].port_range=5",
    "hosts[0].reserved_ports={a = 1}",
    "hosts[0].addresses=[]",
    "hosts[0].addresses=5",
    "hosts[0].kernel=6.18",
    "hosts[0].os=linx",
    "hosts[0].scope=everything",
    "hosts[0].policy=randomish",
    "hosts[0].table_size=0",
    "hosts=5",
    "hosts=[]",
    "hosts[0].name=[1]",
    "destinations[0].count=0",
    "destinations[0].popularity=zipff",
    "destinations[0].zipf_s=0",
    'destinations=[{name = "x"}]',
    'name=""',
    'name="a b"',
    "seed=1.5",
    "seed=-1",
    "seed=lucky",
    "duration=0",
    'duration="2 parsecs"',
    "duration=[1]",
    "bin=0",
    "max_events=0",
    "description={a = 1}",
    "load=5",
    "load=[5]",
]


def _messages_of_corpus() -> list[str]:
    messages = []
    for path in CORPUS:
        try:
            load_scenario(path)
        except ScenarioError as exc:
            messages += exc.problems
    return messages


def test_no_message_uses_pydantic_wording() -> None:
    """Every malformed file and every hostile --set: our one-liners only."""
    messages = _messages_of_corpus()
    assert len(messages) > len(CORPUS)  # every file reports, several report more than one
    for item in HOSTILE_SETS:
        found = problems_for(sets=(item,))
        assert found, f"{item} was accepted"
        messages += found
    for message in messages:
        for phrase in PYDANTIC_PHRASES:
            assert phrase.lower() not in message.lower(), (phrase, message)
        assert "\n" not in message


def test_the_phrase_list_catches_what_pydantic_says() -> None:
    """The banned phrases are what pydantic really prints, so the test above can fail."""
    from pydantic import ValidationError

    from sim.config.types import Scenario

    data = copy.deepcopy(BASE)
    data["load"][0]["arrival"] = {"kind": "possion", "rate": 5}
    data["hosts"][0]["udp_hash_size"] = 3
    data["seeed"] = 1
    with pytest.raises(ValidationError) as info:
        Scenario.model_validate(data)
    raw = str(info.value)
    caught = [p for p in PYDANTIC_PHRASES if p in raw]
    assert {"Input tag", "Input should", "validation error", "type=", "Extra inputs"} <= {
        p.split(" are")[0] for p in caught
    }


# ---- did you mean ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sets", "where", "hint"),
    [
        (("seeed=7",), "s.toml: seeed: unknown key", "did you mean seed?"),
        (("load[0].lifetme=1",), "s.toml: load[0].lifetme: unknown key", "did you mean lifetime?"),
        (("hosts[0].port_rnage=[1, 2]",), "hosts[0].port_rnage", "did you mean port_range?"),
        (("load[0].arrival.rte=5",), "load[0].arrival.rte: unknown key", "did you mean rate?"),
        (("load[0].arrival.kind=possion",), "load[0].arrival.kind: unknown kind", '"poisson"'),
        (("load[0].lifetime.kind=exponental",), "load[0].lifetime.kind", '"exponential"'),
        (("load[0].close=clint",), "load[0].close", 'did you mean "client"?'),
        (("hosts[0].os=linx",), "hosts[0].os: unknown preset", 'did you mean "linux"?'),
        (("hosts[0].os=freebds",), "hosts[0].os: unknown preset", 'did you mean "freebsd"?'),
        (("load[0].destination=apii",), "load[0].destination: no such", 'did you mean "api"?'),
        (("load[0].host=clinet",), "load[0].host: no such host", 'did you mean "client"?'),
    ],
)
def test_did_you_mean(sets: tuple[str, ...], where: str, hint: str) -> None:
    message = only(sets=sets)
    assert where in message and hint in message, message


def test_no_suggestion_when_nothing_is_close() -> None:
    message = only(sets=("load[0].arrival.kind=sinusoid",))
    assert "did you mean" not in message
    assert "one of: poisson, constant, burst, onoff, schedule, diurnal, trace" in message
    assert message.endswith('(got "sinusoid")')
    # a model with few keys lists them all
    assert only(sets=("load[0].arrival.zzz=1",)).startswith(
        "s.toml: load[0].arrival.zzz: unknown key; expected one of: kind, rate"
    )


def test_missing_kind_is_reported_at_kind() -> None:
    message = only(sets=("load[0].lifetime={mean = 1}",))
    assert message.startswith("s.toml: load[0].lifetime.kind: required; one of: fixed,")


@pytest.mark.parametrize(
    ("word", "hint"), [("rnu", '"run"'), ("comapre", '"compare"'), ("preset", '"presets"')]
)
def test_unknown_subcommand(word: str, hint: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([word, "x"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"portsim: unknown command '{word}'; did you mean {hint}?")
    assert len(captured.err.splitlines()) == 1 and "commands: run, check" in captured.err


# ---- durations ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2min", 120.0),
        ("2 mins", 120.0),
        ("2 minutes", 120.0),
        ("1 minute", 60.0),
        ("2m", 120.0),
        ("500ms", 0.5),
        ("500 milliseconds", 0.5),
        ("250 msec", 0.25),
        ("30s", 30.0),
        ("30 sec", 30.0),
        ("30 seconds", 30.0),
        ("1 Second", 1.0),
        ("1.5h", 5400.0),
        ("2 hours", 7200.0),
        ("1 hr", 3600.0),
        ("1d", 86400.0),
        ("2 days", 172800.0),
        ("10us", 10e-6),
        ("10 microseconds", 10e-6),
        (90, 90.0),
    ],
)
def test_durations_accept_common_units(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds, rel=1e-12)


@pytest.mark.parametrize("text", ["10 parsecs", "5x", "3 fortnights", "2 mn"])
def test_an_unknown_unit_is_named_with_the_accepted_ones(text: str) -> None:
    message = only(sets=(f'duration="{text}"',))
    unit = text.split()[-1] if " " in text else text.lstrip("0123456789")
    assert f"duration: unknown unit '{unit}'; accepted: us, ms, s, min (or m), h, d" in message


def test_word_units_in_a_scenario() -> None:
    assert only(sets=('duration="1 hour"', "max_events=0")).startswith("s.toml: max_events")
    assert problems_for(sets=('duration="3 minutes"', 'load[0].lifetime.mean="1 second"')) == []


# ---- port ranges as strings ----------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ['"1024-65535"', '"1024 - 65535"', '"1024 65535"', '"1024\\t65535"', "[1024, 65535]"]
)
def test_port_range_string_or_list(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["check", str(VALID), "--json", "--set", f"hosts[0].port_range={value}"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["scenario"]["hosts"][0]["port_range"] == [1024, 65535]


def test_port_range_string_problems() -> None:
    assert only(sets=('hosts[0].port_range="60999-32768"',)).endswith(
        "hosts[0].port_range: low must be <= high (got 60999-32768)"
    )
    assert only(sets=('hosts[0].port_range="0-70000"',)).endswith(
        "ports must be within 1..65535 (got 0-70000)"
    )
    assert 'expected [low, high] or "low-high"' in only(sets=('hosts[0].port_range="all"',))
    assert only(sets=('load[0].local_port_range="50000-40000"',)).endswith(
        "load[0].local_port_range: low must be <= high (got 50000-40000)"
    )


def test_reserved_ports_as_one_string(capsys: pytest.CaptureFixture[str]) -> None:
    """As ip_local_reserved_ports is written: comma-separated ports and ranges."""
    argv = ["check", str(VALID), "--json", "--set", 'hosts[0].reserved_ports="40000-40002,40010"']
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["scenario"]["hosts"][0]["reserved_ports"] == [40000, 40001, 40002, 40010]


@pytest.mark.parametrize("value", ["1024-65535", "1024 65535", "[1024, 65535]", "1024,65535"])
def test_capacity_range_accepts_the_same(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["capacity", "--rate", "100", "--range", value, "--time-wait", "60s", "--json"]
    assert main(argv) == 0
    # 65535 - 1024 + 1 = 64,512 ports; 100/s held 61 s offers 6,100 erlangs: 9.46 % pressure
    result = json.loads(capsys.readouterr().out)
    assert result["offered_load"] == pytest.approx(6100)
    assert result["pressure"] == pytest.approx(6100 / 64512, rel=1e-3)


def test_capacity_range_refused_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["capacity", "--rate", "1", "--range", "9-2"]) == 2
    assert capsys.readouterr().err == "--range: low must be <= high (got 9-2)\n"


def test_parse_port_range_directly() -> None:
    assert parse_port_range("32768\t60999") == (32768, 60999)  # sysctl's own output
    assert parse_port_range([1, 1]) == (1, 1)
    for bad in (["1", "2"], [1, 2, 3], True, "1-2-3", [True, 2]):
        with pytest.raises(ValueError, match="expected"):
            parse_port_range(bad)


# ---- --set on a list, tcp_tw_reuse ---------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "use"),
    [
        ("load.arrival.rate=5", "load is a list: use load[0].arrival.rate"),
        ("load.name=x", "load is a list: use load[0].name"),
        ("destinations.address=x", "destinations is a list: use destinations[0].address"),
    ],
)
def test_set_on_a_list_says_how_to_index(
    key: str, use: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", str(VALID), "--set", key]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"--set {key.split('=')[0]}: {use}\n"


@pytest.mark.parametrize("value", ["true", "false"])
def test_tcp_tw_reuse_is_not_a_boolean(value: str) -> None:
    message = only(sets=(f"hosts[0].tcp_tw_reuse={value}",))
    assert message == (
        "s.toml: hosts[0].tcp_tw_reuse: expected 0 (off), 1 (on) or 2 (loopback only), "
        f"not a boolean (got {value})"
    )


@pytest.mark.parametrize("value", [0, 1, 2])
def test_tcp_tw_reuse_numbers_still_accepted(value: int) -> None:
    assert problems_for(sets=(f"hosts[0].tcp_tw_reuse={value}",)) == []


def test_sweep_keys_and_metrics_suggest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sweep = tmp_path / "s.toml"
    sweep.write_text(
        f'base = "{VALID}"\nreplicaitons = 3\n[grid]\n"load[0].arrival.rate" = [100]\n'
    )
    assert main(["sweep", str(sweep), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err == (
        f"{sweep}: replicaitons: not a sweep key; did you mean replications?\n"
    )
    argv = ["sweep", str(VALID), "--grid", "seed=1", "--metric", "pressure.peek"]
    assert main([*argv, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith('--metric pressure.peek: unknown; did you mean "pressure.peak"? one of:')
    assert not (tmp_path / "o").exists()


def test_a_misspelt_key_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """'arival' for 'arrival': the typo is the cause, 'arrival: required' only its
    consequence, so the message names the typo (first) and not the consequence."""
    path = tmp_path / "typo.toml"
    path.write_text(
        'name = "x"\nduration = "10s"\n[[destinations]]\nname = "api"\n'
        'address = "10.0.0.1:443"\n[[load]]\ndestination = "api"\n'
        'arival = { kind = "poisson", rate = 10 }\nlifetime = { kind = "fixed", value = 1 }\n'
    )
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [f"{path}: load[0].arival: unknown key; did you mean arrival?"]


def test_a_bad_set_value_is_blamed_on_the_set(capsys: pytest.CaptureFixture[str]) -> None:
    """The file is fine; the value came from --set: the line says so."""
    assert main(["check", str(VALID), "--set", "duration=10x"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"{VALID}: duration: unknown unit 'x'")
    assert line.endswith("(got '10x') (from --set)")
    assert main(["check", str(VALID), "--set", "seed=3"]) == 0  # a good --set: no message
