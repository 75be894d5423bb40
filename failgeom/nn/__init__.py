"""Network parts with hand-written gradients over a leading replica axis (docs/architecture.md).

Nothing here knows a paper section: experiments compose these parts.
"""

from . import losses, optim, utils
from .conv import Conv1D, Conv2D, MaxPool2D
from .convpool import ConvPool2D
from .forward_only import StraightThrough, forward_only_grads, forward_only_step
from .gradcheck import check_layer, check_loss, check_per_example, numerical_gradient
from .layers import Dense, Flatten, Layer, ReLU, Reshape, Sigmoid, shared, truncated_normal
from .sequential import Sequential
from .optim import PAPER_ADAM, SGD, Adam, PreconditionedSGD, adam_update
from .smooth_step import SmoothStep
from .sparse import OneHotDense, RowSparseAdam, row_sparse_step
from .utils import as_dtype

__all__ = [
    "Adam", "Conv1D", "Conv2D", "ConvPool2D", "Dense", "Flatten", "Layer", "MaxPool2D", "PAPER_ADAM",
    "PreconditionedSGD", "ReLU", "Reshape", "SGD", "Sequential", "Sigmoid", "check_layer",
    "check_loss", "check_per_example", "losses", "numerical_gradient", "optim", "shared",
    "truncated_normal", "utils",
    "SmoothStep", "StraightThrough", "forward_only_grads", "forward_only_step",
    "OneHotDense", "RowSparseAdam", "adam_update", "row_sparse_step", "as_dtype",
]
