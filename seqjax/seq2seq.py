"""Encoder-decoder models with attention, teacher forcing and scheduled sampling.

An encoder reads the source ``x_1..x_S``; a decoder models ``P(y | x) = prod_t
P(y_t | y_<t, x)`` one target token at a time (Sutskever, Vinyals & Le 2014,
https://arxiv.org/abs/1409.3215). With attention the decoder looks back at
every encoder state at every step (Bahdanau, Cho & Bengio 2014,
https://arxiv.org/abs/1409.0473; the decoder layout of Luong, Pham & Manning
2015, https://arxiv.org/abs/1508.04025, with input feeding). One decoder step,
with ``L`` stacked decoder cells, embedding ``E_y`` of the target vocabulary
and the attention of ``seqjax.attention``::

  x_t   = [E_y[y_{t-1}] ; a_{t-1}]                 input feeding (a_0 = 0)
  h^0_t = cell_0(h^0_{t-1}, x_t)
  h^l_t = cell_l(h^l_{t-1}, h^{l-1}_t) (+ h^{l-1}_t from layer ``residual_from`` on)
  c_t, alpha_t = attention(h^{L-1}_t, encoder states)
  a_t   = tanh(W_c [c_t ; h^{L-1}_t] + b_c)        the attentional vector
  P(y_t | y_<t, x) = softmax(W_o a_t + b_o)        (W_o = E_y^T if tied)

Without attention ``a_t = h^{L-1}_t``, nothing is fed back, and the source
reaches the decoder only through its initial state (the bridge), as in
Sutskever et al. (who also read the source reversed: ``reverse_source``).

The bridge maps the encoder's final carry (every leaf concatenated,
``bridge="final"``) or the masked mean of its outputs (``"mean"``) through
one ``tanh`` dense layer to every leaf of every decoder cell's initial carry;
``"zeros"`` starts the decoder from its cells' ``initial_carry``.

Token conventions: the decoder's first input is ``bos_id``; targets end with
``eos_id``; ``shift_right`` turns targets into decoder inputs. Padded source and
target positions (``source_mask``/``target_mask`` False) may hold any id: they
change neither the loss nor its gradient nor any real output.

Training runs the decoder over the whole target inside one ``lax.scan``
(``Seq2Seq.apply``). ``teacher_prob`` is the probability of feeding the gold
previous token (teacher forcing at 1; Bengio et al. 2015's scheduled
sampling, https://arxiv.org/abs/1506.03099, below 1, each step's coin
choosing between the gold token and the model's own previous prediction,
argmax or sampled; decays in ``teacher_forcing_schedule``).

Shapes: B batch (any leading axes), S source length, U target length, E
embedding, H decoder hidden, K encoder output size, A attentional vector size,
V_s / V_t source / target vocabulary.
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple, Optional, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np

from seqjax import attention as attention_lib
from seqjax import checks, embeddings, losses
from seqjax import layers as layers_lib
from seqjax.attention import Attention, Memory
from seqjax.types import Array, Carry, Cell, Params, PRNGKey

BRIDGES = ("final", "mean", "zeros")
SAMPLINGS = ("argmax", "sample")
DECAYS = ("constant", "linear", "exponential", "inverse_sigmoid")


class DecoderState(NamedTuple):
  """The decoder's recurrent state between two steps.

  Attributes:
    carry: tuple of the decoder cells' carries, one per layer, each (*B, ...).
    feed: (*B, A) the previous attentional vector ``a_{t-1}`` (input feeding);
      (*B, 0) for a model without it.
  """

  carry: tuple
  feed: Array


class Encoded(NamedTuple):
  """What ``Seq2Seq.encode`` returns for a batch of sources.

  Attributes:
    memory: the attention's ``Memory`` over the encoder states (values
      (*B, S, K), keys, mask (*B, S)), or None for a model without attention.
    state: the decoder's initial ``DecoderState`` (from the bridge).
  """

  memory: Optional[Memory]
  state: DecoderState


class Seq2Seq(NamedTuple):
  """An encoder-decoder as pure functions (built by ``encoder_decoder``).

  Attributes:
    init: ``key -> params``.
    encode: ``(params, source (*B, S) ids, source_mask (*B, S) or None, *,
      key=None, training=False) -> Encoded``.
    step: ``(params, memory, state, tokens (*B,) ids, *, key=None,
      training=False) -> (state, logits (*B, V_t), weights (*B, S) or
      None)``: one decoder step on the previous tokens.
    apply: ``(params, source, target_in, *, source_mask=None,
      target_mask=None, key=None, training=False, teacher_prob=None,
      sampling="argmax") -> (logits (*B, U, V_t), weights (*B, U, S) or
      None)``: the decoder run over ``target_in`` (``shift_right`` of the
      targets) inside one ``lax.scan``; ``teacher_prob`` None (or a Python
      1.0) is teacher forcing, an array broadcastable to (*B,) is
      scheduled sampling (``key`` required).
    source_vocab_size: V_s.
    target_vocab_size: V_t.
    bos_id: the decoder's first input.
    eos_id: the token that ends a target.
    name: a readable description.
  """

  init: Callable[[PRNGKey], Params]
  encode: Callable[..., Encoded]
  step: Callable[..., tuple[DecoderState, Array, Optional[Array]]]
  apply: Callable[..., tuple[Array, Optional[Array]]]
  source_vocab_size: int
  target_vocab_size: int
  bos_id: int
  eos_id: int
  name: str

  def __repr__(self) -> str:
    return f"Seq2Seq({self.name})"


def shift_right(targets: Array, bos_id: int) -> Array:
  """Decoder inputs for teacher forcing: ``[bos, y_1, ..., y_{U-1}]``.

  Args:
    targets: (*B, U) int ids ``y_1..y_U``.
    bos_id: the first input.

  Returns:
    (*B, U) ids.
  """
  targets = jnp.asarray(targets)
  bos = jnp.full(targets.shape[:-1] + (1,), bos_id, targets.dtype)
  return jnp.concatenate([bos, targets[..., :-1]], axis=-1)


def reverse_valid(ids: Array, mask: Optional[Array]) -> Array:
  """Each row's real (masked-in, left-aligned) tokens reversed; padding stays in place.

  Args:
    ids: (*B, S) ids, or (*B, S, F) features.
    mask: (*B, S) booleans with each row's real tokens first, or None (every
      row reversed whole).

  Returns:
    ``ids`` with positions ``0..n-1`` of each row reversed (n = its length).
  """
  ids = jnp.asarray(ids)
  length = ids.shape[mask.ndim - 1] if mask is not None else None
  if mask is None:
    return jnp.flip(ids, axis=-1 if ids.ndim == 1 else 1)
  mask = jnp.asarray(mask, bool)
  n = jnp.sum(mask, axis=-1, keepdims=True)
  t = jnp.arange(length)
  index = jnp.where(t < n, n - 1 - t, t)
  if ids.ndim > mask.ndim:
    index = index[..., None]
  return jnp.take_along_axis(ids, index, axis=mask.ndim - 1)


def _dropout(key, rate, x):
  if key is None or rate == 0:
    return x
  keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
  return jnp.where(keep, x / (1.0 - rate), jnp.zeros((), x.dtype))


def _dense_init(key, fan_in, fan_out):
  return {"w": jax.random.normal(key, (fan_in, fan_out), jnp.float32) / np.sqrt(fan_in),
          "b": jnp.zeros((fan_out,), jnp.float32)}


def _leaf_sizes(tree) -> list[int]:
  return [int(leaf.shape[-1]) for leaf in jax.tree_util.tree_leaves(tree)]


def _as_cells(decoder: Union[Cell, Sequence[Cell]]) -> tuple[Cell, ...]:
  cells = (decoder,) if isinstance(decoder, Cell) else tuple(decoder)
  if not cells or not all(isinstance(c, Cell) for c in cells):
    raise TypeError(f"decoder must be a seqjax.Cell or a non-empty sequence of Cells, got "
                    f"{decoder!r}")
  return cells


def encoder_decoder(source_vocab_size: int,
                    target_vocab_size: int,
                    encoder: layers_lib.CellOrLayer,
                    decoder: Union[Cell, Sequence[Cell]],
                    *,
                    embed_size: int,
                    attention: Optional[Attention] = None,
                    attention_vector_size: Optional[int] = None,
                    input_feeding: bool = True,
                    bridge: str = "final",
                    reverse_source: bool = False,
                    residual_from: Optional[int] = None,
                    tie_embeddings: bool = False,
                    dropout: float = 0.0,
                    bos_id: int = 1,
                    eos_id: int = 2) -> Seq2Seq:
  """An encoder-decoder translation model (equations in the module docstring).

  Params: ``{"source_embed": (V_s, E), "target_embed": (V_t, E), "encoder":
  ..., "bridge": {"w", "b"} (absent for "zeros"), "decoder": {"layer_l":
  ...}, "attention": ..., "combine": {"w": (K + H, A), "b"} (with
  attention), "head": {"w": (A, V_t) (absent if tied), "b": (V_t,)}}``.

  Args:
    source_vocab_size: V_s, > 0.
    target_vocab_size: V_t, > 0.
    encoder: a ``Cell`` (run left to right) or any ``Layer`` (``stacked``,
      ``bidirectional``, ``residual``, a TCN...): source embeddings (*B, S, E)
      -> encoder states (*B, S, K), run with the source mask.
    decoder: a ``Cell`` or a sequence of cells, one per decoder layer.
    embed_size: E, the width of both embeddings.
    attention: ``seqjax.attention.additive(A)``, ``dot()``, ``general()`` or
      None (no attention: the bridge carries the source).
    attention_vector_size: A, the size of ``a_t`` (default: the top decoder
      cell's output size); only with attention.
    input_feeding: feed ``a_{t-1}`` with the next input (with attention).
    bridge: ``"final"``, ``"mean"`` or ``"zeros"`` (module docstring).
    reverse_source: read each source's real tokens right to left (Sutskever
      et al.); attention weights are still reported in source order.
    residual_from: add each decoder layer's input to its output from this
      layer index on (GNMT uses 2: residuals from the third layer); sizes
      must agree.
    tie_embeddings: the output matrix is ``E_y^T`` (needs A == E).
    dropout: rate on the embeddings and on ``a_t`` before the softmax.
    bos_id: the decoder's first input id.
    eos_id: the end-of-sequence id.

  Returns:
    A ``Seq2Seq``.
  """
  v_s = checks.positive_int("source_vocab_size", source_vocab_size)
  v_t = checks.positive_int("target_vocab_size", target_vocab_size)
  e = checks.positive_int("embed_size", embed_size)
  enc = layers_lib.as_layer(encoder, "encoder")
  cells = _as_cells(decoder)
  checks.one_of("bridge", bridge, BRIDGES)
  checks.boolean("input_feeding", input_feeding)
  checks.boolean("reverse_source", reverse_source)
  checks.boolean("tie_embeddings", tie_embeddings)
  rate = checks.in_range("dropout", dropout, 0.0, 1.0)
  if rate == 1.0:
    raise ValueError("dropout must be in [0, 1), got 1.0")
  if attention is not None and not isinstance(attention, Attention):
    raise TypeError(f"attention must be a seqjax.attention.Attention or None, got "
                    f"{type(attention).__name__}")
  for name, value in (("bos_id", bos_id), ("eos_id", eos_id)):
    if not 0 <= checks.non_negative_int(name, value) < v_t:
      raise ValueError(f"{name} must be in [0, target_vocab_size={v_t}), got {value}")
  h_top = cells[-1].output_size
  if attention is None:
    if attention_vector_size not in (None, h_top):
      raise ValueError("attention_vector_size needs attention (without it a_t is the top "
                       "decoder output)")
    a_size, feeding = h_top, False
  else:
    a_size = checks.positive_int("attention_vector_size", attention_vector_size or h_top)
    feeding = input_feeding
  if tie_embeddings and a_size != e:
    raise ValueError(f"tie_embeddings needs the attentional vector size ({a_size}) to equal "
                     f"embed_size ({e})")
  first = residual_from if residual_from is not None else len(cells)
  checks.non_negative_int("residual_from", first)
  feed_size = a_size if feeding else 0
  in_sizes = [e + feed_size] + [c.output_size for c in cells[:-1]]
  for l in range(first, len(cells)):
    if in_sizes[l] != cells[l].output_size:
      raise ValueError(f"residual_from={residual_from}: decoder layer {l} maps {in_sizes[l]} "
                       f"to {cells[l].output_size} features; a residual needs them equal")

  def decoder_template(params, batch_shape):
    return tuple(c.initial_carry(params["decoder"][f"layer_{l}"], batch_shape)
                 for l, c in enumerate(cells))

  def init(key):
    keys = jax.random.split(key, 8)
    params = {
        "source_embed": jax.random.normal(keys[0], (v_s, e), jnp.float32) / np.sqrt(e),
        "target_embed": jax.random.normal(keys[1], (v_t, e), jnp.float32) / np.sqrt(e),
        "encoder": enc.init(keys[2], e),
        "decoder": {f"layer_{l}": c.init(k, in_sizes[l]) for l, (c, k) in
                    enumerate(zip(cells, jax.random.split(keys[3], len(cells))))},
    }
    if bridge != "zeros":
      if bridge == "final":
        template = jax.eval_shape(lambda p: enc.initial_carry(p, (1,)), params["encoder"])
        fan_in = sum(_leaf_sizes(template))
        if fan_in == 0:
          raise ValueError(f"bridge='final' needs an encoder with a recurrent carry; "
                           f"{enc.name} has none (use bridge='mean' or 'zeros')")
      else:
        fan_in = enc.output_size
      fan_out = sum(_leaf_sizes(jax.eval_shape(lambda p: decoder_template(p, (1,)), params)))
      params["bridge"] = _dense_init(keys[4], fan_in, fan_out)
    if attention is not None:
      params["attention"] = attention.init(keys[5], h_top, enc.output_size)
      params["combine"] = _dense_init(keys[6], enc.output_size + h_top, a_size)
    head = _dense_init(keys[7], a_size, v_t)
    params["head"] = {"b": head["b"]} if tie_embeddings else head
    return params

  def encode(params, source, source_mask=None, *, key=None, training=False):
    source = jnp.asarray(source)
    if source.ndim < 1:
      raise ValueError(f"source must have shape (*B, S) of token ids, got {source.shape}")
    if source.shape[-1] == 0:
      raise ValueError("source must have at least one position (S > 0), got S = 0")
    mask = (jnp.ones(source.shape, bool) if source_mask is None
            else jnp.asarray(source_mask, bool))
    if mask.shape != source.shape:
      raise ValueError(f"source_mask must have the source's shape {source.shape}, got "
                       f"{mask.shape}")
    k_embed, k_enc = (None, None) if key is None or not training else jax.random.split(key)
    xs = embeddings.lookup(params["source_embed"], source, mask=mask)
    xs = _dropout(k_embed, rate, xs)
    if reverse_source:
      xs = reverse_valid(xs, mask)
    batch_shape = source.shape[:-1]
    enc_carry, states = enc.apply(params["encoder"], xs, None, mask=mask, key=k_enc,
                                  training=training)
    if reverse_source:
      states = reverse_valid(states, mask)
    carry = decoder_template(params, batch_shape)
    if bridge != "zeros":
      if bridge == "final":
        summary = jnp.concatenate(jax.tree_util.tree_leaves(enc_carry), axis=-1)
      else:
        weights = mask[..., None].astype(states.dtype)
        summary = jnp.sum(states * weights, -2) / jnp.maximum(jnp.sum(weights, -2), 1.0)
      flat = jnp.tanh(summary @ params["bridge"]["w"] + params["bridge"]["b"])
      leaves, treedef = jax.tree_util.tree_flatten(carry)
      splits = np.cumsum(_leaf_sizes(carry))[:-1]
      carry = jax.tree_util.tree_unflatten(
          treedef, [part.astype(leaf.dtype) for part, leaf in
                    zip(jnp.split(flat, splits, axis=-1), leaves)])
    memory = None
    if attention is not None:
      memory = attention.memory(params["attention"], states, mask)
    feed = jnp.zeros(batch_shape + (feed_size,), params["target_embed"].dtype)
    return Encoded(memory, DecoderState(carry, feed))

  def core(params, memory, state, x):
    """One step on an embedded input x (*B, E) -> (state, a_t, weights)."""
    inp = jnp.concatenate([x, state.feed], axis=-1) if feeding else x
    new_carry = []
    for l, cell in enumerate(cells):
      c, h = cell.step(params["decoder"][f"layer_{l}"], state.carry[l], inp)
      new_carry.append(c)
      inp = h + inp if l >= first else h
    weights = None
    a = inp
    if attention is not None:
      context, weights = attention.apply(params["attention"], inp, memory)
      a = jnp.tanh(jnp.concatenate([context, inp], axis=-1) @ params["combine"]["w"]
                   + params["combine"]["b"])
    return DecoderState(tuple(new_carry), a if feeding else state.feed), a, weights

  def head(params, a):
    w = params["target_embed"].T if tie_embeddings else params["head"]["w"]
    return a @ w + params["head"]["b"]

  def embed_target(params, tokens):
    return jnp.take(params["target_embed"], tokens, axis=0)

  def step(params, memory, state, tokens, *, key=None, training=False):
    k_in, k_out = (None, None) if key is None or not training else jax.random.split(key)
    x = _dropout(k_in, rate, embed_target(params, jnp.asarray(tokens)))
    state, a, weights = core(params, memory, state, x)
    return state, head(params, _dropout(k_out, rate, a)), weights

  def apply(params, source, target_in, *, source_mask=None, target_mask=None, key=None,
            training=False, teacher_prob=None, sampling="argmax"):
    checks.one_of("sampling", sampling, SAMPLINGS)
    target_in = jnp.asarray(target_in)
    source = jnp.asarray(source)
    if target_in.shape[:-1] != source.shape[:-1] or target_in.ndim < 1:
      raise ValueError(f"target_in must have shape (*B, U) with the source's batch shape "
                       f"{source.shape[:-1]}, got {target_in.shape}")
    if target_mask is not None and jnp.shape(target_mask) != target_in.shape:
      raise ValueError(f"target_mask must have target_in's shape {target_in.shape}, got "
                       f"{jnp.shape(target_mask)}")
    forcing = teacher_prob is None or (isinstance(teacher_prob, (int, float))
                                       and teacher_prob == 1)
    if not forcing and key is None:
      raise ValueError("key is required for scheduled sampling (teacher_prob below 1)")
    k_enc, k_dec = (None, None) if key is None else jax.random.split(key)
    encoded = encode(params, source, source_mask, key=k_enc, training=training)
    u = target_in.shape[-1]
    batch_shape = target_in.shape[:-1]
    # Ids on padded target positions may be anything (out of range included):
    # they only feed later padded positions, whose loss is masked out.
    tokens = jnp.clip(target_in, 0, v_t - 1)
    if target_mask is not None:
      tokens = jnp.where(jnp.asarray(target_mask, bool), tokens, 0)
    tokens_tm = jnp.moveaxis(tokens, -1, 0)  # (U, *B)
    dropping = training and rate > 0 and k_dec is not None
    step_keys = (jax.vmap(lambda t: jax.random.fold_in(k_dec, t))(jnp.arange(u))
                 if k_dec is not None else None)

    def in_out_keys(k):
      return jax.random.split(k) if dropping else (None, None)

    if forcing:
      def body(state, inputs):
        token, k = inputs
        k_in, _ = in_out_keys(k) if k is not None else (None, None)
        x = _dropout(k_in, rate, embed_target(params, token))
        state, a, weights = core(params, encoded.memory, state, x)
        return state, (a, weights)

      _, (a_seq, weights) = jax.lax.scan(body, encoded.state, (tokens_tm, step_keys))
      if dropping:
        out_keys = jax.vmap(lambda k: jax.random.split(k)[1])(step_keys)
        a_seq = jax.vmap(lambda k, a: _dropout(k, rate, a))(out_keys, a_seq)
      logits = head(params, a_seq)
    else:
      prob = jnp.broadcast_to(jnp.asarray(teacher_prob, jnp.float32), batch_shape)

      def body(loop, inputs):
        state, previous_logits = loop
        gold, k, t = inputs
        k_coin, k_sample = jax.random.split(jax.random.fold_in(k, 1 << 20))
        if sampling == "argmax":
          own = jnp.argmax(previous_logits, axis=-1).astype(gold.dtype)
        else:
          own = jax.random.categorical(k_sample, previous_logits).astype(gold.dtype)
        use_gold = (t == 0) | (jax.random.uniform(k_coin, batch_shape) < prob)
        token = jnp.where(use_gold, gold, own)
        k_in, k_out = in_out_keys(k)
        x = _dropout(k_in, rate, embed_target(params, token))
        state, a, weights = core(params, encoded.memory, state, x)
        logits = head(params, _dropout(k_out, rate, a))
        return (state, jax.lax.stop_gradient(logits)), (logits, weights)

      init_logits = jnp.zeros(batch_shape + (v_t,), jnp.float32)
      _, (logits, weights) = jax.lax.scan(body, (encoded.state, init_logits),
                                          (tokens_tm, step_keys, jnp.arange(u)))
    logits = jnp.moveaxis(logits, 0, -2)
    if weights is not None:
      weights = jnp.moveaxis(weights, 0, -2)
    return logits, weights

  parts = [f"encoder={enc.name}", f"decoder={'+'.join(c.name for c in cells)}",
           f"attention={attention.name if attention is not None else 'none'}"]
  if reverse_source:
    parts.append("reversed source")
  return Seq2Seq(init, encode, step, apply, v_s, v_t, int(bos_id), int(eos_id),
                 ", ".join(parts))


def sequence_loss(model: Seq2Seq, params: Params, source: Array, target: Array, *,
                  source_mask: Optional[Array] = None, target_mask: Optional[Array] = None,
                  key: Optional[PRNGKey] = None, training: bool = False,
                  label_smoothing: float = 0.0, teacher_prob: Any = None,
                  sampling: str = "argmax") -> tuple[Array, Array]:
  """Summed per-token cross entropy of the targets, ``(total, count)`` as in ``seqjax.losses``.

  ``loss = sum_t m_t CE(y_t, softmax(logits_t))`` over the real target
  tokens (EOS included), with the decoder fed ``shift_right(target)``
  (teacher forcing) or, with ``teacher_prob``, scheduled sampling.

  Args:
    model: a ``Seq2Seq``.
    params: its params.
    source: (*B, S) ids; ``source_mask`` (*B, S) booleans or None.
    target: (*B, U) ids ending with EOS; ``target_mask`` (*B, U) or None.
    key: PRNG key (dropout, scheduled sampling).
    training: dropout on.
    label_smoothing: epsilon in [0, 1) (``seqjax.losses.cross_entropy``).
    teacher_prob: None (teacher forcing) or the probability of the gold input.
    sampling: the model token of scheduled sampling, ``"argmax"`` or ``"sample"``.

  Returns:
    ``(total, count)`` float32 scalars (nats, tokens).
  """
  check_targets(target, target_mask, model.eos_id)
  logits, _ = model.apply(params, source, shift_right(target, model.bos_id),
                          source_mask=source_mask, target_mask=target_mask, key=key,
                          training=training, teacher_prob=teacher_prob, sampling=sampling)
  target = jnp.asarray(target)
  if target_mask is not None:
    target = jnp.where(jnp.asarray(target_mask, bool), target, 0)
  return losses.cross_entropy(logits, target, target_mask, label_smoothing=label_smoothing)


def check_targets(target: Array, target_mask: Optional[Array], eos_id: int) -> None:
  """Raises ValueError if a concrete target row's last real token is not ``eos_id``.

  A model trained on targets without EOS never learns to stop: decoding then
  runs to the length limit. Traced arrays (inside ``jit``) are not checked.

  Args:
    target: (*B, U) ids; target_mask: (*B, U) booleans or None (all real).
    eos_id: the end-of-sequence id.
  """
  if isinstance(target, jax.core.Tracer) or isinstance(target_mask, jax.core.Tracer):
    return
  target = np.asarray(target)
  mask = np.ones(target.shape, bool) if target_mask is None else np.asarray(target_mask, bool)
  lengths = mask.sum(-1)
  last = np.take_along_axis(target, np.maximum(lengths - 1, 0)[..., None], -1)[..., 0]
  bad = np.argwhere((lengths > 0) & (last != eos_id))
  if bad.size:
    raise ValueError(f"target rows must end with eos_id={eos_id} (on their last real "
                     f"position); row {tuple(int(i) for i in bad[0])} ends with "
                     f"{int(last[tuple(bad[0])])}")


def teacher_forcing_schedule(step: Any, decay: str, *, k: float, c: float = 0.0,
                             minimum: float = 0.0) -> Array:
  """The probability ``eps_i`` of feeding the gold token at training step ``i`` (Bengio et al. 2015).

  Equations (``i`` the step)::

    constant:         eps_i = k
    linear:           eps_i = max(minimum, k - c i)
    exponential:      eps_i = k^i                      (k < 1)
    inverse_sigmoid:  eps_i = k / (k + exp(i / k))     (k >= 1)

  Args:
    step: the training step ``i`` (int or int array).
    decay: one of ``DECAYS``.
    k, c, minimum: the schedule's constants.

  Returns:
    float32 array of ``step``'s shape, in [0, 1].
  """
  checks.one_of("decay", decay, DECAYS)
  i = jnp.asarray(step, jnp.float32)
  if decay == "constant":
    eps = jnp.full_like(i, k)
  elif decay == "linear":
    eps = jnp.maximum(minimum, k - c * i)
  elif decay == "exponential":
    if not 0 < k < 1:
      raise ValueError(f"k must be in (0, 1) for the exponential decay, got {k}")
    eps = jnp.power(jnp.float32(k), i)
  else:
    if k < 1:
      raise ValueError(f"k must be >= 1 for the inverse-sigmoid decay, got {k}")
    eps = k / (k + jnp.exp(jnp.minimum(i / k, 80.0)))
  return jnp.clip(eps, 0.0, 1.0)


__all__ = ["BRIDGES", "DECAYS", "DecoderState", "Encoded", "SAMPLINGS", "Seq2Seq",
           "check_targets", "encoder_decoder", "reverse_valid", "sequence_loss", "shift_right",
           "teacher_forcing_schedule"]
del math, attention_lib
