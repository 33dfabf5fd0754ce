"""``portsim capacity --os PRESET``: the range and TIME_WAIT come from the preset, so the
user need not know them; explicit ``--range`` / ``--time-wait`` still win."""

from __future__ import annotations

import argparse

LINUX_RANGE = "32768-60999"  # ip_local_port_range's default since Linux 4.2 (commit 07f4c90062f8)
LINUX_TIME_WAIT = "60s"  # TCP_TIMEWAIT_LEN


def capacity_defaults(args: argparse.Namespace, problems: list[str]) -> str:
    """Fill ``args.range`` and ``args.time_wait`` from ``args.os`` (or Linux's defaults);
    return a line saying what the preset implies ("" without --os)."""
    from sim.presets import PRESETS
    from sim.resolve import preset_port_range

    preset_range, preset_tw, note = LINUX_RANGE, LINUX_TIME_WAIT, ""
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
    if args.range is None:
        args.range = preset_range
    if args.time_wait is None:
        args.time_wait = preset_tw
        wheel = _wheel_note(args)
        note = "\n".join(n for n in (note, wheel) if n)
    return note


def _wheel_note(args: argparse.Namespace) -> str:
    """A Linux host (4.8 and later) ends TIME_WAIT on the timer wheel's grid, up to one
    bucket late (kernel/time/timer.c ``calc_index`` rounds up; ``sim/timerwheel.py``): on
    average half a bucket more, which the simulated hosts hold too.  Sets ``args.time_wait``
    to that mean; returns the line saying so ("" for other systems)."""
    from sim.config.types import HostSpec
    from sim.presets import PRESETS
    from sim.resolve import resolve_host
    from sim.timerwheel import WheelTimer
    from sim.units import parse_duration

    if args.os is not None and args.os not in PRESETS:
        return ""  # (reported as an unknown preset)
    host = resolve_host(HostSpec(name="capacity", os=args.os or "linux"))
    if not host.timer_wheel:
        return ""
    tw = parse_duration(args.time_wait)
    bucket = WheelTimer(tw, host.hz, 0.0).granularity_s
    mean = tw + bucket / 2  # as Channel.tw_hold: half a bucket late on average
    args.time_wait = f"{mean:g}s"
    return (
        f"TIME_WAIT {tw:g} s ends on the timer wheel's {bucket:g} s grid (HZ {host.hz}): "
        f"{mean:g} s on average, used here (--time-wait sets it)"
    )
