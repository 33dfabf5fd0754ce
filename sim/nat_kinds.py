"""The gateway kinds' documented limits and defaults, one table, for the sizing calculator.

Each value says whether a primary source states it ("documented") or we derived it
("inferred"), and which source; every inferred value is a parameter the user can change.
The simulated gateway layer (``sim/nat/``) takes every default the two share from here
(:func:`default_of`, and Azure Load Balancer's pool-size table), under its own scenario
keys (``post_close_hold`` is ``hold_fin`` here); tests/test_gateway_defaults_agree.py
checks that what each simulated kind reports is this table's figure.  Nothing here
imports the simulation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

Status = Literal["documented", "inferred", "setting"]  # setting: yours to choose
Unit = Literal["s", "ports", "count", "bool", "range"]

# Primary sources, cited by key from the table below (docs/gateways.md lists them too).
SOURCES: dict[str, str] = {
    "nf_nat_core": "Linux v6.18 net/netfilter/nf_nat_core.c: get_unique_tuple, "
    "nf_nat_l4proto_unique_tuple, find_best_ips_proto",
    "nf_conntrack_tcp": "Linux v6.18 net/netfilter/nf_conntrack_proto_tcp.c: tcp_timeouts; "
    "Documentation/networking/nf_conntrack-sysctl.rst",
    "kube_proxy": "kubernetes/kubernetes pkg/proxy/apis/config/v1alpha1/defaults.go "
    "(conntrack tcp-timeout-established 24h, tcp-timeout-close-wait 1h)",
    "aws_basics": "AWS, Amazon VPC User Guide, 'NAT gateway basics', "
    "https://docs.aws.amazon.com/vpc/latest/userguide/nat-gateway-basics.html",
    "aws_create": "AWS, Amazon VPC User Guide, 'Create a NAT gateway' (a primary and up to 7 "
    "secondary IPv4 addresses), https://docs.aws.amazon.com/vpc/latest/userguide/"
    "nat-gateway-working-with.html",
    "aws_troubleshooting": "AWS, Amazon VPC User Guide, 'Troubleshoot NAT gateways', "
    "https://docs.aws.amazon.com/vpc/latest/userguide/nat-gateway-troubleshooting.html",
    "azure_lb_outbound": "Microsoft, 'Source Network Address Translation (SNAT) for outbound "
    "connections', https://learn.microsoft.com/azure/load-balancer/load-balancer-outbound-connections",
    "azure_lb_rules": "Microsoft, 'Outbound rules Azure Load Balancer', "
    "https://learn.microsoft.com/azure/load-balancer/outbound-rules",
    "azure_natgw_resource": "Microsoft, 'Azure NAT Gateway resource', "
    "https://learn.microsoft.com/azure/nat-gateway/nat-gateway-resource",
    "azure_natgw_snat": "Microsoft, 'Source Network Address Translation (SNAT) with Azure NAT "
    "Gateway', https://learn.microsoft.com/azure/nat-gateway/nat-gateway-snat",
    "gcp_ports": "Google Cloud, Cloud NAT 'Ports and addresses', "
    "https://cloud.google.com/nat/docs/ports-and-addresses",
    "gcp_tune": "Google Cloud, Cloud NAT 'Tune NAT configuration', "
    "https://cloud.google.com/nat/docs/tune-nat-configuration",
    "rfc6888": "RFC 6888, 'Common Requirements for Carrier-Grade NATs (CGNs)', section 3 "
    "(REQ-4, REQ-8), https://www.rfc-editor.org/rfc/rfc6888",
    "rfc4787": "RFC 4787, 'NAT Behavioral Requirements for Unicast UDP', section 4.1 (REQ-1, "
    "endpoint-independent mapping), https://www.rfc-editor.org/rfc/rfc4787",
    "rfc5382": "RFC 5382, 'NAT Behavioral Requirements for TCP', section 5 (REQ-5: established "
    "idle >= 2 h 4 min), https://www.rfc-editor.org/rfc/rfc5382",
    "rfc7422": "RFC 7422, 'Deterministic Address Mapping to Reduce Logging in Carrier-Grade NAT "
    "Deployments', https://www.rfc-editor.org/rfc/rfc7422",
    "juniper_pba": "Juniper, 'secured-port-block-allocation' (block-size default 128, "
    "max-blocks-per-address default 8), https://juniper.net/documentation/en_US/junos13.2/topics/"
    "reference/configuration-statement/secured-port-block-allocation-edit-services.html",
    "vpp_det44": "FD.io VPP src/plugins/nat/det44/det44.h (ports_per_host = (65535 - 1023) / "
    "sharing_ratio, DET44_SES_PER_USER 1000) and det44.c det44_reset_timeouts (tcp transitory "
    "240 s, established 7440 s)",
    "aws_900": "inferred: AWS's '~900 connections per second to a single destination' with "
    "55,000 per destination implies a hold of about 55,000 / 900 = 61 s after close",
    "linux_range": "Linux v6.18 net/ipv4/af_inet.c inet_init_net (ip_local_port_range "
    "32768-60999); Documentation/networking/ip-sysctl.rst",
    "linux_time_wait": "Linux v6.18 include/net/tcp.h TCP_TIMEWAIT_LEN (60 s)",
    "inferred": "inferred: no source states it",
    "setting": "your configuration",
}


@dataclass(frozen=True)
class Default:
    """One kind parameter's default, with its standing."""

    value: float | int | bool | tuple[int, int] | None
    unit: Unit
    status: Status
    source: str  # a key of SOURCES
    meaning: str


