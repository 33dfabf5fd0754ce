"""Who holds which port: occupancy maps that answer "next usable port" at C speed.

Every map is a ``bytearray`` with one cell per port of the host's range, stored in *parity
layout*: the ports whose offset from ``lo`` is even come first, then the odd ones.  A kernel
scan that steps by two over one parity is then a contiguous run of cells, so "next usable
port of this parity at or after offset j, circularly" is one or two ``bytearray.find(0)``
calls (memchr) and never a Python loop over ports.  A cell is 0 when the port is usable.

This module knows no OS policy; ``sim.ports.linux`` and friends express their scan orders
with :func:`find_ring` and :func:`find_natural`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sim.ports.cells import BLOCKED, OWNED, STATIC

if TYPE_CHECKING:
    from sim.metrics import PortUse
    from sim.sockets import Socket


@dataclass(frozen=True, slots=True)
class Layout:
    """Parity layout of a range of ``size`` ports: cell of offset k = (k & 1) * evens + k >> 1."""

    size: int

    @property
    def evens(self) -> int:
        return (self.size + 1) // 2

    def cell(self, k: int) -> int:
        return (k & 1) * ((self.size + 1) >> 1) + (k >> 1)

    def offset(self, cell: int) -> int:
        evens = (self.size + 1) >> 1
        return 2 * cell if cell < evens else 2 * (cell - evens) + 1

    def segment(self, first_offset: int) -> int:
        """Cell index where the parity run containing ``first_offset`` starts its j = k >> 1."""
        return (first_offset & 1) * ((self.size + 1) >> 1)


def find_ring(cells: bytearray, base: int, t0: int, lo: int, hi: int) -> int:
    """Scan cells ``base+t`` for t in [t0, hi) then [lo, t0); return the scan distance or -1.

    This is one pass of a kernel scan that steps by two: ``base`` is the cell of t = 0, the
    ring [lo, hi) is the set of steps the pass can visit.  The distance is the number of
    cells examined before the usable one, so probes = distance + 1.
    """
    found = cells.find(0, base + t0, base + hi)
    if found >= 0:
        return found - base - t0
    if t0 > lo:
        found = cells.find(0, base + lo, base + t0)
        if found >= 0:
            return (hi - t0) + (found - base - lo)
    return -1


def find_natural(cells: bytes | bytearray, layout: Layout, k0: int, a: int, b: int) -> int:
    """First usable offset in natural (step 1) circular order over [a, b) from k0, or -1.

    Used by step-1 scans (old kernels, Linux's per-socket range, BSD-style sequential
    policies): the next usable port is the nearer of the next usable even and odd offsets.
    """
    best = _next_natural(cells, layout, k0, b)
    if best < 0 and k0 > a:
        best = _next_natural(cells, layout, a, k0)
    return best


def _next_natural(cells: bytes | bytearray, layout: Layout, start: int, stop: int) -> int:
    """Smallest usable offset in [start, stop) without wrapping, or -1."""
    return _edge_natural(cells, layout, start, stop, last=False)


def _edge_natural(
    cells: bytes | bytearray, layout: Layout, start: int, stop: int, *, last: bool
) -> int:
    """Smallest (or, with ``last``, largest) usable offset in [start, stop), or -1: one
    find per parity run, even offsets 2j and odd offsets 2j + 1 in range."""
    if start >= stop:
        return -1
    evens = (layout.size + 1) >> 1
    find = cells.rfind if last else cells.find
    candidates = []
    j_lo, j_hi = (start + 1) >> 1, (stop + 1) >> 1
    if j_lo < j_hi:
        found = find(0, j_lo, j_hi)
        if found >= 0:
            candidates.append(2 * found)
    j_lo, j_hi = start >> 1, stop >> 1
    if j_lo < j_hi:
        found = find(0, evens + j_lo, evens + j_hi)
        if found >= 0:
            candidates.append(2 * (found - evens) + 1)
    if not candidates:
        return -1
    return max(candidates) if last else min(candidates)


def _marking(bits: int) -> bytes:
    """A ``bytes.translate`` table: 0 stays 0, any other cell becomes ``bits`` (a map
    built from another at C speed, not by a loop over ports)."""
    return bytes([0]) + bytes([bits]) * 255


class OccupancyMap:
    """A per-port map with a count of unusable cells, updated in O(1).

    Each cell is a small bit set, so that several reasons (busy to this destination, blocked
    by an explicit bind, reserved) can hold one port at once and be released independently.
    """

    __slots__ = ("cells", "layout", "unusable")

    def __init__(
        self,
        layout: Layout,
        template: bytes | bytearray | None = None,
        unusable: int | None = None,
    ) -> None:
        """``unusable``: the template's count of nonzero cells, when the caller knows it (a
        fleet builds many maps from one template: counting 28,000 cells each time shows)."""
        self.layout = layout
        self.cells = bytearray(template) if template is not None else bytearray(layout.size)
        self.unusable = layout.size - self.cells.count(0) if unusable is None else unusable


class Pool(OccupancyMap):
    """An occupancy map that also integrates its unusable count over time.

    One pool per destination 4-tuple prefix for connect() autoselect, one per local address
    for bind(0) and one for UDP.  ``area`` / elapsed time gives the time-weighted mean.
    """

    __slots__ = (
        "area",
        "established",
        "label",
        "max_ever",
        "max_time",
        "peak",
        "t_last",
        "time_wait",
        "tw_reusable",
        "use",
    )

    def __init__(
        self,
        layout: Layout,
        label: str,
        template: bytes | bytearray | None = None,
        unusable: int | None = None,
    ) -> None:
        super().__init__(layout, template, unusable)
        self.label = label
        self.established = 0
        self.time_wait = 0
        self.area = 0.0
        self.t_last = 0.0
        # TIME_WAIT entries reusable now, by cell (None until the first: most pools never
        # have one, and an empty dict would be one more object to fetch per connection)
        self.tw_reusable: dict[int, Socket] | None = None
        self.use: PortUse | None = None  # a tracked destination pool: sim.metrics.PortUse
        self.peak = self.unusable  # highest unusable count in the current time bin
        self.max_ever = self.unusable
        self.max_time = 0.0

    def take(self, cell: int, bits: int, now: float) -> None:
        """(``BindMap.take`` is this without the time integral: keep alike.)"""
        old = self.cells[cell]
        if not old:
            u = self.unusable
            self.area += u * (now - self.t_last)
            self.t_last = now
            u += 1
            self.unusable = u
            if u > self.peak:
                self.peak = u
                if u > self.max_ever:
                    self.max_ever = u
                    self.max_time = now
        self.cells[cell] = old | bits

    def give(self, cell: int, bits: int, now: float) -> None:
        old = self.cells[cell]
        new = old & ~bits
        self.cells[cell] = new
        if old and not new:
            self.area += self.unusable * (now - self.t_last)
            self.t_last = now
            self.unusable -= 1

    def mean_unusable(self, now: float) -> float:
        if now <= 0:
            return float(self.unusable)
        return (self.area + self.unusable * (now - self.t_last)) / now


class BindMap(Pool):
    """A pool whose time-weighted mean nobody reads: the bind maps of a host whose connect()
    scope is the 4-tuple, which reports its destination pools (``Host.pools``).  Its takes
    and gives skip the time integral: two boxed floats less to update, and to fetch from
    memory, on each (a fleet's member makes two per connection).  Its level and peaks are
    kept as a pool's."""

    __slots__ = ()

    def take(self, cell: int, bits: int, now: float) -> None:
        old = self.cells[cell]
        if not old:
            u = self.unusable + 1
            self.unusable = u
            if u > self.peak:
                self.peak = u
                if u > self.max_ever:
                    self.max_ever = u
                    self.max_time = now
        self.cells[cell] = old | bits

    def give(self, cell: int, bits: int, now: float) -> None:
        old = self.cells[cell]
        new = old & ~bits
        self.cells[cell] = new
        if old and not new:
            self.unusable -= 1

    def mean_unusable(self, now: float) -> float:
        raise RuntimeError("a 4-tuple-scope host's bind map keeps no time integral")


class TableConnectionSlots:
    """The slots of :class:`PortTable` that every connection reads, first in memory (see
    ``sim.host.HostConnectionSlots``): a fleet member's table is touched rarely.  (Slots
    rather than a ``__dict__``, which would be one more object to fetch on each touch;
    ``shared`` is :class:`SparsePortTable`'s.)"""

    __slots__ = (
        "bind_pool",
        "blocked",
        "evens",
        "owners",
        "shared",
    )


class PortTable(TableConnectionSlots):
    """One host's (network namespace's) ports: owners, bind buckets, per-destination pools.

    * ``owners[k]``: sockets holding port lo+k (connections, TIME_WAIT entries, explicit
      binders), shared across destinations under 4-tuple uniqueness (``__inet_hash_connect``).
    * ``explicit[k]``: owners that came from bind(); while a bucket holds one, connect()
      autoselect skips the port on every destination (``__inet_hash_connect``, E7).  Kernels before
      6.18 keep the bucket blocked until *all* owners are gone; 6.18 unblocks it when only
      connect-autobound owners remain (commit d57f4b874946, 6.18, E8): ``reset_on_release``.
    * one :class:`Pool` per destination key (local address, remote address, remote port)
      for connect(); one bind pool (ports with any owner) for bind(0).
    """

    __slots__ = (
        "addr_pools",
        "blocked_unusable",
        "dynamic_blocked",
        "explicit",
        "hi",
        "layout",
        "listening",
        "lo",
        "pools",
        "reserved",
        "reset_on_release",
        "size",
        "static",
    )

    def __init__(
        self,
        lo: int,
        hi: int,
        *,
        reserved: frozenset[int] = frozenset(),
        listening: frozenset[int] = frozenset(),
        reset_on_release: bool = True,
        bind_class: type[Pool] = Pool,
    ) -> None:
        """``bind_class``: :class:`BindMap` when the host reports only its destination
        pools (4-tuple scope)."""
        if not 1 <= lo <= hi <= 65535:
            raise ValueError(f"bad port range {lo}-{hi}")
        self.lo, self.hi = lo, hi
        self.size = hi - lo + 1
        self.layout = Layout(self.size)
        self.evens = self.layout.evens
        self.reset_on_release = reset_on_release
        self.owners = [0] * self.size
        self.explicit = [0] * self.size
        self.static = bytearray(self.size)  # reserved or listening, by cell
        for port in reserved | listening:
            if lo <= port <= hi:
                self.static[self.layout.cell(port - lo)] = 1
        self.listening = frozenset(listening)
        self.reserved = frozenset(reserved)
        self.blocked = self.static.translate(_marking(BLOCKED))  # connect template
        self.blocked_unusable = self.size - self.blocked.count(0)  # kept by _block, _unblock
        self.pools: dict[tuple[str | None, str, int], Pool] = {}  # by (source, ip, port)
        self.dynamic_blocked = 0  # ports blocked by explicit binders (not reserved/listening)
        self.bind_pool = bind_class(self.layout, "bind", self.static.translate(_marking(STATIC)))
        self.addr_pools = [self.bind_pool]  # per local address: ports with an owner on it

    # -- pools ---------------------------------------------------------------------------
    def pool(self, key: tuple[str | None, str, int], label: str) -> Pool:
        """The connect() pool for a destination key, created from the blocked template."""
        pool = self.pools.get(key)
        if pool is None:
            pool = self.pools[key] = Pool(self.layout, label, self.blocked, self.blocked_unusable)
        return pool

    # -- ownership -----------------------------------------------------------------------
    def owner_count(self, k: int) -> int:
        """Sockets holding port lo+k now (connections, TIME_WAIT entries, binders)."""
        return self.owners[k]

    def take(self, k: int, now: float, addr: int = 0) -> int:
        """A connect-autobound owner joins port lo+k (from local address number ``addr``);
        returns its cell."""
        cell = (k & 1) * self.evens + (k >> 1)  # Layout.cell, inlined: once per connection
        n = self.owners[k]
        self.owners[k] = n + 1
        if not n:
            self.bind_pool.take(cell, OWNED, now)
        return cell

    def release(self, k: int, now: float, addr: int = 0) -> None:
        """A connect-autobound owner leaves port lo+k."""
        n = self.owners[k] - 1
        self.owners[k] = n
        if not n:
            cell = (k & 1) * self.evens + (k >> 1)
            self.bind_pool.give(cell, OWNED, now)
            if self.blocked[cell] and not self.static[cell]:
                self._unblock(cell, now)  # pre-6.18 bucket kept its flags until empty

    def take_explicit(self, k: int, now: float, addr: int = 0) -> int:
        """An explicit binder joins port lo+k: the bucket now blocks connect() autoselect
        from every local address (the bucket is per port, ``__inet_hash_connect``)."""
        cell = self.take(k, now, addr)
        self.explicit[k] += 1
        if not self.blocked[cell]:
            self._block(cell, now)
        return cell

    def release_explicit(self, k: int, now: float, addr: int = 0) -> None:
        self.explicit[k] -= 1
        cell = self.layout.cell(k)
        if (
            self.reset_on_release
            and not self.explicit[k]
            and self.owners[k] > 1
            and not self.static[cell]
        ):
            self._unblock(cell, now)
        self.release(k, now, addr)

    def _block(self, cell: int, now: float) -> None:
        # A loop over destinations (not ports): explicit binds are rare next to connects.
        self.blocked[cell] = BLOCKED
        self.dynamic_blocked += 1
        self.blocked_unusable += 1
        for pool in self.pools.values():
            pool.take(cell, BLOCKED, now)

    def _unblock(self, cell: int, now: float) -> None:
        self.blocked[cell] = 0
        self.dynamic_blocked -= 1
        self.blocked_unusable -= 1
        for pool in self.pools.values():
            pool.give(cell, BLOCKED, now)


class MultiAddressTable(PortTable):
    """A host with several local addresses.  The bind bucket (owners, explicit binders) is
    per port as before; what bind(addr, 0) must avoid is per address: a port owned only
    from another local address does not conflict (``inet_csk_bind_conflict``, E6b), and
    systems whose uniqueness scope is the local address share a port across their addresses."""

    __slots__ = ("addr_owners",)

    def __init__(self, lo: int, hi: int, *, addresses: int, **options) -> None:
        super().__init__(lo, hi, **options)
        template = self.bind_pool.cells
        bind_class = type(self.bind_pool)
        self.addr_pools = [bind_class(self.layout, f"bind {i}", template) for i in range(addresses)]
        self.addr_owners = [[0] * self.size for _ in range(addresses)]

    def take(self, k: int, now: float, addr: int = 0) -> int:
        cell = super().take(k, now)
        owners = self.addr_owners[addr]
        n = owners[k]
        owners[k] = n + 1
        if not n:
            self.addr_pools[addr].take(cell, OWNED, now)
        return cell

    def release(self, k: int, now: float, addr: int = 0) -> None:
        owners = self.addr_owners[addr]
        n = owners[k] - 1
        owners[k] = n
        if not n:
            self.addr_pools[addr].give(self.layout.cell(k), OWNED, now)
        super().release(k, now)


def port_table(lo: int, hi: int, *, addresses: int = 1, **options) -> PortTable:
    """The port table of a host with ``addresses`` local addresses."""
    if addresses > 1:
        return MultiAddressTable(lo, hi, addresses=addresses, **options)
    return PortTable(lo, hi, **options)


def find_down(cells: bytearray, layout: Layout, k0: int, a: int, b: int) -> int:
    """First usable offset in descending circular order over [a, b) from k0, or -1."""
    best = _edge_natural(cells, layout, a, k0 + 1, last=True)
    if best < 0 and k0 + 1 < b:
        best = _edge_natural(cells, layout, k0 + 1, b, last=True)
    return best


class SparsePortTable(PortTable):
    """A fleet member's port table: the reserved and blocked templates shared with the
    fleet's first member until this member binds explicitly (copy on write), so a member
    costs memory for its bind map, one map per destination it talks to and the ports it
    shares (``sim.fleet``).  Same answers as :class:`PortTable`.

    A port's first owner is its OWNED bit in the bind map; ``owners`` counts only the
    ports with more than one (a port used towards several destinations at once), so a
    member talking to one destination never touches a dict per connection: a fleet's
    members are many and each is touched rarely, so what it touches costs cache misses."""

    __slots__ = (
        "_shared_blocked",
        "pristine_bind",
        "pristine_bind_unusable",
        "pristine_blocked",
        "pristine_blocked_unusable",
    )

    def __init__(self, lo: int, hi: int, *, template: PortTable | None = None, **options) -> None:
        if template is None:
            super().__init__(lo, hi, **options)
        else:  # the fleet's first member: same range, reserved and listening ports
            self.lo, self.hi, self.size = template.lo, template.hi, template.size
            self.layout, self.evens = template.layout, template.evens
            self.reset_on_release = template.reset_on_release
            self.static = template.static  # never written after construction
            self.listening, self.reserved = template.listening, template.reserved
            self.blocked = template.pristine_blocked  # type: ignore[attr-defined]
            self.blocked_unusable = template.pristine_blocked_unusable  # type: ignore[attr-defined]
            self.pools = {}
            self.dynamic_blocked = 0
            self.bind_pool = type(template.bind_pool)(
                self.layout,
                "bind",
                template.pristine_bind,  # type: ignore[attr-defined]
                template.pristine_bind_unusable,  # type: ignore[attr-defined]
            )
            self.addr_pools = [self.bind_pool]
        # the bind map as built, read-only: the other members' starting point
        self.pristine_bind = bytes(self.bind_pool.cells) if template is None else b""
        self.pristine_bind_unusable = self.bind_pool.unusable
        self.pristine_blocked_unusable = self.blocked_unusable
        # the blocked template as built, read-only (bytes): what the other members share
        self.pristine_blocked = bytes(self.blocked) if template is None else self.blocked
        self._shared_blocked = self.blocked if template is not None else None
        self.owners: dict[int, int] = {}  # type: ignore[assignment]
        self.shared = 0  # len(owners), read without fetching the dict
        self.explicit: dict[int, int] = {}  # type: ignore[assignment]

    def owner_count(self, k: int) -> int:
        if not self.bind_pool.cells[self.layout.cell(k)] & OWNED:
            return 0
        return self.owners.get(k, 1)

    def take(self, k: int, now: float, addr: int = 0) -> int:
        """(Its first-owner case is inlined in ``sim.fleet.Member.autobind_connect``.)"""
        cell = (k & 1) * self.evens + (k >> 1)
        bind_pool = self.bind_pool
        if bind_pool.cells[cell] & OWNED:  # a second owner (or more): counted
            owners = self.owners
            n = owners.get(k, 1)
            if n == 1:
                self.shared += 1
            owners[k] = n + 1
        else:
            bind_pool.take(cell, OWNED, now)
        return cell

    def release(self, k: int, now: float, addr: int = 0) -> None:
        if self.shared:
            owners = self.owners
            n = owners.get(k, 1) - 1
            if n > 1:
                owners[k] = n
                return
            if n == 1:
                del owners[k]
                self.shared -= 1
                return
        cell = (k & 1) * self.evens + (k >> 1)
        self.bind_pool.give(cell, OWNED, now)
        if self.blocked[cell] and not self.static[cell]:
            self._unblock(cell, now)

    def take_explicit(self, k: int, now: float, addr: int = 0) -> int:
        cell = self.take(k, now, addr)
        self.explicit[k] = self.explicit.get(k, 0) + 1
        if not self.blocked[cell]:
            self._block(cell, now)
        return cell

    def release_explicit(self, k: int, now: float, addr: int = 0) -> None:
        n = self.explicit[k] - 1
        if n:
            self.explicit[k] = n
        else:
            del self.explicit[k]
        cell = self.layout.cell(k)
        if self.reset_on_release and not n and self.owner_count(k) > 1 and not self.static[cell]:
            self._unblock(cell, now)
        self.release(k, now, addr)

    def _block(self, cell: int, now: float) -> None:
        if self.blocked is self._shared_blocked:  # the first write: a copy of our own
            self.blocked = bytearray(self.blocked)
        super()._block(cell, now)

    def _unblock(self, cell: int, now: float) -> None:
        if self.blocked is self._shared_blocked:
            self.blocked = bytearray(self.blocked)
        super()._unblock(cell, now)
