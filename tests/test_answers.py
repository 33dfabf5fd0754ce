"""Answers that never mislead (issue 11, items 4-10 and 16): what the verdict, the summary
and the plots say about queued keep-alive requests, several hosts, refusal waves, the cost
of refused connects, every host's capacity, sweeps and port lives.

Each test failed on main before these changes (the keys, lines or plot elements it checks
did not exist, or said the opposite)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sim
from sim.analytic import load_for_blocking
from sim.cli import main
from sim.plots import (
    overlay_figure,
    port_timeline_figure,
    pressure_figure,
    sweep_figure,
)
from sim.verdict import key_figures, verdict

ROOT = Path(__file__).resolve().parent.parent


def keepalive_run(rate: float, duration_ms: str, pool: int, duration: str = "60s") -> sim.Result:
    sc = sim.parse_scenario(
        {
            "name": "ka",
            "seed": 3,
            "duration": duration,
            "destinations": [{"name": "api", "address": "10.0.0.10:443"}],
            "load": [
                {
                    "destination": "api",
                    "arrival": {"kind": "poisson", "rate": rate},
                    "lifetime": {"kind": "fixed", "value": duration_ms},
                    "keepalive": {"max_connections": pool},
                }
            ],
        }
    )
    return sim.run(sc)


# -- item 4: a keep-alive pool that is too small -------------------------------------------
def test_a_too_small_pool_leads_the_verdict_with_the_requests_queue() -> None:
    """600 requests/s of 200 ms through 32 connections: the pool serves at most
    32 / 0.2 s = 160 requests/s, so about 440/s pile up.  Every connect() succeeds, and
    the answer must say the requests were not served, not "no exhaustion"."""
    result = keepalive_run(600, "200ms", 32)
    r = result.summary["requests"]
    assert r["pool_limit_per_s"] == pytest.approx(160.0)
    assert r["pool_connections"] == 32
    assert r["served_per_s"] == pytest.approx(160.0, rel=0.02)  # fixed durations: exact
    # Poisson arrivals over a 30 s window: sd sqrt(600 x 30) / 30 = 4.5/s; 4 sd
    assert r["offered_per_s"] == pytest.approx(600.0, abs=18)
    assert r["queue_growing"] is True
    assert r["queue_growth_per_s"] == pytest.approx(440.0, abs=20)
    steady = result.summary["steady_state"]
    assert steady["stationary"] is False
    assert "grows without bound" in steady["not_stationary_because"]
    first = verdict(result.summary).splitlines()[0]
    assert first.startswith("Requests pile up: 160 served per second of ")
    assert "serve at most 160/s" in first and "grows without bound" in first
    assert any("not reported, the queue" in line for line in key_figures(result.summary))


def test_a_large_enough_pool_is_steady_and_says_so() -> None:
    """500 requests/s of 50 ms on 64 connections: 25 in flight on average, limit 1,280/s."""
    result = keepalive_run(500, "50ms", 64)
    r = result.summary["requests"]
    assert r["pool_limit_per_s"] == pytest.approx(1280.0)
    assert r["queue_growing"] is False
    assert r["served_per_s"] == pytest.approx(r["offered_per_s"], rel=0.02)
    assert result.summary["steady_state"]["stationary"] is True
    assert verdict(result.summary).startswith("Requests served: ")


def test_keepalive_pressure_plot_shows_offered_served_and_the_queue() -> None:
    result = keepalive_run(600, "200ms", 32, duration="20s")
    assert "requests_served" in result.series
    fig = pressure_figure(result)
    top = fig.axes[0]
    labels = [line.get_label() for line in top.get_lines()]
    assert any(label.startswith("offered") for label in labels)
    assert "served" in labels
    assert any(label.startswith("pool limit K/L: 160/s") for label in labels)
    queue = [ax for ax in fig.axes if ax.get_ylabel().startswith("requests waiting")]
    assert queue and max(queue[0].get_lines()[0].get_ydata()) > 1000
    assert top.get_ylim()[1] >= 600  # the limit (160/s) is drawn, and the offered 600/s


def test_a_pool_limit_far_above_the_load_is_named_not_drawn() -> None:
    """500 requests/s of 50 ms on 64 connections: limit 1,280/s, 2.6x the load, drawn;
    on 1,024 connections 20,480/s, 41x the load: drawing it would squash the load into
    the bottom 3 % of the axis, so the legend names it and the axis fits the load."""
    near = pressure_figure(keepalive_run(500, "50ms", 64, duration="20s")).axes[0]
    assert near.get_ylim()[1] >= 1280
    assert "pool limit K/L: 1,280/s" in [line.get_label() for line in near.get_lines()]
    far = pressure_figure(keepalive_run(500, "50ms", 1024, duration="20s")).axes[0]
    assert "pool limit K/L: 20,480/s, off the scale" in [x.get_label() for x in far.get_lines()]
    assert far.get_ylim()[1] < 3 * 500 * 1.35  # the load's scale, not the limit's


# -- item 5: several hosts --------------------------------------------------------------
@pytest.fixture(scope="module")
def four_os(tmp_path_factory) -> tuple[sim.Result, Path]:
    sc = sim.load_scenario(ROOT / "scenarios" / "compare-os-one-backend.toml", ["duration=100s"])
    result = sim.run(sc)
    out = tmp_path_factory.mktemp("four") / "run"
    result.save(out)
    return result, out


def test_several_hosts_get_one_headline_each_and_are_never_summed(four_os) -> None:
    result, _ = four_os
    s = result.summary
    lines = verdict(s).splitlines()
    assert len(lines) == 4
    for line, host in zip(lines, s["hosts"], strict=True):
        mine = [ld for ld in s["loads"] if ld["host"] == host["name"]]
        assert host["connections"]["attempted"] == sum(ld["attempted"] for ld in mine)
        assert host["connections"]["failed"] == sum(ld["failed"] for ld in mine)
        assert f" on host {host['name']} (" in line
    total = s["connections"]["attempted"]
    text = "\n".join([verdict(s), *key_figures(s)])
    assert f"{total:,}" not in text  # the sum over hosts is never printed
    assert not any(line.startswith("steady state (from") for line in key_figures(s))
    # probes are kept for the run, not per host: the line says it mixes the four systems
    probes = [line for line in key_figures(s) if line.startswith("ports probed")]
    assert len(probes) == 1 and "got a port, all 4 hosts together: mean " in probes[0]


def test_several_hosts_plot_one_row_each_named_and_inside_the_frame(four_os) -> None:
    result, out = four_os
    assert (out / "hosts.csv").exists()
    again = sim.Result.load(out)
    for fig in (pressure_figure(result), pressure_figure(again)):
        pools = fig.axes[0::2]
        assert len(pools) == 4
        for ax, host in zip(pools, result.summary["hosts"], strict=True):
            title = ax.get_title(loc="left")
            assert title.startswith(f"host {host['name']} (")
            assert host["pressure"]["worst_destination"] in title
            top = ax.get_ylim()[1]
            for poly in ax.collections:
                for path in poly.get_paths():
                    assert path.vertices[:, 1].max() <= top + 1e-9


def test_several_hosts_share_one_legend_under_their_rows(four_os) -> None:
    """Inside the first row's panel the legend hid that host's plateau; and a later row's
    failure ticks were in no legend.  One figure legend below the rows has every entry."""
    result, _ = four_os
    fig = pressure_figure(result)
    assert all(ax.get_legend() is None for ax in fig.axes)
    (legend,) = fig.legends
    labels = [text.get_text() for text in legend.get_texts()]
    assert {"TIME_WAIT", "range (each host's)", "attempts", "failures"} <= set(labels)
    assert any("failed" in label for label in labels)  # the ticks of the Windows row
    assert len(labels) == len(set(labels))


# -- item 6: refusal waves --------------------------------------------------------------
def test_refusal_waves_from_counts() -> None:
    """Bins of 1 s: refusing 3 of every 10 (all refused), none refused the other 7."""
    from sim.waves import refusal_waves

    attempts = [100] * 40
    failures = ([100] * 3 + [0] * 7) * 4
    w = refusal_waves(attempts, failures, 1.0)
    assert w["refusing_fraction"] == pytest.approx(0.3)
    assert w["refusal_free_fraction"] == pytest.approx(0.7)
    assert w["longest_refusing_s"] == 3.0 and w["period_s"] == 10.0 and w["stretches"] == 4
    assert w["episodes"] == 4 and w["longest_episode_s"] == 3.0
    assert refusal_waves(attempts, [0] * 40, 1.0) is None


def test_flicker_inside_a_wave_is_one_episode_and_the_period_is_between_waves() -> None:
    """The timer wheel ends TIME_WAITs in batches, so a wave of refusals flickers: here each
    60-bin period has 8 bins of (2 refusing, 1 clean) flicker then 52 clean bins.  The
    flicker gaps (1 bin) are under half the longest clean stretch (52 / 2 = 26), the quiet
    between waves is not: 3 episodes of 8 bins, 60 apart (not the 3-bin flicker)."""
    from sim.waves import describe, refusal_waves

    wave = [100, 100, 0] * 2 + [100, 100] + [0] * 52  # 8 bins of flicker, then quiet
    w = refusal_waves([100] * 180, wave * 3, 1.0)
    assert w["stretches"] == 9 and w["longest_refusing_s"] == 2.0
    assert w["episodes"] == 3 and w["longest_episode_s"] == 8.0 and w["period_s"] == 60.0
    assert "3 episodes of up to 8.0 s (2.0 s at most of mostly refused connects) every" in (
        describe(w) or ""
    )


def test_irregular_bursts_get_no_period() -> None:
    """Two bursts, or bursts at irregular gaps (starts 32 and 52 bins apart: 52 > 1.5 x 32),
    are not called periodic; the 30-bin gap is over half the longest quiet (50 / 2), so the
    bursts stay three episodes."""
    from sim.waves import refusal_waves

    two = [0] * 10 + [100] * 3 + [0] * 30 + [100] * 3 + [0] * 10
    assert refusal_waves([100] * 56, two, 1.0)["period_s"] is None
    irregular = [100] * 2 + [0] * 30 + [100] * 2 + [0] * 50 + [100] * 2 + [0] * 10
    w = refusal_waves([100] * 96, irregular, 1.0)
    assert w["episodes"] == 3 and w["period_s"] is None


def test_fixed_time_wait_refuses_in_waves_one_holding_period_apart() -> None:
    """600/s, 1 s lifetimes, 60 s TIME_WAIT: a port is held 61 s, the pool of 28,232 takes
    28,232 connects in 28,232 / 600 = 47 s and then refuses everything until the first
    wave comes back: about 14 s of refusal every 61 s, 23 % of the time."""
    sc = sim.load_scenario(
        ROOT / "scenarios" / "linux-one-backend-500rps.toml",
        [
            "duration=300",
            "warmup=61",
            "load[0].arrival.rate=600",
            'load[0].lifetime={kind="fixed",value="1s"}',
        ],
    )
    s = sim.run(sc).summary
    w = s["refusal_waves"]
    assert w["period_s"] == pytest.approx(61.0, abs=3)
    assert w["longest_refusing_s"] == pytest.approx(14.0, abs=3)
    assert w["refusing_fraction"] == pytest.approx(0.23, abs=0.05)
    assert w["refusal_free_fraction"] > 0.5
    assert s["hosts"][0]["refusal_waves"] == w
    assert "refused in waves: 3 episodes of up to " in verdict(s)


# -- item 7: refused connects' probes ---------------------------------------------------
def test_a_refused_linux_connect_counts_a_scan_of_the_whole_range() -> None:
    """40 ports (even): __inet_hash_connect scans remaining / 2 = 20 ports of one parity,
    then 20 of the other, before returning -EADDRNOTAVAIL: 40 probes per refusal."""
    sc = sim.parse_scenario(
        {
            "name": "tiny",
            "seed": 2,
            "duration": 30,
            "bin": 1,
            "hosts": [{"port_range": [40000, 40039]}],
            "destinations": [{"name": "d", "address": "10.0.0.1:80"}],
            "load": [
                {
                    "destination": "d",
                    "arrival": {"kind": "poisson", "rate": 50},
                    "lifetime": {"kind": "fixed", "value": 1},
                }
            ],
        }
    )
    result = sim.run(sc)
    s = result.series
    refusing = s[(s["failures"] == s["attempts"]) & (s["attempts"] > 0)]
    assert len(refusing) > 5
    assert (refusing["probes_mean"] == 40).all() and (refusing["probes_max"] == 40).all()
    probes = result.summary["probes"]
    assert probes["refused"] == result.summary["connections"]["failed"]
    assert probes["refused_mean"] == 40
    label = pressure_figure(result).axes[2].get_ylabel()
    assert "refused ones included" in label


# -- item 8: a capacity answer for every host -------------------------------------------
def test_every_host_gets_its_capacity_answer(four_os) -> None:
    hosts = {h["name"]: h["capacity"] for h in four_os[0].summary["hosts"]}
    linux = hosts["linux"]
    assert linux["method"] == "erlang_b"
    # held 1 s + the timer wheel's mean TIME_WAIT: at HZ 250 a 60 s timer is rounded up to the
    # end of a 512-jiffy (2.048 s) bucket, on average half a bucket: 60 + 1.024 s
    held = 1 + 60 + 512 / 250 / 2
    assert linux["sustainable_per_s"] == pytest.approx(load_for_blocking(28232, 1e-3) / held)
    windows = hosts["windows"]  # forced reuse shares ports: not a loss system
    assert windows["method"] == "bound" and windows["why_not_erlang_b"]
    assert windows["sustainable_per_s"] == pytest.approx(16384 / 121)  # range / (1 s + 120 s)
    text = "\n".join(key_figures(four_os[0].summary))
    assert "capacity of windows: at most 135 new connections/s per host" in text
    assert "bound: 16,384 ports / 121 s held, lifetime + TIME_WAIT" in text


def test_capacity_takes_range_and_time_wait_from_a_preset(capsys) -> None:
    assert main(["capacity", "--os", "windows", "--rate", "100", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ports"] == 16384 and data["holding_s"] == 121.0
    assert data["max_rate"] == pytest.approx(load_for_blocking(16384, 1e-3) / 121)
    assert main(["capacity", "--os", "macos", "--rate", "100", "--time-wait", "10s"]) == 0
    out = capsys.readouterr().out
    assert "preset macos: range 49152-65535" in out and "each held 11 s" in out
    assert main(["capacity", "--os", "windos", "--rate", "1"]) == 2
    assert "did you mean 'windows'" in capsys.readouterr().err


# -- item 9: sweep and overlay plots ----------------------------------------------------
def _table(metric_values: dict[str, list[float]], **extra) -> pd.DataFrame:
    rows = {"rate": [400, 450, 500], "runs": [3, 3, 3], "failed_runs": [0, 0, 0]}
    for metric, values in metric_values.items():
        rows[f"{metric}.mean"] = values
        rows[f"{metric}.ci_low"] = values
        rows[f"{metric}.ci_high"] = values
    return pd.DataFrame({**rows, **extra})


def test_sweep_erlang_b_is_dashed_on_top_of_an_equal_simulated_line() -> None:
    same = [0.001, 0.02, 0.07]
    table = _table({"steady_state.blocking": same, "analytic.blocking": same})
    ax = sweep_figure(table, ["rate"], "steady_state.blocking").axes[0]
    simulated = next(ln for ln in ax.get_lines() if ln.get_label() == "steady_state.blocking")
    erlang = next(ln for ln in ax.get_lines() if ln.get_label() == "Erlang B")
    assert erlang.get_zorder() > simulated.get_zorder()
    assert erlang.get_linestyle() != simulated.get_linestyle()
    assert erlang.get_color() != simulated.get_color()


def test_sweep_fractions_are_shown_in_percent_and_rates_per_second() -> None:
    """As `portsim run` and `compare` show them: pressure 0.02834 is 2.834 %, in the plot
    (line, band and axis label) and in the terminal's mean [95 % CI]."""
    from sim.cli import _sweep_table

    table = _table({"pressure.peak": [0.01, 0.02834, 0.5]})
    table["pressure.peak.ci_high"] = [0.02, 0.03, 0.6]
    ax = sweep_figure(table, ["rate"], "pressure.peak").axes[0]
    assert list(ax.get_lines()[0].get_ydata()) == pytest.approx([1.0, 2.834, 50.0])
    assert ax.get_ylabel().startswith("pressure.peak (%)\n")
    table["load[0].arrival.rate"] = table["rate"]
    axis = sweep_figure(table, ["load[0].arrival.rate"], "pressure.peak").axes[0]
    assert axis.get_xlabel() == "load[0].arrival.rate (per second)"
    line = _sweep_table(table, ["rate"], ["pressure.peak"])[1]
    assert line == "rate=450: pressure.peak 2.834 % [2.834, 3]"
    table.loc[0, ["pressure.peak.mean", "pressure.peak.ci_low", "pressure.peak.ci_high"]] = np.nan
    assert _sweep_table(table, ["rate"], ["pressure.peak"])[0] == "rate=400: pressure.peak: none"


