"""The line-image generator of Sec. 3.1 (Figure 2): rasterisation rule, labels, tuples."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from failgeom.problems import lines


def reference_image(theta, length, cx, cy):
    """The original rule written point by point: ``centre ± unit(theta) * j``,
    ``j = 0 .. floor(l/2) - 1``, truncated to ints, kept inside the 28x28 image."""
    img = np.zeros((28, 28))
    for j in range(int(math.floor(length / 2))):
        for s in (1.0, -1.0):
            col = int(cx + math.cos(theta) * (s * j))
            row = int(cy + math.sin(theta) * (s * j))
            if 0 <= col < 28 and 0 <= row < 28:
                img[row, col] = 1
    return img


@settings(deadline=None, max_examples=60)
@given(theta=st.floats(0, math.pi, exclude_max=True), length=st.floats(5, 23),
       cx=st.floats(0, 28, exclude_max=True), cy=st.floats(0, 28, exclude_max=True))
def test_rasterisation_matches_the_rule(theta, length, cx, cy):
    params = lines.LineParams(np.array([theta]), np.array([length]), np.array([[cx, cy]]))
    img = lines.render_lines(params, dtype=np.float64)[0]
    np.testing.assert_array_equal(img, reference_image(theta, length, cx, cy))


@settings(deadline=None, max_examples=10)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 40))
def test_batch_equals_images_drawn_one_by_one(seed, n):
    params = lines.sample_line_params(np.random.default_rng(seed), (n,))
    batch = lines.render_lines(params, np.float64)
    for i in range(n):
        ref = reference_image(params.theta[i], params.length[i], *params.centre[i])
        np.testing.assert_array_equal(batch[i], ref)
    np.testing.assert_array_equal(lines.line_labels(params.theta), np.where(params.theta < np.pi / 2, 1, -1))


def test_parameter_ranges_and_label_balance():
    rng = np.random.default_rng(1)
    n = 20_000
    params = lines.sample_line_params(rng, (n,))
    assert params.theta.min() >= 0 and params.theta.max() < np.pi
    assert params.length.min() >= 5 and params.length.max() <= 23
    assert params.centre.min() >= 0 and params.centre.max() < 28
    images = lines.render_lines(params)
    assert set(np.unique(images)) <= {0.0, 1.0}
    # at most 2 floor(l/2) - 1 points (j = 0 is drawn twice); the centre pixel is always inside
    counts = images.sum(axis=(1, 2))
    assert np.all(counts >= 1)
    assert np.all(counts <= 2 * np.floor(params.length / 2) - 1)
    # P(y = +1) = 1/2: 5 binomial standard deviations
    labels = lines.line_labels(params.theta)
    assert abs(np.mean(labels == 1) - 0.5) < 5 * 0.5 / np.sqrt(n)


def test_tuples_and_parity_labels():
    rng = np.random.default_rng(2)
    images, image_labels, labels = lines.sample_tuples(rng, (3, 50), 4)
    assert images.shape == (3, 50, 4, 28, 28) and images.dtype == np.float32
    assert image_labels.shape == (3, 50, 4) and labels.shape == (3, 50)
    np.testing.assert_array_equal(labels, np.prod(image_labels, axis=-1))
    # every image of every tuple follows the rule: re-render from a twin generator
    twin = lines.sample_line_params(np.random.default_rng(2), (3, 50, 4))
    np.testing.assert_array_equal(images, lines.render_lines(twin))
    np.testing.assert_array_equal(image_labels, lines.line_labels(twin.theta))


def test_same_seed_same_images():
    a = lines.sample_tuples(np.random.default_rng(5), (2, 7), 3)
    b = lines.sample_tuples(np.random.default_rng(5), (2, 7), 3)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_bad_input():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="k"):
        lines.sample_tuples(rng, (2, 3), 0)
    with pytest.raises(TypeError, match="shape"):
        lines.sample_line_images(rng, "big")
    with pytest.raises(ValueError, match="shape"):
        lines.sample_line_images(rng, (3, -1))
    with pytest.raises(TypeError, match="rng"):
        lines.sample_line_images(0, (3,))
    with pytest.raises(TypeError, match="dtype"):
        lines.sample_line_images(rng, (3,), dtype=np.int32)
