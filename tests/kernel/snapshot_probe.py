"""Open a known set of sockets in the current network namespace, then capture the real
listings of them (``ss``, ``/proc/net/tcp``, ``netstat``, ``lsof``, ``sysctl``).

Run as ``ip netns exec NS python3 snapshot_probe.py`` with a JSON command on stdin:
``{"range": "40000 40999", "listen_in_range": 40500, "plan": [[host, port, established,
time_wait], ...], "udp_connected": 6}``.  Prints ``{"captures": {name: text},
"time_wait": n}``.  Standard library only; every loop is bounded.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time

COMMANDS = {
    "ss-tan.txt": ["ss", "-tan"],
    "ss-tanp.txt": ["ss", "-tanp"],
    "ss-tano.txt": ["ss", "-tano"],
    "ss-tanH.txt": ["ss", "-tanH"],
    "ss-uan.txt": ["ss", "-uan"],
    "ss-tuan.txt": ["ss", "-tuan"],
    "netstat-uan.txt": ["netstat", "-uan"],
    "netstat-tan.txt": ["netstat", "-tan"],
    "netstat-tanp.txt": ["netstat", "-tanp"],
    "lsof.txt": ["lsof", "-i", "-n", "-P"],
    "sysctl.txt": ["sysctl", "net.ipv4.ip_local_port_range"],
}


def tw_count() -> int:
    total = 0
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(name) as fh:
            next(fh)
            total += sum(1 for line in fh if line.split()[3] == "06")
    return total


def main() -> None:
    cmd = json.loads(sys.stdin.read())
    with open("/proc/sys/net/ipv4/ip_local_port_range", "w") as fh:
        fh.write(cmd["range"])
    with open("/proc/sys/net/ipv4/tcp_rfc1337", "w") as fh:  # an RST must not end TIME_WAIT
        fh.write("1")
    held = []
    listeners = {}
    for host, port, _, _ in cmd["plan"]:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        ls = socket.socket(family, socket.SOCK_STREAM)
        ls.bind((host, port))
        ls.listen(256)
        listeners[(host, port)] = ls
    extra = socket.socket()
    extra.bind(("0.0.0.0", cmd["listen_in_range"]))
    extra.listen(1)
    want_tw = 0
    for host, port, established, time_wait in cmd["plan"]:
        ls = listeners[(host, port)]
        for _ in range(established):
            c = socket.create_connection((host, port), timeout=5)
            s, _ = ls.accept()
            held += [c, s]
        for _ in range(time_wait):
            c = socket.create_connection((host, port), timeout=5)
            s, _ = ls.accept()
            c.close()  # the client closes first: it holds TIME_WAIT
            s.settimeout(5)
            assert s.recv(1) == b""
            s.close()
        want_tw += time_wait
    for _ in range(cmd.get("udp_connected", 0)):  # connected UDP: autobind in the range
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.connect(("127.0.0.1", 53))
        held.append(u)
    if cmd.get("udp_connected"):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("0.0.0.0", 0))  # bound, not connected: UNCONN
        held.append(u)
    for _ in range(100):  # the last FINs cross the loopback
        if tw_count() >= want_tw:
            break
        time.sleep(0.05)
    captures = {}
    for name in ("tcp", "tcp6", "udp"):
        with open(f"/proc/net/{name}") as fh:
            captures[f"proc-net-{name}.txt"] = fh.read()
    for name, argv in COMMANDS.items():
        if shutil.which(argv[0]):
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
            captures[name] = proc.stdout
    print(json.dumps({"captures": captures, "time_wait": tw_count()}))
    for sock in held:
        sock.close()


if __name__ == "__main__":
    main()
