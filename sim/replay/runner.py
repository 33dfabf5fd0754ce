"""Run a replay plan on the running kernel: namespaces, servers, drivers, clean-up.

Per client host: a client namespace (the host's addresses and sysctls) and a server
namespace (the destinations' addresses and listeners) joined by veth.  Loopback
destinations are served inside the client namespace.  Every process started here is killed
and every namespace deleted in ``finally``, on errors and Ctrl-C alike.
"""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.atomic import record_signal
from sim.replay.lab import Pair, veth_pair
from sim.replay.plan import HostPlan

DRIVER = Path(__file__).with_name("driver.py")
START_LEAD_S = 1.5  # time to start every driver before plan time 0
SAMPLE_HZ = 20


@dataclass
class HostRun:
    """What one client namespace saw."""

    plan: HostPlan
    data: dict[str, Any]


def _spawn(ns: str, cmd: dict[str, Any]) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        ["ip", "netns", "exec", ns, sys.executable, "-I", str(DRIVER)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(cmd))
    proc.stdin.close()
    return proc


def _ready(proc: subprocess.Popen[str], what: str) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "ready":
        err = proc.stderr.read() if proc.stderr else ""
        raise OSError(f"{what} did not start: {err.strip()[-300:]}")


def _raise_interrupt(sig: int, _frame: Any) -> None:
    record_signal(sig)  # reported even if this exception is swallowed (sim.atomic)
    raise KeyboardInterrupt


def replay(plans: list[HostPlan], duration: float) -> tuple[float, list[HostRun]]:
    """Run every host's plan at once; return CLOCK_MONOTONIC at plan time 0 and the data."""
    old = signal.signal(signal.SIGTERM, _raise_interrupt)  # clean up on kill too
    procs: list[subprocess.Popen[str]] = []
    try:
        with ExitStack() as stack:
            stack.callback(_stop, procs)  # last in, first out: before the namespaces go
            pairs = [_setup(stack, plan, procs, duration) for plan in plans]
            t0 = time.monotonic() + START_LEAD_S
            drivers = [
                _spawn(pair.client, _replay_command(plan, t0, duration))
                for plan, pair in zip(plans, pairs, strict=True)
            ]
            procs.extend(drivers)
            runs = []
            for plan, proc in zip(plans, drivers, strict=True):
                out, err = _collect(proc, duration + 90)
                if proc.returncode != 0 or not out.strip():
                    raise OSError(f"replay driver failed ({proc.returncode}): {err.strip()[-500:]}")
                runs.append(HostRun(plan, json.loads(out.strip().splitlines()[-1])))
            return t0, runs
    finally:
        signal.signal(signal.SIGTERM, old)


def _setup(
    stack: ExitStack, plan: HostPlan, procs: list[subprocess.Popen[str]], duration: float
) -> Pair:
    """The host's namespaces and its servers (ready before the plan starts)."""
    pair = stack.enter_context(veth_pair(plan.addresses, sorted(plan.remote_addresses)))
    for ns, listen in ((pair.server, plan.servers), (pair.client, plan.local_servers)):
        if listen:
            procs.append(_spawn(ns, _serve(sorted(listen), duration + 120)))
            _ready(procs[-1], f"server in {ns}")
    return pair


def _replay_command(plan: HostPlan, t0: float, duration: float) -> dict[str, Any]:
    return {
        "mode": "replay",
        "t0_monotonic": t0,
        "duration_s": duration,
        "deadline_s": duration + 30,
        "sample_hz": SAMPLE_HZ,
        "sysctls": plan.sysctls,
        "channels": plan.channels,
        "attempts": plan.attempts,
        "lifetimes": {
            k: [v if math.isfinite(v) else 1e12 for v in lives]
            for k, lives in plan.lifetimes.items()
        },
    }


def _collect(proc: subprocess.Popen[str], limit_s: float) -> tuple[str, str]:
    """stdout and stderr of a driver, killing it if it overruns ``limit_s``."""
    watchdog = threading.Timer(limit_s, proc.kill)
    watchdog.start()
    try:
        assert proc.stdout is not None and proc.stderr is not None
        out = proc.stdout.read()
        err = proc.stderr.read()
        proc.wait()
    finally:
        watchdog.cancel()
    return out, err


def _stop(procs: list[subprocess.Popen[str]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def _serve(listen: list[tuple[str, int]], seconds: float) -> dict[str, Any]:
    return {"mode": "serve", "listen": [list(e) for e in listen], "deadline_s": seconds}
