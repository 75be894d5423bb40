"""Deprecated private alias of :mod:`failgeom.nn.utils`, kept until every importer has moved."""

from .utils import DTYPES, as_dtype, check_positive_int, per_replica, replica_generators, tree_leaves, tree_map

__all__ = ["DTYPES", "as_dtype", "check_positive_int", "per_replica", "replica_generators", "tree_leaves",
           "tree_map"]
