"""Echo-state network: a fixed random reservoir and a ridge-regression readout.

The reservoir weights live under ``params["frozen"]`` so that training
(``seqjax.trainable_mask``) leaves them alone; the classic way to train an ESN
is instead to run the reservoir once and solve for a linear readout in closed
form with ``fit_readout``::

  cell = esn(200, spectral_radius=0.9)
  params = cell.init(key, input_size)
  _, states = seqjax.unroll(cell, params, inputs)          # (*B, T, H)
  readout_params = fit_readout(inputs, states, targets, ridge=1e-6, washout=100)
  predictions = readout(readout_params, inputs, states)     # (*B, T, O)

References:
  Jaeger 2001, "The 'echo state' approach to analysing and training recurrent
  neural networks", GMD Report 148.
  Jaeger, Lukosevicius, Popovici & Siewert 2007, "Optimization and
  applications of echo state networks with leaky-integrator neurons",
  Neural Networks 20(3).
  Lukosevicius 2012, "A practical guide to applying echo state networks",
  Neural Networks: Tricks of the Trade.
"""

from __future__ import annotations

import functools
import math
import numbers
from typing import Any

import jax
import jax.numpy as jnp
import jax.scipy.linalg
import numpy as np

from seqjax import checks
from seqjax import init as initializers
from seqjax.cells import common
from seqjax.scan import scan_steps
from seqjax.types import FROZEN, Array, Cell, FastPath, Params

__all__ = ["esn", "fit_readout", "readout"]  # re-exported by seqjax.cells

# A sparse pattern without a directed cycle gives a nilpotent matrix (spectral
# radius 0) that cannot be rescaled; such patterns (common only in tiny
# reservoirs) are redrawn at most this many times.
_MAX_DRAWS = 100


def _non_negative(name: str, value: Any) -> float:
  if isinstance(value, bool) or not isinstance(value, numbers.Real):
    raise TypeError(f"{name} must be a non-negative number, got {value!r}")
  if not (value >= 0 and math.isfinite(value)):
    raise ValueError(f"{name} must be finite and >= 0, got {value}")
  return float(value)


def _prune_sources(state):
  """One round of Kahn's algorithm: drop nodes without an edge from a live node."""
  alive, _, edges = state
  in_degree = alive.astype(jnp.int32) @ edges
  return alive & (in_degree > 0), alive, edges


def _still_pruning(state):
  alive, previous, _ = state
  return jnp.any(alive != previous)


def _has_cycle(pattern: Array) -> Array:
  """Whether the directed graph ``i -> j`` for ``pattern[i, j]`` has a cycle.

  Repeatedly deletes the nodes without an incoming edge from a remaining node
  (Kahn's algorithm, all sources at once); the graph is acyclic exactly when
  nothing remains. Each round is O(H^2) and a random graph with a cycle stops
  after a few rounds, far cheaper than an eigenvalue check.
  """
  everyone = jnp.ones(pattern.shape[0], bool)
  state = _prune_sources((everyone, everyone, pattern.astype(jnp.int32)))
  alive, _, _ = jax.lax.while_loop(_still_pruning, _prune_sources, state)
  return jnp.any(alive)


# The loop bodies live at module level and the sampler is jitted, so one
# compilation per reservoir size serves every ``esn`` cell, not one per call.
def _draw_pattern(state):
  attempt, key, pattern, connectivity = state
  key, sub = jax.random.split(key)
  return (attempt + 1, key, jax.random.bernoulli(sub, connectivity, pattern.shape),
          connectivity)


def _should_redraw(state):
  attempt, _, pattern, _ = state
  return (attempt < _MAX_DRAWS) & ~_has_cycle(pattern)


@functools.partial(jax.jit, static_argnames=("hidden_size", "dtype"))
def _sparse_reservoir(key, hidden_size: int, connectivity: float, dtype) -> Array:
  """(H, H) N(0, 1) entries, each kept with probability ``connectivity``.

  Patterns without a cycle are redrawn (up to ``_MAX_DRAWS`` times, then the
  diagonal is added) so that the spectral radius is nonzero.
  """
  shape = (hidden_size, hidden_size)
  k_pattern, k_values = jax.random.split(key)
  state = _draw_pattern((jnp.int32(0), k_pattern, jnp.zeros(shape, bool),
                         jnp.float32(connectivity)))
  _, _, pattern, _ = jax.lax.while_loop(_should_redraw, _draw_pattern, state)
  pattern = pattern | (~_has_cycle(pattern) & jnp.eye(hidden_size, dtype=bool))
  values = jax.random.normal(k_values, shape, dtype)
  return jnp.where(pattern, values, jnp.zeros_like(values))


