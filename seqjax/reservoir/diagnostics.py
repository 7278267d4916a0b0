"""Reservoir diagnostics: the echo-state property, effective radius, memory capacity.

* ``state_distance`` drives one reservoir from two initial states with the same
  input; with the echo-state property the distance goes to 0 (the state becomes
  a function of the input history alone), without it the runs stay apart.
* ``effective_spectral_radius`` is the radius of the leaky reservoir's
  linearisation at the origin, ``(1 - a) I + a W``; above 1 the zero state is
  unstable and the echo-state property fails for small inputs.
* ``memory_capacity`` is Jaeger's linear short-term memory: how much of the
  past i.i.d. input a linear readout can recover, at most H for H units.

References:
  Jaeger 2001, "The 'echo state' approach to analysing and training recurrent
  neural networks", GMD Report 148 (echo-state property).
  Jaeger 2001, "Short term memory in echo state networks", GMD Report 152
  (memory capacity).
  Jaeger, Lukosevicius, Popovici & Siewert 2007, "Optimization and
  applications of echo state networks with leaky-integrator neurons",
  Neural Networks 20(3) (effective spectral radius of leaky reservoirs).
"""

from __future__ import annotations

import functools
import math
import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from seqjax import checks
from seqjax import init as initializers
from seqjax.reservoir.readout import fit_readout, readout
from seqjax.scan import unroll
from seqjax.types import FROZEN, Array, Carry, Cell, Params, PRNGKey


def _carry_as_output(cell: Cell, params: Params) -> Cell:
  """The same cell, emitting its whole carry (leaves flattened, joined) each step."""
  size = sum(int(np.prod(leaf.shape)) for leaf in
             jax.tree_util.tree_leaves(cell.initial_carry(params, ())))

  def step(params, carry, x):
    carry, _ = cell.step(params, carry, x)
    batch_shape = jnp.shape(x)[:-1]
    return carry, jnp.concatenate(
        [leaf.reshape(batch_shape + (-1,)).astype(jnp.float32)
         for leaf in jax.tree_util.tree_leaves(carry)], -1)

  return cell.with_step(step, output_size=size)


def state_distance(cell: Cell, params: Params, inputs: Array, carry_a: Carry,
                   carry_b: Carry) -> Array:
  """Distance between two runs of a cell driven by the same input (the ESP check).

  With ``s_t^a`` and ``s_t^b`` the carries after step t of runs that start
  from ``carry_a`` and ``carry_b``::

    d_t = || s_t^a - s_t^b ||_2      (over every leaf of the carry, flattened)

  The echo-state property holds (for this input) when ``d_t -> 0``.

  Args:
    cell: a ``seqjax.Cell``, e.g. ``seqjax.cells.esn(...)``.
    params: its parameters.
    inputs: (T, D), or (*B, T, D) with batched carries.
    carry_a: initial carry like ``cell.initial_carry(params, B)``, e.g. (H,).
    carry_b: a second initial carry of the same structure.

  Returns:
    (T,) distances (``(*B, T)`` for batched inputs), float32; entry t is after
    step t.
  """
  if not isinstance(cell, Cell):
    raise TypeError(f"cell must be a seqjax.Cell, got {type(cell).__name__}")
  if len(checks.shape_of(inputs)) < 2:
    raise ValueError(f"inputs must have shape (T, D) or (*B, T, D), got shape "
                     f"{checks.shape_of(inputs)}")
  return _state_distance(cell, params, jnp.asarray(inputs), carry_a, carry_b)


@functools.partial(jax.jit, static_argnums=0)
def _state_distance(cell, params, inputs, carry_a, carry_b):
  # Both runs as one batch of two: one scan, one compilation per cell.
  observed = _carry_as_output(cell, params)
  carries = jax.tree_util.tree_map(lambda a, b: jnp.stack([a, b]), carry_a, carry_b)
  both = jnp.broadcast_to(inputs, (2,) + inputs.shape)
  _, states = unroll(observed, params, both, carries, implementation="scan")
  return jnp.linalg.norm(states[0] - states[1], axis=-1)


def _leak_rate(leak_rate: Any) -> Any:
  if isinstance(leak_rate, jax.core.Tracer):
    return leak_rate
  if isinstance(leak_rate, bool) or np.ndim(leak_rate) != 0:
    raise TypeError(f"leak_rate must be a scalar in (0, 1], got {leak_rate!r}")
  value = float(leak_rate)
  if not 0.0 < value <= 1.0:
    raise ValueError(f"leak_rate must be in (0, 1], got {leak_rate}")
  return value


def effective_spectral_radius(params: Params, leak_rate: float, *,
                              method: str = "exact") -> Array:
  """Spectral radius of the leaky reservoir linearised at the origin.

  Near ``h = 0`` (no input, no bias, ``tanh'(0) = 1``) the update
  ``h_t = (1 - a) h_{t-1} + a tanh(h_{t-1} W + ...)`` is linear with matrix::

    M = (1 - a) I + a W        rho_eff = max |eig(M)|

  (Jaeger et al. 2007). ``rho_eff < 1`` makes the origin attracting; for
  ``a = 1`` it is the radius of ``W`` itself. Eigenvalues of ``W`` and its
  transpose coincide, so the ``x @ W`` convention does not matter.

  Args:
    params: ``esn`` parameters ``{"frozen": {"w_rec": (H, H), ...}}``.
    leak_rate: a in (0, 1] (may be traced under ``jit``, then unchecked).
    method: ``"exact"`` or ``"power"``, as in ``seqjax.init.spectral_radius``.

  Returns:
    A float32 scalar.
  """
  try:
    w_rec = params[FROZEN]["w_rec"]
  except (KeyError, TypeError, IndexError):
    raise ValueError("params must be esn parameters with params['frozen']['w_rec'] "
                     "of shape (H, H)") from None
  a = _leak_rate(leak_rate)
  w_rec = jnp.asarray(w_rec, jnp.float32)
  linearised = (1.0 - a) * jnp.eye(w_rec.shape[0], dtype=w_rec.dtype) + a * w_rec
  return initializers.spectral_radius(linearised, method=method)


