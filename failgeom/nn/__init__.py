"""Network parts with hand-written gradients over a leading replica axis (ARCHITECTURE.md).

Nothing here knows a paper section: experiments compose these parts.
"""

from . import losses, optim
from ._util import as_dtype, check_positive_int
from .conv import Conv1D, Conv2D, MaxPool2D
from .forward_only import StraightThrough, forward_only_grads, forward_only_step
from .gradcheck import check_layer, check_loss, check_per_example, numerical_gradient
from .layers import Dense, Flatten, Layer, ReLU, Reshape, Sequential, Sigmoid, shared, truncated_normal
from .optim import PAPER_ADAM, SGD, Adam, PreconditionedSGD, adam_update
from .sparse import OneHotDense, RowSparseAdam, row_sparse_step

__all__ = [
    "Adam", "Conv1D", "Conv2D", "Dense", "Flatten", "Layer", "MaxPool2D", "PAPER_ADAM",
    "PreconditionedSGD", "ReLU", "Reshape", "SGD", "Sequential", "Sigmoid", "check_layer",
    "check_loss", "check_per_example", "losses", "numerical_gradient", "optim", "shared",
    "truncated_normal",
    "StraightThrough", "forward_only_grads", "forward_only_step",
    "OneHotDense", "RowSparseAdam", "adam_update", "row_sparse_step", "as_dtype", "check_positive_int",
]