def test_sweep_request_figures_ring_the_points_whose_pool_was_overloaded() -> None:
    """Requests per connection is highest where the pool is saturated: those points (here
    the 500/s one, 300 of 10,000 requests still queued at the end, 3 %) are ringed; 50 of
    10,000 (0.5 %) is a tight pool, not an overloaded one.  The legend says what a ring is
    whichever line has the first, once."""
    table = _table(
        {
            "requests.requests_per_connection": [500.0, 900.0, 1200.0],
            "requests.waiting_at_end": [0.0, 50.0, 300.0],
            "requests.attempted": [10000.0, 10000.0, 10000.0],
        }
    )
    ax = sweep_figure(table, ["rate"], "requests.requests_per_connection").axes[0]
    (ring,) = [ln for ln in ax.get_lines() if ln.get_label().startswith("pool overloaded")]
    assert list(ring.get_xdata()) == [500] and list(ring.get_ydata()) == [1200.0]
    two = pd.concat([table.assign(pool=8), table.assign(pool=64)])
    two.loc[two["pool"] == 8, "requests.waiting_at_end.mean"] = 0.0  # the first line: none
    both = sweep_figure(two, ["rate", "pool"], "requests.requests_per_connection").axes[0]
    entries = [t.get_text() for t in both.get_legend().get_texts()]
    assert sum(e.startswith("pool overloaded") for e in entries) == 1
    for k in ("mean", "ci_low", "ci_high"):
        table[f"pressure.peak.{k}"] = [0.1, 0.2, 0.3]
    ports = sweep_figure(table, ["rate"], "pressure.peak").axes[0]  # not about requests
    assert not [ln for ln in ports.get_lines() if ln.get_label().startswith("pool overloaded")]


