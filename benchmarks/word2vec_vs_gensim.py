r"""seqjax's word2vec against gensim's on the same corpus and settings: speed and vector quality.

The protocol, the same on both sides:

* corpus: ``experiments.datasets.english`` (every packaged English text, 8.27M
  tokens in 182,408 sentences), the first ``--max_sentences`` of it if given;
  gensim is fed the token lists seqjax encodes (``Corpus.sentences()``);
* settings: ``--vector_size`` 100, ``--window`` 5, ``--negative`` 5,
  ``--sample`` 1e-3, ``--min_count`` 5, ``--epochs`` 5, the learning rate
  decaying linearly from ``--alpha`` to 1e-4, CBoW averaging its context
  (``cbow_mean=1``); gensim runs ``--workers`` 2 threads. ``--alpha``
  defaults to word2vec.c's choice (seqjax's default), 0.025 for skip-gram and
  0.05 for CBoW, given to gensim too (whose own default is 0.025 for both);
* schedule: ``--decay sentences`` (the default) decays the rate over the
  share of sentences done, which is what gensim's ``Word2Vec(sentences)``
  does (its ``train(total_examples=...)``), and seqjax with
  ``decay="sentences"``; ``--decay words`` over the share of words, gensim
  then given ``total_words`` only. On this corpus the two differ: the
  reviews hold 72% of the tokens in 18% of the sentences, so by sentences
  the rate is still high through most of the text;
* vocabulary: seqjax's ``vocabulary_from_counts`` orders words as gensim's
  ``build_vocab`` does, which the script checks (``same_vocabulary``);
* time: ``train`` only (vocabulary building is timed apart), wall clock;
  words/s = corpus tokens x epochs / train seconds on both sides (so the
  ratio is the inverse ratio of times). The CPU seconds the process spent
  (all its threads) are reported beside them: on a shared machine they show
  the work done when the wall clock mostly shows the neighbours' load.
  seqjax's time includes compiling its update (once) and its numpy
  pipeline, which runs in a thread beside the update;
* quality: both sides' vectors scored by ``seqjax.word_vectors`` (equal to
  gensim's ``evaluate_word_analogies(restrict_vocab=30000)`` and
  ``evaluate_word_pairs``, which the tests check): analogy accuracy over the
  questions whose 4 words are among the 30,000 most frequent (overall,
  semantic = the 5 non-``gram`` sections, syntactic = the 9 ``gram``
  sections), and Spearman's rho on WordSim-353 and SimLex-999;
* order: the libraries alternate (skip-gram: seqjax first; CBoW: gensim
  first) so that a change in the machine's load hits both.

Where seqjax's time goes is measured after the runs (``--profile``): the
pipeline alone over one epoch (host thread, numpy) and the jitted updates
alone on pre-made blocks, each as corpus words per second.

  python benchmarks/word2vec_vs_gensim.py --json /tmp/w2v_bench.json
  python benchmarks/word2vec_vs_gensim.py --models sg --epochs 1 --max_sentences 20000

Needs gensim (``pip install gensim``) and the corpus packages (``docs/data.md``).
"""

from __future__ import annotations

import argparse
import datetime
import os
import pathlib
import platform
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import harness

# The corpus loader lives in experiments/, which is not installed: run from
# the checkout, as the other experiment scripts are.
ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
  sys.path.insert(0, str(ROOT))

from experiments.datasets import english  # noqa: E402
from seqjax import word2vec, word_vectors  # noqa: E402

MODELS = {"sg": "skipgram", "cbow": "cbow"}
LIBRARIES = ("seqjax", "gensim")


