"""Digest of every shipped scenario's outputs, to show that a refactor preserves behaviour.

    python benchmarks/outputs_digest.py [--horizon 90s] [--full]

Each scenario in scenarios/ runs with its own seed at a short horizon (``--full``: its own
duration), with the event log on, and is saved without plots; the script prints one SHA-256
per scenario over summary.json (without the wall-clock field ``run.wall_s``), series.csv,
hosts.csv, histograms.json, events.csv and scenario.json, and a digest of all of them. Run it before
and after a change on the same base: equal digests mean byte-identical outputs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

import sim
from sim.config.errors import ScenarioError

ROOT = Path(__file__).resolve().parent.parent
FILES = ("series.csv", "hosts.csv", "histograms.json", "events.csv", "scenario.json")


def digest(path: Path, horizon: str | None) -> str:
    overrides = [f"duration={horizon}"] if horizon else []
    try:
        scenario = sim.load_scenario(path, overrides)
    except ScenarioError:  # the scenario needs its own duration (e.g. a trace or a profile)
        scenario = sim.load_scenario(path)
    result = sim.run(scenario, events=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = result.save(tmp, plots=False)
        summary = json.loads((out / "summary.json").read_text())
        summary.get("run", {}).pop("wall_s", None)
        h = hashlib.sha256(json.dumps(summary, indent=2, sort_keys=True).encode())
        for name in FILES:
            file = out / name
            h.update(name.encode() + b"\0")
            h.update(file.read_bytes() if file.exists() else b"(absent)")
    return h.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # long enough for Linux TIME_WAITs (60 s, plus a timer-wheel bucket) to end in the run:
    # at 60 s none did, and a change to how they end went unseen
    parser.add_argument("--horizon", default="90s", help="duration override (default 90s)")
    parser.add_argument("--full", action="store_true", help="each scenario's own duration")
    args = parser.parse_args()
    total = hashlib.sha256()
    for path in sorted((ROOT / "scenarios").glob("*.toml")):
        d = digest(path, None if args.full else args.horizon)
        total.update(d.encode())
        print(f"{d[:16]}  {path.name}")
    print(f"{total.hexdigest()[:16]}  ALL")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
