r"""Batched beam search under jit against a plain Python-loop beam search, sentences/s.

Two implementations of the same algorithm (``seqjax.decoding``'s module
docstring: fairseq's bookkeeping, GNMT's length normalisation, EOS forced at
each sentence's length limit), on the same model and sentences:

* ``jitted``: ``seqjax.decoding.beam_search`` under ``jax.jit`` over batches
  of ``--batch_size`` sentences, one compiled ``lax.while_loop`` per batch
  (every source padded to the longest of the set, so one compile). A batch
  runs until its last sentence is done, so the sentences are batched in
  order of length (``--sort_by_length``, as fairseq's generate does);
  ``--no-sort_by_length`` batches them as they come;
* ``python``: ``python_beam_search`` below, one sentence at a time: a jitted
  decoder step (compiled once, on the K live hypotheses) called once per time
  step, the top 2K, the finishing, the merge into the finished pool and the
  reordering of the decoder state done in numpy. It is the reference of the
  jitted version too: both must give the same best hypothesis for every
  sentence (``mismatches`` counts those that do not: other tokens, or
  log-probabilities more than 1e-4 apart).

The model: a bidirectional LSTM encoder (``--hidden`` / 2 per direction), an
LSTM decoder of ``--hidden`` units with additive attention and input feeding,
``--vocab`` source and target ids, ``--embed`` wide embeddings; random
parameters, the output layer scaled by ``--head_scale`` so that the next-token
distributions are peaked as a trained model's are. An untrained model rarely
ends a sentence by itself, so every sentence stops at its length limit
``min(--max_length, ceil(a |x| + b))`` (``--length_ratio a,b``), which
makes the outputs as long as translations of the sources would be;
``--eos_bias`` (added to EOS's logit) lets hypotheses finish earlier.
Sources are ``--num_sentences`` random sentences of 5 to 40 ids.

Times exclude compiling (reported apart: the first call's time less the
second's); the two implementations take turns over ``--repeats`` (median
reported), and the Python loop's time is split into the jitted decoder step
(dispatch and compute) and the rest (numpy bookkeeping, Python).

  python benchmarks/beam_search_speed.py --json /tmp/beam_search_speed.json
  python benchmarks/beam_search_speed.py --num_sentences 32 --batch_size 32 --repeats 1
"""

from __future__ import annotations

import argparse
import functools
import math
import platform
import time
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

import harness
from seqjax import attention, cells, decoding, layers, seq2seq

IMPLEMENTATIONS = ("jitted", "python")
# The sources' lengths, both ends included.
SOURCE_LENGTHS = (5, 40)
# A best hypothesis counts as the same when its tokens are and its log-probability
# is within this.
LOG_PROB_TOLERANCE = 1e-4


# ----------------------------------------------------------------------------
# The Python-loop beam search.
# ----------------------------------------------------------------------------


def _top(values: np.ndarray, n: int) -> np.ndarray:
  """Indices of the n largest of ``values`` (1-D), best first, as ``lax.top_k`` orders them.

  Equal values come lowest index first, including at the cut (which of
  several equal n-th values are kept).

  Args:
    values: (M,) floats, no NaN.
    n: how many, 1 <= n <= M.

  Returns:
    (n,) int indices into ``values``.
  """
  if n >= values.size:
    return np.argsort(-values, kind="stable")
  threshold = values[np.argpartition(-values, n - 1)[n - 1]]
  above = np.flatnonzero(values > threshold)
  ties = np.flatnonzero(values == threshold)[:n - above.size]
  index = np.concatenate([above, ties])
  return index[np.argsort(-values[index], kind="stable")]


@functools.lru_cache(maxsize=None)
def _compiled(model: seq2seq.Seq2Seq, beam_size: int):
  """The jitted encoder (one sentence, its memory and state tiled to K) and decoder step."""

  @jax.jit
  def encode(params, source, mask):
    encoded = model.encode(params, source[None], mask[None])
    tile = lambda x: jnp.repeat(x, beam_size, axis=0)  # noqa: E731  (1, ...) -> (K, ...)
    return (jax.tree_util.tree_map(tile, encoded.memory),
            jax.tree_util.tree_map(tile, encoded.state))

  @jax.jit
  def step(params, memory, state, tokens):
    state, logits, _ = model.step(params, memory, state, tokens)
    return state, jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)

  return encode, step


