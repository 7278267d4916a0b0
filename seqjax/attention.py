"""Attention over a source sequence: additive (Bahdanau), dot and general (Luong) scores.

A decoder state ``q`` (the query) attends over the S encoder states ``h_1..h_S``
(keys and values are both the encoder states)::

  e_j   = score(q, h_j)                                  j = 1..S
  alpha = softmax_j(e_j) over the real (unmasked) positions, 0 on padding
  c     = sum_j alpha_j h_j                              the context vector

Scores:

* ``additive``: ``e_j = v^T tanh(W_q q + W_k h_j + b)`` (Bahdanau, Cho &
  Bengio 2014, https://arxiv.org/abs/1409.0473, their ``v_a^T tanh(W_a
  s_{i-1} + U_a h_j)``).
* ``dot``: ``e_j = q^T h_j`` (Luong, Pham & Manning 2015,
  https://arxiv.org/abs/1508.04025); needs ``Q == K``.
* ``general``: ``e_j = q^T W h_j`` (Luong et al.'s "general").

The part of a score that depends on the keys alone (``W_k h_j`` for additive,
``W h_j`` for general) is computed once per source by ``memory`` and reused
at every decoder step: a decoder step costs ``O(S A)`` for the scores, not
``O(S K A)``.

Shapes: B batch (any leading axes), S source length, K key (encoder state)
size, Q query (decoder state) size, A attention size.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from seqjax import checks
from seqjax.types import Array, Params, PRNGKey

KINDS = ("additive", "dot", "general")


class Memory(NamedTuple):
  """What the decoder attends over, prepared once per source by ``Attention.memory``.

  Attributes:
    values: (*B, S, K) the encoder states (the context is their weighted sum).
    keys: (*B, S, A) the keys' part of the score, projected once.
    mask: (*B, S) booleans, False on padded source positions.
  """

  values: Array
  keys: Array
  mask: Array


class Attention(NamedTuple):
  """An attention mechanism as pure functions (see ``additive``, ``dot``, ``general``).

  Attributes:
    init: ``(key, query_size Q, key_size K) -> params``.
    memory: ``(params, values (*B, S, K), mask (*B, S)) -> Memory``, once per
      source.
    apply: ``(params, query (*B, Q), memory) -> (context (*B, K), weights
      (*B, S))``; the weights sum to 1 over the real positions and are exactly
      0 on padded ones.
    kind: ``"additive"``, ``"dot"`` or ``"general"``.
    name: a readable description.
  """

  init: Callable[[PRNGKey, int, int], Params]
  memory: Callable[[Params, Array, Array], Memory]
  apply: Callable[[Params, Array, Memory], tuple[Array, Array]]
  kind: str
  name: str

  def __repr__(self) -> str:
    return f"Attention({self.name})"


def masked_softmax(scores: Array, mask: Array) -> Array:
  """``softmax`` over the last axis restricted to ``mask``; exactly 0 where ``mask`` is False.

  Args:
    scores: (*B, S) floats.
    mask: (*B, S) booleans; every row must have at least one True (a row
      without any gives zeros).

  Returns:
    (*B, S) weights, each row summing to 1 over its True positions.
  """
  scores = jnp.where(mask, scores, -jnp.inf)
  peak = jnp.max(scores, axis=-1, keepdims=True)
  peak = jnp.where(jnp.isfinite(peak), jax.lax.stop_gradient(peak), 0.0)
  exp = jnp.where(mask, jnp.exp(scores - peak), 0.0)
  total = jnp.sum(exp, axis=-1, keepdims=True)
  return exp / jnp.where(total > 0, total, 1.0)


def _check_memory_inputs(values: Array, mask: Array, key_size: int) -> Array:
  shape = checks.shape_of(values)
  if len(shape) < 2 or shape[-1] != key_size:
    raise ValueError(f"values must have shape (*B, S, K={key_size}), got {shape}")
  if mask is None:
    return jnp.ones(shape[:-1], bool)
  mask = jnp.asarray(mask)
  if mask.shape != tuple(shape[:-1]):
    raise ValueError(f"mask must have shape {tuple(shape[:-1])} (values without the feature "
                     f"axis), got {mask.shape}")
  return mask.astype(bool)


def _context(weights: Array, memory: Memory) -> tuple[Array, Array]:
  context = jnp.einsum("...s,...sk->...k", weights.astype(memory.values.dtype), memory.values)
  return context, weights


def _normal(key, shape, fan_in):
  return jax.random.normal(key, shape, jnp.float32) / np.sqrt(fan_in)


def additive(attention_size: int) -> Attention:
  """Bahdanau's additive (concat) attention.

  Equations, per source position j::

    e_j = v^T tanh(q W_q + h_j W_k + b)        W_q: (Q, A), W_k: (K, A), b, v: (A,)
    alpha = masked_softmax(e), c = sum_j alpha_j h_j

  ``Memory.keys`` holds ``h_j W_k + b`` (*B, S, A), computed once per source.
  Params: ``{"w_q": (Q, A), "w_k": (K, A), "b": (A,), "v": (A,)}``, weights
  ~ N(0, 1/fan_in), ``b`` zeros.

  Args:
    attention_size: A, > 0.
  """
  size = checks.positive_int("attention_size", attention_size)

  def init(key, query_size, key_size):
    query_size = checks.positive_int("query_size", query_size)
    key_size = checks.positive_int("key_size", key_size)
    kq, kk, kv = jax.random.split(key, 3)
    return {"w_q": _normal(kq, (query_size, size), query_size),
            "w_k": _normal(kk, (key_size, size), key_size),
            "b": jnp.zeros((size,), jnp.float32),
            "v": _normal(kv, (size,), size)}

  def memory(params, values, mask=None):
    mask = _check_memory_inputs(values, mask, params["w_k"].shape[0])
    return Memory(values, values @ params["w_k"] + params["b"], mask)

  def apply(params, query, memory):
    projected = (query @ params["w_q"])[..., None, :]
    scores = jnp.tanh(projected + memory.keys) @ params["v"]
    return _context(masked_softmax(scores, memory.mask), memory)

  return Attention(init, memory, apply, "additive", f"additive(A={size})")


def dot() -> Attention:
  """Luong's dot-product attention: ``e_j = q^T h_j`` (needs Q == K; no params).

  Equations::

    e_j = q . h_j,   alpha = masked_softmax(e),   c = sum_j alpha_j h_j

  Params: ``{}``.
  """

  def init(key, query_size, key_size):
    del key
    query_size = checks.positive_int("query_size", query_size)
    key_size = checks.positive_int("key_size", key_size)
    if query_size != key_size:
      raise ValueError(f"dot attention needs query_size == key_size, got {query_size} and "
                       f"{key_size} (use 'general' or 'additive')")
    return {}

  def memory(params, values, mask=None):
    del params
    values = jnp.asarray(values)
    mask = _check_memory_inputs(values, mask, checks.shape_of(values)[-1])
    return Memory(values, values, mask)

  def apply(params, query, memory):
    del params
    scores = jnp.einsum("...k,...sk->...s", query, memory.keys)
    return _context(masked_softmax(scores, memory.mask), memory)

  return Attention(init, memory, apply, "dot", "dot")


def general() -> Attention:
  """Luong's "general" (bilinear) attention: ``e_j = q^T W h_j``.

  Equations::

    e_j = q . (h_j W^T),   W: (Q, K),   alpha = masked_softmax(e),   c = sum_j alpha_j h_j

  ``Memory.keys`` holds ``h_j W^T`` (*B, S, Q), computed once per source.
  Params: ``{"w": (Q, K)}`` ~ N(0, 1/K).
  """

  def init(key, query_size, key_size):
    query_size = checks.positive_int("query_size", query_size)
    key_size = checks.positive_int("key_size", key_size)
    return {"w": _normal(key, (query_size, key_size), key_size)}

  def memory(params, values, mask=None):
    mask = _check_memory_inputs(values, mask, params["w"].shape[1])
    return Memory(values, values @ params["w"].T, mask)

  def apply(params, query, memory):
    scores = jnp.einsum("...q,...sq->...s", query, memory.keys)
    return _context(masked_softmax(scores, memory.mask), memory)

  return Attention(init, memory, apply, "general", "general")


def by_name(kind: Optional[str], attention_size: int = 0) -> Optional[Attention]:
  """``additive(attention_size)``, ``dot()``, ``general()`` or None for ``kind`` None/"none"."""
  if kind is None or kind == "none":
    return None
  checks.one_of("attention", kind, KINDS + ("none",))
  return {"additive": lambda: additive(attention_size), "dot": dot, "general": general}[kind]()
