"""Document classification: bags of embeddings, fastText bigrams and bidirectional RNNs.

``config.data.dataset`` names a ``"documents"`` corpus of ``experiments.datasets``
(``imdb``, ``rotten_tomatoes``, ``bbc_news``). Documents are tokenized with
``seqjax.data.text.tokenize``; the vocabulary is the training split's words
occurring at least ``min_count`` times (at most ``vocab_size - 1`` of them,
most frequent first) plus ``<unk>``; a document keeps its first ``max_len``
tokens. With ``ngrams=2`` hashed bigram ids (fastText's trick,
``seqjax.embeddings.hashed_ngrams``) are appended after the unigrams.

Batches are padded with a mask (padding holds id 0 and changes nothing). A
recurrent model reads batches of similar length: every epoch the training
documents are shuffled (seeded by epoch), sorted by length within windows of
50 batches, cut into batches whose order is shuffled again, and each batch is
padded to the next of a few lengths (``data.buckets``), so a run compiles at
most once per bucket. Bags of embeddings are cheap enough to pad every batch
to ``max_len``.

``config.model.kind``: ``"bow"`` (``seqjax.classifiers.bag_of_embeddings``:
``hidden_sizes``, ``pooling``) or ``"rnn"`` (``recurrent_classifier``:
``cell``, ``hidden_size``, ``num_layers``, ``bidirectional``, ``readout``,
``recurrent_dropout``). ``model.embedding_init="word2vec"`` starts the
embedding from ``model.pretrained``, a word2vec text file (as the word2vec
benchmark writes); words it lacks
start N(0, std of the vectors^2) (``seqjax.embeddings.pretrained_table``);
``model.freeze_embedding`` keeps the table fixed.
"""

from __future__ import annotations

import collections
import os

import jax
import jax.numpy as jnp
import numpy as np

from experiments import datasets
from experiments.tasks import training
from seqjax import cells, classifiers, embeddings
from seqjax.data.text import tokenize
from seqjax.data.vocab import WordVocab
from seqjax.losses import cross_entropy
from seqjax.pytree import count_params
from seqjax.train.loop import Task

KINDS = ("bow", "rnn")
UNK = "<unk>"
_SORT_WINDOW = 50  # batches sorted by length together


def validate(config) -> None:
  training.validate(config)
  data, model = config.data, config.model
  if data.dataset not in datasets.DATASETS or datasets.module(data.dataset).KIND != "documents":
    raise ValueError(f"config.data.dataset must be one of {datasets.names('documents')}, "
                     f"got {data.dataset!r}")
  for field in ("vocab_size", "min_count", "max_len", "eval_batch_size"):
    if isinstance(data[field], bool) or not isinstance(data[field], int) or data[field] <= 0:
      raise ValueError(f"config.data.{field} must be a positive integer, got {data[field]!r}")
  if data.ngrams not in (1, 2, 3):
    raise ValueError(f"config.data.ngrams must be 1, 2 or 3, got {data.ngrams!r}")
  if data.ngrams > 1 and data.num_buckets <= 0:
    raise ValueError(f"config.data.num_buckets must be > 0 with ngrams > 1, "
                     f"got {data.num_buckets!r}")
  if model.kind not in KINDS:
    raise ValueError(f"config.model.kind must be one of {KINDS}, got {model.kind!r}")
  if model.kind == "rnn":
    if data.ngrams != 1:
      raise ValueError("config.data.ngrams must be 1 for a recurrent model (it reads the "
                       "words in order)")
    if model.cell not in ("lstm", "gru", "rnn"):
      raise ValueError(f"config.model.cell must be 'lstm', 'gru' or 'rnn', got {model.cell!r}")
  if model.embedding_init not in ("random", "word2vec"):
    raise ValueError(f"config.model.embedding_init must be 'random' or 'word2vec', got "
                     f"{model.embedding_init!r}")
  if model.embedding_init == "word2vec" and not os.path.isfile(model.pretrained):
    raise ValueError(f"config.model.pretrained must be a word2vec text file with "
                     f"embedding_init='word2vec', got {model.pretrained!r} (no such file)")
  if model.freeze_embedding and model.embedding_init != "word2vec":
    raise ValueError("config.model.freeze_embedding needs embedding_init='word2vec'")
  if not 0 <= model.dropout < 1:
    raise ValueError(f"config.model.dropout must be in [0, 1), got {model.dropout}")


