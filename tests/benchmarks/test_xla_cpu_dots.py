"""benchmarks/xla_cpu_dots.py: a --quick run prints a row per XLA setting, as saved in --json."""

import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_quick_run_has_a_row_per_setting(tmp_path):
  settings = "default;--xla_cpu_experimental_ynn_fusion_type="
  path = tmp_path / "dots.json"
  out = subprocess.run(
      [sys.executable, str(ROOT / "benchmarks" / "xla_cpu_dots.py"), "--quick", "--settings",
       settings, "--json", str(path)],
      capture_output=True, text=True, check=True, cwd=ROOT, timeout=300).stdout
  saved = json.loads(path.read_text())["gflops"]
  assert list(saved) == settings.split(";")
  header = [c.strip() for c in out.splitlines()[1].strip("|").split("|")]
  assert header == ["XLA_FLAGS", "step16", "chain16", "dW16", "peak"], out
  rows = [line for line in out.splitlines() if line.startswith("| `")]
  assert [row.split("`")[1] for row in rows] == settings.split(";"), out
  for row, setting in zip(rows, saved):
    printed = [c.strip() for c in row.strip("|").split("|")[1:]]
    assert printed == [f"{saved[setting][name]:.0f}" for name in header[1:]], (row, saved)
