"""``unroll``: the one place in seqjax that loops over time."""

from __future__ import annotations

from typing import Any, Callable, Optional

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np

from jax.interpreters import ad

from seqjax import checks
from seqjax.types import Array, Carry, Cell, Implementation, Params


def expand_to(flags: Array, leaf: Array) -> Array:
  """Broadcasts per-row ``flags`` (*B,) against a carry or output ``leaf`` (*B, ...)."""
  return flags.reshape(flags.shape + (1,) * (leaf.ndim - flags.ndim))


def select(flags: Array, on_true: Any, on_false: Any) -> Any:
  """Per row, the leaves of ``on_true`` where ``flags`` (*B,) is True, else of ``on_false``.

  Args:
    flags: (*B,) booleans.
    on_true: a pytree (a carry) of (*B, ...) leaves.
    on_false: a pytree of the same structure and shapes.
  """
  return jax.tree_util.tree_map(
      lambda a, b: jnp.where(expand_to(flags, a), a, b), on_true, on_false)


def check_flags(name: str, flags: Any, expected: tuple[int, ...],
                 layout: str) -> Array:
  """Mask/reset flags as booleans: bool arrays, or numbers that are exactly 0 or 1.

  Numeric flags are checked for 0/1 when they are concrete (a traced float
  flag is taken as ``flag != 0``).

  Args:
    name: the argument's name, for the errors (``"mask"``, ``"reset"``).
    flags: the array given.
    expected: the shape it must have.
    layout: that shape in words for the error, e.g. ``"(*B, T)"``.
  """
  if not hasattr(flags, "shape") or not hasattr(flags, "dtype"):
    raise TypeError(f"{name} must be a boolean array of shape {expected} ({layout}), "
                    f"got {type(flags).__name__}")
  if tuple(flags.shape) != expected:
    raise ValueError(f"{name} must have shape {expected} ({layout}), "
                     f"got {tuple(flags.shape)}")
  dtype = np.dtype(flags.dtype)
  if dtype == np.bool_:
    return jnp.asarray(flags)
  if not (np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)):
    raise TypeError(f"{name} must be boolean (or numbers that are exactly 0/1), "
                    f"got dtype {dtype}")
  if not isinstance(flags, jax.core.Tracer):
    values = np.asarray(flags)
    if not np.all((values == 0) | (values == 1)):
      bad = values[(values != 0) & (values != 1)].flat[0]
      raise ValueError(f"{name} must be boolean or exactly 0/1, got a value {bad.item()!r}")
  return jnp.asarray(flags) != 0


def check_carry(carry: Carry, expected: Carry) -> None:
  """Raises ValueError/TypeError unless ``carry`` has ``expected``'s structure, shapes, dtype kind.

  Args:
    carry: the carry given by a caller.
    expected: ``cell.initial_carry(params, batch_shape)`` (or its shapes).
  """
  got = jax.tree_util.tree_structure(carry)
  want = jax.tree_util.tree_structure(expected)
  if got != want:
    raise ValueError(f"carry must have the structure of cell.initial_carry, "
                     f"expected {want}, got {got}")
  for g, w in zip(jax.tree_util.tree_leaves(carry), jax.tree_util.tree_leaves(expected)):
    if checks.shape_of(g) != tuple(w.shape):
      raise ValueError(f"carry leaf must have shape {tuple(w.shape)} "
                       f"(batch shape + features), got {checks.shape_of(g)}")
    dtype = jnp.result_type(g)
    if jnp.issubdtype(w.dtype, jnp.inexact) and not jnp.issubdtype(dtype, jnp.inexact):
      raise TypeError(f"carry leaf must have a floating dtype like {w.dtype}, got {dtype}")


def _forward_mode(tree: Any) -> bool:
  """Whether any leaf is being differentiated in forward mode (``jvp``/``jacfwd``).

  Walks nested tracers (a reverse-mode tracer over a forward-mode one in
  ``jvp(grad(f))``, a batching tracer in ``jacfwd``).
  """
  for leaf in jax.tree_util.tree_leaves(tree):
    seen = 0
    while isinstance(leaf, jax.core.Tracer) and seen < 32:
      if isinstance(leaf, ad.JVPTracer):
        return True
      leaf = getattr(leaf, "primal", getattr(leaf, "val", None))
      seen += 1
  return False


