"""The process that runs inside a replay namespace: serve destinations, or replay a plan.

Run as ``ip netns exec NS python3 driver.py`` with a JSON command on stdin; standard library
only, so it needs nothing importable inside the namespace.

* ``{"mode": "serve", "listen": [[ip, port], ...], "deadline_s": S}``: accept on every
  endpoint and close a connection as soon as it is readable (the client's FIN, or one byte
  asking the server to close first), until killed or the deadline.
* ``{"mode": "replay", ...}`` (keys in :func:`replay`): connect at the plan's times, hold
  each connection for its lifetime, close it the plan's way, and sample /proc/net/tcp
  (this namespace's sockets) ``sample_hz`` times a second.  Prints one JSON object: every
  attempt with its real time and port or errno name, every TIME_WAIT seen with its start
  and end, and the samples.

Loops are bounded by the plan's length and ``deadline_s``.
"""

from __future__ import annotations

import contextlib
import errno
import heapq
import json
import os
import resource
import selectors
import socket
import struct
import sys
import time
from typing import Any

IP_BIND_ADDRESS_NO_PORT = 24
IP_LOCAL_PORT_RANGE = 51  # Linux 6.3+
TIME_WAIT, LISTEN = "06", "0A"


def err_name(exc: BaseException) -> str:
    code = getattr(exc, "errno", None)
    if code is None:
        return "ETIMEDOUT" if isinstance(exc, TimeoutError) else type(exc).__name__
    return errno.errorcode.get(code, f"E{code}")


def proc_address(ip: str) -> str:
    """An address as /proc/net/tcp{,6} prints it (32-bit words in host byte order)."""
    if ":" in ip:
        raw = socket.inet_pton(socket.AF_INET6, ip)
        return "".join(
            f"{int.from_bytes(raw[i : i + 4], sys.byteorder):08X}" for i in (0, 4, 8, 12)
        )
    return f"{int.from_bytes(socket.inet_aton(ip), sys.byteorder):08X}"


def read_sockets(tables: tuple[str, ...]) -> list[tuple[str, int, str, int, str, str]]:
    """(local ip, local port, remote ip, remote port, state, table) of this namespace."""
    rows = []
    for table in tables:
        try:
            with open(f"/proc/net/{table}") as fh:
                next(fh)
                for line in fh:
                    f = line.split()
                    lip, lport = f[1].rsplit(":", 1)
                    rip, rport = f[2].rsplit(":", 1)
                    rows.append((lip, int(lport, 16), rip, int(rport, 16), f[3], table))
        except OSError:
            continue
    return rows


