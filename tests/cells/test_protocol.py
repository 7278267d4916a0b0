"""The cell protocol, checked for every cell in the zoo.

References are built from the cell's own ``step`` run one step at a time in a
Python loop on each sequence alone (unbatched, unpadded), so ``unroll``'s
batching, masking, resetting, reversing and fast paths are each checked
against the plainest possible route to the same numbers.

Compilation dominates this file's run time (15+ cells times ~20 properties),
so computations run through a few module-level jitted functions that take the
cell as a static argument: a configuration that several tests run (the plain
unroll of the standard batch, say) is traced, lowered and compiled once per
cell and process, whichever test asks first, and a test's gradients are one
program instead of an eager scan and its transpose plus every surrounding
operation compiled on its own. Inputs are numpy arrays (drawing them with
``jax.random`` would compile per shape), results come back as numpy (an eager
``carry[b]`` compiles per index), each cell and its parameters are built once
(with "rbg" keys: threefry draws compile slowly), and the Python-loop
references call a jitted ``step``. What stays eager is what a user calls
eagerly here: ``jax.jvp`` of the fast path, and the references of the
forward-mode test (a 7-step loop compiled whole costs more than its steps).
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
B = 3  # the batch of every test that does not need another shape


@functools.lru_cache(maxsize=None)
def _cell(name, dtype=jnp.float32):
  return zoo.make(name, dtype)


def _key(seed):
  # The "rbg" generator: every threefry draw compiles a program of its own
  # (about a second each on CPU), and inits draw a few per shape and dtype.
  return jax.random.key(seed, impl="rbg")


@functools.lru_cache(maxsize=None)
def _params(name, dtype=jnp.float32, seed=0):
  return _cell(name, dtype).init(_key(seed), D)


def _xs(batch_shape, dtype=np.float32, seed=0, steps=T):
  return np.random.default_rng(seed).normal(size=batch_shape + (steps, D)).astype(dtype)


def _setup(name, batch_shape=(B,)):
  return _cell(name), _params(name), _xs(batch_shape)


def _np(tree):
  return jax.tree_util.tree_map(np.asarray, tree)


_UNROLL = jax.jit(unroll, static_argnums=0,
                  static_argnames=("reverse", "implementation", "time_major"))


def _run(cell, params, xs, carry=None, *, mask=None, reset=None, reverse=False,
         implementation="auto", time_major=False):
  """``unroll``, compiled once per cell and configuration, as numpy.

  ``mask`` and ``reset`` are arguments of the compiled function, not constants,
  so tests that run the same configuration on other flags share the program.
  Only options that differ from ``unroll``'s defaults are passed, so that equal
  configurations always hit the same cache entry.
  """
  kwargs = {k: v for k, v in (("mask", mask), ("reset", reset)) if v is not None}
  options = {k: v for k, v in (("reverse", reverse), ("implementation", implementation),
                               ("time_major", time_major))
             if v != {"reverse": False, "implementation": "auto", "time_major": False}[k]}
  args = (cell, params, xs) if carry is None else (cell, params, xs, carry)
  return _np(_UNROLL(*args, **kwargs, **options))


@functools.lru_cache(maxsize=None)
def _jitted_step(cell):
  return jax.jit(cell.step)


def _loop(cell, params, xs, carry=None, reverse=False):
  """Python loop of ``step`` over an unbatched sequence (T, D)."""
  step = _jitted_step(cell)
  carry = cell.initial_carry(params, ()) if carry is None else carry
  order = range(len(xs) - 1, -1, -1) if reverse else range(len(xs))
  ys = [None] * len(xs)
  for t in order:
    carry, ys[t] = step(params, carry, xs[t])
  return _np(carry), (np.stack(_np(ys)) if len(xs) else None)


def _close(a, b, tol=1e-5):
  jax.tree_util.tree_map(
      lambda u, v: np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=tol, atol=tol),
      a, b)


def _row(tree, i):
  return jax.tree_util.tree_map(lambda a: a[i], tree)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("batch_shape", [(), (B,), (2, 3)])
def test_shapes_and_dtypes(name, batch_shape):
  cell, params, xs = _setup(name, batch_shape)
  carry, ys = _run(cell, params, xs)
  assert ys.shape == batch_shape + (T, cell.output_size)
  assert ys.dtype == jnp.float32
  initial = cell.initial_carry(params, batch_shape)
  for got, want in zip(jax.tree_util.tree_leaves(carry), jax.tree_util.tree_leaves(initial)):
    assert got.shape == want.shape and got.shape[:len(batch_shape)] == batch_shape
    assert got.dtype == want.dtype
  assert np.all(np.isfinite(ys))
  # Time-major layout gives the same numbers, transposed.
  xs_tm = np.moveaxis(xs, -2, 0)
  _, ys_tm = _run(cell, params, xs_tm, time_major=True)
  _close(np.moveaxis(ys_tm, 0, -2), ys)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("implementation", ["scan", "auto"])
def test_unroll_equals_python_loop(name, implementation):
  cell, params, xs = _setup(name, (2, 3))
  carry, ys = _run(cell, params, xs, implementation=implementation)
  for i in range(2):
    for j in range(3):
      want_carry, want_ys = _loop(cell, params, xs[i, j])
      _close(ys[i, j], want_ys)
      _close(_row(_row(carry, i), j), want_carry)


@pytest.mark.parametrize("name", zoo.WITH_FAST_PATH)
def test_unbatched_fast_path_equals_python_loop(name):
  # A fast path may special-case unbatched inputs (esn's matrix-vector layout).
  cell, params, xs = _setup(name, ())
  start = jax.tree_util.tree_map(lambda leaf: leaf + 0.3, _np(cell.initial_carry(params, ())))
  for reverse in (False, True):
    carry, ys = _run(cell, params, xs, start, reverse=reverse, implementation="fast")
    want_carry, want_ys = _loop(cell, params, xs, start, reverse=reverse)
    _close(ys, want_ys)
    _close(carry, want_carry)


@pytest.mark.parametrize("name", NAMES)
def test_given_carry_is_used(name):
  cell, params, xs = _setup(name)
  start, _ = _run(cell, params, xs[:, ::-1])  # some nonzero carry
  carry, ys = _run(cell, params, xs, start)
  for b in range(B):
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
    carry, ys = _run(cell, params, xs, mask=mask, reverse=reverse,
                     implementation=implementation)
    for b in range(4):
      want_carry, want_ys = _loop(cell, params, xs[b][mask[b]], reverse=reverse)
      _close(ys[b][mask[b]], want_ys)
      np.testing.assert_array_equal(ys[b][~mask[b]], 0.0)
      _close(_row(carry, b), want_carry)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("reverse", [False, True])
def test_reset_equals_separate_pieces(name, reverse):
  cell, params, xs = _setup(name)
  reset = np.zeros((B, T), bool)
  reset[0, [3]] = True        # two documents packed in one row
  reset[1, [0, 2, 5]] = True  # three, one starting at t=0
  # Row 2: no reset. A nonzero initial carry must then flow through, and a
  # reset at t=0 (row 1) must discard it.
  start, _ = _run(cell, params, xs[:, ::-1])
  for implementation in ("scan", "fast") if cell.fast else ("scan",):
    carry, ys = _run(cell, params, xs, start, reset=reset, reverse=reverse,
                     implementation=implementation)
    for b in range(B):
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
  cell, params, xs = _setup(name)
  carry, ys = _run(cell, params, xs, reverse=True)
  want_carry, want_ys = _run(cell, params, xs[:, ::-1])
  _close(ys, want_ys[:, ::-1])
  _close(carry, want_carry)


@functools.partial(jax.jit, static_argnums=(0, 3, 4))
def _scan_value_and_grad(cell, params, xs, unroll_factor, remat):
  def loss(p):
    return jnp.sum(unroll(cell, p, xs, implementation="scan", unroll=unroll_factor,
                          remat=remat)[1] ** 2)

  return jax.value_and_grad(loss)(params)


@pytest.mark.parametrize("name", NAMES)
def test_unroll_factor_and_remat_keep_meaning(name):
  cell, params, xs = _setup(name, (2,))
  want = _scan_value_and_grad(cell, params, xs, 1, False)
  _close(_scan_value_and_grad(cell, params, xs, 3, False), want)
  _close(_scan_value_and_grad(cell, params, xs, 1, True), want)


@functools.partial(jax.jit, static_argnums=(0, 4))
def _finite_difference_loss(cell, params, xs, mask, implementation):
  carry, ys = unroll(cell, params, xs, mask=mask, implementation=implementation)
  leaves = jax.tree_util.tree_leaves(carry)
  return jnp.sum(jnp.sin(ys)) + sum(jnp.sum(jnp.real(c) ** 2) for c in leaves)


@pytest.mark.parametrize("name", NAMES)
def test_gradients_match_finite_differences(name):
  with jax.enable_x64(True):
    cell = zoo.make(name, jnp.float64)
    params = cell.init(_key(1), D)
    xs = _xs((2,), np.float64, seed=1, steps=4)
    mask = np.array([[1, 1, 1, 0], [0, 1, 1, 1]], bool)

    def loss(implementation):
      return lambda p, x: _finite_difference_loss(cell, p, x, mask, implementation)

    # Reverse mode through the default path (a fast path's custom VJP where
    # the cell has one); forward mode through the scan, since a custom VJP
    # has no JVP (``unroll`` documents this).
    check_grads(loss("auto"), (params, xs), order=1, modes=["rev"], atol=1e-5, rtol=1e-5)
    if cell.fast is not None:
      check_grads(loss("fast"), (params, xs), order=1, modes=["rev"], atol=1e-5, rtol=1e-5)
    check_grads(loss("scan"), (params, xs), order=1, modes=["fwd", "rev"], atol=1e-5,
                rtol=1e-5)


@functools.partial(jax.jit, static_argnums=(0, 5))
def _masked_reset_grads(cell, params, xs, mask, reset, implementation):
  def loss(p, x):
    carry, ys = unroll(cell, p, x, mask=mask, reset=reset, implementation=implementation)
    return jnp.sum(jnp.tanh(ys)) + sum(jnp.sum(jnp.abs(c) ** 2) for c in jax.tree_util.tree_leaves(carry))

  return jax.grad(loss, argnums=(0, 1))(params, xs)


@pytest.mark.parametrize("name", zoo.WITH_FAST_PATH)
def test_fast_path_matches_scan_in_gradients(name):
  cell, params, xs = _setup(name)
  assert cell.fast is not None
  mask = np.ones((B, T), bool)
  mask[0, 5:] = False
  reset = np.zeros((B, T), bool)
  reset[1, 3] = True
  fast = _masked_reset_grads(cell, params, xs, mask, reset, "fast")
  slow = _masked_reset_grads(cell, params, xs, mask, reset, "scan")
  _close(fast, slow, tol=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_no_retrace_on_second_call(name):
  # A batch no other test unrolls plainly: jit objects of ``unroll`` share one
  # cache, which ``_run`` fills, and this test counts the entries it adds.
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
  cell, params, _ = _setup(name)
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


@functools.partial(jax.jit, static_argnums=(0, 4))
def _readout_value_and_grads(cell, params, xs, mask, implementation):
  """``(loss, (d/dparams, d/dxs))`` of ``_readout_loss``."""
  return jax.value_and_grad(_readout_loss(cell, mask, implementation), argnums=(0, 1))(
      params, xs)


@functools.partial(jax.jit, static_argnums=(0, 3))
def _outputs_and_readout_grads(cell, params, xs, implementation):
  """``unroll``'s ``(carry, ys)`` and ``_readout_loss``'s ``(d/dparams, d/dxs)``.

  The outputs come from a plain call, not from the differentiated one: a
  custom VJP's forward rule is not its primal function."""
  loss = _readout_loss(cell, implementation=implementation)
  return (unroll(cell, params, xs, implementation=implementation),
          jax.grad(loss, argnums=(0, 1))(params, xs))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("fill", [np.nan, np.inf])
