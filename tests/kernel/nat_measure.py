"""Measurements of Linux MASQUERADE on the running kernel, as plain data.

Each function builds its own lab (natlab.nat_network), runs one experiment and returns
dicts and lists only, so tests can hold the figures against hand arithmetic
(nat_reference.py) and against the model (sim.nat) alike.  All traffic stays inside the
lab's namespaces; every wait is bounded.
"""

from __future__ import annotations

import time
from typing import Any

from tests.kernel.natlab import (
    SERVER_A,
    SERVER_B,
    UDP_ECHO,
    UDP_SILENT,
    Client,
    CtEntry,
    NatNet,
    conntrack_stats,
    conntrack_tcp,
    conntrack_udp,
    nat_network,
)

CLIENT_PORT_BASE = 50000  # outside every translated range used here
# (tcp_syn_retries, tcp_syn_linear_timeouts) of each client in measure_syn_retransmissions
SYN_CONFIGS: tuple[tuple[int, int], ...] = ((2, 0), (2, 4))


def _entry(net: NatNet, src: str, sport: int, dst: str, dport: int) -> CtEntry | None:
    for e in conntrack_tcp(net.router):
        if (e.src, e.sport, e.dst, e.dport) == (src, sport, dst, dport):
            return e
    return None


def _wait_state(
    net: NatNet, flow: tuple[str, int, str, int], state: str, within_s: float = 2.0
) -> tuple[CtEntry | None, float]:
    """Poll the router's table (bounded) until the flow's entry reaches ``state``: the
    entry, and the wall time just before the read that returned it (the table was read
    between then and the return; on a loaded machine the two can be a second apart)."""
    end = time.monotonic() + within_s
    started = time.time()
    entry = _entry(net, *flow)
    while time.monotonic() < end and (entry is None or entry.state != state):
        time.sleep(0.02)
        started = time.time()
        entry = _entry(net, *flow)
    return entry, started


def _connect(client: Client, cid: str, src: str, sport: int, dst: str, **kw: Any) -> Any:
    return client.agent.call(
        "connect", id=cid, src=src, sport=sport, dst=dst, dport=kw.pop("dport", 80), **kw
    )


def _syn_times(records: list[dict[str, Any]], src: str, sport: int) -> list[float]:
    """Kernel receive times at the router of the flow's SYNs, from the first one: free of
    the client's scheduling delays."""
    flow = (src, sport)
    times = [
        p["t"] for p in records if p["syn"] and not p["ack"] and (p["src"], p["sport"]) == flow
    ]
    return [round(t - times[0], 4) for t in times]


def _first_syn(records: list[dict[str, Any]], src: str, sport: int) -> float:
    return min(p["t"] for p in records if p["syn"] and (p["src"], p["sport"]) == (src, sport))


def _delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in ("insert_failed", "drop") if k in after}


# --------------------------------------------------------------------------- (a)


def measure_port_preservation(lo: int = 40000, hi: int = 40009) -> dict[str, Any]:
    """Translated ports for: a client port inside the range with the tuple free, the same
    port from a second client to the same destination, and to another destination; a
    client port outside the range."""
    port = lo + 3
    with nat_network(lo, hi, clients=2) as net:
        c1, c2 = net.clients
        flows = {
            "first": (c1, c1.addrs[0], port, SERVER_A),
            "same_port_same_dst": (c2, c2.addrs[0], port, SERVER_A),
            "same_port_other_dst": (c2, c2.addrs[1], port, SERVER_B),
            "port_outside_range": (c1, c1.addrs[1], CLIENT_PORT_BASE, SERVER_A),
            "same_source_other_dst": (c1, c1.addrs[1], CLIENT_PORT_BASE, SERVER_B),
        }
        out: dict[str, Any] = {"range": [lo, hi], "client_port": port}
        for name, (client, src, sport, dst) in flows.items():
            res = _connect(client, name, src, sport, dst)
            entry = _entry(net, src, sport, dst, 80)
            out[name] = {
                "connected": res["ok"],
                "client_port": sport,
                "nat_addr": entry.nat_addr if entry else None,
                "nat_port": entry.nat_port if entry else None,
            }
        out["server_saw"] = sorted(tuple(a) for a in net.server.call("accepted"))
        return out


