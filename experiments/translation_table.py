r"""Trains the Spanish -> English models and writes the BLEU table and its pictures.

Rows: no attention (Sutskever-style, reversed source), additive attention,
dot attention (equal parameter counts, equal time budget), then the additive
model trained with scheduled sampling (linear, exponential, inverse-sigmoid
decays). Columns: test BLEU greedy and beam 5, training minutes, parameters,
sentences per second decoded. Each row is one ``experiments.train`` run of
``experiments/configs/translation.py:bible,<row>`` in
``<workdir>/translation/bible,<row>`` (a finished run is reused, an
interrupted one resumes).

  python -m experiments.translation_table --workdir /tmp/translation_table \
      --png_length docs/figures/translation_bleu_by_length.png \
      --png_attention docs/figures/translation_attention.png

On a machine shared with other jobs a time budget buys unequal work; the
scheduled-sampling comparison therefore runs its rows (teacher forcing
included) for a fixed number of steps in a folder of its own::

  python -m experiments.translation_table --workdir /tmp/translation_ss \
      --rows additive,ss_linear,ss_exp,ss_sigmoid --num_steps 700 --budget_minutes 60

``--png_length``: BLEU against source length (Bahdanau et al. 2014, Fig. 2):
the test verses cut into source-length buckets, corpus BLEU of each bucket,
one curve per model (greedy and beam). ``--png_attention``: the additive
model's attention heatmaps (its run's ``attention.png``).
"""

from __future__ import annotations

import csv
import json
import pathlib
import shutil
import sys

from absl import app, flags

from experiments.table import run_pair
from experiments.tasks.translation import corpus_bleu

#: (label, row name, variant after "bible,"): the table's rows, in order.
ROWS = (
    ("no attention (reversed source)", "none", "none"),
    ("additive attention", "additive", "additive"),
    ("dot attention", "dot", "dot"),
    ("additive, scheduled sampling (linear)", "ss_linear", "additive,ss_linear"),
    ("additive, scheduled sampling (exponential)", "ss_exp", "additive,ss_exp"),
    ("additive, scheduled sampling (inverse sigmoid)", "ss_sigmoid", "additive,ss_sigmoid"),
)
#: Source-length buckets (tokens, EOS excluded) of the BLEU-by-length figure.
LENGTH_EDGES = (0, 10, 20, 30, 40, 50, 80)


def define_flags():
  flags.DEFINE_string("workdir", None, "Root folder of the runs.", required=True)
  flags.DEFINE_list("rows", [], "Rows to run, by name (none, additive, dot, ss_linear, "
                    "ss_exp, ss_sigmoid); default all.")
  flags.DEFINE_float("budget_minutes", 30.0, "Training-time limit of each run.")
  flags.DEFINE_integer("num_steps", 0, "> 0: train every run for exactly this many steps "
                       "(equal work on a shared machine); 0: the config's.")
  flags.DEFINE_bool("quick", False, "Smoke runs (the configs' quick variants).")
  flags.DEFINE_bool("collect_only", False, "Train nothing; tabulate finished runs.")
  flags.DEFINE_string("png_length", "", "Write the BLEU-by-source-length figure here.")
  flags.DEFINE_string("png_attention", "", "Copy the additive model's heatmaps here.")
  flags.DEFINE_string("out", "", "Also write the markdown table to this file.")


def _workdir(root: pathlib.Path, variant: str, quick: bool) -> pathlib.Path:
  return root / "translation" / f"bible,{variant}"


def markdown(rows: list[tuple[str, dict]]) -> str:
  """One line per model: BLEU greedy, BLEU beam, minutes, parameters, decoding speed."""
  lines = ["| model | test BLEU, greedy | test BLEU, beam 5 | training minutes (steps) | "
           "sentences/s greedy / beam |", "|---|---|---|---|---|"]
  for label, r in rows:
    if "decode" not in r:
      state = "not run" if r.get("missing") else "failed" if r.get("failed") is not None \
          else "not decoded"
      lines.append(f"| {label} | {state} | | | |")
      continue
    d = r["decode"]
    lines.append(f"| {label} | {d['test/bleu_greedy']:.2f} | {d['test/bleu_beam']:.2f} | "
                 f"{r['train_seconds'] / 60:.1f} ({r['step']}) | "
                 f"{d['test/sentences_per_second_greedy']:.0f} / "
                 f"{d['test/sentences_per_second_beam']:.0f} |")
  return "\n".join(lines)


