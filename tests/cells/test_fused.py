"""The custom-VJP fast paths of the LSTM, GRU and RNN against the plain scan.

The reference is ``seqjax.scan.scan_steps`` over the cell's own ``step`` with
autodiff: outputs and gradients must agree to 1e-5 with masks, restarts from
a nonzero restart carry, reverse, and a nonzero initial carry.

Compilation dominates: each case computes both paths' outputs and gradients
in one compiled program, and the finite-difference check runs on a jitted
loss (eagerly, its VJP would compile every operation on its own).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from seqjax.cells.gru import gru
from seqjax.cells.lstm import lstm, tied_lstm
from seqjax.cells.rnn import rnn
from seqjax.scan import scan_steps

T, B, D, H = 7, 3, 4, 5

CELLS = {
    "lstm": lambda: lstm(H, forget_bias=0.7),
    "tied_lstm": lambda: tied_lstm(H),
    "gru": lambda: gru(H),
    "rnn_tanh": lambda: rnn(H),
    "rnn_relu": lambda: rnn(H, activation="relu"),
}


def _inputs(cell, seed=0):
  # The "rbg" generator compiles its draws much faster than threefry.
  key = jax.random.key(seed, impl="rbg")
  k_p, k_x, k_c, k_r = jax.random.split(key, 4)
  params = cell.init(k_p, D)
  # Nonzero biases, so that every bias gradient is exercised.
  params = jax.tree_util.tree_map(lambda a: a + 0.1 * jnp.cos(jnp.arange(a.size, dtype=a.dtype).reshape(a.shape)),
                                  params)
  xs = jax.random.normal(k_x, (T, B, D))
  zeros = cell.initial_carry(params, (B,))
  carry = jax.tree_util.tree_map(
      lambda z, k: 0.5 * jax.random.normal(k, z.shape),
      zeros, type(zeros)(*jax.random.split(k_c, len(jax.tree_util.tree_leaves(zeros))))
      if isinstance(zeros, tuple) else k_c)
  restart_carry = jax.tree_util.tree_map(lambda c: 0.3 * jnp.sin(c + 1.0), carry)
  mask = np.ones((T, B), bool)
  mask[5:, 0] = False   # right padding
  mask[:2, 1] = False   # left padding
  mask[3, 2] = False    # a hole
  restart = np.zeros((T, B), bool)
  restart[3, 0] = True
  restart[2, 1] = True
  restart[4, 1] = True
  return params, xs, carry, restart_carry, jnp.asarray(mask), jnp.asarray(restart)


def _run(cell, implementation, params, xs, carry, restart_carry, mask, restart, reverse):
  if implementation == "fast":
    return cell.fast.run(params, carry, xs, mask=mask, restart=restart,
                         restart_carry=restart_carry, reverse=reverse)
  step = lambda c, x: cell.step(params, c, x)  # noqa: E731
  return scan_steps(step, carry, xs, mask=mask, restart=restart,
                    restart_carry=restart_carry, reverse=reverse)


def _loss(cell, implementation, flags, reverse):
  mask, restart = flags

  def loss(params, xs, carry, restart_carry):
    final, ys = _run(cell, implementation, params, xs, carry, restart_carry,
                     mask, restart, reverse)
    weights = jnp.cos(jnp.arange(ys.size).reshape(ys.shape))
    return (jnp.sum(weights * ys) + 0.5 * jnp.sum(ys ** 2)
            + sum(jnp.sum(jnp.sin(leaf)) for leaf in jax.tree_util.tree_leaves(final)))

  return loss


@functools.lru_cache(maxsize=None)
def _cell(name):
  return CELLS[name]()


@functools.partial(jax.jit, static_argnums=(0, 7))
def _outputs_and_grads(name, params, xs, carry, restart_carry, mask, restart, reverse):
  """``{implementation: (outputs, gradients)}`` for the fast path and the scan."""
  cell = _cell(name)
  args = (params, xs, carry, restart_carry)
  return {implementation: (
      _run(cell, implementation, *args, mask, restart, reverse),
      jax.grad(_loss(cell, implementation, (mask, restart), reverse), (0, 1, 2, 3))(*args))
          for implementation in ("fast", "scan")}


@pytest.mark.parametrize("name", sorted(CELLS))
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("flags", ["none", "both"])
def test_fast_path_equals_scan_in_values_and_gradients(name, reverse, flags):
  cell = _cell(name)
  params, xs, carry, restart_carry, mask, restart = _inputs(cell)
  mask = mask if flags in ("mask", "both") else None
  restart = restart if flags in ("restart", "both") else None
  results = _outputs_and_grads(name, params, xs, carry, restart_carry, mask, restart, reverse)
  (fast, grad_fast), (slow, grad_slow) = results["fast"], results["scan"]
  jax.tree_util.tree_map(
      lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), fast, slow)
  jax.tree_util.tree_map(
      lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5), grad_fast, grad_slow)
  # The restart carry only gets a gradient where a restart happens.
  restart_grad = jax.tree_util.tree_leaves(grad_fast[3])
  assert any(np.abs(np.asarray(g)).max() > 0 for g in restart_grad) == (restart is not None)


@pytest.mark.parametrize("name", sorted(CELLS))
def test_custom_vjp_matches_finite_differences(name):
  with jax.enable_x64(True):
    cell = CELLS[name]()
    params, xs, carry, restart_carry, mask, restart = _inputs(cell, seed=1)
    to64 = lambda tree: jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), tree)  # noqa: E731
    params, xs, carry, restart_carry = map(to64, (params, xs, carry, restart_carry))
    loss = jax.jit(_loss(cell, "fast", (mask, restart), True))
    check_grads(loss, (params, xs, carry, restart_carry), order=1, modes=["rev"],
                atol=1e-6, rtol=1e-6)