def measure_port_classes(
    ports: tuple[int, ...] = (100, 200, 300, 700, 800, 900, 50000, 50001, 50002),
) -> dict[str, Any]:
    """No ``--to-ports``: each client port is first taken by client 0, then asked for by
    client 1 towards the same destination; where does client 1's flow land?"""
    with nat_network(None, None, clients=2) as net:
        c1, c2 = net.clients
        rows = []
        for i, port in enumerate(ports):
            for c in (c1, c2):
                _connect(c, f"p{i}", c.addrs[0], port, SERVER_A)
            first = _entry(net, c1.addrs[0], port, SERVER_A, 80)
            second = _entry(net, c2.addrs[0], port, SERVER_A, 80)
            rows.append(
                {
                    "client_port": port,
                    "first": first.nat_port if first else None,
                    "second": second.nat_port if second else None,
                }
            )
        return {"rows": rows}


# --------------------------------------------------------------------------- (b) + (e)


def measure_exhaustion(lo: int = 40000, hi: int = 40009, wait_s: float = 1.5) -> dict[str, Any]:
    """Fill the range with established flows to A; one more to A, then one to B."""
    size = hi - lo + 1
    with nat_network(lo, hi, clients=1, addrs_per_client=3) as net:
        (c1,) = net.clients
        src = c1.addrs[0]
        filled = [
            _connect(c1, f"f{i}", src, CLIENT_PORT_BASE + i, SERVER_A)["ok"] for i in range(size)
        ]
        nat_ports = sorted(
            e.nat_port for e in conntrack_tcp(net.router) if e.dst == SERVER_A and e.src == src
        )
        before = conntrack_stats(net.router)
        net.router_agent.call("sniff_start", ifaces=[c1.router_if])
        extra = _connect(c1, "extra", c1.addrs[1], CLIENT_PORT_BASE, SERVER_A, timeout_s=wait_s)
        other = _connect(c1, "other", c1.addrs[2], CLIENT_PORT_BASE, SERVER_B)
        records = net.router_agent.call("sniff_stop")
        after = conntrack_stats(net.router)
        other_entry = _entry(net, c1.addrs[2], CLIENT_PORT_BASE, SERVER_B, 80)
        return {
            "range_size": size,
            "filled_ok": filled,
            "nat_ports_to_a": nat_ports,
            "extra_to_a": {
                "error": extra["error"],
                "waited_s": wait_s,
                "syn_times": _syn_times(records, c1.addrs[1], CLIENT_PORT_BASE),
                "in_table": _entry(net, c1.addrs[1], CLIENT_PORT_BASE, SERVER_A, 80) is not None,
            },
            "to_b": {
                "connected": other["ok"],
                "nat_port": other_entry.nat_port if other_entry else None,
            },
            "counters": _delta(after, before),
        }


# --------------------------------------------------------------------------- (c)


def measure_conntrack_holds(lo: int = 40000, hi: int = 40009) -> dict[str, Any]:
    """State and seconds left of the router's entry: open, after a FIN close, after RST."""
    with nat_network(lo, hi, clients=1) as net:
        (c1,) = net.clients
        fin = (c1.addrs[0], CLIENT_PORT_BASE, SERVER_A, 80)
        rst = (c1.addrs[1], CLIENT_PORT_BASE, SERVER_A, 80)
        _connect(c1, "fin", fin[0], fin[1], SERVER_A)
        _connect(c1, "rst", rst[0], rst[1], SERVER_A)
        open_entry = _entry(net, *fin)
        closed_at = c1.agent.call("close", ids=["fin"], how="fin")["fin"]
        tw, tw_started = _wait_state(net, fin, "TIME_WAIT")
        tw_read = time.time()
        rst_at = c1.agent.call("close", ids=["rst"], how="rst")["rst"]
        cl, cl_started = _wait_state(net, rst, "CLOSE")
        cl_read = time.time()
        sysctls = {
            name: net.router_agent.call("sysctl", name=f"net.netfilter.{name}")
            for name in (
                "nf_conntrack_tcp_timeout_established",
                "nf_conntrack_tcp_timeout_time_wait",
                "nf_conntrack_tcp_timeout_close",
            )
        }

        def row(
            entry: CtEntry | None, since: float | None, started: float, read: float
        ) -> dict[str, Any]:
            """The table was read between ``started`` and ``read`` (both after the close)."""
            return {
                "state": entry.state if entry else None,
                "timeout_s": entry.timeout_s if entry else None,
                "read_started_after_close_s": None if since is None else round(started - since, 3),
                "read_after_close_s": None if since is None else round(read - since, 3),
            }

        return {
            "established": row(open_entry, None, 0.0, 0.0),
            "after_fin": row(tw, closed_at, tw_started, tw_read),
            "after_rst": row(cl, rst_at, cl_started, cl_read),
            "router_sysctls": sysctls,
        }


