"""Windows: ``netstat -ano``, and PowerShell's ``Get-NetTCPConnection`` as a table
(``| Format-Table``, also its default view) or as CSV (``| ConvertTo-Csv``, with or
without the ``#TYPE`` line).  State names are the ``MSFT_NetTCPConnection`` ``State``
values (Microsoft Learn, "Get-NetTCPConnection", NetTCPIP module): Established,
TimeWait, Listen, Bound, CloseWait, ..."""

from __future__ import annotations

import csv
from collections.abc import Sequence

from sim.snapshot.addresses import colon_endpoint, ip_text
from sim.snapshot.base import Format
from sim.snapshot.model import Snapshot, SocketRow, state_name


class NetstatWindows(Format):
    """``netstat -ano``: Proto Local Foreign State PID; UDP rows have no state; an
    unconnected socket's foreign address is ``0.0.0.0:0``, ``[::]:0`` or ``*:*``."""

    name = "netstat-windows"
    label = "netstat -ano (Windows)"

    def header(self, line: str) -> bool:
        text = line.strip()
        return text == "Active Connections" or (
            text.startswith("Proto") and "Local Address" in text and "Recv-Q" not in text
        )

    def row(self, line: str, where: str) -> SocketRow | None:
        words = line.split()
        if words[0] not in ("TCP", "UDP"):
            return None
        protocol = words[0].lower()
        local_ip, local_port = colon_endpoint(words[1])
        remote_ip, remote_port = colon_endpoint(words[2])
        rest = words[3:]
        state = state_name(rest[0]) if rest and not rest[0].isdigit() else None
        if state is not None:
            rest = rest[1:]
        elif protocol == "tcp":
            return None
        else:
            state = "ESTABLISHED" if remote_port else "BOUND"
        process = f"pid {rest[0]}" if rest and rest[0].isdigit() else ""
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


class NetTcpTable(Format):
    """``Get-NetTCPConnection | Format-Table``: LocalAddress LocalPort RemoteAddress
    RemotePort State [AppliedSetting] [OwningProcess].  Format-Table truncates long IPv6
    addresses with an ellipsis: such rows are not understood (use ConvertTo-Csv)."""

    name = "get-nettcpconnection"
    label = "Get-NetTCPConnection | Format-Table"

    def header(self, line: str) -> bool:
        text = line.strip()
        return ("LocalAddress" in text and "LocalPort" in text) or set(text) <= {"-", " "}

    def row(self, line: str, where: str) -> SocketRow | None:
        words = line.split()
        if len(words) < 5 or not (words[1].isdigit() and words[3].isdigit()):
            return None
        state = state_name(words[4])
        if state is None:
            return None
        remote_port = int(words[3])
        process = f"pid {words[-1]}" if len(words) > 5 and words[-1].isdigit() else ""
        return SocketRow(
            "tcp",
            state,
            ip_text(words[0]),
            int(words[1]),
            ip_text(words[2]),
            remote_port or None,
            process,
            None,
            where,
        )


class NetTcpCsv(Format):
    """``Get-NetTCPConnection | ConvertTo-Csv [-NoTypeInformation]``: columns by name."""

    name = "get-nettcpconnection-csv"
    label = "Get-NetTCPConnection | ConvertTo-Csv"
    COLUMNS = ("LocalAddress", "LocalPort", "RemoteAddress", "RemotePort", "State")

    def parse(self, lines: Sequence[str], snapshot: Snapshot) -> int:
        columns: dict[str, int] | None = None
        recognised = 0
        for number, cells in enumerate(csv.reader(lines), start=1):
            text = lines[number - 1].strip() if number <= len(lines) else ""
            if not any(c.strip() for c in cells):
                continue
            if cells[0].startswith("#TYPE"):
                recognised += 1
                continue
            if columns is None and all(c in cells for c in self.COLUMNS):
                columns = {name: cells.index(name) for name in cells}
                recognised += 1
                continue
            sock = None
            if columns is not None:
                try:
                    sock = self._row(cells, columns, f"{snapshot.source}:{number}")
                except (ValueError, IndexError):
                    sock = None
            if sock is None:
                snapshot.not_understood(number, text)
            else:
                snapshot.rows.append(sock)
                recognised += 1
        return recognised

    def _row(self, cells: list[str], col: dict[str, int], where: str) -> SocketRow | None:
        state = state_name(cells[col["State"]])
        if state is None:
            return None
        pid = cells[col["OwningProcess"]] if "OwningProcess" in col else ""
        remote_port = int(cells[col["RemotePort"]])
        return SocketRow(
            "tcp",
            state,
            ip_text(cells[col["LocalAddress"]]),
            int(cells[col["LocalPort"]]),
            ip_text(cells[col["RemoteAddress"]]),
            remote_port or None,
            f"pid {pid}" if pid.isdigit() else "",
            None,
            where,
        )
