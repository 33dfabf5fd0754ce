"""AWS NAT Gateway (kind ``aws-natgw``).

Documented (AWS, Amazon VPC User Guide, "NAT gateway basics",
https://docs.aws.amazon.com/vpc/latest/userguide/nat-gateway-basics.html; "Troubleshoot NAT
gateways", https://docs.aws.amazon.com/vpc/latest/userguide/nat-gateway-troubleshooting.html;
"Create a NAT gateway", https://docs.aws.amazon.com/vpc/latest/userguide/nat-gateway-working-with.html):

* one primary and up to seven secondary addresses (8 in all);
* up to 55,000 simultaneous connections to each unique destination (destination address,
  destination port, protocol) per address; 8 addresses give 440,000; beyond that the
  CloudWatch metric ``ErrorPortAllocation`` counts the connections that got no source port;
* source ports 1024-65535;
* TCP idle timeout 350 s, not configurable: an idle flow is dropped, and a later packet
  from the inside is answered with an RST (``IdleTimeoutCount`` counts such flows);
* "approximately 900 connections per second to a single destination (about 55,000
  connections per minute)" also hits the limit.

Not documented, so parameters marked inferred: how long a port stays held after the flow
closes (``post_close_hold``, 60 s: 55,000 / 900 per second = 61 s), which address a new
flow takes (``address_choice``: the least used towards that destination, or random), the
port choice (a random start and the next free port), and UDP's idle timeout (350 s assumed).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from sim.nat.base import FIN, IDLE, RST, UDP, Mapping
from sim.nat.slots import SlotGateway, Table, flag, integer, number, random_free
from sim.nat_kinds import default_of

if TYPE_CHECKING:
    from sim.nat.base import GatewayConfig
    from sim.randomness import Stream

ERROR_PORT_ALLOCATION = "ErrorPortAllocation"
MAX_ADDRESSES = 8  # a primary and up to 7 secondary


class AwsNatGateway(SlotGateway):
    """A shared pool per address; at most ``per_destination_limit`` tuples held per
    (address, destination address, destination port, protocol)."""

    kind: ClassVar[str] = "aws-natgw"
    drop_reasons: ClassVar[tuple[str, ...]] = (ERROR_PORT_ALLOCATION,)
    idle_signal = "ECONNRESET"  # the gateway answers with an RST
    defaults: ClassVar[dict[str, Any]] = {
        # documented (nat-gateway-basics); the hold is inferred from ~900/s to one
        # destination; the idle timeout is fixed at AWS (a parameter for experiments)
        "per_destination_limit": default_of(kind, "per_destination_cap"),
        "post_close_hold": default_of(kind, "hold_fin"),
        "idle_timeout": default_of(kind, "idle_timeout"),
        "udp_idle_timeout": 350.0,  # inferred: undocumented for UDP
        "address_choice": "least-used",  # inferred: undocumented ("least-used" or "random")
        "enforce_address_limit": True,  # refuse more than 8 addresses
    }

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        opts = super().check_options(options)
        integer(opts, "per_destination_limit", 1, 64512)
        number(opts, "post_close_hold")
        number(opts, "idle_timeout", 1.0)
        number(opts, "udp_idle_timeout", 1.0)
        flag(opts, "enforce_address_limit")
        if opts["address_choice"] not in ("least-used", "random"):
            raise ValueError("address_choice: 'least-used' or 'random'")
        return opts

    @classmethod
    def check_setup(cls, addresses: tuple[str, ...], options: dict[str, Any], inside: int) -> None:
        opts = cls.check_options(options)
        if opts["enforce_address_limit"] and len(addresses) > MAX_ADDRESSES:
            raise ValueError(
                f"addresses: an AWS NAT gateway has at most {MAX_ADDRESSES} "
                f"(1 primary + 7 secondary), got {len(addresses)}"
            )

    def __init__(self, config: GatewayConfig, stream: Stream) -> None:
        super().__init__(config, stream)
        opts = self.options
        self.check_setup(self.addresses, opts, 0)
        self.limit = min(int(opts["per_destination_limit"]), self.ports())
        hold = float(opts["post_close_hold"])
        self.holds.update({FIN: hold, RST: hold, UDP: hold, IDLE: 0.0})
        self.idle_timeouts = {"tcp": float(opts["idle_timeout"]), "udp": opts["udp_idle_timeout"]}
        self.random_address = opts["address_choice"] == "random"
        self.tables: dict[tuple[str, str, int], list[Table]] = {}

    def translate(
        self,
        now: float,
        protocol: str,
        member: int,
        source: str,
        source_port: int,
        destination: str,
        destination_port: int,
    ) -> Mapping | str:
        if now >= self.due:
            self.settle(now)
        self.counters.attempted += 1
        dkey = (protocol, destination, destination_port)
        tables = self.tables.get(dkey)
        if tables is None:
            use = self.use(dkey, now)
            tables = self.tables[dkey] = [self.new_table(self.ports(), use) for _ in self.addresses]
        n = len(tables)
        limit = self.limit
        if self.random_address:
            first = self.stream.below(n) if n > 1 else 0
            order = [(first + i) % n for i in range(n)]
        else:  # least used towards this destination first (stable on ties)
            order = sorted(range(n), key=lambda i: tables[i].held) if n > 1 else [0]
        size = self.ports()
        for i in order:
            table = tables[i]
            if table.held >= limit:
                continue
            slot = random_free(table.cells, self.stream.below(size))
            if slot >= 0:
                return self._take(table, slot, self.addresses[i], self.lo + slot, protocol, now)
        return self._drop(ERROR_PORT_ALLOCATION)

    def capacity(self, key: tuple[str, str, int]) -> int:
        return self.limit * len(self.addresses)

    def summary(self, until: float) -> dict[str, Any]:
        out = super().summary(until)
        c = self.counters
        out["per_destination_limit"] = self.limit
        # as CloudWatch names them (AWS/NATGateway namespace); sums over the run
        out["cloudwatch"] = {
            "ConnectionAttemptCount": c.attempted,
            "ConnectionEstablishedCount": c.succeeded,
            "ErrorPortAllocation": c.dropped_by_reason[ERROR_PORT_ALLOCATION],
            "IdleTimeoutCount": self.idle_expired,
            # SYNs dropped for want of a port, and packets on flows the idle timeout removed
            "PacketsDropCount": c.dropped + self.idle_resets,
            "ActiveConnectionCount": self.live,
            "ActiveConnectionCount_peak": self.peak_live,
        }
        return out
