"""portsim: a SimPy model of how operating systems hand out, hold and exhaust ephemeral ports.

Python API (see README): ``load_scenario(path)``, ``run(scenario, seed=None, events=False)``
returning a :class:`Result` with ``summary``, ``series`` and ``events``; ``sweep(base, grid)``
returning one row per run of a grid x replications (``sim.sweeps``).
"""

from sim.config import Scenario, ScenarioError, load_scenario, parse_scenario
from sim.engine import run
from sim.result import Result
from sim.sweeps import sweep
from sim.version import VERSION as __version__

__all__ = [
    "Result",
    "Scenario",
    "ScenarioError",
    "__version__",
    "load_scenario",
    "parse_scenario",
    "run",
    "sweep",
]
