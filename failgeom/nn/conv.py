"""Convolutions as GEMM over strided windows, and 2x2 max-pooling, with hand-written gradients.

Layout is channels-last: a 1-D signal is ``(R, B, L, C)``, an image ``(R, B, H, W, C)``. Windows
are taken as strided views and copied once into a GEMM operand (im2col; no Python loop over
examples or channels). Conv1D's backward scatters the window gradients back with one slice-add
per tap; Conv2D's input gradient is itself a 'same' correlation (of ``dy`` with the flipped,
channel-transposed kernel), so it is one more GEMM over windows.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .layers import Layer, _check_init, _init_weight, check_params_fit, truncated_normal
from .utils import as_dtype, check_batch, check_grad, replica_generators
from ..validation import flag, positive_float, positive_int, shape as check_shape


def set_conv_options(layer, n_out, size, bias, init, init_std) -> None:
    """Check and set the options shared by the 'same' 2-D convolutions (Conv2D, ConvPool2D).

    Parameters
    ----------
    layer : Conv2D or ConvPool2D
        Receives ``n_out``, ``size``, ``bias``, ``init_method`` and ``init_std``.
    n_out, size : int
        Output channels and the odd kernel size.
    bias : bool
    init : {"truncated_normal", "zeros"}
    init_std : float or None

    Raises
    ------
    TypeError, ValueError
        If ``n_out`` or ``size`` is not a positive integer, ``size`` is even, ``init`` is unknown
        or ``init_std`` is not a positive finite number or None.
    """
    layer.n_out = positive_int(n_out, "n_out")
    layer.size = positive_int(size, "size")
    if layer.size % 2 != 1:
        raise ValueError(f"size must be odd for 'same' padding, got {size}")
    layer.bias = flag(bias, "bias")
    layer.init_method = _check_init(init)
    layer.init_std = None if init_std is None else positive_float(init_std, "init_std")


def kernel_init(init: str, init_std, rngs, shape, dtype) -> np.ndarray:
    """Initial kernels ``(R, k, k, C, O)``: zeros, or truncated normal (within 2 std) with std
    ``init_std``, by default ``1/sqrt(k^2 C)`` (the fan-in).

    Parameters
    ----------
    init : {"truncated_normal", "zeros"}
    init_std : float or None
    rngs : sequence of R Generators
    shape : tuple of int
        ``(k, k, C, O)``.
    dtype : {float32, float64}

    Returns
    -------
    ndarray, shape (R, k, k, C, O)
    """
    if init == "zeros" or init_std is None:
        return _init_weight(init, rngs, shape, math.prod(shape[:-1]), dtype)
    return truncated_normal(rngs, shape, init_std, dtype)


def _im2col_param_grads(params, cols, dy):
    """``dy`` as ``(R, B * positions, O)`` and the kernel (and bias) gradients from the columns."""
    W = params["W"]
    dy2 = dy.reshape(W.shape[0], -1, W.shape[-1])
    grads = {"W": np.matmul(cols.swapaxes(1, 2), dy2).reshape(W.shape)}
    if "b" in params:
        grads["b"] = dy2.sum(axis=1)
    return dy2, grads


class Conv1D(Layer):
    """'valid' 1-D convolution (cross-correlation, as in deep-learning frameworks).

    ``y[t, o] = sum_{k, c} x[t + k, c] K[k, c, o] + b[o]``; kernel ``(R, K, C_in, C_out)``.
    With one channel and ``K = 3`` this is the 3-tap filter of the paper's Sec. 4.1.2.
    Input ``(R, B, L, C_in)``, output ``(R, B, L - K + 1, C_out)``.

    Parameters
    ----------
    n_out : int
        Output channels C_out.
    width : int
        Kernel width K.
    bias : bool
        Add a per-channel bias (initialised to zero).
    init : {"truncated_normal", "zeros"}
        Kernel initialisation; the truncated normal has std ``1/sqrt(K C_in)``.

    Raises
    ------
    TypeError, ValueError
        If ``n_out`` or ``width`` is not a positive integer or ``init`` is unknown.
    """

    has_params = True

    def __init__(self, n_out: int, width: int, bias: bool = True, init: str = "truncated_normal"):
        self.n_out = positive_int(n_out, "n_out")
        self.width = positive_int(width, "width")
        self.bias = flag(bias, "bias")
        self.init_method = _check_init(init)

    def init(self, rng, R, in_shape, dtype=np.float32):
        """Initial kernel and zero bias for signals ``in_shape = (L, C)``.

        Parameters
        ----------
        rng, R, dtype
            As in :meth:`Layer.init`.
        in_shape : tuple of int
            ``(L, C)`` with ``L >= width``.

        Returns
        -------
        params : dict
            ``W (R, K, C, n_out)``, with a bias ``b (R, n_out)``.
        out_shape : tuple of int
            ``(L - K + 1, n_out)``.

        Raises
        ------
        ValueError
            If ``in_shape`` is not ``(L, C)`` or ``L < width`` (TypeError or ValueError also for
            a bad ``rng``, ``R`` or ``dtype``).
        """
        dtype = as_dtype(dtype)
        rngs = replica_generators(rng, R)
        L, C = check_shape(in_shape, "in_shape", ndim=2)
        if L < self.width:
            raise ValueError(f"Conv1D width {self.width} exceeds the signal length {L} of in_shape")
        shape = (self.width, C, self.n_out)
        check_params_fit(R, shape, dtype, f"Conv1D kernels (R={R}, {self.width}, {C}, {self.n_out})")
        params = {"W": _init_weight(self.init_method, rngs, shape, self.width * C, dtype)}
        if self.bias:
            params["b"] = np.zeros((R, self.n_out), dtype=dtype)
        return params, (L - self.width + 1, self.n_out)

    def forward(self, params, x):
        """The 'valid' correlation of every replica's signals with its kernel, as one GEMM.

        Parameters
        ----------
        params : dict
            ``W (R, K, C, O)``, optionally ``b (R, O)``.
        x : ndarray, shape (R, B, L, C)

        Returns
        -------
        y : ndarray, shape (R, B, L - K + 1, O)
        cache : tuple
            ``x.shape`` and the windows ``(R, B (L - K + 1), K C)``.

        Raises
        ------
        TypeError, ValueError
            If ``x`` is not a real floating array ``(R, B, L, C)`` with ``L >= K``.
        """
        W = params["W"]
        R, K, C, O = W.shape
        if type(x) is not np.ndarray or x.dtype.kind != "f" or x.ndim != 4 or x.shape[0] != R \
                or x.shape[3] != C or x.shape[2] < K:
            check_batch(x, "x", ndim=4, R=R, last=C, expected=f"(R={R}, B, L >= {K}, C={C})")
            raise ValueError(f"x must have shape (R={R}, B, L >= {K}, C={C}), got {x.shape}")
        B, L = x.shape[1], x.shape[2]
        Lo = L - K + 1
        # (R, B, Lo, C, K) view -> (R, B*Lo, K*C) matrix with k-major columns
        cols = sliding_window_view(x, K, axis=2).swapaxes(-1, -2).reshape(R, B * Lo, K * C)
        y = np.matmul(cols, W.reshape(R, K * C, O))
        if "b" in params:
            y += params["b"][:, None, :]
        return y.reshape(R, B, Lo, O), (x.shape, cols)

    def backward(self, params, cache, dy, need_dx=True):
        """Gradients of ``sum(dy * y)``.

        Parameters
        ----------
        params, cache, need_dx
            As in :meth:`Layer.backward`.
        dy : ndarray, shape (R, B, L - K + 1, O)

        Returns
        -------
        dx : ndarray, shape (R, B, L, C), or None
        grads : dict
            ``W (R, K, C, O)``, with a bias ``b (R, O)``.
        """
        (x_shape, cols), W = cache, params["W"]
        R, K, C, O = W.shape
        check_grad(dy, x_shape[:2] + (x_shape[2] - K + 1, O))
        dy2, grads = _im2col_param_grads(params, cols, dy)
        if not need_dx:
            return None, grads
        dcols = np.matmul(dy2, W.reshape(R, K * C, O).swapaxes(1, 2))
        dcols = dcols.reshape(R, x_shape[1], dy.shape[2], K, C)
        dx = np.zeros(x_shape, dtype=dy.dtype)
        Lo = dy.shape[2]
        for k in range(K):  # one slice-add per tap
            dx[:, :, k:k + Lo] += dcols[:, :, :, k]
        return dx, grads

    def per_example_grads(self, params, cache, dy):
        """Gradients of each example's own term (the batch sum left out).

        Parameters
        ----------
        params, cache
            Given to and returned by :meth:`forward`.
        dy : ndarray, shape (R, B, L - K + 1, O)

        Returns
        -------
        dict
            ``W (R, B, K, C, O)``, with a bias ``b (R, B, O)``.
        """
        (x_shape, cols), W = cache, params["W"]
        R, K, C, O = W.shape
        check_grad(dy, x_shape[:2] + (x_shape[2] - K + 1, O))
        B = x_shape[1]
        cols4 = cols.reshape(R, B, -1, K * C)
        dy4 = dy.reshape(R, B, -1, O)
        grads = {"W": np.matmul(cols4.swapaxes(2, 3), dy4).reshape((R, B) + W.shape[1:])}
        if "b" in params:
            grads["b"] = dy4.sum(axis=2)
        return grads


class Conv2D(Layer):
    """'same' 2-D convolution with an odd square kernel and many channels.

    Kernel ``(R, k, k, C_in, C_out)``; input ``(R, B, H, W, C_in)`` is zero-padded by ``k // 2``
    on each side, so the output is ``(R, B, H, W, C_out)`` (TensorFlow's 'SAME' for odd k).

    Parameters
    ----------
    n_out : int
        Output channels.
    size : int
        Odd kernel size k.
    bias : bool
        Add a per-channel bias (initialised to zero).
    init : {"truncated_normal", "zeros"}
        Kernel initialisation.
    init_std : float, optional
        Standard deviation of the truncated normal (re-drawn outside 2 std, TensorFlow's
        ``truncated_normal``). Default ``1/sqrt(k^2 C_in)``, the fan-in. The paper's original
        code divides by the last axis of the layer's *input tensor* instead: its first conv reads
        the images as (B, 28, 28), so ``init_std = 1/sqrt(28)``, and its second reads
        (B, 14, 14, 16), so ``init_std = 1/sqrt(16) = 0.25``.

    Raises
    ------
    TypeError, ValueError
        For bad options, as :func:`set_conv_options`.
    """

    has_params = True

    def __init__(self, n_out: int, size: int, bias: bool = True, init: str = "truncated_normal",
                 init_std: float | None = None):
        set_conv_options(self, n_out, size, bias, init, init_std)

    def init(self, rng, R, in_shape, dtype=np.float32):
        """Initial kernel and zero bias for images ``in_shape = (H, W, C)``.

        Parameters
        ----------
        rng, R, dtype
            As in :meth:`Layer.init`.
        in_shape : tuple of int
            ``(H, W, C)``.

        Returns
        -------
        params : dict
            ``W (R, k, k, C, n_out)``, with a bias ``b (R, n_out)``.
        out_shape : tuple of int
            ``(H, W, n_out)``.

        Raises
        ------
        ValueError
            If ``in_shape`` is not ``(H, W, C)`` (TypeError or ValueError also for a bad ``rng``,
            ``R`` or ``dtype``).
        """
        dtype = as_dtype(dtype)
        rngs = replica_generators(rng, R)
        H, Wd, C = check_shape(in_shape, "in_shape", ndim=3)
        k = self.size
        check_params_fit(R, (k, k, C, self.n_out), dtype, f"Conv2D kernels (R={R}, {k}, {k}, {C}, {self.n_out})")
        params = {"W": kernel_init(self.init_method, self.init_std, rngs, (k, k, C, self.n_out), dtype)}
        if self.bias:
            params["b"] = np.zeros((R, self.n_out), dtype=dtype)
        return params, (H, Wd, self.n_out)

    def forward(self, params, x):
        """The 'same' correlation of each replica's images with its kernel, one GEMM over windows.

        Parameters
        ----------
        params : dict
            ``W (R, k, k, C, O)``, optionally ``b (R, O)``.
        x : ndarray, shape (R, B, H, W, C)

        Returns
        -------
        y : ndarray, shape (R, B, H, W, O)
        cache : tuple
            ``x.shape`` and the windows ``(R, B H W, k k C)``.
        """
        W = params["W"]
        R, k, _, C, O = W.shape
        if type(x) is not np.ndarray or x.dtype.kind != "f" or x.ndim != 5 or x.shape[0] != R or x.shape[4] != C:
            check_batch(x, "x", ndim=5, R=R, last=C, expected=f"(R={R}, B, H, W, C={C})")
        B, H, Wd = x.shape[1:4]
        cols = _same_windows(x, k)
        y = np.matmul(cols, W.reshape(R, k * k * C, O))
        if "b" in params:
            y += params["b"][:, None, :]
        return y.reshape(R, B, H, Wd, O), (x.shape, cols)

    def backward(self, params, cache, dy, need_dx=True):
        """Gradients of ``sum(dy * y)``; ``dx`` is the 'same' correlation of ``dy`` with the
        flipped, channel-transposed kernel.

        Parameters
        ----------
        params, cache, need_dx
            As in :meth:`Layer.backward`.
        dy : ndarray, shape (R, B, H, W, O)

        Returns
        -------
        dx : ndarray, shape (R, B, H, W, C), or None
        grads : dict
            ``W (R, k, k, C, O)``, with a bias ``b (R, O)``.
        """
        (x_shape, cols), W = cache, params["W"]
        R, k, _, C, O = W.shape
        if type(dy) is not np.ndarray or dy.dtype.kind != "f" or dy.shape[:4] != x_shape[:4] or dy.shape[4:] != (O,):
            check_grad(dy, x_shape[:4] + (O,))
        dy2, grads = _im2col_param_grads(params, cols, dy)
        if not need_dx:
            return None, grads
        # the input gradient of a 'same' correlation is the 'same' correlation of dy with the
        # kernel flipped in space and transposed in channels: one more GEMM over windows of dy,
        # instead of a (B*H*W, k*k*C) column gradient scattered back tap by tap
        flipped = W[:, ::-1, ::-1].swapaxes(3, 4).reshape(R, k * k * O, C)
        dx = np.matmul(_same_windows(dy, k), flipped)
        return dx.reshape(x_shape), grads

    def per_example_grads(self, params, cache, dy):
        """Gradients of each example's own term (the batch sum left out).

        Parameters
        ----------
        params, cache
            Given to and returned by :meth:`forward`.
        dy : ndarray, shape (R, B, H, W, O)

        Returns
        -------
        dict
            ``W (R, B, k, k, C, O)``, with a bias ``b (R, B, O)``.
        """
        (x_shape, cols), W = cache, params["W"]
        R, B = x_shape[:2]
        O = W.shape[-1]
        check_grad(dy, x_shape[:4] + (O,))
        cols4 = cols.reshape(R, B, -1, cols.shape[-1])
        dy4 = dy.reshape(R, B, -1, O)
        grads = {"W": np.matmul(cols4.swapaxes(2, 3), dy4).reshape((R, B) + W.shape[1:])}
        if "b" in params:
            grads["b"] = dy4.sum(axis=2)
        return grads


def _same_windows(x: np.ndarray, k: int) -> np.ndarray:
    """The k x k windows of ``x`` ``(R, B, H, W, C)`` zero-padded by ``k // 2``, as the matrix
    ``(R, B*H*W, k*k*C)`` with ``(ky, kx, c)`` column order (im2col by one strided copy)."""
    R, B, H, Wd, C = x.shape
    p = k // 2
    xp = np.zeros((R, B, H + 2 * p, Wd + 2 * p, C), dtype=x.dtype)
    xp[:, :, p:p + H, p:p + Wd] = x
    win = sliding_window_view(xp, (k, k), axis=(2, 3))  # (R, B, H, W, C, k, k) view
    return win.transpose(0, 1, 2, 3, 5, 6, 4).reshape(R, B * H * Wd, k * k * C)


class MaxPool2D(Layer):
    """2x2 max-pooling with stride 2 (height and width must be even); ties go to the first max."""

    def init(self, rng, R, in_shape, dtype=np.float32):
        """No parameters; the output shape ``(H/2, W/2, C)``.

        Parameters
        ----------
        rng, R, dtype
            As in :meth:`Layer.init` (``rng`` and ``dtype`` unused).
        in_shape : tuple of int
            ``(H, W, C)`` with even H and W.

        Returns
        -------
        params : dict, empty
        out_shape : tuple of int, ``(H // 2, W // 2, C)``

        Raises
        ------
        ValueError
            If ``in_shape`` is not ``(H, W, C)`` with even H and W.
        """
        positive_int(R, "R")
        H, Wd, C = check_shape(in_shape, "in_shape", ndim=3)
        if H % 2 or Wd % 2:
            raise ValueError(f"MaxPool2D expects in_shape (H, W, C) with even H and W, got {tuple(in_shape)}")
        return {}, (H // 2, Wd // 2, C)

    def forward(self, params, x):
        """The maximum of every 2x2 block, and which of its four pixels won.

        Parameters
        ----------
        params : dict, empty
        x : ndarray, shape (R, B, H, W, C)

        Returns
        -------
        y : ndarray, shape (R, B, H/2, W/2, C)
        cache : tuple
            ``x.shape`` and the int8 index ``(R, B, H/2, W/2, C)`` of the first maximum, 0..3 in the
            order (0,0), (0,1), (1,0), (1,1).

        Raises
        ------
        TypeError, ValueError
            If ``x`` is not a real floating array ``(R, B, H, W, C)`` with even H and W.
        """
        if type(x) is not np.ndarray or x.dtype.kind != "f" or x.ndim != 5 or x.shape[2] % 2 or x.shape[3] % 2:
            check_batch(x, "x", ndim=5, expected="(R, B, H, W, C) with even H and W")
            raise ValueError(f"x must have shape (R, B, H, W, C) with even H and W, got {x.shape}")
        # the four corners of every 2x2 block as strided views; max of pairs, then of the pairs
        a, b = x[:, :, 0::2, 0::2], x[:, :, 0::2, 1::2]
        c, d = x[:, :, 1::2, 0::2], x[:, :, 1::2, 1::2]
        top, bottom = np.maximum(a, b), np.maximum(c, d)
        y = np.maximum(top, bottom)
        # index 0..3 of the first maximum in the order a, b, c, d (ties go to the first)
        idx = np.where(bottom > top, 2 + (d > c), (b > a).astype(np.int8)).astype(np.int8)
        return y, (x.shape, idx)

    def backward(self, params, cache, dy, need_dx=True):
        """``dy`` routed to each block's first maximum (zeros elsewhere), even when not ``need_dx``.

        Parameters
        ----------
        params, cache, need_dx
            As in :meth:`Layer.backward`.
        dy : ndarray, shape (R, B, H/2, W/2, C)

        Returns
        -------
        dx : ndarray, shape (R, B, H, W, C)
        grads : dict, empty
        """
        shape, idx = cache
        if type(dy) is not np.ndarray or dy.dtype.kind != "f" or dy.shape != idx.shape:
            check_grad(dy, idx.shape)
        dx = np.empty(shape, dtype=dy.dtype)
        zero = np.zeros((), dtype=dy.dtype)
        for q, (r, s) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):  # four corners, not pixels
            np.copyto(dx[:, :, r::2, s::2], np.where(idx == q, dy, zero))
        return dx, {}