def bleu_by_length(tsv: pathlib.Path, edges=LENGTH_EDGES) -> list[tuple[str, float, int]]:
  """``(bucket label, corpus BLEU, sentences)`` per source-length bucket of a translations TSV."""
  with open(tsv, newline="") as f:
    rows = list(csv.DictReader(f, delimiter="\t"))
  out = []
  for low, high in zip(edges[:-1], edges[1:]):
    chosen = [r for r in rows if low < int(r["source_tokens"]) <= high]
    if chosen:
      out.append((f"{low + 1}-{high}", corpus_bleu([r["hypothesis"] for r in chosen],
                                                   [r["reference"] for r in chosen]),
                  len(chosen)))
  return out


def length_figure(curves: dict[str, list[tuple[str, float, int]]], path: str) -> None:
  """BLEU per source-length bucket, one line per (model, decoding)."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  fig, ax = plt.subplots(figsize=(7, 4.2))
  for name, points in curves.items():
    style = "--" if name.endswith("greedy") else "-"
    ax.plot([p[0] for p in points], [p[1] for p in points], style, marker="o", label=name)
  ax.set_xlabel("source length (Spanish tokens)")
  ax.set_ylabel("test BLEU")
  ax.set_title("BLEU against source length, Reina-Valera 1909 -> King James")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def decode_run(workdir: pathlib.Path) -> dict:
  """Decodes the test split with a finished run's newest checkpoint (writes decode.json)."""
  import ml_collections
  from experiments.tasks import translation
  from seqjax.train.loop import restore_params

  config = ml_collections.ConfigDict(json.loads((workdir / "config.json").read_text()))
  built, extras = translation.build(config, workdir)
  params, _ = restore_params(config, workdir, built.init_params)
  return translation.evaluate_decoding(config, params, extras, workdir)


def main(argv):
  del argv
  f = flags.FLAGS
  root = pathlib.Path(f.workdir)
  chosen = [r for r in ROWS if not f.rows or r[1] in f.rows]
  unknown = set(f.rows) - {name for _, name, _ in ROWS}
  if unknown:
    raise app.UsageError(f"--rows must name rows among {[name for _, name, _ in ROWS]}, got "
                         f"{sorted(unknown)}")
  results = []
  for label, _, variant in chosen:
    workdir = _workdir(root, variant, f.quick)
    decode = workdir / "decode.json"
    overrides = [f"num_steps={f.num_steps}"] if f.num_steps else []
    r = run_pair("translation", f"bible,{variant}", root=root, budget=f.budget_minutes,
                 quick=f.quick, overrides=overrides, rerun=False, collect_only=f.collect_only)
    if "metrics" in r and not decode.exists() and not f.collect_only:
      decode_run(workdir)  # trained, but its decoding did not finish
    if decode.exists():
      r["decode"] = json.loads(decode.read_text())
    results.append((label, r))
  table = markdown(results)
  print(table)
  if f.out:
    pathlib.Path(f.out).write_text(table + "\n")
  if f.png_length:
    curves = {}
    for label, _, variant in chosen:
      if variant not in ("none", "additive", "dot"):
        continue
      for mode in ("greedy", "beam"):
        tsv = _workdir(root, variant, f.quick) / f"translations_test_{mode}.tsv"
        if tsv.exists():
          curves[f"{label}, {mode}"] = bleu_by_length(tsv)
    for name, points in curves.items():
      print(name + ": " + ", ".join(f"{b} {v:.1f} ({n})" for b, v, n in points))
    length_figure(curves, f.png_length)
  if f.png_attention:
    heatmap = _workdir(root, "additive", f.quick) / "attention.png"
    if heatmap.exists():
      shutil.copyfile(heatmap, f.png_attention)
  return 0


if __name__ == "__main__":
  define_flags()
  sys.exit(app.run(main))
