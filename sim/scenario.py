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

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from sim.ports.linux import GENERATIONS, kernel_profile
from sim.presets import PRESETS, get_preset
from sim.units import parse_duration

DEFAULT_SEED = 20261126
DEFAULT_ADDRESS = "192.0.2.1"
MAX_BINS = 10_000
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


Duration = Annotated[float, BeforeValidator(_duration)]
LifetimeValue = Annotated[float, BeforeValidator(_lifetime_value)]


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
            raise ValueError(f"ports must be within 1..65535 and a <= b (got {item!r})")
        ports.extend(range(lo, hi + 1))
    return ports


PortList = Annotated[tuple[int, ...], BeforeValidator(_port_list)]
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


Address = Annotated[str, BeforeValidator(_address)]
Endpoint = Annotated[str, BeforeValidator(_endpoint)]


class Host(Model):
    name: str = "client"
    os: str = "linux"
    kernel: str | None = None
    linux_generation: Literal["G0", "G1", "G2", "G3", "G4"] | None = None
    address: Address = DEFAULT_ADDRESS
    port_range: tuple[Port, Port] | None = None
    time_wait: Duration | None = None
    tcp_tw_reuse: Literal[0, 1, 2] | None = None
    tcp_tw_reuse_delay: Annotated[Duration, Field(ge=0.001, le=60.0)] = 1.0
    tcp_max_tw_buckets: Annotated[int, Field(ge=0)] = 131072
    tcp_timestamps: bool = True
    reserved_ports: PortList = ()
    listening_ports: PortList = ()
    udp_hash_size: Literal[256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536] = 16384


# ---- destinations -----------------------------------------------------------------------


class Destination(Model):
    name: str
    address: Endpoint

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
    hosts: Annotated[list[Host], Field(min_length=1)] = [Host()]
    destinations: Annotated[list[Destination], Field(min_length=1)]
    load: Annotated[list[Load], Field(min_length=1)]

    @property
    def bin_width(self) -> float:
        """The ``bin`` given, or a round width that keeps a run under ~10,000 bins."""
        if self.bin is not None:
            return self.bin
        raw = self.duration / MAX_BINS
        for step in (0.001, 0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 600, 3600):
            if step >= raw:
                return float(step)
        return float(math.ceil(raw / 3600) * 3600)


# ---- loading ----------------------------------------------------------------------------


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("poisson", "constant", "burst", "fixed", "exponential"):
            continue  # the discriminator's tag: the user wrote kind = ..., not this
        else:
            out += ("." if out else "") + str(part)
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


def _cross_checks(source: str, sc: Scenario) -> list[str]:
    """Rules that span fields: references, ranges, presets, work estimate."""
    problems: list[str] = []
    host_names = [h.name for h in sc.hosts]
    dest_names = [d.name for d in sc.destinations]
    for kind, names in (("hosts", host_names), ("destinations", dest_names)):
        seen: set[str] = set()
        for i, name in enumerate(names):
            if name in seen:
                problems.append(f"{source}: {kind}[{i}].name: duplicate name (got {name!r})")
            seen.add(name)
    for i, host in enumerate(sc.hosts):
        where = f"{source}: hosts[{i}]"
        if host.os not in PRESETS:
            problems.append(
                f"{where}.os: unknown preset; one of: {', '.join(PRESETS)} (got {host.os!r})"
            )
            continue
        if host.kernel is not None:
            try:
                kernel_profile(host.kernel)
            except ValueError as exc:
                problems.append(f"{where}.kernel: {exc} (got {host.kernel!r})")
                continue
        if host.port_range is not None and host.port_range[0] > host.port_range[1]:
            problems.append(
                f"{where}.port_range: low must be <= high (got {list(host.port_range)})"
            )
    for i, load in enumerate(sc.load):
        where = f"{source}: load[{i}]"
        if load.host is None and len(sc.hosts) > 1:
            problems.append(f"{where}.host: required when there are several hosts")
        elif load.host is not None and load.host not in host_names:
            problems.append(
                f"{where}.host: no such host; defined: {', '.join(host_names)} (got {load.host!r})"
            )
        if load.destination not in dest_names:
            defined = ", ".join(dest_names)
            problems.append(
                f"{where}.destination: no such destination; defined: {defined} "
                f"(got {load.destination!r})"
            )
        if load.stop is not None and load.stop <= load.start:
            problems.append(f"{where}.stop: must be after start (got {load.stop})")
        if (
            load.local_port_range is not None
            and load.local_port_range[0] > load.local_port_range[1]
        ):
            problems.append(
                f"{where}.local_port_range: low must be <= high (got {list(load.local_port_range)})"
            )
        if load.protocol == "udp" and load.close != "client":
            pass  # UDP ignores close (no TIME_WAIT); accepted so a load can flip protocol
    if not problems:
        estimate = estimated_events(sc)
        if estimate > sc.max_events:
            problems.append(
                f"{source}: max_events: the run would take about {estimate:.3g} events, over the "
                f"limit of {sc.max_events:.3g}; shorten duration or raise max_events "
                f"(--set max_events={estimate * 1.1:.2g})"
            )
        if len(sc.hosts) * len(sc.destinations) * 65536 > 4e9:
            problems.append(f"{source}: destinations: too many host x destination pools for memory")
    return problems


