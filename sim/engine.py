"""Build a SimPy model from a Scenario and run it: thin, no file I/O.

One SimPy process per load (its arrival stream); everything per connection is callbacks
(``sim.stack``).  Random streams come from the run's seed with stable spawn keys, so adding a
load does not change the random numbers of the others.
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Callable, Iterator

import numpy as np
from simpy import Environment

from sim.randomness import Stream
from sim.recorder import Recorder
from sim.result import Result, build_summary, histograms
from sim.scenario import Scenario
from sim.stack import Host, Load
from sim.workload.arrivals import attempt_times
from sim.workload.lifetimes import sampler


def _seed(seed: int, *key: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(seed, spawn_key=key)


class Model:
    """A built model: environment, hosts, loads and recorder, ready to run."""

    def __init__(self, scenario: Scenario, seed: int, events: bool) -> None:
        self.scenario = scenario
        self.seed = seed
        self.env = env = Environment()
        self.recorder = rec = Recorder(env, scenario.bin_width, scenario.duration)
        self.log: list[tuple] | None = [] if events else None
        self.hosts = {
            spec.name: Host(env, spec, Stream(_seed(seed, 0, i)), rec, self.log)
            for i, spec in enumerate(scenario.hosts)
        }
        rec.hosts = list(self.hosts.values())
        dests = {d.name: d for d in scenario.destinations}
        self.loads: list[Load] = []
        for i, spec in enumerate(scenario.load):
            host = self.hosts[spec.host] if spec.host else rec.hosts[0]
            load = Load(
                spec.name or f"load{i}",
                host,
                dests[spec.destination],
                sampler(spec.lifetime, Stream(_seed(seed, 2, i))),
                spec.close,
                spec.socket,
                spec.protocol,
                spec.local_port_range,
            )
            load.spec = spec
            self.loads.append(load)
            rec.loads.append(load)
            rec.load_attempted.append(array("q"))
            rec.load_failed.append(array("q"))
            stop = min(spec.stop if spec.stop is not None else scenario.duration, scenario.duration)
            times = attempt_times(spec.arrival, Stream(_seed(seed, 1, i)), spec.start, stop)
            env.process(_arrivals(env, load, times))
        rec.start()

    def run(self, progress: Callable[[float], None] | None = None) -> Result:
        wall = time.perf_counter()
        duration = self.scenario.duration
        steps = 100 if progress else 1
        for step in range(1, steps + 1):
            self.env.run(until=duration * step / steps)
            if progress:
                progress(step / steps)
        self.recorder.close_bin()
        wall = time.perf_counter() - wall
        summary = build_summary(self, wall)
        return Result(summary, self.recorder, self.log, self.scenario, histograms=histograms(self))


def _arrivals(env: Environment, load: Load, times: Iterator[float]):
    timeout = env.timeout
    attempt = load.attempt
    for t in times:
        delay = t - env.now
        if delay > 0:
            yield timeout(delay)
        attempt()


def run(
    scenario: Scenario,
    seed: int | None = None,
    events: bool = False,
    progress: Callable[[float], None] | None = None,
) -> Result:
    """Run a scenario; ``seed`` overrides the scenario's; ``events`` keeps the event log."""
    return Model(scenario, scenario.seed if seed is None else seed, events).run(progress)
