"""End-to-end vs decomposition on k-tuples of line images (paper Sec. 3.1, Figures 2 and 3).

A sample is a k-tuple of 28x28 line images (:mod:`failgeom.problems.lines`); its label is the
parity (product) of the k per-image labels "does the line rise?". The network is a shared
LeNet-like CNN ``N1`` that scores each image, a sigmoid junction, and a small MLP ``N2`` on the k
sigmoid scores. End-to-end training sees only the tuple label (hinge loss on N2's output);
decomposition adds a hinge loss on every image score against its own label. The paper reports
that decomposition learns quickly for every k while end-to-end stays at chance for k >= 3.

Runs checkpoint (parameters, Adam moments, generator states, curves) and continue with
``failgeom run tuple-lines --resume``; a resumed run gives exactly the numbers of an
uninterrupted one.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import nn
from ..nn._util import as_dtype, check_positive_int, tree_leaves
from ..problems.lines import SIZE, sample_tuples
from ..results import Result, atomic_write_bytes
from ..training import NonFiniteLossError, null_progress, seed_streams
from . import register
from .base import Experiment, ExperimentConfig

APPROACHES = ("end_to_end", "decomposition")
#: seed-stream keys of the two approaches (data streams), so each has its own minibatches
_APPROACH_KEY = {"end_to_end": 0, "decomposition": 1}
CHECKPOINT_NAME = "state.npz"
CHECKPOINT_VERSION = 1
#: a run "learned" when its final held-out tuple accuracy is at least this. With per-image
#: accuracy a, a perfect N2 gets P(even number of image errors) = (1 + (2a - 1)^k) / 2, which is
#: 0.83 for a = 0.95 and k = 4; 0.75 sits far above chance and below that ceiling
LEARNED = 0.75


# --------------------------------------------------------------------------------------------
# the model: N1 shared over the k images, sigmoid junction, N2


def n1_network(channels: int = 16, kernel: int = 5, hidden: tuple[int, int] = (50, 100)) -> nn.Sequential:
    """The per-image scorer N1 of Sec. 3.1: conv 5x5x16 'same' + bias, 2x2 max-pool, again,
    Dense(784 -> 50) ReLU, Dense(50 -> 100) ReLU, Dense(100 -> 1). No ReLU after the convs, as
    in the original code."""
    return nn.Sequential([
        nn.Conv2D(channels, kernel), nn.MaxPool2D(),
        nn.Conv2D(channels, kernel), nn.MaxPool2D(),
        nn.Flatten(), nn.Dense(hidden[0]), nn.ReLU(), nn.Dense(hidden[1]), nn.ReLU(), nn.Dense(1),
    ])


def n2_network(hidden: int = 100) -> nn.Sequential:
    """The tuple head N2 of Sec. 3.1: sigmoid of the k scores, Dense(k -> 100) ReLU, Dense(1)."""
    return nn.Sequential([nn.Sigmoid(), nn.Dense(hidden), nn.ReLU(), nn.Dense(1)])


class TupleModel:
    """``N2(sigmoid(N1(x_1)), ..., sigmoid(N1(x_k)))`` over a replica axis.

    Params are ``[params_N1, params_N2]``. Images ``(R, B, k, 28, 28)`` are scored by N1 as one
    batch ``(R, B*k, 28, 28, 1)``, so N1's weights are shared over the k positions and its
    gradient sums the k contributions.
    """

    def __init__(self, k: int, n1: nn.Sequential | None = None, n2: nn.Sequential | None = None):
        self.k = check_positive_int(k, "k")
        self.n1 = n1 if n1 is not None else n1_network()
        self.n2 = n2 if n2 is not None else n2_network()

    def init(self, rngs, R: int, dtype=np.float32, image_size: int = SIZE):
        """``rngs``: one Generator per replica; N1 and N2 get independent child streams."""
        children = [g.spawn(2) for g in rngs]
        p1, out = self.n1.init([c[0] for c in children], R, (image_size, image_size, 1), dtype)
        if out != (1,):
            raise ValueError(f"N1 must output one score per image, got shape {out}")
        p2, _ = self.n2.init([c[1] for c in children], R, (self.k,), dtype)
        return [p1, p2]

    def forward(self, params, images):
        """Returns ``(out (R, B, 1), scores (R, B, k), cache)``."""
        R, B, k = images.shape[:3]
        if k != self.k:
            raise ValueError(f"images must hold k={self.k} images per tuple, got {k}")
        flat = images.reshape((R, B * k) + images.shape[3:] + (1,))
        scores, c1 = self.n1.forward(params[0], flat)
        scores = scores.reshape(R, B, k)
        out, c2 = self.n2.forward(params[1], scores)
        return out, scores, (c1, c2)

    def backward(self, params, cache, dout, dscores=None, need_n1=True):
        """Gradients ``[grads_N1, grads_N2]`` from ``d loss / d out`` and an optional direct
        ``d loss / d scores`` (the decomposition's per-image losses)."""
        c1, c2 = cache
        ds, g2 = self.n2.backward(params[1], c2, dout)
        if dscores is not None:
            ds = ds + dscores
        if not need_n1:
            return ds, [None, g2]
        R, B, k = ds.shape
        _, g1 = self.n1.backward(params[0], c1, ds.reshape(R, B * k, 1), need_dx=False)
        return ds, [g1, g2]


def initial_params(model: TupleModel, seed: int, R: int, dtype=np.float32):
    """The R initial networks for ``model.k`` and ``seed`` (shared by both approaches and by
    the SNR experiment, so that all of them start from the same weights)."""
    init_ss = seed_streams(seed, model.k).spawn(2)[0]
    return model.init([np.random.default_rng(s) for s in init_ss.spawn(R)], R, dtype)


def tuple_losses(out, scores, image_labels, labels, approach: str, reduction: str = "mean"):
    """The training loss of an approach and its gradients (Sec. 3.1).

    End-to-end: ``hinge(out, y)``. Decomposition: that plus ``sum_i hinge(score_i, y_i)`` over
    the k images of the tuple. Labels are ±1 arrays ``(R, B)`` / ``(R, B, k)`` (or without R).

    Returns ``(value, d value / d out, d value / d scores or None)``.
    """
    if approach not in APPROACHES:
        raise ValueError(f"approach must be one of {APPROACHES}, got {approach!r}")
    dtype = out.dtype
    y = np.asarray(labels, dtype=dtype)[..., None]
    value, dout = nn.losses.hinge(out, y, reduction=reduction)
    if approach == "end_to_end":
        return value, dout, None
    v_img, dscores = nn.losses.hinge(scores, np.asarray(image_labels, dtype=dtype), reduction=reduction)
    return value + v_img, dout, dscores


def loss_and_grads(model: TupleModel, params, images, image_labels, labels, approach: str):
    """Mean training loss ``(R,)`` and its gradient tree for one minibatch."""
    out, scores, cache = model.forward(params, images)
    value, dout, dscores = tuple_losses(out, scores, image_labels, labels, approach)
    _, grads = model.backward(params, cache, dout, dscores)
    return value, grads


def tuple_accuracy(out, labels) -> np.ndarray:
    """Per-replica zero-one accuracy of ``sign(out)`` against the tuple labels."""
    return np.mean(out[..., 0] * labels > 0, axis=1)


# --------------------------------------------------------------------------------------------
# config and presets


@dataclass(frozen=True)
class TupleLinesConfig(ExperimentConfig):
    """Hyperparameters of Sec. 3.1 (defaults: the paper's Figure 3 and original code)."""

    ks: tuple[int, ...] = (1, 2, 3, 4)
    batch: int = 200
    steps_end_to_end: int = 20_000
    steps_decomposition: int = 2_500
    lr: float = 1e-3
    beta1: float = nn.PAPER_ADAM["beta1"]
    beta2: float = nn.PAPER_ADAM["beta2"]
    eps: float = nn.PAPER_ADAM["eps"]
    eval_every: int = 100
    eval_size: int = 1000
    eval_chunk: int = 100
    checkpoint_every: int = 500
    replicas: int = 3

    positive = ("replicas", "ks", "batch", "steps_end_to_end", "steps_decomposition", "lr", "eps",
                "eval_every", "eval_size", "eval_chunk", "checkpoint_every")

    def check(self) -> None:
        for name in ("beta1", "beta2"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must lie in [0, 1), got {getattr(self, name)!r}")
        if len(set(self.ks)) != len(self.ks):
            raise ValueError(f"ks must not repeat a value, got {self.ks}")
        if self.checkpoint_every % self.eval_every:
            raise ValueError(f"checkpoint_every ({self.checkpoint_every}) must be a multiple of "
                             f"eval_every ({self.eval_every})")

    def steps(self, approach: str) -> int:
        return self.steps_end_to_end if approach == "end_to_end" else self.steps_decomposition


PRESETS = {
    # long (hours on 2 cores): shows progress, checkpoints every 500 steps, --resume continues
    "paper": TupleLinesConfig(),
    # minutes on 2 cores: batch 16 and 500 steps per run, so lr 3e-3 instead of the paper's 1e-3
    # (at 1e-3 and batch 16, N2 has not found the k = 4 parity after 550 steps; at 3e-3 it has by
    # ~400); decomposition still learns every k and end-to-end stays at chance for k >= 3
    "quick": TupleLinesConfig(batch=16, lr=3e-3, steps_end_to_end=500, steps_decomposition=500,
                              eval_every=50, eval_size=256, eval_chunk=128, checkpoint_every=250,
                              replicas=2),
}


# --------------------------------------------------------------------------------------------
# one phase: one k, one approach, R replicas


class _Phase:
    """Training state of one (k, approach) pair: params, Adam, generators, curves so far."""

    def __init__(self, config: TupleLinesConfig, k: int, approach: str, seed: int):
        R, dtype = config.replicas, as_dtype(config.dtype)
        self.config, self.k, self.approach = config, k, approach
        self.model = TupleModel(k)
        # init and held-out set depend on k only: both approaches start from the same networks
        # and are scored on the same tuples
        self.params = initial_params(self.model, seed, R, dtype)
        eval_ss = seed_streams(seed, k).spawn(2)[1]
        self.eval_images, self.eval_image_labels, self.eval_labels = sample_tuples(
            np.random.default_rng(eval_ss), (R, config.eval_size), k, dtype)
        self.data_rng = np.random.default_rng(seed_streams(seed, k, 1 + _APPROACH_KEY[approach]))
        self.optimizer = nn.Adam(config.lr, config.beta1, config.beta2, config.eps)
        self.step = 0
        self.curves: dict[str, list] = {"steps": [], "accuracy": [], "image_accuracy": [],
                                        "eval_loss": [], "train_loss": []}
        self.elapsed = 0.0

    def evaluate(self) -> dict[str, np.ndarray]:
        """Tuple accuracy, image-score accuracy and the loss on the held-out tuples."""
        c, dtype = self.config, as_dtype(self.config.dtype)
        outs, scores = [], []
        for lo in range(0, c.eval_size, c.eval_chunk):  # chunks bound the im2col memory
            o, s, _ = self.model.forward(self.params, self.eval_images[:, lo:lo + c.eval_chunk])
            outs.append(o)
            scores.append(s)
        out, score = np.concatenate(outs, axis=1), np.concatenate(scores, axis=1)
        loss, _, _ = tuple_losses(out, score, self.eval_image_labels, self.eval_labels, self.approach)
        return {
            "accuracy": tuple_accuracy(out, self.eval_labels.astype(dtype)),
            "image_accuracy": np.mean(score * self.eval_image_labels > 0, axis=(1, 2)),
            "eval_loss": loss,
        }

    def record(self, train_loss) -> None:
        self.curves["steps"].append(self.step)
        self.curves["train_loss"].append(np.asarray(train_loss, dtype=np.float64).tolist())
        for name, value in self.evaluate().items():
            self.curves[name].append(np.asarray(value, dtype=np.float64).tolist())

    def train_step(self) -> np.ndarray:
        images, image_labels, labels = sample_tuples(
            self.data_rng, (self.config.replicas, self.config.batch), self.k, self.config.dtype)
        value, grads = loss_and_grads(self.model, self.params, images, image_labels, labels, self.approach)
        if not np.all(np.isfinite(value)):
            bad = np.flatnonzero(~np.isfinite(value)).tolist()
            raise NonFiniteLossError(self.step + 1, self.config.lr, bad)
        self.optimizer.step(self.params, grads)
        self.step += 1
        return value

    # ---- checkpoint state: arrays + JSON-able metadata
    def state(self) -> tuple[dict, dict]:
        arrays = {f"param{i}": p for i, p in enumerate(tree_leaves(self.params))}
        opt = self.optimizer.state_dict()
        if opt["m"] is not None:
            arrays.update({f"adam_m{i}": m for i, m in enumerate(opt["m"])})
            arrays.update({f"adam_v{i}": v for i, v in enumerate(opt["v"])})
        meta = {"k": self.k, "approach": self.approach, "step": self.step, "adam_t": opt["t"],
                "data_rng": self.data_rng.bit_generator.state, "curves": self.curves,
                "elapsed": self.elapsed}
        return arrays, meta

    def load(self, arrays, meta) -> None:
        leaves = tree_leaves(self.params)
        for i, p in enumerate(leaves):
            np.copyto(p, arrays[f"param{i}"])
        if meta["adam_t"] > 0:
            self.optimizer.load_state_dict({
                "t": meta["adam_t"],
                "m": [np.array(arrays[f"adam_m{i}"]) for i in range(len(leaves))],
                "v": [np.array(arrays[f"adam_v{i}"]) for i in range(len(leaves))],
            })
        self.data_rng.bit_generator.state = meta["data_rng"]
        self.step, self.curves, self.elapsed = int(meta["step"]), meta["curves"], float(meta["elapsed"])


def _phase_key(k: int, approach: str) -> str:
    return f"k={k}/{approach}"


def _save_checkpoint(path: Path, header: dict, done: dict, phase: _Phase | None) -> None:
    """Everything a resumed run needs, as one ``.npz`` written atomically."""
    arrays, meta = phase.state() if phase is not None else ({}, None)
    payload = dict(header, done=done, phase=meta)
    buf = io.BytesIO()
    np.savez(buf, meta=np.array(json.dumps(payload)), **arrays)
    atomic_write_bytes(path, buf.getvalue())


def _load_checkpoint(path: Path):
    with np.load(io.BytesIO(path.read_bytes()), allow_pickle=False) as data:
        payload = json.loads(str(data["meta"]))
        arrays = {name: data[name] for name in data.files if name != "meta"}
    return payload, arrays


# --------------------------------------------------------------------------------------------
# run


def run(config: TupleLinesConfig, seed: int = 0, progress=null_progress, preset: str = "custom",
        checkpoint_dir: Path | str | None = None, resume: bool = False) -> Result:
    """Train both approaches for every k; checkpoint into ``checkpoint_dir`` when given.

    With ``resume=True`` a checkpoint left in ``checkpoint_dir`` by an interrupted run of the
    same config and seed is continued (finished phases are not rerun); a checkpoint of another
    config or seed is an error. Without a checkpoint the run starts from the beginning.
    """
    config.validate()
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs a checkpoint_dir")
    path = Path(checkpoint_dir) / CHECKPOINT_NAME if checkpoint_dir is not None else None
    header = {"version": CHECKPOINT_VERSION, "config": config.to_dict(), "seed": int(seed)}
    done: dict[str, dict] = {}
    pending = None
    if resume and path.exists():
        payload, arrays = _load_checkpoint(path)
        if payload.get("version") != CHECKPOINT_VERSION:
            raise ValueError(f"checkpoint {path} has version {payload.get('version')!r}, "
                             f"expected {CHECKPOINT_VERSION}")
        saved = {key: payload[key] for key in ("config", "seed")}
        wanted = {"config": config.to_dict(), "seed": int(seed)}
        if json.loads(json.dumps(saved)) != json.loads(json.dumps(wanted)):  # tuples vs lists
            raise ValueError(f"checkpoint {path} belongs to another config or seed "
                             f"(seed {payload.get('seed')}); run without --resume to start over")
        done = payload["done"]
        pending = (payload["phase"], arrays) if payload["phase"] is not None else None
    elif path is not None:  # a fresh start replaces any older checkpoint there
        _save_checkpoint(path, header, done, None)

    for k in config.ks:
        for approach in ("decomposition", "end_to_end"):
            key = _phase_key(k, approach)
            if key in done:
                continue
            phase = _Phase(config, k, approach, seed)
            if pending is not None and _phase_key(pending[0]["k"], pending[0]["approach"]) == key:
                phase.load(pending[1], pending[0])
                pending = None
            _train_phase(phase, progress, path, header, done)
            done[key] = {"curves": phase.curves, "elapsed": phase.elapsed}
            if path is not None:
                _save_checkpoint(path, header, done, None)
    return _result(config, seed, preset, done)


def _train_phase(phase: _Phase, progress, path, header, done) -> None:
    c = phase.config
    total = c.steps(phase.approach)
    start = time.perf_counter() - phase.elapsed
    if phase.step == 0:
        phase.record(np.full(c.replicas, np.nan))
    bar = progress(total, f"tuple-lines k={phase.k} {phase.approach.replace('_', '-')}")
    if phase.step:
        bar.update(phase.step)
    running, count = 0.0, 0
    try:
        while phase.step < total:
            running = running + phase.train_step()
            count += 1
            if phase.step % c.eval_every == 0 or phase.step == total:
                phase.record(running / count)
                running, count = 0.0, 0
                if path is not None and phase.step % c.checkpoint_every == 0 and phase.step < total:
                    phase.elapsed = time.perf_counter() - start
                    _save_checkpoint(path, header, done, phase)
            bar.update(1)
    finally:
        bar.close()
    phase.elapsed = time.perf_counter() - start


def _result(config: TupleLinesConfig, seed: int, preset: str, done: dict) -> Result:
    curves, metrics, timing = {}, {}, {}
    for k in config.ks:
        for approach in APPROACHES:
            key = _phase_key(k, approach)
            c = done[key]["curves"]
            curves[key] = c
            timing[key] = done[key]["elapsed"]
            acc = np.asarray(c["accuracy"], dtype=np.float64)  # (points, R)
            final = acc[-1]
            # "learned": held-out accuracy of at least LEARNED; "chance": within 3 binomial std of 0.5
            chance_band = 3.0 * 0.5 / np.sqrt(config.eval_size)
            metrics[key] = {
                "final_accuracy": final.tolist(),
                "final_accuracy_mean": float(final.mean()),
                "final_accuracy_std": float(final.std()),
                "max_accuracy_over_run": acc[1:].max(axis=0).tolist(),
                "final_image_accuracy": np.asarray(c["image_accuracy"][-1]).tolist(),
                "learned": (final >= LEARNED).tolist(),
                "at_chance": (np.abs(final - 0.5) <= chance_band).tolist(),
                "steps": int(c["steps"][-1]),
            }
    timing["total_s"] = float(sum(timing.values()))
    return Result(experiment="tuple-lines", preset=preset, config=config.to_dict(),
                  seeds={"seed": seed, "replicas": config.replicas}, metrics=metrics,
                  curves=curves, timing=timing)


# --------------------------------------------------------------------------------------------
# figures and summary


def figure(result: Result):
    """The paper's Figure 3: held-out tuple accuracy vs iterations, one panel per k;
    end-to-end red, decomposition blue; band = min-max over seeds."""
    from .. import plotting

    ks = result.config["ks"]
    fig, axes = plotting.figure(1, len(ks), width=2.8, height=2.5, sharey=True)
    for ax, k in zip(axes[0], ks):
        for approach, color, label in (("end_to_end", "red", "end-to-end"),
                                       ("decomposition", "blue", "decomposition")):
            c = result.curves[_phase_key(k, approach)]
            plotting.band(ax, c["steps"], np.asarray(c["accuracy"]), plotting.COLORS[color], label=label)
        ax.axhline(0.5, color=plotting.COLORS["grey"], ls="--", lw=0.8)
        ax.set_title(f"k = {k}")
        ax.set_xlabel("iterations")
        ax.set_ylim(0.35, 1.02)
    axes[0, 0].set_ylabel(f"tuple accuracy ({result.config['eval_size']} held-out)")
    axes[0, 0].legend(loc="lower right")
    fig.suptitle(f"k-tuples of lines: end-to-end vs decomposition "
                 f"({result.seeds['replicas']} seeds; band: min-max)", y=1.03)
    return fig


def examples_figure(seed: int = 0, per_label: int = 6):
    """The paper's Figure 2: example line images, one row per label (+1: theta < pi/2)."""
    from .. import plotting
    from ..problems.lines import sample_line_images

    images, labels = sample_line_images(np.random.default_rng(seed_streams(seed, 2)), 16 * per_label)
    fig, axes = plotting.figure(2, per_label, width=1.1, height=1.2)
    for row, label in enumerate((1, -1)):
        picked = images[labels == label][:per_label]
        for ax, img in zip(axes[row], picked):
            ax.imshow(img, cmap="gray_r", origin="lower", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            ax.spines[["top", "right"]].set_visible(True)
        axes[row, 0].set_ylabel(f"y = {label:+d}")
    fig.suptitle("Line images (28x28) per label: +1 if the angle is below pi/2", y=1.02)
    return fig


def summary(result: Result) -> str:
    """Final held-out tuple accuracy per k and approach, mean ± std over seeds."""
    parts = []
    for k in result.config["ks"]:
        m_e, m_d = (result.metrics[_phase_key(k, a)] for a in APPROACHES)
        parts.append(f"k={k}: e2e {m_e['final_accuracy_mean']:.3f}±{m_e['final_accuracy_std']:.3f}, "
                     f"dec {m_d['final_accuracy_mean']:.3f}±{m_d['final_accuracy_std']:.3f}")
    return "; ".join(parts)


EXPERIMENT = register(Experiment(
    name="tuple-lines",
    description="k-tuples of line images: decomposition learns every k, end-to-end fails for k >= 3 "
                "(Sec. 3.1, Fig. 3)",
    presets=PRESETS, run=run, figure=figure, summary=summary, family=2,
    paper_ref="Sec. 3.1, Figures 2 and 3", resumable=True,
))
