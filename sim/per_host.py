"""Each host's own figures: hosts are separate machines, so their counts are never summed.

A scenario with a Linux and a Windows host asks two questions, one per machine; adding
their connects ("142,638 of 288,334 connects failed") answers neither.  The summary's
``hosts`` entries carry each host's connects, worst pool, steady-state refusal, refusal
waves and capacity answer; the verdict and the plots read them from there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sim.recorder import worst_of
from sim.steady_state import counts_since, window_bin
from sim.waves import refusal_waves

if TYPE_CHECKING:
    from sim.engine import Model
    from sim.host import Host

ERRNOS = ("EADDRNOTAVAIL", "EADDRINUSE", "EAGAIN")


def host_figures(model: Model, host: Host) -> dict[str, Any]:
    """One host's connects, worst pool, steady-state refusal and refusal waves."""
    loads = [ld for ld in model.loads if ld.host is host]
    attempted = sum(ld.attempted for ld in loads)
    succeeded = sum(ld.succeeded for ld in loads)
    errors = dict.fromkeys(ERRNOS, 0)
    for ld in loads:
        for error, n in ld.failed_by_error.items():
            errors[error] = errors.get(error, 0) + n
    worst = worst_of([t for t in model.recorder.tracks.values() if t.host is host])
    duration = model.scenario.duration
    pressure: dict[str, Any] = {"peak": 0.0, "mean": 0.0, "worst_destination": None}
    if worst is not None:
        pressure = {
            "peak": worst.pool.max_ever / host.size,
            "mean": worst.pool.mean_unusable(duration) / host.size,
            "peak_time_s": worst.pool.max_time,
            "worst_destination": worst.pool.label,
            "peak_ports": worst.pool.max_ever,
        }
    first = window_bin(model)
    window_attempted, window_failed = counts_since(model, loads, first)
    rows = model.recorder.host_rows.get(host.name, [])
    return {
        "connections": {
            "attempted": attempted,
            "succeeded": succeeded,
            "failed": attempted - succeeded,
            "failed_by_error": errors,
        },
        "first_failure_s": min(
            (ld.first_failure for ld in loads if ld.first_failure is not None), default=None
        ),
        "pressure": pressure,
        "steady_state": {
            "window_s": [first * model.recorder.bin_width, duration],
            "attempted": window_attempted,
            "failed": window_failed,
            "blocking": window_failed / window_attempted if window_attempted else 0.0,
        },
        "refusal_waves": refusal_waves(
            [r[0] for r in rows], [r[2] for r in rows], model.recorder.bin_width, first
        ),
    }


def host_series(model: Model) -> list[tuple]:
    """hosts.csv rows: per host and bin, its connects and its worst pool's ports by state."""
    rec = model.recorder
    out: list[tuple] = []
    for host in model.hosts.values():
        track = worst_of([t for t in rec.tracks.values() if t.host is host])
        for i, (attempts, successes, failures) in enumerate(rec.host_rows.get(host.name, [])):
            t0 = i * rec.bin_width
            t1 = min((i + 1) * rec.bin_width, model.scenario.duration)
            pool = (0, 0, 0, 0)
            if track is not None and i >= track.first_bin:
                j = i - track.first_bin
                pool = (track.established[j], track.time_wait[j], track.unusable[j], track.peak[j])
            out.append((t0, t1, host.name, attempts, successes, failures, *pool))
    return out


HOST_SERIES_COLUMNS = (
    "t_start_s",
    "t_end_s",
    "host",
    "attempts",
    "successes",
    "failures",
    "worst_established",
    "worst_time_wait",
    "worst_unusable",
    "worst_peak",
)
