"""Figures of pool pressure.  Every function returns a matplotlib ``Figure``.

Figures are built without pyplot, so they render the same from the CLI (no display) and
in notebooks, and never leak global state between runs.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from sim.verdict import system_name, udp_port_space

if TYPE_CHECKING:
    from sim.result import Result
    from sim.summary.types import HostEntry, Requests, Summary

COLORS = {"established": "#4C72B0", "time_wait": "#DD8452", "other": "#8C8C8C", "fail": "#C44E52"}


def _wrapped(title: str) -> str:
    """A panel title in lines that fit the figure's width (10 in at 10 pt: a scenario's
    name and a fleet's description together run past it)."""
    return textwrap.fill(title, 110)


def _time_axis(series) -> tuple[np.ndarray, str, float]:
    t_end = float(series["t_end_s"].iloc[-1]) if len(series) else 0.0
    scale, unit = (60.0, "min") if t_end > 1200 else (1.0, "s")
    if t_end > 7200 * 4:
        scale, unit = 3600.0, "h"
    mid = (series["t_start_s"].to_numpy() + series["t_end_s"].to_numpy()) / 2 / scale
    return mid, unit, scale


def _who(host: HostEntry | None, dest: str) -> str:
    """Host, its system and the destination: what a panel is about."""
    address = udp_port_space(dest)
    if address is not None:  # a host's UDP port space, not a destination
        dest = f"the UDP ports of {address}, all destinations"
    if not host:
        return dest
    fleet = host.get("fleet")
    if fleet:  # a fleet's panel shows its worst member pool in each bin
        return (
            f"fleet {host.get('name')} ({system_name(host)}, {fleet['members']:,} members; "
            f"worst member) to {dest}"
        )
    return f"host {host.get('name')} ({system_name(host)}) to {dest}"


def _pool_panel(
    ax,
    t,
    est,
    tw,
    unusable,
    peak,
    size: int,
    failed: np.ndarray,
    legend: bool,
    failed_label: str = "bins with failed connects",
    connecting: bool = False,
):
    """Ports of one pool by state, stacked; the range as a line; bins with failures marked.
    The y range covers the stack and the peak, so nothing crosses the frame.  Behind a
    gateway (``connecting``) a socket whose SYN was dropped holds its port while it
    retransmits: it is counted with the established ones, and the label says so."""
    est = est.astype(float)
    tw = tw.astype(float)
    sockets = est + tw
    shared = sockets > unusable  # ports held by sockets to several destinations (Windows)
    if shared.any():  # draw ports, not sockets: each state in proportion to its sockets
        scale = np.where(shared, unusable / np.where(sockets > 0, sockets, 1), 1.0)
        est, tw = est * scale, tw * scale
        ax.text(
            0.01,
            0.5,
            "some ports hold sockets to several destinations: states in proportion",
            transform=ax.transAxes,
            fontsize=7,
            va="top",
        )
    other = np.clip(unusable - est - tw, 0, None)
    ax.stackplot(
        t,
        est,
        tw,
        other,
        labels=[
            "established or SYN_SENT" if connecting else "established",
            "TIME_WAIT",
            "bound / reserved / other",
        ],
        colors=[COLORS["established"], COLORS["time_wait"], COLORS["other"]],
        alpha=0.85,
        step="mid",
    )
    if peak is not None:  # a burst shorter than a bin shows in its peak, not its end
        ax.plot(t, peak, color="black", lw=0.7, alpha=0.7, label="peak within bin")
    if size:
        ax.axhline(size, color="black", lw=1.2, ls="--", label=f"range: {size:,} ports")
    if failed.any():
        ax.plot(
            t[failed],
            np.full(failed.sum(), size or 1),
            "|",
            color=COLORS["fail"],
            markersize=12,
            label=failed_label,
        )
    top = max(
        size or 0,
        float(np.max(est + tw + other, initial=0)),
        float(np.max(peak, initial=0)) if peak is not None else 0.0,
        1.0,
    )
    ax.set_ylim(0, top * 1.08)
    if legend:
        ax.legend(loc="lower right", fontsize=8)


