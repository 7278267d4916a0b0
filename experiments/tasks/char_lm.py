"""Language modelling (characters, bytes or words): data, model and loss from a config.

``config.data.corpus`` picks the text: ``shakespeare`` (characters of the
plays, split by play), ``wiki_bytes`` (the bytes of a Wikipedia XML dump,
enwik8-style contiguous 90/5/5 split) or ``bbc_words`` (BBC news articles,
PTB-style words, 10k vocabulary, split by article). ``config.model.cell``
names any cell factory in ``seqjax.cells`` (stacked ``num_layers`` deep) or
``tcn`` (``levels`` residual blocks of ``hidden_size`` channels).
"""

from __future__ import annotations

import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

import seqjax
from seqjax import layers
from seqjax.data import bbc_words, shakespeare, streams, wiki
from seqjax.data.vocab import CharVocab
from seqjax.language_model import cross_entropy, generate, language_model
from seqjax.tcn import tcn
from seqjax.train.loop import Task

VOCAB_FILE = "vocab.json"


CORPORA = ("shakespeare", "wiki_bytes", "bbc_words")


def validate(config) -> None:
  """Checks ``config.model`` and ``config.data``; raises ValueError naming the field."""
  factory = getattr(seqjax.cells, config.model.cell, None)
  if config.model.cell != "tcn" and not callable(factory):
    raise ValueError(f"config.model.cell must be 'tcn' or name a cell factory in seqjax.cells "
                     f"(lstm, gru, rnn, tied_lstm, leaky, ctrnn, lru, min_gru, ...), "
                     f"got {config.model.cell!r}")
  if config.data.get("corpus", "shakespeare") not in CORPORA:
    raise ValueError(f"config.data.corpus must be one of {CORPORA}, "
                     f"got {config.data.corpus!r}")
  for field in ("levels", "kernel_size"):
    if config.model.get(field, 1) <= 0:
      raise ValueError(f"config.model.{field} must be > 0, got {config.model[field]}")
  for field in ("hidden_size", "num_layers", "embed_size"):
    if config.model[field] <= 0:
      raise ValueError(f"config.model.{field} must be > 0, got {config.model[field]}")
  for field in ("seq_len", "eval_batch_size"):
    if config.data[field] <= 0:
      raise ValueError(f"config.data.{field} must be > 0, got {config.data[field]}")
  if not 0 <= config.model.dropout < 1:
    raise ValueError(f"config.model.dropout must be in [0, 1), got {config.model.dropout}")


def build_model(config, vocab_size: int):
  """The language model that ``config.model`` describes."""
  validate(config)
  model = config.model
  if model.cell == "tcn":
    # Embedding dropout on the input, then the TCN's own dropout after each convolution.
    body = layers.stacked(tcn([model.hidden_size] * model.levels, kernel_size=model.kernel_size,
                              dropout=model.dropout), 1, input_dropout=model.dropout)
  else:
    factory = getattr(seqjax.cells, model.cell)
    body = layers.stacked(factory(model.hidden_size), model.num_layers,
                          dropout=model.dropout, input_dropout=model.dropout)
  return language_model(vocab_size, body, embed_size=model.embed_size,
                        tied=model.get("tied", False))


def _corpus(config) -> str:
  return config.data.get("corpus", "shakespeare")


def load_documents(config):
  """Documents of each split as int arrays, and the vocabulary built from train."""
  corpus = _corpus(config)
  cache_dir = config.data.cache_dir or None
  if corpus == "bbc_words":
    docs, vocab = bbc_words.load_bbc_words(cache_dir=cache_dir)
    return docs, vocab
  if corpus == "wiki_bytes":
    # Bytes as Latin-1 characters: one character per byte, so CharVocab applies.
    texts = {split: {split: data.tobytes().decode("latin-1")}
             for split, data in wiki.load_wiki_bytes().items()}
  else:
    texts = shakespeare.load_split_plays(cache_dir=cache_dir)
  vocab = CharVocab.from_text("".join(texts["train"].values()))
  docs = {split: [vocab.encode(text) for _, text in sorted(parts.items())]
          for split, parts in texts.items()}
  return docs, vocab


