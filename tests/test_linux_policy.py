"""The fast Linux policies give the same port, step counter and probe count as the naive,
port-by-port transcription of the kernel (tests/reference_kernel.py), for every geometry:
even and odd range sizes, sub-ranges (IP_LOCAL_PORT_RANGE), any occupancy and offset."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.ports.linux import (
    ConnectState,
    _two_pass,
    kernel_profile,
    select_bind,
    select_connect,
    select_udp,
)
from sim.ports.table import Layout, find_natural
from tests import reference_kernel as ref

LO = 40000


class FixedStream:
    """A stand-in for sim.randomness.Stream that hands out given uniforms."""

    def __init__(self, values: list[float]) -> None:
        self.values = list(values)
        self.rng = np.random.default_rng(0)

    def uniform(self) -> float:
        return self.values.pop(0)


@st.composite
def occupancy(draw, max_size: int = 48):
    size = draw(st.integers(1, max_size))
    busy = draw(st.lists(st.booleans(), min_size=size, max_size=size))
    return size, busy


def cells_for(size: int, busy: list[bool]) -> tuple[Layout, bytearray]:
    layout = Layout(size)
    cells = bytearray(size)
    for k, b in enumerate(busy):
        if b:
            cells[layout.cell(k)] = 1
    return layout, cells


@settings(max_examples=250, deadline=None)
@given(occupancy(), st.integers(0, 2**32 - 1), st.data())
def test_two_pass_scan_matches_kernel_loop(occ, seed32, data):
    size, busy = occ
    a = data.draw(st.integers(0, size - 1))
    n = data.draw(st.integers(1, size - a))
    layout, cells = cells_for(size, busy)
    remaining = n & ~1 if n > 1 else n
    offset = (seed32 % remaining) & ~1
    k, i, probes = _two_pass(cells, layout, a, n, offset >> 1, first_class_is_a=True)
    port, ref_i, ref_probes = ref.connect_scan(
        lambda p: not busy[p - LO], LO + a, LO + a + n - 1, seed32
    )
    assert (LO + k if k >= 0 else None) == port
    assert probes == ref_probes
    if port is not None:
        assert i == ref_i


@settings(max_examples=200, deadline=None)
@given(occupancy(), st.integers(0, 2**32 - 1), st.data())
def test_step1_natural_scan_matches_kernel_loop(occ, seed32, data):
    size, busy = occ
    a = data.draw(st.integers(0, size - 1))
    n = data.draw(st.integers(1, size - a))
    layout, cells = cells_for(size, busy)
    k0 = a + seed32 % n
    k = find_natural(cells, layout, k0, a, a + n)
    port, ref_i, _ = ref.connect_scan(
        lambda p: not busy[p - LO], LO + a, LO + a + n - 1, seed32, per_sock=True
    )
    assert (LO + k if k >= 0 else None) == port
    if port is not None:
        assert (k - k0) % n == ref_i


def _state(generation: str, idx: int, addend: int, uniforms: list[float]) -> ConnectState:
    state = ConnectState(generation, FixedStream([0.5, *uniforms]))  # phase = 5 s
    state._cache["key"] = (0, idx, addend)  # the hash of "key" in window 0, chosen by the test
    return state


@settings(max_examples=200, deadline=None)
@given(occupancy(), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.floats(0, 0.999))
def test_g4_select_and_perturbation_update(occ, perturb, addend, u):
    """G4: offset from perturb[idx] + high hash bits; after success the entry grows by
    max(i, 2*rand(0..7)) + 2 (`__inet_hash_connect`)."""
    size, busy = occ
    layout, cells = cells_for(size, busy)
    state = _state("G4", 7, addend, [u])
    state.perturb[7] = perturb
    k, probes = select_connect(cells, layout, state, "key", 0.0)
    seed32 = (perturb + addend) & 0xFFFFFFFF
    port, i, ref_probes = ref.connect_scan(lambda p: not busy[p - LO], LO, LO + size - 1, seed32)
    assert (LO + k if k >= 0 else None) == port
    assert probes == ref_probes
    if port is not None:
        assert state.perturb[7] == (perturb + max(i, 2 * int(u * 8)) + 2) & 0xFFFFFFFF
    else:
        assert state.perturb[7] == perturb


@settings(max_examples=200, deadline=None)
@given(occupancy(), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.floats(0, 0.999))
def test_g4_per_socket_range_is_step1(occ, perturb, addend, u):
    """6.8+: IP_LOCAL_PORT_RANGE scans step 1, no parity; entry grows by max(i, rand8) + 1."""
    size, busy = occ
    layout, cells = cells_for(size, busy)
    state = _state("G4", 3, addend, [u])
    state.perturb[3] = perturb
    k, _ = select_connect(cells, layout, state, "key", 0.0, (0, size), step1=True)
    seed32 = (perturb + addend) & 0xFFFFFFFF
    port, i, _ = ref.connect_scan(
        lambda p: not busy[p - LO], LO, LO + size - 1, seed32, per_sock=True
    )
    assert (LO + k if k >= 0 else None) == port
    if port is not None:
        assert state.perturb[3] == (perturb + max(i, int(u * 8)) + 1) & 0xFFFFFFFF


@settings(max_examples=200, deadline=None)
@given(occupancy(), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1))
def test_g0_g1_g2_global_hint(occ, hint, addend):
    size, busy = occ
    layout, cells = cells_for(size, busy)
    usable = lambda p: not busy[p - LO]  # noqa: E731
    for gen, naive in (("G0", ref.connect_g0), ("G1", ref.connect_g1)):
        state = _state(gen, 0, addend, [])
        state.hint = hint
        k, probes = select_connect(cells, layout, state, "key", 0.0)
        port, i, ref_probes = naive(usable, LO, LO + size - 1, (hint + addend) & 0xFFFFFFFF)
        assert (LO + k if k >= 0 else None) == port
        assert probes == ref_probes
        if port is not None:
            step = i if gen == "G0" else (i + 2) & ~1
            assert state.hint == (hint + step) & 0xFFFFFFFF
    state = _state("G2", 0, addend, [])
    state.hint = hint
    k, probes = select_connect(cells, layout, state, "key", 0.0)
    port, i, ref_probes = ref.connect_scan(usable, LO, LO + size - 1, (hint + addend) & 0xFFFFFFFF)
    assert (LO + k if k >= 0 else None) == port
    if port is not None:
        assert state.hint == (hint + i + 2) & 0xFFFFFFFF


@settings(max_examples=200, deadline=None)
@given(occupancy(), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.floats(0, 0.999))
def test_g3_table_and_one_in_sixteen_noise(occ, perturb, addend, u):
    size, busy = occ
    layout, cells = cells_for(size, busy)
    state = _state("G3", 5, addend, [u])
    state.perturb[5] = perturb
    k, _ = select_connect(cells, layout, state, "key", 0.0)
    port, i, _ = ref.connect_scan(
        lambda p: not busy[p - LO], LO, LO + size - 1, (perturb + addend) & 0xFFFFFFFF
    )
    assert (LO + k if k >= 0 else None) == port
    if port is not None:
        if i == 0 and int(u * 16) == 0:
            i = 2
        assert state.perturb[5] == (perturb + i + 2) & 0xFFFFFFFF


@settings(max_examples=200, deadline=None)
@given(occupancy(), st.booleans(), st.floats(0, 0.999), st.floats(0, 0.999))
def test_bind_port0_matches_kernel_loop(occ, reuseaddr, u1, u2):
    size, busy = occ
    layout, cells = cells_for(size, busy)
    k, probes = select_bind(cells, layout, FixedStream([u1, u2]), reuseaddr)
    port, ref_probes = ref.bind_scan(
        lambda p: not busy[p - LO], LO, LO + size - 1, [u1, u2], reuseaddr
    )
    assert (LO + k if k >= 0 else None) == port
    assert probes == ref_probes


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1024, 65000),
    st.integers(1, 3000),
    st.sampled_from([256, 1024, 16384]),
    st.integers(0, 2**32 - 1),
    st.data(),
)
def test_udp_autobind_matches_kernel_loop(lo, n, slots, r, data):
    hi = min(65535, lo + n - 1)
    busy = set(data.draw(st.lists(st.integers(lo, hi), max_size=n)))
    cells = bytearray([2]) * 65536
    cells[lo : hi + 1] = bytes(hi - lo + 1)
    for p in busy:
        cells[p] = 1
    port, probes = select_udp(cells, lo, hi, FixedStream([r / 4294967296.0]), slots)
    ref_port, ref_probes = ref.udp_scan(lambda p: p not in busy, lo, hi, r, slots)
    assert (port if port >= 0 else None) == ref_port
    assert probes == ref_probes


def test_kernel_versions_map_to_generations():
    # Corrected (issue 15): 4.2-4.4 were mapped to G0 with 32768-61000 before.  The even
    # offset and the 60999 default came with 07f4c90062f8, first in v4.2 (see
    # test_presets.test_linux_generation_boundaries_by_first_tag for the derivation).
    assert kernel_profile("4.1").generation == "G0"
    assert kernel_profile("4.2").generation == "G1"
    assert kernel_profile("4.4").generation == "G1"
    assert kernel_profile("4.5").generation == "G1"
    assert kernel_profile("4.6").generation == "G2"
    assert kernel_profile("5.11").generation == "G2"
    assert kernel_profile("5.17").generation == "G3"
    assert kernel_profile("5.18").generation == "G4"
    assert kernel_profile("6.18.44-fc-v669").bucket_reset
    assert not kernel_profile("6.17").bucket_reset
    assert kernel_profile("6.8").per_socket_step1 and not kernel_profile("6.7").per_socket_step1
    assert kernel_profile("4.1").default_range == (32768, 61000)
    assert kernel_profile("4.2").default_range == (32768, 60999)
    assert kernel_profile("4.18").default_tw_reuse == 2
    assert kernel_profile("4.17").default_tw_reuse == 0
    assert kernel_profile("5.10", "G4").generation == "G4"  # a backporting distribution kernel
    assert [kernel_profile(v).tw_delay_rule for v in ("4.17", "5.4", "6.14")] == [
        "s>1",
        "s>0",
        "ms",
    ]
