"""Scenario files: TOML, validated by pydantic into frozen models; errors name file and key.

Loading never raises anything but :class:`ScenarioError`, whose ``problems`` are one line
each (``file: dotted.key: message (got value)``), so the CLI can print every problem at once
and exit 2 without a traceback.
"""

from __future__ import annotations

import ipaddress
import itertools
import math
import os
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
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from sim import config_errors
from sim.plain_values import FREE_TEXT, bad_text, bool_fields, holds_bool, plain_value_checks
from sim.ports.linux import GENERATIONS, kernel_profile
from sim.ports.policy import POLICIES
from sim.presets import PRESETS
from sim.resolve import host_kernel, host_policy, is_linux
from sim.safe_paths import MAX_NAME, NAME_PATTERN, SCENARIO_LIMIT, InputFileError, name_problem
from sim.safe_paths import read_regular as _read_regular
from sim.timerwheel import granularity
from sim.units import (
    DURATION_PATTERN,
    ENDPOINT_FORMAT,
    PORT_RANGE_PATTERN,
    parse_duration,
    parse_endpoint,
    parse_port_range,
)
from sim.workload import files
from sim.workload.arrivals import estimated_events

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


class ScenarioError(Exception):
    """Every problem found in a scenario, one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


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


class Model(BaseModel):
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


class InitialState(Model):
    """Ports held at time 0, from a CSV (``sim.initial_state``): ``portsim inspect --out``
    writes one from a machine's snapshot; ``time_wait_age`` says how the TIME_WAIT left is
    assumed where the file leaves it empty (``uniform`` or ``fresh``, inferred)."""

    file: DataFile
    time_wait_age: Literal["uniform", "fresh"] = "uniform"

    @field_validator("file")
    @classmethod
    def _readable(cls, path: str) -> str:
        from sim.initial_state import read_initial_state

        read_initial_state(path)  # raises DataFileError (a ValueError) naming the line
        return path


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

    @model_validator(mode="before")
    @classmethod
    def _primary_address(cls, data: Any) -> Any:
        """``addresses`` without ``address``: the first one is the primary (logs, UDP)."""
        if isinstance(data, dict) and "address" not in data:
            extra = data.get("addresses")
            if isinstance(extra, list) and extra and isinstance(extra[0], str):
                data = {**data, "address": extra[0]}
        return data

    @field_validator("addresses")
    @classmethod
    def _distinct(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        if value is None:
            return value
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


# ---- destinations -----------------------------------------------------------------------


class Destination(Model):
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
        return ipaddress.ip_address(self.ip).is_loopback

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


class Poisson(Model):
    kind: Literal["poisson"]
    rate: PositiveRate


class Constant(Model):
    kind: Literal["constant"]
    interval: PositiveDuration


class Burst(Model):
    kind: Literal["burst"]
    count: Annotated[int, Field(ge=1)]
    at: Duration = 0.0


class OnOff(Model):
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


class Schedule(Model):
    """A Poisson process whose rate follows ``points = [[time, rate], ...]`` (absolute
    times): held from point to point (``shape = "step"``) or ramped linearly between them
    (``"linear"``).  Zero before the first point; the last rate holds after the last."""

    kind: Literal["schedule"]
    points: Annotated[list[tuple[Duration, Rate]], Field(min_length=1), AfterValidator(_increasing)]
    shape: Literal["step", "linear"] = "step"


class Diurnal(Model):
    """A Poisson process with rate ``mean * (1 + amplitude * cos(2 pi (t - peak) / period))``:
    a day's swing, highest at ``peak`` (default half a period in: midnight to noon)."""

    kind: Literal["diurnal"]
    mean: PositiveRate
    amplitude: Annotated[float, Field(ge=0, le=1)] = 0.5
    period: PositiveDuration = 86400.0
    peak: Duration | None = None


class TraceArrival(Model):
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
    Poisson | Constant | Burst | OnOff | Schedule | Diurnal | TraceArrival,
    Field(discriminator="kind"),
]


class Fixed(Model):
    kind: Literal["fixed"]
    value: LifetimeValue

    @property
    def mean(self) -> float:
        return self.value


class Exponential(Model):
    kind: Literal["exponential"]
    mean: PositiveDuration


Z99 = 2.3263478740408408  # the standard normal's 99th percentile


class LogNormal(Model):
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