def test_sweep_first_failure_marks_runs_that_never_failed() -> None:
    table = _table(
        {"first_failure_s": [np.nan, np.nan, 56.0]},
        **{"first_failure_s.no_failure": [3, 1, 0]},
    )
    ax = sweep_figure(table, ["rate"], "first_failure_s").axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["no failure", "no failure in 1 of 3"]


def test_summarise_counts_runs_without_failure() -> None:
    from sim import sweeps

    spec = sweeps.load_sweep(
        str(ROOT / "scenarios" / "linux-one-backend-moderate.toml"), [], 2, 1, []
    )
    runs = pd.DataFrame(
        {"point": [0, 0], "error": ["", ""], "first_failure_s": [np.nan, 12.0]}
        | {m: [np.nan, np.nan] for m in sweeps.METRICS if m != "first_failure_s"}
    )
    table = sweeps.summarise_by_grid_point(runs, spec)
    assert table["first_failure_s.no_failure"].tolist() == [1]


def test_overlay_styles_differ_and_keepalive_queue_is_drawn() -> None:
    a = keepalive_run(600, "200ms", 32, duration="10s")
    b = keepalive_run(600, "200ms", 32, duration="10s")  # the same curves exactly
    fig = overlay_figure([a, b], ["a", "b"])
    lines = fig.axes[0].get_lines()
    assert lines[0].get_linestyle() != lines[1].get_linestyle()
    assert lines[0].get_marker() != lines[1].get_marker()
    assert len(fig.axes) == 3 and "waiting" in fig.axes[2].get_ylabel()
    assert max(fig.axes[2].get_lines()[0].get_ydata()) > 1000


