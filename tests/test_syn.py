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
