"""Sweep speed-up: a 24-run sweep on 2 worker processes against 1, in one process.

    python benchmarks/sweep.py [--rounds 3] [--workers 2]

The sweep: the flagship 500/s scenario shortened to 40 s, 4 rates x 6 replications.  Each
round runs it with 1 worker, then N, then N, then 1 (a drift of the machine's speed cancels
to first order in the ratio); the median ratio over rounds is reported.  The aim on a
2-core machine is at least 1.7x (issue 7).  Results are also checked identical.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import sim
from sim import sweeps

ROOT = Path(__file__).resolve().parent.parent
GRID = {"load[0].arrival.rate": [200, 350, 450, 500]}


def timed(workers: int) -> tuple[float, object]:
    start = time.perf_counter()
    runs = sim.sweep(
        ROOT / "scenarios" / "linux-one-backend-500rps.toml",
        GRID,
        replications=6,
        workers=workers,
        overrides=["duration=40"],
    )
    return time.perf_counter() - start, runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    ratios, serial_s, parallel_s = [], [], []
    for _ in range(args.rounds):
        t1, runs1 = timed(1)
        tn, runs_n = timed(args.workers)
        tn2, _ = timed(args.workers)
        t12, _ = timed(1)
        same = runs1.drop(columns="wall_s").equals(runs_n.drop(columns="wall_s"))
        if not same:
            raise SystemExit("results differ between 1 and N workers")
        serial_s.append((t1 + t12) / 2)
        parallel_s.append((tn + tn2) / 2)
        ratios.append((t1 + t12) / (tn + tn2))
    print(
        json.dumps(
            {
                "runs": len(runs1),
                "workers": args.workers,
                "rounds": args.rounds,
                "serial_s": round(statistics.median(serial_s), 2),
                "parallel_s": round(statistics.median(parallel_s), 2),
                "speedup": round(statistics.median(ratios), 2),
                "cores": sweeps.default_workers(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
