"""A 4-tuple-scope host's bind map keeps no time integral (sim.ports.table.BindMap): its
level and peaks are a pool's, its mean is never asked for, and hosts that do report their
port space (the other scopes) keep a full pool."""

from __future__ import annotations

import random

import pytest

import sim
from sim.config import parse_scenario
from sim.engine import Model
from sim.ports.table import BindMap, Layout, Pool


def test_a_bind_map_keeps_a_pools_levels_and_peaks() -> None:
    """The same takes and gives (random cells, bits and times, fixed seed) on a pool and a
    bind map leave the same cells, level, bin peak, highest level and its time."""
    layout = Layout(64)
    pool, bind = Pool(layout, "p"), BindMap(layout, "b")
    rnd = random.Random(4)
    now = 0.0
    for _ in range(5000):
        now += rnd.random()
        cell, bits, take = rnd.randrange(64), rnd.choice((1, 2, 3)), rnd.random() < 0.55
        for space in (pool, bind):
            (space.take if take else space.give)(cell, bits, now)
        assert bind.cells == pool.cells
        assert (bind.unusable, bind.peak, bind.max_ever, bind.max_time) == (
            pool.unusable,
            pool.peak,
            pool.max_ever,
            pool.max_time,
        )
    assert 0 < pool.max_ever < 64
    with pytest.raises(RuntimeError):
        bind.mean_unusable(now)


def _model(os_name: str) -> Model:
    doc = {
        "name": "scopes",
        "duration": 20,
        "hosts": [{"name": "app", "address": "10.1.0.5", "os": os_name}],
        "destinations": [{"name": "api", "address": "10.0.0.1:443"}],
        "load": [
            {
                "destination": "api",
                "arrival": {"kind": "poisson", "rate": 50},
                "lifetime": {"kind": "exponential", "mean": 1},
            }
        ],
    }
    return Model(parse_scenario(doc, "scopes.toml"), 1, False)


@pytest.mark.parametrize(("os_name", "kept"), [("linux", BindMap), ("macos", Pool)])
def test_only_a_4_tuple_scope_host_drops_its_bind_maps_integral(os_name: str, kept: type) -> None:
    """Linux reports its destination pools (4-tuple scope): its bind map is a BindMap, and
    a run reports a mean pressure from the destination pool.  macOS shares its port space
    across destinations (scope port): the bind map is what it reports, a full pool."""
    model = _model(os_name)
    host = model.hosts["app"]
    assert type(host.table.bind_pool) is kept
    assert (host.scope == "4tuple") == (kept is BindMap)
    summary = model.run().summary
    assert summary["pressure"]["mean"] > 0


def test_fleet_members_bind_maps_follow_their_first_member() -> None:
    sc = parse_scenario(
        {
            "name": "fleet",
            "duration": 5,
            "hosts": [{"name": "pods", "count": 3, "address": "10.244.1.0/24"}],
            "destinations": [{"name": "api", "address": "10.0.0.1:443"}],
            "load": [
                {
                    "host": "pods",
                    "destination": "api",
                    "arrival": {"kind": "poisson", "rate": 30},
                    "lifetime": {"kind": "exponential", "mean": 1},
                }
            ],
        },
        "fleet.toml",
    )
    fleet = Model(sc, 1, False).fleets["pods"]
    assert all(type(fleet.member(i).table.bind_pool) is BindMap for i in range(3))
    assert sim.run(sc).summary["pressure"]["mean"] > 0
