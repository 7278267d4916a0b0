"""Multiple delay paths through time: a cell fed its own outputs from d steps back.

A wrapper around any cell that adds skip connections through time, so that a
gradient reaches a step ``d`` back in one hop instead of ``d``: the shortest
path from a loss at step t to an input at step t - n has about n / max(d)
steps instead of n, which shortens the products of Jacobians that vanish or
explode (Lin, Horne, Tino & Giles 1996).

References:
  El Hihi & Bengio 1996, "Hierarchical recurrent neural networks for
  long-term dependencies" (NeurIPS 8).
  Lin, Horne, Tino & Giles 1996, "Learning long-term dependencies in NARX
  recurrent neural networks", IEEE Trans. Neural Networks 7(6).
"""

from __future__ import annotations

import numbers
from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from seqjax import checks
from seqjax.cells import common
from seqjax.types import Array, Carry, Cell

__all__ = ["delayed", "DelayedCarry"]  # re-exported by seqjax.cells


class DelayedCarry(NamedTuple):
  """Carry of ``delayed``: the wrapped cell's carry and its recent outputs."""

  inner: Carry  # the wrapped cell's own carry
  past: Array  # shape=(*B, max(delays), O): past[..., j, :] = h_{t-1-j}, newest first


def _check_delays(delays: Any) -> tuple[int, ...]:
  """``delays`` as a tuple of distinct positive ints, or a one-line error naming it."""
  if isinstance(delays, (str, bytes)) or not isinstance(delays, Sequence):
    raise TypeError(f"delays must be a sequence of positive ints such as (2, 4, 8), "
                    f"got {delays!r}")
  delays = tuple(delays)
  if not delays:
    raise ValueError("delays must hold at least one delay, got ()")
  for d in delays:
    if isinstance(d, (bool, np.bool_)) or not isinstance(d, numbers.Integral):
      raise TypeError(f"delays must hold positive ints, got {d!r} in {delays!r}")
    if d <= 0:
      raise ValueError(f"delays must be positive, got {int(d)} in {delays!r}")
  delays = tuple(int(d) for d in delays)
  if len(set(delays)) != len(delays):
    raise ValueError(f"delays must be distinct, got {delays!r}")
  return delays


def _real_dtype(carry: Carry):
  """The real dtype of the first leaf of ``carry`` (float32 for complex64)."""
  leaves = jax.tree_util.tree_leaves(carry)
  if not leaves:
    raise ValueError("cell.initial_carry must return at least one array")
  return np.finfo(jnp.result_type(leaves[0])).dtype


def delayed(cell: Cell, delays: Sequence[int] = (2, 4, 8)) -> Cell:
  """``cell`` fed, besides x_t, its own outputs from each of ``delays`` steps back.

  Equations (x_t: (*B, D), h_t = y_t: (*B, O) the wrapped cell's output,
  delays d_1, ..., d_k)::

    u_t = [x_t ; h_{t-d_1} ; ... ; h_{t-d_k}]            (*B, D + k O)
    s_t, y_t = cell.step(params, s_{t-1}, u_t)
    h_t = y_t
    h_{t-d} = 0  for t - d < 0 (before the sequence or segment start)

  ``s`` is the wrapped cell's own carry, so its own recurrence (delay 1 of an
  Elman RNN, ``(h, c)`` of an LSTM) is kept; the delayed outputs are extra
  inputs with weights of their own, the skip connections through time of
  El Hihi & Bengio (1996) and the output-delay taps of NARX networks (Lin et
  al. 1996). A gradient from step t reaches step t - d in one hop.

  The fed-back state is the cell's *output* ``y_t``: it is the hidden state
  ``h_t`` of the Elman RNN, GRU, LSTM (the ``h`` of ``LSTMCarry``), minGRU and
  ESN, the output of a Jordan cell (its carry) and the real readout of an LRU
  (whose carry is complex), and it has a static size O (``cell.output_size``)
  for every cell, which the carry does not.

  Delay 1 may be listed: h_{t-1} then also enters the input, a second weight
  on the cell's own previous output. It adds parameters but no new path (for
  the Elman RNN it only reparametrises ``W_h``: ``W_h + W_1`` acts on
  h_{t-1}); it is allowed so that NARX taps ``(1, 2, ..., n)`` can be written
  as such. Without it the cell's own recurrence is the only one-step path.

  Carry: ``DelayedCarry(inner, past)``: ``inner`` the wrapped cell's carry and
  ``past`` (*B, max(delays), O) the last max(delays) outputs, newest first
  (``past[..., d - 1, :]`` is h_{t-d} while step t runs). Each step shifts
  ``past`` by one and writes y_t at the front, so the carry holds only arrays
  and ``seqjax.unroll``'s rules apply to it unchanged: a masked step leaves
  the buffer alone (padding is not a time step; h_{t-d} counts real steps
  only), and a reset restarts it at zeros with the inner carry.

  Params: the wrapped cell's params built for input size D + k O
  (``cell.init(key, D + k * O)``); e.g. for ``rnn(H)``: ``w_x`` (D + k H, H)
  with rows ``[x ; h_{t-d_1} ; ... ; h_{t-d_k}]`` in the order of
  ``delays``, ``w_h`` (H, H), ``b`` (H,). No fast path: the step is the
  wrapped cell's step on the widened input, run by ``lax.scan``.

  Args:
    cell: any ``seqjax.Cell``.
    delays: the delays d_1, ..., d_k: a non-empty sequence of distinct ints
      >= 1, in the order their blocks appear in the input.

  Returns:
    A ``seqjax.Cell`` with the wrapped cell's ``hidden_size`` and
    ``output_size``.
  """
  if not isinstance(cell, Cell):
    raise TypeError(f"cell must be a seqjax.Cell, got {type(cell).__name__}")
  delays = _check_delays(delays)
  num_delays, depth, out = len(delays), max(delays), cell.output_size
  extra = num_delays * out
  taps = np.asarray(delays) - 1  # rows of ``past`` holding h_{t-d}

  def input_size(params):
    return cell.input_size(params) - extra

  def init(key, input_size):
    input_size = common.check_input_size(input_size)
    return cell.init(key, input_size + extra)

  def initial_carry(params, batch_shape=()):
    batch_shape = checks.batch_shape(batch_shape)
    inner = cell.initial_carry(params, batch_shape)
    past = jnp.zeros(batch_shape + (depth, out), _real_dtype(inner))
    return DelayedCarry(inner, past)

  @common.checked_step(input_size)
  def step(params, carry, x):
    inner, past = carry
    taken = past[..., taps, :]  # (*B, k, O)
    u = jnp.concatenate([x, taken.reshape(taken.shape[:-2] + (extra,))], axis=-1)
    inner, y = cell.step(params, inner, u)
    past = jnp.concatenate([y[..., None, :].astype(past.dtype), past[..., :-1, :]], axis=-2)
    return DelayedCarry(inner, past), y

  return Cell(init, initial_carry, step, input_size, cell.hidden_size, out,
              f"delayed({cell.name}, delays={delays})")
