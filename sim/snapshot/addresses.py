"""Endpoint texts as the tools print them, to (ip, port) with wildcards as None.

* ``ip:port`` (``ss``, Linux ``netstat``, ``lsof``, Windows ``netstat``): the port after the
  last colon; IPv6 in brackets (``[::1]:443``) or bare (Linux ``netstat``: ``::1:443``,
  ``:::22``); a zone after the address (``ss``: ``[fe80::1]%eth0:22``,
  ``127.0.0.53%lo:53``; others ``[fe80::1%eth0]:22``); ``*`` for any.
* ``ip.port`` (macOS and BSD ``netstat``): the port after the last dot (``10.0.0.5.51234``,
  ``fe80::1%lo0.22``, ``*.*``).
* hexadecimal (``/proc/net/tcp``): see :func:`proc_endpoint`.
"""

from __future__ import annotations

import ipaddress
import re

WILDCARDS = {"*", "0.0.0.0", "::", "0:0:0:0:0:0:0:0"}


def ip_text(text: str) -> str | None:
    """A normalised address, or None for a wildcard; raises ValueError if not an address.

    IPv4-mapped IPv6 addresses (``::ffff:10.0.0.5``) become the IPv4 address: such a
    socket shares the IPv4 port space (Linux ``net/ipv6/af_inet6.c``, dual-stack sockets).
    An IPv4 zone (``127.0.0.53%lo``, a socket bound to a device) is dropped."""
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if text in WILDCARDS:
        return None
    address, _, zone = text.partition("%")
    if address in WILDCARDS:
        return None
    if ":" not in address:
        return str(ipaddress.IPv4Address(address))
    ip = ipaddress.IPv6Address(address)
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    if ip == ipaddress.IPv6Address("::"):
        return None
    return f"{ip}%{zone}" if zone else str(ip)


def _port(text: str) -> int | None:
    if text == "*":
        return None
    if not text.isdigit():
        raise ValueError(f"not a port: {text!r}")
    port = int(text)
    if port > 65535:
        raise ValueError(f"not a port: {text!r}")
    return port


def colon_endpoint(text: str) -> tuple[str | None, int | None]:
    """``ip:port`` in any of the colon spellings (module docstring)."""
    # ss puts the zone after the brackets: [fe80::1]%eth0:22
    match = re.fullmatch(r"\[([^\]]+)\](%[^:\s]+)?:(\*|\d+)", text)
    if match:
        return ip_text(match.group(1) + (match.group(2) or "")), _port(match.group(3))
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise ValueError(f"not ip:port: {text!r}")
    return ip_text(host), _port(port)


def dotted_endpoint(text: str) -> tuple[str | None, int | None]:
    """``ip.port`` as BSD and macOS ``netstat`` print it."""
    if text == "*.*":
        return None, None
    host, sep, port = text.rpartition(".")
    if not sep or not host:
        raise ValueError(f"not ip.port: {text!r}")
    return ip_text(host), _port(port)


def proc_endpoint(text: str) -> tuple[str | None, int]:
    """``0100007F:2328`` (IPv4) or 32 hex digits (IPv6) and a hex port, as the kernel's
    ``tcp4_seq_show`` / ``tcp6_seq_show`` print them: each 32-bit word of the address in
    the machine's byte order with ``%08X``.  Little-endian machines (x86, arm64) are
    assumed: the bytes of each word are reversed."""
    address, sep, port = text.partition(":")
    if not sep or len(address) not in (8, 32) or len(port) != 4:
        raise ValueError(f"not a /proc/net/tcp address: {text!r}")
    raw = bytes.fromhex(address)
    data = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    ip = ipaddress.ip_address(data)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (None if ip.is_unspecified else str(ip)), int(port, 16)
