"""Recurrent language models: embedding -> recurrent layers -> softmax over tokens.

Works for characters or words: tokens are integer ids in ``[0, vocab_size)``.
Shapes: B batch (any leading axes), T time, V vocabulary, E embedding, O the
recurrent body's output size.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Optional, Union

import jax
import jax.numpy as jnp
import numpy as np

from seqjax import checks
from seqjax import layers as layers_lib
from seqjax.types import Array, Carry, Cell, Params, PRNGKey


class LanguageModel(NamedTuple):
  """A language model as pure functions (see ``language_model``).

  Attributes:
    init: ``key -> params``.
    initial_carry: ``(params, batch_shape) -> carry`` of the recurrent body.
    apply: ``(params, tokens (*B, T) int, carry=None, *, reset=None,
      mask=None, key=None, training=False) -> (logits (*B, T, V), carry)``.
    vocab_size: V.
    name: a readable description.
  """

  init: Callable[[PRNGKey], Params]
  initial_carry: Callable[[Params, tuple[int, ...]], Carry]
  apply: Callable[..., tuple[Array, Carry]]
  vocab_size: int
  name: str


def language_model(vocab_size: int,
                   body: Union[Cell, layers_lib.Layer],
                   *,
                   embed_size: int = 64,
                   tied: bool = False) -> LanguageModel:
  """Embedding, a recurrent body (any seqjax cell or layer), and a softmax layer.

  Equations (tokens ``w_t``, one-hot; ``r`` the recurrent body)::

    e_t = E[w_t]                            (E: (V, embed_size))
    y_t, carry = r(e_t, carry)
    logits_t = y_t W_out + b_out            (W_out: (O, V))
    p(w_{t+1} | w_{<=t}) = softmax(logits_t)

  Params: ``{"embed": (V, E), "body": ..., "out": {"w": (O, V), "b": (V,)}}``;
  with ``tied=True`` the output weights are the embedding (``W_out = E^T``,
  Press & Wolf 2017, https://arxiv.org/abs/1608.05859) and ``"out"`` holds
  only ``"b"``.

  Args:
    vocab_size: V, > 0.
    body: a ``Cell`` (lifted with ``seqjax.layers.recurrent``) or a ``Layer``
      such as ``seqjax.layers.stacked(seqjax.cells.lstm(512), 2, dropout=0.2)``.
    embed_size: E, > 0.
    tied: share the embedding with the output layer; needs ``O == E``.

  Returns:
    A ``LanguageModel``.
  """
  vocab_size = checks.positive_int("vocab_size", vocab_size)
  embed_size = checks.positive_int("embed_size", embed_size)
  if isinstance(body, Cell):
    body = layers_lib.recurrent(body)
  if not isinstance(body, layers_lib.Layer):
    raise TypeError(f"body must be a seqjax Cell or Layer, got {type(body).__name__}")
  if tied and body.output_size != embed_size:
    raise ValueError(f"tied=True needs the body's output size ({body.output_size}) to equal "
                     f"embed_size ({embed_size})")

  def init(key):
    k_embed, k_body, k_out = jax.random.split(key, 3)
    out_size = body.output_size
    if tied:
      # Shared with the output layer: N(0, 1/E) keeps the initial logits y E^T
      # at the scale of the body's outputs.
      return {"embed": jax.random.normal(k_embed, (vocab_size, embed_size)) / np.sqrt(embed_size),
              "body": body.init(k_body, embed_size),
              "out": {"b": jnp.zeros((vocab_size,))}}
    return {
        # N(0, 1) embeddings keep the body's input at unit scale, like one-hot rows.
        "embed": jax.random.normal(k_embed, (vocab_size, embed_size)),
        "body": body.init(k_body, embed_size),
        "out": {
            "w": jax.random.normal(k_out, (out_size, vocab_size)) / np.sqrt(out_size),
            "b": jnp.zeros((vocab_size,)),
        },
    }

  def initial_carry(params, batch_shape=()):
    return body.initial_carry(params["body"], tuple(batch_shape))

  def apply(params, tokens, carry=None, *, reset=None, mask=None, key=None,
            training=False):
    tokens = jnp.asarray(tokens)
    if not jnp.issubdtype(tokens.dtype, jnp.integer):
      raise TypeError(f"tokens must be integer ids, got dtype {tokens.dtype}")
    if tokens.ndim < 1:
      raise ValueError(f"tokens must have shape (*B, T), got {tokens.shape}")
    embedded = jnp.take(jnp.asarray(params["embed"]), tokens, axis=0)
    carry, ys = body.apply(params["body"], embedded, carry, mask=mask, reset=reset,
                           key=key, training=training)
    w_out = params["embed"].T if tied else params["out"]["w"]
    logits = ys @ w_out + params["out"]["b"]
    return logits, carry

  return LanguageModel(init, initial_carry, apply, vocab_size,
                       f"language_model(V={vocab_size}, E={embed_size}, {body.name})")


def cross_entropy(logits: Array, targets: Array,
                  mask: Optional[Array] = None) -> tuple[Array, Array]:
  """Summed token negative log-likelihood (nats) and the number of tokens.

  Args:
    logits: (*B, T, V).
    targets: (*B, T) int ids.
    mask: optional (*B, T) booleans; False tokens are not counted.

  Returns:
    ``(total_nll, count)``, both float32 scalars; the mean NLL is their ratio,
    bits per token ``total_nll / count / ln 2``.
  """
  log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  nll = -jnp.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]
  weights = jnp.ones_like(nll) if mask is None else mask.astype(nll.dtype)
  return jnp.sum(nll * weights), jnp.sum(weights)


def generate(model: LanguageModel, params: Params, prime: Array, length: int,
             key: PRNGKey, *, temperature: float = 1.0) -> Array:
  """Samples a continuation of ``prime``, one token at a time.

  The prime is read in one ``apply`` (its final carry and last logits start
  the sampling), then each sampled token is fed back for ``length`` steps in a
  ``lax.scan``.

  Args:
    model: a ``LanguageModel``.
    params: its params.
    prime: (*B, P) int ids, P >= 1.
    length: number of tokens to sample, > 0.
    key: PRNG key.
    temperature: softmax temperature, > 0 (lower is more conservative).

  Returns:
    (*B, length) int32 sampled ids (the prime not included).
  """
  length = checks.positive_int("length", length)
  temperature = checks.positive("temperature", temperature)
  prime = jnp.asarray(prime, jnp.int32)
  if prime.ndim < 1 or prime.shape[-1] < 1:
    raise ValueError(f"prime must have shape (*B, P) with P >= 1, got {prime.shape}")
  logits, carry = model.apply(params, prime)

  def body(state, step_key):
    last_logits, carry = state
    token = jax.random.categorical(step_key, last_logits / temperature, axis=-1)
    logits, carry = model.apply(params, token[..., None], carry)
    return (logits[..., -1, :], carry), token

  keys = jax.random.split(key, length)
  _, tokens = jax.lax.scan(body, (logits[..., -1, :], carry), keys)
  return jnp.moveaxis(tokens, 0, -1).astype(jnp.int32)
