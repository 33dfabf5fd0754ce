"""A kernel replay's data as `portsim run` files, and its comparison with the model.

The kernel side is measured: attempts and their errno names from the driver, levels from
/proc/net/tcp samples (``SAMPLE_HZ`` a second), TIME_WAIT lifetimes from the client's
receipt of the peer's FIN to the sample in which the 4-tuple was gone (half a sampling
period of uncertainty, 25 ms at 20 Hz).  Counts of attempts are booked at their plan time,
so they line up with the model's bins.
"""

from __future__ import annotations

import itertools
import math
import statistics
from typing import Any

import numpy as np
import pandas as pd

from sim.recorder import EVENT_COLUMNS as MODEL_EVENTS
from sim.recorder import SERIES_COLUMNS as MODEL_SERIES
from sim.replay.runner import HostRun

# the kernel side has the model's basic columns (through "failures") and its event log
SERIES_COLUMNS = list(MODEL_SERIES[: MODEL_SERIES.index("failures") + 1])
EVENT_COLUMNS = list(MODEL_EVENTS)
EARLY_TW_S = 59.0  # a TIME_WAIT gone before this was killed early (an RST, tcp_rfc1337 = 0)


def quantiles(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "min": None, "median": None, "max": None}
    return {
        "n": len(values),
        "min": min(values),
        "median": statistics.median(values),
        "max": max(values),
    }


def time_wait_lifetimes(runs: list[HostRun]) -> tuple[list[float], int]:
    """Completed TIME_WAIT lifetimes (s) and how many ended early."""
    lives = [end - start for r in runs for _p, _d, start, end in r.data["time_waits"] if end]
    early = sum(1 for x in lives if x < EARLY_TW_S)
    return [x for x in lives if x >= EARLY_TW_S], early