def pressure_figure(result: Result) -> Figure:
    """Ports held for the worst destination over time, failures, and connect() cost; with
    keep-alive requests, what the requests experienced first; with several hosts, one row
    per host (each host's own counts: hosts are never summed)."""
    summ = result.summary
    hosts = summ.get("hosts") or []
    if len(hosts) > 1 and len(result.host_series):
        return _hosts_figure(result)
    s = result.series
    pressure = summ.get("pressure", {})
    dest = pressure.get("worst_destination") or "(none)"
    size = pressure.get("range_ports") or (hosts[0].get("range_ports", 0) if hosts else 0)
    t, unit, _ = _time_axis(s)
    width = (s["t_end_s"] - s["t_start_s"]).to_numpy()
    width = np.where(width > 0, width, 1.0)
    keepalive = "requests" in s and bool(s["requests"].any())
    gateway = "gateway_pressure_worst" in s
    name, who = summ.get("scenario", ""), _who(hosts[0] if hosts else None, dest)
    ratios = [2] * keepalive + [2] * gateway + [3 - keepalive, 1.2, 1.2]
    fig = Figure(figsize=(10, 6.1 + 2.4 * len(ratios[:-3])), layout="constrained")
    axes = list(fig.subplots(len(ratios), 1, sharex=True, height_ratios=ratios))
    if keepalive:
        ax0 = axes.pop(0)
        _requests_panel(ax0, s, t, width, summ.get("requests"))
        ax0.set_title(_wrapped(f"{name}: {who}: requests and ports"), fontsize=10)
    if gateway:
        _gateway_panel(axes.pop(0), s, t, width, summ, title=not keepalive)
    ax1, ax2, ax3 = axes
    if not keepalive:
        ax1.set_title(
            _wrapped(f"{name}: {who}: pool pressure" if not gateway else f"host {who}"),
            fontsize=10,
        )

    est = s["worst_established"].to_numpy()
    tw = s["worst_time_wait"].to_numpy()
    peak = s["worst_peak"].to_numpy() if "worst_peak" in s else None
    failed = s["failures"].to_numpy() > 0
    unusable = s["worst_unusable"].to_numpy()
    if keepalive:  # a pool of a few dozen connections: zoom in, say the range in words
        _pool_panel(ax1, t, est, tw, unusable, peak, 0, failed, legend=True)
        ax1.set_ylabel(f"ports held\n(of {size:,} in the range)")
    else:
        # behind a gateway a connect may fail there (a dropped SYN), with ports to spare here
        marks = "bins with failed connects" + (" (here or at the gateway)" if gateway else "")
        _pool_panel(ax1, t, est, tw, unusable, peak, size, failed, True, marks, gateway)
        ax1.set_ylabel("ports unusable for\na new connect()")

    begun, label = _begun(s, gateway)
    rate = begun / width
    ax2.plot(t, rate, color=COLORS["established"], lw=1, label=label)
    ax2.plot(t, s["failures"].to_numpy() / width, color=COLORS["fail"], lw=1.2, label="failures")
    _retry_lines(ax2, s, t, width)
    fleet = bool(hosts and hosts[0].get("fleet"))  # the panel above is its worst member
    ax2.set_ylabel("connects per second\n(whole fleet)" if fleet else "connects\nper second")
    if ax2.get_yscale() == "linear":  # a band above the curves for the legend
        ax2.set_ylim(0, 1.35 * max(float(np.max(rate)), 1.0))
        ax2.legend(loc="upper center", fontsize=8, ncols=4)
    else:
        ax2.legend(loc="upper left", fontsize=8)
    linux = bool(hosts) and bool(hosts[0].get("generation"))  # (Linux hosts have one)
    scanned = linux and bool((summ.get("probes") or {}).get("refused"))
    _probes_panel(ax3, s, t, refused=scanned)
    ax3.set_xlabel(f"simulated time ({unit})")
    return fig


def _begun(s, gateway: bool) -> tuple[np.ndarray, str]:
    """Connects begun in each bin, and their legend.  Behind a gateway ``attempts`` counts
    a connect when it is settled, seconds later if its SYN was dropped, so while the
    gateway is full the attempts would dip as if the load stopped; a connect still
    retransmitting at a bin's end is in ``connects_waiting``, so attempts plus its change
    is the connects begun.  A result written before that column: attempts as settled,
    and said so."""
    attempts = s["attempts"].to_numpy()
    if not gateway:
        return attempts, "attempts"
    if "connects_waiting" not in s:
        return attempts, "attempts (counted when settled)"
    waiting = s["connects_waiting"].to_numpy()
    return attempts + np.diff(waiting, prepend=0), "connects begun"


