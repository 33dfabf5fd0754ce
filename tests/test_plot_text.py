"""Plots draw user text literally, but keep matplotlib's own mathtext (log-axis ticks)."""

from __future__ import annotations

from pathlib import Path

import sim
from sim.plots import pressure_figure, render_png

ROOT = Path(__file__).resolve().parent.parent


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
