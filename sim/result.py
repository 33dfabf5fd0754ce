"""A run's results: the summary dict, the binned series, the optional event log; saving.

A run's folder is written whole or not at all: :meth:`Result.save` writes every file into
a fresh hidden sibling and swaps it in with one rename at the end (``sim.atomic``), so a
folder never mixes two runs.  JSON files hold standard JSON only: a NaN is written as
``null`` and an infinity as the string ``"inf"`` (``"-inf"``).
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sim import (
    atomic,  # atomic.write_*: looked up per call (tests inject faults there)
    metrics,
)
from sim.metrics import PortUse
from sim.per_host import HOST_SERIES_COLUMNS
from sim.recorder import (
    EVENT_COLUMNS,
    GATEWAY_COLUMNS,
    GATEWAY_EVENT_COLUMNS,
    SERIES_COLUMNS,
    WORST_COLUMNS,
    PoolTrack,
    Recorder,
    nonzero_rows,
    worst_track,
)

if TYPE_CHECKING:
    import pandas as pd

    from sim.config.types import Scenario
    from sim.engine import Model
    from sim.summary.types import Summary


def histograms(model: Model) -> dict[str, Sequence[Sequence[float]]]:
    """The distributions behind the CDF plots (histograms.json)."""
    rec = model.recorder
    uses = [
        pool.use
        for host in model.all_hosts()
        for pool in host.table.pools.values()
        if isinstance(pool.use, PortUse)
    ]
    return {
        "probes_pass1": nonzero_rows(rec.probes.pass_hist[0]),
        "probes_pass2": nonzero_rows(rec.probes.pass_hist[1]),
        "probes_all": nonzero_rows(rec.probes.probe_hist),
        "reuse_distance": metrics.hist_rows(metrics.merge([u.distance_hist for u in uses])),
        "reuse_interval_s": metrics.hist_rows(
            metrics.merge([u.interval_hist for u in uses]), 1 / 1000
        ),
    }


class Result:
    """What a run produced.  ``summary`` is a plain dict shaped as
    :class:`sim.summary.types.Summary`; ``series``/``events`` are pandas."""

    def __init__(
        self,
        summary: Summary,
        recorder: Recorder | None,
        log: list[tuple] | None,
        scenario: Scenario | None,
        *,
        series_rows: list[tuple] | None = None,
        histograms: Mapping[str, Sequence[Sequence[float]]] | None = None,
        raster: dict[str, Any] | None = None,
        host_rows: list[tuple] | None = None,
    ) -> None:
        self.summary = summary
        self._host_rows = host_rows or []
        self._host_series: pd.DataFrame | None = None
        self.histograms = histograms or {}
        self.raster = raster if raster is not None else _raster(recorder)
        self.scenario = scenario
        self._log = log
        self._rows = series_rows if series_rows is not None else _series_rows(recorder)
        self._series: pd.DataFrame | None = None

    @property
    def series(self) -> pd.DataFrame:
        import pandas as pd

        if self._series is None:
            columns = [*SERIES_COLUMNS, *WORST_COLUMNS]
            if self._rows and len(self._rows[0]) > len(columns):
                columns += GATEWAY_COLUMNS
            self._series = pd.DataFrame(self._rows, columns=columns)
        return self._series

    @property
    def host_series(self) -> pd.DataFrame:
        """Per host and bin: its connects and its worst pool (hosts.csv; several hosts)."""
        import pandas as pd

        if self._host_series is None:
            self._host_series = pd.DataFrame(self._host_rows, columns=list(HOST_SERIES_COLUMNS))
        return self._host_series

    @property
    def events(self) -> pd.DataFrame:
        import pandas as pd

        if self._log is None:
            raise ValueError("this run kept no event log: run with events=True (CLI: --events)")
        columns = list(EVENT_COLUMNS)
        if any(len(row) > len(columns) for row in self._log):  # a gateway's rows
            columns += GATEWAY_EVENT_COLUMNS
            width = len(columns)
            log = [row if len(row) == width else (*row, None, None) for row in self._log]
        else:
            log = self._log
        frame = pd.DataFrame(log, columns=columns)
        if "public_port" in frame:
            frame["public_port"] = frame["public_port"].astype("Int64")
        frame["local_port"] = frame["local_port"].astype("Int64")
        return frame

    def port_history(self, port: int) -> pd.DataFrame:
        """The lives of one local port (needs the event log: events=True / --events)."""
        from sim.port_history import port_lives

        return port_lives(self.events, port, self.summary.get("duration_s"))

    def to_pandas(self) -> pd.DataFrame:
        return self.series

    def save(self, out_dir: str | Path, *, plots: bool = True) -> Path:
        """Write the run's folder whole: into a stage beside ``out_dir``, then swapped in
        (an earlier run there is replaced only once every file is written)."""
        from sim.safe_paths import open_stage

        stage = open_stage(Path(out_dir), flag="save")  # refuses a folder portsim did not write
        try:
            self.write_files(stage.path, plots=plots)
            return stage.commit()
        finally:
            stage.discard()

    def write_files(self, out: Path, *, plots: bool = True) -> None:
        """Write summary.json, series.csv, scenario.json (+ events.csv, pressure.png) into
        the folder ``out``, which exists (a stage: see :meth:`save`)."""
        if self.scenario is not None:
            atomic.write_text(out / "scenario.json", scenario_json(self.scenario, self.summary))
        atomic.write_text(out / "series.csv", self.series.to_csv(index=False, lineterminator="\n"))
        atomic.write_text(out / "histograms.json", strict_json(self.histograms, indent=None))
        if len(self.summary.get("hosts", [])) > 1:
            atomic.write_text(
                out / "hosts.csv", self.host_series.to_csv(index=False, lineterminator="\n")
            )
        if self.raster:
            buffer = io.BytesIO()
            arrays: dict[str, Any] = {k: np.asarray(v) for k, v in self.raster.items()}
            np.savez_compressed(buffer, **arrays)
            atomic.write_bytes(out / "raster.npz", buffer.getvalue())
        if self._log is not None:
            atomic.write_text(
                out / "events.csv", self.events.to_csv(index=False, lineterminator="\n")
            )
        if plots:
            from sim.plots import pressure_figure, save_figure

            save_figure(pressure_figure(self), out / "pressure.png")
        atomic.write_text(out / "summary.json", summary_json(self.summary))

    @classmethod
    def load(cls, out_dir: str | Path, *, events: bool = True) -> Result:
        """Read a saved run back (summary and series; events if saved), validated:
        :class:`sim.result_reader.ResultFolderError` says what is wrong, in one line."""
        from sim.result_reader import read_saved

        saved = read_saved(Path(out_dir), events=events)
        result = cls(
            saved.summary,
            None,
            None,
            None,
            series_rows=[],
            histograms=saved.histograms,
            raster=saved.raster,
        )
        result._series = saved.series
        if saved.host_series is not None:
            result._host_series = saved.host_series
        result._log = saved.log
        return result


def _raster(rec: Recorder | None) -> dict[str, Any]:
    """The worst pool's occupancy raster: port groups x time, 0..255 each."""
    track = worst_track(rec) if rec is not None else None
    if track is None or not track.raster:
        return {}
    matrix = np.frombuffer(b"".join(track.raster), dtype=np.uint8).reshape(len(track.raster), -1)
    return {
        "times_s": np.asarray(track.raster_times),
        "occupancy": matrix.T.copy(),
        "lo": track.host.lo,
        "hi": track.host.hi,
        "label": track.pool.label,
    }


