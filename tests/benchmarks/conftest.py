"""The benchmark scripts import their shared modules (harness, rnn_models) by plain name,
as they do when run as ``python benchmarks/<script>.py``: put benchmarks/ on the path."""

import pathlib
import sys

BENCHMARKS = pathlib.Path(__file__).resolve().parents[2] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
  sys.path.insert(0, str(BENCHMARKS))
