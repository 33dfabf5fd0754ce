"""What the kernel sources say the NAT lab must show: constants and hand arithmetic.

Kept apart from the measurements (nat_measure.py) and from the model (sim/nat), so a test
compares three independent things.  Sources (Linux, torvalds/linux):

* net/netfilter/nf_conntrack_proto_tcp.c, ``tcp_timeouts[]``: ESTABLISHED 5 days,
  TIME_WAIT 2 min, CLOSE 10 s (Documentation/networking/nf_conntrack-sysctl.rst,
  ``nf_conntrack_tcp_timeout_*``; per network namespace, struct nf_tcp_net).
* net/netfilter/nf_conntrack_proto_udp.c, ``nf_conntrack_udp_packet``: an entry is
  refreshed to ``udp_timeouts[UDP_CT_UNREPLIED]`` (30 s) until a reply has been seen *and*
  a packet comes more than 2 s after the first (``stream_ts = 2 * HZ + jiffies``); then to
  UDP_CT_REPLIED (120 s) and ASSURED.
* net/netfilter/nf_nat_core.c, ``get_unique_tuple``: the source port is kept when it lies
  in the range and the translated tuple is unused (``nf_nat_used_tuple``), else
  ``nf_nat_l4proto_unique_tuple`` probes the range from a random offset.  Since Linux 6.5
  ("netfilter: nat: evict closing tcp entries on reply tuple collision") the last
  NF_NAT_HARDER_THRESH (32) probes go through ``nf_nat_used_tuple_harder``: a colliding
  SNATed TCP entry in TIME_WAIT or CLOSE (``nf_nat_may_kill``) is killed when the new SYN's
  sequence end is after the old entry's (``nf_seq_has_advanced``:
  ``(s32)(new.seen[0].td_end - old.seen[0].td_end) > 0``).
  With no ``--to-ports`` a remapped port stays in its class: [1, 511] below 512,
  [600, 1023] below 1024, else [1024, 65535] (``nf_nat_l4proto_unique_tuple``).
* net/netfilter/nf_conntrack_core.c, ``__nf_conntrack_confirm`` / ``nf_ct_resolve_clash``:
  a TCP entry whose reply tuple clashes at confirm is dropped, counting ``insert_failed``
  and ``drop`` (conntrack -S).
* net/ipv4/tcp_timer.c (6.5+), ``tcp_retransmit_timer``: after retransmission k the RTO
  stays at TCP_TIMEOUT_INIT (1 s) while k <= ``tcp_syn_linear_timeouts`` (default 4), then
  doubles up to TCP_RTO_MAX (120 s).  ``tcp_write_timeout``: connect() fails at the timer
  that finds ``retransmits >= tcp_syn_retries + tcp_syn_linear_timeouts`` *or*, through
  ``retransmits_timed_out``/``tcp_model_timeout``, ``(2 << tcp_syn_retries) - 1`` seconds
  (for tcp_syn_retries <= 6, with rto_base = 1 s) gone since the first SYN
  (Documentation/networking/ip-sysctl.rst: tcp_syn_retries, tcp_syn_linear_timeouts).
* kernel/time/timer.c (header comment): a timer of the wheel fires late by at most the
  granularity of its level, at most about 1/8 of its timeout.
"""

from __future__ import annotations

import itertools

# nf_conntrack_proto_tcp.c tcp_timeouts[] (seconds)
CT_ESTABLISHED_S = 5 * 24 * 3600
CT_TIME_WAIT_S = 120
CT_CLOSE_S = 10
# nf_conntrack_proto_udp.c udp_timeouts[] (seconds) and the stream delay
CT_UDP_S = 30
CT_UDP_STREAM_S = 120
UDP_STREAM_AFTER_S = 2

INITIAL_RTO_S = 1  # TCP_TIMEOUT_INIT
RTO_MAX_S = 120  # TCP_RTO_MAX
TIMER_SLACK = 1 / 8  # kernel/time/timer.c: wheel granularity <= ~12.5 % of the timeout
NF_NAT_HARDER_THRESH = 32  # nf_nat_core.c: NF_NAT_MAX_ATTEMPTS / 4


def syn_budget_s(retries: int) -> int:
    """tcp_model_timeout(sk, retries, 1 s): (2 << retries) - 1 s, linear above ilog2(120)."""
    thresh = 6  # ilog2(TCP_RTO_MAX / TCP_TIMEOUT_INIT)
    if retries <= thresh:
        return (2 << retries) - 1
    return (2 << thresh) - 1 + (retries - thresh) * RTO_MAX_S


def syn_schedule(retries: int, linear: int) -> tuple[list[float], float]:
    """Times (s after the first SYN) of every SYN sent, and of the ETIMEDOUT failure.

    Walks the retransmit timer: at each expiry, fail if the count limit or the time
    budget is reached, else retransmit and back off (1 s while linear, then doubling).
    """
    t, rto = 0, INITIAL_RTO_S
    syns: list[float] = [0]
    for sent in range(retries + linear + 1):  # retransmissions so far, at each expiry
        t += rto
        if sent == retries + linear or (sent > 0 and t >= syn_budget_s(retries)):
            return syns, t
        syns.append(t)
        if sent + 1 > linear:
            rto = min(2 * rto, RTO_MAX_S)
    raise AssertionError("unreachable: the count limit always ends the walk")


def timer_tolerance_s(syn_times: list[float], upto: float) -> float:
    """How late the event at ``upto`` may be: the slack of every timer armed before it."""
    points = [t for t in syn_times if t < upto] + [upto]
    return sum((b - a) * TIMER_SLACK for a, b in itertools.pairwise(points)) + 0.05


def seq_has_advanced(new_isn: int, old_td_end: int) -> bool:
    """nf_seq_has_advanced: the new SYN ends (ISN + 1) after the old entry's highest end."""
    diff = (new_isn + 1 - old_td_end) & 0xFFFFFFFF
    return 0 < diff < 0x80000000


def port_class(port: int) -> tuple[int, int]:
    """nf_nat_l4proto_unique_tuple without a range: where a taken port is remapped."""
    if port < 512:
        return 1, 511
    if port < 1024:
        return 600, 1023
    return 1024, 65535
