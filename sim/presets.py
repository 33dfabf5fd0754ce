"""Operating-system presets: range, TIME_WAIT, policy and uniqueness scope, with sources.

A preset fills in what a scenario's host leaves out; every field can be overridden in the
scenario (``port_range``, ``time_wait``, ``time_wait_local``, ``time_wait_loopback``,
``policy``, ``scope``, ...).  Linux presets name a kernel version, which selects the
behaviour generation (``sim.ports.linux.kernel_profile``); an explicit ``kernel`` wins.
Sections (§) refer to ../shared/reference/other-systems.md and linux.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# other-systems.md §5: OpenBSD never auto-assigns these ("bad dynamic" ports)
OPENBSD_BAD_TCP = (587, 749, 750, 751, 853, 871, 2049, *range(6000, 6011))
OPENBSD_BAD_UDP = (623, 664, 749, 750, 751, 2049, 3784, 3785, 7784)


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    port_range: tuple[int, int] | None  # None: from the Linux kernel version
    time_wait_s: float
    policy: str  # TCP connect()/bind(0) generator (sim.ports.policy.POLICIES)
    scope: str  # "4tuple" | "local_address" | "port": what makes a port busy for connect()
    source: str
    udp_policy: str | None = None  # None: as the TCP policy
    time_wait_local_s: float | None = None  # peers on the host's own subnet; None: time_wait
    time_wait_loopback_s: float | None = None  # loopback peers; None: time_wait_local
    kernel: str | None = None
    shared_counter: bool = False  # one cursor for TCP and UDP (Windows up to 2003)
    first_offset: int = 1  # sequential: offset of the first port handed out (BSD: lo + 1)
    forced_reuse: bool = False  # Windows: share a port across destinations when exhausted
    skip_tcp: tuple[int, ...] = ()
    skip_udp: tuple[int, ...] = ()
    uncertain: tuple[str, ...] = field(default=())

    @property
    def family(self) -> str:
        return "linux" if self.policy == "linux" else self.name.split("-")[0]


_LINUX = "linux.md §1-§3, §7 (inet_hashtables.c, inet_connection_sock.c, tcp.h)"


def _linux(name: str, kernel: str, description: str) -> Preset:
    return Preset(name, description, None, 60.0, "linux", "4tuple", _LINUX, kernel=kernel)


def _rfc(alg: int, what: str) -> Preset:
    return Preset(
        f"rfc6056-alg{alg}",
        f"RFC 6056 algorithm {alg} ({what}) on the RFC's range",
        (1024, 65535),
        60.0,
        f"rfc6056-{alg}",
        "4tuple",
        "other-systems.md §2.2, §2.4 (RFC 6056 §2.1, §3.3)",
        uncertain=("TIME_WAIT is not RFC 6056's subject: 60 s (2 x 30 s MSL) is chosen",),
    )


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        _linux("linux", "6.18", "current Linux (6.18)"),
        _linux("linux-6.18", "6.18", "Linux 6.18"),
        _linux("linux-6.8", "6.8", "Linux 6.8-6.13"),
        _linux("linux-5.18", "5.18", "Linux 5.18-6.7"),
        _linux("linux-5.12", "5.12", "Linux 5.12-5.17"),
        _linux("linux-4.6", "4.6", "Linux 4.6-5.11"),
        _linux("linux-4.5", "4.5", "Linux 4.5"),
        _linux("linux-4.4", "4.4", "Linux up to 4.4"),
        Preset(
            "freebsd",
            "FreeBSD 14/15: random start each call, 4-tuple uniqueness for connect()",
            (10000, 65535),
            60.0,
            "bsd-random",
            "4tuple",
            "other-systems.md §4.1-§4.2 (in_pcb.c in_pcb_lport_dest, tcp_timer.h)",
            time_wait_loopback_s=0.0,  # nolocaltimewait = 1 since 14.0
            uncertain=("msl_local (~20 ms loopback TIME_WAIT in newer trees) not modelled",),
        ),
        Preset(
            "freebsd-12",
            "FreeBSD up to 12: random start, sequential above 10 allocations/s for 45 s",
            (10000, 65535),
            60.0,
            "freebsd-throttle",
            "local_address",
            "other-systems.md §4.3 (12-era in_pcb.c, ip_input.c; 4.11/5.3 release notes)",
            uncertain=("the maxtcptw cap on compressed TIME_WAIT entries is not modelled",),
        ),
        Preset(
            "openbsd",
            "OpenBSD: random start each call, bad-dynamic ports skipped",
            (1024, 49151),
            60.0,
            "bsd-random",
            "local_address",
            "other-systems.md §5 (in_pcb.c in_pcbpickport, in_pcb.h)",
            skip_tcp=OPENBSD_BAD_TCP,
            skip_udp=OPENBSD_BAD_UDP,
            uncertain=("TIME_WAIT 60 s (TCPTV_MSL 30 s) is from memory, high confidence",),
        ),
        Preset(
            "netbsd",
            'NetBSD: "bsd" algorithm, sequential counting down; TIME_WAIT by locality',
            (49152, 65535),
            60.0,
            "sequential-down",
            "local_address",
            "other-systems.md §6 (portalgo.c, tcp_subr.c MSL classes)",
            time_wait_local_s=10.0,
            time_wait_loopback_s=2.0,
            uncertain=('"local" means the host\'s own subnet here (in_localaddr)',),
        ),
        Preset(
            "macos",
            "macOS/XNU: TCP sequential, UDP random; TIME_WAIT 30 s",
            (49152, 65535),
            30.0,
            "sequential",
            "port",
            "other-systems.md §7 (xnu in_pcb.c, tcp_timer.h, udp_usrreq.c)",
            udp_policy="bsd-random",
            uncertain=("restricted ports and the 4096-port UDP reserve are not modelled",),
        ),
        Preset(
            "windows",
            "Windows Vista and later: one TCP port space for every destination",
            (49152, 65535),
            120.0,
            "sequential",
            "port",
            "other-systems.md §8 (KB929851, KB314053, events 4227/4231, RFC 9414)",
            forced_reuse=True,
            uncertain=(
                "TcpTimedWaitDelay default: 120 s (most cited for Vista+) or 240 s; a parameter",
                "the port order (a sequential global cursor) is inferred, not documented",
                "forced reuse across destinations when exhausted is inferred from event 4227",
            ),
        ),
        Preset(
            "windows-xp",
            "Windows 2000/XP/2003: 1025-5000, one counter for TCP and UDP",
            (1025, 5000),
            120.0,
            "sequential",
            "port",
            "other-systems.md §8.1 (MaxUserPort, KB314053, HSC ephemeral port notes)",
            shared_counter=True,
            first_offset=0,  # "after TCP gets 1025, the next UDP request gets 1026" (§8.1)
            uncertain=(
                "TIME_WAIT 120 s is XP/2003 IPv4; Windows 2000 used 240 s",
                "the first port 1025 comes from one example in the HSC notes",
            ),
        ),
        Preset(
            "ns3",
            "ns-3: sequential from 49153, a port busy for every destination",
            (49152, 65535),
            240.0,
            "sequential",
            "port",
            "other-systems.md §10.1 (ipv4-end-point-demux.cc, tcp-socket-base.cc)",
        ),
        Preset(
            "omnetpp-inet",
            "OMNeT++ INET: sequential over 1024-4999 from 1025",
            (1024, 4999),
            240.0,
            "sequential",
            "port",
            "other-systems.md §10.2 (Tcp.cc, Udp.cc)",
            uncertain=("INET aborts the simulation on exhaustion; portsim records failures",),
        ),
        _rfc(1, "random start, linear probe"),
        _rfc(2, "a random draw per try"),
        _rfc(3, "keyed hash plus a global counter"),
        _rfc(4, "double hash, a table of counters"),
        _rfc(5, "random increments"),
    ]
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown os preset {name!r}; one of: {', '.join(PRESETS)}") from None


def preset_table() -> list[dict[str, Any]]:
    """Every preset as ``portsim presets`` shows it, resolved: a Linux preset's range and
    behaviour generation come from its kernel version, TIME_WAIT towards local and
    loopback peers defaults to the plain one."""
    from sim.ports.linux import kernel_profile  # the kernel model, not needed to list names

    rows = []
    for p in PRESETS.values():
        generation = None
        if p.policy == "linux":
            profile = kernel_profile(p.kernel or "6.18")
            (lo, hi), generation = profile.default_range, profile.generation
        else:
            lo, hi = p.port_range or (0, 0)
        local = p.time_wait_s if p.time_wait_local_s is None else p.time_wait_local_s
        loopback = local if p.time_wait_loopback_s is None else p.time_wait_loopback_s
        rows.append(
            {
                "name": p.name,
                "description": p.description,
                "port_range": [lo, hi],
                "range_ports": hi - lo + 1,
                "time_wait_s": p.time_wait_s,
                "time_wait_local_s": local,
                "time_wait_loopback_s": loopback,
                "policy": p.policy,
                "generation": generation,
                "udp_policy": p.udp_policy,
                "scope": p.scope,
                "kernel": p.kernel,
                "forced_reuse": p.forced_reuse,
                "source": p.source,
                "uncertain": list(p.uncertain),
            }
        )
    return rows
