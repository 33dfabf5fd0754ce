"""Streaming metrics: fixed-width time bins, counters, a probe histogram, per-pool tracks.

The recorder only reads: the engine settles the hosts before each bin boundary is read and
has the owners start their next bin afterwards (``sim.engine.Model.close_bin``).

Memory grows with bins and pools, never with the number of connections (the optional
event log aside).  Within a bin, counts (attempts, successes, failures, probes) are sums;
levels (established, TIME_WAIT, bound) are the state at the bin's end; pressures are the
bin's peak, because a pool that filled for a moment refused connections in that moment.
"""

from __future__ import annotations

import math
from array import array
from typing import TYPE_CHECKING

import numpy as np

from sim.nat.route import ConnectStats

if TYPE_CHECKING:
    from sim.channel import Channel
    from sim.fleet import Fleet
    from sim.host import Host
    from sim.nat.base import Gateway
    from sim.ports.table import Pool
    from sim.summary.types import HistogramStats, Pressure, Probes
    from sim.workload.flow import Flow

SERIES_COLUMNS = (
    "t_start_s",
    "t_end_s",
    "established",
    "time_wait",
    "bound",
    "pressure_worst",
    "pressure_global",
    "attempts",
    "successes",
    "failures",
    "probes_mean",
    "probes_max",
    "retries",
    "gave_up",
    "requests",
    "requests_failed",
    "requests_waiting",
    "requests_served",
)

EVENT_COLUMNS = (
    "time_s",
    "host",
    "local_address",
    "event",
    "protocol",
    "local_port",
    "destination",
    "probes",
    "error",
)
# the worst pool's own columns, appended to series.csv
WORST_COLUMNS = ("worst_established", "worst_time_wait", "worst_unusable", "worst_peak")
# appended after them when the run has gateways (sim/nat): the worst destination's peak
# pressure over every gateway in the bin, SYNs dropped, connects established after a drop
# connects_waiting: connects retransmitting their SYN at the bin's end (counted in
# ``attempts`` only once settled, so attempts + its change is the connects begun)
GATEWAY_COLUMNS = (
    "gateway_pressure_worst",
    "gateway_drops",
    "connects_delayed",
    "connects_waiting",
)
# and to events.csv: the translated source of a connection (rows of the routes)
GATEWAY_EVENT_COLUMNS = ("public_address", "public_port")


def bin_count(duration: float, bin_width: float) -> int:
    """How many bins a run of ``duration`` has (the last may be shorter)."""
    return max(1, math.ceil(duration / bin_width - 1e-9))


class ProbeCounts:
    """Ports examined by attempts, counted by the hosts on the hot path, read by the recorder.

    A refused Linux connect() has examined the whole range: __inet_hash_connect
    (net/ipv4/inet_hashtables.c, Linux 6.18) loops `for (i = 0; i < remaining; i += step)`
    with step 2 over one parity, then again over the other (reserved ports skipped inside
    the loop still count), so remaining / 2 + remaining / 2 = the (even-rounded) range,
    28,232 by default."""

    __slots__ = (
        "allocations",
        "bin_probe_max",
        "pass_hist",
        "probe_hist",
        "probe_sum",
        "refusals",
        "refused_calls",
        "refused_probe_sum",
    )

    def __init__(self) -> None:
        # calls that got a port, and calls the host refused (with or without a scan):
        # behind a gateway a call is settled later (or never: still connecting at the
        # end), so the connects settled are not the calls made
        self.allocations = 0
        self.refusals = 0
        self.probe_sum = 0
        # ports examined by refused calls, in the series' probes (not in the summary's
        # per-allocation mean)
        self.refused_probe_sum = 0
        self.refused_calls = 0
        self.bin_probe_max = 0  # the most ports one call examined in the current bin
        self.probe_hist = [0] * (2 * 65536 + 2)  # index: ports probed by one allocation
        # Linux connect() attempts by the pass that ended the scan, refusals included (a
        # refusal ends the last pass; one-pass scans count everything as pass 1)
        self.pass_hist = ([0] * (2 * 65536 + 2), [0] * (2 * 65536 + 2))

    def new_bin(self) -> None:
        self.bin_probe_max = 0