def build_vocab(documents: list[list[str]], size: int, min_count: int) -> WordVocab:
  """The training documents' words counted ``min_count`` times or more, at most ``size - 1``."""
  counts = collections.Counter(w for d in documents for w in d)
  kept = {w: n for w, n in counts.items() if n >= min_count and w != UNK}
  size = min(size, len(kept) + 1)
  return WordVocab.from_counts(kept, size, unk=UNK)


def encode(vocab: WordVocab, documents: list[list[str]], max_len: int
           ) -> tuple[np.ndarray, np.ndarray]:
  """``(ids (N, L), lengths (N,))``, each document's first ``max_len`` tokens."""
  lengths = np.array([min(len(d), max_len) for d in documents], np.int32)
  ids = np.zeros((len(documents), max(1, int(lengths.max(initial=0)))), np.int32)
  for i, d in enumerate(documents):
    if lengths[i]:
      ids[i, :lengths[i]] = vocab.encode(d[:max_len])
  return ids, lengths


def _bucket(length: int, buckets: tuple[int, ...]) -> int:
  return next((b for b in buckets if b >= length), buckets[-1])


def build_model(config, vocab: WordVocab):
  data, m = config.data, config.model
  num_tokens = vocab.size + (data.num_buckets if data.ngrams > 1 else 0)
  table = None
  if m.embedding_init == "word2vec":
    from seqjax import word_vectors  # only runs that start from vectors read them
    vectors = word_vectors.load_word2vec_format(m.pretrained)
    table, found = embeddings.pretrained_table(
        vocab.words, vectors.words, vectors.vectors,
        key=jax.random.fold_in(jax.random.key(config.seed), 7))
    if num_tokens > vocab.size:  # bigram buckets start random, at the vectors' scale
      extra = np.asarray(jax.random.normal(jax.random.key(config.seed),
                                           (num_tokens - vocab.size, table.shape[1])))
      table = np.concatenate([table, extra * table[found].std()]).astype(np.float32)
  embed = dict(embed_size=None if table is not None else m.embed_size, embedding=table,
               freeze_embedding=bool(m.freeze_embedding))
  num_classes = len(datasets.module(data.dataset).CLASSES)
  if m.kind == "bow":
    return classifiers.bag_of_embeddings(num_tokens, num_classes,
                                         hidden_sizes=tuple(m.hidden_sizes),
                                         pooling=m.pooling, dropout=m.dropout, **embed)
  cell = getattr(cells, m.cell)(m.hidden_size)
  return classifiers.recurrent_classifier(
      num_tokens, num_classes, cell, num_layers=m.num_layers, bidirectional=m.bidirectional,
      readout=m.readout, dropout=m.dropout, recurrent_dropout=m.recurrent_dropout, **embed)


