r"""Sequence to sequence: synthetic tasks and Spanish -> English Bible verses.

Variants ``translation.py:<task>[,<attention>][,<schedule>][,quick]``:

* task: ``addition`` (two integers of 1-3 digits as "a+b" -> their sum),
  ``reversal``, ``sorting`` (digit strings of 2-12), ``bible`` (Reina-Valera
  1909 -> King James, ``experiments/datasets/bible.py``);
* attention: ``additive`` (default), ``dot``, ``general`` or ``none`` (a
  Sutskever-style encoder-decoder: no attention, the source read reversed,
  the bridge alone carries it);
* schedule: teacher forcing by default; ``ss_linear``, ``ss_exp``,
  ``ss_sigmoid``: scheduled sampling with Bengio et al.'s decays, reaching
  about 0.5 teacher probability at the end of the run (the Bible runs: at
  step ``SS_STEPS_BIBLE``);
* ``quick``: a smoke run.

  python -m experiments.train --config experiments/configs/translation.py:addition --workdir /tmp/addition
  python -m experiments.train --config experiments/configs/translation.py:bible,additive --workdir /tmp/bible_additive

Settings. Synthetic: LSTM 128 units, 32-d embeddings, batch 128, Adam 3e-3,
3 minutes. Bible: LSTM, 128-d embeddings, a bidirectional encoder (128 units
per direction, 256 in all) and a 256-unit decoder with input feeding, 8,000
ids per side (words seen twice or more), dropout 0.2, label smoothing 0.1,
Adam 2e-3 with global clipping 1, batch 64, pairs of at most 48 tokens for
training, 30 minutes; decoding: beam 5, alpha 0.6, outputs at most 1.5 x
source + 5 tokens. The no-attention model gets a wider decoder (see
``HIDDEN``) so that the three Bible models have the same number of
parameters within 3.5% (5.73M, 5.55M, 5.42M).
"""

import math

from experiments.configs import common

TASKS = ("addition", "reversal", "sorting", "bible")
ATTENTIONS = ("additive", "dot", "general", "none")
SCHEDULES = {"ss_linear": "linear", "ss_exp": "exponential", "ss_sigmoid": "inverse_sigmoid"}
#: Length of the Bible scheduled-sampling runs (the table runs every row of that
#: comparison, teacher forcing included, for exactly this many steps).
SS_STEPS_BIBLE = 700


def inverse_sigmoid_k(steps: int) -> float:
  """The ``k`` whose inverse-sigmoid decay ``k / (k + exp(i / k))`` is 0.5 at ``i = steps``.

  That is ``k = exp(i / k)``, i.e. ``k ln k = steps``, solved by Newton's method.
  """
  if steps < 1:
    raise ValueError(f"steps must be >= 1, got {steps}")
  k = max(2.0, steps / max(1.0, math.log(steps)))
  for _ in range(50):
    k -= (k * math.log(k) - steps) / (math.log(k) + 1.0)
    k = max(k, 1.0)
  return k


#: Decoder (and encoder total) width of the Bible models, equalising parameters.
HIDDEN = {"additive": 256, "dot": 256, "general": 256, "none": 304}
VARIANTS = tuple(f"{t}{a}{s}{q}" for t in TASKS for a in ("", ",dot", ",none")
                 for s in ("", ",ss_linear") for q in ("", ",quick"))


