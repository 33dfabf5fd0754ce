"""``portsim capacity --os PRESET``: the range and TIME_WAIT come from the preset, so the
user need not know them; explicit ``--range`` / ``--time-wait`` still win."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sim.resolve import ResolvedHost

LINUX_RANGE = "32768-60999"  # ip_local_port_range's default since Linux 4.2 (commit 07f4c90062f8)
LINUX_TIME_WAIT_S = 60.0  # TCP_TIMEWAIT_LEN (include/net/tcp.h)


def capacity_defaults(args: argparse.Namespace, problems: list[str]) -> str:
    """Fill ``args.range`` and ``args.time_wait`` from ``args.os`` (or Linux's defaults);
    return the lines saying what it took: the preset's settings, or without --os which of
    Linux's defaults, and the timer wheel's lateness where it applies."""
    from sim.presets import PRESETS
    from sim.resolve import preset_port_range

    preset_range, preset_tw, note = LINUX_RANGE, f"{LINUX_TIME_WAIT_S:g}s", ""
    if args.os is not None:
        preset = PRESETS.get(args.os)
        if preset is None:
            import difflib

            close = difflib.get_close_matches(args.os, list(PRESETS), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; one of: {', '.join(PRESETS)}"
            problems.append(f"--os: unknown preset {args.os!r}{hint}")
        else:
            lo, hi = preset_port_range(preset)
            preset_range, preset_tw = f"{lo}-{hi}", f"{preset.time_wait_s:g}s"
            shared = preset.scope != "4tuple"
            note = (
                f"preset {preset.name}: range {lo}-{hi}, TIME_WAIT {preset.time_wait_s:g} s, "
                + (
                    f"scope {preset.scope}: every destination shares these ports, so --rate "
                    "is the host's total of new connections"
                    if shared
                    else "one pool per destination 4-tuple: --rate is per destination"
                )
            )
    else:  # say which of Linux's defaults are taken, and what --rate means then
        taken = [
            f"range {LINUX_RANGE}" if args.range is None else "",
            f"TIME_WAIT {LINUX_TIME_WAIT_S:g} s" if args.time_wait is None else "",
        ]
        if any(taken):
            note = (
                f"no --os: Linux's {' and '.join(t for t in taken if t)}; one pool per "
                "destination 4-tuple: --rate is per destination"
            )
    if args.range is None:
        args.range = preset_range
    if args.time_wait is None:
        args.time_wait = preset_tw
        wheel = _wheel_note(args)
        note = "\n".join(n for n in (note, wheel) if n)
    return note


def time_wait_held(os: str = "linux", time_wait_s: float | None = None) -> float:
    """Seconds a port stays in TIME_WAIT, on average, on a simulated host of preset ``os``
    (``time_wait_s``, else the preset's): what a capacity estimate should hold it for.  A
    Linux host (4.8 and later) ends TIME_WAIT on the timer wheel's grid, up to one bucket
    late (kernel/time/timer.c ``calc_index`` rounds up; ``sim/timerwheel.py``), so half a
    bucket more than its length: 61.024 s for Linux's 60 s at HZ 250."""
    host = _resolved(os)
    tw = host.time_wait if time_wait_s is None else time_wait_s
    return _held(host, tw)[0]


def _held(host: ResolvedHost, tw: float) -> tuple[float, float]:
    """(mean hold, the wheel's bucket) for a TIME_WAIT of ``tw`` s on ``host``: half a
    bucket late on average, as ``Channel.tw_hold``; no wheel, or no TIME_WAIT (a host keeps
    none of length 0), holds ``tw`` exactly (bucket 0)."""
    from sim.timerwheel import WheelTimer

    if not host.timer_wheel or tw <= 0:
        return tw, 0.0
    bucket = WheelTimer(tw, host.hz, 0.0).granularity_s
    return tw + bucket / 2, bucket


def _resolved(os: str) -> ResolvedHost:
    from sim.config.types import HostSpec
    from sim.resolve import resolve_host

    return resolve_host(HostSpec(name="capacity", os=os))


def _wheel_note(args: argparse.Namespace) -> str:
    """Sets ``args.time_wait`` to what a simulated host holds (``time_wait_held``); returns
    the line saying so ("" for systems without the wheel)."""
    from sim.presets import PRESETS
    from sim.units import parse_duration

    if args.os is not None and args.os not in PRESETS:
        return ""  # (reported as an unknown preset)
    host = _resolved(args.os or "linux")
    tw = parse_duration(args.time_wait)
    mean, bucket = _held(host, tw)
    if not bucket:
        return ""
    args.time_wait = f"{mean:g}s"
    return (
        f"TIME_WAIT {tw:g} s ends on the timer wheel's {bucket:g} s grid (HZ {host.hz}): "
        f"{mean:g} s on average, used here (--time-wait sets it)"
    )
