r"""Trains every text classifier on every data set and writes the classification table.

Rows: bags of embeddings of depth 0/1/2, fastText's bigram model, the depth-0
bag started from word2vec vectors (frozen and fine-tuned), and 1- and 2-layer
bidirectional GRUs and LSTMs (random and word2vec embeddings). Columns: IMDB,
Rotten Tomatoes and BBC news test accuracy, each with its training minutes on
this machine. Each cell is one ``experiments.train`` run of
``experiments/configs/text_classification.py:<dataset>,<row>`` in
``<workdir>/text_classification/<dataset>,<row>`` (a finished run is reused;
an interrupted one resumes), tested at its best validation accuracy.

  python -m experiments.text_table --workdir /tmp/text_table \
      --vectors /tmp/w2v/sg_seqjax.txt --png docs/figures/text_classification.png

Rows needing vectors are skipped without ``--vectors`` (a word2vec text file,
e.g. written by ``benchmarks/word2vec_vs_gensim.py --save_dir``).

``--json`` keeps every cell's result (test accuracy, training seconds, steps)
in a small file; with ``--merge`` such a file's cells are taken as they are
(not trained again) wherever this workdir has no finished run, so a table
measured in parts, on machines whose workdirs did not survive, is completed by
training only what it lacks (``docs/figures/text_classification.json`` is the
results document's).
"""

from __future__ import annotations

import json
import pathlib
import sys

from absl import app, flags

from experiments.configs.text_classification import DATASETS
from experiments.table import run_pair

#: (row label, config model, embedding start): the table's rows, in order.
ROWS = (
    ("BoW mean, depth 0", "bow0", ""),
    ("BoW mean, depth 1", "bow1", ""),
    ("BoW mean, depth 2", "bow2", ""),
    ("fastText bigrams", "fasttext", ""),
    ("BoW, word2vec frozen", "bow0", "w2v_frozen"),
    ("BoW, word2vec fine-tuned", "bow0", "w2v"),
    ("BiGRU x1", "gru1", ""),
    ("BiGRU x2", "gru2", ""),
    ("BiLSTM x1", "lstm1", ""),
    ("BiLSTM x2", "lstm2", ""),
    ("BiGRU x2, word2vec", "gru2", "w2v"),
    ("BiLSTM x2, word2vec", "lstm2", "w2v"),
)
NAMES = {"imdb": "IMDB", "rt": "Rotten Tomatoes", "bbc": "BBC news"}


def define_flags():
  flags.DEFINE_string("workdir", None, "Root folder of the runs.", required=True)
  flags.DEFINE_string("vectors", "", "word2vec text file for the word2vec rows.")
  flags.DEFINE_list("datasets", list(DATASETS), "Columns: any of imdb, rt, bbc.")
  flags.DEFINE_list("rows", [], "Row models to run (e.g. bow0,fasttext); default all.")
  flags.DEFINE_float("budget_minutes", 20.0, "Training-time limit of each run.")
  flags.DEFINE_bool("quick", False, "Smoke runs (the configs' quick variants).")
  flags.DEFINE_bool("collect_only", False, "Train nothing; tabulate finished runs.")
  flags.DEFINE_string("png", "", "Write a bar chart of the test accuracies here.")
  flags.DEFINE_string("out", "", "Also write the markdown table to this file.")
  flags.DEFINE_string("json", "", "Write every cell's result (accuracy, seconds, steps) here.")
  flags.DEFINE_string("merge", "", "Take this --json file's cells instead of training them.")


def compact(result: dict) -> dict:
  """What the table needs of a run's ``final.json``: accuracy, seconds and steps."""
  keep = {"metrics": {"test/accuracy": result["metrics"]["test/accuracy"]},
          "train_seconds": result["train_seconds"]}
  keep.update({k: result[k] for k in ("step", "num_steps") if k in result})
  return keep


