"""A socket's state from a successful attempt to the end of TIME_WAIT, shared by the host
(``sim.host``) that moves it between states and the channel (``sim.channel``) that owns it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sim.channel import Channel
    from sim.nat.base import Mapping
    from sim.ports.table import Pool

ESTABLISHED, TIME_WAIT, TW_REUSABLE, CLOSED = 1, 2, 3, 0


class Socket:
    """One connection's state; lives from a successful attempt to the end of TIME_WAIT.

    Created with ``object.__new__`` and its slots set in ``Host._established`` (half the
    cost of an ``__init__`` call, once per connection)."""

    # ``mapping``: set only for connections through a gateway (sim.nat.route); ``until``:
    # when its TIME_WAIT ends, set as it enters TIME_WAIT (its host's queues hold the
    # socket itself: no (end, socket) tuple per connection)
    __slots__ = ("cell", "explicit", "k", "load", "mapping", "pool", "state", "until")

    cell: int
    explicit: bool
    k: int
    load: Channel
    mapping: Mapping
    pool: Pool
    state: int
    until: float
