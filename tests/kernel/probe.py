"""Socket experiment runner executed inside a throwaway network namespace.

Run as ``ip netns exec NS python3 probe.py`` with a JSON command on stdin::

    {"listen": [9000, 9001], "server_first": [], "deadline_s": 60, "steps": [...]}

(a bare JSON list is taken as ``steps``). It prints ``{"results": [...], ...}`` on
stdout, one result per step, or ``{"error": ..., "step": i, "results": partial}`` with
exit status 1 (step failed) or 2 (deadline hit). Standard library only, so it can run
under any python3 inside the namespace without our package being importable.

Steps run in order in one process, so sockets can stay open between steps. Expected
kernel refusals (EADDRNOTAVAIL, EADDRINUSE, EAGAIN, ...) are data, reported by errno
name in place of a port; only harness bugs and bad commands abort the run.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import platform
import selectors
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, NoReturn

HOST = "127.0.0.1"
IP_BIND_ADDRESS_NO_PORT = 24  # SOL_IP option; not exported by Python 3.11's socket module
MAX_COUNT = 100_000  # per-step cap so a typo cannot loop forever
CONNECT_TIMEOUT_S = 5.0  # a loopback connect never legitimately takes this long
DEFAULT_DEADLINE_S = 60.0
TCP_STATE_TIME_WAIT = "06"

_kept: list[socket.socket] = []


class StepError(Exception):
    """A malformed step: the command is wrong, not the kernel."""


class DeadlineExceeded(BaseException):
    """Raised from the timer signal; BaseException so no broad handler swallows it."""


# --------------------------------------------------------------------------- helpers


def err_name(exc: BaseException) -> str:
    """Errno name for a socket failure, so results compare across runs and machines."""
    if isinstance(exc, TimeoutError) and getattr(exc, "errno", None) is None:
        return "ETIMEDOUT"
    code = getattr(exc, "errno", None)
    if code is None:
        return type(exc).__name__
    return errno.errorcode.get(code, f"E{code}")


def count_arg(step: dict[str, Any], key: str = "count") -> int:
    n = int(step[key])
    if not 0 <= n <= MAX_COUNT:
        raise StepError(f"{key}={n} outside 0..{MAX_COUNT}")
    return n


def read_tcp_table() -> list[tuple[int, int, str]]:
    """(local port, remote port, state hex) for this namespace's IPv4 TCP sockets.

    /proc/net/tcp is per namespace and, unlike ``ss``, needs no external binary.
    TIME_WAIT entries show their substate, so a FIN_WAIT2 pseudo-TIME_WAIT appears as 05.
    """
    rows: list[tuple[int, int, str]] = []
    with open("/proc/net/tcp") as fh:
        next(fh)
        for line in fh:
            f = line.split()
            if len(f) < 4:
                continue
            lport = int(f[1].rsplit(":", 1)[1], 16)
            rport = int(f[2].rsplit(":", 1)[1], 16)
            rows.append((lport, rport, f[3]))
    return rows


def tw_count(dport: int | None = None) -> int:
    return sum(
        1
        for _lp, rp, st in read_tcp_table()
        if st == TCP_STATE_TIME_WAIT and (dport is None or rp == dport)
    )


def sysctl_path(name: str) -> str:
    if ".." in name or "/" in name:
        raise StepError(f"bad sysctl name {name!r}")
    return "/proc/sys/" + name.replace(".", "/")


def read_sysctl(name: str) -> str:
    with open(sysctl_path(name)) as fh:
        return " ".join(fh.read().split())


# --------------------------------------------------------------------------- listeners


class Listeners(threading.Thread):
    """Accept on 127.0.0.1 ports and read to EOF, so the client is the active closer.

    Ports in ``server_first`` instead close right after accept (server sends FIN first).
    One selector thread serves every port, so thousands of short connections cost no
    threads.
    """

    def __init__(self, ports: list[int], server_first: list[int]) -> None:
        super().__init__(daemon=True, name="listeners")
        self.sel = selectors.DefaultSelector()
        self.server_first = set(server_first)
        for port in sorted(set(ports) | self.server_first):
            ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            ls.bind((HOST, port))
            ls.listen(4096)
            ls.setblocking(False)
            self.sel.register(ls, selectors.EVENT_READ, ("listen", port))

    def run(self) -> None:
        while True:
            for key, _ in self.sel.select(timeout=0.5):
                kind, port = key.data
                sock: socket.socket = key.fileobj  # type: ignore[assignment]
                if kind == "listen":
                    self._accept(sock, port)
                else:
                    self._read(sock)

    def _accept(self, ls: socket.socket, port: int) -> None:
        for _ in range(1024):  # drain the accept queue, bounded
            try:
                conn, _addr = ls.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            if port in self.server_first:
                conn.close()
                continue
            conn.setblocking(False)
            self.sel.register(conn, selectors.EVENT_READ, ("conn", port))

    def _read(self, conn: socket.socket) -> None:
        try:
            data = conn.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # ECONNRESET after an RST close
            data = b""
        if not data:
            self.sel.unregister(conn)
            conn.close()


# --------------------------------------------------------------------------- sockets


def new_tcp(kind: str) -> socket.socket:
    """Create a client socket of the requested flavour (bind-before-connect or not)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(CONNECT_TIMEOUT_S)
    try:
        if kind == "connect":
            return s
        if kind == "bind_reuseaddr":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        elif kind == "bind_no_port":
            s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        elif kind != "bind":
            raise StepError(f"unknown socket kind {kind!r}")
        s.bind((HOST, 0))
    except BaseException:
        s.close()
        raise
    return s


