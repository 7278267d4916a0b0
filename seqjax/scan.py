"""``unroll``: the one place in seqjax that loops over time."""

from __future__ import annotations

from typing import Any, Callable, Optional

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np

from seqjax import _checks
from seqjax.types import Array, Carry, Cell, Params


def _expand_to(flags: Array, leaf: Array) -> Array:
  """Broadcasts per-row flags (*B,) against a carry or output leaf (*B, ...)."""
  return flags.reshape(flags.shape + (1,) * (leaf.ndim - flags.ndim))


def _select(flags: Array, on_true: Any, on_false: Any) -> Any:
  return jax.tree_util.tree_map(
      lambda a, b: jnp.where(_expand_to(flags, a), a, b), on_true, on_false)


def _check_flags(name: str, flags: Any, expected: tuple[int, ...],
                 layout: str) -> Array:
  if _checks.shape_of(flags) != expected:
    raise ValueError(f"{name} must have shape {expected} ({layout}), "
                     f"got {_checks.shape_of(flags)}")
  dtype = np.dtype(flags.dtype if hasattr(flags, "dtype") else np.asarray(flags).dtype)
  if not (dtype == np.bool_ or np.issubdtype(dtype, np.integer)
          or np.issubdtype(dtype, np.floating)):
    raise TypeError(f"{name} must be boolean (or 0/1 numbers), got dtype {dtype}")
  return jnp.asarray(flags).astype(jnp.bool_)


def _check_carry(carry: Carry, expected: Carry) -> None:
  got = jax.tree_util.tree_structure(carry)
  want = jax.tree_util.tree_structure(expected)
  if got != want:
    raise ValueError(f"carry must have the structure of cell.initial_carry, "
                     f"expected {want}, got {got}")
  for g, w in zip(jax.tree_util.tree_leaves(carry), jax.tree_util.tree_leaves(expected)):
    if _checks.shape_of(g) != tuple(w.shape):
      raise ValueError(f"carry leaf must have shape {tuple(w.shape)} "
                       f"(batch shape + features), got {_checks.shape_of(g)}")


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
      carry = _select(restart_t, restart_carry, carry)
    new_carry, y_t = step(carry, x_t)
    if mask_t is not None:
      new_carry = _select(mask_t, new_carry, carry)
      y_t = jnp.where(_expand_to(mask_t, y_t), y_t, jnp.zeros_like(y_t))
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


