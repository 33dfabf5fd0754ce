"""A load as the application drives it: each arrival picks a destination and a source
address, then connects (with retries) or borrows a keep-alive connection.

The connect() itself is a channel's (``sim.channel.Channel``: one host, one source address,
one destination).  A load with one channel, no retries and no keep-alive skips this layer:
its arrivals call the channel directly, the hot path of the plain model.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from sim.workload.destinations import Chooser
from sim.workload.keepalive import KeepAlivePool, Requests
from sim.workload.retry import Backoff

if TYPE_CHECKING:
    import numpy as np
    from simpy import Environment

    from sim.channel import Channel
    from sim.config.types import LoadSpec
    from sim.fleet import MemberChannels
    from sim.randomness import Stream
    from sim.sockets import Socket

    Then = Callable[[Socket | None], None]


class Flow:
    """One ``[[load]]``: its targets (a list of channels each, one per source address),
    their probabilities, its request durations or lifetimes, its retries and pools."""

    def __init__(
        self,
        env: Environment,
        spec: LoadSpec,
        targets: list[list[Channel]],
        probabilities: np.ndarray | None,
        durations: Callable[[], float] | None,
        choice: Stream,
        jitter: Stream,
        name: str,
        host_name: str,
        trace_life: TraceLifetime | None = None,
    ) -> None:
        self.env = env
        self.spec = spec
        self.name = name
        self.host_name = host_name  # the load's host (a trace's rows may name others)
        self.targets = targets
        self.channels = [ch for target in targets for ch in target]
        self.pick = None  # a trace names its targets row by row: no probabilities
        if len(targets) > 1 and probabilities is not None:
            self.pick = Chooser(probabilities, choice)
        self.durations: Callable[[], float] = durations or _no_durations
        self.turn = 0  # round robin over source addresses
        retry = spec.retry
        self.backoff = Backoff(retry, jitter) if retry is not None and retry.attempts > 1 else None
        self.retries = self.gave_up = self.recovered = 0
        # the current trace row's lifetime, which its channels read
        self.trace_life = trace_life if trace_life is not None else TraceLifetime()
        self.requests = Requests() if spec.keepalive is not None else None
        self.pools: list[KeepAlivePool] = []
        # a load on a fleet (sim.fleet): arrivals pick a member, whose channels (and
        # keep-alive pools, one per member and destination) are built on first use
        self.members: MemberChannels | None = None
        self.member_pools: dict[tuple[int, int], KeepAlivePool] = {}
        if spec.keepalive is not None and targets and all(targets):
            # one per destination, over its source addresses
            self.pools = [KeepAlivePool(env, spec.keepalive, t, self) for t in targets]

    @property
    def pool_count(self) -> int:
        """Keep-alive pools this load has or may open: one per destination, and on a fleet
        one per member and destination."""
        if self.spec.keepalive is None:
            return 0
        members = self.members.count if self.members is not None else 1
        return len(self.targets) * members

    # -- arrivals ------------------------------------------------------------------------
    def arrive(self) -> None:
        """An arrival of a generated process: a destination by popularity."""
        self.dispatch(self.pick() if self.pick is not None else 0, None)

    def dispatch(self, target: int, life: float | None) -> None:
        """An arrival to ``targets[target]``; ``life`` is a trace row's lifetime if any."""
        if self.members is not None:
            self._dispatch_member(target, self.members.pick(), life)
            return
        if self.requests is not None:
            duration = life if life is not None else self.durations()
            self.pools[target].request(duration)
            return
        channels = self.targets[target]
        if len(channels) == 1:
            ch = channels[0]
        else:
            ch = channels[self.turn % len(channels)]
            self.turn += 1
        self.connect(ch, life, 1, None)

    def _dispatch_member(self, target: int, member: int, life: float | None) -> None:
        """An arrival to ``targets[target]`` from fleet member ``member``."""
        members = self.members
        if members is None:
            raise RuntimeError("not a load on a fleet")
        channels = members.channels(target, member)
        if self.requests is not None:
            pool = self.member_pools.get((target, member))
            if pool is None:
                keepalive = self.spec.keepalive
                if keepalive is None:
                    raise RuntimeError("requests without keep-alive")
                pool = KeepAlivePool(self.env, keepalive, channels, self)
                self.member_pools[target, member] = pool
                self.pools.append(pool)
            pool.request(life if life is not None else self.durations())
            return
        if len(channels) == 1:
            ch = channels[0]
        else:
            ch = channels[self.turn % len(channels)]
            self.turn += 1
        self.connect(ch, life, 1, None)

    # -- connect with retries ------------------------------------------------------------
    def connect(self, ch: Channel, life: float | None, n: int, then: Then | None) -> None:
        """Attempt ``n`` of a connect() on ``ch``; ``then(socket or None)`` once settled."""
        if life is not None:
            self.trace_life.value = life
        route = ch.route
        if route is not None:  # through a gateway: settled when its SYN gets through or not
            route.connect(partial(self._settled, ch, life, n, then))
            return
        self._settled(ch, life, n, then, ch.attempt())

    def _settled(
        self, ch: Channel, life: float | None, n: int, then: Then | None, sock: Socket | None
    ) -> None:
        """Attempt ``n`` on ``ch`` came out as ``sock`` (None: refused or timed out)."""
        if sock is None and self.backoff is not None:
            wait = self.backoff.delay(n) if n < self.backoff.attempts else math.inf
            if math.isfinite(wait):
                self.env.timeout(wait, (ch, life, n + 1, then)).callbacks.append(self._retry)
                return
            self.gave_up += 1  # the last attempt, or a wait past any float (no retry)
        elif sock is not None and n > 1:
            self.recovered += 1
        if then is not None:
            then(sock)

    def _retry(self, event) -> None:
        ch, life, n, then = event._value
        self.retries += 1
        self.connect(ch, life, n, then)


class TraceLifetime:
    """The lifetime of the trace row being replayed: the flow sets it before each attempt,
    the channels of a trace with lifetimes call it for their connection's lifetime."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def __call__(self) -> float:
        return self.value


def _no_durations() -> float:
    raise ValueError("request durations are drawn only by loads with keepalive")