def estimated_events(sc: Scenario) -> float:
    """About three SimPy events per connection (arrival, close, TIME_WAIT end) plus bins."""
    total = sc.duration / sc.bin_width
    for load in sc.load:
        active = max(0.0, min(load.stop or sc.duration, sc.duration) - load.start)
        arrival = load.arrival
        if isinstance(arrival, Poisson):
            n = arrival.rate * active
        elif isinstance(arrival, Constant):
            n = active / arrival.interval
        else:
            n = arrival.count
        total += 3 * n
    return total


def parse_scenario(data: Any, source: str = "<scenario>") -> Scenario:
    """Validate a decoded TOML document (a dict) into a Scenario or raise ScenarioError."""
    if not isinstance(data, dict):
        raise ScenarioError([f"{source}: (top level): expected a TOML table"])
    try:
        sc = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(_format_errors(source, exc)) from None
    problems = _cross_checks(source, sc)
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
        text = raw.decode("utf-8")
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
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(
    data: dict[str, Any], overrides: list[str] | tuple[str, ...], source: str
) -> None:
    problems = []
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            problems.append(f"--set {item}: expected KEY=VALUE")
            continue
        try:
            path = _parse_path(key)
        except ValueError as exc:
            problems.append(f"--set {key}: {exc}")
            continue
        node: Any = data
        for step, nxt in itertools.pairwise(path):
            if isinstance(step, int):
                if not isinstance(node, list) or step >= len(node):
                    problems.append(f"--set {key}: no list entry [{step}] in {source}")
                    break
                node = node[step]
            else:
                if not isinstance(node, dict):
                    problems.append(f"--set {key}: {step} is not a table in {source}")
                    break
                node = node.setdefault(step, [] if isinstance(nxt, int) else {})
        else:
            last = path[-1]
            value = parse_value(text.strip())
            if isinstance(last, int):
                if not isinstance(node, list) or last >= len(node):
                    problems.append(f"--set {key}: no list entry [{last}] in {source}")
                    continue
                node[last] = value
            elif isinstance(node, dict):
                node[last] = value
            else:
                problems.append(f"--set {key}: cannot set a key inside a non-table")
    if problems:
        raise ScenarioError(problems)


def scenario_json_schema() -> dict[str, Any]:
    """The JSON schema published as scenarios/schema.json for editors."""
    schema = Scenario.model_json_schema()
    schema["title"] = "portsim scenario"
    return schema


def describe_kernel(host: Host) -> str:
    preset = get_preset(host.os)
    kernel = host.kernel or preset.kernel or "6.18"
    return kernel_profile(kernel, host.linux_generation).label


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
