"""A whole-sequence fast path with a hand-written backward pass.

The gated cells (LSTM, GRU, Elman RNN) share one structure per step::

  a_x = x_t W_x + b_x               (*B, G_x)   input projection
  a_h = h_{t-1} W_h + b_h           (*B, G_h)   recurrent projection
  carry_t, y_t = pointwise(a_x, a_h, carry_{t-1})

Autodiff of ``lax.scan`` stores every intermediate of the step and, in the
reverse loop, forms the weight gradients ``x_t^T da_x`` and ``h_{t-1}^T da_h``
one step at a time (a rank-B update per step). ``sequence`` below is a
``jax.custom_vjp`` whose reverse loop carries only ``d carry`` and emits the
pre-activation gradients ``da_x``, ``da_h`` of every step; the weight
gradients are then two large matrix products after the loop::

  dW_x = X^T dA_x  ((D, T*B) @ (T*B, G_x)),   dW_h = H_prev^T dA_h,
  db = sum dA,   dX = dA_x W_x^T

which run near the machine's matmul peak, and the loop body is left with one
(B, G_h) @ (G_h, H) product per step. Masks, restarts and reverse follow
``seqjax.scan.scan_steps`` exactly; tests compare outputs and gradients with
the plain scan of the cell's ``step``.

A cell plugs in with a ``Recurrence``: its pointwise forward (returning what
its backward needs) and the pointwise backward.
"""

from __future__ import annotations

import functools
from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp

from seqjax.types import Array

#: Backends (``jax.default_backend()``) on which ``unroll(...,
#: implementation="auto")`` takes each cell's fused path over the plain scan of
#: its step: those where ``benchmarks/fast_path.py`` measured it training
#: faster than the scan at every shape of the throughput benchmark (see
#: docs/performance.md). GPU and TPU are left out until measured there.
BACKENDS = {
    "lstm": ("cpu",),
    "gru": ("cpu",),
    "rnn": ("cpu",),
}


class Recurrence(NamedTuple):
  """The pointwise part of a gated cell, in both directions.

  Carries are tuples of (*B, H) arrays whose first element is ``h``, the state
  that enters the recurrent product and the output.

  Attributes:
    forward: ``(a_x, a_h, carry) -> (new_carry, residual)``; ``residual`` is a
      tuple of (*B, ...) arrays kept for the backward pass (e.g. the gates).
    backward: ``(residual, carry, new_carry, d_new_carry) -> (da_x, da_h,
      d_carry)``: the gradients of the pre-activations and the direct
      (pointwise) gradient of the previous carry, whose ``h`` entry may be
      ``None`` (no direct path; the recurrent product's is added). ``da_h`` may be ``None``
      when it equals ``da_x`` (cells whose step adds the two projections).
  """

  forward: Callable[..., tuple[tuple[Array, ...], tuple[Array, ...]]]
  backward: Callable[..., tuple[Array, Optional[Array], tuple[Array, ...]]]


def _where(flag, on_true, on_false):
  """Per-row select of carry tuples; ``flag`` is a float (*B,) of 0/1."""
  return tuple(jnp.where(flag[..., None] > 0, a, b) for a, b in zip(on_true, on_false))


def _previous(carries, carry0, restart, restart_carry):
  """The carry each step starts from, (T, *B, H) per leaf (T may be 0)."""
  steps = carries[0].shape[0]
  prev = tuple(jnp.concatenate([c0[None], seq], 0)[:steps] for c0, seq in zip(carry0, carries))
  if restart is None:
    return prev
  return tuple(jnp.where(restart[..., None] > 0, rc[None], p)
               for rc, p in zip(restart_carry, prev))


