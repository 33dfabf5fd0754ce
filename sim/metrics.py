"""Per-destination port-use metrics: reuse, predictability, collisions with the peer's
TIME_WAIT.  Streaming: histograms and a few numbers per port, never a record per connection.

* reuse distance: connections to the destination between two uses of the same local port,
  and reuse interval: the seconds between them (Linux: worst 1764, mean 3137 connections, in
  W. Tarreau, "[PATCH v3 net 0/7] insufficient TCP source port randomness", netdev, 2022);
* predictability: how often the next port to a destination falls within ``window`` ports
  after the previous one (the signal the 2022 hardening blurred: commit ca7af0402550, "tcp:
  add small random increments to the source port", Linux 5.18);
* collisions: a new connection on a 4-tuple whose earlier incarnation the *server* still
  holds in TIME_WAIT because it closed first (M. Allman, "Comments on Selecting Ephemeral
  Ports", ACM SIGCOMM CCR 39(2), 2009; RFC 6056 §3.1).
"""

from __future__ import annotations

import math
from array import array
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sim.summary.types import PortReuse, Reuse

PREDICTABLE_WINDOW = 16  # ports; Linux G4 steps 2..16 within one 10 s window (commit ca7af0402550)
SUB_BUCKETS = 8  # log-histogram resolution: 8 buckets per doubling


BUCKETS = 1 + SUB_BUCKETS * 64  # values up to 2^64
FLUSH = 1 << 16  # pending reuses bucketed at once


def _buckets(values: np.ndarray) -> np.ndarray:
    """log_bucket for an array (values < 1 go to bucket 0)."""
    safe = np.maximum(values, 1)
    return np.where(values >= 1, 1 + (SUB_BUCKETS * np.log2(safe)).astype(np.int64), 0)


def log_bucket(x: float) -> int:
    """Bucket of a positive value in a log2 histogram with SUB_BUCKETS per doubling."""
    return 0 if x < 1 else 1 + int(SUB_BUCKETS * math.log2(x))


def bucket_floor(bucket: int) -> float:
    """The smallest value of a bucket (inverse of log_bucket)."""
    return 0.0 if bucket == 0 else 2 ** ((bucket - 1) / SUB_BUCKETS)


class Untracked:
    """Stands in for :class:`PortUse` on pools past a host's first ``TRACKED_POOLS``: a
    PortUse holds two lists the size of the range (~450 KB with the Linux default), too much
    for thousands of destinations.  Same calls, nothing recorded."""

    __slots__ = ()
    uses = 0

    def record(self, k: int, now: float) -> None:
        pass

    def server_closed(self, k: int, until: float) -> None:
        pass


UNTRACKED = Untracked()
TRACKED_POOLS = 64  # destination pools per host with reuse metrics (the first created)


class PortUse:
    """The use history of one destination pool's ports."""

    __slots__ = (
        "_distance_hist",
        "_distances",
        "_interval_hist",
        "_intervals",
        "collisions",
        "last_index",
        "last_port",
        "last_time",
        "predictable",
        "server_tw_until",
        "size",
        "uses",
    )

    def __init__(self, size: int) -> None:
        self.size = size
        self.uses = 0
        self.last_index = [-1] * size  # lists: faster to index than arrays on the hot path
        self.last_time = [0.0] * size
        self.last_port = -1
        self.predictable = 0
        self.collisions = 0
        self.server_tw_until: list[float] | None = None  # allocated when a server closes first
        self._distance_hist = np.zeros(BUCKETS, dtype=np.int64)
        self._interval_hist = np.zeros(BUCKETS, dtype=np.int64)  # of milliseconds
        # reuses waiting to be bucketed: appended per connection, bucketed in bulk
        self._distances = array("q")
        self._intervals = array("d")

    @property
    def distance_hist(self) -> list[int]:
        self._flush()
        return self._distance_hist.tolist()

    @property
    def interval_hist(self) -> list[int]:
        self._flush()
        return self._interval_hist.tolist()

    def _flush(self) -> None:
        """Bucket the pending reuses with numpy: memory stays bounded, the per-connection
        cost is two appends."""
        if self._distances:
            d = np.frombuffer(self._distances, dtype=np.int64)
            self._distance_hist += np.bincount(_buckets(d), minlength=BUCKETS)[:BUCKETS]
            ms = np.frombuffer(self._intervals, dtype=np.float64) * 1000.0
            self._interval_hist += np.bincount(_buckets(ms), minlength=BUCKETS)[:BUCKETS]
            self._distances = array("q")
            self._intervals = array("d")

    def record(self, k: int, now: float) -> None:
        """A new connection to the destination on offset ``k`` at ``now``."""
        index = self.uses
        self.uses = index + 1
        last = self.last_index[k]
        if last >= 0:
            self._distances.append(index - last)
            self._intervals.append(now - self.last_time[k])
            if len(self._distances) >= FLUSH:
                self._flush()
        self.last_index[k] = index
        self.last_time[k] = now
        previous = self.last_port
        if previous >= 0 and 0 < (k - previous) % self.size <= PREDICTABLE_WINDOW:
            self.predictable += 1
        self.last_port = k
        tw = self.server_tw_until
        if tw is not None and tw[k] > now:
            self.collisions += 1

    def server_closed(self, k: int, until: float) -> None:
        """The server closed first: it holds the 4-tuple in TIME_WAIT until ``until``."""
        if self.server_tw_until is None:
            self.server_tw_until = [0.0] * self.size
        self.server_tw_until[k] = until

    def summary(self) -> PortReuse:
        return summarise_port_uses([self])


def reuse_report(uses: list[PortUse]) -> Reuse:
    """The run's ``reuse``: reuse, predictability and collisions over every destination."""
    return {**summarise_port_uses(uses), "predictable_window": PREDICTABLE_WINDOW}


def summarise_port_uses(uses: list[PortUse]) -> PortReuse:
    """Reuse, predictability and collisions over one or several destination pools."""
    total = sum(u.uses for u in uses)
    pairs = sum(max(u.uses - 1, 0) for u in uses)
    predictable = sum(u.predictable for u in uses)
    collisions = sum(u.collisions for u in uses)
    distance = merge([u.distance_hist for u in uses])
    interval = merge([u.interval_hist for u in uses])
    return {
        "uses": total,
        "reuse_distance_median": _hist_quantile(distance, 0.5),
        "reuse_distance_p01": _hist_quantile(distance, 0.01),
        "reuse_interval_median_s": _ms(_hist_quantile(interval, 0.5)),
        "reuse_interval_p01_s": _ms(_hist_quantile(interval, 0.01)),
        "predictable_fraction": predictable / pairs if pairs else None,
        "collisions": collisions,
        "collision_fraction": collisions / total if total else None,
    }


def _ms(value: float | None) -> float | None:
    return None if value is None else value / 1000.0


def merge(hists: list[list[int]]) -> list[int]:
    out = [0] * BUCKETS
    for hist in hists:
        for b, n in enumerate(hist):
            if n:
                out[b] += n
    return out


def _hist_quantile(hist: list[int], q: float) -> float | None:
    """The lower edge of the bucket holding the q-quantile (a log-bucketed estimate)."""
    total = sum(hist)
    if not total:
        return None
    seen = 0
    for b, n in enumerate(hist):
        seen += n
        if n and seen >= q * total:
            return bucket_floor(b)
    return None


def hist_rows(hist: list[int], scale: float = 1.0) -> list[list[float]]:
    """[[bucket lower edge, count], ...] ascending, for histograms.json and the CDF plots."""
    return [[bucket_floor(b) * scale, n] for b, n in enumerate(hist) if n]
