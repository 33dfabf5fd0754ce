"""The scenario's types: pydantic models (frozen) and the annotated value types they use.

Each model is one TOML table; its fields' validators turn what a user may write
(``"500ms"``, ``"40000-40010"``, ``"10.0.0.5:443"``) into plain values.  Rules across
tables live in :mod:`sim.config.checks`; reading files and ``--set`` in
:mod:`sim.config.load` and :mod:`sim.config.overrides`.
"""

from __future__ import annotations

import ipaddress
import itertools
import math
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from sim.config.errors import show
from sim.config.plain_values import FREE_TEXT, bad_text, bool_fields, holds_bool
from sim.fleet_addresses import MAX_FLEET, canonical, fleet_addresses
from sim.initial_state import read_initial_state
from sim.ip import ip as parsed_ip
from sim.nat.kinds import KINDS
from sim.ports.policy import POLICIES
from sim.safe_paths import MAX_NAME, NAME_PATTERN, name_problem
from sim.units import (
    DURATION_PATTERN,
    ENDPOINT_FORMAT,
    PORT_RANGE_PATTERN,
    parse_duration,
    parse_endpoint,
    parse_port_range,
)
from sim.workload import files

DEFAULT_SEED = 20261126
DEFAULT_ADDRESS = "192.0.2.1"
MAX_BINS = 2_000  # default bins per run: enough points for any plot, few ticks to pay
DEFAULT_MAX_EVENTS = 1e9
MAX_SET = 4096  # members of a generated set: each has a pool of ~60 KB per source address
# Bounds on numbers, so that every value the model is handed can be represented:
MAX_SECONDS = 1e9  # any duration (~32 years): times stay exact to well under 1 us
MIN_SECONDS = 1e-9  # any positive duration (1 ns): below it rates and counts overflow
MAX_RATE = 1e9  # connections per second, and relative weights
MAX_RUN_BINS = 1_000_000  # time bins per run: each costs ~250 B in the recorder and plots


def _bounded(seconds: float) -> float:
    """A duration the model can represent: 0, or 1 ns .. ~32 years (inf where allowed)."""
    if math.isfinite(seconds) and seconds > MAX_SECONDS:
        raise ValueError(f"must be at most {MAX_SECONDS:.0e} s (about 32 years)")
    if 0 < seconds < MIN_SECONDS:
        raise ValueError("must be 0 or at least 1 ns (1e-9 s)")
    return seconds


def _duration(value: Any) -> float:
    return _bounded(parse_duration(value))


def _lifetime_value(value: Any) -> float:
    return _bounded(parse_duration(value, allow_inf=True))


