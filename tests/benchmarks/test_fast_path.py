"""benchmarks/fast_path.py: the paired speed-ups and verdicts follow from the reported times."""

import jax
import pytest

import fast_path
import harness


def _row(cell, fast_over_scan):
  return {"cell": cell, "train_speedup": {"fast/scan": fast_over_scan}}


def test_verdict_per_cell():
  assert fast_path.verdict([_row("gru", 1.2), _row("gru", 1.01)]) == "fast"
  assert fast_path.verdict([_row("gru", 0.9), _row("gru", 1.0)]) == "scan"
  assert fast_path.verdict([_row("gru", 0.9), _row("gru", 1.1)]) == "depends on the shape"
  assert fast_path.paired_speedup([1.0, 2.0, 4.0], [2.0, 2.0, 2.0]) == 1.0
  assert fast_path.paired_speedup([1.0, 1.0], [3.0, 2.0]) == 2.5


def test_quick_run_is_consistent_with_its_times(capsys):
  # optax's Adam raises a float to its int32 step count, which the tests'
  # strict dtype promotion rejects; the benchmark runs as users run optax.
  with jax.numpy_dtype_promotion("standard"):
    results = fast_path.main(["--quick", "--cells", "rnn"])
  out = capsys.readouterr().out
  (row,) = results["rows"]
  assert (row["cell"], row["length"], row["hidden"]) == ("rnn", 8, 16)
  for kind in ("train", "infer"):
    assert set(row[kind + "_s"]) == set(fast_path.ROUTES)
    assert all(len(times) == 2 for times in row[kind + "_s"].values())  # --quick: 2 repeats
    for pair, speedup in row[kind + "_speedup"].items():
      a, b = pair.split("/")
      quotients = [y / x for x, y in zip(row[kind + "_s"][a], row[kind + "_s"][b])]
      assert speedup == pytest.approx(harness.median(quotients)), pair
  times = row["train_s"]
  assert row["fast_wins"] == sum(f < s for f, s in zip(times["fast"], times["scan"]))
  rule = fast_path.verdict(results["rows"])
  assert results["verdict"] == {"rnn": rule}
  assert f"at {int(row['train_speedup']['fast/scan'] > 1)} of 1 shapes -> {rule}" in out
  auto = results["info"]["cells"]["rnn"]["auto"]
  assert f"| rnn | 8 | 16 | {1e3 * harness.median(times['fast']):.1f} |" in out
  assert f"{row['train_speedup'][auto + '/flax']:.2f} ({auto})" in out
  slower = row["train_speedup"][auto + "/flax"] < 1
  assert ("auto today trains slower than flax at: rnn T=8 H=16" in out) == slower
