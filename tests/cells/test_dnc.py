"""Tests for seqjax.cells.dnc against numpy loops of Graves et al. 2016's Methods equations."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax.cells.dnc import USAGE_EPS, allocation_weights, dnc, update_links
from seqjax.cells.lstm import lstm
from seqjax.scan import trace, unroll

# Sizes where the protocol suite's finite differences (step 1e-4, tolerance
# 1e-5) resolve the DNC's curvature: right after the zero initial state, rows
# written with allocation weights ~1e-6 have norms near the cosine's epsilon,
# so some configurations miss that tolerance by 2-5x although their gradients
# are right; test_gradient_error_falls_as_the_step_squared checks one of them.
PROTOCOL_CELLS = {
    "dnc": lambda dtype: dnc(4, memory_size=8, word_size=3, num_reads=2, dtype=dtype),
    "dnc_feedforward": lambda dtype: dnc(5, memory_size=4, word_size=2, num_reads=1,
                                         controller="feedforward", dtype=dtype),
}

RNG = np.random.default_rng(0)


def _np_allocation(u):
  u = USAGE_EPS + (1 - USAGE_EPS) * np.asarray(u, np.float64)
  a = np.zeros_like(u)
  product = 1.0
  for j in sorted(range(len(u)), key=lambda i: (u[i], i)):
    a[j] = (1 - u[j]) * product
    product *= u[j]
  return a


def test_allocation_equals_the_sorted_product_formula():
  for u in (RNG.uniform(size=7), np.array([0.3, 0.9, 0.1, 0.6])):
    np.testing.assert_allclose(allocation_weights(jnp.asarray(u)), _np_allocation(u),
                               rtol=1e-5, atol=1e-7)


def test_full_memory_allocates_nothing_and_the_least_used_free_slot_comes_first():
  np.testing.assert_allclose(allocation_weights(jnp.ones(5)), 0.0, atol=1e-12)
  a = np.asarray(allocation_weights(jnp.asarray([0.5, 0.0, 1.0, 0.2])))
  assert a.argmax() == 1 and a[1] > 0.999 and a.sum() <= 1.0 + 1e-6
  # With no free slot, the least-used one gets the most.
  a = np.asarray(allocation_weights(jnp.asarray([0.9, 0.6, 0.99, 0.7])))
  assert a.argmax() == 1
  np.testing.assert_allclose(a[1], 0.4, rtol=1e-4)
  np.testing.assert_allclose(a[3], 0.3 * 0.6, rtol=1e-4)


def _np_links(link, p, w):
  n = len(w)
  new = np.zeros_like(link)
  for i in range(n):
    for j in range(n):
      if i != j:
        new[i, j] = (1 - w[i] - w[j]) * link[i, j] + w[i] * p[j]
  return new, (1 - w.sum()) * p + w


def test_links_record_the_order_of_hard_writes():
  n = 4
  link, p = jnp.zeros((n, n)), jnp.zeros(n)
  for slot in (2, 0, 3):   # write slot 2, then 0, then 3
    link, p = update_links(link, p, jnp.asarray(np.eye(n)[slot]))
  want = np.zeros((n, n))
  want[0, 2] = want[3, 0] = 1.0   # 0 written right after 2, 3 right after 0
  np.testing.assert_array_equal(link, want)
  np.testing.assert_array_equal(p, np.eye(n)[3])
  # Forward from slot 2 reaches 0, backward from 3 reaches 0.
  np.testing.assert_array_equal(link @ np.eye(n)[2], np.eye(n)[0])
  np.testing.assert_array_equal(link.T @ np.eye(n)[3], np.eye(n)[0])


def test_soft_link_update_equals_the_index_loop():
  n = 5
  link = RNG.uniform(size=(n, n)) * (1 - np.eye(n)) / n
  p = RNG.dirichlet(np.ones(n)) * 0.7
  w = RNG.dirichlet(np.ones(n)) * 0.9
  got_link, got_p = update_links(jnp.asarray(link), jnp.asarray(p), jnp.asarray(w))
  want_link, want_p = _np_links(link, p, w)
  np.testing.assert_allclose(got_link, want_link, rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(got_p, want_p, rtol=1e-5, atol=1e-7)


def _softmax(a, axis=-1):
  e = np.exp(a - a.max(axis=axis, keepdims=True))
  return e / e.sum(axis=axis, keepdims=True)


def _sigmoid(a):
  return 1 / (1 + np.exp(-a))


def _oneplus(a):
  return 1 + np.log1p(np.exp(a))


def _np_lookup(memory, key, beta, eps=1e-6):
  sims = np.array([key @ row / (np.linalg.norm(key) * np.linalg.norm(row) + eps)
                   for row in memory])
  return _softmax(beta * sims)


def _np_dnc_step(params, s, x, n, w, reads):
  """One DNC step with a feed-forward controller, written from the Methods section."""
  h = np.tanh(np.concatenate([x, s["reads"].ravel()]) @ params["controller"]["w"]
              + params["controller"]["b"])
  xi = h @ params["interface"]["w"] + params["interface"]["b"]
  cut = np.cumsum([reads * w, reads, w, 1, w, w, reads, 1, 1])
  k_r, b_r, k_w, b_w, e, v, f, g_a, g_w, pi = np.split(xi, cut)
  k_r, b_r, b_w = k_r.reshape(reads, w), _oneplus(b_r), _oneplus(b_w[0])
  e, f, g_a, g_w = _sigmoid(e), _sigmoid(f), _sigmoid(g_a[0]), _sigmoid(g_w[0])
  pi = _softmax(pi.reshape(reads, 3))
  psi = np.prod([1 - f[i] * s["read_w"][i] for i in range(reads)], axis=0)
  usage = (s["usage"] + s["write_w"] - s["usage"] * s["write_w"]) * psi
  write = g_w * (g_a * _np_allocation(usage) + (1 - g_a) * _np_lookup(s["memory"], k_w, b_w))
  memory = s["memory"] * (1 - np.outer(write, e)) + np.outer(write, v)
  link, precedence = _np_links(s["link"], s["precedence"], write)
  read_w = np.stack([pi[i, 0] * link.T @ s["read_w"][i] + pi[i, 1] * _np_lookup(memory, k_r[i],
                                                                                 b_r[i])
                     + pi[i, 2] * link @ s["read_w"][i] for i in range(reads)])
  r = read_w @ memory
  return dict(memory=memory, usage=usage, link=link, precedence=precedence, read_w=read_w,
              write_w=write, reads=r), np.concatenate([h, r.ravel()])


def test_dnc_equals_a_numpy_loop_of_the_equations():
  n, w, reads, d, steps = 5, 3, 2, 2, 6
  cell = dnc(4, memory_size=n, word_size=w, num_reads=reads, controller="feedforward",
             dtype=jnp.float64)
  with jax.enable_x64(True):
    params = cell.init(jax.random.key(1), d)
    params = jax.tree_util.tree_map(
        lambda v: jnp.asarray(RNG.normal(scale=0.8, size=v.shape)), params)
    xs = RNG.normal(size=(steps, d))
    _, ys, carries = jax.jit(lambda p, x: trace(cell, p, x))(params, jnp.asarray(xs))
    np_params = jax.tree_util.tree_map(np.asarray, params)
  s = dict(memory=np.zeros((n, w)), usage=np.zeros(n), link=np.zeros((n, n)),
           precedence=np.zeros(n), read_w=np.zeros((reads, n)), write_w=np.zeros(n),
           reads=np.zeros((reads, w)))
  for t in range(steps):
    s, y = _np_dnc_step(np_params, s, xs[t], n, w, reads)
    np.testing.assert_allclose(ys[t], y, rtol=1e-8, atol=1e-11)
    for name, got in (("memory", carries.memory), ("usage", carries.usage),
                      ("link", carries.link), ("read_w", carries.read_weights),
                      ("write_w", carries.write_weights)):
      np.testing.assert_allclose(got[t], s[name], rtol=1e-8, atol=1e-11, err_msg=name)
  assert np.all((np.asarray(carries.usage) >= 0) & (np.asarray(carries.usage) <= 1))


@pytest.mark.parametrize("kwargs,match", [
    (dict(memory_size=0), "memory_size"),
    (dict(word_size=0), "word_size"),
    (dict(num_reads=0), "num_reads"),
    (dict(controller="ntm"), "controller"),
    (dict(controller=lstm(2)), "controller must output hidden_size = 3"),
])
def test_bad_arguments_name_themselves(kwargs, match):
  with pytest.raises(ValueError, match=match):
    dnc(3, **kwargs)


def test_gradient_error_falls_as_the_step_squared():
  """Where the generic 1e-4 finite-difference check is too coarse, AD is still exact.

  The central difference of a smooth function errs by O(eps^2): the gap
  between it and the reverse-mode directional derivative must shrink ~100x
  per 10x smaller step, down to rounding.
  """
  with jax.enable_x64(True):
    cell = dnc(4, memory_size=5, word_size=3, num_reads=2, dtype=jnp.float64)
    params = cell.init(jax.random.key(1, impl="rbg"), 3)
    xs = np.random.default_rng(1).normal(size=(2, 4, 3))
    mask = np.array([[1, 1, 1, 0], [0, 1, 1, 1]], bool)

    @jax.jit
    def loss(p):
      carry, ys = unroll(cell, p, xs, mask=mask)
      return jnp.sum(jnp.sin(ys)) + sum(jnp.sum(c ** 2) for c in jax.tree_util.tree_leaves(carry))

    rng = np.random.default_rng(0)
    direction = jax.tree_util.tree_map(lambda a: jnp.asarray(rng.normal(size=a.shape)), params)
    exact = sum(jnp.vdot(g, v) for g, v in zip(jax.tree_util.tree_leaves(jax.grad(loss)(params)),
                                              jax.tree_util.tree_leaves(direction)))
    gaps = []
    for eps in (1e-3, 1e-4, 1e-5, 1e-6):
      plus = jax.tree_util.tree_map(lambda a, v: a + eps * v, params, direction)
      minus = jax.tree_util.tree_map(lambda a, v: a - eps * v, params, direction)
      gaps.append(abs(float((loss(plus) - loss(minus)) / (2 * eps) - exact)))
  assert gaps[1] < gaps[0] / 50 and gaps[2] < gaps[1] / 50, gaps
  assert gaps[3] < 1e-6 * abs(float(exact)), gaps
