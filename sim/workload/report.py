"""What the workload reports: each load's connects, its retries and keep-alive requests.

Per scenario ``[[load]]`` (a ``Flow``: its channels over every destination and source
address) and, for the run's ``retries`` and ``requests`` sections, over every load; those
sections are present only when some load retries or keeps alive.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from sim.connects import failed_by_error, first_failure, merged
from sim.quantiles import sparse_percentile

if TYPE_CHECKING:
    from sim.summary.types import FailedByReason, LoadEntry, RequestCounts, Retries
    from sim.workload.flow import Flow


def load_report(flow: Flow) -> LoadEntry:
    """One scenario load: its connects over every destination and source address."""
    spec = flow.spec
    channels = flow.channels
    names = spec.destination_names
    out: LoadEntry = {
        "name": flow.name,
        "host": flow.host_name,
        "destination": names[0] if len(names) == 1 else None,
        "address": channels[0].dest.address if len(flow.targets) == 1 and channels else None,
        "destinations": names or sorted({ch.dest.name for ch in channels}),
        "members": len(flow.targets),
        "protocol": spec.protocol,
        "socket": spec.socket,
        "attempted": sum(ch.attempted for ch in channels),
        "succeeded": sum(ch.succeeded for ch in channels),
        "failed": sum(ch.failed for ch in channels),
        "failed_by_error": failed_by_error(channels),
        "first_failure_s": first_failure(channels),
    }
    if flow.backoff is not None:
        out["retries"] = retry_counts([flow])
    if flow.requests is not None:
        out["requests"] = request_counts([flow])
    return out


def retry_counts(flows: list[Flow]) -> Retries:
    return {
        "retries": sum(f.retries for f in flows),
        "gave_up": sum(f.gave_up for f in flows),
        "recovered": sum(f.recovered for f in flows),
    }


def request_counts(flows: list[Flow]) -> RequestCounts:
    """Keep-alive requests: how many, how they fared, connections opened, waits."""
    stats = [f.requests for f in flows if f.requests is not None]
    succeeded = sum(r.succeeded for r in stats)
    connections = sum(r.connections for r in stats)
    waits = merged(r.wait_ms for r in stats)
    served_after_wait = sum(waits.values())
    counts: dict[str, int] = {"connect_error": 0, "pool_full": 0, "wait_timeout": 0}
    for r in stats:  # (gateway_idle_timeout too, for pools behind a gateway)
        for reason, n in r.failed_by.items():
            counts[reason] = counts.get(reason, 0) + n
    failed_by = cast("FailedByReason", counts)
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
            "p99": sparse_percentile(waits, 0.99) / 1000,
            "max": max((r.wait_max for r in stats), default=0.0),
        },
    }


def retries_section(flows: list[Flow]) -> Retries | None:
    """The run's ``retries``, when some load retries."""
    return retry_counts(flows) if any(f.backoff is not None for f in flows) else None


def requests_counts_section(flows: list[Flow]) -> RequestCounts | None:
    """The counts of the run's ``requests``, when some load keeps alive (the window's
    rates are added by the summary: sim.request_flow)."""
    return request_counts(flows) if any(f.requests is not None for f in flows) else None