def try_connect(kind: str, dport: int) -> tuple[socket.socket | None, int | str]:
    """Return (socket, local port) on success or (None, errno name) on failure."""
    s = new_tcp(kind)
    try:
        s.connect((HOST, dport))
        return s, s.getsockname()[1]
    except OSError as exc:
        s.close()
        return None, err_name(exc)


def peer_key(s: socket.socket) -> tuple[int, int] | None:
    try:
        if s.type != socket.SOCK_STREAM:
            return None
        return s.getsockname()[1], s.getpeername()[1]
    except OSError:
        return None


def reset_close(s: socket.socket) -> None:
    """SO_LINGER {1,0} + close: RST, no TIME_WAIT."""
    with contextlib.suppress(OSError):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def client_close(socks: list[socket.socket], wait_s: float = 1.0) -> None:
    """Send FIN first, wait (bounded) for the peer's FIN, then close.

    Waiting for EOF means the client receives the FIN while still open and enters a real
    TIME_WAIT, rather than an orphaned FIN_WAIT2 pseudo-TIME_WAIT that tw_reuse ignores.
    """
    for s in socks:
        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_WR)
    end = time.monotonic() + wait_s
    for s in socks:
        if s.type == socket.SOCK_STREAM and peer_key(s) is not None:
            try:
                for _ in range(64):
                    left = end - time.monotonic()
                    if left <= 0:
                        break
                    s.settimeout(left)
                    if not s.recv(4096):
                        break
            except OSError:
                pass
        s.close()


def close_socks(socks: list[socket.socket], how: str) -> None:
    if how == "reset":
        for s in socks:
            reset_close(s)
    elif how == "client":
        client_close(socks)
    else:
        raise StepError(f"unknown close mode {how!r}")


def wait_settled(keys: set[tuple[int, int]], wait_s: float) -> None:
    """Poll until every closed 4-tuple (either side) is gone or in real TIME_WAIT."""
    both = keys | {(rport, lport) for lport, rport in keys}
    end = time.monotonic() + wait_s
    while time.monotonic() < end:
        if not any(
            (lp, rp) in both and st != TCP_STATE_TIME_WAIT for lp, rp, st in read_tcp_table()
        ):
            return
        time.sleep(0.01)


# --------------------------------------------------------------------------- steps


def op_sysctl(step: dict[str, Any]) -> str:
    """Write (if ``value`` given) then read back; errno name if the kernel refuses."""
    name = step["name"]
    if "value" in step:
        value = str(step["value"])
        try:
            with open(sysctl_path(name), "w") as fh:
                fh.write(value if value.endswith("\n") else value + "\n")
        except OSError as exc:
            return err_name(exc)
    return read_sysctl(name)


def op_connect(step: dict[str, Any]) -> list[int | str]:
    dport, n = int(step["dport"]), count_arg(step)
    kind = step.get("socket", "connect")
    out: list[int | str] = []
    held: list[socket.socket] = []
    for _ in range(n):
        try:
            s, res = try_connect(kind, dport)
        except OSError as exc:  # bind() failed
            s, res = None, err_name(exc)
        out.append(res)
        if s is None:
            break
        held.append(s)
    if step.get("keep", True):
        _kept.extend(held)
    else:
        close_socks(held, step.get("how", "reset"))
    return out


def op_bind0(step: dict[str, Any]) -> list[int | str]:
    n = count_arg(step)
    proto = socket.SOCK_DGRAM if step.get("proto", "tcp") == "udp" else socket.SOCK_STREAM
    out: list[int | str] = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, proto)
        try:
            if step.get("reuseaddr", False):
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((HOST, 0))
        except OSError as exc:
            s.close()
            out.append(err_name(exc))
            break
        out.append(s.getsockname()[1])
        _kept.append(s)
    return out


