"""benchmarks/harness.py: shapes and names, alternating repeats, the step timer, workers."""

import argparse

import pytest

import harness


def test_shapes_and_names_are_parsed_and_checked():
  assert harness.parse_shapes("100x256, 8x16") == [(100, 256), (8, 16)]
  for bad in ("100by256", "0x16", "8x"):
    with pytest.raises(argparse.ArgumentTypeError, match="TxH"):
      harness.parse_shapes(bad)
  assert harness.parse_names("lstm, gru", ("lstm", "gru", "rnn"), "--cells") == ["lstm", "gru"]
  with pytest.raises(argparse.ArgumentTypeError, match=r"--cells: unknown \['lsmt'\]"):
    harness.parse_names("lstm,lsmt", ("lstm", "gru"), "--cells")


def test_alternate_reverses_the_order_and_stops_a_failing_name():
  calls = []

  def measure(name):
    calls.append(name)
    if name == "c" and calls.count("c") == 2:
      return {"error": "boom"}
    return {"seconds": float(len(calls))}

  results = harness.alternate(["a", "b", "c"], 4, measure)
  assert calls == ["a", "b", "c", "c", "b", "a", "a", "b", "b", "a"]
  assert [r["seconds"] for r in results["a"]["replies"]] == [1.0, 6.0, 7.0, 10.0]
  assert results["c"] == {"replies": [{"seconds": 3.0}], "error": "boom"}
  assert results["b"]["error"] is None and len(results["b"]["replies"]) == 4


def test_time_steps_doubles_until_a_run_is_long_enough(monkeypatch):
  clock = [0.0]
  runs = []

  def run(steps):  # each step "takes" 0.1 s of a fake clock
    runs.append(steps)
    clock[0] += 0.1 * steps

  monkeypatch.setattr(harness.time, "perf_counter", lambda: clock[0])
  seconds, steps = harness.time_steps(run, 0.5)
  assert runs == [1, 1, 2, 4, 8]  # one untimed step first
  assert steps == 8 and seconds == pytest.approx(0.1)


def test_formatting():
  assert harness.of_peak(50.0, {"JAX": 200.0, "torch": 100.0}) == "50.0 (25% JAX, 50% torch)"
  assert harness.of_peak(None, {"JAX": 200.0}) == "—"
  assert harness.ratio(3.0, 2.0) == 1.5 and harness.ratio(None, 2.0) is None
  assert harness.ratio(1.0, None) is None
  assert harness.table(["a", "b"], [["1", "2"]]) == "| a | b |\n|---|---|\n| 1 | 2 |"
  assert harness.spread_note("x", [1.0, 1.4]) is None
  assert "repeats differ 2.0x" in harness.spread_note("x", [1.0, 2.0])


class _Worker:

  def op_twice(self, request):
    return {"value": 2 * request["value"]}


def test_in_process_pool_answers_and_reports_errors():
  with harness.Pool(__file__, lambda name, threads: _Worker(), 1, in_process=True) as pool:
    assert pool.request("w", op="twice", value=3) == {"value": 6}
    assert pool.fresh("w", op="twice", value=4) == {"value": 8}
    assert pool.request("w", op="missing")["error"].startswith("AttributeError")
    assert pool.request("w", op="twice")["error"] == "KeyError: 'value'"
