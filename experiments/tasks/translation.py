"""Sequence to sequence: synthetic tasks (addition, reversal, sorting) and Spanish -> English verses.

``config.data.dataset`` is ``"addition"``, ``"reversal"`` or ``"sorting"``
(``seqjax.data.synthetic``: a fresh seeded batch every step, fixed seeded
validation and test sets of ``data.eval_size`` examples, scored by exact
match) or ``"bible_es_en"`` (``experiments/datasets/bible.py``: Reina-Valera
1909 -> King James verse pairs split by chapter, scored by corpus BLEU).

Bible text is lower-cased and split into words and punctuation marks
(``seqjax.data.text.word_punct_tokenize``). Each side's vocabulary is the
training split's tokens seen at least ``data.min_count`` times, at most
``data.source_vocab_size`` / ``data.target_vocab_size`` ids including the
four specials ``<pad>=0, <s>=1, </s>=2, <unk>=3``; any other token maps to
``<unk>`` (so unknown words in a test source are read as ``<unk>``, and a
hypothesis may contain ``<unk>``, which never matches a reference word).
Training keeps the pairs whose source and target have at most
``data.max_train_tokens`` tokens; validation and test keep every pair up to
``data.max_eval_tokens`` source tokens, so that BLEU can be reported by
source length (``data.max_pairs > 0`` keeps only each split's first pairs,
for quick runs). Batches are sorted by length within windows and padded to
the next of ``data.buckets`` (one compilation per bucket pair).

BLEU is sacrebleu's corpus BLEU (13a tokenisation, ``lowercase=True``) of
the detokenised hypotheses (``seqjax.data.text.detokenize``) against the raw
English verses. The decoder is trained by teacher forcing or, with
``training.schedule`` other than ``"none"``, by scheduled sampling: the
probability of the gold input at step ``i`` follows
``seqjax.seq2seq.teacher_forcing_schedule`` (``training.decay``, ``k``,
``c``, ``minimum``) and is passed with each batch, so a resumed run feeds
exactly what the uninterrupted one would have.

After training, ``run`` decodes the test split greedily and with beam search
(``decode.beam_size``, ``decode.alpha``, ``decode.length_ratio``), writes
every hypothesis to ``<workdir>/translations_<split>_<greedy|beam>.tsv``
(source, reference, hypothesis, source tokens) and adds
``test/bleu_greedy``, ``test/bleu_beam`` (or ``test/exact_match_*``) and
decoding speed to the returned figures (also in ``<workdir>/decode.json``).
"""

from __future__ import annotations

import collections
import csv
import functools
import json
import os
import pathlib
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from experiments import datasets
from experiments.tasks import training
from seqjax import attention, cells, decoding, layers, losses, seq2seq
from seqjax.data import synthetic
from seqjax.data.text import detokenize, word_punct_tokenize
from seqjax.data.vocab import WordVocab
from seqjax.pytree import count_params
from seqjax.train import loop

SYNTHETIC = tuple(synthetic.SEQ2SEQ_TASKS)
PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIALS = ("<pad>", "<s>", "</s>", "<unk>")
SCHEDULES = ("none",) + seq2seq.DECAYS
_SORT_WINDOW = 50


