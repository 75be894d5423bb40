"""'Same' 2-D correlation of many channels as a chain of small GEMMs through a real Fourier basis.

A 'same' correlation of an ``H x W`` image with a ``k x k`` kernel (padding ``p = k // 2``) equals
a circular correlation of length ``L_h = H + p`` by ``L_w = W + p`` followed by a crop: the
wrapped-around indices fall on the zero padding. In the Fourier domain the circular correlation
of ``C`` input channels into ``O`` output channels is one ``(O x C)`` complex matrix per
frequency, so the ``k^2 C O`` multiply-adds per pixel of the direct method become about
``4 C O`` per frequency plus transforms whose cost grows only like ``C + O``. With
``C = O = 16``, ``k = 5`` and 14 x 14 images (the second convolution of the paper's Sec. 3.1
network) this is a third of the direct method's work.

Everything is real arithmetic on a batch-innermost layout ``(H, W, C, n)`` (n images), so that
every step is one GEMM or one batch of GEMMs with n or more columns, and no step needs a
transpose:

====================  =========================================  ===========================
step                  matrix (rows x cols)                      operand
====================  =========================================  ===========================
rows -> half spectrum ``E1 (2 F_h) x H``, rows (f_h, re/im)      ``x (H, W C n)``
columns -> spectrum   ``E2 (2 L_w) x (2 W)``, rows (f_w, re/im)  ``A[f_h] (2 W, C n)``
channel mixing        ``M[f] (2 O) x (2 C)`` per frequency       ``X[f] (2 C, n)``
spectrum -> columns   ``D2 (2 W) x (2 L_w)``                     ``Y[f_h] (2 L_w, O n)``
half spectrum -> rows ``D1 H x (2 F_h)``                         ``Z (2 F_h, W O n)``
====================  =========================================  ===========================

with ``F_h = L_h // 2 + 1`` and ``F = F_h L_w`` frequencies. ``M[f]`` is the real 2 x 2-block
form of the complex mixing matrix ``G[f][o, c] = sum_{a,b} K[a, b, c, o] exp(+2 pi i (f_h (a-p) /
L_h + f_w (b-p) / L_w))``, built from the kernel by one GEMM with a fixed table ``T``. Because
the chain is a product of real matrices whose product is exactly the correlation operator, its
gradients are the same chain with every matrix transposed, and the kernel gradient is ``T^T``
applied to ``sum_n dY[f] X[f]^T``.

The output rows and columns can be put in pooling order (all even rows, then all odd rows), so
that a following 2 x 2 max-pool reads four blocks instead of four strided lattices.
"""

from __future__ import annotations

import numpy as np


