"""The tuple-lines model of paper Sec. 3.1: a shared per-image CNN N1, a sigmoid junction, the
tuple head N2, and the two training losses (end-to-end and decomposition).

Used by the training experiment (:mod:`failgeom.experiments.tuple_lines`) and the gradient SNR
experiment (:mod:`failgeom.experiments.tuple_lines_snr`).
"""

from __future__ import annotations

import math

import numpy as np

from .. import nn
from ..validation import positive_int
from ..problems.lines import SIZE

APPROACHES = ("end_to_end", "decomposition")
#: convolution initialisations: the original code's std ``1/sqrt(c)`` with ``c`` the last axis of
#: the layer's input tensor (28 for the first conv, which reads (B, 28, 28); 16 for the second),
#: or the usual ``1/sqrt(fan_in)`` (0.2 and 0.05)
CONV_INITS = ("original", "fan_in")
#: the decomposition's per-image term: the mean over all B*k images (the original code), or the
#: sum over the k images of a tuple averaged over the batch
IMAGE_LOSSES = ("mean", "sum")
#: index of the score layer ``Dense(100 -> 1)``, N1's last layer (its cache is its input)
SCORE_LAYER = 7


def conv_stds(conv_init: str, image_size: int = SIZE, channels: int = 16) -> tuple[float | None, float | None]:
    """Initial std of N1's two convolution kernels (``None``: the layer's ``1/sqrt(fan_in)``)."""
    if conv_init not in CONV_INITS:
        raise ValueError(f"conv_init must be one of {CONV_INITS}, got {conv_init!r}")
    if conv_init == "fan_in":
        return None, None
    return 1.0 / math.sqrt(image_size), 1.0 / math.sqrt(channels)


def n1_network(channels: int = 16, kernel: int = 5, hidden: tuple[int, int] = (50, 100),
               conv_init: str = "original", image_size: int = SIZE) -> nn.Sequential:
    """The per-image scorer N1 of Sec. 3.1.

    Conv 5x5x16 'same' + bias, 2x2 max-pool, again (each a fused :class:`~failgeom.nn.ConvPool2D`),
    Dense(784 -> 50) ReLU, Dense(50 -> 100) ReLU, Dense(100 -> 1). No ReLU after the convs, as in
    the original code. ``conv_init`` picks the kernels' initial std (:data:`CONV_INITS`).
    """
    std1, std2 = conv_stds(conv_init, image_size, channels)
    return nn.Sequential([
        nn.ConvPool2D(channels, kernel, init_std=std1),
        nn.ConvPool2D(channels, kernel, init_std=std2),
        nn.Flatten(), nn.Dense(hidden[0]), nn.ReLU(), nn.Dense(hidden[1]), nn.ReLU(), nn.Dense(1),
    ])


def n2_network(hidden: int = 100) -> nn.Sequential:
    """The tuple head N2 of Sec. 3.1: sigmoid of the k scores, Dense(k -> 100) ReLU, Dense(1)."""
    return nn.Sequential([nn.Sigmoid(), nn.Dense(hidden), nn.ReLU(), nn.Dense(1)])


def end_to_end_score_grads(p2, scores, labels, chunk: int = 4096, dtype=np.float32) -> np.ndarray:
    """N2's forward and backward for the end-to-end loss, fused and in cache-sized chunks:
    ``d hinge(N2(sigmoid(s)), y) / d s`` for the k image scores ``s`` of every tuple, ``(R, T, k)``
    (what ``n2_network().forward`` and ``.backward`` give, with the tuple hinge summed over T).

    ``p2`` are N2's parameters ``[{}, {"W": (R, k, H), "b": (R, H)}, {}, {"W": (R, H, 1),
    "b": (R, 1)}]``; ``labels`` ``(T,)`` or ``(R, T)`` in {-1, +1}. The arithmetic runs in
    ``dtype`` (float32 by default, twice as fast): a rounding error of relative size ``e`` in
    every tuple's gradient, even if it were systematic, moves the signal by at most about
    ``2 e sqrt(SNR) noise``, i.e. the SNR by ``2e-7 sqrt(SNR)`` (below 1e-10 at SNR 1e-7), and the
    block sums accumulate in float64.
    """
    W1, b1 = p2[1]["W"].astype(dtype), p2[1]["b"].astype(dtype)
    W2, b2 = p2[3]["W"][..., 0].astype(dtype), p2[3]["b"][:, 0].astype(dtype)
    R, T, k = scores.shape
    y = np.broadcast_to(np.asarray(labels, dtype=dtype), (R, T))
    ds = np.empty((R, T, k), dtype=dtype)
    one = dtype(1.0) if isinstance(dtype, type) else np.dtype(dtype).type(1.0)
    for r in range(R):
        for lo in range(0, T, chunk):
            sig = one / (one + np.exp(-scores[r, lo:lo + chunk].astype(dtype)))  # (t, k)
            pre = sig @ W1[r]
            pre += b1[r]
            mask = pre > 0
            np.maximum(pre, 0, out=pre)
            out = pre @ W2[r] + b2[r]  # (t,)
            yy = y[r, lo:lo + chunk]
            dout = np.where(yy * out < one, -yy, 0).astype(dtype)
            np.multiply(mask, W2[r], out=pre)  # d out / d pre
            dsig = pre @ W1[r].T  # (t, k)
            dsig *= dout[:, None]
            dsig *= sig * (one - sig)
            ds[r, lo:lo + chunk] = dsig
    return ds


