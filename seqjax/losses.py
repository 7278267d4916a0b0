"""Losses as ``(total, count)`` pairs: sums that add up across batches and devices.

Every loss here returns the *summed* loss over the counted items and how many
items were counted, both float32 scalars. Their ratio is the mean; keeping
them apart lets an evaluation add sums over batches of different sizes (a
padded last batch, rows split over devices) and divide once at the end. A
``mask`` marks which items count (False: padding, or a boundary the loss must
not see); it is a loss mask only, and may be the same mask given to
``seqjax.unroll``.

Shapes: B batch (any leading axes), T time, V classes, K independent binary
outputs (e.g. the 88 keys of a piano roll).
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp

from seqjax.types import Array


def _weights(mask: Optional[Array], shape: tuple[int, ...], name: str) -> Array:
  if mask is None:
    return jnp.ones(shape, jnp.float32)
  mask = jnp.asarray(mask)
  if mask.shape != shape:
    raise ValueError(f"mask must have the shape {shape} of the counted items, got {mask.shape} "
                     f"(in {name})")
  return mask.astype(jnp.float32)


def cross_entropy(logits: Array, targets: Array,
                  mask: Optional[Array] = None, *,
                  label_smoothing: float = 0.0) -> tuple[Array, Array]:
  """Summed negative log-likelihood of integer targets under softmax(logits).

  Equations, per item ``i`` of ``(*B, T)``::

    nll_i = -log softmax(logits_i)[targets_i] = logsumexp(logits_i) - logits_i[targets_i]
    total = sum_i m_i nll_i,   count = sum_i m_i

  With ``label_smoothing = eps`` the target distribution is ``(1 - eps)
  onehot + eps / V`` (Szegedy et al. 2016, as ``optax.smooth_labels``)::

    nll_i = (1 - eps) (-log p_i[targets_i]) + eps mean_v (-log p_i[v])

  Args:
    logits: (*B, T, V) (any leading axes; the last is the classes).
    targets: (*B, T) int ids in ``[0, V)``.
    mask: optional (*B, T) booleans (or 0/1); False items are not counted.
    label_smoothing: eps in [0, 1).

  Returns:
    ``(total, count)``, float32 scalars, in nats; the mean NLL is
    ``total / count`` and bits per token ``total / count / ln 2``.
  """
  logits = jnp.asarray(logits)
  targets = jnp.asarray(targets)
  if targets.shape != logits.shape[:-1]:
    raise ValueError(f"targets must have shape {logits.shape[:-1]} (the logits' without the "
                     f"class axis), got {targets.shape}")
  if not 0.0 <= label_smoothing < 1.0:
    raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
  # bf16/f16 logits are reduced in float32; float64 ones (gradient checks) stay.
  wide = jnp.issubdtype(logits.dtype, jnp.floating) and jnp.finfo(logits.dtype).bits >= 32
  log_probs = jax.nn.log_softmax(logits.astype(logits.dtype if wide else jnp.float32), axis=-1)
  nll = -jnp.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]
  if label_smoothing:
    nll = (1.0 - label_smoothing) * nll - label_smoothing * jnp.mean(log_probs, axis=-1)
  weights = _weights(mask, nll.shape, "cross_entropy").astype(nll.dtype)
  return jnp.sum(nll * weights), jnp.sum(weights)


def binary_cross_entropy(logits: Array, targets: Array,
                         mask: Optional[Array] = None) -> tuple[Array, Array]:
  """Summed NLL of K independent Bernoulli outputs per item (multi-label).

  Each item (e.g. a piano-roll frame) is K binary events; its NLL is summed
  over them, in the stable form of ``-[y log s(l) + (1 - y) log(1 - s(l))]``::

    nll_i = sum_k softplus(l_ik) - y_ik l_ik
    total = sum_i m_i nll_i,   count = sum_i m_i

  Args:
    logits: (*B, T, K) logits of "on".
    targets: (*B, T, K) in [0, 1] (0/1 for binary data).
    mask: optional (*B, T) booleans; False items (frames) are not counted.

  Returns:
    ``(total, count)``, float32 scalars; ``total / count`` is nats per item
    (e.g. per frame, summed over the keys).
  """
  logits = jnp.asarray(logits).astype(jnp.float32)
  targets = jnp.asarray(targets).astype(jnp.float32)
  if targets.shape != logits.shape:
    raise ValueError(f"targets must have the logits' shape {logits.shape}, got {targets.shape}")
  nll = jnp.sum(jax.nn.softplus(logits) - targets * logits, axis=-1)
  weights = _weights(mask, nll.shape, "binary_cross_entropy")
  return jnp.sum(nll * weights), jnp.sum(weights)


def squared_error(predictions: Array, targets: Array,
                  mask: Optional[Array] = None) -> tuple[Array, Array]:
  """Summed squared error and the number of counted values (for an MSE).

  Equations, over every element ``i`` of ``predictions``::

    total = sum_i m_i (p_i - y_i)^2,   count = sum_i m_i

  Args:
    predictions: any shape, e.g. (*B,) for one value per sequence or
      (*B, T, O).
    targets: the same shape.
    mask: optional booleans of the same shape, or of a prefix of it (e.g.
      (*B,) for predictions (*B, O)), broadcast over the trailing axes.

  Returns:
    ``(total, count)``, float32 scalars; ``total / count`` is the MSE per
    element.
  """
  predictions = jnp.asarray(predictions).astype(jnp.float32)
  targets = jnp.asarray(targets).astype(jnp.float32)
  if targets.shape != predictions.shape:
    raise ValueError(f"targets must have the predictions' shape {predictions.shape}, "
                     f"got {targets.shape}")
  squared = (predictions - targets) ** 2
  if mask is None:
    return jnp.sum(squared), jnp.float32(squared.size)
  mask = jnp.asarray(mask)
  if mask.shape != predictions.shape[:mask.ndim]:
    raise ValueError(f"mask must have the predictions' shape {predictions.shape} or a prefix "
                     f"of it, got {mask.shape} (in squared_error)")
  weights = jnp.broadcast_to(
      mask.astype(jnp.float32).reshape(mask.shape + (1,) * (squared.ndim - mask.ndim)),
      squared.shape)
  return jnp.sum(squared * weights), jnp.sum(weights)
