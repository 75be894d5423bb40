"""Seed streams: a tree of named nodes whose leaves never coincide (training.Streams)."""

from __future__ import annotations


import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from failgeom.training import Streams, record_streams, seed_streams

key_part = st.one_of(st.integers(0, 2**31 - 1), st.text(min_size=1, max_size=8))


def test_spawned_child_never_equals_a_named_key():
    # the collision this tree exists to prevent: spawn(2)[1] of (s, k) used to be (s, k, 1)
    for k in range(4):
        spawned = seed_streams(7, k).spawn(3)
        named = [seed_streams(7, k, i) for i in range(3)]
        assert {s.spawn_key for s in spawned}.isdisjoint({s.spawn_key for s in named})
        a = np.random.default_rng(spawned[1]).integers(2**62, size=4)
        b = np.random.default_rng(named[1]).integers(2**62, size=4)
        assert not np.array_equal(a, b)


@settings(deadline=None, max_examples=20)
@given(st.lists(st.lists(key_part, max_size=3), min_size=2, max_size=6, unique_by=lambda p: tuple(map(repr, p))),
       st.integers(1, 3))
def test_distinct_paths_give_distinct_spawn_keys(paths, n_spawn):
    # every node and every spawned child of distinct key paths has its own spawn key
    # (distinct names could collide only through crc32; the strategy's few short names do not)
    keys = []
    for path in paths:
        node = seed_streams(3, *path)
        keys.append(node.spawn_key)
        keys.extend(child.spawn_key for child in node.spawn(n_spawn))
    assert len(set(keys)) == len(keys)


def test_spawn_continues_numbering_like_a_seed_sequence():
    node = seed_streams(0, "x")
    first, second = node.spawn(2), node.spawn(2)
    assert len({s.spawn_key for s in first + second}) == 4
    # a Generator's own spawn goes through the node, so it is marked as well
    g = np.random.default_rng(seed_streams(0, "y"))
    child = g.spawn(1)[0]
    assert isinstance(child.bit_generator.seed_seq, Streams)


@pytest.mark.parametrize("bad", [-1, 2**31, 1.5, True, None])
def test_bad_key_parts_are_refused(bad):
    with pytest.raises((TypeError, ValueError), match="stream key part"):
        seed_streams(0, bad)


def test_record_streams_sees_every_generator():
    with record_streams() as seen:
        np.random.default_rng(seed_streams(1, "a"))
        seed_streams(1, "b").generators(3)
    assert len(seen) == 4 and len(set(seen)) == 4
