"""Run bounded socket experiments against the real kernel in a throwaway network namespace.

Tests use this to compare the kernel's port choices with the model. Everything happens on
127.0.0.1 inside a fresh namespace, so sysctl changes, exhausted port ranges and
TIME_WAIT sockets never touch the host. The experiment itself runs in ``probe.py`` (stdlib
only) under ``ip netns exec``; see its docstring for the step format.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# the namespace lab itself lives in the package (portsim kernel uses it too)
from sim.replay.lab import NS_PREFIX, kernel_available, kernel_version, namespace

__all__ = ["NS_PREFIX", "kernel_available", "kernel_version", "namespace", "run"]

PROBE = Path(__file__).with_name("probe.py")

# Prepend to steps whose assertions count TIME_WAIT sockets. With the default
# tcp_rfc1337=0 an RST kills a TIME_WAIT socket, and on a multi-CPU loopback the
# server's delayed ACK can overtake its FIN. The client's TIME_WAIT then answers the stale
# ACK, the already-closed server replies with RST, and roughly 1 client close in 300 loses
# its TIME_WAIT. This sysctl does not affect port selection.
KEEP_TIME_WAIT: dict[str, Any] = {"op": "sysctl", "name": "net.ipv4.tcp_rfc1337", "value": "1"}


class ProbeError(RuntimeError):
    """probe.py failed; carries stderr and whatever results it produced before failing."""

    def __init__(self, message: str, stderr: str = "", results: list[Any] | None = None) -> None:
        detail = f"{message}\n--- probe stderr ---\n{stderr.strip()}" if stderr.strip() else message
        super().__init__(detail)
        self.stderr = stderr
        self.results = results or []


def run(
    ns: str,
    steps: Sequence[Mapping[str, Any]],
    listen: Sequence[int] = (9000, 9001),
    timeout: float = 90,
    *,
    server_first: Sequence[int] = (),
    deadline_s: float | None = None,
) -> list[Any]:
    """Run ``steps`` in one probe process inside ``ns``; return one result per step.

    ``listen`` ports read to EOF (client closes first); ``server_first`` ports close
    right after accept. The probe's own deadline defaults to ``timeout - 5`` s so it can
    still report partial results before the subprocess timeout kills it.
    """
    if deadline_s is None:
        deadline_s = max(1.0, timeout - 5)
    cmd = {
        "listen": [int(p) for p in listen],
        "server_first": [int(p) for p in server_first],
        "deadline_s": deadline_s,
        "steps": [dict(s) for s in steps],
    }
    argv = ["ip", "netns", "exec", ns, sys.executable, "-I", str(PROBE)]
    try:
        proc = subprocess.run(
            argv, input=json.dumps(cmd), capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as exc:
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else exc.stderr or ""
        raise ProbeError(f"probe timed out after {timeout} s in {ns}", err) from exc
    try:
        out = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise ProbeError(
            f"probe exited {proc.returncode} without JSON output in {ns}; "
            f"stdout={proc.stdout[-500:]!r}",
            proc.stderr,
        ) from None
    if proc.returncode != 0 or "error" in out:
        raise ProbeError(
            f"probe failed at step {out.get('step')} (exit {proc.returncode}): {out.get('error')}",
            proc.stderr,
            out.get("results"),
        )
    return out["results"]
