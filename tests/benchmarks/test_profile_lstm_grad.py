"""benchmarks/profile_lstm_grad.py: a tiny traced run reads its own profile back."""

import json
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_profile_reports_matmuls_and_launches(tmp_path):
  path = tmp_path / "profile.json"
  result = subprocess.run(
      [sys.executable, str(ROOT / "benchmarks" / "profile_lstm_grad.py"), "--length", "6",
       "--hidden", "16", "--batch", "4", "--input-size", "3", "--steps", "1", "--top", "3",
       "--json", str(path)],
      capture_output=True, text=True, check=True, cwd=ROOT, timeout=300)
  out, saved = result.stdout, json.loads(path.read_text())
  parts = saved["parts_s"]
  assert "matrix products" in parts, parts
  kernels = sum(s for kind, s in parts.items() if not kind.startswith("executor"))
  # The parts and the time outside kernels add up to the wall time.
  assert kernels + saved["outside_kernels_s"] == pytest.approx(saved["wall_s"])
  matmul = re.search(r"([\d.]+) ms  matrix products", out)
  assert float(matmul.group(1)) == pytest.approx(1e3 * parts["matrix products"], abs=0.01)
  # A 6-step forward and reverse loop launch at least a kernel per step each.
  assert saved["launches"] >= 12, out
  assert f"{saved['launches']:8d}     kernel launches per gradient" in out
  listed = out.split("slowest kernels")[1].strip().splitlines()[1:]
  assert len(listed) == len(saved["slowest"]) == 3, out
  times = [kernel["s"] for kernel in saved["slowest"]]
  assert times == sorted(times, reverse=True)
  for line, kernel in zip(listed, saved["slowest"]):
    assert line.strip().endswith(kernel["name"]) and f"{kernel['calls']:5d}x" in line, line
