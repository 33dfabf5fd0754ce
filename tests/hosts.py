"""A scenario's first host outside the engine, so property tests can drive it attempt by
attempt, and the ground truth of which sockets are alive."""

from __future__ import annotations

import numpy as np
from simpy import Environment

from sim.channel import Channel
from sim.config.types import Scenario
from sim.host import Host
from sim.randomness import Stream
from sim.recorder import ProbeCounts
from sim.resolve import resolve_host
from sim.sockets import CLOSED, Socket
from sim.workload.lifetimes import sampler


def host_from_scenario(sc: Scenario) -> tuple[Environment, Host, list[Channel], list[tuple]]:
    """(environment, host, one Channel per scenario load, the event log)."""
    env = Environment()
    log: list[tuple] = []
    host = Host(
        env, resolve_host(sc.hosts[0]), Stream(np.random.SeedSequence(1)), ProbeCounts(), log
    )
    dests = {d.name: d for d in sc.destinations}
    loads = []
    for i, spec in enumerate(sc.load):
        lifetime = sampler(spec.lifetime, Stream(np.random.SeedSequence(2 + i)))
        loads.append(
            Channel(
                f"l{i}",
                host,
                dests[spec.destination],
                lifetime,
                spec.close,
                spec.socket,
                spec.protocol,
                spec.local_port_range,
            )
        )
    return env, host, loads, log


def live_sockets(env: Environment, host: Host) -> list[Socket]:
    """Open sockets wait for their close event; TIME_WAIT ones sit in one of the host's
    TIME_WAIT queues (one per length)."""
    seen: dict[int, Socket] = {}
    pending = [getattr(event, "_value", None) for *_, event in env._queue]
    for queue in host.tw_queues.values():
        pending += list(queue)
    for sock in pending:
        if isinstance(sock, Socket) and sock.state != CLOSED:
            seen[id(sock)] = sock
    return list(seen.values())
