"""The cell protocol, checked for every cell in the zoo.

References are built from the cell's own ``step`` run one step at a time in a
Python loop on each sequence alone (unbatched, unpadded), so ``unroll``'s
batching, masking, resetting, reversing and fast paths are each checked
against the plainest possible route to the same numbers.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from seqjax.scan import unroll
from tests.cells import zoo

NAMES = sorted(zoo.CELLS)
D = 3
T = 7


def _setup(name, batch_shape=(3,), dtype=jnp.float32, seed=0):
  cell = zoo.make(name, dtype)
  k_p, k_x = jax.random.split(jax.random.PRNGKey(seed))
  params = cell.init(k_p, D)
  xs = jax.random.normal(k_x, batch_shape + (T, D), dtype)
  return cell, params, xs


def _loop(cell, params, xs, carry=None, reverse=False):
  """Python loop of ``step`` over an unbatched sequence (T, D)."""
  carry = cell.initial_carry(params, ()) if carry is None else carry
  order = range(len(xs) - 1, -1, -1) if reverse else range(len(xs))
  ys = [None] * len(xs)
  for t in order:
    carry, ys[t] = cell.step(params, carry, xs[t])
  return carry, (jnp.stack(ys) if len(xs) else None)


def _close(a, b, tol=1e-5):
  jax.tree_util.tree_map(
      lambda u, v: np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=tol, atol=tol),
      a, b)


def _row(tree, i):
  return jax.tree_util.tree_map(lambda a: a[i], tree)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("batch_shape", [(), (3,), (2, 3)])
def test_shapes_and_dtypes(name, batch_shape):
  cell, params, xs = _setup(name, batch_shape)
  carry, ys = jax.jit(lambda p, x: unroll(cell, p, x))(params, xs)
  assert ys.shape == batch_shape + (T, cell.output_size)
  assert ys.dtype == jnp.float32
  initial = cell.initial_carry(params, batch_shape)
  for got, want in zip(jax.tree_util.tree_leaves(carry), jax.tree_util.tree_leaves(initial)):
    assert got.shape == want.shape and got.shape[:len(batch_shape)] == batch_shape
    assert got.dtype == want.dtype
  assert np.all(np.isfinite(np.asarray(ys)))
  # Time-major layout gives the same numbers, transposed.
  xs_tm = jnp.moveaxis(xs, -2, 0)
  _, ys_tm = unroll(cell, params, xs_tm, time_major=True)
  _close(jnp.moveaxis(ys_tm, 0, -2), ys)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("implementation", ["scan", "auto"])
def test_unroll_equals_python_loop(name, implementation):
  cell, params, xs = _setup(name, (2, 3))
  carry, ys = unroll(cell, params, xs, implementation=implementation)
  for i in range(2):
    for j in range(3):
      want_carry, want_ys = _loop(cell, params, xs[i, j])
      _close(ys[i, j], want_ys)
      _close(_row(_row(carry, i), j), want_carry)


@pytest.mark.parametrize("name", zoo.WITH_FAST_PATH)
def test_unbatched_fast_path_equals_python_loop(name):
  # A fast path may special-case unbatched inputs (esn's matrix-vector layout).
  cell, params, xs = _setup(name, ())
  start = jax.tree_util.tree_map(lambda leaf: leaf + 0.3, cell.initial_carry(params, ()))
  for reverse in (False, True):
    carry, ys = unroll(cell, params, xs, start, reverse=reverse, implementation="fast")
    want_carry, want_ys = _loop(cell, params, xs, start, reverse=reverse)
    _close(ys, want_ys)
    _close(carry, want_carry)


@pytest.mark.parametrize("name", NAMES)
def test_given_carry_is_used(name):
  cell, params, xs = _setup(name, (3,))
  start, _ = unroll(cell, params, xs[:, ::-1])  # some nonzero carry
  carry, ys = unroll(cell, params, xs, start)
  for b in range(3):
    want_carry, want_ys = _loop(cell, params, xs[b], _row(start, b))
    _close(ys[b], want_ys)
    _close(_row(carry, b), want_carry)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("reverse", [False, True])
def test_mask_equals_unpadded_runs(name, reverse):
  cell, params, xs = _setup(name, (4,))
  mask = np.array([
      [1, 1, 1, 1, 1, 0, 0],  # right padding
      [0, 0, 1, 1, 1, 1, 1],  # left padding
      [1, 0, 1, 1, 0, 0, 1],  # holes anywhere
      [1, 1, 1, 1, 1, 1, 1],  # no padding
  ], bool)
  for implementation in ("scan", "fast") if cell.fast else ("scan",):
    carry, ys = unroll(cell, params, xs, mask=mask, reverse=reverse,
                       implementation=implementation)
    for b in range(4):
      want_carry, want_ys = _loop(cell, params, xs[b][mask[b]], reverse=reverse)
      _close(ys[b][mask[b]], want_ys)
      np.testing.assert_array_equal(np.asarray(ys[b][~mask[b]]), 0.0)
      _close(_row(carry, b), want_carry)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("reverse", [False, True])
def test_reset_equals_separate_pieces(name, reverse):
  cell, params, xs = _setup(name, (3,))
  reset = np.zeros((3, T), bool)
  reset[0, [3]] = True        # two documents packed in one row
  reset[1, [0, 2, 5]] = True  # three, one starting at t=0
  # Row 2: no reset. A nonzero initial carry must then flow through, and a
  # reset at t=0 (row 1) must discard it.
  start, _ = unroll(cell, params, xs[:, ::-1])
  for implementation in ("scan", "fast") if cell.fast else ("scan",):
    carry, ys = unroll(cell, params, xs, start, reset=reset, reverse=reverse,
                       implementation=implementation)
    for b in range(3):
      bounds = [0] + [t for t in np.flatnonzero(reset[b]) if t > 0] + [T]
      pieces = list(zip(bounds[:-1], bounds[1:]))
      want_final = None
      for k, (lo, hi) in enumerate(pieces[::-1] if reverse else pieces):
        # Only the first piece processed inherits the given carry, and going
        # forward a reset at t=0 discards it too.
        inherits = k == 0 and (reverse or not reset[b, 0])
        c0 = _row(start, b) if inherits else None
        want_final, want_ys = _loop(cell, params, xs[b, lo:hi], c0, reverse=reverse)
        _close(ys[b, lo:hi], want_ys)
      _close(_row(carry, b), want_final)


@pytest.mark.parametrize("name", NAMES)
def test_reverse_equals_flipping(name):
  cell, params, xs = _setup(name, (3,))
  carry, ys = unroll(cell, params, xs, reverse=True)
  want_carry, want_ys = unroll(cell, params, xs[:, ::-1])
  _close(ys, want_ys[:, ::-1])
  _close(carry, want_carry)


@pytest.mark.parametrize("name", NAMES)
def test_unroll_factor_and_remat_keep_meaning(name):
  cell, params, xs = _setup(name, (2,))

  def loss(p, x, **kw):
    return jnp.sum(unroll(cell, p, x, implementation="scan", **kw)[1] ** 2)

  want = jax.value_and_grad(loss)(params, xs)
  _close(jax.value_and_grad(lambda p, x: loss(p, x, unroll=3))(params, xs), want)
  _close(jax.value_and_grad(lambda p, x: loss(p, x, remat=True))(params, xs), want)


@pytest.mark.parametrize("name", NAMES)
def test_gradients_match_finite_differences(name):
  with jax.enable_x64(True):
    cell, params, xs = _setup(name, (2,), dtype=jnp.float64, seed=1)
    xs = xs[:, :4]
    mask = np.array([[1, 1, 1, 0], [0, 1, 1, 1]], bool)

    @functools.partial(jax.jit, static_argnames="implementation")
    def loss(p, x, implementation="auto"):
      carry, ys = unroll(cell, p, x, mask=mask, implementation=implementation)
      leaves = jax.tree_util.tree_leaves(carry)
      return jnp.sum(jnp.sin(ys)) + sum(jnp.sum(jnp.real(c) ** 2) for c in leaves)

    # Reverse mode through the default path (a fast path's custom VJP where
    # the cell has one); forward mode through the scan, since a custom VJP
    # has no JVP (``unroll`` documents this).
    check_grads(loss, (params, xs), order=1, modes=["rev"], atol=1e-5, rtol=1e-5)
    if cell.fast is not None:
      check_grads(functools.partial(loss, implementation="fast"), (params, xs), order=1,
                  modes=["rev"], atol=1e-5, rtol=1e-5)
    check_grads(functools.partial(loss, implementation="scan"), (params, xs), order=1,
                modes=["fwd", "rev"], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", zoo.WITH_FAST_PATH)
def test_fast_path_matches_scan_in_gradients(name):
  cell, params, xs = _setup(name, (3,))
  assert cell.fast is not None
  mask = np.ones((3, T), bool)
  mask[0, 5:] = False
  reset = np.zeros((3, T), bool)
  reset[1, 3] = True

  def loss(p, x, implementation):
    carry, ys = unroll(cell, p, x, mask=mask, reset=reset, implementation=implementation)
    return jnp.sum(jnp.tanh(ys)) + sum(jnp.sum(jnp.abs(c) ** 2) for c in jax.tree_util.tree_leaves(carry))

  fast = jax.grad(loss, argnums=(0, 1))(params, xs, "fast")
  slow = jax.grad(loss, argnums=(0, 1))(params, xs, "scan")
  _close(fast, slow, tol=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_no_retrace_on_second_call(name):
  cell, params, xs = _setup(name, (2,))
  traces = []

  @jax.jit
  def run(p, x):
    traces.append(1)
    return unroll(cell, p, x)

  jax.block_until_ready(run(params, xs))
  jax.block_until_ready(run(params, xs * 2.0 + 1.0))
  assert len(traces) == 1
  # The cell itself can be a static argument: equal cells hit the cache.
  static = jax.jit(unroll, static_argnums=0)
  before = static._cache_size()
  static(cell, params, xs)
  static(cell, params, xs + 1.0)
  assert static._cache_size() == before + 1


@pytest.mark.parametrize("name", NAMES)
def test_feature_size_mismatch_is_reported(name):
  cell, params, xs = _setup(name, (2,))
  with pytest.raises(ValueError, match=r"xs must have 3 features.*got shape \(2, 7, 4\)"):
    unroll(cell, params, jnp.zeros((2, T, D + 1)))


def test_every_cell_factory_is_in_the_protocol_suite():
  """Derived from the code: every public function of ``seqjax.cells`` that
  returns a ``Cell`` has at least one entry in some ``PROTOCOL_CELLS``."""
  import inspect

  import seqjax.cells

  factories = {name for name in seqjax.cells.__all__
               if inspect.signature(getattr(seqjax.cells, name)).return_annotation == "Cell"}
  covered = {zoo.make(name).name.split("(")[0] for name in NAMES}
  assert factories, "no cell factories found in seqjax.cells"
  assert factories <= covered, f"cells without protocol entries: {sorted(factories - covered)}"
  assert set(zoo.WITH_FAST_PATH) == {n for n in NAMES if zoo.make(n).fast is not None}


def _implementations(cell):
  return ("scan", "fast") if cell.fast is not None else ("scan",)


def _readout_loss(cell, mask=None, implementation="auto"):
  """A loss that reads every output and the final carry."""

  def loss(p, x):
    carry, ys = unroll(cell, p, x, mask=mask, implementation=implementation)
    leaves = jax.tree_util.tree_leaves(carry)
    return jnp.sum(jnp.sin(ys)) + sum(jnp.sum(jnp.real(c * jnp.conj(c))) for c in leaves)

  return loss


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("fill", [np.nan, np.inf])
def test_padding_may_hold_anything(name, fill):
  """NaN/inf in masked-out steps give the gradients of the zero-padded batch
  (the ``where``-gradient trap: a NaN input must not reach any computation
  whose gradient flows)."""
  cell, params, xs = _setup(name, (3,))
  mask = np.array([[1, 1, 1, 1, 0, 0, 0], [0, 0, 1, 1, 1, 1, 1], [1, 0, 1, 1, 0, 1, 1]], bool)
  zero_padded = jnp.where(mask[..., None], xs, 0.0)
  garbage = jnp.where(mask[..., None], xs, fill)
  for implementation in _implementations(cell):
    loss = _readout_loss(cell, mask, implementation)
    want_value, want_grads = jax.value_and_grad(loss, argnums=(0, 1))(params, zero_padded)
    value, grads = jax.value_and_grad(loss, argnums=(0, 1))(params, garbage)
    assert np.isfinite(float(value)), implementation
    _close(value, want_value)
    _close(grads, want_grads)
    np.testing.assert_array_equal(np.asarray(grads[1])[~mask], 0.0)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("length", [0, 1])
def test_short_sequences_values_and_gradients(name, length):
  """T=0 and T=1 in every implementation, against ``step`` called directly."""
  cell, params, xs = _setup(name, (2,))
  xs = xs[:, :length]
  for implementation in _implementations(cell):
    carry, ys = unroll(cell, params, xs, implementation=implementation)
    assert ys.shape == (2, length, cell.output_size)
    grads = jax.grad(_readout_loss(cell, implementation=implementation), argnums=(0, 1))(
        params, xs)
    if length == 0:
      _close(carry, cell.initial_carry(params, (2,)))
      for leaf in jax.tree_util.tree_leaves(grads):
        np.testing.assert_array_equal(np.asarray(leaf), 0.0)
      continue

    def one_step(p, x):
      carry, y = cell.step(p, cell.initial_carry(p, (2,)), x[:, 0])
      leaves = jax.tree_util.tree_leaves(carry)
      return jnp.sum(jnp.sin(y)) + sum(jnp.sum(jnp.real(c * jnp.conj(c))) for c in leaves)

    want_carry, want_y = cell.step(params, cell.initial_carry(params, (2,)), xs[:, 0])
    _close(carry, want_carry)
    _close(ys[:, 0], want_y)
    _close(grads, jax.grad(one_step, argnums=(0, 1))(params, xs), tol=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_forward_mode_through_the_default_path(name):
  """``jvp`` and forward-over-reverse (``jvp(grad)``) work with
  ``implementation="auto"`` and equal the same through a Python loop of step."""
  cell, params, xs = _setup(name, (2,))
  tangent = jax.tree_util.tree_map(lambda a: jnp.ones_like(a) * 0.1, params)

  def loop_loss(p, x):
    total = 0.0
    for b in range(x.shape[0]):
      carry, ys = _loop(cell, p, x[b])
      leaves = jax.tree_util.tree_leaves(carry)
      total = total + jnp.sum(jnp.sin(ys)) + sum(jnp.sum(jnp.real(c * jnp.conj(c)))
                                                  for c in leaves)
    return total

  loss = _readout_loss(cell)
  _close(jax.jvp(lambda p: loss(p, xs), (params,), (tangent,)),
         jax.jvp(lambda p: loop_loss(p, xs), (params,), (tangent,)), tol=1e-4)
  hvp = jax.jvp(jax.grad(lambda p: loss(p, xs)), (params,), (tangent,))[1]
  want = jax.jvp(jax.grad(lambda p: loop_loss(p, xs)), (params,), (tangent,))[1]
  _close(hvp, want, tol=1e-4)


@pytest.mark.parametrize("name", zoo.WITH_FAST_PATH)
def test_forward_mode_on_the_fast_path_works_or_names_scan(name):
  cell, params, xs = _setup(name, (2,))
  loss = _readout_loss(cell, implementation="fast")
  tangent = jnp.ones_like(xs)
  try:
    _, got = jax.jvp(lambda x: loss(params, x), (xs,), (tangent,))
  except TypeError as error:
    assert "implementation='scan'" in str(error)
    assert "\n" not in str(error)
    return
  _, want = jax.jvp(lambda x: _readout_loss(cell, implementation="scan")(params, x),
                    (xs,), (tangent,))
  _close(got, want, tol=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_unbatched_runs_without_rank_promotion(name):
  """Unbatched, every array in a step has the rank of its role: any implicit
  broadcasting there is a bug (a (H, 1) against a (H,) outer product...).
  Checked on the step (``implementation="scan"``): a whole-sequence fast path
  treats time as one more leading axis, where broadcasting a bias is meant."""
  cell, params, xs = _setup(name, ())
  with jax.numpy_rank_promotion("raise"):
    grads = jax.grad(_readout_loss(cell, implementation="scan"))(params, xs)
  assert all(np.all(np.isfinite(np.asarray(g))) for g in jax.tree_util.tree_leaves(grads))
