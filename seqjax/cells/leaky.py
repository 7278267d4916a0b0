"""Leaky-integrator RNN: each unit low-pass filters its own tanh drive.

A unit with timescale ``tau`` (in steps) forgets ``1/tau`` of its state per
step, so units with a spread of timescales hold information over a spread of
horizons (a timescale hierarchy).

References:
  Mozer 1992, "Induction of multiscale temporal structure", NeurIPS 4.
  Jaeger, Lukosevicius, Popovici & Siewert 2007, "Optimization and
  applications of echo state networks with leaky-integrator neurons",
  Neural Networks 20(3).
  Bengio, Boulanger-Lewandowski & Pascanu 2013, "Advances in optimizing
  recurrent networks", https://arxiv.org/abs/1212.0901
  Tallec & Ollivier 2018, "Can recurrent neural networks warp time?"
  (timescales drawn over a range), https://arxiv.org/abs/1804.11188
"""

from __future__ import annotations

import math
import numbers
from typing import Optional, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np

from seqjax import checks
from seqjax import init as initializers
from seqjax.cells import common
from seqjax.types import FROZEN, Array, Cell, Params

__all__ = ["leaky", "timescales_of"]  # re-exported by seqjax.cells

TauLike = Union[float, Sequence[float], np.ndarray]

_DEFAULT_TAU = 2.0
# Smallest ``tau - 1`` a learned timescale starts from: keeps ``tau_raw``
# finite (it is ``log(expm1(tau - 1))``) when a sample lands on ``tau = 1``.
_MIN_LEARNED_EXCESS = 1e-6


def _check_tau(tau: TauLike, hidden_size: int, strict: bool) -> np.ndarray:
  """``tau`` as a float64 (H,) array, every entry >= 1 (> 1 if ``strict``)."""
  bound = "> 1" if strict else ">= 1"
  if isinstance(tau, bool):
    raise TypeError(f"tau must be a number or a sequence of {hidden_size} numbers, got {tau!r}")
  try:
    values = np.asarray(tau, dtype=np.float64)
  except (TypeError, ValueError):
    raise TypeError(f"tau must be a number or a sequence of {hidden_size} "
                    f"numbers, got {tau!r}") from None
  if values.ndim > 1 or (values.ndim == 1 and values.shape[0] != hidden_size):
    raise ValueError(f"tau must be a number or a sequence of hidden_size="
                     f"{hidden_size} numbers, got shape {values.shape}")
  bad = ~np.isfinite(values) | ((values <= 1.0) if strict else (values < 1.0))
  if np.any(bad):
    first = values.reshape(-1)[np.argmax(bad.reshape(-1))]
    why = ("with timescales='learned', tau = 1 + softplus(tau_raw) is always > 1; "
           if strict else "a timescale is counted in steps; ")
    raise ValueError(f"tau must be finite and {bound} ({why}got {first}"
                     f"{'' if values.ndim == 0 else f' in {tau!r}'})")
  return np.broadcast_to(values, (hidden_size,)).copy()


def _check_tau_range(tau_range) -> tuple[float, float]:
  try:
    low, high = tau_range
  except (TypeError, ValueError):
    raise ValueError(f"tau_range must be a pair (low, high), got {tau_range!r}") from None
  for v in (low, high):
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
      raise TypeError(f"tau_range must hold two numbers, got {tau_range!r}")
  if not (1.0 <= low <= high and math.isfinite(high)):
    raise ValueError(f"tau_range must satisfy 1 <= low <= high < inf, got {tau_range!r}")
  return float(low), float(high)


def _inverse_softplus(x: Array) -> Array:
  # log(expm1(x)) written so that neither large x (overflow) nor small x
  # (cancellation) loses precision.
  return x + jnp.log(-jnp.expm1(-x))


def timescales_of(params: Params) -> Array:
  """The per-unit timescales ``tau`` (H,) of a ``leaky`` cell's params.

  ``1 + softplus(params["tau_raw"])`` for learned timescales, else
  ``params["frozen"]["tau"]``.
  """
  if "tau_raw" in params:
    return 1.0 + jax.nn.softplus(params["tau_raw"])
  return params[FROZEN]["tau"]


