"""A gateway kind alone under a synthetic load: for sweeps over gateway settings.

A full run models every host's kernel too; many sizing questions need only the gateway.
:func:`drive` sends VMs' connections straight to a gateway kind: Poisson arrivals (or a
burst per VM), destinations chosen uniformly, a fixed lifetime, a FIN (or RST) close, and
a dropped SYN retransmitted on the client's schedule (``sim.syn``: 1, 2, 3, 4, 5, 7, 11 ...
s from Linux 6.5) until connect() gives up with ETIMEDOUT, as ``sim.nat.route`` does in a
run.  What it leaves out: the hosts' own ports (each VM's source ports simply cycle
through Linux's default range 32768-60999), keep-alive pools and retries of the loads.
"""

from __future__ import annotations

import heapq
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.nat.base import FIN, GatewayConfig
from sim.nat.kinds import make_gateway
from sim.quantiles import sparse_percentile
from sim.randomness import Stream
from sim.syn import syn_schedule

if TYPE_CHECKING:
    from sim.nat.base import Gateway

FIRST_PORT, PORTS = 32768, 61000 - 32768  # net.ipv4.ip_local_port_range default
_RETRY, _CLOSE = 0, 1


def gateway(kind: str, addresses: int = 1, seed: int = 1, **options: Any) -> Gateway:
    """A gateway of ``kind`` with ``addresses`` public addresses (198.51.100.1, .2 ...)."""
    config = GatewayConfig(
        "gw",
        kind,
        tuple(f"198.51.100.{i + 1}" for i in range(addresses)),
        None,
        dict(options),
    )
    return make_gateway(config, Stream(np.random.SeedSequence([seed, 17])))


def drive(
    gw: Gateway,
    *,
    vms: int,
    rate_per_vm: float = 0.0,
    burst: int = 0,
    burst_spread: float = 1.0,
    destinations: int = 1,
    lifetime: float = 0.0,
    duration: float = 60.0,
    close: str = FIN,
    schedule: tuple[float, ...] | None = None,
    seed: int = 1,
) -> dict[str, Any]:
    """Drive ``gw`` with ``vms`` VMs: Poisson arrivals of ``rate_per_vm`` each over
    ``duration`` seconds, plus ``burst`` connections per VM at uniform times in
    [0, burst_spread); each to one of ``destinations`` (203.0.113.1:443, .2 ...) chosen
    uniformly, living ``lifetime`` seconds once established.  Returns the connects'
    outcomes, connect latency, dropped SYNs per second and the gateway's summary."""
    schedule = schedule or syn_schedule(6, 4)
    rng = np.random.default_rng(seed)
    n = int(rng.poisson(vms * rate_per_vm * duration)) if rate_per_vm > 0 else 0
    times = np.concatenate(
        [np.sort(rng.uniform(0, duration, n)), rng.uniform(0, burst_spread, burst * vms)]
    )
    members = np.concatenate([rng.integers(0, vms, n), np.repeat(np.arange(vms), burst)])
    order = np.argsort(times, kind="stable")
    times, members = times[order].tolist(), members[order].tolist()
    dests = rng.integers(0, destinations, len(times)).tolist()
    heap: list[tuple[float, int, int, Any]] = []
    seq = 0
    next_port = [0] * vms
    latencies: dict[float, int] = {}
    counts = {"connects": len(times), "established": 0, "timed_out": 0, "first_try_dropped": 0}
    end = 0.0
    drop_times: list[float] = []

    def attempt(now: float, member: int, sport: int, dest: int, tries: int) -> None:
        nonlocal seq
        r = gw.translate(now, "tcp", member, f"10.0.{member // 250}.{member % 250 + 2}",
                         sport, f"203.0.113.{dest + 1}", 443)  # fmt: skip
        if isinstance(r, str):
            drop_times.append(now)
            if tries == 0:
                counts["first_try_dropped"] += 1
            if tries == len(schedule) - 1:
                counts["timed_out"] += 1
                return
            wait = schedule[tries] - schedule[tries - 1] if tries else schedule[0]
            seq += 1
            heapq.heappush(heap, (now + wait, seq, _RETRY, (member, sport, dest, tries + 1)))
            return
        latency = schedule[tries - 1] if tries else 0.0
        latencies[latency] = latencies.get(latency, 0) + 1
        counts["established"] += 1
        if lifetime != math.inf:
            seq += 1
            heapq.heappush(heap, (now + lifetime, seq, _CLOSE, r))

    i = 0
    while i < len(times) or heap:
        if heap and (i >= len(times) or heap[0][0] <= times[i]):
            now, _, what, payload = heapq.heappop(heap)
            if what == _CLOSE:
                gw.release(payload, now, close)
            else:
                attempt(now, *payload)
        else:
            now, member = times[i], members[i]
            sport = FIRST_PORT + next_port[member] % PORTS
            next_port[member] += 1
            attempt(now, member, sport, dests[i], 0)
            i += 1
        end = max(end, now)
    done = sum(latencies.values())

    return {
        **counts,
        "connect_latency_s": {
            "mean": sum(v * c for v, c in latencies.items()) / done if done else 0.0,
            "p50": sparse_percentile(latencies, 0.5),
            "p99": sparse_percentile(latencies, 0.99),
            "max": max(latencies, default=0.0),
        },
        # dropped SYNs (first tries and retransmissions) per second of the run
        "drops_per_s": np.bincount(np.floor(drop_times).astype(int), minlength=int(end) + 1)
        if drop_times
        else np.zeros(int(end) + 1, int),
        "gateway": gw.summary(max(end, duration)),
    }
