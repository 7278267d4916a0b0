"""benchmarks/rnn_memory.py and rnn_compile.py: quick runs in this process."""

import jax
import pytest

import rnn_compile
import rnn_memory


def test_memory_analysis_without_running(capsys):
  results = rnn_memory.main(["--quick", "--in-process", "--run-fraction", "0"])
  out = capsys.readouterr().out
  rows = results["memory"]
  assert [(row["time_major"], row["remat"]) for row in rows] == [
      (False, True), (False, False), (True, True), (True, False)]
  for row in rows:
    assert "error" not in row, row
    analysis = row["analysis"]
    assert row["predicted_bytes"] == (analysis["argument_size_in_bytes"]
                                      + analysis["output_size_in_bytes"]
                                      + analysis["temp_size_in_bytes"]
                                      - analysis["alias_size_in_bytes"])
    assert not row["ran"] and "step_s" not in row
  # remat keeps fewer activations for the backward pass.
  assert rows[0]["analysis"]["temp_size_in_bytes"] < rows[1]["analysis"]["temp_size_in_bytes"]
  assert out.count("no (analysis only)") == 4
  assert "T=200, implementation=auto" in out


def test_compile_rows_per_implementation_and_the_same_first_loss(capsys):
  # optax's Adam raises a float to its int32 step count, which the tests'
  # strict dtype promotion rejects; the benchmark runs as users run optax.
  with jax.numpy_dtype_promotion("standard"):
    results = rnn_compile.main(["--quick", "--in-process", "--impls", "seqjax-scan,seqjax-fast"])
  out = capsys.readouterr().out
  rows = results["compile"]
  assert [row["impl"] for row in rows] == ["seqjax-scan", "seqjax-fast"]
  # Both routes compute the same 2-layer LSTM from the same parameters.
  assert rows[0]["loss"] == pytest.approx(rows[1]["loss"], rel=1e-5)
  for row in rows:
    total = f"{row['lower_s'] + row['compile_s']:.2f}"
    assert f"| {row['impl']} | {row['lower_s']:.2f} | {row['compile_s']:.2f} | {total} |" in out
  assert out.startswith("2-layer LSTM training step")
