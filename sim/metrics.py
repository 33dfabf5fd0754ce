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
FLUSH = 1 << 16  # pending uses worked out at once


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


# destination pools per host with reuse metrics (the first created; a PortUse holds two
# lists the size of the range, ~450 KB with the Linux default: too much for thousands of
# destinations), the others' ``use`` is None
TRACKED_POOLS = 64


class PortUse:
    """The use history of one destination pool's ports.

    A connection only appends its port and time (``record``); the reuse distances and
    intervals, predictability and the ports' last uses are worked out in bulk with numpy
    (``_flush``), when FLUSH uses are pending or a figure is read.  Collisions are counted
    at once, because the peer's TIME_WAIT they are checked against changes between uses.
    """

    __slots__ = (
        "_collisions",
        "_distance_hist",
        "_interval_hist",
        "_pending_ports",
        "_pending_times",
        "_predictable",
        "_uses",
        "last_index",
        "last_port",
        "last_time",
        "server_tw_until",
        "size",
    )

    def __init__(self, size: int) -> None:
        self.size = size
        self._uses = 0  # uses flushed
        self.last_index = np.full(size, -1, dtype=np.int64)  # per port: index of last use
        self.last_time = np.zeros(size, dtype=np.float64)
        self.last_port = -1
        self._predictable = 0
        self._collisions = 0
        self.server_tw_until: list[float] | None = None  # allocated when a server closes first
        self._distance_hist = np.zeros(BUCKETS, dtype=np.int64)
        self._interval_hist = np.zeros(BUCKETS, dtype=np.int64)  # of milliseconds
        # uses waiting to be worked out: appended per connection, processed in bulk
        self._pending_ports = array("q")
        self._pending_times = array("d")

    @property
    def uses(self) -> int:
        return self._uses + len(self._pending_ports)

    @property
    def predictable(self) -> int:
        self._flush()
        return self._predictable

    @property
    def collisions(self) -> int:
        return self._collisions

    @property
    def distance_hist(self) -> list[int]:
        self._flush()
        return self._distance_hist.tolist()

    @property
    def interval_hist(self) -> list[int]:
        self._flush()
        return self._interval_hist.tolist()

    def record(self, k: int, now: float) -> None:
        """A new connection to the destination on offset ``k`` at ``now``."""
        ports = self._pending_ports
        ports.append(k)
        self._pending_times.append(now)
        tw = self.server_tw_until
        if tw is not None and tw[k] > now:
            self._collisions += 1
        if len(ports) >= FLUSH:
            self._flush()

    def _flush(self) -> None:
        """Work out the pending uses, in their order, as ``record`` one by one would: each
        use's previous use of its port is the one before it in the batch (a stable sort by
        port brings them together) or else the port's last use before the batch."""
        m = len(self._pending_ports)
        if not m:
            return
        ports = np.frombuffer(self._pending_ports, dtype=np.int64)
        times = np.frombuffer(self._pending_times, dtype=np.float64)
        index = self._uses + np.arange(m, dtype=np.int64)
        prev_index = self.last_index[ports]
        prev_time = self.last_time[ports]
        order = np.argsort(ports, kind="stable")
        same = ports[order[1:]] == ports[order[:-1]]  # sorted neighbours on one port
        later, earlier = order[1:][same], order[:-1][same]
        prev_index[later] = index[earlier]
        prev_time[later] = times[earlier]
        reused = prev_index >= 0
        distances = index[reused] - prev_index[reused]
        ms = (times[reused] - prev_time[reused]) * 1000.0
        self._distance_hist += np.bincount(_buckets(distances), minlength=BUCKETS)[:BUCKETS]
        self._interval_hist += np.bincount(_buckets(ms), minlength=BUCKETS)[:BUCKETS]
        last = order[np.append(~same, True)]  # each port's last use in the batch
        self.last_index[ports[last]] = index[last]
        self.last_time[ports[last]] = times[last]
        previous = np.concatenate(([self.last_port], ports[:-1]))
        step = (ports - previous) % self.size
        near = (previous >= 0) & (step > 0) & (step <= PREDICTABLE_WINDOW)
        self._predictable += int(np.count_nonzero(near))
        self.last_port = int(ports[-1])
        self._uses += m
        self._pending_ports = array("q")
        self._pending_times = array("d")

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
