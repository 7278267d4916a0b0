"""Diagonal linear recurrences ``h_t = a_t * h_{t-1} + b_t`` and the cells built on them.

Because the recurrence is linear in ``h`` and elementwise, a whole sequence can
be computed by ``lax.associative_scan`` in O(log T) depth instead of T
sequential steps (Blelloch 1990; Martin & Cundy 2018). ``linear_recurrence``
offers both routes behind one signature; ``lru`` and ``min_gru`` use the
associative one as their whole-sequence fast path (``Cell.fast``), where
every ``a_t, b_t`` is computed in one batched pass over time, masks and
restarts are folded into ``a_t, b_t``, and the scan runs once.

On CPU the associative scan is slower than ``lax.scan`` (it does ~2x the
arithmetic and T is not parallelised), so the cells enable the fast path only
for ``"gpu"`` and ``"tpu"`` (``Cell.fast.backends``); ``unroll(...,
implementation="fast")`` forces it anywhere.

References:
  Blelloch 1990, "Prefix sums and their applications".
  Martin & Cundy 2018, "Parallelizing linear recurrent neural nets over
  sequence length", https://arxiv.org/abs/1709.04057
  Orvieto et al. 2023, "Resurrecting recurrent neural networks for long
  sequences" (LRU), https://arxiv.org/abs/2303.06349
  Feng et al. 2024, "Were RNNs all we needed?" (minGRU),
  https://arxiv.org/abs/2410.01201
"""

from __future__ import annotations

import math
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from seqjax import checks
from seqjax import init as initializers
from seqjax.cells import common
from seqjax.types import Array, Cell, FastPath

__all__ = ["linear_recurrence", "lru", "min_gru"]  # re-exported by seqjax.cells

_IMPLEMENTATIONS = ("sequential", "associative")


def _combine(earlier, later):
  """Composes two affine maps ``h -> a h + b``, ``earlier`` applied first."""
  a1, b1 = earlier
  a2, b2 = later
  return a1 * a2, a2 * b1 + b2


