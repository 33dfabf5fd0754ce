"""What keep-alive requests experienced: offered against served per second, the queue.

A keep-alive pool of K connections whose requests last L seconds on average serves at most
K / L requests per second (each connection carries one request at a time: Go's Transport
and urllib3 do not pipeline).  Offered more than that, with ``on_full = "wait"`` the queue
of waiting requests grows without bound while every connect() succeeds: ports are not the
problem, and a verdict about ports alone would mislead.  These figures come from the
binned series over the steady-state window.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from sim.recorder import SERIES_COLUMNS
from sim.workload.lifetimes import lifetime_mean

if TYPE_CHECKING:
    from sim.engine import Model
    from sim.summary.types import RequestRates

GROWING = 0.01  # the queue "grows" when it gained over 1 % of the window's arrivals

_REQUESTS = SERIES_COLUMNS.index("requests")
_WAITING = SERIES_COLUMNS.index("requests_waiting")
_SERVED = SERIES_COLUMNS.index("requests_served")


def pool_limit(model: Model) -> tuple[int, float | None]:
    """Connections the keep-alive pools may hold (K per pool, summed), and the most requests
    per second they can serve (K / L per pool, summed); the latter None when a keep-alive
    load's request duration has no mean (a trace)."""
    connections = 0
    total: float | None = 0.0
    for flow in model.flows:
        spec = flow.spec
        if spec.keepalive is None:
            continue
        connections += spec.keepalive.max_connections * flow.pool_count
        mean = lifetime_mean(spec.lifetime) if spec.lifetime is not None else math.nan
        if not 0 < mean < math.inf:
            total = None
        elif total is not None:
            total += spec.keepalive.max_connections * flow.pool_count / mean
    return connections, total


def request_rates(model: Model, first_bin: int) -> RequestRates:
    """Offered and served requests per second over the window from ``first_bin``, the
    queue's growth there, the pools' limit K / L and the oldest request still waiting."""
    rec = model.recorder
    rows = rec.rows[first_bin:] or rec.rows
    start = rows[0][0] if rows else 0.0
    span = (rows[-1][1] - start) if rows else 0.0
    arrived = sum(r[_REQUESTS] for r in rows)
    served = sum(r[_SERVED] for r in rows)
    before = rec.rows[first_bin - 1][_WAITING] if 0 < first_bin <= len(rec.rows) else 0
    after = rows[-1][_WAITING] if rows else 0
    growth = after - before
    connections, limit = pool_limit(model)
    now = model.scenario.duration
    oldest = min(
        (w.arrived for f in model.flows for p in f.pools for w in p.queue if not w.done),
        default=None,
    )
    return {
        "window_s": [start, start + span],
        "offered_per_s": arrived / span if span else 0.0,
        "served_per_s": served / span if span else 0.0,
        "pool_connections": connections,
        "pool_limit_per_s": limit,
        "queue_growth_per_s": growth / span if span else 0.0,
        "queue_growing": bool(after > 0 and growth > GROWING * max(arrived, 1)),
        "oldest_waiting_s": None if oldest is None else now - oldest,
    }
