"""The echo-state-network experiments, quick variants, run in-process."""

import importlib.util
import json
import pathlib

import pytest

from experiments.tasks import esn

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _config(name, variant="quick"):
  spec = importlib.util.spec_from_file_location(f"esn_config_{name}",
                                                ROOT / "experiments" / "configs" / f"{name}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(variant)


# The quick variants must beat both naive forecasts clearly: the mean
# (NRMSE 1) and persistence z_{t+1} = z_t.
@pytest.mark.parametrize("name,bound", [("esn_mackey_glass", 0.01), ("esn_laser", 0.2),
                                        ("esn_sunspots", 0.6)])
def test_quick_variant_predicts_one_step_ahead(name, bound, tmp_path):
  config = _config(name)
  lines = []
  results = esn.run(config, tmp_path, log=lines.append)
  test = results["one_step_nrmse"]["test"]
  assert test < bound, results
  assert test < 0.9 * results["persistence_nrmse"]["test"], results
  assert results["one_step_nrmse"]["validation"] < bound, results
  saved = json.loads((tmp_path / "results.json").read_text())
  assert saved["one_step_nrmse"] == results["one_step_nrmse"]
  assert set(saved["closed_loop_nrmse"]) == {str(h) for h in config.horizons}
  # The first closed-loop step is an ordinary one-step prediction.
  first = saved["closed_loop_nrmse"][str(min(config.horizons))]
  assert min(config.horizons) != 1 or first < 2 * bound, saved
  assert any("one-step NRMSE test" in line for line in lines)
  if name == "esn_mackey_glass":  # a smooth attractor: free-running forecasts stay close
    closed = saved["closed_loop_nrmse"]
    assert closed["1"] < closed["10"] < 0.1 and closed["84"] < 0.5, saved


@pytest.mark.parametrize("field,value,match", [
    ("reservoir.leak_rate", 0.0, r"config\.reservoir\.leak_rate .* got 0\.0"),
    ("reservoir.leak_rate", 1.5, r"config\.reservoir\.leak_rate"),
    ("ridge", -1e-6, r"config\.ridge .* got -1e-06"),
    ("reservoir.spectral_radius", 0.0, r"config\.reservoir\.spectral_radius"),
    ("reservoir.hidden_size", 0, r"config\.reservoir\.hidden_size"),
    ("data.series", "lorenz", r"config\.data\.series .* 'lorenz'"),
    ("data.washout", 0, r"config\.data\.washout"),
    ("horizons", (1, 100000), r"config\.horizons .* config\.data\.test"),
])
def test_validate_names_the_bad_field(field, value, match):
  config = _config("esn_mackey_glass")
  *path, last = field.split(".")
  node = config
  for part in path:
    node = node[part]
  node[last] = value
  with pytest.raises(ValueError, match=match):
    esn.validate(config)


def test_configs_validate_and_reject_unknown_variants():
  for name in ("esn_mackey_glass", "esn_laser", "esn_sunspots"):
    for variant in ("default", "quick"):
      config = _config(name, variant)
      assert config.task == "esn"
      esn.validate(config)
    with pytest.raises(ValueError, match="variant"):
      _config(name, "huge")