def test_padding_may_hold_anything(name, fill):
  """NaN/inf in masked-out steps give the gradients of the zero-padded batch
  (the ``where``-gradient trap: a NaN input must not reach any computation
  whose gradient flows)."""
  cell, params, xs = _setup(name)
  mask = np.array([[1, 1, 1, 1, 0, 0, 0], [0, 0, 1, 1, 1, 1, 1], [1, 0, 1, 1, 0, 1, 1]], bool)
  zero_padded = np.where(mask[..., None], xs, 0.0).astype(np.float32)
  garbage = np.where(mask[..., None], xs, fill).astype(np.float32)
  for implementation in _implementations(cell):
    want_value, want_grads = _np(
        _readout_value_and_grads(cell, params, zero_padded, mask, implementation))
    value, grads = _np(_readout_value_and_grads(cell, params, garbage, mask, implementation))
    assert np.isfinite(float(value)), implementation
    _close(value, want_value)
    _close(grads, want_grads)
    np.testing.assert_array_equal(grads[1][~mask], 0.0)


@functools.partial(jax.jit, static_argnums=0)
def _first_step_reference(cell, params, xs):
  """``step`` called directly on the first time step: (value, (carry, y)), grads."""

  def one_step(p, x):
    carry, y = cell.step(p, cell.initial_carry(p, x.shape[:1]), x[:, 0])
    leaves = jax.tree_util.tree_leaves(carry)
    return (jnp.sum(jnp.sin(y)) + sum(jnp.sum(jnp.real(c * jnp.conj(c))) for c in leaves),
            (carry, y))

  return jax.value_and_grad(one_step, argnums=(0, 1), has_aux=True)(params, xs)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("length", [0, 1])
