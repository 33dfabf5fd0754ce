"""Scenario files: TOML, validated by pydantic into frozen models; errors name file and key.

Loading never raises anything but :class:`ScenarioError`, whose ``problems`` are one line
each (``file: dotted.key: message (got value)``), so the CLI can print every problem at once
and exit 2 without a traceback.
"""

from __future__ import annotations

import ipaddress
import itertools
import math
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
)

from sim.ports.linux import GENERATIONS, kernel_profile
from sim.ports.policy import POLICIES
from sim.presets import PRESETS
from sim.units import parse_duration

DEFAULT_SEED = 20261126
DEFAULT_ADDRESS = "192.0.2.1"
MAX_BINS = 2_000  # default bins per run: enough points for any plot, few ticks to pay
DEFAULT_MAX_EVENTS = 1e9


class ScenarioError(Exception):
    """Every problem found in a scenario, one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _duration(value: Any) -> float:
    return parse_duration(value)


def _lifetime_value(value: Any) -> float:
    return parse_duration(value, allow_inf=True)


_DURATION_TEXT = r"^\s*[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?\s*(us|ms|s|m|h|d)?\s*$"
_DURATION_SCHEMA = {
    "anyOf": [
        {"type": "number", "minimum": 0},
        {"type": "string", "pattern": _DURATION_TEXT},
    ],
    "description": 'seconds, or a string with a unit: "100us", "500ms", "60s", "2m", "1h"',
}
Duration = Annotated[float, BeforeValidator(_duration), WithJsonSchema(_DURATION_SCHEMA)]
LifetimeValue = Annotated[
    float,
    BeforeValidator(_lifetime_value),
    WithJsonSchema(
        {
            "anyOf": [*_DURATION_SCHEMA["anyOf"], {"const": "inf"}],
            "description": 'a duration, or "inf" for a connection that never closes',
        }
    ),
]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---- hosts ------------------------------------------------------------------------------


def _port_list(value: Any) -> list[int]:
    """``[40000, "40010-40019"]`` -> the ports; strings are single ports or ranges."""
    if not isinstance(value, list):
        raise ValueError('expected a list of ports and "a-b" ranges')
    ports: list[int] = []
    for item in value:
        if isinstance(item, bool):
            raise ValueError('expected a port number or an "a-b" range')
        if isinstance(item, int):
            lo = hi = item
        elif isinstance(item, str) and re.fullmatch(r"\s*\d+\s*(-\s*\d+\s*)?", item):
            parts = [int(x) for x in item.split("-")]
            lo, hi = parts[0], parts[-1]
        else:
            raise ValueError('expected a port number or an "a-b" range')
        if not 1 <= lo <= hi <= 65535:
            raise ValueError(f'{item!r} is not a port in 1..65535 or an "a-b" range with a <= b')
        ports.extend(range(lo, hi + 1))
    return ports


PortList = Annotated[
    tuple[int, ...],
    BeforeValidator(_port_list),
    WithJsonSchema(
        {
            "type": "array",
            "items": {
                "anyOf": [
                    {"type": "integer", "minimum": 1, "maximum": 65535},
                    {"type": "string", "pattern": r"^\s*\d+\s*(-\s*\d+\s*)?$"},
                ]
            },
            "description": 'port numbers and "a-b" ranges',
        }
    ),
]
Port = Annotated[int, Field(ge=1, le=65535)]


def _address(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected an IP address string")
    return str(ipaddress.ip_address(value.strip()))


def _endpoint(value: Any) -> str:
    """``"10.0.0.5:443"`` or ``"[::1]:443"``, normalised."""
    if not isinstance(value, str):
        raise ValueError('expected "ip:port" (IPv6 in brackets: "[::1]:443")')
    match = re.fullmatch(r"\s*(?:\[([0-9A-Fa-f:.]+)\]|([0-9.]+)):(\d{1,5})\s*", value)
    if not match:
        raise ValueError('expected "ip:port" (IPv6 in brackets: "[::1]:443")')
    ip = ipaddress.ip_address(match.group(1) or match.group(2))
    port = int(match.group(3))
    if not 1 <= port <= 65535:
        raise ValueError("port must be within 1..65535")
    return f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"


def _network(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError('expected a network such as "192.0.2.0/24"')
    return str(ipaddress.ip_network(value.strip(), strict=False))


Network = Annotated[
    str, BeforeValidator(_network), WithJsonSchema({"type": "string", "description": "a CIDR"})
]
Address = Annotated[
    str, BeforeValidator(_address), WithJsonSchema({"type": "string", "description": "an IP"})
]
Endpoint = Annotated[
    str,
    BeforeValidator(_endpoint),
    WithJsonSchema({"type": "string", "description": '"ip:port", IPv6 in brackets: "[::1]:443"'}),
]


def _reuse_delay(seconds: float) -> float:
    if not 0.001 <= seconds <= 60.0:
        raise ValueError("must be between 1ms and 60s (the sysctl takes 1-60000 ms)")
    return seconds


class Host(Model):
    name: str = "client"
    os: str = "linux"
    kernel: str | None = None
    linux_generation: Literal["G0", "G1", "G2", "G3", "G4"] | None = None
    address: Address = DEFAULT_ADDRESS
    port_range: tuple[Port, Port] | None = None
    time_wait: Duration | None = None
    tcp_tw_reuse: Literal[0, 1, 2] | None = None
    tcp_tw_reuse_delay: Annotated[Duration, AfterValidator(_reuse_delay)] = 1.0
    tcp_max_tw_buckets: Annotated[int, Field(ge=0)] = 131072
    tcp_timestamps: bool = True
    reserved_ports: PortList = ()
    listening_ports: PortList = ()
    udp_hash_size: Literal[256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536] = 16384
    # beyond Linux (issue 4): every preset field can be overridden
    policy: Literal[POLICIES] | None = None  # type: ignore[valid-type]
    udp_policy: Literal[POLICIES] | None = None  # type: ignore[valid-type]
    scope: Literal["port", "local_address", "4tuple"] | None = None
    time_wait_local: Duration | None = None
    time_wait_loopback: Duration | None = None
    local_network: Network | None = None
    table_size: Annotated[int, Field(ge=1, le=65536)] = 10
    increment_max: Annotated[int, Field(ge=1, le=65536)] = 500
    randomcps: Annotated[int, Field(ge=0)] = 10
    randomtime: Annotated[int, Field(ge=0)] = 45
    forced_reuse: bool | None = None
    auto_reuse_range: tuple[Port, Port] | None = None


# ---- destinations -----------------------------------------------------------------------


class Destination(Model):
    name: str
    address: Endpoint
    time_wait: Duration = 60.0  # the server's TIME_WAIT when it closes first (collisions)

    @property
    def ip(self) -> str:
        return self.address.rsplit(":", 1)[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])

    @property
    def loopback(self) -> bool:
        return ipaddress.ip_address(self.ip).is_loopback


# ---- load -------------------------------------------------------------------------------

PositiveRate = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class Poisson(Model):
    kind: Literal["poisson"]
    rate: PositiveRate


class Constant(Model):
    kind: Literal["constant"]
    interval: Annotated[Duration, Field(gt=0)]


class Burst(Model):
    kind: Literal["burst"]
    count: Annotated[int, Field(ge=1)]
    at: Duration = 0.0


Arrival = Annotated[Poisson | Constant | Burst, Field(discriminator="kind")]


class Fixed(Model):
    kind: Literal["fixed"]
    value: LifetimeValue

    @property
    def mean(self) -> float:
        return self.value


class Exponential(Model):
    kind: Literal["exponential"]
    mean: Annotated[Duration, Field(gt=0)]


Lifetime = Annotated[Fixed | Exponential, Field(discriminator="kind")]


class Load(Model):
    name: str | None = None
    host: str | None = None
    destination: str
    arrival: Arrival
    lifetime: Lifetime
    close: Literal["client", "server", "reset"] = "client"
    socket: Literal["connect", "bind", "bind_reuseaddr", "bind_no_port"] = "connect"
    protocol: Literal["tcp", "udp"] = "tcp"
    start: Duration = 0.0
    stop: Duration | None = None
    local_port_range: tuple[Port, Port] | None = None


class Scenario(Model):
    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9._-]+$")]
    description: str = ""
    seed: Annotated[int, Field(ge=0, lt=2**63)] = DEFAULT_SEED
    duration: Annotated[Duration, Field(gt=0)]
    bin: Annotated[Duration, Field(gt=0)] | None = None
    max_events: Annotated[float, Field(gt=0)] = DEFAULT_MAX_EVENTS
    warmup: Duration | None = None
    hosts: Annotated[list[Host], Field(min_length=1)] = [Host()]
    destinations: Annotated[list[Destination], Field(min_length=1)]
    load: Annotated[list[Load], Field(min_length=1)]

    @property
    def bin_width(self) -> float:
        """The ``bin`` given, or a round width that keeps a run under ~2,000 bins."""
        if self.bin is not None:
            return self.bin
        raw = self.duration / MAX_BINS
        for step in (0.001, 0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 600, 3600):
            if step >= raw:
                return float(step)
        return float(math.ceil(raw / 3600) * 3600)


# ---- loading ----------------------------------------------------------------------------


_TAGS = {"arrival": {"poisson", "constant", "burst"}, "lifetime": {"fixed", "exponential"}}


def show(text: object) -> str:
    """A name as it can stand in a one-line message: itself if plain, else its repr."""
    text = str(text)
    plain = text.isprintable() and len(text) <= 60 and text.strip() == text and text
    return text if plain else _short(text)


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


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _format_errors(source: str, error: ValidationError) -> list[str]:
    lines = []
    for item in error.errors(include_url=False):
        msg = item["msg"].removeprefix("Value error, ")
        got = item.get("input")
        suffix = (
            "" if item["type"] == "missing" or isinstance(got, dict) else f" (got {_short(got)})"
        )
        lines.append(f"{source}: {_loc(item['loc'])}: {msg}{suffix}")
    return lines


def _table_list(raw: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items = raw.get(key)
    return [x for x in items if isinstance(x, dict)] if isinstance(items, list) else []


def _inverted(rng: Any) -> bool:
    """A [low, high] pair of integers with low > high."""
    return (isinstance(rng, list) and len(rng) == 2 and all(type(p) is int for p in rng)) and rng[
        0
    ] > rng[1]


def _reference_checks(source: str, raw: dict[str, Any]) -> list[str]:
    """Rules across tables, checked on the raw document so that they are reported together
    with field errors: duplicate names, references to hosts and destinations, ranges."""
    problems: list[str] = []
    hosts = _table_list(raw, "hosts") if "hosts" in raw else [{"name": Host().name}]
    names: dict[str, list[str]] = {}
    for kind, items in (("hosts", hosts), ("destinations", _table_list(raw, "destinations"))):
        names[kind] = [x.get("name", Host().name if kind == "hosts" else None) for x in items]
        seen: set[str] = set()
        for i, name in enumerate(names[kind]):
            if not isinstance(name, str):
                continue
            if name in seen:
                problems.append(f"{source}: {kind}[{i}].name: duplicate name (got {_short(name)})")
            seen.add(name)
    defined = {
        k: ", ".join(show(n) for n in dict.fromkeys(n for n in v if isinstance(n, str)))
        for k, v in names.items()
    }
    for i, host in enumerate(hosts):
        if _inverted(host.get("port_range")):
            rng = host["port_range"]
            problems.append(f"{source}: hosts[{i}].port_range: low must be <= high (got {rng})")
    loads = raw.get("load")
    for i, load in enumerate(loads if isinstance(loads, list) else []):
        if not isinstance(load, dict):
            continue
        where = f"{source}: load[{i}]"
        host = load.get("host")
        if host is None and len(hosts) > 1:
            problems.append(f"{where}.host: required when there are several hosts")
        elif isinstance(host, str) and host not in names["hosts"]:
            problems.append(
                f"{where}.host: no such host; defined: {defined['hosts']} (got {_short(host)})"
            )
        dest = load.get("destination")
        if isinstance(dest, str) and dest not in names["destinations"]:
            problems.append(
                f"{where}.destination: no such destination; defined: "
                f"{defined['destinations'] or '(none)'} (got {_short(dest)})"
            )
        try:
            start, stop = parse_duration(load.get("start", 0)), parse_duration(load["stop"])
        except (KeyError, ValueError):
            pass  # no stop, or a bad value that the field check reports
        else:
            if stop <= start:
                problems.append(f"{where}.stop: must be after start (got {load['stop']!r})")
        if _inverted(load.get("local_port_range")):
            rng = load["local_port_range"]
            problems.append(f"{where}.local_port_range: low must be <= high (got {rng})")
    return problems


def _kernel_before(kernel: str, version: tuple[int, int]) -> bool:
    try:
        return kernel_profile(kernel).version < version
    except ValueError:
        return False  # reported as a bad kernel string


def _model_checks(source: str, sc: Scenario) -> list[str]:
    """Rules that need validated values: presets, kernel versions, times, work estimate."""
    problems: list[str] = []
    for i, host in enumerate(sc.hosts):
        where = f"{source}: hosts[{i}]"
        if host.os not in PRESETS:
            problems.append(
                f"{where}.os: unknown preset; one of: {', '.join(PRESETS)} (got {_short(host.os)})"
            )
        if host.kernel is not None:
            try:
                kernel_profile(host.kernel)
            except ValueError as exc:
                problems.append(f"{where}.kernel: {exc} (got {_short(host.kernel)})")
    for i, host in enumerate(sc.hosts):
        if host.os not in PRESETS:
            continue
        preset = PRESETS[host.os]
        linux = (host.policy or preset.policy) == "linux"
        if linux and host.scope not in (None, "4tuple"):
            problems.append(
                f"{source}: hosts[{i}].scope: the Linux policy keeps 4-tuple uniqueness for "
                f"connect() (got {host.scope!r})"
            )
        if host.forced_reuse and not preset.name.startswith("windows"):
            problems.append(
                f"{source}: hosts[{i}].forced_reuse: a Windows behaviour; this host is {host.os!r}"
            )
        if host.auto_reuse_range is None:
            continue
        preset = PRESETS[host.os]
        lo, hi = host.port_range or preset.port_range or (32768, 60999)
        a, b = host.auto_reuse_range
        if (host.policy or preset.policy) == "linux":
            problems.append(
                f"{source}: hosts[{i}].auto_reuse_range: a Windows setting; this host runs the "
                "Linux policy"
            )
        elif not lo <= a <= b <= hi:
            problems.append(
                f"{source}: hosts[{i}].auto_reuse_range: must lie within the port range "
                f"{lo}-{hi} (got {[a, b]})"
            )
    linux_hosts = {
        h.name
        for h in sc.hosts
        if (h.policy or (PRESETS[h.os].policy if h.os in PRESETS else "linux")) == "linux"
    }
    kernels = {
        h.name: h.kernel or PRESETS[h.os].kernel or "6.18" for h in sc.hosts if h.os in PRESETS
    }
    for i, load in enumerate(sc.load):
        host = load.host or sc.hosts[0].name
        if load.local_port_range is not None and load.protocol == "udp":
            problems.append(
                f"{source}: load[{i}].local_port_range: modelled for TCP only (UDP autobind "
                "scans the host's range here)"
            )
        elif (
            load.local_port_range is not None
            and host in linux_hosts
            and host in kernels
            and _kernel_before(kernels[host], (6, 3))
        ):
            problems.append(
                f"{source}: load[{i}].local_port_range: IP_LOCAL_PORT_RANGE exists from Linux "
                f"6.3 (host {show(host)} runs {kernels[host]})"
            )
        if load.local_port_range is not None and host not in linux_hosts:
            problems.append(
                f"{source}: load[{i}].local_port_range: IP_LOCAL_PORT_RANGE is modelled for "
                f"Linux hosts only (host {show(host)} uses another policy)"
            )
    if not problems:
        estimate = estimated_events(sc)
        if estimate > sc.max_events:
            advice = (
                f"raise max_events (--set max_events={estimate * 1.1:.2g})"
                if estimate < 1e15
                else "shorten duration or lower the rates"
            )
            problems.append(
                f"{source}: max_events: the run would take about {estimate:.3g} events, over the "
                f"limit of {sc.max_events:.3g}; {advice}"
            )
    return problems


def estimated_events(sc: Scenario) -> float:
    """About three units of work per connection (arrival, close, TIME_WAIT end) plus bins."""
    total = sc.duration / sc.bin_width
    for load in sc.load:
        active = max(0.0, min(load.stop or sc.duration, sc.duration) - load.start)
        arrival = load.arrival
        if isinstance(arrival, Poisson):
            n = arrival.rate * active
        elif isinstance(arrival, Constant):
            n = active / arrival.interval
        else:
            n = float(arrival.count) if arrival.count < 10**300 else math.inf
        total += 3 * n
    return total


def parse_scenario(data: Any, source: str = "<scenario>") -> Scenario:
    """Validate a decoded TOML document (a dict) into a Scenario or raise ScenarioError."""
    if not isinstance(data, dict):
        raise ScenarioError([f"{source}: (top level): expected a TOML table"])
    references = _reference_checks(source, data)
    try:
        sc = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(_format_errors(source, exc) + references) from None
    problems = references or _model_checks(source, sc)
    if problems:
        raise ScenarioError(problems)
    return sc


def read_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file; every failure becomes a ScenarioError naming the file."""
    source = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ScenarioError([f"{source}: cannot read: {exc.strerror or exc}"]) from None
    try:
        text = raw.decode("utf-8-sig")  # a byte-order mark, as some Windows editors write
    except UnicodeDecodeError:
        raise ScenarioError([f"{source}: not a text file (not UTF-8)"]) from None
    if "\x00" in text:
        raise ScenarioError([f"{source}: not a text file (contains NUL bytes)"])
    if not text.strip():
        raise ScenarioError(
            [f"{source}: the file is empty; a scenario needs name, duration, destinations and load"]
        )
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError([f"{source}: TOML syntax error: {exc}"]) from None
    except ValueError as exc:  # tomllib's int(): more than 4300 digits, with no position
        for number, line in enumerate(text.splitlines(), 1):
            if re.search(r"\d{4300}", line):
                key = show(line.split("=", 1)[0].strip()) if "=" in line else "(value)"
                raise ScenarioError(
                    [f"{source}: {key}: integer too long, over 4300 digits (line {number})"]
                ) from None
        raise ScenarioError([f"{source}: TOML value error: {_short(str(exc))}"]) from None
    except RecursionError:
        raise ScenarioError([f"{source}: TOML nesting too deep"]) from None


