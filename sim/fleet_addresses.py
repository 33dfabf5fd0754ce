"""Where a fleet's members live: ``count`` consecutive host addresses of one network.

A ``[[hosts]]`` entry with ``count = N`` and ``address = "10.244.1.0/24"`` stands for N
identical hosts (pods on a node, VMs in a subnet).  Member m takes the (m+1)-th usable host
address of the network, counting from the first one, or from the address written when it
has host bits (``"10.244.1.2/24"`` starts at .2: the CNI host-local IPAM plugin hands out
pod addresses from ``rangeStart``, by default the .2 address, keeping .1 for the gateway;
containernetworking/plugins, plugins/ipam/host-local/README.md).

Usable host addresses (the same rule as Python's ``ipaddress`` ``hosts()``):

* IPv4, prefix /30 or shorter: not the network address (host part all zeros) nor the
  broadcast address (all ones), which RFC 1122 section 3.2.1.3 reserves;
* IPv4 /31: both addresses (RFC 3021, point-to-point links); /32: its one address;
* IPv6: every address but the first, the Subnet-Router anycast address (RFC 4291 section
  2.6.1); IPv6 has no broadcast address; /127 (RFC 6164) and /128: every address.

The usable addresses of a network are consecutive, so member m's address is the start plus
m: no list of N addresses is kept.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

MAX_FLEET = 16_384  # members: each member in use holds ~60 KB of occupancy maps (docs)

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class FleetAddresses:
    """The network and first member address of a fleet of ``count`` members."""

    network: IPNetwork
    first: IPAddress
    count: int

    def address(self, member: int) -> str:
        """Member ``member``'s address (0 is the first)."""
        if not 0 <= member < self.count:
            raise IndexError(f"member {member} of a fleet of {self.count}")
        return str(self.first + member)

    @property
    def last(self) -> str:
        return self.address(self.count - 1)


def usable_bounds(network: IPNetwork) -> tuple[IPAddress, IPAddress]:
    """The first and last usable host address of ``network`` (rules in the module doc)."""
    n = network.num_addresses
    if n <= 2:  # /31, /32, /127, /128: every address
        return network.network_address, network.network_address + (n - 1)
    first = network.network_address + 1
    last = network.broadcast_address - (1 if network.version == 4 else 0)
    return first, last


def fleet_addresses(text: str, count: int) -> FleetAddresses:
    """Parse a fleet's ``address`` (a network, or an address inside one with its prefix
    length) for ``count`` members; ValueError with a one-line message when it cannot hold
    them."""
    if "/" not in text:
        raise ValueError(f'with count, address is a network such as "10.244.1.0/24" (got {text!r})')
    try:
        interface = ipaddress.ip_interface(text.strip())
    except ValueError:
        raise ValueError(f'expected a network such as "10.244.1.0/24" (got {text!r})') from None
    network = interface.network
    lo, hi = usable_bounds(network)
    start = interface.ip
    if start == network.network_address and network.num_addresses > 2:
        start = lo  # the network written as such: its first usable address
    elif not int(lo) <= int(start) <= int(hi):
        raise ValueError(
            f"{start} is not a usable host address of {network} (usable: {lo} to {hi})"
        )
    room = int(hi) - int(start) + 1
    if count > room:
        raise ValueError(
            f"{network} has {room:,} usable host address{'es' if room != 1 else ''} from "
            f"{start} (to {hi}), fewer than count = {count:,}"
        )
    return FleetAddresses(network, start, count)


def canonical(text: str) -> str:
    """The address as the resolved scenario shows it: the network, or the start address
    with the prefix length when the members do not start at the first usable one."""
    interface = ipaddress.ip_interface(text.strip())
    network = interface.network
    if interface.ip == network.network_address:
        return str(network)
    return f"{interface.ip}/{network.prefixlen}"
