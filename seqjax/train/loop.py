"""The training loop: one function that trains any ``Task`` from a config.

``train_and_evaluate(config, workdir, task)`` resumes from the newest valid
checkpoint in ``workdir``, runs jitted data-parallel steps, writes metrics
(JSON lines + TensorBoard) and a progress line, evaluates periodically,
checkpoints every ``config.checkpoint_every`` steps and when SIGTERM/Ctrl-C
arrives, and stops with a clear message on a non-finite loss or gradient.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import time
from typing import Any, Callable, Iterable, Mapping, NamedTuple, Optional

import jax
import numpy as np
from absl import logging

from seqjax.pytree import count_params
from seqjax.train import checkpoint as checkpoint_lib
from seqjax.train import lock as lock_lib
from seqjax.train import metrics as metrics_lib
from seqjax.train import optim, preemption, sharding
from seqjax.train import state as state_lib
from seqjax.train import step as step_lib
from seqjax.types import Params


class Task(NamedTuple):
  """What the loop needs to know about an experiment.

  Attributes:
    init_params: ``key -> params``.
    init_carry: ``(params, batch_size) -> carry`` for the persistent
      truncated-BPTT carry, or None for tasks whose batches are independent.
    loss_fn: ``(params, batch, carry, rng, training) -> (loss, (carry,
      metrics))``; ``training`` is a Python bool (dropout on or off).
    train_batch: ``step -> batch``, a dict of numpy arrays with a leading
      batch axis; a deterministic function of the step, so a resumed run
      sees exactly the data the uninterrupted run would have.
    eval_batches: ``{split: () -> iterable of batches}``; each evaluation
      starts from a fresh carry and carries it across the split's batches.
    summarize: ``{metric sums} -> {reported metrics}``, e.g. turns summed
      nats and token counts into bits per character.
    tokens_per_batch: tokens in one training batch (for tokens/s).
    eval_batch_size: rows of the evaluation batches.
    progress_metrics: training metrics shown on the console progress line
      (besides the gradient norm); all of them go to the metrics files.
  """

  init_params: Callable[[jax.Array], Params]
  init_carry: Optional[Callable[[Params, int], Any]]
  loss_fn: Callable[..., Any]
  train_batch: Callable[[int], Mapping[str, np.ndarray]]
  eval_batches: Mapping[str, Callable[[], Iterable[Mapping[str, np.ndarray]]]]
  summarize: Callable[[Mapping[str, float]], dict[str, float]]
  tokens_per_batch: int
  eval_batch_size: int
  progress_metrics: tuple[str, ...] = ("loss",)


class NonFiniteError(FloatingPointError):
  """Raised when a step produced a non-finite loss or gradient."""


def evaluate(task: Task, params: Params, eval_step, mesh, split: str) -> dict[str, float]:
  """Runs ``task.eval_batches[split]`` once; returns ``task.summarize`` of the sums.

  Args:
    task: the task whose evaluation batches (and ``init_carry``) are used.
    params: the parameters to evaluate.
    eval_step: ``eval_step(params, batch, carry) -> (metrics, new_carry)``, as
      ``seqjax.train.step.make_eval_step`` builds; its carry is chained from
      batch to batch, starting from ``task.init_carry`` (or ``None``).
    mesh: the mesh (``seqjax.train.sharding.make_mesh``) over which each batch
      and the initial carry are sharded along the batch axis.
    split: the key of ``task.eval_batches`` to run, e.g. ``"validation"``.
  """
  carry = None
  if task.init_carry is not None:
    carry = sharding.shard_batch(mesh, task.init_carry(params, task.eval_batch_size))
  sums: dict[str, float] = {}
  for batch in task.eval_batches[split]():
    metrics, carry = eval_step(params, sharding.shard_batch(mesh, batch), carry)
    for name, value in jax.device_get(metrics).items():
      sums[name] = sums.get(name, 0.0) + float(value)
  return task.summarize(sums)


def train_and_evaluate(config, workdir: str | os.PathLike, task: Task,
                       log: Callable[[str], None] = print) -> tuple[dict[str, float], Params]:
  """Trains ``task`` as ``config`` says, resuming from ``workdir``.

  Every step's loss and gradient norm (before clipping) go to the metrics
  files; all training metrics and the progress line every ``log_every`` steps.

  Config fields used: ``seed``, ``num_steps``, ``batch_size``, ``optimizer``
  (see ``seqjax.train.optim``), ``log_every``, ``eval_every``,
  ``checkpoint_every``, ``keep_checkpoints``, ``skip_nonfinite``,
  ``time_limit_minutes`` (0 = none; stops, checkpointed, when exceeded) and,
  if present, ``select_best``: ``""`` or e.g. ``"validation/nll:min"``: the
  final evaluation uses the parameters of the best periodic validation result
  (and of the last step), as early stopping does; and ``stop_when``: ``""``
  or a target such as
  ``"validation/mse<0.001"`` or ``"validation/accuracy>0.99"``, checked at
  every periodic evaluation; training stops (checkpointed) once it holds.

  The outcome is also written to ``<workdir>/final.json``: the final
  metrics, the step reached, ``num_steps``, what stopped the run (``null``,
  ``"the time limit"``, ``"the target"``, a signal) and the seconds spent
  training, summed over resumed runs.

  Args:
    config: the run's config (an ``ml_collections.ConfigDict``), fields above.
    workdir: directory of the checkpoints, metrics files and ``final.json``.
    task: the ``Task`` to train.
    log: called with each message line (resumption, metrics, progress,
      stopping); ``print`` by default.

  Returns:
    ``(metrics, params)``: the final evaluation, ``{"<split>/<name>": value}``
    (empty when a signal stopped the run), and the trained parameters.

  Only one run at a time may use ``workdir``: the loop holds
  ``<workdir>/.lock`` (``seqjax.train.lock``) from before it writes anything
  until it returns, so a second run into the same workdir fails at once.

  Raises:
    WorkdirLockedError: another run holds ``workdir``; nothing was written.
    NonFiniteError: a step gave a non-finite loss or gradient (and
      ``skip_nonfinite`` is False); parameters were not updated by it and the
      message names the last good checkpoint.
    CheckpointError: checkpoints exist in ``workdir`` but none can be restored.
  """
  workdir = pathlib.Path(workdir)
  with lock_lib.hold_workdir(workdir):
    return _train_and_evaluate(config, workdir, task, log)


def _train_and_evaluate(config, workdir: pathlib.Path, task: Task,
                        log: Callable[[str], None]) -> tuple[dict[str, float], Params]:
  mesh = sharding.make_mesh()
  sharding.check_batch_size(config.batch_size, mesh)
  sharding.check_batch_size(task.eval_batch_size, mesh)

  optimizer = optim.make_optimizer(config.optimizer, config.num_steps)
  key_params, key_train = jax.random.split(jax.random.PRNGKey(config.seed))
  params = task.init_params(key_params)
  carry = None if task.init_carry is None else task.init_carry(params, config.batch_size)
  state = state_lib.create_train_state(params, optimizer, key_train, carry)

  checkpointer = checkpoint_lib.Checkpointer(
      workdir / "checkpoints", save_every=config.checkpoint_every, keep=config.keep_checkpoints)
  try:
    restored = checkpointer.restore(state)
  except BaseException:
    checkpointer.close()
    raise
  if restored is not None:
    state, start = restored
    log(f"resumed from the checkpoint at step {start} in {workdir / 'checkpoints'}")
  start = int(state.step)
  state = sharding.shard_train_state(mesh, state)

  train_step = step_lib.make_train_step(
      lambda p, b, c, r: task.loss_fn(p, b, c, r, True), optimizer)
  eval_step = step_lib.make_eval_step(lambda p, b, c, r: task.loss_fn(p, b, c, r, False))
  writer = metrics_lib.MetricWriter(workdir)
  progress = metrics_lib.Progress(config.num_steps, task.tokens_per_batch, start_step=start)
  deadline = (time.monotonic() + 60 * config.time_limit_minutes
              if config.time_limit_minutes else math.inf)

  def run_eval(step, splits, params=None):
    results = {}
    for split in splits:
      summary = evaluate(task, state.params if params is None else params, eval_step, mesh,
                         split)
      writer.write(step, summary, split=split)
      results.update({f"{split}/{k}": v for k, v in summary.items()})
    log(f"step {step:6d} | " + " | ".join(f"{k} {v:.4f}" for k, v in results.items()))
    return results

  target = parse_stop_when(config.get("stop_when", ""))
  select_best = config.get("select_best", "")
  best = _BestParams(select_best, workdir, state.params) if select_best else None
  final_path = workdir / "final.json"
  previous_seconds = 0.0
  if start and final_path.exists():
    previous_seconds = json.loads(final_path.read_text()).get("train_seconds", 0.0)
  started = time.monotonic()
  step = start
  stopped_by = None
  try:
    with preemption.StopRequested() as stop:
      while step < config.num_steps:
        batch = sharding.shard_batch(mesh, task.train_batch(step))
        state, metrics = train_step(state, batch)
        step += 1
        if step == start + 1:
          # Rates exclude the first step, which includes compilation.
          jax.block_until_ready(metrics)
          progress.mark(step)
        if not bool(metrics["finite"]):
          message = (f"non-finite loss or gradient at step {step - 1} "
                     f"(loss {float(metrics['loss'])}, gradient norm "
                     f"{float(metrics['grad_norm'])}); parameters were not updated")
          if not config.skip_nonfinite:
            last = checkpointer.latest_step()
            raise NonFiniteError(
                f"{message}. Last good checkpoint: "
                + (f"step {last} in {workdir / 'checkpoints'}" if last is not None else "none")
                + ". Lower the learning rate or tighten clipping, or set "
                  "--config.skip_nonfinite=True to skip such updates.")
          logging.warning("%s; skipped (skip_nonfinite=True)", message)
        if step % config.log_every == 0 or step == config.num_steps:
          scalars = {k: float(v) for k, v in jax.device_get(metrics).items()}
          writer.write(step, scalars, split="train")
          shown = {k: scalars[k] for k in (*task.progress_metrics, "grad_norm") if k in scalars}
          log(progress.line(step, shown))
        else:
          # The loss and the gradient norm before clipping are recorded at every
          # step (exploding gradients show up between log lines).
          writer.write(step, {k: float(metrics[k]) for k in ("loss", "grad_norm")},
                       split="train")
        reached = False
        if config.eval_every and step % config.eval_every == 0 and step < config.num_steps:
          results = run_eval(step, ["validation"])
          reached = target is not None and target(results)
          if best is not None:
            best.offer(step, results, state.params)
        checkpointer.save(step, state)
        if stop.requested or time.monotonic() > deadline or reached:
          stopped_by = (stop.signal_name if stop.requested
                        else "the target" if reached else "the time limit")
          break
    checkpointer.save(step, state, force=True)
    if stopped_by is not None:
      log(f"stopped by {stopped_by} at step {step}; checkpoint saved in "
          f"{workdir / 'checkpoints'}; run the same command again to resume")
    # A signal asks to exit promptly; the time limit still ends with a report.
    train_seconds = previous_seconds + time.monotonic() - started
    selected = step
    if stopped_by in ("SIGTERM", "SIGINT"):
      final = {}
    elif best is None:
      final = run_eval(step, list(task.eval_batches))
    else:
      best.offer(step, run_eval(step, ["validation"]), state.params)
      selected = best.step
      log(f"evaluating the parameters of step {best.step}, the best {best.name} "
          f"({best.value:.4f})")
      final = run_eval(step, list(task.eval_batches), best.params_like(state.params))
    if jax.process_index() == 0:
      final_path.write_text(json.dumps(
          {"step": step, "num_steps": config.num_steps, "stopped_by": stopped_by,
           "selected_step": selected, "train_seconds": train_seconds, "metrics": final,
           "num_params": count_params(state.params)},
          indent=2))
  finally:
    writer.close()
    checkpointer.close()
  return final, jax.device_get(state.params)


def parse_select_best(text: str) -> tuple[str, str]:
  """``"validation/nll:min"`` -> ``("validation/nll", "min")``.

  Raises:
    ValueError: ``text`` is not ``<split>/<metric>:min`` or ``...:max``.
  """
  name, _, mode = text.rpartition(":")
  if "/" not in name or mode not in ("min", "max"):
    raise ValueError(f"config.select_best must look like 'validation/nll:min' or "
                     f"'validation/accuracy:max', got {text!r}")
  return name, mode


# The key of the (name, value, step) record inside best_params.npz.
_RECORD = "__record__"


class _BestParams:
  """The parameters of the best periodic evaluation (``config.select_best``).

  Kept in host memory and in ``<workdir>/best_params.npz`` (which also holds
  the value and step; ``best.json`` is a readable copy), so that a resumed run
  still knows its best step.
  """

  def __init__(self, spec: str, workdir: pathlib.Path, template: Params):
    self.name, self.mode = parse_select_best(spec)
    self._json = workdir / "best.json"
    self._npz = workdir / "best_params.npz"
    self.value, self.step, self.params = None, None, None
    if not self._npz.exists():
      return
    with np.load(self._npz) as data:
      if _RECORD in data.files:
        record = json.loads(str(data[_RECORD]))
      elif self._json.exists():  # written before the record moved into the npz
        record = json.loads(self._json.read_text())
      else:
        return
      leaves = [data[f"leaf_{i}"] for i in range(sum(f.startswith("leaf_") for f in data.files))]
    if record.get("name") == self.name:
      self.params = jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(template), leaves)
      self.value, self.step = record["value"], record["step"]

  def offer(self, step: int, results: Mapping[str, float], params: Params) -> None:
    if self.name not in results:
      raise ValueError(f"config.select_best names {self.name!r}, which the evaluation does "
                       f"not report; it reports {sorted(results)}")
    value = results[self.name]
    if self.value is not None and not (value < self.value if self.mode == "min"
                                       else value > self.value):
      return
    self.value, self.step, self.params = value, step, jax.device_get(params)
    if jax.process_index() == 0:
      # The record travels inside the npz, replaced atomically with the
      # parameters, so a crash can never pair new parameters with an old
      # value; best.json is a readable copy.
      record = json.dumps({"name": self.name, "value": value, "step": step})
      leaves = jax.tree_util.tree_leaves(self.params)
      partial = self._npz.with_name(self._npz.name + ".partial.npz")
      np.savez(partial, **{_RECORD: np.array(record)},
               **{f"leaf_{i}": np.asarray(leaf) for i, leaf in enumerate(leaves)})
      os.replace(partial, self._npz)
      partial_json = self._json.with_name(self._json.name + ".partial")
      partial_json.write_text(record)
      os.replace(partial_json, self._json)

  def params_like(self, reference: Params) -> Params:
    """The best parameters, placed as ``reference`` is (same shardings)."""
    return jax.tree_util.tree_map(lambda a, ref: jax.device_put(a, ref.sharding),
                                  self.params, reference)


def parse_stop_when(text: str) -> Optional[Callable[[Mapping[str, float]], bool]]:
  """``"validation/mse<0.001"`` -> a test on evaluation results; ``""`` -> None.

  Raises:
    ValueError: ``text`` is not ``<split>/<metric><value`` or ``...>value``.
  """
  if not text:
    return None
  for op in ("<", ">"):
    name, sep, value = text.partition(op)
    if sep:
      try:
        threshold = float(value)
      except ValueError:
        threshold = None
      if "/" in name and threshold is not None:

        def reached(results, name=name, op=op, threshold=threshold):
          if name not in results:
            raise ValueError(f"config.stop_when names {name!r}, which the evaluation does "
                             f"not report; it reports {sorted(results)}")
          return results[name] < threshold if op == "<" else results[name] > threshold

        return reached
  raise ValueError(f"config.stop_when must look like 'validation/mse<0.001' or "
                   f"'validation/accuracy>0.99', got {text!r}")


def restore_params(config, workdir: str | os.PathLike, init_params, init_carry=None
                   ) -> tuple[Params, int]:
  """Parameters of the newest valid checkpoint in ``workdir`` (for sampling, evaluation).

  ``init_params`` and ``init_carry`` are those of the run's ``Task``: they give
  the structure the checkpoint is restored into.

  Args:
    config: the config the run was trained with; its ``seed``, ``optimizer``,
      ``num_steps`` and ``batch_size`` rebuild the structure of the training
      state, and ``checkpoint_every`` and ``keep_checkpoints`` the checkpointer.
    workdir: the run's directory; checkpoints are read from
      ``<workdir>/checkpoints``.
    init_params: the ``Task``'s ``key -> params``.
    init_carry: the ``Task``'s ``(params, batch_size) -> carry``, or ``None``.

  Returns:
    ``(params, step)``: the restored parameters and the step they were saved at.

  Raises:
    FileNotFoundError: there is no checkpoint in ``workdir``.
  """
  optimizer = optim.make_optimizer(config.optimizer, config.num_steps)
  key_params, key_train = jax.random.split(jax.random.PRNGKey(config.seed))
  params = init_params(key_params)
  carry = None if init_carry is None else init_carry(params, config.batch_size)
  target = state_lib.create_train_state(params, optimizer, key_train, carry)
  directory = pathlib.Path(workdir) / "checkpoints"
  checkpointer = checkpoint_lib.Checkpointer(directory, save_every=config.checkpoint_every,
                                             keep=config.keep_checkpoints)
  try:
    restored = checkpointer.restore(target)
  finally:
    checkpointer.close()
  if restored is None:
    raise FileNotFoundError(f"no checkpoint in {directory}; train first with "
                            f"python -m experiments.train --workdir {workdir} ...")
  state, step = restored
  return state.params, step