def measure_hold_and_eviction(
    time_wait_s: int = 2, delay_s: float = 0.5, max_trials: int = 12, until_blocked: bool = True
) -> dict[str, Any]:
    """One-port range, TIME_WAIT shortened to ``time_wait_s`` in the router's namespace.

    Each trial (its own server port, so trials are independent 5-tuples) closes a flow
    from client 1 with FIN, waits ``delay_s`` after the close, then connects from client 2
    to the same destination: the only translated tuple is held by the TIME_WAIT entry.
    The SYN sequence numbers seen at the router say whether 6.5+'s eviction applies.
    Stops after the first trial where the hold blocked the connect (``until_blocked``).
    """
    sysctl = ("net.netfilter.nf_conntrack_tcp_timeout_time_wait", str(time_wait_s))
    ports = list(range(80, 80 + max_trials))
    with nat_network(40000, 40000, clients=2, server_ports=ports, router_sysctls=[sysctl]) as net:
        c1, c2 = net.clients
        ifaces = [c1.router_if, c2.router_if]
        trials: list[dict[str, Any]] = []
        for k, dport in enumerate(ports):
            old = (c1.addrs[0], CLIENT_PORT_BASE + k, SERVER_A, dport)
            net.router_agent.call("sniff_start", ifaces=ifaces)
            _connect(c1, f"old{k}", old[0], old[1], SERVER_A, dport=dport, send_bytes=100)
            closed_at = c1.agent.call("close", ids=[f"old{k}"], how="fin")[f"old{k}"]
            held, _ = _wait_state(net, old, "TIME_WAIT")
            time.sleep(max(0.0, closed_at + delay_s - time.time()))
            before = conntrack_stats(net.router)
            new_src = (c2.addrs[0], CLIENT_PORT_BASE + k)
            new = _connect(
                c2, f"new{k}", *new_src, SERVER_A, dport=dport, timeout_s=time_wait_s + 4
            )
            after = conntrack_stats(net.router)
            records = net.router_agent.call("sniff_stop")
            old_segs = [p for p in records if (p["src"], p["sport"]) == old[:2]]
            old_end = max((p["seq"] + p["len"] + p["syn"] + p["fin"]) % 2**32 for p in old_segs)
            old_last = max(p["t"] for p in old_segs)
            syns = [
                p
                for p in records
                if (p["src"], p["sport"]) == (c2.addrs[0], CLIENT_PORT_BASE + k) and p["syn"]
            ]
            new_entry = _entry(net, c2.addrs[0], CLIENT_PORT_BASE + k, SERVER_A, dport)
            trials.append(
                {
                    "old_state": held.state if held else None,
                    "old_td_end": old_end,
                    "new_isn": syns[0]["seq"] if syns else None,
                    "connected": new["ok"],
                    "connect_s": new["elapsed_s"],
                    # kernel times at the router, from the old flow's last segment (its
                    # final ACK, which set the TIME_WAIT timeout)
                    "syn_after_close_s": [round(p["t"] - old_last, 4) for p in syns],
                    "nat_port": new_entry.nat_port if new_entry else None,
                    "counters": _delta(after, before),
                }
            )
            if until_blocked and len(syns) > 1:  # the hold blocked this one: shown, stop
                break
        return {"time_wait_s": time_wait_s, "delay_s": delay_s, "trials": trials}


