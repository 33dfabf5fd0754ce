"""Model beside kernel: the terminal table and comparison.png."""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sim.replay.report import EARLY_TW_S, quantiles


def model_time_wait_lifetimes(events: pd.DataFrame) -> list[float]:
    """TIME_WAIT lifetimes from a model event log (time_wait -> time_wait_end per port)."""
    start: dict[tuple, float] = {}
    lives: list[float] = []
    tw = events[events["event"].isin(["time_wait", "time_wait_end"])]
    for t, host, src, ev, port, dest in zip(
        tw["time_s"],
        tw["host"],
        tw["local_address"],
        tw["event"],
        tw["local_port"],
        tw["destination"],
        strict=True,
    ):
        key = (host, src, int(port), dest)
        if ev == "time_wait":
            start[key] = t
        elif key in start:
            lives.append(t - start.pop(key))
    return lives


def figures(side: dict[str, Any]) -> dict[str, Any]:
    """The compared figures of one side (a kernel summary or :func:`model_side`)."""
    c = side["connections"]
    steady = side.get("steady_state") or {}
    return {
        "first_failure_s": side.get("first_failure_s"),
        "refused_pct": 100 * c["failed"] / c["attempted"] if c["attempted"] else 0.0,
        "steady_refused_pct": (
            100 * steady["blocking"] if steady.get("blocking") is not None else None
        ),
        "time_wait_mean": side["time_wait"]["mean"],
        "time_wait_peak": side["time_wait"]["peak"],
        "established_mean": side["established"]["mean"],
        "tw_min": side["time_wait"]["lifetime_s"]["min"],
        "tw_median": side["time_wait"]["lifetime_s"]["median"],
        "tw_max": side["time_wait"]["lifetime_s"]["max"],
    }


def model_side(result, window: tuple[float, float] | None) -> dict[str, Any]:
    """The model run's figures in the kernel summary's shape."""
    s = result.summary
    ser = result.series
    lives = [x for x in model_time_wait_lifetimes(result.events) if x >= EARLY_TW_S]
    steady = None
    if window is not None:
        ev = result.events
        inside = ev[(ev["time_s"] >= window[0]) & (ev["time_s"] < window[1])]
        att = int(inside["event"].isin(["connect", "fail"]).sum())
        fail = int((inside["event"] == "fail").sum())
        steady = {"blocking": fail / att if att else None}
    return {
        "connections": s["connections"],
        "first_failure_s": s["first_failure_s"],
        "steady_state": steady,
        "time_wait": {
            "mean": float(ser["time_wait"].mean()),
            "peak": int(ser["time_wait"].max()),
            "lifetime_s": quantiles(lives),
        },
        "established": {"mean": float(ser["established"].mean())},
    }


ROWS = [
    ("first refusal (s)", "first_failure_s", "{:.3f}"),
    ("refused, whole run (%)", "refused_pct", "{:.2f}"),
    ("refused, steady state (%)", "steady_refused_pct", "{:.2f}"),
    ("TIME_WAIT mean", "time_wait_mean", "{:.1f}"),
    ("TIME_WAIT peak", "time_wait_peak", "{:.0f}"),
    ("established mean", "established_mean", "{:.1f}"),
    ("TIME_WAIT lifetime min (s)", "tw_min", "{:.3f}"),
    ("TIME_WAIT lifetime median (s)", "tw_median", "{:.3f}"),
    ("TIME_WAIT lifetime max (s)", "tw_max", "{:.3f}"),
]


def table(model: dict[str, Any], kernel: dict[str, Any]) -> list[str]:
    """Aligned rows: figure, model, kernel, model - kernel."""
    m, k = figures(model), figures(kernel)
    lines = [f"{'':32}{'model':>12}{'kernel':>12}{'difference':>12}"]
    for label, key, fmt in ROWS:
        a, b = m[key], k[key]
        fa = fmt.format(a) if a is not None else "-"
        fb = fmt.format(b) if b is not None else "-"
        diff = fmt.format(a - b) if a is not None and b is not None else "-"
        lines.append(f"{label:32}{fa:>12}{fb:>12}{diff:>12}")
    return lines


def comparison_figure(
    model_series: pd.DataFrame,
    kernel_series: pd.DataFrame,
    title: str,
    lifetimes: tuple[list[float], list[float]] = ([], []),
) -> Figure:
    """TIME_WAIT and open connections over time, cumulative refusals, and the TIME_WAIT
    lifetimes (model, kernel): model vs kernel."""
    fig = plt.figure(figsize=(10, 10))
    grid = fig.add_gridspec(4, 1, height_ratios=[1, 1, 1, 0.9])
    axes = [fig.add_subplot(grid[0])]
    axes += [fig.add_subplot(grid[i], sharex=axes[0]) for i in (1, 2)]
    t = kernel_series["t_end_s"]  # levels at each bin's end, as the model's
    ax = axes[0]
    ax.plot(model_series["t_end_s"], model_series["time_wait"], label="model", lw=1.2)
    ax.plot(t, kernel_series["time_wait"], label="kernel", lw=0.8, alpha=0.8)
    ax.set_ylabel("TIME_WAIT sockets")
    ax.legend(loc="lower right")
    ax = axes[1]
    ax.plot(model_series["t_end_s"], model_series["established"], label="model", lw=1.2)
    ax.plot(t, kernel_series["established"], label="kernel", lw=0.8, alpha=0.8)
    ax.set_ylabel("open connections")
    ax = axes[2]
    width = float(model_series["t_end_s"].iloc[0] - model_series["t_start_s"].iloc[0])
    ax.plot(
        model_series["t_end_s"],
        model_series["failures"].cumsum(),
        label="model",
        lw=1.2,
    )
    ax.plot(kernel_series["t_end_s"], kernel_series["failures"].cumsum(), label="kernel", lw=1.2)
    ax.set_ylabel("refused connects (cumulative)")
    ax.set_xlabel(f"time (s), bins of {width:g} s")
    model_lives, kernel_lives = lifetimes
    if model_lives or kernel_lives:
        ax = fig.add_subplot(grid[3])
        every = [*model_lives, *kernel_lives]
        bins = np.linspace(min(every), max(every), 60).tolist()
        ax.hist(model_lives, bins=bins, alpha=0.6, label="model")
        ax.hist(kernel_lives, bins=bins, alpha=0.6, label="kernel")
        ax.set_xlabel("TIME_WAIT lifetime (s): close to end")
        ax.set_ylabel("sockets")
        ax.legend(loc="upper right")
    fig.suptitle(title)
    fig.tight_layout()
    return fig
