"""A fleet's part of the summary: one entry for all its members, never one per member.

A node of 1,000 pods asks "does any pod run out, and how many connects failed?", not a
thousand host sections.  A fleet's entry in the summary's ``hosts`` has the keys of a
host's (so the verdict, plots and hosts.csv read it alike): its connects summed over its
members, its pressure that of the member pool that came closest to full, its steady-state
refusal and refusal waves over all members; plus a ``fleet`` table: member count, how many
were used, the address span, the spread, per-member connect counts and the worst member.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal, cast

from sim.per_host import host_setup, unit_figures

if TYPE_CHECKING:
    from sim.engine import Model
    from sim.fleet import Fleet, Member
    from sim.ports.table import Pool
    from sim.summary.types import Capacity, DestinationEntry, HostEntry, WindowsEvents, WorstMember

SPREAD: Literal["uniform"] = (
    "uniform"  # how a fleet's loads spread arrivals over its members (sim.fleet)
)


def fleet_entry(model: Model, fleet: Fleet, capacity: Capacity) -> HostEntry:
    """The fleet's ``hosts`` entry (see the module doc)."""
    host = fleet.kernel_host  # every member's configuration is the same
    members = fleet.built()
    loads = [ld for ld in model.loads if ld.host.name == fleet.name]
    worst = fleet.worst_pool()
    figures = unit_figures(model, fleet.name, loads, worst[1] if worst else None, fleet.size)
    attempted_by_member: dict[int, int] = {}
    failed_by_member: dict[int, int] = {}
    for ld in loads:
        m = ld.host.member
        attempted_by_member[m] = attempted_by_member.get(m, 0) + ld.attempted
        failed_by_member[m] = failed_by_member.get(m, 0) + ld.failed
    used = [n for n in attempted_by_member.values() if n]
    worst_member: WorstMember | None = None
    if worst is not None:
        member, pool = worst
        worst_member = {
            "index": member.member,
            "address": member.address,
            "destination": pool.label,
            "pressure_peak": pool.max_ever / fleet.size,
            "peak_time_s": pool.max_time,
            "attempted": attempted_by_member.get(member.member, 0),
            "failed": failed_by_member.get(member.member, 0),
        }
        figures["pressure"]["worst_member"] = member.address
    entry: HostEntry = {
        **host_setup(host, fleet.spec.address),  # (a member's name is its fleet's)
        "time_wait_recycled": sum(m.tw_recycled for m in members),
        "time_wait_overflow": sum(m.tw_overflow for m in members),
        **figures,
        "capacity": capacity,
        "fleet": {
            "members": fleet.count,
            "members_used": len(used),
            "first_address": fleet.addresses.address(0),
            "last_address": fleet.addresses.last,
            "spread": SPREAD,
            "connects_per_member": {
                "min": min(used) if len(used) == fleet.count else 0,
                "mean": sum(used) / fleet.count,
                "max": max(used, default=0),
            },
            "members_failing": sum(1 for n in failed_by_member.values() if n),
            "worst_member": worst_member,
        },
    }
    if host.resolved.windows:
        entry["windows_events"] = cast(
            "WindowsEvents",
            {event: sum(m.windows_events[event] for m in members) for event in host.windows_events},
        )
    if host.linux:
        timers = host.timer_summary()
        timers["time_wait_rst_killed"] = sum(m.tw_rst_killed for m in members)
        entry["timers"] = timers
    return entry


def fleet_destinations(model: Model, key: Callable[[str, str], str]) -> dict[str, DestinationEntry]:
    """Per fleet and destination: the peak pressure of the member pool to it that came
    closest to full (``key(fleet name, pool label)`` names the entry)."""
    out: dict[str, DestinationEntry] = {}
    duration = model.scenario.duration
    for fleet in model.fleets.values():
        best: dict[str, tuple[Pool, Member]] = {}
        for host in fleet.built():
            for pool in host.table.pools.values():
                held = best.get(pool.label)
                if held is None or (-pool.max_ever, pool.max_time) < (
                    -held[0].max_ever,
                    held[0].max_time,
                ):
                    best[pool.label] = (pool, host)
        for label, (pool, member) in best.items():
            out[key(fleet.name, label)] = {
                "host": fleet.name,
                "pressure_peak": pool.max_ever / fleet.size,
                "pressure_mean": pool.mean_unusable(duration) / fleet.size,
                "peak_time_s": pool.max_time,
                "worst_member": member.address,
            }
    return out