def linear_recurrence(a: Array,
                      b: Array,
                      h0: Optional[Array] = None,
                      *,
                      reverse: bool = False,
                      implementation: str = "sequential") -> Array:
  """All states of the diagonal linear recurrence ``h_t = a_t * h_{t-1} + b_t``.

  Time is axis 0; ``h_{-1} = h0`` (zeros if ``None``). With ``reverse=True``
  time runs right to left, ``h_t = a_t * h_{t+1} + b_t`` with ``h_T = h0``,
  and the states stay in input order (as with ``lax.scan(reverse=True)``).

  The associative route uses the operator on pairs ``(a, b)``::

    (a1, b1) o (a2, b2) = (a1 * a2, a2 * b1 + b2)

  (``(a1, b1)`` the earlier step in processing order), with ``h0`` folded into
  the first processed ``b``.

  Args:
    a: decays ``(T, *B, N)``, real or complex; any shape that broadcasts
      against ``b`` (e.g. ``(N,)`` for a decay constant over time and batch).
    b: inputs ``(T, *B, N)``, real or complex (or broadcasting against ``a``).
    h0: optional initial state, broadcastable to ``(*B, N)``.
    reverse: process time right to left.
    implementation: ``"sequential"`` (``lax.scan``, T steps) or
      ``"associative"`` (``lax.associative_scan``, O(log T) depth).

  Returns:
    ``hs`` of shape ``(T, *B, N)`` (the broadcast shape of ``a`` and ``b``)
    and dtype ``result_type(a, b, h0)``. The arithmetic is carried out in at
    least float32 (complex64 if anything is complex), so bfloat16 inputs do not
    accumulate rounding over time.

  Raises:
    ValueError: ``a``, ``b`` and ``h0`` do not broadcast as described, or
      ``implementation`` is unknown.
    TypeError: an argument is not a floating-point or complex array.
  """
  checks.one_of("implementation", implementation, _IMPLEMENTATIONS)
  if not isinstance(reverse, bool):
    raise TypeError(f"reverse must be True or False, got {reverse!r}")
  checks.float_array("a", a)
  checks.float_array("b", b)
  try:
    shape = tuple(np.broadcast_shapes(checks.shape_of(a), checks.shape_of(b)))
  except ValueError:
    raise ValueError(f"a and b must broadcast to a common shape (T, *B, N), got "
                     f"shapes {checks.shape_of(a)} and {checks.shape_of(b)}") from None
  if not shape:
    raise ValueError("a and b must have a leading time axis, got scalars")
  arrays = [a, b]
  if h0 is not None:
    checks.float_array("h0", h0)
    h0_shape = checks.shape_of(h0)
    try:
      ok = tuple(np.broadcast_shapes(h0_shape, shape[1:])) == shape[1:]
    except ValueError:
      ok = False
    if not ok:
      raise ValueError(f"h0 must broadcast to the state shape {shape[1:]} "
                       f"(a and b are {shape}), got shape {h0_shape}")
    arrays.append(h0)
  # Mixing real decays with complex inputs (or bf16 with f32) is part of the
  # contract, so the dtypes combine by JAX's standard rules even when the
  # caller runs under strict promotion; every operand is then cast explicitly.
  with jax.numpy_dtype_promotion("standard"):
    out_dtype = jnp.result_type(*arrays)
    acc_dtype = jnp.promote_types(out_dtype, jnp.float32)
  a = jnp.broadcast_to(jnp.asarray(a, acc_dtype), shape)
  b = jnp.broadcast_to(jnp.asarray(b, acc_dtype), shape)
  h0 = (jnp.zeros(shape[1:], acc_dtype) if h0 is None
        else jnp.broadcast_to(jnp.asarray(h0, acc_dtype), shape[1:]))
  if shape[0] == 0:
    return jnp.zeros(shape, out_dtype)

  if implementation == "sequential":

    def body(h, ab):
      a_t, b_t = ab
      h = a_t * h + b_t
      return h, h

    _, hs = jax.lax.scan(body, h0, (a, b), reverse=reverse)
  else:
    first = -1 if reverse else 0
    b = b.at[first].add(a[first] * h0)
    _, hs = jax.lax.associative_scan(_combine, (a, b), reverse=reverse, axis=0)
  return hs.astype(out_dtype)


def _masked_recurrence(a, b, carry, mask, restart, restart_carry, reverse):
  """The associative scan with ``unroll``'s mask and restart folded into ``a, b``.

  Args:
    a, b: ``(T, *B, N)`` (``a`` may broadcast against ``b``).
    carry: ``(*B, N)``, the state before the first processed step.
    mask, restart: ``None`` or booleans ``(T, *B)``, as in ``seqjax.FastPath``.
    restart_carry: ``(*B, N)``, the state a restart step starts from.
    reverse: process time right to left.

  Returns:
    ``(final_carry, hs)`` with ``hs`` of shape ``(T, *B, N)``.
  """
  a = jnp.broadcast_to(a, jnp.broadcast_shapes(a.shape, b.shape))
  b = jnp.broadcast_to(b, a.shape)
  if mask is not None:
    # A padded step is the identity map, so the carry passes through unchanged.
    keep = mask[..., None]
    a = jnp.where(keep, a, jnp.ones_like(a))
    b = jnp.where(keep, b, jnp.zeros_like(b))
  if restart is not None:
    # h_t = a_t * restart_carry + b_t does not depend on h_{t-1}: a constant
    # map. Applied after the mask so that a padded restart step still restarts,
    # as it does in ``unroll``'s scan.
    fresh = restart[..., None]
    b = jnp.where(fresh, a * restart_carry[None] + b, b)
    a = jnp.where(fresh, jnp.zeros_like(a), a)
  hs = linear_recurrence(a, b, carry, reverse=reverse, implementation="associative")
  if hs.shape[0] == 0:
    return carry, hs
  return (hs[0] if reverse else hs[-1]), hs