def test_short_sequences_values_and_gradients(name, length):
  """T=0 and T=1 in every implementation, against ``step`` called directly."""
  cell, params, xs = _setup(name, (2,))
  xs = xs[:, :length]
  for implementation in _implementations(cell):
    (carry, ys), grads = _np(_outputs_and_readout_grads(cell, params, xs, implementation))
    assert ys.shape == (2, length, cell.output_size)
    if length == 0:
      _close(carry, cell.initial_carry(params, (2,)))
      for leaf in jax.tree_util.tree_leaves(grads):
        np.testing.assert_array_equal(leaf, 0.0)
      continue
    (_, (want_carry, want_y)), want_grads = _np(_first_step_reference(cell, params, xs))
    _close(carry, want_carry)
    _close(ys[:, 0], want_y)
    _close(grads, want_grads, tol=1e-4)


@functools.partial(jax.jit, static_argnums=0)
def _forward_mode_unroll(cell, params, xs, tangent):
  """jvp and forward-over-reverse (hvp) of the readout loss, implementation="auto"."""
  loss = lambda p: _readout_loss(cell)(p, xs)  # noqa: E731
  return jax.jvp(loss, (params,), (tangent,)), jax.jvp(jax.grad(loss), (params,), (tangent,))[1]


@pytest.mark.parametrize("name", NAMES)
def test_forward_mode_through_the_default_path(name):
  """``jvp`` and forward-over-reverse (``jvp(grad)``) work with
  ``implementation="auto"`` and equal the same through a Python loop of step.

  ``unroll`` is differentiated inside one compiled function; the reference
  runs eagerly over the jitted ``step`` (compiling the 7-step loop whole costs
  several times more than its transformed steps compiled once each)."""
  cell, params, xs = _setup(name, (2,))
  tangent = jax.tree_util.tree_map(lambda a: np.ones(a.shape, a.dtype) * 0.1, params)
  step = _jitted_step(cell)

  def loop_loss(p, x):
    total = 0.0
    for b in range(x.shape[0]):
      carry = cell.initial_carry(p, ())
      ys = []
      for x_t in x[b]:
        carry, y = step(p, carry, x_t)
        ys.append(y)
      leaves = jax.tree_util.tree_leaves(carry)
      total = total + jnp.sum(jnp.sin(jnp.stack(ys))) + sum(jnp.sum(jnp.real(c * jnp.conj(c)))
                                                              for c in leaves)
    return total

  jvp, hvp = _forward_mode_unroll(cell, params, xs, tangent)
  _close(jvp, jax.jvp(lambda p: loop_loss(p, xs), (params,), (tangent,)), tol=1e-4)
  want = jax.jvp(jax.grad(lambda p: loop_loss(p, xs)), (params,), (tangent,))[1]
  _close(hvp, want, tol=1e-4)


@pytest.mark.parametrize("name", zoo.WITH_FAST_PATH)
def test_forward_mode_on_the_fast_path_works_or_names_scan(name):
  # Eager, as a user calls jax.jvp: the error is raised while tracing, before
  # anything compiles.
  cell, params, xs = _setup(name, (2,))
  loss = lambda x: _readout_loss(cell, implementation="fast")(params, x)  # noqa: E731
  tangent = np.ones_like(xs)
  try:
    _, got = jax.jvp(loss, (xs,), (tangent,))
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
  with jax.numpy_rank_promotion("raise"):  # traced (and cached) under "raise"
    _, grads = _readout_value_and_grads(cell, params, xs, None, "scan")
  assert all(np.all(np.isfinite(np.asarray(g))) for g in jax.tree_util.tree_leaves(grads))