class Pareto(Model):
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


class Uniform(Model):
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


class Empirical(Model):
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
    Fixed | Exponential | LogNormal | Pareto | Uniform | Empirical, Field(discriminator="kind")
]


class KeepAlive(Model):
    """A connection pool per destination: arrivals are requests that borrow a connection.

    Defaults follow Go's net/http Transport (idle connections closed after 90 s, no limit
    on requests or age); ``max_connections`` is required (Go's MaxConnsPerHost)."""

    max_connections: Annotated[int, Field(ge=1, le=1_000_000)]
    idle_timeout: PositiveDuration = 90.0
    max_requests: Annotated[int, Field(ge=1)] | None = None
    max_lifetime: PositiveDuration | None = None
    on_full: Literal["wait", "fail"] = "wait"
    wait_timeout: PositiveDuration | None = None


class Retry(Model):
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


class Load(Model):
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


class Scenario(Model):
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
    hosts: Annotated[list[Host], Field(min_length=1)] = [Host()]
    destinations: Annotated[list[Destination], Field(min_length=1)]
    load: Annotated[list[Load], Field(min_length=1)]

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


# ---- loading ----------------------------------------------------------------------------


_TAGS = {
    "arrival": {"poisson", "constant", "burst", "onoff", "schedule", "diurnal", "trace"},
    "lifetime": {"fixed", "exponential", "lognormal", "pareto", "uniform", "empirical"},
}


BOOL_KEYS = frozenset(  # every key of a scenario that takes true/false
    name
    for model in (Scenario, Host, Destination, Load, KeepAlive, Retry)
    for name in bool_fields(model)
)


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
    """pydantic's errors in the project's words (sim.config_errors), one line each."""
    lines = []
    for item in error.errors(include_url=False):
        loc, msg, quiet = config_errors.describe(dict(item), Scenario)
        suffix = "" if quiet else f" (got {_short(item.get('input'))})"
        lines.append(f"{source}: {_loc(loc)}: {msg}{suffix}")
    return lines