@dataclass(frozen=True)
class KindProfile:
    name: str
    title: str
    key: str  # what must be unique, in words
    unit: Literal[
        "shared pool per address", "slice per VM", "blocks per subscriber", "range per subscriber"
    ]
    endpoint_independent: bool  # one public port per inside endpoint for every destination
    failure: str  # what the client and the metrics see
    params: Mapping[str, Default] = field(default_factory=dict)


def _d(value: object, unit: Unit, status: Status, source: str, meaning: str) -> Default:
    return Default(value, unit, status, source, meaning)  # type: ignore[arg-type]


ADDRESSES = _d(1, "count", "setting", "setting", "translated (public) source addresses")

_LINUX: dict[str, Default] = {
    "addresses": ADDRESSES,
    "port_range": _d(
        (1024, 65535),
        "range",
        "documented",
        "nf_nat_core",
        "SNAT port range (--to-ports); without it sources >= 1024 map into 1024-65535",
    ),
    "hold_fin": _d(
        120.0, "s", "documented", "nf_conntrack_tcp", "conntrack TIME_WAIT after a FIN close"
    ),
    "hold_rst": _d(10.0, "s", "documented", "nf_conntrack_tcp", "conntrack CLOSE after an RST"),
    "idle_timeout": _d(
        432000.0, "s", "documented", "nf_conntrack_tcp", "conntrack TCP ESTABLISHED timeout"
    ),
}

_K8S = {
    **_LINUX,
    "idle_timeout": _d(
        86400.0, "s", "documented", "kube_proxy", "kube-proxy's conntrack TCP ESTABLISHED timeout"
    ),
}

AZURE_LB_POOL_TABLE: tuple[tuple[int, int], ...] = (
    (50, 1024),
    (100, 512),
    (200, 256),
    (400, 128),
    (800, 64),
    (1000, 32),
)
"""(largest backend pool size, SNAT ports preallocated per VM) from Microsoft's table."""

# Each VM behind the gateway is itself a host (Linux by default): connect() needs a local
# port per connection to one destination, held for the connection and, when the VM closes
# first, its TIME_WAIT: a limit of the VM's own, whatever the gateway.
_VM: dict[str, Default] = {
    "vm_port_range": _d(
        (32768, 60999),
        "range",
        "documented",
        "linux_range",
        "each VM's own ephemeral range (net.ipv4.ip_local_port_range)",
    ),
    "vm_time_wait": _d(
        60.0,
        "s",
        "documented",
        "linux_time_wait",
        "how long a VM keeps a port after closing first (its TIME_WAIT; 0 when the server "
        "closes first)",
    ),
}

