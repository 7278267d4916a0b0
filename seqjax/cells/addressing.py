"""Memory addressing and controllers shared by the memory-augmented cells (NTM, DNC).

Every function takes a batch of memories ``(*B, N, M)`` (N slots of width M)
and weightings over the slots ``(*B, R, N)``, one row per head (R heads), and
is differentiable everywhere (cosines with an epsilon, sharpening on a floor).

The NTM's addressing of one head (Graves, Wayne & Danihelka 2014, section 3.3)
is the chain::

  w_c = content_weights(M, k, beta)          # eqs (5)-(6)
  w_g = interpolate(w_c, w_prev, g)          # eq (7)
  w~  = circular_shift(w_g, s)               # eq (8)
  w   = sharpen(w~, gamma)                   # eq (9)

References:
  Graves, Wayne & Danihelka 2014, "Neural Turing Machines",
  https://arxiv.org/abs/1410.5401
  Graves et al. 2016, "Hybrid computing using a neural network with dynamic
  external memory" (the DNC; its content lookup is ``content_weights``).
"""

from __future__ import annotations

from typing import Union

import jax
import jax.numpy as jnp

from seqjax import checks
from seqjax.cells.feedforward import feedforward
from seqjax.cells.lstm import lstm
from seqjax.types import Array, Cell

#: Added to the product of norms in cosine similarities (all-zero rows get 0).
COSINE_EPS = 1e-6
#: Floor of the weights raised to the sharpening power (keeps d/dgamma finite).
SHARPEN_FLOOR = 1e-30


def cosine_similarity(memory: Array, keys: Array, eps: float = COSINE_EPS) -> Array:
  """Cosine similarity of every key with every memory slot.

  ``K[r, i] = k_r . M_i / (|k_r| |M_i| + eps)``. A zero key or slot gives 0
  with finite gradients (a freshly initialised controller can emit a zero key).

  Args:
    memory: (*B, N, M).
    keys: (*B, R, M), one key per head.
    eps: added to the product of the norms.

  Returns:
    (*B, R, N).
  """
  dots = jnp.einsum("...rm,...nm->...rn", keys, memory)
  norms = _norm(keys)[..., :, None] * _norm(memory)[..., None, :]
  return dots / (norms + eps)


def _norm(x: Array) -> Array:
  """Euclidean norm over the last axis whose gradient at a zero vector is 0, not NaN."""
  squares = jnp.sum(x * x, axis=-1)
  return jnp.sqrt(jnp.maximum(squares, jnp.finfo(squares.dtype).tiny))


def content_weights(memory: Array, keys: Array, strengths: Array) -> Array:
  """Content-based addressing: a softmax over slots of sharpened cosines.

  ``w_c[r, i] = exp(beta_r K[r, i]) / sum_j exp(beta_r K[r, j])``.

  Args:
    memory: (*B, N, M).
    keys: (*B, R, M).
    strengths: (*B, R), beta >= 0 (e.g. a softplus or oneplus of a logit).

  Returns:
    (*B, R, N), each row summing to 1.
  """
  return jax.nn.softmax(strengths[..., None] * cosine_similarity(memory, keys), axis=-1)


def interpolate(content: Array, previous: Array, gate: Array) -> Array:
  """``w_g = g w_c + (1 - g) w_prev``, per head.

  Args:
    content: (*B, R, N), the content weighting.
    previous: (*B, R, N), the head's weighting at the previous step.
    gate: (*B, R), g in [0, 1].

  Returns:
    (*B, R, N).
  """
  gate = gate[..., None]
  return gate * content + (1 - gate) * previous


def circular_shift(weights: Array, shifts: Array) -> Array:
  """Rotates each weighting by a distribution over shifts ``-S..S``.

  ``w~[i] = sum_{o=-S..S} s[o] w[(i - o) mod N]``: a shift of +1 moves the
  focus one slot forward, wrapping around the end of the memory.

  Args:
    weights: (*B, R, N).
    shifts: (*B, R, 2S + 1), a distribution over the shifts ``-S..S`` (index
      ``S`` is no shift); 2S + 1 <= N.

  Returns:
    (*B, R, N).
  """
  span = shifts.shape[-1]
  if span % 2 != 1 or span > weights.shape[-1]:
    raise ValueError(f"shifts must have an odd size 2S + 1 <= N = {weights.shape[-1]} on "
                     f"its last axis, got shape {shifts.shape}")
  radius = span // 2
  return sum(shifts[..., k, None] * jnp.roll(weights, k - radius, axis=-1)
             for k in range(span))


def sharpen(weights: Array, gamma: Array) -> Array:
  """``w[i] = w~[i]^gamma / sum_j w~[j]^gamma``, per head.

  Weights are floored at ``SHARPEN_FLOOR`` before the power so that the
  gradient with respect to gamma (``w^gamma log w``) stays finite.

  Args:
    weights: (*B, R, N), nonnegative.
    gamma: (*B, R), >= 1.

  Returns:
    (*B, R, N), each row summing to 1.
  """
  powered = jnp.exp(gamma[..., None] * jnp.log(jnp.maximum(weights, SHARPEN_FLOOR)))
  return powered / jnp.sum(powered, axis=-1, keepdims=True)


def read(memory: Array, weights: Array) -> Array:
  """Read vectors ``r_h = sum_i w_h[i] M_i``.

  Args:
    memory: (*B, N, M).
    weights: (*B, R, N).

  Returns:
    (*B, R, M).
  """
  return jnp.einsum("...rn,...nm->...rm", weights, memory)


def write(memory: Array, weights: Array, erase: Array, add: Array) -> Array:
  """Erase, then add, with every write head (NTM eqs (3)-(4)).

  ``M'[i] = M[i] * prod_h (1 - w_h[i] e_h) + sum_h w_h[i] a_h``.

  Args:
    memory: (*B, N, M).
    weights: (*B, W, N), one row per write head.
    erase: (*B, W, M), in [0, 1].
    add: (*B, W, M).

  Returns:
    (*B, N, M).
  """
  keep = jnp.prod(1 - weights[..., :, :, None] * erase[..., :, None, :], axis=-3)
  return memory * keep + jnp.einsum("...wn,...wm->...nm", weights, add)


def oneplus(x: Array) -> Array:
  """``1 + softplus(x)``: an unconstrained value mapped to [1, inf) (sharpening, DNC strengths)."""
  return 1 + jax.nn.softplus(x)


def controller(spec: Union[str, Cell], hidden_size: int, dtype=jnp.float32) -> Cell:
  """The controller cell a memory cell's ``controller`` argument names.

  Args:
    spec: ``"lstm"`` (``seqjax.cells.lstm(hidden_size)``), ``"feedforward"``
      (``seqjax.cells.feedforward(hidden_size)``) or a ``Cell`` whose ``output_size`` is
      ``hidden_size``.
    hidden_size: H, the controller's output size.
    dtype: dtype of the built controllers.
  """
  if isinstance(spec, Cell):
    if spec.output_size != hidden_size:
      raise ValueError(f"controller must output hidden_size = {hidden_size} features, "
                       f"got a cell with output_size {spec.output_size}")
    return spec
  checks.one_of("controller", spec, ("lstm", "feedforward"))
  if spec == "lstm":
    return lstm(hidden_size, dtype=dtype)
  return feedforward(hidden_size, dtype=dtype)
