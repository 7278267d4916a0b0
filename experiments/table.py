r"""Runs the TCN-vs-RNN comparison of Bai, Kolter & Koltun (2018) and writes its table.

Each selected (task, model) pair is trained by ``experiments.train`` in a
process of its own, within a time budget, in ``<workdir>/<task>/<model>``; the
results are read back from each run's ``final.json`` and printed as a markdown
table beside the paper's Table 1, with parameter counts, steps trained (of the
config's full schedule), training time, and whether the run completed its
schedule, reached its target or was cut by the budget.

  python -m experiments.table --tasks adding,copy_memory --models tcn,gru,lstm,rnn \
      --budget-minutes 20 --workdir /tmp/table
  python -m experiments.table --tasks mnist --models tcn --budget-minutes 60 \
      --workdir /tmp/table --set stop_when=validation/accuracy>0.99

A pair whose workdir already holds a finished run (``final.json``) is not
trained again unless ``--rerun`` is given (a rerun resumes from its checkpoint
and trains for another budget); so runs launched by hand with
``experiments.train --workdir <workdir>/<task>/<model>`` join the table.
Tasks: the config files ``experiments/configs/<task>.py`` with an entry in
``PAPER`` below, which holds the paper's reference numbers (adding,
copy_memory, mnist, pmnist, music, lm_shakespeare, lm_wiki_bytes,
lm_bbc_words).
"""

from __future__ import annotations

import importlib
import json
import math
import pathlib
import subprocess
import sys
import time

from absl import app, flags

from experiments import tasks as tasks_lib
from experiments.configs.common import MODELS

#: Bai, Kolter & Koltun (2018), Table 1 (https://arxiv.org/abs/1803.01271):
#: per task (a config file of experiments/configs/), the model-size budget,
#: the metric (a key of the run's test metrics), whether higher is better, the
#: published result of each model, and the setting ours stands in for.
PAPER = {
    "adding": dict(size=70_000, metric="mse", higher=False,
                   results=dict(lstm=0.164, gru=5.3e-5, rnn=0.177, tcn=5.8e-5),
                   setting="T=600"),
    "copy_memory": dict(size=16_000, metric="loss", higher=False,
                        results=dict(lstm=0.0204, gru=0.0197, rnn=0.0202, tcn=3.5e-5),
                        setting="T=1000"),
    "mnist": dict(size=70_000, metric="accuracy", higher=True,
                  results=dict(lstm=0.872, gru=0.962, rnn=0.215, tcn=0.990),
                  setting="sequential"),
    "pmnist": dict(size=70_000, metric="accuracy", higher=True,
                   results=dict(lstm=0.857, gru=0.873, rnn=0.253, tcn=0.972),
                   setting="permuted"),
    "music": dict(size=300_000, metric="nll", higher=False,
                  results=dict(lstm=8.45, gru=8.43, rnn=8.91, tcn=8.10),
                  setting="JSB stand-in: Bach chorales"),
    "lm_shakespeare": dict(size=3_000_000, metric="bpc", higher=False,
                           results=dict(lstm=1.36, gru=1.37, rnn=1.48, tcn=1.31),
                           setting="char PTB stand-in: Shakespeare"),
    "lm_wiki_bytes": dict(size=5_000_000, metric="bpc", higher=False,
                          results=dict(lstm=1.50, gru=1.53, rnn=1.69, tcn=1.45),
                          setting="text8 stand-in: Wikipedia bytes"),
    "lm_bbc_words": dict(size=13_000_000, metric="perplexity", higher=False,
                         results=dict(lstm=78.93, gru=92.48, rnn=114.50, tcn=88.68),
                         setting="word PTB stand-in: BBC news"),
}


def config_of(task: str, model: str, quick: bool):
  module = importlib.import_module(f"experiments.configs.{task}")
  return module.get_config(model + (",quick" if quick else ""))


def run_pair(task: str, model: str, *, root: pathlib.Path, budget: float, quick: bool,
             overrides: list[str], rerun: bool, collect_only: bool = False, log=print) -> dict:
  """Trains one pair unless it already finished; returns its ``final.json`` plus wall time.

  A run stopped by a signal is not finished: it is resumed. With
  ``collect_only`` nothing is trained: a pair without a finished run gives
  ``{"missing": True}``.
  """
  workdir = root / task / model
  final_path = workdir / "final.json"
  previous = json.loads(final_path.read_text()) if final_path.exists() else None
  interrupted = previous is not None and previous["stopped_by"] in ("SIGTERM", "SIGINT")
  if previous is not None and not interrupted and not rerun:
    log(f"{task}/{model}: using the finished run in {workdir}")
    return previous
  if collect_only:
    return {"missing": True}
  command = [sys.executable, "-m", "experiments.train",
             f"--config=experiments/configs/{task}.py:{model}" + (",quick" if quick else ""),
             f"--workdir={workdir}", f"--config.time_limit_minutes={budget}"]
  command += [f"--config.{item}" for item in overrides]
  log(f"{task}/{model}: " + " ".join(command[1:]))
  started = time.monotonic()
  workdir.mkdir(parents=True, exist_ok=True)
  with open(workdir / "train.log", "a") as output:
    code = subprocess.call(command, stdout=output, stderr=subprocess.STDOUT,
                           cwd=pathlib.Path(__file__).resolve().parent.parent)
  if code != 0 or not final_path.exists():
    log(f"{task}/{model}: failed with exit code {code}; see {workdir / 'train.log'}")
    return {"failed": code}
  result = json.loads(final_path.read_text())
  result["wall_seconds"] = time.monotonic() - started
  return result