def scan_steps(step: Callable[[Carry, Any], tuple[Carry, Array]],
               carry: Carry,
               xs: Any,
               *,
               mask: Optional[Array] = None,
               restart: Optional[Array] = None,
               restart_carry: Optional[Carry] = None,
               reverse: bool = False,
               unroll: int = 1) -> tuple[Carry, Array]:
  """``lax.scan`` of ``step`` with ``unroll``'s mask and restart semantics.

  The loop behind ``unroll``, exposed for a cell's ``sequence`` fast path:
  such a path precomputes what it can for the whole sequence (e.g. the input
  projection) and hands the per-step remainder to this function, which applies
  the padding and segment rules exactly as ``unroll`` does::

    carry = restart_carry                 if restart[t]
    carry', y_t = step(carry, xs[t])
    carry = carry' if mask[t] else carry; y_t = y_t if mask[t] else 0

  Args:
    step: ``(carry, x_t) -> (carry, y_t)`` with ``y_t`` of shape (*B, O).
    carry: initial carry, leaves (*B, ...).
    xs: pytree of time-major arrays (T, ...), sliced along axis 0.
    mask: ``None`` or booleans (T, *B); False steps keep the carry and output 0.
    restart: ``None`` or booleans (T, *B); True replaces the carry by
      ``restart_carry`` before the step (already converted for ``reverse``,
      see ``reverse_restart``).
    restart_carry: the carry a restart starts from (required with ``restart``).
    reverse: process time right to left (outputs stay in input order).
    unroll: ``lax.scan`` unroll factor.

  Returns:
    ``(final_carry, ys)``, ys (T, *B, O).
  """
  if restart is not None and restart_carry is None:
    raise ValueError("restart_carry is required when restart is given")

  def body(carry, inputs):
    x_t, mask_t, restart_t = inputs
    if restart_t is not None:
      carry = select(restart_t, restart_carry, carry)
    new_carry, y_t = step(carry, x_t)
    if mask_t is not None:
      new_carry = select(mask_t, new_carry, carry)
      y_t = jnp.where(expand_to(mask_t, y_t), y_t, jnp.zeros_like(y_t))
    return new_carry, y_t

  return jax.lax.scan(body, carry, (xs, mask, restart), reverse=reverse, unroll=unroll)


def _chunk_length(steps: int) -> int:
  """~sqrt(T), preferring a divisor of T (no padding: the padded copies of
  ``xs`` and ``ys`` are what dominate memory on long sequences)."""
  root = math.sqrt(steps)
  divisors = [d for d in range(max(1, math.ceil(root / 2)), math.floor(2 * root) + 1)
              if steps % d == 0]
  if divisors:
    return min(divisors, key=lambda d: abs(math.log(d / root)))
  return max(1, math.ceil(root))


def _remat_chunks(run, carry, xs, mask, restart, reverse):
  """``run`` over chunks of ~sqrt(T) steps, each recomputed in the backward pass.

  Only the carry at each chunk boundary is kept for the backward pass; a
  chunk's own activations exist only while its gradient is computed. T is
  padded to a multiple of the chunk length with masked steps (which leave the
  carry alone and output zero), and the padding is cut from the outputs.
  """
  steps = xs.shape[0]
  chunk = _chunk_length(steps)
  num_chunks = math.ceil(steps / chunk)
  padding = num_chunks * chunk - steps
  if padding:
    if mask is None:
      mask = jnp.ones(xs.shape[:-1], bool)
    pad = lambda a, value: jnp.concatenate(  # noqa: E731
        [a, jnp.full((padding,) + a.shape[1:], value, a.dtype)], 0)
    xs, mask = pad(xs, 0), pad(mask, False)
    restart = None if restart is None else pad(restart, False)
  split = lambda a: None if a is None else a.reshape((num_chunks, chunk) + a.shape[1:])  # noqa: E731

  @jax.checkpoint
  def body(carry, inputs):
    return run(carry, *inputs)

  final, ys = jax.lax.scan(body, carry, (split(xs), split(mask), split(restart)),
                           reverse=reverse)
  ys = ys.reshape((num_chunks * chunk,) + ys.shape[2:])
  return final, ys[:steps]


