r"""Figures and tables of the trees-and-graphs runs: rounds sweep, learned physics, ListOps by depth.

Reads finished ``experiments.train`` runs and writes into ``--out_dir``:

  --rounds r1=/tmp/sp_r1,...     shortest-path runs (``experiments/configs/graphs.py``)
                                 with different numbers of message-passing rounds:
                                 ``rounds.md`` (accuracy per hop distance and overall)
                                 and ``rounds.png``
  --springs gn=/tmp/gn,mlp=...   learned simulators (``experiments/configs/springs.py``):
                                 ``springs_rollout.png`` (position error against
                                 rollout step, and one rollout of each beside the truth)
  --karate /tmp/karate           a karate-club run: ``karate.png``, the club with each
                                 member coloured by its predicted faction
  --listops tree=/tmp/t,seq=...  ListOps runs (``experiments/configs/listops.py``):
                                 ``listops_depth.md`` and ``listops_depth.png``, test
                                 accuracy by expression depth

  python -m experiments.structured_figures --rounds r1=/tmp/graphs/sp_r1,r2=/tmp/graphs/sp_r2 \
      --out_dir docs/figures/structured
"""

from __future__ import annotations

import json
import pathlib
import sys

import ml_collections
import numpy as np
from absl import app, flags

from experiments.tasks import graphs as graphs_task
from seqjax.train.loop import restore_params

flags.DEFINE_list("rounds", [], "name=workdir pairs of shortest-path runs.")
flags.DEFINE_list("springs", [], "name=workdir pairs of springs runs.")
flags.DEFINE_string("karate", "", "Workdir of a karate_club run (graphs.py:karate_club).")
flags.DEFINE_list("listops", [], "name=workdir pairs of listops runs.")
flags.DEFINE_string("out_dir", None, "Where the figures and tables go.", required=True)


def load_config(workdir: pathlib.Path, task: str) -> ml_collections.ConfigDict:
  """The config of the ``experiments.train`` run in ``workdir``; ValueError if not a ``task`` run."""
  path = workdir / "config.json"
  if not path.exists():
    raise FileNotFoundError(f"{path} not found: is {workdir} an experiments.train workdir?")
  config = ml_collections.ConfigDict(json.loads(path.read_text()))
  if config.task != task:
    raise ValueError(f"{workdir} is a {config.task!r} run, expected a {task!r} run")
  return config


def parse_runs(pairs: list[str], flag: str) -> dict[str, pathlib.Path]:
  """``["name=dir", ...]`` -> ``{name: Path}``; ValueError naming ``flag`` otherwise."""
  runs = {}
  for pair in pairs:
    name, sep, path = pair.partition("=")
    if not sep or not name or not path:
      raise ValueError(f"--{flag} must be name=workdir pairs, got {pair!r}")
    runs[name] = pathlib.Path(path)
  return runs


def rounds_table(runs: dict[str, pathlib.Path], out: pathlib.Path) -> str:
  """Accuracy per hop distance for every rounds run: a markdown table and ``rounds.png``."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  rows = []
  for name, workdir in runs.items():
    config = load_config(workdir, "graphs")
    task, (model, data, _) = graphs_task.build(config, None)
    params, _ = restore_params(config, workdir, task.init_params)
    by_distance = graphs_task.accuracy_by_target(model, params, data.eval_batches["test"]())
    correct = sum(c for c, _ in by_distance.values())
    total = sum(n for _, n in by_distance.values())
    rows.append((config.model.rounds, name, by_distance, correct / total))
  rows.sort(key=lambda r: r[0])
  distances = sorted({d for _, _, by, _ in rows for d in by})
  cap = max(distances)
  names = [f"{d}" if d < cap else f">= {d}" for d in distances]
  lines = ["| rounds | " + " | ".join(f"distance {n}" for n in names) + " | all nodes |",
           "|" + "---|" * (len(distances) + 2)]
  for rounds, _, by, overall in rows:
    cells = [f"{by[d][0] / by[d][1]:.3f}" if d in by else "" for d in distances]
    lines.append(f"| {rounds} | " + " | ".join(cells) + f" | {overall:.3f} |")
  fig, ax = plt.subplots(figsize=(6.4, 4.2))
  rounds = [r[0] for r in rows]
  for d, label in zip(distances, names):
    ax.plot(rounds, [by[d][0] / by[d][1] for _, _, by, _ in rows], marker="o",
            label=f"distance {label}")
  ax.plot(rounds, [r[3] for r in rows], "k--", lw=2, label="all nodes")
  ax.set(xlabel="message-passing rounds", ylabel="test accuracy",
         title="hop distance to the marked node (GGNN)")
  ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(out / "rounds.png", dpi=120)
  plt.close(fig)
  return "\n".join(lines)


def karate_figure(workdir: pathlib.Path, out: pathlib.Path) -> float:
  """The club drawn with predicted factions (fill) and true ones (ring); returns the accuracy."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  import networkx
  import jax
  config = load_config(workdir, "graphs")
  task, (model, data, _) = graphs_task.build(config, None)
  params, _ = restore_params(config, workdir, task.init_params)
  (batch,) = data.eval_batches["test"]()
  logits = jax.jit(jax.vmap(lambda p, b: model.apply(p, graphs_task.as_graph(b)),
                            (None, 0)))(params, batch)
  n = int(batch["n_node"][0, 0])
  predicted = np.asarray(logits)[0, :n].argmax(-1)
  truth = batch["targets"][0, :n]
  labelled = np.flatnonzero(data.train_batch(0)["scored"][0][:n])
  graph = networkx.Graph(list(zip(batch["senders"][0].tolist(), batch["receivers"][0].tolist())))
  graph.remove_nodes_from([v for v in list(graph) if v >= n])
  layout = networkx.spring_layout(graph, seed=3)
  colours = np.array(["tab:blue", "tab:orange"])
  fig, ax = plt.subplots(figsize=(6.4, 5.2))
  networkx.draw_networkx_edges(graph, layout, ax=ax, alpha=0.3)
  nodes = np.arange(n)
  networkx.draw_networkx_nodes(graph, layout, nodelist=nodes.tolist(), ax=ax,
                               node_color=colours[predicted].tolist(),
                               edgecolors=colours[truth].tolist(), linewidths=2.5, node_size=220)
  networkx.draw_networkx_nodes(graph, layout, nodelist=labelled.tolist(), ax=ax, node_shape="s",
                               node_color=colours[truth[labelled]].tolist(), edgecolors="k",
                               linewidths=2, node_size=320)
  networkx.draw_networkx_labels(graph, layout, ax=ax, font_size=7)
  wrong = [int(v) for v in nodes if predicted[v] != truth[v]]
  accuracy = float(np.mean(predicted[np.setdiff1d(nodes, labelled)]
                           == truth[np.setdiff1d(nodes, labelled)]))
  ax.set_title(f"{config.model.kind}, {config.model.rounds} rounds: fill = predicted faction, "
               f"ring = true;\nsquares: the two labelled leaders; wrong: {wrong}", fontsize=9)
  ax.axis("off")
  fig.tight_layout()
  fig.savefig(out / "karate.png", dpi=120)
  plt.close(fig)
  return accuracy


