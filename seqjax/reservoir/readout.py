"""Online readout for reservoirs: recursive least squares (FORCE learning).

``seqjax.cells.esn.fit_readout`` solves for the readout in one closed-form
ridge regression over a recorded run. Recursive least squares (RLS) reaches
the same kind of solution one sample at a time, keeping only ``w`` (F, O) and
the inverse correlation estimate ``P`` (F, F): O(F^2) memory and work per
step, independent of the number of samples, and usable while the reservoir
runs (FORCE learning)::

  _, states = seqjax.unroll(cell, params, inputs)
  readout_params = fit_readout_online(inputs, states, targets, alpha=1.0)
  predictions = seqjax.cells.esn.readout(readout_params, inputs, states)

References:
  Haykin 2002, "Adaptive Filter Theory", 4th ed., chapter 9 (RLS).
  Sussillo & Abbott 2009, "Generating coherent patterns of activity from
  chaotic neural networks", Neuron 63(4) (FORCE learning).
"""

from __future__ import annotations

import functools
import math
import numbers
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from seqjax import checks
from seqjax.cells.esn import _check_readout_shapes, _readout_rows
from seqjax.types import Array, Params


class RLSState(NamedTuple):
  """State of a recursive-least-squares readout."""

  w: Array  # shape=(F, O): current readout weights, prediction = f @ w.
  p: Array  # shape=(F, F): inverse correlation estimate, symmetric positive definite.


def _check_number(name: str, value: Any, low: float, high: float,
                  low_open: bool) -> None:
  """Checks a hyperparameter that may also be traced (then it is not checked)."""
  if isinstance(value, jax.core.Tracer):
    return
  if isinstance(value, bool) or not isinstance(value, numbers.Real):
    if getattr(value, "shape", None) == () and jnp.issubdtype(
        jnp.result_type(value), jnp.floating):
      value = float(value)
    else:
      raise TypeError(f"{name} must be a real number, got {value!r}")
  ok = math.isfinite(value) and (low < value if low_open else low <= value) and value <= high
  if not ok:
    bracket = "(" if low_open else "["
    raise ValueError(f"{name} must be in {bracket}{low}, {high}], got {value}")


def rls_init(num_features: int,
             num_outputs: int,
             *,
             alpha: float = 1.0,
             dtype=jnp.float32) -> RLSState:
  """Initial RLS state: ``W_0 = 0`` and ``P_0 = I / alpha``.

  ``alpha`` plays the role of the ridge penalty: with ``forgetting = 1``,
  after samples ``f_1..f_N`` the state is exactly the ridge solution
  ``W_N = (alpha I + F^T F)^-1 F^T Y`` and ``P_N = (alpha I + F^T F)^-1``.

  Args:
    num_features: F, > 0.
    num_outputs: O, > 0.
    alpha: regularisation, > 0 (``P_0 = I / alpha``). Small values learn fast
      but, in float32, amplify rounding errors.
    dtype: dtype of ``w`` and ``p``.

  Returns:
    ``RLSState(w=zeros (F, O), p=I / alpha (F, F))``.

  Raises:
    ValueError/TypeError: naming the argument, for non-positive sizes or alpha.
  """
  num_features = checks.positive_int("num_features", num_features)
  num_outputs = checks.positive_int("num_outputs", num_outputs)
  _check_number("alpha", alpha, 0.0, math.inf, low_open=True)
  return RLSState(w=jnp.zeros((num_features, num_outputs), dtype),
                  p=jnp.eye(num_features, dtype=dtype) / jnp.asarray(alpha, dtype))


def _rls_step(state: RLSState, features: Array, target: Array,
              forgetting) -> tuple[RLSState, Array]:
  w, p = state
  with jax.default_matmul_precision("highest"):
    prediction = features @ w
    p_f = p @ features
    gain = p_f / (forgetting + features @ p_f)
    w = w + jnp.outer(gain, target - prediction)
    p = (p - jnp.outer(gain, p_f)) / forgetting
  # Rounding slowly makes P asymmetric, and an asymmetric P can lose
  # positive definiteness; symmetrising is the standard cheap remedy.
  p = 0.5 * (p + p.T)
  return RLSState(w, p), prediction


def rls_update(state: RLSState,
               features: Array,
               target: Array,
               *,
               forgetting: float = 1.0) -> tuple[RLSState, Array]:
  """One recursive-least-squares step on the sample ``(f, y)``.

  With ``lambda = forgetting``::

    y_hat = f W                           (prediction before the update)
    k     = P f / (lambda + f^T P f)      (gain, (F,))
    W    <- W + k (y - y_hat)             (rank-one correction, (F, O))
    P    <- (P - k f^T P) / lambda

  After N samples from ``rls_init(alpha=alpha)`` this is the exact minimiser
  of the exponentially weighted ridge objective::

    sum_t lambda^(N-t) ||y_t - f_t W||^2 + lambda^N alpha ||W||^2

  (plain ridge with penalty ``alpha`` when ``lambda = 1``). Jittable, and
  ``forgetting`` may be traced.

  Args:
    state: an ``RLSState`` with ``w`` (F, O) and ``p`` (F, F).
    features: f, (F,).
    target: y, (O,).
    forgetting: lambda in (0, 1]; below 1, old samples are forgotten with
      timescale ``1 / (1 - lambda)`` samples.

  Returns:
    ``(new_state, prediction)`` where ``prediction`` (O,) is ``f W`` with the
    weights *before* the update (the a-priori prediction, whose error drives
    the update).

  Raises:
    ValueError/TypeError: naming the argument, for shapes that do not match
      the state or a ``forgetting`` outside (0, 1].
  """
  if not isinstance(state, RLSState):
    raise TypeError(f"state must be an RLSState (from rls_init), got {type(state).__name__}")
  num_features, num_outputs = checks.shape_of(state.w)
  if checks.shape_of(state.p) != (num_features, num_features):
    raise ValueError(f"state.p must have shape (F, F) = ({num_features}, {num_features}), "
                     f"got {checks.shape_of(state.p)}")
  if checks.shape_of(features) != (num_features,):
    raise ValueError(f"features must have shape (F,) = ({num_features},), "
                     f"got {checks.shape_of(features)}")
  if checks.shape_of(target) != (num_outputs,):
    raise ValueError(f"target must have shape (O,) = ({num_outputs},), "
                     f"got {checks.shape_of(target)}")
  checks.float_array("features", features)
  checks.float_array("target", target)
  _check_number("forgetting", forgetting, 0.0, 1.0, low_open=True)
  dtype = state.w.dtype
  return _rls_step(state, jnp.asarray(features, dtype), jnp.asarray(target, dtype),
                   jnp.asarray(forgetting, dtype))