def validate(config) -> None:
  training.validate(config)
  data, model, train, decode = config.data, config.model, config.training, config.decode
  names = SYNTHETIC + tuple(datasets.names("parallel"))
  if data.dataset not in names:
    raise ValueError(f"config.data.dataset must be one of {names}, got {data.dataset!r}")
  positive = ["eval_size", "eval_batch_size", "max_digits", "max_length", "min_length",
              "source_vocab_size", "target_vocab_size", "min_count", "max_train_tokens",
              "max_eval_tokens"]
  for field in positive:
    value = data[field]
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
      raise ValueError(f"config.data.{field} must be a positive integer, got {value!r}")
  if data.min_length > data.max_length:
    raise ValueError(f"config.data.min_length must be <= max_length, got {data.min_length} > "
                     f"{data.max_length}")
  if isinstance(data.max_pairs, bool) or not isinstance(data.max_pairs, int) \
      or data.max_pairs < 0:
    raise ValueError(f"config.data.max_pairs must be an integer >= 0 (0: all), got "
                     f"{data.max_pairs!r}")
  for field in ("source_vocab_size", "target_vocab_size"):
    if data[field] <= len(SPECIALS):
      raise ValueError(f"config.data.{field} must exceed the {len(SPECIALS)} special tokens, "
                       f"got {data[field]}")
  if model.cell not in ("lstm", "gru", "rnn"):
    raise ValueError(f"config.model.cell must be 'lstm', 'gru' or 'rnn', got {model.cell!r}")
  if model.attention not in attention.KINDS + ("none",):
    raise ValueError(f"config.model.attention must be one of {attention.KINDS + ('none',)}, "
                     f"got {model.attention!r}")
  for field in ("embed_size", "hidden_size", "encoder_layers", "decoder_layers"):
    value = model[field]
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
      raise ValueError(f"config.model.{field} must be a positive integer, got {value!r}")
  if model.bidirectional and model.hidden_size % 2:
    raise ValueError(f"config.model.hidden_size must be even with a bidirectional first "
                     f"encoder layer (half per direction), got {model.hidden_size}")
  if model.bridge not in seq2seq.BRIDGES:
    raise ValueError(f"config.model.bridge must be one of {seq2seq.BRIDGES}, got "
                     f"{model.bridge!r}")
  if not 0 <= model.dropout < 1:
    raise ValueError(f"config.model.dropout must be in [0, 1), got {model.dropout}")
  if train.schedule not in SCHEDULES:
    raise ValueError(f"config.training.schedule must be one of {SCHEDULES}, got "
                     f"{train.schedule!r}")
  if train.sampling not in seq2seq.SAMPLINGS:
    raise ValueError(f"config.training.sampling must be one of {seq2seq.SAMPLINGS}, got "
                     f"{train.sampling!r}")
  if not 0 <= train.label_smoothing < 1:
    raise ValueError(f"config.training.label_smoothing must be in [0, 1), got "
                     f"{train.label_smoothing}")
  if train.schedule != "none":
    teacher_probability(config, 0)  # raises on bad k for the decay
  if isinstance(decode.beam_size, bool) or not isinstance(decode.beam_size, int) \
      or decode.beam_size < 1:
    raise ValueError(f"config.decode.beam_size must be an integer >= 1, got "
                     f"{decode.beam_size!r}")
  if decode.alpha < 0:
    raise ValueError(f"config.decode.alpha must be >= 0, got {decode.alpha}")
  if isinstance(decode.max_length, bool) or not isinstance(decode.max_length, int) \
      or decode.max_length < 1:
    raise ValueError(f"config.decode.max_length must be an integer >= 1, got "
                     f"{decode.max_length!r}")


def teacher_probability(config, step: int) -> float:
  """The probability of feeding the gold token at ``step`` (1 for teacher forcing)."""
  t = config.training
  if t.schedule == "none":
    return 1.0
  return float(seq2seq.teacher_forcing_schedule(step, t.schedule, k=t.k, c=t.c,
                                                minimum=t.minimum))


