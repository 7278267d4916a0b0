r"""Trains an experiment described by an ml_collections config file.

  python -m experiments.train --config experiments/configs/char_lm.py --workdir /tmp/char_lm
  python -m experiments.train --config experiments/configs/char_lm.py:quick \
      --workdir /tmp/quick --config.model.cell=gru --config.optimizer.learning_rate=1e-3

The config is the only source of truth: it is saved to `<workdir>/config.json`,
and running the same command again resumes from the newest checkpoint in the
workdir. SIGTERM or Ctrl-C saves a checkpoint before exiting. One run at a time
per workdir: a second launch into a workdir in use fails at once, naming the
process that holds it (see ``seqjax.train.lock``). A mistake on the command line
(an unknown flag or config field, a missing config file or variant, an unusable
workdir) ends in one ``error: ...`` line that names it, and a non-zero exit.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib.util
import json
import pathlib
import re
import sys

from absl import app, flags, logging
import ml_collections
from ml_collections import config_flags

from experiments import tasks
from seqjax.train import checkpoint, lock, sharding

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment config file, e.g. experiments/configs/char_lm.py:quick.",
    lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and samples.")
flags.mark_flags_as_required(["config", "workdir"])

# ``--config.<path>=...`` and ``--noconfig.<path>`` as ml_collections reads them.
_OVERRIDE = re.compile(r"^(-{1,2}(?:no)?config\.([^=]+))")


def parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing; a mistake ends the program with one ``error:`` line naming it."""
  try:
    rest = flags.FLAGS(argv)
  except flags.Error as error:  # an unknown flag, a bad value, a config's get_config refusing
    sys.exit(f"error: {_flag_error(error)}")
  except OSError:  # overrides given for a config file that failed to load
    sys.exit(f"error: {_config_file_error(argv)}")
  except (AttributeError, KeyError) as error:  # an override that names no config field
    sys.exit(f"error: {_unknown_field(argv, error)}")
  if len(rest) > 1:
    sys.exit(f"error: unexpected arguments {rest[1:]}; settings are given as "
             f"--config.<field>=<value>")
  try:
    # ml_collections reports a config file it could not load only when read.
    _CONFIG.value.get("task")
  except OSError:
    sys.exit(f"error: {_config_file_error(argv)}")
  return rest


def _innermost(error: BaseException) -> BaseException:
  while (error.__cause__ or error.__context__) is not None:
    error = error.__cause__ or error.__context__
  return error


def _flag_error(error: flags.Error) -> str:
  """``--config=adding.py:nope: variant must be ...`` from absl's multi-line report."""
  first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
  flag = re.match(r"flag (-[^=]+=.*?): ", first)
  cause = _innermost(error)
  if flag and cause is not error and str(cause).strip():
    # A config file's get_config raised: absl wraps its traceback in the message.
    return f"{flag.group(1)}: {str(cause).strip().splitlines()[0]}"
  return first.removeprefix("flag ")


def _config_spec(argv: list[str]) -> str:
  """The value of ``--config`` in ``argv`` (``path.py`` or ``path.py:variant``)."""
  for i, arg in enumerate(argv):
    name, equals, value = arg.partition("=")
    if name in ("-config", "--config"):
      return value if equals else (argv[i + 1] if i + 1 < len(argv) else "")
  return ""


def _config_file_error(argv: list[str]) -> str:
  spec = _config_spec(argv)
  path = pathlib.Path(spec.split(":", 1)[0])
  if not path.is_file():
    return f"--config={spec}: no config file {path} (relative paths start at {pathlib.Path.cwd()})"
  return f"--config={spec}: cannot load {path}"


