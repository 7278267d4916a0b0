"""Heads: what a model puts on top of its recurrent body's outputs.

A head is, like a cell or a layer, a record of pure functions closed over its
hyperparameters::

  head = linear(output_size=10)
  params = head.init(key, hidden_size)          # {"w": (H, O), "b": (O,)}
  outputs = head.apply(params, ys)              # (..., H) -> (..., O)

``last_valid`` reads one step per sequence out of ``(*B, T, H)`` outputs,
for tasks with one prediction per sequence (the adding problem, sequential
MNIST). ``seqjax.models`` joins an input encoding, a body and a head.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from seqjax import checks
from seqjax.types import Array, Params, PRNGKey


class Head(NamedTuple):
  """A head as pure functions (see ``linear``).

  Attributes:
    init: ``(key, input_size) -> params``.
    apply: ``(params, ys (..., H)) -> outputs (..., O)``, on any leading axes.
    output_size: O.
    name: a readable description.
  """

  init: Callable[[PRNGKey, int], Params]
  apply: Callable[[Params, Array], Array]
  output_size: int
  name: str


def linear(output_size: int, *, init_scale: Optional[float] = None,
           tied: bool = False) -> Head:
  """An affine map from the body's outputs to O outputs (logits or values).

  Equation, on every leading index (``y`` of shape (..., H))::

    out = y W + b              W: (H, O), b: (O,)

  Params: ``{"w": (H, O), "b": (O,)}``, ``w`` ~ N(0, init_scale^2) and ``b``
  zeros. With ``tied=True`` the head owns only ``{"b": (O,)}`` and ``apply``
  must be given ``{"w": ..., "b": ...}`` with ``w`` from elsewhere: a language
  model passes its embedding transposed, ``W = E^T`` (Press & Wolf 2017,
  https://arxiv.org/abs/1608.05859).

  Args:
    output_size: O, > 0.
    init_scale: std of the initial weights; ``None`` uses ``1/sqrt(H)``
      (LeCun normal), which keeps the initial outputs at the scale of the
      body's outputs.
    tied: the weights are not owned by the head (see above).

  Returns:
    A ``Head``.
  """
  output_size = checks.positive_int("output_size", output_size)
  checks.boolean("tied", tied)
  if init_scale is not None:
    init_scale = checks.positive("init_scale", checks.finite("init_scale", init_scale))

  def init(key, input_size):
    input_size = checks.positive_int("input_size", input_size)
    params = {"b": jnp.zeros((output_size,))}
    if not tied:
      scale = 1.0 / np.sqrt(input_size) if init_scale is None else init_scale
      params["w"] = scale * jax.random.normal(key, (input_size, output_size))
    return params

  def apply(params, ys):
    if "w" not in params:
      raise ValueError("the params of a tied head hold only 'b': pass {'w': (H, O), 'b': (O,)} "
                       "with the shared weights")
    return ys @ params["w"] + params["b"]

  return Head(init, apply, output_size, f"linear({output_size}{', tied' if tied else ''})")


def last_valid(ys: Array, mask: Optional[Array] = None) -> Array:
  """The output of each sequence's last valid step.

  Equation (``t_b`` the last ``t`` with ``mask[b, t]`` True; ``T - 1``
  without a mask)::

    out_b = ys[b, t_b]

  With right padding this is the step at the sequence's length minus one; a
  row with no valid step reads step ``T - 1`` (which ``seqjax.unroll`` zeroes
  under a mask).

  Args:
    ys: (*B, T, H) outputs.
    mask: optional (*B, T) booleans (or 0/1).

  Returns:
    (*B, H).
  """
  ys = jnp.asarray(ys)
  if ys.ndim < 2:
    raise ValueError(f"ys must have shape (*B, T, H), got {ys.shape}")
  if mask is None:
    return ys[..., -1, :]
  mask = jnp.asarray(mask, bool)
  if mask.shape != ys.shape[:-1]:
    raise ValueError(f"mask must have shape (*B, T) = {ys.shape[:-1]}, got {mask.shape}")
  last = mask.shape[-1] - 1 - jnp.argmax(jnp.flip(mask, -1), axis=-1)
  return jnp.take_along_axis(ys, last[..., None, None], axis=-2)[..., 0, :]
