"""The algorithmic-tasks experiment: config checks, the curriculum, quick runs of every task."""

from __future__ import annotations

import pytest

from experiments.configs import algorithmic as configs
from experiments.tasks import algorithmic as task


def test_curriculum_grows_linearly_to_the_task_maximum():
  config = configs.get_config("repeat_copy,ntm")
  data = config.data
  assert task.max_repeats_at(data, 0, 1000) == data.curriculum_start == 2
  assert task.max_repeats_at(data, 250, 1000) == 6   # 2 + 8 * 250 / 500
  assert task.max_repeats_at(data, 500, 1000) == task.max_repeats_at(data, 999, 1000) == 10


@pytest.mark.parametrize("field,value,match", [
    ("data.task", "sort", "config.data.task"),
    ("data.min_length", 30, "config.data.min_length must be <="),
    ("data.curriculum_start", 11, "config.data.curriculum_start"),
    ("data.test_lengths", (0,), "config.data.test_lengths"),
    ("model.cell_options.memory_size", 0, "memory_size"),
])
def test_bad_fields_are_named(field, value, match):
  config = configs.get_config("repeat_copy,ntm")
  section, name = field.rsplit(".", 1)
  target = config
  for part in section.split("."):
    target = target[part]
  target[name] = value
  with pytest.raises(ValueError, match=match):
    task.validate(config)
    task.build(config, None)   # the cell's own checks run when the body is built


def test_unknown_cell_option_is_named():
  config = configs.get_config("copy,ntm")
  config.model.cell_options.memory_rows = 4
  with pytest.raises(ValueError, match="config.model.cell_options"):
    task.validate(config)


def test_chance_baseline_is_half_the_scored_bits():
  assert task.baseline(configs.get_config("copy,ntm")) == ("chance", 0.5 * 10.5 * 8)


@pytest.mark.integration
@pytest.mark.parametrize("variant", ["copy,ntm,quick", "copy,dnc,quick", "repeat_copy,ntm,quick",
                                     "associative_recall,lstm,quick"])
def test_quick_runs_report_bit_errors_and_generalisation(variant, tmp_path):
  config = configs.get_config(variant)
  task.validate(config)
  lines = []
  final = task.run(config, str(tmp_path), log=lines.append)
  _, outputs = task.sizes(config.data)
  assert 0 <= final["test/bit_errors"] <= outputs * task.steps_for(config.data,
                                                                   config.data.max_length)
  assert any(line.startswith("generalisation: length") for line in lines)


@pytest.mark.integration
def test_memory_figures_from_quick_runs(tmp_path):
  import subprocess
  import sys
  from experiments.train import save_config
  for model in ("ntm", "lstm"):
    config = configs.get_config(f"copy,{model},quick")
    task.run(config, str(tmp_path / model), log=lambda line: None)
    save_config(config, tmp_path / model)   # as the launcher does
  out = subprocess.run(
      [sys.executable, "-m", "experiments.memory_figures",
       f"--runs=ntm={tmp_path / 'ntm'},lstm={tmp_path / 'lstm'}", f"--out_dir={tmp_path / 'fig'}",
       "--lengths=2,5", "--test_size=8", "--picture_length=5"],
      capture_output=True, text=True, check=True).stdout
  table = (tmp_path / "fig" / "generalisation.md").read_text().splitlines()
  assert table[0] == "| model | length 2 | length 5 |" and len(table) == 4
  for name in ("learning_curves", "generalisation", "weightings"):
    assert (tmp_path / "fig" / f"{name}.png").stat().st_size > 1000
  assert "ntm: step 60" in out
  bad = subprocess.run([sys.executable, "-m", "experiments.memory_figures",
                        f"--runs=x={tmp_path}", f"--out_dir={tmp_path / 'fig'}"],
                       capture_output=True, text=True)
  assert bad.returncode != 0 and "config.json not found" in bad.stderr