_DURATION_SCHEMA = {
    "anyOf": [
        {"type": "number", "minimum": 0},
        {"type": "string", "pattern": DURATION_PATTERN},
    ],
    "description": 'seconds, or a string with a unit: "100us", "500ms", "60s", "2min", "1h", '
    '"1 day"',
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


class SpecModel(BaseModel):
    """The base of every scenario table: unknown keys refused, values frozen once valid."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _plain_values(cls, data: Any) -> Any:
        """No true/false where a number is expected (Python counts True as 1: ``rate =
        true`` would run at 1/s), and no control characters in text."""
        if not isinstance(data, dict):
            return data
        flags = bool_fields(cls)
        for key, value in data.items():
            if key not in flags and holds_bool(value):
                raise ValueError(f"{show(key)}: expected a number or text, not true/false")
            problem = bad_text(value) if key not in FREE_TEXT else None
            if problem:
                raise ValueError(f"{show(key)}: {problem}")
        return data


# ---- hosts ------------------------------------------------------------------------------


def _port_list(value: Any) -> list[int]:
    """``[40000, "40010-40019"]`` -> the ports; strings are single ports or ranges.  One
    string of comma-separated items, as ``ip_local_reserved_ports`` is written
    (``"40000,40010-40019"``), is accepted too."""
    if isinstance(value, str):
        value = [item.strip() for item in value.split(",")] if value.strip() else []
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
            "anyOf": [
                {
                    "type": "array",
                    "items": {
                        "anyOf": [
                            {"type": "integer", "minimum": 1, "maximum": 65535},
                            {"type": "string", "pattern": r"^\s*\d+\s*(-\s*\d+\s*)?$"},
                        ]
                    },
                },
                {"type": "string", "pattern": r"^[\d\s,-]*$"},
            ],
            "description": 'port numbers and "a-b" ranges, or one string "a-b,c"',
        }
    ),
]
Port = Annotated[int, Field(ge=1, le=65535)]
PortRange = Annotated[
    tuple[int, int],
    BeforeValidator(parse_port_range),
    WithJsonSchema(
        {
            "anyOf": [
                {
                    "type": "array",
                    "items": {"type": "integer", "minimum": 1, "maximum": 65535},
                    "minItems": 2,
                    "maxItems": 2,
                },
                {"type": "string", "pattern": PORT_RANGE_PATTERN},
            ],
            "description": '[low, high], "low-high" or "low high" (as sysctl prints it)',
        }
    ),
]


def _address(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected an IP address string")
    return str(ipaddress.ip_address(value.strip()))


def _endpoint(value: Any) -> str:
    """``"10.0.0.5:443"`` or ``"[::1]:443"``, normalised."""
    if not isinstance(value, str):
        raise ValueError(ENDPOINT_FORMAT)
    return parse_endpoint(value)[0]


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


def _initial_state_table(value: Any) -> Any:
    """``initial_state = "held.csv"`` is short for ``{file = "held.csv"}``."""
    return {"file": value} if isinstance(value, str) else value


_INITIAL_STATE_SCHEMA = {
    "anyOf": [
        {"type": "string", "description": "a CSV of held ports, relative to the scenario"},
        {
            "type": "object",
            "properties": {
                "file": {"type": "string", "description": "a CSV of held ports"},
                "time_wait_age": {"enum": ["uniform", "fresh"], "default": "uniform"},
            },
            "required": ["file"],
            "additionalProperties": False,
        },
        {"type": "null"},
    ],
    "default": None,
    "description": "ports held at time 0 (local_port,destination,state[,remaining_s]"
    "[,local_address]); TIME_WAITs of unknown age are uniformly aged or fresh",
}


class InitialState(SpecModel):
    """Ports held at time 0, from a CSV (``sim.initial_state``): ``portsim inspect --out``
    writes one from a machine's snapshot; ``time_wait_age`` says how the TIME_WAIT left is
    assumed where the file leaves it empty (``uniform`` or ``fresh``, inferred)."""

    file: DataFile
    time_wait_age: Literal["uniform", "fresh"] = "uniform"

    @field_validator("file")
    @classmethod
    def _readable(cls, path: str) -> str:
        read_initial_state(path)  # raises DataFileError (a ValueError) naming the line
        return path


def _reuse_delay(seconds: float) -> float:
    if not 0.001 <= seconds <= 60.0:
        raise ValueError("must be between 1ms and 60s (the sysctl takes 1-60000 ms)")
    return seconds


class HostSpec(SpecModel):
    model_config = ConfigDict(title="Host")  # the schema names the table, not the class

    name: str = "client"
    os: str = "linux"
    kernel: str | None = None
    linux_generation: Literal["G0", "G1", "G2", "G3", "G4"] | None = None
    # a fleet (sim.fleet): count identical hosts taking consecutive addresses of a network
    count: Annotated[int, Field(ge=1, le=MAX_FLEET)] | None = None
    address: Annotated[
        str,
        WithJsonSchema(
            {
                "type": "string",
                "description": "an IP; with count, a network (its members' addresses in "
                'order from the first usable one: "10.244.1.0/24"), or the first member\'s '
                'address with the prefix length ("10.244.1.2/24")',
            }
        ),
    ] = DEFAULT_ADDRESS
    port_range: PortRange | None = None
    time_wait: Duration | None = None
    tcp_tw_reuse: Literal[0, 1, 2] | None = None  # a boolean: plain_values.BOOL_HINTS
    tcp_tw_reuse_delay: Annotated[Duration, AfterValidator(_reuse_delay)] = 1.0
    tcp_tw_reuse_rule: Literal["s>1", "s>0", "ms"] | None = None
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
    nolocaltimewait: bool | None = None
    shared_counter: bool | None = None
    first_port: Port | None = None
    udp_scope: Literal["port", "local_address", "4tuple"] | None = None
    auto_reuse_range: PortRange | None = None
    # several source addresses: connect() keeps 4-tuples per source address (issue 5)
    addresses: Annotated[list[Address], Field(min_length=1)] | None = None
    # ports held at time 0, e.g. from a machine's snapshot (issue 18)
    initial_state: Annotated[
        InitialState | None,
        BeforeValidator(_initial_state_table),
        WithJsonSchema(_INITIAL_STATE_SCHEMA),
    ] = None
    # Linux timers (issue 14): TIME_WAIT ends on the timer wheel's bucket grid (sim/timerwheel.py)
    hz: Literal[100, 250, 300, 1000] = 250
    timer_wheel: bool = True
    jiffies_at_start: Annotated[float, Field(ge=0)] | None = None
    tcp_rfc1337: Literal[0, 1] = 0
    time_wait_rst: Annotated[float, Field(ge=0, le=1)] = 0.0
    # behind a NAT (issue 16): connections go through [[gateways]] of this name (sim/nat)
    gateway: str | None = None
    # SYN retransmissions when a gateway drops the SYN (sim/syn.py; ip-sysctl.rst: "should
    # not be higher than 127"; linear timeouts at most 63, tcp_syn_linear_timeouts_max)
    tcp_syn_retries: Annotated[int, Field(ge=1, le=127)] = 6
    tcp_syn_linear_timeouts: Annotated[int, Field(ge=0, le=63)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _primary_address(cls, data: Any) -> Any:
        """``addresses`` without ``address``: the first one is the primary (logs, UDP)."""
        if isinstance(data, dict) and "address" not in data:
            extra = data.get("addresses")
            if isinstance(extra, list) and extra and isinstance(extra[0], str):
                data = {**data, "address": extra[0]}
        return data

    @field_validator("address", mode="before")
    @classmethod
    def _host_address(cls, value: Any, info: ValidationInfo) -> str:
        """An IP, or with ``count`` the fleet's network (sim.fleet_addresses)."""
        count = info.data.get("count")
        if count is None and "count" not in info.data:  # a bad count, reported: either form
            try:
                return _address(value)
            except ValueError:
                return _network(value)
        if count is None:
            return _address(value)
        if not isinstance(value, str):
            raise ValueError('with count, expected a network such as "10.244.1.0/24"')
        fleet_addresses(value, count)  # raises ValueError: too small, not a network
        return canonical(value)

    @model_validator(mode="after")
    def _fleet_fields(self) -> HostSpec:
        if self.count is not None and self.initial_state is not None:
            raise ValueError(
                "initial_state: a snapshot is one machine's; it cannot be given to a fleet"
            )
        return self

    @property
    def fleet(self) -> bool:
        """Whether this entry stands for ``count`` hosts (sim.fleet)."""
        return self.count is not None

    @field_validator("addresses")
    @classmethod
    def _distinct(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        if value is None:
            return value
        if info.data.get("count") is not None:
            raise ValueError(
                "a fleet's members have one address each, from address; several source "
                "addresses are for single hosts (no count)"
            )
        if len(set(value)) != len(value):
            raise ValueError("addresses must be distinct")
        primary = info.data.get("address")
        if primary is not None and primary not in value:
            raise ValueError(f"must include the host's address {primary}")
        if len({ipaddress.ip_address(a).version for a in value}) > 1:
            raise ValueError("mixes IPv4 and IPv6 addresses")
        return value

    @property
    def source_addresses(self) -> tuple[str, ...]:
        """Local addresses connections leave from, the primary first."""
        if not self.addresses:
            return (self.address,)
        return (self.address, *(a for a in self.addresses if a != self.address))


# ---- gateways ---------------------------------------------------------------------------


GATEWAY_KEYS = ("name", "kind", "addresses", "port_range")


class GatewaySpec(SpecModel):
    """One ``[[gateways]]`` table: a source-NAT gateway between hosts and destinations.

    Keys beyond ``GATEWAY_KEYS`` are the kind's own (``random_fully``, ``conntrack``, ...):
    kept as they are here and checked by the kind (``sim.config.gateways``), so that a new kind
    brings its keys with it."""

    model_config = ConfigDict(title="Gateway", extra="allow")

    name: str
    kind: str
    addresses: Annotated[list[Address], Field(min_length=1)]
    port_range: PortRange | None = None

    @model_validator(mode="before")
    @classmethod
    def _plain_values(cls, data: Any) -> Any:
        """The common keys as for every table; the kind's keys are the kind's to check
        (true/false is a plain value for ``random_fully``)."""
        if not isinstance(data, dict):
            return data
        for key in GATEWAY_KEYS:
            if key not in data:
                continue
            value = data[key]
            if holds_bool(value):
                raise ValueError(f"{show(key)}: expected a number or text, not true/false")
            problem = bad_text(value)
            if problem:
                raise ValueError(f"{show(key)}: {problem}")
        return data

    @field_validator("addresses")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("addresses must be distinct")
        if len({ipaddress.ip_address(a).version for a in value}) > 1:
            raise ValueError("mixes IPv4 and IPv6 addresses")
        return value

    @property
    def options(self) -> dict[str, Any]:
        """The kind's own keys as written."""
        return dict(self.model_extra or {})


# ---- destinations -----------------------------------------------------------------------


class Destination(SpecModel):
    """One destination ``ip:port``, or a generated set of ``count`` of them (``address`` is
    then a network and ``ports`` their ports) whose members are named ``ip:port``."""

    name: str
    count: Annotated[int, Field(ge=1, le=MAX_SET)] | None = None
    address: str
    ports: PortList | None = None
    popularity: Literal["uniform", "zipf"] = "uniform"
    zipf_s: Annotated[float, Field(gt=0, le=10)] = 1.0
    time_wait: Duration = 60.0  # the server's TIME_WAIT when it closes first (collisions)

    @field_validator("address", mode="before")
    @classmethod
    def _address(cls, value: Any, info: ValidationInfo) -> str:
        if info.data.get("count") is None:
            if "count" not in info.data:  # an invalid count (reported): accept either form
                try:
                    return _network(value)
                except ValueError:
                    pass
            return _endpoint(value)
        return _network(value)

    @model_validator(mode="after")
    def _set_fields(self) -> Destination:
        if self.count is None:
            if self.ports is not None or self.popularity != "uniform":
                raise ValueError("ports and popularity belong to a generated set (with count)")
            return self
        if not self.ports:
            raise ValueError("a generated set (with count) needs ports, e.g. ports = [443]")
        if len(set(self.ports)) != len(self.ports):
            raise ValueError("ports must be distinct")
        room = _host_count(self.network) * len(self.ports)
        if self.count > room:
            raise ValueError(
                f"count {self.count} is more than {self.address} x {len(self.ports)} port(s) "
                f"holds ({room})"
            )
        return self

    @property
    def generated(self) -> bool:
        return self.count is not None

    @property
    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        return ipaddress.ip_network(self.address)

    @property
    def ip(self) -> str:
        return self.address.rsplit(":", 1)[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])

    @property
    def loopback(self) -> bool:
        return parsed_ip(self.ip).is_loopback

    def members(self) -> list[Destination]:
        """The single destination itself, or the set's members in popularity order: the
        network's host addresses in order, each with every port in turn."""
        if self.count is None:
            return [self]
        ports = self.ports or ()
        hosts = itertools.islice(_hosts(self.network), math.ceil(self.count / len(ports)))
        out: list[Destination] = []
        for ip in hosts:
            for port in ports:
                address = f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"
                out.append(Destination(name=address, address=address, time_wait=self.time_wait))
                if len(out) == self.count:
                    return out
        return out

    def member_weights(self) -> list[float]:
        """Relative popularity of ``members()``: equal, or Zipf's 1 / rank**s."""
        n = self.count or 1
        if self.popularity == "uniform":
            return [1.0] * n
        return [1.0 / (rank**self.zipf_s) for rank in range(1, n + 1)]


def _hosts(network: ipaddress.IPv4Network | ipaddress.IPv6Network):
    """Usable host addresses (a /32 or /128 is its one address)."""
    if network.num_addresses <= 2:
        return iter(network)
    return network.hosts()


def _host_count(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> int:
    n = network.num_addresses
    if n <= 2:
        return n
    return n - 2 if network.version == 4 else n - 1


# ---- load -------------------------------------------------------------------------------

PositiveRate = Annotated[float, Field(gt=0, le=MAX_RATE, allow_inf_nan=False)]
Rate = Annotated[float, Field(ge=0, le=MAX_RATE, allow_inf_nan=False)]
PositiveDuration = Annotated[Duration, Field(gt=0)]


def _data_file(value: Any, info: ValidationInfo) -> str:
    """A data file's path, relative to the scenario file's directory (the context's
    ``base``), kept absolute so the resolved scenario can be run from anywhere."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("expected a file path (relative to the scenario file)")
    base = Path((info.context or {}).get("base") or ".")
    path = base / value.strip()
    try:
        return str(path.resolve())
    except (RuntimeError, OSError):  # a symbolic link loop: reported when the file is read
        return os.path.abspath(path)


DataFile = Annotated[
    str,
    BeforeValidator(_data_file),
    WithJsonSchema({"type": "string", "description": "a CSV file, relative to the scenario"}),
]


class Poisson(SpecModel):
    kind: Literal["poisson"]
    rate: PositiveRate


class ConstantArrivalSpec(SpecModel):
    model_config = ConfigDict(title="Constant")  # the schema names the table, not the class

    kind: Literal["constant"]
    interval: PositiveDuration


class Burst(SpecModel):
    kind: Literal["burst"]
    count: Annotated[int, Field(ge=1)]
    at: Duration = 0.0


class OnOff(SpecModel):
    """Poisson at ``rate`` for ``on``, silent for ``off``, repeating from the load's start."""

    kind: Literal["onoff"]
    rate: PositiveRate
    on: PositiveDuration
    off: PositiveDuration


def _increasing(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    times = [t for t, _ in points]
    if any(b <= a for a, b in itertools.pairwise(times)):
        raise ValueError("times must increase from point to point")
    return points


class Schedule(SpecModel):
    """A Poisson process whose rate follows ``points = [[time, rate], ...]`` (absolute
    times): held from point to point (``shape = "step"``) or ramped linearly between them
    (``"linear"``).  Zero before the first point; the last rate holds after the last."""

    kind: Literal["schedule"]
    points: Annotated[list[tuple[Duration, Rate]], Field(min_length=1), AfterValidator(_increasing)]
    shape: Literal["step", "linear"] = "step"


class Diurnal(SpecModel):
    """A Poisson process with rate ``mean * (1 + amplitude * cos(2 pi (t - peak) / period))``:
    a day's swing, highest at ``peak`` (default half a period in: midnight to noon)."""

    kind: Literal["diurnal"]
    mean: PositiveRate
    amplitude: Annotated[float, Field(ge=0, le=1)] = 0.5
    period: PositiveDuration = 86400.0
    peak: Duration | None = None


class TraceArrival(SpecModel):
    """Replay a CSV trace exactly: ``time_s, destination[, lifetime_s][, host]``."""

    kind: Literal["trace"]
    file: DataFile

    @field_validator("file")
    @classmethod
    def _readable(cls, path: str) -> str:
        files.read_trace(path)  # raises DataFileError (a ValueError) naming the line
        return path

    @property
    def trace(self) -> files.Trace:
        return files.read_trace(self.file)


Arrival = Annotated[
    Poisson | ConstantArrivalSpec | Burst | OnOff | Schedule | Diurnal | TraceArrival,
    Field(discriminator="kind"),
]


class FixedLifetimeSpec(SpecModel):
    model_config = ConfigDict(title="Fixed")  # the schema names the table, not the class

    kind: Literal["fixed"]
    value: LifetimeValue

    @property
    def mean(self) -> float:
        return self.value


class Exponential(SpecModel):
    kind: Literal["exponential"]
    mean: PositiveDuration


Z99 = 2.3263478740408408  # the standard normal's 99th percentile


class LogNormal(SpecModel):
    """By ``mean`` and ``p99`` (seconds), or by ``mu`` and ``sigma`` (of log-seconds).

    From mean and p99: ``ln p99 - ln mean = z sigma - sigma^2 / 2`` (z = 2.326), of which
    the smaller root is taken; it exists when ``mean < p99 <= e^(z^2/2) mean`` (~15x).
    After validation all four are set, so the resolved scenario shows both forms."""

    kind: Literal["lognormal"]
    mean: PositiveDuration | None = None
    p99: PositiveDuration | None = None
    mu: Annotated[float, Field(ge=-50, le=50, allow_inf_nan=False)] | None = None
    sigma: Annotated[float, Field(gt=0, le=10)] | None = None

    @model_validator(mode="after")
    def _solve(self) -> LogNormal:
        if self.mu is not None and self.sigma is not None:
            mean = math.exp(self.mu + self.sigma**2 / 2)
            p99 = math.exp(self.mu + Z99 * self.sigma)
            for name, given, value in (("mean", self.mean, mean), ("p99", self.p99, p99)):
                if given is not None and not math.isclose(given, value, rel_tol=1e-6):
                    raise ValueError(f"give mean and p99, or mu and sigma; {name} disagrees")
        elif self.mean is not None and self.p99 is not None and self.mu is None:
            gap = math.log(self.p99 / self.mean)
            if not 0 < gap <= Z99**2 / 2:
                raise ValueError(
                    "p99 must be above mean and at most ~15x it for a lognormal "
                    f"(got mean {self.mean:g} s, p99 {self.p99:g} s)"
                )
            sigma = Z99 - math.sqrt(Z99**2 - 2 * gap)
            mu = math.log(self.mean) - sigma**2 / 2
            object.__setattr__(self, "mu", mu)
            object.__setattr__(self, "sigma", sigma)
            mean, p99 = self.mean, self.p99
        else:
            raise ValueError("give mean and p99, or mu and sigma")
        for name, value in (("mean", mean), ("p99", p99)):
            if not _bounded_ok(value):
                raise ValueError(
                    f"the lognormal's {name} would be {value:.3g} s: "
                    f"lifetimes must stay within 1 ns .. {MAX_SECONDS:.0e} s"
                )
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "p99", p99)
        return self


def _bounded_ok(seconds: float) -> bool:
    return math.isfinite(seconds) and MIN_SECONDS <= seconds <= MAX_SECONDS


class Pareto(SpecModel):
    """Pareto type I: ``P(X > x) = (scale / x)^shape`` for x >= scale.
    Give ``scale`` (the minimum) or ``mean``; shape > 1 so the mean (offered load) is finite."""

    kind: Literal["pareto"]
    shape: Annotated[float, Field(gt=1, le=100)]
    scale: PositiveDuration | None = None
    mean: PositiveDuration | None = None

    @model_validator(mode="after")
    def _solve(self) -> Pareto:
        ratio = self.shape / (self.shape - 1)
        if self.scale is not None:
            mean = self.scale * ratio
            if self.mean is not None and not math.isclose(self.mean, mean, rel_tol=1e-6):
                raise ValueError("give scale or mean, not both (they disagree)")
            object.__setattr__(self, "mean", mean)
        elif self.mean is not None:
            object.__setattr__(self, "scale", self.mean / ratio)
        else:
            raise ValueError("give scale (the minimum) or mean")
        return self


class Uniform(SpecModel):
    kind: Literal["uniform"]
    low: Duration
    high: Duration

    @model_validator(mode="after")
    def _ordered(self) -> Uniform:
        if self.high <= self.low:
            raise ValueError(f"high must be above low (got {self.low:g}, {self.high:g})")
        return self

    @property
    def mean(self) -> float:
        return (self.low + self.high) / 2


class Empirical(SpecModel):
    """Lifetimes drawn with replacement from samples in a CSV file (one column, seconds)."""

    kind: Literal["empirical"]
    file: DataFile

    @field_validator("file")
    @classmethod
    def _readable(cls, path: str) -> str:
        files.read_samples(path)
        return path

    @property
    def samples(self) -> Any:
        return files.read_samples(self.file)

    @property
    def mean(self) -> float:
        return float(self.samples.mean())


Lifetime = Annotated[
    FixedLifetimeSpec | Exponential | LogNormal | Pareto | Uniform | Empirical,
    Field(discriminator="kind"),
]


class KeepAlive(SpecModel):
    """A connection pool per destination: arrivals are requests that borrow a connection.

    Defaults follow Go's net/http Transport (idle connections closed after 90 s, no limit
    on requests or age); ``max_connections`` is required (Go's MaxConnsPerHost)."""

    max_connections: Annotated[int, Field(ge=1, le=1_000_000)]
    idle_timeout: PositiveDuration = 90.0
    max_requests: Annotated[int, Field(ge=1)] | None = None
    max_lifetime: PositiveDuration | None = None
    on_full: Literal["wait", "fail"] = "wait"
    wait_timeout: PositiveDuration | None = None


class Retry(SpecModel):
    """Retries after a refused connect(): ``max_attempts`` counts the first attempt.

    ``exponential`` waits ``base * factor**(n-1)`` before retry n, at most ``max_delay``;
    ``jitter`` draws the wait uniformly in [0, that] ("full jitter", AWS Architecture Blog,
    "Exponential Backoff and Jitter", 2015)."""

    kind: Literal["none", "fixed", "exponential"] = "none"
    base: PositiveDuration = 0.1
    max_attempts: Annotated[int, Field(ge=1, le=1000)] = 5
    factor: Annotated[float, Field(ge=1, le=100)] = 2.0
    max_delay: PositiveDuration | None = None
    jitter: bool = True

    @property
    def attempts(self) -> int:
        return 1 if self.kind == "none" else self.max_attempts


class LoadSpec(SpecModel):
    model_config = ConfigDict(title="Load")  # the schema names the table, not the class

    name: str | None = None
    host: str | None = None
    destination: str | None = None
    destinations: Annotated[list[str], Field(min_length=1)] | None = None
    weights: Annotated[list[PositiveRate], Field(min_length=1)] | None = None
    arrival: Arrival
    lifetime: Lifetime | None = None
    close: Literal["client", "server", "reset"] = "client"
    socket: Literal["connect", "bind", "bind_reuseaddr", "bind_no_port"] = "connect"
    protocol: Literal["tcp", "udp"] = "tcp"
    start: Duration = 0.0
    stop: Duration | None = None
    local_port_range: PortRange | None = None
    keepalive: KeepAlive | None = None
    # SO_KEEPALIVE with TCP_KEEPIDLE = TCP_KEEPINTVL = this: an idle connection sends a
    # probe this often (what keeps a gateway's idle timeout from dropping pooled connections)
    tcp_keepalive: PositiveDuration | None = None
    retry: Retry | None = None

    @property
    def destination_names(self) -> list[str]:
        """The destinations named by ``destination`` or ``destinations`` (none for a trace,
        whose rows name them)."""
        if self.destinations is not None:
            return list(self.destinations)
        return [self.destination] if self.destination is not None else []


def _folder_name(name: str) -> str:
    problem = name_problem(name)
    if problem:
        raise ValueError(problem)
    return name


class Scenario(SpecModel):
    name: Annotated[
        str,
        AfterValidator(_folder_name),
        WithJsonSchema(
            {
                "type": "string",
                "pattern": NAME_PATTERN,
                "maxLength": MAX_NAME,
                "not": {"enum": [".", ".."]},
                "description": "names the results folder: letters, digits, '.', '_', '-'",
            }
        ),
    ]
    description: str = ""
    seed: Annotated[int, Field(ge=0, lt=2**63)] = DEFAULT_SEED
    duration: Annotated[Duration, Field(gt=0)]
    bin: Annotated[Duration, Field(gt=0)] | None = None
    max_events: Annotated[float, Field(gt=0)] = DEFAULT_MAX_EVENTS
    warmup: Duration | None = None
    hosts: Annotated[list[HostSpec], Field(min_length=1)] = [HostSpec()]
    destinations: Annotated[list[Destination], Field(min_length=1)]
    load: Annotated[list[LoadSpec], Field(min_length=1)]
    gateways: list[GatewaySpec] = []

    def gateway(self, name: str) -> GatewaySpec:
        return next(g for g in self.gateways if g.name == name)

    def destination(self, name: str) -> Destination:
        return next(d for d in self.destinations if d.name == name)

    def trace_targets(self) -> dict[str, Destination]:
        """What a trace row may name: a single destination by name, or any destination
        (a set's member included) by its ``ip:port``."""
        out: dict[str, Destination] = {}
        for dest in self.destinations:
            for member in dest.members():
                out.setdefault(member.address, member)
            if not dest.generated:
                out[dest.name] = dest
        return out

    def member_names(self) -> set[str]:
        return set(self.trace_targets())

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


BOOL_KEYS = frozenset(  # every key of a scenario that takes true/false
    [
        *(
            name
            for model in (Scenario, HostSpec, Destination, LoadSpec, KeepAlive, Retry)
            for name in bool_fields(model)
        ),
        *(  # gateway kinds' own switches (random_fully, persistent, ...)
            name
            for kind in KINDS.values()
            for name, value in kind.defaults.items()
            if isinstance(value, bool)
        ),
    ]
)
