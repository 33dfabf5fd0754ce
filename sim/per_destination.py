"""Each pool's own figures: connects to it, its pressure, its port reuse.

The summary's ``destinations`` map is keyed as every per-pool figure is
(``steady_state.pool_key``): the destination's ``ip:port`` (``source->ip:port`` with
several source addresses, ``udp <address>`` for a UDP pool), prefixed ``host/`` when the
scenario has several hosts.  Three components fill an entry, each with what it knows: the
recorder's pool track (pressure), the channels (connects) and the pool's port-use record
(reuse); a pool that one of them does not see lacks those keys.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sim.fleet_report import fleet_destinations
from sim.metrics import PortUse
from sim.steady_state import pool_key

if TYPE_CHECKING:
    from sim.engine import Model
    from sim.summary.types import DestinationEntry


def destinations_report(model: Model) -> dict[str, DestinationEntry]:
    """Per pool: pressure (tracked pools), connects (per channel, summed), reuse."""
    several_hosts = model.units > 1
    duration = model.scenario.duration
    out: dict[str, DestinationEntry] = {}
    for track in model.recorder.tracks.values():
        size = track.host.size
        out[pool_key(track.host.name, track.pool.label, several_hosts)] = {
            "host": track.host.name,
            "pressure_peak": track.pool.max_ever / size,
            "pressure_mean": track.pool.mean_unusable(duration) / size,
            "peak_time_s": track.pool.max_time,
        }
    for ch in model.loads:  # connects per destination (with its source address, if several)
        entry = out.setdefault(
            pool_key(ch.host.name, ch.label, several_hosts), {"host": ch.host.name}
        )
        entry.setdefault("name", ch.dest.name)
        entry["attempted"] = entry.get("attempted", 0) + ch.attempted
        entry["succeeded"] = entry.get("succeeded", 0) + ch.succeeded
        entry["failed"] = entry.get("failed", 0) + ch.failed
    for host in model.all_hosts():
        for pool in host.table.pools.values():
            if isinstance(pool.use, PortUse) and pool.use.uses:  # (None: not tracked)
                key = pool_key(host.name, pool.label, several_hosts)
                out.setdefault(key, {"host": host.name}).update(pool.use.summary())
    for key, entry in fleet_destinations(
        model, lambda f, lbl: pool_key(f, lbl, several_hosts)
    ).items():  # the worst member's pressure beside the connects summed over members
        out.setdefault(key, {"host": entry["host"]}).update(entry)
    return out


def used_ports(model: Model) -> list[PortUse]:
    """Every pool's port-use record that saw a connection, over every host."""
    return [
        pool.use
        for host in model.all_hosts()
        for pool in host.table.pools.values()
        if isinstance(pool.use, PortUse) and pool.use.uses
    ]