def test_overlay_waiting_panel_has_only_keepalive_runs_and_counts_start_at_zero() -> None:
    """A run without keep-alive has no requests to wait: not drawn as a 0 line among them;
    count axes start at 0, even where every count is 0 (matplotlib would centre them)."""
    plain = sim.parse_scenario(
        {
            "name": "plain",
            "duration": "10s",
            "destinations": [{"name": "api", "address": "10.0.0.10:443"}],
            "load": [
                {
                    "destination": "api",
                    "arrival": {"kind": "poisson", "rate": 50},
                    "lifetime": {"kind": "fixed", "value": "20ms"},
                }
            ],
        }
    )
    roomy = keepalive_run(50, "20ms", 64, duration="10s")  # nothing waits, nothing fails
    fig = overlay_figure([sim.run(plain), roomy], ["plain", "roomy"])
    waiting = fig.axes[2]
    assert [ln.get_label() for ln in waiting.get_lines()] == ["roomy"]
    for ax in fig.axes[1:]:
        assert ax.get_ylim() == (0.0, 1.0)


# -- item 10: consecutive lives of one port ---------------------------------------------
def test_port_timeline_marks_every_life_start_and_end() -> None:
    lives = pd.DataFrame(
        {
            "destination": ["d", "d"],
            "taken_s": [0.0, 61.0],
            "closed_s": [1.0, 62.0],
            "released_s": [61.0, 122.0],  # the second life starts as the first ends
            "established_s": [1.0, 1.0],
            "time_wait_s": [60.0, 60.0],
        }
    )
    ax = port_timeline_figure(lives, 50000).axes[0]
    starts = [ln for ln in ax.get_lines() if ln.get_marker() == ">"]
    ends = [ln for ln in ax.get_lines() if ln.get_marker() == "|"]
    assert [ln.get_xdata()[0] for ln in starts] == [0.0, 61.0]
    assert [ln.get_xdata()[0] for ln in ends] == [61.0, 122.0]


