"""Deeper metrics worked by hand on tiny ranges: reuse, predictability, collisions, probes
by pass, warmup, the lives of a port, and the files and figures built from them."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import sim
from sim.cli import main
from sim.metrics import bucket_floor, log_bucket

LO = 40000


def scenario(os: str, loads: list[dict[str, Any]], duration: float = 100, **host: Any):
    # exact TIME_WAIT ends (no timer-wheel buckets): the expected times here are worked out
    # by hand from the TIME_WAIT length; tests/test_timerwheel.py covers the buckets
    host = {"timer_wheel": False, **host}
    return sim.parse_scenario(
        {
            "name": "metrics",
            "duration": duration,
            "hosts": [{"name": "h", "os": os, "port_range": [LO, LO + 7], **host}],
            "destinations": [{"name": "d", "address": "10.0.0.1:80", "time_wait": 60}],
            "load": loads,
        }
    )


def cycles(interval: float, stop: float, close: str = "reset", life: float = 0.0) -> dict:
    return {
        "destination": "d",
        "arrival": {"kind": "constant", "interval": interval},
        "lifetime": {"kind": "fixed", "value": life},
        "close": close,
        "stop": stop,
    }


def test_log_buckets_round_trip():
    for value in (1, 2, 3, 7, 8, 100, 12345, 1e9):
        assert bucket_floor(log_bucket(value)) <= value < bucket_floor(log_bucket(value) + 1)


def test_sequential_cursor_reuses_each_port_every_eighth_connection():
    """ns-3's cursor on 8 ports with connect+reset every 0.5 s: each port comes back after
    exactly 8 connections and 4 s, every step is +1 (predictable), and with the server
    closing first each reuse lands in the server's 60 s TIME_WAIT (a collision)."""
    r = sim.run(scenario("ns3", [cycles(0.5, 40.25, close="server")]))
    reuse = r.summary["reuse"]
    assert reuse["uses"] == 81
    assert reuse["reuse_distance_median"] == bucket_floor(log_bucket(8))
    assert reuse["reuse_interval_median_s"] == pytest.approx(bucket_floor(log_bucket(4000)) / 1000)
    assert reuse["predictable_fraction"] == 1.0
    assert reuse["collisions"] == 81 - 8  # every use after the first round
    hist = dict(r.histograms["reuse_distance"])
    assert hist == {bucket_floor(log_bucket(8)): 73}


def test_reset_close_has_no_collisions_and_random_pick_is_rarely_predictable():
    r = sim.run(scenario("ns3", [cycles(0.5, 40.25)]))
    assert r.summary["reuse"]["collisions"] == 0
    wide = {"port_range": [10000, 60000]}
    r = sim.run(scenario("rfc6056-alg2", [cycles(0.1, 60)], **wide))
    # a uniform draw lands within 16 ports after the previous one with p = 16/50001
    assert r.summary["reuse"]["predictable_fraction"] < 0.01


def test_probes_split_by_pass_when_the_even_half_is_full():
    """Linux, 8 ports held open then 2 more attempts: the first 4 connects end in pass 1
    (even offsets), the next 4 in pass 2 after the 4 even probes, the refusals probe all 8."""
    loads = [
        {
            "destination": "d",
            "arrival": {"kind": "burst", "count": 10, "at": 0},
            "lifetime": {"kind": "fixed", "value": "inf"},
        }
    ]
    probes = sim.run(scenario("linux", loads)).summary["probes"]
    assert probes["pass1"]["count"] == 4
    assert probes["pass2"]["count"] == 6  # 4 found in pass 2, 2 refused after both passes
    assert probes["pass2"]["p99"] == 8  # the refusals examined every port
    assert probes["max"] == 7  # the summary's own figures are over allocations made


def test_default_warmup_is_time_wait_plus_three_lifetimes():
    r = sim.run(scenario("linux", [cycles(1, 90, close="client", life=2.0)], duration=300))
    assert r.summary["steady_state"]["warmup_s"] == 60 + 3 * 2.0
    r = sim.run(scenario("linux", [cycles(1, 90, close="client", life=2.0)], duration=100))
    assert r.summary["steady_state"]["warmup_s"] == 50  # at most half the run
    sc = scenario("linux", [cycles(1, 90)], duration=100).model_copy(update={"warmup": 10.0})
    assert sim.run(sc).summary["steady_state"]["warmup_s"] == 10


