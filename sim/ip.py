"""Parsed IP addresses and networks, memoised.

A fleet builds its members as arrivals first reach them, and each member's host and
channels ask the same questions of the same strings (is the destination loopback, is it
in the local network): parsing them once keeps a member's construction cheap.  The parsed
objects are immutable, so sharing them is safe.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=1 << 16)
def ip(text: str) -> IPAddress:
    """``ipaddress.ip_address(text)``, parsed once."""
    return ipaddress.ip_address(text)


@lru_cache(maxsize=1 << 12)
def network(text: str) -> IPNetwork:
    """``ipaddress.ip_network(text, strict=False)``, parsed once."""
    return ipaddress.ip_network(text, strict=False)