def _gateway_panel(ax, s, t: np.ndarray, width: np.ndarray, summ: Summary, title: bool) -> None:
    """The gateways (sim/nat): the worst destination's translated tuples held (peak in each
    bin), and on the right axis the SYNs dropped and the connects that got through late."""
    gateways: dict = dict(summ.get("gateways") or {})
    ax.fill_between(
        t, 100 * s["gateway_pressure_worst"].to_numpy(), step="mid", color="#C44E52", alpha=0.3
    )
    ax.plot(
        t,
        100 * s["gateway_pressure_worst"].to_numpy(),
        color="#C44E52",
        lw=1,
        label="held (%, left)",
    )
    # headroom above 100 % (and above the rates on the right) for the legend's band
    ax.set_ylim(0, 130)
    ax.set_yticks(range(0, 101, 20))
    ax.set_ylabel("gateway tuples held\n(% of the worst\ndestination's)")
    drops = s["gateway_drops"].to_numpy() / width
    delayed = s["connects_delayed"].to_numpy() / width
    right = ax.twinx()
    right.plot(
        t,
        drops,
        color="black",
        lw=1,
        label="translations refused (/s, right)",
    )
    right.plot(t, delayed, color="#8172B3", lw=1, ls="--", label="connects delayed (/s, right)")
    right.set_ylabel("per second")
    top = max(float(drops.max(initial=0.0)), float(delayed.max(initial=0.0)))
    right.set_ylim(0, 1.3 * top if top > 0 else 1.0)
    handles = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    # (a SYN retransmission asks again: refusals outnumber the connects they delay)
    right.legend(handles=handles, loc="upper center", fontsize=8, ncols=3)
    names = ", ".join(f"{n} ({g['kind']})" for n, g in gateways.items())
    worst = max(gateways.values(), key=lambda g: g["pressure"]["peak"], default=None)
    where = f" towards {worst['pressure']['worst_destination']}" if worst else ""
    text = f"gateway {names}: translated tuples{where}"
    if title:
        text = f"{summ.get('scenario', '')}: {text}"
    ax.set_title(_wrapped(text), fontsize=10, loc="left")


def _probes_panel(ax, s, t: np.ndarray, refused: bool = True) -> None:
    """Ports probed per connect() call; the note on a refused call's full scan only when a
    Linux connect() was refused (not for refusals at a gateway, nor on other systems)."""
    # a call probes at least one port: a bin whose max is 0 had none, and is left blank
    # (drawn as 0 it would read as connect() calls that cost nothing)
    called = s["probes_max"].to_numpy() > 0
    dots = {} if called.all() else {"marker": ".", "ms": 3}  # a lone bin with calls still shows
    mean, most = (np.where(called, s[c], np.nan) for c in ("probes_mean", "probes_max"))
    ax.plot(t, mean, color="#55A868", lw=1, label="mean", **dots)
    ax.plot(t, most, color="#8172B3", lw=0.8, alpha=0.8, label="max", **dots)
    ax.set_ylabel("ports probed per\nconnect() call,\nrefused ones included", fontsize=9)
    ax.set_yscale("symlog", linthresh=10)
    # a fixed floor and room above: with one probe per call the autoscaled symlog axis
    # would squeeze its tick labels (0, 1.05, -0.05) on top of each other
    top = float(max(s["probes_max"].max(), s["probes_mean"].max(), 1.0))
    ax.set_ylim(0, max(20.0, top * 2))
    ax.legend(
        loc="best",
        fontsize=8,
        title="a refused Linux connect()\nscans the whole range" if refused else None,
        title_fontsize=7,
    )