def reverse_restart(reset: Array) -> Array:
  """Segment-start flags (T, ...) -> restart flags for a right-to-left pass.

  Going backwards, a segment begins at its last element, i.e. just before the
  next segment starts: ``restart[t] = reset[t + 1]`` and ``restart[T-1]`` is
  False (the pass starts from the given carry).
  """
  return jnp.concatenate([reset[1:], jnp.zeros_like(reset[:1])], axis=0)


def check_params(cell: Cell, params: Params, name: str = "params") -> int:
  """Checks ``params`` against what ``cell.init`` builds; returns the input size D.

  Compares the pytree structure (missing or extra keys) and every leaf's shape
  with ``jax.eval_shape(cell.init, key, D)`` at trace time, so parameters of
  another cell or a transposed weight fail with a one-line error naming the key,
  the shape received and the shape expected. A square weight stored transposed
  (an RNN's (H, H) ``w_h``) has the right shape and cannot be caught here.

  Args:
    cell: the cell the parameters are meant for.
    params: the parameter pytree to check.
    name: the argument's name, given in the error messages.
  """
  if params is None or not jax.tree_util.tree_leaves(params):
    raise TypeError(f"{name} must be the pytree of arrays returned by cell.init "
                    f"({cell.name}), got {params!r}")
  try:
    input_size = cell.input_size(params)
  except (KeyError, TypeError, IndexError, AttributeError) as error:
    raise ValueError(f"{name} do not belong to {cell.name}: reading its input size "
                     f"failed with {type(error).__name__}: {error}") from None
  expected = _expected_params(cell, int(input_size))
  if expected is None:  # an init that cannot be traced abstractly
    return int(input_size)
  checks.tree_like(name, params, expected)
  return int(input_size)


_EXPECTED_PARAMS: dict = {}


def _expected_params(cell: Cell, input_size: int) -> Any:
  key = (cell.init, input_size)
  if key not in _EXPECTED_PARAMS:
    try:
      shapes = jax.eval_shape(lambda k: cell.init(k, input_size), jax.random.PRNGKey(0))
    except Exception:  # noqa: BLE001 -- e.g. an init that needs concrete values (ARPACK)
      shapes = None
    if len(_EXPECTED_PARAMS) > 1024:
      _EXPECTED_PARAMS.clear()
    _EXPECTED_PARAMS[key] = shapes
  return _EXPECTED_PARAMS[key]