def _zero_masked(ys, mask):
  if mask is None:
    return ys
  return jnp.where(mask[..., None], ys, jnp.zeros_like(ys))


def _check_ring(r_min, r_max, max_phase):
  r_min = checks.in_range("r_min", r_min, 0.0, 1.0)
  r_max = checks.in_range("r_max", r_max, 0.0, 1.0, low_open=True)
  if r_min > r_max:
    raise ValueError(f"r_min must be <= r_max, got r_min={r_min} and r_max={r_max}")
  if r_min >= 1.0:
    raise ValueError(f"r_min must be < 1 (|lambda| = 1 does not decay), got {r_min}")
  max_phase = checks.positive("max_phase", max_phase)
  if not math.isfinite(max_phase):
    raise ValueError(f"max_phase must be finite, got {max_phase}")
  return r_min, r_max, max_phase


def _complex_dtype(real_dtype) -> jnp.dtype:
  """complex128 for float64 parameters, complex64 for float32 and narrower."""
  return jnp.dtype(jnp.complex128 if jnp.dtype(real_dtype) == jnp.float64 else jnp.complex64)


def _lru_lambda(params):
  """``lambda = exp(-exp(nu_log) + i exp(theta_log))``, (N,) complex."""
  magnitude = jnp.exp(-jnp.exp(params["nu_log"]))
  phase = jnp.exp(params["theta_log"])
  return jax.lax.complex(magnitude * jnp.cos(phase), magnitude * jnp.sin(phase))


def _lru_input_kernels(params):
  """``gamma * B`` as real and imaginary (D, N) matrices."""
  gamma = jnp.exp(params["gamma_log"])
  return params["b_re"] * gamma[None, :], params["b_im"] * gamma[None, :]


def _lru_readout(params, h, x):
  """``Re(h C) + x D`` without forming complex matmuls."""
  return h.real @ params["c_re"] - h.imag @ params["c_im"] + x @ params["d"]


