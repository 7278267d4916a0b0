"""Linear readouts for reservoirs: closed-form ridge regression and online RLS.

A reservoir (``seqjax.cells.esn``) is run once and a linear readout on the
features ``f_t = [x_t, h_t]`` is solved for, in closed form::

  _, states = seqjax.unroll(cell, params, inputs)          # (*B, T, H)
  readout_params = fit_readout(inputs, states, targets, ridge=1e-6, washout=100)
  predictions = readout(readout_params, inputs, states)     # (*B, T, O)

``fit_readout`` is ``solve_readout(factor_readout(...), ridge)``: the O(N F^2)
factorisation of the N fitted rows is done once and every ridge value then
costs one small (2F, F) factorisation, which is how ``seqjax.reservoir.sweep``
searches the ridge axis. Recursive least squares (``fit_readout_online``,
``rls_update``) reaches the same kind of solution one sample at a time, keeping
only ``w`` (F, O) and the inverse correlation estimate ``P`` (F, F): O(F^2)
memory and work per step, independent of the number of samples, and usable
while the reservoir runs (FORCE learning).

References:
  Lukosevicius 2012, "A practical guide to applying echo state networks",
  Neural Networks: Tricks of the Trade (ridge readouts).
  Haykin 2002, "Adaptive Filter Theory", 4th ed., chapter 9 (RLS).
  Sussillo & Abbott 2009, "Generating coherent patterns of activity from
  chaotic neural networks", Neuron 63(4) (FORCE learning).
"""

from __future__ import annotations

import contextlib
import functools
import math
import numbers
from typing import Any, Iterator, NamedTuple, Optional

import jax
import jax.numpy as jnp
import jax.scipy.linalg
import numpy as np

from seqjax import checks
from seqjax.types import Array, Params

import threadpoolctl


@contextlib.contextmanager
def blas_thread_limit(threads: int = 1) -> Iterator[None]:
  """Bounds the host BLAS/LAPACK thread pools (OpenBLAS, MKL) inside the block.

  On CPU, JAX's QR and triangular solves call the LAPACK that scipy ships,
  whose threads busy-wait for work: when other processes keep the cores busy
  they are descheduled mid-factorisation and the solve slows by an order of
  magnitude. Measured with ``fit_readout`` on 10,000 steps, 2 cores: with
  two other BLAS-bound processes running, 0.48 s with one thread vs 8.7 s
  with the default two (H = 500) and 2.4 s vs 32 s (H = 2000); on the idle
  machine one thread costs 1.3-1.5x (0.23 s vs 0.18 s, 2.4 s vs 1.6 s).
  ``fit_readout`` and ``seqjax.reservoir.sweep.sweep`` therefore run their
  solve inside this block and wait for it to finish before leaving; code
  that calls them under its own ``jax.jit`` can wrap the call (and a
  ``jax.block_until_ready``) the same way. Uses ``threadpoolctl``.

  Args:
    threads: the number of threads, > 0.
  """
  threads = checks.positive_int("threads", threads)
  with threadpoolctl.threadpool_limits(limits=threads, user_api="blas"):
    yield


def _is_traced(*arrays) -> bool:
  return any(isinstance(a, jax.core.Tracer) for a in jax.tree_util.tree_leaves(arrays))


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


def _check_washout(washout: Any, steps: int) -> int:
  if isinstance(washout, bool) or not isinstance(washout, numbers.Integral):
    raise TypeError(f"washout must be an integer number of steps, got {washout!r}")
  if not 0 <= washout < steps:
    raise ValueError(f"washout must be in [0, T) with T={steps} steps, got {washout}")
  return int(washout)


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
    raise ValueError(f"{name} must be finite and in {bracket}{low}, {high}], got {value}")


def _readout_rows(inputs, states, targets, washout):
  """Feature rows concat(x_t, h_t) (N, D+H) and target rows (N, O) after the washout.

  Rows keep time order within each batch row, batch rows one after another.
  """
  # Explicit promotion (as under jax_numpy_dtype_promotion="strict"): the
  # widest float dtype of the three, as far as x64 mode allows.
  dtype = jax.dtypes.canonicalize_dtype(
      np.promote_types(np.promote_types(inputs.dtype, states.dtype), targets.dtype))
  features = jnp.concatenate([inputs.astype(dtype), states.astype(dtype)], -1)
  features = features[..., washout:, :]
  features = features.reshape(-1, features.shape[-1])
  targets = targets.astype(dtype)[..., washout:, :]
  return features, targets.reshape(-1, targets.shape[-1])