#: The values of ``unroll(..., implementation=...)``.
IMPLEMENTATIONS = ("auto", "scan", "fast", "onednn")


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
    params: the cell's parameters, from ``cell.init``.
    xs: inputs, ``(*B, T, D)``; ``(T, *B, D)`` if ``time_major``; ``(T, D)``
      unbatched. Any number of batch axes (including none) is allowed.
    carry: initial carry with leaves ``(*B, ...)``; defaults to
      ``cell.initial_carry(params, B)``.
    mask: optional ``(*B, T)`` (``(T, *B)`` if ``time_major``) booleans, True on
      real steps. On a False step the carry is left unchanged and the output
      is zero, so any padding pattern (left, right, in the middle) gives the
      same results as running the unpadded sequence.
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
    implementation: ``"scan"`` (``lax.scan`` of ``step``), ``"fast"`` (the
      cell's whole-sequence ``sequence`` path; an error if it has none) or
      ``"auto"`` (the fast path where the cell has one, the current backend
      is in ``cell.fast_on``, i.e. where it was measured faster).
      ``unroll`` applies to the scan of ``step``; a fast path computes the
      whole sequence its own way and ignores it. The LSTM, GRU and RNN fast paths are ``jax.custom_vjp``
      functions with a hand-written backward pass: reverse mode (``grad``,
      ``vjp``) works, forward mode (``jvp``, ``jacfwd``) does not; use
      ``implementation="scan"`` for it. ``"onednn"`` runs the cell's oneDNN
      CPU kernel (``cell.onednn``: the LSTM without peepholes, the GRU with
      ``reset_after=True``, the tanh/ReLU RNN), the primitive behind
      PyTorch's CPU ``nn.LSTM``/``nn.GRU``/``nn.RNN``; opt-in, CPU and float32 only, no
      ``mask``/``reset``, compiled on first use (``pip install
      "seqjax[onednn]"``; see ``seqjax/_native/onednn.py``).

  Returns:
    ``(final_carry, ys)`` with ``ys`` of shape ``(*B, T, O)`` (``(T, *B, O)``
    if ``time_major``). ``final_carry`` is the carry after the last processed
    step (after step 0 when ``reverse``).

  Raises:
    ValueError/TypeError at trace time, naming the argument, for inputs of the
    wrong rank, feature size, dtype, or for a mask/reset/carry of the wrong
    shape.
  """
  if not isinstance(cell, Cell):
    raise TypeError(f"cell must be a seqjax.Cell, got {type(cell).__name__}")
  _checks.one_of("implementation", implementation, IMPLEMENTATIONS)
  _checks.positive_int("unroll", unroll)
  xs_shape = _checks.shape_of(xs)
  if len(xs_shape) < 2:
    layout = "(T, *B, D)" if time_major else "(*B, T, D)"
    raise ValueError(f"xs must have shape {layout} with at least time and "
                     f"feature axes, got shape {xs_shape}")
  _checks.float_array("xs", xs)
  input_size = cell.input_size(params)
  if xs_shape[-1] != input_size:
    raise ValueError(f"xs must have {input_size} features (the input_size the "
                     f"params were built for), got shape {xs_shape}")

  xs = jnp.asarray(xs)
  layout_xs = xs
  if not time_major:
    xs = jnp.moveaxis(xs, -2, 0)
  batch_shape = tuple(xs.shape[1:-1])
  flags_shape = xs.shape[:-1] if time_major else batch_shape + xs.shape[:1]
  layout = "(T, *B)" if time_major else "(*B, T)"

  def to_time_major(name, flags):
    if flags is None:
      return None
    flags = _check_flags(name, flags, tuple(flags_shape), layout)
    return flags if time_major else jnp.moveaxis(flags, -1, 0)

  mask = to_time_major("mask", mask)
  reset = to_time_major("reset", reset)

  initial = cell.initial_carry(params, batch_shape)
  if carry is None:
    carry = initial
  else:
    _check_carry(carry, initial)
  restart = None
  if reset is not None:
    restart = reverse_restart(reset) if reverse else reset

  if implementation == "fast" and cell.sequence is None:
    raise ValueError(f"implementation='fast' but {cell.name} has no fast path")
  if implementation == "onednn" and cell.onednn is None:
    raise ValueError(f"implementation='onednn' but {cell.name} has no oneDNN kernel "
                     f"(the LSTM without peepholes, the GRU with reset_after=True and the "
                     f"tanh/ReLU RNN have one)")
  use_fast = cell.sequence is not None and (
      implementation == "fast" or
      (implementation == "auto" and jax.default_backend() in cell.fast_on))

  def checked_step(carry, x_t):
    new_carry, y_t = cell.step(params, carry, x_t)
    # Guards the protocol for user-written cells: a wrong output size or a
    # carry that changes shape would otherwise surface far from its cause.
    chex.assert_shape(y_t, batch_shape + (cell.output_size,),
                      custom_message=f"{cell.name}.step output (*B, output_size)")
    chex.assert_trees_all_equal_shapes_and_dtypes(
        new_carry, carry, custom_message=f"{cell.name}.step must return a carry like its input")
    return new_carry, y_t

  if implementation == "onednn" and not remat:
    # oneDNN reads either layout and runs either direction itself: no
    # transposes or flips of xs or ys.
    return cell.onednn(params, carry, layout_xs, mask=mask, restart=restart,
                       restart_carry=initial, reverse=reverse, time_major=time_major)

  def run(carry, xs, mask, restart):
    if implementation == "onednn":
      return cell.onednn(params, carry, xs, mask=mask, restart=restart,
                         restart_carry=initial, reverse=reverse, time_major=True)
    if use_fast:
      return cell.sequence(params, carry, xs, mask=mask, restart=restart,
                           restart_carry=initial, reverse=reverse)
    return scan_steps(checked_step, carry, xs, mask=mask, restart=restart,
                      restart_carry=initial, reverse=reverse, unroll=unroll)

  if remat:
    final, ys = _remat_chunks(run, carry, xs, mask, restart, reverse)
  else:
    final, ys = run(carry, xs, mask, restart)
  if not time_major:
    ys = jnp.moveaxis(ys, 0, -2)
  return final, ys
