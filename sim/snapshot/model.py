"""What a socket listing says about one socket, in one shape whatever tool printed it.

States are named as in the Linux kernel's ``include/net/tcp_states.h`` (``TCP_ESTABLISHED``
... ``TCP_CLOSING``) without the prefix; every tool's spelling maps onto them (``ESTAB``,
``TIME-WAIT``, ``TimeWait``, ``LISTENING``, ...).  ``BOUND`` is a socket with a local port
and no peer that does not listen: Windows' ``Bound`` state, an unconnected UDP socket
(``ss``'s ``UNCONN``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

STATES = (
    "ESTABLISHED",
    "SYN_SENT",
    "SYN_RECV",
    "FIN_WAIT1",
    "FIN_WAIT2",
    "TIME_WAIT",
    "CLOSE",
    "CLOSE_WAIT",
    "LAST_ACK",
    "LISTEN",
    "CLOSING",
    "BOUND",
)

_SPELLINGS = {
    "ESTAB": "ESTABLISHED",
    "ESTABLISHED": "ESTABLISHED",
    "SYNSENT": "SYN_SENT",
    "SYNRECV": "SYN_RECV",
    "SYNRCVD": "SYN_RECV",
    "SYNRECEIVED": "SYN_RECV",
    "NEWSYNRECV": "SYN_RECV",
    "FINWAIT1": "FIN_WAIT1",
    "FINWAIT2": "FIN_WAIT2",
    "TIMEWAIT": "TIME_WAIT",
    "CLOSE": "CLOSE",
    "CLOSED": "CLOSE",
    "DELETETCB": "CLOSE",
    "CLOSEWAIT": "CLOSE_WAIT",
    "LASTACK": "LAST_ACK",
    "LISTEN": "LISTEN",
    "LISTENING": "LISTEN",
    "CLOSING": "CLOSING",
    "UNCONN": "BOUND",
    "BOUND": "BOUND",
}


def state_name(text: str) -> str | None:
    """The canonical state for a tool's spelling, or None when it is not a TCP state."""
    return _SPELLINGS.get(re.sub(r"[^A-Z0-9]", "", text.upper()))


class SnapshotError(Exception):
    """A snapshot that cannot be read at all; the message is one line naming the file."""


@dataclass(frozen=True, slots=True)
class SocketRow:
    """One socket.  Addresses are normalised (``ipaddress``; IPv4-mapped IPv6 as IPv4, the
    zone kept as ``fe80::1%eth0``); ``None`` is a wildcard (``*``, ``0.0.0.0``, ``::``)."""

    protocol: str  # "tcp" or "udp"
    state: str  # one of STATES
    local_ip: str | None
    local_port: int | None
    remote_ip: str | None
    remote_port: int | None
    process: str = ""
    time_wait_left_s: float | None = None  # when the listing shows the timer
    source: str = ""  # "file:line"

    @property
    def connected(self) -> bool:
        """Whether the socket has a peer (a 4-tuple), so it belongs to a destination pool."""
        return self.remote_ip is not None and self.remote_port not in (None, 0)

    @property
    def remote(self) -> str:
        return endpoint_text(self.remote_ip, self.remote_port)

    @property
    def local(self) -> str:
        return endpoint_text(self.local_ip, self.local_port)


def endpoint_text(ip: str | None, port: int | None) -> str:
    """``ip:port`` as scenario files write it: IPv6 in brackets, ``*`` for a wildcard."""
    host = "*" if ip is None else f"[{ip}]" if ":" in ip else ip
    return f"{host}:{'*' if port is None else port}"


@dataclass
class Snapshot:
    """One file's sockets and what could not be read in it."""

    source: str
    format: str  # a key of sim.snapshot.detect.FORMATS
    rows: list[SocketRow] = field(default_factory=list)
    unparsed: int = 0
    examples: list[tuple[int, str]] = field(default_factory=list)  # (line number, text)
    port_range: tuple[int, int] | None = None  # from a sysctl / netsh listing
    reserved_ports: tuple[int, ...] = ()

    EXAMPLES = 5

    def not_understood(self, number: int, text: str) -> None:
        self.unparsed += 1
        if len(self.examples) < self.EXAMPLES:
            self.examples.append((number, text))
