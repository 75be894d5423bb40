"""A 'same' convolution fused with 2x2 max-pooling, computed in cache-sized chunks of the batch.

:class:`ConvPool2D` computes ``maxpool2x2(conv_same(x, K) + b)``, the block the paper's Sec. 3.1
network uses twice, with the same parameters as :class:`~failgeom.nn.Conv2D` (``W (R, k, k, C,
O)``, ``b (R, O)``). It takes and returns channels-last examples ``(R, B, H, W, C)``, but works
on chunks of ``chunk`` images laid out batch-innermost, ``(H, W, C, n)``, where every step is a
GEMM with many columns and nothing as large as an im2col matrix of the whole batch is ever
built. Its output is a batch-innermost array returned as a ``(R, B, H/2, W/2, O)`` view, so a
second ConvPool2D reads it without a transpose (and ``Flatten`` + ``Dense`` read it as a
Fortran-ordered matrix, also without a copy).

Two kernels compute the convolution, chosen by ``method``:

- ``"direct"``: one GEMM per chunk that computes every 2x2 pooling window (its four corners,
  all channels) as one column from the ``(k+1) x (k+1)`` input patch under it, so the four
  corners come out as four contiguous blocks. Best for few input channels (the first
  convolution).
- ``"fourier"``: the channel mixing per frequency of :class:`~failgeom.nn.fourier.
  FourierCorrelation`, about a third of the direct work at 16 channels in and out.

The pool keeps three boolean masks per output (which pair won, and which element of each pair),
so ties go to the first maximum in the order (0,0), (0,1), (1,0), (1,1), as in
:class:`~failgeom.nn.MaxPool2D`. The bias is added after pooling (it commutes with the max). The
direct kernel computes equal windows to equal values, so exact ties stay ties; the Fourier
kernel's rounding (about 1e-7 relative in float32) breaks them at random, which sends the
gradient to another maximum of the window, an equally valid subgradient.

The cache for the backward pass is the padded input (direct) or its spectrum (Fourier) plus
the masks: about 14 KB per 28 x 28 x 1 image and 21 KB per 14 x 14 x 16 image in float32. A
forward-only pass over many images (evaluation, per-sample statistics) should run the layers one
at a time and drop each cache.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .conv import kernel_init, set_conv_options
from .fourier import FourierCorrelation
from .layers import Layer
from .layers import check_params_fit
from .utils import as_dtype, check_batch, check_grad, replica_generators
from ..validation import choice, positive_int, shape as check_shape

METHODS = ("auto", "direct", "fourier")
#: the default chunk holds about this many bytes in its largest intermediate array
CHUNK_BYTES = 1 << 20


class ConvPool2D(Layer):
    """'same' 2-D convolution (odd square kernel, bias) followed by 2x2 max-pooling, stride 2.

    Parameters
    ----------
    n_out : int
        Output channels O.
    size : int
        Odd kernel size k; the input is zero-padded by ``k // 2``.
    bias : bool
        Add a per-channel bias (initialised to zero).
    init : {"truncated_normal", "zeros"}
        Kernel initialisation, as :class:`~failgeom.nn.Conv2D`.
    init_std : float, optional
        Standard deviation of the truncated normal; default ``1/sqrt(k^2 C)`` (fan-in).
    method : {"auto", "direct", "fourier"}
        Convolution kernel; "auto" takes "fourier" from 4 input channels on, else "direct".
    chunk : int, optional
        At most this many images per chunk (the batch is split into chunks of equal sizes); by
        default as many as keep the largest per-chunk intermediate near :data:`CHUNK_BYTES` (a
        core's L2 cache). The numbers do not depend on it, up to the float summation order of
        the parameter gradients.
    workers : int
        Threads that process chunks in parallel; use with one BLAS thread. The numbers do not
        depend on it.

    Input ``(R, B, H, W, C)`` with even H and W; output ``(R, B, H/2, W/2, O)``.

    Raises
    ------
    TypeError, ValueError
        For bad options (as :func:`~failgeom.nn.conv.set_conv_options`), an unknown ``method``,
        or a ``chunk`` or ``workers`` that is not a positive integer.
    """

    has_params = True
    # set by set_conv_options
    n_out: int
    size: int
    bias: bool
    init_method: str
    init_std: float | None

    def __init__(self, n_out: int, size: int, bias: bool = True, init: str = "truncated_normal",
                 init_std: float | None = None, method: str = "auto", chunk: int | None = None,
                 workers: int = 1):
        set_conv_options(self, n_out, size, bias, init, init_std)
        self.method = choice(method, "method", METHODS)
        self.chunk = None if chunk is None else positive_int(chunk, "chunk")
        self.workers = positive_int(workers, "workers")
        self._kernels: dict = {}

    def __repr__(self) -> str:
        return (f"ConvPool2D(n_out={self.n_out}, size={self.size}, bias={self.bias}, "
                f"init={self.init_method!r}, init_std={self.init_std!r}, method={self.method!r}, "
                f"chunk={self.chunk}, workers={self.workers})")

    def __getstate__(self):
        # the transform tables are rebuilt on first use: pickles stay small
        return {**self.__dict__, "_kernels": {}}

    def init(self, rng, R, in_shape, dtype=np.float32):
        """Initial kernel and zero bias for images ``in_shape = (H, W, C)``.

        Parameters
        ----------
        rng, R, dtype
            As in :meth:`Layer.init`.
        in_shape : tuple of int
            ``(H, W, C)`` with even H and W.

        Returns
        -------
        params : dict
            ``W (R, k, k, C, n_out)``, with a bias ``b (R, n_out)``.
        out_shape : tuple of int
            ``(H // 2, W // 2, n_out)``.

        Raises
        ------
        ValueError
            If ``in_shape`` is not ``(H, W, C)`` with even H and W (TypeError or ValueError also for
            a bad ``rng``, ``R`` or ``dtype``).
        """
        dtype = as_dtype(dtype)
        rngs = replica_generators(rng, R)
        H, Wd, C = check_shape(in_shape, "in_shape", ndim=3)
        if H % 2 or Wd % 2:
            raise ValueError(f"ConvPool2D expects in_shape (H, W, C) with even H and W, got {tuple(in_shape)}")
        k = self.size
        check_params_fit(R, (k, k, C, self.n_out), dtype, f"ConvPool2D kernels (R={R}, {k}, {k}, {C}, {self.n_out})")
        params = {"W": kernel_init(self.init_method, self.init_std, rngs, (k, k, C, self.n_out), dtype)}
        if self.bias:
            params["b"] = np.zeros((R, self.n_out), dtype=dtype)
        return params, (H // 2, Wd // 2, self.n_out)

    def _kernel(self, H, Wd, C, dtype):
        method = self.method if self.method != "auto" else ("fourier" if C >= 4 else "direct")
        key = (method, H, Wd, self.size, np.dtype(dtype).str)
        if key not in self._kernels:
            cls = _FourierKernel if method == "fourier" else _DirectKernel
            self._kernels[key] = cls(H, Wd, self.size, dtype)
        return self._kernels[key]

    def forward(self, params, x):
        """``maxpool2x2(conv_same(x, W) + b)``, chunk by chunk.

        Parameters
        ----------
        params : dict
            ``W (R, k, k, C, O)``, optionally ``b (R, O)``.
        x : ndarray, shape (R, B, H, W, C)
            Even H and W.

        Returns
        -------
        y : ndarray, shape (R, B, H/2, W/2, O)
            A view of a batch-innermost array ``(R, H/2, W/2, O, B)``.
        cache : tuple
            ``x``, the kernel, the chunk size, the prepared kernels and each chunk's state and masks.

        Raises
        ------
        ValueError
            If ``x`` is not ``(R, B, H, W, C)`` for the R and C of ``W`` with even H and W.
        """
        K = params["W"]
        R, k, _, C, O = K.shape
        if type(x) is not np.ndarray or x.dtype.kind != "f" or x.ndim != 5 or x.shape[0] != R or x.shape[4] != C \
                or x.shape[2] % 2 or x.shape[3] % 2:
            check_batch(x, "x", ndim=5, R=R, last=C, expected=f"(R={R}, B, H, W, C={C}) with even H and W")
            raise ValueError(f"x must have shape (R={R}, B, H, W, C={C}) with even H and W, "
                             f"got {x.shape}")
        B, H, Wd = x.shape[1:4]
        kernel = self._kernel(H, Wd, C, K.dtype)
        step = self.chunk or max(1, CHUNK_BYTES // kernel.bytes_per_image(C, O))
        step = -(-B // -(-B // step))  # the same number of chunks, of equal sizes
        out = np.empty((R, H // 2, Wd // 2, O, B), dtype=K.dtype)
        preps = [kernel.prepare(K[r]) for r in range(R)]

        def chunk_forward(r, lo):
            xc = x[r, lo:lo + step].transpose(1, 2, 3, 0)                # (H, W, C, n) view
            state, corners = kernel.forward(preps[r], xc)
            pooled = out[r, ..., lo:lo + step]
            masks = pool_forward(corners, pooled)
            if "b" in params:
                pooled += params["b"][r][:, None]
            return state, masks

        states = _map(self.workers, chunk_forward, R, B, step)
        return out.transpose(0, 4, 1, 2, 3), (x, kernel, step, preps, states)

    def backward(self, params, cache, dy, need_dx=True):
        """Gradients of ``sum(dy * y)``, chunk by chunk, summed in chunk order.

        Parameters
        ----------
        params, cache, need_dx
            As in :meth:`Layer.backward`.
        dy : ndarray, shape (R, B, H/2, W/2, O)

        Returns
        -------
        dx : ndarray, shape (R, B, H, W, C), or None
            A view of a batch-innermost array.
        grads : dict
            ``W (R, k, k, C, O)``, with a bias ``b (R, O)``.
        """
        x, kernel, step, preps, states = cache
        K = params["W"]
        R, k, _, C, O = K.shape
        B, H, Wd = x.shape[1:4]
        if type(dy) is not np.ndarray or dy.dtype.kind != "f" or dy.shape != (R, B, H // 2, Wd // 2, O):
            check_grad(dy, (R, B, H // 2, Wd // 2, O))
        dyt = dy.transpose(0, 2, 3, 4, 1)                                  # (R, H/2, W/2, O, B)
        dx = np.empty((R, H, Wd, C, B), dtype=K.dtype) if need_dx else None
        n_chunks = len(range(0, B, step))

        def chunk_backward(r, lo):
            state, masks = states[r * n_chunks + lo // step]
            dp = kernel.pooled_layout(dyt[r, ..., lo:lo + step])
            dfull, corners = kernel.output_buffer(dp.shape[-1], O)
            pool_backward(dp, masks, corners)
            dK, dxc = kernel.backward(preps[r], state, dfull, need_dx)
            if need_dx:
                dx[r, ..., lo:lo + step] = dxc
            return dK, kernel.bias_grad(dp)

        parts = _map(self.workers, chunk_backward, R, B, step)
        grads = {"W": np.empty_like(K), "b": np.empty((R, O), dtype=K.dtype)}
        for r in range(R):  # summed in chunk order, whatever the number of workers
            dK, db = parts[r * n_chunks]
            for part in parts[r * n_chunks + 1:(r + 1) * n_chunks]:
                dK, db = dK + part[0], db + part[1]
            grads["W"][r] = kernel.kernel_grad(dK, C, O)
            grads["b"][r] = db
        if "b" not in params:
            del grads["b"]
        return (dx.transpose(0, 4, 1, 2, 3) if need_dx else None), grads

    def per_example_grads(self, params, cache, dy):
        """Per-example gradients, one example at a time through the same forward and backward (a
        reference path, not a fast one).

        Parameters
        ----------
        params, cache
            Given to and returned by :meth:`forward`.
        dy : ndarray, shape (R, B, H/2, W/2, O)

        Returns
        -------
        dict
            ``W (R, B, k, k, C, O)``, with a bias ``b (R, B, O)``.
        """
        x = cache[0]
        R, B, H, Wd = x.shape[:4]
        check_grad(dy, (R, B, H // 2, Wd // 2, params["W"].shape[-1]))
        out = {key: np.empty((R, B) + p.shape[1:], dtype=p.dtype) for key, p in params.items()}
        for b in range(B):
            _, c = self.forward(params, x[:, b:b + 1])
            _, g = self.backward(params, c, dy[:, b:b + 1], need_dx=False)
            for key in out:
                out[key][:, b] = g[key]
        return out


def _map(workers, fn, R, B, step):
    """``[fn(r, lo) for r, lo in chunks]`` over replicas and chunks, in that order, on
    ``workers`` threads (NumPy and BLAS release the GIL)."""
    tasks = [(r, lo) for r in range(R) for lo in range(0, B, step)]
    if workers == 1 or len(tasks) == 1:
        return [fn(r, lo) for r, lo in tasks]
    return list(_executor(workers).map(lambda task: fn(*task), tasks))


_EXECUTORS: dict[tuple[int, int], ThreadPoolExecutor] = {}


def _executor(workers: int) -> ThreadPoolExecutor:
    # keyed by process too: a pool inherited through fork has no threads in the child
    key = (os.getpid(), workers)
    if key not in _EXECUTORS:
        _EXECUTORS[key] = ThreadPoolExecutor(workers, thread_name_prefix="failgeom-conv")
    return _EXECUTORS[key]


# --------------------------------------------------------------------------------------------
# 2x2 max-pool on four corner blocks


def pool_forward(corners, out):
    """Write ``max`` of the four corner arrays (order (0,0), (0,1), (1,0), (1,1)) into ``out``;
    return the masks that route the gradient to the first maximum.

    Parameters
    ----------
    corners : sequence of 4 ndarrays
        The four corners of every pooling window, each of the pooled shape.
    out : ndarray
        The pooled shape; written in place.

    Returns
    -------
    tuple of 3 bool ndarrays
        ``b > a``, ``d > c`` and ``max(c, d) > max(a, b)``, each of the pooled shape.
    """
    a, b, c, d = corners
    top, bottom = np.maximum(a, b), np.maximum(c, d)
    masks = (b > a, d > c, bottom > top)
    np.maximum(top, bottom, out=out)
    return masks


def pool_backward(dp, masks, corners):
    """Write the gradient of the pool into the four corner arrays from the pooled gradient
    (in place: the corners hold the intermediate sums, no temporaries).

    Parameters
    ----------
    dp : ndarray
        Gradient with respect to the pooled output.
    masks : tuple of 3 bool ndarrays
        From :func:`pool_forward`.
    corners : sequence of 4 ndarrays
        Of the shape of ``dp``; overwritten with the gradient of each corner.
    """
    b_wins, d_wins, bottom_wins = masks
    a, b, c, d = corners
    np.multiply(dp, bottom_wins, out=c)  # c: gradient of the bottom pair
    np.subtract(dp, c, out=a)            # a: gradient of the top pair
    np.multiply(a, b_wins, out=b)
    np.subtract(a, b, out=a)
    np.multiply(c, d_wins, out=d)
    np.subtract(c, d, out=c)


# --------------------------------------------------------------------------------------------
# the two convolution kernels: prepare (per replica), forward / backward (per chunk)


class _DirectKernel:
    """Direct convolution by 2 x 2 output blocks: every 2 x 2 block of the output (the four
    corners of one pooling window, all O channels) is one column of ``Kb (4 O, (k+1)^2 C) @
    patches ((k+1)^2 C, n H W / 4)``, where ``patches`` holds the ``(k+1) x (k+1)`` input patch
    under each block (stride 2) and ``Kb`` places the kernel at the block's four offsets
    (zeros elsewhere). That is ``(k+1)^2 / k^2`` (1.44 at k = 5) times the direct multiply-adds,
    in a GEMM four times as tall and with a patch matrix a third the size of im2col's, and the
    four corners come out as four contiguous row blocks."""

    def __init__(self, H, Wd, k, dtype):
        self.H, self.W, self.k, self.dtype = H, Wd, k, np.dtype(dtype)
        self.p = k // 2

    def _patch_view(self, xp):
        """``V[r, s, c, i, j, n] = xp[2 i + r, 2 j + s, c, n]`` for ``r, s < k + 1``, a view of
        the contiguous ``xp`` (overlapping: write to it only with in-place adds, one (r, s) at a
        time)."""
        Hp, Wp, C, n = xp.shape
        s0, s1, s2, s3 = xp.strides
        return np.ndarray((self.k + 1, self.k + 1, C, self.H // 2, self.W // 2, n), xp.dtype, xp,
                          strides=(s0, s1, s2, 2 * s0, 2 * s1, s3))

    def _patches(self, xp):
        C = xp.shape[2]
        return np.ascontiguousarray(self._patch_view(xp)).reshape((self.k + 1) ** 2 * C, -1)

    def bytes_per_image(self, C, O):
        """Bytes per image of the largest intermediate: the GEMM's output, four corners."""
        return 4 * O * (self.H // 2) * (self.W // 2) * self.dtype.itemsize

    def prepare(self, K):
        k, _, C, O = K.shape
        Kb = np.zeros((2, 2, O, k + 1, k + 1, C), dtype=K.dtype)
        for qh in range(2):
            for qw in range(2):
                Kb[qh, qw, :, qh:qh + k, qw:qw + k] = K.transpose(3, 0, 1, 2)
        return Kb.reshape(4 * O, (k + 1) ** 2 * C)

    def forward(self, Kb, xc):
        H, Wd, C, n = xc.shape
        p = self.p
        xp = np.zeros((H + 2 * p, Wd + 2 * p, C, n), dtype=self.dtype)
        xp[p:p + H, p:p + Wd] = xc
        y = np.matmul(Kb, self._patches(xp)).reshape(4, -1, H // 2, Wd // 2, n)   # (4, O, i, j, n)
        return xp, [_to_ijon(y[q]) for q in range(4)]

    def output_buffer(self, n, O):
        dy = np.empty((4, O, self.H // 2, self.W // 2, n), dtype=self.dtype)
        return dy, [_to_ijon(dy[q]) for q in range(4)]

    def pooled_layout(self, dp):
        """The pooled gradient ``(i, j, O, n)`` copied to the corners' layout ``(O, i, j, n)``,
        so that the pool's backward runs on contiguous memory."""
        return _to_ijon(np.ascontiguousarray(dp.transpose(2, 0, 1, 3)))

    @staticmethod
    def bias_grad(dp):
        """``(O,)``: the pooled gradient summed over positions and images."""
        return dp.transpose(2, 0, 1, 3).reshape(dp.shape[2], -1).sum(axis=1)

    def backward(self, Kb, xp, dy, need_dx):
        dy2 = dy.reshape(Kb.shape[0], -1)
        # the patches are gathered again rather than kept: the cache stays at the input's size
        dKb = np.matmul(dy2, self._patches(xp).T)                         # (4 O, (k+1)^2 C)
        if not need_dx:
            return dKb, None
        k, p = self.k, self.p
        C = xp.shape[2]
        dpatches = np.matmul(Kb.T, dy2).reshape(k + 1, k + 1, C, self.H // 2, self.W // 2, -1)
        dxp = np.zeros_like(xp)
        view = self._patch_view(dxp)
        for r in range(k + 1):  # overlapping patches: one add per patch offset
            for s in range(k + 1):
                view[r, s] += dpatches[r, s]
        return dKb, dxp[p:p + self.H, p:p + self.W]

    def kernel_grad(self, dKb, C, O):
        k = self.k
        d = dKb.reshape(2, 2, O, k + 1, k + 1, C)
        dK = sum(d[qh, qw, :, qh:qh + k, qw:qw + k] for qh in range(2) for qw in range(2))
        return dK.transpose(1, 2, 3, 0)


def _to_ijon(block):
    """A corner block ``(O, i, j, n)`` seen in the pooled output's order ``(i, j, O, n)``."""
    return block.transpose(1, 2, 0, 3)


class _FourierKernel:
    """:class:`FourierCorrelation` with the output in pooling order."""

    def __init__(self, H, Wd, k, dtype):
        self.fc = FourierCorrelation(H, Wd, k, dtype, pooled_order=True)
        self.H, self.W, self.dtype = H, Wd, np.dtype(dtype)

    def bytes_per_image(self, C, O):
        """Bytes per image of the largest intermediate: a spectrum of max(C, O) channels."""
        return 2 * self.fc.F * max(C, O) * self.dtype.itemsize

    def prepare(self, K):
        return self.fc.mixing(K)

    def forward(self, M, xc):
        X = self.fc.spectrum(np.ascontiguousarray(xc, dtype=self.dtype))
        y = self.fc.correlate(X, M)
        return X, self._corners(y)

    def _corners(self, y):
        H, Wd, O, n = y.shape
        y6 = y.reshape(2, H // 2, 2, Wd // 2, O, n)
        return [y6[qh, :, qw] for qh in range(2) for qw in range(2)]

    def output_buffer(self, n, O):
        dy = np.empty((self.H, self.W, O, n), dtype=self.dtype)
        return dy, self._corners(dy)

    def pooled_layout(self, dp):
        return np.ascontiguousarray(dp)

    @staticmethod
    def bias_grad(dp):
        """``(O,)``: the pooled gradient ``(i, j, O, n)`` summed over positions and images."""
        return dp.sum(axis=(0, 1, 3))

    def backward(self, M, X, dy, need_dx):
        return self.fc.backward(dy, X, M, need_dx)

    def kernel_grad(self, acc, C, O):
        return self.fc.kernel_grad(acc, C, O)
