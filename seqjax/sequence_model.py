"""Sequence models for prediction tasks: a body (cell, layer or TCN) and a linear head.

Covers the classic benchmark shapes: one prediction per sequence from its last
step (adding problem, sequential MNIST) or one per step (copy memory,
polyphonic music). Inputs are features ``(*B, T, D)`` or, with ``num_tokens``,
integer ids ``(*B, T)`` fed as one-hot vectors.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Optional, Union

import jax
import jax.numpy as jnp
import numpy as np

from seqjax import checks
from seqjax import layers as layers_lib
from seqjax.types import Array, Cell, Params, PRNGKey


class SequenceModel(NamedTuple):
  """A body and a head as pure functions (see ``sequence_model``).

  Attributes:
    init: ``key -> params``.
    apply: ``(params, xs, *, mask=None, key=None, training=False) -> outputs``:
      ``(*B, O)`` with ``readout="last"``, ``(*B, T, O)`` with ``"all"``.
    output_size: O.
    name: a readable description.
  """

  init: Callable[[PRNGKey], Params]
  apply: Callable[..., Array]
  output_size: int
  name: str


def sequence_model(body: Union[Cell, layers_lib.Layer],
                   output_size: int,
                   *,
                   input_size: Optional[int] = None,
                   num_tokens: Optional[int] = None,
                   readout: str = "all",
                   head_init_scale: Optional[float] = None) -> SequenceModel:
  """A recurrent or convolutional body with a linear head.

  Equations (``r`` the body, ``x_t`` the input or ``onehot(x_t)``)::

    y_t = r(x_1, ..., x_t)                     (*B, T, H)
    out = y_T W + b   (readout="last": the last valid step under ``mask``)
    out_t = y_t W + b (readout="all")

  Params: ``{"body": ..., "head": {"w": (H, O), "b": (O,)}}``.

  Args:
    body: a ``Cell`` (lifted with ``seqjax.layers.recurrent``) or a ``Layer``
      (``seqjax.layers.stacked``, ``seqjax.tcn.tcn``, ...).
    output_size: O, > 0.
    input_size: D for float inputs ``(*B, T, D)``; exactly one of
      ``input_size`` and ``num_tokens``.
    num_tokens: V for integer inputs ``(*B, T)`` in ``[0, V)``, one-hot encoded.
    readout: ``"last"`` or ``"all"``.
    head_init_scale: std of the normal initial head weights; ``None`` uses
      ``1/sqrt(H)`` (LeCun normal).

  Returns:
    A ``SequenceModel``.
  """
  output_size = checks.positive_int("output_size", output_size)
  checks.one_of("readout", readout, ("last", "all"))
  if (input_size is None) == (num_tokens is None):
    raise ValueError("give exactly one of input_size (float inputs) and num_tokens "
                     f"(integer inputs), got input_size={input_size}, num_tokens={num_tokens}")
  features = checks.positive_int("input_size" if num_tokens is None else "num_tokens",
                                  input_size if num_tokens is None else num_tokens)
  if isinstance(body, Cell):
    body = layers_lib.recurrent(body)
  if not isinstance(body, layers_lib.Layer):
    raise TypeError(f"body must be a seqjax Cell or Layer, got {type(body).__name__}")
  hidden = body.output_size
  scale = (1.0 / np.sqrt(hidden) if head_init_scale is None
           else checks.positive("head_init_scale", head_init_scale))

  def init(key):
    k_body, k_head = jax.random.split(key)
    return {"body": body.init(k_body, features),
            "head": {"w": scale * jax.random.normal(k_head, (hidden, output_size)),
                     "b": jnp.zeros((output_size,))}}

  def apply(params, xs, *, mask=None, key=None, training=False):
    xs = jnp.asarray(xs)
    if num_tokens is not None:
      if not jnp.issubdtype(xs.dtype, jnp.integer):
        raise TypeError(f"xs must be integer token ids (*B, T) for num_tokens={num_tokens}, "
                        f"got dtype {xs.dtype}")
      xs = jax.nn.one_hot(xs, num_tokens, dtype=params["head"]["w"].dtype)
    _, ys = body.apply(params["body"], xs, mask=mask, key=key, training=training)
    if readout == "last":
      if mask is None:
        ys = ys[..., -1, :]
      else:
        mask = jnp.asarray(mask, bool)
        last = mask.shape[-1] - 1 - jnp.argmax(jnp.flip(mask, -1), axis=-1)
        ys = jnp.take_along_axis(ys, last[..., None, None], axis=-2)[..., 0, :]
    return ys @ params["head"]["w"] + params["head"]["b"]

  return SequenceModel(init, apply, output_size,
                       f"sequence_model({body.name} -> {output_size}, readout={readout})")


def count_params(params: Params) -> int:
  """Number of scalars in a params pytree."""
  return int(sum(np.size(leaf) for leaf in jax.tree_util.tree_leaves(params)))
