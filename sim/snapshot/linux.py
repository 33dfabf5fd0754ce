"""Linux listings: ``ss``, ``/proc/net/tcp`` (and tcp6, udp, udp6), ``netstat`` (net-tools)
and the port range from ``sysctl`` or ``/proc/sys``."""

from __future__ import annotations

import re
from collections.abc import Sequence

from sim.snapshot.addresses import colon_endpoint, proc_endpoint
from sim.snapshot.base import Format
from sim.snapshot.model import Snapshot, SocketRow, state_name

# include/net/tcp_states.h: TCP_ESTABLISHED = 1 ... TCP_NEW_SYN_RECV = 12
PROC_STATES = {
    1: "ESTABLISHED",
    2: "SYN_SENT",
    3: "SYN_RECV",
    4: "FIN_WAIT1",
    5: "FIN_WAIT2",
    6: "TIME_WAIT",
    7: "CLOSE",
    8: "CLOSE_WAIT",
    9: "LAST_ACK",
    10: "LISTEN",
    11: "CLOSING",
    12: "SYN_RECV",
}
USER_HZ = 100  # clock_t ticks per second in /proc (jiffies_delta_to_clock_t)
TCP_ONLY = {"LISTEN", "TIME_WAIT", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2"}
TCP_ONLY |= {"CLOSE_WAIT", "LAST_ACK", "CLOSING"}
NETIDS = {"tcp", "udp", "raw", "sctp", "mptcp", "dccp"}


def _process(users: str) -> str:
    """``users:(("python3",pid=7321,fd=5))`` -> ``python3 pid 7321`` (several joined)."""
    found = re.findall(r'\("([^"]*)",pid=(\d+)', users)
    return ", ".join(f"{name} pid {pid}" for name, pid in found)


def _ss_timer(text: str) -> float | None:
    """``timer:(timewait,59sec,0)`` -> 59.0: ss prints the time left as ``1min2sec``,
    ``59sec`` or ``500ms`` (iproute2 ``misc/ss.c``, ``print_ms_timer``)."""
    match = re.search(r"timer:\(timewait,([^,)]*)", text)
    if not match:
        return None
    units = {"min": 60.0, "sec": 1.0, "ms": 0.001}
    parts = re.findall(r"(\d+)(min|sec|ms)", match.group(1))
    return sum(int(n) * units[u] for n, u in parts) if parts else None


class Ss(Format):
    """``ss -tan``, ``-tanp``, ``-tano``, ``-uan``, ``-tuan`` (Netid column), with or
    without the header (``-H``).  Columns: [Netid] State Recv-Q Send-Q Local Peer
    [Process / timer].  Without a Netid column a listing whose states are only ``UNCONN``
    and ``ESTAB`` is taken as ``ss -uan`` (UDP has no other states)."""

    name = "ss"
    label = "ss -tan"

    def header(self, line: str) -> bool:
        words = line.split()
        return bool(words) and words[0] in ("State", "Netid") and "Recv-Q" in line

    def row(self, line: str, where: str) -> SocketRow | None:
        words = line.split()
        protocol = ""
        if words[0] in NETIDS:
            protocol = words.pop(0)
        state = state_name(words[0])
        if state is None or not (words[1].isdigit() and words[2].isdigit()):
            return None
        local_ip, local_port = colon_endpoint(words[3])
        remote_ip, remote_port = colon_endpoint(words[4])
        rest = " ".join(words[5:])
        return SocketRow(
            protocol or "?",
            state,
            local_ip,
            local_port,
            remote_ip,
            remote_port,
            _process(rest),
            _ss_timer(rest),
            where,
        )

    def finish(self, snapshot: Snapshot) -> None:
        unknown = [r for r in snapshot.rows if r.protocol == "?"]
        if not unknown:
            return
        udp = all(r.state in ("BOUND", "ESTABLISHED") for r in unknown) and any(
            r.state == "BOUND" for r in unknown
        )
        fill = "udp" if udp else "tcp"
        snapshot.rows[:] = [
            _with_protocol(r, fill) if r.protocol == "?" else r for r in snapshot.rows
        ]


class SsUdp(Ss):
    """``ss -uan`` named explicitly (``--format ss-udp``): rows without a Netid are UDP."""

    name = "ss-udp"
    label = "ss -uan"

    def finish(self, snapshot: Snapshot) -> None:
        snapshot.rows[:] = [
            _with_protocol(r, "udp") if r.protocol == "?" else r for r in snapshot.rows
        ]


def _with_protocol(row: SocketRow, protocol: str) -> SocketRow:
    from dataclasses import replace

    return replace(row, protocol=protocol)


class ProcNet(Format):
    """``/proc/net/tcp``, ``tcp6``, ``udp``, ``udp6`` (the kernel's ``tcp4_seq_show``,
    ``get_tcp4_sock``, ``get_timewait4_sock`` in ``net/ipv4/tcp_ipv4.c``).  For a
    TIME_WAIT row the timer field ``03:XXXXXXXX`` is the time left in clock_t ticks
    (USER_HZ = 100 per second).  A UDP file is told by its header's ``drops`` column."""

    name = "proc"
    label = "/proc/net/tcp"
    _ROW = re.compile(
        r"\s*\d+:\s+([0-9A-Fa-f]+:[0-9A-Fa-f]{4})\s+([0-9A-Fa-f]+:[0-9A-Fa-f]{4})\s+"
        r"([0-9A-Fa-f]{2})\s+[0-9A-Fa-f]{8}:[0-9A-Fa-f]{8}\s+([0-9A-Fa-f]{2}):([0-9A-Fa-f]{8})"
        r"(\s.*)?"
    )

    def __init__(self) -> None:
        self.protocol = "tcp"

    def header(self, line: str) -> bool:
        if line.split()[:2] == ["sl", "local_address"]:
            self.protocol = "udp" if "drops" in line else "tcp"
            return True
        return False

    def row(self, line: str, where: str) -> SocketRow | None:
        match = self._ROW.fullmatch(line.rstrip())
        if not match:
            return None
        local_ip, local_port = proc_endpoint(match.group(1))
        remote_ip, remote_port = proc_endpoint(match.group(2))
        code = int(match.group(3), 16)
        state = PROC_STATES.get(code)
        if state is None:
            return None
        left = None
        if self.protocol == "udp":
            state = "ESTABLISHED" if code == 1 else "BOUND"
        elif int(match.group(4), 16) == 3:  # the TIME_WAIT timer (also FIN_WAIT2 substate)
            left = int(match.group(5), 16) / USER_HZ
        return SocketRow(
            self.protocol,
            state,
            local_ip,
            local_port,
            remote_ip,
            None if remote_port == 0 else remote_port,
            "",
            left,
            where,
        )

    def parse(self, lines: Sequence[str], snapshot: Snapshot) -> int:
        self.protocol = "tcp"
        return super().parse(lines, snapshot)


class NetstatLinux(Format):
    """net-tools ``netstat -tan`` / ``-tanp`` / ``-uan``: Proto Recv-Q Send-Q Local
    Foreign [State] [PID/Program name]; IPv6 unbracketed (``::1:9002``, ``:::*``)."""

    name = "netstat"
    label = "netstat -tan (Linux)"

    def header(self, line: str) -> bool:
        text = line.strip()
        return (
            text.startswith(("Active Internet connections", "Active UNIX domain sockets"))
            or text.startswith("Proto Recv-Q Send-Q")
            or text.startswith(("unix ", "Proto RefCnt"))
        )

    def row(self, line: str, where: str) -> SocketRow | None:
        words = line.split()
        proto = words[0]
        if proto not in ("tcp", "tcp6", "udp", "udp6", "udpl", "udpl6"):
            return None
        if not (words[1].isdigit() and words[2].isdigit()):
            return None
        local_ip, local_port = colon_endpoint(words[3])
        remote_ip, remote_port = colon_endpoint(words[4])
        rest = words[5:]
        state = state_name(rest[0]) if rest else None
        if state is not None:
            rest = rest[1:]
        protocol = "udp" if proto.startswith("udp") else "tcp"
        if state is None:
            if protocol == "tcp":
                return None
            state = "ESTABLISHED" if remote_port else "BOUND"
        process = ""
        if rest and "/" in rest[0]:
            pid, _, program = rest[0].partition("/")
            process = f"{program} pid {pid}"
        return SocketRow(
            protocol,
            state,
            local_ip,
            local_port,
            remote_ip,
            remote_port or None,
            process,
            None,
            where,
        )


_RANGE_KEYS = ("net.ipv4.ip_local_port_range", "net.inet.ip.portrange.first")


class Sysctl(Format):
    """The host's ephemeral range as a snapshot file:

    * Linux ``sysctl net.ipv4.ip_local_port_range`` (``... = 32768\\t60999``) or
      ``cat /proc/sys/net/ipv4/ip_local_port_range`` (``32768\\t60999``), and
      ``net.ipv4.ip_local_reserved_ports`` (``8080,9000-9100``), in ``sysctl -a`` too;
    * macOS / FreeBSD ``sysctl net.inet.ip.portrange.first net.inet.ip.portrange.last``;
    * Windows ``netsh int ipv4 show dynamicport tcp`` (Start Port, Number of Ports).
    """

    name = "sysctl"
    label = "sysctl net.ipv4.ip_local_port_range"
    _SETTING = re.compile(r"\s*([a-z0-9_]+(?:\.[a-z0-9_-]+)+)\s*[=:]\s*(.*?)\s*")

    def parse(self, lines: Sequence[str], snapshot: Snapshot) -> int:
        recognised = 0
        values: dict[str, str] = {}
        bare: list[str] = []
        for number, line in enumerate(lines, start=1):
            text = line.strip()
            if not text:
                continue
            match = self._SETTING.fullmatch(text)
            netsh = re.fullmatch(r"(Start Port|Number of Ports)\s*:\s*(\d+)", text)
            if match:
                values[match.group(1)] = match.group(2)
            elif netsh:
                values[netsh.group(1)] = netsh.group(2)
            elif re.fullmatch(r"\d+\s+\d+", text) and not bare:
                bare.append(text)
            elif text.startswith(("Protocol tcp", "Protocol udp", "---")):
                pass  # netsh's title and rule
            else:
                snapshot.not_understood(number, text)
                continue
            recognised += 1
        rng = None
        setting = values.get("net.ipv4.ip_local_port_range") or (bare[0] if bare else None)
        if setting is not None:
            lo, hi = (int(x) for x in setting.split())
            rng = (lo, hi)
        elif "net.inet.ip.portrange.first" in values and "net.inet.ip.portrange.last" in values:
            rng = (
                int(values["net.inet.ip.portrange.first"]),
                int(values["net.inet.ip.portrange.last"]),
            )
        elif "Start Port" in values and "Number of Ports" in values:
            start = int(values["Start Port"])
            rng = (start, start + int(values["Number of Ports"]) - 1)
        if rng is not None:
            if not 1 <= rng[0] <= rng[1] <= 65535:
                raise ValueError(
                    f"port range {rng[0]}-{rng[1]}: expected LOW HIGH within 1-65535, LOW <= HIGH"
                )
            snapshot.port_range = rng
        reserved = values.get("net.ipv4.ip_local_reserved_ports", "")
        ports: list[int] = []
        for part in filter(None, (p.strip() for p in reserved.split(","))):
            a, _, b = part.partition("-")
            ports.extend(range(int(a), int(b or a) + 1))
        snapshot.reserved_ports = tuple(ports)
        return recognised if rng is not None or ports else 0

    def score(self, snapshot: Snapshot, recognised: int) -> int:
        return recognised