def lru(hidden_size: int,
        *,
        state_size: Optional[int] = None,
        r_min: float = 0.0,
        r_max: float = 1.0,
        max_phase: float = 2 * math.pi,
        kernel_init=jax.nn.initializers.variance_scaling(0.5, "fan_in", "normal"),
        output_init=jax.nn.initializers.variance_scaling(1.0, "fan_in", "normal"),
        skip_init=jax.nn.initializers.variance_scaling(1.0, "fan_in", "normal"),
        dtype=jnp.float32) -> Cell:
  """Linear Recurrent Unit (Orvieto et al. 2023): a complex diagonal linear RNN.

  Equations (x_t: (*B, D), h_t: (*B, N) complex, y_t: (*B, H))::

    lambda = exp(-exp(nu_log) + i exp(theta_log))       # (N,), |lambda| < 1
    gamma  = exp(gamma_log)                             # (N,)
    h_t = lambda * h_{t-1} + gamma * (x_t B)            # B = b_re + i b_im
    y_t = Re(h_t C) + x_t D                             # C = c_re + i c_im

  The exponential parametrisation keeps every eigenvalue inside the unit disk
  for any parameter value. At init ``lambda`` is uniform on the ring
  ``r_min <= |lambda| <= r_max`` (``|lambda|^2`` uniform) with phase uniform
  in ``[0, max_phase]``, and ``gamma_log = log(sqrt(1 - |lambda|^2))``, so a
  white-noise input gives states of the variance of ``x_t B``; ``gamma_log``
  is then trained freely, as in the paper. With ``r_max=1`` magnitudes are
  capped a few ulps below 1 so that ``gamma > 0`` and the recurrence decays.

  The paper's skip term ``D`` is diagonal because its input and output sizes
  are equal; here the input size D need not equal H, so ``D`` is a full
  ``(D, H)`` matrix (initialised with variance ``1/D``, which for a diagonal
  would be the paper's unit-variance entries).

  Params: ``nu_log``, ``theta_log``, ``gamma_log`` (N,); ``b_re``, ``b_im``
  (D, N); ``c_re``, ``c_im`` (N, H); ``d`` (D, H). Carry: ``h`` (*B, N),
  complex64 for float32 params (complex128 for float64).

  Args:
    hidden_size: H, the output size, > 0.
    state_size: N, the number of complex states; defaults to ``hidden_size``.
    r_min: smallest initial ``|lambda|``, in [0, 1).
    r_max: largest initial ``|lambda|``, in (0, 1], >= ``r_min``. Long-range
      tasks use e.g. ``r_min=0.9, r_max=0.999``.
    max_phase: initial phases are uniform in ``[0, max_phase]``, > 0; the
      paper uses ``pi / 10`` on long-range tasks.
    kernel_init: initialiser of ``b_re`` and ``b_im`` (each variance ``1/(2D)``
      by default, so the complex ``B`` has variance ``1/D``, as in the paper).
    output_init: initialiser of ``c_re`` and ``c_im`` (variance ``1/N``).
    skip_init: initialiser of ``d``.
    dtype: dtype of the real parameters; the carry is its complex counterpart.

  Returns:
    A ``seqjax.Cell`` with ``output_size = hidden_size`` and a whole-sequence
    fast path by ``lax.associative_scan`` (used by ``unroll`` on GPU/TPU).

  References:
    Orvieto et al. 2023, "Resurrecting recurrent neural networks for long
    sequences", https://arxiv.org/abs/2303.06349
  """
  hidden_size = checks.positive_int("hidden_size", hidden_size)
  state_size = hidden_size if state_size is None else checks.positive_int(
      "state_size", state_size)
  r_min, r_max, max_phase = _check_ring(r_min, r_max, max_phase)

  def init(key, input_size):
    input_size = common.check_input_size(input_size)
    k_r, k_phase, k_bre, k_bim, k_cre, k_cim, k_d = jax.random.split(key, 7)
    finfo = jnp.finfo(dtype)
    # Uniform on the ring's area: |lambda|^2 uniform in [r_min^2, r_max^2].
    u = jax.random.uniform(k_r, (state_size,), dtype)
    r2 = r_min**2 + u * (r_max**2 - r_min**2)
    # Keep log(r2) finite (r2 = 0 would give nu_log = +inf) and |lambda| a few
    # ulps below 1 after the exp(-exp(.)) round trip (r2 = 1 would give
    # nu_log = -inf and gamma = 0).
    r2 = jnp.clip(r2, finfo.tiny, (1 - 4 * finfo.epsneg)**2)
    nu_log = jnp.log(-0.5 * jnp.log(r2))
    phase = max_phase * jax.random.uniform(k_phase, (state_size,), dtype)
    theta_log = jnp.log(jnp.maximum(phase, finfo.tiny))
    gamma_log = 0.5 * jnp.log1p(-r2)
    return {
        "nu_log": nu_log.astype(dtype),
        "theta_log": theta_log.astype(dtype),
        "gamma_log": gamma_log.astype(dtype),
        "b_re": kernel_init(k_bre, (input_size, state_size), dtype),
        "b_im": kernel_init(k_bim, (input_size, state_size), dtype),
        "c_re": output_init(k_cre, (state_size, hidden_size), dtype),
        "c_im": output_init(k_cim, (state_size, hidden_size), dtype),
        "d": skip_init(k_d, (input_size, hidden_size), dtype),
    }

  def initial_carry(params, batch_shape=()):
    complex_dtype = _complex_dtype(params["nu_log"].dtype)
    return jnp.zeros(checks.batch_shape(batch_shape) + (state_size,), complex_dtype)

  @common.checked_step(common.input_size_of("b_re"))
  def step(params, h, x):
    w_re, w_im = _lru_input_kernels(params)
    h = _lru_lambda(params) * h + jax.lax.complex(x @ w_re, x @ w_im)
    return h, _lru_readout(params, h, x)

  def sequence(params, h, xs, *, mask, restart, restart_carry, reverse):
    w_re, w_im = _lru_input_kernels(params)
    bs = jax.lax.complex(xs @ w_re, xs @ w_im)
    h, hs = _masked_recurrence(_lru_lambda(params), bs, h, mask, restart,
                               restart_carry, reverse)
    return h, _zero_masked(_lru_readout(params, hs, xs), mask)

  return Cell(init, initial_carry, step, common.input_size_of("b_re"),
              hidden_size, hidden_size,
              f"lru(hidden_size={hidden_size}, state_size={state_size}, "
              f"r_min={r_min}, r_max={r_max}, max_phase={max_phase:.4g})",
              fast=FastPath(sequence, ("gpu", "tpu"), step))