def _forward_scan(recurrence, w_x, b_x, w_h, b_h, carry0, xs, mask, restart, restart_carry,
                  unroll, keep_residuals=True):
  """The forward loop; with ``keep_residuals`` it also stacks every step's
  carry and pointwise residual for the backward pass (else only ``h``)."""
  def body(carry, inputs):
    x_t, mask_t, restart_t = inputs
    if restart_t is not None:
      carry = _where(restart_t, restart_carry, carry)
    a_h = carry[0] @ w_h
    if b_h is not None:
      a_h = a_h + b_h
    new_carry, residual = recurrence.forward(x_t @ w_x + b_x, a_h, carry)
    if mask_t is not None:
      new_carry = _where(mask_t, new_carry, carry)
    if not keep_residuals:
      return new_carry, new_carry[0]
    return new_carry, (new_carry, residual)

  if not keep_residuals:
    final, hs = jax.lax.scan(body, carry0, (xs, mask, restart), unroll=unroll)
    ys = hs if mask is None else jnp.where(mask[..., None] > 0, hs, 0)
    return final, ys, None, None
  final, (carries, residuals) = jax.lax.scan(body, carry0, (xs, mask, restart), unroll=unroll)
  ys = carries[0] if mask is None else jnp.where(mask[..., None] > 0, carries[0], 0)
  return final, ys, carries, residuals


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _sequence(recurrence, unroll, w_x, b_x, w_h, b_h, carry0, xs, mask, restart,
              restart_carry):
  final, ys, _, _ = _forward_scan(recurrence, w_x, b_x, w_h, b_h, carry0, xs, mask, restart,
                                  restart_carry, unroll, keep_residuals=False)
  return final, ys


def _sequence_fwd(recurrence, unroll, w_x, b_x, w_h, b_h, carry0, xs, mask, restart,
                  restart_carry):
  final, ys, carries, residuals = _forward_scan(recurrence, w_x, b_x, w_h, b_h, carry0, xs,
                                                mask, restart, restart_carry, unroll)
  saved = (w_x, b_x, w_h, b_h, carry0, xs, mask, restart, restart_carry, carries, residuals)
  return (final, ys), saved


def _sequence_bwd(recurrence, unroll, saved, cotangents):
  w_x, b_x, w_h, b_h, carry0, xs, mask, restart, restart_carry, carries, residuals = saved
  d_final, d_ys = cotangents
  prev = _previous(carries, carry0, restart, restart_carry)
  w_h_t = w_h.T

  def body(state, inputs):
    d_carry, d_restart = state
    d_y, residual, prev_t, new_t, mask_t, restart_t = inputs
    # d(loss)/d(carry after this step): the next step's carry gradient plus
    # this step's output gradient (the output is h, the carry's first leaf).
    d_new = (d_carry[0] + d_y,) + tuple(d_carry[1:])
    if mask_t is not None:
      # A padded step passes its carry through unchanged and outputs zero.
      d_step = tuple(jnp.where(mask_t[..., None] > 0, d, 0) for d in d_new)
      d_pass = tuple(jnp.where(mask_t[..., None] > 0, 0, d) for d in d_carry)
    else:
      d_step, d_pass = d_new, None
    da_x, da_h, d_prev = recurrence.backward(residual, prev_t, new_t, d_step)
    d_h = (da_x if da_h is None else da_h) @ w_h_t
    d_prev = (d_h if d_prev[0] is None else d_prev[0] + d_h,) + tuple(d_prev[1:])
    if d_pass is not None:
      d_prev = tuple(a + b for a, b in zip(d_prev, d_pass))
    if restart_t is not None:
      d_restart = tuple(acc + jnp.where(restart_t[..., None] > 0, d, 0)
                        for acc, d in zip(d_restart, d_prev))
      d_prev = tuple(jnp.where(restart_t[..., None] > 0, 0, d) for d in d_prev)
    return (d_prev, d_restart), (da_x, da_h)

  d_restart0 = tuple(jnp.zeros_like(c) for c in carry0)
  # ``new_t`` is the carry after the step, masked; the pointwise backward only
  # reads it on real steps (padded ones get a zero gradient).
  (d_carry0, d_restart), (da_x, da_h) = jax.lax.scan(
      body, (d_final, d_restart0), (d_ys, residuals, prev, carries, mask, restart),
      reverse=True, unroll=unroll)
  if da_h is None:
    da_h = da_x
  # The weight and input gradients of all steps: large products after the loop.
  flat = lambda a: a.reshape(-1, a.shape[-1])  # noqa: E731
  d_w_x = flat(xs).T @ flat(da_x)
  d_b_x = flat(da_x).sum(0)
  d_w_h = flat(prev[0]).T @ flat(da_h)
  d_b_h = None if b_h is None else flat(da_h).sum(0)
  d_xs = da_x @ w_x.T
  zeros_like = lambda a: None if a is None else jnp.zeros_like(a)  # noqa: E731
  d_restart_carry = None if restart_carry is None else d_restart
  return (d_w_x.astype(w_x.dtype), d_b_x.astype(b_x.dtype), d_w_h.astype(w_h.dtype),
          d_b_h, d_carry0, d_xs, zeros_like(mask), zeros_like(restart), d_restart_carry)