def build_model(config, source_vocab_size: int, target_vocab_size: int,
                bos_id: int = BOS, eos_id: int = EOS) -> seq2seq.Seq2Seq:
  """The encoder-decoder ``config.model`` describes."""
  m = config.model
  factory = getattr(cells, m.cell)
  if m.bidirectional:
    encoder = [layers.bidirectional(factory(m.hidden_size // 2))]
  else:
    encoder = [layers.recurrent(factory(m.hidden_size))]
  for l in range(1, m.encoder_layers):
    layer = layers.recurrent(factory(m.hidden_size))
    encoder.append(layers.residual(layer) if m.residual and l >= 2 else layer)
  encoder_layer = layers.stacked(encoder, dropout=m.dropout) if len(encoder) > 1 else encoder[0]
  decoder = [factory(m.hidden_size) for _ in range(m.decoder_layers)]
  return seq2seq.encoder_decoder(
      source_vocab_size, target_vocab_size, encoder_layer, decoder,
      embed_size=m.embed_size, attention=attention.by_name(m.attention, m.attention_size),
      input_feeding=bool(m.input_feeding), bridge=m.bridge,
      reverse_source=bool(m.reverse_source),
      residual_from=2 if m.residual and m.decoder_layers > 2 else None,
      tie_embeddings=bool(m.tie_embeddings), dropout=m.dropout, bos_id=bos_id, eos_id=eos_id)


def build_vocab(sentences: list[list[str]], size: int, min_count: int) -> WordVocab:
  """The specials, then the most frequent tokens seen ``min_count`` times, at most ``size`` ids."""
  counts = collections.Counter(w for s in sentences for w in s)
  kept = sorted(((w, n) for w, n in counts.items() if n >= min_count and w not in SPECIALS),
                key=lambda item: (-item[1], item[0]))
  words = SPECIALS + tuple(w for w, _ in kept[:size - len(SPECIALS)])
  return WordVocab(words, UNK)


def corpus_bleu(hypotheses: list[str], references: list[str]) -> float:
  """sacrebleu's corpus BLEU (13a, lower-cased) of detokenised hypotheses; 0..100."""
  import sacrebleu  # a data-extra dependency, needed only to score translations

  if len(hypotheses) != len(references):
    raise ValueError(f"hypotheses and references must pair up, got {len(hypotheses)} and "
                     f"{len(references)}")
  return float(sacrebleu.corpus_bleu(hypotheses, [references], lowercase=True).score)


class Split(NamedTuple):
  """One split, encoded: ids with EOS appended, and the raw texts."""

  source: list[np.ndarray]
  target: list[np.ndarray]
  source_text: list[str]
  target_text: list[str]


def _pad(rows: list[np.ndarray], width: int) -> tuple[np.ndarray, np.ndarray]:
  ids = np.zeros((len(rows), width), np.int32)
  for i, r in enumerate(rows):
    ids[i, :len(r)] = r
  return ids, np.arange(width)[None] < np.array([len(r) for r in rows])[:, None]


def _bucket(length: int, buckets: tuple[int, ...]) -> int:
  """The first bucket that holds ``length``; beyond the last, the next multiple of 16."""
  return next((b for b in buckets if b >= length), -(-length // 16) * 16)


def load_bible(config) -> tuple[WordVocab, WordVocab, dict[str, Split]]:
  """Vocabularies and encoded splits of the Bible corpus (module docstring)."""
  data = config.data
  pairs = datasets.load(data.dataset)
  if data.max_pairs:  # quick runs: the first pairs of each split
    pairs = {s: type(p)(*(field[:data.max_pairs] for field in p)) for s, p in pairs.items()}
  tokens = {s: ([word_punct_tokenize(t) for t in p.source],
                [word_punct_tokenize(t) for t in p.target]) for s, p in pairs.items()}
  src_train, tgt_train = tokens["train"]
  limit = data.max_train_tokens - 1  # room for EOS
  keep = [i for i in range(len(src_train))
          if len(src_train[i]) <= limit and len(tgt_train[i]) <= limit]
  src_vocab = build_vocab([src_train[i] for i in keep], data.source_vocab_size, data.min_count)
  tgt_vocab = build_vocab([tgt_train[i] for i in keep], data.target_vocab_size, data.min_count)
  eos = np.array([EOS], np.int32)
  splits = {}
  for name, (src, tgt) in tokens.items():
    if name == "train":
      index = keep
    else:
      index = [i for i in range(len(src)) if len(src[i]) < data.max_eval_tokens]
    splits[name] = Split(
        [np.concatenate([src_vocab.encode(src[i]).astype(np.int32), eos]) for i in index],
        [np.concatenate([tgt_vocab.encode(tgt[i]).astype(np.int32), eos]) for i in index],
        [pairs[name].source[i] for i in index], [pairs[name].target[i] for i in index])
  return src_vocab, tgt_vocab, splits


def _synthetic_batch(config, rng: np.random.Generator, size: int) -> dict[str, np.ndarray]:
  data = config.data
  if data.dataset == "addition":
    batch = synthetic.addition(rng, size, data.max_digits)
  else:
    batch = synthetic.SEQ2SEQ_TASKS[data.dataset](rng, size, data.min_length, data.max_length)
  s, u = batch.source.shape[1], batch.target.shape[1]
  return {"source": batch.source, "source_mask": np.arange(s) < batch.source_lengths[:, None],
          "target": batch.target, "target_mask": np.arange(u) < batch.target_lengths[:, None]}


def _synthetic_split(config, split: str) -> dict[str, np.ndarray]:
  seed = {"validation": 1, "test": 2}[split]
  return _synthetic_batch(config, np.random.default_rng([config.seed, 10_000 + seed]),
                          config.data.eval_size)


VOCAB_FILES = {"source": "source_vocab.json", "target": "target_vocab.json"}


def check_vocabularies(workdir, vocabs: dict[str, WordVocab]) -> None:
  """Saves the run's vocabularies in ``workdir``, or checks them against those saved there.

  A checkpoint's embedding rows mean the words of the vocabulary it was
  trained with; resuming or decoding with vocabularies built from other data
  (another corpus version, ``max_pairs``, vocabulary size) would silently
  scramble them.

  Raises:
    ValueError: naming the side whose saved vocabulary differs.
  """
  root = pathlib.Path(workdir)
  for side, vocab in vocabs.items():
    path = root / VOCAB_FILES[side]
    if path.exists():
      saved = WordVocab.from_json(path.read_text())
      if saved != vocab:
        raise ValueError(
            f"the {side} vocabulary built from the data ({vocab.size} ids) differs from the one "
            f"the run in {root} was trained with ({saved.size} ids, {path}): use the same "
            f"config.data, or another --workdir")
    else:
      root.mkdir(parents=True, exist_ok=True)
      tmp = path.with_suffix(".tmp")
      tmp.write_text(vocab.to_json())
      os.replace(tmp, path)


def load_vocabularies(workdir) -> tuple[WordVocab, WordVocab]:
  """The ``(source, target)`` vocabularies a Bible run saved in ``workdir``."""
  root = pathlib.Path(workdir)
  missing = [f for f in VOCAB_FILES.values() if not (root / f).exists()]
  if missing:
    raise FileNotFoundError(f"workdir must hold a translation run's vocabularies; {root} lacks "
                            f"{', '.join(missing)}")
  return tuple(WordVocab.from_json((root / VOCAB_FILES[s]).read_text())
               for s in ("source", "target"))


def build(config, workdir):
  """``(Task, extras)`` for ``seqjax.train.loop`` (see ``experiments.tasks.training``)."""
  data = config.data
  if data.dataset in SYNTHETIC:
    v = synthetic.SEQ2SEQ_TOKENS
    v_s = v_t = v.size
    model = build_model(config, v_s, v_t, v.bos, v.eos)
    held = {s: _synthetic_split(config, s) for s in ("validation", "test")}

    def train_batch(step):
      batch = _synthetic_batch(config, np.random.default_rng([config.seed, step]),
                               config.batch_size)
      batch["teacher_prob"] = np.full(config.batch_size, teacher_probability(config, step),
                                      np.float32)
      return batch

    eval_batches = {s: training.fixed_batches(held[s], data.eval_batch_size) for s in held}
    tokens_per_batch = int(config.batch_size * held["test"]["target_mask"].sum(1).mean())
    extras = {"model": model.name, "held": held, "source_vocab": None, "target_vocab": None}
  else:
    src_vocab, tgt_vocab, splits = load_bible(config)
    if workdir is not None:
      check_vocabularies(workdir, {"source": src_vocab, "target": tgt_vocab})
    model = build_model(config, src_vocab.size, tgt_vocab.size)
    buckets = training.padded_lengths(data.buckets, data.max_eval_tokens)
    train = splits["train"]
    n = len(train.source)
    per_epoch = n // config.batch_size
    lengths = np.array([max(len(s), len(t)) for s, t in zip(train.source, train.target)])

    def make(split, index, weight=None):
      src = [split.source[i] for i in index]
      tgt = [split.target[i] for i in index]
      s_ids, s_mask = _pad(src, _bucket(max(map(len, src)), buckets))
      t_ids, t_mask = _pad(tgt, _bucket(max(map(len, tgt)), buckets))
      return {"source": s_ids, "source_mask": s_mask, "target": t_ids, "target_mask": t_mask}

    def epoch_order(epoch):
      return training.length_sorted_epoch(lengths, config.batch_size, config.seed, epoch,
                                          _SORT_WINDOW)

    cache = {}

    def train_batch(step):
      epoch, index = divmod(step, per_epoch)
      if cache.get("epoch") != epoch:
        cache.update(epoch=epoch, order=epoch_order(epoch))
      batch = make(train, cache["order"][index])
      batch["teacher_prob"] = np.full(config.batch_size, teacher_probability(config, step),
                                      np.float32)
      return batch

    def held_out(name):
      split = splits[name]
      order = np.argsort([len(s) for s in split.source], kind="stable")

      def batches():
        size = data.eval_batch_size
        for start in range(0, len(order), size):
          index = order[start:start + size]
          weight = np.ones(size, np.float32)
          if len(index) < size:
            weight[len(index):] = 0
            index = np.concatenate([index, np.repeat(index[-1:], size - len(index))])
          batch = make(split, index)
          batch["target_mask"] = batch["target_mask"] & (weight[:, None] > 0)
          yield batch

      return batches

    eval_batches = {"validation": held_out("validation"), "test": held_out("test")}
    tokens_per_batch = int(config.batch_size * np.mean([len(t) for t in train.target]))
    test_src = np.concatenate(splits["test"].source)
    extras = {"model": model.name, "splits": splits, "source_vocab": src_vocab,
              "target_vocab": tgt_vocab, "train_pairs": n,
              "test_unk_rate": float(np.mean(test_src == UNK))}

  forcing = config.training.schedule == "none"
  smoothing = float(config.training.label_smoothing)

  def loss_fn(params, batch, carry, rng, training_):
    teacher = None if (forcing or not training_) else batch["teacher_prob"]
    logits, _ = model.apply(params, batch["source"], seq2seq.shift_right(batch["target"],
                                                                         model.bos_id),
                            source_mask=batch["source_mask"], target_mask=batch["target_mask"],
                            key=rng, training=training_, teacher_prob=teacher,
                            sampling=config.training.sampling)
    mask = batch["target_mask"]
    target = jnp.where(mask, batch["target"], 0)
    total, count = losses.cross_entropy(logits, target, mask, label_smoothing=smoothing)
    nll, _ = (losses.cross_entropy(logits, target, mask) if smoothing else (total, count))
    hit = logits.argmax(-1) == target
    correct = jnp.sum((hit & mask).astype(jnp.float32))
    real = jnp.any(mask, -1)
    sequences = jnp.sum(real.astype(jnp.float32))
    exact = jnp.sum((jnp.all(hit | ~mask, -1) & real).astype(jnp.float32))
    return total / jnp.maximum(count, 1.0), (carry, {
        "nll_sum": nll, "count": count, "correct": correct, "sequences": sequences,
        "exact": exact})

  def summarize(s):
    count = max(s["count"], 1.0)
    return {"loss": s["nll_sum"] / count, "perplexity": float(np.exp(s["nll_sum"] / count)),
            "token_accuracy": s["correct"] / count,
            "forced_exact_match": s["exact"] / max(s["sequences"], 1.0)}

  task = loop.Task(init_params=model.init, init_carry=None, loss_fn=loss_fn,
                   train_batch=train_batch, eval_batches=eval_batches, summarize=summarize,
                   tokens_per_batch=tokens_per_batch, eval_batch_size=data.eval_batch_size,
                   progress_metrics=("loss",))
  extras["seq2seq"] = model
  return task, extras


def _decoders(config, model):
  d = config.decode
  ratio = tuple(d.length_ratio) if d.length_ratio else None
  greedy = jax.jit(functools.partial(decoding.greedy, model, max_length=d.max_length,
                                     length_ratio=ratio))
  beam = jax.jit(functools.partial(decoding.beam_search, model, beam_size=d.beam_size,
                                   max_length=d.max_length, alpha=d.alpha, length_ratio=ratio))
  return {"greedy": lambda p, s, m: greedy(p, s, m).tokens,
          "beam": lambda p, s, m: beam(p, s, m).tokens[:, 0]}


def decode_batches(decode, params, source: list[np.ndarray], batch_size: int,
                   buckets: tuple[int, ...]) -> tuple[list[np.ndarray], float]:
  """Decodes every source (sorted by length, padded to buckets); ``(outputs, seconds)``.

  Outputs are id arrays without EOS, in the sources' order.
  """
  order = np.argsort([len(s) for s in source], kind="stable")
  outputs: list[Any] = [None] * len(source)
  start_time = time.perf_counter()
  for start in range(0, len(order), batch_size):
    index = order[start:start + batch_size]
    rows = [source[i] for i in index]
    rows += [rows[-1]] * (batch_size - len(rows))
    ids, mask = _pad(rows, _bucket(max(map(len, rows)), buckets))
    tokens = np.asarray(decode(params, ids, mask))
    for j, i in enumerate(index):
      row = tokens[j]
      end = np.flatnonzero(row == EOS)
      outputs[i] = row[:end[0]] if end.size else row
  return outputs, time.perf_counter() - start_time


def attention_maps(model, params, source: list[np.ndarray], output: list[np.ndarray]
                   ) -> list[np.ndarray]:
  """Attention weights (U_i, S_i) of each output (EOS appended) over its source, teacher-forced."""
  maps = []
  for src, out in zip(source, output):
    out = np.concatenate([out, [model.eos_id]]).astype(np.int32)
    _, weights = model.apply(params, src[None].astype(np.int32),
                             seq2seq.shift_right(out[None], model.bos_id))
    maps.append(np.asarray(weights[0]))
  return maps


def attention_figure(examples: list[tuple[list[str], list[str], np.ndarray]], path) -> None:
  """Heatmaps (Bahdanau et al. 2014, Fig. 3 style): source words across, output words down.

  Args:
    examples: ``(source tokens, output tokens, weights (U, S))`` per panel.
    path: the PNG to write.
  """
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  fig, axes = plt.subplots(1, len(examples), figsize=(5.2 * len(examples), 5.2), squeeze=False)
  for ax, (src, out, weights) in zip(axes[0], examples):
    ax.imshow(weights, cmap="gray_r", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(src)), src, rotation=90, fontsize=8)
    ax.set_yticks(range(len(out)), out, fontsize=8)
    ax.tick_params(length=0)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def evaluate_decoding(config, params, extras, workdir, log=print) -> dict[str, float]:
  """Greedy and beam decoding of the test split: BLEU or exact match, speed; writes TSVs."""
  model = extras["seq2seq"]
  decoders = _decoders(config, model)
  results, greedy_outputs = {}, None
  workdir = pathlib.Path(workdir)
  if config.data.dataset in SYNTHETIC:
    held = extras["held"]["test"]
    target = [row[:m.sum() - 1] for row, m in zip(held["target"], held["target_mask"])]
    source = [row[:m.sum()] for row, m in zip(held["source"], held["source_mask"])]
    width = held["source"].shape[1]
    for mode, decode in decoders.items():
      decode(params, held["source"][:config.data.eval_batch_size],
             held["source_mask"][:config.data.eval_batch_size])  # compile outside the timing
      outputs, seconds = decode_batches(decode, params, source, config.data.eval_batch_size,
                                        (width,))
      greedy_outputs = outputs if mode == "greedy" else greedy_outputs
      exact = np.mean([len(o) == len(t) and np.array_equal(o, t)
                       for o, t in zip(outputs, target)])
      results[f"test/exact_match_{mode}"] = float(exact)
      results[f"test/sentences_per_second_{mode}"] = len(source) / seconds
  else:
    split = extras["splits"]["test"]
    vocab = extras["target_vocab"]
    data = config.data
    buckets = training.padded_lengths(data.buckets, data.max_eval_tokens)
    for mode, decode in decoders.items():
      outputs, seconds = decode_batches(decode, params, split.source, data.eval_batch_size,
                                        buckets)
      greedy_outputs = outputs if mode == "greedy" else greedy_outputs
      hypotheses = [detokenize(vocab.decode(o)) for o in outputs]
      results[f"test/bleu_{mode}"] = corpus_bleu(hypotheses, split.target_text)
      results[f"test/sentences_per_second_{mode}"] = len(outputs) / seconds
      with open(workdir / f"translations_test_{mode}.tsv", "w", newline="") as f:
        writer = csv.writer(f, delimiter="\t")
        writer.writerow(["source_tokens", "source", "reference", "hypothesis"])
        for src, s_text, ref, hyp in zip(split.source, split.source_text, split.target_text,
                                         hypotheses):
          writer.writerow([len(src) - 1, s_text, ref, hyp])
  if model_has_attention(config):
    _draw_attention(config, params, extras, workdir, greedy_outputs)
  tmp = workdir / "decode.json.tmp"
  tmp.write_text(json.dumps(results, indent=2, sort_keys=True))
  os.replace(tmp, workdir / "decode.json")
  return results


def model_has_attention(config) -> bool:
  return config.model.attention != "none"


def _draw_attention(config, params, extras, workdir, outputs, panels: int = 3) -> None:
  """``<workdir>/attention.png``: the greedy outputs of a few short test sources."""
  model = extras["seq2seq"]
  if config.data.dataset in SYNTHETIC:
    held = extras["held"]["test"]
    sources = [row[:m.sum()] for row, m in zip(held["source"], held["source_mask"])]
    names = synthetic.SEQ2SEQ_TOKENS

    def words(ids):
      return [SPECIALS[i] if i < names.first_char else names.chars[i - names.first_char]
              for i in ids]
    src_words = lambda ids: words(ids)  # noqa: E731
    out_words = words
  else:
    sources = extras["splits"]["test"].source
    src_words = lambda ids: extras["source_vocab"].decode(ids)  # noqa: E731
    out_words = lambda ids: extras["target_vocab"].decode(ids)  # noqa: E731
  lengths = np.array([len(s) for s in sources])
  chosen = [int(i) for i in np.flatnonzero((lengths >= 6) & (lengths <= 22))[:panels]]
  chosen = chosen or list(range(min(panels, len(sources))))
  maps = attention_maps(model, params, [sources[i] for i in chosen],
                        [outputs[i] for i in chosen])
  examples = [(src_words(sources[i]), out_words(np.concatenate([outputs[i], [model.eos_id]])),
               w) for i, w in zip(chosen, maps)]
  attention_figure(examples, pathlib.Path(workdir) / "attention.png")


def run(config, workdir, log=print) -> dict:
  """Trains, evaluates, then decodes the test split (module docstring)."""
  task, extras = build(config, workdir)
  final, params = loop.train_and_evaluate(config, workdir, task, log=log)
  if not final:
    return final
  final = dict(final)
  final.update(evaluate_decoding(config, params, extras, workdir, log))
  report(config, final, params, extras, log)
  return final


def report(config, final, params, extras, log=print) -> None:
  scores = {k: v for k, v in final.items() if "bleu" in k or "exact_match_" in k}
  shown = ", ".join(f"{k.split('/')[1]} {v:.4g}" for k, v in sorted(scores.items()))
  log(f"final: {config.data.dataset} {shown}; test perplexity {final['test/perplexity']:.3f}; "
      f"{extras['model']}; {count_params(params)} parameters")


def baseline(config) -> tuple[str, float]:
  """Exact match or BLEU of copying the source (0 for every task here)."""
  del config
  return "copy the source", 0.0
