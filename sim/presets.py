"""Operating-system presets: range, TIME_WAIT, policy and uniqueness scope, with sources.

A preset fills in what a scenario's host leaves out; every field can be overridden in the
scenario (``port_range``, ``time_wait``, ``time_wait_local``, ``time_wait_loopback``,
``policy``, ``scope``, ...).  Linux presets name a kernel version, which selects the
behaviour generation (``sim.ports.linux.kernel_profile``); an explicit ``kernel`` wins.

``source`` names the primary sources (kernel files and functions, vendor documents);
``inferred`` lists what no source settles, each with the host key that overrides it
(``portsim presets`` prints both; docs/presets/README.md lists them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# OpenBSD never auto-assigns these: openbsd/src sys/netinet/in_pcb.h DEFBADDYNAMICPORTS_TCP
# and _UDP, checked by in_baddynamic() from in_pcbpickport().  For UDP in_baddynamic() also
# refuses udpencap_port (sys/netinet/ipsec_output.c: 4500, sysctl net.inet.esp.udpencap_port)
# under "#ifdef IPSEC", which the GENERIC kernel is built with.
OPENBSD_UDPENCAP_PORT = 4500
OPENBSD_BAD_TCP = (587, 749, 750, 751, 853, 871, 2049, *range(6000, 6011))
OPENBSD_BAD_UDP = (623, 664, 749, 750, 751, 2049, 3784, 3785, OPENBSD_UDPENCAP_PORT, 7784)


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
    forced_reuse: bool = False  # Windows: reuse a TIME_WAIT port when exhausted
    nolocaltimewait: bool = False  # FreeBSD: no TIME_WAIT when the peer is a local address
    udp_scope: str = "port"  # connected UDP: "4tuple" (FreeBSD 13+) or one port per socket
    skip_tcp: tuple[int, ...] = ()
    skip_udp: tuple[int, ...] = ()
    inferred: tuple[str, ...] = field(default=())  # "what (host key)" for each guess

    @property
    def family(self) -> str:
        return "linux" if self.policy == "linux" else self.name.split("-")[0]


_LINUX = (
    "torvalds/linux net/ipv4/inet_hashtables.c __inet_hash_connect, inet_connection_sock.c, "
    "udp.c udp_lib_get_port, tcp_ipv4.c tcp_twsk_unique; generations by commit and first "
    "tag (docs/linux-model.md)"
)
_LINUX_INFERRED = (
    "the release of the time_after32 check in tcp_twsk_unique, ~4.18 (tcp_tw_reuse_rule)",
    "the release that made tcp_tw_reuse = 2 the default, 4.18 (tcp_tw_reuse)",
    'the release of tcp_tw_reuse_delay, 6.14 (tcp_tw_reuse_rule = "ms")',
)


def _linux(name: str, kernel: str, description: str) -> Preset:
    return Preset(
        name,
        description,
        None,
        60.0,
        "linux",
        "4tuple",
        _LINUX,
        kernel=kernel,
        inferred=_LINUX_INFERRED,
    )


def _rfc(alg: int, what: str) -> Preset:
    return Preset(
        f"rfc6056-alg{alg}",
        f"RFC 6056 algorithm {alg} ({what}) on the RFC's range",
        (1024, 65535),
        60.0,
        f"rfc6056-{alg}",
        "4tuple",
        "RFC 6056 §2.1, §3.3.1-§3.3.5 (rfc-editor.org/rfc/rfc6056); NetBSD sys/netinet/portalgo.c",
        inferred=("TIME_WAIT: not RFC 6056's subject, 60 s = 2 x 30 s MSL (time_wait)",),
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
        _linux("linux-4.2", "4.2", "Linux 4.2-4.5"),
        _linux("linux-4.1", "4.1", "Linux up to 4.1"),
        Preset(
            "freebsd",
            "FreeBSD 14/15: random start each call, 4-tuple uniqueness for connect(), UDP too",
            (10000, 65535),
            60.0,
            "bsd-random",
            "4tuple",
            "freebsd-src sys/netinet/in_pcb.c in_pcb_lport_dest, udp_usrreq.c udp_connect, "
            "tcp_timewait.c tcp_twstart, tcp_timer.h TCPTV_MSL; 14.0 release notes "
            "(nolocaltimewait, 92b3e07229ba)",
            nolocaltimewait=True,  # default 1 since 14.0 (92b3e07229ba)
            udp_scope="4tuple",  # udp_connect -> in_pcbconnect -> in_pcb_lport_dest(faddr)
            inferred=(
                "the release that removed the randomcps throttle, after 12 and by 14 "
                '(policy = "freebsd-throttle")',
            ),
        ),
        Preset(
            "freebsd-12",
            "FreeBSD up to 12: random start, sequential above 10 allocations/s for 45 s",
            (10000, 65535),
            60.0,
            "freebsd-throttle",
            "local_address",
            "freebsd-src 12-era sys/netinet/in_pcb.c (ipport_tick, in_pcbbind_setup), "
            "ip_input.c; FreeBSD 4.11 and 5.3 release notes (randomcps, randomtime)",
            inferred=("the throttle's callouts on whole seconds (randomcps, randomtime)",),
        ),
        Preset(
            "openbsd",
            "OpenBSD: random start each call, bad-dynamic ports skipped",
            (1024, 49151),
            60.0,
            "bsd-random",
            "local_address",
            "openbsd/src sys/netinet/in_pcb.c in_pcbpickport, in_baddynamic; in_pcb.h "
            "DEFBADDYNAMICPORTS_*; in.h IPPORT_USERRESERVED; ipsec_output.c udpencap_port",
            skip_tcp=OPENBSD_BAD_TCP,
            skip_udp=OPENBSD_BAD_UDP,
            inferred=("TIME_WAIT 60 s = 2 x TCPTV_MSL (30 s), not re-read in source (time_wait)",),
        ),
        Preset(
            "netbsd",
            'NetBSD: "bsd" algorithm, sequential counting down; TIME_WAIT by locality',
            (49152, 65535),
            60.0,
            "sequential-down",
            "local_address",
            "NetBSD/src sys/netinet/portalgo.c algo_bsd, tcp_subr.c (tcp_msl_local, "
            "tcp_msl_loop, tcp_msl_remote), in.h IPPORT_ANONMIN/ANONMAX",
            time_wait_local_s=10.0,
            time_wait_loopback_s=2.0,
            inferred=('"local" peers: the host\'s own subnet (local_network)',),
        ),
        Preset(
            "macos",
            "macOS/XNU: TCP sequential, UDP random; TIME_WAIT 30 s",
            (49152, 65535),
            30.0,
            "sequential",
            "port",
            "apple-oss-distributions/xnu bsd/netinet/in_pcb.c in_pcbbind, in_pcbconnect; "
            "tcp_timer.h TCPTV_MSL; tcp_subr.c, udp_usrreq.c (randomize_ports)",
            udp_policy="bsd-random",
            # in_pcbbind: ++ipi_lastport, set to first when out of range; ipi_lastport is 0
            # at boot, so the first port handed out is first itself (49152)
            first_offset=0,
        ),
        Preset(
            "windows",
            "Windows Vista and later: one TCP port space for every destination",
            (49152, 65535),
            120.0,
            "sequential",
            "port",
            "Microsoft KB929851 (dynamic port range), KB314053 (TcpTimedWaitDelay), "
            '"Troubleshoot TCP/IP port exhaustion" (events 4227, 4231), RFC 9414 §4',
            forced_reuse=True,
            inferred=(
                "the Vista+ TcpTimedWaitDelay default, 120 s or 240 s (time_wait)",
                'the port order, a sequential global cursor (policy = "sequential")',
                "the first port after boot, 49153 (cursor + 1) (first_port)",
                "forced reuse of TIME_WAIT ports when exhausted, from event 4227 (forced_reuse)",
            ),
        ),
        Preset(
            "windows-xp",
            "Windows 2000/XP/2003: 1025-5000, one counter for TCP and UDP",
            (1025, 5000),
            120.0,
            "sequential",
            "port",
            'Microsoft KB314053 (MaxUserPort, TcpTimedWaitDelay); HSC "Windows network '
            'services internals" (ephemeral port allocation)',
            shared_counter=True,
            first_offset=0,  # HSC: "after TCP gets 1025, the next UDP request gets 1026"
            inferred=(
                "TIME_WAIT 120 s (XP/2003 IPv4; Windows 2000: 240 s) (time_wait)",
                "one counter shared by TCP and UDP, from one HSC example (shared_counter)",
                "the first port 1025, from the same example (first_port)",
            ),
        ),
        Preset(
            "ns3",
            "ns-3: sequential from 49153, a port busy for every destination",
            (49152, 65535),
            240.0,
            "sequential",
            "port",
            "nsnam/ns-3-dev-git src/internet/model/ipv4-end-point-demux.cc "
            "AllocateEphemeralPort, tcp-socket-base.cc (MaxSegLifetime)",
        ),
        Preset(
            "omnetpp-inet",
            "OMNeT++ INET: sequential over 1024-4999 from 1025",
            (1024, 4999),
            240.0,
            "sequential",
            "port",
            "inet-framework/inet src/inet/transportlayer/tcp/Tcp.cc getEphemeralPort, "
            "Tcp.ned (msl), udp/Udp.cc",
        ),
        _rfc(1, "random start, linear probe"),
        _rfc(2, "a random draw per try"),
        _rfc(3, "keyed hash plus a global counter"),
        _rfc(4, "double hash, a table of counters"),
        _rfc(5, "random increments"),
    ]
}


DEFAULT_KERNEL = "6.18"  # the newest Linux the model follows (docs/sources.md)


def preset_kernel(preset: Preset) -> str:
    """The kernel a preset runs when the scenario names none."""
    return preset.kernel or DEFAULT_KERNEL


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown os preset {name!r}; one of: {', '.join(PRESETS)}") from None
