"""A small command server run inside one network namespace of the NAT lab.

Run as ``ip netns exec NS python3 -I nat_agent.py DEADLINE_S``. It reads one JSON command
per line on stdin and answers one JSON line on stdout, so the test can interleave actions in
several namespaces (client connects, router reads) in one timeline.  Standard library only:
it runs under any python3 without our package.  It exits at EOF on stdin or, whatever
happens, DEADLINE_S seconds after it started, so no process outlives a test.

Commands (``{"op": ...}``):

* ``listen``: server side.  TCP accepts on addresses x ports and reads to EOF before
  closing, so the client closes first.  UDP ports either echo or stay silent.
* ``connect``: bind to a chosen source address and port, then connect.  With
  ``wait: false`` it runs in a thread and ``wait`` collects it.
* ``close``: ``how`` is ``fin`` (wait for the peer's FIN) or ``rst`` (send an RST).
* ``udp_send``: one datagram, optionally waiting for the echo.
* ``sysctl``, ``sleep``.
* ``sniff_start``/``sniff_stop``: TCP headers arriving on given interfaces, with kernel
  timestamps, via an AF_PACKET socket.

Times are CLOCK_REALTIME seconds, the clock of the kernel's packet timestamps.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import selectors
import signal
import socket
import struct
import sys
import threading
import time
from typing import Any

SO_TIMESTAMPNS = 35  # asm-generic/socket.h; SCM_TIMESTAMPNS has the same value
ETH_P_IP = 0x0800
PACKET_OUTGOING = 4
MAX_STEPS_SLEEP_S = 30.0

_socks: dict[str, socket.socket] = {}
_pending: dict[str, tuple[threading.Thread, dict[str, Any]]] = {}


def err_name(exc: BaseException) -> str:
    """Errno name of a socket failure (a bare timeout is the caller's own, not the kernel's)."""
    if isinstance(exc, TimeoutError) and getattr(exc, "errno", None) is None:
        return "TIMEOUT"
    code = getattr(exc, "errno", None)
    if code is None:
        return type(exc).__name__
    return errno.errorcode.get(code, f"E{code}")


# --------------------------------------------------------------------------- server side


class Listeners(threading.Thread):
    """Accept on every (address, port), read to EOF, then close: the client closes first."""

    def __init__(
        self, addrs: list[str], ports: list[int], udp_echo: list[int], udp_silent: list[int]
    ) -> None:
        super().__init__(daemon=True, name="listeners")
        self.sel = selectors.DefaultSelector()
        self.accepted: list[list[Any]] = []
        for addr in addrs:
            for port in ports:
                ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                ls.bind((addr, port))
                ls.listen(1024)
                ls.setblocking(False)
                self.sel.register(ls, selectors.EVENT_READ, "listen")
            for port, kind in [(p, "udp_echo") for p in udp_echo] + [
                (p, "udp_silent") for p in udp_silent
            ]:
                us = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                us.bind((addr, port))
                us.setblocking(False)
                self.sel.register(us, selectors.EVENT_READ, kind)

    def run(self) -> None:
        while True:
            for key, _ in self.sel.select(timeout=0.5):
                sock: socket.socket = key.fileobj  # type: ignore[assignment]
                if key.data == "listen":
                    self._accept(sock)
                elif key.data.startswith("udp"):
                    self._datagram(sock, echo=key.data == "udp_echo")
                else:
                    self._read(sock)

    @staticmethod
    def _datagram(sock: socket.socket, echo: bool) -> None:
        """UDP: echo the datagram (a replied flow) or swallow it (an unreplied one)."""
        with contextlib.suppress(OSError):
            data, peer = sock.recvfrom(2048)
            if echo:
                sock.sendto(data, peer)

    def _accept(self, ls: socket.socket) -> None:
        for _ in range(256):
            try:
                conn, peer = ls.accept()
            except OSError:
                return
            self.accepted.append([*peer, *conn.getsockname()])
            conn.setblocking(False)
            self.sel.register(conn, selectors.EVENT_READ, "conn")

    def _read(self, conn: socket.socket) -> None:
        try:
            data = conn.recv(65536)
        except BlockingIOError:
            return
        except OSError:  # ECONNRESET after the client's RST
            data = b""
        if not data:
            self.sel.unregister(conn)
            conn.close()


_listeners: Listeners | None = None


def op_listen(cmd: dict[str, Any]) -> int:
    global _listeners
    _listeners = Listeners(
        list(cmd["addrs"]),
        [int(p) for p in cmd["ports"]],
        [int(p) for p in cmd.get("udp_echo", [])],
        [int(p) for p in cmd.get("udp_silent", [])],
    )
    _listeners.start()
    return len(cmd["addrs"]) * len(cmd["ports"])


def op_accepted(_cmd: dict[str, Any]) -> list[list[Any]]:
    return list(_listeners.accepted) if _listeners else []


# --------------------------------------------------------------------------- client side


def _connect(cmd: dict[str, Any], out: dict[str, Any]) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if "syncnt" in cmd:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_SYNCNT, int(cmd["syncnt"]))
    s.settimeout(float(cmd.get("timeout_s", 5.0)))
    out["t_start"] = time.time()
    try:
        s.bind((cmd["src"], int(cmd.get("sport", 0))))
        out["local"] = list(s.getsockname())
        if "at" in cmd:  # start at an agreed wall-clock time (bounded wait)
            time.sleep(min(MAX_STEPS_SLEEP_S, max(0.0, float(cmd["at"]) - time.time())))
        out["t_start"] = time.time()
        s.connect((cmd["dst"], int(cmd["dport"])))
        if int(cmd.get("send_bytes", 0)):
            s.sendall(b"x" * int(cmd["send_bytes"]))
    except OSError as exc:
        out["t_end"] = time.time()
        out["error"] = err_name(exc)
        s.close()
    else:
        out["t_end"] = time.time()
        out["error"] = None
        _socks[str(cmd["id"])] = s
    out["ok"] = out["error"] is None
    out["elapsed_s"] = round(out["t_end"] - out["t_start"], 6)


def op_connect(cmd: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"id": cmd["id"]}
    if cmd.get("wait", True):
        _connect(cmd, out)
        return out
    th = threading.Thread(target=_connect, args=(cmd, out), daemon=True)
    _pending[str(cmd["id"])] = (th, out)
    th.start()
    return {"id": cmd["id"], "started": True}


def op_wait(cmd: dict[str, Any]) -> dict[str, Any]:
    th, out = _pending.pop(str(cmd["id"]))
    th.join(float(cmd.get("timeout_s", 30.0)))
    if th.is_alive():
        return {"id": cmd["id"], "ok": False, "error": "STILL_RUNNING"}
    return out


def _fin_close(s: socket.socket, wait_s: float) -> None:
    """FIN first, then wait (bounded) for the server's FIN so the close completes."""
    with contextlib.suppress(OSError):
        s.shutdown(socket.SHUT_WR)
    end = time.monotonic() + wait_s
    with contextlib.suppress(OSError):
        for _ in range(64):
            left = end - time.monotonic()
            if left <= 0:
                break
            s.settimeout(left)
            if not s.recv(4096):
                break
    s.close()