def op_close(step: dict[str, Any]) -> int:
    socks = list(_kept)
    _kept.clear()
    keys = {k for k in map(peer_key, socks) if k is not None}
    close_socks(socks, step.get("how", "client"))
    wait_settled(keys, float(step.get("wait_s", 2.0)))
    return tw_count()


def op_cycle(step: dict[str, Any]) -> list[int | str] | dict[str, list[Any]]:
    dport, n = int(step["dport"]), count_arg(step)
    how, kind = step.get("how", "reset"), step.get("socket", "connect")
    interval = float(step.get("interval_s", 0.0))
    t0 = time.monotonic()
    ports: list[int | str] = []
    stamps: list[float] = []
    for i in range(n):
        stamps.append(round(time.monotonic() - t0, 6))
        try:
            s, res = try_connect(kind, dport)
        except OSError as exc:
            s, res = None, err_name(exc)
        ports.append(res)
        if s is not None:
            close_socks([s], how)
        if interval > 0 and i + 1 < n:
            time.sleep(interval)
    if step.get("timestamps", False):
        return {"ports": ports, "t_s": stamps}
    return ports


def op_retry_until_ok(step: dict[str, Any]) -> dict[str, Any]:
    dport = int(step["dport"])
    timeout, poll = float(step.get("timeout_s", 3.0)), float(step.get("poll_s", 0.02))
    kind = step.get("socket", "connect")
    t0 = time.monotonic()
    failures, last_error = 0, None
    while True:
        try:
            s, res = try_connect(kind, dport)
        except OSError as exc:
            s, res = None, err_name(exc)
        if s is not None:
            _kept.append(s)
            return {
                "port": res,
                "elapsed_s": round(time.monotonic() - t0, 6),
                "failures": failures,
                "last_error": last_error,
            }
        failures, last_error = failures + 1, res
        if time.monotonic() - t0 + poll > timeout:
            return {
                "port": None,
                "elapsed_s": round(time.monotonic() - t0, 6),
                "failures": failures,
                "last_error": last_error,
            }
        time.sleep(poll)


def op_sleep(step: dict[str, Any]) -> None:
    time.sleep(max(0.0, float(step["s"])))


def op_udp_connect(step: dict[str, Any]) -> list[int | str]:
    dports = [int(p) for p in step["dports"]]
    if not dports:
        raise StepError("dports is empty")
    out: list[int | str] = []
    for i in range(count_arg(step)):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.connect((HOST, dports[i % len(dports)]))
        except OSError as exc:
            s.close()
            out.append(err_name(exc))
            break
        out.append(s.getsockname()[1])
        _kept.append(s)
    return out


def op_tw_count(step: dict[str, Any]) -> int:
    dport = step.get("dport")
    return tw_count(None if dport is None else int(dport))


OPS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "sysctl": op_sysctl,
    "connect": op_connect,
    "bind0": op_bind0,
    "close": op_close,
    "cycle": op_cycle,
    "retry_until_ok": op_retry_until_ok,
    "sleep": op_sleep,
    "udp_connect": op_udp_connect,
    "tw_count": op_tw_count,
}


# --------------------------------------------------------------------------- main


def emit(obj: dict[str, Any], code: int) -> NoReturn:
    signal.setitimer(signal.ITIMER_REAL, 0)
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()
    os._exit(code)  # daemon listener thread and open sockets need no orderly shutdown


def main() -> None:
    cmd = json.load(sys.stdin)
    if isinstance(cmd, list):
        cmd = {"steps": cmd}
    deadline = float(cmd.get("deadline_s", DEFAULT_DEADLINE_S))
    t0 = time.monotonic()

    def on_alarm(_sig: int, _frame: Any) -> None:
        raise DeadlineExceeded

    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, deadline)
    # Backstop in case the signal cannot interrupt the main thread.
    watchdog = threading.Timer(deadline + 3.0, lambda: os._exit(3))
    watchdog.daemon = True
    watchdog.start()

    results: list[Any] = []
    meta = {"kernel": platform.release()}
    try:
        Listeners(
            [int(p) for p in cmd.get("listen", [9000, 9001])],
            [int(p) for p in cmd.get("server_first", [])],
        ).start()
        for step in cmd.get("steps", []):
            op = OPS.get(step.get("op"))
            if op is None:
                raise StepError(f"unknown op {step.get('op')!r}")
            results.append(op(step))
    except DeadlineExceeded:
        emit({"error": f"deadline {deadline} s hit", "step": len(results), "results": results}, 2)
    except Exception as exc:
        emit({"error": f"{type(exc).__name__}: {exc}", "step": len(results), "results": results}, 1)
    meta["elapsed_s"] = round(time.monotonic() - t0, 6)
    emit({"results": results, **meta}, 0)


if __name__ == "__main__":
    main()
