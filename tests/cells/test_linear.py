"""Tests for ``seqjax.cells.linear``: ``linear_recurrence``, ``lru`` and ``min_gru``.

References are plain numpy loops of the textbook equations (in float64 /
complex128); the associative fast path is checked against ``lax.scan`` of
``step`` in outputs, final carries and gradients.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax.cells.linear import linear_recurrence, lru, min_gru
from seqjax.scan import unroll

D = 3
T = 6


def _close(got, want, tol=1e-5):
  jax.tree_util.tree_map(
      lambda u, v: np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=tol, atol=tol),
      got, want)


def _np_recurrence(a, b, h0=None, reverse=False):
  """h_t = a_t h_{t-1} + b_t by a Python loop, in double precision."""
  a, b = np.broadcast_arrays(np.asarray(a, np.complex128), np.asarray(b, np.complex128))
  h = np.zeros(a.shape[1:], np.complex128) if h0 is None else np.asarray(h0, np.complex128)
  hs = np.zeros(a.shape, np.complex128)
  for t in (range(len(a) - 1, -1, -1) if reverse else range(len(a))):
    h = a[t] * h + b[t]
    hs[t] = h
  return hs


def _random_coefficients(rng, shape, dtype):
  """Decays inside the unit disk, inputs and an initial state of ``dtype``."""
  radius = rng.uniform(0.3, 0.99, shape)
  if np.issubdtype(dtype, np.complexfloating):
    a = radius * np.exp(1j * rng.uniform(0, 2 * np.pi, shape))
    b = rng.normal(size=shape) + 1j * rng.normal(size=shape)
    h0 = rng.normal(size=shape[1:]) + 1j * rng.normal(size=shape[1:])
  else:
    a = radius * rng.choice([-1.0, 1.0], shape)
    b = rng.normal(size=shape)
    h0 = rng.normal(size=shape[1:])
  return a.astype(dtype), b.astype(dtype), h0.astype(dtype)


@jax.jit(static_argnames="reverse")
def _both_recurrences(a, b, h0, reverse):
  return {implementation: linear_recurrence(a, b, h0, reverse=reverse,
                                            implementation=implementation)
          for implementation in ("sequential", "associative")}


# --- linear_recurrence --------------------------------------------------------

@pytest.mark.parametrize("dtype,reverse,with_h0", [
    (np.float32, False, False),
    (np.float32, True, True),
    (np.complex64, False, True),
    (np.complex64, True, False),
])
def test_linear_recurrence_matches_python_loop(dtype, reverse, with_h0):
  rng = np.random.default_rng(0)
  a, b, h0 = _random_coefficients(rng, (17, 2, 3, 4), dtype)
  h0 = h0 if with_h0 else None
  want = _np_recurrence(a, b, h0, reverse)
  if dtype == np.float32:
    want = want.real
  got = _both_recurrences(a, b, h0, reverse=reverse)
  for implementation in ("sequential", "associative"):
    assert got[implementation].shape == a.shape
    assert got[implementation].dtype == dtype
    _close(got[implementation], want)
  _close(got["associative"], got["sequential"])


def test_linear_recurrence_broadcasts_decays():
  rng = np.random.default_rng(1)
  b = rng.normal(size=(8, 2, 4)).astype(np.float32)
  per_feature = rng.uniform(-0.9, 0.9, (4,)).astype(np.float32)
  per_time = rng.uniform(-0.9, 0.9, (8, 1, 4)).astype(np.float32)
  for got in _both_recurrences(per_time, b, None, reverse=False).values():
    _close(got, _np_recurrence(per_time, b).real)
  # A decay constant over time and batch; real with a complex input, the
  # state is complex.
  b_complex = (b + 1j * b[::-1]).astype(np.complex64)
  for got in _both_recurrences(per_feature, b_complex, b_complex[0], reverse=True).values():
    assert got.dtype == np.complex64
    _close(got, _np_recurrence(per_feature, b_complex, b_complex[0], reverse=True))


def test_linear_recurrence_accumulates_bfloat16_in_float32():
  # With a = 1 the states are running sums of 300 numbers near 1. Summed in
  # float32 the only error left is the final rounding to bfloat16 (relative
  # 2^-8 at most); summed in bfloat16 the errors pile up to ~1e-2 by either
  # route.
  rng = np.random.default_rng(3)
  b = jnp.asarray(rng.uniform(0.5, 1.5, (300, 4)), jnp.bfloat16)
  a = jnp.ones_like(b)
  want = np.cumsum(np.asarray(b, np.float64), axis=0)
  for got in _both_recurrences(a, b, None, reverse=False).values():
    assert got.dtype == jnp.bfloat16
    relative = np.abs(np.asarray(got, np.float64) - want) / want
    assert relative.max() <= 2.0**-8 * 1.01


def test_linear_recurrence_gradients_agree():
  # Complex and reversed gradients are checked through lru's fast path below.
  dtype, reverse = np.float32, False
  rng = np.random.default_rng(2)
  a, b, h0 = _random_coefficients(rng, (12, 3, 4), dtype)
  weights = rng.normal(size=a.shape).astype(np.float32)

  def loss(a, b, h0, implementation):
    hs = linear_recurrence(a, b, h0, reverse=reverse, implementation=implementation)
    return jnp.sum(weights * jnp.abs(hs) ** 2)

  @jax.jit
  def grads(a, b, h0):
    return [jax.grad(loss, argnums=(0, 1, 2))(a, b, h0, implementation)
            for implementation in ("associative", "sequential")]

  fast, slow = grads(a, b, h0)
  _close(fast, slow, tol=1e-4)


def test_linear_recurrence_empty_sequence():
  for implementation in ("sequential", "associative"):
    hs = linear_recurrence(jnp.zeros((0, 2, 3)), jnp.zeros((0, 2, 3)), jnp.ones((2, 3)),
                           implementation=implementation)
    assert hs.shape == (0, 2, 3)


def test_linear_recurrence_rejects_bad_arguments():
  a = jnp.zeros((5, 2, 3))
  with pytest.raises(ValueError, match="implementation must be one of .*got 'parallel'"):
    linear_recurrence(a, a, implementation="parallel")
  with pytest.raises(TypeError, match="a must be a floating-point array, got dtype int32"):
    linear_recurrence(jnp.zeros((5, 3), jnp.int32), jnp.zeros((5, 3)))
  with pytest.raises(ValueError, match=r"a and b must broadcast.*\(5, 2, 3\) and \(5, 3, 3\)"):
    linear_recurrence(a, jnp.zeros((5, 3, 3)))
  with pytest.raises(ValueError, match=r"h0 must broadcast to the state shape \(2, 3\).*\(4, 3\)"):
    linear_recurrence(a, a, jnp.zeros((4, 3)))
  with pytest.raises(ValueError, match=r"h0 must broadcast.*got shape \(7, 2, 3\)"):
    linear_recurrence(a, a, jnp.zeros((7, 2, 3)))
  with pytest.raises(TypeError, match="reverse must be True or False"):
    linear_recurrence(a, a, reverse=1)


# --- numpy references of the cells ---------------------------------------------

def _sigmoid(u):
  return 1.0 / (1.0 + np.exp(-u))


def _np_lru(params, xs, h0):
  """Orvieto et al. 2023, eqs. of Sec. 3, for one sequence xs (T, D)."""
  p = jax.tree_util.tree_map(lambda v: np.asarray(v, np.float64), params)
  lam = np.exp(-np.exp(p["nu_log"]) + 1j * np.exp(p["theta_log"]))
  b_matrix = (p["b_re"] + 1j * p["b_im"]) * np.exp(p["gamma_log"])[None, :]
  c_matrix = p["c_re"] + 1j * p["c_im"]
  h = np.asarray(h0, np.complex128)
  ys = []
  for x in np.asarray(xs, np.float64):
    h = lam * h + x @ b_matrix
    ys.append((h @ c_matrix).real + x @ p["d"])
  return h, np.stack(ys)


def _np_min_gru(params, xs, h0):
  """Feng et al. 2024, minGRU (Sec. 3.1), for one sequence xs (T, D)."""
  w = np.asarray(params["w_x"], np.float64)
  bias = np.asarray(params["b"], np.float64)
  hidden = w.shape[1] // 2
  w_z, w_h, b_z, b_h = w[:, :hidden], w[:, hidden:], bias[:hidden], bias[hidden:]
  h = np.asarray(h0, np.float64)
  ys = []
  for x in np.asarray(xs, np.float64):
    z = _sigmoid(x @ w_z + b_z)
    candidate = x @ w_h + b_h
    h = (1 - z) * h + z * candidate
    ys.append(h)
  return h, np.stack(ys)


def _make(name, dtype=jnp.float32):
  if name == "lru":
    return lru(5, state_size=4, r_min=0.5, r_max=0.95, dtype=dtype)
  # Nonzero biases, so that a wrong bias block would show.
  return min_gru(5, bias_init=jax.nn.initializers.normal(1.0), dtype=dtype)


# Data come from numpy: every new shape drawn with jax.random costs a compile.
def _nonzero_carry(cell, params, batch_shape, rng):
  zeros = cell.initial_carry(params, batch_shape)
  carry = rng.normal(size=zeros.shape)
  if jnp.iscomplexobj(zeros):
    carry = carry + 1j * rng.normal(size=zeros.shape)
  return jnp.asarray(carry, zeros.dtype)


def _both_unrolls(cell, params, xs, carry, **kwargs):
  """``unroll`` by the fast path and by the plain scan, in one compiled call."""
  run = jax.jit(lambda p, x, c: {
      implementation: unroll(cell, p, x, c, implementation=implementation, **kwargs)
      for implementation in ("fast", "scan")})
  return run(params, xs, carry)


_REFERENCES = {"lru": _np_lru, "min_gru": _np_min_gru}


@pytest.mark.parametrize("name", ["lru", "min_gru"])
def test_cell_matches_numpy_reference(name):
  cell = _make(name)
  params = cell.init(jax.random.PRNGKey(3), D)
  rng = np.random.default_rng(3)
  xs = rng.normal(size=(2, T, D)).astype(np.float32)
  start = _nonzero_carry(cell, params, (2,), rng)
  results = _both_unrolls(cell, params, xs, start)
  for carry, ys in results.values():
    assert ys.shape == (2, T, 5) and ys.dtype == jnp.float32
    for i in range(2):
      want_carry, want_ys = _REFERENCES[name](params, xs[i], start[i])
      _close(ys[i], want_ys)
      _close(carry[i], want_carry)


# --- fast path == plain scan -----------------------------------------------------

def _flags(rng, batch_shape, p):
  return rng.random(batch_shape + (T,)) < p


SCENARIOS = {
    # name: (batch_shape, mask?, reset?, reverse). Runs without mask or reset
    # are in test_cell_matches_numpy_reference; one kind of flag at a time is
    # in tests/cells/test_protocol.py.
    "mask_reset": ((4,), True, True, False),
    "reverse_mask_reset": ((4,), True, True, True),
    "multi_batch_reverse": ((2, 3), True, True, True),
    "unbatched": ((), True, True, False),
}


def _scenario(name, scenario, seed=4):
  batch_shape, use_mask, use_reset, reverse = SCENARIOS[scenario]
  cell = _make(name)
  params = cell.init(jax.random.PRNGKey(seed), D)
  rng = np.random.default_rng(seed)
  xs = rng.normal(size=batch_shape + (T, D)).astype(np.float32)
  carry = _nonzero_carry(cell, params, batch_shape, rng)
  mask = reset = None
  if use_mask:
    mask = _flags(rng, batch_shape, 0.6)
    mask[..., 1] = False                  # a hole in every row
    if batch_shape == (4,):
      mask[0] = False                     # a fully padded row
      mask[1] = np.arange(T) >= 3         # left padding
      mask[2] = np.arange(T) < T - 2      # right padding
  if use_reset:
    reset = _flags(rng, batch_shape, 0.3)
    reset[..., 1] = True                  # a padded step that starts a segment
    reset[..., T - 2] = True
  kwargs = dict(mask=mask, reset=reset, reverse=reverse)
  return cell, params, xs, carry, kwargs


@pytest.mark.parametrize("name", ["lru", "min_gru"])
@pytest.mark.parametrize("scenario", ["mask_reset", "multi_batch_reverse", "unbatched"])
def test_fast_path_equals_scan(name, scenario):
  cell, params, xs, carry, kwargs = _scenario(name, scenario)
  results = _both_unrolls(cell, params, xs, carry, **kwargs)
  _close(results["fast"], results["scan"])
  final, ys = results["fast"]
  assert final.dtype == carry.dtype and final.shape == carry.shape
  if kwargs["mask"] is not None:
    np.testing.assert_array_equal(np.asarray(ys)[~kwargs["mask"]], 0.0)


@pytest.mark.parametrize("name", ["lru", "min_gru"])
def test_fast_path_gradients_equal_scan(name):
  # Reversed, padded and reset together (tests/cells/test_protocol.py covers
  # the forward direction).
  cell, params, xs, carry, kwargs = _scenario(name, "reverse_mask_reset", seed=5)
  weights = np.random.default_rng(6).normal(size=xs.shape[:-1] + (cell.output_size,))
  weights = weights.astype(np.float32)

  def loss(p, x, c, implementation):
    final, ys = unroll(cell, p, x, c, implementation=implementation, **kwargs)
    return jnp.sum(weights * jnp.tanh(ys)) + jnp.sum(jnp.abs(final) ** 2)

  @jax.jit
  def grads(p, x, c):
    return [jax.value_and_grad(loss, argnums=(0, 1, 2))(p, x, c, implementation)
            for implementation in ("fast", "scan")]

  fast, slow = grads(params, xs, carry)
  _close(fast, slow, tol=1e-4)
  # Every parameter takes part, so a path that dropped one would show here.
  for leaf in jax.tree_util.tree_leaves(slow[1][0]):
    assert np.any(np.asarray(leaf) != 0)


@pytest.mark.parametrize("name", ["lru", "min_gru"])
def test_fast_path_is_associative_and_enabled_off_cpu(name):
  cell = _make(name)
  params = cell.init(jax.random.PRNGKey(0), D)
  xs = jnp.zeros((2, T, D))

  def primitives(implementation):
    jaxpr = jax.make_jaxpr(lambda p, x: unroll(cell, p, x, implementation=implementation))(params, xs)
    return {str(e.primitive) for e in jaxpr.jaxpr.eqns}

  assert "scan" in primitives("scan")
  assert "scan" not in primitives("fast")  # no sequential loop over time
  assert cell.fast.backends == ("gpu", "tpu")


# --- LRU specifics -------------------------------------------------------------

def _np_lambda(params):
  p = jax.tree_util.tree_map(lambda v: np.asarray(v, np.float64), params)
  return np.exp(-np.exp(p["nu_log"]) + 1j * np.exp(p["theta_log"]))


@pytest.mark.parametrize("r_min,r_max,max_phase", [
    (0.0, 1.0, 2 * math.pi),
    (0.4, 0.9, 2 * math.pi),
    (0.9, 0.999, math.pi / 10),
])
def test_lru_init_lies_on_the_ring(r_min, r_max, max_phase):
  cell = lru(8, state_size=2048, r_min=r_min, r_max=r_max, max_phase=max_phase)
  params = cell.init(jax.random.PRNGKey(7), D)
  lam = _np_lambda(params)
  radius = np.abs(lam)
  assert np.all(radius >= r_min - 1e-6) and np.all(radius <= r_max + 1e-6)
  assert np.all(radius < 1.0)
  phase = np.exp(np.asarray(params["theta_log"], np.float64))
  assert np.all(phase >= 0) and np.all(phase <= max_phase * (1 + 1e-6))
  # Uniform on the ring's area: |lambda|^2 uniform on [r_min^2, r_max^2]
  # (mean and spread within ~4 standard errors for 2048 samples).
  r2 = radius**2
  lo, hi = r_min**2, r_max**2
  assert abs(r2.mean() - (lo + hi) / 2) < 4 * (hi - lo) / math.sqrt(12 * 2048)
  assert abs(np.mean(r2 < (lo + hi) / 2) - 0.5) < 0.05
  assert abs(np.mean(phase < max_phase / 2) - 0.5) < 0.05
  # Normalisation: gamma = sqrt(1 - |lambda|^2).
  np.testing.assert_allclose(np.exp(np.asarray(params["gamma_log"], np.float64)),
                             np.sqrt(1 - r2), rtol=1e-5, atol=1e-6)


def test_lru_eigenvalues_stay_inside_the_unit_circle_near_one():
  # Radii that round to 1 in float32 are capped: |lambda| < 1 as the cell
  # computes it, and gamma > 0, so every state still decays.
  cell = lru(8, state_size=2048, r_min=0.9999999, r_max=1.0)
  params = cell.init(jax.random.PRNGKey(8), D)
  for value in jax.tree_util.tree_leaves(params):
    assert np.all(np.isfinite(np.asarray(value)))
  radius32 = np.exp(-np.exp(np.asarray(params["nu_log"])))  # float32, as in step
  assert radius32.dtype == np.float32 and np.all(radius32 < 1.0)
  assert np.all(np.exp(np.asarray(params["gamma_log"])) > 0)


def test_lru_shapes_and_dtypes():
  cell = lru(5, state_size=4)
  params = cell.init(jax.random.PRNGKey(0), D)
  shapes = {k: v.shape for k, v in params.items()}
  assert shapes == {"nu_log": (4,), "theta_log": (4,), "gamma_log": (4,),
                    "b_re": (D, 4), "b_im": (D, 4), "c_re": (4, 5), "c_im": (4, 5),
                    "d": (D, 5)}
  assert cell.output_size == 5 and cell.input_size(params) == D
  carry = cell.initial_carry(params, (2, 6))
  assert carry.shape == (2, 6, 4) and carry.dtype == jnp.complex64
  # Unbatched step.
  carry, y = cell.step(params, cell.initial_carry(params, ()), jnp.ones((D,)))
  assert carry.shape == (4,) and y.shape == (5,) and y.dtype == jnp.float32
  # state_size defaults to hidden_size; initial_carry works on abstract params.
  default = lru(6)
  abstract = jax.eval_shape(lambda key: default.init(key, D), jax.random.PRNGKey(0))
  assert default.initial_carry(abstract, (2,)).shape == (2, 6)


def test_float64_params_give_complex128_carry():
  # Shapes and dtypes only (jax.eval_shape compiles nothing); float64 numerics
  # are exercised by the gradient checks of tests/cells/test_protocol.py.
  with jax.enable_x64(True):
    xs = jax.ShapeDtypeStruct((2, T, D), jnp.float64)
    for cell in (lru(5, state_size=4, dtype=jnp.float64), min_gru(5, dtype=jnp.float64)):
      params = jax.eval_shape(lambda key: cell.init(key, D), jax.random.PRNGKey(0))
      assert all(v.dtype == jnp.float64 for v in jax.tree_util.tree_leaves(params))
      want = jnp.complex128 if cell.name.startswith("lru") else jnp.float64
      for implementation in ("fast", "scan"):
        carry, ys = jax.eval_shape(
            lambda p, x: unroll(cell, p, x, implementation=implementation), params, xs)
        assert carry.dtype == want and ys.dtype == jnp.float64


@pytest.mark.parametrize("kwargs,error,message", [
    (dict(hidden_size=0), ValueError, "hidden_size must be a positive integer, got 0"),
    (dict(hidden_size=4, state_size=0), ValueError, "state_size must be a positive integer, got 0"),
    (dict(hidden_size=4, state_size=2.0), TypeError, "state_size must be a positive integer"),
    (dict(hidden_size=4, r_min=-0.1), ValueError, r"r_min must be in \[0.0, 1.0\], got -0.1"),
    (dict(hidden_size=4, r_max=1.5), ValueError, r"r_max must be in \(0.0, 1.0\], got 1.5"),
    (dict(hidden_size=4, r_min=0.9, r_max=0.5), ValueError,
     "r_min must be <= r_max, got r_min=0.9 and r_max=0.5"),
    (dict(hidden_size=4, r_min=1.0, r_max=1.0), ValueError, "r_min must be < 1"),
    (dict(hidden_size=4, max_phase=0.0), ValueError, "max_phase must be > 0, got 0.0"),
    (dict(hidden_size=4, max_phase="pi"), TypeError, "max_phase must be a positive number"),
])
def test_lru_rejects_bad_hyperparameters(kwargs, error, message):
  with pytest.raises(error, match=message):
    lru(**kwargs)


def test_min_gru_rejects_bad_hyperparameters():
  with pytest.raises(ValueError, match="hidden_size must be a positive integer, got -2"):
    min_gru(-2)
  with pytest.raises(TypeError, match="hidden_size must be a positive integer"):
    min_gru(2.5)


def test_min_gru_step_shapes():
  cell = min_gru(5)
  params = cell.init(jax.random.PRNGKey(0), D)
  assert params["w_x"].shape == (D, 10) and params["b"].shape == (10,)
  carry, y = cell.step(params, cell.initial_carry(params, ()), jnp.ones((D,)))
  assert carry.shape == (5,) and y.shape == (5,) and carry.dtype == jnp.float32
  np.testing.assert_array_equal(np.asarray(carry), np.asarray(y))

# Configurations the cell protocol suite (tests/cells/test_protocol.py) runs;
# builders take the dtype.

PROTOCOL_CELLS = {
    "lru": lambda dtype: lru(5, state_size=4, r_min=0.5, r_max=0.95, dtype=dtype),
    "min_gru": lambda dtype: min_gru(5, dtype=dtype),
}