class TupleModel:
    """``N2(sigmoid(N1(x_1)), ..., sigmoid(N1(x_k)))`` over a replica axis.

    Params are ``[params_N1, params_N2]``. Images ``(R, B, k, 28, 28)`` are scored by N1 as one
    batch ``(R, B*k, 28, 28, 1)``, so N1's weights are shared over the k positions and its
    gradient sums the k contributions.
    """

    def __init__(self, k: int, n1: nn.Sequential | None = None, n2: nn.Sequential | None = None,
                 conv_init: str = "original"):
        self.k = positive_int(k, "k")
        self.n1 = n1 if n1 is not None else n1_network(conv_init=conv_init)
        self.n2 = n2 if n2 is not None else n2_network()

    def init(self, rngs, R: int, dtype=np.float32, image_size: int = SIZE, rngs_n2=None):
        """Initial ``[params_N1, params_N2]``; ``rngs``: one Generator per replica. With
        ``rngs_n2`` (also one per replica) ``rngs`` initialise N1 and ``rngs_n2`` N2; without,
        each replica's generator spawns two children, for N1 and N2."""
        rngs = list(rngs)
        if rngs_n2 is None:
            children = [g.spawn(2) for g in rngs]
            rngs, rngs_n2 = [c[0] for c in children], [c[1] for c in children]
        p1, out = self.n1.init(rngs, R, (image_size, image_size, 1), dtype)
        if out != (1,):
            raise ValueError(f"N1 must output one score per image, got shape {out}")
        p2, _ = self.n2.init(list(rngs_n2), R, (self.k,), dtype)
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


def tuple_losses(out, scores, image_labels, labels, approach: str, image_loss: str = "mean",
                 reduction: str = "mean"):
    """The training loss of an approach and its gradients (Sec. 3.1).

    End-to-end: the batch mean of ``hinge(out, y)``. Decomposition: that plus the per-image
    hinge ``hinge(score_i, y_i)``, averaged over all B*k images (``image_loss="mean"``, the
    original code) or summed over the k images of a tuple and averaged over the batch
    (``"sum"``). Labels are ±1 arrays ``(R, B)`` / ``(R, B, k)``. With ``reduction="sum"`` the
    batch means become sums (one loss per tuple, for per-sample gradients).

    Returns ``(value, d value / d out, d value / d scores or None)``.
    """
    if approach not in APPROACHES:
        raise ValueError(f"approach must be one of {APPROACHES}, got {approach!r}")
    if image_loss not in IMAGE_LOSSES:
        raise ValueError(f"image_loss must be one of {IMAGE_LOSSES}, got {image_loss!r}")
    dtype = out.dtype
    y = np.asarray(labels, dtype=dtype)[..., None]
    value, dout = nn.losses.hinge(out, y, reduction=reduction)
    if approach == "end_to_end":
        return value, dout, None
    v_img, dscores = nn.losses.hinge(scores, np.asarray(image_labels, dtype=dtype), reduction=reduction)
    if image_loss == "mean":
        k = scores.shape[-1]
        v_img, dscores = v_img / k, dscores / k
    return value + v_img, dout, dscores


def loss_and_grads(model: TupleModel, params, images, image_labels, labels, approach: str,
                   image_loss: str = "mean"):
    """Mean training loss ``(R,)`` and its gradient tree for one minibatch."""
    out, scores, cache = model.forward(params, images)
    value, dout, dscores = tuple_losses(out, scores, image_labels, labels, approach, image_loss)
    _, grads = model.backward(params, cache, dout, dscores)
    return value, grads


def tuple_accuracy(out, labels) -> np.ndarray:
    """Per-replica zero-one accuracy of ``sign(out)`` against the tuple labels."""
    return np.mean(out[..., 0] * labels > 0, axis=1)
