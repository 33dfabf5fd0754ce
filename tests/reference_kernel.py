"""Naive transcriptions of the kernel's scan loops, as Linux 6.18 runs them (port by port).

These walk ports in Python on purpose: they are the slow, obviously-faithful reference
that the fast position-based policies in ``sim.ports.linux`` are checked against.
"""

from __future__ import annotations

from collections.abc import Callable

Usable = Callable[[int], bool]


def connect_scan(usable: Usable, lo: int, hi: int, seed32: int, per_sock: bool = False):
    """`__inet_hash_connect` (G2 and later): returns (port or None, i of the winning pass,
    probes)."""
    end = hi + 1
    remaining = end - lo
    step = 1 if per_sock else 2
    if not per_sock and remaining > 1:
        remaining &= ~1
    offset = seed32 % remaining
    if not per_sock:
        offset &= ~1
    probes = 0
    while True:
        port = lo + offset
        i = 0
        while i < remaining:
            if port >= end:
                port -= remaining
            probes += 1
            if usable(port):
                return port, i, probes
            i += step
            port += step
        if per_sock:
            break
        offset += 1
        if not (offset & 1 and remaining > 1):
            break
    return None, 0, probes


def connect_g0(usable: Usable, lo: int, hi: int, offset: int):
    """docs/sources.md G0: for i in 1..remaining: port = lo + (i + offset) % remaining."""
    remaining = hi - lo + 1
    for i in range(1, remaining + 1):
        port = lo + (i + offset) % remaining
        if usable(port):
            return port, i, i
    return None, 0, remaining


def connect_g1(usable: Usable, lo: int, hi: int, offset: int):
    """docs/sources.md G1: offset &= ~1; for i in 0..remaining-1: lo + (i + offset) % remaining."""
    remaining = hi - lo + 1
    offset &= ~1
    for i in range(remaining):
        port = lo + (i + offset) % remaining
        if usable(port):
            return port, i, i + 1
    return None, 0, remaining


def bind_scan(usable: Usable, lo: int, hi: int, draws: list[float], reuseaddr: bool):
    """`inet_csk_find_open_port` for one call (no autobind_reuse): returns (port or None, probes).

    ``draws`` are the uniform floats the model's stream hands out, one per half searched.
    """
    end = hi + 1
    halves = [(lo, end)]
    if reuseaddr and end - lo >= 4:
        mid = lo + 2 * ((end - lo) // 4)
        halves = [(lo, mid), (mid, end)]
    probes = 0
    for n, (a, b) in enumerate(halves):
        remaining = b - a
        if remaining > 1:
            remaining &= ~1
        offset = int(draws[n] * remaining) | 1
        for _ in (1, 2):
            port = a + offset
            for _i in range(0, remaining, 2):
                if port >= b:
                    port -= remaining
                probes += 1
                if usable(port):
                    return port, probes
                port += 2
            offset -= 1
    return None, probes


def udp_scan(usable: Usable, lo: int, hi: int, r: int, hash_size: int):
    """`udp_lib_get_port` with a given random32 ``r``: returns (port or None, in-range probes)."""
    remaining = hi - lo + 1
    first = lo + ((r * remaining) >> 32)
    stride = ((r | 1) * hash_size) & 0xFFFF
    probes = 0
    for _chain in range(hash_size):
        snum = first
        while True:
            if lo <= snum <= hi:
                probes += 1
                if usable(snum):
                    return snum, probes
            snum = (snum + stride) & 0xFFFF
            if snum == first:
                break
        first = (first + 1) & 0xFFFF
    return None, probes
