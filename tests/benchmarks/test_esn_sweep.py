"""Smoke test of benchmarks/esn_sweep.py at a tiny size: it runs and its --json holds."""

import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_esn_sweep_runs_and_writes_json(tmp_path):
  path = tmp_path / "sweep.json"
  completed = subprocess.run(
      [sys.executable, str(ROOT / "benchmarks" / "esn_sweep.py"), "--hidden_size", "12",
       "--train", "150", "--val", "40", "--washout", "20", "--repeats", "1",
       "--json", str(path)], cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert completed.returncode == 0, completed.stderr[-3000:]
  data = json.loads(path.read_text())
  assert data["benchmark"] == "esn_sweep" and data["configurations"] == 64
  # The vmapped grid and the loop of single configurations agree.
  assert data["max_abs_difference_val_nrmse"] < 1e-3
  assert 0 < data["best_val_nrmse"] < 1
  assert "speed-up" in completed.stdout