def op_close(cmd: dict[str, Any]) -> dict[str, float]:
    how = cmd.get("how", "fin")
    closed: dict[str, float] = {}
    for key in cmd["ids"]:
        s = _socks.pop(str(key))
        if how == "rst":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        elif how == "fin":
            _fin_close(s, float(cmd.get("wait_s", 2.0)))
        else:
            raise ValueError(f"unknown close mode {how!r}")
        closed[str(key)] = time.time()
    return closed


def op_udp_send(cmd: dict[str, Any]) -> dict[str, Any]:
    """Send one datagram from (src, sport) on socket ``id`` (created on first use) and
    wait up to ``reply_s`` for an answer."""
    key = str(cmd["id"])
    s = _socks.get(key)
    if s is None:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((cmd["src"], int(cmd["sport"])))
        _socks[key] = s
    t = time.time()
    s.sendto(b"portsim", (cmd["dst"], int(cmd["dport"])))
    reply = False
    wait = float(cmd.get("reply_s", 0.0))
    if wait > 0:
        s.settimeout(wait)
        with contextlib.suppress(OSError):
            reply = bool(s.recv(2048))
    return {"id": key, "t": t, "reply": reply}


def op_sysctl(cmd: dict[str, Any]) -> str:
    name = str(cmd["name"])
    if ".." in name or "/" in name:
        raise ValueError(f"bad sysctl name {name!r}")
    path = "/proc/sys/" + name.replace(".", "/")
    if "value" in cmd:
        with open(path, "w") as fh:
            fh.write(f"{cmd['value']}\n")
    with open(path) as fh:
        return " ".join(fh.read().split())


