r"""Figures and tables of the memory-network runs: learning curves, generalisation, weightings.

Reads finished ``experiments.train`` runs of ``experiments/configs/algorithmic.py``
(any of NTM, DNC, LSTM on one task) and writes into ``--out_dir``:

  learning_curves.png   validation bit errors per sequence against training steps
  generalisation.md     bit errors per sequence at every test length, per model
  generalisation.png    the same as lines, and targets beside each model's outputs
                        for one long sequence
  weightings.png        the write and read weightings of every memory model over
                        one copy (the NTM paper's Figure 6)

  python -m experiments.memory_figures --runs ntm=/tmp/alg/copy_ntm,lstm=/tmp/alg/copy_lstm \
      --out_dir docs/figures/memory
"""

from __future__ import annotations

import json
import pathlib
import sys

import ml_collections
import numpy as np
from absl import app, flags, logging

from experiments.tasks import algorithmic
from seqjax import cells
from seqjax.train.loop import restore_params
from seqjax.train.metrics import read_metrics

flags.DEFINE_list("runs", None, "name=workdir pairs of finished algorithmic runs", required=True)
flags.DEFINE_string("out_dir", None, "Where the figures and the table go.", required=True)
flags.DEFINE_list("lengths", [], "Test lengths (default: the first run's test_lengths).")
flags.DEFINE_integer("test_size", 100, "Sequences per test length.")
flags.DEFINE_integer("picture_length", 40, "Sequence length of the outputs picture.")


def load_run(workdir: pathlib.Path):
  """(config, model, params, step) of the run in ``workdir``."""
  config_path = workdir / "config.json"
  if not config_path.exists():
    raise FileNotFoundError(f"{config_path} not found: is {workdir} an experiments.train workdir?")
  config = ml_collections.ConfigDict(json.loads(config_path.read_text()))
  if config.task != "algorithmic":
    raise ValueError(f"--runs must name algorithmic runs, {workdir} is a {config.task!r} run")
  model = algorithmic.build_model(config)
  params, step = restore_params(config, workdir, model.init)
  return config, model, params, step


def learning_curves(runs: dict, path: pathlib.Path) -> None:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(6.4, 4.2))
  for name, run in runs.items():
    records = [r for r in read_metrics(run["workdir"], deduplicate=True)
               if r["split"] == "validation" and "bit_errors" in r]
    minutes = run["final"].get("train_seconds", float("nan")) / 60
    ax.plot([r["step"] for r in records], [max(r["bit_errors"], 1e-2) for r in records],
            label=f"{name} ({minutes:.0f} min)")
  ax.set_yscale("log")
  ax.set_xscale("log")   # the memory models learn in thousands of steps, the LSTM runs 50,000
  ax.set_xlabel("training step (batch 32)")
  ax.set_ylabel("validation bit errors per sequence")
  ax.axhline(0.1, color="gray", lw=0.8, ls=":")
  ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def generalisation(runs: dict, lengths: list[int], size: int, out: pathlib.Path,
                   picture_length: int) -> str:
  import jax
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  errors = {name: algorithmic.generalisation(run["config"], run["model"], run["params"],
                                             lengths, size)
            for name, run in runs.items()}
  head = "| model | " + " | ".join(f"length {n}" for n in lengths) + " |"
  lines = [head, "|" + "---|" * (len(lengths) + 1)]
  for name, row in errors.items():
    lines.append(f"| {name} | " + " | ".join(f"{row[n]:.2f}" for n in lengths) + " |")
  table = "\n".join(lines)

  first = next(iter(runs.values()))
  batch = algorithmic.make_batch(first["config"].data, np.random.default_rng(11), 1,
                                 min_length=picture_length, max_length=picture_length)
  n = int(batch.mask[0].sum())
  fig, axes = plt.subplots(len(runs) + 2, 1, figsize=(10, 1.6 * (len(runs) + 2)),
                           gridspec_kw={"hspace": 1.0})
  for name, row in errors.items():
    axes[0].plot(lengths, [row[k] for k in lengths], marker="o", label=name)
  axes[0].set_xlabel("sequence length")
  axes[0].set_ylabel("bit errors")
  axes[0].legend(fontsize=7)
  axes[1].imshow(batch.targets[0, :n].T, aspect="auto", cmap="gray_r", interpolation="nearest")
  axes[1].set_title(f"targets, length {picture_length}", fontsize=9)
  for ax, (name, run) in zip(axes[2:], runs.items()):
    logits = run["model"].apply(run["params"], batch.inputs, mask=batch.mask)[1][0, :n]
    ax.imshow(np.asarray(jax.nn.sigmoid(logits)).T * batch.loss_mask[0, :n], aspect="auto",
              cmap="gray_r", interpolation="nearest", vmin=0, vmax=1)
    ax.set_title(f"{name} outputs", fontsize=9)
  for ax in axes[1:]:
    ax.set_yticks([])
  fig.savefig(out, dpi=110, bbox_inches="tight")
  plt.close(fig)
  return table


