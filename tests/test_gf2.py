"""GF(2) elimination (failgeom.gf2): packing, rank, solving, the spanning prefix, parity recovery."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from failgeom import gf2
from failgeom.problems.sparse_parity import k_subsets, sample_parity_bits


def _row_space_rank(A: np.ndarray) -> int:
    """Oracle: log2 of the number of distinct GF(2) combinations of the rows (small m only)."""
    m = A.shape[0]
    combos = np.array(list(itertools.product((0, 1), repeat=m)), dtype=np.int64)
    span = {tuple(row) for row in (combos @ A.astype(np.int64)) % 2}
    return int(np.log2(len(span)))


def _bits(draw, max_m=7, max_n=9):
    m = draw(st.integers(1, max_m))
    n = draw(st.integers(1, max_n))
    seed = draw(st.integers(0, 2**32 - 1))
    density = draw(st.sampled_from([0.1, 0.5, 0.9]))
    return (np.random.default_rng(seed).random((m, n)) < density).astype(np.uint8)


@settings(max_examples=30, deadline=None)
@given(m=st.integers(1, 40), c=st.integers(0, 200), seed=st.integers(0, 2**32 - 1))
def test_pack_unpack_round_trip(m, c, seed):
    bits = np.random.default_rng(seed).integers(0, 2, (m, c), dtype=np.uint8)
    words = gf2.pack_rows(bits)
    assert words.dtype == np.uint64 and words.shape == (m, max(1, -(-c // 64)))
    np.testing.assert_array_equal(gf2.unpack_rows(words, c), bits)
    # column j is bit j % 64 of word j // 64
    for j in range(min(c, 130)):
        np.testing.assert_array_equal((words[:, j // 64] >> np.uint64(j % 64)) & np.uint64(1), bits[:, j])


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_rank_matches_the_size_of_the_row_space(data):
    A = _bits(data.draw)
    assert gf2.rank(A) == _row_space_rank(A)


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_solve_agrees_with_exhaustive_search(data):
    """Consistency, uniqueness and the solution against all 2^n candidate subsets."""
    A = _bits(data.draw, max_m=8, max_n=8)
    m, n = A.shape
    b = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1))).integers(0, 2, m, dtype=np.uint8)
    sol = gf2.solve(A, b)
    candidates = np.array(list(itertools.product((0, 1), repeat=n)), dtype=np.int64)
    fits = np.all((candidates @ A.T.astype(np.int64)) % 2 == b, axis=1)
    assert sol.consistent == bool(fits.any())
    assert sol.unique == (int(fits.sum()) == 1)
    assert sol.rank == _row_space_rank(A)
    if sol.consistent:
        np.testing.assert_array_equal((A.astype(np.int64) @ sol.solution) % 2, b)


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_spanning_prefix_is_the_first_full_rank_prefix(data):
    n = data.draw(st.integers(1, 12))
    m = data.draw(st.integers(1, 30))
    A = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1))).integers(0, 2, (m, n), dtype=np.uint8)
    p = gf2.spanning_prefix(A)
    ranks = [gf2.rank(A[:i]) for i in range(1, m + 1)]
    if p is None:
        assert ranks[-1] < n
    else:
        assert ranks[p - 1] == n and (p == 1 or ranks[p - 2] < n)


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 300), k=st.integers(0, 300), seed=st.integers(0, 2**32 - 1))
def test_any_parity_is_recovered_once_the_samples_span(n, k, seed):
    """Sparse (k small), dense and full subsets alike: with samples up to rank n the solution is
    unique, so it is the target."""
    rng = np.random.default_rng(seed)
    subset = np.zeros(n, dtype=bool)
    subset[rng.choice(n, size=min(k, n), replace=False)] = True
    A, b = sample_parity_bits(rng, subset, n + 64)
    p = gf2.spanning_prefix(A)
    assert p is not None and n <= p <= n + 64  # missing rank n within n + 64 samples: prob < 2^-63
    sol = gf2.solve(A[:p], b[:p])
    assert sol.unique
    np.testing.assert_array_equal(sol.solution, subset.astype(np.uint8))


def test_sample_bits_match_the_pm1_labels():
    rng = np.random.default_rng(3)
    subset = k_subsets(rng.spawn(1), 30, 4)[0]
    A, b = sample_parity_bits(rng, subset, 500)
    x = 1 - 2 * A.astype(np.int64)  # bit 1 is the value -1
    np.testing.assert_array_equal(np.prod(np.where(subset, x, 1), axis=1), (-1) ** b.astype(np.int64))
    assert abs(A.mean() - 0.5) < 0.02  # 15,000 fair bits: std 0.004


def test_noisy_labels_make_the_system_inconsistent():
    """A flipped label among more than n spanning samples contradicts the rest."""
    rng = np.random.default_rng(0)
    subset = k_subsets(rng.spawn(1), 40, 3)[0]
    A, b = sample_parity_bits(rng, subset, 200)
    assert gf2.solve(A, b).unique
    b = b.copy()
    b[7] ^= 1
    assert not gf2.solve(A, b).consistent


def test_bad_input():
    with pytest.raises(ValueError, match="only 0 and 1"):
        gf2.solve(np.array([[0, 2]]), np.array([1]))
    with pytest.raises(ValueError, match="b must have shape"):
        gf2.solve(np.ones((3, 2), dtype=np.uint8), np.ones(2, dtype=np.uint8))
    with pytest.raises(TypeError, match="integers or booleans"):
        gf2.rank(np.ones((2, 2)))
    with pytest.raises(ValueError, match="2-D"):
        gf2.rank(np.ones(3, dtype=np.uint8))
    with pytest.raises(TypeError, match="uint64"):
        gf2.eliminate(np.ones((2, 2), dtype=np.int64), 2)
    with pytest.raises(ValueError, match="ncols"):
        gf2.eliminate(np.ones((2, 1), dtype=np.uint64), 65)
