"""Run bounded socket experiments against the real kernel in a throwaway network namespace.

Tests use this to compare the kernel's port choices with the model. Everything happens on
127.0.0.1 inside a fresh namespace, so sysctl changes, exhausted port ranges and
TIME_WAIT sockets never touch the host. The experiment itself runs in ``probe.py`` (stdlib
only) under ``ip netns exec``; see its docstring for the step format.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import re
import secrets
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PROBE = Path(__file__).with_name("probe.py")
NS_PREFIX = "portsim_"

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


def _ip(*args: str, check: bool = True, timeout: float = 10.0) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise OSError(f"ip {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


@contextmanager
def namespace() -> Iterator[str]:
    """Yield the name of a fresh namespace with ``lo`` up; delete it whatever happens.

    Names are unique per process and call, so concurrent test runs cannot collide.
    """
    name = f"{NS_PREFIX}{os.getpid()}_{secrets.token_hex(4)}"
    _ip("netns", "add", name)
    try:
        _ip("-n", name, "link", "set", "lo", "up")
        yield name
    finally:
        proc = _ip("netns", "del", name, check=False)
        if proc.returncode != 0:
            warnings.warn(
                f"could not delete netns {name}: {proc.stderr.strip()}",
                RuntimeWarning,
                stacklevel=2,
            )


@functools.cache
def kernel_available() -> tuple[bool, str]:
    """Whether kernel experiments can run here, and why not (cached: the answer is stable)."""
    if sys.platform != "linux":
        return False, f"needs Linux, running on {sys.platform}"
    if os.geteuid() != 0:
        return False, "needs root to create network namespaces"
    if shutil.which("ip") is None:
        return False, "iproute2 'ip' command not found"
    try:
        with namespace():
            pass
    except (OSError, subprocess.SubprocessError) as exc:
        return False, f"cannot create a network namespace: {exc}"
    return True, f"Linux {kernel_version()}, netns OK"


def kernel_version() -> str:
    """Numeric kernel release, e.g. '6.18.44' from '6.18.44-fc-v669'."""
    release = platform.release()
    m = re.match(r"\d+(?:\.\d+)*", release)
    return m.group(0) if m else release


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