def measure_udp_holds(again_after_s: float = 2.3) -> dict[str, Any]:
    """UDP entries after the first datagram of a flow nobody answers and of one the server
    echoes, then after a second datagram on each ``again_after_s`` later (past the 2 s after
    which an answered flow counts as a stream)."""
    with nat_network(40000, 40009, clients=1) as net:
        (c1,) = net.clients
        flows = {
            "unreplied": (c1.addrs[0], CLIENT_PORT_BASE, SERVER_A, UDP_SILENT),
            "replied": (c1.addrs[1], CLIENT_PORT_BASE, SERVER_A, UDP_ECHO),
        }
        out: dict[str, Any] = {"again_after_s": again_after_s}
        sent: dict[str, float] = {}  # first datagram of each flow
        last: dict[str, float] = {}  # latest datagram of each flow
        for rnd in ("first", "again"):
            if rnd == "again":
                time.sleep(max(0.0, min(sent.values()) + again_after_s - time.time()))
            for name, (src, sport, dst, dport) in flows.items():
                res = c1.agent.call(
                    "udp_send", id=name, src=src, sport=sport, dst=dst, dport=dport,
                    reply_s=1.0 if dport == UDP_ECHO else 0.0,
                )  # fmt: skip
                sent.setdefault(name, res["t"])
                last[name] = res["t"]
                out.setdefault(name, {})[f"reply_{rnd}"] = res["reply"]
            table = {(e.src, e.sport, e.dst, e.dport): e for e in conntrack_udp(net.router)}
            read = time.time()
            for name, flow in flows.items():
                e = table.get(flow)
                out[name][rnd] = {
                    "state": e.state if e else None,
                    "timeout_s": e.timeout_s if e else None,
                    "nat_port": e.nat_port if e else None,
                    "since_first_s": round(read - sent[name], 3),
                    "since_last_s": round(read - last[name], 3),
                }
        return out


# --------------------------------------------------------------------------- (d)


def measure_syn_retransmissions(
    configs: tuple[tuple[int, int], ...] = SYN_CONFIGS, timeout_s: float = 20.0
) -> dict[str, Any]:
    """One-port range held by an established flow; each client namespace k, with
    tcp_syn_retries / tcp_syn_linear_timeouts = configs[k], connects to the same
    destination at the same time.  Returns SYN times at the router and connect() outcome."""
    sysctls = [
        [("net.ipv4.tcp_syn_retries", str(r)), ("net.ipv4.tcp_syn_linear_timeouts", str(lin))]
        for r, lin in configs
    ]
    with nat_network(40000, 40000, clients=len(configs), client_sysctls=sysctls) as net:
        first = net.clients[0]
        holder = _connect(first, "holder", first.addrs[0], CLIENT_PORT_BASE, SERVER_A)
        before = conntrack_stats(net.router)
        net.router_agent.call("sniff_start", ifaces=[c.router_if for c in net.clients])
        for c in net.clients:
            src = c.addrs[1]
            _connect(c, "blocked", src, CLIENT_PORT_BASE, SERVER_A, timeout_s=timeout_s, wait=False)
        results = [c.agent.call("wait", id="blocked", timeout_s=timeout_s + 5) for c in net.clients]
        records = net.router_agent.call("sniff_stop")
        after = conntrack_stats(net.router)
        first_syn = {}
        for p in records:
            if p["syn"] and p["sport"] == CLIENT_PORT_BASE:
                first_syn.setdefault(p["src"], p["t"])
        runs = []
        for (r, lin), c, res in zip(configs, net.clients, results, strict=True):
            runs.append(
                {
                    "tcp_syn_retries": r,
                    "tcp_syn_linear_timeouts": lin,
                    "error": res["error"],
                    "syn_times": _syn_times(records, c.addrs[1], CLIENT_PORT_BASE),
                    # connect() start to ETIMEDOUT, less the first SYN's delay after start
                    "connect_s": round(res["t_end"] - first_syn[c.addrs[1]], 4),
                }
            )
        return {"holder_connected": holder["ok"], "runs": runs, "counters": _delta(after, before)}


# --------------------------------------------------------------------------- random-fully


def measure_random_fully(n: int = 20, lo: int = 1024, hi: int = 65535) -> dict[str, Any]:
    """Client ports inside the range, each tuple free: kept without flags; with
    ``fully-random`` (NF_NAT_RANGE_PROTO_RANDOM_FULLY) the preservation step is skipped."""
    out: dict[str, Any] = {"n": n, "range": [lo, hi]}
    for flags in ("", "fully-random"):
        with nat_network(lo, hi, clients=1, flags=flags) as net:
            (c1,) = net.clients
            kept = 0
            for i in range(n):
                sport = CLIENT_PORT_BASE + i
                _connect(c1, f"k{i}", c1.addrs[0], sport, SERVER_A)
                entry = _entry(net, c1.addrs[0], sport, SERVER_A, 80)
                kept += int(entry is not None and entry.nat_port == sport)
        out[flags or "default"] = {"kept": kept}
    return out


