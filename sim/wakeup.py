"""A wake-up call on SimPy's event queue, for the two per-connection events (the next
arrival, the end of a connection's lifetime).

It is what ``env.timeout(delay, value).callbacks.append(callback)`` schedules -- the same
(time, priority, id) entry in ``Environment._queue``, taking its id from the same counter,
so the order of events is SimPy's own -- without the Timeout constructor and the schedule
call, which cost more than the rest of an arrival.  The callers push the entry themselves
(``heappush(env._queue, (env._now + delay, NORMAL, next(env._eid), wake))``): a function
call per connection is part of what this saves.
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heappush
from typing import TYPE_CHECKING, Any

from simpy.events import NORMAL

if TYPE_CHECKING:
    from simpy import Environment

if TYPE_CHECKING:  # SimPy's queue is typed as holding Events: a WakeUp stands in for one
    from simpy.events import Event as _QueueEntry
else:
    _QueueEntry = object


class WakeUp(_QueueEntry):
    """What ``Environment.step`` reads from a queued event (SimPy 4.1): ``callbacks``
    (called with the event, then set to None), ``_ok`` and, for the callbacks, ``_value``.

    Not an Event subclass: an Event carries an instance dict, whose allocation (and the
    garbage collector's tracking of it) cost more than the rest of the object, once per
    connection.  The callbacks list may be shared by many wake-ups (SimPy only iterates it).
    """

    __slots__ = ("_ok", "_value", "callbacks")


def shared_callbacks(callback: Callable[[Any], None]) -> list[Callable[[Any], None]]:
    """The callbacks list for every wake-up of one kind: made once, not per connection
    (SimPy only iterates it, and replaces the event's reference with None)."""
    return [callback]


def wake_up(env: Environment, delay: float, callback: Callable[[Any], None], value: Any) -> None:
    """Call ``callback`` with a wake-up carrying ``value`` after ``delay``, as
    ``env.timeout(delay, value).callbacks.append(callback)`` would: for the rarer events
    (a gateway's SYN retransmission timers, ``sim.nat.route``), where a fresh callbacks
    list per call is fine."""
    event = object.__new__(WakeUp)
    event.callbacks = [callback]
    event._value = value
    event._ok = True
    heappush(env._queue, (env._now + delay, NORMAL, next(env._eid), event))
