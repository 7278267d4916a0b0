"""Decoding an encoder-decoder: greedy, temperature sampling and batched beam search under jit.

All three run the model's one-step decoder (``Seq2Seq.step``) inside a
``lax.while_loop`` that stops as soon as every sentence is finished, so one
compiled program decodes a whole batch. Every output is at most
``max_length`` tokens and ends with EOS: the decoder is forced to emit EOS at
the length limit of each sentence, ``min(max_length, ceil(a |x| + b))`` with
``length_ratio=(a, b)`` and ``|x|`` the source length (none by default).
Lengths count the EOS; positions after it hold ``pad_id``. Called as they are,
the loop is one program but the encoder and the setup around it run operation
by operation; wrap the call in ``jax.jit`` (the model and the options static,
e.g. ``jax.jit(beam_search, static_argnums=0, static_argnames=("beam_size",
"max_length", "alpha", "length_ratio"))``) to compile everything once.

Beam search keeps K hypotheses per sentence (fairseq's bookkeeping, Ott et
al. 2019): at every step the 2K best one-token extensions of the live
hypotheses are taken by total log-probability; those among the first K that
end in EOS are finished (scored by GNMT's length normalisation, Wu et al. 2016,
https://arxiv.org/abs/1609.08144)::

  score(Y) = log P(Y | x) / lp(Y),   lp(Y) = ((5 + |Y|) / 6)^alpha

and the K best that do not end in EOS live on. A sentence is done when K
hypotheses are finished. With K = 1 this is exactly greedy decoding (the
best extension is taken; if it is EOS the search ends). Hypotheses are
returned best first (n-best lists).

Shapes: B batch (one leading axis), S source length, L ``max_length``, K beam
width, V target vocabulary.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from seqjax import checks
from seqjax.seq2seq import Seq2Seq
from seqjax.types import Array, Params, PRNGKey


class Decoded(NamedTuple):
  """Greedy or sampled outputs.

  Attributes:
    tokens: (B, L) int32 ids, EOS-terminated, ``pad_id`` after EOS.
    lengths: (B,) int32, tokens up to and including EOS.
    log_probs: (B,) float32, ``log P(Y | x)`` of each output under the model
      (at temperature 1).
  """

  tokens: Array
  lengths: Array
  log_probs: Array


class Beams(NamedTuple):
  """Beam-search n-best lists, best first.

  Attributes:
    tokens: (B, K, L) int32 ids, EOS-terminated, ``pad_id`` after EOS.
    lengths: (B, K) int32, tokens up to and including EOS.
    scores: (B, K) float32, ``log P / lp`` (the ranking); -inf for an empty
      slot (fewer than K distinct hypotheses exist).
    log_probs: (B, K) float32, ``log P(Y | x)``.
  """

  tokens: Array
  lengths: Array
  scores: Array
  log_probs: Array


def length_penalty(length: Array, alpha: float) -> Array:
  """GNMT's length normalisation ``((5 + |Y|) / 6)^alpha``.

  Args:
    length: |Y| (int or array), EOS included.
    alpha: >= 0; 0 gives 1 (plain log-probabilities).

  Returns:
    float32 array of ``length``'s shape.
  """
  return jnp.power((5.0 + jnp.asarray(length, jnp.float32)) / 6.0, alpha)


def _check(model, source, source_mask, max_length, length_ratio):
  if not isinstance(model, Seq2Seq):
    raise TypeError(f"model must be a seqjax.seq2seq.Seq2Seq, got {type(model).__name__}")
  max_length = checks.positive_int("max_length", max_length)
  source = jnp.asarray(source)
  if source.ndim != 2:
    raise ValueError(f"source must have shape (B, S) of token ids, got {source.shape}")
  if source.shape[1] == 0:
    raise ValueError("source must have at least one position (S > 0), got S = 0")
  mask = (jnp.ones(source.shape, bool) if source_mask is None
          else jnp.asarray(source_mask, bool))
  if mask.shape != source.shape:
    raise ValueError(f"source_mask must have the source's shape {source.shape}, got "
                     f"{mask.shape}")
  limit = jnp.full(source.shape[:1], max_length, jnp.int32)
  if length_ratio is not None:
    a, b = length_ratio
    n = jnp.sum(mask, axis=-1).astype(jnp.float32)
    limit = jnp.clip(jnp.ceil(a * n + b).astype(jnp.int32), 1, max_length)
  return max_length, source, mask, limit


def _log_probs(logits, t, limit, eos_id, temperature=1.0):
  """log softmax of the logits, with EOS forced at each row's limit (t+1 tokens)."""
  logp = jax.nn.log_softmax(logits.astype(jnp.float32) / temperature, axis=-1)
  at_limit = (t + 1 >= limit)[..., None]
  forced = jnp.where(jnp.arange(logp.shape[-1]) == eos_id, 0.0, -jnp.inf)
  return jnp.where(at_limit, forced, logp)


