"""Gateway kinds by scenario name, and the factory the model builds gateways with."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sim.nat.aws import AwsNatGateway
from sim.nat.azure import AzureLoadBalancer, AzureNatGateway
from sim.nat.base import Gateway, GatewayConfig
from sim.nat.cgn import DeterministicNat, PortBlockNat
from sim.nat.gcp import CloudNat
from sim.nat.linux import K8sNode, LinuxMasquerade

if TYPE_CHECKING:
    from sim.randomness import Stream

KINDS: dict[str, type[Gateway]] = {
    cls.kind: cls
    for cls in (
        LinuxMasquerade,
        K8sNode,
        AwsNatGateway,
        AzureLoadBalancer,
        AzureNatGateway,
        CloudNat,
        PortBlockNat,
        DeterministicNat,
    )
}


def make_gateway(config: GatewayConfig, stream: Stream) -> Gateway:
    """The gateway of ``config.kind`` (the config layer has checked the name)."""
    return KINDS[config.kind](config, stream)