def _requests_panel(ax, s, t: np.ndarray, width: np.ndarray, requests: Requests | None) -> None:
    """Keep-alive requests: offered against served per second, failed, the pools' limit
    K / L, and the queue of waiting requests on its own axis."""
    n = max(1, len(t) // 100)  # a moving mean over ~1 % of the run: pools serve in steps
    over = f" (mean over {n * float(np.median(width)):g} s)" if n > 1 else ""
    offered = _smooth(s["requests"].to_numpy() / width, n)
    ax.plot(t, offered, color=COLORS["other"], lw=1.2, label="offered" + over)
    if "requests_served" in s:
        served = _smooth(s["requests_served"].to_numpy() / width, n)
        ax.plot(t, served, color="#55A868", lw=2.2, zorder=3, label="served")
    if s["requests_failed"].any():
        failed = _smooth(s["requests_failed"].to_numpy() / width, n)
        ax.plot(t, failed, color=COLORS["fail"], lw=1, label="failed")
    limit = requests.get("pool_limit_per_s") if requests else None
    top = max(float(np.max(offered, initial=0.0)), 1.0)
    if "requests_served" in s:
        top = max(top, float(np.max(served, initial=0.0)))
    label = f"pool limit K/L: {limit:,.0f}/s" if limit else ""
    if limit and limit > 3 * top:  # far above the load: named, not drawn (it would squash it)
        ax.plot([], [], color="black", lw=1, ls=":", label=f"{label}, off the scale")
    elif limit:
        ax.axhline(limit, color="black", lw=1, ls=":", zorder=4, label=label)
        top = max(top, limit)
    ax.set_ylabel("requests\nper second")
    ax.set_ylim(0, 1.35 * top)  # a band above the curves for the legend
    ax.legend(loc="upper left", fontsize=8)
    queue = ax.twinx()
    queue.plot(
        t, s["requests_waiting"], color=COLORS["time_wait"], lw=1.4, ls="-.", label="waiting"
    )
    queue.set_ylabel("requests waiting\n(at bin end)")
    queue.set_ylim(bottom=0, top=max(1.0, float(s["requests_waiting"].max()) * 1.1))
    queue.legend(loc="upper right", fontsize=8)


def _smooth(values: np.ndarray, n: int) -> np.ndarray:
    """A centred moving mean over ``n`` bins (shorter at the ends)."""
    if n <= 1 or len(values) == 0:
        return values
    kernel = np.ones(n)
    return np.convolve(values, kernel, "same") / np.convolve(np.ones(len(values)), kernel, "same")


def _hosts_figure(result: Result) -> Figure:
    """One row per host: its worst pool's ports by state, and its own connects per second."""
    summ = result.summary
    hosts = summ["hosts"]
    hs = result.host_series
    gateway = "gateway_pressure_worst" in result.series
    rows = len(hosts) + gateway
    fig = Figure(figsize=(12, 1.2 + 2.4 * rows), layout="constrained")
    axes = fig.subplots(rows, 2, sharex=True, squeeze=False, width_ratios=[2, 1.3])
    unit = "s"
    if gateway:
        s = result.series
        t, unit, _ = _time_axis(s)
        width = (s["t_end_s"] - s["t_start_s"]).to_numpy()
        _gateway_panel(axes[0][0], s, t, np.where(width > 0, width, 1.0), summ, title=False)
        axes[0][1].axis("off")
        axes = axes[1:]
    for row, h in enumerate(hosts):
        mine = hs[hs["host"] == h["name"]]
        t, unit, _ = _time_axis(mine)
        width = (mine["t_end_s"] - mine["t_start_s"]).to_numpy()
        width = np.where(width > 0, width, 1.0)
        ax1, ax2 = axes[row]
        failed = mine["failures"].to_numpy() > 0
        _pool_panel(
            ax1,
            t,
            mine["worst_established"].to_numpy(),
            mine["worst_time_wait"].to_numpy(),
            mine["worst_unusable"].to_numpy(),
            mine["worst_peak"].to_numpy(),
            h["range_ports"],
            failed,
            legend=False,  # one legend for every row, below them (``_rows_legend``)
            connecting=h.get("gateway") is not None,
        )
        dest = (h.get("pressure") or {}).get("worst_destination") or "(none)"
        ax1.set_title(_who(h, dest), fontsize=10, loc="left")
        ax1.set_ylabel("ports unusable")
        ax2.plot(
            t,
            mine["attempts"].to_numpy() / width,
            color=COLORS["established"],
            lw=1,
            label="attempts" + (" (counted when settled)" if h.get("gateway") else ""),
        )
        ax2.plot(
            t, mine["failures"].to_numpy() / width, color=COLORS["fail"], lw=1.2, label="failures"
        )
        ax2.set_ylabel("connects/s")
        ax2.set_ylim(bottom=0)
        conn = h.get("connections") or {}
        route = h.get("gateway")  # (this host's gateway, if any)
        waiting = route["still_connecting_at_end"] if route else 0
        ax2.set_title(
            f"{conn.get('failed', 0):,} of {conn.get('attempted', 0):,} connects failed"
            + (f",\n{waiting:,} still retransmitting their SYN at the end" if waiting else ""),
            fontsize=10,
            loc="left",
        )
    for ax in axes[-1]:
        ax.set_xlabel(f"simulated time ({unit})")
    fig.suptitle(f"{summ.get('scenario', '')}: each host's worst pool and its own connects")
    _rows_legend(fig, [ax for pair in axes for ax in pair])
    return fig


def _rows_legend(fig: Figure, axes: list) -> None:
    """The hosts' rows share one legend, under them: inside a panel it hid a host's curve
    wherever it sat (a plateau at half the range, a full pool), and the failure ticks or
    the range line of a later row were missing from the first row's."""
    entries: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label.startswith("range: "):  # each host's own size: on its own axis
                label = "range (each host's)"
            entries.setdefault(label, handle)
    if entries:
        fig.legend(
            list(entries.values()),
            list(entries),
            loc="outside lower center",
            ncols=min(4, len(entries)),
            fontsize=8,
        )


def _retry_lines(ax, s, t: np.ndarray, width: np.ndarray) -> None:
    """The retry storm: retried connects per second (the attempts a refusal brought back)
    and the requests that gave up."""
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


STYLES = ("-", "--", "-.", ":", (0, (5, 1, 1, 1, 1, 1)), (0, (8, 2)))


def _every(n: int, i: int, runs: int, marks: int = 12) -> tuple[int, int]:
    """Markers every n / marks points, each run's shifted, so equal curves show every
    run's markers side by side instead of one on top of the other."""
    step = max(1, n // marks)
    return (i * step // max(1, runs)) % step, step


def overlay_figure(results: list[Result], names: list[str]) -> Figure:
    """Several saved runs on one figure: worst-destination pressure and cumulative failures,
    each run its own colour, line style and marker (equal curves stay visible); with
    keep-alive runs, their queue of waiting requests too (a pool that queues fails nothing
    but can leave requests waiting for minutes)."""

    def keeps_alive(r: Result) -> bool:
        return "requests" in r.series and bool(r.series["requests"].any())

    keepalive = any(keeps_alive(r) for r in results)
    fig = Figure(figsize=(10, 8.5 if keepalive else 6.5), layout="constrained")
    axes = fig.subplots(3 if keepalive else 2, 1, sharex=True)
    ax1, ax2 = axes[0], axes[1]
    unit = "s"
    for i, (result, name) in enumerate(zip(results, names, strict=True)):
        s = result.series
        t, unit, _ = _time_axis(s)
        style = {
            "color": f"C{i % 10}",
            "ls": STYLES[i % len(STYLES)],
            "lw": 1.6,
            "marker": "osD^vP*X"[i % 8],
            "markevery": _every(len(t), i, len(results)),
            "mfc": "none",
            "ms": 5,
            "label": name,
        }
        ax1.plot(t, 100 * s["pressure_worst"], **style)
        ax2.plot(t, s["failures"].cumsum(), **style)
        if keeps_alive(result):  # (a run without keep-alive has no requests to wait)
            waiting = s["requests_waiting"] if "requests_waiting" in s else 0 * s["failures"]
            axes[2].plot(t, waiting, **style)
    ax1.set_ylabel("worst-destination\npressure (%)")
    ax1.set_ylim(0, 105)
    ax1.set_title("pool pressure compared")
    ax1.legend(fontsize=8)
    ax2.set_ylabel("failed connects\n(cumulative)")
    for ax in axes[1:]:  # counts: from 0 (all zero would centre the axis on 0)
        ax.set_ylim(0, max(1.0, ax.get_ylim()[1]))
    if keepalive:
        axes[2].set_ylabel("keep-alive requests\nwaiting (at bin end)")
        axes[2].legend(fontsize=8, title="runs with keep-alive", title_fontsize=8)
    axes[-1].set_xlabel(f"simulated time ({unit})")
    return fig


def port_timeline_figure(lives, port: int, title: str = "") -> Figure:
    """Each life of one port as a bar: established, then TIME_WAIT; one row per holder.
    Every life is outlined and its start and end marked, so back-to-back lives of one port
    (a release and a take in the same instant) show as separate lives, not one long bar."""
    fig = Figure(
        figsize=(10, 1.8 + 0.35 * max(1, lives["destination"].nunique())), layout="constrained"
    )
    ax = fig.subplots()
    holders = sorted(lives["destination"].unique()) if len(lives) else []
    rows = {d: i for i, d in enumerate(holders)}
    end = max([*lives["released_s"].dropna().tolist(), *lives["taken_s"].tolist(), 1.0])
    edge: dict[str, Any] = {"edgecolor": "black", "linewidth": 0.6, "height": 0.6}
    for n, life in enumerate(lives.itertuples(index=False)):
        y = rows[life.destination]
        held = life.established_s if life.established_s is not None else end - life.taken_s
        ax.barh(y, held, left=life.taken_s, color=COLORS["established"], **edge)
        if life.time_wait_s:
            ax.barh(y, life.time_wait_s, left=life.closed_s, color=COLORS["time_wait"], **edge)
        stop = life.released_s if life.released_s == life.released_s else None  # NaN: open
        first = n == 0
        ax.plot(
            [life.taken_s], [y], ">", color="black", ms=6, label="life starts" if first else None
        )
        if stop is not None:
            ax.plot(
                [stop], [y], "|", color="black", ms=14, mew=2, label="life ends" if first else None
            )
        if len(lives) <= 40:  # number the lives where there is room to read them
            ax.annotate(
                f"{n + 1}",
                (life.taken_s, y + 0.32),
                xytext=(3, 0),
                textcoords="offset points",
                fontsize=7,
                va="bottom",
            )
    ax.set_yticks(range(len(holders)), holders)
    ax.set_ylim(-0.7, max(0.7, len(holders) - 0.3) + 0.2)
    right = max([end, *(lives["closed_s"].fillna(end) + lives["time_wait_s"].fillna(0))])
    ax.set_xlim(-0.02 * right, right * 1.02)
    ax.set_xlabel("simulated time (s)")
    if len(lives):
        ax.legend(loc="upper right", fontsize=8, ncols=2)
    ax.set_title(
        title
        or f"the {len(lives):,} {'life' if len(lives) == 1 else 'lives'} of port {port}: "
        "established (blue), TIME_WAIT (orange)"
    )
    return fig


def sweep_figure(table, keys: list[str], metric: str, title: str = "") -> Figure:
    """A metric's mean against the first grid key, one line per value of the other keys,
    with its 95 % confidence band; Erlang B's prediction dashed on top of refusals (visible
    where they agree); for ``first_failure_s``, grid points whose runs never failed are
    marked "no failure" instead of being dropped."""
    from sim.sweeps.metrics import axis_label, unit_of

    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.subplots()
    x_key, others = keys[0], keys[1:]
    groups = table.groupby(others, sort=False) if others else [((), table)]
    factor, unit = unit_of(metric)  # fractions in %, as the run's own plots show them
    numeric = all(isinstance(v, int | float) for v in table[x_key])
    markers = "osD^vP*X"
    no_failure_key = "first_failure_s.no_failure"
    ringed = False  # an overloaded point drawn (its legend entry once)
    for i, (values, group) in enumerate(groups):
        values = values if isinstance(values, tuple) else (values,)
        label = ", ".join(f"{k}={v}" for k, v in zip(others, values, strict=True)) or metric
        x = group[x_key].to_numpy() if numeric else np.arange(len(group))
        color = f"C{i % 10}"
        mean = factor * group[f"{metric}.mean"]
        ax.plot(
            x,
            mean,
            marker=markers[i % len(markers)],
            color=color,
            lw=1.4,
            label=label,
        )
        low, high = (factor * group[f"{metric}.{k}"] for k in ("ci_low", "ci_high"))
        ax.fill_between(x, low, high, color=color, alpha=0.2)
        if metric == "steady_state.blocking" and group["analytic.blocking.mean"].notna().any():
            ax.plot(
                x,
                factor * group["analytic.blocking.mean"],
                ls=(0, (4, 3)),
                color="black",
                lw=1.3,
                zorder=4,
                label=f"Erlang B ({label})" if others else "Erlang B",
            )
        if metric == "first_failure_s" and no_failure_key in group:
            _mark_no_failure(ax, x, group, no_failure_key, color, i)
        if metric.startswith("requests."):
            ringed = _mark_overloaded(ax, x, mean, group, ringed)
        if not numeric:
            ax.set_xticks(x, [str(v) for v in group[x_key]])
    ax.set_xlabel(axis_label(x_key))
    what = " over the runs that failed" if metric == "first_failure_s" else ""
    ax.set_ylabel(f"{metric}{f' ({unit})' if unit else ''}\n(mean{what}, 95 % CI)")
    ax.set_title(title or metric)
    ax.legend(fontsize=8)
    return fig


def _mark_overloaded(ax, x: np.ndarray, y, group, ringed: bool) -> bool:
    """Grid points whose keep-alive pools were overloaded (1 % or more of the requests still
    queued at the end): ringed, since their per-request figures can look best there (a
    saturated pool serves the most requests per connection).  The first ring drawn gets
    the legend entry; returns whether any is drawn by now."""
    queued, asked = "requests.waiting_at_end.mean", "requests.attempted.mean"
    if queued not in group or asked not in group:
        return ringed
    over = ((group[asked] > 0) & (group[queued] >= 0.01 * group[asked])).to_numpy()
    if over.any():
        label = "pool overloaded: 1 % or more of the requests still queued at the end"
        ax.plot(
            x[over],
            np.asarray(y)[over],
            "o",
            ms=14,
            mfc="none",
            mec="#C44E52",
            mew=1.5,
            zorder=5,
            label=None if ringed else label,
        )
        return True
    return ringed


def _mark_no_failure(ax, x: np.ndarray, group, key: str, color: str, i: int) -> None:
    """Grid points with runs that never failed: a hollow marker at the top, "no failure"
    (with how many of the runs), so a line of one dot is not mistaken for the answer."""
    runs = (group["runs"] - group["failed_runs"]).to_numpy()
    clean = group[key].to_numpy()
    trans = ax.get_xaxis_transform()  # x in data, y in axes fraction
    for xi, k, n in zip(x, clean, runs, strict=True):
        if k:
            y = 0.96 - 0.05 * i
            ax.plot([xi], [y], "o", mfc="none", color=color, transform=trans, clip_on=False)
            text = "no failure" if k == n else f"no failure in {k} of {n}"
            ax.annotate(
                text,
                (xi, y),
                xycoords=trans,
                xytext=(5, -3),
                textcoords="offset points",
                fontsize=7,
                color=color,
            )


def save_sweep_figures(
    table, keys: list[str], metrics: list[str], title: str, out_dir: Path
) -> list[Path]:
    """A sweep's figures: one PNG per metric (``sweep-<metric>.png``) from its summary
    table (``sim.sweeps.summarise_by_grid_point``), against the first grid key, with 95 % bands."""
    paths = []
    for metric in metrics:
        path = out_dir / f"sweep-{metric.replace('.', '-')}.png"
        save_figure(sweep_figure(table, keys, metric, title), path)
        paths.append(path)
    return paths


def save_figure(fig: Figure, path: str | Path) -> None:
    """Render to PNG bytes, then write whole (``sim.atomic.write_bytes``)."""
    from sim.atomic import write_bytes

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
        said = text.get_text()
        # a "$" marks user text; the log axes' own tick labels (``$\mathdefault{10^{4}}$``,
        # made by matplotlib's formatters) must stay mathtext or they print as source
        if "$" in said and "\\mathdefault" not in said:
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


def _cdf(rows: Sequence[Sequence[float]]) -> tuple[np.ndarray, np.ndarray]:
    if not rows:
        return np.array([]), np.array([])
    values = np.array([r[0] for r in rows], dtype=float)
    counts = np.array([r[1] for r in rows], dtype=float)
    return values, np.cumsum(counts) / counts.sum()


def reuse_cdf_figure(results: list[Result], names: list[str]) -> Figure:
    """CDFs of the reuse distance (connections) and interval (seconds) per run."""
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    for i, (result, name) in enumerate(zip(results, names, strict=True)):
        for ax, key in ((ax1, "reuse_distance"), (ax2, "reuse_interval_s")):
            x, y = _cdf(result.histograms.get(key, []))
            if not len(x):
                continue
            # hollow markers growing with the run's index: a sequential allocator's
            # distribution is a single point, and several of them often coincide
            single = len(x) == 1
            ax.step(
                x,
                y,
                where="post",
                label=name,
                marker="osD^vP*Xh"[i % 9],
                ms=5 + 3 * i if single else 4,
                mfc="none",
                mew=1.4,
                ls=STYLES[i % len(STYLES)],
                lw=1.4,
                color=f"C{i % 10}",
                markevery=_every(len(x), i, len(results)),
                zorder=3 + len(results) - i,  # the smaller markers on top
            )
    ax1.set_xscale("log")
    ax1.set_xlabel("connections to the destination between two uses of a port")
    ax2.set_xscale("log")
    ax2.set_xlabel("seconds between two uses of a port")
    for ax in (ax1, ax2):
        ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels collide on log axes
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