def _squared_correlation(x: Array, y: Array) -> Array:
  """Column-wise squared Pearson correlation of (N, K) arrays."""
  x = x - jnp.mean(x, axis=0)
  y = y - jnp.mean(y, axis=0)
  covariance = jnp.sum(x * y, axis=0)
  return covariance ** 2 / (jnp.sum(x * x, axis=0) * jnp.sum(y * y, axis=0))


def memory_capacity(cell: Cell,
                    params: Params,
                    *,
                    max_delay: int = 40,
                    length: int = 2000,
                    washout: int = 200,
                    ridge: float = 1e-6,
                    key: PRNGKey) -> tuple[Array, Array]:
  """Jaeger's linear short-term memory capacity of a reservoir.

  Drives the reservoir (one input unit) with i.i.d. ``u_t ~ U(-1, 1)``, drawn
  as ``jax.random.uniform(key, (length, 1), minval=-1, maxval=1)`` from
  ``h_0 = cell.initial_carry``. For each delay ``k = 0 .. max_delay - 1`` a
  ridge readout on the states alone (plus a bias) is trained to output
  ``u_{t-k}``; the steps after ``washout`` are split in half, the first half
  to fit, the second to score::

    MC_k = corr(y_k(t), u_{t-k})^2        (held-out half)
    MC   = sum_k MC_k  <=  H             (for H units, Jaeger 2001)

  Delay 0 is the current input, which the state already contains (Jaeger's
  update ``x(n+1) = f(W_in u(n+1) + W x(n))`` puts it there too): a delay line
  of H units then remembers delays 0 .. H - 1 and scores exactly H. Sum
  ``per_delay[1:]`` for the convention that starts at k = 1.

  Args:
    cell: a ``seqjax.Cell`` with input size 1 whose outputs are its state
      (``esn``, or any cell emitting what the readout should see).
    params: its parameters.
    max_delay: number of delays K >= 1; set it above H to capture the tail.
    length: steps of input, > washout + 2.
    washout: initial steps dropped (the initial state is forgotten), with
      ``max_delay - 1 <= washout < length - 2`` so every target exists.
    ridge: readout penalty, >= 0 (small: MC measures what is linearly
      recoverable, not what generalises under noise).
    key: PRNG key of the input sequence.

  Returns:
    ``(total, per_delay)``: a float32 scalar and (K,) with ``per_delay[k] = MC_k``.

  Raises:
    ValueError/TypeError: naming the argument, for a cell whose input size is
      not 1, or sizes that leave no targets or no held-out data.
  """
  if not isinstance(cell, Cell):
    raise TypeError(f"cell must be a seqjax.Cell, got {type(cell).__name__}")
  max_delay = checks.positive_int("max_delay", max_delay)
  length = checks.positive_int("length", length)
  washout = checks.non_negative_int("washout", washout)
  if isinstance(ridge, bool) or not isinstance(ridge, numbers.Real) or not (
      ridge >= 0 and math.isfinite(ridge)):
    raise ValueError(f"ridge must be a finite number >= 0, got {ridge!r}")
  if washout < max_delay - 1:
    raise ValueError(f"washout must be >= max_delay - 1 = {max_delay - 1} so that "
                     f"u_(t-k) exists for every scored step, got {washout}")
  if length - washout < 4:
    raise ValueError(f"length must exceed washout by at least 4 steps to fit and "
                     f"score, got length={length}, washout={washout}")
  input_size = cell.input_size(params)
  if input_size != 1:
    raise ValueError(f"memory capacity needs a cell with one input (input_size 1), "
                     f"got a cell built for input_size={input_size}")
  return _memory_capacity(cell, params, key, float(ridge), max_delay=max_delay,
                          length=length, washout=washout)


@functools.partial(jax.jit, static_argnums=0,
                   static_argnames=("max_delay", "length", "washout"))
def _memory_capacity(cell, params, key, ridge, *, max_delay, length, washout):
  inputs = jax.random.uniform(key, (length, 1), jnp.float32, -1.0, 1.0)
  _, states = unroll(cell, params, inputs)
  u = inputs[:, 0]
  # targets[t, k] = u_{t-k}, valid for t >= max_delay - 1 <= washout.
  delays = jnp.arange(max_delay)
  targets = u[jnp.clip(jnp.arange(length)[:, None] - delays[None, :], 0, None)]
  states, targets = states[washout:], targets[washout:]
  half = states.shape[0] // 2
  # The readout sees the states only: the current input as a feature would
  # hand delay 0 to every reservoir for free.
  no_inputs = jnp.zeros((half, 0), states.dtype)
  readout_params = fit_readout(no_inputs, states[:half], targets[:half], ridge=ridge)
  held_out = states[half:]
  predictions = readout(readout_params, jnp.zeros((held_out.shape[0], 0), states.dtype),
                        held_out)
  per_delay = _squared_correlation(predictions, targets[half:])
  return jnp.sum(per_delay), per_delay
