"""Tests for the echo-state reservoir cell."""

import hashlib
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax.cells.esn import connections_per_unit, esn
from seqjax.reservoir.readout import blas_thread_limit
from seqjax.scan import unroll
from seqjax.types import FROZEN, trainable_mask


def _radius(w):
  return np.max(np.abs(np.linalg.eigvals(np.asarray(w, np.float64))))


@pytest.mark.parametrize("hidden_size, connectivity, radius", [
    (40, 0.1, 0.9),
    (200, 0.05, 1.25),
    (40, 1.0, 0.3),
    (4, 0.1, 0.5),  # one connection per unit
    (1, 0.001, 0.9),  # a single self-connection
    (300, 0.1, 1.25),  # ARPACK, not all eigenvalues
])
def test_reservoir_has_the_requested_spectral_radius(hidden_size, connectivity, radius):
  cell = esn(hidden_size, spectral_radius=radius, connectivity=connectivity)
  for seed in range(3):
    w_rec = cell.init(jax.random.PRNGKey(seed), 1)[FROZEN]["w_rec"]
    assert w_rec.shape == (hidden_size, hidden_size)
    assert abs(_radius(w_rec) - radius) <= 1e-6 * radius


def test_power_method_radius_is_close():
  w_rec = esn(200, spectral_radius=0.9, spectral_method="power").init(
      jax.random.PRNGKey(0), 1)[FROZEN]["w_rec"]
  assert abs(_radius(w_rec) - 0.9) < 0.1 * 0.9


@pytest.mark.parametrize("hidden_size, connectivity", [(200, 0.1), (200, 0.3), (50, 1.0),
                                                        (30, 0.1), (7, 0.01)])
def test_every_unit_receives_exactly_k_connections(hidden_size, connectivity):
  w_rec = np.asarray(esn(hidden_size, connectivity=connectivity, spectral_method="power").init(
      jax.random.PRNGKey(1), 1)[FROZEN]["w_rec"])
  fan_in = connections_per_unit(hidden_size, connectivity)
  assert fan_in == max(1, round(connectivity * hidden_size))
  # Column j holds the weights into unit j (h @ w_rec).
  np.testing.assert_array_equal(np.count_nonzero(w_rec, axis=0), np.full(hidden_size, fan_in))
  if 1 < fan_in < hidden_size:
    # The sources are spread over every unit, not a fixed band.
    assert np.count_nonzero(np.count_nonzero(w_rec, axis=1)) > 0.9 * hidden_size


@pytest.mark.integration  # starts a process
def test_same_key_same_reservoir_across_calls_and_processes():
  # ARPACK without a fixed start vector gave different reservoirs for the
  # same key from H ~ 256 up (issue 18); H = 2000 is the size that showed it.
  cell = esn(2000, spectral_radius=1.25, connectivity=0.1)
  first = np.asarray(cell.init(jax.random.PRNGKey(7), 1)[FROZEN]["w_rec"])
  second = np.asarray(cell.init(jax.random.PRNGKey(7), 1)[FROZEN]["w_rec"])
  assert first.dtype == np.float32
  np.testing.assert_array_equal(first, second)
  script = ("import hashlib, jax, numpy as np; from seqjax.cells.esn import esn; "
            "w = esn(2000, spectral_radius=1.25, connectivity=0.1).init("
            "jax.random.PRNGKey(7), 1)['frozen']['w_rec']; "
            "print(hashlib.sha256(np.asarray(w).tobytes()).hexdigest())")
  other = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, cwd=pathlib.Path(__file__).parents[2])
  assert other.stdout.split()[-1] == hashlib.sha256(first.tobytes()).hexdigest()
  with blas_thread_limit():  # all 2000 eigenvalues: one thread is faster on a busy machine
    assert abs(_radius(first) - 1.25) <= 1e-6 * 1.25
  assert np.count_nonzero(first) == 2000 * 200


def test_input_and_bias_scaling():
  params = esn(40, input_scaling=0.7, bias_scaling=0.2).init(jax.random.PRNGKey(2), 2)
  w_in, b = np.asarray(params[FROZEN]["w_in"]), np.asarray(params[FROZEN]["b"])
  assert w_in.shape == (2, 40) and b.shape == (40,)
  assert np.all(np.abs(w_in) <= 0.7) and np.max(np.abs(w_in)) > 0.65
  assert np.all(np.abs(b) <= 0.2) and np.max(np.abs(b)) > 0.15
  unbiased = esn(40).init(jax.random.PRNGKey(2), 2)[FROZEN]["b"]
  np.testing.assert_array_equal(unbiased, np.zeros(40))


