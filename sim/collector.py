"""CPython's cyclic garbage collector during a run: full collections held back.

CPython (3.11, ``Modules/gcmodule.c``; the ``gc`` module's documentation, "gc.set_threshold")
collects the oldest generation when ``threshold2`` collections of the middle one have
happened *and* the objects promoted into the oldest since the last full collection exceed
25 % of it.  A run keeps every connection it holds (a socket, its close event, its TIME_WAIT
entry) alive for its lifetime plus TIME_WAIT, long enough to reach the oldest generation: a
fleet of 1,000 members at 1,000 connects/s holds ~65,000 at once, each of them and every
member's objects traversed again at each full collection: ~30 % of such a run's CPU time,
measured with ``gc.callbacks``, and no garbage found by them (the model frees what it drops
by reference counting; the young generations still collect any short-lived cycle).

:func:`full_collections_held` raises ``threshold2`` for the duration of a run and restores
the process's setting afterwards; it changes no output, only when memory is reclaimed.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

# middle-generation collections between full ones during a run (CPython's default is 10):
# with 700 and 10 for the younger two, one full collection per ~70 M net allocations
HELD_THRESHOLD2 = 10_000


@contextmanager
def full_collections_held() -> Iterator[None]:
    """Full collections held back while the block runs; the previous thresholds after."""
    old = gc.get_threshold()
    gc.set_threshold(old[0], old[1], max(old[2], HELD_THRESHOLD2))
    try:
        yield
    finally:
        gc.set_threshold(*old)