def build(config, workdir) -> tuple[Task, CharVocab]:
  """The ``Task`` for ``seqjax.train.loop.train_and_evaluate``; saves the vocabulary."""
  docs, vocab = load_documents(config)
  (pathlib.Path(workdir) / VOCAB_FILE).write_text(vocab.to_json())
  model = build_model(config, vocab.size)
  train = streams.StreamBatches(docs["train"], config.batch_size, config.data.seq_len)

  def loss_fn(params, batch, carry, rng, training):
    logits, carry = model.apply(params, batch["inputs"], carry, reset=batch["reset"],
                                key=rng, training=training)
    total, count = cross_entropy(logits, batch["targets"], batch["mask"])
    loss = total / jnp.maximum(count, 1.0)
    return loss, (carry, {"bpc": loss / math.log(2), "nll_sum": total, "count": count})

  def eval_batches(split):
    data = streams.StreamBatches(docs[split], config.data.eval_batch_size, config.data.seq_len)
    limit = config.data.max_eval_chunks or data.num_chunks

    def batches():
      for index in range(min(limit, data.num_chunks)):
        yield data.batch(index)

    return batches

  def summarize(sums):
    nats = sums["nll_sum"] / max(sums["count"], 1.0)
    # Bits per token: per character or byte for those corpora (bpc), per word for words.
    return {"bpc": nats / math.log(2), "loss": nats, "perplexity": math.exp(min(nats, 50.0))}

  task = Task(
      init_params=model.init,
      init_carry=lambda params, batch_size: model.initial_carry(params, (batch_size,)),
      loss_fn=loss_fn,
      train_batch=train.batch,
      eval_batches={"validation": eval_batches("validation"), "test": eval_batches("test")},
      summarize=summarize,
      tokens_per_batch=config.batch_size * config.data.seq_len,
      eval_batch_size=config.data.eval_batch_size,
      progress_metrics=("loss", "bpc"),
  )
  return task, vocab


def _encode_prime(config, vocab, prime: str) -> np.ndarray:
  if _corpus(config) == "bbc_words":
    return vocab.encode(bbc_words.tokenize(prime)[:-1] or ["<eos>"])  # no <eos> after the prime
  if _corpus(config) == "wiki_bytes":
    prime = prime.encode("utf-8").decode("latin-1")
  return vocab.encode(prime)


def _decode(config, vocab, ids) -> str:
  if _corpus(config) == "bbc_words":
    return " " + " ".join(vocab.decode(ids)).replace(" <eos> ", "\n")
  text = vocab.decode(ids)
  if _corpus(config) == "wiki_bytes":
    text = text.encode("latin-1", errors="replace").decode("utf-8", errors="replace")
  return text


def sample(config, params, vocab, *, prime: str, length: int,
           temperature: float, seed: int = 0) -> str:
  """Text generated by the model after ``prime`` (``length`` tokens)."""
  model = build_model(config, vocab.size)
  prime_ids = jnp.asarray(_encode_prime(config, vocab, prime))[None, :]
  ids = generate(model, params, prime_ids, length,
                  jax.random.PRNGKey(seed), temperature=temperature)
  return prime + _decode(config, vocab, np.asarray(ids[0]))


def report(config, final, params, vocab, log=print) -> None:
  """Prints the final bits per token (perplexity for words) and a sample."""
  if _corpus(config) == "bbc_words":
    log(f"final: validation perplexity {final['validation/perplexity']:.1f}, "
        f"test {final['test/perplexity']:.1f}")
  else:
    log(f"final: validation {final['validation/bpc']:.3f} bpc, "
        f"test {final['test/bpc']:.3f} bpc")
  if config.sample.length:
    text = sample(config, params, vocab, prime=config.sample.prime,
                  length=config.sample.length, temperature=config.sample.temperature)
    log(f"sample (temperature {config.sample.temperature}):\n{text}")


def load_vocab(workdir):
  """The vocabulary saved by ``build`` in ``workdir`` (characters or words)."""
  path = pathlib.Path(workdir) / VOCAB_FILE
  if not path.exists():
    raise FileNotFoundError(f"{path} not found: is {workdir} the workdir of a language-model run?")
  text = path.read_text()
  try:
    return CharVocab.from_json(text)
  except ValueError:
    return bbc_words.WordVocab.from_json(text)


def baseline(config) -> tuple[str, float]:
  """Unigram model of the training tokens (add-one smoothed) on the test split.

  In bits per token for characters and bytes, as a perplexity for words.
  """
  docs, vocab = load_documents(config)
  counts = np.bincount(np.concatenate(docs["train"]), minlength=vocab.size) + 1.0
  log_p = np.log(counts / counts.sum())
  nats = -float(np.mean(log_p[np.concatenate(docs["test"])]))
  if _corpus(config) == "bbc_words":
    return "unigram", math.exp(nats)
  return "unigram", nats / math.log(2)


def vocab_size(config) -> int:
  """Size of the vocabulary ``config``'s corpus gives (loads the data)."""
  return load_documents(config)[1].size
