"""benchmarks/profile_lstm_grad.py: a tiny traced run reads its own profile back."""

import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_profile_reports_matmuls_and_launches():
  result = subprocess.run(
      [sys.executable, str(ROOT / "benchmarks" / "profile_lstm_grad.py"), "--length", "6",
       "--hidden", "16", "--batch", "4", "--input-size", "3", "--steps", "1", "--top", "3"],
      capture_output=True, text=True, check=True, cwd=ROOT, timeout=300)
  out = result.stdout
  matmul = re.search(r"([\d.]+) ms  matrix products", out)
  launches = re.search(r"(\d+)     kernel launches per gradient", out)
  assert matmul and float(matmul.group(1)) > 0, out
  # A 6-step forward and reverse loop launch at least a kernel per step each.
  assert launches and int(launches.group(1)) >= 12, out
  listed = out.split("slowest kernels")[1].strip().splitlines()[1:]
  assert len(listed) == 3 and all(re.match(r"\s*[\d.]+ ms\s+\d+x  \S", line) for line in listed), out