def esn(hidden_size: int,
        *,
        spectral_radius: float = 0.9,
        connectivity: float = 0.1,
        input_scaling: float = 1.0,
        bias_scaling: float = 0.0,
        leak_rate: float = 1.0,
        spectral_method: str = "exact",
        dtype=jnp.float32) -> Cell:
  """Echo-state reservoir with leaky-integrator units.

  Equations (x_t: (*B, D), h_t: (*B, H), a = ``leak_rate``)::

    h_t = (1 - a) h_{t-1} + a tanh(x_t W_in + h_{t-1} W_rec + b)
    y_t = h_t

  Params, all fixed (under ``seqjax.FROZEN``, so ``seqjax.trainable_mask``
  marks them untrainable)::

    {"frozen": {"w_in": (D, H), "w_rec": (H, H), "b": (H,)}}

  ``w_rec`` is sparse: each entry is nonzero with probability
  ``connectivity``, with N(0, 1) values, then rescaled by
  ``seqjax.init.scale_to_spectral_radius`` to the requested spectral radius
  (a pattern without a directed cycle, possible only for tiny
  ``H * connectivity``, has radius 0 and is redrawn; after 100 such draws the
  diagonal is added). ``w_in`` is U(-input_scaling, input_scaling) and ``b``
  is U(-bias_scaling, bias_scaling). Carry: ``h`` (*B, H).

  A spectral radius below 1 usually (not provably) gives the echo-state
  property: the state forgets its initial value and becomes a function
  of the input history alone. Train a linear readout with ``fit_readout``.

  Args:
    hidden_size: H, > 0.
    spectral_radius: target largest |eigenvalue| of ``w_rec``, > 0.
    connectivity: probability in (0, 1] that an entry of ``w_rec`` is nonzero.
    input_scaling: half-width of the uniform ``w_in`` entries, >= 0.
    bias_scaling: half-width of the uniform ``b`` entries, >= 0 (0: no bias).
    leak_rate: a in (0, 1]; 1 is the original ESN, smaller values slow the
      reservoir down (each unit has timescale 1/a steps).
    spectral_method: how ``init`` measures the radius, ``"exact"`` (all
      eigenvalues on the host, O(H^3)) or ``"power"`` (power iteration on
      device, a few percent off, for large reservoirs); see
      ``seqjax.init.spectral_radius``.
    dtype: dtype of the parameters and the carry.

  Returns:
    A ``seqjax.Cell`` with ``output_size = hidden_size``.

  Raises:
    ValueError: naming the argument, for spectral_radius <= 0, connectivity
      or leak_rate outside (0, 1], negative scalings, an unknown
      spectral_method.
  """
  hidden_size = checks.positive_int("hidden_size", hidden_size)
  spectral_radius = checks.positive("spectral_radius", spectral_radius)
  connectivity = checks.in_range("connectivity", connectivity, 0.0, 1.0, low_open=True)
  input_scaling = _non_negative("input_scaling", input_scaling)
  bias_scaling = _non_negative("bias_scaling", bias_scaling)
  leak_rate = checks.in_range("leak_rate", leak_rate, 0.0, 1.0, low_open=True)
  checks.one_of("spectral_method", spectral_method, ("exact", "power"))

  def init(key, input_size):
    input_size = common.check_input_size(input_size)
    k_in, k_rec, k_b = jax.random.split(key, 3)
    w_rec = _sparse_reservoir(k_rec, hidden_size, connectivity, dtype)
    return {FROZEN: {
        "w_in": jax.random.uniform(k_in, (input_size, hidden_size), dtype,
                                   -input_scaling, input_scaling),
        "w_rec": initializers.scale_to_spectral_radius(
            w_rec, spectral_radius, method=spectral_method),
        "b": jax.random.uniform(k_b, (hidden_size,), dtype, -bias_scaling, bias_scaling),
    }}

  def initial_carry(params, batch_shape=()):
    return jnp.zeros(checks.batch_shape(batch_shape) + (hidden_size,), params[FROZEN]["w_rec"].dtype)

  def update(h, pre):
    drive = jnp.tanh(pre)
    h = drive if leak_rate == 1.0 else (1.0 - leak_rate) * h + leak_rate * drive
    return h, h

  def step(params, h, x):
    frozen = params[FROZEN]
    return update(h, x @ frozen["w_in"] + h @ frozen["w_rec"] + frozen["b"])

  def sequence(params, h, xs, *, mask, restart, restart_carry, reverse):
    # The input drive x_t W_in + b of every step is one (T*B, D) @ (D, H)
    # product before the loop, which is left with the recurrent product alone.
    frozen = params[FROZEN]
    drives = xs @ frozen["w_in"] + frozen["b"]
    w_rec = frozen["w_rec"]
    if h.ndim == 1:
      # Unbatched, the step is a matrix-vector product; with W^T stored
      # row-major (one transpose before the loop) it reads W contiguously,
      # 1.4x faster than h @ W at H=2000 on CPU (benchmarks/esn_vs_reservoirpy.py).
      w_rec_t = w_rec.T

      def recurrent(h):
        return w_rec_t @ h
    else:
      def recurrent(h):
        return h @ w_rec

    def fast_step(h, drive):
      return update(h, drive + recurrent(h))

    return scan_steps(fast_step, h, drives, mask=mask, restart=restart,
                      restart_carry=restart_carry, reverse=reverse)

  return Cell(init, initial_carry, step, lambda params: params[FROZEN]["w_in"].shape[0],
              hidden_size, hidden_size,
              f"esn(hidden_size={hidden_size}, spectral_radius={spectral_radius}, "
              f"connectivity={connectivity}, leak_rate={leak_rate})",
              fast=FastPath(sequence, ("cpu", "gpu", "tpu"), step))


