"""What channels report: their connect() calls by outcome and by errno.

The run's ``connections``, each host's and each load's counts are the same sum over a
different set of channels (``sim.channel.Channel``), so they are computed here once.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from sim.channel import Channel
    from sim.summary.types import Connections, FailedByError

ERRNOS = ("EADDRNOTAVAIL", "EADDRINUSE", "EAGAIN")


def merged(counts: Iterable[dict[Any, int]]) -> dict[Any, int]:
    """Counters summed key by key."""
    out: dict[Any, int] = {}
    for one in counts:
        for key, n in one.items():
            out[key] = out.get(key, 0) + n
    return out


def failed_by_error(channels: Iterable[Channel]) -> FailedByError:
    """Refusals by errno over ``channels``: every errno the model returns, zeros included."""
    out = dict.fromkeys(ERRNOS, 0)
    out.update(merged(ch.failed_by_error for ch in channels))
    return cast("FailedByError", out)


def connections(channels: list[Channel]) -> Connections:
    """connect() calls made, succeeded, failed (and by errno) over ``channels``."""
    attempted = sum(ch.attempted for ch in channels)
    succeeded = sum(ch.succeeded for ch in channels)
    return {
        "attempted": attempted,
        "succeeded": succeeded,
        "failed": attempted - succeeded,
        "failed_by_error": failed_by_error(channels),
    }


def first_failure(channels: Iterable[Channel]) -> float | None:
    """When the first of ``channels`` first failed; None when none did."""
    return min((ch.first_failure for ch in channels if ch.first_failure is not None), default=None)
