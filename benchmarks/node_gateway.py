"""Cost of the 1,000-pod node's gateway alone: translate and release per flow.

    python benchmarks/node_gateway.py [--flows 100000] [--rounds 5]

The gateway of ``benchmarks/throughput.py``'s node (kind ``k8s-node``, 4 SNAT addresses),
driven without the hosts: a flow every millisecond (1,000/s) from one of 1,000 pods, each
a route with its flow key (``Gateway.flow_key``), from a random ephemeral port; a flow is
released with a FIN once 5,000 are live (the node's live flows at 1,000/s and 5 s
lifetimes), so every released flow stays held (120 s conntrack TIME_WAIT, longer than the
run) as in the node.  The baseline is the same loop without the gateway (the draws and the
queue of live flows), run in the same process, rounds interleaved; the report gives the
gateway's microseconds per flow (the difference of medians) and its ratio to the
baseline's."""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections import deque

import numpy as np

from sim.nat.base import FIN, GatewayConfig, Mapping
from sim.nat.kinds import make_gateway
from sim.randomness import Stream

PODS = 1000
LIVE = 5000
ADDRESSES = tuple(f"198.51.100.{7 + j}" for j in range(4))


def pod(m: int) -> str:
    return f"10.244.{m // 250}.{m % 250 + 2}"


def loop(flows: int, gateway: bool) -> float:
    """CPU seconds of ``flows`` flows, through the gateway or not (the baseline)."""
    gw = make_gateway(
        GatewayConfig("node", "k8s-node", ADDRESSES, None, {}), Stream(np.random.SeedSequence(1))
    )
    keys = [gw.flow_key("tcp", m, pod(m), "10.0.0.1", 443) for m in range(PODS)]
    rnd = random.Random(1)
    live: deque[object] = deque()
    now = 0.0
    start = time.process_time()
    for _ in range(flows):
        now += 0.001
        key = keys[rnd.randrange(PODS)]
        port = 32768 + rnd.randrange(28232)
        live.append(gw.translate_flow(key, now, port) if gateway else port)
        if len(live) > LIVE:
            mapping = live.popleft()
            if gateway and isinstance(mapping, Mapping):
                gw.release(mapping, now, FIN)
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    bare: list[float] = []
    full: list[float] = []
    for _ in range(args.rounds):  # baseline, gateway, gateway, baseline
        bare.append(loop(args.flows, False))
        full += [loop(args.flows, True), loop(args.flows, True)]
        bare.append(loop(args.flows, False))
    per_flow = (statistics.median(full) - statistics.median(bare)) / args.flows
    print(
        json.dumps(
            {
                "flows_per_round": args.flows,
                "rounds": args.rounds,
                "gateway_us_per_flow": round(per_flow * 1e6, 2),
                "baseline_us_per_flow": round(statistics.median(bare) / args.flows * 1e6, 2),
                "ratio_to_baseline": round(statistics.median(full) / statistics.median(bare), 2),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