def test_port_history_tells_each_life():
    """One port, three connections to one destination: closed by the client at 1 s
    (TIME_WAIT to 11 s with time_wait = 10), again at 12 s (reset at 13 s), and at 20 s
    (still open at the end, 30 s)."""
    loads = [
        {
            "destination": "d",
            "arrival": {"kind": "burst", "count": 1, "at": 0},
            "lifetime": {"kind": "fixed", "value": 1},
        },
        {
            "destination": "d",
            "arrival": {"kind": "burst", "count": 1, "at": 12},
            "lifetime": {"kind": "fixed", "value": 1},
            "close": "reset",
        },
        {
            "destination": "d",
            "arrival": {"kind": "burst", "count": 1, "at": 20},
            "lifetime": {"kind": "fixed", "value": "inf"},
        },
    ]
    sc = scenario("linux", loads, duration=30, port_range=[LO, LO], time_wait=10)
    lives = sim.run(sc, events=True).port_history(LO)
    assert lives.taken_s.tolist() == [0.0, 12.0, 20.0]
    assert lives.ended_by.tolist() == ["TIME_WAIT ended", "closed", "open at the end"]
    assert lives.time_wait_s.tolist() == [10.0, 0.0, 0.0]
    assert lives.released_s.tolist()[:2] == [11.0, 13.0]
    assert lives.idle_before_s.tolist()[1:] == [1.0, 7.0]


def test_port_command_and_saved_files(tmp_path: Path, capsys):
    sc_path = Path(__file__).resolve().parent.parent / "scenarios" / "linux-one-backend-500rps.toml"
    out = tmp_path / "run"
    assert (
        main(
            ["run", str(sc_path), "--out", str(out), "--events", "--quiet", "--set", "duration=70"]
        )
        == 0
    )
    events = pd.read_csv(out / "events.csv", dtype={"error": str})
    port = int(events[events.event == "connect"].local_port.iloc[0])
    capsys.readouterr()
    assert main(["port", str(out), str(port)]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"port {port}: ") and "TIME_WAIT" in text
    assert (out / f"port-{port}.png").read_bytes()[:4] == b"\x89PNG"
    hists = json.loads((out / "histograms.json").read_text())
    assert {"probes_pass1", "probes_pass2", "reuse_distance", "reuse_interval_s"} <= hists.keys()
    loaded = sim.Result.load(out)
    assert loaded.raster["occupancy"].shape[0] == 128
    assert loaded.raster["lo"] == 32768 and loaded.raster["label"] == "10.0.0.10:443"
    no_events = tmp_path / "plain"
    assert (
        main(
            [
                "run",
                str(sc_path),
                "--out",
                str(no_events),
                "--quiet",
                "--no-plots",
                "--set",
                "duration=5",
            ]
        )
        == 0
    )
    assert main(["port", str(no_events), str(port)]) == 2
    assert "--events" in capsys.readouterr().err


def test_study_figures_have_their_content(tmp_path: Path):
    from sim import plots

    r = sim.run(
        sim.load_scenario(
            Path(__file__).resolve().parent.parent / "scenarios" / "linux-one-backend-500rps.toml"
        ).model_copy(update={"duration": 90.0})
    )
    raster = plots.occupancy_raster_figure(r)
    image = raster.axes[0].images[0].get_array()
    assert image.shape[0] == 128 and np.nanmax(image) == pytest.approx(1.0)
    probes = plots.probes_cdf_figure(r)
    assert len(probes.axes[0].lines) == 2  # pass 1 and pass 2 both occurred
    reuse = plots.reuse_cdf_figure([r], ["linux"])
    assert all(len(ax.lines) == 1 for ax in reuse.axes)
    table = pd.DataFrame(
        {"rate": [400.0, 500.0], "blocking_mean": [0.001, 0.07], "blocking_ci95": [0.001, 0.01]}
    )
    curve = plots.refusal_vs_rate_figure(table, 28232, 61.0)
    erlang = curve.axes[0].lines[0].get_ydata()
    assert erlang[0] < 0.01 < erlang[-1]