def _run_single(model, params, source, source_mask, max_length, length_ratio, pad_id,
                choose):
  max_length, source, mask, limit = _check(model, source, source_mask, max_length,
                                           length_ratio)
  batch = source.shape[0]
  encoded = model.encode(params, source, mask)
  eos = model.eos_id

  def cond(loop):
    t, _, _, done, _, _ = loop
    return (t < max_length) & ~jnp.all(done)

  def body(loop):
    t, state, previous, done, tokens, total = loop
    state, logits, _ = model.step(params, encoded.memory, state, previous)
    logp = _log_probs(logits, t, limit, eos)
    token = choose(t, logits, limit).astype(jnp.int32)
    token = jnp.where(done, pad_id, token)
    total = total + jnp.where(done, 0.0, jnp.take_along_axis(logp, token[:, None], -1)[:, 0])
    tokens = tokens.at[:, t].set(token)
    return t + 1, state, token, done | (token == eos), tokens, total

  start = (jnp.int32(0), encoded.state, jnp.full((batch,), model.bos_id, jnp.int32),
           jnp.zeros((batch,), bool), jnp.full((batch, max_length), pad_id, jnp.int32),
           jnp.zeros((batch,), jnp.float32))
  _, _, _, _, tokens, total = jax.lax.while_loop(cond, body, start)
  lengths = jnp.argmax(tokens == eos, axis=-1).astype(jnp.int32) + 1
  return Decoded(tokens, lengths, total)


def greedy(model: Seq2Seq, params: Params, source: Array, source_mask: Optional[Array] = None,
           *, max_length: int, length_ratio: Optional[tuple[float, float]] = None,
           pad_id: int = 0) -> Decoded:
  """Greedy decoding: ``y_t = argmax P(y | y_<t, x)`` until EOS.

  Args:
    model: a ``Seq2Seq``; params: its params.
    source: (B, S) ids; source_mask: (B, S) booleans or None.
    max_length: L, the most tokens an output has (EOS included), > 0.
    length_ratio: optional ``(a, b)``: each sentence stops by ``ceil(a |x| + b)``.
    pad_id: the id written after EOS.

  Returns:
    ``Decoded`` (tokens (B, L), lengths (B,), log_probs (B,)).
  """
  return _run_single(
      model, params, source, source_mask, max_length, length_ratio, pad_id,
      lambda t, logits, limit: jnp.argmax(_log_probs(logits, t, limit, model.eos_id), -1))


def sample(model: Seq2Seq, params: Params, source: Array, source_mask: Optional[Array] = None,
           *, key: PRNGKey, max_length: int, temperature: float = 1.0,
           length_ratio: Optional[tuple[float, float]] = None, pad_id: int = 0) -> Decoded:
  """Ancestral sampling: ``y_t ~ softmax(logits_t / temperature)`` until EOS.

  Args:
    model, params, source, source_mask, max_length, length_ratio, pad_id: as ``greedy``.
    key: PRNG key.
    temperature: > 0; lower is greedier.

  Returns:
    ``Decoded``; ``log_probs`` are under the model at temperature 1.
  """
  temperature = checks.positive("temperature", temperature)

  def choose(t, logits, limit):
    tempered = _log_probs(logits, t, limit, model.eos_id, temperature)
    return jax.random.categorical(jax.random.fold_in(key, t), tempered)

  return _run_single(model, params, source, source_mask, max_length, length_ratio, pad_id,
                     choose)


def _gather_beams(tree, index, batch, beams):
  """Leaves (B*K, ...) reordered within each sentence by ``index`` (B, K)."""

  def gather(leaf):
    shaped = leaf.reshape((batch, beams) + leaf.shape[1:])  # leaves may have size 0
    picked = jnp.take_along_axis(
        shaped, index.reshape(index.shape + (1,) * (shaped.ndim - 2)), axis=1)
    return picked.reshape((batch * beams,) + leaf.shape[1:])

  return jax.tree_util.tree_map(gather, tree)


