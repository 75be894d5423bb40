"""failgeom.testing: its strategies draw what they promise, its assertions pass on the theorem and
fail on falsified inputs, and a property test of a user's network reads as the docs show."""

import numpy as np
import pytest
from hypothesis import given, settings

from failgeom import nn, testing


@given(testing.orthonormal_classes(n_max=20))
def test_orthonormal_classes_are_orthogonal_with_unit_bounded_second_moment(H):
    m, N = H.shape
    gram = H @ H.T / N
    np.testing.assert_allclose(gram, np.diag(np.diag(gram)), atol=1e-10)
    assert np.all(np.diag(gram) <= 1 + 1e-12)


@given(testing.parity_classes(d_max=5))
def test_parity_classes_are_characters(cls):
    X, H = cls
    assert X.shape == (2 ** X.shape[1], X.shape[1]) and H.shape[1] == X.shape[0]
    np.testing.assert_allclose(H @ H.T / X.shape[0], np.eye(H.shape[0]), atol=1e-12)


@given(testing.sparse_subsets(n_max=12, k_max=3))
def test_sparse_subsets(subset):
    n, support = subset
    assert 1 <= len(support) <= 3 and list(support) == sorted(set(support)) and max(support) < n


@settings(max_examples=25)
@given(testing.networks(d_max=5, width_max=12), testing.parity_classes(d_max=5), testing.seeds())
def test_any_relu_network_obeys_theorem_1_on_any_parity_class(net, cls, seed):
    model, params, d = net
    X, H = cls
    x = np.asarray(np.random.default_rng(seed).choice([-1.0, 1.0], size=(X.shape[0], d)))
    x[:, : min(d, X.shape[1])] = X[:, : min(d, X.shape[1])]  # the class lives on the first coordinates
    R = params[0]["W"].shape[0]
    out, cache = model.forward(params, nn.shared(x, R))
    ones = np.ones_like(out)
    blocks = []
    for layer, p in enumerate(params):
        if p:
            g = model.per_example_grads(params, cache, ones, layer)
            blocks += [g[name].reshape(R, x.shape[0], -1) for name in sorted(g)]
    grads = np.concatenate(blocks, axis=-1)
    for r in range(R):
        testing.assert_variance_within_bound(out[r, :, 0], grads[r], H, "square")
        testing.assert_variance_within_bound(out[r, :, 0], grads[r], H, "hinge")


def test_variance_assertion_fails_on_a_class_outside_the_theorem():
    rng = np.random.default_rng(0)
    N, P = 16, 3
    values, grads = rng.standard_normal(N), rng.standard_normal((N, P))
    H = 10.0 * rng.standard_normal((4, N))  # neither orthogonal nor E h^2 <= 1
    with pytest.raises(AssertionError, match="exceeds Theorem 1's bound"):
        testing.assert_variance_within_bound(values, grads, H)


def test_exponent_assertion_holds_the_interval():
    ns = np.array([10.0, 20.0, 40.0, 80.0])
    values = 2.0 * ns**3 * (1 + 0.01 * np.array([1, -1, 1, -1]))
    fit = testing.assert_exponent(ns, values, 3.0)
    assert fit.ci95[0] < 3.0 < fit.ci95[1]
    with pytest.raises(AssertionError, match="does not contain the expected 2"):
        testing.assert_exponent(ns, values, 2.0)
    testing.assert_exponent(ns, values, 2.97, slack=0.1)
    with pytest.raises(ValueError, match="slack"):
        testing.assert_exponent(ns, values, 3.0, slack=-1)
    with pytest.raises(TypeError, match="slack"):
        testing.assert_exponent(ns, values, 3.0, slack="0.1")