def get_config(variant: str = "addition"):
  parts = [p for p in variant.split(",") if p and p != "default"]
  tasks = [p for p in parts if p in TASKS]
  kinds = [p for p in parts if p in ATTENTIONS]
  schedules = [p for p in parts if p in SCHEDULES]
  rest = set(parts) - set(tasks) - set(kinds) - set(schedules)
  if len(tasks) != 1 or len(kinds) > 1 or len(schedules) > 1 or rest - {"quick"}:
    raise ValueError(f"variant must be <task>[,<attention>][,<schedule>][,quick] with task in "
                     f"{TASKS}, attention in {ATTENTIONS}, schedule in {tuple(SCHEDULES)}, "
                     f"got {variant!r}")
  task, quick = tasks[0], "quick" in rest
  kind = kinds[0] if kinds else "additive"
  bible = task == "bible"
  config = common.loop_config("translation")
  config.data = dict(
      dataset="bible_es_en" if bible else task,
      max_digits=3,               # addition: operands of 1..max_digits digits
      min_length=2, max_length=12,  # reversal, sorting: digit strings
      eval_size=1_000,            # synthetic validation and test examples
      source_vocab_size=8_000, target_vocab_size=8_000,  # ids per side, 4 specials included
      min_count=2,                # rarer training tokens become <unk>
      max_train_tokens=48,        # training pairs: both sides at most this (EOS included)
      max_eval_tokens=80,         # validation/test: sources shorter than this
      buckets=(16, 24, 32, 48, 64),  # padded lengths (plus max_eval_tokens)
      eval_batch_size=200 if bible else 250,
      max_pairs=0,                # > 0: only each split's first pairs (quick runs)
  )
  hidden = HIDDEN[kind] if bible else 128
  config.model = dict(
      cell="lstm",
      embed_size=128 if bible else 32,
      hidden_size=hidden,         # decoder units; encoder output (both directions together)
      encoder_layers=1, decoder_layers=1,
      bidirectional=True,         # first encoder layer bidirectional, hidden_size // 2 each way
      residual=False,             # GNMT residuals from the third layer on
      attention=kind, attention_size=hidden,
      input_feeding=True,
      bridge="final",
      reverse_source=kind == "none",
      tie_embeddings=False,
      dropout=0.2 if bible else 0.0,
  )
  config.training = dict(
      schedule=SCHEDULES[schedules[0]] if schedules else "none",
      sampling="argmax",          # the model's token in scheduled sampling: argmax or sample
      k=1.0, c=0.0, minimum=0.0,  # set below per decay
      label_smoothing=0.1 if bible else 0.0,
  )
  config.decode = dict(beam_size=5, alpha=0.6 if bible else 0.0,
                       length_ratio=(1.5, 5.0) if bible else (),
                       max_length=125 if bible else 16)
  if bible:
    config.batch_size = 64
    config.num_steps = 60_000
    config.time_limit_minutes = 30.0
    config.optimizer.learning_rate = 2e-3
    config.optimizer.clip_global_norm = 1.0
    config.eval_every = 1_000
    config.checkpoint_every = 500
  else:
    config.batch_size = 128
    config.num_steps = 5_000
    config.time_limit_minutes = 3.0
    config.optimizer.learning_rate = 5e-3
    config.optimizer.schedule = "cosine"
    config.optimizer.clip_global_norm = 1.0
    config.eval_every = 500
    config.checkpoint_every = 500
    config.stop_when = "validation/forced_exact_match>0.999"
  # The decays reach about 0.5 teacher probability at the end of the run.
  steps = config.num_steps if not bible else SS_STEPS_BIBLE
  t = config.training
  if t.schedule == "linear":      # 1 -> 0.5 over the run
    t.k, t.c, t.minimum = 1.0, 0.5 / steps, 0.5
  elif t.schedule == "exponential":  # k^steps = 0.5
    t.k = 0.5 ** (1.0 / steps)
  elif t.schedule == "inverse_sigmoid":  # k / (k + exp(steps / k)) = 0.5
    t.k = inverse_sigmoid_k(steps)
  if quick:
    config.data.eval_size = 100
    config.data.eval_batch_size = 50
    config.data.source_vocab_size = config.data.target_vocab_size = 500
    config.data.max_train_tokens = 24
    config.data.max_eval_tokens = 32
    config.data.max_pairs = 400
    config.data.buckets = ()      # one padded width (32), so a quick run compiles little
    config.model.embed_size = 16
    config.model.hidden_size = config.model.attention_size = 16
    config.decode.max_length = 40 if bible else 16
    config.batch_size = 16
    config.stop_when = ""
    common.smoke_run(config, 20, log_every=10)
  return config