def _parse(argv=None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--models", default="sg,cbow",
                      type=lambda text: harness.parse_names(text, MODELS, "--models"),
                      help="comma-separated: sg (skip-gram), cbow")
  parser.add_argument("--max_sentences", type=int, default=None,
                      help="train on the first N sentences only (default: all)")
  parser.add_argument("--epochs", type=int, default=5)
  parser.add_argument("--vector_size", type=int, default=100)
  parser.add_argument("--window", type=int, default=5)
  parser.add_argument("--negative", type=int, default=5)
  parser.add_argument("--sample", type=float, default=1e-3)
  parser.add_argument("--min_count", type=int, default=5)
  parser.add_argument("--alpha", type=float, default=None,
                      help="first learning rate, both libraries (default: word2vec.c's, 0.025 "
                           "skip-gram and 0.05 CBoW; gensim's own default is 0.025 for both)")
  parser.add_argument("--decay", choices=word2vec.DECAYS, default="sentences",
                      help="what the learning rate decays over, both libraries: sentences "
                           "(gensim's schedule when it knows the sentence count, as in "
                           "Word2Vec(sentences)) or words (word2vec.c's; gensim is then told "
                           "only the word count)")
  parser.add_argument("--workers", type=int, default=2, help="gensim's threads")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--batch_size", type=int, default=word2vec.Word2VecConfig().batch_size,
                      help="seqjax: examples per SGD update")
  parser.add_argument("--steps_per_call", type=int,
                      default=word2vec.Word2VecConfig().steps_per_call,
                      help="seqjax: updates per jitted call")
  parser.add_argument("--restrict_vocab", type=int, default=30_000,
                      help="analogy questions use the most frequent N words")
  parser.add_argument("--profile", action=argparse.BooleanOptionalAction, default=True,
                      help="also time seqjax's pipeline and its updates apart")
  parser.add_argument("--save_dir", default=None,
                      help="save seqjax's vectors here as seqjax_<model>.txt (word2vec format)")
  parser.add_argument("--json", default=None, help="also write the results to this file")
  args = parser.parse_args(argv)
  for name in ("epochs", "vector_size", "window", "negative", "min_count", "workers",
               "batch_size", "steps_per_call", "restrict_vocab"):
    if getattr(args, name) < 1:
      parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
  if args.max_sentences is not None and args.max_sentences < 1:
    parser.error(f"--max_sentences must be >= 1, got {args.max_sentences}")
  return args


def _evaluation_files() -> dict[str, str]:
  from gensim.test.utils import datapath  # gensim ships the test sets

  return {"analogies": datapath("questions-words.txt"),
          "wordsim353": datapath("wordsim353.tsv"), "simlex999": datapath("simlex999.txt")}


def _evaluate(vectors: word_vectors.WordVectors, files: dict[str, str],
              restrict_vocab: int) -> dict:
  analogies = word_vectors.evaluate_analogies(vectors, files["analogies"],
                                              restrict_vocab=restrict_vocab)
  result = {"analogy": {
      "accuracy": analogies.accuracy, "semantic": analogies.semantic_accuracy,
      "syntactic": analogies.syntactic_accuracy, "scored": analogies.scored,
      "correct": analogies.correct, "semantic_scored": analogies.semantic_scored,
      "syntactic_scored": analogies.syntactic_scored,
      "sections": {s.name: {"correct": s.correct, "scored": s.total}
                   for s in analogies.sections}}}
  for name in ("wordsim353", "simlex999"):
    try:
      score = word_vectors.evaluate_similarity(vectors, files[name])
      result[name] = {"spearman": score.spearman, "pairs": score.pairs,
                      "skipped": score.skipped}
    except ValueError:  # no pair in the vocabulary (a tiny corpus)
      result[name] = {"spearman": float("nan"), "pairs": 0, "skipped": None}
  return result


def _config(args, model: str) -> word2vec.Word2VecConfig:
  return word2vec.Word2VecConfig(
      model=MODELS[model], vector_size=args.vector_size, window=args.window,
      negative=args.negative, sample=args.sample, epochs=args.epochs, alpha=args.alpha,
      decay=args.decay,
      batch_size=args.batch_size, steps_per_call=args.steps_per_call, seed=args.seed)


def run_seqjax(args, model: str, corpus: english.Corpus, count: int) -> tuple[dict, object]:
  """Trains seqjax's word2vec; returns the row and the vectors."""
  start = time.perf_counter()
  counts = np.bincount(corpus.ids[:corpus.offsets[count]], minlength=len(corpus.words))
  vocabulary = word2vec.vocabulary_from_counts(corpus.words, counts, min_count=args.min_count)
  sentences = word2vec.encode_ids(corpus.ids[:corpus.offsets[count]],
                                  corpus.offsets[:count + 1], corpus.words, vocabulary)
  vocab_seconds = time.perf_counter() - start
  config = _config(args, model)
  start, cpu_start = time.perf_counter(), time.process_time()
  params = word2vec.train(sentences, vocabulary.counts, config)
  train_seconds = time.perf_counter() - start
  cpu_seconds = time.process_time() - cpu_start
  vectors = word_vectors.WordVectors(vocabulary.words, np.asarray(params.input_vectors))
  return {"library": "seqjax", "model": model, "vocab_seconds": vocab_seconds,
          "train_seconds": train_seconds, "train_cpu_seconds": cpu_seconds,
          "vocabulary": len(vocabulary.words),
          "trained_tokens": int(len(sentences.ids)),
          "settings": dict(config._asdict(), alpha=word2vec.check_config(config).alpha)
          }, vectors