@functools.lru_cache(maxsize=None)
def _penalties(max_length: int, alpha: float) -> np.ndarray:
  """(L + 1,) float32: ``decoding.length_penalty(n, alpha)`` at n = 0..L (XLA's own pow)."""
  return np.asarray(decoding.length_penalty(np.arange(max_length + 1), alpha))


def _limit(length: int, max_length: int, length_ratio) -> int:
  """A sentence's length limit, computed in float32 as ``decoding.beam_search`` does."""
  if length_ratio is None:
    return max_length
  a, b = length_ratio
  limit = np.ceil(np.float32(a) * np.float32(length) + np.float32(b))
  return int(np.clip(limit.astype(np.int32), 1, max_length))


def python_beam_search(model: seq2seq.Seq2Seq, params, source_row, beam_size: int,
                       max_length: int, alpha: float,
                       length_ratio: Optional[tuple[float, float]] = None, *,
                       pad_to: Optional[int] = None,
                       timings: Optional[dict] = None) -> tuple[list[list[int]], list[float],
                                                                list[float]]:
  """Beam search for one sentence in a Python loop: the algorithm of ``decoding.beam_search``.

  The same candidates, order and ties (``lax.top_k``'s: lowest index first)
  as ``seqjax.decoding.beam_search``: each step the 2K best extensions of the
  live hypotheses by total log-probability; EOS candidates among the first K
  are finished, scored ``logp / ((5 + |Y|) / 6)^alpha``, and merged into the
  finished pool keeping the K best (the pool's earlier entries first among
  equals); the K best other candidates live on; the search stops when K
  hypotheses have finished or no live one has a finite log-probability; EOS
  is forced at ``min(max_length, ceil(a |x| + b))`` tokens. The decoder step
  is a jitted ``model.step`` plus log-softmax on the K live hypotheses
  (compiled once per model and K, and per source length); the rest is numpy.

  Args:
    model: a ``Seq2Seq``; params: its params.
    source_row: (S,) source ids, all real (no padding).
    beam_size: K >= 1.
    max_length: L, the most tokens an output has (EOS included), > 0.
    alpha: length-normalisation exponent >= 0.
    length_ratio: optional ``(a, b)``.
    pad_to: encode the source padded (and masked) to this many positions, so
      that one compiled step serves every source length; None: its own length.
    timings: if given, ``"step_s"`` (the jitted step calls, results on the
      host) and ``"total_s"`` are added to it.

  Returns:
    ``(tokens, scores, log_probs)``: the finished hypotheses, best first (at
    most K; fewer when fewer exist): token lists ending with EOS, their
    scores and their log-probabilities ``log P(Y | x)`` (floats).
  """
  started = time.perf_counter()
  k, eos, v = beam_size, model.eos_id, model.target_vocab_size
  source_row = np.asarray(source_row, np.int32)
  n = source_row.shape[0]
  source = np.zeros((pad_to or n,), np.int32)
  source[:n] = source_row
  mask = np.arange(source.shape[0]) < n
  limit = _limit(n, max_length, length_ratio)
  penalty = _penalties(max_length, float(alpha))
  encode, step = _compiled(model, k)
  memory, state = encode(params, source, mask)
  step_s = 0.0

  width = min(2 * k, k * v)
  neg = np.float32(-np.inf)
  forced = np.where(np.arange(v) == eos, np.float32(0), neg).astype(np.float32)
  seqs = np.zeros((k, max_length), np.int32)  # the live hypotheses' tokens so far
  logp_alive = np.where(np.arange(k) == 0, np.float32(0), neg).astype(np.float32)
  fin_seqs = np.zeros((k, max_length), np.int32)
  fin_scores = np.full((k,), neg, np.float32)
  fin_logp = np.full((k,), neg, np.float32)
  fin_count = 0
  first_k = np.arange(width) < k
  t = 0
  while t < max_length:
    previous = np.full((k,), model.bos_id, np.int32) if t == 0 else seqs[:, t - 1]
    before = time.perf_counter()
    state, logp = step(params, memory, state, previous)
    state, logp = jax.device_get((state, logp))
    step_s += time.perf_counter() - before
    if t + 1 >= limit:
      logp = np.broadcast_to(forced, logp.shape)
    candidates = (logp_alive[:, None] + logp).reshape(-1)
    index = _top(candidates, width)
    top = candidates[index]
    beam, token = index // v, (index % v).astype(np.int32)
    grown = seqs[beam]
    grown[:, t] = token
    is_eos = (token == eos) & np.isfinite(top)
    finishing = is_eos & first_k
    if finishing.any():
      score = np.where(finishing, top / penalty[t + 1], neg)
      all_scores = np.concatenate([fin_scores, score])
      pick = _top(all_scores, k)
      fin_scores = all_scores[pick]
      fin_seqs = np.concatenate([fin_seqs, grown])[pick]
      fin_logp = np.concatenate([fin_logp, np.where(finishing, top, neg)])[pick]
      fin_count += int(finishing.sum())
    keep = _top(np.where(is_eos, neg, top), k)
    logp_alive = np.where(is_eos, neg, top)[keep]
    seqs = grown[keep]
    parents = beam[keep]
    state = jax.tree_util.tree_map(lambda leaf: leaf[parents], state)
    t += 1
    if fin_count >= k or not np.isfinite(logp_alive[0]):
      break

  tokens, scores, log_probs = [], [], []
  for row, score, logp_ in zip(fin_seqs, fin_scores, fin_logp):
    if not np.isfinite(score):
      break  # empty slots (fewer than K finished) come last
    length = int(np.argmax(row == eos)) + 1
    tokens.append([int(i) for i in row[:length]])
    scores.append(float(score))
    log_probs.append(float(logp_))
  if timings is not None:
    timings["step_s"] = timings.get("step_s", 0.0) + step_s
    timings["total_s"] = timings.get("total_s", 0.0) + time.perf_counter() - started
  return tokens, scores, log_probs