def _check_readout_shapes(inputs, states, targets=None) -> None:
  named = [("inputs", inputs, "(*B, T, D)"), ("states", states, "(*B, T, H)")]
  if targets is not None:
    named.append(("targets", targets, "(*B, T, O)"))
  for name, array, layout in named:
    if len(checks.shape_of(array)) < 2:
      raise ValueError(f"{name} must have shape {layout} with at least time and "
                       f"feature axes, got shape {checks.shape_of(array)}")
    checks.float_array(name, array)
  lead = checks.shape_of(inputs)[:-1]
  for name, array, layout in named[1:]:
    if checks.shape_of(array)[:-1] != lead:
      raise ValueError(f"{name} {layout} must match inputs (*B, T, D) in every axis "
                       f"but the last, got inputs {checks.shape_of(inputs)} and "
                       f"{name} {checks.shape_of(array)}")


def _readout_rows(inputs, states, targets, washout):
  """Feature rows concat(x_t, h_t) (N, D+H) and target rows (N, O) after the washout.

  Rows keep time order within each batch row, batch rows one after another.
  """
  dtype = jnp.result_type(inputs, states, targets)
  features = jnp.concatenate([inputs.astype(dtype), states.astype(dtype)], -1)
  features = features[..., washout:, :]
  features = features.reshape(-1, features.shape[-1])
  targets = targets.astype(dtype)[..., washout:, :]
  return features, targets.reshape(-1, targets.shape[-1])


@functools.partial(jax.jit, static_argnames=("washout", "bias"))
def _solve_ridge(inputs, states, targets, ridge, washout, bias):
  features, targets = _readout_rows(inputs, states, targets, washout)
  dtype = features.dtype
  num_features, num_outputs = features.shape[1], targets.shape[1]
  if bias:
    feature_mean = jnp.mean(features, axis=0)
    target_mean = jnp.mean(targets, axis=0)
    features = features - feature_mean
    targets = targets - target_mean
  # QR of [[F, Y], [sqrt(ridge) I, 0]]: its R is [[R11, R12], [0, .]] with
  # R11^T R11 = F^T F + ridge I (the Cholesky factor of the normal equations)
  # and R12 = R11^-T F^T Y, and Q is never formed.
  penalty = jnp.sqrt(jnp.asarray(ridge, dtype)) * jnp.eye(num_features, dtype=dtype)
  augmented = jnp.concatenate([
      jnp.concatenate([features, targets], 1),
      jnp.concatenate([penalty, jnp.zeros((num_features, num_outputs), dtype)], 1),
  ], 0)
  # GPUs and TPUs otherwise run float32 matmuls at reduced precision.
  with jax.default_matmul_precision("highest"):
    r = jnp.linalg.qr(augmented, mode="r")
    w = jax.scipy.linalg.solve_triangular(r[:num_features, :num_features],
                                          r[:num_features, num_features:], lower=False)
    if not bias:
      return {"w": w}
    return {"w": w, "b": target_mean - feature_mean @ w}