class ReadoutFactor(NamedTuple):
  """The fitted rows of a ridge readout, reduced to a triangular factor.

  With the centred feature rows ``Fc`` (N, F) and target rows ``Yc`` (N, O),
  ``[r_features, r_targets]`` is the R factor of the QR factorisation of
  ``[Fc, Yc]``; ``||Fc W - Yc||^2`` equals ``||r_features W - r_targets||^2``
  plus a constant, so the ridge problem on these K <= F + O rows has the
  solution of the problem on all N rows.
  """

  r_features: Array  # shape=(K, F), K = min(N, F + O): upper trapezoidal.
  r_targets: Array  # shape=(K, O).
  feature_mean: Optional[Array]  # shape=(F,); None when the readout has no bias.
  target_mean: Optional[Array]  # shape=(O,); None when the readout has no bias.


def factor_readout(inputs: Array,
                   states: Array,
                   targets: Array,
                   *,
                   washout: int = 0,
                   bias: bool = True) -> ReadoutFactor:
  """The ridge-independent O(N F^2) part of ``fit_readout``.

  Stacks the features ``f_t = [x_t, h_t]`` (F = D + H) and targets of every
  batch row and every step after the washout (N rows), centres both when
  ``bias`` (the bias is then fitted and not penalised), and reduces them to
  the R factor of a QR factorisation (Householder, so the condition number
  is not squared as in the Gram matrix ``Fc^T Fc``). ``solve_readout`` turns
  the factor into the readout for any ridge. Jittable with ``washout`` and
  ``bias`` static; vmappable.

  Args:
    inputs: reservoir inputs ``x_t``, (*B, T, D).
    states: reservoir states ``h_t`` (the ``ys`` of ``seqjax.unroll``),
      (*B, T, H).
    targets: desired outputs ``y_t``, (*B, T, O).
    washout: number of initial steps of every sequence left out of the fit,
      0 <= washout < T.
    bias: centre the data so that ``solve_readout`` fits an intercept.

  Returns:
    A ``ReadoutFactor``.

  Raises:
    ValueError/TypeError: for arrays of mismatched shapes or non-float dtypes,
      a washout outside [0, T).
  """
  _check_readout_shapes(inputs, states, targets)
  washout = _check_washout(washout, checks.shape_of(inputs)[-2])
  return _factor(jnp.asarray(inputs), jnp.asarray(states), jnp.asarray(targets),
                 washout=washout, bias=checks.boolean("bias", bias))


@functools.partial(jax.jit, static_argnames=("washout", "bias"))
def _factor(inputs, states, targets, washout, bias):
  features, targets = _readout_rows(inputs, states, targets, washout)
  feature_mean = target_mean = None
  if bias:
    feature_mean, target_mean = jnp.mean(features, axis=0), jnp.mean(targets, axis=0)
    features, targets = features - feature_mean, targets - target_mean
  # GPUs and TPUs otherwise run float32 matmuls at reduced precision.
  with jax.default_matmul_precision("highest"):
    r = jnp.linalg.qr(jnp.concatenate([features, targets], 1), mode="r")
  num_features = features.shape[1]
  return ReadoutFactor(r[:, :num_features], r[:, num_features:], feature_mean, target_mean)


def solve_readout(factor: ReadoutFactor, ridge: float = 1e-6) -> Params:
  """The ridge readout from a ``factor_readout`` factor.

  Solves ``min_W ||R_f W - R_y||^2 + ridge ||W||^2`` through the R factor of
  ``[[R_f, R_y], [sqrt(ridge) I, 0]]``, a (K + F, F + O) QR: its leading
  block ``R11`` satisfies ``R11^T R11 = Fc^T Fc + ridge I`` (the Cholesky
  factor of the normal equations, obtained without forming them) and its
  block ``R12 = R11^-T Fc^T Yc``, so ``W = R11^-1 R12``; the bias is
  ``mean(y) - mean(f) W``. Cost O((K + F) (F + O)^2), independent of the
  number of fitted rows. Jittable and vmappable (over factors or ridges);
  ``ridge`` may be traced (and is then not checked).

  Args:
    factor: a ``ReadoutFactor`` from ``factor_readout``.
    ridge: Tikhonov penalty on ``W``, >= 0. With 0 the features must have
      full column rank (else the result is inf/NaN).

  Returns:
    ``{"w": (F, O), "b": (O,)}``, without ``"b"`` when the factor was built
    with ``bias=False``. Apply with ``readout``.

  Raises:
    ValueError/TypeError: for a factor that is not a ``ReadoutFactor``, a
      ridge that is not a finite scalar >= 0.
  """
  if not isinstance(factor, ReadoutFactor):
    raise TypeError(f"factor must be a ReadoutFactor (from factor_readout), "
                    f"got {type(factor).__name__}")
  _check_number("ridge", ridge, 0.0, math.inf, low_open=False)
  return _solve(factor, ridge)


