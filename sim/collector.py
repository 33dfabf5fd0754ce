"""CPython's cyclic garbage collector and a run: full collections held back, nothing left.

CPython (3.11, ``Modules/gcmodule.c``; the ``gc`` module's documentation, "gc.set_threshold")
collects the oldest generation when ``threshold2`` collections of the middle one have
happened *and* the objects promoted into the oldest since the last full collection exceed
25 % of it.  A run keeps every connection it holds (a socket, its close event, its TIME_WAIT
entry, a gateway's mapping) alive for its lifetime plus TIME_WAIT, long enough to reach the
oldest generation, and each full collection traverses them all again while finding no
garbage among them (the model frees what it drops by reference counting; the young
generations still collect any short-lived cycle).

Two measures, neither changing any output:

* :func:`full_collections_held` raises ``threshold2`` while a run and its summary are
  built, and restores the process's setting afterwards.
* ``sim.engine.run`` then takes the model apart (``Model.dismantle``): every connection's
  objects, then the attributes of hosts, channels, gateways and the rest
  (:func:`clear_attributes`).  The model is one large cycle, so without it everything a
  run held would wait for the next full collection, in whatever the process does next,
  and back-to-back runs (a sweep) would pile up until then: measured on
  ``benchmarks/throughput.py``'s 1,000-pod node (100,000 connections), that collection
  found 383,000 objects and took 0.69 s, against about 3 s for the run itself, and each
  further run added 93 MB to the process.  Taken apart, a run leaves nothing for the
  collector (``tests/test_collector.py``) and memory stays flat between runs.
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


def clear_attributes(obj: object) -> None:
    """Drop every attribute of ``obj`` (its ``__dict__`` and its slots): what it referred
    to goes unless something else holds it, cycles through ``obj`` included."""
    attributes = getattr(obj, "__dict__", None)
    if attributes is not None:
        attributes.clear()
    for cls in type(obj).__mro__:
        for name in getattr(cls, "__slots__", ()):
            if name != "__dict__" and hasattr(obj, name):
                object.__delattr__(obj, name)
