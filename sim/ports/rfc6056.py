"""RFC 6056's five port-selection algorithms (RFC 6056 §3.3.1-§3.3.5).

1. random start, then linear probe;  2. a fresh random draw on every try (can fail with
ports free);  3. keyed hash of (laddr, raddr, rport) plus one global counter bumped on
every probe;  4. the same with a table of counters picked by a second hash;  5. one cursor
advanced by a random 1..N on every probe.

Algorithms 3 and 4 follow RFC 6056 §3.3.3 / §3.3.4 exactly: ``port = min_ephemeral +
(next_ephemeral + offset) % num_ephemeral`` then ``next_ephemeral++`` (algorithm 4:
``(offset + table[index]) % num_ephemeral`` then ``table[index]++``).  The counters are
16-bit ("short integers"; table entries start as ``random() % 65536``; NetBSD's
``portalgo.c`` ``algo_hash``/``algo_doublehash`` keep them in ``uint16_t``) and so is the
offset (NetBSD's ``Fhash`` returns ``uint16_t``), but the *sum* is not wrapped: in C the
two ``uint16_t`` operands are promoted to ``int``, so counter + offset (up to 131,070) is
taken modulo the range as is.  When the range size n does not divide 65536 the sequence
jumps only where the stored counter wraps from 65535 to 0: from (65535 + F) mod n to
F mod n.  No algorithm walks ports in Python: 1, 3 and 4 are runs of a natural scan
(``bytearray.find``), 2 draws its number of misses from the geometric law, 5 checks its
random steps in numpy batches.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

from sim.ports.table import Layout, find_natural
from sim.randomness import Stream

MASK16 = 0xFFFF


def _keyed16(secret: bytes, key: object) -> int:
    digest = hashlib.blake2b(repr(key).encode(), digest_size=4, key=secret).digest()
    return int.from_bytes(digest, "little") & MASK16


def hashed_scan(cells: bytearray, layout: Layout, counter: int, offset: int) -> tuple[int, int]:
    """Probe i (i = 0..n-1) examines ((counter + i) mod 2^16 + offset) mod n: the scan of
    algorithms 3 and 4 with a 16-bit counter and an unwrapped sum.  That is a natural scan
    from (counter + offset) mod n while the counter does not wrap, then, once it has gone
    from 65535 to 0, one from offset mod n for the probes left."""
    n = layout.size
    first_run = min(n, 65536 - counter)
    k0 = (counter + offset) % n
    k = find_natural(cells, layout, k0, 0, n)
    if k >= 0 and (k - k0) % n < first_run:
        return k, (k - k0) % n + 1
    rest = n - first_run
    if rest > 0:
        k1 = offset % n
        k = find_natural(cells, layout, k1, 0, n)
        if k >= 0 and (k - k1) % n < rest:
            return k, first_run + (k - k1) % n + 1
    return -1, n


class RandomStart:
    """Algorithm 1: ``cand = lo + random() % n``, then cand, cand + 1, ... with wrap."""

    name = "rfc6056-1"
    error = "EADDRNOTAVAIL"

    def __init__(self, stream: Stream) -> None:
        self.stream = stream

    def select(self, cells: bytearray, layout: Layout, key: object, now: float) -> tuple[int, int]:
        n = layout.size
        k0 = self.stream.below(n)
        k = find_natural(cells, layout, k0, 0, n)
        return (k, (k - k0) % n + 1) if k >= 0 else (-1, n)


class RandomPick:
    """Algorithm 2: up to n independent uniform draws; fails if all of them are busy."""

    name = "rfc6056-2"
    error = "EADDRNOTAVAIL"
    QUICK = 16  # draws tried one by one before switching to the geometric shortcut

    def __init__(self, stream: Stream) -> None:
        self.stream = stream

    def select(self, cells: bytearray, layout: Layout, key: object, now: float) -> tuple[int, int]:
        n = layout.size
        evens = (n + 1) >> 1
        below = self.stream.below
        for draw in range(1, min(self.QUICK, n) + 1):
            k = below(n)
            if not cells[(k & 1) * evens + (k >> 1)]:
                return k, draw
        draws = min(self.QUICK, n)
        free = cells.count(0)
        if not free or draws >= n:
            return -1, n
        # the further misses before a hit are geometric(free / n); the hit is uniform
        # over the free ports: the same law as drawing on, without the loop
        p = free / n
        misses = 0 if p >= 1 else math.floor(math.log1p(-self.stream.uniform()) / math.log1p(-p))
        if draws + misses >= n:
            return -1, n
        free_cells = np.flatnonzero(np.frombuffer(cells, dtype=np.uint8) == 0)
        cell = int(free_cells[below(free)])
        k = 2 * cell if cell < evens else 2 * (cell - evens) + 1
        return k, draws + misses + 1


class HashCounter:
    """Algorithm 3: offset F(laddr, raddr, rport, secret) plus one global 16-bit counter,
    incremented on every probe, success or not."""

    name = "rfc6056-3"
    error = "EADDRNOTAVAIL"

    def __init__(self, stream: Stream) -> None:
        self.secret = stream.rng.bytes(16)
        self.counter = stream.below(65536)  # "may be randomly initialised at boot"

    def offset(self, key: object) -> int:
        """F(local_IP, remote_IP, remote_port, secret_key), 16 bits."""
        return _keyed16(self.secret, key)

    def select(self, cells: bytearray, layout: Layout, key: object, now: float) -> tuple[int, int]:
        k, probes = hashed_scan(cells, layout, self.counter, self.offset(key))
        self.counter = (self.counter + probes) & MASK16
        return k, probes


class DoubleHash:
    """Algorithm 4: a table of ``table_size`` counters; a second keyed hash picks one."""

    name = "rfc6056-4"
    error = "EADDRNOTAVAIL"

    def __init__(self, stream: Stream, table_size: int) -> None:
        self.secret = stream.rng.bytes(16)
        self.secret2 = stream.rng.bytes(16)
        self.table = [stream.below(65536) for _ in range(table_size)]

    def offset(self, key: object) -> int:
        """F(local_IP, remote_IP, remote_port, secret_key1), 16 bits."""
        return _keyed16(self.secret, key)

    def index(self, key: object) -> int:
        """G(local_IP, remote_IP, remote_port, secret_key2) % TABLE_LENGTH."""
        return _keyed16(self.secret2, key) % len(self.table)

    def select(self, cells: bytearray, layout: Layout, key: object, now: float) -> tuple[int, int]:
        index = self.index(key)
        k, probes = hashed_scan(cells, layout, self.table[index], self.offset(key))
        self.table[index] = (self.table[index] + probes) & MASK16
        return k, probes


class RandomIncrements:
    """Algorithm 5: ``next += 1 + random() % N`` before each probe; ``cand = lo + next % n``."""

    name = "rfc6056-5"
    error = "EADDRNOTAVAIL"
    BATCH = 64

    def __init__(self, stream: Stream, increment_max: int) -> None:
        self.rng = stream.rng
        self.increment_max = increment_max
        self.next = stream.below(65536)

    def select(self, cells: bytearray, layout: Layout, key: object, now: float) -> tuple[int, int]:
        n = layout.size
        evens = (n + 1) >> 1
        occupied = np.frombuffer(cells, dtype=np.uint8)
        probes = 0
        while probes < n:
            batch = min(self.BATCH, n - probes)
            steps = 1 + self.rng.integers(0, self.increment_max, batch)
            positions = (self.next + np.cumsum(steps)) & MASK16
            ks = positions % n
            free = occupied[(ks & 1) * evens + (ks >> 1)] == 0
            hit = int(np.argmax(free))
            if free[hit]:
                self.next = int(positions[hit])
                return int(ks[hit]), probes + hit + 1
            self.next = int(positions[-1])
            probes += batch
        return -1, n