def _load_config(spec: str):
  """``get_config(variant)`` of the config file ``spec`` names, as ml_collections calls it."""
  path, *variant = spec.split(":", 1)
  module_spec = importlib.util.spec_from_file_location("_launcher_config", path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(*variant)


def _unknown_field(argv: list[str], error: Exception) -> str:
  """Names the first ``--config.<path>`` override whose path is not in the config."""
  try:
    config = _load_config(_config_spec(argv))
  except Exception:  # pylint: disable=broad-except
    raise error from None  # the config file itself raised: its traceback is the report
  for arg in argv:
    match = _OVERRIDE.match(arg)
    if match:
      problem = _missing_field(config, match.group(2))
      if problem:
        return f"{match.group(1)}: {problem}"
  raise error


def _missing_field(config, path: str) -> str | None:
  """Why ``path`` (``model.cell``) names no field of ``config``; None if it does."""
  node, walked = config, "config"
  for part in path.split("."):
    if "[" in part:  # an index into a sequence: left to ml_collections
      return None
    if not isinstance(node, ml_collections.ConfigDict):
      return f"{walked} is the {type(node).__name__} {node!r}, not a group of fields"
    if part not in node:
      fields = sorted(node.keys())
      close = difflib.get_close_matches(part, fields, n=1)
      hint = f"did you mean {close[0]!r}?" if close else f"its fields are {', '.join(fields)}"
      return f"{walked} has no field {part!r}; {hint}"
    node, walked = node[part], f"{walked}.{part}"
  return None


def validate(config) -> None:
  """Checks the config; raises ValueError naming the field.

  The task checks its own fields (trained tasks also the loop's: see
  ``experiments/tasks/__init__.py`` for the protocol).
  """
  if config.get("task") not in tasks.TASKS:
    raise ValueError(f"config.task must be one of {sorted(tasks.TASKS)}, got {config.get('task')!r}")
  tasks.TASKS[config.task].validate(config)


def save_config(config, workdir: pathlib.Path) -> None:
  path = workdir / "config.json"
  text = config.to_json_best_effort(indent=2, sort_keys=True)
  if path.exists() and json.loads(path.read_text()) != json.loads(text):
    logging.warning("%s differs from the config of this run; the new config is used "
                    "and saved", path)
  path.write_text(text)


def _drop_closed_loop_noise(unraisable, previous_hook=sys.unraisablehook) -> None:
  """Hides TensorStore reads that finish after orbax gave up on a checkpoint.

  When one read of an unreadable checkpoint fails, orbax closes its asyncio loop
  while other reads are in flight; their callbacks then raise "Event loop is
  closed" into ``sys.unraisablehook``, a traceback each, which say nothing the
  checkpoint warning does not.
  """
  if not (isinstance(unraisable.exc_value, RuntimeError)
          and str(unraisable.exc_value) == "Event loop is closed"):
    previous_hook(unraisable)


def main(argv):
  del argv  # parse_flags refused leftovers
  logging.set_verbosity(logging.WARNING)
  sys.unraisablehook = _drop_closed_loop_noise
  config = _CONFIG.value
  workdir = pathlib.Path(_WORKDIR.value)
  try:
    validate(config)
  except ValueError as error:
    sys.exit(f"error: {error}")
  if config.get("distributed") and config.distributed.enabled:
    sharding.initialize_distributed(config.distributed)
  with contextlib.ExitStack() as stack:
    # Before anything is written: a second launch leaves the running one's files alone.
    try:
      stack.enter_context(lock.hold_workdir(workdir))
    except lock.WorkdirLockedError as error:
      sys.exit(f"error: {error}")
    except OSError as error:
      where = f" ({error.filename})" if error.filename not in (None, str(workdir)) else ""
      sys.exit(f"error: --workdir {workdir} cannot be used as the run's directory: "
               f"{error.strerror or error}{where}")
    run_experiment(config, workdir)


def run_experiment(config, workdir: pathlib.Path) -> None:
  """Saves the config and runs the experiment; the caller holds the workdir's lock."""
  save_config(config, workdir)
  try:
    # Every task runs itself (see experiments/tasks/__init__.py); those trained
    # by gradient descent through seqjax.train.loop.train_and_evaluate.
    tasks.TASKS[config.task].run(config, workdir, log=lambda line: print(line, flush=True))
  except ModuleNotFoundError as error:
    sys.exit(f"error: {error}")
  except checkpoint.CheckpointError as error:
    # After orbax's and TensorStore's log lines: the details, then one error line.
    summary, *details = str(error).splitlines()
    if details:
      print("\n".join(details), file=sys.stderr, flush=True)
    sys.exit(f"error: {summary.rstrip(':')}" + (" (each listed above)" if details else ""))


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
