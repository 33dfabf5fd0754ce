"""Host settings resolved from the scenario, then the preset, then the defaults: the one
place that says which policy, kernel, scope, range, TIME_WAIT lengths, tcp_tw_reuse and
timers a host runs.

A scenario key wins over the preset's value; a Linux preset without a kernel runs the
newest kernel modelled, :data:`DEFAULT_KERNEL`.  :func:`resolve_host` gives the frozen
:class:`ResolvedHost` that ``sim.host.Host`` is built from; validation, reports and
``portsim inspect`` ask the same functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from sim.ports.linux import KernelProfile, kernel_profile
from sim.presets import DEFAULT_KERNEL, Preset, get_preset, preset_kernel
from sim.timerwheel import FIRST_WHEEL_KERNEL

if TYPE_CHECKING:
    from sim.config.types import HostSpec

__all__ = [
    "DEFAULT_KERNEL",
    "ResolvedHost",
    "host_kernel",
    "host_policy",
    "host_preset",
    "is_linux",
    "preset_port_range",
    "preset_profile",
    "resolve_host",
]


def host_preset(host: HostSpec) -> Preset:
    return get_preset(host.os)


def host_policy(host: HostSpec) -> str:
    """The TCP port-selection policy: ``policy``, else the preset's."""
    return host.policy or host_preset(host).policy


def is_linux(host: HostSpec) -> bool:
    return host_policy(host) == "linux"


def host_kernel(host: HostSpec) -> str:
    """The kernel version string: ``kernel``, else the preset's, else the default."""
    return host.kernel or preset_kernel(host_preset(host))


def preset_profile(preset: Preset) -> KernelProfile:
    """The Linux kernel a preset runs when the scenario names none (a Linux preset's range
    and tcp_tw_reuse default come from it)."""
    return kernel_profile(preset_kernel(preset))


def preset_port_range(preset: Preset) -> tuple[int, int]:
    """A preset's ephemeral range: its own, else its Linux kernel's default."""
    return preset.port_range or preset_profile(preset).default_range


T = TypeVar("T")


def _first(*values: T | None) -> T:
    """The first value that is not None (scenario, then preset, then default)."""
    return next(v for v in values if v is not None)


@dataclass(frozen=True, slots=True)
class ResolvedHost:
    """A scenario host with every preset default and kernel fact applied."""

    spec: HostSpec  # the scenario's table (name, addresses, ports, sockets' knobs)
    preset: Preset
    policy: str  # TCP connect()/bind(0) port selection
    linux: bool  # the Linux scans (sim.ports.linux) rather than a generic policy
    windows: bool  # Windows' exhaustion behaviour (events 4227/4231, forced reuse)
    profile: KernelProfile | None  # the Linux kernel's facts (None: not Linux)
    scope: str  # what makes a port busy for connect(): "4tuple", "local_address", "port"
    udp_scope: str  # connected UDP: "port" or "4tuple"
    udp_policy: str  # UDP port selection (a generic policy; Linux: "linux")
    shared_counter: bool  # one cursor for TCP and UDP
    first_offset: int  # sequential policies: offset of the first port handed out
    port_range: tuple[int, int]
    reserved_tcp: frozenset[int]  # reserved ports and the preset's TCP skip list
    reserved_udp: frozenset[int]  # reserved ports (and the preset's UDP skip list)
    time_wait: float
    time_wait_local: float  # towards peers on the host's own network
    time_wait_loopback: float
    nolocaltimewait: bool
    forced_reuse: bool
    tw_reuse: int  # net.ipv4.tcp_tw_reuse (0 off the Linux model)
    tw_reuse_delay: float
    tw_reuse_rule: str  # which TIME_WAIT age check tcp_tw_reuse applies
    hz: int
    timer_wheel: bool  # TIME_WAIT expires on the timer wheel's grid
    time_wait_rst: float  # chance an RST kills a TIME_WAIT (0 with tcp_rfc1337 = 1)


def resolve_host(spec: HostSpec) -> ResolvedHost:
    """Scenario host + preset + kernel -> the settings a host runs."""
    preset = host_preset(spec)
    policy = host_policy(spec)
    linux = policy == "linux"
    kernel = host_kernel(spec)
    profile = kernel_profile(kernel, spec.linux_generation) if linux else None
    default_range = profile.default_range if profile else preset.port_range
    if default_range is None:  # another policy on a Linux preset: the kernel's range
        default_range = kernel_profile(kernel).default_range
    lo, _ = port_range = spec.port_range or default_range
    time_wait = spec.time_wait if spec.time_wait is not None else preset.time_wait_s
    time_wait_local = _first(spec.time_wait_local, preset.time_wait_local_s, time_wait)
    windows = preset.family == "windows"
    reserved = frozenset(spec.reserved_ports)
    udp_policy = (
        "linux"
        if linux
        else spec.udp_policy or (policy if spec.policy else preset.udp_policy or policy)
    )
    return ResolvedHost(
        spec=spec,
        preset=preset,
        policy=policy,
        linux=linux,
        windows=windows,
        profile=profile,
        scope=spec.scope or preset.scope,
        udp_scope="port" if linux else spec.udp_scope or preset.udp_scope,
        udp_policy=udp_policy,
        shared_counter=(
            not linux
            and _first(spec.shared_counter, preset.shared_counter)
            and udp_policy == policy
        ),
        first_offset=preset.first_offset if spec.first_port is None else spec.first_port - lo,
        port_range=port_range,
        reserved_tcp=reserved | frozenset(preset.skip_tcp),
        reserved_udp=reserved if linux else reserved | frozenset(preset.skip_udp),
        time_wait=time_wait,
        time_wait_local=time_wait_local,
        time_wait_loopback=_first(
            spec.time_wait_loopback, preset.time_wait_loopback_s, time_wait_local
        ),
        nolocaltimewait=_first(spec.nolocaltimewait, preset.nolocaltimewait),
        forced_reuse=windows and _first(spec.forced_reuse, preset.forced_reuse),
        tw_reuse=_first(spec.tcp_tw_reuse, profile.default_tw_reuse) if profile else 0,
        tw_reuse_delay=spec.tcp_tw_reuse_delay,
        tw_reuse_rule=spec.tcp_tw_reuse_rule or (profile.tw_delay_rule if profile else "ms"),
        hz=spec.hz,
        timer_wheel=(
            profile is not None and spec.timer_wheel and profile.version >= FIRST_WHEEL_KERNEL
        ),
        # an RST reaching a client TIME_WAIT kills it unless tcp_rfc1337 = 1
        # (tcp_timewait_state_process, net/ipv4/tcp_minisocks.c, Linux 6.18)
        time_wait_rst=spec.time_wait_rst if linux and spec.tcp_rfc1337 == 0 else 0.0,
    )
