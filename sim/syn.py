"""When a client retransmits an unanswered SYN, and when connect() gives up (ETIMEDOUT).

A SYN dropped on the way (by a NAT gateway with no free tuple, or losing the conntrack
confirm race) is retransmitted by the client's kernel; each retransmission is a new try.
Linux (``tcp_retransmit_timer`` and ``tcp_write_timeout``, net/ipv4/tcp_timer.c):

* the first timeout is the initial RTO, 1 s (TCP_TIMEOUT_INIT, RFC 6298 section 2.1);
* from Linux 6.5 ("tcp: make the first N SYN RTO backoffs linear", ccce324dabfe) the first
  ``tcp_syn_linear_timeouts`` (default 4) backoffs keep the RTO at 1 s and the SYN_SENT
  retransmission limit is ``tcp_syn_retries + tcp_syn_linear_timeouts``; before, none;
* then the RTO doubles, up to TCP_RTO_MAX (120 s);
* after the last retransmission's timeout connect() fails with ETIMEDOUT.

So with ``tcp_syn_retries`` 6: retransmissions at 1, 3, 7, 15, 31, 63 s and ETIMEDOUT at
127 s before 6.5; at 1, 2, 3, 4, 5, 7, 11, 19, 35, 67 s and ETIMEDOUT at 131 s from 6.5
(Documentation/networking/ip-sysctl.rst, tcp_syn_retries and tcp_syn_linear_timeouts).
"""

from __future__ import annotations

INITIAL_RTO_S = 1.0  # TCP_TIMEOUT_INIT
RTO_MAX_S = 120.0  # TCP_RTO_MAX
DEFAULT_SYN_RETRIES = 6  # TCP_SYN_RETRIES
DEFAULT_LINEAR_TIMEOUTS = 4  # tcp_syn_linear_timeouts default (Linux 6.5+)
FIRST_LINEAR_KERNEL = (6, 5)


def linear_timeouts_for(kernel: tuple[int, int]) -> int:
    """The default ``tcp_syn_linear_timeouts`` of a kernel version (0: the sysctl is absent)."""
    return DEFAULT_LINEAR_TIMEOUTS if kernel >= FIRST_LINEAR_KERNEL else 0


def syn_schedule(retries: int, linear: int) -> tuple[float, ...]:
    """Offsets from the first SYN of each retransmission, then of the ETIMEDOUT failure.

    The first ``linear`` + 1 timeouts are 1 s each (the first SYN's and those of the linear
    retransmissions), then the RTO doubles (capped at 120 s).  When a timer fires,
    ``tcp_write_timeout`` gives up if ``retries + linear`` retransmissions were sent, or if
    the time since the first SYN reached the limit ``retransmits_timed_out`` computes for
    ``retries`` alone (:func:`time_limit`): with few retries and linear timeouts the time
    limit comes first (2 retries: ETIMEDOUT at 7 s, not 11 s; measured on Linux 6.18,
    docs/nat-kernel-check.md)."""
    total = retries + linear
    limit = time_limit(retries)
    out: list[float] = []
    t, rto, sent = 0.0, INITIAL_RTO_S, 0
    while True:
        t += rto
        out.append(t)
        if sent >= total or t >= limit:
            return tuple(out)  # this timer gives up: ETIMEDOUT
        sent += 1
        if sent > linear:
            rto = min(rto * 2, RTO_MAX_S)


def time_limit(retries: int) -> float:
    """``tcp_model_timeout(sk, retries, TCP_TIMEOUT_INIT)`` (net/ipv4/tcp_timer.c): the time
    the classic doubling schedule takes for ``retries`` retransmissions, (2^(retries+1) - 1)
    s up to the doubling threshold ilog2(TCP_RTO_MAX / 1 s) = 6, then 120 s per retry."""
    threshold = 6
    if retries <= threshold:
        return float((2 << retries) - 1) * INITIAL_RTO_S
    return float((2 << threshold) - 1) * INITIAL_RTO_S + (retries - threshold) * RTO_MAX_S
