"""The gateway-alone driver: outcomes by hand from the kinds' limits and the SYN schedule."""

from __future__ import annotations

import math

from sim.nat.base import RST
from sim.nat.drive import drive, gateway
from sim.syn import syn_schedule


def test_static_ports_never_closing() -> None:
    # 100 connections from one VM with 64 static ports to one destination, never closing:
    # 64 established at once, 36 retransmit until ETIMEDOUT
    r = drive(gateway("gcp-cloudnat"), vms=1, burst=100, lifetime=math.inf)
    assert (r["established"], r["timed_out"], r["first_try_dropped"]) == (64, 36, 36)
    assert r["gateway"]["cloud_monitoring"]["dropped_sent_packets_count"]["OUT_OF_RESOURCES"] == (
        36 * len(syn_schedule(6, 4))  # the SYN and each of its 10 retransmissions
    )


def test_retransmission_finds_the_port_freed() -> None:
    # one port (limit 1), no hold: the first flow lives 2.5 s; the second SYN is dropped
    # at ~0 and retransmitted at 1, 2, 3 s (Linux 6.5+): it gets through at 3 s
    gw = gateway("aws-natgw", per_destination_limit=1, post_close_hold=0.0)
    r = drive(gw, vms=1, burst=2, burst_spread=1e-6, lifetime=2.5, close=RST)
    assert r["established"] == 2
    assert r["connect_latency_s"]["max"] == 3.0
    # before 6.5 (1, 3, 7 ...): at 3 s as well; with a 3.5 s lifetime, 7 s
    gw = gateway("aws-natgw", per_destination_limit=1, post_close_hold=0.0)
    r = drive(gw, vms=1, burst=2, burst_spread=1e-6, lifetime=3.5, schedule=syn_schedule(6, 0))
    assert r["connect_latency_s"]["max"] == 7.0


def test_two_destinations_double_the_fleet() -> None:
    # 10 VMs x 200 never-closing connections over 2 destinations chosen uniformly (about
    # 100 each, 64 at least with overwhelming probability: 5 standard deviations), 64 ports
    # per VM: 64 per VM and destination, 10 x 2 x 64 = 1,280 in all
    r = drive(gateway("gcp-cloudnat"), vms=10, burst=200, destinations=2, lifetime=math.inf)
    assert r["established"] == 10 * 2 * 64
    assert r["timed_out"] == 2000 - 1280
