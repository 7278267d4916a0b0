"""benchmarks/rnn_throughput.py: its --quick smoke run (seqjax and flax; torch not needed)."""

import importlib.util
import json
import math
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "rnn_throughput.py"


def _module():
  spec = importlib.util.spec_from_file_location("rnn_throughput", SCRIPT)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _table_rows(stdout):
  """``{(cell, T, H, impl): [columns]}`` of the throughput table's data rows."""
  rows = {}
  for line in stdout.splitlines():
    columns = [c.strip() for c in line.strip().strip("|").split("|")]
    if len(columns) == 13 and columns[0] in ("lstm", "gru", "rnn"):
      rows[(columns[0], int(columns[1]), int(columns[2]), columns[3])] = columns
  return rows


def _positive_finite(value):
  return value is not None and math.isfinite(value) and value > 0


def test_flops_and_shapes():
  module = _module()
  assert module.forward_flops("lstm", 64, 100, 32, 256) == 2 * 64 * 100 * 288 * 4 * 256
  assert module.forward_flops("gru", 1, 1, 1, 1) == 2 * 2 * 3
  assert module.forward_flops("rnn", 1, 1, 1, 1) == 2 * 2 * 1
  assert module.parse_shapes("100x256, 8x16") == [(100, 256), (8, 16)]
  with pytest.raises(Exception, match="TxH"):
    module.parse_shapes("100by256")
  assert module.parse_args(["--torch-no-mkldnn"]).torch_no_mkldnn
  assert not module.parse_args([]).torch_no_mkldnn


def test_quick_run_in_worker_processes(tmp_path):
  """The real path: one worker process per implementation, table and JSON out."""
  path = tmp_path / "results.json"
  result = subprocess.run(
      [sys.executable, str(SCRIPT), "--quick", "--cells", "lstm", "--impls", "seqjax,flax",
       "--json", str(path)],
      cwd=ROOT, capture_output=True, text=True, timeout=300,
      env={**os.environ, "JAX_PLATFORMS": "cpu"})
  assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
  rows = _table_rows(result.stdout)
  saved = json.loads(path.read_text())
  impls = {row["impl"] for row in saved["throughput"]}
  # seqjax-scan joins seqjax where the LSTM has a whole-sequence fast path, and
  # seqjax-onednn where its oneDNN kernel builds (the CI installs oneDNN).
  assert saved["info"]["seqjax"]["onednn"]["available"], saved["info"]["seqjax"]["onednn"]
  assert impls == {"seqjax", "seqjax-scan", "seqjax-onednn", "flax"}, impls
  assert "oneDNN kernel (seqjax-onednn): built" in result.stdout
  assert {key[3].split(" ")[0] for key in rows} == impls, result.stdout
  assert all(key[:3] == ("lstm", 8, 16) for key in rows), result.stdout
  assert re.search(r"\| seqjax \(auto: (fast|scan)\) \|", result.stdout), result.stdout
  for row in saved["throughput"]:
    assert row["error"] is None, row
    for field in ("train_tokens_per_s", "infer_tokens_per_s", "train_gflops", "compile_s",
                  "loss"):
      assert _positive_finite(row[field]), (field, row)
    assert len(row["train_s"]) == len(row["infer_s"]) == 1  # --quick: one repeat
  flax_row = rows[("lstm", 8, 16, "flax")]
  assert flax_row[8] == flax_row[9] == "1.00"  # flax relative to itself
  assert flax_row[6] == flax_row[7] == "—"  # no torch to compare with
  assert saved["info"]["seqjax"]["peak_gflops"] > 0


def test_without_torch_says_so_and_compares_the_rest(monkeypatch, capsys):
  module = _module()
  monkeypatch.setattr(module, "torch_available", lambda: False)
  results = module.main(["--quick", "--cells", "rnn", "--impls", "seqjax,torch",
                         "--seqjax-implementation", "scan", "--in-process"])
  out = capsys.readouterr().out
  assert "torch is not installed" in out
  rows = {row["impl"]: row for row in results["throughput"]}
  assert set(rows) == {"seqjax", "seqjax-onednn"}, rows  # the RNN has a oneDNN kernel
  row = rows["seqjax"]
  assert row["implementation"] == "scan" and rows["seqjax-onednn"]["implementation"] == "onednn"
  assert _positive_finite(row["train_tokens_per_s"]) and _positive_finite(row["infer_tokens_per_s"])
  assert "| rnn | 8 | 16 | seqjax (scan) |" in out
