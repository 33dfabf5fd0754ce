"""The recorder only reads: settling the hosts to a bin's end and starting the next bin's
peaks are the engine's steps (``Model.close_bin``), so reading a bin changes nothing a
later bin or the summary sees."""

from __future__ import annotations

import sim
from sim.engine import Model
from sim.host import Host


def _model(os: str) -> Model:
    sc = sim.parse_scenario(
        {
            "name": "reads",
            "duration": 20,
            "bin": 1,
            "hosts": [{"name": "h", "os": os, "time_wait": 2}],
            "destinations": [
                {"name": "a", "address": "10.0.0.1:443"},
                {"name": "b", "address": "10.0.0.2:443"},
            ],
            "load": [
                {
                    "destinations": ["a", "b"],
                    "arrival": {"kind": "poisson", "rate": 200},
                    "lifetime": {"kind": "fixed", "value": 1},
                }
            ],
        }
    )
    return Model(sc, 1, events=False)


def _state(host: Host) -> tuple:
    pools = [*host.pools(), host.table.bind_pool]
    return (
        host.tw_count,
        host.due,
        [(p.label, p.peak, p.unusable, p.established, p.time_wait, bytes(p.cells)) for p in pools],
    )


def test_closing_a_bin_in_the_recorder_leaves_the_hosts_as_they_were() -> None:
    """Mid-bin (10.5 s, the bin ends at 11 s) TIME_WAITs of 2 s are due before the bin's
    end and ports came back within the bin (peak above level): settling or resetting peaks
    would show.  Linux (4-tuple pools) and macOS (one shared port space)."""
    for os in ("linux", "macos"):
        model = _model(os)
        model.env.run(until=10.5)
        host = model.hosts["h"]
        before = _state(host)
        bin_max = model.probes.bin_probe_max
        assert any(peak > level for _, peak, level, *_ in before[2])  # the test can fail
        assert host.due < model.recorder.bin_end()
        rows = len(model.recorder.rows)
        model.recorder.close_bin()
        assert len(model.recorder.rows) == rows + 1
        assert _state(host) == before
        assert model.probes.bin_probe_max == bin_max


def test_pools_is_a_view() -> None:
    """Reading the pools twice gives the same labels and counts; the shared space of a
    port-scope host is named by its destinations from the start."""
    model = _model("macos")
    host = model.hosts["h"]
    assert [p.label for p in host.pools()] == ["10.0.0.1:443, 10.0.0.2:443"]
    model.env.run(until=5.5)
    first = _state(host)
    assert _state(host) == first
