"""Operating-system presets: range, TIME_WAIT and port-selection policy, with sources.

A preset fills in what a scenario's host leaves out; every field can be overridden in the
scenario.  Linux presets name a kernel version, which selects the behaviour generation
(``sim.ports.linux.kernel_profile``); an explicit ``kernel`` in the host wins.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    name: str
    family: str  # which allocation policy family implements it
    kernel: str | None
    time_wait_s: float
    source: str
    description: str


_LINUX_SOURCE = "linux.md §1-§3, §7 (inet_hashtables.c, inet_connection_sock.c, tcp.h)"

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        Preset("linux", "linux", "6.18", 60.0, _LINUX_SOURCE, "current Linux (6.18)"),
        Preset("linux-6.18", "linux", "6.18", 60.0, _LINUX_SOURCE, "Linux 6.18"),
        Preset("linux-6.8", "linux", "6.8", 60.0, _LINUX_SOURCE, "Linux 6.8-6.13"),
        Preset("linux-5.18", "linux", "5.18", 60.0, _LINUX_SOURCE, "Linux 5.18-6.7"),
        Preset("linux-5.12", "linux", "5.12", 60.0, _LINUX_SOURCE, "Linux 5.12-5.17"),
        Preset("linux-4.6", "linux", "4.6", 60.0, _LINUX_SOURCE, "Linux 4.6-5.11"),
        Preset("linux-4.5", "linux", "4.5", 60.0, _LINUX_SOURCE, "Linux 4.5"),
        Preset("linux-4.4", "linux", "4.4", 60.0, _LINUX_SOURCE, "Linux up to 4.4"),
    ]
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown os preset {name!r}; one of: {', '.join(PRESETS)}") from None
