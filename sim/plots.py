"""Figures of pool pressure.  Every function returns a matplotlib ``Figure``.

Figures are built without pyplot, so they render the same from the CLI (no display) and
in notebooks, and never leak global state between runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from sim.result import Result

COLORS = {"established": "#4C72B0", "time_wait": "#DD8452", "other": "#8C8C8C", "fail": "#C44E52"}


def _time_axis(series) -> tuple[np.ndarray, str, float]:
    t_end = float(series["t_end_s"].iloc[-1]) if len(series) else 0.0
    scale, unit = (60.0, "min") if t_end > 1200 else (1.0, "s")
    if t_end > 7200 * 4:
        scale, unit = 3600.0, "h"
    mid = (series["t_start_s"].to_numpy() + series["t_end_s"].to_numpy()) / 2 / scale
    return mid, unit, scale


def pressure_figure(result: Result) -> Figure:
    """Ports held for the worst destination over time, failures, and connect() cost."""
    s = result.series
    summ = result.summary
    pressure = summ.get("pressure", {})
    dest = pressure.get("worst_destination") or "(none)"
    size = pressure.get("range_ports") or (summ.get("hosts") or [{}])[0].get("range_ports", 0)
    t, unit, _ = _time_axis(s)
    fig = Figure(figsize=(10, 8.5), layout="constrained")
    ax1, ax2, ax3 = fig.subplots(3, 1, sharex=True, height_ratios=[3, 1.2, 1.2])

    est = s["worst_established"].to_numpy()
    tw = s["worst_time_wait"].to_numpy()
    other = np.clip(s["worst_unusable"].to_numpy() - est - tw, 0, None)
    ax1.stackplot(
        t,
        est,
        tw,
        other,
        labels=["established", "TIME_WAIT", "bound / reserved / other"],
        colors=[COLORS["established"], COLORS["time_wait"], COLORS["other"]],
        alpha=0.85,
        step="mid",
    )
    if "worst_peak" in s:  # a burst shorter than a bin shows in its peak, not its end
        ax1.plot(t, s["worst_peak"], color="black", lw=0.7, alpha=0.7, label="peak within bin")
    if size:
        ax1.axhline(size, color="black", lw=1.2, ls="--", label=f"range: {size:,} ports")
    failed = s["failures"].to_numpy() > 0
    if failed.any():
        ax1.plot(
            t[failed],
            np.full(failed.sum(), size or 1),
            "|",
            color=COLORS["fail"],
            markersize=12,
            label="bins with failed connects",
        )
    ax1.set_ylabel("ports unusable for\na new connect()")
    ax1.set_title(f"{summ.get('scenario', '')}: pool pressure to {dest}")
    ax1.legend(loc="lower right", fontsize=8)
    ax1.set_ylim(0, (size or max(1, s["worst_unusable"].max())) * 1.08)

    width = (s["t_end_s"] - s["t_start_s"]).to_numpy()
    width = np.where(width > 0, width, 1.0)
    ax2.plot(
        t, s["attempts"].to_numpy() / width, color=COLORS["established"], lw=1, label="attempts"
    )
    ax2.plot(t, s["failures"].to_numpy() / width, color=COLORS["fail"], lw=1.2, label="failures")
    _workload_lines(ax2, s, t, width)
    ax2.set_ylabel("per second")
    ax2.legend(loc="upper left", fontsize=8)

    ax3.plot(t, s["probes_mean"], color="#55A868", lw=1, label="mean")
    ax3.plot(t, s["probes_max"], color="#8172B3", lw=0.8, alpha=0.8, label="max")
    ax3.set_ylabel("ports probed\nper connect()")
    ax3.set_yscale("symlog", linthresh=10)
    ax3.legend(loc="upper left", fontsize=8)
    ax3.set_xlabel(f"simulated time ({unit})")
    return fig


def _workload_lines(ax, s, t: np.ndarray, width: np.ndarray) -> None:
    """The retry storm (retried connects per second: the attempts a refusal brought back)
    and keep-alive requests (served per second, failed, and a queue on its own axis)."""
    if "retries" in s and s["retries"].any():
        ax.set_yscale("symlog", linthresh=10)  # a storm's spike would flatten the rest
        ax.plot(
            t,
            s["retries"].to_numpy() / width,
            color=COLORS["time_wait"],
            lw=1,
            ls="--",
            label="retries (in attempts)",
        )
    if "gave_up" in s and s["gave_up"].any():
        ax.plot(t, s["gave_up"].to_numpy() / width, color="black", lw=1, ls=":", label="gave up")
    if "requests" in s and s["requests"].any():
        ax.plot(t, s["requests"].to_numpy() / width, color="#55A868", lw=1, label="requests")
        if s["requests_failed"].any():
            ax.plot(
                t,
                s["requests_failed"].to_numpy() / width,
                color="#8172B3",
                lw=1,
                label="requests failed",
            )
        if s["requests_waiting"].any():
            queue = ax.twinx()
            queue.plot(
                t,
                s["requests_waiting"],
                color=COLORS["other"],
                lw=1,
                ls="-.",
                label="requests waiting",
            )
            queue.set_ylabel("waiting\n(at bin end)")
            queue.legend(loc="upper right", fontsize=8)


def overlay_figure(results: list[Result], names: list[str]) -> Figure:
    """Several saved runs on one figure: worst-destination pressure and cumulative failures."""
    fig = Figure(figsize=(10, 6.5), layout="constrained")
    ax1, ax2 = fig.subplots(2, 1, sharex=True)
    unit = "s"
    for result, name in zip(results, names, strict=True):
        s = result.series
        t, unit, _ = _time_axis(s)
        ax1.plot(t, 100 * s["pressure_worst"], lw=1.2, label=name)
        ax2.plot(t, s["failures"].cumsum(), lw=1.2, label=name)
    ax1.set_ylabel("worst-destination\npressure (%)")
    ax1.set_ylim(0, 105)
    ax1.set_title("pool pressure compared")
    ax1.legend(fontsize=8)
    ax2.set_ylabel("failed connects\n(cumulative)")
    ax2.set_xlabel(f"simulated time ({unit})")
    return fig


def port_timeline_figure(lives, port: int, title: str = "") -> Figure:
    """Each life of one port as a bar: established, then TIME_WAIT; one row per holder."""
    fig = Figure(
        figsize=(10, 1.6 + 0.35 * max(1, lives["destination"].nunique())), layout="constrained"
    )
    ax = fig.subplots()
    holders = sorted(lives["destination"].unique()) if len(lives) else []
    rows = {d: i for i, d in enumerate(holders)}
    end = max([*lives["released_s"].dropna().tolist(), *lives["taken_s"].tolist(), 1.0])
    for life in lives.itertuples(index=False):
        y = rows[life.destination]
        held = life.established_s if life.established_s is not None else end - life.taken_s
        ax.barh(y, held, left=life.taken_s, color=COLORS["established"], height=0.6)
        if life.time_wait_s:
            ax.barh(y, life.time_wait_s, left=life.closed_s, color=COLORS["time_wait"], height=0.6)
    ax.set_yticks(range(len(holders)), holders)
    ax.set_xlabel("simulated time (s)")
    ax.set_title(title or f"the lives of port {port}: established (blue), TIME_WAIT (orange)")
    return fig


def sweep_figure(table, keys: list[str], metric: str, title: str = "") -> Figure:
    """A metric's mean against the first grid key, one line per value of the other keys,
    with its 95 % confidence band; Erlang B's prediction dashed beside refusals."""
    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.subplots()
    x_key, others = keys[0], keys[1:]
    groups = table.groupby(others, sort=False) if others else [((), table)]
    numeric = all(isinstance(v, int | float) for v in table[x_key])
    for i, (values, group) in enumerate(groups):
        values = values if isinstance(values, tuple) else (values,)
        label = ", ".join(f"{k}={v}" for k, v in zip(others, values, strict=True)) or metric
        x = group[x_key].to_numpy() if numeric else np.arange(len(group))
        color = f"C{i % 10}"
        ax.plot(x, group[f"{metric}.mean"], "o-", color=color, lw=1.4, label=label)
        ax.fill_between(
            x, group[f"{metric}.ci_low"], group[f"{metric}.ci_high"], color=color, alpha=0.2
        )
        if metric == "steady_state.blocking" and group["analytic.blocking.mean"].notna().any():
            ax.plot(
                x,
                group["analytic.blocking.mean"],
                "--",
                color=color,
                lw=1,
                label=f"Erlang B ({label})" if others else "Erlang B",
            )
        if not numeric:
            ax.set_xticks(x, [str(v) for v in group[x_key]])
    ax.set_xlabel(x_key)
    ax.set_ylabel(f"{metric}\n(mean, 95 % CI)")
    ax.set_title(title or metric)
    ax.legend(fontsize=8)
    return fig


