"""Linux port selection: connect() autoselect by kernel generation, bind(0), UDP autobind.

Each function is a pure function of (occupancy cells, request, state, rng): it returns the
chosen offset from ``lo`` and the probe count the kernel would have made, computed from
positions in the scan (``sim.ports.table``), never by walking ports in Python.

Sources (docs/sources.md; Linux 6.18 unless a generation says otherwise):
``net/ipv4/inet_hashtables.c`` (``__inet_hash_connect``),
``net/ipv4/inet_connection_sock.c`` (``inet_csk_find_open_port``) and ``net/ipv4/udp.c``
(``udp_lib_get_port``) for each kernel generation.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sim.ports.table import Layout, find_natural, find_ring
from sim.randomness import Stream

MASK32 = 0xFFFFFFFF
WINDOW_S = 10.0  # EPHEMERAL_PORT_SHUFFLE_PERIOD, 10*HZ (net/core/secure_seq.c)

# connect() generations (docs/sources.md, Linux generations)
GENERATIONS = {
    "G0": "<= 4.1: one global counter, step-1 scan (RFC 6056 Algorithm 3)",
    "G1": "4.2-4.5: global counter, even start offset, step-1 scan (07f4c90062f8)",
    "G2": "4.6-5.11: global counter, even pass then odd pass",
    "G3": "5.12-5.17: 256-entry perturbation table, 1/16 noise (RFC 6056 Algorithm 4)",
    "G4": "5.18+: 65536-entry table, 10 s re-salt, random 0-7 extra steps",
}


@dataclass(frozen=True)
class KernelProfile:
    """What a Linux version implies for the port model (docs/sources.md, Linux generations)."""

    version: tuple[int, int]
    generation: str
    per_socket_step1: bool  # IP_LOCAL_PORT_RANGE scans step 1 without parity (6.8+)
    bucket_reset: bool  # bind-bucket flags recomputed on release (6.18+)
    tw_delay_rule: str  # "s>1" (<= 4.17), "s>0" (4.18-6.13), "ms" (6.14+)
    default_range: tuple[int, int]
    default_tw_reuse: int

    @property
    def label(self) -> str:
        return f"Linux {self.version[0]}.{self.version[1]} ({self.generation})"


_VERSION = re.compile(r"^\s*(\d+)\.(\d+)")


def parse_kernel(text: str) -> tuple[int, int]:
    """``"6.18"``, ``"6.18.44-fc-v669"``, ``"5.15.0-91-generic"`` -> (major, minor)."""
    match = _VERSION.match(str(text))
    if not match:
        raise ValueError('not a kernel version such as "6.18" or "5.15.0-91-generic"')
    return int(match.group(1)), int(match.group(2))


def kernel_profile(kernel: str, generation: str | None = None) -> KernelProfile:
    """Map a mainline version to its behaviour; ``generation`` overrides connect() only.

    Distribution kernels backport the 2022 hardening (G4) to older numbers (5.17.9, 5.10.125,
    ... the stable backport versions are inferred, docs/sources.md); name the generation for those.
    """
    v = parse_kernel(kernel)
    # 07f4c90062f8 ("tcp/dccp: try to not exhaust ip_local_port_range in connect()", dated
    # 2015-05-24, after v4.1-rc1) is first in v4.2-rc1: even start offset and the default
    # range 32768-60999.  1580ab63fc9a (two parity passes, dated 2016-02-10, after
    # v4.5-rc1) is first in v4.6-rc1, so 4.2-4.5 are G1.
    if v < (4, 2):
        gen = "G0"
    elif v < (4, 6):
        gen = "G1"
    elif v < (5, 12):
        gen = "G2"
    elif v < (5, 18):
        gen = "G3"
    else:
        gen = "G4"
    if generation is not None:
        if generation not in GENERATIONS:
            raise ValueError(f"unknown Linux generation {generation!r}")
        gen = generation
    if v < (4, 18):
        rule = "s>1"
    elif v < (6, 14):
        rule = "s>0"
    else:
        rule = "ms"
    return KernelProfile(
        version=v,
        generation=gen,
        per_socket_step1=v >= (6, 8),
        bucket_reset=v >= (6, 18),
        tw_delay_rule=rule,
        default_range=(32768, 61000) if v < (4, 2) else (32768, 60999),
        default_tw_reuse=2 if v >= (4, 18) else 0,
    )


# --------------------------------------------------------------------------------------
# connect() autoselect
# --------------------------------------------------------------------------------------


class ConnectState:
    """Per-host state of connect() autoselect: secret, perturbation table or hint, phase.

    The table is per host here (one host = one machine); the kernel shares it across the
    namespaces of one machine (``table_perturb`` in
    net/ipv4/inet_hashtables.c; observation E18 in docs/sources.md).
    """

    __slots__ = ("_cache", "_hasher", "generation", "hint", "perturb", "phase", "secret", "stream")

    def __init__(self, generation: str, stream: Stream) -> None:
        self.generation = generation
        self.stream = stream
        self.secret = stream.rng.bytes(16)
        self.phase = stream.uniform() * WINDOW_S  # jiffies phase against the 10 s windows
        self.hint = 0  # G0-G2: one global counter, starts at 0
        bits = {"G3": 8, "G4": 16}.get(generation, 0)
        self.perturb: list[int] = (
            stream.rng.integers(0, 1 << 32, size=1 << bits, dtype="u8").tolist() if bits else []
        )
        self._cache: dict[object, tuple[int, int, int]] = {}
        self._hasher: Any = None  # hashlib's keyed blake2b, made on first use

    def hash64(self, key: object, window: int) -> int:
        hasher = self._hasher
        if hasher is None:  # keyed once: a copy of it then hashes like a fresh one
            hasher = self._hasher = hashlib.blake2b(digest_size=8, key=self.secret)
        h = hasher.copy()
        h.update(repr((key, window)).encode())
        return int.from_bytes(h.digest(), "little")

    def keyed(self, key: object, now: float) -> tuple[int, int]:
        """(index, addend) for a destination key: G4 re-salts every 10 s window.

        Cached per window, so the hash is computed once per destination per 10 s.
        """
        window = int((now + self.phase) // WINDOW_S) if self.generation == "G4" else 0
        cached = self._cache.get(key)
        if cached is not None and cached[0] == window:
            return cached[1], cached[2]
        h = self.hash64(key, window)
        if self.generation == "G4":
            idx, addend = h & 0xFFFF, h >> 32
        else:
            h32 = h & MASK32
            idx = ((h32 * 0x61C88647) & MASK32) >> 24 if self.generation == "G3" else 0
            addend = h32
        self._cache[key] = (window, idx, addend)
        return idx, addend


def _ring_same(n: int, t0: int) -> tuple[int, int]:
    """Steps visited by a pass over offsets a + 2t (same parity as a)."""
    if n == 1:
        return 0, 1
    half = (n + 1) // 2
    if n % 2 == 0:
        return 0, half
    return (1, half) if t0 > 0 else (0, half - 1)


def _two_pass(
    cells: bytearray, layout: Layout, a: int, n: int, t0: int, *, first_class_is_a: bool
) -> tuple[int, int, int]:
    """Scan both parities; returns (offset or -1, i of the winning pass, probes)."""
    same = (a, layout.segment(a) + (a >> 1), _ring_same(n, t0))
    other = (a + 1, layout.segment(a + 1) + ((a + 1) >> 1), (0, n // 2))
    passes: tuple[tuple[int, int, tuple[int, int]], ...]
    passes = (same, other) if first_class_is_a else (other, same)
    if n == 1:
        passes = passes[:1] if first_class_is_a else (same, same)
    probes = 0
    for first, base, (lo, hi) in passes:
        d = find_ring(cells, base, t0, lo, hi)
        if d >= 0:
            t = t0 + d if t0 + d < hi else lo + (d - (hi - t0))
            return first + 2 * t, 2 * d, probes + d + 1
        probes += hi - lo
    return -1, 0, probes


def select_connect(
    cells: bytearray,
    layout: Layout,
    state: ConnectState,
    key: object,
    now: float,
    sub: tuple[int, int] | None = None,
    step1: bool = False,
) -> tuple[int, int]:
    """connect() autoselect for one destination key; returns (offset or -1, probes).

    ``sub`` is a per-socket range (IP_LOCAL_PORT_RANGE) as offsets [a, b); ``step1`` is its
    6.8+ behaviour (single pass, step 1, no parity; commit 207184853dbd, E12).
    """
    gen = state.generation
    if gen == "G4" and sub is None and not layout.size & 1:
        return G4EvenScan(cells, layout.size, state, key).select(now)
    a, b = sub if sub is not None else (0, layout.size)
    n = b - a
    idx, addend = state.keyed(key, now)
    if gen in ("G0", "G1"):
        base = (state.hint + addend) & MASK32
        # G0: for i in 1..remaining: lo + (i + offset) % remaining; G1: even offset, i from 0
        k0 = a + (base + 1) % n if gen == "G0" else a + (base & ~1) % n
        k = find_natural(cells, layout, k0, a, b)
        if k < 0:
            return -1, n
        d = (k - k0) % n
        i = d + 1 if gen == "G0" else d
        state.hint = (state.hint + (i if gen == "G0" else (i + 2) & ~1)) & MASK32
        return k, d + 1
    if gen == "G4" and step1:
        perturb = state.perturb
        k0 = a + ((perturb[idx] + addend) & MASK32) % n
        k = find_natural(cells, layout, k0, a, b)
        if k < 0:
            return -1, n
        d = (k - k0) % n
        inc = max(d, int(state.stream.uniform() * 8))
        perturb[idx] = (perturb[idx] + inc + 1) & MASK32
        return k, d + 1
    remaining = n & ~1 if n > 1 else n
    if gen == "G2":
        offset = (((state.hint + addend) & MASK32) % remaining) & ~1
    else:
        offset = (((state.perturb[idx] + addend) & MASK32) % remaining) & ~1
    k, i, probes = _two_pass(cells, layout, a, n, offset >> 1, first_class_is_a=True)
    if k < 0:
        return -1, probes
    if gen == "G2":
        state.hint = (state.hint + i + 2) & MASK32
    elif gen == "G3":
        if i == 0 and int(state.stream.uniform() * 16) == 0:
            i = 2
        state.perturb[idx] = (state.perturb[idx] + i + 2) & MASK32
    else:
        i = max(i, 2 * int(state.stream.uniform() * 8))
        state.perturb[idx] = (state.perturb[idx] + i + 2) & MASK32
    return k, probes


class Scanner(Protocol):
    """What a channel keeps to choose its connect() ports: ``scanner.select(now)``."""

    def select(self, now: float) -> tuple[int, int]: ...


class SelectCall:
    """A scanner that is a plain function (``select`` is an instance slot)."""

    __slots__ = ("select",)

    def __init__(self, select: Callable[[float], tuple[int, int]]) -> None:
        self.select = select


def connect_selector(
    cells: bytearray,
    layout: Layout,
    state: ConnectState,
    key: object,
    sub: tuple[int, int] | None = None,
    step1: bool = False,
) -> Scanner:
    """``select_connect`` bound to one destination's pool, taking the hot path when it can:
    called once per load, so the per-connection call skips the dispatch.  The scanner
    itself rather than its bound method: a fleet's channel then keeps no method object to
    fetch from memory per connection (``channel.scanner.select(now)`` finds the method on
    the class)."""
    if state.generation == "G4" and sub is None and not layout.size & 1:
        return G4EvenScan(cells, layout.size, state, key)
    return SelectCall(lambda now: select_connect(cells, layout, state, key, now, sub, step1))


class G4EvenScan:
    """The hot path: G4 over a whole even-sized range for one destination key, both passes
    inlined.

    The same scan as ``_two_pass`` (checked against it and the kernel loop by the tests):
    with an even size both parities are clean rings of n/2 cells, evens first.  The key's
    (index, addend) is kept for its 10 s window (``ConnectState.keyed``, called when the
    window changes, computes and caches them for the host).
    """

    __slots__ = ("addend", "cells", "idx", "key", "n", "state", "window")

    def __init__(self, cells: bytearray, n: int, state: ConnectState, key: object) -> None:
        self.cells = cells
        self.n = n
        self.state = state
        self.key = key
        self.window = math.nan  # the 10 s window of idx and addend (a float: no int())
        self.idx = self.addend = 0

    def select(self, now: float) -> tuple[int, int]:
        state = self.state
        window = (now + state.phase) // WINDOW_S  # the window keyed() takes, as a float
        if window != self.window:
            self.idx, self.addend = state.keyed(self.key, now)
            self.window = window
        idx = self.idx
        cells = self.cells
        n = self.n
        perturb = state.perturb
        half = n >> 1
        t0 = (((perturb[idx] + self.addend) & MASK32) % n) >> 1
        found = cells.find(0, t0, half)
        if found >= 0:
            d = found - t0
            k = 2 * found
            probes = d + 1
        else:
            found = cells.find(0, 0, t0)
            if found >= 0:
                d = half - t0 + found
                k = 2 * found
                probes = d + 1
            else:
                found = cells.find(0, half + t0, n)
                if found < 0:
                    found = cells.find(0, half, half + t0)
                    if found < 0:
                        return -1, n
                    d = (half - t0) + (found - half)
                else:
                    d = found - half - t0
                k = 2 * (found - half) + 1
                probes = half + d + 1
        i = 2 * d
        extra = 2 * int(state.stream.uniform() * 8)
        perturb[idx] = (perturb[idx] + (i if i > extra else extra) + 2) & MASK32
        return k, probes


# --------------------------------------------------------------------------------------
# bind(addr, 0)
# --------------------------------------------------------------------------------------


def select_bind(
    cells: bytearray,
    layout: Layout,
    stream: Stream,
    reuseaddr: bool,
    sub: tuple[int, int] | None = None,
) -> tuple[int, int]:
    """bind(addr, 0), 4.6+ (``inet_csk_find_open_port``): fresh random odd offset, other
    parity first.

    ``SO_REUSEADDR`` sockets search the lower part [lo, mid) before the upper part
    (mid = lo + 2*floor(n/4)).  Returns (offset or -1, probes).
    """
    a, b = sub if sub is not None else (0, layout.size)
    halves = [(a, b)]
    if reuseaddr and b - a >= 4:
        mid = a + 2 * ((b - a) // 4)
        halves = [(a, mid), (mid, b)]
    probes = 0
    for lo, hi in halves:
        n = hi - lo
        remaining = n & ~1 if n > 1 else n
        offset = int(stream.uniform() * remaining) | 1
        k, _, p = _two_pass(cells, layout, lo, n, offset >> 1, first_class_is_a=False)
        probes += p
        if k >= 0:
            return k, probes
    return -1, probes


# --------------------------------------------------------------------------------------
# UDP autobind
# --------------------------------------------------------------------------------------


def select_udp(
    cells: bytearray, lo: int, hi: int, stream: Stream, hash_size: int
) -> tuple[int, int]:
    """UDP autobind (``udp_lib_get_port``): random start, chain by chain, no parity, no sharing.

    ``cells`` is indexed by port number (65536 cells; ports outside [lo, hi] are marked).
    Chains are ports congruent modulo ``hash_size``; chains are visited first, first+1, ...
    and within a chain ports in steps of an odd multiple of ``hash_size``.  When the range
    is no larger than ``hash_size`` this is a random start followed by a +1 linear probe.
    Returns (port or -1, probes): probes count in-range ports examined.
    """
    remaining = hi - lo + 1
    r = int(stream.uniform() * 4294967296.0)
    first = lo + ((r * remaining) >> 32)
    slots = hash_size
    rows = 65536 // slots
    stride = ((r | 1) * slots) & 0xFFFF
    c0 = first % slots
    best_d = -1
    for m in range(rows):  # a handful of rows (65536 / hash_size), not ports
        base = m * slots
        found = cells.find(0, base + c0, base + slots)
        if found >= 0:
            d = found - base - c0
        else:
            found = cells.find(0, base, base + c0)
            d = found - base + slots - c0 if found >= 0 else -1
        if d >= 0 and (best_d < 0 or d < best_d):
            best_d = d
    if best_d < 0:
        return -1, remaining
    snum = (first + best_d) & 0xFFFF
    probes = _in_range_before(lo, hi, slots, rows, c0, best_d)
    start = snum
    while True:  # at most `rows` members of one chain
        if lo <= snum <= hi:
            probes += 1
            if not cells[snum]:
                return snum, probes
        snum = (snum + stride) & 0xFFFF
        if snum == start:
            return -1, probes  # unreachable: the chain had a free member


def _in_range_before(lo: int, hi: int, slots: int, rows: int, c0: int, d: int) -> int:
    """In-range ports on the chains c0, c0+1, ... c0+d-1 (mod slots): the skipped probes."""
    if d == 0:
        return 0
    spans = [(c0, min(c0 + d, slots))]
    if c0 + d > slots:
        spans.append((0, c0 + d - slots))
    total = 0
    for m in range(rows):
        for c_lo, c_hi in spans:
            p_lo, p_hi = max(lo, m * slots + c_lo), min(hi + 1, m * slots + c_hi)
            if p_hi > p_lo:
                total += p_hi - p_lo
    return total
