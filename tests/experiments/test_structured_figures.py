"""experiments.structured_figures on quick runs: the tables hold what the runs measured."""

from __future__ import annotations

import json
import pathlib

import pytest

from experiments import structured_figures as figures
from experiments.configs import graphs as graphs_configs
from experiments.configs import springs as springs_configs
from experiments.tasks import graphs as graphs_task
from experiments.tasks import springs as springs_task


def test_bad_run_lists_are_named(tmp_path):
  with pytest.raises(ValueError, match="--rounds must be name=workdir pairs, got 'r1'"):
    figures.parse_runs(["r1"], "rounds")
  with pytest.raises(FileNotFoundError, match="config.json not found"):
    figures.load_config(tmp_path, "graphs")
  (tmp_path / "config.json").write_text(json.dumps({"task": "esn"}))
  with pytest.raises(ValueError, match="is a 'esn' run, expected a 'springs' run"):
    figures.load_config(tmp_path, "springs")


@pytest.mark.integration
def test_rounds_table_and_springs_figure(tmp_path):
  runs = {}
  for rounds in (1, 2):
    config = graphs_configs.get_config("shortest_path,ggnn,quick")
    config.model.rounds = rounds
    runs[f"r{rounds}"] = tmp_path / f"r{rounds}"
    final = graphs_task.run(config, str(runs[f"r{rounds}"]), log=lambda _: None)
    (runs[f"r{rounds}"] / "config.json").write_text(config.to_json())   # as experiments.train does
  table = figures.rounds_table(runs, tmp_path)
  last = table.splitlines()[-1].split("|")
  assert last[1].strip() == "2"
  # The table's overall accuracy is the run's own test accuracy.
  assert float(last[-2]) == pytest.approx(final["test/accuracy"], abs=1e-3)
  assert (tmp_path / "rounds.png").stat().st_size > 10_000

  config = graphs_configs.get_config("karate_club,ggnn,quick")
  final = graphs_task.run(config, str(tmp_path / "karate"), log=lambda _: None)
  (tmp_path / "karate" / "config.json").write_text(config.to_json())
  assert figures.karate_figure(tmp_path / "karate", tmp_path) == pytest.approx(
      final["test/accuracy"])
  assert (tmp_path / "karate.png").stat().st_size > 10_000

  config = springs_configs.get_config("gn,quick")
  springs_task.run(config, str(tmp_path / "gn"), log=lambda _: None)
  (tmp_path / "gn" / "config.json").write_text(config.to_json())
  table = figures.springs_figure({"gn": tmp_path / "gn"}, tmp_path)
  assert table.splitlines()[2].startswith("| gn | ")
  assert (tmp_path / "springs_rollout.png").stat().st_size > 10_000
