"""The sequential container: composition of layers, and per-example gradients of the whole network.

``Sequential`` runs its layers' ``init``/``forward``/``backward`` in order; params, caches and
grads are lists with one entry per layer. :meth:`Sequential.per_example_gradients` gives every
example's gradient with respect to all parameters as one ``(R, B, P)`` array, the ingredient of
Theorem 1's variance for any network (docs/theory.md).
"""

from __future__ import annotations

import numpy as np

from .layers import Layer
from .utils import check_batch, replica_generators, tree_leaves
from ..validation import integer, shape as check_shape


class Sequential(Layer):
    """Composition of layers; params, caches and grads are lists with one entry per layer.

    Parameters
    ----------
    layers : sequence of Layer
        Applied in order.

    Raises
    ------
    TypeError
        If ``layers`` is empty or holds something other than a :class:`Layer`.
    """

    def __init__(self, layers):
        try:
            self.layers = list(layers)
        except TypeError:
            raise TypeError(f"layers must be a non-empty sequence of failgeom.nn layers, got {layers!r}") from None
        if not self.layers or not all(isinstance(layer, Layer) for layer in self.layers):
            raise TypeError("layers must be a non-empty sequence of failgeom.nn layers")

    @property
    def has_params(self):
        """Whether any layer has trainable parameters."""
        return any(layer.has_params for layer in self.layers)

    def _check_tree(self, tree, name: str) -> None:
        if type(tree) is not list or len(tree) != len(self.layers):
            raise TypeError(f"{name} must be a list with one entry per layer ({len(self.layers)}), "
                            f"as init and forward return, got {type(tree).__name__}"
                            + (f" of length {len(tree)}" if isinstance(tree, (list, tuple)) else ""))

    def init(self, rng, R, in_shape, dtype=np.float32):
        """Initialise the layers in order, each on the previous layer's output shape.

        Each layer draws from its own child of each replica's Generator, so adding a layer
        never shifts another layer's initial weights.

        Parameters
        ----------
        rng : Generator, SeedSequence or sequence of R Generators
            As in :meth:`Layer.init`.
        R : int
            Number of replicas.
        in_shape : tuple of int
            One input example, without the R and B axes.
        dtype : {float32, float64}
            Dtype of the parameters.

        Returns
        -------
        params : list of dict
            One per layer, every array with leading axis R.
        out_shape : tuple of int
            One output example of the last layer.

        Raises
        ------
        TypeError, ValueError
            For a bad ``rng``, ``R`` or ``dtype``, or an ``in_shape`` a layer cannot take.
        """
        rngs = replica_generators(rng, R)
        # one child stream per layer and replica: adding a layer never shifts another's init
        per_layer = [[g.spawn(1)[0] for g in rngs] for _ in self.layers]
        params, shape = [], check_shape(in_shape, "in_shape")
        for layer, layer_rngs in zip(self.layers, per_layer):
            p, shape = layer.init(layer_rngs, R, shape, dtype)
            params.append(p)
        return params, shape

    def forward(self, params, x):
        """Apply the layers in order.

        Parameters
        ----------
        params : list of dict, from :meth:`init`
        x : ndarray, shape (R, B, *in_shape)

        Returns
        -------
        y : ndarray, shape (R, B, *out_shape)
        cache : list, one cache per layer

        Raises
        ------
        TypeError, ValueError
            If ``params`` is not one entry per layer, or a layer refuses its input.
        """
        self._check_tree(params, "params")
        caches = []
        for layer, p in zip(self.layers, params):
            x, cache = layer.forward(p, x)
            caches.append(cache)
        return x, caches

    def backward(self, params, cache, dy, need_dx=True):
        """Backpropagate ``dy`` through the layers in reverse order.

        Parameters
        ----------
        params, cache : list
            Given to and returned by :meth:`forward`.
        dy : ndarray, shape (R, B, *out_shape)
        need_dx : bool
            Whether the first layer computes ``dx`` (the others always do).

        Returns
        -------
        dx : ndarray, shape (R, B, *in_shape), or None
        grads : list of dict, mirroring ``params``

        Raises
        ------
        TypeError, ValueError
            If ``params`` or ``cache`` is not one entry per layer, or ``dy`` does not fit.
        """
        self._check_tree(params, "params")
        self._check_tree(cache, "cache")
        grads = [None] * len(self.layers)
        for i in range(len(self.layers) - 1, -1, -1):
            dy, grads[i] = self.layers[i].backward(params[i], cache[i], dy, need_dx=need_dx or i > 0)
        return dy, grads

    def per_example_grads(self, params, cache, dy, layer: int):
        """Per-example gradients of layer ``layer`` (index into ``layers``).

        ``dy`` must be the gradient of the *sum* of the per-example losses (``reduction="sum"``
        or ``"none"`` in :mod:`failgeom.nn.losses`), so each example's slice is the gradient of
        that example's own loss.

        Parameters
        ----------
        params, cache : list
            Given to and returned by :meth:`forward`.
        dy : ndarray, shape (R, B, *out_shape)
        layer : int
            Index of a layer with parameters, in ``0..len(layers)-1``.

        Returns
        -------
        dict
            That layer's per-example gradients: ``(R, B, ...)`` for a parameter ``(R, ...)``.

        Raises
        ------
        TypeError
            If ``layer`` is not an integer.
        ValueError
            If ``layer`` is out of range or its layer has no parameters.
        """
        layer = integer(layer, "layer")
        if not 0 <= layer < len(self.layers) or not self.layers[layer].has_params:
            raise ValueError(f"layer must index a layer with parameters, got {layer}")
        self._check_tree(params, "params")
        self._check_tree(cache, "cache")
        for i in range(len(self.layers) - 1, layer, -1):
            dy, _ = self.layers[i].backward(params[i], cache[i], dy)
        return self.layers[layer].per_example_grads(params[layer], cache[layer], dy)

    def per_example_gradients(self, params, cache, dy) -> np.ndarray:
        """Every example's gradient with respect to all parameters, as one ``(R, B, P)`` array.

        Row ``[r, b]`` is the gradient, for replica r, of ``sum(dy[r, b] * y[r, b])``: with ``dy``
        from a loss with ``reduction="sum"`` or ``"none"``, example b's own loss; with
        ``dy = ones``, the gradient of the network's output ``d p_w(x_b) / dw`` (Theorem 1). The
        shape is ``(R, B, P)`` for every R (``(1, B, P)`` for one replica). The P columns follow
        :func:`failgeom.nn.utils.tree_leaves` of ``params`` (layers in order, a layer's
        parameters in sorted name order), each parameter raveled in C order, so
        ``G.sum(axis=1)`` is the batch gradient of :meth:`backward` raveled the same way.

        Parameters
        ----------
        params, cache : list
            Given to and returned by :meth:`forward`.
        dy : ndarray, shape (R, B, *out_shape)
            The gradient of a scalar sum of per-example terms with respect to the output.

        Returns
        -------
        ndarray, shape (R, B, P)
            P is the number of parameters of one replica.

        Raises
        ------
        TypeError, ValueError
            If ``params`` or ``cache`` is not one entry per layer, ``dy`` does not fit, or no
            layer has parameters.
        """
        self._check_tree(params, "params")
        self._check_tree(cache, "cache")
        if not self.has_params:
            raise ValueError("the network has no parameters, so no per-example gradients")
        check_batch(dy, "dy")
        blocks = []
        for i in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[i]
            if layer.has_params:
                per = layer.per_example_grads(params[i], cache[i], dy)
                R, B = dy.shape[:2]
                blocks.append([g.reshape(R, B, -1) for g in tree_leaves(per)])
            if i > 0:
                dy, _ = layer.backward(params[i], cache[i], dy)
        return np.concatenate([g for layer_blocks in reversed(blocks) for g in layer_blocks], axis=2)