# -- item 16: grammar ------------------------------------------------------------------
def test_one_more_pool_is_singular(four_os) -> None:
    s = dict(four_os[0].summary)
    pools = dict(list(s["analytic"].items())[:4])
    assert len(pools) == 4
    lines = key_figures({**s, "analytic": pools})
    assert "Erlang B for 1 more pool: analytic in summary.json" in lines


def test_sweep_table_says_no_failure_in_words() -> None:
    from sim.cli import _sweep_table

    row = {
        "rate": 400,
        "runs": 3,
        "failed_runs": 0,
        "first_failure_s.mean": np.nan,
        "first_failure_s.ci_low": np.nan,
        "first_failure_s.ci_high": np.nan,
        "first_failure_s.no_failure": 3,
    }
    some = {**row, "first_failure_s.mean": 56.0, "first_failure_s.no_failure": 1}
    some.update({"first_failure_s.ci_low": 50.0, "first_failure_s.ci_high": 62.0})
    lines = _sweep_table(pd.DataFrame([row, some]), ["rate"], ["first_failure_s"])
    assert lines == [
        "rate=400: first_failure_s: no failure",
        "rate=400: first_failure_s 56 s [50, 62] (no failure in 1 of 3 runs)",
    ]


def test_a_run_shorter_than_its_warmup_reports_no_steady_state() -> None:
    """500/s of 1 s connections with 60 s TIME_WAIT fill the pool in about 60 + 3 x 1 = 63 s;
    a 60 s run cuts its warmup to 30 s and would call a filling pool steady."""
    flagship = ROOT / "scenarios" / "linux-one-backend-500rps.toml"
    short = sim.run(sim.load_scenario(flagship, ["duration=60s"])).summary["steady_state"]
    assert short["stationary"] is False
    because = short["not_stationary_because"]
    assert "too short" in because and "126 s" in because
    long = sim.run(sim.load_scenario(flagship, ["duration=130s"])).summary["steady_state"]
    assert long["stationary"] is True
    told = sim.run(sim.load_scenario(flagship, ["duration=60s", "warmup=20"])).summary
    assert told["steady_state"]["stationary"] is True  # the user's own warmup is trusted


def test_a_retrying_load_leads_with_the_arrivals_that_gave_up() -> None:
    """1,000 connect() calls of which 400 were retries: 600 arrivals; 30 gave up, 100
    recovered; the retries are 40 % of the calls.  The failed calls (430 = 400 retried +
    30 given up) are not what the application lost."""
    from sim.verdict import retries_headline

    line = retries_headline({"retries": 400, "gave_up": 30, "recovered": 100}, 1000)
    assert line == (
        "Retries: 30 of 600 arrivals gave up after retrying, 100 succeeded after retrying; "
        "the 400 retried connects are 40 % of all connect() calls"
    )
    sc = sim.load_scenario(ROOT / "scenarios" / "deploy-burst-retry-backoff.toml")
    assert verdict(sim.run(sc).summary).startswith("Retries: ")
