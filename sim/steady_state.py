"""Steady-state figures after a warm-up, and the Erlang-B prediction beside them.

A run starts with an empty pool, so the first TIME_WAIT's worth of time says little about
the long run: the pool fills, and with a fixed TIME_WAIT the first wave of releases comes
all at once.  Steady-state statistics skip a ``warmup`` (a scenario key; by default one
TIME_WAIT plus three mean lifetimes, at most half the run) and are reported beside the
whole-run figures.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from sim.analytic import capacity
from sim.recorder import bin_count, worst_track
from sim.request_flow import request_rates
from sim.workload.arrivals import arrival_process
from sim.workload.lifetimes import LifetimeSpec, lifetime_mean

if TYPE_CHECKING:
    from sim.channel import Channel
    from sim.config.types import KeepAlive, LoadSpec
    from sim.engine import Model
    from sim.host import Host
    from sim.ports.table import Pool
    from sim.summary.types import AnalyticPool, Capacity, SteadyState

WARMUP_LIFETIMES = 3


def pool_key(host: str, label: str, several_hosts: bool) -> str:
    """How summaries name a pool: its destination, prefixed by the host when there are
    several (hosts often share destinations)."""
    return f"{host}/{label}" if several_hosts else label


def channels(model: Model) -> list[tuple[LoadSpec, Channel]]:
    """Every channel with its load's scenario table, in the model's order."""
    return [(flow.spec, ch) for flow in model.flows for ch in flow.channels]


def mean_life(spec: LoadSpec) -> float | None:
    """A load's mean connection lifetime where the scenario says it (not for a trace,
    whose rows say; for a keep-alive pool, a request plus the idle timeout bounds it)."""
    if spec.lifetime is None:
        return None
    if spec.keepalive is not None:
        return lifetime_mean(spec.lifetime) + spec.keepalive.idle_timeout
    return lifetime_mean(spec.lifetime)


def warmup_needed(model: Model, churn_only: bool = False) -> float:
    """One TIME_WAIT plus three mean lifetimes of the longest-holding load: the time a pool
    takes to fill to its level.  Behind a gateway its pool counts too: the gateway's hold
    after close plus the lifetimes, and then the client's SYN timeout, since a dropped
    connect fails only when its last retransmission goes unanswered (131 s on Linux 6.18).
    ``churn_only`` leaves out keep-alive pools, whose few connections live on while
    requests flow: no level to fill to."""
    longest = 0.0
    for spec, load in channels(model):
        if churn_only and spec.keepalive is not None:
            continue
        life = mean_life(spec) or 0.0
        if not math.isfinite(life):
            continue
        hold = load.tw_len if load.holds_time_wait else 0.0
        longest = max(longest, hold + WARMUP_LIFETIMES * life)
        route = load.route
        if route is not None:
            hold_there = route.gateway.hold_after(route.close_kind, life)
            gateway_fill = hold_there + WARMUP_LIFETIMES * life
            give_up = route.schedule[-1] if route.protocol == "tcp" and route.schedule else 0.0
            longest = max(longest, gateway_fill + give_up)
    return longest


def default_warmup(model: Model) -> float:
    sc = model.scenario
    if sc.warmup is not None:
        return min(sc.warmup, sc.duration)
    return min(warmup_needed(model), sc.duration / 2)


def window_start(model: Model, warmup: float) -> float:
    """Where the steady-state window starts: after the warmup, and a whole number of
    holding periods before the end when at least one fits.  With a fixed TIME_WAIT the
    pool empties and refills in waves one holding time apart (the first fill releases all
    at once), so a window cut mid-wave over- or under-counts refusals; whole periods
    average the waves out (measured: 5.8 % refused from 63 s to 180 s at 500/s, 7.6 % over
    the last full 61 s period, 7.5 % by Erlang B)."""
    duration = model.scenario.duration
    period = max(
        (
            ld.tw_len + life
            for spec, ld in channels(model)
            if ld.holds_time_wait and (life := mean_life(spec)) is not None and math.isfinite(life)
        ),
        default=0.0,
    )
    if period <= 0 or duration - warmup < period:
        return warmup
    return duration - math.floor((duration - warmup) / period) * period


def _first_bin(model: Model, warmup: float) -> int:
    start = window_start(model, warmup)
    width = model.scenario.bin_width
    return min(math.ceil(start / width - 1e-9), bin_count(model.scenario.duration, width))


def counts_since(model: Model, loads: list[Channel], first_bin: int) -> tuple[int, int]:
    """Attempts and failures of ``loads`` from bin ``first_bin`` (the window's) to the end."""
    rec = model.recorder
    if first_bin != rec.window_bin:
        raise ValueError("counts are kept from the steady-state window's first bin only")
    attempted = failed = 0
    for load in loads:
        # a channel built after the window opened (a fleet member's) has all its counts in it
        early = first_bin > 0 and load.index < len(rec.before_window)
        before_a, before_f = rec.before_window[load.index] if early else (0, 0)
        attempted += load.attempted - before_a
        failed += load.failed - before_f
    return attempted, failed


def window_bin(model: Model) -> int:
    """The steady-state window's first bin, known before the run from the scenario."""
    return _first_bin(model, default_warmup(model))


def _pressure_mean(model: Model, pool: Pool, size: int, first_bin: int) -> float | None:
    """Mean of the pool's end-of-bin pressure over the steady-state bins."""
    track = model.recorder.tracks.get(id(pool))
    if track is None:
        return None
    start = max(0, first_bin - track.first_bin)
    values = track.unusable[start:]
    return sum(values) / len(values) / size if values else None


def _fleet_pressure_mean(rows: list[tuple[int, int, int, int]], size: int) -> float | None:
    """A fleet's steady-state pressure: the mean over the window's bins of the highest
    member pool level at each bin's end (its worst member may change from bin to bin)."""
    return sum(r[2] for r in rows) / len(rows) / size if rows else None


def steady_state(model: Model) -> SteadyState:
    warmup = default_warmup(model)
    first = model.recorder.window_bin  # (window_bin: fixed before the run)
    attempted, failed = counts_since(model, model.loads, first)
    worst = worst_track(model.recorder)
    pressure = (
        _pressure_mean(model, worst.pool, worst.host.size, first) if worst is not None else None
    )
    peak = worst.pool.max_ever / worst.host.size if worst is not None else -1.0
    for fleet in model.fleets.values():  # a fleet's worst member pool may be worse
        member = fleet.worst_pool()
        if member is not None and member[1].max_ever / fleet.size > peak:
            peak = member[1].max_ever / fleet.size
            pressure = _fleet_pressure_mean(fleet.rows[first:], fleet.size)
    arrivals_steady = stationary(model)
    growing = any(f.requests is not None for f in model.flows) and bool(
        request_rates(model, first)["queue_growing"]
    )
    reason = None
    needed = warmup_needed(model, churn_only=True)
    if not arrivals_steady:
        reason = "the load varies in time"
    elif growing:
        reason = "the queue of waiting requests grows without bound"
    elif model.scenario.warmup is None and needed > model.scenario.duration / 2:
        # the warmup was cut to half the run: its second half may still be filling
        routed = any(load.route is not None for load in model.loads)
        holds = "TIME_WAIT, or a gateway's hold and the SYN timeout," if routed else "TIME_WAIT"
        reason = (
            f"the run is too short: pools take about {needed:g} s to fill ({holds} + "
            f"{WARMUP_LIFETIMES} mean lifetimes), so run at least {2 * needed:g} s "
            "or set warmup"
        )
    return {
        "stationary": reason is None,
        "not_stationary_because": reason,
        "warmup_s": warmup,
        "window_s": [first * model.recorder.bin_width, model.scenario.duration],
        "attempted": attempted,
        "failed": failed,
        "blocking": failed / attempted if attempted else 0.0,
        "pressure_mean": pressure,
    }


def stationary(model: Model) -> bool:
    """Whether every load offers the same rate all run long (Poisson or constant arrivals
    from start to end): otherwise a "steady state" mixes bursts and quiet spells."""
    sc = model.scenario
    return all(
        arrival_process(spec.arrival).stationary
        and spec.start == 0
        and (spec.stop is None or spec.stop >= sc.duration)
        for spec in sc.load
    )


def _applies(spec: LoadSpec, load: Channel, duration: float) -> bool:
    return not_erlang(spec, load, duration) is None


def _erlang_terms(spec: LoadSpec, load: Channel) -> tuple[float, float]:
    """(arrival rate of this channel, mean holding time) of a load Erlang B applies to."""
    rate = arrival_process(spec.arrival).poisson_rate
    if rate is None or spec.lifetime is None:
        raise ValueError("Erlang B does not apply to this load")
    holding = lifetime_mean(spec.lifetime) + (load.tw_hold if load.holds_time_wait else 0)
    return rate * load.share, holding


def not_erlang(spec: LoadSpec, load: Channel, duration: float) -> str | None:
    """Why Erlang B does not hold for the connects of ``load`` (a channel of ``spec``) in a
    run of ``duration``, or None when it does: Poisson TCP connects that scan the whole
    pool and never reuse a TIME_WAIT early."""
    host = load.host
    if load.protocol != "tcp" or load.socket not in ("connect", "bind_no_port"):
        return "not plain TCP connect()"
    if spec.keepalive is not None:
        return "keep-alive: connections are reused"
    if load.route is not None:  # its connects also fail at the gateway (sim.nat)
        return "behind a gateway: the gateway's translated tuples refuse too"
    if arrival_process(spec.arrival).poisson_rate is None:
        return "arrivals are not Poisson"
    if spec.lifetime is None or not math.isfinite(lifetime_mean(spec.lifetime)):
        return "no finite mean lifetime"
    if spec.retry is not None and spec.retry.attempts > 1:
        return "refused attempts are retried"  # they come back: not a loss system
    if spec.start > 0 or (spec.stop is not None and spec.stop < duration):
        return "offered for part of the run only"  # no steady state to compare
    if len(host.source_addresses) > 1:
        return "source addresses taken in turn"  # each pool's arrivals are not Poisson
    if load.reuse_tw:
        return "TIME_WAIT reused early"
    if load.sub is not None:
        return "a per-socket port range"
    if host.resolved.policy == "rfc6056-2" or (host.linux and host.size % 2):
        return "may refuse with a port free"  # random draws; odd-range geometry
    if host.forced_reuse or host.auto_reuse:
        return "ports shared across destinations when exhausted"
    if host.tw_overflow:
        return "TIME_WAITs cut short (tcp_max_tw_buckets)"
    if host.explicit_binds:
        return "explicit binds hold ports"
    return None


def analytic(model: Model) -> dict[str, AnalyticPool]:
    """Per pool whose loads fit the loss model: Erlang B beside the simulated figures."""
    groups: dict[object, list[tuple[LoadSpec, Channel]]] = {}
    for spec, load in channels(model):
        # a fleet's members are alike: one entry per fleet and destination, per member
        key = (load.host.name, load.pool.label) if load.host.member >= 0 else id(load.pool)
        groups.setdefault(key, []).append((spec, load))
    warmup = default_warmup(model)
    first = _first_bin(model, warmup)
    duration = model.scenario.duration
    out: dict[str, AnalyticPool] = {}
    for group in groups.values():
        if not all(_applies(spec, ld, duration) for spec, ld in group):
            continue
        loads = [ld for _, ld in group]
        host, pool = loads[0].host, loads[0].pool
        fleet = model.fleets.get(host.name) if host.member >= 0 else None
        ports = host.size - host.table.static.count(1)
        # a fleet member's arrivals: its share of the load's (every member alike)
        terms = [_erlang_terms(spec, ld) for spec, ld in group if ld.host is host]
        rate = sum(r for r, _ in terms)
        load_erlangs = sum(r * h for r, h in terms)
        holding = load_erlangs / rate
        cap = capacity(ports, rate, holding, 0.0)
        attempted, failed = counts_since(model, loads, first)
        label = pool.label if host.scope == "4tuple" else ", ".join(host.shared_labels)
        static = host.size - ports
        simulated = _pressure_mean(model, pool, host.size, first) if fleet is None else None
        entry: AnalyticPool = {
            "host": host.name,
            "ports": ports,
            "rate": rate,
            "offered_load": cap.offered_load,
            "blocking": cap.blocking,
            "mean_in_use": cap.mean_in_use,
            "pressure": cap.pressure,
            "max_rate_at_0.001": cap.max_rate,
            "simulated_blocking": failed / attempted if attempted else 0.0,
            # both pressures over the ports the loss model has: reserved/listening ones out
            "simulated_pressure_mean": (
                None if simulated is None else (simulated * host.size - static) / ports
            ),
            "static_ports": static,
            "warmup_s": warmup,
        }
        if fleet is not None:
            entry["per"] = "member"
            entry["members"] = fleet.count
        out[pool_key(host.name, label, model.units > 1)] = entry
    return out


def _holding(spec: LoadSpec, load: Channel) -> float | None:
    """Mean time a connection of ``load`` holds its port: lifetime, plus TIME_WAIT when
    the host closes first; None for keep-alive pools and loads without a known mean."""
    if spec.keepalive is not None or spec.lifetime is None:
        return None
    life = lifetime_mean(spec.lifetime)
    if not math.isfinite(life):
        return None
    return life + (load.tw_len if load.holds_time_wait else 0.0)


def host_capacity(model: Model, pools: dict[str, AnalyticPool]) -> dict[str, Capacity]:
    """Every host's answer to "how many new connections per second can it sustain?".

    Erlang B's sustainable rate (at 0.1 % refused) where its assumptions hold for every
    load of the host; otherwise the bound ports / (lifetime + TIME_WAIT): the rate at
    which, with no randomness at all, every port would be held; above it refusals are
    certain, below it they are possible (bursts)."""
    out: dict[str, Capacity] = {}
    pairs = channels(model)
    for host in model.hosts.values():
        ours = [(spec, ld) for spec, ld in pairs if ld.host is host]
        out[host.name] = _unit_capacity(model, host, ours, pools)
    for fleet in model.fleets.values():
        ours = [(spec, ld) for spec, ld in pairs if ld.host.name == fleet.name]
        answer = _unit_capacity(model, fleet.kernel_host, ours, pools)
        rate = answer["sustainable_per_s"]
        answer["members"] = fleet.count
        if answer["method"] == "keepalive_pool":  # already over every member's pools
            answer["per"] = "fleet (requests over every member's keep-alive pools)"
            answer["fleet_sustainable_per_s"] = rate
        else:  # each member has its own ports and 1/count of the arrivals (uniform spread)
            per = answer["per"]
            answer["per"] = (  # "destination", or "host (connected UDP: ...)"
                f"member (each of {fleet.count:,}) and destination"
                if per == "destination"
                else f"member (each of {fleet.count:,}; {per.removeprefix('host (')}"
            )
            answer["fleet_sustainable_per_s"] = None if rate is None else rate * fleet.count
        out[fleet.name] = answer
    return out


def _unit_capacity(
    model: Model,
    host: Host,
    ours: list[tuple[LoadSpec, Channel]],
    pools: dict[str, AnalyticPool],
) -> Capacity:
    """One host's (or one fleet member's) capacity answer: see host_capacity."""
    per = "destination" if host.scope == "4tuple" else f"host ({host.scope} scope)"
    if ours and all(ld.protocol == "udp" for _, ld in ours):
        per = "host (connected UDP: a port serves one socket)"
    ports = host.size - host.table.static.count(1)
    mine = [a for a in pools.values() if a["host"] == host.name]
    duration = model.scenario.duration
    reasons = sorted({r for spec, ld in ours if (r := not_erlang(spec, ld, duration)) is not None})
    if mine and not reasons:
        worst = max(mine, key=lambda a: a["offered_load"])
        return {
            "method": "erlang_b",
            "per": per,
            "ports": ports,
            "holding_s": worst["offered_load"] / worst["rate"] if worst["rate"] else None,
            "sustainable_per_s": worst["max_rate_at_0.001"],
            "target_blocking": 0.001,
            "why_not_erlang_b": None,
        }
    held = [(ld.attempted or 1, h) for spec, ld in ours if (h := _holding(spec, ld)) is not None]
    flows = [f for f in model.flows if f.host_name == host.name and f.spec.keepalive is not None]
    durations = [lifetime_mean(f.spec.lifetime) for f in flows if f.spec.lifetime is not None]
    if not held and flows and len(durations) == len(flows):
        # keep-alive only: connections are reused, so what runs out is the pool, not
        # the ports: each pool of K connections serves at most K / L requests per second
        limit = sum(_pool_limit(f.spec.keepalive, f.pool_count, f.spec.lifetime) for f in flows)
        return {
            "method": "keepalive_pool",
            "per": "host (requests over every keep-alive pool)",
            "ports": ports,
            "holding_s": None,
            "sustainable_per_s": limit,
            "target_blocking": None,
            "why_not_erlang_b": "; ".join(reasons) or None,
        }
    if not held:
        return {
            "method": None,
            "per": per,
            "ports": ports,
            "holding_s": None,
            "sustainable_per_s": None,
            "target_blocking": None,
            "why_not_erlang_b": "; ".join(reasons) or None,
            "why_none": "no mean connection lifetime in the scenario (a trace's rows "
            "carry their own)",
        }
    weight = sum(w for w, _ in held)
    holding = sum(w * h for w, h in held) / weight
    return {
        "method": "bound",
        "per": per,
        "ports": ports,
        "holding_s": holding,
        "sustainable_per_s": ports / holding if holding > 0 else math.inf,
        "target_blocking": None,
        "why_not_erlang_b": "; ".join(reasons) or None,
    }


def _pool_limit(keepalive: KeepAlive | None, pools: int, lifetime: LifetimeSpec | None) -> float:
    """Requests per second ``pools`` keep-alive pools serve at most: K / L each."""
    if keepalive is None or lifetime is None:
        raise ValueError("a pool limit needs keep-alive pools and a request duration")
    return keepalive.max_connections * pools / lifetime_mean(lifetime)
