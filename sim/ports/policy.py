"""What every port-selection policy outside Linux's own looks like, and how to make one.

A policy keeps its own state (a cursor, counters, a table) and chooses a port from an
occupancy map: ``select(cells, layout, key, now) -> (offset or -1, probes)``.  Which sockets
make a port busy is not the policy's business but the map's (the uniqueness scope, chosen
by the host: ``sim.host``), following the common shape of the allocators in
docs/sources.md: generator, availability predicate and occupancy lifetime are separate knobs.
"""

from __future__ import annotations

from typing import Protocol

from sim.ports.table import Layout
from sim.randomness import Stream


class Policy(Protocol):
    name: str
    error: str  # errno name when nothing is found

    def select(
        self, cells: bytearray, layout: Layout, key: object, now: float
    ) -> tuple[int, int]: ...


POLICIES = (
    "linux",
    "sequential",
    "sequential-down",
    "bsd-random",
    "freebsd-throttle",
    "rfc6056-1",
    "rfc6056-2",
    "rfc6056-3",
    "rfc6056-4",
    "rfc6056-5",
)


def make_policy(
    name: str,
    stream: Stream,
    size: int,
    *,
    table_size: int = 10,
    increment_max: int = 500,
    randomcps: int = 10,
    randomtime: int = 45,
    error: str | None = None,
    first: int = 1,
) -> Policy:
    """A fresh policy instance (one per host and protocol) for a range of ``size`` ports."""
    from sim.ports import bsd, rfc6056, sequential

    if name == "sequential":
        policy: Policy = sequential.SequentialUp(first)
    elif name == "sequential-down":
        policy = sequential.SequentialDown(size)
    elif name == "bsd-random":
        policy = bsd.BsdRandom(stream)
    elif name == "freebsd-throttle":
        policy = bsd.FreeBsdThrottle(stream, randomcps, randomtime)
    elif name == "rfc6056-1":
        policy = rfc6056.RandomStart(stream)
    elif name == "rfc6056-2":
        policy = rfc6056.RandomPick(stream)
    elif name == "rfc6056-3":
        policy = rfc6056.HashCounter(stream)
    elif name == "rfc6056-4":
        policy = rfc6056.DoubleHash(stream, table_size)
    elif name == "rfc6056-5":
        policy = rfc6056.RandomIncrements(stream, increment_max)
    else:
        raise ValueError(f"unknown policy {name!r}; one of: {', '.join(POLICIES)}")
    if error is not None:
        policy.error = error
    return policy
