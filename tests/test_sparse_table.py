"""A fleet member's sparse port table gives the same answers as a host's plain one.

``SparsePortTable`` keeps a port's first owner as the OWNED bit of its bind map and counts
only the ports shared by several sockets; ``PortTable`` counts every owner.  Random
sequences of autobind takes and releases, explicit binds and pools opened along the way
must leave both with the same maps, counts and owner counts.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sim.ports.table import PortTable, SparsePortTable

LO, HI = 40000, 40015
SIZE = HI - LO + 1
OPTIONS = {"reserved": frozenset({40003}), "listening": frozenset({40009})}

# (action, port offset): take, release, bind, unbind, open a pool
steps = st.lists(st.tuples(st.sampled_from("trbup"), st.integers(0, SIZE - 1)), max_size=80)


def _same(plain: PortTable, sparse: PortTable) -> None:
    assert bytes(sparse.bind_pool.cells) == bytes(plain.bind_pool.cells)
    assert sparse.bind_pool.unusable == plain.bind_pool.unusable
    assert bytes(sparse.blocked) == bytes(plain.blocked)
    assert sparse.dynamic_blocked == plain.dynamic_blocked
    assert [sparse.owner_count(k) for k in range(SIZE)] == [
        plain.owner_count(k) for k in range(SIZE)
    ]
    assert sparse.pools.keys() == plain.pools.keys()
    for key, pool in plain.pools.items():
        assert bytes(sparse.pools[key].cells) == bytes(pool.cells)
        assert sparse.pools[key].unusable == pool.unusable


@settings(max_examples=300, deadline=None)
@given(steps, st.booleans())
def test_sparse_table_matches_the_plain_one(actions, first_member):
    """Both a fleet's first member (its own templates) and a later one (sharing them)."""
    plain = PortTable(LO, HI, **OPTIONS)
    template = SparsePortTable(LO, HI, **OPTIONS)
    sparse = template if first_member else SparsePortTable(LO, HI, template=template)
    held: list[int] = []  # autobind owners (ports), in take order
    bound: list[int] = []  # explicit binders
    now = 0.0
    for action, k in actions:
        now += 1.0
        if action == "t" and not plain.static[plain.layout.cell(k)]:
            assert plain.take(k, now) == sparse.take(k, now)
            held.append(k)
        elif action == "r" and held:
            k = held.pop(k % len(held))
            plain.release(k, now)
            sparse.release(k, now)
        elif action == "b" and not plain.static[plain.layout.cell(k)]:
            assert plain.take_explicit(k, now) == sparse.take_explicit(k, now)
            bound.append(k)
        elif action == "u" and bound:
            k = bound.pop(k % len(bound))
            plain.release_explicit(k, now)
            sparse.release_explicit(k, now)
        elif action == "p":
            key = (None, f"10.0.0.{k}", 443)
            plain.pool(key, key[1])
            sparse.pool(key, key[1])
        _same(plain, sparse)
    assert sparse.owner_count(0) == plain.owner_count(0)


def test_a_shared_port_counts_its_owners():
    """Hand-made: one port taken for three destinations, released one by one."""
    table = SparsePortTable(LO, HI)
    for _ in range(3):
        table.take(5, 0.0)
    assert table.owner_count(5) == 3 and table.bind_pool.unusable == 1
    table.release(5, 1.0)
    assert table.owner_count(5) == 2 and table.bind_pool.unusable == 1
    table.release(5, 2.0)
    assert table.owner_count(5) == 1 and table.owners == {}
    table.release(5, 3.0)
    assert table.owner_count(5) == 0 and table.bind_pool.unusable == 0