class FourierCorrelation:
    """Precomputed transforms for 'same' correlation of ``H x W`` images with a ``size x size``
    kernel, for any numbers of channels.

    Parameters
    ----------
    H, W : int
        Image height and width.
    size : int
        Odd kernel size k.
    dtype : float32 or float64
        Dtype of the transform matrices (and of the data they are applied to).
    pooled_order : bool
        Emit output rows as (row parity, row // 2) and columns likewise, for a 2 x 2 pool
        (requires even H and W). The input is always in natural order.

    Raises
    ------
    ValueError
        If ``pooled_order`` and H or W is odd.
    """

    def __init__(self, H: int, W: int, size: int, dtype=np.float32, pooled_order: bool = False):
        self.H, self.W, self.size = H, W, size
        p = size // 2
        Lh, Lw = H + p, W + p
        Fh = Lh // 2 + 1
        self.Lh, self.Lw, self.Fh, self.F = Lh, Lw, Fh, Fh * Lw
        h, w = np.arange(H), np.arange(W)

        # rows: real -> half spectrum, e^{-i t}
        t = 2 * np.pi * np.outer(np.arange(Fh), h) / Lh                      # (Fh, H)
        E1 = np.stack([np.cos(t), -np.sin(t)], axis=1).reshape(2 * Fh, H)
        # columns: complex -> complex, (a_re + i a_im)(cos - i sin)
        t = 2 * np.pi * np.outer(np.arange(Lw), w) / Lw                      # (Lw, W)
        c, s = np.cos(t), np.sin(t)
        E2: np.ndarray = np.zeros((Lw, 2, 2, W))
        E2[:, 0, 0], E2[:, 0, 1], E2[:, 1, 0], E2[:, 1, 1] = c, s, -s, c
        E2 = E2.reshape(2 * Lw, 2 * W)
        # inverse columns at w = 0..W-1, (y_re + i y_im)(cos + i sin)
        D2: np.ndarray = np.zeros((2, W, Lw, 2))
        D2[0, :, :, 0], D2[0, :, :, 1], D2[1, :, :, 0], D2[1, :, :, 1] = c.T, -s.T, s.T, c.T
        # inverse rows from the half spectrum: frequencies other than 0 and L/2 stand for two
        t = 2 * np.pi * np.outer(h, np.arange(Fh)) / Lh                      # (H, Fh)
        weight = np.full(Fh, 2.0)
        weight[0] = 1.0
        if Lh % 2 == 0:
            weight[-1] = 1.0
        weight /= Lh * Lw
        D1 = np.stack([weight * np.cos(t), -weight * np.sin(t)], axis=2).reshape(H, 2 * Fh)
        if pooled_order:
            if H % 2 or W % 2:
                raise ValueError(f"pooled order needs even H and W, got {H} x {W}")
            D1 = D1[_pool_order(H)]
            D2 = D2[:, _pool_order(W)]
        D2 = D2.reshape(2 * W, 2 * Lw)

        # kernel tap (a, b) -> real 2x2 blocks of exp(+i phi) per frequency: T (F, 2, 2, k*k)
        fh, fw = np.meshgrid(np.arange(Fh), np.arange(Lw), indexing="ij")
        taps = np.arange(size) - p
        phi = 2 * np.pi * (fh.reshape(-1, 1, 1) * taps.reshape(1, -1, 1) / Lh
                           + fw.reshape(-1, 1, 1) * taps.reshape(1, 1, -1) / Lw)  # (F, k, k)
        cp, sp = np.cos(phi).reshape(self.F, -1), np.sin(phi).reshape(self.F, -1)
        T = np.stack([np.stack([cp, -sp], 1), np.stack([sp, cp], 1)], 1)      # (F, 2, 2, kk)

        dt = np.dtype(dtype)
        self.E1, self.E2, self.D1, self.D2 = (np.ascontiguousarray(m, dtype=dt) for m in (E1, E2, D1, D2))
        self.T = np.ascontiguousarray(T.reshape(self.F * 4, size * size), dtype=dt)
        self.E1t, self.E2t = self.E1.T.copy(), self.E2.T.copy()
        self.D1t, self.D2t = self.D1.T.copy(), self.D2.T.copy()

    # ---- kernel <-> per-frequency mixing matrices
    def mixing(self, K: np.ndarray) -> np.ndarray:
        """The per-frequency mixing matrices of a kernel.

        Parameters
        ----------
        K : ndarray, shape (k, k, C, O)

        Returns
        -------
        M : ndarray, shape (F, 2 O, 2 C)
            Real 2 x 2-block form of the complex ``G[f]`` (module docstring).
        """
        k, _, C, O = K.shape
        TK = (self.T @ K.reshape(k * k, C * O)).reshape(self.F, 2, 2, C, O)
        return np.ascontiguousarray(TK.transpose(0, 1, 4, 2, 3)).reshape(self.F, 2 * O, 2 * C)

    def kernel_grad(self, dM: np.ndarray, C: int, O: int) -> np.ndarray:
        """The kernel gradient from the mixing matrices' gradient (the adjoint of :meth:`mixing`).

        Parameters
        ----------
        dM : ndarray, shape (F, 2 O, 2 C)
        C, O : int
            Input and output channels.

        Returns
        -------
        ndarray, shape (k, k, C, O)
        """
        d = np.ascontiguousarray(dM.reshape(self.F, 2, O, 2, C).transpose(0, 1, 3, 4, 2))
        k = self.size
        return (self.T.T @ d.reshape(self.F * 4, C * O)).reshape(k, k, C, O)

    # ---- one chunk of n images, batch innermost
    def spectrum(self, x: np.ndarray) -> np.ndarray:
        """The spectrum of a chunk of images.

        Parameters
        ----------
        x : ndarray, shape (H, W, C, n)
            Contiguous, batch innermost.

        Returns
        -------
        X : ndarray, shape (F, 2 C, n)
        """
        H, W, C, n = x.shape
        A = self.E1 @ x.reshape(H, W * C * n)
        X = np.matmul(self.E2, A.reshape(self.Fh, 2 * W, C * n))
        return X.reshape(self.F, 2 * C, n)

    def correlate(self, X: np.ndarray, M: np.ndarray) -> np.ndarray:
        """The 'same' correlation from the spectrum and the mixing matrices.

        Parameters
        ----------
        X : ndarray, shape (F, 2 C, n)
            From :meth:`spectrum`.
        M : ndarray, shape (F, 2 O, 2 C)
            From :meth:`mixing`.

        Returns
        -------
        y : ndarray, shape (H, W, O, n)
            Rows and columns in pooling order if ``pooled_order``.
        """
        n, O = X.shape[-1], M.shape[1] // 2
        Y = np.matmul(M, X)                                                  # (F, 2 O, n)
        Z = np.matmul(self.D2, Y.reshape(self.Fh, 2 * self.Lw, O * n))       # (Fh, 2 W, O n)
        y = self.D1 @ Z.reshape(2 * self.Fh, self.W * O * n)
        return y.reshape(self.H, self.W, O, n)

    def backward(self, dy: np.ndarray, X: np.ndarray, M: np.ndarray, need_dx: bool = True):
        """Gradients of ``sum(dy * correlate(X, M))`` for one chunk.

        Parameters
        ----------
        dy : ndarray, shape (H, W, O, n)
            In the output's order.
        X : ndarray, shape (F, 2 C, n)
        M : ndarray, shape (F, 2 O, 2 C)
        need_dx : bool
            Whether to compute ``dx``.

        Returns
        -------
        dM : ndarray, shape (F, 2 O, 2 C)
            Summed over the chunk.
        dx : ndarray, shape (H, W, C, n), or None
        """
        H, W, O, n = dy.shape
        C = M.shape[2] // 2
        dZ = self.D1t @ dy.reshape(H, W * O * n)
        dY = np.matmul(self.D2t, dZ.reshape(self.Fh, 2 * W, O * n)).reshape(self.F, 2 * O, n)
        dM = np.matmul(dY, X.transpose(0, 2, 1))
        if not need_dx:
            return dM, None
        dX = np.matmul(M.transpose(0, 2, 1), dY)                             # (F, 2 C, n)
        dA = np.matmul(self.E2t, dX.reshape(self.Fh, 2 * self.Lw, C * n))    # (Fh, 2 W, C n)
        dx = self.E1t @ dA.reshape(2 * self.Fh, W * C * n)
        return dM, dx.reshape(H, W, C, n)


def _pool_order(n: int) -> np.ndarray:
    """Indices ``0, 2, 4, ..., 1, 3, 5, ...``: even positions first, then odd ones."""
    return np.concatenate([np.arange(0, n, 2), np.arange(1, n, 2)])
