"""Where the 1,000-pod node's time goes: members and gateway, each against the single host.

    python benchmarks/node_breakdown.py [--connections 100000] [--rounds 3]

Issue 16 asks the node of ``benchmarks/throughput.py`` (1,000 pods behind a ``k8s-node``
gateway with 4 SNAT addresses, 1,000 connects/s) to run at half the single host's
throughput or better.  This splits the node into its parts, in one process, variants
interleaved (this shared VM's speed drifts; each round runs them all, in alternating
order), CPU seconds of ``sim.run`` per variant:

* ``single``: throughput.py's single host at 50 % (217 connects/s), the reference;
* ``fleet10`` / ``fleet100`` / ``fleet1000``: 10, 100 or 1,000 pods at 1,000 connects/s in
  all, no gateway: the same code per connection, but for the connect() hash each member
  computes once per 10 s window it connects in (some 10,000 times in 100,000 connections
  for 1,000 members, 1,000 for 100), so what 1,000 members cost over 100 is mostly what
  reading their state costs once it no longer fits the CPU's caches;
* ``fleet10_gateway`` / ``node``: the same behind the node's gateway (``node`` is
  throughput.py's ``gateway_node``).

Reported: the median seconds of each, and (as multiples of the single host's seconds) what
100 and 1,000 members cost over 10, what the gateway costs with 10 members and with 1,000, and the
node's throughput over the single host's (the ratio issue 16 names, here in CPU time).
The lifetimes, destination and arrival process are those of throughput.py, so the only
differences between variants are the number of members and the gateway."""

from __future__ import annotations

import argparse
import json
import statistics
import time

import throughput

import sim


def seconds(scenario: sim.Scenario) -> float:
    start = time.process_time()
    sim.run(scenario)
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    n = args.connections
    variants = {
        "single": throughput.scenario(throughput.CAPACITY * 0.5, n),
        "fleet10": throughput.gateway_scenario(n, members=10, gateway=False),
        "fleet100": throughput.gateway_scenario(n, members=100, gateway=False),
        "fleet1000": throughput.gateway_scenario(n, gateway=False),
        "fleet10_gateway": throughput.gateway_scenario(n, members=10),
        "node": throughput.gateway_scenario(n),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for r in range(args.rounds):
        order = list(variants) if r % 2 == 0 else list(reversed(variants))
        for name in order:
            times[name].append(seconds(variants[name]))
    t = {name: statistics.median(values) for name, values in times.items()}
    single = t["single"]
    report = {
        "connections_per_run": n,
        "rounds": args.rounds,
        "cpu_seconds_median": {name: round(value, 3) for name, value in t.items()},
        "in_single_host_runs": {
            "fleet_machinery_10_members": round((t["fleet10"] - single) / single, 2),
            "members_100_over_10": round((t["fleet100"] - t["fleet10"]) / single, 2),
            "members_1000_over_10": round((t["fleet1000"] - t["fleet10"]) / single, 2),
            "gateway_with_10_members": round((t["fleet10_gateway"] - t["fleet10"]) / single, 2),
            "gateway_with_1000_members": round((t["node"] - t["fleet1000"]) / single, 2),
        },
        "node_over_single_throughput": round(single / t["node"], 3),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
