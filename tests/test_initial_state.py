"""A host that starts from held ports (``initial_state``) behaves as if it had made them.

The comparison: run A builds its state for 100 s; the ports it holds at 100 s (each
connection's and TIME_WAIT's time left, read from A's event log) become run B's
initial state; B then sees the same arrivals.  With constant arrivals and fixed lifetimes,
and Linux refusing a connect() only when no port is usable (an even-sized range), the
numbers of ports held, the refusals and the pressure depend only on that history, not on
which ports were picked, so B's series must equal A's from 100 s on, bin by bin.  A cold
start (no initial state) must not (so the comparison can fail).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pandas as pd
import pytest

from sim.cli import main
from sim.config.errors import ScenarioError
from sim.config.load import load_scenario, parse_scenario
from sim.engine import run

T0 = 100.0
COLUMNS = ["established", "time_wait", "successes", "failures", "pressure_worst"]


def _scenario(duration: float, start: float, state: Path | None, rate_interval: float) -> dict:
    host = {"name": "client", "os": "linux", "port_range": [40000, 40999], "time_wait": 60}
    if state is not None:
        host["initial_state"] = str(state)
    return {
        "name": "forward",
        "duration": duration,
        "bin": 1,
        "hosts": [host],
        "destinations": [{"name": "api", "address": "10.0.0.10:443"}],
        "load": [
            {
                "destination": "api",
                # arrivals at .x2 and .x7, closes and TIME_WAIT ends at .x33 and .x83: no
                # two events share an instant or a bin edge, so rounding reorders nothing
                "arrival": {"kind": "constant", "interval": rate_interval},
                "lifetime": {"kind": "fixed", "value": 5.013},
                "start": start,
            }
        ],
    }


def _state_at(events: pd.DataFrame, t0: float) -> list[list[str]]:
    """What A holds at t0, with each hold's time left, from A's event log: per port, the
    last event before t0 (a connect: open; a time_wait: in TIME_WAIT) and the close or
    TIME_WAIT end that follows it."""
    ev = events.dropna(subset=["local_port"])
    last = ev[ev["time_s"] < t0].groupby("local_port")["event"].last()
    later = ev[ev["time_s"] > t0]
    close = later[later["event"] == "close"].groupby("local_port")["time_s"].first()
    end = later[later["event"] == "time_wait_end"].groupby("local_port")["time_s"].first()
    rows = []
    for port, event in last.items():
        if event == "connect":
            left, state = close[port] - t0, "ESTABLISHED"
        elif event == "time_wait":
            left, state = end[port] - t0, "TIME_WAIT"
        else:
            continue
        rows.append([str(int(port)), "10.0.0.10:443", state, repr(float(left))])
    return rows


@pytest.mark.parametrize("interval", [0.1, 0.05])  # 650 ports held; 1,300 offered: refusals
def test_forward_from_a_state_matches_the_run_that_built_it(tmp_path, interval):
    a = run(parse_scenario(_scenario(2 * T0, 0.02, None, interval)), events=True)
    state = tmp_path / "state.csv"
    with open(state, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["local_port", "destination", "state", "remaining_s"])
        writer.writerows(_state_at(a.events, T0))
    later = _scenario(T0, 0.02, state, interval)
    # B's jiffies clock is A's at T0, so TIME_WAITs end on the same timer-wheel buckets
    a_jiffies = a.summary["hosts"][0]["timers"]["jiffies_at_start"]
    later["hosts"][0]["jiffies_at_start"] = a_jiffies + T0 * 250
    b = run(parse_scenario(later, base=tmp_path))
    cold = run(parse_scenario(_scenario(T0, 0.02, None, interval)))
    after = a.series.iloc[int(T0) :].reset_index(drop=True)[COLUMNS]
    pd.testing.assert_frame_equal(b.series[COLUMNS], after, check_exact=True)
    assert after["established"].iloc[0] > 0 and after["time_wait"].iloc[0] > 0
    assert not cold.series[COLUMNS].equals(after)
    if interval == 0.05:  # the comparison covers exhaustion: refusals in every second
        assert after["failures"].sum() > 0
        assert b.summary["connections"]["failed"] == after["failures"].sum()


def _held_scenario(tmp_path: Path, rows: list[str], age: str = "uniform") -> dict:
    state = tmp_path / "held.csv"
    state.write_text("local_port,destination,state,remaining_s\n" + "".join(rows))
    sc = _scenario(90, 85.0, None, 1000.0)
    sc["hosts"][0]["timer_wheel"] = False  # TIME_WAIT ends worked out to the instant below
    sc["hosts"][0]["initial_state"] = {"file": "held.csv", "time_wait_age": age}
    sc["destinations"].append({"name": "other", "address": "10.0.0.99:80"})
    sc["load"][0]["destination"] = "other"  # one connection elsewhere, at 85 s
    return sc


def test_unknown_time_wait_ages_are_uniform_by_default(tmp_path):
    """600 TIME_WAITs with TIME_WAIT x (j + 1/2) / 600 left, j = 0..599: 0.1 j + 0.05 s.
    At 15 s those with 0.1 j + 0.05 < 15 (j <= 149) are gone: 450 left; at 30 s, 300."""
    rows = [f"{40000 + i},10.0.0.10:443,TIME_WAIT,\n" for i in range(600)]
    series = run(parse_scenario(_held_scenario(tmp_path, rows), base=tmp_path)).series
    tw = series.set_index("t_end_s")["time_wait"]
    assert (tw[15.0], tw[30.0], tw[59.0], tw[61.0]) == (450, 300, 10, 0)
    fresh = _held_scenario(tmp_path, rows, "fresh")
    tw = run(parse_scenario(fresh, base=tmp_path)).series.set_index("t_end_s")["time_wait"]
    # a bin's level is the state at its end, before what happens at that instant
    assert (tw[59.0], tw[60.0], tw[61.0]) == (600, 600, 0)


def test_a_held_connection_closes_into_time_wait(tmp_path):
    rows = [
        "40000,10.0.0.10:443,ESTABLISHED,10.5\n",
        "40001,10.0.0.10:443,ESTABLISHED,\n",  # open for the whole run
        "40002,10.0.0.10:443,TIME_WAIT,20.5\n",
    ]
    series = run(parse_scenario(_held_scenario(tmp_path, rows), base=tmp_path)).series
    s = series.set_index("t_end_s")
    assert (s["established"][10.0], s["time_wait"][10.0]) == (2, 1)
    assert (s["established"][11.0], s["time_wait"][11.0]) == (1, 2)  # 40000 closed at 10.5
    assert s["time_wait"][21.0] == 1  # 40002's TIME_WAIT ended at 20.5
    assert s["time_wait"][71.0] == 0  # 40000's ended at 70.5
    assert s["established"][90.0] == 2  # 40001, and the load's connection made at 85 s


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        (["50000,10.0.0.10:443,ESTABLISHED,\n"], "line 2: local_port 50000 is outside the"),
        (["40000,10.0.0.10:443,TIME_WAIT,61\n"], "remaining_s 61 is more than the host's"),
        (["40000,10.0.0.10:443,LISTEN,\n"], "line 2: state: ESTABLISHED or TIME_WAIT"),
        (["40000,10.0.0.10,ESTABLISHED,\n"], 'line 2: destination: expected "ip:port"'),
        (["40000,10.0.0.10:443,TIME_WAIT,inf\n"], "remaining_s: must be finite and >= 0"),
        (
            ["40000,10.0.0.10:443,ESTABLISHED,\n", "40000,10.0.0.10:443,TIME_WAIT,\n"],
            "line 3: port 40000 to 10.0.0.10:443 is already held (line 2)",
        ),
    ],
)
def test_bad_initial_state_names_file_key_and_line(tmp_path, rows, expected):
    with pytest.raises(ScenarioError) as err:
        parse_scenario(_held_scenario(tmp_path, rows), "x.toml", base=tmp_path)
    (line,) = err.value.problems
    assert line.startswith("x.toml: hosts[0].initial_state.file: ") and expected in line


def test_snapshot_to_scenario_runs_from_the_snapshot(tmp_path, capsys):
    """inspect --out on an ss listing: the host starts holding its connected ports."""
    fixtures = Path(__file__).resolve().parent / "snapshots"
    out = tmp_path / "from ss"
    args = [str(fixtures / "linux-ss-tan-odd.txt"), str(fixtures / "linux-sysctl-a-excerpt.txt")]
    assert main(["inspect", *args, "--out", str(out)]) == 0
    capsys.readouterr()
    sc = load_scenario(out / "scenario.toml")
    assert sc.name == "from-ss"
    assert sc.hosts[0].listening_ports == (40500,)
    assert len(sc.hosts[0].reserved_ports) == 11
    # 10.0.0.10:443: 3 ESTAB + 3 TW + FIN-WAIT-2 (as TIME_WAIT); 10.0.0.11:5432; 2001:db8::5
    text = (out / "initial-state.csv").read_text().splitlines()
    assert sum(",ESTABLISHED," in r for r in text) == 5
    assert sum(",TIME_WAIT," in r for r in text) == 4
    result = run(sc)
    first = result.series.iloc[0]
    assert first["time_wait"] >= 1 and first["established"] >= 5
    assert math.isfinite(result.summary["pressure"]["peak"])


def _poisson(duration: float, state: Path | None, age: str, seed: int) -> dict:
    host: dict = {"name": "client", "os": "linux", "time_wait": 60}
    if state is not None:
        host["initial_state"] = {"file": str(state), "time_wait_age": age}
    return {
        "name": "forward-poisson",
        "duration": duration,
        "bin": 1,
        "seed": seed,
        "hosts": [host],
        "destinations": [{"name": "api", "address": "10.0.0.10:443"}],
        "load": [
            {
                "destination": "api",
                "arrival": {"kind": "poisson", "rate": 300},
                "lifetime": {"kind": "exponential", "mean": 1},
            }
        ],
    }


def test_uniform_ages_fit_a_steady_state_and_fresh_ones_do_not(tmp_path):
    """A steady Poisson load (300/s, 1 s lifetimes: ~18,300 of 28,232 ports) leaves its
    TIME_WAITs uniformly aged.  Started from A's state at 100 s with the TIME_WAIT left
    *erased* (the usual snapshot), the uniform assumption must track A's TIME_WAIT count
    over the next minute, and the fresh one must not.

    Tolerance: B's new connections are independent of A's (another seed): the TIME_WAITs
    they add after t seconds differ by ~sqrt(2 x 300 t) <= 190 (one sd at 60 s); the
    uniform ages differ from A's real ones by at most ~sqrt(n)/2 ~ 70.  800 is over four
    combined sd.  Fresh ages keep all ~18,000 until 60 s while A's drain: at 30 s the
    excess is ~9,000."""
    # A runs a bucket (2.048 s at HZ 250) past T0 + 60 s, so every TIME_WAIT held at T0
    # ends inside A's log (the timer wheel rounds 60 s up to the bucket's end)
    a = run(parse_scenario(_poisson(T0 + 63, None, "uniform", 1)), events=True)
    rows = [r[:3] + ([""] if r[2] == "TIME_WAIT" else [r[3]]) for r in _state_at(a.events, T0)]
    state = tmp_path / "state.csv"
    with open(state, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["local_port", "destination", "state", "remaining_s"])
        writer.writerows(rows)
    a_tw = a.series["time_wait"].iloc[int(T0) : int(T0) + 60].to_numpy()
    uniform = run(parse_scenario(_poisson(60, state, "uniform", 2), base=tmp_path))
    fresh = run(parse_scenario(_poisson(60, state, "fresh", 2), base=tmp_path))
    assert a_tw.min() > 15_000  # a steady state well under way
    assert abs(uniform.series["time_wait"].to_numpy() - a_tw).max() < 800
    assert fresh.series["time_wait"].iloc[29] - a_tw[29] > 5_000


def test_a_kernel_time_wait_may_show_up_to_a_wheel_bucket_more(tmp_path):
    """On a HZ 250 kernel a 60 s TIME_WAIT ends at the end of a 512-jiffy bucket, so `ss -o`
    can show up to 60 + 2.048 s left: 61.7 is accepted with the wheel, 62.1 is not, and
    without the wheel 61.7 is more than the host's 60 s."""
    rows = ["40000,10.0.0.10:443,TIME_WAIT,61.7\n"]
    wheel = _held_scenario(tmp_path, rows)
    wheel["hosts"][0]["timer_wheel"] = True
    parse_scenario(wheel, "x.toml", base=tmp_path)
    with pytest.raises(ScenarioError, match=r"remaining_s 61\.7 is more"):
        parse_scenario(_held_scenario(tmp_path, rows), "x.toml", base=tmp_path)
    too_long = _held_scenario(tmp_path, ["40000,10.0.0.10:443,TIME_WAIT,62.1\n"])
    too_long["hosts"][0]["timer_wheel"] = True
    with pytest.raises(
        ScenarioError, match=r"remaining_s 62.1 is more than the host's TIME_WAIT \(62.048 s\)"
    ):
        parse_scenario(too_long, "x.toml", base=tmp_path)