def _table_list(raw: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items = raw.get(key)
    return [x for x in items if isinstance(x, dict)] if isinstance(items, list) else []


def _reference_checks(source: str, raw: dict[str, Any]) -> list[str]:
    """Rules across tables, checked on the raw document so that they are reported together
    with field errors: duplicate names, references to hosts and destinations, ranges."""
    problems: list[str] = []
    hosts = _table_list(raw, "hosts") if "hosts" in raw else [{"name": Host().name}]
    names: dict[str, list[Any]] = {}
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
    loads = raw.get("load")
    for i, load in enumerate(loads if isinstance(loads, list) else []):
        if not isinstance(load, dict):
            continue
        where = f"{source}: load[{i}]"
        host = load.get("host")
        if host is None and len(hosts) > 1:
            problems.append(f"{where}.host: required when there are several hosts")
        elif isinstance(host, str) and host not in names["hosts"]:
            hint = config_errors.suggest(host, [n for n in names["hosts"] if isinstance(n, str)])
            problems.append(
                f"{where}.host: no such host; {hint + ' ' if hint else ''}defined: "
                f"{defined['hosts']} (got {_short(host)})"
            )
        problems += _destination_checks(where, load, names["destinations"], defined)
        try:
            start, stop = parse_duration(load.get("start", 0)), parse_duration(load["stop"])
        except (KeyError, ValueError):
            pass  # no stop, or a bad value that the field check reports
        else:
            if stop <= start:
                problems.append(f"{where}.stop: must be after start (got {load['stop']!r})")
    return problems


def _destination_checks(
    where: str, load: dict[str, Any], names: list[str], defined: dict[str, str]
) -> list[str]:
    """``destination`` or ``destinations`` (with ``weights``), or neither for a trace."""
    problems = []
    single, several = load.get("destination"), load.get("destinations")
    arrival = load.get("arrival")
    trace = isinstance(arrival, dict) and arrival.get("kind") == "trace"
    if single is not None and several is not None:
        problems.append(f"{where}: give destination or destinations, not both")
    elif single is None and several is None and not trace:
        problems.append(f"{where}.destination: required (or destinations = [...])")
    elif trace and (single is not None or several is not None):
        key = "destination" if single is not None else "destinations"
        problems.append(f"{where}.{key}: a trace names each request's destination itself")
    if "lifetime" not in load and not trace:
        problems.append(f"{where}.lifetime: required")
    listed = [(f"{where}.destination", single)] if single is not None else []
    if isinstance(several, list):
        listed += [(f"{where}.destinations[{j}]", d) for j, d in enumerate(several)]
        if len({d for d in several if isinstance(d, str)}) != len(several):
            problems.append(f"{where}.destinations: names must be distinct")
    for key, dest in listed:
        if isinstance(dest, str) and dest not in names:
            hint = config_errors.suggest(dest, [n for n in names if isinstance(n, str)])
            problems.append(
                f"{key}: no such destination; {hint + ' ' if hint else ''}defined: "
                f"{defined['destinations'] or '(none)'} (got {_short(dest)})"
            )
    weights = load.get("weights")
    if weights is not None:
        if several is None:
            problems.append(f"{where}.weights: weights go with destinations = [...]")
        elif (
            isinstance(weights, list) and isinstance(several, list) and len(weights) != len(several)
        ):
            problems.append(
                f"{where}.weights: one weight per destination ({len(several)}) (got {len(weights)})"
            )
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
            hint = config_errors.suggest(host.os, PRESETS)
            problems.append(
                f"{where}.os: unknown preset; {hint + ' ' if hint else ''}one of: "
                f"{', '.join(PRESETS)} (got {_short(host.os)})"
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
        linux = is_linux(host)
        if linux and host.scope not in (None, "4tuple"):
            problems.append(
                f"{source}: hosts[{i}].scope: the Linux policy keeps 4-tuple uniqueness for "
                f"connect() (got {host.scope!r})"
            )
        if host.udp_policy is not None and (host.udp_policy == "linux") != linux:
            problems.append(
                f"{source}: hosts[{i}].udp_policy: {host.udp_policy!r} with the "
                f"{'Linux' if linux else 'non-Linux'} TCP policy: the Linux UDP autobind "
                '(udp_lib_get_port) goes with policy = "linux" only; set both'
            )
        if host.forced_reuse and not preset.name.startswith("windows"):
            problems.append(
                f"{source}: hosts[{i}].forced_reuse: a Windows behaviour; this host is {host.os!r}"
            )
        if linux and host.udp_scope not in (None, "port", "local_address"):
            problems.append(
                f"{source}: hosts[{i}].udp_scope: Linux UDP autobind ignores the destination "
                f"(udp_lib_get_port) (got {host.udp_scope!r})"
            )
        if host.tcp_tw_reuse_rule is not None and not linux:
            problems.append(
                f"{source}: hosts[{i}].tcp_tw_reuse_rule: a Linux behaviour; this host uses "
                f"the {host_policy(host)!r} policy"
            )
        tcp_policy = host_policy(host)
        udp_policy = host.udp_policy or (
            tcp_policy if host.policy else preset.udp_policy or tcp_policy
        )
        if host.shared_counter and (linux or udp_policy != tcp_policy):
            problems.append(
                f"{source}: hosts[{i}].shared_counter: one cursor for TCP and UDP (Windows <= "
                f"2003) needs one non-Linux policy for both (got {tcp_policy!r} and "
                f"{udp_policy!r})"
            )
        if host.first_port is not None:
            lo, hi = host.port_range or preset.port_range or (0, 0)
            if tcp_policy != "sequential":
                problems.append(
                    f"{source}: hosts[{i}].first_port: only the sequential policy has a first "
                    f"port (this host uses {tcp_policy!r})"
                )
            elif not lo <= host.first_port <= hi:
                problems.append(
                    f"{source}: hosts[{i}].first_port: must lie within the port range {lo}-{hi} "
                    f"(got {host.first_port})"
                )
        if host.nolocaltimewait is not None and preset.family != "freebsd":
            problems.append(
                f"{source}: hosts[{i}].nolocaltimewait: a FreeBSD sysctl; this host is {host.os!r}"
            )
        if host.auto_reuse_range is None:
            continue
        preset = PRESETS[host.os]
        lo, hi = host.port_range or preset.port_range or (32768, 60999)
        a, b = host.auto_reuse_range
        if is_linux(host):
            problems.append(
                f"{source}: hosts[{i}].auto_reuse_range: a Windows setting; this host runs the "
                "Linux policy"
            )
        elif not lo <= a <= b <= hi:
            problems.append(
                f"{source}: hosts[{i}].auto_reuse_range: must lie within the port range "
                f"{lo}-{hi} (got {[a, b]})"
            )
    problems += _initial_state_checks(source, sc)
    linux_hosts = {
        h.name
        for h in sc.hosts
        if (h.policy or (PRESETS[h.os].policy if h.os in PRESETS else "linux")) == "linux"
    }
    kernels = {h.name: host_kernel(h) for h in sc.hosts if h.os in PRESETS}
    problems += _workload_checks(source, sc)
    problems += _usable_port_checks(source, sc)
    bins = sc.duration / sc.bin_width
    if bins > MAX_RUN_BINS:
        problems.append(
            f"{source}: bin: the run would have {bins:.3g} time bins (duration / bin), needing "
            f"about {bins * 250 / 2**30:.3g} GiB; at most {MAX_RUN_BINS:,}: widen bin"
        )
    for i, load in enumerate(sc.load):
        host_name = load.host or sc.hosts[0].name
        if load.local_port_range is not None and load.protocol == "udp":
            problems.append(
                f"{source}: load[{i}].local_port_range: modelled for TCP only (UDP autobind "
                "scans the host's range here)"
            )
        elif (
            load.local_port_range is not None
            and host_name in linux_hosts
            and host_name in kernels
            and _kernel_before(kernels[host_name], (6, 3))
        ):
            problems.append(
                f"{source}: load[{i}].local_port_range: IP_LOCAL_PORT_RANGE exists from Linux "
                f"6.3 (host {show(host_name)} runs {kernels[host_name]})"
            )
        if load.local_port_range is not None and host_name not in linux_hosts:
            problems.append(
                f"{source}: load[{i}].local_port_range: IP_LOCAL_PORT_RANGE is modelled for "
                f"Linux hosts only (host {show(host_name)} uses another policy)"
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


def _initial_state_checks(source: str, sc: Scenario) -> list[str]:
    """Held ports must fit the host: inside its range, no more TIME_WAIT than it holds."""
    from sim.initial_state import check, read_initial_state

    problems = []
    for i, host in enumerate(sc.hosts):
        if host.initial_state is None or host.os not in PRESETS:
            continue
        preset = PRESETS[host.os]
        try:
            profile = kernel_profile(host_kernel(host))
        except ValueError:
            continue  # reported as a bad kernel
        default = preset.port_range or profile.default_range
        lo, hi = host.port_range or default
        tw = host.time_wait if host.time_wait is not None else preset.time_wait_s
        tw = max(tw, host.time_wait_local or 0.0, host.time_wait_loopback or 0.0)
        if preset.policy == "linux" and host.timer_wheel:  # rounded up to a wheel bucket
            tw += granularity(round(tw * host.hz), host.hz) / host.hz
        problem = check(read_initial_state(host.initial_state.file), lo, hi, tw)
        if problem:
            problems.append(f"{source}: hosts[{i}].initial_state.file: {problem}")
    return problems


def host_range(host: Host) -> tuple[int, int]:
    """The port range a host allocates from: its own, its preset's, or (a Linux preset,
    whatever the policy) the kernel's default ip_local_port_range."""
    preset = PRESETS[host.os]
    if host.port_range is not None:
        return host.port_range
    if preset.port_range is not None:
        return preset.port_range
    return kernel_profile(host.kernel or preset.kernel or "6.18").default_range


def _usable_port_checks(source: str, sc: Scenario) -> list[str]:
    """A host whose every port is reserved has nothing to hand out: refused here rather
    than run with every connect failing for a reason the user did not mean."""
    problems = []
    for i, host in enumerate(sc.hosts):
        if host.os not in PRESETS or not host.reserved_ports:
            continue
        try:
            lo, hi = host_range(host)
        except ValueError:
            continue  # a bad kernel string, reported
        reserved = set(host.reserved_ports) | set(PRESETS[host.os].skip_tcp)
        if all(p in reserved for p in range(lo, hi + 1)):
            problems.append(
                f"{source}: hosts[{i}].reserved_ports: every port of the range {lo}-{hi} is "
                "reserved: no port is left to allocate"
            )
    return problems


def _workload_checks(source: str, sc: Scenario) -> list[str]:
    """Lifetimes, traces, keep-alive: rules that need the validated load."""
    problems: list[str] = []
    hosts = {h.name for h in sc.hosts}
    members = sc.member_names()
    for i, load in enumerate(sc.load):
        where = f"{source}: load[{i}]"
        trace = load.arrival.trace if isinstance(load.arrival, TraceArrival) else None
        if load.lifetime is None and trace is not None and trace.lifetimes is None:
            problems.append(f"{where}.lifetime: required (the trace has no lifetime_s column)")
        if trace is not None:
            unknown = [d for d in trace.destinations if d not in members]
            if unknown:
                problems.append(
                    f"{where}.arrival.file: destination {show(unknown[0])} is not a destination"
                    f" name or a member ip:port ({len(unknown)} unknown)"
                )
            if trace.hosts is not None:
                stray = [h for h in trace.hosts if h not in hosts]
                if stray:
                    problems.append(f"{where}.arrival.file: no such host {show(stray[0])}")
        if load.keepalive is not None and load.protocol != "tcp":
            problems.append(f"{where}.keepalive: keep-alive pools are for TCP loads")
        ka_life = (load.lifetime.mean or 0.0) if load.keepalive and load.lifetime else 0.0
        if not math.isfinite(ka_life):
            problems.append(
                f"{where}.lifetime: with keepalive it is each request's duration; it must be finite"
            )
    return problems


def parse_scenario(
    data: Any, source: str = "<scenario>", base: str | Path | None = None
) -> Scenario:
    """Validate a decoded TOML document (a dict) into a Scenario or raise ScenarioError.

    Data files (traces, lifetime samples) are found relative to ``base`` (the scenario
    file's directory; the working directory when not given)."""
    if not isinstance(data, dict):
        raise ScenarioError([f"{source}: (top level): expected a TOML table"])
    plain = plain_value_checks(source, data, BOOL_KEYS, show)
    if plain:  # named precisely here; pydantic would repeat them at the table's level
        raise ScenarioError(plain)
    references = _reference_checks(source, data)
    try:
        sc = Scenario.model_validate(data, context={"base": str(base or ".")})
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
        raw = _read_regular(path, SCENARIO_LIMIT)
    except InputFileError as exc:
        raise ScenarioError([str(exc)]) from None
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
    return parse_scenario(data, str(path), Path(path).parent)


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
    """Apply ``--set KEY=VALUE`` texts (values parsed as TOML) to a decoded scenario."""
    problems = []
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            problems.append(f"--set {show(item)}: expected KEY=VALUE")
            continue
        problem = assign(data, key, parse_value(text.strip()), source)
        if problem:
            problems.append(f"--set {problem}")
    if problems:
        raise ScenarioError(problems)


def assign(data: dict[str, Any], key: str, value: Any, source: str) -> str | None:
    """Set the dotted ``key`` (``load[0].arrival.rate``) to ``value``, creating tables on
    the way; returns a problem (``key: why``) instead of raising."""
    try:
        path = _parse_path(key)
    except ValueError as exc:
        return f"{show(key)}: {exc}"
    node: Any = data
    for depth, (step, nxt) in enumerate(itertools.pairwise(path)):
        if isinstance(step, int):
            if not isinstance(node, list) or step >= len(node):
                return f"{show(key)}: no list entry [{step}] in {source}"
            node = node[step]
        else:
            if isinstance(node, list):
                return _list_hint(key, path, depth)
            if not isinstance(node, dict):
                return f"{show(key)}: {step} is not a table in {source}"
            node = node.setdefault(step, [] if isinstance(nxt, int) else {})
    last = path[-1]
    if isinstance(last, int):
        if not isinstance(node, list) or last >= len(node):
            return f"{show(key)}: no list entry [{last}] in {source}"
        node[last] = value
    elif isinstance(node, dict):
        node[last] = value
    elif isinstance(node, list):
        return _list_hint(key, path, len(path) - 1)
    else:
        return f"{show(key)}: cannot set a key inside a non-table"
    return None


def _list_hint(key: str, path: list[str | int], depth: int) -> str:
    """``load.arrival.rate`` where load is a list: say so and show the indexed key."""
    fixed = [*path[:depth], 0, *path[depth:]]
    text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in fixed).lstrip(".")
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path[:depth])
    return f"{show(key)}: {where.lstrip('.')} is a list: use {text}"


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
