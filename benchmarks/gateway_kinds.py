"""Cost of a translation and its release for each gateway kind, near exhaustion.

    python benchmarks/gateway_kinds.py [--flows 200000]

Flows arrive every 1/rate seconds from 100 inside hosts to one destination and close at
once with a FIN, the rate chosen so that the held tuples sit at about 99 % of what the kind
allows to one destination (the hard case for a search: almost every cell is taken).  The
searches are ``bytearray.find`` calls, so the cost per flow should not grow with the pool:
the report gives microseconds per flow (translate + release) and the drop fraction."""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from sim.nat.base import FIN, GatewayConfig
from sim.nat.kinds import make_gateway
from sim.randomness import Stream

# kind -> (options, tuples to one destination the kind allows, hold after FIN)
CASES: dict[str, tuple[dict[str, object], int, float]] = {
    "aws-natgw": ({}, 55000, 60.0),
    "azure-natgw": ({}, 50000, 65.0),
    "azure-lb": ({"backend_pool_size": 1, "allocated_outbound_ports": 64000}, 64000, 240.0),
    "gcp-cloudnat": ({"min_ports_per_vm": 64512}, 64512, 120.0),
    "gcp-cloudnat-64": ({"min_ports_per_vm": 64}, 64, 120.0),
    "cgn-pba": ({"block_size": 4096, "max_blocks": 15}, 61440, 120.0),
    "cgn-deterministic": ({"sharing_ratio": 1}, 1000, 240.0),
}


def run(name: str, flows: int) -> dict[str, float]:
    options, capacity, hold = CASES[name]
    kind = name.removesuffix("-64")
    gw = make_gateway(
        GatewayConfig("bench", kind, ("198.51.100.1",), None, dict(options)),
        Stream(np.random.SeedSequence(1)),
    )
    rate = 0.99 * capacity / hold
    members = 1 if kind in ("azure-lb", "gcp-cloudnat", "cgn-pba", "cgn-deterministic") else 100
    dropped = 0
    t0 = time.perf_counter()
    for k in range(flows):
        now = k / rate
        m = gw.translate(now, "tcp", k % members, "10.0.0.2", 1024 + k % 64000, "203.0.113.1", 443)
        if isinstance(m, str):
            dropped += 1
        else:
            gw.release(m, now, FIN)
    seconds = time.perf_counter() - t0
    return {"us_per_flow": 1e6 * seconds / flows, "dropped_fraction": dropped / flows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=200000)
    args = parser.parse_args()
    print(json.dumps({name: run(name, args.flows) for name in CASES}, indent=1))


if __name__ == "__main__":
    main()