def unroll(cell: Cell,
           params: Params,
           xs: Array,
           carry: Optional[Carry] = None,
           *,
           mask: Optional[Array] = None,
           reset: Optional[Array] = None,
           reverse: bool = False,
           time_major: bool = False,
           unroll: int = 1,
           remat: bool = False,
           implementation: str = "auto") -> tuple[Carry, Array]:
  """Runs ``cell`` over a sequence: ``lax.scan`` of ``cell.step``.

  Args:
    cell: a ``seqjax.Cell``.
    params: the cell's parameters, from ``cell.init`` (checked against its
      shapes, see ``check_params``).
    xs: inputs, ``(*B, T, D)``; ``(T, *B, D)`` if ``time_major``; ``(T, D)``
      unbatched. Any number of batch axes (including none) and any T >= 0.
    carry: initial carry with leaves ``(*B, ...)``; defaults to
      ``cell.initial_carry(params, B)``.
    mask: optional ``(*B, T)`` (``(T, *B)`` if ``time_major``) booleans (or
      numbers exactly 0/1), True on real steps. On a False step the carry is
      left unchanged and the output is zero, so any padding pattern (left,
      right, in the middle) gives the same results as running the unpadded
      sequence. Padded inputs are replaced by zeros before any computation, so
      they may hold anything (NaN, inf) without touching values or gradients.
    reset: optional booleans of the shape of ``mask``; True marks the first step
      of a new segment in a packed row: the carry is restarted to
      ``cell.initial_carry`` before that step. ``reset`` always marks segment
      starts in the sequence's own order; with ``reverse=True`` each segment is
      processed from its last element, exactly as if the segments were run
      separately.
    reverse: process time right to left. Outputs stay in input order, so the
      result equals flipping ``xs`` (and ``mask``), unrolling, and flipping
      ``ys`` back.
    time_major: layout of ``xs``, ``mask``, ``reset`` and the returned ``ys``.
    unroll: ``lax.scan`` unroll factor (1-2 is fastest on CPU).
    remat: trade compute for memory on long sequences: the sequence runs in
      chunks of ~sqrt(T) steps and only the carry at each chunk boundary is
      kept for the backward pass, which recomputes one chunk at a time
      (``jax.checkpoint``). Activation memory falls from O(T) steps to
      O(sqrt(T)) (the outputs ``ys`` themselves stay O(T)) for about one
      extra forward pass. Works with every implementation.
    implementation: a ``seqjax.Implementation`` or its value: ``"scan"``
      (``lax.scan`` of ``step``), ``"fast"`` (the cell's whole-sequence fast
      path ``cell.fast``; an error if it has none) or ``"auto"`` (the fast
      path on the backends in ``cell.fast.backends``, where it was measured
      faster, else the scan). ``unroll`` applies to the scan of ``step``; a
      fast path computes the whole sequence its own way and ignores it. The
      LSTM, GRU and RNN fast paths are ``jax.custom_vjp`` functions (reverse
      mode only): under forward-mode autodiff (``jax.jvp``, ``jax.jacfwd``,
      Hessian-vector products) ``"auto"`` takes the scan, and ``"fast"``
      raises an error that says to use ``"scan"``. (Inside a ``jax.jit`` that
      is itself differentiated in forward mode the tracer cannot be seen:
      pass ``implementation="scan"`` there.)

  Returns:
    ``(final_carry, ys)`` with ``ys`` of shape ``(*B, T, O)`` (``(T, *B, O)``
    if ``time_major``). ``final_carry`` is the carry after the last processed
    step (after step 0 when ``reverse``).

  Raises:
    ValueError/TypeError at trace time, naming the argument, for inputs of the
    wrong type, rank, feature size or dtype, parameters that do not fit the
    cell, non-boolean options, or a mask/reset/carry of the wrong shape.
  """
  if not isinstance(cell, Cell):
    raise TypeError(f"cell must be a seqjax.Cell, got {type(cell).__name__}")
  implementation = Implementation.check(implementation)
  checks.positive_int("unroll", unroll)
  for name, value in (("reverse", reverse), ("time_major", time_major), ("remat", remat)):
    checks.boolean(name, value)
  layout = "(T, *B, D)" if time_major else "(*B, T, D)"
  if not hasattr(xs, "shape") or not hasattr(xs, "dtype"):
    raise TypeError(f"xs must be an array of shape {layout} (jax or numpy), "
                    f"got {type(xs).__name__}")
  xs_shape = tuple(xs.shape)
  if len(xs_shape) < 2:
    raise ValueError(f"xs must have shape {layout} with at least time and "
                     f"feature axes, got shape {xs_shape}")
  checks.float_array("xs", xs)
  input_size = check_params(cell, params)
  if xs_shape[-1] != input_size:
    raise ValueError(f"xs must have {input_size} features (the input_size the "
                     f"params were built for), got shape {xs_shape}")

  xs = jnp.asarray(xs)
  if not time_major:
    xs = jnp.moveaxis(xs, -2, 0)
  batch_shape = tuple(xs.shape[1:-1])
  flags_shape = xs.shape[:-1] if time_major else batch_shape + xs.shape[:1]
  flags_layout = "(T, *B)" if time_major else "(*B, T)"

  def to_time_major(name, flags):
    if flags is None:
      return None
    flags = check_flags(name, flags, tuple(flags_shape), flags_layout)
    return flags if time_major else jnp.moveaxis(flags, -1, 0)

  mask = to_time_major("mask", mask)
  reset = to_time_major("reset", reset)
  if mask is not None:
    # Padded inputs never reach a computation whose gradient flows: a NaN there
    # would otherwise turn every parameter gradient into NaN (0 * NaN).
    xs = jnp.where(mask[..., None], xs, jnp.zeros((), xs.dtype))

  initial = cell.initial_carry(params, batch_shape)
  if carry is None:
    carry = initial
  else:
    check_carry(carry, initial)
  restart = None
  if reset is not None:
    restart = reverse_restart(reset) if reverse else reset

  fast = cell.fast
  if fast is not None and fast.step is not cell.step:
    raise ValueError(f"{cell.name} carries a fast path for another step function; derive "
                     f"cells with cell.with_step(new_step), which drops it")
  if implementation is Implementation.FAST and fast is None:
    raise ValueError(f"implementation='fast' but {cell.name} has no fast path")
  use_fast = fast is not None and (
      implementation is Implementation.FAST or
      (implementation is Implementation.AUTO and jax.default_backend() in fast.backends
       and not _forward_mode((params, xs, carry))))

  def checked_step(carry, x_t):
    new_carry, y_t = cell.step(params, carry, x_t)
    # Guards the protocol for user-written cells: a wrong output size or a
    # carry that changes shape would otherwise surface far from its cause.
    chex.assert_shape(y_t, batch_shape + (cell.output_size,),
                      custom_message=f"{cell.name}.step output (*B, output_size)")
    chex.assert_trees_all_equal_shapes_and_dtypes(
        new_carry, carry, custom_message=f"{cell.name}.step must return a carry like its input")
    return new_carry, y_t

  def run(carry, xs, mask, restart):
    if use_fast:
      try:
        return fast.run(params, carry, xs, mask=mask, restart=restart,
                        restart_carry=initial, reverse=reverse)
      except TypeError as error:
        if "forward-mode" not in str(error):
          raise
        raise TypeError(f"{cell.name}'s fast path supports reverse-mode autodiff only; "
                        f"use implementation='scan' for jax.jvp/jacfwd") from None
    return scan_steps(checked_step, carry, xs, mask=mask, restart=restart,
                      restart_carry=initial, reverse=reverse, unroll=unroll)

  if remat:
    final, ys = _remat_chunks(run, carry, xs, mask, restart, reverse)
  else:
    final, ys = run(carry, xs, mask, restart)
  if not time_major:
    ys = jnp.moveaxis(ys, 0, -2)
  return final, ys


