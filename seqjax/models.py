"""Models: an input encoding, a recurrent body and a head, as one record of pure functions.

One record serves every shape of task::

  sequence_model(body, O, input_size=D, readout="last")   # one value per sequence
  sequence_model(body, O, num_tokens=V)                     # one output per step, one-hot ids
  language_model(V, body, embed_size=E, tied=True)         # embedding -> body -> softmax

  params = model.init(key)
  carry, outputs = model.apply(params, inputs, carry=None, mask=mask, reset=reset,
                               key=key, training=True)

Carry first, as in ``seqjax.unroll`` and ``seqjax.layers``: a language model
trained by truncated BPTT feeds the returned carry to the next chunk.
``generate`` samples from a model whose inputs are its own output tokens.

Shapes: B batch (any leading axes), T time, D input features, V vocabulary
(token ids), E embedding, H the body's output size, O the head's output size.

Token ids must lie in ``[0, V)``. Where the ids are concrete (numpy arrays,
arrays outside ``jax.jit``: data loading, ``generate``'s prime, a direct call)
an id outside that range raises ``ValueError`` naming the argument, the value
and the range. Where they are traced (inside ``jax.jit``, ``grad``, ``scan``)
nothing can be raised: an out-of-range id (negative ones included) then
encodes to NaN, so the outputs from that step on are NaN and a training loop
stops on the non-finite loss instead of learning from a wrong row (plain
``jnp.take`` would read NaN for ids >= V but silently wrap -1 to the last
row). Ids on steps that ``mask`` marks as padding are neither checked nor
NaN: padding may hold any id.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Optional, Union

import jax
import jax.numpy as jnp
import numpy as np

from seqjax import checks
from seqjax import heads as heads_lib
from seqjax import layers as layers_lib
from seqjax.types import Array, Carry, Cell, Params, PRNGKey

BodyLike = Union[Cell, layers_lib.Layer]


class Model(NamedTuple):
  """A body with an input encoding and a head, as pure functions (see ``model``).

  Attributes:
    init: ``key -> params``.
    initial_carry: ``(params, batch_shape) -> carry`` of the body.
    apply: ``(params, inputs, carry=None, *, mask=None, reset=None, key=None,
      training=False) -> (carry, outputs)``: ``inputs`` ``(*B, T, D)`` floats
      or ``(*B, T)`` int token ids; ``outputs`` ``(*B, T, O)``, or ``(*B, O)``
      with ``readout="last"``; ``mask``/``reset`` ``(*B, T)`` as in
      ``seqjax.unroll``.
    output_size: O.
    num_tokens: V for token inputs, None for float features.
    name: a readable description.
  """

  init: Callable[[PRNGKey], Params]
  initial_carry: Callable[[Params, tuple[int, ...]], Carry]
  apply: Callable[..., tuple[Carry, Array]]
  output_size: int
  num_tokens: Optional[int]
  name: str


def check_token_ids(ids, num_tokens: int, name: str = "tokens", mask=None) -> None:
  """Raises if concrete ``ids`` fall outside ``[0, num_tokens)``; traced ids pass.

  Args:
    ids: integer ids of any shape (numpy, a Python list, or a JAX array).
    num_tokens: V.
    name: the argument named in the message.
    mask: optional booleans of ``ids``' shape; ids where it is False (padding)
      are not checked.

  Raises:
    TypeError: ``ids`` is not an integer array.
    ValueError: one line naming ``name``, the first bad value, where it is and
      the valid range.
  """
  if isinstance(ids, jax.core.Tracer) or isinstance(mask, jax.core.Tracer):
    return
  ids = np.asarray(ids)
  if not np.issubdtype(ids.dtype, np.integer):
    raise TypeError(f"{name} must be integer token ids, got dtype {ids.dtype}")
  bad = (ids < 0) | (ids >= num_tokens)
  if mask is not None:
    bad &= np.asarray(mask, bool)
  if bad.any():
    where = tuple(int(i) for i in np.argwhere(bad)[0])
    raise ValueError(f"{name} must be token ids in [0, {num_tokens}), got {ids[where]} at "
                     f"index {where}")


def _encode_tokens(tokens: Array, num_tokens: int, table: Optional[Array], dtype,
                   mask: Optional[Array]) -> Array:
  """Embedding rows (``table`` (V, E)) or one-hot vectors of ``tokens``; NaN if out of range."""
  check_token_ids(tokens, num_tokens, "tokens", mask)
  tokens = jnp.asarray(tokens)
  valid = (tokens >= 0) & (tokens < num_tokens)
  safe = jnp.where(valid, tokens, 0)
  if table is None:
    encoded = jax.nn.one_hot(safe, num_tokens, dtype=dtype)
  else:
    encoded = jnp.take(table, safe, axis=0)
  bad = ~valid if mask is None else ~valid & jnp.asarray(mask, bool)
  return jnp.where(bad[..., None], jnp.nan, encoded)


def model(body: BodyLike,
          head: heads_lib.Head,
          *,
          input_size: Optional[int] = None,
          num_tokens: Optional[int] = None,
          embed_size: Optional[int] = None,
          tied: bool = False,
          readout: str = "all") -> Model:
  """Joins an input encoding, a recurrent or convolutional body and a head.

  Equations (``r`` the body, ``h`` the head)::

    x_t = inputs_t                  (input_size=D: float features)
    x_t = onehot(w_t)               (num_tokens=V, embed_size=None)
    x_t = E[w_t]                    (num_tokens=V, embed_size; E: (V, embed_size))
    y_t, carry = r(x_t, carry)      (*B, T, H)
    out_t = h(y_t)                  (readout="all": every step, (*B, T, O))
    out = h(y_{t_last})             (readout="last": the last valid step under
                                     ``mask``, ``seqjax.heads.last_valid``; (*B, O))

  Params: ``{"embed": (V, E) (only with embed_size), "body": ..., "head":
  ...}``. With ``tied=True`` the head's weights are the embedding transposed
  (``head`` must be ``seqjax.heads.linear(V, tied=True)``, holding only the
  bias). The embedding starts N(0, 1), like one-hot rows, or N(0, 1/E) when
  tied, which keeps the initial logits ``y E^T`` at the scale of the body's
  outputs.

  Args:
    body: a ``Cell`` (lifted with ``seqjax.layers.recurrent``) or a ``Layer``
      (``seqjax.layers.stacked``, ``seqjax.tcn.tcn``, ...).
    head: a ``seqjax.heads.Head``.
    input_size: D for float inputs ``(*B, T, D)``; exactly one of
      ``input_size`` and ``num_tokens``.
    num_tokens: V for integer inputs ``(*B, T)`` in ``[0, V)`` (see the
      module docstring for out-of-range ids).
    embed_size: E, > 0: learn an embedding of the tokens; ``None`` feeds them
      one-hot.
    tied: share the embedding with the head; needs ``embed_size``, the body's
      output size equal to it, and the head's output size equal to V.
    readout: ``"all"`` or ``"last"``.

  Returns:
    A ``Model``.
  """
  checks.one_of("readout", readout, ("last", "all"))
  checks.boolean("tied", tied)
  if (input_size is None) == (num_tokens is None):
    raise ValueError("give exactly one of input_size (float inputs) and num_tokens "
                     f"(integer inputs), got input_size={input_size}, num_tokens={num_tokens}")
  if num_tokens is None:
    input_size = checks.positive_int("input_size", input_size)
    if embed_size is not None:
      raise ValueError(f"embed_size needs num_tokens (token inputs), got embed_size={embed_size}")
  else:
    num_tokens = checks.positive_int("num_tokens", num_tokens)
  if embed_size is not None:
    embed_size = checks.positive_int("embed_size", embed_size)
  if isinstance(body, Cell):
    body = layers_lib.recurrent(body)
  if not isinstance(body, layers_lib.Layer):
    raise TypeError(f"body must be a seqjax Cell or Layer, got {type(body).__name__}")
  if not isinstance(head, heads_lib.Head):
    raise TypeError(f"head must be a seqjax.heads.Head, got {type(head).__name__}")
  if tied:
    if embed_size is None:
      raise ValueError("tied=True shares the embedding with the head: give embed_size")
    if body.output_size != embed_size:
      raise ValueError(f"tied=True needs the body's output size ({body.output_size}) to equal "
                       f"embed_size ({embed_size})")
    if head.output_size != num_tokens:
      raise ValueError(f"tied=True needs the head's output size ({head.output_size}) to equal "
                       f"num_tokens ({num_tokens})")
  features = (input_size if num_tokens is None
              else num_tokens if embed_size is None else embed_size)

  def init(key):
    params = {}
    if embed_size is not None:
      k_embed, k_body, k_head = jax.random.split(key, 3)
      scale = 1.0 / np.sqrt(embed_size) if tied else 1.0
      params["embed"] = jax.random.normal(k_embed, (num_tokens, embed_size)) * scale
    else:
      k_body, k_head = jax.random.split(key)
    params["body"] = body.init(k_body, features)
    params["head"] = head.init(k_head, body.output_size)
    return params

  def initial_carry(params, batch_shape=()):
    return body.initial_carry(params["body"], checks.batch_shape(batch_shape))

  def apply(params, inputs, carry=None, *, mask=None, reset=None, key=None, training=False):
    if num_tokens is None:
      xs = jnp.asarray(inputs)
      checks.float_array("inputs", xs)
    else:
      if not jnp.issubdtype(jnp.result_type(inputs), jnp.integer):
        raise TypeError(f"inputs must be integer token ids (*B, T) for num_tokens="
                        f"{num_tokens}, got dtype {jnp.result_type(inputs)}")
      if np.ndim(inputs) < 1:
        raise ValueError(f"inputs must be token ids of shape (*B, T), got {np.shape(inputs)}")
      table = None if embed_size is None else jnp.asarray(params["embed"])
      dtype = jnp.result_type(params["head"]["b"])
      xs = _encode_tokens(inputs, num_tokens, table, dtype, mask)
    carry, ys = body.apply(params["body"], xs, carry, mask=mask, reset=reset, key=key,
                           training=training)
    if readout == "last":
      ys = heads_lib.last_valid(ys, mask)
    head_params = {"w": params["embed"].T, **params["head"]} if tied else params["head"]
    return carry, head.apply(head_params, ys)

  if num_tokens is None:
    source = f"D={input_size}"
  else:
    source = f"V={num_tokens}" + ("" if embed_size is None else f", E={embed_size}")
  return Model(init, initial_carry, apply, head.output_size, num_tokens,
               f"model({source}, {body.name} -> {head.name}, readout={readout})")


def sequence_model(body: BodyLike,
                   output_size: int,
                   *,
                   input_size: Optional[int] = None,
                   num_tokens: Optional[int] = None,
                   readout: str = "all",
                   head_init_scale: Optional[float] = None) -> Model:
  """A body with a linear head: the classic benchmark shapes.

  One prediction per sequence from its last (valid) step (``readout="last"``:
  the adding problem, sequential MNIST) or one per step (``"all"``: copy
  memory, polyphonic music). Inputs are features ``(*B, T, D)`` or, with
  ``num_tokens``, integer ids ``(*B, T)`` fed one-hot. Equations::

    y_t = r(x_1, ..., x_t)                       (*B, T, H)
    out = y_T W + b   (readout="last")           (*B, O)
    out_t = y_t W + b (readout="all")            (*B, T, O)

  Params: ``{"body": ..., "head": {"w": (H, O), "b": (O,)}}``.

  Args:
    body: a ``Cell`` or a ``Layer``.
    output_size: O, > 0.
    input_size: D for float inputs; exactly one of ``input_size`` and
      ``num_tokens``.
    num_tokens: V for integer inputs in ``[0, V)``, one-hot encoded.
    readout: ``"last"`` or ``"all"``.
    head_init_scale: std of the normal initial head weights; ``None`` uses
      ``1/sqrt(H)`` (LeCun normal).

  Returns:
    A ``Model`` (see ``model``).
  """
  return model(body, heads_lib.linear(output_size, init_scale=head_init_scale),
               input_size=input_size, num_tokens=num_tokens, readout=readout)


def language_model(vocab_size: int,
                   body: BodyLike,
                   *,
                   embed_size: int = 64,
                   tied: bool = False) -> Model:
  """Embedding, a recurrent body (any seqjax cell or layer) and a softmax layer.

  Works for characters, bytes or words: tokens are ids in ``[0, V)``.
  Equations (tokens ``w_t``)::

    e_t = E[w_t]                            (E: (V, embed_size))
    y_t, carry = r(e_t, carry)
    logits_t = y_t W + b                    (W: (O_body, V); W = E^T when tied)
    p(w_{t+1} | w_{<=t}) = softmax(logits_t)

  Params: ``{"embed": (V, E), "body": ..., "head": {"w": (O_body, V), "b":
  (V,)}}``; with ``tied=True`` (Press & Wolf 2017,
  https://arxiv.org/abs/1608.05859) ``"head"`` holds only ``"b"``.

  Args:
    vocab_size: V, > 0.
    body: a ``Cell`` or a ``Layer`` such as
      ``seqjax.layers.stacked(seqjax.cells.lstm(512), 2, dropout=0.2)``.
    embed_size: E, > 0.
    tied: share the embedding with the output layer; needs the body's output
      size to equal E.

  Returns:
    A ``Model``: ``apply(params, tokens (*B, T), carry=None, ...) -> (carry,
    logits (*B, T, V))``.
  """
  vocab_size = checks.positive_int("vocab_size", vocab_size)
  embed_size = checks.positive_int("embed_size", embed_size)
  return model(body, heads_lib.linear(vocab_size, tied=tied), num_tokens=vocab_size,
               embed_size=embed_size, tied=tied, readout="all")


def generate(model: Model, params: Params, prime: Array, length: int,
             key: PRNGKey, *, temperature: float = 1.0) -> Array:
  """Samples a continuation of ``prime``, one token at a time.

  The prime is read in one ``apply`` (its final carry and last logits start
  the sampling), then each sampled token is fed back for ``length`` steps in a
  ``lax.scan``::

    w_{t+1} ~ softmax(logits_t / temperature)

  Args:
    model: a ``Model`` with token inputs whose outputs are logits over the
      same tokens (``language_model``, or ``sequence_model`` with
      ``num_tokens == output_size`` and ``readout="all"``).
    params: its params.
    prime: (*B, P) int ids in ``[0, V)``, P >= 1; an id outside the range
      raises ``ValueError``.
    length: number of tokens to sample, > 0.
    key: PRNG key.
    temperature: softmax temperature, > 0 (lower is more conservative).

  Returns:
    (*B, length) int32 sampled ids (the prime not included).
  """
  if model.num_tokens is None or model.num_tokens != model.output_size:
    raise ValueError(f"generate needs a model whose inputs are tokens of its own output "
                     f"vocabulary, got num_tokens={model.num_tokens} and output_size="
                     f"{model.output_size} ({model.name})")
  length = checks.positive_int("length", length)
  temperature = checks.positive("temperature", temperature)
  check_token_ids(prime, model.num_tokens, "prime")
  prime = jnp.asarray(prime, jnp.int32)
  if prime.ndim < 1 or prime.shape[-1] < 1:
    raise ValueError(f"prime must have shape (*B, P) with P >= 1, got {prime.shape}")
  carry, logits = model.apply(params, prime)
  if logits.ndim != prime.ndim + 1:
    raise ValueError(f"generate needs per-step logits (readout='all'), got outputs of shape "
                     f"{logits.shape} for a prime of shape {prime.shape}")

  def body(state, step_key):
    last_logits, carry = state
    token = jax.random.categorical(step_key, last_logits / temperature, axis=-1)
    carry, logits = model.apply(params, token[..., None], carry)
    return (logits[..., -1, :], carry), token

  keys = jax.random.split(key, length)
  _, tokens = jax.lax.scan(body, (logits[..., -1, :], carry), keys)
  return jnp.moveaxis(tokens, 0, -1).astype(jnp.int32)