_sequence.defvjp(_sequence_fwd, _sequence_bwd)


def sequence(recurrence: Recurrence,
             w_x: Array,
             b_x: Array,
             w_h: Array,
             b_h: Optional[Array],
             carry: tuple[Array, ...],
             xs: Array,
             *,
             mask: Optional[Array],
             restart: Optional[Array],
             restart_carry: Optional[tuple[Array, ...]],
             reverse: bool,
             unroll: int = 1) -> tuple[tuple[Array, ...], Array]:
  """Runs a ``Recurrence`` over a sequence with the fused backward pass.

  Args:
    recurrence: the cell's pointwise forward and backward.
    w_x: (D, G_x) input kernel; b_x: (G_x,) input bias.
    w_h: (H, G_h) recurrent kernel; b_h: (G_h,) recurrent bias or ``None``.
    carry: tuple of (*B, H) arrays, ``h`` first.
    xs: time-major inputs (T, *B, D).
    mask, restart: ``None`` or booleans (T, *B), as in ``Cell.sequence``.
    restart_carry: the carry a restart starts from (with ``restart``).
    reverse: process time right to left; outputs stay in input order.
    unroll: ``lax.scan`` unroll factor of both loops.

  Returns:
    ``(final_carry, ys)`` with ys (T, *B, H).
  """
  as_float = lambda flags: None if flags is None else flags.astype(xs.dtype)  # noqa: E731
  mask, restart = as_float(mask), as_float(restart)
  restart_carry = None if restart is None else tuple(restart_carry)
  if reverse:
    flip = lambda a: None if a is None else jnp.flip(a, 0)  # noqa: E731
    xs, mask, restart = flip(xs), flip(mask), flip(restart)
  final, ys = _sequence(recurrence, unroll, w_x, b_x, w_h, b_h, tuple(carry), xs, mask,
                        restart, restart_carry)
  return final, (jnp.flip(ys, 0) if reverse else ys)


def _sigmoid_grad(s):
  return s * (1.0 - s)


def lstm_recurrence(forget_bias: float, coupled: bool) -> Recurrence:
  """LSTM (gates i, f, g, o) or CIFG LSTM (f, g, o; i = 1 - f), no peepholes.

  Forward, with a = a_x + a_h: the equations of ``seqjax.cells.lstm``.
  Backward, for dh_t, dc_t (the carry gradient plus the output gradient)::

    dc = dc_t + dh_t * o * (1 - tanh(c_t)^2)
    da_o = dh_t * tanh(c_t) * o (1 - o)
    da_i = dc * g * i (1 - i)              (CIFG: no i)
    da_f = dc * c_{t-1} * f (1 - f)        (CIFG: dc * (c_{t-1} - g) * f (1 - f))
    da_g = dc * i * (1 - g^2)
    dc_{t-1} = dc * f  (+ the recurrent product's da W_h^T for dh_{t-1})

  Args:
    forget_bias: constant added to the forget gate's pre-activation,
      f = sigmoid(a_f + forget_bias).
    coupled: True for the CIFG LSTM: a is split into 3 gate blocks (f, g, o),
      (*B, 3H), and i = 1 - f; False for 4 blocks (i, f, g, o), (*B, 4H).

  Returns:
    The ``Recurrence``, with carry ``(h, c)`` of (*B, H) arrays.
  """
  num_gates = 3 if coupled else 4

  def forward(a_x, a_h, carry):
    _, c_prev = carry
    gates = jnp.split(a_x + a_h, num_gates, axis=-1)
    if coupled:
      a_f, a_g, a_o = gates
    else:
      a_i, a_f, a_g, a_o = gates
    f = jax.nn.sigmoid(a_f + forget_bias)
    g = jnp.tanh(a_g)
    i = 1.0 - f if coupled else jax.nn.sigmoid(a_i)
    o = jax.nn.sigmoid(a_o)
    c = f * c_prev + i * g
    h = o * jnp.tanh(c)
    residual = (f, g, o) if coupled else (i, f, g, o)
    return (h, c), residual

  def backward(residual, prev, new, d_new):
    if coupled:
      f, g, o = residual
      i = 1.0 - f
    else:
      i, f, g, o = residual
    c_prev, c = prev[1], new[1]
    dh, dc = d_new
    tanh_c = jnp.tanh(c)
    dc = dc + dh * o * (1.0 - tanh_c * tanh_c)
    da_o = dh * tanh_c * _sigmoid_grad(o)
    da_g = dc * i * (1.0 - g * g)
    if coupled:
      da = (dc * (c_prev - g) * _sigmoid_grad(f), da_g, da_o)
    else:
      da = (dc * g * _sigmoid_grad(i), dc * c_prev * _sigmoid_grad(f), da_g, da_o)
    return jnp.concatenate(da, -1), None, (None, dc * f)

  return Recurrence(forward, backward)