def save_figure(fig: Figure, path: str | Path) -> None:
    """Render to PNG bytes, then write whole (``sim.result.write_bytes``)."""
    from sim.result import write_bytes

    write_bytes(Path(path), render_png(fig))


def render_png(fig: Figure) -> bytes:
    """The figure as PNG bytes, every text drawn literally (:func:`literal_text`)."""
    import io

    literal_text(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, metadata={"Software": None})
    return buffer.getvalue()


def literal_text(fig: Figure) -> Figure:
    """Render every text of ``fig`` as written: names from scenarios and result folders
    may hold ``$``, which matplotlib would parse as mathtext (and fail on ``$x^$``)."""
    from matplotlib.text import Text

    for text in fig.findobj(Text):
        text.set_parse_math(False)
    return fig


def occupancy_raster_figure(result: Result) -> Figure:
    """Port x time: which parts of the worst pool are held, as the run goes (needs a run of
    this version; saved as raster.npz)."""
    raster = result.raster
    fig = Figure(figsize=(10, 5), layout="constrained")
    ax = fig.subplots()
    if not raster:
        ax.set_title("no occupancy raster in this result")
        return fig
    times = np.asarray(raster["times_s"])
    occupancy = np.asarray(raster["occupancy"]) / 255.0
    t, unit, _ = _time_axis_values(times)
    image = ax.imshow(
        occupancy,
        aspect="auto",
        origin="lower",
        cmap="magma",
        vmin=0,
        vmax=1,
        extent=(0, t[-1] if len(t) else 1, raster["lo"], raster["hi"]),
        interpolation="nearest",
    )
    fig.colorbar(image, ax=ax, label="fraction of the ports held")
    ax.set_xlabel(f"simulated time ({unit})")
    ax.set_ylabel("local port")
    ax.set_title(
        f"{result.summary.get('scenario', '')}: occupancy of the pool to {raster['label']}"
    )
    return fig