def build(config, workdir):
  del workdir
  data = config.data
  splits = datasets.load(data.dataset)
  tokens = {s: [tokenize(t) for t in texts] for s, (texts, _) in splits.items()}
  labels = {s: y for s, (_, y) in splits.items()}
  vocab = build_vocab(tokens["train"], data.vocab_size, data.min_count)
  encoded = {s: encode(vocab, docs, data.max_len) for s, docs in tokens.items()}
  model = build_model(config, vocab)
  recurrent = config.model.kind == "rnn"
  buckets = training.padded_lengths(data.buckets, data.max_len)

  def features(ids, lengths, width):
    ids = ids[:, :width]
    if ids.shape[1] < width:
      ids = np.pad(ids, ((0, 0), (0, width - ids.shape[1])))
    mask = np.arange(width)[None] < lengths[:, None]
    if data.ngrams > 1:
      ids, mask = embeddings.hashed_ngrams(ids, mask, n=data.ngrams,
                                           num_buckets=data.num_buckets, offset=vocab.size)
    return ids, mask

  def batch_of(split, index, weight):
    ids, lengths = encoded[split]
    lengths = lengths[index]
    width = _bucket(int(lengths.max(initial=1)), buckets) if recurrent else data.max_len
    x, mask = features(ids[index], lengths, width)
    return {"inputs": x, "mask": mask, "labels": labels[split][index], "weight": weight}

  train_lengths = encoded["train"][1]
  num_train = len(train_lengths)
  per_epoch = num_train // config.batch_size

  def epoch_order(epoch):
    if not recurrent:
      order = np.random.default_rng([config.seed, epoch]).permutation(num_train)
      return order[:per_epoch * config.batch_size].reshape(per_epoch, -1)
    return training.length_sorted_epoch(train_lengths, config.batch_size, config.seed, epoch,
                                        _SORT_WINDOW)

  cache = {}

  def train_batch(step):
    epoch, index = divmod(step, per_epoch)
    if cache.get("epoch") != epoch:
      cache.update(epoch=epoch, order=epoch_order(epoch))
    return batch_of("train", cache["order"][index], np.ones(config.batch_size, np.float32))

  def held_out(split):
    n = len(labels[split])
    # Sorted by length so that each padded batch wastes little; order does not
    # change a sum of per-document losses.
    order = np.argsort(encoded[split][1], kind="stable") if recurrent else np.arange(n)

    def batches():
      size = data.eval_batch_size
      for start in range(0, n, size):
        index = order[start:start + size]
        weight = np.ones(size, np.float32)
        if len(index) < size:
          weight[len(index):] = 0
          index = np.concatenate([index, np.repeat(index[-1:], size - len(index))])
        yield batch_of(split, index, weight)

    return batches

  def loss_fn(params, batch, carry, rng, training):
    _, logits = model.apply(params, batch["inputs"], mask=batch["mask"], key=rng,
                            training=training)
    weight = batch["weight"]
    total, count = cross_entropy(logits[:, None], batch["labels"][:, None], weight[:, None])
    correct = jnp.sum(weight * (logits.argmax(-1) == batch["labels"]).astype(jnp.float32))
    return total / count, (carry, {"nll_sum": total, "correct": correct, "count": count})

  mean_tokens = float(np.mean(np.minimum(train_lengths, data.max_len)))
  task = Task(
      init_params=model.init, init_carry=None, loss_fn=loss_fn, train_batch=train_batch,
      eval_batches={"validation": held_out("validation"), "test": held_out("test")},
      summarize=lambda s: {"loss": s["nll_sum"] / max(s["count"], 1.0),
                           "accuracy": s["correct"] / max(s["count"], 1.0)},
      tokens_per_batch=int(config.batch_size * mean_tokens),
      eval_batch_size=data.eval_batch_size, progress_metrics=("loss",))
  test_ids = np.concatenate([vocab.encode(d) for d in tokens["test"]] or [np.zeros(0, int)])
  extras = {"vocab_size": vocab.size, "model": model.name,
            "test_unk_rate": float(np.mean(test_ids == vocab.unk_id)) if test_ids.size else 0.0}
  return task, extras


def run(config, workdir, log=print) -> dict:
  """Trains and evaluates (see ``experiments.tasks``)."""
  return training.run(config, workdir, build, report, log)


def report(config, final, params, extras, log=print) -> None:
  log(f"final: {config.data.dataset} test accuracy {final['test/accuracy']:.4f} (validation "
      f"{final['validation/accuracy']:.4f}); {extras['model']}; vocabulary {extras['vocab_size']} "
      f"({100 * extras['test_unk_rate']:.1f}% of test tokens unknown); "
      f"{count_params(params)} parameters")


def baseline(config) -> tuple[str, float]:
  """Chance accuracy (the majority class is within 1% of it on every split here)."""
  return "chance", 1.0 / len(datasets.module(config.data.dataset).CLASSES)