@pytest.mark.parametrize("size", [7, 128, 131, 1000])
def test_raster_column_counts_each_port_group(size: int):
    """A raster column is, per group of consecutive ports, the fraction held (x255),
    computed from the parity-layout map without walking ports: check against a walk."""
    from types import SimpleNamespace

    from sim.ports.table import Layout, Pool
    from sim.recorder import RASTER_ROWS, PoolTrack

    rng = np.random.default_rng(size)
    layout = Layout(size)
    pool = Pool(layout, "x")
    held = rng.random(size) < 0.4
    for k in np.flatnonzero(held):
        pool.cells[layout.cell(int(k))] = 1
    host = SimpleNamespace(size=size, lo=LO, hi=LO + size - 1)
    track = PoolTrack(host, pool, 0, raster=True)
    track.snapshot_raster(1.0)
    column = np.frombuffer(track.raster[0], dtype=np.uint8)
    edges = np.linspace(0, size, min(RASTER_ROWS, size) + 1).astype(int)
    expected = [255 * int(held[a:b].sum()) // (b - a) for a, b in itertools.pairwise(edges)]
    assert column.tolist() == expected


def test_port_history_keeps_overlapping_lives_from_two_source_addresses():
    """Regression: a life is identified by its whole 4-tuple, local address included.  One
    port, two source addresses taken in turn, two connections to one destination: at 0 s
    (from the first address) and at 0.5 s (from the second; the same port, since the 4-tuple
    differs), each closed by the client after 2 s and held 10 s in TIME_WAIT.  Both lives
    are reported: 0 -> 2 -> 12 s and 0.5 -> 2.5 -> 12.5 s."""
    loads = [
        {
            "destination": "d",
            "arrival": {"kind": "constant", "interval": 0.5},
            "stop": 0.75,
            "lifetime": {"kind": "fixed", "value": 2},
        }
    ]
    addresses = ["10.1.0.1", "10.1.0.2"]
    sc = scenario(
        "linux", loads, duration=30, port_range=[LO, LO], time_wait=10, addresses=addresses
    )
    lives = sim.run(sc, events=True).port_history(LO)
    assert lives.local_address.tolist() == addresses
    assert lives.taken_s.tolist() == [0.0, 0.5]
    assert lives.closed_s.tolist() == [2.0, 2.5]
    assert lives.released_s.tolist() == [12.0, 12.5]
    assert lives.ended_by.tolist() == ["TIME_WAIT ended"] * 2
    assert lives.time_wait_s.tolist() == [10.0, 10.0]


def _reuse_one_by_one(size: int, uses: list[tuple[int, float]], closes: dict[int, tuple]):
    """The reuse figures worked out use by use, as the definitions read: the distance and
    interval since the port's previous use, whether the port is 1..PREDICTABLE_WINDOW
    after the previous connection's, and whether the server still holds the 4-tuple
    (``closes``: before use i, the server closed port k until t)."""
    from sim.metrics import PREDICTABLE_WINDOW

    last: dict[int, tuple[int, float]] = {}
    distances, intervals, predictable, collisions = [], [], 0, 0
    server_until: dict[int, float] = {}
    for i, (k, now) in enumerate(uses):
        if i in closes:
            ck, until = closes[i]
            server_until[ck] = until
        if k in last:
            distances.append(i - last[k][0])
            intervals.append(now - last[k][1])
        if i and 0 < (k - uses[i - 1][0]) % size <= PREDICTABLE_WINDOW:
            predictable += 1
        if server_until.get(k, 0.0) > now:
            collisions += 1
        last[k] = (i, now)
    return distances, intervals, predictable, collisions


@pytest.mark.parametrize("flush", [1, 7, 1 << 16])
def test_port_use_in_bulk_counts_as_one_by_one(monkeypatch, flush: int):
    """PortUse works its uses out in batches (sim.metrics.FLUSH): the figures do not
    depend on where the batches end."""
    from sim import metrics

    monkeypatch.setattr(metrics, "FLUSH", flush)
    rng = np.random.default_rng(5)
    size = 40
    ports = rng.integers(0, size, 500).tolist()
    times = np.cumsum(rng.exponential(0.3, 500)).tolist()
    uses = list(zip(ports, times, strict=True))
    closes = {i: (int(rng.integers(0, size)), times[i] + 2.0) for i in range(100, 500, 9)}
    use = metrics.PortUse(size)
    for i, (k, now) in enumerate(uses):
        if i in closes:
            use.server_closed(*closes[i])
        use.record(k, now)
        if i == 250:
            assert use.uses == 251  # readable mid-batch
    distances, intervals, predictable, collisions = _reuse_one_by_one(size, uses, closes)
    expect_d = np.zeros(metrics.BUCKETS, dtype=np.int64)
    for d in distances:
        expect_d[log_bucket(d)] += 1
    expect_i = np.zeros(metrics.BUCKETS, dtype=np.int64)
    for s in intervals:
        expect_i[log_bucket(s * 1000.0)] += 1
    assert use.uses == 500
    assert use.distance_hist == expect_d.tolist()
    assert use.interval_hist == expect_i.tolist()
    assert use.predictable == predictable
    assert use.collisions == collisions
    assert collisions > 0 and predictable > 0 and len(distances) == 500 - len(set(ports))
