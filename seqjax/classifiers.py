"""Text classifiers: bags of embeddings (fastText) and bidirectional recurrent readers.

Two ways to classify a document ``x`` of T token ids into C classes, both
``seqjax.Model`` records (``init(key)``, ``apply(params, ids, carry=None, *,
mask=None, key=None, training=False) -> (carry, logits (*B, C))``), so the
trainer and launcher run them like every other model:

* ``bag_of_embeddings``: order-free, ``v = mean_t E[x_t]`` followed by 0, 1
  or 2 hidden layers and a softmax (Joulin et al. 2016, fastText,
  https://arxiv.org/abs/1607.01759; with hashed bigram ids appended by
  ``seqjax.embeddings.hashed_ngrams`` it is fastText's bigram model).
* ``recurrent_classifier``: ``E[x_t]`` read by a stack of (bidirectional)
  recurrent layers, pooled over time (the last state of each direction, or
  the max or mean of the outputs), then a softmax: "document-level modeling
  with stacked, bidirectional and gated recurrent networks".

Embeddings may start from a pretrained table (``embedding=``, e.g. from
``seqjax.embeddings.pretrained_table``) and be frozen, in which case they sit
under ``params["frozen"]`` and ``seqjax.keep_frozen`` (every optimiser
``seqjax.train`` builds) never changes them.

Shapes: B batch (any leading axes), T tokens, V vocabulary (ids, buckets
included), E embedding, H hidden, C classes.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from seqjax import checks, embeddings
from seqjax import layers as layers_lib
from seqjax.models import Model
from seqjax.types import FROZEN, Array, Cell, Params

READOUTS = ("last", "max", "mean")


def _embedding_init(num_tokens: int, embed_size: Optional[int], embedding: Optional[Array],
                    freeze: bool) -> tuple[int, Callable[[jax.Array], Params]]:
  """(E, key -> {"embed": ...} or {"frozen": {"embed": ...}})."""
  checks.boolean("freeze_embedding", freeze)
  if embedding is not None:
    table = np.asarray(embedding, np.float32)
    if table.ndim != 2 or table.shape[0] != num_tokens:
      raise ValueError(f"embedding must have shape (num_tokens={num_tokens}, E), got "
                       f"{table.shape}")
    if embed_size is not None and embed_size != table.shape[1]:
      raise ValueError(f"embed_size ({embed_size}) must equal the pretrained embedding's "
                       f"width ({table.shape[1]}) or be None")
    embed_size = table.shape[1]
  elif freeze:
    raise ValueError("freeze_embedding=True keeps a pretrained table fixed: give embedding")
  else:
    embed_size = checks.positive_int("embed_size", embed_size)

  def init(key):
    if embedding is not None:
      table_ = jnp.asarray(table)
    else:
      # N(0, 1/E): the mean of a bag of these is already at the head's scale.
      table_ = jax.random.normal(key, (num_tokens, embed_size)) / np.sqrt(embed_size)
    return {FROZEN: {"embed": table_}} if freeze else {"embed": table_}

  return embed_size, init


def _table(params: Params) -> Array:
  return params[FROZEN]["embed"] if FROZEN in params else params["embed"]


def _dense_init(key, fan_in: int, fan_out: int) -> Params:
  return {"w": jax.random.normal(key, (fan_in, fan_out)) / np.sqrt(fan_in),
          "b": jnp.zeros((fan_out,))}


def _dropout(x: Array, rate: float, key, training: bool) -> Array:
  if not training or rate == 0.0:
    return x
  if key is None:
    raise ValueError(f"dropout={rate} with training=True needs key")
  keep = layers_lib.dropout_mask(key, rate, x.shape, x.dtype)
  return x * keep


def _rate(dropout) -> float:
  rate = checks.in_range("dropout", dropout, 0.0, 1.0)
  if rate == 1.0:
    raise ValueError("dropout must be in [0, 1) (the probability of dropping a unit), got 1.0")
  return rate


def _check_ids(inputs) -> None:
  if not jnp.issubdtype(jnp.result_type(inputs), jnp.integer):
    raise TypeError(f"inputs must be integer token ids (*B, T), got dtype "
                    f"{jnp.result_type(inputs)}")
  if np.ndim(inputs) < 1:
    raise ValueError(f"inputs must be token ids of shape (*B, T), got {np.shape(inputs)}")


def bag_of_embeddings(num_tokens: int,
                      num_classes: int,
                      *,
                      embed_size: Optional[int] = None,
                      hidden_sizes: Sequence[int] = (),
                      pooling: str = "mean",
                      dropout: float = 0.0,
                      embedding: Optional[Array] = None,
                      freeze_embedding: bool = False,
                      padding_id: Optional[int] = None) -> Model:
  """A bag-of-embeddings classifier (fastText with ``hashed_ngrams`` ids).

  Equations (``m_t`` the mask, ``L = len(hidden_sizes)``)::

    u_t = E[x_t]                                  E: (V, E)
    v_0 = pool_t(m_t u_t)                         mean, sum or max, (*B, E)
    v_l = relu(W_l drop(v_{l-1}) + b_l)           l = 1..L, (*B, H_l)
    logits = W_o drop(v_L) + b_o                  (*B, C)

  Params: ``{"embed": (V, E)`` (or ``{"frozen": {"embed": ...}}``), ``"hidden_l":
  {"w", "b"}``, ``"head": {"w", "b"}}``. The model has no carry (``()``).

  Args:
    num_tokens: V, every id the inputs may hold (unigrams plus n-gram buckets).
    num_classes: C.
    embed_size: E; may be None when ``embedding`` gives it.
    hidden_sizes: widths of the hidden layers (0, 1 or 2 in the lecture's
      table; any number works).
    pooling: ``"mean"`` (fastText), ``"sum"`` or ``"max"``.
    dropout: rate on the pooled vector and every hidden layer's output (the
      input of the next affine map), with ``training=True`` and ``key``.
    embedding: optional pretrained (V, E) table to start from.
    freeze_embedding: keep ``embedding`` fixed (under ``params["frozen"]``).
    padding_id: optional id that never counts (besides ``mask``).

  Returns:
    A ``seqjax.Model``; ``apply(params, ids (*B, T), carry=None, *, mask=None,
    key=None, training=False) -> ((), logits (*B, C))``.
  """
  num_tokens = checks.positive_int("num_tokens", num_tokens)
  num_classes = checks.positive_int("num_classes", num_classes)
  checks.one_of("pooling", pooling, embeddings.POOLINGS)
  hidden_sizes = tuple(checks.positive_int("hidden_sizes", h) for h in hidden_sizes)
  rate = _rate(dropout)
  embed_size, init_embedding = _embedding_init(num_tokens, embed_size, embedding,
                                               freeze_embedding)
  widths = (embed_size,) + hidden_sizes

  def init(key):
    keys = jax.random.split(key, len(hidden_sizes) + 2)
    params = init_embedding(keys[0])
    for layer, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
      params[f"hidden_{layer}"] = _dense_init(keys[layer + 1], fan_in, fan_out)
    params["head"] = _dense_init(keys[-1], widths[-1], num_classes)
    return params

  def apply(params, inputs, carry=None, *, mask=None, reset=None, key=None, training=False):
    del reset
    _check_ids(inputs)
    valid = embeddings.token_mask(inputs, mask, padding_id)
    v = embeddings.pool(embeddings.lookup(_table(params), inputs, mask=valid), valid,
                        mode=pooling)
    keys = [None] * (len(hidden_sizes) + 1) if key is None else list(
        jax.random.split(key, len(hidden_sizes) + 1))
    for layer in range(len(hidden_sizes)):
      p = params[f"hidden_{layer}"]
      v = jax.nn.relu(_dropout(v, rate, keys[layer], training) @ p["w"] + p["b"])
    v = _dropout(v, rate, keys[-1], training)
    return (), v @ params["head"]["w"] + params["head"]["b"]

  depth = f", hidden={list(hidden_sizes)}" if hidden_sizes else ""
  frozen = ", frozen" if freeze_embedding else ""
  return Model(init, lambda params, batch_shape=(): (), apply, num_classes, num_tokens,
               f"bag_of_embeddings(V={num_tokens}, E={embed_size}{frozen}{depth}, "
               f"{pooling} -> {num_classes})")


def recurrent_classifier(num_tokens: int,
                         num_classes: int,
                         cell: Cell,
                         *,
                         embed_size: Optional[int] = None,
                         num_layers: int = 1,
                         bidirectional: bool = True,
                         readout: str = "last",
                         dropout: float = 0.0,
                         recurrent_dropout: float = 0.0,
                         embedding: Optional[Array] = None,
                         freeze_embedding: bool = False,
                         padding_id: Optional[int] = None) -> Model:
  """Embedding -> stacked (bidirectional) recurrent layers -> pooling -> softmax.

  Equations (``m_t`` the mask; ``f`` the forward and ``b`` the backward
  direction of the top layer; ``cell`` gives each layer's recurrence)::

    u_t = E[x_t]
    y_t = stack(u)_t = [y^f_t ; y^b_t]           (*B, T, 2H) (H without bidirectional)
    last: v = [y^f_{t_last} ; y^b_{t_first}]     each direction's final state
    max:  v = max_{t: m_t} y_t;   mean: v = mean_{t: m_t} y_t
    logits = W drop(v) + b                       (*B, C)

  With ``mask`` each direction starts at the sequence's own first real step
  (``seqjax.layers.bidirectional``), so a padded batch gives each row what it
  gives alone. Dropout (``training=True``, ``key``): variational (one mask
  per sequence) on the embeddings and between layers, recurrent dropout on
  every cell's fed-back state (Gal & Ghahramani 2016), and ordinary dropout
  on the pooled vector.

  Params: ``{"embed" (or "frozen"), "body": stacked layers, "head": {"w",
  "b"}}``. The returned carry is the body's final carry.

  Args:
    num_tokens: V.
    num_classes: C.
    cell: a ``seqjax.Cell`` (e.g. ``seqjax.cells.gru(128)``), one fresh copy
      per layer and direction.
    embed_size: E; may be None when ``embedding`` gives it.
    num_layers: stacked layers, >= 1.
    bidirectional: run each layer in both directions, outputs concatenated.
    readout: ``"last"``, ``"max"`` or ``"mean"`` (see the equations).
    dropout: the rate of the embedding, between-layer and pooled-vector dropout.
    recurrent_dropout: the rate on the recurrent state.
    embedding: optional pretrained (V, E) table.
    freeze_embedding: keep ``embedding`` fixed.
    padding_id: optional id that never counts (besides ``mask``).

  Returns:
    A ``seqjax.Model``; ``apply(params, ids (*B, T), carry=None, *, mask=None,
    key=None, training=False) -> (carry, logits (*B, C))``.
  """
  num_tokens = checks.positive_int("num_tokens", num_tokens)
  num_classes = checks.positive_int("num_classes", num_classes)
  num_layers = checks.positive_int("num_layers", num_layers)
  checks.boolean("bidirectional", bidirectional)
  checks.one_of("readout", readout, READOUTS)
  if not isinstance(cell, Cell):
    raise TypeError(f"cell must be a seqjax.Cell, got {type(cell).__name__}")
  rate = _rate(dropout)
  embed_size, init_embedding = _embedding_init(num_tokens, embed_size, embedding,
                                               freeze_embedding)
  unit = layers_lib.bidirectional(cell) if bidirectional else cell
  body = layers_lib.stacked(unit, num_layers, dropout=rate, input_dropout=rate,
                            recurrent_dropout=recurrent_dropout, variational=True)
  directions = 2 if bidirectional else 1
  forward_size = body.output_size // directions

  def init(key):
    k_embed, k_body, k_head = jax.random.split(key, 3)
    params = init_embedding(k_embed)
    params["body"] = body.init(k_body, embed_size)
    params["head"] = _dense_init(k_head, body.output_size, num_classes)
    return params

  def initial_carry(params, batch_shape=()):
    return body.initial_carry(params["body"], checks.batch_shape(batch_shape))

  def apply(params, inputs, carry=None, *, mask=None, reset=None, key=None, training=False):
    del reset
    _check_ids(inputs)
    valid = embeddings.token_mask(inputs, mask, padding_id)
    xs = embeddings.lookup(_table(params), inputs, mask=valid)
    k_body, k_out = (None, None) if key is None else jax.random.split(key)
    carry, ys = body.apply(params["body"], xs, carry, mask=valid, key=k_body,
                           training=training)
    if readout == "last":
      forward = _last_valid(ys[..., :forward_size], valid)
      if bidirectional:
        v = jnp.concatenate([forward, _first_valid(ys[..., forward_size:], valid)], -1)
      else:
        v = forward
    else:
      v = embeddings.pool(ys, valid, mode=readout)
    v = _dropout(v, rate, k_out, training)
    return carry, v @ params["head"]["w"] + params["head"]["b"]

  kind = "bidirectional " if bidirectional else ""
  return Model(init, initial_carry, apply, num_classes, num_tokens,
               f"recurrent_classifier(V={num_tokens}, E={embed_size}, {num_layers} x "
               f"{kind}{cell.name}, {readout} -> {num_classes})")


def _last_valid(ys: Array, valid: Array) -> Array:
  """ys at each row's last valid step (zeros for a row without one)."""
  steps = jnp.arange(valid.shape[-1])
  last = jnp.max(jnp.where(valid, steps, -1), axis=-1)
  picked = jnp.take_along_axis(ys, jnp.maximum(last, 0)[..., None, None], axis=-2)[..., 0, :]
  return jnp.where((last >= 0)[..., None], picked, jnp.zeros((), ys.dtype))


def _first_valid(ys: Array, valid: Array) -> Array:
  """ys at each row's first valid step (zeros for a row without one)."""
  steps = jnp.arange(valid.shape[-1])
  length = valid.shape[-1]
  first = jnp.min(jnp.where(valid, steps, length), axis=-1)
  picked = jnp.take_along_axis(ys, jnp.minimum(first, length - 1)[..., None, None],
                               axis=-2)[..., 0, :]
  return jnp.where((first < length)[..., None], picked, jnp.zeros((), ys.dtype))
