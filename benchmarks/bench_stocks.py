"""asv benchmarks of the stocks experiment (paper Sec. 3.2): one training step of both
estimators (2R replicas, d = 1000, batch 100), with the row-sparse Adam and with nn.Adam on the
dense gradient for comparison, and the exact second moments of the theory module.

``FAILGEOM_BENCH_SMOKE=1`` (or the module-level ``SMOKE`` sizes) shrinks everything so CI can
run each benchmark once quickly.
"""

from __future__ import annotations

import os

import numpy as np

from failgeom import nn
from failgeom.experiments import stocks as S
from failgeom.problems.stocks import label_gains, labels_of, random_gains, random_label_maps, sample_inputs
from failgeom.training import train_step

#: sizes used when FAILGEOM_BENCH_SMOKE=1
SMOKE = {"d": 50, "ks": [10, 100], "replicas": 1}
_SMOKE_ON = os.environ.get("FAILGEOM_BENCH_SMOKE", "") not in ("", "0")
D = SMOKE["d"] if _SMOKE_ON else 1000
KS = SMOKE["ks"] if _SMOKE_ON else [10, 1000, 2000]
REPLICAS = SMOKE["replicas"] if _SMOKE_ON else 5
BATCH = 100


def _setup(k, R=REPLICAS, d=D):
    layer = nn.OneHotDense(d, k)
    params, _ = layer.init(np.random.default_rng(0), 2 * R, ())
    labels = random_label_maps(list(np.random.default_rng(1).spawn(R)), d, k)
    rng = np.random.default_rng(2)
    a = sample_inputs(rng, R, BATCH, d)
    y = labels_of(labels, a)
    gains = np.concatenate([random_gains(rng, y, k), label_gains(y, k)])
    return layer, params, np.concatenate([labels, labels]), np.concatenate([a, a]), gains


class StocksStep:
    """One step of both estimators: forward, loss, backward, Adam (2R replicas)."""

    params = [KS]
    param_names = ["k"]

    def setup(self, k):
        self.layer, self.params, self.labels, self.a, self.gains = _setup(k)
        self.sparse = nn.RowSparseAdam(0.1, **nn.PAPER_ADAM)
        self.dense = nn.Adam(0.1, **nn.PAPER_ADAM)
        loss = nn.losses.expected_negative_gain
        # one warm-up step each: allocate the moments and scratch outside the timed region
        nn.row_sparse_step(self.layer, self.params, loss, self.sparse, self.a, self.gains)
        train_step(self.layer, self.params, loss, self.dense, self.a, self.gains)

    def time_step_row_sparse_adam(self, k):
        nn.row_sparse_step(self.layer, self.params, nn.losses.expected_negative_gain, self.sparse, self.a, self.gains)

    def time_step_dense_nn_adam(self, k):
        train_step(self.layer, self.params, nn.losses.expected_negative_gain, self.dense, self.a, self.gains)

    # the runner reports the ratio to the dense twin measured in the same run
    time_step_row_sparse_adam.reference = "time_step_dense_nn_adam"

    def peakmem_step_row_sparse_adam(self, k):
        nn.row_sparse_step(self.layer, self.params, nn.losses.expected_negative_gain, self.sparse, self.a, self.gains)

    def track_weights_per_step(self, k):
        """Weights Adam updates each step (all of them: Adam moves zero-gradient weights)."""
        return int(self.params["W"].size)


class StocksMoments:
    """Exact second moments of both estimators at one replica's weights (theory module)."""

    params = [KS]
    param_names = ["k"]

    def setup(self, k):
        self.layer, self.params, self.labels, _, _ = _setup(k, R=1)

    def time_exact_moments(self, k):
        S.exact_moments(self.params, self.labels)

    def time_expected_loss(self, k):
        S.expected_loss(self.params, self.labels)

    def track_ratio_at_init_over_k(self, k):
        m = S.exact_moments({"W": self.params["W"][:1], "b": self.params["b"][:1]}, self.labels[:1])
        return float(m["m2_end_to_end"][0] / m["m2_decomposition"][0] / k)
