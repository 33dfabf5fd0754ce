"""Cost of the timer-wheel TIME_WAIT on the hot path: the same run with and without it.

    python benchmarks/timerwheel.py [--connections 100000] [--rounds 7]

Poisson arrivals at 99 % of the default Linux range's capacity (exponential lifetimes of
mean 5 s), one destination; each round runs ``timer_wheel = true`` then ``false``, and the
median over rounds of CPU-time throughput is reported with the median ratio (CPU time, not
wall time: this machine is shared, and wall time drifts by 2x within minutes).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import sim

RANGE = 28232
RATE = 0.99 * RANGE / 65.0


def scenario(wheel: bool, connections: int) -> sim.Scenario:
    return sim.parse_scenario(
        {
            "name": "wheel-bench",
            "duration": connections / RATE,
            "seed": 1,
            "hosts": [{"timer_wheel": wheel}],
            "destinations": [{"name": "d", "address": "10.0.0.1:80"}],
            "load": [
                {
                    "destination": "d",
                    "arrival": {"kind": "poisson", "rate": RATE},
                    "lifetime": {"kind": "exponential", "mean": 5},
                }
            ],
        }
    )


def rate(wheel: bool, connections: int) -> float:
    sc = scenario(wheel, connections)
    start = time.process_time()
    result = sim.run(sc)
    return result.summary["connections"]["attempted"] / (time.process_time() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    on, off = [], []
    for _ in range(args.rounds):
        on.append(rate(True, args.connections))
        off.append(rate(False, args.connections))
    out = {
        "wheel_conn_per_s": round(statistics.median(on)),
        "exact_conn_per_s": round(statistics.median(off)),
        "median_ratio": round(statistics.median(a / b for a, b in zip(on, off, strict=True)), 3),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
