"""What a run's gateways say in the verdict: where exhaustion happens and what the client
sees (dropped SYNs show as connect latency and ETIMEDOUT, not EADDRNOTAVAIL)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from sim.units import format_percent as _pct

if TYPE_CHECKING:
    from sim.engine import Model
    from sim.summary.types import ConnectLatency, GatewayEntry


def gateways_report(model: Model) -> tuple[dict[str, GatewayEntry], ConnectLatency]:
    """``gateways`` and ``connect_latency_s``: each gateway's own report, and connect
    latency over every TCP connect (those of hosts without a gateway take 0 s)."""
    direct = sum(ch.succeeded for ch in model.loads if ch.route is None and ch.protocol == "tcp")
    until = model.scenario.duration
    gateways = {name: cast("GatewayEntry", g.summary(until)) for name, g in model.gateways.items()}
    return gateways, cast("ConnectLatency", model.connect.summary(immediate_elsewhere=direct))


def _seconds(x: float) -> str:
    return f"{x:g} s"


def gateway_headlines(s: dict[str, Any]) -> list[str]:
    """One line per gateway: exhausted or not, where, and what the client saw."""
    gateways = s.get("gateways") or {}
    lines = []
    latency = s.get("connect_latency_s") or {}
    errors = (s.get("connections") or {}).get("failed_by_error", {})
    timed_out, no_reply = errors.get("ETIMEDOUT", 0), errors.get("no_reply", 0)
    for name, g in gateways.items():
        m = g["mappings"]
        p = g["pressure"]
        where = p.get("worst_destination") or "no destination"
        if m["dropped"]:
            by_reason = m["dropped_by_reason"].items()
            reasons = ", ".join(  # vendors' names (OUT_OF_RESOURCES ...) as they write them
                f"{n:,} {r if r.isupper() else r.replace('_', ' ')}" for r, n in by_reason if n
            )
            seen = []
            if latency.get("delayed") or timed_out:
                seen.append(
                    f"connect latency p50 {_seconds(latency.get('p50', 0))}, p99 "
                    f"{_seconds(latency.get('p99', 0))}, max {_seconds(latency.get('max', 0))} "
                    "(SYN retransmissions)"
                )
            if timed_out:
                seen.append(f"{timed_out:,} connect() calls failed with ETIMEDOUT")
            if no_reply:
                seen.append(f"{no_reply:,} UDP flows got no reply (datagrams dropped)")
            if pending := latency.get("still_connecting_at_end", 0):
                seen.append(f"{pending:,} connects still waiting on retransmissions at the end")
            client = "; the client sees " + ", ".join(seen) if seen else ""
            raced = m["dropped_by_reason"].get("insert_failed", 0)
            if raced == m["dropped"]:  # lost confirm races only: no tuple ran out
                lines.append(
                    f"No exhaustion at gateway {name} ({g['kind']}), but {raced:,} of "
                    f"{m['attempted']:,} new flows lost the conntrack insert race "
                    f"(insert_failed: two flows given one tuple at once; each SYN is retried "
                    f"1 s later); peak pressure {_pct(p['peak'])} towards {where}{client}"
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
                f"Exhaustion at gateway {name} ({g['kind']}): {m['dropped']:,} of "
                f"{m['attempted']:,} new flows' packets dropped ({reasons}); peak pressure "
                f"{_pct(p['peak'])} towards {where}{client}{hosts}"
            )
        else:
            # a kind with per-destination or per-VM limits reports its own capacity
            tuples = p.get("capacity") or g["ports"] * len(g["addresses"])
            lines.append(
                f"Gateway {name} ({g['kind']}): no packet dropped; peak pressure "
                f"{_pct(p['peak'])} of {tuples:,} translated tuples towards {where}"
            )
    return lines


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
