"""The bits of an occupancy cell: one byte per port, one bit per reason it is unusable.

A port is usable for an allocation when its cell in the relevant map is 0; several reasons
can hold one port at once and each is released on its own (``Pool.take`` / ``Pool.give``).
Every bit any map uses is defined here, so no two meanings share a bit by accident.
"""

from __future__ import annotations

# destination pools (connect() to one remote address and port, from one local address)
BUSY = 1  # the 4-tuple is established, or in TIME_WAIT and not reusable
BLOCKED = 2  # reserved, listening, or the bind bucket holds an explicit binder
TW_BIT = 4  # the 4-tuple is in TIME_WAIT (Windows forced reuse looks for these)

# bind pools (bind(addr, 0) on one local address)
OWNED = 1  # at least one socket owns the port on this local address
STATIC = BLOCKED  # reserved or listening: never handed out

# the Linux UDP map (indexed by port number, 0..65535)
UDP_STATIC = 2  # outside the range, reserved or listening

# Windows forced reuse: the host's map of ports by live connection
LIVE = 1  # a live (not TIME_WAIT) connection holds the port
EXCLUDED = 2  # never reused by force (reserved or listening)

# bytes.translate() table: 0 where a cell has TW_BIT, 1 elsewhere
NOT_TIME_WAIT = bytes(0 if b & TW_BIT else 1 for b in range(256))
