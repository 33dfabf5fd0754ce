"""What a machine's ports are doing now: pools, pressure and headroom from snapshots.

A connect() to a destination may use any port of the ephemeral range that no socket of
the same 4-tuple holds and no bind() holds (Linux ``__inet_hash_connect`` in
``net/ipv4/inet_hashtables.c`` skips a port whose bind bucket came from bind(), listeners
included; ``ip_local_reserved_ports`` too).  So the pressure of a pool (local address,
destination address, destination port) is the share of the range its own sockets, the
listeners and bound sockets in the range and the reserved ports take.  Systems whose
uniqueness scope is the port (Windows, macOS: ``portsim presets``) have one pool for every
destination.  UDP sockets own their port outright (one pool).

Headroom comes from Little's law (J. D. C. Little, "A Proof for the Queuing Formula:
L = λW", Operations Research 9(3), 1961) applied to the TIME_WAIT stage: when this side
closes first, every connection spends TIME_WAIT there, so TIME_WAIT sockets = rate x
TIME_WAIT, which gives the rate of new connections now, and the ports held divided by it
give how long each connection holds its port.  That assumes the snapshot is a steady
state and that this side closes every connection (inferred; a pool without TIME_WAIT
gives no rate).  Erlang B (``sim.analytic``) then gives the refusal now and the rate at
0.1 % refusal, for Poisson arrivals and a selection that finds any free port.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, cast

from sim.analytic import capacity
from sim.resolve import preset_port_range, preset_profile
from sim.snapshot.model import Snapshot, SocketRow, endpoint_text

LINUX_FORMATS = {"ss", "ss-udp", "proc", "netstat", "conntrack", "sysctl"}
WINDOWS_FORMATS = {"netstat-windows", "get-nettcpconnection", "get-nettcpconnection-csv"}
SHOWN_POOLS = 10
HEADROOM_POOLS = 3
TARGET_BLOCKING = 0.001
CONNTRACK_TIME_WAIT_S = 120.0
SCOPES = {
    "4tuple": "ports unique per 4-tuple",
    "local_address": "one port space per local address",
    "port": "one port space for every destination",
}
PORT_ROWS = 20  # sockets --port lists (a server port can have thousands)


@dataclass
class Pool:
    """The sockets of one destination pool (or of the whole port space)."""

    protocol: str
    local_ip: str | None
    destination: str  # "ip:port", or "every destination"
    states: Counter[str] = field(default_factory=Counter)
    ports: set[int] = field(default_factory=set)
    rows: list[SocketRow] = field(default_factory=list)

    @property
    def label(self) -> str:
        local = self.local_ip or "*"
        prefix = "udp " if self.protocol == "udp" else ""
        if self.destination == "every destination":
            source = f"{self.local_ip} -> " if self.local_ip else ""
            return f"{prefix}{source}every destination"
        return f"{prefix}{local} -> {self.destination}"


@dataclass(frozen=True)
class HostView:
    """What the report measures against: the range, TIME_WAIT, scope, and where from."""

    os: str
    lo: int
    hi: int
    range_from: str
    time_wait_s: float
    time_wait_from: str
    scope: str
    tw_reuse: int = 0  # Linux tcp_tw_reuse (the preset's kernel default)
    erlang_caveat: str = ""  # why Erlang B does not apply to this host, if it does not

    @property
    def size(self) -> int:
        return self.hi - self.lo + 1


def guess_os(snapshots: list[Snapshot]) -> str:
    """The preset the listings point to: Windows tools, BSD netstat (macOS), else Linux."""
    formats = {s.format for s in snapshots}
    if formats & WINDOWS_FORMATS:
        return "windows"
    if "netstat-bsd" in formats:
        return "macos"
    return "linux"


def host_view(
    snapshots: list[Snapshot],
    os: str | None,
    port_range: tuple[int, int] | None,
    time_wait: float | None,
) -> HostView:
    """Resolve the range (``--range``, a sysctl snapshot, the preset) and TIME_WAIT."""
    from sim.presets import get_preset

    name = os or guess_os(snapshots)
    preset = get_preset(name)
    default = preset_port_range(preset)
    from_file = next((s for s in snapshots if s.port_range), None)
    rng: tuple[int, int]
    if port_range is not None:
        rng, rng_from = port_range, "--range"
    elif from_file is not None and from_file.port_range is not None:
        rng, rng_from = from_file.port_range, from_file.source
    else:
        rng, rng_from = default, f"the {name} default" + ("" if os else ", assumed")
    tw_from, tw = f"the {name} default", preset.time_wait_s
    if {s.format for s in snapshots} - {"sysctl"} == {"conntrack"}:
        # a gateway's table: entries stay for nf_conntrack_tcp_timeout_time_wait, 2 min
        # (tcp_timeouts[TCP_CONNTRACK_TIME_WAIT], net/netfilter/nf_conntrack_proto_tcp.c)
        tw_from, tw = "conntrack's TIME_WAIT timeout", CONNTRACK_TIME_WAIT_S
    if time_wait is not None:
        tw_from, tw = "--time-wait", time_wait
    tw_reuse = 0
    caveat = ""
    if preset.policy == "linux":
        tw_reuse = preset_profile(preset).default_tw_reuse
        if (rng[1] - rng[0] + 1) % 2:
            caveat = "an odd-sized range: connect() may refuse with a port free"
    elif preset.forced_reuse:
        caveat = "Windows shares ports across destinations when exhausted"
    elif preset.policy == "rfc6056-2":
        caveat = "random draws may refuse with a port free"
    return HostView(name, rng[0], rng[1], rng_from, tw, tw_from, preset.scope, tw_reuse, caveat)


def unique_sockets(snapshots: list[Snapshot]) -> list[SocketRow]:
    """Every socket once: a connection is its 4-tuple (lsof lists one per descriptor, and
    a file given twice adds nothing)."""
    seen: set[tuple] = set()
    out = []
    for snap in snapshots:
        for row in snap.rows:
            key = (row.protocol, row.state if not row.connected else "", row.local, row.remote)
            if key not in seen:
                seen.add(key)
                out.append(row)
    return out


def _state_group(state: str) -> str:
    return state if state in ("ESTABLISHED", "TIME_WAIT") else "other"


def build_report(snapshots: list[Snapshot], view: HostView) -> dict[str, Any]:
    """The report as a JSON-able dict (``--json`` prints it; the text is made from it)."""
    rows = unique_sockets(snapshots)
    lo, hi = view.lo, view.hi
    in_range = [r for r in rows if r.local_port is not None and lo <= r.local_port <= hi]
    outside = [r for r in rows if r.local_port is None or not lo <= r.local_port <= hi]
    reserved = sorted({p for s in snapshots for p in s.reserved_ports if lo <= p <= hi})
    tcp_bound = [r for r in in_range if r.protocol == "tcp" and not r.connected]
    blocking = {r.local_port for r in tcp_bound} | set(reserved)
    pools: dict[tuple, Pool] = {}
    key: tuple[str, str | None, str]
    for row in in_range:
        if row.protocol == "udp":
            key = ("udp", None, "every destination")
        elif view.scope == "local_address":
            key = ("tcp", row.local_ip, "every destination")
        elif view.scope != "4tuple":
            key = ("tcp", None, "every destination")
        elif row.connected:
            key = ("tcp", row.local_ip, row.remote)
        else:
            continue  # a listener or bound socket: it blocks the port for every pool
        pool = pools.get(key)
        if pool is None:
            pool = pools[key] = Pool(*key)
        pool.states[row.state] += 1
        pool.ports.add(cast(int, row.local_port))  # in_range holds numbered ports only
        pool.rows.append(row)
    entries: list[dict[str, Any]] = []
    for pool in pools.values():
        extra = blocking if pool.protocol == "tcp" and view.scope == "4tuple" else set()
        unusable = len(pool.ports | extra | (set(reserved) if pool.protocol == "udp" else set()))
        est, tw = pool.states["ESTABLISHED"], pool.states["TIME_WAIT"]
        other = sum(pool.states.values()) - est - tw
        entries.append(
            {  # a row of the report (Any: the sort below reads numbers and text)
                "pool": pool.label,
                "protocol": pool.protocol,
                "local_address": pool.local_ip,
                "destination": pool.destination,
                "established": est,
                "time_wait": tw,
                "other": other,
                "other_by_state": {
                    s: n
                    for s, n in sorted(pool.states.items())
                    if s not in ("ESTABLISHED", "TIME_WAIT")
                },
                "ports": len(pool.ports),
                "unusable": unusable,
                "pressure": unusable / view.size,
                "_usable": view.size - len(extra if pool.protocol == "tcp" else set(reserved)),
            }
        )
    entries.sort(key=lambda e: (-e["pressure"], -e["ports"], e["pool"]))
    headroom = [_headroom(e, view) for e in entries[:HEADROOM_POOLS] if e["protocol"] == "tcp"]
    for e in entries:
        del e["_usable"]
    listeners = sorted(
        {(r.local_port, r.local, r.state, r.process) for r in tcp_bound}, key=lambda x: x[:2]
    )
    return {
        "sources": [
            {
                "file": s.source,
                "format": s.format,
                "sockets": len(s.rows),
                "not_understood": s.unparsed,
                "examples": [[n, t] for n, t in s.examples],
                **({"port_range": list(s.port_range)} if s.port_range else {}),
                **({"reserved_ports": list(s.reserved_ports)} if s.reserved_ports else {}),
            }
            for s in snapshots
        ],
        "host": {
            "os": view.os,
            "port_range": [lo, hi],
            "range_ports": view.size,
            "range_from": view.range_from,
            "time_wait_s": view.time_wait_s,
            "time_wait_from": view.time_wait_from,
            "scope": view.scope,
        },
        "sockets": {
            "total": len(rows),
            "by_protocol": dict(sorted(Counter(r.protocol for r in rows).items())),
            "by_state": dict(sorted(Counter(r.state for r in rows).items())),
        },
        "pools": entries,
        "outside_range": {
            "sockets": len(outside),
            "by_state": dict(sorted(Counter(r.state for r in outside).items())),
        },
        "listeners_in_range": [
            {"port": p, "address": a, "state": s, "process": proc} for p, a, s, proc in listeners
        ],
        "reserved_in_range": len(reserved),
        "headroom": headroom,
    }


def _headroom(entry: dict[str, Any], view: HostView) -> dict[str, Any]:
    """Little's law on the pool's TIME_WAIT sockets, then Erlang B on the usable ports."""
    usable, tw = entry["_usable"], entry["time_wait"]
    held = entry["established"] + tw + entry["other"]
    out: dict[str, Any] = {
        "pool": entry["pool"],
        "free_ports": view.size - entry["unusable"],
        "usable_ports": usable,
        "time_wait_share": tw / held if held else 0.0,
    }
    if not tw or view.time_wait_s <= 0:
        out["rate_now"] = None
        return out
    rate = tw / view.time_wait_s
    holding = view.time_wait_s * held / tw
    out.update({"rate_now": rate, "holding_s": holding, "rate_when_full": usable / holding})
    caveat = view.erlang_caveat or _reuse_caveat(entry, view)
    if caveat:
        out["erlang_b"] = None
        out["erlang_b_not_applicable"] = caveat
        return out
    cap = capacity(usable, rate, holding - view.time_wait_s, view.time_wait_s, TARGET_BLOCKING)
    out["erlang_b"] = {
        "offered_load": cap.offered_load,
        "blocking_now": cap.blocking,
        "target_blocking": TARGET_BLOCKING,
        "sustainable_rate": cap.max_rate,
        "headroom_factor": cap.max_rate / rate,
    }
    return out


def _reuse_caveat(entry: dict[str, Any], view: HostView) -> str:
    """Linux reuses a TIME_WAIT early for loopback peers with tcp_tw_reuse = 2 (the default
    since 4.18; ``tcp_twsk_unique`` in ``net/ipv4/tcp_ipv4.c``), or for every peer with 1:
    ports then come back long before TIME_WAIT ends, which the loss model does not see."""
    if view.tw_reuse == 1:
        return "tcp_tw_reuse = 1 recycles TIME_WAITs after 1 s"
    ip = (entry.get("destination") or "").rsplit(":", 1)[0].strip("[]")
    try:
        loopback = ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return ""
    if view.tw_reuse == 2 and loopback:
        return "a loopback peer: tcp_tw_reuse = 2 recycles its TIME_WAITs after 1 s"
    return ""


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %" if x >= 0.001 or x == 0 else f"{100 * x:.2f} %"


def _states(counts: dict[str, int]) -> str:
    return ", ".join(f"{s} {n:,}" for s, n in sorted(counts.items(), key=lambda i: -i[1]))


def report_lines(report: dict[str, Any], shown: int = SHOWN_POOLS) -> list[str]:
    """The report for a terminal."""
    host, socks = report["host"], report["sockets"]
    files = ", ".join(
        f"{s['file']} ({s['format']}, {s['sockets']:,} sockets)"
        if "port_range" not in s
        else f"{s['file']} (range {s['port_range'][0]}-{s['port_range'][1]})"
        for s in report["sources"]
    )
    lines = [
        f"snapshots: {files}",
        f"host: {host['os']}, ephemeral range {host['port_range'][0]}-{host['port_range'][1]} "
        f"({host['range_ports']:,} ports, from {host['range_from']}), TIME_WAIT "
        f"{host['time_wait_s']:g} s ({host['time_wait_from']}), {SCOPES[host['scope']]}",
        f"sockets: {socks['total']:,} ({_states(socks['by_protocol'])}): "
        f"{_states(socks['by_state']) or 'none'}",
    ]
    pools = report["pools"]
    if pools:
        lines.append("pools in the ephemeral range, worst first:")
        lines.append(f"  {'pressure':>8}  {'ESTAB':>6}  {'TIME_WAIT':>9}  {'other':>6}  pool")
        for e in pools[:shown]:
            lines.append(
                f"  {_pct(e['pressure']):>8}  {e['established']:>6,}  {e['time_wait']:>9,}  "
                f"{e['other']:>6,}  {e['pool']}"
            )
        if len(pools) > shown:
            lines.append(f"  ... and {len(pools) - shown:,} more pools (--json lists them all)")
    else:
        lines.append("pools: no connection holds a port of the ephemeral range")
    out = report["outside_range"]
    if out["sockets"]:
        lines.append(
            f"outside the ephemeral range: {out['sockets']:,} sockets ({_states(out['by_state'])})"
            ": servers' accepted connections and fixed ports, not taken from the range"
        )
    listeners = report["listeners_in_range"]
    if listeners:
        ports = ", ".join(
            f"{x['port']}" + (f" ({x['process']})" if x["process"] else "") for x in listeners[:8]
        )
        more = f" and {len(listeners) - 8} more" if len(listeners) > 8 else ""
        lines.append(
            f"listening or bound in the range ({len(listeners)}; connect() skips these ports "
            f"for every destination): {ports}{more}"
        )
    if report["reserved_in_range"]:
        lines.append(f"reserved in the range: {report['reserved_in_range']:,} ports")
    if report["headroom"]:
        lines.append("headroom (Little's law on TIME_WAIT, then Erlang B):")
    for h in report["headroom"]:
        if h["rate_now"] is None:
            lines.append(
                f"  {h['pool']}: {h['free_ports']:,} ports free; no TIME_WAIT here, so no rate "
                "to extrapolate (long-lived connections, or the peer closes first)"
            )
            continue
        eb = h["erlang_b"]
        if eb is None:
            lines.append(
                f"  {h['pool']}: about {h['rate_now']:,.3g} new connections/s now, each "
                f"holding its port {h['holding_s']:,.3g} s ({_pct(h['time_wait_share'])} of "
                f"the pool in TIME_WAIT); {h['rate_when_full']:,.4g}/s would fill the range "
                f"without reuse; Erlang B does not apply: {h['erlang_b_not_applicable']}"
            )
            continue
        lines.append(
            f"  {h['pool']}: about {h['rate_now']:,.3g} new connections/s now, each holding "
            f"its port {h['holding_s']:,.3g} s ({_pct(h['time_wait_share'])} of the pool in "
            f"TIME_WAIT); refused now (Erlang B) {eb['blocking_now']:.2g}; sustainable "
            f"{eb['sustainable_rate']:,.4g}/s at {eb['target_blocking']:g} refusal "
            f"({eb['headroom_factor']:,.3g}x now), {h['rate_when_full']:,.4g}/s fills the range"
        )
    for s in report["sources"]:
        if s["not_understood"]:
            example = "; ".join(f"line {n}: {t[:70]!r}" for n, t in s["examples"][:3])
            lines.append(f"not understood in {s['file']}: {s['not_understood']:,} lines, {example}")
    return lines


def port_lines(snapshots: list[Snapshot], port: int, view: HostView) -> list[str]:
    """Who holds local ``port``, in which state, towards whom."""
    rows = [r for r in unique_sockets(snapshots) if r.local_port == port]
    where = (
        f"in the ephemeral range {view.lo}-{view.hi}"
        if view.lo <= port <= view.hi
        else f"outside the ephemeral range {view.lo}-{view.hi}"
    )
    if not rows:
        lines = [f"port {port} ({where}): no socket holds it in these snapshots"]
        peers = [r for r in unique_sockets(snapshots) if r.remote_port == port]
        for r in peers[:10]:
            lines.append(f"  it is the peer's port of: {_describe(r)}")
        return lines
    lines = [f"port {port} ({where}): {len(rows)} socket{'' if len(rows) == 1 else 's'}"]
    lines += [f"  {_describe(r)}" for r in rows[:PORT_ROWS]]
    if len(rows) > PORT_ROWS:
        lines.append(f"  ... and {len(rows) - PORT_ROWS:,} more")
    return lines


def _describe(r: SocketRow) -> str:
    towards = f" -> {r.remote}" if r.connected else ""
    tw = f", {r.time_wait_left_s:g} s of TIME_WAIT left" if r.time_wait_left_s is not None else ""
    who = f", {r.process}" if r.process else ""
    return f"{r.protocol} {r.state} {r.local}{towards}{who}{tw} ({r.source})"


__all__ = ["build_report", "endpoint_text", "host_view", "port_lines", "report_lines"]