@pytest.mark.parametrize("leak_rate", [1.0, 0.3])
def test_matches_numpy_loop(leak_rate):
  cell = esn(40, connectivity=0.3, bias_scaling=0.3, leak_rate=leak_rate)
  params = cell.init(jax.random.PRNGKey(3), 1)
  w_in, w_rec, b = (np.asarray(params[FROZEN][k], np.float64) for k in ("w_in", "w_rec", "b"))
  xs = jax.random.normal(jax.random.PRNGKey(4), (2, 15, 1))
  _, ys = unroll(cell, params, xs)
  assert ys.shape == (2, 15, 40)
  for i in range(2):
    h, want = np.zeros(40), []
    for x in np.asarray(xs[i], np.float64):
      h = (1 - leak_rate) * h + leak_rate * np.tanh(x @ w_in + h @ w_rec + b)
      want.append(h)
    np.testing.assert_allclose(ys[i], np.stack(want), rtol=1e-5, atol=1e-5)


def test_echo_state_property():
  cell = esn(40, spectral_radius=0.8, connectivity=0.2)
  params = cell.init(jax.random.PRNGKey(5), 1)
  xs = 0.5 * jax.random.normal(jax.random.PRNGKey(6), (300, 1))
  far = jax.random.uniform(jax.random.PRNGKey(7), (40,), minval=-1.0, maxval=1.0)
  _, from_zero = unroll(cell, params, xs)
  _, from_far = unroll(cell, params, xs, carry=far)
  distance = np.linalg.norm(np.asarray(from_zero) - np.asarray(from_far), axis=-1)
  assert distance[0] > 0.1
  assert distance[-1] < 1e-6


def test_trainable_mask_marks_the_reservoir_frozen():
  params = esn(4).init(jax.random.PRNGKey(0), 1)
  assert trainable_mask(params) == {FROZEN: {"w_in": False, "w_rec": False, "b": False}}


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(spectral_radius=0.0), ValueError, "spectral_radius must be > 0, got 0.0"),
    (dict(spectral_radius=-0.9), ValueError, "spectral_radius.*-0.9"),
    (dict(connectivity=0.0), ValueError, r"connectivity must be in \(0.0, 1.0\], got 0.0"),
    (dict(connectivity=1.5), ValueError, "connectivity.*1.5"),
    (dict(leak_rate=0.0), ValueError, r"leak_rate must be in \(0.0, 1.0\], got 0.0"),
    (dict(leak_rate=1.2), ValueError, "leak_rate.*1.2"),
    (dict(input_scaling=-1.0), ValueError, "input_scaling must be finite and >= 0, got -1.0"),
    (dict(bias_scaling=-0.1), ValueError, "bias_scaling.*-0.1"),
    (dict(spectral_method="arnoldi"), ValueError, "spectral_method"),
    (dict(connectivity="dense"), TypeError, "connectivity"),
    (dict(spectral_radius=float("inf")), ValueError, "spectral_radius must be finite, got inf"),
    (dict(spectral_radius=float("nan")), ValueError, "spectral_radius must be finite, got nan"),
    (dict(connectivity=float("nan")), ValueError, "connectivity.*nan"),
    (dict(leak_rate=float("nan")), ValueError, "leak_rate.*nan"),
    (dict(leak_rate=float("inf")), ValueError, "leak_rate.*inf"),
    (dict(input_scaling=float("inf")), ValueError, "input_scaling must be finite, got inf"),
    (dict(input_scaling=float("nan")), ValueError, "input_scaling must be finite, got nan"),
    (dict(bias_scaling=float("inf")), ValueError, "bias_scaling must be finite, got inf"),
    (dict(bias_scaling=float("-nan")), ValueError, "bias_scaling must be finite"),
    (dict(spectral_radius=True), TypeError, "spectral_radius"),
    (dict(dtype=jnp.int32), TypeError, "dtype must be a floating dtype.*int32"),
    (dict(dtype="not a dtype"), TypeError, "dtype must be a floating dtype"),
])
def test_bad_hyperparameters(kwargs, error, match):
  with pytest.raises(error, match=match):
    esn(10, **kwargs)


# Configurations the cell protocol suite (tests/cells/test_protocol.py) runs;
# builders take the dtype.
PROTOCOL_CELLS = {
    "esn": lambda dtype: esn(6, spectral_radius=0.9, connectivity=0.5, leak_rate=0.5, dtype=dtype),
}
