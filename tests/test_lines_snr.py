"""tuple-lines-snr (Figure 5): the pool of N1 features and the tuples formed from it give
exactly the per-tuple score-layer gradients of the images, block by block; configs; a tiny run."""

import dataclasses

import numpy as np
import pytest

from failgeom.experiments import get
from failgeom.experiments import tuple_lines_snr as snr
from failgeom.experiments.tuple_lines_model import APPROACHES, TupleModel
from failgeom.problems.lines import LineParams, line_labels, render_lines, sample_line_params
from failgeom.training import seed_streams

CFG = snr.TupleLinesSNRConfig(ks=(1, 3), pool=60, blocks=3, tuples=60, sq_rounds=2, chunk=16,
                              tuple_chunk=5, replicas=2, dtype="float64")


def pool_model(config, seed, k):
    """The TupleModel and parameters (N1 of the pool, N2 of k) the experiment uses."""
    model = TupleModel(k, conv_init=config.conv_init)
    R = config.replicas
    p1, _ = model.n1.init(seed_streams(seed, "tuple-lines-snr", "n1").generators(R), R, (28, 28, 1), config.dtype)
    p2, _ = model.n2.init(seed_streams(seed, "tuple-lines-snr", k, "n2").generators(R), R, (k,), np.float64)
    return model, [p1, p2]


@pytest.mark.parametrize("k", [1, 3])
def test_block_statistics_equal_explicit_per_tuple_gradients(k):
    """Re-form the experiment's tuples (same stream, one round at a time), render their images,
    take each tuple's exact score-layer gradient through the whole network, and average per
    block: the means and second moments the pool computation gives."""
    seed = 5
    pool = snr.shared_pool(CFG, seed)
    means, second = snr.block_statistics(CFG, pool, k, seed)
    model, params = pool_model(CFG, seed, k)
    lp = sample_line_params(np.random.default_rng(seed_streams(seed, "tuple-lines-snr", "pool")), (CFG.pool,))
    np.testing.assert_array_equal(line_labels(lp.theta), pool.labels)
    G, n_b = CFG.blocks, CFG.pool // CFG.blocks
    per_round = n_b // k
    rng = np.random.default_rng(seed_streams(seed, "tuple-lines-snr", k, "tuples"))
    rounds = CFG.rounds(k)
    sums = {a: 0.0 for a in APPROACHES}
    sq = {a: 0.0 for a in APPROACHES}
    for r in range(rounds):
        perm = rng.permuted(np.broadcast_to(np.arange(n_b), (1, G, n_b)), axis=2)
        idx = perm[0, :, :per_round * k].reshape(G, per_round, k) + (np.arange(G) * n_b)[:, None, None]
        sub = LineParams(lp.theta[idx], lp.length[idx], lp.centre[idx])
        images = np.broadcast_to(render_lines(sub, np.float64), (CFG.replicas,) + idx.shape + (28, 28))
        image_labels = np.broadcast_to(line_labels(sub.theta), (CFG.replicas,) + idx.shape)
        labels = image_labels.prod(axis=-1)
        for a in APPROACHES:
            g = [snr.score_layer_grads(model, params, images[:, b], image_labels[:, b], labels[:, b], a,
                                       CFG.decomposition_loss)[..., :-1] for b in range(G)]
            g = np.stack(g, axis=1)  # (R, G, per_round, 100)
            sums[a] = sums[a] + g.sum(axis=2)
            if r < CFG.sq_rounds:
                sq[a] = sq[a] + np.sum(g * g, axis=(2, 3))
    for a in APPROACHES:
        np.testing.assert_allclose(means[a], sums[a] / (rounds * per_round), rtol=2e-5, atol=1e-9)
        np.testing.assert_allclose(second[a], sq[a] / (min(CFG.sq_rounds, rounds) * per_round),
                                   rtol=2e-5, atol=1e-9)


def test_decomposition_first_image_does_not_depend_on_k():
    """The decomposition loss of the original SNR script uses the first image only."""
    rng = np.random.default_rng(1)
    scores = rng.standard_normal((1, 6, 3))
    yi = rng.choice([-1, 1], (1, 6, 3)).astype(np.int8)
    ds = snr.tuple_score_grads(TupleModel(3), None, scores, yi, yi.prod(-1), "decomposition", "first")
    assert np.all(ds[..., 1:] == 0)
    np.testing.assert_array_equal(ds[..., 0], np.where(yi[..., 0] * scores[..., 0] < 1, -yi[..., 0], 0))


def test_tiny_run_merge_figure_and_determinism():
    e = get("tuple-lines-snr")
    r = e.run(CFG, 0)
    for k in CFG.ks:
        assert r.metrics[f"k={k}/tuples"] == CFG.tuples_formed(k) >= (1 if k == 1 else CFG.tuples)
        for a in APPROACHES:
            items = r.metrics[f"k={k}/{a}"]
            assert len(items) == CFG.replicas
            for s in items:
                assert s["blocks"] == CFG.blocks and s["noise"] > 0
                assert s["snr_low"] <= s["snr_high"] and s["snr"] <= s["snr_high"]
    assert CFG.tuples_formed(1) == CFG.blocks * (CFG.pool // CFG.blocks)  # one round at k = 1
    snr._POOL_CACHE.clear()
    again = e.run(CFG, 0)
    assert again.metrics == r.metrics
    e.figure(r)
    assert "k=3" in e.summary(r)


@pytest.mark.parametrize("change, match", [({"blocks": 2}, "blocks"), ({"pool": 10, "blocks": 5}, "pool"),
                                           ({"level": 1.0}, "level"), ({"decomposition_loss": "x"}, "decomposition_loss")])
def test_bad_config(change, match):
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(CFG, **change).validate()
