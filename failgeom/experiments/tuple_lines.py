"""End-to-end vs decomposition on k-tuples of line images (paper Sec. 3.1, Figures 2 and 3).

A sample is a k-tuple of 28x28 line images (:mod:`failgeom.problems.lines`); its label is the
parity (product) of the k per-image labels "does the line rise?". The model
(:mod:`failgeom.experiments.tuple_lines_model`) is a shared CNN ``N1`` that scores each image, a
sigmoid junction and a small MLP ``N2`` on the k scores. End-to-end training sees only the tuple
label; decomposition adds a hinge loss on every image score against its own label. The paper
reports that decomposition learns quickly for every k while end-to-end stays at chance for
k >= 3.

As in the original code, the ``paper`` preset trains on a fixed set of 500,000 tuples per k read
in order (wrapping around) and evaluates on a fixed set of 2,000 tuples every 100 steps;
``data="fresh"`` draws new tuples every step instead. Each (k, approach, seed) is one cell: a
seed's networks, data and held-out set come from its own streams, so it runs alone (on any core)
with the numbers it would have among others. A cell checkpoints (parameters, Adam moments,
generator states, curves) and continues after an interruption with exactly the numbers of an
uninterrupted run. Whether end-to-end learns at k = 2 within 20,000 steps depends on the seed,
so the ``paper`` preset runs more seeds there (``focus_ks``, ``focus_replicas``); an end-to-end
seed whose held-out accuracy has stayed at or above :data:`LEARNED` for ``stop_after_learned``
steps stops early (its outcome is then known; the figure marks where it stopped).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np

from .. import nn
from ..nn.utils import tree_leaves
from ..problems.lines import TupleSet, sample_tuple_set, sample_tuples
from ..results import Result
from ..training import Checkpointer, copy_checked, fit, seed_streams
from . import register
from .base import Cell, Experiment, F32_MAX, ExperimentConfig, param
from .tuple_lines_model import (APPROACHES, CONV_INITS, IMAGE_LOSSES, TupleModel, loss_and_grads,
                                tuple_accuracy, tuple_losses)

DATA_MODES = ("fixed", "fresh")
#: a run "learned" when its final held-out tuple accuracy is at least this. With per-image
#: accuracy a, a perfect N2 gets P(even number of image errors) = (1 + (2a - 1)^k) / 2, which is
#: 0.83 for a = 0.95 and k = 4; 0.75 sits far above chance and below that ceiling
LEARNED = 0.75


# --------------------------------------------------------------------------------------------
# config and presets


@dataclass(frozen=True)
class TupleLinesConfig(ExperimentConfig):
    """Hyperparameters of Sec. 3.1 (defaults: the paper's Figure 3 and original code)."""

    ks: tuple[int, ...] = param((1, 2, 3, 4), low=1, doc="images per tuple, one panel each")
    approaches: tuple[str, ...] = param(("decomposition", "end_to_end"), choices=APPROACHES,
                                        doc="which approaches to train")
    batch: int = param(200, low=1, doc="tuples per minibatch")
    steps_end_to_end: int = param(20_000, low=1, doc="Adam steps of end-to-end training")
    steps_decomposition: int = param(2_500, low=1, doc="Adam steps of decomposition training")
    lr: float = param(1e-3, low=0.0, high=F32_MAX, low_open=True, doc="Adam learning rate; at most the float32 max, where it stays finite")
    beta1: float = param(nn.PAPER_ADAM["beta1"], low=0.0, high=1.0, high_open=True, doc="Adam beta1")
    beta2: float = param(nn.PAPER_ADAM["beta2"], low=0.0, high=1.0, high_open=True, doc="Adam beta2")
    eps: float = param(nn.PAPER_ADAM["eps"], low=0.0, high=1.0, low_open=True, doc="Adam epsilon")
    data: str = param("fixed", choices=DATA_MODES,
                      doc="fixed: a set of train_size tuples read in order, wrapping around (the "
                          "original); fresh: new tuples every step")
    train_size: int = param(500_000, low=1, doc="tuples of the fixed training set per k")
    eval_every: int = param(100, low=1, doc="steps between evaluations")
    eval_size: int = param(2_000, low=1, doc="fixed held-out tuples per k")
    eval_chunk: int = param(250, low=1, doc="held-out tuples per forward pass")
    checkpoint_every: int = param(500, low=1, doc="steps between checkpoints")
    conv_init: str = param("original", choices=CONV_INITS,
                           doc="conv init std: original 1/sqrt(28) and 1/4, or fan_in 1/sqrt(25 C)")
    image_loss: str = param("mean", choices=IMAGE_LOSSES,
                            doc="decomposition image hinge: mean over all B*k images (original) "
                                "or sum over a tuple's k images")
    replicas: int = param(1, low=1, doc="seeds per (k, approach), each its own cell")
    focus_ks: tuple[int, ...] = param((2,), low=1,
                                      doc="k whose end-to-end cells run focus_replicas seeds instead "
                                          "of replicas (Figure 3's seed-dependent case)")
    focus_replicas: int = param(8, low=1, doc="seeds of the end-to-end cells of focus_ks")
    stop_after_learned: int = param(2_000, low=0,
                                    doc="end-to-end: a seed stops once its held-out accuracy has "
                                        "been >= 0.75 at every evaluation for this many steps (0: never)")

    def check(self) -> None:
        for name in ("ks", "approaches"):
            if not getattr(self, name):
                raise ValueError(f"{name} must not be empty")
            if len(set(getattr(self, name))) != len(getattr(self, name)):
                raise ValueError(f"{name} must not repeat a value, got {getattr(self, name)}")
        if len(set(self.focus_ks)) != len(self.focus_ks):
            raise ValueError(f"focus_ks must not repeat a value, got {self.focus_ks}")
        if self.checkpoint_every % self.eval_every:
            raise ValueError(f"checkpoint_every ({self.checkpoint_every}) must be a multiple of "
                             f"eval_every ({self.eval_every})")

    def steps(self, approach: str) -> int:
        return self.steps_end_to_end if approach == "end_to_end" else self.steps_decomposition

    def replicas_of(self, k: int, approach: str) -> int:
        """Seeds of the (k, approach) cells."""
        focus = approach == "end_to_end" and k in self.focus_ks
        return self.focus_replicas if focus else self.replicas

    def memory_bytes(self) -> int:
        """Peak of one cell (one seed): training set parameters, held-out images, the step's arrays."""
        k = max(self.ks)
        train = self.train_size * k * 32 if self.data == "fixed" else 0
        held_out = self.eval_size * k * 784 * 4
        step = max(self.batch, self.eval_chunk) * k * 40_000  # features of N1 per image
        # the runner's list of cells (a key and its bookkeeping, about 1 KiB each), one per seed
        cells = len(self.approaches) * len(self.ks) * max(self.replicas, self.focus_replicas) * 1024
        return int(train + held_out + step + cells)


PRESETS = {
    # the original code: hours on 2 cores; every cell checkpoints every 500 steps
    "paper": TupleLinesConfig(),
    "quick": TupleLinesConfig(batch=16, lr=3e-3, steps_end_to_end=300, steps_decomposition=600,
                              data="fresh", eval_every=50, eval_size=256, eval_chunk=256,
                              checkpoint_every=100, replicas=2, focus_ks=(), stop_after_learned=0),
}

TINY = TupleLinesConfig(ks=(1, 2), batch=3, steps_end_to_end=4, steps_decomposition=2,
                        train_size=10, eval_every=2, eval_size=4, eval_chunk=4,
                        checkpoint_every=2, replicas=2, focus_ks=(2,), focus_replicas=3,
                        stop_after_learned=2)


# --------------------------------------------------------------------------------------------
# one cell: one k, one approach, one seed


def initial_params(model: TupleModel, seed: int, replicas=(0,), dtype=np.float32):
    """The initial networks of the seeds ``replicas`` (indices) for ``model.k``, one per replica
    axis entry; both approaches start from them."""
    node, replicas = seed_streams(seed, "tuple-lines", model.k, "init"), list(replicas)
    return model.init([node.child("n1").replica(r) for r in replicas], len(replicas), dtype,
                      rngs_n2=[node.child("n2").replica(r) for r in replicas])


def eval_set(config: TupleLinesConfig, k: int, seed: int, replica: int):
    """The fixed held-out tuples of k and one seed (shared by both approaches): images, image
    labels, labels, each with a replica axis of 1."""
    rng = seed_streams(seed, "tuple-lines", k, "eval").replica(replica)
    return sample_tuple_set([rng], config.eval_size, k).batch(0, config.eval_size, config.dtype)


class Training:
    """Training state of one (k, approach, seed): params, Adam, data and the step function,
    and the wall and CPU seconds of training over every resumed part (kept in the checkpoint)."""

    train_set: TupleSet | None

    def __init__(self, config: TupleLinesConfig, k: int, approach: str, seed: int, replica: int = 0):
        self.config, self.k, self.approach = config, k, approach
        self.model = TupleModel(k, conv_init=config.conv_init)
        self.params = initial_params(self.model, seed, (replica,), config.dtype)
        self.eval_images, self.eval_image_labels, self.eval_labels = eval_set(config, k, seed, replica)
        if config.data == "fixed":
            rng = seed_streams(seed, "tuple-lines", k, "train").replica(replica)
            self.train_set, self.data_rngs = sample_tuple_set([rng], config.train_size, k), None
        else:
            self.train_set = None
            self.data_rngs = [seed_streams(seed, "tuple-lines", k, approach, "data").replica(replica)]
        self.optimizer = nn.Adam(config.lr, config.beta1, config.beta2, config.eps)
        self.spent = {"wall_s": 0.0, "cpu_s": 0.0}
        self.clock = (time.perf_counter(), time.process_time())

    def time_spent(self) -> dict[str, float]:
        """Wall and CPU seconds of training so far, over every resumed part of the run."""
        wall, cpu = self.clock
        return {"wall_s": self.spent["wall_s"] + time.perf_counter() - wall,
                "cpu_s": self.spent["cpu_s"] + time.process_time() - cpu}

    def batch(self, i: int):
        """Minibatch of update ``i`` (1-based): rows ``(i-1) B .. i B - 1`` of the fixed set
        (wrapping around), or fresh tuples from the seed's own generator."""
        c = self.config
        if self.train_set is not None:
            return self.train_set.batch((i - 1) * c.batch, c.batch, c.dtype)
        return sample_tuples(cast(list, self.data_rngs)[0], (1, c.batch), self.k, c.dtype)  # set when train_set is None

    def step(self, i: int) -> np.ndarray:
        images, image_labels, labels = self.batch(i)
        value, grads = loss_and_grads(self.model, self.params, images, image_labels, labels,
                                      self.approach, self.config.image_loss)
        self.optimizer.step(self.params, grads)
        return value

    def evaluate(self, i: int = 0) -> dict[str, np.ndarray]:
        """Tuple accuracy, image-score accuracy and the loss on the held-out tuples."""
        c = self.config
        outs, scores = [], []
        for lo in range(0, c.eval_size, c.eval_chunk):  # chunks bound the convolution memory
            o, s, _ = self.model.forward(self.params, self.eval_images[:, lo:lo + c.eval_chunk])
            outs.append(o)
            scores.append(s)
        out, score = np.concatenate(outs, axis=1), np.concatenate(scores, axis=1)
        loss, _, _ = tuple_losses(out, score, self.eval_image_labels, self.eval_labels,
                                  self.approach, c.image_loss)
        return {
            "accuracy": tuple_accuracy(out, self.eval_labels.astype(out.dtype)),
            "image_accuracy": np.mean(score * self.eval_image_labels > 0, axis=(1, 2)),
            "eval_loss": loss,
        }

    # ---- checkpoint state: arrays + JSON-able metadata
    def state(self) -> tuple[dict, dict]:
        arrays = {f"param{i}": p for i, p in enumerate(tree_leaves(self.params))}
        opt = self.optimizer.state_dict()
        if opt["m"] is not None:
            arrays.update({f"adam_m{i}": m for i, m in enumerate(opt["m"])})
            arrays.update({f"adam_v{i}": v for i, v in enumerate(opt["v"])})
        rng_states = None if self.data_rngs is None else [g.bit_generator.state for g in self.data_rngs]
        return arrays, {"adam_t": opt["t"], "data_rngs": rng_states, "spent": self.time_spent()}

    def restore(self, arrays, meta) -> None:
        leaves = tree_leaves(self.params)
        for i, p in enumerate(leaves):
            copy_checked(p, arrays[f"param{i}"], f"param{i}")
        if meta["adam_t"] > 0:
            m = [np.empty_like(p) for p in leaves]
            v = [np.empty_like(p) for p in leaves]
            for i in range(len(leaves)):
                copy_checked(m[i], arrays[f"adam_m{i}"], f"adam_m{i}")
                copy_checked(v[i], arrays[f"adam_v{i}"], f"adam_v{i}")
            self.optimizer.load_state_dict({"t": int(meta["adam_t"]), "m": m, "v": v})
        if self.data_rngs is not None:
            for g, s in zip(self.data_rngs, meta["data_rngs"], strict=True):
                g.bit_generator.state = s
        self.spent = {n: float(meta["spent"][n]) for n in ("wall_s", "cpu_s")}
        self.clock = (time.perf_counter(), time.process_time())


def learned_since(steps, accuracy) -> int | None:
    """The first step of the trailing run of evaluations at or above :data:`LEARNED`, or None
    when the last evaluation is below it (NaN entries, after an early stop, are ignored)."""
    since = None
    for step, acc in zip(steps, accuracy):
        if np.isnan(acc):
            break
        since = (since if since is not None else step) if acc >= LEARNED else None
    return since


def stop_rule(config: TupleLinesConfig, approach: str):
    """The early-stopping rule of a cell (None: run every step): an end-to-end seed stops once
    its held-out accuracy has been at least LEARNED at every evaluation for the last
    ``stop_after_learned`` steps."""
    window = config.stop_after_learned
    if approach != "end_to_end" or window == 0:
        return None

    def until(curves) -> bool:
        since = learned_since(curves.steps, curves.array("accuracy")[:, 0])
        return since is not None and curves.steps[-1] - since >= window

    return until


#: the curves of a cell, in the order they are stored
CURVES = ("steps", "train_loss", "accuracy", "image_accuracy", "eval_loss")
#: a cell's checkpoint, inside the cell's checkpoint folder
CHECKPOINT_NAME = "state.npz"
#: what a cell's numbers do not depend on: which cells run, and how many seeds the others have
_NOT_IN_CELL = ("ks", "approaches", "replicas", "focus_ks", "focus_replicas")


def _cell_header(config: TupleLinesConfig, seed: int, key) -> dict:
    cfg = {n: v for n, v in config.to_dict().items() if n not in _NOT_IN_CELL}
    return {"experiment": "tuple-lines", "config": cfg, "seed": int(seed), "cell": list(key)}


def cells(config: TupleLinesConfig) -> list[tuple]:
    """The independent parts of a run: ``("k", k, approach, "replica", r)`` per seed r, approach
    by approach (the short decomposition cells first when both run)."""
    return [("k", k, a, "replica", r) for a in sorted(config.approaches) for k in config.ks
            for r in range(config.replicas_of(k, a))]


def run_cell(config: TupleLinesConfig, cell: Cell) -> dict:
    """Train one seed of one (k, approach). With ``cell.checkpoint_dir`` (a folder of this cell)
    it saves every ``checkpoint_every`` steps there and continues from the checkpoint found
    there (of the same config, seed and cell; another one is a CheckpointError).

    Returns ``{"curves": {...}, "stopped_early": bool, "time": {"wall_s", "cpu_s"}}``
    (JSON-able; curves end where the seed stopped; ``time`` is the training time summed over
    every resumed part).
    """
    config.validate()
    key = cell.key
    if key not in cells(config):
        raise ValueError(f"cell {key!r} is not a cell of this config (cells: {cells(config)})")
    _, k, approach, _, replica = key
    run = Training(config, k, approach, cell.seed, replica)
    checkpoint = None
    if cell.checkpoint_dir is not None:
        folder = Path(cell.checkpoint_dir)
        folder.mkdir(parents=True, exist_ok=True)
        checkpoint = Checkpointer(
            folder / CHECKPOINT_NAME, header=_cell_header(config, cell.seed, key),
            state=run.state, restore=run.restore, every=config.checkpoint_every,
            restart_hint="delete the checkpoint folder to start this cell over")
    steps = config.steps(approach)
    curves = fit(run.step, steps, eval_every=config.eval_every,
                 evaluate=run.evaluate, checkpoint=checkpoint, resume=True,
                 progress=cell.progress, lr=config.lr, until=stop_rule(config, approach),
                 desc=f"tuple-lines {cell.label}")
    saved = curves.to_dict()  # in one key order, whether resumed or not
    return {"curves": {n: saved[n] for n in CURVES}, "stopped_early": curves.steps[-1] < steps,
            "time": run.time_spent()}


def _stack(config: TupleLinesConfig, parts: list[dict], where: str) -> dict:
    """One (k, approach)'s seeds as curves ``(points, R)`` on the longest seed's steps; a seed
    that stopped early is NaN after its last evaluation."""
    grid = max((p["curves"]["steps"] for p in parts), key=len)
    for r, p in enumerate(parts):
        if p["curves"]["steps"] != grid[:len(p["curves"]["steps"])]:
            raise ValueError(f"tuple-lines {where}: seed {r} was evaluated at other steps than the others")
    stacked = {"steps": list(grid)}
    for name in CURVES[1:]:
        columns = []
        for p in parts:
            c = np.asarray(p["curves"][name], dtype=np.float64).reshape(-1)
            columns.append(np.concatenate([c, np.full(len(grid) - len(c), np.nan)]))
        stacked[name] = np.stack(columns, axis=1).tolist()
    return stacked


def chance_band_over_run(eval_size: int, evaluations: int, level: float = 0.05) -> float:
    """Half-width around 0.5 that a constant-accuracy-0.5 predictor's held-out accuracy leaves
    with probability at most ``level`` at any of ``evaluations`` evaluations (normal
    approximation to the binomial, Bonferroni over the evaluations)."""
    from scipy.stats import norm

    return float(norm.isf(level / (2 * max(evaluations, 1))) * 0.5 / np.sqrt(eval_size))


def learned_fraction(learned: int, total: int, level: float = 0.95) -> dict:
    """Seeds that learned out of ``total``, with the exact (Clopper-Pearson) interval; a seed
    that did not learn by its step limit is censored there and counts as not learned."""
    from scipy.stats import binomtest

    ci = binomtest(learned, total).proportion_ci(level, method="exact")
    return {"learned": learned, "seeds": total, "fraction": learned / total,
            "interval": [float(ci.low), float(ci.high)], "level": level}


def merge(config: TupleLinesConfig, outputs: dict) -> dict:
    """Each (k, approach)'s seeds joined under ``k=<k>/<approach>``: stacked curves, final and
    learned numbers per seed, the learned fraction and the chance bands; ``timing``: each seed's
    training seconds over every resumed part."""
    curves: dict = {}
    metrics: dict = {}
    timing: dict = {}
    for k in config.ks:
        for approach in config.approaches:
            name = f"k={k}/{approach}"
            parts = [outputs[("k", k, approach, "replica", r)] for r in range(config.replicas_of(k, approach))]
            c = curves[name] = _stack(config, parts, name)
            timing[name] = {t: [p["time"][t] for p in parts] for t in ("wall_s", "cpu_s")}
            acc = np.asarray(c["accuracy"])  # (points, R), NaN after an early stop
            last = [int(np.flatnonzero(~np.isnan(acc[:, r]))[-1]) for r in range(acc.shape[1])]
            final = np.array([acc[i, r] for r, i in enumerate(last)])
            steps_run = [int(c["steps"][i]) for i in last]
            since = [learned_since(c["steps"], acc[:, r]) for r in range(acc.shape[1])]
            evaluations = len(c["steps"]) - 1
            band_final = 3.0 * 0.5 / np.sqrt(config.eval_size)
            band_run = chance_band_over_run(config.eval_size, evaluations)
            after0 = np.abs(acc[1:] - 0.5)
            learned = final >= LEARNED
            metrics[name] = {
                "final_accuracy": final.tolist(),
                "final_accuracy_mean": float(final.mean()),
                "final_accuracy_std": float(final.std()),
                "max_accuracy_over_run": np.nanmax(acc[1:], axis=0).tolist(),
                "final_image_accuracy": [float(np.asarray(c["image_accuracy"])[i, r]) for r, i in enumerate(last)],
                "learned": learned.tolist(),
                "learned_fraction": learned_fraction(int(learned.sum()), len(final)),
                # first step of the final run of evaluations >= LEARNED; None: censored at its steps
                "learned_from_step": since,
                "stopped_early": [bool(p["stopped_early"]) for p in parts],
                "steps_run": steps_run,
                "at_chance": (np.abs(final - 0.5) <= band_final).tolist(),
                "chance_band_over_run": band_run,
                "at_chance_throughout": np.all((after0 <= band_run) | np.isnan(after0), axis=0).tolist(),
                "steps": config.steps(approach),
            }
    return {"metrics": metrics, "curves": curves, "timing": timing,
            "seeds": {"focus_ks": list(config.focus_ks), "focus_replicas": config.focus_replicas}}


# --------------------------------------------------------------------------------------------
# figures and summary


def figure(result: Result):
    """The paper's Figure 3: held-out tuple accuracy vs iterations, one panel per k;
    end-to-end red, decomposition blue. Two seeds or fewer: mean and min-max band; more: one
    line per seed, and a dot where a seed stopped early (learned, see ``stop_after_learned``)."""
    from .. import plotting

    ks = result.config["ks"]
    fig, axes = plotting.figure(1, len(ks), width=2.8, height=2.5, sharey=True)
    stopped_label = f"stopped: >= {LEARNED} for {result.config.get('stop_after_learned')} steps"
    for ax, k in zip(axes[0], ks):
        for approach, color, label in (("end_to_end", "red", "end-to-end"),
                                       ("decomposition", "blue", "decomposition")):
            name = f"k={k}/{approach}"
            c = result.curves.get(name)
            if c is None:
                continue
            acc = np.asarray(c["accuracy"], dtype=float)
            n = acc.shape[1]
            if n <= 2:
                plotting.band(ax, c["steps"], acc, plotting.COLORS[color], label=label)
            else:
                for r in range(n):
                    ax.plot(c["steps"], acc[:, r], color=plotting.COLORS[color], lw=0.8, alpha=0.7,
                            label=f"{label} ({n} seeds)" if r == 0 else None)
            m = result.metrics.get(name, {})
            for r, (stopped, at) in enumerate(zip(m.get("stopped_early", []), m.get("steps_run", []))):
                if stopped:
                    ax.plot([at], [m["final_accuracy"][r]], "o", ms=3.5, color=plotting.COLORS[color],
                            label=stopped_label)
        plotting.accuracy_axes(ax)
        ax.set_title(f"k = {k}")
    axes[0, 0].set_ylabel(f"tuple accuracy ({result.config['eval_size']} held-out)")
    handles: dict = {}  # every approach drawn in any panel (a part run alone leaves a panel without one)
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    axes[0, 0].legend(list(handles.values()), list(handles), loc="lower right")
    n = result.config.get("replicas", 1)
    fig.suptitle(f"k-tuples of lines: end-to-end vs decomposition ({n} seed{'s' if n != 1 else ''} per "
                 f"cell{'; band: min-max' if n == 2 else ''})", y=1.03)
    return fig


def examples_figure(seed: int = 0, per_label: int = 6):
    """The paper's Figure 2: example line images, one row per label (+1: theta < pi/2)."""
    from .. import plotting
    from ..problems.lines import sample_line_images

    rng = np.random.default_rng(seed_streams(seed, "tuple-lines", "examples"))
    images, labels = sample_line_images(rng, 16 * per_label)
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
        texts = []
        for a, name in (("end_to_end", "e2e"), ("decomposition", "dec")):
            m = result.metrics.get(f"k={k}/{a}")
            if m is not None:
                texts.append(f"{name} {m['final_accuracy_mean']:.3f}±{m['final_accuracy_std']:.3f}")
        parts.append(f"k={k}: " + ", ".join(texts))
    return "; ".join(parts)


EXPERIMENT = register(Experiment(
    name="tuple-lines",
    description="k-tuples of line images: decomposition learns every k, end-to-end fails for k >= 3 "
                "(Sec. 3.1, Fig. 3)",
    presets=PRESETS, figure=figure, summary=summary, family=2, cells=cells, run_cell=run_cell,
    merge=merge, tiny=TINY, paper_ref="Sec. 3.1, Figures 2 and 3",
))
