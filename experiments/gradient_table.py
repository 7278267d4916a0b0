r"""Pascanu, Mikolov & Bengio's (2013) pathological-tasks table: success rates per method and model.

For every task (``seqjax.data.pathological.TASKS``) and length T: the tanh RNN
trained by SGD, SGD + gradient clipping and SGD + clipping + the Omega
regulariser, and the LSTM, GRU, leaky-unit and delay-path RNNs trained by SGD +
clipping, each over ``--seeds`` seeds. Every run is exactly the
``experiments/configs/pathological.py:<task>,<T>,<model>,<method>,seed=<s>``
config (same initial parameters, same training batches, same held-out sets as
``python -m experiments.train`` would use) with a smaller budget: at most
``--budget_steps`` steps, stopped once its validation error (1,000 held-out
sequences, checked every ``--eval_every`` steps) is below 1%; it counts as
solved when its error on the test set (``--test_size`` held-out sequences,
10,000 as in the paper) is below 1% too.

Speed: the runs are trained in-process, not by ``experiments.train``: all
seeds (and, for the RNN, the sgd and clip methods, whose per-run clipping
threshold is an input of the step) of a (model, task, T) share one jitted step,
compiled once, that runs them one after the other (``lax.map``; on CPU this
measured faster than ``vmap``, whose batched small matmuls are slow), so a
cell of the table costs one compilation and one dispatch per step for all its
runs together. A run that
reached the target is frozen while the others go on; the group stops when all
are done, at ``--budget_steps``, or after ``--budget_minutes`` (per group).
The update is the config's optimiser written out (``keep_frozen(chain(
clip_by_global_norm(c), sgd(lr)))`` with c = inf for plain SGD, an update with
a non-finite loss or gradient skipped, as ``skip_nonfinite`` does).

Each group's results go to ``<workdir>/groups/<model>,<task>,<T>,<methods>.json``
as soon as it finishes, so an interrupted table resumes where it stopped, and
``--shard i/n`` splits the groups among n processes (one per core) that share
the workdir; the table is written from whatever groups are done.

  python -m experiments.gradient_table --workdir /tmp/gradient_table --estimate
  python -m experiments.gradient_table --workdir /tmp/gt --quick --out /tmp/gt/table.md

Default sizes, for ~30 minutes on 2 CPU cores: T in (50, 100, 200), all six
tasks, 5 seeds, 400 steps per run, validation every 100 steps, run as two
shards (one process per core):

  python -m experiments.gradient_table --workdir /tmp/gradient_table --shard 0/2 &
  python -m experiments.gradient_table --workdir /tmp/gradient_table --shard 1/2; wait
  python -m experiments.gradient_table --workdir /tmp/gradient_table \
      --out docs/gradient_table.md      # collects both shards' groups into the table

The estimate (``--estimate`` re-measures it on the machine at hand: one
20-step group of each kind at T = 50, scaled linearly in steps and T, with no
run stopping early, so an upper bound): 108 groups (18 task x T cells x 6
kinds), at 500 steps 62.5 CPU minutes (setup and compilation 11.4, training
45.4, validation 5.7), measured while another training job kept both cores
busy (load 4-6); at 400 steps ~52 CPU minutes, ~26 minutes of wall time on
two shards. CPU per step of a group at T = 50 (5 runs; the RNN's sgd + clip
group is 10): RNN 8-16 ms, RNN with Omega 18-24 ms, LSTM 20-24 ms, GRU 13-22 ms,
leaky 11 ms, delays 30-37 ms of CPU; random permutation (100 input channels)
costs ~1.6x the other tasks.

What is cut against the paper: the step budget (400 steps of batch 20 where
the reference allows 5 million, so the table shows which runs solve a task
*early*; most cells are expected at 0/5, and the median final validation error
printed beside each count shows the progress), the training on mixed lengths
50-200, the check on 10,000 sequences every 20 steps (here 1,000 every 100;
the 10,000-sequence test only confirms a run that passed), lengths above 200,
and the delay set (4 and 16 only). ``--budget_steps`` raises the budget
(time grows linearly: ~6 CPU s per step of the whole grid).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import pathlib
import statistics
import sys
import time
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments.configs import pathological as configs
from experiments.tasks import pathological as task_lib
from seqjax.data import pathological as data_lib
from seqjax.types import keep_frozen, trainable_mask

#: Table columns: (model, method); the tanh RNN with the three methods, the rest with clipping.
COLUMNS = (("rnn", "sgd"), ("rnn", "clip"), ("rnn", "clip_omega"),
           ("lstm", "clip"), ("gru", "clip"), ("leaky", "clip"), ("delayed", "clip"))
LABELS = {("rnn", "sgd"): "RNN SGD", ("rnn", "clip"): "RNN SGD+clip",
          ("rnn", "clip_omega"): "RNN SGD+clip+Ω", ("lstm", "clip"): "LSTM",
          ("gru", "clip"): "GRU", ("leaky", "clip"): "leaky", ("delayed", "clip"): "delays"}
DEFAULTS = dict(tasks=tuple(data_lib.TASKS), lengths=(50, 100, 200), seeds=5,
                budget_steps=400, budget_minutes=5.0, eval_every=100,
                validation_size=1000, test_size=10_000)
QUICK = dict(lengths=(12,), seeds=2, budget_steps=30, eval_every=10, validation_size=100,
             test_size=200)


def groups(models_methods, tasks, lengths) -> list[tuple[str, str, int, tuple[str, ...]]]:
  """``(model, task, T, methods)``: the runs that share one compiled step.

  Methods with Omega get a group of their own (their step computes it); the
  others of a model share one.
  """
  out = []
  for task in tasks:
    for length in lengths:
      for model in dict.fromkeys(m for m, _ in models_methods):
        methods = [meth for m, meth in models_methods if m == model]
        plain = tuple(m for m in methods if m != "clip_omega")
        for chunk in (plain, tuple(m for m in methods if m == "clip_omega")):
          if chunk:
            out.append((model, task, length, chunk))
  return out


def group_name(model: str, task: str, length: int, methods: tuple[str, ...]) -> str:
  return f"{model},{task},{length},{'+'.join(methods)}"


def lane_config(model: str, task: str, length: int, method: str, seed: int):
  return configs.get_config(f"{task},{length},{model},{method},seed={seed}")


def run_group(model: str, task: str, length: int, methods: tuple[str, ...],
              seeds: tuple[int, ...], *, budget_steps: int, budget_seconds: float,
              eval_every: int, validation_size: int, test_size: int,
              log: Callable[[str], Any] = print) -> list[dict]:
  """Trains every (method, seed) of one group together; one result dict per run."""
  started, started_cpu = time.monotonic(), time.process_time()
  lanes = [(method, seed) for method in methods for seed in seeds]
  lane_configs = [lane_config(model, task, length, m, s) for m, s in lanes]
  first = lane_configs[0]
  for c in lane_configs:
    task_lib.validate(c)
  built = task_lib.build_model(first)
  weights = [float(c.regularizer.omega_weight) for c in lane_configs]
  with_omega = any(weights)
  if with_omega and not all(weights):
    raise ValueError(f"group {group_name(model, task, length, methods)} mixes runs with and "
                     f"without Omega")
  clips = np.asarray([c.optimizer.clip_global_norm or np.inf for c in lane_configs], np.float32)
  learning_rate = first.optimizer.learning_rate
  batch_size = first.batch_size
  for c in lane_configs:
    if (c.optimizer.name, c.optimizer.momentum, c.optimizer.clip_value,
        c.optimizer.weight_decay, c.optimizer.schedule, c.optimizer.learning_rate,
        c.batch_size) != ("sgd", 0.0, 0.0, 0.0, "constant", learning_rate, batch_size):
      raise ValueError("the grid's update is plain SGD with global-norm clipping at one "
                       "learning rate and batch size; a config asks for something else")
  seed_index = np.asarray([seeds.index(s) for _, s in lanes])
  weight = jnp.asarray(weights, jnp.float32)

  # Initial parameters as experiments.train draws them (key_params of PRNGKey(seed)).
  params = [built.init(jax.random.split(jax.random.PRNGKey(c.seed))[0]) for c in lane_configs]
  params = jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *params)
  mask = trainable_mask(jax.tree_util.tree_map(lambda leaf: leaf[0], params))

  def update(p, inputs, targets, clip, w):
    if with_omega:
      grads, parts = jax.grad(lambda q: built.objective(q, inputs, targets, w),
                              has_aux=True)(p)
    else:
      grads, parts = jax.grad(lambda q: built.objective(q, inputs, targets, 0),
                              has_aux=True)(p)
    optimizer = keep_frozen(optax.chain(optax.clip_by_global_norm(clip),
                                        optax.sgd(learning_rate)))
    grads = jax.tree_util.tree_map(lambda g, t: g if t else jnp.zeros_like(g), grads, mask)
    norm = optax.tree.norm(grads)
    updates, _ = optimizer.update(grads, optimizer.init(p), p)
    finite = jnp.isfinite(norm) & jnp.isfinite(parts["loss"]) & jnp.isfinite(parts["omega"])
    new = optax.apply_updates(p, updates)
    return new, finite, parts["loss"]

  def lane_step(args):
    p, inputs, targets, clip, w, frozen = args
    new, finite, loss = update(p, inputs, targets, clip, w)
    keep = frozen | ~finite
    return jax.tree_util.tree_map(lambda a, b: jnp.where(keep, a, b), p, new), finite, loss

  # lax.map runs the lanes one after the other inside one compiled step: on CPU
  # this measured faster than vmap, whose batched small matmuls are slow.
  @jax.jit
  def train_step(params, done, inputs, targets):
    return jax.lax.map(lane_step, (params, inputs[seed_index], targets[seed_index],
                                   jnp.asarray(clips), weight, done))

  @jax.jit
  def wrong_counts(params, inputs, targets):
    return jax.lax.map(
        lambda p: task_lib.wrong_per_sequence(task, built.apply(p, inputs), targets).sum(),
        params)

  eval_batch = first.data.eval_batch_size

  def error_of(params, split, size):
    inputs, targets = task_lib.held_out(task, length, size, split)
    wrong = np.zeros(len(lanes))
    for start in range(0, size, eval_batch):
      wrong += np.asarray(wrong_counts(params, inputs[start:start + eval_batch],
                                       targets[start:start + eval_batch]))
    return wrong / size

  n = len(lanes)
  done = np.zeros(n, bool)
  stopped_at = np.full(n, -1)
  validation = np.full(n, np.nan)
  skipped = np.zeros(n, int)
  losses = np.full(n, np.nan)
  step = 0
  deadline = started + budget_seconds
  clock = _Clock()
  while step < budget_steps and not done.all():
    batches = [task_lib.train_data(task, length, batch_size, s, step) for s in seeds]
    inputs = np.stack([b[0] for b in batches])
    targets = np.stack([b[1] for b in batches])
    params, finite, loss = train_step(params, jnp.asarray(done), inputs, targets)
    step += 1
    if step == 1:  # setup and compilation, up to the end of the first step
      jax.block_until_ready(params)
      clock.mark("setup", started, started_cpu)
    skipped += ~np.asarray(finite) & ~done
    if step % eval_every == 0 or step == budget_steps or time.monotonic() > deadline:
      losses = np.where(done, losses, np.asarray(loss))
      with clock.phase("validation" if "first_validation" in clock.wall else "first_validation"):
        errors = error_of(params, "validation", validation_size)
      validation = np.where(done, validation, errors)
      reached = ~done & (errors < data_lib.SUCCESS_ERROR)
      stopped_at[reached] = step
      done |= reached
      log(f"  {group_name(model, task, length, methods)} step {step}: validation error "
          + " ".join(f"{100 * e:.1f}%" for e in validation))
      if time.monotonic() > deadline:
        break
  stopped_at[~done] = step
  test = np.full(n, np.nan)
  if done.any():
    with clock.phase("test"):
      test = np.where(done, error_of(params, "test", test_size), np.nan)
  clock.mark("total", started, started_cpu)
  timing = clock.summary(evaluations=int(np.ceil(step / eval_every)))
  results = []
  for i, ((method, seed), c) in enumerate(zip(lanes, lane_configs)):
    results.append(dict(
        model=model, task=task, length=length, method=method, seed=seed,
        solved=bool(done[i] and test[i] < data_lib.SUCCESS_ERROR),
        reached_validation=bool(done[i]), steps=int(stopped_at[i]),
        validation_error=float(validation[i]),
        test_error=None if math.isnan(test[i]) else float(test[i]),
        last_train_loss=None if math.isnan(losses[i]) else float(losses[i]),
        skipped_nonfinite=int(skipped[i]), budget_steps=budget_steps,
        group_steps=step, lanes=n, omega_weight=weights[i],
        clip=float(c.optimizer.clip_global_norm), **timing))
  return results


class _Clock:
  """Wall and process CPU seconds (all threads) of the phases of a group."""

  def __init__(self):
    self.wall: dict[str, float] = {}
    self.cpu: dict[str, float] = {}

  def mark(self, name: str, wall_start: float, cpu_start: float) -> None:
    self.wall[name] = self.wall.get(name, 0.0) + time.monotonic() - wall_start
    self.cpu[name] = self.cpu.get(name, 0.0) + time.process_time() - cpu_start

  @contextlib.contextmanager
  def phase(self, name: str):
    wall, cpu = time.monotonic(), time.process_time()
    yield
    self.mark(name, wall, cpu)

  def summary(self, evaluations: int) -> dict[str, float]:
    """``<phase>_seconds`` and ``<phase>_cpu``; train = total minus the others."""
    out = {}
    for kind, table in (("seconds", self.wall), ("cpu", self.cpu)):
      for name in ("setup", "first_validation", "validation", "test", "total"):
        out[f"{name}_{kind}"] = table.get(name, 0.0)
      out[f"train_{kind}"] = out[f"total_{kind}"] - sum(
          out[f"{name}_{kind}"] for name in ("setup", "first_validation", "validation", "test"))
    out["evaluations"] = evaluations
    return out


def _median(values) -> Optional[float]:
  return statistics.median(values) if values else None


def summarize(results: list[dict]) -> dict:
  """``{(model, method, task, T): (solved, runs, median steps of the solved runs, median
  validation error)}``."""
  cells: dict = {}
  for r in results:
    cells.setdefault((r["model"], r["method"], r["task"], r["length"]), []).append(r)
  return {k: (sum(r["solved"] for r in v), len(v),
              _median([r["steps"] for r in v if r["solved"]]),
              _median([r["validation_error"] for r in v]))
          for k, v in cells.items()}


def markdown(results: list[dict], columns=COLUMNS) -> str:
  """Rows task x T, columns (model, method): ``solved/runs`` and the median steps to solve."""
  cells = summarize(results)
  columns = [c for c in columns if any(k[:2] == c for k in cells)]
  rows = list(dict.fromkeys((r["task"], r["length"]) for r in results))
  order = {t: i for i, t in enumerate(data_lib.TASKS)}
  rows.sort(key=lambda tl: (order.get(tl[0], len(order)), tl[1]))
  budget = sorted({r["budget_steps"] for r in results})
  lines = ["| task | T | " + " | ".join(LABELS.get(c, f"{c[0]} {c[1]}") for c in columns) + " |",
           "|---|---:|" + "---:|" * len(columns)]
  for task, length in rows:
    cols = []
    for model, method in columns:
      cell = cells.get((model, method, task, length))
      if cell is None:
        cols.append("·")
        continue
      solved, runs, median, error = cell
      cols.append(f"{solved}/{runs}" + (f" ({median:.0f})" if median is not None else "")
                  + (f", {100 * error:.0f}%" if error is not None else ""))
    lines.append(f"| {task} | {length} | " + " | ".join(cols) + " |")
  lines.append("")
  lines.append(f"Solved runs / runs (median steps to solve), median final validation error. "
               f"Solved: error < "
               f"{100 * data_lib.SUCCESS_ERROR:g}% on the held-out test set after the "
               f"validation error fell below it; budget {', '.join(map(str, budget))} SGD "
               f"steps of batch {configs.BATCH}; '·': not run.")
  return "\n".join(lines) + "\n"


def _reusable(stored: dict, settings: dict) -> bool:
  """Whether a finished group's stored results are what ``settings`` would train.

  Every setting must match, except the time budget when it stopped nothing
  (each run either reached the target or trained its full step budget): the runs are
  seeded and step-budgeted, so a larger or smaller time budget gives the same
  results.
  """
  kept = stored["settings"]
  if any(kept[k] != settings[k] for k in kept if k != "budget_minutes"):
    return False
  stopped_by_time = any(not r["reached_validation"] and r["group_steps"] < r["budget_steps"]
                        for r in stored["results"])
  return not stopped_by_time or kept["budget_minutes"] == settings["budget_minutes"]


def _group_kind(model: str, methods: tuple[str, ...]) -> tuple[str, bool]:
  return model, "clip_omega" in methods


def measure(columns, tasks, length: int, *, steps: int = 20, eval_every: int = 10,
            seeds: int = 5, log=print) -> dict:
  """Times one short group of every kind (model, with Omega or not) and of every task.

  Returns ``{"kinds": {(model, omega): result row}, "tasks": {task: per-step CPU
  of the tanh RNN's first group on it / on tasks[0]}, "length": length}``; the
  rows hold the CPU seconds of each phase (``run_group``'s ``*_cpu``).
  """
  kinds, per_task = {}, {}
  validation_size = 1000
  seed_tuple = tuple(range(seeds))
  plan = groups(columns, tasks[:1], [length])
  for model, task, _, methods in plan:
    row = run_group(model, task, length, methods, seed_tuple, budget_steps=steps,
                    budget_seconds=math.inf, eval_every=eval_every,
                    validation_size=validation_size, test_size=validation_size,
                    log=lambda m: None)[0]
    kinds[_group_kind(model, methods)] = row
    log(f"  {group_name(model, task, length, methods)}: setup {row['setup_cpu']:.1f} s CPU, "
        f"{1000 * row['train_cpu'] / (steps - 1):.1f} ms CPU/step ({row['lanes']} runs), "
        f"validation {row['validation_cpu']:.2f} s CPU ({validation_size} sequences)")
  model, _, _, methods = plan[0]
  base = kinds[_group_kind(model, methods)]["train_cpu"]
  per_task[tasks[0]] = 1.0
  for task in tasks[1:]:
    if length < task_lib.MIN_LENGTH[task]:
      continue
    row = run_group(model, task, length, methods, seed_tuple, budget_steps=steps,
                    budget_seconds=math.inf, eval_every=steps, validation_size=validation_size,
                    test_size=validation_size, log=lambda m: None)[0]
    per_task[task] = row["train_cpu"] / base * task_lib.steps_of(tasks[0], length) / \
        task_lib.steps_of(task, length)
    log(f"  {task}: {per_task[task]:.2f} x the per-step cost of {tasks[0]} at equal steps")
  return {"kinds": kinds, "tasks": per_task, "length": length, "steps": steps}


def estimate(measured: dict, plan, *, budget_steps: int, eval_every: int,
             validation_size: int) -> dict:
  """Projected CPU seconds of ``plan`` if no run stops early (an upper bound).

  Per group: its kind's setup (compilation) + ``budget_steps`` steps + one
  validation every ``eval_every`` steps, the step and validation costs scaled
  linearly by the sequence's steps (T, or T + 10 for memorisation) and by the
  task's measured factor (the test set, evaluated only when a run solves, is
  left out).
  """
  t0 = measured["length"]
  totals = {"setup": 0.0, "train": 0.0, "validation": 0.0}
  for model, task, length, methods in plan:
    row = measured["kinds"][_group_kind(model, methods)]
    factor = measured["tasks"].get(task, max(measured["tasks"].values()))
    scale = factor * task_lib.steps_of(task, length) / t0
    per_step = row["train_cpu"] / (measured["steps"] - 1)
    evals = math.ceil(budget_steps / eval_every)
    compile_eval = max(row["first_validation_cpu"] - row["validation_cpu"], 0.0)
    totals["setup"] += row["setup_cpu"] + compile_eval
    totals["train"] += budget_steps * per_step * scale
    totals["validation"] += evals * row["validation_cpu"] * scale * validation_size / 1000
  totals["total"] = sum(totals.values())
  return totals


def _parse_list(text: str, kind=str):
  return tuple(kind(x) for x in text.split(",") if x)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--workdir", default="", help="Where group results are kept (required "
                      "unless --estimate).")
  parser.add_argument("--tasks", default=",".join(DEFAULTS["tasks"]))
  parser.add_argument("--lengths", default=None, help="Comma-separated T (default 50,100,200).")
  parser.add_argument("--seeds", type=int, default=None, help="Seeds per cell (default 5).")
  parser.add_argument("--columns", default="",
                      help="model:method pairs, e.g. rnn:sgd,lstm:clip (default all 7).")
  parser.add_argument("--budget_steps", type=int, default=None)
  parser.add_argument("--budget_minutes", type=float, default=None,
                      help="Wall-clock limit per group (all seeds of a cell together).")
  parser.add_argument("--eval_every", type=int, default=None)
  parser.add_argument("--validation_size", type=int, default=None)
  parser.add_argument("--test_size", type=int, default=None)
  parser.add_argument("--quick", action="store_true", help="Tiny smoke sizes.")
  parser.add_argument("--shard", default="0/1", help="i/n: run every n-th group from i.")
  parser.add_argument("--estimate", action="store_true",
                      help="Time a short group of every kind at the smallest T and print the "
                           "projected time of the grid; trains nothing else.")
  parser.add_argument("--rerun", action="store_true", help="Retrain finished groups.")
  parser.add_argument("--out", default="", help="Markdown file (default <workdir>/table.md).")
  args = parser.parse_args(argv)

  settings = dict(DEFAULTS, **(QUICK if args.quick else {}))
  for field in ("budget_steps", "budget_minutes", "eval_every", "validation_size", "test_size",
                "seeds"):
    if getattr(args, field) is not None:
      settings[field] = getattr(args, field)
  tasks = _parse_list(args.tasks)
  lengths = _parse_list(args.lengths, int) if args.lengths else settings["lengths"]
  columns = (tuple(tuple(c.split(":")) for c in args.columns.split(",") if c)
             if args.columns else COLUMNS)
  bad = [t for t in tasks if t not in data_lib.TASKS]
  if bad:
    parser.error(f"--tasks must be among {tuple(data_lib.TASKS)}, got {bad}")
  bad = [c for c in columns if len(c) != 2 or c[0] not in configs.MODELS
         or c[1] not in configs.METHODS]
  if bad:
    parser.error(f"--columns must be model:method with model in {configs.MODELS} and method "
                 f"in {configs.METHODS}, got {bad}")
  for field in ("seeds", "budget_steps", "eval_every", "validation_size", "test_size"):
    if settings[field] <= 0:
      parser.error(f"--{field} must be > 0, got {settings[field]}")
  try:
    shard, shards = (int(x) for x in args.shard.split("/"))
    assert 0 <= shard < shards
  except (ValueError, AssertionError):
    parser.error(f"--shard must be i/n with 0 <= i < n, got {args.shard!r}")
  for task in tasks:
    for length in lengths:
      if length < task_lib.MIN_LENGTH[task]:
        parser.error(f"--lengths: {task} needs T >= {task_lib.MIN_LENGTH[task]}, got {length}")

  seeds = tuple(range(settings["seeds"]))
  plan = groups(columns, tasks, lengths)
  if args.estimate:
    length = max(min(lengths), max(task_lib.MIN_LENGTH[t] for t in tasks))
    print(f"timing one 20-step group of each kind at T={length} "
          f"({settings['seeds']} seeds):", flush=True)
    measured = measure(columns, tasks, length, seeds=settings["seeds"])
    totals = estimate(measured, plan, budget_steps=settings["budget_steps"],
                      eval_every=settings["eval_every"],
                      validation_size=settings["validation_size"])
    print(f"{len(plan)} groups, {settings['budget_steps']} steps each, no early stops: "
          + ", ".join(f"{k} {v / 60:.1f}" for k, v in totals.items())
          + f" CPU minutes; about {totals['total'] / 60 / shards:.1f} minutes of wall time "
            f"with {shards} shard(s), one core each")
    return 0
  if not args.workdir:
    parser.error("--workdir is required")
  root = pathlib.Path(args.workdir)
  (root / "groups").mkdir(parents=True, exist_ok=True)
  results = []
  blocks = list(dict.fromkeys((task, length) for _, task, length, _ in plan))
  for index, (model, task, length, methods) in enumerate(plan):
    path = root / "groups" / f"{group_name(model, task, length, methods)}.json"
    # Rotated by the (task, T) block, so every shard gets its share of each kind.
    mine = (index + blocks.index((task, length))) % shards == shard
    if path.exists() and not args.rerun:
      stored = json.loads(path.read_text())
      if _reusable(stored, settings):
        results += stored["results"]
        continue
    if not mine:
      continue
    print(f"[{index + 1}/{len(plan)}] {group_name(model, task, length, methods)}", flush=True)
    group = run_group(model, task, length, methods, seeds,
                      budget_steps=settings["budget_steps"],
                      budget_seconds=60 * settings["budget_minutes"],
                      eval_every=settings["eval_every"],
                      validation_size=settings["validation_size"],
                      test_size=settings["test_size"], log=lambda m: print(m, flush=True))
    kept = {k: settings[k] for k in ("seeds", "budget_steps", "budget_minutes", "eval_every",
                                      "validation_size", "test_size")}
    path.write_text(json.dumps({"settings": kept, "results": group}, indent=1))
    print(f"  {sum(r['solved'] for r in group)}/{len(group)} solved in "
          f"{group[0]['total_seconds']:.0f} s (setup and compilation "
          f"{group[0]['setup_seconds']:.1f} s)",
          flush=True)
    results += group
  table = markdown(results, columns)
  out = pathlib.Path(args.out) if args.out else root / "table.md"
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(table)
  (root / "results.json").write_text(json.dumps(results, indent=1))
  print(table)
  finished = {(r["model"], r["task"], r["length"], r["method"]) for r in results}
  missing = sum(not all((m, t, l, meth) in finished for meth in ms) for m, t, l, ms in plan)
  print(f"written to {out} and {root / 'results.json'}"
        + (f"; {missing} group(s) not done yet (other shards?)" if missing > 0 else ""))
  return 0


if __name__ == "__main__":
  sys.exit(main())