def run_gensim(args, model: str, tokens: list[list[str]]) -> tuple[dict, object]:
  """Trains gensim's Word2Vec on the same token lists; returns the row and the vectors."""
  from gensim.models import Word2Vec

  alpha = word2vec.check_config(_config(args, model)).alpha  # the same as seqjax's
  w2v = Word2Vec(vector_size=args.vector_size, window=args.window, min_count=args.min_count,
                 sg=int(model == "sg"), hs=0, negative=args.negative, sample=args.sample,
                 alpha=alpha, min_alpha=word2vec.Word2VecConfig().min_alpha, cbow_mean=1,
                 workers=args.workers, epochs=args.epochs, seed=args.seed)
  start = time.perf_counter()
  w2v.build_vocab(tokens)
  vocab_seconds = time.perf_counter() - start
  # gensim decays alpha by sentences when it is given their count, by words
  # when given only the word count.
  count = ({"total_examples": w2v.corpus_count} if args.decay == "sentences"
           else {"total_words": w2v.corpus_total_words})
  start, cpu_start = time.perf_counter(), time.process_time()
  w2v.train(tokens, epochs=w2v.epochs, **count)
  train_seconds = time.perf_counter() - start
  cpu_seconds = time.process_time() - cpu_start
  vectors = word_vectors.WordVectors(tuple(w2v.wv.index_to_key), np.asarray(w2v.wv.vectors))
  settings = {k: getattr(w2v, k) for k in ("vector_size", "window", "negative", "sample",
                                            "min_count", "alpha", "min_alpha", "epochs",
                                            "ns_exponent", "cbow_mean", "sg", "hs", "workers")}
  settings["decay"] = args.decay
  return {"library": "gensim", "model": model, "vocab_seconds": vocab_seconds,
          "train_seconds": train_seconds, "train_cpu_seconds": cpu_seconds,
          "vocabulary": len(vectors.words),
          "settings": settings}, vectors


def profile_seqjax(args, model: str, corpus: english.Corpus, count: int) -> dict:
  """The pipeline alone over one epoch, and the updates alone on its first blocks."""
  counts = np.bincount(corpus.ids[:corpus.offsets[count]], minlength=len(corpus.words))
  vocabulary = word2vec.vocabulary_from_counts(corpus.words, counts, min_count=args.min_count)
  sentences = word2vec.encode_ids(corpus.ids[:corpus.offsets[count]],
                                  corpus.offsets[:count + 1], corpus.words, vocabulary)
  config = _config(args, model)._replace(epochs=1)
  kept: list = []
  examples = 0
  start = time.perf_counter()
  for block in word2vec.batch_stream(sentences, vocabulary.counts, config):
    examples += block.examples
    if len(kept) < 41:
      kept.append(block)
  pipeline_seconds = time.perf_counter() - start
  words = len(sentences.ids)
  params = word2vec.init(jax.random.key(0), len(vocabulary.words), args.vector_size)
  device = [(jax.device_put(b.batches), jnp.asarray(b.learning_rates)) for b in kept]
  params, _ = word2vec.train_steps(params, *device[0], compute_loss=False)  # compiles
  jax.block_until_ready(params)
  start = time.perf_counter()
  for batches, rates in device[1:]:
    params, _ = word2vec.train_steps(params, batches, rates, compute_loss=False)
  jax.block_until_ready(params)
  step_seconds = time.perf_counter() - start
  per_call = args.batch_size * args.steps_per_call
  step_examples = per_call * max(len(device) - 1, 0)
  examples_per_word = examples / words
  step_rate = step_examples / step_seconds if step_examples else float("nan")
  return {"examples_per_word": examples_per_word,
          "pipeline_words_per_second": words / pipeline_seconds,
          "pipeline_examples_per_second": examples / pipeline_seconds,
          "step_examples_per_second": step_rate,
          "step_words_per_second": step_rate / examples_per_word,
          "step_calls_timed": max(len(device) - 1, 0)}


def _points(x: float) -> str:
  return f"{100 * x:.1f}"


