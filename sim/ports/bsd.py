"""BSD-family random starts: FreeBSD, OpenBSD and XNU's UDP, and FreeBSD's old throttle.

Sources (docs/sources.md): FreeBSD ``in_pcb_lport_dest`` (sys/netinet/in_pcb.c, main): a
fresh random start in [first, last - 1] on every call, the first probe is start + 1 (so
``first`` is reached only by wrapping), last - first + 1 probes, the cursor saved on
success; OpenBSD ``in_pcbpickport`` (sys/netinet/in_pcb.c), the same shape with its "bad
dynamic" ports skipped (they are reserved cells here, so they still cost a probe, as
``count`` does there); XNU ``in_pcbbind`` (bsd/netinet/in_pcb.c), the same for UDP.
FreeBSD 4.11-12 ``ipport_tick`` (sys/netinet/in_pcb.c, 12-era): a 1 Hz callout sets
``stoprandom = randomtime`` when more than ``randomcps`` allocations happened in the last
second, else counts it down; while it is non-zero TCP allocation is sequential from the cursor.
"""

from __future__ import annotations

import math

from sim.ports.table import Layout, find_natural
from sim.randomness import Stream


class BsdRandom:
    name = "bsd-random"
    error = "EADDRNOTAVAIL"

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.cursor = 0

    def _scan(self, cells: bytearray, layout: Layout, start: int) -> tuple[int, int]:
        n = layout.size
        k0 = (start + 1) % n
        k = find_natural(cells, layout, k0, 0, n)
        if k < 0:
            return -1, n
        self.cursor = k
        return k, (k - k0) % n + 1

    def select(self, cells: bytearray, layout: Layout, key: object, now: float) -> tuple[int, int]:
        n = layout.size
        start = self.stream.below(n - 1) if n > 1 else 0  # uniform in [first, last - 1]
        return self._scan(cells, layout, start)


class FreeBsdThrottle(BsdRandom):
    """Random starts, sequential while the allocation rate is above ``randomcps``/s."""

    name = "freebsd-throttle"

    def __init__(self, stream: Stream, randomcps: int, randomtime: int) -> None:
        super().__init__(stream)
        self.randomcps = randomcps
        self.randomtime = randomtime
        self.stoprandom = 0
        self.tick = 0  # the last 1 Hz callout applied (callouts at whole seconds)
        self.allocs = 0  # allocations since that callout
        self.sequential_allocs = 0  # how many allocations were made while throttled

    def _callouts(self, now: float) -> None:
        """Apply the callouts due by ``now`` lazily: the first sees the allocations of the
        past second, the rest saw none."""
        due = math.floor(now)
        if due <= self.tick:
            return
        if self.allocs > self.randomcps:
            self.stoprandom = self.randomtime
        else:
            self.stoprandom = max(0, self.stoprandom - 1)
        self.stoprandom = max(0, self.stoprandom - (due - self.tick - 1))
        self.tick = due
        self.allocs = 0

    @property
    def throttled(self) -> bool:
        return self.stoprandom > 0

    def select(self, cells: bytearray, layout: Layout, key: object, now: float) -> tuple[int, int]:
        self._callouts(now)
        self.allocs += 1  # counted per attempt, as tcpallocs is
        if self.stoprandom:
            self.sequential_allocs += 1
            return self._scan(cells, layout, self.cursor)
        return super().select(cells, layout, key, now)


class FreeBsdThrottledUdp(BsdRandom):
    """UDP beside the throttle: always random (``dorandom`` is true for UDP), but counted in
    ``tcpallocs`` all the same, a quirk of the 12-era code (FreeBSD 12 ``ipport_tick``)."""

    name = "freebsd-throttle"

    def __init__(self, stream: Stream, throttle: FreeBsdThrottle) -> None:
        super().__init__(stream)
        self.throttle = throttle

    def select(self, cells: bytearray, layout: Layout, key: object, now: float) -> tuple[int, int]:
        self.throttle._callouts(now)
        self.throttle.allocs += 1
        return super().select(cells, layout, key, now)
