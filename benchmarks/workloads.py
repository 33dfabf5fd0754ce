"""Cost of the workload layer: each feature's arrivals per second against the plain model.

    python benchmarks/workloads.py [--arrivals 100000] [--rounds 3]

Every variant offers the same Poisson arrivals (half the capacity of one destination, so
nothing is refused and the work per arrival is comparable) through one feature of issue 5:
a 200-member Zipf set, two source addresses, a retry policy (never triggered: the flow
layer's own cost), keep-alive requests (64 connections per pool), a replayed trace, and
lognormal lifetimes.  The baseline is the plain single-destination load, run in the same
round as plain, variant, variant, plain, so the machine's drift cancels in the ratio
(this VM's speed drifts by 2x within minutes); the median over rounds is reported.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import sim

RATE = 28232 / 65 * 0.5  # half of one destination's capacity (lifetime 5 s + TIME_WAIT)
LIFETIME = {"kind": "exponential", "mean": 5}


def _scenario(arrivals: int, **load) -> dict:
    base_load = {
        "destination": "api",
        "arrival": {"kind": "poisson", "rate": RATE},
        "lifetime": LIFETIME,
    }
    base_load.update(load)
    return {
        "name": "workloads",
        "duration": arrivals / RATE,
        "hosts": [{"name": "client"}],
        "destinations": [
            {"name": "api", "address": "10.0.0.1:443"},
            {
                "name": "backends",
                "count": 200,
                "address": "10.1.0.0/24",
                "ports": [443],
                "popularity": "zipf",
                "zipf_s": 1.1,
            },
        ],
        "load": [{k: v for k, v in base_load.items() if v is not None}],
    }


def _trace(arrivals: int, folder: Path) -> Path:
    rng = np.random.default_rng(1)
    times = np.cumsum(rng.exponential(1 / RATE, arrivals))
    path = folder / "trace.csv"
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["time_s", "destination"])
        out.writerows((f"{t:.6f}", "api") for t in times)
    return path


def variants(arrivals: int, folder: Path) -> dict[str, sim.Scenario]:
    trace = _trace(arrivals, folder)
    raw = {
        "plain": _scenario(arrivals),
        "zipf-200": _scenario(arrivals, destination=None, destinations=["backends"]),
        "two-addresses": _scenario(arrivals),
        "retry": _scenario(arrivals, retry={"kind": "exponential", "base": "100ms"}),
        "keepalive": _scenario(
            arrivals,
            lifetime={"kind": "exponential", "mean": "50ms"},
            keepalive={"max_connections": 64, "idle_timeout": "5s"},
        ),
        "trace": _scenario(
            arrivals, destination=None, arrival={"kind": "trace", "file": str(trace)}
        ),
        "lognormal": _scenario(arrivals, lifetime={"kind": "lognormal", "mean": 5, "p99": 30}),
    }
    raw["two-addresses"]["hosts"][0]["addresses"] = ["192.0.2.1", "192.0.2.2"]
    return {name: sim.parse_scenario(data, name) for name, data in raw.items()}


def timed(scenario: sim.Scenario) -> tuple[float, int]:
    start = time.perf_counter()
    summary = sim.run(scenario).summary
    arrivals = summary.get("requests", {}).get("attempted") or summary["connections"]["attempted"]
    return time.perf_counter() - start, arrivals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arrivals", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        scenarios = variants(args.arrivals, Path(tmp))
        plain = scenarios.pop("plain")
        ratios: dict[str, list[float]] = {name: [] for name in scenarios}
        per_s: dict[str, list[float]] = {name: [] for name in scenarios}
        base_per_s: list[float] = []
        for _ in range(args.rounds):
            for name, scenario in scenarios.items():
                t_plain, n_plain = timed(plain)
                t_var, n_var = timed(scenario)
                t_var2, _ = timed(scenario)
                t_plain2, _ = timed(plain)
                plain_rate = 2 * n_plain / (t_plain + t_plain2)
                var_rate = 2 * n_var / (t_var + t_var2)
                base_per_s.append(plain_rate)
                per_s[name].append(var_rate)
                ratios[name].append(var_rate / plain_rate)
    report = {
        "arrivals": args.arrivals,
        "rounds": args.rounds,
        "plain_arrivals_per_s": round(statistics.median(base_per_s)),
        "variants": {
            name: {
                "arrivals_per_s": round(statistics.median(per_s[name])),
                "ratio_to_plain": round(statistics.median(ratios[name]), 3),
            }
            for name in scenarios
        },
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
