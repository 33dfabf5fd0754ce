"""Sequential cursors: classic BSD counting up (ns-3, OMNeT++ INET, XNU TCP, Windows) and
NetBSD's default counting down.

Sources (docs/sources.md): FreeBSD ``in_pcb_lport_dest`` (sys/netinet/in_pcb.c), ns-3
``Ipv4EndPointDemux::AllocateEphemeralPort`` and INET ``Tcp::getEphemeralPort`` for the BSD
convention that the first probe is cursor + 1 (ns-3 hands out 49153 first, INET 1025);
NetBSD sys/netinet/portalgo.c for its "bsd" algorithm (``p = cursor if in range else hi;
cursor = p - 1``); Microsoft, "Troubleshoot port exhaustion issues", for Windows (a
sequential global cursor is inferred: Microsoft documents no order).
"""

from __future__ import annotations

from sim.ports.table import Layout, find_down, find_natural


class SequentialUp:
    """cursor + 1, +1 ..., wrapping to the first port; the cursor stays on the port found."""

    name = "sequential"
    error = "EADDRNOTAVAIL"

    def __init__(self, first: int = 1) -> None:
        self.cursor = first - 1  # the last port handed out: the first probe is cursor + 1

    def select(self, cells: bytearray, layout: Layout, key: object, now: float) -> tuple[int, int]:
        n = layout.size
        k0 = (self.cursor + 1) % n
        k = find_natural(cells, layout, k0, 0, n)
        if k < 0:
            return -1, n
        self.cursor = k
        return k, (k - k0) % n + 1


class SequentialDown:
    """NetBSD "bsd": from the cursor (initially the top port) downwards, cursor = port - 1."""

    name = "sequential-down"
    error = "EAGAIN"  # portalgo.c returns EAGAIN for this algorithm (NetBSD sys/netinet/portalgo.c)

    def __init__(self, size: int) -> None:
        self.cursor = size - 1

    def select(self, cells: bytearray, layout: Layout, key: object, now: float) -> tuple[int, int]:
        n = layout.size
        k0 = self.cursor if 0 <= self.cursor < n else n - 1
        k = find_down(cells, layout, k0, 0, n)
        if k < 0:
            return -1, n
        self.cursor = k - 1
        return k, (k0 - k) % n + 1