def markdown(rows: list[tuple[str, dict]], datasets: list[str]) -> str:
  """The table: one line per row, accuracy (minutes) per data set."""
  head = "| model | " + " | ".join(f"{NAMES[d]} test acc. (min)" for d in datasets) + " |"
  lines = [head, "|" + "---|" * (len(datasets) + 1)]
  for label, results in rows:
    cells = []
    for d in datasets:
      r = results.get(d)
      if not r or "metrics" not in r:
        cells.append("n/a" if r is None else "not run" if r.get("missing") else "failed")
        continue
      cut = "" if r.get("step") == r.get("num_steps") else f", {r['step']}/{r['num_steps']} steps"
      cells.append(f"{100 * r['metrics']['test/accuracy']:.1f}% "
                   f"({r['train_seconds'] / 60:.1f}{cut})")
    lines.append(f"| {label} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def bar_chart(rows: list[tuple[str, dict]], datasets: list[str], path: str) -> None:
  """Grouped bars: test accuracy of every row on every data set."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  import numpy as np

  fig, axes = plt.subplots(1, len(datasets), figsize=(4.2 * len(datasets), 4.8), sharey=False)
  axes = np.atleast_1d(axes)
  for ax, d in zip(axes, datasets):
    labels, values = [], []
    for label, results in rows:
      r = results.get(d)
      if r and "metrics" in r:
        labels.append(label)
        values.append(100 * r["metrics"]["test/accuracy"])
    y = np.arange(len(values))
    ax.barh(y, values, color=["tab:blue" if "Bi" not in l else "tab:orange" for l in labels])
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    if values:
      ax.set_xlim(min(values) - 3, min(100, max(values) + 2))
    for yi, v in zip(y, values):
      ax.text(v, yi, f" {v:.1f}", va="center", fontsize=7)
    ax.set_title(NAMES[d])
    ax.set_xlabel("test accuracy (%)")
  fig.tight_layout()
  pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(path, dpi=120)


def main(argv):
  del argv
  f = flags.FLAGS
  unknown = [d for d in f.datasets if d not in DATASETS]
  if unknown:
    sys.exit(f"error: --datasets must name {sorted(DATASETS)}, got {unknown}")
  known = {model for _, model, _ in ROWS}
  if set(f.rows) - known:
    sys.exit(f"error: --rows must name {sorted(known)}, got {sorted(set(f.rows) - known)}")
  if f.vectors and not pathlib.Path(f.vectors).is_file():
    sys.exit(f"error: --vectors must be a word2vec text file, got {f.vectors!r}")
  merged = {}
  if f.merge:
    try:
      merged = json.loads(pathlib.Path(f.merge).read_text())["cells"]
    except (OSError, ValueError, KeyError) as e:
      sys.exit(f"error: --merge must be a JSON file written by --json, got {f.merge!r} ({e})")
  root = pathlib.Path(f.workdir)
  table, cells = [], {}
  for label, model, init in ROWS:
    if f.rows and model not in f.rows:
      continue
    if init and not f.vectors and not f.collect_only:
      print(f"{label}: skipped (needs --vectors)")
      continue
    results = {}
    for d in f.datasets:
      variant = ",".join(x for x in (d, model, init) if x)
      overrides = [f"model.pretrained={pathlib.Path(f.vectors).resolve()}"] if init else []
      results[d] = run_pair("text_classification", variant, root=root,
                            budget=f.budget_minutes, quick=f.quick, overrides=overrides,
                            rerun=False, collect_only=f.collect_only or variant in merged)
      if "metrics" in results[d]:
        results[d] = cells[variant] = compact(results[d])
      elif variant in merged:
        print(f"{variant}: from {f.merge}")
        results[d] = cells[variant] = merged[variant]
    table.append((label, results))
  text = markdown(table, f.datasets)
  print(text)
  if f.out:
    pathlib.Path(f.out).write_text(text + "\n")
  if f.json:
    pathlib.Path(f.json).write_text(json.dumps({"cells": cells}, indent=1) + "\n")
  if f.png:
    bar_chart(table, f.datasets, f.png)


if __name__ == "__main__":
  define_flags()
  app.run(main)