class PoolTrack:
    """Per-bin history of one pool: peak and end-of-bin unusable, established, TIME_WAIT."""

    __slots__ = (
        "established",
        "first_bin",
        "group_sizes",
        "host",
        "order",
        "peak",
        "pool",
        "raster",
        "raster_times",
        "time_wait",
        "unusable",
    )

    def __init__(self, host: Host, pool: Pool, first_bin: int, raster: bool) -> None:
        self.host = host
        self.pool = pool
        self.first_bin = first_bin
        self.peak = array("i")
        self.unusable = array("i")
        self.established = array("i")
        self.time_wait = array("i")
        self.raster: list[bytes] | None = [] if raster else None
        self.raster_times: list[float] = []
        # RASTER_ROWS groups of consecutive ports (fewer when the range is smaller)
        edges = np.linspace(0, host.size, min(RASTER_ROWS, host.size) + 1).astype(np.int64)
        self.group_sizes = np.diff(edges)
        self.order = _group_bounds(host, pool, edges) if raster else None

    def snapshot_raster(self, t: float) -> None:
        """Occupancy of RASTER_ROWS port groups (in port order), as 0..255: one column."""
        held = np.frombuffer(self.pool.cells, dtype=np.uint8) != 0
        cum = np.concatenate(([0], np.cumsum(held, dtype=np.int64)))
        if self.order is None or self.raster is None:
            return  # (no raster for this pool)
        a, b = self.order  # cell bounds of each group: counts are differences of the cumsum
        counts = cum[b].sum(axis=0) - cum[a].sum(axis=0)
        self.raster.append((255 * counts // self.group_sizes).astype(np.uint8).tobytes())
        self.raster_times.append(t)


RASTER_ROWS = 128  # port groups in the occupancy raster
RASTER_COLUMNS = 400  # time columns at most
RASTER_POOLS = 8  # pools with a raster at most (the first ones created)


def _group_bounds(host: Host, pool: Pool, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For groups of offsets [e_i, e_i+1): the cell runs holding them, as (starts, ends) of
    shape (runs, groups), so a group's held count is a sum of cumsum differences.  In the
    parity layout a group is two runs (its even and its odd offsets); Linux's UDP map is by
    port number, one run."""
    lo, hi = edges[:-1], edges[1:]
    if len(pool.cells) == 65536 and host.size != 65536:
        return (lo + host.lo)[None, :], (hi + host.lo)[None, :]
    evens = (host.size + 1) >> 1
    starts = np.stack([(lo + 1) >> 1, evens + (lo >> 1)])
    ends = np.stack([(hi + 1) >> 1, evens + (hi >> 1)])
    return starts, ends


class Recorder:
    """Per-bin rows and pool tracks of a built model; ``loads`` are its channels (per-bin
    counts are differences of their counters, and their position is their ``index``),
    ``flows`` its loads (retries and keep-alive requests)."""

    def __init__(
        self,
        bin_width: float,
        duration: float,
        hosts: list[Host],
        loads: list[Channel],
        flows: list[Flow],
        probes: ProbeCounts,
        window_bin: int,
        fleets: list[Fleet] | None = None,
        gateways: dict[str, Gateway] | None = None,
        connect: ConnectStats | None = None,
    ) -> None:
        self.bin_width = bin_width
        self.duration = duration
        self.n_bins = bin_count(duration, bin_width)
        self.raster_stride = max(1, math.ceil(self.n_bins / RASTER_COLUMNS))
        self.hosts = hosts
        self.fleets = fleets or []  # each read as one aggregate: no per-member tracks
        self.loads = loads
        self.flows = flows
        self.probes = probes
        # per load: attempts and failures before the steady-state window (known before
        # the run from the scenario), for its refusal figures
        self.window_bin = window_bin
        self.before_window: list[tuple[int, int]] = []
        self.rows: list[tuple] = []
        self.tracks: dict[int, PoolTrack] = {}
        # successes, failures, probe sums and calls at the previous boundary
        self._last = (0, 0, 0, 0, 0)
        self._last_flows = (0, 0, 0, 0, 0)  # retries, gave_up, requests, failed, served
        # per host: its attempts, successes and failures in each bin (one tuple per bin), so
        # several hosts are never summed into one line (hosts.csv, per-host waves)
        self.host_rows: dict[str, list[tuple[int, int, int]]] = {}
        self._last_hosts: dict[str, tuple[int, int]] = {}
        # behind a NAT (sim/nat): the gateways by name, and connect latency through them
        self.gateways: dict[str, Gateway] = gateways or {}
        self.connect = connect or ConnectStats()
        self.gateway_rows: list[tuple[float, int, int, int]] = []

    def bin_end(self) -> float:
        """When the current bin ends."""
        return min((len(self.rows) + 1) * self.bin_width, self.duration)

    def close_bin(self) -> None:
        """Append the current bin's row, as the hosts' state shows it (settled by the
        engine to the bin's end): only reads."""
        index = len(self.rows)
        last = index == self.n_bins - 1
        t_start = index * self.bin_width
        t_end = self.bin_end()
        probes = self.probes
        established = time_wait = bound = 0
        worst = glob = 0.0
        for host in self.hosts:
            time_wait += host.tw_count
            bound += host.table.dynamic_blocked
            size = host.size
            bind_pool = host.table.bind_pool
            glob = max(glob, bind_pool.peak / size)
            for pool in host.pools():
                track = self.tracks.get(id(pool))
                if track is None:
                    raster = len(self.tracks) < RASTER_POOLS
                    track = self.tracks[id(pool)] = PoolTrack(host, pool, index, raster)
                if track.raster is not None and (index % self.raster_stride == 0 or last):
                    track.snapshot_raster(t_end)
                track.peak.append(pool.peak)
                track.unusable.append(pool.unusable)
                track.established.append(pool.established)
                track.time_wait.append(pool.time_wait)
                established += pool.established
                worst = max(worst, pool.peak / size)
        for fleet in self.fleets:  # (settled and summed by the fleet: sim.fleet)
            f_established, f_time_wait, f_bound, f_worst, f_glob = fleet.bin_figures
            established += f_established
            time_wait += f_time_wait
            bound += f_bound
            worst = max(worst, f_worst)
            glob = max(glob, f_glob)
        successes, failures = self._close_host_bins()  # every channel is some host's
        if index == self.window_bin - 1:  # the steady-state window starts after this bin
            self.before_window = [(load.attempted, load.failed) for load in self.loads]
        s0, f0, p0, r0, c0 = self._last
        succ, fail = successes - s0, failures - f0
        examined = probes.probe_sum - p0 + probes.refused_probe_sum - r0
        calls = probes.allocations + probes.refusals - c0
        flows = self._flow_counts()
        retries, gave_up, requests, requests_failed, served = (
            a - b for a, b in zip(flows, self._last_flows, strict=True)
        )
        self._last_flows = flows
        waiting = sum(f.requests.waiting for f in self.flows if f.requests is not None)
        self.rows.append(
            (
                t_start,
                t_end,
                established,
                time_wait,
                bound,
                worst,
                glob,
                succ + fail,
                succ,
                fail,
                examined / calls if calls else 0.0,
                probes.bin_probe_max,
                retries,
                gave_up,
                requests,
                requests_failed,
                waiting,
                served,
            )
        )
        self._last = (
            successes,
            failures,
            probes.probe_sum,
            probes.refused_probe_sum,
            probes.allocations + probes.refusals,
        )
        if self.gateways:
            self._close_gateway_bin()

    def _close_gateway_bin(self) -> None:
        """The gateways' columns of the closing bin (GATEWAY_COLUMNS); read only: the model
        starts the gateways' next bin (``Model.close_bin``)."""
        worst = max(g.bin_worst()[0] for g in self.gateways.values())
        stats = self.connect
        self.gateway_rows.append((worst, stats.bin_drops, stats.bin_delayed, stats.pending))

    def _close_host_bins(self) -> tuple[int, int]:
        """Append each host's (and fleet's) attempts, successes and failures of the closing
        bin; return the successes and failures so far over every host."""
        successes = failures = 0
        units: list[Host | Fleet] = [*self.hosts, *self.fleets]
        for unit in units:  # (each keeps a tally: sim.channel.Tally)
            name, succ, fail = unit.name, unit.tally.succeeded, unit.tally.failed
            successes += succ
            failures += fail
            s0, f0 = self._last_hosts.get(name, (0, 0))
            rows = self.host_rows.setdefault(name, [])
            rows.append((succ - s0 + fail - f0, succ - s0, fail - f0))
            self._last_hosts[name] = (succ, fail)
        return successes, failures

    def _flow_counts(self) -> tuple[int, int, int, int, int]:
        """Cumulative retries, give-ups, requests, failed and served requests (every load)."""
        retries = gave_up = requests = failed = served = 0
        for flow in self.flows:
            retries += flow.retries
            gave_up += flow.gave_up
            if flow.requests is not None:
                requests += flow.requests.attempted
                failed += flow.requests.failed
                served += flow.requests.succeeded
        return retries, gave_up, requests, failed, served


def worst_of(tracks: list[PoolTrack]) -> PoolTrack | None:
    """The pool that came closest to full: highest peak, then earliest, then by name."""
    if not tracks:
        return None
    return min(
        tracks,
        key=lambda t: (-t.pool.max_ever / t.host.size, t.pool.max_time, t.host.name, t.pool.label),
    )


def worst_track(rec: Recorder) -> PoolTrack | None:
    """The pool that came closest to full over every host."""
    return worst_of(list(rec.tracks.values()))


# -- what the recorder reports to the summary ---------------------------------------------


def pressure_report(rec: Recorder, duration: float) -> Pressure:
    """The run's ``pressure``: the worst pool's peak and time-weighted mean share of its
    range, when and where it peaked."""
    worst = worst_track(rec)
    pick: tuple[str, Host, Pool, int] | None = None
    if worst is not None:
        pick = (worst.host.name, worst.host, worst.pool, worst.host.size)
    for fleet in rec.fleets:  # a fleet member's pool may be the worst (then worst_member)
        member = fleet.worst_pool()
        if member is None:
            continue
        if pick is None or (-member[1].max_ever / fleet.size, member[1].max_time) < (
            -pick[2].max_ever / pick[3],
            pick[2].max_time,
        ):
            pick = (fleet.name, member[0], member[1], fleet.size)
    if pick is None:
        return {"peak": 0.0, "mean": 0.0, "peak_time_s": 0.0, "worst_destination": None}
    name, host, pool, size = pick
    out: Pressure = {
        "peak": pool.max_ever / size,
        "mean": pool.mean_unusable(duration) / size,
        "peak_time_s": pool.max_time,
        "worst_destination": pool.label,
        "worst_host": name,
        "peak_ports": pool.max_ever,
        "range_ports": size,
    }
    if host.member >= 0:
        out["worst_member"] = host.address
    return out


def probes_report(rec: Recorder) -> Probes:
    """Ports examined per allocation made, per refused call, and Linux connect() calls by
    the pass that ended the scan."""
    probes = rec.probes
    return {
        "mean": probes.probe_sum / probes.allocations if probes.allocations else 0.0,
        "p99": percentile(probes.probe_hist, 0.99),
        "max": int(np.flatnonzero(np.asarray(probes.probe_hist))[-1:].sum()),
        "pass1": hist_stats(probes.pass_hist[0]),
        "pass2": hist_stats(probes.pass_hist[1]),
        "refused": probes.refused_calls,
        "refused_mean": probes.refused_probe_sum / probes.refused_calls
        if probes.refused_calls
        else 0.0,
    }


def percentile(hist: list[int], q: float) -> float:
    """The q-quantile of a histogram indexed by value (nearest rank)."""
    counts = np.asarray(hist, dtype=np.int64)
    total = int(counts.sum())
    if not total:
        return 0.0
    return float(np.searchsorted(np.cumsum(counts), q * total))


def hist_stats(hist: list[int]) -> HistogramStats:
    """Count, mean and p99 of a histogram indexed by value."""
    counts = np.asarray(hist, dtype=np.int64)
    count = int(counts.sum())
    mean = float(counts @ np.arange(len(counts))) / count if count else 0.0
    return {"count": count, "mean": mean, "p99": percentile(hist, 0.99)}


def nonzero_rows(hist: list[int]) -> list[list[int]]:
    """[[value, count], ...] of a histogram indexed by value."""
    counts = np.asarray(hist, dtype=np.int64)
    values = np.flatnonzero(counts)
    return [[int(v), int(counts[v])] for v in values]
