"""Small utilities over params pytrees (nested dicts of arrays)."""

from __future__ import annotations

import jax
import numpy as np

from seqjax.types import Params


def count_params(params: Params) -> int:
  """Number of scalars in a params pytree.

  Works on arrays, numpy arrays and the ``jax.ShapeDtypeStruct`` leaves of
  ``jax.eval_shape(model.init, key)``, so a model's size is known without
  allocating it.

  Args:
    params: any pytree whose leaves have a shape.

  Returns:
    The sum over leaves of the product of their shapes, a Python int.
  """
  return int(sum(np.prod(np.shape(leaf), dtype=np.int64)
                 for leaf in jax.tree_util.tree_leaves(params)))
