"""One table row per PWL learner: what the paper calls it, the original code's Adam rate and
data, and its presets (``paper`` follows the original ``PWL_fail1.py``; ``quick`` runs in
seconds; ``tiny`` in about one second, for tests)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .config import PWLConfig


@dataclass(frozen=True)
class LearnerSpec:
    """A learner of Sec. 4.1 as registered: ``pwl-<name>``."""

    name: str
    title: str
    description: str
    #: the original code's Adam rate
    adam_lr: float
    #: what ``distribution="code"`` means for it: "code" (4.1.1-4.1.3) or "continuous" (4.1.4)
    code_data: str
    presets: dict[str, PWLConfig]
    tiny: PWLConfig

    @property
    def experiment(self) -> str:
        return f"pwl-{self.name}"

    @property
    def paper_ref(self) -> str:
        return f"Sec. 4.1, Figure 6 ({self.title})"


def _tiny(**changes) -> PWLConfig:
    base: dict[str, Any] = dict(replicas=2, n=24, steps=60, batch=10, eval_every=20, snapshots=(10, 30, 60), train_size=300,
                val_size=20)
    base.update(changes)
    return PWLConfig(**base)


_QUICK: dict[str, Any] = dict(replicas=3, steps=10_000, snapshots=(100, 2_000, 10_000))
# the original command of 4.1.3: batch 10, 500 iterations, Adam lr 0.99
_PRECOND: dict[str, Any] = dict(steps=500, batch=10, eval_every=10, snapshots=(20, 100, 500))

SPECS: dict[str, LearnerSpec] = {spec.name: spec for spec in (
    LearnerSpec(
        name="fc", title="fully connected (4.1.1)", adam_lr=1e-4, code_data="code",
        description="PWL curves, one linear n x n layer: slow, misses the kinks (Sec. 4.1.1, Fig. 6)",
        presets={"paper": PWLConfig(), "quick": PWLConfig(**_QUICK)}, tiny=_tiny()),
    LearnerSpec(
        name="conv", title="convolution (4.1.2)", adam_lr=0.05, code_data="code",
        description="PWL curves, 3-tap convolution: better but slow, cond Theta(n^3) (Sec. 4.1.2, Fig. 6)",
        presets={"paper": PWLConfig(), "quick": PWLConfig(**_QUICK)}, tiny=_tiny()),
    LearnerSpec(
        name="conv-precond", title="convolution + conditioning (4.1.3)", adam_lr=0.99, code_data="code",
        description="PWL curves, convolution + C^{-1/2} conditioning: filter found fast (Sec. 4.1.3, Fig. 6)",
        presets={"paper": PWLConfig(**_PRECOND), "quick": PWLConfig(replicas=3, **_PRECOND)}, tiny=_tiny()),
    LearnerSpec(
        name="autoencoder", title="autoencoder (4.1.4)", adam_lr=1e-3, code_data="continuous",
        description="PWL curves, deep autoencoder: misses the kinks (Sec. 4.1.4, Fig. 6)",
        presets={"paper": PWLConfig(steps=10_000, snapshots=(500, 2_000, 10_000)),
                 "quick": PWLConfig(replicas=2, steps=1_500, eval_every=250, train_size=5_000,
                                    snapshots=(100, 500, 1_500))},
        tiny=_tiny(train_size=100, steps=30, eval_every=10, snapshots=(10, 20, 30))),
)}

#: the learners in the paper's order
LEARNERS = tuple(SPECS)

__all__ = ["LEARNERS", "LearnerSpec", "SPECS"]
