"""Binary line images and their k-tuples (paper Sec. 3.1, Figure 2).

One image is 28x28, zero except for a straight line: angle ``theta ~ U[0, pi)``, length
``l ~ U[5, 23]``, centre ``~ U[0, 28)^2``. As in the authors' original code, the line is the set
of points ``centre ± unit(theta) * j`` for ``j = 0 .. floor(l/2) - 1``, each truncated (towards
zero) to integer pixel coordinates and kept when it falls inside the image. The image label is
``+1`` when ``theta < pi/2`` and ``-1`` otherwise. A k-tuple holds k independent images and is
labelled by the product (parity) of their labels.

A fixed data set (the original trains on 500,000 tuples per k, read in order and wrapping
around) is a :class:`TupleSet`: it stores each image's four line parameters (32 bytes instead of
784 pixels) and renders a batch of images only when it is read, so 500,000 tuples at k = 4 take
64 MB and a fraction of a second to draw.

Coordinates: the first point coordinate, ``cx + j cos(theta)``, is the pixel column; the second,
``cy + j sin(theta)``, is the pixel row. Shown with the row axis pointing up (``origin="lower"``),
a label ``+1`` line rises to the right.

Everything is vectorized over images: no Python loop over images or points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..nn.utils import as_dtype
from ..validation import positive_int

#: image side, in pixels
SIZE = 28
#: the line length is drawn uniformly in ``[MIN_LENGTH, SIZE - MIN_LENGTH]``
MIN_LENGTH = 5.0
#: the largest number of steps ``floor(l/2)`` a line can take from its centre
MAX_HALF = int((SIZE - MIN_LENGTH) // 2)


@dataclass(frozen=True)
class LineParams:
    """The random parameters of a batch of lines, each an array over the images.

    Parameters
    ----------
    theta : ndarray, shape (...)
        Angles in ``[0, pi)``.
    length : ndarray, shape (...)
        Lengths in ``[MIN_LENGTH, SIZE - MIN_LENGTH]``.
    centre : ndarray, shape (..., 2)
        ``(cx, cy)``: the pixel column and row of the centre.
    """

    theta: np.ndarray
    length: np.ndarray
    centre: np.ndarray  # (..., 2): (cx, cy)


def sample_line_params(rng: np.random.Generator, shape) -> LineParams:
    """Draw ``theta``, ``length`` and ``centre`` for images of batch shape ``shape`` (Sec. 3.1).

    Parameters
    ----------
    rng : numpy.random.Generator
    shape : int or tuple of int
        Batch shape, positive entries.

    Returns
    -------
    LineParams
        ``theta`` and ``length`` of shape ``shape``, ``centre`` of shape ``shape + (2,)``.

    Raises
    ------
    TypeError
        If ``rng`` is not a Generator or ``shape`` not an int or a tuple of ints (ValueError
        for a non-positive entry).
    """
    shape = _check_shape(shape)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy Generator, got {type(rng).__name__}")
    theta = rng.uniform(0.0, np.pi, shape)
    length = rng.uniform(MIN_LENGTH, SIZE - MIN_LENGTH, shape)
    centre = rng.uniform(0.0, SIZE, shape + (2,))
    return LineParams(theta, length, centre)


def line_pixels(params: LineParams):
    """Pixel coordinates of every line point and whether it is drawn.

    Parameters
    ----------
    params : LineParams
        Of batch shape ``(...)``.

    Returns
    -------
    col, row : int arrays of shape ``(..., 2, MAX_HALF)``
        Truncated coordinates of ``centre + s * unit(theta) * j`` for ``s`` in (+1, -1) and
        ``j = 0 .. MAX_HALF - 1``.
    drawn : bool array of the same shape
        ``j < floor(l/2)`` and the point lies inside the image.
    """
    theta = np.asarray(params.theta, dtype=np.float64)
    length = np.asarray(params.length, dtype=np.float64)
    centre = np.asarray(params.centre, dtype=np.float64)
    j = np.arange(MAX_HALF, dtype=np.float64)
    sign = np.array([1.0, -1.0])[:, None]
    step = sign * j  # (2, MAX_HALF)
    # trunc, not floor: the original code casts to int, which rounds towards zero
    col = np.trunc(centre[..., 0, None, None] + np.cos(theta)[..., None, None] * step).astype(np.int64)
    row = np.trunc(centre[..., 1, None, None] + np.sin(theta)[..., None, None] * step).astype(np.int64)
    half = np.floor(length / 2.0).astype(np.int64)
    drawn = (j < half[..., None, None]) & (col >= 0) & (col < SIZE) & (row >= 0) & (row < SIZE)
    return col, row, drawn


def render_lines(params: LineParams, dtype=np.float32) -> np.ndarray:
    """Rasterise lines to binary images (index ``[row, col]``).

    Parameters
    ----------
    params : LineParams
        Of batch shape ``(...)``.
    dtype : {float32, float64}

    Returns
    -------
    ndarray, shape (..., 28, 28), dtype
        1 on the line's pixels, 0 elsewhere.
    """
    dtype = as_dtype(dtype)
    col, row, drawn = line_pixels(params)
    batch_shape = np.shape(params.theta)
    n = int(np.prod(batch_shape, dtype=np.int64))
    images = np.zeros(n * SIZE * SIZE, dtype=dtype)
    image_index = np.arange(n, dtype=np.int64).reshape(batch_shape + (1, 1))
    flat = (image_index * SIZE + row) * SIZE + col
    images[flat[drawn]] = 1  # repeated pixels just write 1 again
    return images.reshape(batch_shape + (SIZE, SIZE))


def line_labels(theta) -> np.ndarray:
    """Per-image label ``+1`` if ``theta < pi/2`` else ``-1``.

    Parameters
    ----------
    theta : array_like

    Returns
    -------
    int8 ndarray, shape of ``theta``
    """
    return np.where(np.asarray(theta) < np.pi / 2, 1, -1).astype(np.int8)


def sample_line_images(rng: np.random.Generator, shape, dtype=np.float32):
    """Fresh line images of batch shape ``shape`` and their labels.

    Parameters
    ----------
    rng : numpy.random.Generator
    shape : int or tuple of int
        Batch shape.
    dtype : {float32, float64}

    Returns
    -------
    images : array ``(*shape, 28, 28)`` of 0/1 in ``dtype``
    labels : int8 array ``shape`` in {-1, +1}
    """
    params = sample_line_params(rng, shape)
    return render_lines(params, dtype), line_labels(params.theta)


def tuple_labels(image_labels) -> np.ndarray:
    """Product of the k image labels along the last axis (the tuple's parity label).

    Parameters
    ----------
    image_labels : array_like, shape (..., k)
        Labels in {-1, +1}.

    Returns
    -------
    int8 ndarray, shape (...)
    """
    return np.prod(np.asarray(image_labels, dtype=np.int8), axis=-1, dtype=np.int8)


def sample_tuples(rng: np.random.Generator, shape, k: int, dtype=np.float32):
    """k-tuples of independent line images (Sec. 3.1).

    Parameters
    ----------
    rng : numpy Generator
    shape : tuple of int
        Batch shape, e.g. ``(R, B)``.
    k : int
        Images per tuple.
    dtype : {float32, float64}

    Returns
    -------
    images : array ``(*shape, k, 28, 28)``
    image_labels : int8 array ``(*shape, k)``
    labels : int8 array ``shape``, the product of the image labels

    Raises
    ------
    TypeError, ValueError
        If ``k`` or an entry of ``shape`` is not a positive integer, or ``rng`` is not a Generator.
    """
    k = positive_int(k, "k")
    images, image_labels = sample_line_images(rng, _check_shape(shape) + (k,), dtype)
    return images, image_labels, tuple_labels(image_labels)


#: columns of a :class:`TupleSet`'s parameter array
PARAM_COLUMNS = ("theta", "length", "cx", "cy")


@dataclass(frozen=True)
class TupleSet:
    """A fixed set of k-tuples of line images per replica, stored as line parameters.

    Parameters
    ----------
    params : float64 array ``(R, n, k, 4)``
        ``theta, length, cx, cy`` of every image (:data:`PARAM_COLUMNS`).
    """

    params: np.ndarray

    @property
    def size(self) -> int:
        """Tuples per replica, ``n``."""
        return self.params.shape[1]

    @property
    def k(self) -> int:
        """Images per tuple, ``k``."""
        return self.params.shape[2]

    def take(self, rows, dtype=np.float32):
        """The tuples at ``rows`` of every replica.

        Parameters
        ----------
        rows : int array_like, shape (m,) or (R, m)
            The same rows for every replica, or one row list per replica.
        dtype : {float32, float64}

        Returns
        -------
        images : array ``(R, m, k, 28, 28)`` in ``dtype``
        image_labels : int8 array ``(R, m, k)``
        labels : int8 array ``(R, m)``
        """
        rows = np.asarray(rows, dtype=np.int64)
        if rows.ndim == 1:
            p = self.params[:, rows]
        else:
            p = np.take_along_axis(self.params, rows[:, :, None, None], axis=1)
        lp = LineParams(p[..., 0], p[..., 1], p[..., 2:4])
        image_labels = line_labels(lp.theta)
        return render_lines(lp, dtype), image_labels, tuple_labels(image_labels)

    def batch(self, start: int, size: int, dtype=np.float32):
        """``size`` consecutive tuples from row ``start``, wrapping around the end of the set.

        Parameters
        ----------
        start : int
            First row (taken modulo the set's size).
        size : int
            Number of tuples, m.
        dtype : {float32, float64}

        Returns
        -------
        images, image_labels, labels
            As :meth:`take`: ``(R, m, k, 28, 28)``, ``(R, m, k)`` and ``(R, m)``.

        Raises
        ------
        TypeError, ValueError
            If ``size`` is not a positive integer.
        """
        rows = (int(start) + np.arange(positive_int(size, "size"), dtype=np.int64)) % self.size
        return self.take(rows, dtype)


def sample_tuple_set(rngs, n: int, k: int) -> TupleSet:
    """A fixed set of ``n`` k-tuples per replica, replica r drawn from ``rngs[r]`` alone.

    The draws are those of :func:`sample_tuples` with shape ``(n,)`` on the same generator, so
    ``sample_tuple_set([g], n, k).batch(0, n)`` equals ``sample_tuples(g', (n,), k)`` for a copy
    ``g'`` of ``g`` (with a leading replica axis of 1).

    Parameters
    ----------
    rngs : sequence of R Generators
    n, k : int
        Tuples per replica and images per tuple.

    Returns
    -------
    TupleSet
        With ``params`` of shape ``(R, n, k, 4)``.

    Raises
    ------
    TypeError, ValueError
        If ``n`` or ``k`` is not a positive integer or an entry of ``rngs`` is not a Generator.
    """
    n, k = positive_int(n, "n"), positive_int(k, "k")
    rngs = list(rngs)
    out = np.empty((len(rngs), n, k, 4), dtype=np.float64)
    for r, rng in enumerate(rngs):
        p = sample_line_params(rng, (n, k))
        out[r, ..., 0], out[r, ..., 1], out[r, ..., 2:4] = p.theta, p.length, p.centre
    return TupleSet(out)


def _check_shape(shape) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = (shape,)
    try:
        shape = tuple(shape)
    except TypeError:
        raise TypeError(f"shape must be an int or a tuple of ints, got {shape!r}") from None
    for s in shape:
        positive_int(s, "shape entries")
    return shape
