"""A NAT lab on the running kernel: client namespaces, a MASQUERADE router, a server.

Topology (every namespace unique and deleted in ``finally``; no link leaves them)::

    client k (10.77.<k+1>.11, .12, ...) --veth-- router --veth-- server (10.77.100.10 = A,
                                                  |                     10.77.100.11 = B)
                                         MASQUERADE to 10.77.100.1:<lo>-<hi>

The router forwards and masquerades TCP and UDP leaving towards the server with a
narrowed port range (nftables ``masquerade to :lo-hi``, or iptables ``MASQUERADE
--to-ports`` where nft is missing).  The server has no route back to the clients' networks, so only
translated traffic is answered.  Each namespace runs ``nat_agent.py``; the router's agent
also captures the TCP segments arriving from the clients.
"""

from __future__ import annotations

import functools
import json
import re
import select
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.replay.lab import kernel_available, namespace

AGENT = Path(__file__).with_name("nat_agent.py")
SERVER_A, SERVER_B = "10.77.100.10", "10.77.100.11"
ROUTER_OUT = "10.77.100.1"  # the masquerade (translated) address
AGENT_DEADLINE_S = 120
UDP_ECHO, UDP_SILENT = 53, 54  # server UDP ports: one answers every datagram, one never


@functools.cache
def nat_tools() -> tuple[str | None, str]:
    """Which rule tool the lab uses ('nft' or 'iptables'), or None and why not.

    Cached: tried once per run in a throwaway namespace (a masquerade rule and the
    conntrack sysctls must both work there)."""
    ok, why = kernel_available()
    if not ok:
        return None, why
    tool = "nft" if shutil.which("nft") else "iptables" if shutil.which("iptables") else None
    if tool is None:
        return None, "neither nft nor iptables is installed (.ci/run installs nftables)"
    try:
        with namespace("probe") as ns:
            _ip("-n", ns, "link", "add", "srv", "type", "veth", "peer", "name", "srv1")
            _apply_rules(ns, tool, 40000, 40009, "")
            sh(ns, "cat", "/proc/sys/net/netfilter/nf_conntrack_tcp_timeout_time_wait")
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"cannot set up {tool} NAT in a network namespace: {exc}"
    return tool, tool


class AgentError(RuntimeError):
    """The agent reported an error or did not answer."""


class Agent:
    """One ``nat_agent.py`` process inside a namespace, driven line by line."""

    def __init__(self, ns: str) -> None:
        self.ns = ns
        argv = ["ip", "netns", "exec", ns, sys.executable, "-I", str(AGENT)]
        self.proc = subprocess.Popen(
            [*argv, str(AGENT_DEADLINE_S)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def call(self, op: str, timeout: float = 30.0, **kw: Any) -> Any:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"op": op, **kw}) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            raise AgentError(f"agent in {self.ns} did not answer {op} within {timeout} s")
        line = self.proc.stdout.readline()
        if not line:
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise AgentError(f"agent in {self.ns} exited during {op}: {err[-500:]}")
        reply = json.loads(line)
        if "error" in reply:
            raise AgentError(f"agent in {self.ns}, {op}: {reply['error']}")
        return reply["result"]

    def close(self) -> None:
        """End the agent: EOF first, then kill this process (ours) if it lingers."""
        try:
            if self.proc.stdin:
                self.proc.stdin.close()
            self.proc.wait(timeout=3)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait(timeout=3)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream:
                stream.close()