def fit_readout(inputs: Array,
                states: Array,
                targets: Array,
                *,
                ridge: float = 1e-6,
                washout: int = 0,
                bias: bool = True) -> Params:
  """Ridge-regression readout ``y_t ~ x_t W_x + h_t W_h + b``, in closed form.

  With features ``f_t = [x_t, h_t]`` (F = D + H) stacked over every batch row
  and every step after the washout, solves::

    min_{W, b}  sum_t ||y_t - f_t W - b||^2 + ridge ||W||^2

  The bias is not penalised (ridge shrinks the weights, not the mean
  prediction). This is the least-squares solution of the augmented system
  ``[1, F; 0, sqrt(ridge) I] [b; W] = [Y; 0]``, computed as ridge on centred
  data: ``b = mean(y) - mean(f) W`` and ``W`` from the normal equations
  ``(Fc^T Fc + ridge I) W = Fc^T Yc``.

  Numerics, for float32: the normal equations are solved through their
  Cholesky factor ``R`` (``R^T R = Fc^T Fc + ridge I``), but ``R`` is taken
  from a QR factorisation of ``[Fc; sqrt(ridge) I]`` instead of from the Gram
  matrix, so the condition number is not squared. Reservoir states are often
  nearly collinear (a periodic input puts them on a closed curve); forming
  ``Fc^T Fc`` in float32 then loses every ridge below about
  ``1e-7 * ||Fc||^2``, the common ``1e-6`` included, and a Cholesky of it
  fails. Centring also removes the dominant mean direction. The cost is
  O(N (F + O)^2) for N fitted steps, that of forming the Gram matrix. With
  ``ridge=0`` the features must have full column rank (else the result is
  inf/NaN).

  Jittable; under ``jax.jit`` ``washout`` and ``bias`` must be static
  (``jax.jit(fit_readout, static_argnames=("washout", "bias"))``), while
  ``ridge`` may be traced (and is then not checked).

  Args:
    inputs: reservoir inputs ``x_t``, (*B, T, D).
    states: reservoir states ``h_t`` (the ``ys`` of ``seqjax.unroll``),
      (*B, T, H).
    targets: desired outputs ``y_t``, (*B, T, O).
    ridge: Tikhonov penalty on ``W``, >= 0.
    washout: number of initial steps of every sequence left out of the fit
      (while the reservoir forgets its initial state), 0 <= washout < T.
    bias: fit the intercept ``b``.

  Returns:
    ``{"w": (D + H, O), "b": (O,)}``, without ``"b"`` when ``bias=False``;
    rows ``[:D]`` of ``w`` weigh the inputs, rows ``[D:]`` the states. Apply
    with ``readout``.

  Raises:
    ValueError: for arrays of mismatched shapes, ridge < 0 or a washout outside
      [0, T).
  """
  _check_readout_shapes(inputs, states, targets)
  if not isinstance(ridge, jax.core.Tracer):
    if np.ndim(ridge) != 0:
      raise ValueError(f"ridge must be a scalar, got shape {np.shape(ridge)}")
    value = float(ridge)
    if not (value >= 0 and math.isfinite(value)):
      raise ValueError(f"ridge must be finite and >= 0, got {ridge}")
  steps = checks.shape_of(inputs)[-2]
  if isinstance(washout, bool) or not isinstance(washout, numbers.Integral):
    raise TypeError(f"washout must be an integer number of steps, got {washout!r}")
  if not 0 <= washout < steps:
    raise ValueError(f"washout must be in [0, T) with T={steps} steps, got {washout}")
  return _solve_ridge(jnp.asarray(inputs), jnp.asarray(states), jnp.asarray(targets),
                      ridge, washout=int(washout), bias=bool(bias))


def readout(readout_params: Params, inputs: Array, states: Array) -> Array:
  """Applies a readout from ``fit_readout``: ``x_t W[:D] + h_t W[D:] + b``.

  Args:
    readout_params: ``{"w": (D + H, O)}``, optionally with ``"b": (O,)``.
    inputs: (*B, T, D) (or any ``(..., D)`` matching ``states``).
    states: (*B, T, H).

  Returns:
    Predictions, (*B, T, O).
  """
  inputs_shape, states_shape = checks.shape_of(inputs), checks.shape_of(states)
  if not inputs_shape or not states_shape or inputs_shape[:-1] != states_shape[:-1]:
    raise ValueError(f"inputs (*B, T, D) and states (*B, T, H) must match in every "
                     f"axis but the last, got {inputs_shape} and {states_shape}")
  w = readout_params["w"]
  input_size, hidden_size = inputs_shape[-1], states_shape[-1]
  if w.ndim != 2 or w.shape[0] != input_size + hidden_size:
    raise ValueError(f"readout_params['w'] must have shape (D + H, O) = "
                     f"({input_size + hidden_size}, O) for D={input_size} inputs and "
                     f"H={hidden_size} states, got {tuple(w.shape)}")
  y = inputs @ w[:input_size] + states @ w[input_size:]
  if "b" in readout_params:
    y = y + readout_params["b"]
  return y
