"""Smoke test of benchmarks/esn_vs_reservoirpy.py at tiny sizes: the JSON and the matching."""

import json
import pathlib
import subprocess
import sys

import pytest

pytest.importorskip("reservoirpy")

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def result(tmp_path_factory):
  path = tmp_path_factory.mktemp("esn_vs_reservoirpy") / "result.json"
  completed = subprocess.run(
      [sys.executable, str(ROOT / "benchmarks" / "esn_vs_reservoirpy.py"), "--units", "30,40",
       "--dtypes", "float32,float64", "--seeds", "2", "--repeats", "1", "--train", "300",
       "--test", "60", "--washout", "20", "--json", str(path)],
      cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert completed.returncode == 0, completed.stderr[-3000:]
  return json.loads(path.read_text()), completed.stdout


def test_json_has_a_row_per_size_and_side(result):
  data, _ = result
  assert data["benchmark"] == "esn_vs_reservoirpy"
  rows = {(row["units"], row["library"], row["dtype"]): row for row in data["rows"]}
  assert set(rows) == {(units, library, dtype) for units in (30, 40)
                       for library, dtype in (("reservoirpy", "float64"), ("seqjax", "float32"),
                                              ("seqjax", "float64"))}
  for row in rows.values():
    assert len(row["nrmse_per_seed"]) == 2 and len(row["seconds_per_repeat"]) == 1
    assert all(0 < error < 1 for error in row["nrmse_per_seed"])  # better than the mean
    assert row["seconds_median"] == pytest.approx(sum(row["stages_median"].values()))
  for units in (30, 40):
    assert set(rows[(units, "seqjax", "float32")]["stages_median"]) == {
        "init", "run", "fit", "predict"}
    assert rows[(units, "reservoirpy", "float64")]["speedup_vs_reservoirpy"] == 1.0


def test_both_sides_ran_the_same_settings(result):
  data, stdout = result
  matched = data["matched"]
  for units in (30, 40):
    sides = {entry["side"]: {k: v for k, v in entry.items() if k != "side"}
             for entry in matched if entry["units"] == units}
    assert set(sides) == {"reservoirpy", "seqjax float32", "seqjax float64"}
    reference = sides["reservoirpy"]
    assert reference["readout_features"] == "[u_t, x_t]"
    assert reference["input_weights"] == "dense U(-input_scaling, input_scaling)"
    assert reference["reservoir_bias"] == 0.0 and reference["washout"] == 20
    for side in ("seqjax float32", "seqjax float64"):
      assert sides[side] == reference
  settings = data["settings"]
  assert settings["seqjax"]["esn"]["spectral_radius"] == settings["reservoirpy"]["Reservoir"]["sr"]
  assert settings["seqjax"]["fit_readout"]["ridge"] == settings["reservoirpy"]["Ridge"]["ridge"]
  assert "reservoirpy Reservoir(" in stdout and "seqjax esn(" in stdout


def test_seqjax_reproduces_reservoirpy_on_its_matrices(result):
  data, _ = result
  for check in data["checks"]:
    assert check["nrmse_seqjax_on_reservoirpy_matrices"] == pytest.approx(
        check["nrmse_reservoirpy"], rel=1e-4)