@functools.partial(jax.jit, static_argnames=("washout", "bias"))
def _fit_online(inputs, states, targets, alpha, forgetting, washout, bias):
  features, targets = _readout_rows(inputs, states, targets, washout)
  dtype = features.dtype
  num_features = features.shape[1]
  if bias:
    features = jnp.concatenate([features, jnp.ones_like(features[:, :1])], 1)
  state = RLSState(
      w=jnp.zeros((features.shape[1], targets.shape[1]), dtype),
      p=jnp.eye(features.shape[1], dtype=dtype) / jnp.asarray(alpha, dtype))
  forgetting = jnp.asarray(forgetting, dtype)

  def body(state, sample):
    return _rls_step(state, sample[0], sample[1], forgetting)[0], None

  state, _ = jax.lax.scan(body, state, (features, targets))
  if not bias:
    return {"w": state.w}
  return {"w": state.w[:num_features], "b": state.w[num_features]}


def fit_readout_online(inputs: Array,
                       states: Array,
                       targets: Array,
                       *,
                       alpha: float = 1.0,
                       forgetting: float = 1.0,
                       washout: int = 0,
                       bias: bool = True) -> Params:
  """Readout ``y_t ~ x_t W_x + h_t W_h + b`` fitted by recursive least squares.

  Features ``f_t = [x_t, h_t]`` (F = D + H), with a constant 1 appended when
  ``bias``, are fed to ``rls_update`` one sample at a time (a ``lax.scan``),
  every batch row in turn (row-major order: all kept steps of row 0, then
  row 1, ...), skipping the first ``washout`` steps of each row. With
  ``forgetting = 1`` the result is the ridge solution::

    min_{W, b}  sum_t ||y_t - f_t W - b||^2 + alpha (||W||^2 + ||b||^2)

  Difference from ``seqjax.cells.esn.fit_readout``: that function centres the
  data and leaves the bias unpenalised; RLS cannot centre (the mean is not
  known in advance), so here the bias is an ordinary weight on a constant
  feature and *is* penalised by ``alpha``. The two agree as ``alpha`` and
  ``ridge`` go to 0 (and exactly whenever the targets and features have zero
  mean). With ``forgetting < 1`` it minimises the exponentially weighted
  objective of ``rls_update``, which tracks a drifting target.

  Numerics: O(N F^2) work for N samples, sequential in N. In float32 choose
  ``alpha`` not much below about ``1e-4 * ||f||^2`` (the default 1 suits
  reservoir states in [-1, 1]); a tiny ``alpha`` gives a huge ``P_0`` and
  the rank-one downdates then lose precision. Use ``fit_readout`` for the
  tiny-ridge closed-form fit.

  Jittable; under ``jax.jit`` ``washout`` and ``bias`` must be static, while
  ``alpha`` and ``forgetting`` may be traced (and are then not checked).

  Args:
    inputs: reservoir inputs ``x_t``, (*B, T, D).
    states: reservoir states ``h_t`` (the ``ys`` of ``seqjax.unroll``),
      (*B, T, H).
    targets: desired outputs ``y_t``, (*B, T, O).
    alpha: ridge penalty, > 0 (``P_0 = I / alpha``).
    forgetting: RLS forgetting factor in (0, 1].
    washout: initial steps of every sequence left out, 0 <= washout < T.
    bias: fit the intercept ``b`` (penalised, see above).

  Returns:
    ``{"w": (D + H, O), "b": (O,)}``, without ``"b"`` when ``bias=False``: the
    format of ``fit_readout``, to be applied with
    ``seqjax.cells.esn.readout``.

  Raises:
    ValueError/TypeError: naming the argument, for mismatched shapes,
      non-float arrays, alpha <= 0, forgetting outside (0, 1] or a washout
      outside [0, T).
  """
  # The same shape rules as the closed-form readout's.
  _check_readout_shapes(inputs, states, targets)
  lead = checks.shape_of(inputs)[:-1]
  _check_number("alpha", alpha, 0.0, math.inf, low_open=True)
  _check_number("forgetting", forgetting, 0.0, 1.0, low_open=True)
  steps = lead[-1]
  if isinstance(washout, bool) or not isinstance(washout, numbers.Integral):
    raise TypeError(f"washout must be an integer number of steps, got {washout!r}")
  if not 0 <= washout < steps:
    raise ValueError(f"washout must be in [0, T) with T={steps} steps, got {washout}")
  return _fit_online(jnp.asarray(inputs), jnp.asarray(states), jnp.asarray(targets),
                     alpha, forgetting, washout=int(washout), bias=bool(bias))
