"""What a run's gateways say in the verdict: where exhaustion happens and what the client
sees (dropped SYNs show as connect latency and ETIMEDOUT, not EADDRNOTAVAIL)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, cast

from sim.nat.base import destination_label
from sim.steady_state import channels
from sim.units import format_duration, format_rate
from sim.units import format_percent as _pct
from sim.workload.lifetimes import lifetime_mean

if TYPE_CHECKING:
    from sim.engine import Model
    from sim.nat.base import Gateway
    from sim.summary.types import (
        ConnectLatency,
        GatewayClients,
        GatewayEntry,
        GatewaySustainable,
    )


def gateways_report(model: Model) -> tuple[dict[str, GatewayEntry], ConnectLatency]:
    """``gateways`` and ``connect_latency_s``: each gateway's own report (with its clients'
    connects and its bound), and connect latency over every TCP connect (those of hosts
    without a gateway take 0 s)."""
    direct = sum(ch.succeeded for ch in model.loads if ch.route is None and ch.protocol == "tcp")
    until = model.scenario.duration
    gateways = {}
    for name, g in model.gateways.items():
        entry = gateways[name] = cast("GatewayEntry", g.summary(until))
        entry["clients"] = gateway_clients(model, g)
        sustainable = gateway_sustainable(model, g, entry)
        if sustainable is not None:
            entry["sustainable"] = sustainable
    return gateways, cast("ConnectLatency", model.connect.summary(immediate_elsewhere=direct))


def gateway_clients(model: Model, gateway: Gateway) -> GatewayClients:
    """What the connects through ``gateway`` came to (its hosts' channels only: a run may
    have hosts without a gateway, or several gateways)."""
    mine = [ch for ch in model.loads if ch.route is not None and ch.route.gateway is gateway]
    tcp = [ch for ch in mine if ch.protocol == "tcp"]
    return {
        "tcp_connects": sum(ch.attempted + ch.connecting for ch in tcp),
        "timed_out": sum(ch.failed_by_error.get("ETIMEDOUT", 0) for ch in tcp),
        "delayed": gateway.delayed_connects,
        "still_connecting_at_end": sum(ch.connecting for ch in tcp),
        "udp_no_reply": sum(ch.failed_by_error.get("no_reply", 0) for ch in mine),
    }


def gateway_sustainable(
    model: Model, gateway: Gateway, entry: GatewayEntry
) -> GatewaySustainable | None:
    """The bound on new connections per second into the gateway's worst pool: its tuples
    over the mean time a connection to that destination holds one (lifetime, then the
    kind's hold after its close: ``Gateway.hold_after``), weighted by connects.  None when
    no load to it has a mean lifetime (a trace, keep-alive pools: connections reused)."""
    towards = entry["pressure"].get("worst_destination")
    if towards is None or getattr(gateway, "dynamic", False):
        return None  # (Cloud NAT's dynamic allocation grows a VM's slice with the demand)
    held = []
    by_address: dict[int, int] = {}  # netfilter: connects by the address their flow hashes to
    for spec, load in channels(model):
        route = load.route
        if route is None or route.gateway is not gateway:
            continue
        key = (load.protocol, load.dest.ip, load.dest.port)
        if not _is_pool_of(towards, destination_label(key)):
            continue
        if spec.keepalive is not None or spec.lifetime is None:
            continue
        life = lifetime_mean(spec.lifetime)
        if math.isfinite(life):
            held.append((load.attempted or 1, life + gateway.hold_after(route.close_kind, life)))
            index = getattr(route.flow, "index", -1)
            if index >= 0:
                by_address[index] = by_address.get(index, 0) + load.attempted + load.connecting
    if not held:
        return None
    holding = sum(w * h for w, h in held) / sum(w for w, _ in held)
    addresses = len(entry["addresses"])
    tuples = entry["pressure"].get("capacity") or entry["ports"] * addresses
    per_s = tuples / holding if holding > 0 else math.inf
    busiest = None
    if addresses > 1 and by_address and sum(by_address.values()):
        # each address holds its own flows' tuples: the busiest fills first
        busiest = max(by_address.values()) / sum(by_address.values())
        per_s = tuples / addresses / holding / busiest if holding > 0 else math.inf
    return {
        "per_s": per_s,
        "tuples": tuples,
        "holding_s": holding,
        "towards": towards,
        "per_vm": " from " in towards,
        "busiest_address_share": busiest,
        # netfilter 6.5+ may take a closing TCP entry's tuple before its hold ends
        "holds_may_end_early": bool(getattr(gateway, "evict", False))
        and towards.startswith("tcp "),
    }


def _is_pool_of(label: str, destination: str) -> bool:
    """Whether a pool labelled ``label`` (a destination, or one VM's slice of it:
    ``tcp 203.0.113.10:443 from builder-1``) is towards ``destination``."""
    return label == destination or label.startswith(destination + " from ")


def _seconds(x: float) -> str:
    return f"{x:g} s"


def gateway_headlines(s: dict[str, Any]) -> list[str]:
    """One line per gateway: exhausted or not, where and since when, what its clients saw
    (their connects first: a dropped SYN is retransmitted, so dropped packets outnumber
    failed connects), and the most the gateway sustains."""
    gateways = s.get("gateways") or {}
    lines = []
    latency = s.get("connect_latency_s") or {}
    errors = (s.get("connections") or {}).get("failed_by_error", {})
    for name, g in gateways.items():
        m = g["mappings"]
        p = g["pressure"]
        clients = g["clients"]
        where = p.get("worst_destination") or "no destination"
        peak = f"peak pressure {_pct(p['peak'])} towards {where}" + _busiest(g)
        if p.get("peak") and p.get("peak_time_s") is not None:
            peak += f", reached at {format_duration(p['peak_time_s'])}"
        peak += sustainable_text(g)
        if m["dropped"]:
            by_reason = m["dropped_by_reason"].items()
            reasons = ", ".join(  # vendors' names (OUT_OF_RESOURCES ...) as they write them
                f"{n:,} {r if r.isupper() else r.replace('_', ' ')}" for r, n in by_reason if n
            )
            tcp_dropped = (
                clients["timed_out"] or clients["still_connecting_at_end"] or clients["delayed"]
            )
            # TCP: a dropped SYN comes back, and is counted again
            again = "; each SYN retransmission asks again" if tcp_dropped else ""
            dropped = (
                f"{m['dropped']:,} of {m['attempted']:,} translations refused ({reasons}{again})"
            )
            client = clients_saw(clients, latency)
            raced = m["dropped_by_reason"].get("insert_failed", 0)
            if raced == m["dropped"]:  # lost confirm races only: no tuple ran out
                lines.append(
                    f"No exhaustion at gateway {name} ({g['kind']}), but {raced:,} of "
                    f"{m['attempted']:,} new flows lost the conntrack insert race "
                    f"(insert_failed: two flows given one tuple at once; each SYN is retried "
                    f"1 s later){client}; {peak}"
                )
                continue
            local = errors.get("EADDRNOTAVAIL", 0)
            hosts = (
                f"; the hosts ran out of local ports too ({local:,} EADDRNOTAVAIL: sockets "
                "waiting on SYN retransmissions hold theirs)"
                if local
                else "; not EADDRNOTAVAIL"
            )
            lines.append(
                f"Exhaustion at gateway {name} ({g['kind']}){client}; {peak}; {dropped}{hosts}"
                + _reclaimed(g)
            )
        else:
            # a kind with per-destination or per-VM limits reports its own capacity
            tuples = p.get("capacity") or g["ports"] * len(g["addresses"])
            lines.append(
                f"Gateway {name} ({g['kind']}): no new flow refused; peak pressure "
                f"{_pct(p['peak'])} of {tuples:,} translated tuples towards {where}"
                + _busiest(g)
                + sustainable_text(g)
                + _reclaimed(g)
            )
    return lines


def _busiest(g: dict[str, Any]) -> str:
    """`` (its busiest address ...: 59 % of its 64,512)``: with several addresses and no
    spill-over, the pressure over all of them understates the one that fills first."""
    top = g["pressure"].get("busiest_address")
    if not top:
        return ""
    return f" (its busiest address {top['address']}: {_pct(top['peak'])} of its {g['ports']:,})"


def _reclaimed(g: dict[str, Any]) -> str:
    """Azure LB: live flows cut when a scale-out shrank each VM's slice of ports."""
    n = g.get("reclaimed_flows", 0)
    if not n:
        return ""
    return f"; {n:,} live flows cut when the backend pool scaled (their ports reclaimed)"


def _latency_is_theirs(clients: dict[str, int], latency: dict[str, Any]) -> bool:
    """Whether the run's connect latency is this gateway's clients' alone: they make every
    TCP connect of the run (no direct host, no other gateway)."""
    everyone = (
        latency.get("connects", 0)
        + latency.get("still_connecting_at_end", 0)
        + clients["timed_out"]
    )
    return clients["tcp_connects"] == everyone


def clients_saw(clients: dict[str, int], latency: dict[str, Any]) -> str:
    """What the gateway's clients' connects came to (``: ...``), or "" when nothing shows:
    those that failed, those through only after SYN retransmissions (with the run's
    latency when it is theirs alone) and those still retransmitting at the end, out of all their
    TCP connects; UDP flows without a reply apart."""
    timed_out, pending = clients["timed_out"], clients["still_connecting_at_end"]
    seen = []
    if timed_out:
        seen.append(f"{timed_out:,} failed with ETIMEDOUT")
    late = clients["delayed"]
    if late:
        spread = (  # the run's latency figures: quoted when its connects are all these
            f" (connect latency p99 {_seconds(latency.get('p99', 0))}, max "
            f"{_seconds(latency.get('max', 0))})"
            if _latency_is_theirs(clients, latency)
            else ""
        )
        seen.append(f"{late:,} got through only after SYN retransmissions{spread}")
    if pending:
        seen.append(f"{pending:,} were still retransmitting at the end")
    parts = []
    if seen:
        parts.append(f"of {clients['tcp_connects']:,} connects, " + _and(seen))
    if clients["udp_no_reply"]:
        parts.append(f"{clients['udp_no_reply']:,} UDP flows got no reply (datagrams dropped)")
    return ": " + "; ".join(parts) if parts else ""


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def sustainable_text(g: dict[str, Any]) -> str:
    """``; it sustains at most N/s into that pool (...)``, or "" without a finite bound."""
    bound = g.get("sustainable")
    if not bound or not math.isfinite(bound["per_s"]):
        return ""
    addresses = len(g["addresses"])
    held = f"{bound['holding_s']:.4g} s held"
    notes = []
    share = bound.get("busiest_address_share")
    if share:  # the formula as printed gives the rate printed: one address over its share
        formula = (
            f"{bound['tuples'] // addresses:,} tuples of the busiest of its {addresses} "
            f"addresses / {held} / {_pct(share)}, its share of the connects by netfilter's "
            "hash; held: lifetime + its hold after the close"
        )
    else:
        formula = f"{bound['tuples']:,} tuples / {held}: lifetime + its hold after the close"
        if addresses > 1 and bound["tuples"] == g["ports"] * addresses:
            notes.append(f"over its {addresses} addresses, an even split: the best case")
    if bound.get("holds_may_end_early"):
        notes.append(
            f"before eviction: kernel {g.get('kernel', '6.5+')} may take a closing entry's "
            "tuple sooner"
        )
    pool = "that VM's slice" if bound.get("per_vm") else "that pool"
    return (
        f"; it sustains at most {format_rate(bound['per_s'])} new connections/s into {pool} "
        f"({'; '.join([formula, *notes])})"
    )


def idle_timeout_lines(s: dict[str, Any]) -> list[str]:
    """Requests that met a gateway's idle timeout: how many, where, and the fix."""
    failed = (s.get("requests") or {}).get("failed_by_reason", {}).get("gateway_idle_timeout", 0)
    if not failed:
        return []
    lines = []
    for name, g in (s.get("gateways") or {}).items():
        idle = g.get("idle") or {}
        if not idle.get("resets"):
            continue
        timeout = (idle.get("timeout_s") or {}).get("tcp")
        seen = "a reset (ECONNRESET)" if idle.get("signal") == "ECONNRESET" else "no answer"
        limit = _seconds(timeout) if timeout else "its"
        lines.append(
            f"Idle timeout at gateway {name} ({g['kind']}): {idle['resets']:,} requests went "
            f"out on pooled connections idle longer than its {limit} idle timeout and met "
            f"{seen}; fix: TCP keepalive more often than every {limit} (load key "
            f'tcp_keepalive, e.g. "60s"), or close idle connections sooner '
            f"(keepalive.idle_timeout below {limit})"
        )
    return lines
