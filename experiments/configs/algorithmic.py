r"""The NTM paper's algorithmic tasks (copy, repeat copy, associative recall) for NTM and LSTM.

Variant: ``<task>,<model>[,quick]``, parts in any order, defaults ``copy,ntm``:

  task   copy, repeat_copy, associative_recall
  model  ntm (LSTM controller of 100 units, memory 128 x 20, one read and one
         write head, shifts -1..1: Collier & Beel 2018's copy settings, with
         constant memory initialisation), dnc (LSTM controller of 100 units,
         memory 128 x 20, one read head: the NTM's sizes), lstm (one layer,
         width chosen for the NTM's parameter count)
  quick  a ~1 minute smoke run at small sizes

Data (Graves et al. 2014, section 4): 8-bit vectors; copy lengths 1-20;
repeat copy lengths 1-10 with 1-10 repeats (a curriculum raises the largest
repeat count from 2 over the first half of the run); associative recall 2-6
items of 3 six-bit vectors. Every batch is padded to the longest sequence the
task allows (one compilation). Training: Adam 1e-3, gradient clipping at
global norm 10, batch 32 (the issue's and Collier & Beel's settings); stops
when validation bit errors per sequence fall below 0.05 or after 20 minutes.
After training, ``report`` tests lengths 20, 30, 40, 60, 120 (items 6-12 for
recall): the generalisation experiment.

  python -m experiments.train --config experiments/configs/algorithmic.py:copy,ntm \
      --workdir /tmp/ntm_copy
  python -m experiments.train --config experiments/configs/algorithmic.py:copy,lstm \
      --workdir /tmp/lstm_copy
"""

import ml_collections

from experiments.configs import common

TASKS = ("copy", "repeat_copy", "associative_recall")
MODELS = ("ntm", "dnc", "lstm")
#: LSTM width with about the NTM's parameters on each task (count_params of the models).
LSTM_WIDTH = {"copy": 118, "repeat_copy": 118, "associative_recall": 118}
#: Every variant (checked by the config tests).
VARIANTS = tuple(f"{t},{m}{q}" for t in TASKS for m in MODELS for q in ("", ",quick"))


def _parse(variant: str) -> tuple[str, str, bool]:
  parts = [p for p in variant.split(",") if p and p != "default"]
  tasks = [p for p in parts if p in TASKS]
  models = [p for p in parts if p in MODELS]
  unknown = [p for p in parts if p not in TASKS + MODELS + ("quick",)]
  if unknown or len(tasks) > 1 or len(models) > 1:
    raise ValueError(f"variant must be <task>,<model>[,quick] with task in {TASKS} and model "
                     f"in {MODELS}, got {variant!r}")
  return (tasks[0] if tasks else "copy"), (models[0] if models else "ntm"), "quick" in parts


def get_config(variant: str = "copy,ntm") -> ml_collections.ConfigDict:
  task, model, quick = _parse(variant)
  config = common.loop_config("algorithmic")
  config.data = dict(task=task, width=8, min_length=1, max_length=20, test_size=500,
                     min_repeats=1, max_repeats=10, curriculum_start=2, curriculum_fraction=0.5,
                     item_length=3, test_lengths=(20, 30, 40, 60, 120))
  if task == "repeat_copy":
    config.data.max_length = 10
    config.data.test_lengths = (10, 15, 20)
  elif task == "associative_recall":
    config.data.update(width=6, min_length=2, max_length=6, test_lengths=(6, 8, 10, 12))
  config.batch_size = 32
  config.num_steps = 50_000
  config.optimizer.learning_rate = 1e-3
  config.optimizer.clip_global_norm = 10.0
  config.log_every = 100
  config.eval_every = 250
  config.checkpoint_every = 250
  config.time_limit_minutes = 20.0
  config.stop_when = "validation/bit_errors<0.05"
  if model == "ntm":
    config.model = common.model_config(
        "ntm", hidden_size=100, cell_options=dict(
            memory_size=128, memory_width=20, num_reads=1, num_writes=1, shift_range=1,
            controller="lstm", memory_init="constant"))
  elif model == "dnc":
    config.model = common.model_config(
        "dnc", hidden_size=100, cell_options=dict(
            memory_size=128, word_size=20, num_reads=1, controller="lstm"))
  else:
    config.model = common.model_config("lstm", hidden_size=LSTM_WIDTH[task])
  if quick:
    config.data.update(max_length=min(config.data.max_length, 4), test_size=64,
                       max_repeats=min(config.data.max_repeats, 2), curriculum_start=1,
                       test_lengths=(config.data.min_length + 2,))
    if task == "associative_recall":
      config.data.max_length = 3
    config.model.hidden_size = 16
    if model == "ntm":
      config.model.cell_options.update(memory_size=8, memory_width=6)
    elif model == "dnc":
      config.model.cell_options.update(memory_size=8, word_size=6)
    config.stop_when = ""
    common.smoke_run(config, 60)
  return config
