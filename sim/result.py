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
from sim.per_host import HOST_SERIES_COLUMNS, host_figures
from sim.recorder import EVENT_COLUMNS, SERIES_COLUMNS, WORST_COLUMNS, Recorder, worst_track
from sim.request_flow import request_rates
from sim.steady_state import analytic, host_capacity, pool_key, steady_state, window_bin
from sim.version import VERSION
from sim.waves import refusal_waves

if TYPE_CHECKING:
    from collections.abc import Iterable

    import pandas as pd

    from sim.config.types import Scenario
    from sim.engine import Model
    from sim.workload.flow import Flow

ERRNOS = ("EADDRNOTAVAIL", "EADDRINUSE", "EAGAIN")
_ATTEMPTS = SERIES_COLUMNS.index("attempts")
_FAILURES = SERIES_COLUMNS.index("failures")


def _errors(counts: dict[str, int]) -> dict[str, int]:
    out = dict.fromkeys(ERRNOS, 0)
    out.update(counts)
    return out


def _percentile(hist: list[int], q: float) -> float:
    """The q-quantile of a histogram indexed by value (nearest rank)."""
    counts = np.asarray(hist, dtype=np.int64)
    total = int(counts.sum())
    if not total:
        return 0.0
    return float(np.searchsorted(np.cumsum(counts), q * total))


def _sparse_percentile(counts: dict[int, int], q: float) -> float:
    """The q-quantile (nearest rank) of a {value: count} histogram."""
    total = sum(counts.values())
    seen = 0
    for value in sorted(counts):
        seen += counts[value]
        if seen >= q * total:
            return float(value)
    return 0.0


def _hist_stats(hist: list[int]) -> dict[str, float]:
    """Count, mean and p99 of a histogram indexed by value."""
    counts = np.asarray(hist, dtype=np.int64)
    count = int(counts.sum())
    mean = float(counts @ np.arange(len(counts))) / count if count else 0.0
    return {"count": count, "mean": mean, "p99": _percentile(hist, 0.99)}


def _nonzero_rows(hist: list[int]) -> list[list[int]]:
    """[[value, count], ...] of a histogram indexed by value."""
    counts = np.asarray(hist, dtype=np.int64)
    values = np.flatnonzero(counts)
    return [[int(v), int(counts[v])] for v in values]


def _reuse(uses: list[PortUse]) -> dict[str, Any]:
    """Reuse, predictability and collisions over every destination."""
    out = metrics.summarise_port_uses(uses)
    out["predictable_window"] = metrics.PREDICTABLE_WINDOW
    return out


def histograms(model: Model) -> dict[str, Sequence[Sequence[float]]]:
    """The distributions behind the CDF plots (histograms.json)."""
    rec = model.recorder
    uses = [
        pool.use
        for host in model.hosts.values()
        for pool in host.table.pools.values()
        if isinstance(pool.use, PortUse)
    ]
    return {
        "probes_pass1": _nonzero_rows(rec.probes.pass_hist[0]),
        "probes_pass2": _nonzero_rows(rec.probes.pass_hist[1]),
        "probes_all": _nonzero_rows(rec.probes.probe_hist),
        "reuse_distance": metrics.hist_rows(metrics.merge([u.distance_hist for u in uses])),
        "reuse_interval_s": metrics.hist_rows(
            metrics.merge([u.interval_hist for u in uses]), 1 / 1000
        ),
    }


def _windows_events(model: Model) -> dict[str, int]:
    """Events 4227 and 4231 as Windows would have logged them, summed over its hosts."""
    total = {"4227": 0, "4231": 0}
    for host in model.hosts.values():
        for event, n in host.windows_events.items():
            total[event] += n
    return total