def load_scenario(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Scenario:
    """Load, apply ``--set key=value`` overrides, validate.  Raises ScenarioError only."""
    data = read_toml(path)
    apply_overrides(data, overrides, str(path))
    return parse_scenario(data, str(path))


# ---- --set overrides --------------------------------------------------------------------

_STEP = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*)((?:\[\d+\])*)")


def _parse_path(key: str) -> list[str | int]:
    parts: list[str | int] = []
    for piece in key.split("."):
        match = _STEP.fullmatch(piece)
        if not match:
            raise ValueError("not a dotted key such as load[0].arrival.rate")
        parts.append(match.group(1))
        parts.extend(int(i) for i in re.findall(r"\[(\d+)\]", match.group(2)))
    return parts


def parse_value(text: str) -> Any:
    """A TOML value (``400``, ``"5.12"``, ``[1, 2]``, ``{kind = "poisson", rate = 3}``),
    or the bare text when it is not valid TOML (``--set hosts[0].os=linux-4.6``)."""
    try:
        parsed = tomllib.loads(f"v = {text}")
    except (tomllib.TOMLDecodeError, ValueError, RecursionError):
        return text
    return parsed["v"] if parsed.keys() == {"v"} else text


def apply_overrides(
    data: dict[str, Any], overrides: list[str] | tuple[str, ...], source: str
) -> None:
    problems = []
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            problems.append(f"--set {show(item)}: expected KEY=VALUE")
            continue
        try:
            path = _parse_path(key)
        except ValueError as exc:
            problems.append(f"--set {show(key)}: {exc}")
            continue
        node: Any = data
        for step, nxt in itertools.pairwise(path):
            if isinstance(step, int):
                if not isinstance(node, list) or step >= len(node):
                    problems.append(f"--set {show(key)}: no list entry [{step}] in {source}")
                    break
                node = node[step]
            else:
                if not isinstance(node, dict):
                    problems.append(f"--set {show(key)}: {step} is not a table in {source}")
                    break
                node = node.setdefault(step, [] if isinstance(nxt, int) else {})
        else:
            last = path[-1]
            value = parse_value(text.strip())
            if isinstance(last, int):
                if not isinstance(node, list) or last >= len(node):
                    problems.append(f"--set {show(key)}: no list entry [{last}] in {source}")
                    continue
                node[last] = value
            elif isinstance(node, dict):
                node[last] = value
            else:
                problems.append(f"--set {show(key)}: cannot set a key inside a non-table")
    if problems:
        raise ScenarioError(problems)


def scenario_json_schema() -> dict[str, Any]:
    """The JSON schema published as scenarios/schema.json for editors."""
    schema = Scenario.model_json_schema()
    schema["title"] = "portsim scenario"
    return schema


__all__ = [
    "GENERATIONS",
    "Destination",
    "Host",
    "Load",
    "Scenario",
    "ScenarioError",
    "load_scenario",
    "parse_scenario",
]
