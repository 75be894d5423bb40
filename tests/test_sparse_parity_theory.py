"""Theorem 1 over the k-sparse parities: the weight-k transform against enumeration and the bound."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from failgeom.theory import sparse_parity_gradient_variance
from failgeom.theory.orthogonal import LOSSES
from failgeom.theory.sparse_parity import subset_weights


def _network(rng, n, width, scale):
    return {"W1": scale * rng.normal(size=(n, width)), "b1": scale * rng.normal(size=width),
            "W2": scale * rng.normal(size=(width, 1)), "b2": scale * rng.normal(size=1)}


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 7), width=st.integers(1, 5), seed=st.integers(0, 2**32 - 1),
       scale=st.sampled_from([0.3, 1.0, 2.0]), loss=st.sampled_from(LOSSES))
def test_weight_k_transform_equals_enumeration_and_obeys_theorem_1(n, width, seed, scale, loss):
    """For every k = 1..n: the variance from the weight-k Walsh-Hadamard coefficients equals the
    variance of the explicitly summed gradients over the enumerated class of C(n, k) parities,
    and both are at most G^2 / C(n, k) (Theorem 1 for the orthonormal class H_k). Tolerance:
    float64 sums of 2^n terms, relative to G^2."""
    w = _network(np.random.default_rng(seed), n, width, scale)
    ks = list(range(1, n + 1))
    fast, bound = sparse_parity_gradient_variance(n, ks, w, loss)
    slow, bound_direct = sparse_parity_gradient_variance(n, ks, w, loss, method="direct")
    G2 = bound[0] * n  # C(n, 1) = n
    np.testing.assert_allclose(bound, bound_direct, rtol=1e-12)
    np.testing.assert_allclose(bound * [math.comb(n, k) for k in ks], G2, rtol=1e-12)
    np.testing.assert_allclose(fast, slow, rtol=1e-9, atol=1e-12 * G2)
    assert np.all(fast <= bound + 1e-12 * G2)
    assert abs(fast[-1]) <= 1e-12 * G2  # k = n: a class of one target has no variance


def test_hinge_differs_from_square_once_scores_leave_the_margin():
    """Far from initialisation the hinge's coefficient c(x) is no longer -1 everywhere, so the two
    losses' variances differ (at a small init they coincide: |p| < 1 on the whole cube)."""
    rng = np.random.default_rng(1)
    w = _network(rng, 6, 4, 2.0)
    sq, _ = sparse_parity_gradient_variance(6, 2, w, "square")
    hi, _ = sparse_parity_gradient_variance(6, 2, w, "hinge")
    assert abs(sq - hi) > 1e-3 * max(sq, hi)
    small = _network(rng, 6, 4, 0.05)
    np.testing.assert_allclose(sparse_parity_gradient_variance(6, 2, small, "square")[0],
                               sparse_parity_gradient_variance(6, 2, small, "hinge")[0], rtol=1e-12)


def test_shapes_with_replicas_and_several_k():
    rng = np.random.default_rng(2)
    nets = [_network(rng, 5, 3, 1.0) for _ in range(3)]
    stacked = {key: np.stack([net[key] for net in nets]) for key in nets[0]}
    var, bound = sparse_parity_gradient_variance(5, (1, 3), stacked, "hinge")
    assert var.shape == bound.shape == (3, 2)
    one, one_bound = sparse_parity_gradient_variance(5, 3, nets[1], "hinge")
    assert isinstance(one, float) and isinstance(one_bound, float)
    np.testing.assert_allclose(var[1, 1], one, rtol=1e-12)
    np.testing.assert_allclose(sparse_parity_gradient_variance(5, [3], stacked)[0][:, 0],
                               sparse_parity_gradient_variance(5, 3, stacked)[0], rtol=1e-12)


def test_chunking_does_not_change_the_numbers():
    w = _network(np.random.default_rng(4), 8, 11, 1.0)
    a, _ = sparse_parity_gradient_variance(8, (2, 4, 7), w, "hinge")
    b, _ = sparse_parity_gradient_variance(8, (2, 4, 7), w, "hinge", chunk_bytes=8 * 256 * 3)
    np.testing.assert_allclose(a, b, rtol=1e-10)


def test_subset_weights_are_popcounts():
    np.testing.assert_array_equal(subset_weights(3), [0, 1, 1, 2, 1, 2, 2, 3])


@pytest.mark.parametrize("args, error, match", [
    ((21, 2), ValueError, "at most 20"),
    ((5, 0), ValueError, "1..5"),
    ((5, 6), ValueError, "1..5"),
    ((5, True), TypeError, "integer"),
    ((5, []), ValueError, "at least one"),
    ((0, 1), ValueError, "positive"),
])
def test_bad_arguments(args, error, match):
    w = _network(np.random.default_rng(0), 5, 2, 1.0)
    with pytest.raises(error, match=match):
        sparse_parity_gradient_variance(*args, w)


def test_bad_method_loss_and_weights():
    w = _network(np.random.default_rng(0), 5, 2, 1.0)
    with pytest.raises(ValueError, match="method"):
        sparse_parity_gradient_variance(5, 2, w, method="fast")
    with pytest.raises(ValueError, match="loss"):
        sparse_parity_gradient_variance(5, 2, w, loss="logistic")
    with pytest.raises(ValueError, match="input rows"):
        sparse_parity_gradient_variance(4, 2, w)
    with pytest.raises(ValueError, match="at most 12"):
        sparse_parity_gradient_variance(13, 2, _network(np.random.default_rng(0), 13, 2, 1.0), method="direct")
