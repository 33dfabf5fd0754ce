"""RFC 6056's five port-selection algorithms (other-systems.md §2.4).

1. random start, then linear probe;  2. a fresh random draw on every try (can fail with
ports free);  3. keyed hash of (laddr, raddr, rport) plus one global counter bumped on
every probe;  4. the same with a table of counters picked by a second hash;  5. one cursor
advanced by a random 1..N on every probe.  As in the RFC's pseudo-code the counters are
16-bit, so when the range size does not divide 65536 a scan jumps where they wrap
(§11.2).  No algorithm walks ports in Python: 1, 3 and 4 are runs of a natural scan
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


def hashed_scan(cells: bytearray, layout: Layout, base: int) -> tuple[int, int]:
    """Probe offsets ((base + i) mod 2^16) mod n for i = 0..n-1: the scan of algorithms 3
    and 4.  That is a natural scan from base mod n for as long as the 16-bit sum does not
    wrap, then one from offset 0."""
    n = layout.size
    first_run = min(n, 65536 - base)
    k0 = base % n
    k = find_natural(cells, layout, k0, 0, n)
    if k >= 0 and (k - k0) % n < first_run:
        return k, (k - k0) % n + 1
    if first_run < n:
        k = find_natural(cells, layout, 0, 0, n - first_run)
        if k >= 0:
            return k, first_run + k + 1
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

    def select(self, cells: bytearray, layout: Layout, key: object, now: float) -> tuple[int, int]:
        base = (_keyed16(self.secret, key) + self.counter) & MASK16
        k, probes = hashed_scan(cells, layout, base)
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

    def select(self, cells: bytearray, layout: Layout, key: object, now: float) -> tuple[int, int]:
        index = _keyed16(self.secret2, key) % len(self.table)
        base = (_keyed16(self.secret, key) + self.table[index]) & MASK16
        k, probes = hashed_scan(cells, layout, base)
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
