"""Tests for seqjax.cells.ntm and the addressing it is built from.

Each addressing piece is checked against a float64 numpy function written from
Graves et al. 2014's equations (with explicit index loops where the equation
has one: the circular shift's wrap-around), and a whole NTM step against a
numpy step of the same equations.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax.cells import addressing
from seqjax.cells.lstm import lstm
from seqjax.cells.ntm import CONSTANT_MEMORY, NTMCarry, ntm, ntm_memory
from seqjax.scan import trace, unroll

PROTOCOL_CELLS = {
    "ntm": lambda dtype: ntm(4, memory_size=5, memory_width=3, dtype=dtype),
    "ntm_feedforward_learned": lambda dtype: ntm(
        4, memory_size=6, memory_width=2, num_reads=2, controller="feedforward",
        memory_init="learned", dtype=dtype),
}

RNG = np.random.default_rng(0)


def _softmax(a, axis=-1):
  e = np.exp(a - a.max(axis=axis, keepdims=True))
  return e / e.sum(axis=axis, keepdims=True)


def _softplus(a):
  return np.log1p(np.exp(a))


def _sigmoid(a):
  return 1 / (1 + np.exp(-a))


def _np_content(memory, keys, beta, eps=addressing.COSINE_EPS):
  out = np.zeros(keys.shape[:-1] + (memory.shape[-2],))
  for r in range(keys.shape[-2]):
    for i in range(memory.shape[-2]):
      k, row = keys[r], memory[i]
      out[r, i] = k @ row / (np.linalg.norm(k) * np.linalg.norm(row) + eps)
  return _softmax(beta[:, None] * out)


def _np_shift(w, s):
  n, radius = w.shape[-1], s.shape[-1] // 2
  out = np.zeros_like(w)
  for r in range(w.shape[0]):
    for i in range(n):
      for j in range(n):
        offset = (i - j) % n  # the shift that carries slot j to slot i
        signed = offset if offset <= radius else offset - n
        if -radius <= signed <= radius:
          out[r, i] += w[r, j] * s[r, signed + radius]
  return out


def _np_sharpen(w, gamma):
  p = w ** gamma[:, None]
  return p / p.sum(-1, keepdims=True)


def _np_write(memory, w, e, a):
  out = memory.copy()
  for i in range(memory.shape[0]):
    keep = np.ones(memory.shape[1])
    for h in range(w.shape[0]):
      keep *= 1 - w[h, i] * e[h]
    out[i] = memory[i] * keep + sum(w[h, i] * a[h] for h in range(w.shape[0]))
  return out


def test_content_weights_equal_numpy():
  memory, keys = RNG.normal(size=(7, 4)), RNG.normal(size=(3, 4))
  memory[2] = 0.0  # an empty slot: cosine 0, no NaN
  keys[1] = 2.5 * memory[5]  # exactly aligned with slot 5
  beta = np.array([0.5, 20.0, 3.0])
  got = addressing.content_weights(jnp.asarray(memory), jnp.asarray(keys), jnp.asarray(beta))
  np.testing.assert_allclose(got, _np_content(memory, keys, beta), rtol=1e-5, atol=1e-7)
  assert int(np.argmax(got[1])) == 5
  np.testing.assert_allclose(np.sum(got, -1), 1.0, rtol=1e-6)


def test_interpolation_equals_formula():
  wc, wp = _softmax(RNG.normal(size=(2, 5))), _softmax(RNG.normal(size=(2, 5)))
  g = np.array([0.0, 0.3])
  got = addressing.interpolate(jnp.asarray(wc), jnp.asarray(wp), jnp.asarray(g))
  np.testing.assert_allclose(got[0], wp[0], rtol=1e-6)
  np.testing.assert_allclose(got[1], 0.3 * wc[1] + 0.7 * wp[1], rtol=1e-6)


@pytest.mark.parametrize("radius", [0, 1, 2])
def test_circular_shift_wraps_around_like_the_index_loop(radius):
  w = _softmax(RNG.normal(size=(3, 6)))
  s = _softmax(RNG.normal(size=(3, 2 * radius + 1)))
  got = addressing.circular_shift(jnp.asarray(w), jnp.asarray(s))
  np.testing.assert_allclose(got, _np_shift(w, s), rtol=1e-5, atol=1e-7)
  # A pure shift of +1 moves the focus on the last slot to the first.
  if radius:
    one_hot = np.eye(6)[[5]]
    plus_one = np.eye(2 * radius + 1)[[radius + 1]]
    np.testing.assert_array_equal(
        addressing.circular_shift(jnp.asarray(one_hot), jnp.asarray(plus_one)), np.eye(6)[[0]])


def test_circular_shift_refuses_a_span_wider_than_the_memory():
  with pytest.raises(ValueError, match="shifts must have an odd size"):
    addressing.circular_shift(jnp.ones((1, 3)) / 3, jnp.ones((1, 5)) / 5)


def test_sharpening_equals_formula_and_keeps_gradients_finite():
  w = _softmax(RNG.normal(size=(2, 5)))
  gamma = np.array([1.0, 4.5])
  got = addressing.sharpen(jnp.asarray(w), jnp.asarray(gamma))
  np.testing.assert_allclose(got, _np_sharpen(w, gamma), rtol=1e-5)
  one_hot = jnp.asarray(np.eye(5)[[1, 3]])  # zeros raised to gamma
  grads = jax.grad(lambda g: jnp.sum(addressing.sharpen(one_hot, g)[:, 0] ** 2))(
      jnp.asarray(gamma))
  assert np.all(np.isfinite(grads))


def test_erase_then_add_write_equals_numpy_with_two_heads():
  memory = RNG.normal(size=(5, 3))
  w = _softmax(RNG.normal(size=(2, 5)))
  e, a = _sigmoid(RNG.normal(size=(2, 3))), RNG.normal(size=(2, 3))
  got = addressing.write(*(jnp.asarray(v) for v in (memory, w, e, a)))
  np.testing.assert_allclose(got, _np_write(memory, w, e, a), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(addressing.read(jnp.asarray(memory), jnp.asarray(w)),
                             w @ memory, rtol=1e-5)
  # A head that fully erases a slot it fully addresses, adding nothing, zeroes it.
  wiped = addressing.write(jnp.asarray(memory), jnp.asarray(np.eye(5)[[2]]),
                           jnp.ones((1, 3)), jnp.zeros((1, 3)))
  np.testing.assert_array_equal(wiped[2], 0.0)
  np.testing.assert_allclose(np.asarray(wiped)[[0, 1, 3, 4]], memory[[0, 1, 3, 4]], rtol=1e-6)


def _np_ntm_step(params, carry, x, n, m, reads, writes, radius):
  """One NTM step with a feed-forward controller, from the equations, in float64."""
  span = 2 * radius + 1
  read_size, write_size = m + span + 3, m + span + 3 + 2 * m
  memory = carry["memory"] + params.get("memory0", 0.0)
  h = np.tanh(np.concatenate([x, carry["reads"].ravel()]) @ params["controller"]["w"]
              + params["controller"]["b"])
  p = h @ params["heads"]["w"] + params["heads"]["b"]

  def address(rows, previous):
    out = []
    for row, prev in zip(rows, previous):
      wc = _np_content(memory, row[None, :m], _softplus(row[m:m + 1]))[0]
      g = _sigmoid(row[m + 1])
      wg = g * wc + (1 - g) * prev
      ws = _np_shift(wg[None], _softmax(row[m + 2:m + 2 + span])[None])
      out.append(_np_sharpen(ws, 1 + _softplus(row[m + 2 + span:m + 3 + span]))[0])
    return np.stack(out)

  read_rows = p[:reads * read_size].reshape(reads, read_size)
  write_rows = p[reads * read_size:].reshape(writes, write_size)
  rw, ww = address(read_rows, carry["read_w"]), address(write_rows, carry["write_w"])
  r = rw @ memory
  new_memory = _np_write(memory, ww, _sigmoid(write_rows[:, read_size:read_size + m]),
                         np.tanh(write_rows[:, read_size + m:]))
  y = np.concatenate([h, r.ravel()])
  return {"memory": new_memory - params.get("memory0", 0.0), "reads": r, "read_w": rw,
          "write_w": ww}, y


@pytest.mark.parametrize("memory_init", ["constant", "learned"])
def test_ntm_equals_a_numpy_loop_of_the_equations(memory_init):
  n, m, reads, writes, radius, d = 6, 3, 2, 2, 1, 2
  cell = ntm(4, memory_size=n, memory_width=m, num_reads=reads, num_writes=writes,
             shift_range=radius, controller="feedforward", memory_init=memory_init,
             dtype=jnp.float64)
  with jax.enable_x64(True):
    params = cell.init(jax.random.key(1), d)
    params = jax.tree_util.tree_map(
        lambda v: jnp.asarray(RNG.normal(scale=0.7, size=v.shape)), params)
    xs = RNG.normal(size=(5, d))
    final, ys, carries = jax.jit(lambda p, x: trace(cell, p, x))(params, jnp.asarray(xs))
    np_params = jax.tree_util.tree_map(np.asarray, params)
  carry = {"memory": np.full((n, m), CONSTANT_MEMORY if memory_init == "constant" else 0.0),
           "reads": np.zeros((reads, m)), "read_w": np.eye(n)[[0] * reads],
           "write_w": np.eye(n)[[0] * writes]}
  for t in range(5):
    carry, y = _np_ntm_step(np_params, carry, xs[t], n, m, reads, writes, radius)
    np.testing.assert_allclose(ys[t], y, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(carries.read_weights[t], carry["read_w"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(carries.write_weights[t], carry["write_w"], rtol=1e-9,
                               atol=1e-12)
    np.testing.assert_allclose(carries.memory[t], carry["memory"], rtol=1e-9, atol=1e-12)
  np.testing.assert_allclose(ntm_memory(params, final), carry["memory"]
                             + np_params.get("memory0", 0.0), rtol=1e-9, atol=1e-12)


def test_trace_equals_the_carries_of_a_step_loop():
  cell = ntm(3, memory_size=4, memory_width=2)
  params = cell.init(jax.random.key(0), 2)
  xs = jnp.asarray(RNG.normal(size=(2, 4, 2)), jnp.float32)
  mask = jnp.asarray([[True] * 4, [True, True, False, False]])
  final, ys, carries = trace(cell, params, xs, mask=mask)
  _, ys_unroll = unroll(cell, params, xs, mask=mask)
  np.testing.assert_allclose(ys, ys_unroll, rtol=1e-6)
  step = jax.jit(cell.step)
  carry = cell.initial_carry(params, (2,))
  for t in range(4):
    carry, _ = step(params, carry, xs[:, t])
    for got, want in zip(jax.tree_util.tree_leaves(carries), jax.tree_util.tree_leaves(carry)):
      np.testing.assert_allclose(got[0, t], want[0], rtol=1e-5, atol=1e-7)
      if t < 2:
        np.testing.assert_allclose(got[1, t], want[1], rtol=1e-5, atol=1e-7)
      else:
        np.testing.assert_array_equal(got[1, t], 0.0)


def test_initial_carry_works_on_shapes_alone():
  cell = ntm(3, memory_size=4, memory_width=2, memory_init="learned")
  shapes = jax.eval_shape(functools.partial(cell.init, input_size=2), jax.random.key(0))
  carry = cell.initial_carry(shapes, (5,))
  assert isinstance(carry, NTMCarry) and carry.memory.shape == (5, 4, 2)
  np.testing.assert_array_equal(carry.read_weights[..., 0], 1.0)


@pytest.mark.parametrize("kwargs,match", [
    (dict(memory_size=0), "memory_size"),
    (dict(memory_width=0), "memory_width"),
    (dict(num_reads=0), "num_reads"),
    (dict(num_writes=0), "num_writes"),
    (dict(memory_size=4, shift_range=2), "shift_range"),
    (dict(shift_range=-1), "shift_range"),
    (dict(controller="gru"), "controller"),
    (dict(controller=lstm(5)), "controller must output hidden_size = 3"),
    (dict(memory_init="random"), "memory_init"),
])
def test_bad_arguments_name_themselves(kwargs, match):
  with pytest.raises(ValueError, match=match):
    ntm(3, **kwargs)


def test_zero_keys_and_slots_give_finite_gradients():
  memory = jnp.asarray(np.vstack([np.zeros(3), RNG.normal(size=(3, 3))]))
  keys = jnp.zeros((2, 3))

  def loss(memory, keys):
    return jnp.sum(addressing.content_weights(memory, keys, jnp.ones(2)) ** 2)

  for grad in jax.grad(loss, argnums=(0, 1))(memory, keys):
    assert np.all(np.isfinite(grad))
  np.testing.assert_array_equal(addressing.cosine_similarity(memory, keys), 0.0)