def leaky(hidden_size: int,
          *,
          timescales: str = "fixed",
          tau: Optional[TauLike] = None,
          tau_range: tuple[float, float] = (1.0, 100.0),
          activation: common.ActivationLike = "tanh",
          kernel_init=initializers.glorot_uniform(),
          recurrent_init=initializers.orthogonal(),
          bias_init=initializers.zeros,
          dtype=jnp.float32) -> Cell:
  """Leaky-integrator RNN with per-unit timescales.

  Equations (x_t: (*B, D), s_t: (*B, H), tau: (H,), every tau >= 1)::

    s_t = (1 - 1/tau) * s_{t-1} + (1/tau) * act(b + s_{t-1} W + x_t U)
    y_t = s_t

  ``tau = 1`` is the plain Elman RNN; a unit with timescale ``tau`` keeps a
  fraction ``(1 - 1/tau)`` of its state each step, i.e. forgets over about
  ``tau`` steps.

  Params: ``w_x`` (D, H) = U, ``w_h`` (H, H) = W, ``b`` (H,), and the
  timescales, depending on ``timescales``:

  * ``"fixed"``: ``params["frozen"]["tau"]`` (H,), equal to ``tau`` (default
    2.0). Under the ``seqjax.FROZEN`` key, so ``seqjax.trainable_mask`` marks
    it untrainable.
  * ``"sampled"``: ``params["frozen"]["tau"]`` (H,), drawn log-uniformly over
    ``tau_range`` by ``init`` (equal mass per decade: a timescale hierarchy),
    then kept fixed.
  * ``"learned"``: ``params["tau_raw"]`` (H,), trained, with
    ``tau = 1 + softplus(tau_raw)`` so that ``tau > 1`` for every value of
    ``tau_raw`` (very negative ``tau_raw`` gives ``tau -> 1``, the plain
    RNN). It starts at ``tau`` if given, else log-uniform over ``tau_range``
    as for ``"sampled"`` (entries within 1e-6 of 1 are nudged up so that
    ``tau_raw`` stays finite).

  ``timescales_of(params)`` returns ``tau`` (H,) in every mode.

  Carry: ``s`` (*B, H).

  Args:
    hidden_size: H, > 0.
    timescales: ``"fixed"``, ``"sampled"`` or ``"learned"`` (see above).
    tau: a number or a length-H sequence of timescales in steps, each >= 1
      (> 1 for ``"learned"``). Used by ``"fixed"`` (default 2.0) and as the
      starting value of ``"learned"``; an error with ``"sampled"``.
    tau_range: ``(low, high)`` with ``1 <= low <= high``, the range of the
      log-uniform draw for ``"sampled"`` and for ``"learned"`` without
      ``tau``.
    activation: nonlinearity (name or callable), tanh by default.
    kernel_init, recurrent_init, bias_init: initialisers ``(key, shape, dtype)``.
    dtype: dtype of the parameters and the carry.

  Returns:
    A ``seqjax.Cell`` with ``output_size = hidden_size``.

  Raises:
    ValueError: for a tau < 1 (or <= 1 when learned), a tau sequence whose
      length is not H, a bad ``tau_range``, ``tau`` given with
      ``timescales="sampled"``, or an unknown ``timescales``.
  """
  hidden_size = checks.positive_int("hidden_size", hidden_size)
  checks.one_of("timescales", timescales, ("fixed", "sampled", "learned"))
  act = common.activation(activation)
  low, high = _check_tau_range(tau_range)
  if timescales == "sampled" and tau is not None:
    raise ValueError(f"tau is not used with timescales='sampled' (the timescales "
                     f"are drawn from tau_range={tau_range!r}), got tau={tau!r}")
  if timescales == "fixed":
    fixed_tau = _check_tau(_DEFAULT_TAU if tau is None else tau, hidden_size, strict=False)
  elif timescales == "learned" and tau is not None:
    fixed_tau = _check_tau(tau, hidden_size, strict=True)
  else:
    fixed_tau = None

  def sample_log_uniform(key):
    # Drawn in float32 at least, so a float16/bfloat16 dtype still spreads
    # the timescales over the whole range.
    draw_dtype = dtype if jnp.finfo(dtype).bits >= 32 else jnp.dtype(jnp.float32)
    log_tau = jax.random.uniform(key, (hidden_size,), draw_dtype,
                                 math.log(low), math.log(high))
    return log_tau, draw_dtype

  def init(key, input_size):
    input_size = common.check_input_size(input_size)
    k_x, k_h, k_b, k_tau = jax.random.split(key, 4)
    params = common.dense_params((k_x, k_h, k_b), input_size, hidden_size, kernel_init,
                                  recurrent_init, bias_init, dtype)
    if timescales == "fixed":
      params[FROZEN] = {"tau": jnp.asarray(fixed_tau, dtype)}
    elif timescales == "sampled":
      log_tau, _ = sample_log_uniform(k_tau)
      params[FROZEN] = {"tau": jnp.clip(jnp.exp(log_tau), low, high).astype(dtype)}
    elif fixed_tau is not None:
      # Inverted in float64 on the host so tau_raw reproduces the requested
      # tau to the full precision of the param dtype.
      excess = fixed_tau - 1.0
      params["tau_raw"] = jnp.asarray(excess + np.log(-np.expm1(-excess)), dtype)
    else:
      log_tau, draw_dtype = sample_log_uniform(k_tau)
      # expm1(log tau) is tau - 1 without the cancellation of exp(.) - 1.
      excess = jnp.maximum(jnp.expm1(log_tau), jnp.asarray(_MIN_LEARNED_EXCESS, draw_dtype))
      params["tau_raw"] = _inverse_softplus(excess).astype(dtype)
    return params

  def initial_carry(params, batch_shape=()):
    return common.zeros_carry(params, batch_shape, hidden_size, like="w_h")

  @common.checked_step(common.input_size_of("w_x"))
  def step(params, s, x):
    rate = 1.0 / timescales_of(params)
    drive = act(params["b"] + s @ params["w_h"] + x @ params["w_x"])
    s = (1.0 - rate) * s + rate * drive
    return s, s

  return Cell(init, initial_carry, step, common.input_size_of("w_x"),
              hidden_size, hidden_size,
              f"leaky(hidden_size={hidden_size}, timescales={timescales}, "
              f"activation={common.activation_name(activation)})")
