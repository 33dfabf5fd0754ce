"""Random streams hand out numpy's draws in order, a block at a time (sim.randomness).

Expected values come from a second numpy generator with the same seed, drawn directly."""

import gc

import numpy as np

from sim.randomness import BLOCK, LazyStream, Stream


def test_a_stream_hands_out_the_generators_blocks_in_order_across_block_ends():
    stream = Stream(np.random.SeedSequence(7))
    direct = np.random.default_rng(np.random.SeedSequence(7))
    expected = direct.random(BLOCK).tolist() + direct.random(BLOCK).tolist()
    got = [stream.uniform() for _ in range(2 * BLOCK)]
    assert got == expected


def test_a_block_is_drawn_only_when_the_last_is_used_up():
    """Other draws from the generator between two uniforms land after the current block:
    a block is drawn at the first uniform after the previous one ran out, not before."""
    stream = Stream(np.random.SeedSequence(3))
    direct = np.random.default_rng(np.random.SeedSequence(3))
    secret = stream.rng.bytes(16)  # (ConnectState draws its secret first)
    assert secret == direct.bytes(16)
    first = stream.uniform()
    block = direct.random(BLOCK).tolist()
    assert first == block[0]
    table = stream.rng.integers(0, 1 << 32, size=8, dtype="u8")  # between two uniforms
    assert (table == direct.integers(0, 1 << 32, size=8, dtype="u8")).all()
    rest = [stream.uniform() for _ in range(BLOCK - 1)]
    assert rest == block[1:]
    assert stream.uniform() == direct.random(BLOCK).tolist()[0]


def test_a_lazy_stream_makes_its_generator_at_its_first_draw_with_the_same_values():
    lazy = LazyStream(11, (0, 2, 5))
    direct = Stream(np.random.SeedSequence(11, spawn_key=(0, 2, 5)))
    with_no_draw = LazyStream(11, (0, 2, 5))
    try:
        object.__getattribute__(with_no_draw, "rng")
        built = True
    except AttributeError:
        built = False
    assert not built  # no generator until a value is asked for
    assert [lazy.uniform() for _ in range(10)] == [direct.uniform() for _ in range(10)]
    assert lazy.below(1000) == direct.below(1000)


def test_a_stream_is_no_reference_cycle():
    """Streams go by reference counting (sim.collector: a run leaves nothing to collect):
    the chain handing out values must not refer back to its stream."""
    gc.collect()
    gc.disable()
    try:
        plain = Stream(np.random.SeedSequence(1))
        lazy = LazyStream(1, (4,))
        plain.uniform()
        lazy.uniform()
        assert lazy.rng is not None
        del plain, lazy
        assert gc.collect() == 0
    finally:
        gc.enable()
