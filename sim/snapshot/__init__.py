"""Snapshots of a real machine's sockets: ``ss``, ``/proc/net/tcp``, ``netstat`` (Linux,
macOS/BSD, Windows), ``Get-NetTCPConnection``, ``lsof``, ``conntrack``, read into one
model (:class:`SocketRow`) so that ``portsim inspect`` can report on them."""

from sim.snapshot.detect import FORMATS, parse_text, read_snapshot
from sim.snapshot.model import Snapshot, SnapshotError, SocketRow

__all__ = ["FORMATS", "Snapshot", "SnapshotError", "SocketRow", "parse_text", "read_snapshot"]