KINDS: dict[str, KindProfile] = {
    "linux-masquerade": KindProfile(
        "linux-masquerade",
        "Linux netfilter MASQUERADE / SNAT",
        "(proto, address, port, destination address, destination port)",
        "shared pool per address",
        False,
        "SYN dropped (conntrack -S drop / insert_failed); the client retries after 1, 3, 7 s",
        _LINUX,
    ),
    "k8s-node": KindProfile(
        "k8s-node",
        "Kubernetes node SNAT (netfilter MASQUERADE with kube-proxy's conntrack settings)",
        "(proto, node address, port, destination address, destination port)",
        "shared pool per address",
        False,
        "SYN dropped (conntrack -S drop / insert_failed); the pod retries after 1, 3, 7 s",
        _K8S,
    ),
    "aws-natgw": KindProfile(
        "aws-natgw",
        "AWS NAT Gateway",
        "(address, destination address, destination port, protocol)",
        "shared pool per address",
        False,
        "ErrorPortAllocation rises, the SYN is dropped; PacketsDropCount",
        {
            "addresses": ADDRESSES,
            "max_addresses": _d(8, "count", "documented", "aws_create", "1 primary + 7 secondary"),
            "ports_per_address": _d(
                64512, "ports", "documented", "aws_basics", "source ports 1024-65535"
            ),
            "per_destination_cap": _d(
                55000,
                "count",
                "documented",
                "aws_basics",
                "concurrent connections per (address, destination address, port, protocol)",
            ),
            "hold_fin": _d(60.0, "s", "inferred", "aws_900", "a port's hold after close"),
            "hold_rst": _d(60.0, "s", "inferred", "aws_900", "a port's hold after an RST"),
            "idle_timeout": _d(
                350.0, "s", "documented", "aws_troubleshooting", "TCP idle timeout, fixed"
            ),
        },
    ),
    "azure-lb": KindProfile(
        "azure-lb",
        "Azure Load Balancer outbound SNAT (default outbound access, outbound rules)",
        "TCP: (VM, SNAT port, destination address, destination port)",
        "slice per VM",
        False,
        "connection fails; 'SNAT Connection Count' (failed), Used/Allocated SNAT Ports",
        {
            "addresses": ADDRESSES,
            "ports_per_address": _d(
                64000, "ports", "documented", "azure_lb_outbound", "SNAT ports per frontend address"
            ),
            "rules": _d(
                0,
                "count",
                "setting",
                "azure_lb_outbound",
                "load-balancing and inbound NAT rules, 8 ports each",
            ),
            "ports_per_vm": _d(
                None,
                "ports",
                "documented",
                "azure_lb_outbound",
                "preallocated per VM: by backend pool size (1,024 at <= 50 to 32 at <= 1,000), "
                "or allocatedOutboundPorts (multiple of 8) in an outbound rule",
            ),
            "hold_fin": _d(
                240.0, "s", "documented", "azure_lb_outbound", "port freed 240 s after FIN/ACK"
            ),
            "hold_rst": _d(
                15.0, "s", "documented", "azure_lb_outbound", "port freed 15 s after RST"
            ),
            "idle_timeout": _d(
                240.0, "s", "documented", "azure_lb_rules", "idle timeout, 4-120 min"
            ),
        },
    ),
    "azure-natgw": KindProfile(
        "azure-natgw",
        "Azure NAT Gateway",
        "(address, port, destination address, destination port, protocol)",
        "shared pool per address",
        False,
        "'SNAT Connection Count' (failed), dropped packets",
        {
            "addresses": ADDRESSES,
            "max_addresses": _d(
                16, "count", "documented", "azure_natgw_resource", "public addresses"
            ),
            "ports_per_address": _d(
                64512, "ports", "documented", "azure_natgw_snat", "SNAT ports per address"
            ),
            "per_destination_cap": _d(
                50000,
                "count",
                "documented",
                "azure_natgw_resource",
                "concurrent connections per address to one destination endpoint",
            ),
            "total_connection_cap": _d(
                2000000, "count", "documented", "azure_natgw_resource", "connections per gateway"
            ),
            "hold_fin": _d(
                65.0, "s", "documented", "azure_natgw_snat", "port reuse cooldown after FIN"
            ),
            "hold_rst": _d(
                16.0, "s", "documented", "azure_natgw_snat", "port reuse cooldown after RST"
            ),
            "idle_timeout": _d(
                240.0, "s", "documented", "azure_natgw_resource", "TCP idle, 4-120 min"
            ),
        },
    ),
    "gcp-cloudnat": KindProfile(
        "gcp-cloudnat",
        "Google Cloud NAT",
        "(VM's NAT address, NAT port, destination address, destination port, protocol)",
        "slice per VM",
        False,
        "packet dropped, dropped_sent_packets_count reason OUT_OF_RESOURCES",
        {
            "addresses": ADDRESSES,
            "ports_per_address": _d(
                64512, "ports", "documented", "gcp_ports", "NAT ports per address (1024-65535)"
            ),
            "ports_per_vm": _d(
                64,
                "ports",
                "documented",
                "gcp_ports",
                "minPortsPerVm (static allocation; GKE nodes get at least 1,024)",
            ),
            "dynamic": _d(False, "bool", "documented", "gcp_ports", "dynamic port allocation"),
            "dynamic_min_ports_per_vm": _d(
                32,
                "ports",
                "documented",
                "gcp_ports",
                "minPortsPerVm under dynamic allocation (power of 2)",
            ),
            "max_ports_per_vm": _d(
                65536,
                "ports",
                "documented",
                "gcp_ports",
                "maxPortsPerVm under dynamic allocation (power of 2)",
            ),
            "eim": _d(
                False,
                "bool",
                "documented",
                "gcp_ports",
                "endpoint-independent mapping (API default off)",
            ),
            "hold_fin": _d(120.0, "s", "documented", "gcp_tune", "tcpTimeWaitTimeoutSec"),
            "hold_rst": _d(
                30.0,
                "s",
                "inferred",
                "inferred",
                "hold after an RST: unstated; the transitory idle timeout (30 s) assumed",
            ),
            "idle_timeout": _d(
                1200.0, "s", "documented", "gcp_tune", "tcpEstablishedIdleTimeoutSec"
            ),
        },
    ),
    "cgn-pba": KindProfile(
        "cgn-pba",
        "Carrier-grade NAT with port block allocation",
        "endpoint-independent: (subscriber address, subscriber port) -> one public (address, port)",
        "blocks per subscriber",
        True,
        "mapping refused: packet dropped, ICMP type 3 code 13 recommended",
        {
            "addresses": ADDRESSES,
            "ports_per_address": _d(
                64512, "ports", "documented", "juniper_pba", "ports 1024-65535 (0-1023 unused)"
            ),
            "block_size": _d(128, "ports", "documented", "juniper_pba", "ports per block"),
            "blocks_per_subscriber": _d(
                8, "count", "documented", "juniper_pba", "max blocks per subscriber"
            ),
            "hold_fin": _d(
                120.0, "s", "documented", "rfc6888", "REQ-8: a freed port not reused for 120 s"
            ),
            "hold_rst": _d(
                120.0, "s", "documented", "rfc6888", "REQ-8: a freed port not reused for 120 s"
            ),
            "idle_timeout": _d(
                7440.0, "s", "documented", "rfc5382", "TCP established idle >= 2 h 4 min"
            ),
        },
    ),
    "cgn-deterministic": KindProfile(
        "cgn-deterministic",
        "Carrier-grade NAT, deterministic (RFC 7422; VPP det44)",
        "(subscriber, public port, destination address, destination port) inside the "
        "subscriber's fixed range",
        "range per subscriber",
        False,
        "session refused: ICMP destination unreachable (VPP det44 'Out of ports')",
        {
            "addresses": ADDRESSES,
            "ports_per_address": _d(
                64512, "ports", "documented", "vpp_det44", "(65535 - 1023) split evenly"
            ),
            "sharing_ratio": _d(
                64,
                "count",
                "inferred",
                "inferred",
                "subscribers per public address (set by the prefixes; CSIT benchmarks 1:1,024)",
            ),
            "sessions_per_subscriber": _d(
                1000,
                "count",
                "documented",
                "vpp_det44",
                "session slots per subscriber (DET44_SES_PER_USER)",
            ),
            "hold_fin": _d(240.0, "s", "documented", "vpp_det44", "det44 TCP transitory timeout"),
            "hold_rst": _d(240.0, "s", "documented", "vpp_det44", "det44 TCP transitory timeout"),
            "idle_timeout": _d(
                7440.0, "s", "documented", "vpp_det44", "det44 TCP established timeout"
            ),
        },
    ),
}

KINDS = {name: replace(kind, params={**kind.params, **_VM}) for name, kind in KINDS.items()}


def default_of(kind: str, param: str) -> Any:
    """The table's default for a kind's parameter: what the simulated kinds (``sim/nat/``)
    take as their own defaults, so that each figure is written once."""
    return KINDS[kind].params[param].value