def op_pin(cmd: dict[str, Any]) -> list[int]:
    """Run this agent (and the threads it starts later) on one CPU."""
    os.sched_setaffinity(0, {int(cmd["cpu"])})
    return sorted(os.sched_getaffinity(0))


def op_sleep(cmd: dict[str, Any]) -> None:
    time.sleep(min(MAX_STEPS_SLEEP_S, max(0.0, float(cmd["s"]))))


# --------------------------------------------------------------------------- capture


class Sniffer(threading.Thread):
    """TCP segments arriving on the given interfaces, with the kernel's receive time."""

    def __init__(self, ifaces: list[str]) -> None:
        super().__init__(daemon=True, name="sniffer")
        self.ifaces = set(ifaces)
        self.records: list[dict[str, Any]] = []
        self.stop = threading.Event()
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.settimeout(0.1)

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                data, anc, _flags, addr = self.sock.recvmsg(256, 64)
            except TimeoutError:
                continue
            except OSError:
                return
            if addr[0] not in self.ifaces or addr[2] == PACKET_OUTGOING:
                continue
            rec = self._parse(data)
            if rec is None:
                continue
            t = time.time()
            for level, kind, raw in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = struct.unpack("qq", raw[:16])
                    t = sec + nsec / 1e9
            rec["t"], rec["if"] = t, addr[0]
            self.records.append(rec)

    @staticmethod
    def _parse(data: bytes) -> dict[str, Any] | None:
        if len(data) < 20 or data[9] != socket.IPPROTO_TCP:
            return None
        ihl = (data[0] & 0x0F) * 4
        total = struct.unpack("!H", data[2:4])[0]
        tcp = data[ihl:]
        if len(tcp) < 20:
            return None
        sport, dport, seq = struct.unpack("!HHI", tcp[:8])
        doff = (tcp[12] >> 4) * 4
        flags = tcp[13]
        return {
            "src": socket.inet_ntoa(data[12:16]),
            "dst": socket.inet_ntoa(data[16:20]),
            "sport": sport,
            "dport": dport,
            "seq": seq,
            "len": total - ihl - doff,
            "syn": bool(flags & 0x02),
            "ack": bool(flags & 0x10),
            "fin": bool(flags & 0x01),
            "rst": bool(flags & 0x04),
        }


_sniffer: Sniffer | None = None


def op_sniff_start(cmd: dict[str, Any]) -> bool:
    global _sniffer
    _sniffer = Sniffer(list(cmd["ifaces"]))
    _sniffer.start()
    return True


def op_sniff_stop(_cmd: dict[str, Any]) -> list[dict[str, Any]]:
    if _sniffer is None:
        return []
    time.sleep(0.05)  # let the last packets in flight be read
    _sniffer.stop.set()
    _sniffer.join(1.0)
    return list(_sniffer.records)


OPS = {
    "listen": op_listen,
    "accepted": op_accepted,
    "connect": op_connect,
    "wait": op_wait,
    "close": op_close,
    "sysctl": op_sysctl,
    "udp_send": op_udp_send,
    "sleep": op_sleep,
    "pin": op_pin,
    "sniff_start": op_sniff_start,
    "sniff_stop": op_sniff_stop,
}


def main() -> None:
    deadline = float(sys.argv[1]) if len(sys.argv) > 1 else 120.0
    signal.signal(signal.SIGALRM, lambda *_: os._exit(3))
    signal.alarm(max(1, int(deadline)))
    for line in sys.stdin:
        if not line.strip():
            continue
        cmd = json.loads(line)
        try:
            reply = {"result": OPS[cmd["op"]](cmd)}
        except Exception as exc:  # reported to the driver, which raises
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
