"""The configuration of one PWL learner run (Sec. 4.1) and its declared constraints.

Defaults follow the original code's fully connected run (Sec. 4.1.1): its data distribution
(``"code"``: fixed slope patterns, kinks ``3 +`` a sorted sample of ``0..n-7``), TensorFlow's
default Adam (beta1 0.9, beta2 0.999, eps 1e-8; every learner of this section used it), batch
100, 10,000 training and 1,000 validation curves, 50,000 iterations.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..base import F32_MAX, ExperimentConfig, param

#: TensorFlow 1's ``AdamOptimizer`` defaults, which the original code of Sec. 4 used unchanged
#: (not the 0.99 / 1e-5 of the other sections' scripts).
TF_ADAM = {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8}

#: Each replica holds its own training set; float64 during sampling, so about this many bytes
#: per curve point of train + validation sets (data, kink vectors, casts, masks).
_BYTES_PER_POINT = 40


@dataclass(frozen=True)
class PWLConfig(ExperimentConfig):
    """Hyperparameters of one PWL learner.

    ``lr=None`` picks a default: with Adam the original code's rate for the learner, with SGD
    ``sgd_step_fraction`` of the largest stable step of the expected loss
    (:func:`failgeom.experiments.pwl_models.sgd_step_size`); the autoencoder has no such
    threshold and needs an explicit SGD rate.
    """

    n: int = param(100, low=9, doc="curve length: sample points x = 0..n-1")
    k: int = param(3, low=1, doc="kinks per curve (the original code's data: 3)")
    distribution: str = param("code", choices=("code", "paper"),
                              doc="'code': the original code's data (for the autoencoder its continuous "
                                  "kinks); 'paper': the paper text's (kinks uniform, a ~ U[-1, 1])")
    train_size: int = param(10_000, low=1, doc="fixed training curves per replica")
    val_size: int = param(1_000, low=2, doc="fixed validation curves per replica")
    steps: int = param(50_000, low=1, doc="training iterations")
    batch: int = param(100, low=1, doc="curves per minibatch (drawn with replacement)")
    optimizer: str = param("adam", choices=("adam", "sgd"), doc="Adam (the original code) or plain SGD")
    lr: float | None = param(None, low=0.0, high=F32_MAX, low_open=True,
                             doc="learning rate; none: the original rate (Adam) or a fraction of the stable step (SGD); at most the float32 max, where it stays finite")
    adam_beta1: float = param(TF_ADAM["beta1"], low=0.0, high=1.0, high_open=True, doc="Adam's beta1")
    adam_beta2: float = param(TF_ADAM["beta2"], low=0.0, high=1.0, high_open=True, doc="Adam's beta2")
    adam_eps: float = param(TF_ADAM["eps"], low=0.0, high=1.0, low_open=True, doc="Adam's epsilon")
    sgd_step_fraction: float = param(0.5, low=0.0, high=1.0, low_open=True, high_open=True,
                                     doc="SGD step as a fraction of GD's stability edge (lr unset)")
    eval_every: int = param(500, low=1, doc="iterations between validation evaluations")
    snapshots: tuple[int, ...] = param((500, 10_000, 50_000), low=1, allow_empty=False,
                                       doc="iterations at which two held-out decodings are kept (Figure 6)")
    encoder_output_relu: bool = param(True, doc="the autoencoder's encoder ends with a ReLU (original code)")

    def check(self) -> None:
        if max(self.snapshots) > self.steps:
            raise ValueError(f"snapshots must not exceed steps={self.steps}, got {self.snapshots}")
        if self.k > self.n:
            raise ValueError(f"k must be at most n={self.n}, got {self.k}")
        if self.distribution == "code" and self.k != 3:
            raise ValueError(f"distribution 'code' needs k = 3 (its fixed slope patterns), got k={self.k}")

    def memory_bytes(self) -> int:
        # the fixed sets plus a minibatch and its activations (about as many bytes per point)
        points = self.replicas * (self.train_size + self.val_size + self.batch) * self.n
        return _BYTES_PER_POINT * points + 8 * self.replicas * self.n * max(self.n, 500)


__all__ = ["PWLConfig", "TF_ADAM"]
