"""When a Linux timer-wheel timer really fires: TIME_WAIT ends on the wheel's bucket grid.

The kernel does not kill a TIME_WAIT socket exactly ``TCP_TIMEWAIT_LEN`` (60 s) after it
starts.  ``__inet_twsk_schedule`` (net/ipv4/inet_timewait_sock.c, Linux 6.18) arms an
ordinary ``timer_list`` with ``mod_timer(&tw->tw_timer, jiffies + timeo)``, and the timer
wheel of kernel/time/timer.c (the non-cascading wheel of Linux 4.8, commit 500462a9de65
"timers: Switch to a non-cascading wheel", unchanged in this respect up to 6.18) files it in
a bucket:

* ``calc_wheel_index(expires, clk, &bucket_expiry)`` picks the level from the distance
  ``delta = expires - clk``: level ``n`` is the first whose ``LVL_START(n + 1)`` exceeds
  ``delta``, with ``LVL_START(n) = (LVL_SIZE - 1) << ((n - 1) * LVL_CLK_SHIFT)``,
  ``LVL_SIZE = 1 << LVL_BITS``, ``LVL_BITS = 6``, ``LVL_CLK_SHIFT = 3``; ``LVL_DEPTH`` is 9
  levels when HZ > 100, else 8; beyond ``WHEEL_TIMEOUT_CUTOFF`` the expiry is clamped to
  ``clk + WHEEL_TIMEOUT_MAX``.
* ``calc_index(expires, lvl, &bucket_expiry)`` rounds *up* to the level's granularity
  ``LVL_GRAN(lvl) = 1 << (lvl * LVL_CLK_SHIFT)`` jiffies, "to prevent early expiry":
  ``bucket_expiry = ((expires >> LVL_SHIFT(lvl)) + 1) << LVL_SHIFT(lvl)``.
* ``__run_timers`` / ``collect_expired_timers`` expire every timer of that bucket on the
  tick at which jiffies reaches ``bucket_expiry``: all in one batch.

So at HZ = 250 a 60 s timer (15000 jiffies) sits in level 3, whose buckets are 512 jiffies
(2.048 s) wide; TIME_WAITs end in batches 2.048 s apart, between 60 s and 62.048 s after
they began.  The bucket depends on the absolute value of jiffies, so the model keeps a
jiffies clock: ``jiffies(t) = floor(j0 + t * HZ)``, with ``j0`` the clock's value at
simulated time 0 (a host parameter; see :func:`default_start`).

Only the TIME_WAIT timer needs this here: the ``tcp_tw_reuse`` age test in
``tcp_twsk_unique`` (net/ipv4/tcp_ipv4.c) compares timestamps, not a timer, and FIN_WAIT2
is not modelled.
"""

from __future__ import annotations

import math

LVL_CLK_SHIFT = 3
LVL_BITS = 6
LVL_SIZE = 1 << LVL_BITS
HZ_VALUES = (100, 250, 300, 1000)  # CONFIG_HZ choices in kernel/Kconfig.hz
DEFAULT_HZ = 250  # Kconfig.hz: "default 250 if HZ_250" is the default choice
INITIAL_JIFFIES_S = 300  # include/linux/jiffies.h: INITIAL_JIFFIES = -300 * HZ (wraps at 5 min)
FIRST_WHEEL_KERNEL = (4, 8)  # the non-cascading wheel; older kernels' timers not modelled


def lvl_depth(hz: int) -> int:
    """``LVL_DEPTH``: 9 levels when HZ > 100, else 8."""
    return 9 if hz > 100 else 8


def lvl_start(n: int) -> int:
    """``LVL_START(n)``: the smallest distance filed in level ``n`` (n >= 1)."""
    return (LVL_SIZE - 1) << ((n - 1) * LVL_CLK_SHIFT)


def level_for(delta: int, hz: int) -> int:
    """The level ``calc_wheel_index`` files a timer ``delta`` jiffies ahead of the clock in."""
    depth = lvl_depth(hz)
    for n in range(depth - 1):
        if delta < lvl_start(n + 1):
            return n
    return depth - 1


def granularity(delta: int, hz: int) -> int:
    """``LVL_GRAN`` of that level, in jiffies."""
    return 1 << (level_for(delta, hz) * LVL_CLK_SHIFT)


def bucket_expiry(expires: int, clk: int, hz: int) -> int:
    """The jiffy at which a timer armed for ``expires`` while the wheel clock is ``clk``
    fires (``calc_wheel_index`` + ``calc_index``)."""
    delta = expires - clk
    if delta < 0:
        return clk
    depth = lvl_depth(hz)
    cutoff = lvl_start(depth)
    if delta >= cutoff:  # WHEEL_TIMEOUT_MAX = CUTOFF - LVL_GRAN(LVL_DEPTH - 1)
        expires = clk + cutoff - (1 << ((depth - 1) * LVL_CLK_SHIFT))
        delta = expires - clk
    shift = level_for(delta, hz) * LVL_CLK_SHIFT
    return ((expires >> shift) + 1) << shift


class WheelTimer:
    """A fixed-length kernel timer on one host's jiffies clock, for the hot path.

    ``expiry(now)`` is when a timer of ``length`` seconds armed at simulated time ``now``
    fires.  The level is fixed by the length (the wheel clock ``base->clk`` is jiffies or
    one ahead of it, which moves the level only for lengths within a jiffy of a level
    boundary), so each call is a floor, a shift and a division.
    """

    __slots__ = ("hz", "j0", "jiffies", "shift")

    def __init__(self, length_s: float, hz: int, j0: float) -> None:
        self.hz = hz
        self.j0 = j0
        self.jiffies = round(length_s * hz)  # timeo: TCP_TIMEWAIT_LEN = 60 * HZ
        depth = lvl_depth(hz)
        if self.jiffies >= lvl_start(depth):
            self.jiffies = lvl_start(depth) - (1 << ((depth - 1) * LVL_CLK_SHIFT))
        self.shift = level_for(self.jiffies, hz) * LVL_CLK_SHIFT

    @property
    def granularity_s(self) -> float:
        """Spacing of the batches in seconds."""
        return (1 << self.shift) / self.hz

    def expiry(self, now: float) -> float:
        """Simulated time at which the timer armed at ``now`` fires."""
        shift = self.shift
        j = math.floor(self.j0 + now * self.hz) + self.jiffies
        return ((((j >> shift) + 1) << shift) - self.j0) / self.hz


def default_start(hz: int, phase_s: float, whole_windows: int) -> float:
    """A jiffies value for simulated time 0 when the scenario gives none.

    The wheel's grid, like the 10 s windows of the port hash, follows the machine's jiffies,
    which depend on when it booted: nothing in a scenario says.  The model keeps one clock
    for both: ``phase_s`` is the host's offset against the 10 s windows (already drawn from
    the run's seed), and ``whole_windows`` (drawn from a stream of its own) places time 0
    somewhere in the first ~12 days after INITIAL_JIFFIES wrapped, so the bucket grid's phase
    is uniform over the seeds (inferred: a parameter, ``jiffies_at_start``).
    """
    return (10 * whole_windows + phase_s) * hz