def sh(ns: str, *argv: str, timeout: float = 10.0, stdin: str | None = None) -> str:
    proc = subprocess.run(
        ["ip", "netns", "exec", ns, *argv],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise OSError(f"{' '.join(argv)} in {ns} failed: {proc.stderr.strip()}")
    return proc.stdout


def _ip(*args: str) -> None:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
    if proc.returncode != 0:
        raise OSError(f"ip {' '.join(args)}: {proc.stderr.strip()}")


@dataclass
class Client:
    ns: str
    addrs: list[str]
    agent: Agent
    router_if: str


@dataclass
class NatNet:
    """The built lab: agents to drive and the router's namespace to read."""

    router: str
    router_agent: Agent
    server: Agent
    clients: list[Client]
    port_lo: int | None  # None: no --to-ports
    port_hi: int | None
    tool: str
    ports: list[int] = field(default_factory=list)


def _nat_rules(tool: str, lo: int | None, hi: int | None, flags: str) -> list[list[str]]:
    """The masquerade rule; ``lo`` None: no port range (the kernel's port classes)."""
    ports = "" if lo is None or hi is None else f"{lo}-{hi}" if hi > lo else str(lo)
    if tool == "nft":
        extra = f" {flags}" if flags else ""
        to = f" to :{ports}" if ports else ""
        ruleset = (
            "table ip portsim_nat {\n"
            "  chain postrouting {\n"
            "    type nat hook postrouting priority srcnat; policy accept;\n"
            f'    oifname "srv" meta l4proto {{ tcp, udp }} masquerade{to}{extra}\n'
            "  }\n"
            "}\n"
        )
        return [["nft", "-f", "-", ruleset]]
    extra_args = {"": [], "fully-random": ["--random-fully"], "random": ["--random"]}[flags]
    return [
        [
            *("iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "srv", "-p", proto),
            *("-j", "MASQUERADE", *(("--to-ports", ports) if ports else ()), *extra_args),
        ]
        for proto in ("tcp", "udp")
    ]


def _apply_rules(ns: str, tool: str, lo: int | None, hi: int | None, flags: str) -> None:
    for argv in _nat_rules(tool, lo, hi, flags):
        if argv[:3] == ["nft", "-f", "-"]:
            sh(ns, *argv[:3], stdin=argv[3])
        else:
            sh(ns, *argv)


@contextmanager
def nat_network(
    port_lo: int | None,
    port_hi: int | None,
    *,
    clients: int = 1,
    addrs_per_client: int = 3,
    server_ports: Sequence[int] = (80,),
    flags: str = "",
    router_sysctls: Sequence[tuple[str, str]] = (),
    client_sysctls: Sequence[Sequence[tuple[str, str]]] = (),
) -> Iterator[NatNet]:
    """Build the lab, start the agents and the server's listeners; tear all down after.

    ``port_lo``/``port_hi`` None: no ``--to-ports`` (the kernel's port classes).
    ``flags`` is '' (the default: port preservation), 'fully-random' or 'random'.
    ``client_sysctls[k]`` are written in client k's namespace, ``router_sysctls`` in the
    router's (all per-namespace sysctls: the host's stay untouched).
    """
    tool, why = nat_tools()
    if tool is None:
        raise RuntimeError(why)
    with ExitStack() as stack:
        router = stack.enter_context(namespace("r"))
        server = stack.enter_context(namespace("s"))
        client_ns = [stack.enter_context(namespace(f"c{k}")) for k in range(clients)]
        _ip("link", "add", "srv", "netns", router, "type", "veth", "peer", "eth0", "netns", server)
        _ip("-n", router, "addr", "add", f"{ROUTER_OUT}/24", "dev", "srv")
        _ip("-n", router, "link", "set", "srv", "up")
        _ip("-n", server, "addr", "add", f"{SERVER_A}/24", "dev", "eth0")
        _ip("-n", server, "addr", "add", f"{SERVER_B}/24", "dev", "eth0")
        _ip("-n", server, "link", "set", "eth0", "up")
        built: list[tuple[str, list[str], str]] = []
        for k, ns in enumerate(client_ns):
            net, rif = f"10.77.{k + 1}", f"c{k}"
            _ip("link", "add", rif, "netns", router, "type", "veth", "peer", "eth0", "netns", ns)
            _ip("-n", router, "addr", "add", f"{net}.1/24", "dev", rif)
            _ip("-n", router, "link", "set", rif, "up")
            addrs = [f"{net}.{11 + i}" for i in range(addrs_per_client)]
            for a in addrs:
                _ip("-n", ns, "addr", "add", f"{a}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", ns, "route", "add", "default", "via", f"{net}.1")
            built.append((ns, addrs, rif))
        sh(router, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        _apply_rules(router, tool, port_lo, port_hi, flags)
        for name, value in router_sysctls:
            sh(router, "sysctl", "-q", "-w", f"{name}={value}")
        for (ns, _a, _r), sysctls in zip(built, client_sysctls, strict=False):
            for name, value in sysctls:
                sh(ns, "sysctl", "-q", "-w", f"{name}={value}")
        router_agent = Agent(router)
        stack.callback(router_agent.close)
        server_agent = Agent(server)
        stack.callback(server_agent.close)
        server_agent.call(
            "listen",
            addrs=[SERVER_A, SERVER_B],
            ports=list(server_ports),
            udp_echo=[UDP_ECHO],
            udp_silent=[UDP_SILENT],
        )
        cl: list[Client] = []
        for ns, addrs, rif in built:
            agent = Agent(ns)
            stack.callback(agent.close)
            cl.append(Client(ns, addrs, agent, rif))
        yield NatNet(router, router_agent, server_agent, cl, port_lo, port_hi, tool)


# --------------------------------------------------------------------------- conntrack

_CT_LINE = re.compile(
    r"\btcp\s+6\s+(?P<timeout>\d+)\s+(?P<state>[A-Z_]+)\s+"
    r"src=(?P<src>\S+) dst=(?P<dst>\S+) sport=(?P<sport>\d+) dport=(?P<dport>\d+)"
    r".*?src=(?P<rsrc>\S+) dst=(?P<rdst>\S+) sport=(?P<rsport>\d+) dport=(?P<rdport>\d+)"
)


@dataclass(frozen=True)
class CtEntry:
    """One TCP conntrack entry: original tuple, its translation, state, seconds left."""

    src: str
    sport: int
    dst: str
    dport: int
    nat_addr: str  # the reply tuple's destination: the translated source
    nat_port: int
    state: str
    timeout_s: int


def _conntrack_text(ns: str, proto: str) -> str:
    if shutil.which("conntrack"):
        return sh(ns, "conntrack", "-L", "-p", proto)
    return sh(ns, "cat", "/proc/net/nf_conntrack")


def conntrack_tcp(ns: str) -> list[CtEntry]:
    """TCP entries of ``ns``'s conntrack table (conntrack -L, else /proc/net/nf_conntrack)."""
    out = []
    for m in _CT_LINE.finditer(_conntrack_text(ns, "tcp")):
        out.append(
            CtEntry(
                m["src"],
                int(m["sport"]),
                m["dst"],
                int(m["dport"]),
                m["rdst"],
                int(m["rdport"]),
                m["state"],
                int(m["timeout"]),
            )
        )
    return out


_CT_UDP = re.compile(
    r"\budp\s+17\s+(?P<timeout>\d+)\s+"
    r"src=(?P<src>\S+) dst=(?P<dst>\S+) sport=(?P<sport>\d+) dport=(?P<dport>\d+)"
    r"(?P<mid>.*?)src=(?P<rsrc>\S+) dst=(?P<rdst>\S+) sport=(?P<rsport>\d+) "
    r"dport=(?P<rdport>\d+)(?P<tail>[^\n]*)"
)


def conntrack_udp(ns: str) -> list[CtEntry]:
    """UDP entries; ``state`` is ``UNREPLIED``, ``ASSURED`` or ``REPLIED`` (neither flag)."""
    out = []
    for m in _CT_UDP.finditer(_conntrack_text(ns, "udp")):
        flags = m["mid"] + m["tail"]
        state = (
            "UNREPLIED"
            if "[UNREPLIED]" in flags
            else "ASSURED"
            if "[ASSURED]" in flags
            else "REPLIED"
        )
        out.append(
            CtEntry(
                m["src"],
                int(m["sport"]),
                m["dst"],
                int(m["dport"]),
                m["rdst"],
                int(m["rdport"]),
                state,
                int(m["timeout"]),
            )
        )
    return out


def conntrack_stats(ns: str) -> dict[str, int]:
    """conntrack -S counters of ``ns`` summed over CPUs (else /proc/net/stat/nf_conntrack)."""
    totals: dict[str, int] = {}
    if shutil.which("conntrack"):
        for line in sh(ns, "conntrack", "-S").splitlines():
            for key, value in re.findall(r"(\w+)=(\d+)", line):
                if key != "cpu":
                    totals[key] = totals.get(key, 0) + int(value)
        return totals
    lines = sh(ns, "cat", "/proc/net/stat/nf_conntrack").split("\n")
    header = lines[0].split()
    for line in lines[1:]:
        for key, value in zip(header, line.split(), strict=False):
            totals[key] = totals.get(key, 0) + int(value, 16)
    return totals