def springs_figure(runs: dict[str, pathlib.Path], out: pathlib.Path) -> str:
  """Rollout error of every springs run against step, and each run's rollout of one system."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  from experiments.tasks import springs as springs_task
  saved = {}
  for name, workdir in runs.items():
    load_config(workdir, "springs")
    path = workdir / "rollout.npz"
    if not path.exists():
      raise FileNotFoundError(f"{path} not found: has the run in {workdir} finished?")
    saved[name] = np.load(path)
  first = next(iter(saved.values()))
  fig, axes = plt.subplots(1, len(saved) + 2, figsize=(4.2 * (len(saved) + 2), 4))
  steps = np.arange(1, len(first["errors"]) + 1)
  for name, s in saved.items():
    axes[0].semilogy(steps, s["errors"], label=name)
  axes[0].semilogy(steps, first["constant_velocity"], "--", color="gray",
                   label="constant velocity")
  axes[0].set(xlabel="rollout step", ylabel="position mse (test systems)",
              title="rollout error")
  axes[0].legend(fontsize=8)
  both = np.concatenate([first["truth"]] + [s["predicted"] for s in saved.values()])
  both = both.reshape(-1, 2)
  lo, hi = np.nanpercentile(both, 1, 0), np.nanpercentile(both, 99, 0)
  middle, half = (lo + hi) / 2, max(hi - lo) / 2 * 1.15
  panels = [("ground truth", first["truth"])] + [(n, s["predicted"]) for n, s in saved.items()]
  for ax, (title, positions) in zip(axes[1:], panels):
    springs_task.draw_paths(ax, positions, first["springs"])
    ax.set_xlim(middle[0] - half, middle[0] + half)
    ax.set_ylim(middle[1] - half, middle[1] + half)
    ax.set_aspect("equal")
    ax.set_title(f"{title}, {len(positions)} steps")
  fig.tight_layout()
  fig.savefig(out / "springs_rollout.png", dpi=110)
  plt.close(fig)
  marks = [k for k in (1, 10, 50, 100, 194) if k <= len(first["errors"])]
  lines = ["| model | " + " | ".join(f"step {k}" for k in marks) + " |",
           "|" + "---|" * (len(marks) + 1)]
  for name, s in list(saved.items()) + [("constant velocity", {"errors":
                                                                first["constant_velocity"]})]:
    lines.append(f"| {name} | " + " | ".join(f"{s['errors'][k - 1]:.2e}" for k in marks) + " |")
  return "\n".join(lines)


def main(argv):
  del argv
  out = pathlib.Path(flags.FLAGS.out_dir)
  out.mkdir(parents=True, exist_ok=True)
  if flags.FLAGS.rounds:
    table = rounds_table(parse_runs(flags.FLAGS.rounds, "rounds"), out)
    (out / "rounds.md").write_text(table + "\n")
    print(table)
  if flags.FLAGS.karate:
    accuracy = karate_figure(pathlib.Path(flags.FLAGS.karate), out)
    print(f"karate club: accuracy on the 32 unlabelled members {accuracy:.4f}")
  if flags.FLAGS.springs:
    table = springs_figure(parse_runs(flags.FLAGS.springs, "springs"), out)
    (out / "springs.md").write_text(table + "\n")
    print(table)
  if flags.FLAGS.listops:
    from experiments.tasks import listops as listops_task
    table = listops_task.depth_figure(parse_runs(flags.FLAGS.listops, "listops"), out)
    (out / "listops_depth.md").write_text(table + "\n")
    print(table)
  return 0


if __name__ == "__main__":
  sys.exit(app.run(main))
