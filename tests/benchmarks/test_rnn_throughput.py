"""benchmarks/rnn_throughput.py and rnn_models.py: quick runs whose rows agree with themselves."""

import json
import math
import os
import pathlib
import subprocess
import sys

import jax
import pytest

import harness
import rnn_models
import rnn_throughput

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "rnn_throughput.py"


def _table_rows(stdout):
  """``{(cell, T, H, label): [columns]}`` of the throughput table's data rows."""
  rows = {}
  for line in stdout.splitlines():
    columns = [c.strip() for c in line.strip().strip("|").split("|")]
    if len(columns) == 13 and columns[0] in rnn_models.GATES:
      rows[(columns[0], int(columns[1]), int(columns[2]), columns[3])] = columns
  return rows


def _check_rows(results, cells, shapes, label_of):
  """Every row is there once, its rates and ratios follow from its own times, the
  table prints what the JSON holds."""
  rows = results["throughput"]
  info = results["info"]["seqjax"]
  args = results["args"]
  for cell in cells:
    impls = rnn_throughput.impls_for(cell, argparse_like(args), info)
    for length, hidden in shapes:
      found = [r["impl"] for r in rows if (r["cell"], r["length"], r["hidden"]) ==
               (cell, length, hidden)]
      assert found == impls, (cell, length, hidden, found)
  for row in rows:
    assert row["error"] is None, row
    assert len(row["train_s"]) == len(row["infer_s"]) == args["repeats"]
    tokens = row["batch"] * row["length"]
    for kind in ("train", "infer"):
      seconds = harness.median(row[kind + "_s"])
      assert row[kind + "_median_s"] == seconds
      assert row[kind + "_tokens_per_s"] == pytest.approx(tokens / seconds)
      for reference in ("torch", "flax"):
        same = [r for r in rows if (r["cell"], r["length"], r["hidden"], r["impl"]) ==
                (row["cell"], row["length"], row["hidden"], reference)]
        want = same[0][kind + "_median_s"] / seconds if same else None
        assert row[f"{kind}_vs_{reference}"] == pytest.approx(want), (row, reference)
    assert math.isfinite(row["loss"])
  table = _table_rows(results["stdout"])
  assert len(table) == len(rows)
  for row in rows:
    columns = table[(row["cell"], row["length"], row["hidden"], label_of(row))]
    assert columns[4] == harness.fmt_rate(row["train_tokens_per_s"])
    assert columns[8] == harness.fmt_ratio(row["train_vs_flax"])
    assert columns[6] == harness.fmt_ratio(row["train_vs_torch"])


def argparse_like(args):
  return type("Args", (), args)


def test_the_other_seqjax_route_joins_seqjax():
  args = rnn_throughput.parse_args(["--impls", "seqjax,flax"])
  info = {"cells": {"lstm": {"has_fast": True, "auto": "fast"},
                    "gru": {"has_fast": True, "auto": "scan"},
                    "esn": {"has_fast": False, "auto": "scan"}}}
  assert rnn_throughput.impls_for("lstm", args, info) == ["seqjax", "seqjax-scan", "flax"]
  assert rnn_throughput.impls_for("gru", args, info) == ["seqjax", "seqjax-fast", "flax"]
  assert rnn_throughput.impls_for("esn", args, info) == ["seqjax", "flax"]
  args = rnn_throughput.parse_args(["--impls", "seqjax,flax", "--seqjax-implementation", "scan"])
  assert rnn_throughput.impls_for("lstm", args, info) == ["seqjax", "seqjax-fast", "flax"]
  assert rnn_throughput.implementation("seqjax", args) == "scan"
  assert rnn_throughput.implementation("seqjax-fast", args) == "fast"
  assert rnn_throughput.implementation("flax", args) == ""
  assert rnn_models.forward_flops("lstm", 64, 100, 32, 256) == 2 * 64 * 100 * 288 * 4 * 256
  assert rnn_models.forward_flops("gru", 1, 1, 1, 1) == 2 * 2 * 3
  assert rnn_throughput.parse_args(["--torch-no-mkldnn"]).torch_no_mkldnn
  with pytest.raises(SystemExit):
    rnn_throughput.parse_args(["--impls", "seqjax,cudnn"])


def test_quick_run_in_worker_processes(tmp_path):
  """The real path: one worker process per implementation, table and JSON out."""
  path = tmp_path / "results.json"
  result = subprocess.run(
      [sys.executable, str(SCRIPT), "--quick", "--cells", "rnn", "--impls", "seqjax,flax",
       "--json", str(path)],
      cwd=ROOT, capture_output=True, text=True, timeout=300,
      env={**os.environ, "JAX_PLATFORMS": "cpu"})
  assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
  results = json.loads(path.read_text())
  results["stdout"] = result.stdout
  cell = results["info"]["seqjax"]["cells"]["rnn"]
  # What the worker reports auto takes is what the cell's record says.
  backends = tuple(rnn_models.seqjax_cell("rnn", 4).fast.backends)
  assert cell["auto"] == ("fast" if jax.default_backend() in backends else "scan")
  _check_rows(results, ["rnn"], [(8, 16)],
              lambda row: (f"seqjax (auto: {cell['auto']})" if row["impl"] == "seqjax"
                           else row["impl"]))
  assert {row["impl"] for row in results["throughput"]} == {
      "seqjax", "flax", "seqjax-scan" if cell["auto"] == "fast" else "seqjax-fast"}


def test_without_torch_says_so_and_compares_the_rest(monkeypatch, capsys):
  monkeypatch.setattr(rnn_throughput, "torch_available", lambda: False)
  # optax's Adam raises a float to its int32 step count, which the tests'
  # strict dtype promotion rejects; the benchmark runs as users run optax.
  with jax.numpy_dtype_promotion("standard"):
    results = rnn_throughput.main(["--quick", "--cells", "rnn", "--impls", "seqjax,torch",
                                   "--seqjax-implementation", "scan", "--in-process"])
  results["stdout"] = capsys.readouterr().out
  assert "torch is not installed" in results["stdout"]
  assert results["args"]["impls"] == ["seqjax"]
  _check_rows(results, ["rnn"], [(8, 16)],
              lambda row: "seqjax (scan)" if row["impl"] == "seqjax" else row["impl"])
  rows = {row["impl"]: row for row in results["throughput"]}
  assert set(rows) == {"seqjax", "seqjax-fast"}
  assert rows["seqjax"]["implementation"] == "scan"
  assert all(row["train_vs_torch"] is None for row in rows.values())
