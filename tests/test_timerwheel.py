"""The timer wheel's arithmetic against cases worked out by hand from kernel/time/timer.c.

Constants (kernel/time/timer.c, Linux 6.18): LVL_CLK_SHIFT = 3, LVL_BITS = 6 (64 buckets a
level), LVL_START(n) = 63 << 3(n-1): 63, 504, 4032, 32256, 258048 jiffies for n = 1..5;
LVL_GRAN(n) = 8^n jiffies: 1, 8, 64, 512, 4096.  A timer ``delta`` jiffies ahead goes to
the first level n with delta < LVL_START(n + 1), and ``calc_index`` rounds up:
bucket_expiry = ((expires >> 3n) + 1) << 3n.
"""

from __future__ import annotations

import pytest

import sim
from sim.timerwheel import WheelTimer, bucket_expiry, granularity, level_for, lvl_start


def test_level_boundaries():
    # LVL_START(1..5) = 63, 504, 4032, 32256, 258048 (63 << 0, 3, 6, 9, 12)
    assert [lvl_start(n) for n in range(1, 6)] == [63, 504, 4032, 32256, 258048]
    assert level_for(62, 250) == 0 and level_for(63, 250) == 1
    assert level_for(503, 250) == 1 and level_for(504, 250) == 2
    assert level_for(4031, 250) == 2 and level_for(4032, 250) == 3


@pytest.mark.parametrize(
    ("hz", "level", "grain", "grain_s"),
    [
        # HZ 100: 60 s = 6000 jiffies; 4032 <= 6000 < 32256 -> level 3, 512 jiffies = 5.12 s
        (100, 3, 512, 5.12),
        # HZ 250: 15000 jiffies; 4032 <= 15000 < 32256 -> level 3, 512 jiffies = 2.048 s
        (250, 3, 512, 2.048),
        # HZ 300: 18000 jiffies -> level 3, 512 jiffies = 1.7067 s
        (300, 3, 512, 512 / 300),
        # HZ 1000: 60000 jiffies; 32256 <= 60000 < 258048 -> level 4, 4096 jiffies = 4.096 s
        (1000, 4, 4096, 4.096),
    ],
)
def test_sixty_second_timer_level_and_batch_spacing(hz, level, grain, grain_s):
    assert level_for(60 * hz, hz) == level
    assert granularity(60 * hz, hz) == grain
    assert WheelTimer(60.0, hz, 0.0).granularity_s == pytest.approx(grain_s)


def test_bucket_expiry_hand_worked():
    # HZ 250, clk 1000, expires 16000 (delta 15000, level 3): 16000 >> 9 = 31
    # (31 * 512 = 15872), + 1 = 32, 32 << 9 = 16384
    assert bucket_expiry(16000, 1000, 250) == 16384
    # already on the grid: expires 16384 still goes one bucket up, 33 << 9 = 16896
    assert bucket_expiry(16384, 1384, 250) == 16896
    # HZ 1000, clk 0, expires 60000 (level 4): 60000 >> 12 = 14 (57344), + 1 = 15 -> 61440
    assert bucket_expiry(60000, 0, 1000) == 61440
    # HZ 100, clk 0, expires 6000 (level 3): 6000 >> 9 = 11 (5632), + 1 = 12 -> 6144
    assert bucket_expiry(6000, 0, 100) == 6144
    # level 0 (delta < 63): fires one jiffy after expires, (100 >> 0) + 1 = 101
    assert bucket_expiry(100, 50, 250) == 101
    # already expired (delta < 0): the current clock's bucket
    assert bucket_expiry(10, 20, 250) == 20


def test_wheel_timer_times():
    # HZ 250, j0 = 0: a close at t = 0 s is jiffy 0, expires 15000, 15000 >> 9 = 29
    # (14848), + 1 = 30 -> 15360 jiffies = 61.44 s
    timer = WheelTimer(60.0, 250, 0.0)
    assert timer.expiry(0.0) == pytest.approx(61.44)
    # a close at 1.5 s: jiffy 375, expires 15375 >> 9 = 30, + 1 = 31 -> 15872 = 63.488 s
    assert timer.expiry(1.5) == pytest.approx(63.488)
    # with j0 = 100.5: t = 0 is jiffy 100, expires 15100 >> 9 = 29 -> 15360 jiffies,
    # (15360 - 100.5) / 250 = 61.038 s
    assert WheelTimer(60.0, 250, 100.5).expiry(0.0) == pytest.approx(61.038)
    # HZ 1000, j0 = 0, close at 0: expires 60000 -> 61440 jiffies = 61.44 s
    assert WheelTimer(60.0, 1000, 0.0).expiry(0.0) == pytest.approx(61.44)
    # HZ 100, j0 = 0, close at 0: expires 6000 -> 6144 jiffies = 61.44 s
    assert WheelTimer(60.0, 100, 0.0).expiry(0.0) == pytest.approx(61.44)


def _model(hz: int, **host) -> sim.Result:
    sc = sim.parse_scenario(
        {
            "name": "wheel",
            "duration": 200,
            "hosts": [{"port_range": [40000, 40999], "hz": hz, "jiffies_at_start": 0, **host}],
            "destinations": [{"name": "d", "address": "10.0.0.1:80"}],
            "load": [
                {
                    "destination": "d",
                    "arrival": {"kind": "constant", "interval": 0.1},
                    "lifetime": {"kind": "fixed", "value": 0.0},
                    "close": "client",
                    "stop": 20,
                }
            ],
        }
    )
    return sim.run(sc, events=True)


@pytest.mark.parametrize(("hz", "grain"), [(100, 5.12), (250, 2.048), (1000, 4.096)])
def test_time_wait_ends_in_batches_on_the_grid(hz: int, grain: float):
    """Closes every 0.1 s from 0 to 20 s: TIME_WAITs end only on multiples of the grain
    (j0 = 0), between 60 s and 60 s + grain after their close."""
    ev = _model(hz).events
    ends = ev[ev["event"] == "time_wait_end"]["time_s"]
    assert len(ends) == 200
    assert all(abs(t / grain - round(t / grain)) < 1e-9 for t in ends)
    closes = ev[ev["event"] == "time_wait"].set_index("local_port")["time_s"]
    ended = ev[ev["event"] == "time_wait_end"].set_index("local_port")["time_s"]
    lives = ended - closes.loc[ended.index]
    assert lives.min() > 60.0 and lives.max() <= 60.0 + grain + 1e-9


def test_timer_wheel_false_gives_exact_time_wait():
    ev = _model(250, timer_wheel=False).events
    closes = ev[ev["event"] == "time_wait"].set_index("local_port")["time_s"]
    ended = ev[ev["event"] == "time_wait_end"].set_index("local_port")["time_s"]
    assert (ended - closes.loc[ended.index]).round(9).eq(60.0).all()


def test_rst_kills_time_wait_only_with_rfc1337_off():
    """time_wait_rst = 0.5: about half the closes lose their TIME_WAIT (200 closes, binomial
    sd 7, so within 4 sd: 72..128); with tcp_rfc1337 = 1 none does."""
    killed = _model(250, time_wait_rst=0.5).summary["hosts"][0]["timers"]["time_wait_rst_killed"]
    assert 72 <= killed <= 128
    kept = _model(250, time_wait_rst=0.5, tcp_rfc1337=1).summary["hosts"][0]["timers"]
    assert kept["time_wait_rst_killed"] == 0