# ----------------------------------------------------------------------------
# The benchmark.
# ----------------------------------------------------------------------------


def build_model(vocab: int, embed: int, hidden: int, head_scale: float, eos_bias: float,
                seed: int = 0):
  """The seq2seq model of the module docstring and its random params."""
  if hidden % 2:
    raise ValueError(f"--hidden must be even (two encoder directions), got {hidden}")
  model = seq2seq.encoder_decoder(
      vocab, vocab, layers.bidirectional(cells.lstm(hidden // 2)), cells.lstm(hidden),
      embed_size=embed, attention=attention.additive(hidden))
  params = model.init(jax.random.key(seed))
  params["head"]["w"] = params["head"]["w"] * head_scale
  params["head"]["b"] = params["head"]["b"].at[model.eos_id].add(eos_bias)
  return model, params


def random_sources(num: int, vocab: int, seed: int = 0) -> list[np.ndarray]:
  """``num`` sentences of 5..40 random ids in [3, vocab) (0 pad, 1 BOS, 2 EOS kept out)."""
  rng = np.random.default_rng(seed)
  lengths = rng.integers(SOURCE_LENGTHS[0], SOURCE_LENGTHS[1] + 1, num)
  return [rng.integers(3, vocab, n).astype(np.int32) for n in lengths]


def padded_batches(sources: list[np.ndarray], batch_size: int, width: int):
  """(B, S) ids and masks, ``width`` wide; the last batch filled up with copies of sentence 0."""
  batches = []
  for start in range(0, len(sources), batch_size):
    chunk = sources[start:start + batch_size]
    real = len(chunk)
    chunk = chunk + [sources[0]] * (batch_size - real)
    ids = np.zeros((batch_size, width), np.int32)
    for i, row in enumerate(chunk):
      ids[i, :row.size] = row
    mask = np.arange(width)[None] < np.array([row.size for row in chunk])[:, None]
    batches.append((ids, mask, real))
  return batches


def _parse(argv=None):
  parser = harness.parser(__doc__.split("\n\n")[0], workers=False)
  parser.add_argument("--beam_size", type=int, default=5)
  parser.add_argument("--num_sentences", type=int, default=None, help="default 256 (--quick 8)")
  parser.add_argument("--batch_size", type=int, default=None, help="default 64 (--quick 4)")
  parser.add_argument("--max_length", type=int, default=None,
                      help="L, default 64 (--quick 12)")
  parser.add_argument("--length_ratio", default="1.2,5",
                      help="a,b: each sentence stops by ceil(a |x| + b); 'none' for L only")
  parser.add_argument("--alpha", type=float, default=0.6)
  parser.add_argument("--vocab", type=int, default=None, help="default 8000 (--quick 50)")
  parser.add_argument("--embed", type=int, default=None, help="default 128 (--quick 8)")
  parser.add_argument("--hidden", type=int, default=None, help="default 256 (--quick 16)")
  parser.add_argument("--head_scale", type=float, default=4.0)
  parser.add_argument("--eos_bias", type=float, default=0.0)
  parser.add_argument("--repeats", type=int, default=None, help="default 3 (--quick 1)")
  parser.add_argument("--sort_by_length", action=argparse.BooleanOptionalAction, default=True,
                      help="batch the jitted version's sentences in order of source length")
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args(argv)
  harness.fill_defaults(
      args,
      {"num_sentences": 256, "batch_size": 64, "max_length": 64, "vocab": 8000, "embed": 128,
       "hidden": 256, "repeats": 3},
      {"num_sentences": 8, "batch_size": 4, "max_length": 12, "vocab": 50, "embed": 8,
       "hidden": 16, "repeats": 1})
  if args.length_ratio.lower() == "none":
    args.length_ratio = None
  else:
    a, b = (float(x) for x in args.length_ratio.split(","))
    args.length_ratio = (a, b)
  return args


def main(argv=None) -> dict:
  """Times both implementations, checks they agree; returns (and with --json saves) the results."""
  args = _parse(argv)
  k, max_length, alpha, ratio = args.beam_size, args.max_length, args.alpha, args.length_ratio
  model, params = build_model(args.vocab, args.embed, args.hidden, args.head_scale,
                              args.eos_bias, args.seed)
  sources = random_sources(args.num_sentences, args.vocab, args.seed)
  width = max(row.size for row in sources)
  order = (np.argsort([row.size for row in sources], kind="stable") if args.sort_by_length
           else np.arange(len(sources)))
  batches = padded_batches([sources[i] for i in order], args.batch_size, width)
  harness.log(f"{model.name}; V={args.vocab}, E={args.embed}, H={args.hidden}, K={k}, "
              f"L={max_length}, length_ratio={ratio}, alpha={alpha}; "
              f"{len(sources)} sentences in {len(batches)} batches of {args.batch_size}"
              f"{' (sorted by length)' if args.sort_by_length else ''}")

  run = jax.jit(lambda p, s, m: decoding.beam_search(
      model, p, s, m, beam_size=k, max_length=max_length, alpha=alpha, length_ratio=ratio))

  def jitted_all():
    outs = []
    for ids, mask, real in batches:
      beams = jax.device_get(run(params, ids, mask))
      outs.append(jax.tree_util.tree_map(lambda x, real=real: x[:real], beams))
    return outs

  def python_all(timings=None):
    return [python_beam_search(model, params, row, k, max_length, alpha, ratio, pad_to=width,
                               timings=timings) for row in sources]

  # Compile times: the first call's time less the second's, on one batch / sentence.
  ids, mask, _ = batches[0]
  start = time.perf_counter()
  jax.block_until_ready(run(params, ids, mask))
  first = time.perf_counter() - start
  start = time.perf_counter()
  jax.block_until_ready(run(params, ids, mask))
  compile_jitted = first - (time.perf_counter() - start)
  start = time.perf_counter()
  python_beam_search(model, params, sources[0], k, max_length, alpha, ratio, pad_to=width)
  first = time.perf_counter() - start
  start = time.perf_counter()
  python_beam_search(model, params, sources[0], k, max_length, alpha, ratio, pad_to=width)
  compile_python = first - (time.perf_counter() - start)
  harness.log(f"compile: jitted {compile_jitted:.2f} s, python {compile_python:.2f} s")

  outputs = {}
  step_shares = []

  def measure(name):
    start = time.perf_counter()
    if name == "jitted":
      outputs[name] = jitted_all()
    else:
      timings = {}
      outputs[name] = python_all(timings)
      step_shares.append(timings["step_s"] / timings["total_s"])
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "sentences_per_second": len(sources) / seconds}

  results = harness.alternate(list(IMPLEMENTATIONS), args.repeats, measure, "beam search")
  rates = {name: harness.median([r["sentences_per_second"] for r in results[name]["replies"]])
           for name in IMPLEMENTATIONS}
  speedup = harness.ratio(rates["jitted"], rates["python"])

  # Agreement of the best hypotheses.
  jitted = [None] * len(sources)
  in_order = [beams for batch in outputs["jitted"] for beams in
              zip(batch.tokens, batch.lengths, batch.scores, batch.log_probs)]
  for i, beams in zip(order, in_order):
    jitted[i] = beams
  mismatches, max_logp_diff, lengths = [], 0.0, []
  for i, (row, (tokens, length, _, log_probs)) in enumerate(zip(outputs["python"], jitted)):
    py_tokens, _, py_logp = row
    best = [int(x) for x in tokens[0, :length[0]]]
    lengths.append(len(best))
    diff = abs(float(log_probs[0]) - py_logp[0]) if py_logp else math.inf
    max_logp_diff = max(max_logp_diff, diff)
    if not py_tokens or py_tokens[0] != best or diff > LOG_PROB_TOLERANCE:
      mismatches.append(i)

  python_step_share = harness.median(step_shares)
  rows = [[name, harness.fmt_rate(rates[name]),
           " / ".join(f"{r['sentences_per_second']:,.1f}" for r in results[name]["replies"]),
           f"{compile_jitted if name == 'jitted' else compile_python:.2f}"]
          for name in IMPLEMENTATIONS]
  print(f"backend {jax.default_backend()} ({jax.devices()[0].device_kind}), "
        f"{harness.usable_cores()} cores; K={k}, L={max_length}, B={args.batch_size}"
        f"{' sorted by length' if args.sort_by_length else ''}, "
        f"{len(sources)} sentences, mean best length {np.mean(lengths):.1f}")
  print(harness.table(["implementation", "sentences/s (median)", "repeats", "compile s"], rows))
  print(f"jitted / python: {harness.fmt_ratio(speedup)}x; python loop: "
        f"{100 * python_step_share:.0f}% of its time in the jitted step; best-hypothesis "
        f"mismatches {len(mismatches)} of {len(sources)} (max |log P diff| {max_logp_diff:.2g})")
  for name in IMPLEMENTATIONS:
    note = harness.spread_note(name, [r["seconds"] for r in results[name]["replies"]])
    if note:
      print(note)

  out = {
      "benchmark": "beam_search_speed",
      "args": vars(args),
      "backend": jax.default_backend(),
      "device": jax.devices()[0].device_kind,
      "machine": {"platform": platform.platform(), "cores": harness.usable_cores()},
      "model": model.name,
      "sentences": len(sources),
      "mean_best_length": float(np.mean(lengths)),
      "compile_seconds": {"jitted": compile_jitted, "python": compile_python},
      "sentences_per_second": rates,
      "repeats": {name: results[name]["replies"] for name in IMPLEMENTATIONS},
      "speedup": speedup,
      "python_step_share": python_step_share,
      "mismatches": len(mismatches),
      "mismatched_sentences": mismatches,
      "max_log_prob_difference": max_logp_diff,
  }
  harness.save_json(args.json, out)
  return out


if __name__ == "__main__":
  main()
