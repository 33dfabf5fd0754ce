"""The shape every format reader takes: recognise header lines, turn a row into a socket.

A reader sees one line at a time; ``parse`` files every non-blank line as a header (or a
line the format prints that holds no socket), a socket row, or a line not understood, so
nothing is dropped silently and the detector can score how well a format fits a text.
"""

from __future__ import annotations

from collections.abc import Sequence

from sim.snapshot.model import Snapshot, SocketRow


class Format:
    """A line-oriented listing format."""

    name = ""  # the --format value
    label = ""  # the command that prints it, for messages

    def header(self, line: str) -> bool:
        """A line of the format that holds no socket (title, column names, a footer)."""
        return False

    def row(self, line: str, where: str) -> SocketRow | None:
        """The socket on this line, or None when the line is not one (ValueError too)."""
        return None

    def parse(self, lines: Sequence[str], snapshot: Snapshot) -> int:
        """Read ``lines`` into ``snapshot``; return how many lines were recognised."""
        recognised = 0
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                if self.header(line):
                    recognised += 1
                    continue
                sock = self.row(line, f"{snapshot.source}:{number}")
            except (ValueError, IndexError):
                sock = None
            if sock is None:
                snapshot.not_understood(number, line.strip())
            else:
                snapshot.rows.append(sock)
                recognised += 1
        self.finish(snapshot)
        return recognised

    def finish(self, snapshot: Snapshot) -> None:
        """Whole-file adjustments after every line was read (none by default)."""

    def score(self, snapshot: Snapshot, recognised: int) -> int:
        """How well the format fits: socket rows weigh more than headers."""
        return 2 * len(snapshot.rows) + (recognised - len(snapshot.rows))
