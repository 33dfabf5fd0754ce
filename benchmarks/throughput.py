"""Throughput and memory of the full model against a bare SimPy lifecycle, in one process.

    python benchmarks/throughput.py [--connections 100000] [--rounds 5] [--memory]

Workload: Poisson arrivals to one destination, exponential lifetime of mean 5 s, then
TIME_WAIT 60 s.  Capacity of the default Linux range is
28,232 / 65 s = 434 connections/s; the loads are 0.5x, 0.99x and 1.05x of it, which put the
worst destination near 50 %, 99 % and 99.99 % pressure.

The baseline is the same workload through a bare SimPy lifecycle (see ``bare``): one arrival
process, each connection a callback chain (lifetime, then 60 s TIME_WAIT, then release), no
ports, no recorder, Python's ``random``.  Rounds are interleaved so that drift of the machine hits
every variant alike; within a round each load runs bare, full, full, bare (so a linear drift of the
machine's speed cancels in the ratio), and the median over rounds of those ratios is reported (this
VM's speed drifts by 2x within minutes), with the worst round's beside it.

The node behind a gateway (issue 16) runs in each round against the single host at 50 %, in the
same interleaved order: single, node, node, single."""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator

import simpy

import sim

RANGE = 28232
HOLD = 5.0 + 60.0
CAPACITY = RANGE / HOLD
LOADS = {"50%": 0.5, "99%": 0.99, "99.99%": 1.05}


def scenario(rate: float, connections: int) -> sim.Scenario:
    return sim.parse_scenario(
        {
            "name": "throughput",
            "duration": connections / rate,
            "destinations": [{"name": "api", "address": "10.0.0.1:443"}],
            "load": [
                {
                    "destination": "api",
                    "arrival": {"kind": "poisson", "rate": rate},
                    "lifetime": {"kind": "exponential", "mean": 5},
                }
            ],
        }
    )


GATEWAY_RATE = 1000.0  # connects/s of the node behind a gateway
GATEWAY_MEMBERS = 1000
GATEWAY_ADDRESSES = 4  # 1,000/s x (5 s + 120 s conntrack TIME_WAIT) over 4 x 64,512: ~48 %


def gateway_scenario(
    connections: int, members: int = GATEWAY_MEMBERS, gateway: bool = True
) -> sim.Scenario:
    """A Kubernetes node (kind k8s-node, 4 SNAT addresses) with 1,000 pods (a fleet) at
    1,000 connects/s in all to the single-host workload's destination, lifetimes as there
    (exponential, mean 5 s).  ``members`` and ``gateway`` vary it for
    ``benchmarks/node_breakdown.py`` (fewer pods, or the pods without the node's SNAT)."""
    duration = connections / GATEWAY_RATE
    pods: dict[str, object] = {"name": "pods", "count": members, "address": "10.244.0.0/22"}
    doc: dict[str, object] = {
        "name": "throughput-gateway",
        "duration": duration,
        "hosts": [pods],
        "destinations": [{"name": "api", "address": "10.0.0.1:443"}],
        "load": [
            {
                "host": "pods",
                "destination": "api",
                "arrival": {"kind": "poisson", "rate": GATEWAY_RATE},
                "lifetime": {"kind": "exponential", "mean": 5},
            }
        ],
    }
    if gateway:
        pods["gateway"] = "node"
        addresses = [f"198.51.100.{7 + j}" for j in range(GATEWAY_ADDRESSES)]
        doc["gateways"] = [{"name": "node", "kind": "k8s-node", "addresses": addresses}]
    return sim.parse_scenario(doc)


def full_gateway(connections: int) -> tuple[float, dict]:
    sc = gateway_scenario(connections)
    start = time.perf_counter()
    result = sim.run(sc)
    return time.perf_counter() - start, result.summary


def bare(rate: float, connections: int, seed: int = 1) -> float:
    """Seconds for the bare lifecycle of ``connections`` arrivals, exactly as issue 13 fixes
    it: one arrival process yielding ``env.timeout(random.expovariate(rate))``; each arrival
    appends a close callback to ``env.timeout(lifetime)`` that appends a release callback
    to ``env.timeout(60)``.  No ports, no recorder, Python's ``random`` drawn inside the
    loop, as the issue fixes it (precomputed numpy draws would make a faster baseline)."""
    rnd = random.Random(seed)
    env = simpy.Environment()
    live = [0]

    def release(event: simpy.events.Event) -> None:
        live[0] -= 1

    def close(event: simpy.events.Event) -> None:
        env.timeout(60.0).callbacks.append(release)

    def arrivals() -> Iterator[simpy.events.Event]:
        for _ in range(connections):
            yield env.timeout(rnd.expovariate(rate))
            live[0] += 1
            env.timeout(rnd.expovariate(1 / 5.0)).callbacks.append(close)

    env.process(arrivals())
    start = time.perf_counter()
    env.run()
    return time.perf_counter() - start


