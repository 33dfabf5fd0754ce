"""Plots draw user text literally, but keep matplotlib's own mathtext (log-axis ticks)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

import sim
from sim.plots import pressure_figure, render_png
from sim.result import Result
from tests.test_answers import keepalive_run
from tests.test_gateways import scenario as gateway_scenario

ROOT = Path(__file__).resolve().parent.parent


def _legend_labels(fig) -> list[str]:
    """Every legend entry's text, over the figure's panels."""
    return [
        text.get_text()
        for ax in fig.axes
        if (legend := ax.get_legend()) is not None
        for text in legend.get_texts()
    ]


def test_user_dollars_are_literal_and_log_ticks_stay_mathtext() -> None:
    sc = sim.load_scenario(ROOT / "scenarios" / "linux-one-backend-500rps.toml", ["duration=70s"])
    fig = pressure_figure(sim.run(sc))
    title = fig.axes[0].set_title("cost $x^$ in $")  # would fail to parse as mathtext
    render_png(fig)  # raises on "$x^$" if it were parsed
    assert title.get_parse_math() is False
    probes = fig.axes[-1]  # the probes panel is a log axis: its ticks read 10^1, 10^2, ...
    assert probes.get_yscale() in ("log", "symlog")
    ticks = [t for t in probes.get_yticklabels() if "\\mathdefault" in t.get_text()]
    assert ticks, "the log axis has mathtext tick labels"
    assert all(t.get_parse_math() for t in ticks)  # drawn as 10^4, not as their source


def test_a_gateway_runs_panels_say_where_failures_are_and_what_the_axes_are() -> None:
    """Behind a gateway the pods' failure marks may be the gateway's drops, connects are
    drawn as begun (not as settled), and the gateway panel's legend names each line's axis; the
    legend sits in a band above the curves (the held line reaches 100 % of a 130 % axis)."""
    # 10 translated ports, one never-closing connect a second: from the 11th on the SYNs
    # are dropped and each fails with ETIMEDOUT 131 s after its first SYN
    sc = sim.parse_scenario(
        {
            "name": "gw",
            "duration": 150,
            "gateways": [
                {
                    "name": "gw",
                    "kind": "linux-masquerade",
                    "addresses": ["198.51.100.1"],
                    "port_range": "1024-1033",
                }
            ],
            "hosts": [{"name": "h", "address": "10.0.0.2", "gateway": "gw"}],
            "destinations": [{"name": "d", "address": "203.0.113.10:443"}],
            "load": [
                {
                    "destination": "d",
                    "arrival": {"kind": "constant", "interval": "1s"},
                    "lifetime": {"kind": "fixed", "value": "inf"},
                }
            ],
        }
    )
    result = sim.run(sc)
    assert result.summary["connections"]["failed_by_error"]["ETIMEDOUT"] > 0
    fig = pressure_figure(result)
    labels = _legend_labels(fig)
    assert "held (%, left)" in labels
    assert "translations refused (/s, right)" in labels
    assert "bins with failed connects (here or at the gateway)" in labels
    # attempts as begun, not as settled (a connect retransmitting is settled seconds later)
    assert "connects begun" in labels
    # a socket retransmitting its SYN holds its port: drawn with the established ones
    assert "established or SYN_SENT" in labels and "established" not in labels
    assert fig.axes[0].get_ylim()[1] == 130


def test_a_fleets_connects_panel_says_it_is_the_whole_fleet() -> None:
    """The ports panel shows a fleet's worst member, the connects panel every member's
    connects together: its axis says so (a plain host's does not)."""
    doc = {
        "name": "fleet",
        "duration": 20,
        "hosts": [{"name": "pods", "count": 3, "address": "10.244.1.0/24"}],
        "destinations": [{"name": "d", "address": "203.0.113.10:443"}],
        "load": [
            {
                "host": "pods",
                "destination": "d",
                "arrival": {"kind": "poisson", "rate": 30},
                "lifetime": {"kind": "fixed", "value": 1},
            }
        ],
    }
    fig = pressure_figure(sim.run(sim.parse_scenario(doc)))
    labels = [ax.get_ylabel() for ax in fig.axes]
    assert "connects per second\n(whole fleet)" in labels
    plain = {**doc, "hosts": [{"name": "pods", "address": "10.244.1.2"}]}
    labels = [ax.get_ylabel() for ax in pressure_figure(sim.run(sim.parse_scenario(plain))).axes]
    assert "connects\nper second" in labels and not any("fleet" in x for x in labels)


def test_a_gateway_result_from_before_connects_waiting_says_attempts_are_settled(
    tmp_path: Path,
) -> None:
    """A result folder written before series.csv had connects_waiting: the connects panel
    plots attempts as settled, and says so."""
    folder = tmp_path / "old"
    sim.run(gateway_scenario(hosts=1, connects=12, duration=20)).save(folder, plots=False)
    series = folder / "series.csv"
    frame = pd.read_csv(series)
    assert "connects_waiting" in frame.columns
    frame.drop(columns=["connects_waiting"]).to_csv(series, index=False)
    labels = _legend_labels(pressure_figure(Result.load(folder)))
    assert "attempts (counted when settled)" in labels and "connects begun" not in labels


def _probes_title(result: sim.Result) -> str | None:
    legend = pressure_figure(result).axes[-1].get_legend()
    title = legend.get_title().get_text() if legend is not None else ""
    return title or None


def test_the_full_scan_note_only_where_a_linux_connect_was_refused() -> None:
    """The probes panel notes that a refused Linux connect() scans the whole range: for a
    Linux host that was refused, not for one whose refusals were a gateway's drops."""
    flagship = sim.load_scenario(
        ROOT / "scenarios" / "linux-one-backend-500rps.toml", ["duration=70s"]
    )
    refused = sim.run(flagship)
    assert refused.summary["probes"]["refused"] > 0
    assert _probes_title(refused) == "a refused Linux connect()\nscans the whole range"
    node = sim.load_scenario(ROOT / "scenarios" / "k8s-node-dns-flood.toml", ["duration=40s"])
    dropped = sim.run(node)  # datagrams dropped at the gateway: no connect() refused
    assert dropped.summary["probes"]["refused"] == 0
    assert dropped.summary["gateways"]["node"]["mappings"]["dropped"] > 0
    assert _probes_title(dropped) is None


def test_the_probes_panel_leaves_bins_without_a_connect_blank() -> None:
    """A keep-alive pool opens its connections at the start and then reuses them: most
    bins have no connect() call.  Each call probes at least one port, so those bins are
    gaps in the probes lines (drawn as 0 they would read as calls that cost nothing), and
    a bin with calls between two gaps is a dot; a run with calls in every bin is lines."""
    result = keepalive_run(50, "20ms", 8, duration="30s")
    idle = result.series["probes_max"].to_numpy() == 0
    assert idle.sum() >= 10 and not idle.all()  # the pool's connects are early
    probes = _probes_axis(pressure_figure(result))
    for line in probes.get_lines()[:2]:  # mean, max
        y = line.get_ydata()
        assert np.isnan(y[idle]).all() and (y[~idle] >= 1).all()
        assert line.get_marker() == "."
    flagship = sim.load_scenario(
        ROOT / "scenarios" / "linux-one-backend-500rps.toml", ["duration=20s", "bin=1s"]
    )  # 500 calls in every bin
    busy = _probes_axis(pressure_figure(sim.run(flagship))).get_lines()[0]
    assert not np.isnan(busy.get_ydata()).any() and busy.get_marker() in ("None", None, "")


def _probes_axis(fig):
    (axis,) = [ax for ax in fig.axes if ax.get_ylabel().startswith("ports probed per")]
    return axis