def serve(cmd: dict[str, Any]) -> None:
    sel = selectors.DefaultSelector()
    for ip, port in cmd["listen"]:
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        ls = socket.socket(family, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((ip, int(port)))
        ls.listen(4096)
        ls.setblocking(False)
        sel.register(ls, selectors.EVENT_READ, True)
    print("ready", flush=True)
    end = time.monotonic() + float(cmd["deadline_s"])
    while time.monotonic() < end:
        for key, _ in sel.select(timeout=0.5):
            sock: socket.socket = key.fileobj  # type: ignore[assignment]
            if key.data:
                for _ in range(4096):
                    try:
                        conn, _addr = sock.accept()
                    except OSError:
                        break
                    conn.setblocking(False)
                    sel.register(conn, selectors.EVENT_READ, False)
            else:  # EOF or the close-first byte: close now
                sel.unregister(sock)
                sock.close()


class Replay:
    """One replay: the plan, the open sockets and what was seen."""

    def __init__(self, cmd: dict[str, Any]) -> None:
        self.cmd = cmd
        self.channels: list[dict[str, Any]] = cmd["channels"]
        self.lifetimes: dict[str, list[float]] = cmd["lifetimes"]
        self.used = dict.fromkeys(self.lifetimes, 0)
        self.sel = selectors.DefaultSelector()
        self.heap: list[tuple[float, int, socket.socket, int]] = []
        self.seq = 0
        self.t0 = float(cmd["t0_monotonic"])
        self.attempts: list[list[Any]] = []
        self.closes: list[list[Any]] = []
        dests = {(c["dst"], c["dport"]) for c in self.channels}
        self.dest_keys = {(proc_address(ip), port): f"{_ep(ip, port)}" for ip, port in dests}
        self.tw_open: dict[tuple[str, int, str, int], float] = {}  # 4-tuple -> TIME_WAIT start
        self.tw_seen: list[list[Any]] = []  # [port, destination, start, end]
        self.tw_pending: dict[tuple[str, int, str, int], float] = {}  # missed once: end
        self.samples: list[list[Any]] = []
        self.prev_sample = 0.0
        self.keep: list[socket.socket] = []  # connections that never close
        # only the /proc tables the plan can fill: each read costs the loop time
        v6 = any(":" in c["dst"] for c in self.channels)
        protocols = {c["protocol"] for c in self.channels}
        self.tables = tuple(
            p + v for p in ("tcp", "udp") if p in protocols for v in ("", "6") if v == "" or v6
        )

    def now(self) -> float:
        return time.monotonic() - self.t0

    # -- connections ---------------------------------------------------------------------
    def attempt(self, t_plan: float, index: int) -> None:
        ch = self.channels[index]
        udp = ch["protocol"] == "udp"
        family = socket.AF_INET6 if ":" in ch["dst"] else socket.AF_INET
        s = socket.socket(family, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM)
        t_real = self.now()
        try:
            kind = ch["socket"]
            if ch.get("range"):
                lo, hi = ch["range"]
                s.setsockopt(socket.IPPROTO_IP, IP_LOCAL_PORT_RANGE, (hi << 16) | lo)
            if kind == "bind_reuseaddr":
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if kind == "bind_no_port" or (kind == "connect" and ch["bind_source"]):
                s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
                kind = "bind"
            if kind in ("bind", "bind_reuseaddr"):
                s.bind((ch["src"], 0))
            s.settimeout(2.0)
            s.connect((ch["dst"], ch["dport"]))
            port = s.getsockname()[1]
        except OSError as exc:
            s.close()
            self.attempts.append([t_plan, t_real, index, err_name(exc)])
            return
        self.attempts.append([t_plan, t_real, index, port])
        load = str(ch["load"])
        n = self.used[load]
        self.used[load] = n + 1
        life = self.lifetimes[load][n] if n < len(self.lifetimes[load]) else float("inf")
        if life != float("inf"):
            self.seq += 1
            heapq.heappush(self.heap, (t_plan + life, self.seq, s, index))
        else:
            self.keep.append(s)

    def close(self, s: socket.socket, index: int) -> None:
        ch = self.channels[index]
        try:
            port = s.getsockname()[1]
        except OSError:
            port = None
        self.closes.append([self.now(), port, index])
        if ch["protocol"] == "udp":
            s.close()
            return
        if ch["close"] == "reset":
            with contextlib.suppress(OSError):
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
            return
        try:
            if ch["close"] == "client":
                s.shutdown(socket.SHUT_WR)
            else:  # server closes first: ask it with one byte
                s.send(b"x")
            s.setblocking(False)
            self.sel.register(s, selectors.EVENT_READ, (index, port))
        except OSError:
            s.close()

    def readable(self, s: socket.socket, index: int, port: int | None) -> None:
        try:
            data = s.recv(4096)
        except OSError:
            data = b""
        if data:
            return
        self.sel.unregister(s)
        ch = self.channels[index]
        if ch["close"] == "client" and port is not None:  # the peer's FIN: TIME_WAIT begins
            key = (proc_address(s.getsockname()[0]), port, proc_address(ch["dst"]), ch["dport"])
            self.tw_open[key] = self.now()
        s.close()

    # -- sampling ------------------------------------------------------------------------
    def sample(self) -> None:
        """Levels now, and TIME_WAIT ends: a TIME_WAIT 4-tuple is over when two samples in a
        row miss it (one read of /proc/net/tcp can skip entries while the table changes),
        at the midpoint before the first miss, or as soon as its 4-tuple is back in another
        state (recycled by tcp_tw_reuse, or killed early and its port taken again)."""
        t = self.now()
        established = time_wait = 0
        per_dest: dict[str, int] = {}
        ports: set[int] = set()
        tw_now = set()
        present = set()
        for lip, lport, rip, rport, state, table in read_sockets(self.tables):
            dest = self.dest_keys.get((rip, rport))
            if dest is None or state == LISTEN:
                continue
            ports.add(lport)
            per_dest[dest] = per_dest.get(dest, 0) + 1
            key = (lip, lport, rip, rport)
            present.add(key)
            if state == TIME_WAIT and table.startswith("tcp"):
                time_wait += 1
                tw_now.add(key)
            else:
                established += 1
        mid = (self.prev_sample + t) / 2
        for key in [k for k in self.tw_open if k not in tw_now]:
            if key in present:  # its 4-tuple is in use again: the TIME_WAIT is over
                start = self.tw_open.pop(key)
                end = self.tw_pending.pop(key, mid)
                self.tw_seen.append([key[1], self.dest_keys[(key[2], key[3])], start, end])
            elif key in self.tw_pending:  # missed twice: ended
                start, end = self.tw_open.pop(key), self.tw_pending.pop(key)
                end = max(end, start)  # gone before the first sample after it began
                self.tw_seen.append([key[1], self.dest_keys[(key[2], key[3])], start, end])
            else:
                self.tw_pending[key] = mid
        for key in [k for k in self.tw_pending if k in tw_now]:
            del self.tw_pending[key]  # a skipped entry, still there
        self.prev_sample = t
        self.samples.append([round(t, 6), established, time_wait, len(ports), per_dest])

    # -- main loop -----------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        plan: list[list[Any]] = self.cmd["attempts"]
        duration = float(self.cmd["duration_s"])
        period = 1.0 / float(self.cmd["sample_hz"])
        deadline = float(self.cmd["deadline_s"])
        i = 0
        next_sample = 0.0
        while True:
            now = self.now()
            if now > deadline:
                break
            while i < len(plan) and plan[i][0] <= now:
                self.attempt(plan[i][0], plan[i][1])
                i += 1
            while self.heap and self.heap[0][0] <= now:
                _t, _seq, s, index = heapq.heappop(self.heap)
                self.close(s, index)
            if now >= next_sample:
                if now > duration:
                    self.sample()
                    break
                self.sample()
                next_sample += period
                if next_sample < now:  # behind: skip missed ticks rather than burst
                    next_sample = now + period
            nxt = min(
                plan[i][0] if i < len(plan) else float("inf"),
                self.heap[0][0] if self.heap else float("inf"),
                next_sample,
            )
            timeout = max(0.0, nxt - self.now())
            for key, _ in self.sel.select(timeout=min(timeout, 0.5)):
                index, port = key.data
                self.readable(key.fileobj, index, port)  # type: ignore[arg-type]
        open_tw = [
            [k[1], self.dest_keys[(k[2], k[3])], start, None] for k, start in self.tw_open.items()
        ]
        return {
            "attempts": self.attempts,
            "closes": self.closes,
            "time_waits": self.tw_seen + open_tw,
            "samples": self.samples,
        }


def _ep(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def replay(cmd: dict[str, Any]) -> None:
    """Keys: t0_monotonic (CLOCK_MONOTONIC s at plan time 0), duration_s, deadline_s,
    sample_hz, channels [{src, dst, dport, socket, close, protocol, range, bind_source,
    load}], attempts [[t, channel], ...] sorted, lifetimes {load: [s, ...]} (nth success)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    for name, value in cmd.get("sysctls", {}).items():
        with open("/proc/sys/" + name.replace(".", "/"), "w") as fh:
            fh.write(f"{value}\n")
    with contextlib.suppress(OSError):  # ahead of other work on a busy machine (root)
        os.setpriority(os.PRIO_PROCESS, 0, -10)
    wait = float(cmd["t0_monotonic"]) - time.monotonic()
    if wait > 0:
        time.sleep(wait)
    out = Replay(cmd).run()
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    os._exit(0)  # open sockets need no orderly shutdown


def main() -> None:
    cmd = json.load(sys.stdin)
    if cmd["mode"] == "serve":
        serve(cmd)
    else:
        replay(cmd)


if __name__ == "__main__":
    main()
