"""Read snapshot files and tell their format from their content.

Every format reads the first lines; the one that recognises the most (socket rows
weighing twice a header) wins, and then reads the whole text.  A text that no format
recognises, or in which the winner recognises under a quarter of the lines, is not a
snapshot: a one-line :class:`SnapshotError` naming the file.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from sim.snapshot.base import Format
from sim.snapshot.bsd import NetstatBsd
from sim.snapshot.conntrack import Conntrack
from sim.snapshot.linux import NetstatLinux, ProcNet, Ss, SsUdp, Sysctl
from sim.snapshot.lsof import Lsof
from sim.snapshot.model import Snapshot, SnapshotError
from sim.snapshot.windows import NetstatWindows, NetTcpCsv, NetTcpTable

FORMATS: dict[str, Callable[[], Format]] = {
    f.name: f
    for f in (
        Ss,
        SsUdp,
        ProcNet,
        NetstatLinux,
        NetstatBsd,
        NetstatWindows,
        NetTcpTable,
        NetTcpCsv,
        Lsof,
        Conntrack,
        Sysctl,
    )
}
SNIFF_LINES = 400  # lines the detector tries every format on
MIN_SHARE = 0.25  # of the non-blank lines the winning format must recognise
MAX_BYTES = 512 * 1024 * 1024


def _short(text: str, width: int = 60) -> str:
    text = repr(text)
    return text if len(text) <= width else text[: width - 3] + "..."


def decode(raw: bytes, source: str) -> str:
    """Text from bytes: UTF-8 (a BOM allowed) or UTF-16 with a BOM (Windows PowerShell 5.1
    writes ``>`` redirections as UTF-16LE); anything else is not a text file."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError:
            raise SnapshotError(f"{source}: not a text file (broken UTF-16)") from None
    if b"\x00" in raw:
        raise SnapshotError(f"{source}: not a text file (contains NUL bytes)")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SnapshotError(f"{source}: not a text file (not UTF-8)") from None


def read_source(path: str) -> tuple[str, str]:
    """(name, text) of a file, or of standard input for ``-``."""
    if path == "-":
        return "<stdin>", decode(sys.stdin.buffer.read(MAX_BYTES + 1), "<stdin>")
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise SnapshotError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_BYTES:
        raise SnapshotError(f"{path}: larger than {MAX_BYTES // 2**20} MiB")
    return path, decode(raw, path)


def _attempt(name: str, lines: list[str], source: str) -> tuple[Snapshot, int, int]:
    """Parse with one format: (snapshot, recognised lines, score)."""
    fmt = FORMATS[name]()
    snapshot = Snapshot(source, name)
    recognised = fmt.parse(lines, snapshot)
    return snapshot, recognised, fmt.score(snapshot, recognised)


def parse_text(text: str, source: str, format: str | None = None) -> Snapshot:
    """The snapshot in ``text``, its format detected unless ``format`` is given."""
    lines = text.splitlines()
    nonblank = [(i, ln) for i, ln in enumerate(lines, 1) if ln.strip()]
    if not nonblank:
        raise SnapshotError(f"{source}: empty: expected the output of ss, netstat, lsof, ...")
    first = nonblank[0]
    if format is not None:
        try:
            snapshot, recognised, _ = _attempt(format, lines, source)
        except ValueError as exc:
            raise SnapshotError(f"{source}: {exc}") from None
        if not recognised:
            label = FORMATS[format]().label
            raise SnapshotError(
                f"{source}: not {label} output (line {first[0]}: {_short(first[1].strip())})"
            )
        return snapshot
    head = lines[:SNIFF_LINES]
    best, best_score, problem = None, 0, None
    for name in FORMATS:
        try:
            _, _, score = _attempt(name, head, source)
        except ValueError as exc:
            problem = problem or str(exc)
            continue
        if score > best_score:
            best, best_score = name, score
    if best is None:
        if problem:
            raise SnapshotError(f"{source}: {problem}")
        raise SnapshotError(
            f"{source}: not a socket listing: no line looks like ss, /proc/net/tcp, netstat, "
            f"Get-NetTCPConnection, lsof or conntrack output "
            f"(line {first[0]}: {_short(first[1].strip())})"
        )
    snapshot, recognised, _ = _attempt(best, lines, source)
    if recognised < MIN_SHARE * len(nonblank):
        label = FORMATS[best]().label
        raise SnapshotError(
            f"{source}: not a socket listing: only {recognised} of {len(nonblank)} lines "
            f"look like {label} output (line {first[0]}: {_short(first[1].strip())})"
        )
    return snapshot


def read_snapshot(path: str, format: str | None = None) -> Snapshot:
    """Read one file (``-``: standard input) into a Snapshot; SnapshotError otherwise."""
    source, text = read_source(path)
    return parse_text(text, source, format)
