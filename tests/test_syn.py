"""SYN retransmission timing (net/ipv4/tcp_timer.c; ip-sysctl.rst figures)."""

from __future__ import annotations

from sim.syn import linear_timeouts_for, syn_schedule


def test_before_6_5_doubling_from_one_second() -> None:
    # tcp_syn_retries 6, no linear timeouts: "127 seconds" (ip-sysctl.rst before 6.5)
    assert syn_schedule(6, 0) == (1, 3, 7, 15, 31, 63, 127)


def test_from_6_5_four_linear_timeouts_first() -> None:
    # ip-sysctl.rst (6.5+): last retransmission at 67 s, the final timeout at 131 s
    assert syn_schedule(6, 4) == (1, 2, 3, 4, 5, 7, 11, 19, 35, 67, 131)


def test_commit_example_two_linear() -> None:
    # ccce324dabfe's message: linear 2 gives RTOs 1, 1, 1, 2, 4, 8, ...
    times = syn_schedule(3, 2)
    rtos = [b - a for a, b in zip((0.0, *times), times, strict=False)]
    assert rtos == [1, 1, 1, 2, 4, 8]


def test_rto_capped_at_120() -> None:
    times = syn_schedule(9, 0)
    assert times[-1] - times[-2] == 120 and times[-2] - times[-3] == 120


def test_linear_default_by_kernel() -> None:
    assert linear_timeouts_for((6, 4)) == 0 and linear_timeouts_for((6, 5)) == 4


def test_time_limit_comes_first_with_few_retries() -> None:
    # tcp_write_timeout also gives up once (2 << retries) - 1 s have passed since the first
    # SYN (retransmits_timed_out, tcp_model_timeout): with 2 retries and 4 linear timeouts
    # the SYNs go at 0, 1, 2, 3, 4, 5 s and the timer at 7 s ends it (7 >= 2^3 - 1), before
    # the sixth retransmission the count alone would allow; Linux 6.18 measured ETIMEDOUT
    # at 7.1 s (docs/nat-kernel-check.md)
    assert syn_schedule(2, 4) == (1, 2, 3, 4, 5, 7)
    # 1 retry: SYNs at 0, 1, 2 s; the timer at 3 s >= 2^2 - 1 ends it (measured 3.07 s)
    assert syn_schedule(1, 4) == (1, 2, 3)
    # 3 retries: the count (7) ends it at 19 s, past the 15 s limit (measured 19.57 s)
    assert syn_schedule(3, 4) == (1, 2, 3, 4, 5, 7, 11, 19)