def main(argv=None) -> dict:
  args = _parse(argv)
  harness.log("loading the corpus ...")
  corpus = english.load()
  count = corpus.num_sentences if args.max_sentences is None else min(args.max_sentences,
                                                                      corpus.num_sentences)
  tokens = corpus.sentences(count)
  corpus_tokens = int(corpus.offsets[count])
  files = _evaluation_files()
  harness.log(f"corpus: {count:,} sentences, {corpus_tokens:,} tokens")
  rows, vocabularies = [], {}
  for i, model in enumerate(args.models):
    order = LIBRARIES if i % 2 == 0 else LIBRARIES[::-1]
    for library in order:
      harness.log(f"{model}: training {library} ...")
      if library == "seqjax":
        row, vectors = run_seqjax(args, model, corpus, count)
        if args.save_dir:
          os.makedirs(args.save_dir, exist_ok=True)
          path = os.path.join(args.save_dir, f"seqjax_{model}.txt")
          vectors.save_word2vec_format(path)
          row["saved"] = path
      else:
        row, vectors = run_gensim(args, model, tokens)
      vocabularies[(model, library)] = vectors.words
      row["words_per_second"] = corpus_tokens * args.epochs / row["train_seconds"]
      row.update(_evaluate(vectors, files, args.restrict_vocab))
      harness.log(f"{model} {library}: {row['train_seconds']:.1f} s, "
                  f"{row['words_per_second']:,.0f} words/s, analogies "
                  f"{_points(row['analogy']['accuracy'])}%")
      rows.append(row)
  comparisons = []
  for model in args.models:
    mine, theirs = ({r["library"]: r for r in rows if r["model"] == model}[name]
                    for name in LIBRARIES)
    comparison = {
        "model": model,
        "same_vocabulary": vocabularies[(model, "seqjax")] == vocabularies[(model, "gensim")],
        "words_per_second_ratio": mine["words_per_second"] / theirs["words_per_second"],
        "cpu_seconds_ratio": mine["train_cpu_seconds"] / theirs["train_cpu_seconds"],
        "analogy_points": 100 * (mine["analogy"]["accuracy"] - theirs["analogy"]["accuracy"]),
        "semantic_points": 100 * (mine["analogy"]["semantic"] - theirs["analogy"]["semantic"]),
        "syntactic_points": 100 * (mine["analogy"]["syntactic"]
                                   - theirs["analogy"]["syntactic"]),
        "wordsim353_difference": mine["wordsim353"]["spearman"]
        - theirs["wordsim353"]["spearman"],
        "simlex999_difference": mine["simlex999"]["spearman"] - theirs["simlex999"]["spearman"],
    }
    if args.profile:
      harness.log(f"{model}: profiling seqjax's pipeline and updates ...")
      mine["profile"] = profile_seqjax(args, model, corpus, count)
    comparisons.append(comparison)

  header = ["model", "library", "train s", "CPU s", "words/s", "analogy %", "semantic %",
            "syntactic %", "questions", "WS353 rho", "SimLex rho"]
  table_rows = []
  for row in rows:
    a = row["analogy"]
    table_rows.append([row["model"], row["library"], f"{row['train_seconds']:.1f}",
                       f"{row['train_cpu_seconds']:.1f}",
                       harness.fmt_rate(row["words_per_second"]), _points(a["accuracy"]),
                       _points(a["semantic"]), _points(a["syntactic"]), f"{a['scored']:,}",
                       f"{row['wordsim353']['spearman']:.3f}",
                       f"{row['simlex999']['spearman']:.3f}"])
  for c in comparisons:
    table_rows.append([c["model"], "seqjax / gensim", "", f"{c['cpu_seconds_ratio']:.2f}x",
                       f"{c['words_per_second_ratio']:.2f}x", f"{c['analogy_points']:+.1f}",
                       f"{c['semantic_points']:+.1f}", f"{c['syntactic_points']:+.1f}",
                       "same vocab" if c["same_vocabulary"] else "OTHER vocab",
                       f"{c['wordsim353_difference']:+.3f}",
                       f"{c['simlex999_difference']:+.3f}"])
  print(f"word2vec: seqjax vs gensim {_gensim_version()} ({count:,} sentences, "
        f"{corpus_tokens:,} tokens, {args.epochs} epochs, E={args.vector_size}, "
        f"window {args.window}, {args.negative} negatives, sample {args.sample:g}, "
        f"min_count {args.min_count}, alpha {args.alpha or 'word2vec.c'}, decay by "
        f"{args.decay}; gensim workers={args.workers}; seqjax batch {args.batch_size} x "
        f"{args.steps_per_call} per call)")
  print(harness.table(header, table_rows))
  for row in rows:
    if "profile" in row:
      p = row["profile"]
      print(f"seqjax {row['model']}: pipeline alone {p['pipeline_words_per_second']:,.0f} "
            f"words/s ({p['pipeline_examples_per_second']:,.0f} examples/s, "
            f"{p['examples_per_word']:.2f} examples/word); updates alone "
            f"{p['step_words_per_second']:,.0f} words/s "
            f"({p['step_examples_per_second']:,.0f} examples/s)")
  results = {
      "benchmark": "word2vec_vs_gensim",
      "date": datetime.datetime.now().isoformat(timespec="seconds"),
      "machine": {"platform": platform.platform(), "cores": harness.usable_cores(),
                  "jax": jax.__version__, "gensim": _gensim_version(),
                  "device": str(jax.devices()[0])},
      "corpus": {"sentences": count, "tokens": corpus_tokens},
      "settings": {k: v for k, v in vars(args).items() if k not in ("json",)},
      "rows": rows, "comparisons": comparisons,
  }
  harness.save_json(args.json, results)
  return results


def _gensim_version() -> str:
  import gensim

  return gensim.__version__


if __name__ == "__main__":
  main()
