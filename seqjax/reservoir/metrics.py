"""The error measure of reservoir computing: the normalised root-mean-square error.

``nrmse`` is the one definition that ``seqjax.reservoir`` reports everywhere
(the sweep's validation error, forecasts, the benchmarks).

References:
  Jaeger & Haas 2004, "Harnessing nonlinearity: predicting chaotic systems
  and saving energy in wireless communication", Science 304 (NRMSE = RMSE
  over the standard deviation of the target).
  Lukosevicius 2012, "A practical guide to applying echo state networks",
  Neural Networks: Tricks of the Trade, section 2 (the error averaged over
  output dimensions, each normalised by its own target variance).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from seqjax import checks
from seqjax.types import Array


def nrmse(predictions: Array, targets: Array, *, per_output: bool = False) -> Array:
  """Normalised root-mean-square error, output by output, averaged over outputs.

  For predictions ``p`` and targets ``t`` of shape (..., O), with ``n``
  running over every leading position (batch rows and steps) and ``o`` over
  the O outputs::

    nrmse_o = sqrt(mean_n (p_no - t_no)^2) / std_n(t_no)
    nrmse   = mean_o nrmse_o

  with the population standard deviation. Each output is measured against
  its own spread, so an output of small amplitude is not drowned by a large
  one, and 1 is the error of always predicting an output's mean. For one
  output this is ``rms(p - t) / std(t)``.

  This is the literature's definition (Jaeger & Haas 2004; Lukosevicius
  2012, which normalises dimension-wise and averages over outputs) and
  reservoirpy's dimension-wise error with the standard deviation as norm,
  ``reservoirpy.observables.nrmse(t, p, norm_value=t.std(0),
  dimensionwise=True).mean()``. reservoirpy's default differs: it divides
  the RMSE over all elements by the peak-to-peak range (``norm="minmax"``),
  and its ``norm="var"`` divides by the variance, not the standard deviation.

  Jittable and vmappable.

  Args:
    predictions: p, (..., O) with at least one leading axis.
    targets: t, the shape of ``predictions``.
    per_output: return the (O,) vector ``nrmse_o`` instead of its mean.

  Returns:
    A scalar, or (O,) with ``per_output``, in the dtype of the inputs (at
    least float32).

  Raises:
    ValueError/TypeError: for mismatched shapes, fewer than 2 axes or
      non-float arrays.
  """
  shape = checks.shape_of(predictions)
  if shape != checks.shape_of(targets):
    raise ValueError(f"predictions and targets must have the same shape, got "
                     f"{shape} and {checks.shape_of(targets)}")
  if len(shape) < 2:
    raise ValueError(f"predictions and targets must have shape (..., O) with at least "
                     f"one axis before the outputs, got {shape}")
  checks.float_array("predictions", predictions)
  checks.float_array("targets", targets)
  return _nrmse(jnp.asarray(predictions), jnp.asarray(targets),
                per_output=checks.boolean("per_output", per_output))


@functools.partial(jax.jit, static_argnames=("per_output",))
def _nrmse(predictions, targets, per_output):
  # Explicit promotion (as under jax_numpy_dtype_promotion="strict"): the wider
  # of the two float dtypes, at least float32, as far as x64 mode allows.
  dtype = jax.dtypes.canonicalize_dtype(
      np.promote_types(np.promote_types(predictions.dtype, targets.dtype), np.float32))
  predictions = predictions.astype(dtype).reshape(-1, predictions.shape[-1])
  targets = targets.astype(dtype).reshape(-1, targets.shape[-1])
  rmse = jnp.sqrt(jnp.mean((predictions - targets) ** 2, axis=0))
  errors = rmse / jnp.std(targets, axis=0)
  return errors if per_output else jnp.mean(errors)
