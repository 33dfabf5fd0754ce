"""``conntrack -L`` (conntrack-tools) and ``/proc/net/nf_conntrack``: a gateway's table.

A line holds the original tuple (``src dst sport dport``, as the inside host sent it) and
then the reply tuple (as the peer answers).  Seen from the gateway, the port held is the
reply's ``dport`` on the reply's ``dst`` address (the translated source after SNAT; the
original port without NAT), towards the original ``dst:dport``.  The third number is the
entry's remaining timeout in seconds, which for TIME_WAIT is the time left
(``net/netfilter/nf_conntrack_standalone.c``, ``ct_seq_show``: ``nf_ct_expires``)."""

from __future__ import annotations

import re

from sim.snapshot.addresses import ip_text
from sim.snapshot.base import Format
from sim.snapshot.model import SocketRow, state_name


class Conntrack(Format):
    name = "conntrack"
    label = "conntrack -L"
    _HEAD = re.compile(r"(?:ipv[46]\s+\d+\s+)?(tcp|udp)\s+\d+\s+(\d+)\s+(.*)")

    def header(self, line: str) -> bool:
        return line.strip().startswith("conntrack v") and "flow entries" in line

    def row(self, line: str, where: str) -> SocketRow | None:
        match = self._HEAD.fullmatch(line.strip())
        if not match:
            return None
        protocol, timeout, rest = match.group(1), int(match.group(2)), match.group(3)
        words = rest.split()
        state = "ESTABLISHED"
        if protocol == "tcp":
            named = state_name(words[0]) if words and "=" not in words[0] else None
            if named is None:
                return None
            state = named
        fields: dict[str, list[str]] = {}
        for word in words:
            key, sep, value = word.partition("=")
            if sep:
                fields.setdefault(key, []).append(value)
        src, dst = fields.get("src", []), fields.get("dst", [])
        sport, dport = fields.get("sport", []), fields.get("dport", [])
        if min(len(src), len(dst), len(sport), len(dport)) < 2:
            return None
        return SocketRow(
            protocol,
            state,
            ip_text(dst[1]),
            int(dport[1]),
            ip_text(dst[0]),
            int(dport[0]),
            f"from {src[0]}:{sport[0]}",
            float(timeout) if state == "TIME_WAIT" else None,
            where,
        )
