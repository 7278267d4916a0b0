r"""Text classification: IMDB and Rotten Tomatoes sentiment, BBC news topics.

Variants ``text_classification.py:<dataset>,<model>[,w2v|w2v_frozen][,quick]``:

* dataset: ``imdb`` (25k reviews, seeded 18,904 / 1,000 / 5,000 split, see
  ``experiments/datasets/imdb.py``), ``rt`` (Rotten Tomatoes, 8,530 sentences,
  80/10/10), ``bbc`` (BBC news, 5 topics, 2,124 articles, 80/10/10);
* model: ``bow0``, ``bow1``, ``bow2`` (mean of embeddings with 0, 1 or 2
  hidden layers), ``fasttext`` (``bow0`` with hashed bigrams), ``gru1``,
  ``gru2``, ``lstm1``, ``lstm2`` (1 or 2 bidirectional layers, each
  direction's last state);
* ``w2v`` / ``w2v_frozen``: start the embedding from the word2vec vectors in
  ``model.pretrained`` (fine-tuned / frozen); ``quick``: a smoke run.

  python -m experiments.train --config experiments/configs/text_classification.py:imdb,fasttext --workdir /tmp/imdb_fasttext
  python -m experiments.train --config experiments/configs/text_classification.py:rt,bow0,w2v \
      --config.model.pretrained=/tmp/w2v/sg_seqjax.txt --workdir /tmp/rt_w2v

Settings. Bags of embeddings (fastText, Joulin et al. 2016): 100-d
embeddings (the word2vec vectors' size), Adam 1e-2 with cosine decay; IMDB
batch 256 for 3 epochs, RT and BBC batch 64 for 5 and 20 epochs; the bigram
model hashes bigrams into 2^18 buckets. Every run is tested at the epoch
with the best validation accuracy. Recurrent
models: 100-d embeddings, 128 units per direction, dropout 0.3 on the
embedding, between layers and on the pooled state, Adam 2e-3 with global
clipping 1, batch 32, 3 epochs (BBC 10), documents truncated to their first 400 tokens (IMDB;
the median review has 174) and batched by length.
"""

from experiments.configs import common

DATASETS = {"imdb": "imdb", "rt": "rotten_tomatoes", "bbc": "bbc_news"}
MODELS = ("bow0", "bow1", "bow2", "fasttext", "gru1", "gru2", "lstm1", "lstm2")
# Training examples per dataset, to express epochs as steps.
TRAIN_SIZE = {"imdb": 18_904, "rt": 6_824, "bbc": 1_700}
MAX_LEN = {"imdb": 400, "rt": 64, "bbc": 600}
#: Epochs and batch sizes: the small data sets need more passes to converge
#: (at 3 epochs of 256 documents the BBC bag of embeddings had made 18 updates).
EPOCHS = {("bow", "imdb"): 3, ("bow", "rt"): 5, ("bow", "bbc"): 20,
          ("rnn", "imdb"): 3, ("rnn", "rt"): 3, ("rnn", "bbc"): 10}
BATCH_SIZE = {("bow", "imdb"): 256, ("bow", "rt"): 64, ("bow", "bbc"): 64,
              ("rnn", "imdb"): 32, ("rnn", "rt"): 32, ("rnn", "bbc"): 32}
#: Every variant that needs no vectors file (the tests build each one).
VARIANTS = tuple(f"{d},{m}{q}" for d in DATASETS for m in MODELS for q in ("", ",quick"))


def get_config(variant: str = "imdb,fasttext"):
  parts = [p for p in variant.split(",") if p]
  datasets = [p for p in parts if p in DATASETS]
  models = [p for p in parts if p in MODELS]
  options = set(parts) - set(datasets) - set(models)
  if len(datasets) != 1 or len(models) != 1 or options - {"w2v", "w2v_frozen", "quick"}:
    raise ValueError(f"variant must be <dataset>,<model>[,w2v|w2v_frozen][,quick] with dataset "
                     f"in {tuple(DATASETS)} and model in {MODELS}, got {variant!r}")
  dataset, model, quick = datasets[0], models[0], "quick" in options
  recurrent = not model.startswith(("bow", "fasttext"))
  config = common.loop_config("text_classification")
  config.data = dict(
      dataset=DATASETS[dataset],  # a "documents" corpus of experiments.datasets
      vocab_size=30_000,          # at most this many ids, <unk> included
      min_count=2,                # rarer training words become <unk>
      max_len=MAX_LEN[dataset],   # tokens kept per document (its first ones)
      ngrams=2 if model == "fasttext" else 1,  # 2: append hashed bigram ids
      num_buckets=2 ** 18,        # hash buckets for the n-grams
      buckets=(64, 128, 256),     # padded lengths of recurrent batches (plus max_len)
      eval_batch_size=250,
  )
  config.model = dict(
      kind="rnn" if recurrent else "bow",
      embed_size=100,
      hidden_sizes=[100] * int(model[3]) if model.startswith("bow") else [],
      pooling="mean",
      cell=model[:-1] if recurrent else "gru",
      hidden_size=128,
      num_layers=int(model[-1]) if recurrent else 1,
      bidirectional=True,
      readout="last",
      dropout=0.3 if recurrent else 0.0,
      recurrent_dropout=0.0,
      embedding_init="word2vec" if options & {"w2v", "w2v_frozen"} else "random",
      pretrained="",              # the word2vec text file embedding_init="word2vec" reads
      freeze_embedding="w2v_frozen" in options,
  )
  kind = "rnn" if recurrent else "bow"
  epochs = EPOCHS[kind, dataset]
  config.batch_size = BATCH_SIZE[kind, dataset]
  config.num_steps = epochs * (TRAIN_SIZE[dataset] // config.batch_size)
  config.optimizer.learning_rate = 2e-3 if recurrent else 1e-2
  config.optimizer.schedule = "cosine"
  config.optimizer.clip_global_norm = 1.0 if recurrent else 0.0
  config.eval_every = config.num_steps // epochs
  config.checkpoint_every = config.eval_every
  config.select_best = "validation/accuracy:max"
  if quick:
    config.data.max_len = 32
    config.data.vocab_size = 2_000
    config.data.num_buckets = 1_000
    config.model.embed_size = config.model.hidden_size = 16
    config.model.hidden_sizes = [16] * len(config.model.hidden_sizes)
    config.data.eval_batch_size = 100
    common.smoke_run(config, 30, log_every=10)
  return config