def weightings(runs: dict, path: pathlib.Path, length: int = 20) -> bool:
  """Write/read weightings of every run whose body is an NTM or DNC; False if there is none.

  The body of an algorithmic run is one recurrent layer of that cell
  (``params["body"]["layer_0"]``), rebuilt here from the run's config.
  """
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  from seqjax.scan import trace
  memory_runs = {k: r for k, r in runs.items() if r["config"].model.cell in ("ntm", "dnc")}
  if not memory_runs:
    return False
  fig, axes = plt.subplots(len(memory_runs), 2, figsize=(9, 3.4 * len(memory_runs)),
                           squeeze=False)
  for row, (name, run) in zip(axes, memory_runs.items()):
    batch = algorithmic.make_batch(run["config"].data, np.random.default_rng(5), 1,
                                   min_length=length, max_length=length)
    n = int(batch.mask[0].sum())
    model = run["config"].model
    cell = getattr(cells, model.cell)(model.hidden_size, **dict(model.cell_options))
    _, _, carries = trace(cell, run["params"]["body"]["layer_0"], batch.inputs[0, :n])
    write = np.asarray(carries.write_weights).reshape(n, -1, carries.memory.shape[-2])[:, 0]
    read = np.asarray(carries.read_weights)[:, 0]
    used = np.nonzero((write.max(0) > 0.05) | (read.max(0) > 0.05))[0]
    lo, hi = (used.min(), used.max() + 1) if len(used) else (0, write.shape[1])
    for ax, image, title in ((row[0], write, "write weighting"), (row[1], read, "read weighting")):
      ax.imshow(image[:, lo:hi].T, aspect="auto", cmap="gray_r", interpolation="nearest",
                extent=(-0.5, n - 0.5, hi - 0.5, lo - 0.5))
      ax.set_title(f"{name}: {title}", fontsize=9)
      ax.set_xlabel("time step")
      ax.set_ylabel("memory slot")
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return True


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)   # orbax logs every restore
  f = flags.FLAGS
  runs = {}
  for item in f.runs:
    if "=" not in item:
      sys.exit(f"error: --runs must hold name=workdir pairs, got {item!r}")
    name, workdir = item.split("=", 1)
    try:
      config, model, params, step = load_run(pathlib.Path(workdir))
    except (FileNotFoundError, ValueError) as error:
      sys.exit(f"error: {error}")
    final_path = pathlib.Path(workdir) / "final.json"
    final = json.loads(final_path.read_text()) if final_path.exists() else {}
    runs[name] = dict(config=config, model=model, params=params, step=step,
                      workdir=workdir, final=final)
  tasks = {run["config"].data.task for run in runs.values()}
  if len(tasks) > 1:
    sys.exit(f"error: --runs must all be runs of one task, got {sorted(tasks)}")
  first = next(iter(runs.values()))["config"]
  lengths = [int(n) for n in f.lengths] or list(first.data.test_lengths)
  out = pathlib.Path(f.out_dir)
  out.mkdir(parents=True, exist_ok=True)
  learning_curves(runs, out / "learning_curves.png")
  table = generalisation(runs, lengths, f.test_size, out / "generalisation.png",
                         f.picture_length)
  (out / "generalisation.md").write_text(table + "\n")
  print(table)
  for name, run in runs.items():
    final = run["final"]
    print(f"{name}: step {run['step']}, {final.get('train_seconds', float('nan')) / 60:.1f} "
          f"training minutes, test bit errors {final.get('metrics', {}).get('test/bit_errors')}")
  if weightings(runs, out / "weightings.png"):
    print(f"wrote {out / 'weightings.png'}")


if __name__ == "__main__":
  app.run(main)
