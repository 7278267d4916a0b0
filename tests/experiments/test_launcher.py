"""experiments.train: config parsing, overrides and start-up errors (subprocesses)."""

import os
import pathlib
import subprocess
import sys

import pytest

from experiments import train as launcher
from experiments.configs import char_lm

ROOT = pathlib.Path(__file__).resolve().parents[2]
CONFIG = "experiments/configs/char_lm.py:quick"


def _launch(tmp_path, *overrides):
  return subprocess.run(
      [sys.executable, "-m", "experiments.train", f"--config={CONFIG}",
       f"--workdir={tmp_path}", *overrides],
      cwd=ROOT, capture_output=True, text=True, timeout=300,
      env={**os.environ, "JAX_PLATFORMS": "cpu"})


@pytest.mark.parametrize("override,message", [
    ("--config.no_such_field=1", "no_such_field"),
    ("--config.optimizer.learning_rate=-0.1", "optimizer.learning_rate"),
    ("--config.batch_size=0", "config.batch_size must be a positive integer, got 0"),
    ("--config.model.cell=transformer", "config.model.cell must be 'tcn' or name a cell factory"),
])
def test_bad_config_fails_at_start_up(tmp_path, override, message):
  result = _launch(tmp_path, override)
  assert result.returncode != 0
  assert message in result.stderr + result.stdout, result.stderr[-2000:]
  assert not (tmp_path / "checkpoints").exists()


def test_variants_build_and_validate():
  for variant in ("default", "quick", "full"):
    config = char_lm.get_config(variant)
    launcher.validate(config)
  with pytest.raises(ValueError, match="unknown char_lm variant 'tiny'"):
    char_lm.get_config("tiny")
