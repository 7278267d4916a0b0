"""Developer tool: counts XLA compilations and their time, per test file and test.

Not a conftest (nothing loads it by default). Pass it with ``-p``. The
suite runs without a persistent cache, as CI does, so every program is
compiled::

  .venv/bin/python -m pytest -q -p no:cacheprovider \
      -p tests.compile_counter tests/cells/test_protocol.py

With a cache directory (``SEQJAX_TEST_JAX_CACHE=$(mktemp -d)``) a program
whose HLO another test (or xdist worker) already compiled is read back from
it, which is counted as a hit and takes a few milliseconds.

At the end it prints the number of backend compilations, their summed time
(``/jax/core/compile/backend_compile_duration``, cache hits included) and
the process CPU time they took, the persistent cache's hits and misses, the
summed tracing and lowering time, the process's whole CPU time, and the tests
that compiled the most (``SEQJAX_COMPILE_TOP``, default 15). CPU times depend
much less than wall-clock durations on other jobs sharing the machine. Under
xdist each worker counts its own share: set ``SEQJAX_COMPILE_REPORT=path`` to
have every process append its totals there as JSON lines, and
``SEQJAX_COMPILE_PER_TEST=path`` to have it append every test's
``{nodeid: [compilations, seconds, cache hits, CPU seconds]}``.
"""

import collections
import json
import os
import threading
import time

import pytest

_COMPILE = "/jax/core/compile/backend_compile_duration"
_TRACE = "/jax/core/compile/jaxpr_trace_duration"
_LOWER = "/jax/core/compile/jaxpr_to_mlir_module_duration"
_HIT = "/jax/compilation_cache/cache_hits"
_MISS = "/jax/compilation_cache/cache_misses"

_lock = threading.Lock()
_current = ["(collection)"]
_totals = collections.Counter()
_per_test = collections.defaultdict(lambda: [0, 0.0, 0, 0.0])
_hit = [False]  # whether the compilation being timed was a cache hit
_cpu_start = time.process_time()


def _duration_listener(event, duration, **kwargs):
  del kwargs
  with _lock:
    if event == _COMPILE:
      _totals["compile_n"] += 1
      _totals["compile_s"] += duration
      entry = _per_test[_current[0]]
      entry[0] += 1
      entry[1] += duration
      entry[2] += _hit[0]
      _hit[0] = False
    elif event == _TRACE:
      _totals["trace_s"] += duration
    elif event == _LOWER:
      _totals["lower_s"] += duration


def _event_listener(event, **kwargs):
  del kwargs
  if event in (_HIT, _MISS):
    with _lock:
      _totals[event] += 1
      _hit[0] = event == _HIT


def _timed(compile_or_get_cached):
  """Adds the process CPU time each compilation (or cache read) takes."""

  def wrapper(*args, **kwargs):
    start = time.process_time()
    try:
      return compile_or_get_cached(*args, **kwargs)
    finally:
      seconds = time.process_time() - start
      with _lock:
        _totals["compile_cpu_s"] += seconds
        _per_test[_current[0]][3] += seconds

  return wrapper


def pytest_configure(config):
  # Imported here, not at the top: ``-p`` plugins load before tests/conftest.py,
  # which sets the persistent-cache variables JAX reads when first imported.
  del config
  import jax
  from jax._src import compiler
  jax.monitoring.register_event_duration_secs_listener(_duration_listener)
  jax.monitoring.register_event_listener(_event_listener)
  compiler.compile_or_get_cached = _timed(compiler.compile_or_get_cached)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
  del nextitem
  _current[0] = item.nodeid
  yield
  _current[0] = "(between tests)"


def _summary():
  return {
      "worker": os.environ.get("PYTEST_XDIST_WORKER", "main"),
      "compilations": _totals["compile_n"],
      "compile_s": round(_totals["compile_s"], 2),
      "compile_cpu_s": round(_totals["compile_cpu_s"], 2),
      "cache_hits": _totals[_HIT],
      "cache_misses": _totals[_MISS],
      "trace_s": round(_totals["trace_s"], 2),
      "lower_s": round(_totals["lower_s"], 2),
      "process_cpu_s": round(time.process_time() - _cpu_start, 1),
  }


def pytest_sessionfinish(session):
  del session
  for variable, record in (("SEQJAX_COMPILE_REPORT", _summary()),
                           ("SEQJAX_COMPILE_PER_TEST", dict(_per_test))):
    path = os.environ.get(variable)
    if path:
      with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def pytest_terminal_summary(terminalreporter):
  s = _summary()
  write = terminalreporter.write_line
  if os.environ.get("PYTEST_XDIST_WORKER") is None and not s["compilations"]:
    write("compile counter: nothing compiled in this process (under xdist, see "
          "SEQJAX_COMPILE_REPORT)")
    return
  write(f"compile counter: {s['compilations']} compilations, {s['compile_s']:.1f} s compiling "
        f"({s['compile_cpu_s']:.1f} s of process CPU) "
        f"(persistent cache: {s['cache_hits']} hits, {s['cache_misses']} misses), "
        f"{s['trace_s']:.1f} s tracing, {s['lower_s']:.1f} s lowering; "
        f"{s['process_cpu_s']:.0f} s CPU in this process")
  top = int(os.environ.get("SEQJAX_COMPILE_TOP", "15"))
  ranked = sorted(_per_test.items(), key=lambda kv: -kv[1][1])[:top]
  for nodeid, (n, seconds, hits, cpu) in ranked:
    write(f"  {seconds:7.2f} s ({cpu:6.2f} s CPU) {n:5d} compilations ({hits} cache hits)  "
          f"{nodeid}")
