"""``lsof -i -n -P`` (Linux and macOS): one line per open file descriptor of a socket;
the NAME column is ``local->remote`` or ``local``, TCP rows end with ``(STATE)``.
Without ``-P`` ports show as service names and without ``-n`` addresses as host names:
such rows are not understood.  TIME_WAIT sockets have no descriptor, so lsof never shows
them (use ss or netstat for those)."""

from __future__ import annotations

from sim.snapshot.addresses import colon_endpoint
from sim.snapshot.base import Format
from sim.snapshot.model import SocketRow, state_name


class Lsof(Format):
    name = "lsof"
    label = "lsof -i -n -P"

    def header(self, line: str) -> bool:
        words = line.split()
        return words[:2] == ["COMMAND", "PID"] and "NAME" in words

    def row(self, line: str, where: str) -> SocketRow | None:
        words = line.split()
        node = next((i for i in range(5, len(words) - 1) if words[i] in ("TCP", "UDP")), None)
        if node is None or not words[1].isdigit():
            return None
        protocol = words[node].lower()
        local, _, remote = words[node + 1].partition("->")
        local_ip, local_port = colon_endpoint(local)
        remote_ip, remote_port = colon_endpoint(remote) if remote else (None, None)
        tail = words[node + 2 :]
        if tail and tail[0].startswith("(") and tail[-1].endswith(")"):
            state = state_name(" ".join(tail).strip("()"))
        elif protocol == "udp":
            state = "ESTABLISHED" if remote_port else "BOUND"
        else:
            state = None
        if state is None:
            return None
        command = words[0].replace("\\x20", " ").strip()
        return SocketRow(
            protocol,
            state,
            local_ip,
            local_port,
            remote_ip,
            remote_port,
            f"{command} pid {words[1]}",
            None,
            where,
        )
