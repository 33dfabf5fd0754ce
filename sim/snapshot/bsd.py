"""macOS and BSD ``netstat -an -p tcp``: addresses as ``ip.port`` (``10.0.0.5.51234``,
``*.22``, ``*.*``, ``fe80::1%lo0.22``), protocol ``tcp4``/``tcp6``/``tcp46`` (OpenBSD:
``tcp``), the state column headed ``(state)``."""

from __future__ import annotations

from sim.snapshot.addresses import dotted_endpoint
from sim.snapshot.base import Format
from sim.snapshot.model import SocketRow, state_name

PROTOCOLS = {"tcp", "tcp4", "tcp6", "tcp46", "udp", "udp4", "udp6", "udp46"}


class NetstatBsd(Format):
    name = "netstat-bsd"
    label = "netstat -an -p tcp (macOS/BSD)"

    def header(self, line: str) -> bool:
        text = line.strip()
        return text.startswith(("Active Internet connections", "Active LOCAL (UNIX) domain")) or (
            text.startswith("Proto") and "Local Address" in text
        )

    def row(self, line: str, where: str) -> SocketRow | None:
        words = line.split()
        if words[0] not in PROTOCOLS or not (words[1].isdigit() and words[2].isdigit()):
            return None
        local_ip, local_port = dotted_endpoint(words[3])
        remote_ip, remote_port = dotted_endpoint(words[4])
        protocol = "udp" if words[0].startswith("udp") else "tcp"
        state = state_name(words[5]) if len(words) > 5 else None
        if state is None:
            if protocol == "tcp":
                return None
            state = "ESTABLISHED" if remote_port else "BOUND"
        return SocketRow(
            protocol, state, local_ip, local_port, remote_ip, remote_port, "", None, where
        )
