"""benchmarks/xla_cpu_dots.py: its --quick run gives one row of positive GFLOP/s per XLA setting."""

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_quick_run_has_a_row_per_setting():
  settings = "default;--xla_cpu_experimental_ynn_fusion_type="
  out = subprocess.run(
      [sys.executable, str(ROOT / "benchmarks" / "xla_cpu_dots.py"), "--quick", "--settings", settings],
      capture_output=True, text=True, check=True, cwd=ROOT, timeout=300).stdout
  rows = [line for line in out.splitlines() if line.startswith("| `")]
  assert [row.split("`")[1] for row in rows] == settings.split(";"), out
  header = [c.strip() for c in out.splitlines()[1].strip("|").split("|")]
  assert header == ["XLA_FLAGS", "step16", "chain16", "dW16", "peak"], out
  for row in rows:
    values = [float(c) for c in row.strip("|").split("|")[1:]]
    assert len(values) == 4 and all(v > 0 for v in values), row
