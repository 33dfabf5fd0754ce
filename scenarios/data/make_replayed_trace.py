"""Write replayed-trace.csv: two minutes of an application server's outgoing connections.

Synthetic, shaped like a connection log (one row per connect(), with how long the
connection lived), for scenarios/replayed-trace.toml:

- ``api``: HTTP calls to an internal API without keep-alive, Poisson at ~18/s with a
  gentle rise over the two minutes; each lasts ~80 ms (lognormal, a few up to ~1 s);
- ``db``: a database pool of 20 connections opened at start-up and recycled at their
  maximum age (30-90 s), each replaced by a new connection when it closes;
- ``metrics``: a cron job at 60 s that pushes metrics over 1,500 short connections
  within 3 seconds.

Deterministic (Python's own Mersenne Twister with a fixed seed): running it again gives
the same file byte for byte.

    python3 scenarios/data/make_replayed_trace.py
"""

from __future__ import annotations

import math
import random
from pathlib import Path

OUT = Path(__file__).resolve().parent / "replayed-trace.csv"
SPAN = 120.0  # seconds of trace


def api(rng: random.Random) -> list[tuple[float, str, float]]:
    rows = []
    t = 0.0
    while True:
        rate = 15.0 + 6.0 * t / SPAN  # 15/s rising to 21/s
        t += rng.expovariate(rate)
        if t >= SPAN:
            return rows
        rows.append((t, "api", rng.lognormvariate(math.log(0.08), 0.7)))


def db(rng: random.Random) -> list[tuple[float, str, float]]:
    rows = []
    for _ in range(20):
        t = rng.uniform(0.2, 1.5)  # the pool fills at start-up
        while t < SPAN:
            life = rng.uniform(30.0, 90.0)  # recycled at a maximum age
            rows.append((t, "db", life))
            t += life + rng.uniform(0.001, 0.010)  # reopened right after
    return rows


def metrics(rng: random.Random) -> list[tuple[float, str, float]]:
    start = 60.0
    return [
        (start + rng.uniform(0.0, 3.0), "metrics", rng.lognormvariate(math.log(0.02), 0.5))
        for _ in range(1500)
    ]


def main() -> None:
    rng = random.Random(20261126)
    rows = sorted(api(rng) + db(rng) + metrics(rng))
    lines = ["time_s,destination,lifetime_s"]
    lines += [f"{t:.4f},{dest},{life:.4f}" for t, dest, life in rows]
    OUT.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
