"""A wake-up call on SimPy's event queue, for the two per-connection events (the next
arrival, the end of a connection's lifetime).

It is what ``env.timeout(delay, value).callbacks.append(callback)`` schedules -- the same
(time, priority, id) entry in ``Environment._queue``, taking its id from the same counter,
so the order of events is SimPy's own -- without the Timeout constructor and the schedule
call, which cost more than the rest of an arrival.  ``Environment.step`` reads only
``callbacks``, ``_ok`` and ``_value`` of what it pops (SimPy 4.1); a WakeUp is an Event
subclass so that the queue holds Events only.
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heappush
from typing import Any

from simpy import Environment
from simpy.events import NORMAL, Event


class WakeUp(Event):
    """An Event made without ``Event.__init__``: SimPy's loop pops it and calls its one
    callback with it (``_value`` is the payload)."""


_new = object.__new__


def wake_up(env: Environment, delay: float, callback: Callable[[Any], None], value: Any) -> None:
    """Call ``callback(event)`` after ``delay`` (>= 0) with ``event._value = value``."""
    event = _new(WakeUp)
    event.callbacks = [callback]
    event._value = value
    event._ok = True
    heappush(env._queue, (env._now + delay, NORMAL, next(env._eid), event))
