"""The seed tree: one child per named purpose, independent of each other, refusing unknown names."""

import numpy as np
import pytest

from sde_scales import InvalidArgumentError, seeds


def test_purposes_have_distinct_indices():
    idx = list(seeds.PURPOSES.values())
    assert len(set(idx)) == len(idx)  # two purposes on one index would share a stream


def test_child_is_the_spawn_tree_node_of_its_purpose():
    ss = seeds.child(7, "width.noise", 64)
    assert ss.entropy == 7 and ss.spawn_key == (seeds.PURPOSES["width.noise"], 64)
    # the same node as spawning by hand from the root: children of children
    by_hand = np.random.SeedSequence(7).spawn(seeds.PURPOSES["width.noise"] + 1)[-1].spawn(65)[-1]
    assert by_hand.spawn_key == ss.spawn_key
    np.testing.assert_array_equal(by_hand.generate_state(4), ss.generate_state(4))


def test_a_child_of_a_child_keeps_its_parents_place_in_the_tree():
    """A SeedSequence passed as the seed (a model handing its own child on) roots the purpose below
    it: the grandchild's spawn key extends the parent's, so it never meets the stream the same
    purpose has directly under the integer seed."""
    parent = seeds.child(5, "width.noise", 64)
    grand = seeds.child(parent, "delay.noise", 2)
    assert grand.spawn_key == parent.spawn_key + (seeds.PURPOSES["delay.noise"], 2)
    direct = seeds.child(5, "delay.noise", 2)
    assert not np.array_equal(grand.generate_state(4), direct.generate_state(4))


def test_purposes_and_keys_give_different_streams():
    a = seeds.rng(3, "width.noise", 8).standard_normal(64)
    b = seeds.rng(3, "width.initial_spread", 8).standard_normal(64)
    c = seeds.rng(3, "width.noise", 16).standard_normal(64)
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.5 and not np.array_equal(a, c)
    np.testing.assert_array_equal(a, seeds.rng(3, "width.noise", 8).standard_normal(64))


def test_unknown_purpose_and_bad_seed_or_key_are_refused():
    with pytest.raises(InvalidArgumentError, match="unknown seed purpose 'width.nosie'"):
        seeds.child(0, "width.nosie")
    with pytest.raises(InvalidArgumentError, match="seed=None"):
        seeds.child(None, "delay.noise")
    with pytest.raises(InvalidArgumentError, match="seed key -1"):
        seeds.child(0, "width.noise", -1)
    for bad in (-1, 1.5, True):  # numpy would raise its own error for -1, and take True as 1
        with pytest.raises(InvalidArgumentError, match=f"seed={bad!r}; pass a non-negative integer"):
            seeds.child(bad, "delay.noise")


def test_a_block_of_paths_draws_from_the_seeds_spawned_child():
    """BlockStreams' block b is ``SeedSequence(seed).spawn(b + 1)[b]`` (its documented stream, which
    a user can rebuild with numpy alone), for a root seed and for a node of the seed tree, and its
    generator is SFC64 on that child."""
    from sde_scales.sde import BlockStreams

    for seed in (7, seeds.child(3, "theory.check", 2)):
        root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        bs = BlockStreams(seed, block_size=16)
        kids = np.random.SeedSequence(root.entropy, spawn_key=root.spawn_key).spawn(5)
        for b in (0, 1, 4):
            assert bs.block_seed(b).spawn_key == kids[b].spawn_key and bs.block_seed(b).entropy == kids[b].entropy
            want = np.random.Generator(np.random.SFC64(kids[b])).standard_normal(8)
            np.testing.assert_array_equal(bs.generator(b).standard_normal(8), want)
