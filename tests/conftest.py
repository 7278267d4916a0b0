"""Test configuration: fail loudly on silent dtype bugs."""

import os
import pathlib

# The persistent compilation cache is off in the suite (CI always starts cold,
# so it could only share programs between processes) and opt-in for a
# developer re-running files in one process: SEQJAX_TEST_JAX_CACHE=.jax_cache
# (JAX writes an entry in place, so another process could read it
# half-written). A size limit turns on JAX's file lock, whose eviction scans and reads every entry on every write (0.45 s per write at
# 5,000 entries here), quadratic in the suite's size: CI's run with it took 68
# minutes, where a cold run here had taken 18 without it. Set before JAX is
# imported, which reads these variables as its defaults; processes the tests
# start inherit them.
_CACHE = os.environ.setdefault("SEQJAX_TEST_JAX_CACHE", "")
if _CACHE:
  os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", _CACHE)
  os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
  os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

# A cold run is XLA:CPU compiling thousands of small programs. XLA's older
# elemental emitters and LLVM at -O0 compile them about 3x faster (process CPU
# spent compiling tests/cells/test_protocol.py's LSTM, GRU, LRU and RNN cases:
# 89 s -> 24 s) and generate slower code, which tests barely run. Appended to
# XLA_FLAGS (inherited by the processes tests start); XLA reads it once, when
# JAX first compiles. SEQJAX_TEST_XLA_FLAGS="" runs the tests under XLA's
# defaults; XLA_FLAGS that set one of these flags win.
_FAST_COMPILE = "--xla_cpu_use_fusion_emitters=false --xla_backend_optimization_level=0"
_flags = [flag for flag in os.environ.get("SEQJAX_TEST_XLA_FLAGS", _FAST_COMPILE).split()
          if flag.split("=")[0] not in os.environ.get("XLA_FLAGS", "")]
if _flags:
  os.environ["XLA_FLAGS"] = " ".join([os.environ.get("XLA_FLAGS", "")] + _flags).strip()

import jax  # noqa: E402
import pytest  # noqa: E402

# Tests compare against float64 references where they ask for it explicitly
# (``with jax.enable_x64(True)``); everything else runs in float32, as users do.
jax.config.update("jax_default_matmul_precision", "highest")
# Mixing dtypes (float32 with float64, ints with floats, bf16 with f32) must be
# explicit: an implicit promotion is how a float64 constant silently doubles a
# model's memory or an int index turns into a float. Python scalars stay weak.
jax.config.update("jax_numpy_dtype_promotion", "strict")
# Rank promotion is *not* turned into an error globally: every seqjax array is
# (*B, ...) with any number of leading batch axes, so adding a (H,) bias to a
# (*B, H) activation is the protocol, not a bug. Unbatched runs, where no rank
# promotion is intended, are checked under "raise" in
# tests/cells/test_protocol.py::test_unbatched_runs_without_rank_promotion.


# Every program XLA:CPU compiles is loaded as about a dozen memory mappings
# (code, constants, data), held for as long as JAX caches the executable, which
# for a jitted function at module level is the life of the process. Linux allows
# 65,530 mappings per process (vm.max_map_count): an xdist worker running half
# the suite compiled enough programs to reach it, and the next compilation's
# mmap failed inside LLVM as a segmentation fault, at a different test in each
# run. After a test leaves more than _MAX_MAPS mappings open, JAX's caches are
# cleared (the executables are freed; later tests recompile what they need).
# The threshold is a third of the system's limit; SEQJAX_TEST_MAX_MAPS sets it.


def _max_mappings() -> int:
  if "SEQJAX_TEST_MAX_MAPS" in os.environ:
    return int(os.environ["SEQJAX_TEST_MAX_MAPS"])
  try:
    return int(pathlib.Path("/proc/sys/vm/max_map_count").read_text()) // 3
  except (OSError, ValueError):
    return 20_000


_MAX_MAPS = _max_mappings()


def _mappings() -> int:
  try:
    with open("/proc/self/maps", "rb") as maps:
      return sum(1 for _ in maps)
  except OSError:   # not Linux: no such limit to watch
    return 0


@pytest.fixture(autouse=True)
def _release_compiled_programs():
  yield
  if _mappings() > _MAX_MAPS:
    jax.clear_caches()


@pytest.fixture
def optax_promotion():
  """Standard dtype promotion, for tests that call optax directly: optax mixes
  dtypes on purpose (Adam's ``b1 ** count`` with an int count, norms summed
  over bf16 and f32 leaves). seqjax's own train step wraps its optax calls the
  same way (tests/train/test_step.py checks it under strict promotion)."""
  with jax.numpy_dtype_promotion("standard"):
    yield


# Integration tests start processes (the launcher, benchmark scripts, 8-device
# workers, notebooks) or train end to end: the README's test command runs them
# with everything else; `pytest -m "not slow and not integration"` runs the
# unit tests alone.
_INTEGRATION = (
    "experiments/",
    "benchmarks/",
    "test_colabs.py",
    "test_demo.py",
    "train/test_sharding.py",
    "train/test_preemption.py",
    "train/test_lock.py",
)


# Slow (left out of the quick unit tier, still run by the README's test command): the
# protocol suite's three costliest checks (2-5 s each here, compiling forward
# mode, unrolled and rematerialised scans, float64 gradients of a whole
# network per step) on the variants of the composite cells. Their base cells
# (ntm, dnc, hyper_lstm) keep these checks in the unit tier, and every variant
# keeps the rest of the protocol there; a variant changes the controller or a
# normalisation inside the step, not how unroll transforms it.
_SLOW_PROTOCOL_TESTS = ("test_forward_mode_through_the_default_path",
                        "test_unroll_factor_and_remat_keep_meaning",
                        "test_gradients_match_finite_differences")
_SLOW_PROTOCOL_CELLS = ("ntm_feedforward_learned", "dnc_feedforward", "hyper_lstm_layer_norm")


def pytest_collection_modifyitems(config, items):
  del config
  root = pathlib.Path(__file__).parent
  for item in items:
    where = item.path.relative_to(root).as_posix()
    if where.startswith(_INTEGRATION) or where.endswith(_INTEGRATION):
      item.add_marker(pytest.mark.integration)
    cell = getattr(getattr(item, "callspec", None), "params", {}).get("name")
    if (where == "cells/test_protocol.py" and item.originalname in _SLOW_PROTOCOL_TESTS
        and cell in _SLOW_PROTOCOL_CELLS):
      item.add_marker(pytest.mark.slow)
