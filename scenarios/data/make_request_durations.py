"""Write request-durations.csv: request durations (seconds) of an RPC service, one per line.

Synthetic but shaped like a real service's latency histogram: most requests are fast
(lognormal around 25 ms), some go to the database (around 150 ms), and 1 % hit a slow
path or a client timeout (0.5 to 5 s).  Mean ~68 ms, median ~26 ms, p99 ~0.66 s, max ~4.8 s.

Deterministic (Python's own Mersenne Twister with a fixed seed): running it again gives
the same file byte for byte.  Used as an `empirical` lifetime by
scenarios/sidecar-200-backends-zipf.toml.

    python3 scenarios/data/make_request_durations.py
"""

from __future__ import annotations

import math
import random
from pathlib import Path

SAMPLES = 5000
OUT = Path(__file__).resolve().parent / "request-durations.csv"


def duration(rng: random.Random) -> float:
    u = rng.random()
    if u < 0.90:  # served from memory
        return rng.lognormvariate(math.log(0.025), 0.5)
    if u < 0.99:  # a database round trip
        return rng.lognormvariate(math.log(0.150), 0.6)
    return rng.uniform(0.5, 5.0)  # a slow path, or the client's timeout


def main() -> None:
    rng = random.Random(20261126)
    lines = ["duration_s"] + [f"{duration(rng):.4f}" for _ in range(SAMPLES)]
    OUT.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
