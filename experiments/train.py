r"""Trains an experiment described by an ml_collections config file.

  python -m experiments.train --config experiments/configs/char_lm.py --workdir /tmp/char_lm
  python -m experiments.train --config experiments/configs/char_lm.py:quick \
      --workdir /tmp/quick --config.model.cell=gru --config.optimizer.learning_rate=1e-3

The config is the only source of truth: it is saved to `<workdir>/config.json`,
and running the same command again resumes from the newest checkpoint in the
workdir. SIGTERM or Ctrl-C saves a checkpoint before exiting.
"""

from __future__ import annotations

import json
import pathlib
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from experiments import tasks
from seqjax.train import optim, sharding
from seqjax.train import loop
from seqjax.train.loop import train_and_evaluate

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment config file, e.g. experiments/configs/char_lm.py:quick.",
    lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and samples.")
flags.mark_flags_as_required(["config", "workdir"])


def validate(config) -> None:
  """Checks the config; raises ValueError naming the field.

  Experiments trained by ``seqjax.train`` share the loop's fields; those that
  run themselves (task modules with ``run``) only have their own.
  """
  if config.get("task") not in tasks.TASKS:
    raise ValueError(f"config.task must be one of {sorted(tasks.TASKS)}, got {config.get('task')!r}")
  if hasattr(tasks.TASKS[config.task], "run"):
    tasks.TASKS[config.task].validate(config)
    return
  for field in ("batch_size", "num_steps", "log_every", "checkpoint_every", "keep_checkpoints"):
    value = config[field]
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
      raise ValueError(f"config.{field} must be a positive integer, got {value!r}")
  if config.eval_every < 0:
    raise ValueError(f"config.eval_every must be >= 0 (0: only at the end), got {config.eval_every}")
  if config.time_limit_minutes < 0:
    raise ValueError(f"config.time_limit_minutes must be >= 0, got {config.time_limit_minutes}")
  loop.parse_stop_when(config.get("stop_when", ""))
  if config.get("select_best", ""):
    loop.parse_select_best(config.select_best)
  # Builds (and so validates) the optimiser before any data is loaded.
  optim.make_optimizer(config.optimizer, config.num_steps)
  tasks.TASKS[config.task].validate(config)


def save_config(config, workdir: pathlib.Path) -> None:
  path = workdir / "config.json"
  text = config.to_json_best_effort(indent=2, sort_keys=True)
  if path.exists() and json.loads(path.read_text()) != json.loads(text):
    logging.warning("%s differs from the config of this run; the new config is used "
                    "and saved", path)
  path.write_text(text)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logging.set_verbosity(logging.WARNING)
  config = _CONFIG.value
  workdir = pathlib.Path(_WORKDIR.value)
  try:
    validate(config)
  except ValueError as error:
    sys.exit(f"error: {error}")
  if config.get("distributed") and config.distributed.enabled:
    sharding.initialize_distributed(config.distributed)
  workdir.mkdir(parents=True, exist_ok=True)
  save_config(config, workdir)
  task_module = tasks.TASKS[config.task]
  if hasattr(task_module, "run"):
    # Experiments without gradient training (e.g. echo-state networks, whose
    # readout is solved in closed form) run themselves.
    try:
      task_module.run(config, workdir, log=lambda line: print(line, flush=True))
    except ModuleNotFoundError as error:
      sys.exit(f"error: {error}")
    return
  try:
    task, extras = task_module.build(config, workdir)
  except ModuleNotFoundError as error:
    sys.exit(f"error: {error}")
  final, params = train_and_evaluate(config, workdir, task,
                                     log=lambda line: print(line, flush=True))
  if final:
    task_module.report(config, final, params, extras, log=lambda line: print(line, flush=True))


if __name__ == "__main__":
  app.run(main)