def series(
    runs: list[HostRun], duration: float, bin_s: float, sizes: dict[str, int]
) -> pd.DataFrame:
    """Per-bin rows like the model's series.csv (levels at the bin's end)."""
    nbins = max(1, math.ceil(duration / bin_s - 1e-9))
    edges = np.arange(nbins + 1) * bin_s
    edges[-1] = duration
    cols = {c: np.zeros(nbins) for c in SERIES_COLUMNS[2:]}
    for r in runs:
        size = sizes[r.plan.name]
        att = [(t, isinstance(res, int)) for t, _real, _ch, res in r.data["attempts"]]
        times = np.array([t for t, _ in att])
        ok = np.array([s for _, s in att], dtype=bool)
        if len(times):
            idx = np.minimum((times // bin_s).astype(int), nbins - 1)
            cols["attempts"] += np.bincount(idx, minlength=nbins)
            cols["successes"] += np.bincount(idx[ok], minlength=nbins)
            cols["failures"] += np.bincount(idx[~ok], minlength=nbins)
        samples = r.data["samples"]
        st = np.array([s[0] for s in samples])
        for b in range(nbins):
            j = int(np.searchsorted(st, edges[b + 1], "right")) - 1
            if j < 0:
                continue
            _t, est, tw, ports, per_dest = samples[j]
            cols["established"][b] += est
            cols["time_wait"][b] += tw
            worst = max(per_dest.values(), default=0)
            cols["pressure_worst"][b] = max(cols["pressure_worst"][b], worst / size)
            cols["pressure_global"][b] = max(cols["pressure_global"][b], ports / size)
    frame = pd.DataFrame({"t_start_s": edges[:-1], "t_end_s": edges[1:], **cols})
    for c in ("established", "time_wait", "bound", "attempts", "successes", "failures"):
        frame[c] = frame[c].astype(int)
    return frame


def events(runs: list[HostRun]) -> pd.DataFrame:
    """events.csv rows with the kernel's real ports (connect, fail, close, time_wait_end)."""
    rows: list[tuple] = []
    for r in runs:
        chans = r.plan.channels
        for t, _real, k, res in r.data["attempts"]:
            ch = chans[k]
            port = res if isinstance(res, int) else None
            if port is not None and ch["socket"] in ("bind", "bind_reuseaddr"):
                rows.append(
                    (
                        t,
                        r.plan.name,
                        ch["src"],
                        "bind",
                        ch["protocol"],
                        port,
                        ch["destination"],
                        None,
                        "",
                    )
                )
            event = "connect" if port is not None else "fail"
            err = "" if port is not None else res
            rows.append(
                (
                    t,
                    r.plan.name,
                    ch["src"],
                    event,
                    ch["protocol"],
                    port,
                    ch["destination"],
                    None,
                    err,
                )
            )
        for t, port, k in r.data["closes"]:
            ch = chans[k]
            rows.append(
                (
                    t,
                    r.plan.name,
                    ch["src"],
                    "close",
                    ch["protocol"],
                    port,
                    ch["destination"],
                    None,
                    "",
                )
            )
        for port, dest, _start, end in r.data["time_waits"]:
            if end:
                rows.append((end, r.plan.name, "", "time_wait_end", "tcp", port, dest, None, ""))
    frame = pd.DataFrame(rows, columns=EVENT_COLUMNS)
    frame["local_port"] = frame["local_port"].astype("Int64")
    return frame.sort_values("time_s", kind="stable").reset_index(drop=True)


def summary(
    runs: list[HostRun],
    frame: pd.DataFrame,
    base: dict[str, Any],
    window: tuple[float, float] | None,
    kernel: dict[str, Any],
) -> dict[str, Any]:
    """summary.json for the kernel side: the keys of `portsim run` that a replay measures."""
    attempts = [a for r in runs for a in r.data["attempts"]]
    failed = [a for a in attempts if not isinstance(a[3], int)]
    errors: dict[str, int] = {}
    for a in failed:
        errors[a[3]] = errors.get(a[3], 0) + 1
    lives, early = time_wait_lifetimes(runs)
    lag = [real - plan for plan, real, _k, _r in attempts]
    samples = [s for r in runs for s in r.data["samples"]]
    steady = None
    if window is not None:
        inside = [a for a in attempts if window[0] <= a[0] < window[1]]
        n_fail = sum(1 for a in inside if not isinstance(a[3], int))
        steady = {
            "window_s": list(window),
            "attempted": len(inside),
            "failed": n_fail,
            "blocking": n_fail / len(inside) if inside else None,
        }
    peak_label: Any = frame["pressure_worst"].idxmax() if len(frame) else 0  # a RangeIndex
    peak_row = int(peak_label)
    return {
        **base,
        "connections": {
            "attempted": len(attempts),
            "succeeded": len(attempts) - len(failed),
            "failed": len(failed),
            "failed_by_error": errors,
        },
        "pressure": {
            "peak": float(frame["pressure_worst"].max()) if len(frame) else 0.0,
            "mean": float(frame["pressure_worst"].mean()) if len(frame) else 0.0,
            "peak_time_s": float(frame["t_start_s"].iloc[peak_row]) if len(frame) else 0.0,
        },
        "probes": None,  # the kernel does not say how many ports it examined
        "steady_state": steady,
        "first_failure_s": min((a[0] for a in failed), default=None),
        "time_wait": {  # levels at the bins' ends, summed over hosts, like the model's
            "mean": float(frame["time_wait"].mean()) if len(frame) else 0.0,
            "peak": int(frame["time_wait"].max()) if len(frame) else 0,
            "lifetime_s": quantiles(lives),
            "ended_early": early,
        },
        "established": {"mean": float(frame["established"].mean()) if len(frame) else 0.0},
        "kernel": {
            **kernel,
            "arrival_lag_s": {
                "median": statistics.median(lag) if lag else None,
                "p99": float(np.quantile(lag, 0.99)) if lag else None,
                "max": max(lag) if lag else None,
            },
            "samples_per_s": (  # per client namespace
                len(samples) / len(runs) / base["duration_s"]
                if runs and base["duration_s"]
                else 0.0
            ),
        },
    }


def measured_hz(runs: list[HostRun]) -> int | None:
    """HZ from the spacing of TIME_WAIT batches: a 60 s timer's bucket is 512 jiffies wide
    at HZ 100/250/300 and 4096 at 1000 (sim/timerwheel.py); nearest candidate wins."""
    from sim.timerwheel import HZ_VALUES, WheelTimer

    ends = sorted(end for r in runs for _p, _d, _s, end in r.data["time_waits"] if end)
    batches = [b for a, b in itertools.pairwise(ends) if b - a > 0.3]
    if len(batches) < 3:
        return None
    gap = statistics.median(b - a for a, b in itertools.pairwise(batches))
    grains = {hz: WheelTimer(60.0, hz, 0.0).granularity_s for hz in HZ_VALUES}
    return min(grains, key=lambda hz: abs(grains[hz] - gap))