# --------------------------------------------------------------------------- ISN order


def measure_isn_order(pairs: int = 100) -> dict[str, Any]:
    """ISNs of ``2 * pairs`` connects from different source ports, in order: how often the
    later SYN's ISN + 1 is after the earlier one's (what decides nf_seq_has_advanced).
    Disjoint pairs, so the pairs are independent."""
    with nat_network(1024, 65535, clients=1) as net:
        (c1,) = net.clients
        net.router_agent.call("sniff_start", ifaces=[c1.router_if])
        for i in range(2 * pairs):
            _connect(c1, f"i{i}", c1.addrs[0], CLIENT_PORT_BASE + i, SERVER_A)
            c1.agent.call("close", ids=[f"i{i}"], how="rst")
        records = net.router_agent.call("sniff_stop")
    by_port = {p["sport"]: p["seq"] for p in records if p["syn"] and not p["ack"]}
    isns = [
        by_port[CLIENT_PORT_BASE + i] for i in range(2 * pairs) if CLIENT_PORT_BASE + i in by_port
    ]
    after = sum(
        int(0 < ((isns[2 * k + 1] + 1 - (isns[2 * k] + 1)) & 0xFFFFFFFF) < 0x80000000)
        for k in range(len(isns) // 2)
    )
    return {"pairs": len(isns) // 2, "later_after_earlier": after}


# --------------------------------------------------------------------------- confirm race


def measure_confirm_race(trials: int = 40, flags: str = "") -> dict[str, Any]:
    """Two clients, pinned to CPUs 0 and 1, connect from the same source port (in the
    range) to the same destination at an agreed instant; each trial has its own source and
    server port, so the holds of earlier trials never meet it.  Each
    router CPU runs get_unique_tuple before the other's entry is confirmed when the SYNs
    arrive close enough together: both keep the port, and the second confirm fails
    (kubernetes/kubernetes#56903).  Per trial: the SYNs' arrival gap at the router (kernel
    stamps), insert_failed, and each client's SYN count and translated port."""
    lo, dport0 = 41000, 1000
    ports = list(range(dport0, dport0 + trials))  # one per trial: earlier holds stay apart
    with nat_network(lo, lo + 999, clients=2, flags=flags, server_ports=ports) as net:
        c1, c2 = net.clients
        cpus = [c1.agent.call("pin", cpu=0), c2.agent.call("pin", cpu=1)]
        rows: list[dict[str, Any]] = []
        for k in range(trials):
            sport, dport = lo + k, dport0 + k
            net.router_agent.call("sniff_start", ifaces=[c1.router_if, c2.router_if])
            before = conntrack_stats(net.router)
            at = time.time() + 0.05
            for c in (c1, c2):
                kw = {"dport": dport, "wait": False, "at": at, "timeout_s": 3}
                _connect(c, f"r{k}", c.addrs[0], sport, SERVER_A, **kw)
            results = [c.agent.call("wait", id=f"r{k}", timeout_s=10) for c in (c1, c2)]
            records = net.router_agent.call("sniff_stop")
            after = conntrack_stats(net.router)
            syns = [_syn_times(records, c.addrs[0], sport) for c in (c1, c2)]
            firsts = [_first_syn(records, c.addrs[0], sport) for c in (c1, c2)]
            ports = []
            for c in (c1, c2):
                e = _entry(net, c.addrs[0], sport, SERVER_A, dport)
                ports.append(e.nat_port if e else None)
            rows.append(
                {
                    "client_port": sport,
                    "gap_us": round((firsts[1] - firsts[0]) * 1e6, 1),
                    "connected": [r["ok"] for r in results],
                    "syn_times": syns,
                    "nat_ports": ports,
                    "counters": _delta(after, before),
                }
            )
            for c in (c1, c2):
                c.agent.call("close", ids=[f"r{k}"], how="rst")
        return {"flags": flags, "cpus": cpus, "trials": rows}