def min_gru(hidden_size: int,
            *,
            kernel_init=initializers.glorot_uniform(),
            bias_init=initializers.zeros,
            dtype=jnp.float32) -> Cell:
  """minGRU (Feng et al. 2024): a GRU whose gate and candidate ignore ``h``.

  Equations (x_t: (*B, D), h_t: (*B, H))::

    z_t  = sigmoid(x_t W_z + b_z)
    h~_t = x_t W_h + b_h
    h_t  = (1 - z_t) * h_{t-1} + z_t * h~_t
    y_t  = h_t

  Since ``z_t`` and ``h~_t`` depend on the input only, this is the diagonal
  linear recurrence ``a_t = 1 - z_t``, ``b_t = z_t * h~_t``, which the fast
  path evaluates with ``lax.associative_scan``. (The paper's log-space form
  serves a cumulative-sum scan that divides by running products of decays;
  the associative operator never divides, so it needs no log space.)
  ``1 - z_t`` is computed as ``sigmoid(-u)`` to keep its precision when
  ``z_t`` is near 1.

  Params: ``w_x`` (D, 2H) and ``b`` (2H,), stacked in the order ``z, h~``
  (``w_x[:, :H] = W_z``). Carry: ``h`` (*B, H).

  Args:
    hidden_size: H, > 0.
    kernel_init, bias_init: initialisers ``(key, shape, dtype)``.
    dtype: dtype of the parameters and the carry.

  Returns:
    A ``seqjax.Cell`` with ``output_size = hidden_size`` and a whole-sequence
    fast path by ``lax.associative_scan`` (used by ``unroll`` on GPU/TPU).

  References:
    Feng et al. 2024, "Were RNNs all we needed?", https://arxiv.org/abs/2410.01201
  """
  hidden_size = checks.positive_int("hidden_size", hidden_size)

  def init(key, input_size):
    input_size = common.check_input_size(input_size)
    k_x, k_b = jax.random.split(key)
    return {
        "w_x": kernel_init(k_x, (input_size, 2 * hidden_size), dtype),
        "b": bias_init(k_b, (2 * hidden_size,), dtype),
    }

  def initial_carry(params, batch_shape=()):
    return common.zeros_carry(params, batch_shape, hidden_size, like="w_x")

  def coefficients(params, x):
    u = x @ params["w_x"] + params["b"]
    gate, candidate = u[..., :hidden_size], u[..., hidden_size:]
    return jax.nn.sigmoid(-gate), jax.nn.sigmoid(gate) * candidate

  @common.checked_step(common.input_size_of("w_x"))
  def step(params, h, x):
    a, b = coefficients(params, x)
    h = a * h + b
    return h, h

  def sequence(params, h, xs, *, mask, restart, restart_carry, reverse):
    a, b = coefficients(params, xs)
    h, hs = _masked_recurrence(a, b, h, mask, restart, restart_carry, reverse)
    return h, _zero_masked(hs, mask)

  return Cell(init, initial_carry, step, common.input_size_of("w_x"),
              hidden_size, hidden_size, f"min_gru(hidden_size={hidden_size})",
              fast=FastPath(sequence, ("gpu", "tpu"), step))