def trace(cell: Cell,
          params: Params,
          xs: Array,
          carry: Optional[Carry] = None,
          **options: Any) -> tuple[Carry, Array, Carry]:
  """``unroll`` that also returns the carry after every step, for plots and diagnostics.

  What a memory cell's read and write weightings look like over a sequence,
  how an LSTM's cell state drifts: ``carries`` holds every leaf of the carry
  at every step, stacked on a time axis after the batch axes.

  Args:
    cell, params, xs, carry: as ``unroll`` (batch-major ``xs`` (*B, T, D)).
    **options: ``unroll``'s keyword arguments (``mask``, ``reset``,
      ``reverse``, ``unroll``, ``remat``, ``implementation``), except
      ``time_major``. The traced run takes the plain scan of ``cell.step``.

  Returns:
    ``(final_carry, ys, carries)``: as ``unroll``, plus the carry's pytree with
    every leaf ``(*B, ...)`` stacked as ``(*B, T, ...)``: the carry after step
    t at index t (zeros on masked steps, like ``ys``).
  """
  if not isinstance(cell, Cell):
    raise TypeError(f"cell must be a seqjax.Cell, got {type(cell).__name__}")
  if options.get("time_major"):
    raise ValueError("time_major must be False for trace (xs is (*B, T, D))")
  options.pop("time_major", None)
  shape = checks.shape_of(xs)
  if len(shape) < 2:
    raise ValueError(f"xs must have shape (*B, T, D), got shape {shape}")
  batch = shape[:-2]
  like = jax.eval_shape(lambda p: cell.initial_carry(p, batch), params)
  leaves, treedef = jax.tree_util.tree_flatten(like)
  sizes = [math.prod(leaf.shape[len(batch):]) for leaf in leaves]
  dtype = jnp.result_type(*leaves) if leaves else jnp.float32

  def step(p, c, x):
    c, y = cell.step(p, c, x)
    flat = [leaf.reshape(leaf.shape[:len(batch)] + (-1,)).astype(dtype)
            for leaf in jax.tree_util.tree_leaves(c)]
    return c, jnp.concatenate([y.astype(dtype)] + flat, axis=-1)

  traced = cell.with_step(step, output_size=cell.output_size + sum(sizes))
  final, out = unroll(traced, params, xs, carry, **options)
  ys = out[..., :cell.output_size]
  pieces, start = [], cell.output_size
  for leaf, size in zip(leaves, sizes):
    piece = out[..., start:start + size]
    pieces.append(piece.reshape(out.shape[:-1] + leaf.shape[len(batch):]).astype(leaf.dtype))
    start += size
  return final, ys, jax.tree_util.tree_unflatten(treedef, pieces)
