"""The SNAT address choice among several addresses, model against the running kernel.

``find_best_ips_proto`` (net/netfilter/nf_nat_core.c) picks one address of a
``--to-source a-b`` range by a jhash of the inside source seeded by the destination; the
model (``sim.nat.linux.address_index``) must pick the same one for every source.  Three
namespaces: a client holding 40 addresses, a router that SNATs to 4 addresses, a server
that reports the peer address it sees."""

from __future__ import annotations

import shutil
import subprocess
from contextlib import ExitStack

import pytest

from sim.nat.linux import address_index
from tests.kernel.lab import kernel_available, namespace

pytestmark = pytest.mark.kernel

PUBLIC = [f"198.51.100.{i}" for i in range(1, 5)]
CLIENTS = [f"10.9.0.{i}" for i in range(2, 42)]
SERVER = "203.0.113.10"

SERVE = f"""
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("{SERVER}", 9000))
s.listen(64)
s.settimeout(20)
for _ in range({len(CLIENTS)}):
    c, peer = s.accept()
    print(peer[0], flush=True)
    c.close()
"""

CONNECT = f"""
import socket, time
for src in {CLIENTS!r}:
    for _ in range(50):
        c = socket.socket()
        c.bind((src, 0))
        try:
            c.connect(("{SERVER}", 9000))
            break
        except ConnectionRefusedError:
            c.close()
            time.sleep(0.1)
    c.close()
"""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


def _exec(ns: str, *args: str) -> None:
    subprocess.run(["ip", "netns", "exec", ns, *args], check=True, capture_output=True, timeout=10)


@pytest.fixture(autouse=True)
def _need_kernel() -> None:
    ok, why = kernel_available()
    if not ok:
        pytest.skip(why)
    if shutil.which("iptables") is None:
        pytest.skip("iptables not installed")


def test_snat_address_matches_find_best_ips_proto() -> None:
    with ExitStack() as stack:
        client = stack.enter_context(namespace("nc"))
        router = stack.enter_context(namespace("nr"))
        server = stack.enter_context(namespace("ns"))
        veth = ("type", "veth", "peer")
        _ip("link", "add", "veth0", "netns", client, *veth, "in0", "netns", router)
        _ip("link", "add", "out0", "netns", router, *veth, "veth0", "netns", server)
        for ns, dev in ((client, "veth0"), (router, "in0"), (router, "out0"), (server, "veth0")):
            _ip("-n", ns, "link", "set", dev, "up")
        for address in CLIENTS:
            _ip("-n", client, "addr", "add", f"{address}/24", "dev", "veth0")
        _ip("-n", client, "route", "add", "default", "via", "10.9.0.1", "dev", "veth0")
        _ip("-n", router, "addr", "add", "10.9.0.1/24", "dev", "in0")
        _ip("-n", router, "addr", "add", "192.0.2.1/24", "dev", "out0")
        _ip("-n", router, "route", "add", f"{SERVER}/32", "via", "192.0.2.2")
        _ip("-n", server, "addr", "add", "192.0.2.2/24", "dev", "veth0")
        _ip("-n", server, "addr", "add", f"{SERVER}/32", "dev", "veth0")
        _ip("-n", server, "route", "add", "default", "via", "192.0.2.1")
        _exec(router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        _exec(
            router,
            *("iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "out0", "-j", "SNAT"),
            *("--to-source", f"{PUBLIC[0]}-{PUBLIC[-1]}"),
        )
        serve = subprocess.Popen(
            ["ip", "netns", "exec", server, "python3", "-c", SERVE],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            subprocess.run(
                ["ip", "netns", "exec", client, "python3", "-c", CONNECT],
                check=True,
                capture_output=True,
                timeout=60,
            )
            out, err = serve.communicate(timeout=30)
        finally:
            if serve.poll() is None:
                serve.kill()
                serve.wait()
        seen = out.split()
        assert len(seen) == len(CLIENTS), err
        model = [PUBLIC[address_index(src, SERVER, len(PUBLIC))] for src in CLIENTS]
        assert seen == model
        assert len(set(seen)) > 1  # the range is really spread over