def _time_axis_values(times: np.ndarray) -> tuple[np.ndarray, str, float]:
    end = float(times[-1]) if len(times) else 0.0
    scale, unit = (60.0, "min") if end > 1200 else (1.0, "s")
    if end > 7200 * 4:
        scale, unit = 3600.0, "h"
    return times / scale, unit, scale


def _cdf(rows: list[list[float]]) -> tuple[np.ndarray, np.ndarray]:
    if not rows:
        return np.array([]), np.array([])
    values = np.array([r[0] for r in rows], dtype=float)
    counts = np.array([r[1] for r in rows], dtype=float)
    return values, np.cumsum(counts) / counts.sum()


def reuse_cdf_figure(results: list[Result], names: list[str]) -> Figure:
    """CDFs of the reuse distance (connections) and interval (seconds) per run."""
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    for result, name in zip(results, names, strict=True):
        for ax, key in ((ax1, "reuse_distance"), (ax2, "reuse_interval_s")):
            x, y = _cdf(result.histograms.get(key, []))
            if len(x):  # markers: a sequential allocator's distribution is a single point
                ax.step(x, y, where="post", label=name, marker=".")
    ax1.set_xscale("log")
    ax1.set_xlabel("connections to the destination between two uses of a port")
    ax2.set_xscale("log")
    ax2.set_xlabel("seconds between two uses of a port")
    for ax in (ax1, ax2):
        ax.set_ylabel("fraction of reuses")
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=8)
    fig.suptitle("port reuse")
    return fig


def probes_cdf_figure(result: Result) -> Figure:
    """CDF of ports probed per connect(), split by the pass that ended the scan."""
    fig = Figure(figsize=(8, 4), layout="constrained")
    ax = fig.subplots()
    for key, label in (
        ("probes_pass1", "found in pass 1 (same parity as lo)"),
        ("probes_pass2", "pass 2 (the other parity) or refused"),
    ):
        x, y = _cdf(result.histograms.get(key, []))
        if len(x):
            ax.step(x, y, where="post", label=label)
    ax.set_xscale("symlog", linthresh=10)
    ax.set_xlabel("ports probed by one connect()")
    ax.set_ylabel("fraction of the calls ending in that pass")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8)
    ax.set_title(f"{result.summary.get('scenario', '')}: the cost of connect()")
    return fig


def refusal_vs_rate_figure(
    table,
    ports: int,
    holding_s: float,
    label: str = "simulated (mean, 95 % interval)",
) -> Figure:
    """Simulated refusal probability against the rate (mean and 95 % interval per rate,
    from ``sim.studies.rate_sweep``), with the Erlang-B curve for ``ports`` and the mean
    holding time."""
    from sim.analytic import erlang_b

    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.subplots()
    rates = np.linspace(max(1e-9, table["rate"].min() * 0.8), table["rate"].max() * 1.1, 80)
    ax.plot(
        rates,
        [erlang_b(ports, r * holding_s) for r in rates],
        color="black",
        lw=1.2,
        label=f"Erlang B, N = {ports:,}, holding {holding_s:g} s",
    )
    ax.errorbar(
        table["rate"],
        table["blocking_mean"],
        yerr=table["blocking_ci95"],
        fmt="o",
        color=COLORS["fail"],
        capsize=3,
        label=label,
    )
    ax.set_xlabel("new connections per second")
    ax.set_ylabel("refused connect() (steady state)")
    ax.legend(fontsize=8)
    ax.set_title("refusal against rate: simulation and the loss formula")
    return fig
