"""The slots a connection reads sit first in memory (``sim.host.HostConnectionSlots``).

CPython lays out a class's own slots sorted by name, after its bases', so only a base class
keeps a chosen set together.  Two checks:

* which slots a connection reads is measured, not taken from the code: every attribute read
  on hosts, channels and port tables is counted over two runs alike but for their rate (a
  fleet behind a gateway, and a single host), and the difference per connection more
  gives the reads per connection (what bins and setup read cancels); a slot read at least
  once per two connections must be in the base, and each slot in the base must be read on the
  path (at least once per ten connections);
* the base's slots are the words right after the object's header (each object gets a
  distinct value in every slot and the memory is read back)."""

from __future__ import annotations

import ctypes
import platform
from collections import Counter
from collections.abc import Callable

import pytest

import sim
from sim.channel import Channel, ChannelConnectionSlots
from sim.fleet import Member
from sim.host import Host, HostConnectionSlots
from sim.ports.table import PortTable, SparsePortTable, TableConnectionSlots

pytestmark = pytest.mark.skipif(
    platform.python_implementation() != "CPython", reason="a CPython memory layout"
)

HEADER = object.__basicsize__  # reference count and type pointer
WORD = ctypes.sizeof(ctypes.c_void_p)
HOT = {Host: HostConnectionSlots, Channel: ChannelConnectionSlots, PortTable: TableConnectionSlots}


def all_slots(cls: type) -> list[str]:
    return [name for base in cls.__mro__ for name in getattr(base, "__slots__", ())]


def scenario(fleet: bool, rate: float) -> sim.Scenario:
    """``rate`` connects/s for 300 s to one destination (most TIME_WAITs end within the
    run): 100 pods behind a Kubernetes node's SNAT, or one host."""
    duration = 300.0
    doc: dict[str, object] = {
        "name": "slot-reads",
        "duration": duration,
        "destinations": [{"name": "api", "address": "10.0.0.1:443"}],
        "load": [
            {
                "destination": "api",
                "arrival": {"kind": "poisson", "rate": rate},
                "lifetime": {"kind": "exponential", "mean": 5},
            }
        ],
    }
    if fleet:
        doc["hosts"] = [
            {"name": "pods", "count": 100, "address": "10.244.0.0/24", "gateway": "node"}
        ]
        doc["gateways"] = [{"name": "node", "kind": "k8s-node", "addresses": ["198.51.100.7"]}]
        doc["load"][0]["host"] = "pods"  # type: ignore[index]
    return sim.parse_scenario(doc)


def counting(cls: type, reads: Counter[str]) -> Callable[[object, str], object]:
    def getattribute(self: object, name: str) -> object:
        reads[name] += 1
        return object.__getattribute__(self, name)

    return getattribute


@pytest.fixture(scope="module")
def reads_per_connection() -> dict[type, dict[str, float]]:
    """Reads of each slot per connection, the higher of the fleet's and the host's."""
    out: dict[type, dict[str, float]] = {cls: {} for cls in HOT}
    for fleet in (True, False):
        (low, n_low), (high, n_high) = (reads(scenario(fleet, rate)) for rate in (10.0, 30.0))
        for cls in HOT:
            slots = set(all_slots(SparsePortTable if cls is PortTable else cls))
            for name in slots & (set(low[cls]) | set(high[cls])):
                per = (high[cls][name] - low[cls][name]) / (n_high - n_low)
                out[cls][name] = max(out[cls].get(name, 0.0), per)
    return out


def reads(sc: sim.Scenario) -> tuple[dict[type, Counter[str]], int]:
    """The attribute reads of a run by class, and the run's connections."""
    counts: dict[type, Counter[str]] = {cls: Counter() for cls in HOT}
    patch = pytest.MonkeyPatch()
    for cls in HOT:
        patch.setattr(cls, "__getattribute__", counting(cls, counts[cls]), raising=False)
    try:
        result = sim.run(sc)
    finally:
        patch.undo()
    return counts, result.summary["connections"]["attempted"]


@pytest.mark.parametrize("cls", list(HOT))
def test_the_slots_a_connection_reads_are_the_base_classes(
    cls: type, reads_per_connection: dict[type, dict[str, float]]
) -> None:
    reads = reads_per_connection[cls]
    hot = set(HOT[cls].__slots__)
    assert {name for name, n in reads.items() if n >= 0.5} <= hot
    assert {name for name in hot if reads.get(name, 0.0) < 0.1} == set()


def words_after_header(cls: type, count: int) -> list[str]:
    """The slot names whose values sit in the first ``count`` words of a ``cls`` object."""
    obj = object.__new__(cls)
    values = {name: object() for name in all_slots(cls)}
    for name, value in values.items():
        object.__setattr__(obj, name, value)
    by_address = {id(value): name for name, value in values.items()}
    found = []
    for i in range(count):
        pointer = ctypes.c_void_p.from_address(id(obj) + HEADER + i * WORD).value
        found.append(by_address.get(pointer or 0, "?"))
    return found


@pytest.mark.parametrize(
    ("cls", "hot"),
    [
        (Host, HostConnectionSlots),
        (Member, HostConnectionSlots),
        (Channel, ChannelConnectionSlots),
        (PortTable, TableConnectionSlots),
        (SparsePortTable, TableConnectionSlots),
    ],
)
def test_the_base_classes_slots_come_first_in_memory(cls: type, hot: type) -> None:
    names = set(hot.__slots__)
    assert len(all_slots(cls)) > len(names)  # there are colder slots to keep apart
    assert set(words_after_header(cls, len(names))) == names


def test_declaring_hot_slots_first_in_one_class_would_not_keep_them_first() -> None:
    """Why a base class: within one class the declared order is lost (sorted by name)."""

    class OneClass:
        __slots__ = ("zeta", "alpha")  # noqa: RUF023 (the point: not sorted)

    assert words_after_header(OneClass, 2) == ["alpha", "zeta"]
