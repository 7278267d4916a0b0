"""Every config file builds and validates in every variant; unknown variants are refused."""

from __future__ import annotations

import importlib
import pathlib

import pytest

from experiments import train as launcher
from experiments.configs import common

FOLDER = pathlib.Path(__file__).resolve().parents[2] / "experiments" / "configs"
CONFIGS = sorted(p.stem for p in FOLDER.glob("*.py") if p.stem not in ("__init__", "common"))


def _variants(name):
  if name == "char_lm":
    return ["default", "quick", "full"]
  module = importlib.import_module(f"experiments.configs.{name}")
  if hasattr(module, "VARIANTS"):
    return list(module.VARIANTS)
  if name.startswith("esn_"):
    return ["default", "quick"]
  return [m + q for m in common.MODELS for q in ("", ",quick")]   # <model>[,quick]


@pytest.mark.parametrize("name", CONFIGS)
def test_config_validates_in_every_variant(name):
  module = importlib.import_module(f"experiments.configs.{name}")
  for variant in _variants(name):
    config = module.get_config(variant)
    launcher.validate(config)
  with pytest.raises(ValueError, match="variant"):
    module.get_config("huge")


def test_variant_parsing():
  assert common.parse_variant("gru,quick") == ("gru", True)
  assert common.parse_variant("") == ("tcn", False)
  with pytest.raises(ValueError, match="variant"):
    common.parse_variant("transformer")


def test_smoke_run_shrinks_to_one_evaluation_and_checkpoint():
  config = common.smoke_run(common.loop_config("adding"), 40)
  assert (config.num_steps, config.eval_every, config.checkpoint_every) == (40, 0, 40)