def _series_rows(rec: Recorder | None) -> list[tuple]:
    if rec is None:
        return []
    track = worst_track(rec)
    fleet_rows = _worst_fleet_rows(rec, track)
    rows = []
    for i, row in enumerate(rec.rows):
        extra: tuple[float, ...]
        if fleet_rows is not None:  # a fleet's: the member pool highest in each bin
            extra = fleet_rows[i]
        elif track is not None and i >= track.first_bin:
            j = i - track.first_bin
            extra = (
                track.established[j],
                track.time_wait[j],
                track.unusable[j],
                track.peak[j],
            )
        else:
            extra = (0, 0, 0, 0)
        if rec.gateway_rows:
            extra += rec.gateway_rows[i]
        rows.append(row + extra)
    return rows


def _worst_fleet_rows(rec: Recorder, track: PoolTrack | None) -> list[tuple] | None:
    """The per-bin rows of the fleet whose worst member pool beat every plain host's
    worst pool (``track``), or None."""
    best = track.pool.max_ever / track.host.size if track is not None else -1.0
    rows = None
    for fleet in rec.fleets:
        member = fleet.worst_pool()
        if member is not None and member[1].max_ever / fleet.size > best:
            best = member[1].max_ever / fleet.size
            rows = fleet.rows
    return rows


def json_safe(value: Any) -> Any:
    """``value`` with every NaN replaced by None and every infinity by ``"inf"``/``"-inf"``,
    so that ``json.dumps(..., allow_nan=False)`` writes standard JSON."""
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return json_safe(value.item())
    return value


def strict_json(value: Any, indent: int | None = 2) -> str:
    """Standard JSON text (no ``NaN``/``Infinity``), with a final newline."""
    return json.dumps(json_safe(value), indent=indent, allow_nan=False) + "\n"


def summary_json(summary: Mapping[str, object]) -> str:
    return strict_json(summary)


def scenario_json(scenario: Scenario, summary: Summary) -> str:
    data = scenario.model_dump(mode="json")
    data["resolved"] = {
        "seed": summary.get("seed"),
        "bin_s": scenario.bin_width,
        "hosts": summary.get("hosts", []),
    }
    return strict_json(data)