def beam_search(model: Seq2Seq, params: Params, source: Array,
                source_mask: Optional[Array] = None, *, beam_size: int, max_length: int,
                alpha: float = 0.0, length_ratio: Optional[tuple[float, float]] = None,
                pad_id: int = 0) -> Beams:
  """Batched beam search with GNMT length normalisation (module docstring).

  Args:
    model: a ``Seq2Seq``; params: its params.
    source: (B, S) ids; source_mask: (B, S) booleans or None.
    beam_size: K >= 1.
    max_length: L, the most tokens an output has (EOS included), > 0.
    alpha: length-normalisation exponent >= 0 (GNMT used 0.6-0.7).
    length_ratio: optional ``(a, b)``: each sentence stops by ``ceil(a |x| + b)``.
    pad_id: the id written after EOS.

  Returns:
    ``Beams``: (B, K, L) tokens, (B, K) lengths, scores and log-probabilities,
    best first.
  """
  k = checks.positive_int("beam_size", beam_size)
  alpha = float(checks.in_range("alpha", alpha, 0.0, math.inf))
  max_length, source, mask, limit = _check(model, source, source_mask, max_length,
                                           length_ratio)
  batch, eos = source.shape[0], model.eos_id
  v = model.target_vocab_size
  encoded = model.encode(params, source, mask)
  tile = lambda x: jnp.repeat(x, k, axis=0)  # noqa: E731  (B, ...) -> (B*K, ...)
  memory = jax.tree_util.tree_map(tile, encoded.memory)
  state = jax.tree_util.tree_map(tile, encoded.state)
  neg = jnp.float32(-jnp.inf)
  width = min(2 * k, k * v)

  def cond(loop):
    t, done = loop[0], loop[-1]
    return (t < max_length) & ~jnp.all(done)

  def body(loop):
    t, state, seqs, logp_alive, fin_seqs, fin_scores, fin_logp, fin_count, done = loop
    previous = jnp.where(t == 0, model.bos_id, seqs[:, :, jnp.maximum(t - 1, 0)])
    state, logits, _ = model.step(params, memory, state, previous.reshape(-1))
    logp = _log_probs(logits, t, jnp.repeat(limit, k), eos).reshape(batch, k, v)
    candidates = (logp_alive[..., None] + logp).reshape(batch, k * v)
    top, index = jax.lax.top_k(candidates, width)  # (B, 2K), best first
    beam, token = index // v, (index % v).astype(jnp.int32)
    grown = jnp.take_along_axis(seqs, beam[..., None], axis=1).at[:, :, t].set(token)
    is_eos = (token == eos) & jnp.isfinite(top)
    # Finish the EOS candidates among the first K; merge with the finished ones.
    finishing = is_eos & (jnp.arange(width) < k) & ~done[:, None]
    score = jnp.where(finishing, top / length_penalty(t + 1, alpha), neg)
    all_scores = jnp.concatenate([fin_scores, score], axis=1)
    fin_scores, pick = jax.lax.top_k(all_scores, k)
    fin_seqs = jnp.take_along_axis(jnp.concatenate([fin_seqs, grown], axis=1),
                                   pick[..., None], axis=1)
    fin_logp = jnp.take_along_axis(
        jnp.concatenate([fin_logp, jnp.where(finishing, top, neg)], axis=1), pick, axis=1)
    fin_count = fin_count + jnp.sum(finishing, axis=1)
    # The K best that go on.
    alive_scores = jnp.where(is_eos, neg, top)
    logp_alive, keep = jax.lax.top_k(alive_scores, k)
    seqs = jnp.take_along_axis(grown, keep[..., None], axis=1)
    state = _gather_beams(state, jnp.take_along_axis(beam, keep, axis=1), batch, k)
    done = done | (fin_count >= k) | ~jnp.isfinite(logp_alive[:, 0])
    return t + 1, state, seqs, logp_alive, fin_seqs, fin_scores, fin_logp, fin_count, done

  start_logp = jnp.where(jnp.arange(k) == 0, 0.0, neg)
  start = (jnp.int32(0), state,
           jnp.full((batch, k, max_length), pad_id, jnp.int32),
           jnp.broadcast_to(start_logp, (batch, k)),
           jnp.full((batch, k, max_length), pad_id, jnp.int32),
           jnp.full((batch, k), neg), jnp.full((batch, k), neg),
           jnp.zeros((batch,), jnp.int32), jnp.zeros((batch,), bool))
  out = jax.lax.while_loop(cond, body, start)
  tokens, scores, log_probs = out[4], out[5], out[6]
  position = jnp.arange(max_length)
  is_eos = tokens == eos
  lengths = jnp.where(jnp.any(is_eos, -1), jnp.argmax(is_eos, -1) + 1, 0).astype(jnp.int32)
  tokens = jnp.where(position < lengths[..., None], tokens, pad_id)
  return Beams(tokens, lengths, scores, log_probs)


__all__ = ["Beams", "Decoded", "beam_search", "greedy", "length_penalty", "sample"]
del np
