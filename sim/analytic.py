"""Capacity formulas: the port pool to one destination as an Erlang loss system.

Connections to one destination need distinct local ports from a pool of N; each holds its
port for its lifetime plus the hold after close (TIME_WAIT on the side that closes first).
With Poisson arrivals an attempt that finds every port busy fails and is not queued: an
M/G/N/N loss system, whose refusal probability is Erlang's B formula at offered load
A = rate x mean holding time, whatever the holding-time distribution (insensitivity:
B. A. Sevastyanov, Theory Probab. Appl. 2(1), 1957; F. P. Kelly, "Reversibility and
Stochastic Networks", 1979).  It applies when the kernel scans the whole range (any free
port is found), which holds for Linux with an even-sized range.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from sim.analytic_gateway import GatewaySizing, size_gateway
from sim.erlang import (
    carried_load,
    erlang_b,
    erlang_b_log,
    load_for_blocking,
    offered_load,
)

__all__ = [
    "Capacity",
    "GatewaySizing",
    "capacity",
    "carried_load",
    "erlang_b",
    "erlang_b_log",
    "load_for_blocking",
    "offered_load",
    "size_gateway",
]


@dataclass(frozen=True)
class Capacity:
    ports: int
    rate: float
    holding_s: float
    offered_load: float
    blocking: float
    mean_in_use: float
    pressure: float
    target_blocking: float
    max_rate: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def capacity(
    ports: int,
    rate: float,
    lifetime_s: float,
    hold_after_close_s: float,
    target_blocking: float = 0.001,
) -> Capacity:
    """Expected refusal, ports in use (Little: A(1 - B), see :func:`carried_load`) and
    the sustainable rate.  An offered load too large for a float counts as infinite:
    every attempt refused, every port in use."""
    holding = lifetime_s + hold_after_close_s
    a = offered_load(rate, lifetime_s, hold_after_close_s)
    if math.isnan(a):  # 0 x inf: no traffic
        a = 0.0
    b = erlang_b(ports, a)
    in_use = carried_load(ports, a)
    max_rate = load_for_blocking(ports, target_blocking) / holding if holding > 0 else math.inf
    return Capacity(
        ports=ports,
        rate=rate,
        holding_s=holding,
        offered_load=a,
        blocking=b,
        mean_in_use=in_use,
        pressure=min(1.0, in_use / ports) if ports else 1.0,
        target_blocking=target_blocking,
        max_rate=max_rate,
    )