def full(rate: float, connections: int) -> tuple[float, dict]:
    sc = scenario(rate, connections)
    start = time.perf_counter()
    result = sim.run(sc)
    return time.perf_counter() - start, result.summary


def memory(connections: int) -> float:
    """Peak RSS (MB) of a fresh process running ``connections`` at 0.99x capacity."""
    code = (
        "import resource, sys; sys.path.insert(0, 'benchmarks');"
        "import throughput as t, sim;"
        f"sim.run(t.scenario(t.CAPACITY * 0.99, {connections}));"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--memory", action="store_true", help="also measure a 2,000,000 run")
    args = parser.parse_args()
    n = args.connections
    ratios: dict[str, list[float]] = {k: [] for k in LOADS}
    rates: dict[str, list[float]] = {k: [] for k in LOADS}
    bare_rates: list[float] = []
    pressures: dict[str, tuple[float, float]] = {}
    gateway_ratios: list[float] = []
    gateway_rates: list[float] = []
    gateway_pressure = 0.0
    for _ in range(args.rounds):
        # the node behind a gateway against the single host at 50 %, in the same round:
        # single, gateway, gateway, single (drift cancels as for bare/full)
        t_single, summary = full(CAPACITY * 0.5, n)
        t_gw, gw_summary = full_gateway(n)
        t_gw2, _ = full_gateway(n)
        t_single2, _ = full(CAPACITY * 0.5, n)
        single_rate = 2 * summary["connections"]["attempted"] / (t_single + t_single2)
        gw_rate = 2 * gw_summary["connections"]["attempted"] / (t_gw + t_gw2)
        gateway_rates.append(gw_rate)
        gateway_ratios.append(gw_rate / single_rate)
        gateway_pressure = gw_summary["gateways"]["node"]["pressure"]["peak"]
        for name, factor in LOADS.items():
            rate = CAPACITY * factor
            # bare, full, full, bare: a drift of the machine's speed during the four runs
            # cancels to first order in the ratio of the sums
            t_bare = bare(rate, n)
            t_full, summary = full(rate, n)
            t_full2, _ = full(rate, n)
            t_bare += bare(rate, n)
            t_full += t_full2
            attempts = 2 * summary["connections"]["attempted"]
            bare_rates.append(2 * n / t_bare)
            rates[name].append(attempts / t_full)
            ratios[name].append((attempts / t_full) / (2 * n / t_bare))
            pressures[name] = (summary["pressure"]["peak"], summary["pressure"]["mean"])
    report = {
        "connections_per_run": n,
        "rounds": args.rounds,
        "bare_lifecycle_conn_per_s": round(statistics.median(bare_rates)),
        "full_model": {
            name: {
                "offered_load": LOADS[name],
                "peak_pressure": round(pressures[name][0], 5),
                "mean_pressure": round(pressures[name][1], 5),
                "conn_per_s": round(statistics.median(rates[name])),
                "ratio_to_bare": round(statistics.median(ratios[name]), 3),
                "ratio_to_bare_worst_round": round(min(ratios[name]), 3),
            }
            for name in LOADS
        },
    }
    report["gateway_node"] = {
        "pods": GATEWAY_MEMBERS,
        "connects_per_s_simulated": GATEWAY_RATE,
        "peak_gateway_pressure": round(gateway_pressure, 5),
        "conn_per_s": round(statistics.median(gateway_rates)),
        "ratio_to_single_host_50pct": round(statistics.median(gateway_ratios), 3),
        "ratio_worst_round": round(min(gateway_ratios), 3),
    }
    medians = [statistics.median(rates[k]) for k in LOADS]
    report["flatness_fastest_over_slowest"] = round(max(medians) / min(medians), 3)
    if args.memory:
        report["peak_rss_mb_2M_connections"] = round(memory(2_000_000), 1)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
