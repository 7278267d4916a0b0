"""seqjax.checks: the one-line errors shared by the library."""

import jax
import numpy as np
import pytest

from seqjax import checks
from seqjax.data import springs, timeseries


def test_float_dtype_accepts_float32_and_float64_with_x64():
  assert checks.float_dtype("float32") == np.float32
  with jax.enable_x64(True):
    assert checks.float_dtype(np.float64) == np.float64


def test_float_dtype_errors_name_the_argument():
  with pytest.raises(TypeError, match="^dtype must be float32 or float64, got int32$"):
    checks.float_dtype(np.int32)
  with jax.enable_x64(False):
    with pytest.raises(ValueError, match="^precision=float64 needs jax_enable_x64"):
      checks.float_dtype("float64", name="precision")
    # Its users: the generators refuse float64 they could not honour.
    with pytest.raises(ValueError, match="dtype=float64 needs jax_enable_x64"):
      timeseries.mackey_glass(10, dtype=np.float64)
    with pytest.raises(ValueError, match="dtype=float64 needs jax_enable_x64"):
      springs.trajectories(0, 1, 2, 3, 0.1, dtype=np.float64)
