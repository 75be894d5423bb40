"""sparse-parity-variance and parity-gf2 at tiny sizes: what their metrics claim, determinism."""

import dataclasses

import numpy as np
import pytest

from failgeom import plotting
from failgeom.experiments import get
from failgeom.training import record_streams

VARIANCE, GF2 = get("sparse-parity-variance"), get("parity-gf2")


def test_variance_is_below_the_bound_at_init_and_along_sgd():
    """Theorem 1 for every weight-k class, k = 1..n, at init (both losses) and at every
    evaluation of the SGD run; the transform agrees with enumeration to rounding."""
    result = VARIANCE.run(VARIANCE.tiny, seed=0)
    for loss in ("square", "hinge"):
        assert result.metrics[f"init_{loss}"]["all_below_bound"]
        assert 0 < result.metrics[f"init_{loss}"]["max_ratio_to_bound"] <= 1
    assert result.metrics["train"]["all_below_bound"]
    assert result.metrics["train"]["steps"] == [0, 10, 20]
    assert result.metrics["check"]["max_abs_difference_over_G2"] < 1e-12
    plotting.close(VARIANCE.figure(result))


@pytest.mark.parametrize("experiment", [VARIANCE, GF2], ids=lambda e: e.name)
def test_merge_equals_serial_and_streams_are_distinct(experiment):
    config = experiment.tiny
    with record_streams() as streams:
        a = experiment.run(config, seed=2)
    assert len(streams) == len(set(streams)) > 0
    outputs = {key: experiment.compute_cell(config, 2, key) for key in reversed(experiment.cell_keys(config))}
    b = experiment.merge_cells(config, 2, outputs)
    np.testing.assert_equal(b.metrics, a.metrics)
    np.testing.assert_equal(b.curves, a.curves)


def test_gf2_recovers_every_parity_once_the_samples_span():
    result = GF2.run(dataclasses.replace(GF2.tiny, ns=(5, 30, 200), replicas=4), seed=0)
    for kind in ("dense", "sparse"):
        m = result.metrics[kind]
        assert m["trials"] == 12 and m["successes_with_samples_needed"] == 12
        assert m["outcomes_with_n_plus_extra"]["wrong"] == 0  # noiseless: never a wrong parity
        assert sum(m["outcomes_with_n_plus_extra"].values()) == 12
        assert 0 <= m["excess_mean"] <= m["excess_max"] <= result.config["max_extra"]
    plotting.close(GF2.figure(result))


def test_gf2_noise_outcomes_add_up():
    result = GF2.run(dataclasses.replace(GF2.tiny, noise_rates=(0.0, 0.3), noise_trials=20), seed=1)
    clean, noisy = result.metrics["noise"]["0"], result.metrics["noise"]["0.3"]
    assert clean["correct"] + clean["rank_deficient"] == 20 and clean["inconsistent"] == 0
    # 18 labels at flip rate 0.3: all correct with probability 0.7^18 = 0.0016 per trial
    assert noisy["correct"] + noisy["inconsistent"] + noisy["wrong"] + noisy["rank_deficient"] == 20
    assert noisy["correct"] <= 2


@pytest.mark.parametrize("experiment, changes, match", [
    (GF2, {"sparse_k": 5, "ns": (4, 8, 16)}, "sparse_k"),
    (GF2, {"ns": (10, 10, 20)}, "3 distinct"),
    (GF2, {"extra": 20, "max_extra": 10}, "max_extra"),
    (GF2, {"noise_rates": (0.7,)}, "noise_rates"),
    (VARIANCE, {"n": 21}, "n must"),
    (VARIANCE, {"train_k": 9, "n": 8}, "train_k"),
    (VARIANCE, {"losses": ("logistic",)}, "losses"),
])
def test_bad_config(experiment, changes, match):
    with pytest.raises((ValueError, TypeError), match=match):
        dataclasses.replace(experiment.tiny, **changes)