def build_summary(model: Model, wall_s: float) -> dict[str, Any]:
    sc = model.scenario
    rec = model.recorder
    loads = model.loads
    attempted = sum(ld.attempted for ld in loads)
    succeeded = sum(ld.succeeded for ld in loads)
    errors = _merged(ld.failed_by_error for ld in loads)
    worst = worst_track(rec)
    if worst is not None:
        size = worst.host.size
        pressure = {
            "peak": worst.pool.max_ever / size,
            "mean": worst.pool.mean_unusable(sc.duration) / size,
            "peak_time_s": worst.pool.max_time,
            "worst_destination": worst.pool.label,
            "worst_host": worst.host.name,
            "peak_ports": worst.pool.max_ever,
            "range_ports": size,
        }
    else:
        pressure = {"peak": 0.0, "mean": 0.0, "peak_time_s": 0.0, "worst_destination": None}
    several_hosts = len(model.hosts) > 1
    destinations: dict[str, dict[str, Any]] = {}
    for track in rec.tracks.values():
        size = track.host.size
        destinations[pool_key(track.host.name, track.pool.label, several_hosts)] = {
            "host": track.host.name,
            "pressure_peak": track.pool.max_ever / size,
            "pressure_mean": track.pool.mean_unusable(sc.duration) / size,
            "peak_time_s": track.pool.max_time,
        }
    for ld in loads:  # connects per destination (with its source address, if several)
        entry = destinations.setdefault(
            pool_key(ld.host.name, ld.label, several_hosts), {"host": ld.host.name}
        )
        entry.setdefault("name", ld.dest.name)
        for key in ("attempted", "succeeded", "failed"):
            entry[key] = entry.get(key, 0) + getattr(ld, key)
    uses: list[PortUse] = []
    for host in model.hosts.values():
        for pool in host.table.pools.values():
            if isinstance(pool.use, PortUse) and pool.use.uses:  # (Untracked: none)
                uses.append(pool.use)
                key = pool_key(host.name, pool.label, several_hosts)
                destinations.setdefault(key, {"host": host.name}).update(pool.use.summary())
    pools = analytic(model)
    capacities = host_capacity(model, pools)
    hosts = []
    for host in model.hosts.values():
        hosts.append(
            {
                "name": host.name,
                "os": host.spec.os,
                "kernel": host.profile.label if host.profile else None,
                "description": host.resolved.preset.description,
                "generation": host.profile.generation if host.profile else None,
                "policy": host.resolved.policy,
                "scope": host.scope,
                "address": host.address,
                "port_range": [host.lo, host.hi],
                "range_ports": host.size,
                "time_wait_s": host.time_wait,
                "tcp_tw_reuse": host.tw_reuse,
                "time_wait_recycled": host.tw_recycled,
                "time_wait_overflow": host.tw_overflow,
                **host_figures(model, host),
                "capacity": capacities[host.name],
            }
        )
        if host.resolved.windows:
            hosts[-1]["windows_events"] = dict(host.windows_events)
        if host.linux:
            hosts[-1]["timers"] = host.timer_summary()
    probes = rec.probes
    return {
        "scenario": sc.name,
        "seed": model.seed,
        "version": f"portsim {VERSION}",
        "error": None,
        "duration_s": sc.duration,
        "bin_s": sc.bin_width,
        "connections": {
            "attempted": attempted,
            "succeeded": succeeded,
            "failed": attempted - succeeded,
            "failed_by_error": _errors(errors),
        },
        "pressure": pressure,
        "probes": {
            "mean": probes.probe_sum / succeeded if succeeded else 0.0,
            "p99": _percentile(probes.probe_hist, 0.99),
            "max": int(np.flatnonzero(np.asarray(probes.probe_hist))[-1:].sum()),
            **{f"pass{i + 1}": _hist_stats(probes.pass_hist[i]) for i in (0, 1)},
            "refused": probes.refused_calls,
            "refused_mean": probes.refused_probe_sum / probes.refused_calls
            if probes.refused_calls
            else 0.0,
        },
        "reuse": _reuse(uses),
        "steady_state": steady_state(model),
        "analytic": pools,
        "refusal_waves": None
        if several_hosts
        else refusal_waves(
            [r[_ATTEMPTS] for r in rec.rows],
            [r[_FAILURES] for r in rec.rows],
            rec.bin_width,
            window_bin(model),
        ),
        **(
            {"windows_events": _windows_events(model)}
            if any(h.resolved.windows for h in model.hosts.values())
            else {}
        ),
        "first_failure_s": min(
            (ld.first_failure for ld in loads if ld.first_failure is not None), default=None
        ),
        "hosts": hosts,
        "destinations": destinations,
        "loads": [_load_summary(flow) for flow in model.flows],
        **_workload_sections(model),
        "run": {"wall_s": round(wall_s, 3)},
    }


def _merged(counts: Iterable[dict[Any, int]]) -> dict[Any, int]:
    """Counters summed key by key."""
    out: dict[Any, int] = {}
    for one in counts:
        for key, n in one.items():
            out[key] = out.get(key, 0) + n
    return out


