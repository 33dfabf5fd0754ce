"""Each host's own figures: hosts are separate machines, so their counts are never summed.

A scenario with a Linux and a Windows host asks two questions, one per machine; adding
their connects ("142,638 of 288,334 connects failed") answers neither.  The summary's
``hosts`` entries carry each host's connects, worst pool, steady-state refusal, refusal
waves and capacity answer; the verdict and the plots read them from there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from sim.connects import connections, first_failure
from sim.recorder import worst_of
from sim.steady_state import counts_since
from sim.waves import refusal_waves

if TYPE_CHECKING:
    from sim.channel import Channel
    from sim.engine import Model
    from sim.host import Host
    from sim.ports.table import Pool
    from sim.summary.types import (
        Capacity,
        HostEntry,
        HostFigures,
        HostSetup,
        Pressure,
        WindowsEvents,
    )


def host_report(model: Model, host: Host, capacity: Capacity) -> HostEntry:
    """One host's ``hosts`` entry: how it was resolved (kernel, policy, range, TIME_WAIT),
    its own figures and its ``capacity`` answer (sim.steady_state.host_capacity)."""
    entry: HostEntry = {
        **host_setup(host, host.address),
        "time_wait_recycled": host.tw_recycled,
        "time_wait_overflow": host.tw_overflow,
        **host_figures(model, host),
        "capacity": capacity,
    }
    if host.resolved.windows:
        entry["windows_events"] = cast("WindowsEvents", dict(host.windows_events))
    if host.linux:
        entry["timers"] = host.timer_summary()
    return entry


def host_setup(host: Host, address: str) -> HostSetup:
    """How ``host`` was resolved (its ``hosts`` entry's first keys; a fleet passes its
    kernel host and its network as ``address``)."""
    return {
        "name": host.name,
        "os": host.spec.os,
        "kernel": host.profile.label if host.profile else None,
        "description": host.resolved.preset.description,
        "generation": host.profile.generation if host.profile else None,
        "policy": host.resolved.policy,
        "scope": host.scope,
        "address": address,
        "port_range": [host.lo, host.hi],
        "range_ports": host.size,
        "time_wait_s": host.time_wait,
        "tcp_tw_reuse": host.tw_reuse,
    }


def host_figures(model: Model, host: Host) -> HostFigures:
    """One host's connects, worst pool, steady-state refusal and refusal waves."""
    loads = [ld for ld in model.loads if ld.host is host]
    worst = worst_of([t for t in model.recorder.tracks.values() if t.host is host])
    return unit_figures(model, host.name, loads, worst.pool if worst else None, host.size)


def unit_figures(
    model: Model, name: str, loads: list[Channel], worst: Pool | None, size: int
) -> HostFigures:
    """The figures of a host or a fleet (``sim.fleet_report``) named ``name``: the
    connects of its channels ``loads``, its worst pool's pressure over ``size`` ports,
    steady-state refusal and refusal waves."""
    duration = model.scenario.duration
    pressure: Pressure = {"peak": 0.0, "mean": 0.0, "worst_destination": None}
    if worst is not None:
        pressure = {
            "peak": worst.max_ever / size,
            "mean": worst.mean_unusable(duration) / size,
            "peak_time_s": worst.max_time,
            "worst_destination": worst.label,
            "peak_ports": worst.max_ever,
        }
    first = model.recorder.window_bin
    window_attempted, window_failed = counts_since(model, loads, first)
    rows = model.recorder.host_rows.get(name, [])
    figures: HostFigures = {
        "connections": connections(loads),
        "first_failure_s": first_failure(loads),
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
    routed = [ld for ld in loads if ld.route is not None]
    if routed:  # a host has one gateway (sim.config: a host's gateway key)
        figures["gateway"] = {
            "name": routed[0].route.gateway.name,  # type: ignore[union-attr]
            "still_connecting_at_end": sum(ld.connecting for ld in routed),
        }
    return figures


def windows_events_total(model: Model) -> WindowsEvents | None:
    """Events 4227 and 4231 as Windows would have logged them, summed over its hosts;
    None when no Windows host ran."""
    hosts = model.all_hosts()
    if not any(h.resolved.windows for h in hosts):
        return None
    total = {"4227": 0, "4231": 0}
    for host in hosts:
        for event, n in host.windows_events.items():
            total[event] += n
    return cast("WindowsEvents", total)


def host_series(model: Model) -> list[tuple]:
    """hosts.csv rows: per host (or fleet) and bin, its connects and its worst pool's ports
    by state (a fleet's: the member pool with the highest peak in that bin)."""
    rec = model.recorder
    out: list[tuple] = []
    for spec in model.scenario.hosts:
        name = spec.name
        fleet = model.fleets.get(name)
        host = model.hosts.get(name)
        track = worst_of([t for t in rec.tracks.values() if t.host is host])
        for i, (attempts, successes, failures) in enumerate(rec.host_rows.get(name, [])):
            t0 = i * rec.bin_width
            t1 = min((i + 1) * rec.bin_width, model.scenario.duration)
            pool = (0, 0, 0, 0)
            if fleet is not None:  # the member pool with the highest peak in the bin
                pool = fleet.rows[i]
            elif track is not None and i >= track.first_bin:
                j = i - track.first_bin
                pool = (track.established[j], track.time_wait[j], track.unusable[j], track.peak[j])
            out.append((t0, t1, name, attempts, successes, failures, *pool))
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
