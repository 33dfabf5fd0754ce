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

    RTO after transmission k (k = 0 the first SYN) is 1 s for k <= ``linear``, then
    doubles (capped at 120 s); there are ``retries + linear`` retransmissions."""
    total = retries + linear
    out: list[float] = []
    t, rto = 0.0, INITIAL_RTO_S
    for k in range(total + 1):
        t += rto
        out.append(t)
        if k >= linear:
            rto = min(rto * 2, RTO_MAX_S)
    return tuple(out)