def _load_summary(flow: Flow) -> dict[str, Any]:
    """One scenario load: its connects over every destination and source address."""
    spec = flow.spec
    channels = flow.channels
    errors = _merged(ch.failed_by_error for ch in channels)
    first = [ch.first_failure for ch in channels if ch.first_failure is not None]
    names = spec.destination_names
    out: dict[str, Any] = {
        "name": flow.name,
        "host": flow.host_name,
        "destination": names[0] if len(names) == 1 else None,
        "address": channels[0].dest.address if len(flow.targets) == 1 else None,
        "destinations": names or sorted({ch.dest.name for ch in channels}),
        "members": len(flow.targets),
        "protocol": spec.protocol,
        "socket": spec.socket,
        "attempted": sum(ch.attempted for ch in channels),
        "succeeded": sum(ch.succeeded for ch in channels),
        "failed": sum(ch.failed for ch in channels),
        "failed_by_error": _errors(errors),
        "first_failure_s": min(first, default=None),
    }
    if flow.backoff is not None:
        out["retries"] = _retry_counts([flow])
    if flow.requests is not None:
        out["requests"] = _request_counts([flow])
    return out


def _retry_counts(flows: list[Flow]) -> dict[str, int]:
    return {
        "retries": sum(f.retries for f in flows),
        "gave_up": sum(f.gave_up for f in flows),
        "recovered": sum(f.recovered for f in flows),
    }


def _request_counts(flows: list[Flow]) -> dict[str, Any]:
    """Keep-alive requests: how many, how they fared, connections opened, waits."""
    stats = [f.requests for f in flows if f.requests is not None]
    succeeded = sum(r.succeeded for r in stats)
    connections = sum(r.connections for r in stats)
    waits = _merged(r.wait_ms for r in stats)
    served_after_wait = sum(waits.values())
    failed_by = {"connect_error": 0, "pool_full": 0, "wait_timeout": 0}
    for r in stats:
        for reason, n in r.failed_by.items():
            failed_by[reason] += n
    return {
        "attempted": sum(r.attempted for r in stats),
        "succeeded": succeeded,
        "failed": sum(r.failed for r in stats),
        "failed_by_reason": failed_by,
        "waited": sum(r.waited for r in stats),
        "waiting_at_end": sum(r.waiting for r in stats),
        "opening_at_end": sum(r.opening for r in stats),
        "connections": connections,
        "connections_per_request": connections / succeeded if succeeded else 0.0,
        "requests_per_connection": succeeded / connections if connections else 0.0,
        "wait_s": {
            "mean": sum(r.wait_sum for r in stats) / served_after_wait
            if served_after_wait
            else 0.0,
            "p99": _sparse_percentile(waits, 0.99) / 1000,
            "max": max((r.wait_max for r in stats), default=0.0),
        },
    }


def _workload_sections(model: Model) -> dict[str, Any]:
    """``retries`` and ``requests``, present when some load retries or keeps alive."""
    out: dict[str, Any] = {}
    if any(f.backoff is not None for f in model.flows):
        out["retries"] = _retry_counts(model.flows)
    if any(f.requests is not None for f in model.flows):
        out["requests"] = {
            **_request_counts(model.flows),
            **request_rates(model, window_bin(model)),
        }
    return out


class Result:
    """What a run produced.  ``summary`` is a plain dict; ``series``/``events`` are pandas."""

    def __init__(
        self,
        summary: dict[str, Any],
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
            self._series = pd.DataFrame(self._rows, columns=[*SERIES_COLUMNS, *WORST_COLUMNS])
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
        frame = pd.DataFrame(self._log, columns=list(EVENT_COLUMNS))
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
    rows = []
    for i, row in enumerate(rec.rows):
        if track is not None and i >= track.first_bin:
            j = i - track.first_bin
            extra = (track.established[j], track.time_wait[j], track.unusable[j], track.peak[j])
        else:
            extra = (0, 0, 0, 0)
        rows.append(row + extra)
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


def summary_json(summary: dict[str, Any]) -> str:
    return strict_json(summary)


def scenario_json(scenario: Scenario, summary: dict[str, Any]) -> str:
    data = scenario.model_dump(mode="json")
    data["resolved"] = {
        "seed": summary.get("seed"),
        "bin_s": scenario.bin_width,
        "hosts": summary.get("hosts", []),
    }
    return strict_json(data)
