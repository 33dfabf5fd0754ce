"""Host settings resolved from the scenario, then the preset, then the defaults: the one
place that says which policy and kernel a host runs.

A scenario key wins over the preset's value; a Linux preset without a kernel runs the
newest kernel modelled, :data:`DEFAULT_KERNEL`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sim.presets import DEFAULT_KERNEL, Preset, get_preset, preset_kernel

if TYPE_CHECKING:
    from sim.config.types import HostSpec

__all__ = ["DEFAULT_KERNEL", "host_kernel", "host_policy", "host_preset", "is_linux"]


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