def _format(value: float) -> str:
  if value is None or (isinstance(value, float) and math.isnan(value)):
    return "-"
  if abs(value) >= 1 or value == 0:
    return f"{value:.3f}"
  return f"{value:.3g}" if abs(value) >= 1e-3 else f"{value:.2e}"


def _count(n) -> str:
  if n is None:
    return "-"
  return f"{n / 1e6:.1f}M" if n >= 1_000_000 else f"{n:,}" if n < 100_000 else f"{n // 1000}K"


def _status(result: dict) -> str:
  if "missing" in result:
    return "not run yet"
  if "failed" in result:
    return "failed"
  if result["stopped_by"] == "the target":
    return "stopped at target"
  if result["step"] >= result["num_steps"]:
    return "complete schedule"
  return f"cut by budget ({100 * result['step'] / result['num_steps']:.0f}% of schedule)"


def markdown_table(rows: list[dict], quick: bool = False) -> str:
  """Rows of ``{task, model, result, baseline}`` as a markdown table.

  ``quick`` marks every row as a smoke run (its task's quick variant, not the
  paper's setting).
  """
  lines = ["| task | model | params | ours (test) | paper | baseline | steps | train time | run |",
           "|---|---|---|---|---|---|---|---|---|"]
  for row in rows:
    paper = PAPER[row["task"]]
    result = row["result"]
    metric = f"test/{paper['metric']}"
    ours = result.get("metrics", {}).get(metric)
    name, value = row["baseline"]
    lines.append(
        f"| {row['task']} ({paper['setting']}{', quick variant' if quick else ''}) | "
        f"{row['model']} | "
        f"{_count(result.get('num_params'))} / ~{_count(paper['size'])} | "
        f"{paper['metric']} {_format(ours)} | {_format(paper['results'][row['model']])} | "
        f"{_format(value)} ({name}) | "
        + (f"{result['step']:,} / {result['num_steps']:,} | "
           f"{result['train_seconds'] / 60:.1f} min | " if "step" in result else "- | - | ")
        + f"{_status(result)} |")
  return "\n".join(lines) + "\n"


def define_flags() -> None:
  """The command line (defined on demand, so that importing this module defines no flags)."""
  global _TASKS, _MODELS, _BUDGET, _WORKDIR, _QUICK, _RERUN, _COLLECT, _SET, _OUTPUT
  _TASKS = flags.DEFINE_list("tasks", ["adding", "copy_memory"], f"Tasks among {sorted(PAPER)}.")
  _MODELS = flags.DEFINE_list("models", list(MODELS), f"Models among {MODELS}.")
  _BUDGET = flags.DEFINE_float("budget_minutes", 20.0,
                               "Training-time budget of each (task, model) run, in minutes.")
  _WORKDIR = flags.DEFINE_string("workdir", None, "Root of the runs' workdirs.")
  _QUICK = flags.DEFINE_bool("quick", False, "Use each config's quick variant (a smoke test).")
  _RERUN = flags.DEFINE_bool("rerun", False, "Train pairs that already have a final.json.")
  _COLLECT = flags.DEFINE_bool("collect_only", False,
                               "Train nothing: tabulate the finished runs, mark the rest.")
  _SET = flags.DEFINE_multi_string("set", [], "Config overrides for every run, e.g. "
                                   "--set stop_when=validation/mse<0.001.")
  _OUTPUT = flags.DEFINE_string("output", "", "Markdown file to write; default <workdir>/table.md.")
  flags.mark_flags_as_required(["workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  for task in _TASKS.value:
    if task not in PAPER:
      sys.exit(f"error: --tasks must be among {sorted(PAPER)}, got {task!r}")
  for model in _MODELS.value:
    if model not in MODELS:
      sys.exit(f"error: --models must be among {MODELS}, got {model!r}")
  if _BUDGET.value <= 0:
    sys.exit(f"error: --budget_minutes must be > 0, got {_BUDGET.value}")
  root = pathlib.Path(_WORKDIR.value)
  rows = []
  for task in _TASKS.value:
    for model in _MODELS.value:
      config = config_of(task, model, _QUICK.value)
      result = run_pair(task, model, root=root, budget=_BUDGET.value, quick=_QUICK.value,
                        overrides=_SET.value, rerun=_RERUN.value,
                        collect_only=_COLLECT.value)
      rows.append({"task": task, "model": model, "result": result,
                   "baseline": tasks_lib.TASKS[config.task].baseline(config)})
  table = markdown_table(rows, quick=_QUICK.value)
  output = pathlib.Path(_OUTPUT.value) if _OUTPUT.value else root / "table.md"
  output.write_text(table)
  print(table)
  print(f"written to {output}")


if __name__ == "__main__":
  define_flags()
  app.run(main)
