"""Throwaway network namespaces on the running Linux kernel: the lab behind `portsim kernel`.

Everything the lab creates has a unique ``portsim_`` name and is deleted in ``finally``
(also on Ctrl-C and errors); traffic never leaves the namespaces it creates, since they have
no link but the veth pair between them.  Needs Linux, root and iproute2's ``ip``.
"""

from __future__ import annotations

import functools
import gzip
import os
import platform
import re
import secrets
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

NS_PREFIX = "portsim_"


def _ip(*args: str, check: bool = True, timeout: float = 10.0) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise OSError(f"ip {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def _unique(tag: str = "") -> str:
    return f"{NS_PREFIX}{tag}{os.getpid()}_{secrets.token_hex(4)}"


@contextmanager
def namespace(tag: str = "") -> Iterator[str]:
    """Yield the name of a fresh namespace with ``lo`` up; delete it whatever happens.

    Names are unique per process and call, so concurrent runs cannot collide.
    """
    name = _unique(tag)
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


@dataclass(frozen=True)
class Pair:
    """A client and a server namespace joined by a veth pair (``veth0`` on each side)."""

    client: str
    server: str


def _family(address: str) -> str:
    return "-6" if ":" in address else "-4"


def _prefix(address: str) -> str:
    return f"{address}/128" if ":" in address else f"{address}/32"


@contextmanager
def veth_pair(client_addresses: Sequence[str], server_addresses: Sequence[str]) -> Iterator[Pair]:
    """Two namespaces joined by veth; each side holds its addresses (host routes to the
    other side's), so connect() from a client address reaches every server address."""
    with ExitStack() as stack:
        client = stack.enter_context(namespace("c"))
        server = stack.enter_context(namespace("s"))
        _ip(
            "link",
            "add",
            "veth0",
            "netns",
            client,
            "type",
            "veth",
            "peer",
            "veth0",
            "netns",
            server,
        )
        for ns, own, other in (
            (client, client_addresses, server_addresses),
            (server, server_addresses, client_addresses),
        ):
            if any(":" in a for a in (*own, *other)):  # no duplicate address detection delay
                sysctl_write(ns, "net.ipv6.conf.all.accept_dad", "0")
                sysctl_write(ns, "net.ipv6.conf.veth0.accept_dad", "0")
            _ip("-n", ns, "link", "set", "veth0", "up")
            for address in own:
                _ip("-n", ns, "addr", "add", _prefix(address), "dev", "veth0", "nodad")
            for address in other:
                _ip("-n", ns, _family(address), "route", "add", _prefix(address), "dev", "veth0")
        yield Pair(client, server)


def sysctl_write(ns: str, name: str, value: str) -> None:
    """Set a sysctl inside ``ns`` (per-namespace sysctls only: the host's stay untouched)."""
    if ".." in name or "/" in name:
        raise ValueError(f"bad sysctl name {name!r}")
    proc = subprocess.run(
        ["ip", "netns", "exec", ns, "sysctl", "-q", "-w", f"{name}={value}"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    if proc.returncode != 0:
        raise OSError(f"sysctl {name}={value} in {ns}: {proc.stderr.strip()}")


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


def config_hz() -> tuple[int | None, str]:
    """CONFIG_HZ of the running kernel and where it was read (None if nowhere)."""
    release = platform.release()
    candidates = [Path(f"/boot/config-{release}"), Path("/proc/config.gz")]
    for path in candidates:
        try:
            raw = path.read_bytes()
        except OSError:
            continue
        text = (gzip.decompress(raw) if path.suffix == ".gz" else raw).decode(errors="replace")
        m = re.search(r"^CONFIG_HZ=(\d+)$", text, re.MULTILINE)
        if m:
            return int(m.group(1)), str(path)
    return None, ""


_JIFFIES = re.compile(r"^jiffies: (\d+)$", re.MULTILINE)
_NOW = re.compile(r"^now at (\d+) nsecs$", re.MULTILINE)


def jiffies_offset(hz: int, reads: int = 5) -> int | None:
    """``jiffies - floor(CLOCK_MONOTONIC / TICK_NSEC)`` from /proc/timer_list (root).

    The tick fires on multiples of TICK_NSEC (``tick_init_jiffy_update``,
    kernel/time/tick-sched.c) and jiffies counts the ticks, so this offset is constant
    between reads; the most common value of a few reads guards against a read that
    straddled a tick.  None when /proc/timer_list cannot be read.
    """
    tick = 1_000_000_000 // hz
    seen: dict[int, int] = {}
    for _ in range(reads):
        try:
            text = Path("/proc/timer_list").read_text()
        except OSError:
            return None
        now, jiffies = _NOW.search(text), _JIFFIES.search(text)
        if now is None or jiffies is None:
            return None
        offset = int(jiffies.group(1)) - int(now.group(1)) // tick
        seen[offset] = seen.get(offset, 0) + 1
    return max(seen, key=seen.__getitem__)