def gru_recurrence() -> Recurrence:
  """GRU with the reset gate applied after the recurrent product (cuDNN form).

  a_x = x W_x + b = [ax_r, ax_z, ax_n], a_h = h W_h + [0, 0, b_hn] =
  [ah_r, ah_z, ah_n]; forward as in ``seqjax.cells.gru``. Backward for dh_t::

    dn = dh_t (1 - z);  dz = dh_t (h_{t-1} - n);  dh_{t-1} = dh_t z (+ recurrent)
    da_n = dn (1 - n^2);  da_r = da_n * ah_n * r (1 - r);  da_z = dz * z (1 - z)
    da_x = [da_r, da_z, da_n],  da_h = [da_r, da_z, da_n * r]
  """

  def forward(a_x, a_h, carry):
    (h_prev,) = carry
    ax_r, ax_z, ax_n = jnp.split(a_x, 3, axis=-1)
    ah_r, ah_z, ah_n = jnp.split(a_h, 3, axis=-1)
    r = jax.nn.sigmoid(ax_r + ah_r)
    z = jax.nn.sigmoid(ax_z + ah_z)
    n = jnp.tanh(ax_n + r * ah_n)
    h = (1.0 - z) * n + z * h_prev
    return (h,), (r, z, n, ah_n)

  def backward(residual, prev, new, d_new):
    r, z, n, ah_n = residual
    (h_prev,), (dh,) = prev, d_new
    da_n = dh * (1.0 - z) * (1.0 - n * n)
    da_r = da_n * ah_n * _sigmoid_grad(r)
    da_z = dh * (h_prev - n) * _sigmoid_grad(z)
    da_x = jnp.concatenate([da_r, da_z, da_n], -1)
    da_h = jnp.concatenate([da_r, da_z, da_n * r], -1)
    return da_x, da_h, (dh * z,)

  return Recurrence(forward, backward)


def rnn_recurrence(activation: str) -> Recurrence:
  """Elman RNN h_t = act(x W_x + h W_h + b), act tanh or relu.

  Backward: da = dh_t * act'(a), from the output alone: 1 - h_t^2 for tanh,
  [h_t > 0] for relu.

  Args:
    activation: act, ``"tanh"`` or ``"relu"`` (another name raises KeyError).

  Returns:
    The ``Recurrence``, with carry ``(h,)`` of a (*B, H) array.
  """
  act = {"tanh": jnp.tanh, "relu": jax.nn.relu}[activation]

  def forward(a_x, a_h, carry):
    return (act(a_x + a_h),), ()

  def backward(residual, prev, new, d_new):
    (h,), (dh,) = new, d_new
    if activation == "tanh":
      da = dh * (1.0 - h * h)
    else:
      da = jnp.where(h > 0, dh, 0.0)
    return da, None, (None,)

  return Recurrence(forward, backward)