@jax.jit
def _solve(factor, ridge):
  r_features, r_targets = factor.r_features, factor.r_targets
  dtype = r_features.dtype
  num_features, num_outputs = r_features.shape[1], r_targets.shape[1]
  penalty = jnp.sqrt(jnp.asarray(ridge, dtype)) * jnp.eye(num_features, dtype=dtype)
  augmented = jnp.concatenate([
      jnp.concatenate([r_features, r_targets], 1),
      jnp.concatenate([penalty, jnp.zeros((num_features, num_outputs), dtype)], 1),
  ], 0)
  with jax.default_matmul_precision("highest"):
    r = jnp.linalg.qr(augmented, mode="r")
    w = jax.scipy.linalg.solve_triangular(r[:num_features, :num_features],
                                          r[:num_features, num_features:], lower=False)
    if factor.feature_mean is None:
      return {"w": w}
    return {"w": w, "b": factor.target_mean - factor.feature_mean @ w}


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
  prediction): ``b = mean(y) - mean(f) W`` with ``W`` the ridge solution on
  centred data, ``(Fc^T Fc + ridge I) W = Fc^T Yc``. Computed as
  ``solve_readout(factor_readout(...), ridge)``.

  Numerics, for float32: the normal equations are solved through their
  Cholesky factor, taken from QR factorisations instead of from the Gram
  matrix, so the condition number is not squared. Reservoir states are often
  nearly collinear (a periodic input puts them on a closed curve); forming
  ``Fc^T Fc`` in float32 then loses every ridge below about
  ``1e-7 * ||Fc||^2``, the common ``1e-6`` included, and a Cholesky of it
  fails. Centring also removes the dominant mean direction. The cost is
  O(N (F + O)^2) for N fitted steps, that of forming the Gram matrix.

  Called eagerly, the solve runs under ``blas_thread_limit()`` (one host
  BLAS thread), which keeps it fast on a
  busy machine, and returns when it is done. Jittable; under ``jax.jit``
  ``washout`` and ``bias`` must be static (``jax.jit(fit_readout,
  static_argnames=("washout", "bias"))``), while ``ridge`` may be traced (and
  is then not checked).

  Args:
    inputs: reservoir inputs ``x_t``, (*B, T, D).
    states: reservoir states ``h_t`` (the ``ys`` of ``seqjax.unroll``),
      (*B, T, H).
    targets: desired outputs ``y_t``, (*B, T, O).
    ridge: Tikhonov penalty on ``W``, >= 0. With 0 the features must have
      full column rank (else the result is inf/NaN).
    washout: number of initial steps of every sequence left out of the fit
      (while the reservoir forgets its initial state), 0 <= washout < T.
    bias: fit the intercept ``b``.

  Returns:
    ``{"w": (D + H, O), "b": (O,)}``, without ``"b"`` when ``bias=False``;
    rows ``[:D]`` of ``w`` weigh the inputs, rows ``[D:]`` the states. Apply
    with ``readout``.

  Raises:
    ValueError/TypeError: for arrays of mismatched shapes or non-float dtypes,
      ridge < 0 or a washout outside [0, T).
  """
  _check_readout_shapes(inputs, states, targets)
  _check_number("ridge", ridge, 0.0, math.inf, low_open=False)
  washout = _check_washout(washout, checks.shape_of(inputs)[-2])
  bias = checks.boolean("bias", bias)
  arrays = (jnp.asarray(inputs), jnp.asarray(states), jnp.asarray(targets))
  if _is_traced(arrays, ridge):
    return _fit(*arrays, ridge, washout=washout, bias=bias)
  with blas_thread_limit():
    return jax.block_until_ready(_fit(*arrays, ridge, washout=washout, bias=bias))


@functools.partial(jax.jit, static_argnames=("washout", "bias"))
def _fit(inputs, states, targets, ridge, washout, bias):
  return _solve(_factor(inputs, states, targets, washout=washout, bias=bias), ridge)


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


# Online readouts: recursive least squares.


class RLSState(NamedTuple):
  """State of a recursive-least-squares readout."""

  w: Array  # shape=(F, O): current readout weights, prediction = f @ w.
  p: Array  # shape=(F, F): inverse correlation estimate, symmetric positive definite.


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

  Difference from ``fit_readout``: that function centres the
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
    format of ``fit_readout``, to be applied with ``readout``.

  Raises:
    ValueError/TypeError: naming the argument, for mismatched shapes,
      non-float arrays, alpha <= 0, forgetting outside (0, 1] or a washout
      outside [0, T).
  """
  _check_readout_shapes(inputs, states, targets)
  _check_number("alpha", alpha, 0.0, math.inf, low_open=True)
  _check_number("forgetting", forgetting, 0.0, 1.0, low_open=True)
  washout = _check_washout(washout, checks.shape_of(inputs)[-2])
  return _fit_online(jnp.asarray(inputs), jnp.asarray(states), jnp.asarray(targets),
                     alpha, forgetting, washout=washout, bias=checks.boolean("bias", bias))
