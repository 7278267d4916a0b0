"""seqjax.tcn: against a plain numpy loop, causality, receptive field, carry, mask and reset."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax import tcn as tcn_lib


def _numpy_tcn(params, xs, kernel_size, weight_norm=True):
  """Independent reference: explicit loops over time and taps, zero history."""
  xs = np.asarray(xs, np.float64)
  batch, length, _ = xs.shape
  for level_index, level in enumerate(params["levels"]):
    dilation = 2**level_index
    inputs = xs

    def conv(x, p):
      p = {k: np.asarray(v, np.float64) for k, v in p.items()}
      if weight_norm:
        w = np.empty_like(p["v"])
        for o in range(w.shape[2]):
          w[:, :, o] = p["g"][o] * p["v"][:, :, o] / np.linalg.norm(p["v"][:, :, o])
      else:
        w = p["w"]
      out = np.zeros((batch, length, w.shape[2]))
      for t in range(length):
        out[:, t] = p["b"]
        for j in range(kernel_size):
          source = t - (kernel_size - 1 - j) * dilation
          if source >= 0:
            out[:, t] += x[:, source] @ w[j]
      return out

    z = np.maximum(conv(inputs, level["conv1"]), 0)
    z = np.maximum(conv(z, level["conv2"]), 0)
    if "skip" in level:
      skip = inputs @ np.asarray(level["skip"]["w"]) + np.asarray(level["skip"]["b"])
    else:
      skip = inputs
    xs = np.maximum(z + skip, 0)
  return xs


def _layer_and_params(channels=(4, 4, 3), kernel_size=3, input_size=2, seed=0, **kwargs):
  layer = tcn_lib.tcn(list(channels), kernel_size=kernel_size, **kwargs)
  params = layer.init(jax.random.PRNGKey(seed), input_size)
  # Larger weights than the 0.01 default so that every level matters numerically.
  params = jax.tree_util.tree_map(lambda a: a * 30.0 if a.ndim >= 2 else a + 0.1, params)
  return layer, params


@pytest.mark.parametrize("weight_norm", [True, False])
def test_equals_numpy_loop(weight_norm):
  layer, params = _layer_and_params(weight_norm=weight_norm)
  xs = np.random.default_rng(0).normal(size=(3, 17, 2)).astype(np.float32)
  _, ys = layer.apply(params, xs)
  np.testing.assert_allclose(ys, _numpy_tcn(params, xs, 3, weight_norm), rtol=1e-5, atol=1e-5)
  assert ys.shape == (3, 17, 3)


def test_initial_weights_are_v_and_skip_only_when_widths_differ():
  layer = tcn_lib.tcn([4, 4], kernel_size=2)
  params = layer.init(jax.random.PRNGKey(1), 3)
  conv = params["levels"][0]["conv1"]
  np.testing.assert_allclose(tcn_lib._weight_norm(conv), conv["v"], rtol=1e-6)
  assert "skip" in params["levels"][0] and "skip" not in params["levels"][1]
  # k*D*C + C (g) + C (b) per convolution, D*C + C for the 1x1 skip.
  expected = (2 * 3 * 4 + 8) + (2 * 4 * 4 + 8) + (3 * 4 + 4) + 2 * (2 * 4 * 4 + 8)
  assert sum(a.size for a in jax.tree_util.tree_leaves(params)) == expected


@pytest.mark.parametrize("kernel_size,levels", [(2, 3), (3, 2), (7, 2)])
def test_causal_with_the_stated_receptive_field(kernel_size, levels):
  layer, params = _layer_and_params(channels=(3,) * levels, kernel_size=kernel_size,
                                    input_size=1)
  # Positive weights and inputs keep every ReLU active, so that the gradient
  # reaches the oldest input of the receptive field (a dead unit could cut it).
  params = jax.tree_util.tree_map(jnp.abs, params)
  field = tcn_lib.receptive_field(kernel_size, levels)
  assert field == 1 + 2 * (kernel_size - 1) * (2**levels - 1)
  length = field + 5
  xs = jnp.asarray(np.abs(np.random.default_rng(1).normal(size=(1, length, 1))) + 0.1,
                   jnp.float32)
  t = length - 3
  grad = jax.jit(jax.grad(lambda x: layer.apply(params, x)[1][0, t].sum()))(xs)[0, :, 0]
  assert np.all(np.asarray(grad[t + 1:]) == 0), "output t depends on a later input"
  assert np.all(np.asarray(grad[:t - field + 1]) == 0), "sees beyond its receptive field"
  assert grad[t - field + 1] != 0 and grad[t] != 0


def test_changing_a_future_input_leaves_the_past_unchanged():
  layer, params = _layer_and_params()
  xs = np.random.default_rng(2).normal(size=(2, 12, 2)).astype(np.float32)
  changed = xs.copy()
  changed[:, 7:] += 5.0
  _, a = layer.apply(params, xs)
  _, b = layer.apply(params, changed)
  np.testing.assert_array_equal(a[:, :7], b[:, :7])
  assert not np.allclose(a[:, 7:], b[:, 7:])


def test_chunks_and_single_steps_with_the_carry_equal_one_pass():
  layer, params = _layer_and_params()
  xs = np.random.default_rng(3).normal(size=(2, 20, 2)).astype(np.float32)
  full_carry, full = layer.apply(params, xs)
  carry = layer.initial_carry(params, (2,))
  pieces = []
  for start, stop in [(0, 7), (7, 8), (8, 20)]:
    carry, ys = layer.apply(params, xs[:, start:stop], carry)
    pieces.append(ys)
  np.testing.assert_allclose(np.concatenate(pieces, 1), full, rtol=1e-5, atol=1e-6)
  step = jax.jit(lambda c, x: layer.apply(params, x, c))
  carry = layer.initial_carry(params, (2,))
  streamed = []
  for t in range(20):
    carry, y = step(carry, xs[:, t:t + 1])
    streamed.append(y)
  np.testing.assert_allclose(np.concatenate(streamed, 1), full, rtol=1e-5, atol=1e-6)
  for a, b in zip(jax.tree_util.tree_leaves(carry), jax.tree_util.tree_leaves(full_carry)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_reset_equals_separate_sequences():
  layer, params = _layer_and_params()
  apply = jax.jit(layer.apply)  # one program per shape, not one per operation
  rng = np.random.default_rng(4)
  xs = rng.normal(size=(2, 16, 2)).astype(np.float32)
  reset = np.zeros((2, 16), bool)
  reset[0, 5] = reset[0, 11] = reset[1, 9] = True
  history = apply(params, rng.normal(size=(2, 6, 2)).astype(np.float32))[0]
  _, ys = apply(params, xs, history, reset=reset)
  # Row 0: [0, 5) continues the history; [5, 11) and [11, 16) start afresh.
  np.testing.assert_allclose(
      ys[0, :5], apply(params, xs[:1, :5], [jax.tree_util.tree_map(
          lambda a: a[:1], h) for h in history])[1][0], rtol=1e-5, atol=1e-6)
  for start, stop in [(5, 11), (11, 16)]:
    np.testing.assert_allclose(ys[0, start:stop], apply(params, xs[0, start:stop])[1],
                               rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(ys[1, 9:], apply(params, xs[1, 9:])[1], rtol=1e-5,
                             atol=1e-6)


def test_mask_skips_steps_like_unroll():
  layer, params = _layer_and_params()
  rng = np.random.default_rng(5)
  xs = rng.normal(size=(2, 12, 2)).astype(np.float32)
  mask = np.ones((2, 12), bool)
  mask[0, [3, 4, 9]] = False     # holes
  mask[1, 8:] = False            # right padding
  apply = jax.jit(layer.apply)  # one program per shape, not one per operation
  carry, ys = apply(params, xs, mask=mask)
  for row in range(2):
    alone_carry, alone = apply(params, xs[row][mask[row]])
    np.testing.assert_allclose(ys[row][mask[row]], alone, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(ys[row][~mask[row]], 0)
    for a, b in zip(jax.tree_util.tree_leaves(carry), jax.tree_util.tree_leaves(alone_carry)):
      np.testing.assert_allclose(a[row], b, rtol=1e-5, atol=1e-6)


def test_reset_on_a_masked_step_takes_effect_at_the_next_valid_step():
  layer, params = _layer_and_params()
  apply = jax.jit(layer.apply)  # one program per shape, not one per operation
  xs = np.random.default_rng(6).normal(size=(1, 10, 2)).astype(np.float32)
  mask = np.ones((1, 10), bool)
  mask[0, 4] = False
  reset = np.zeros((1, 10), bool)
  reset[0, 4] = True
  _, ys = apply(params, xs, mask=mask, reset=reset)
  np.testing.assert_allclose(ys[0, 5:], apply(params, xs[0, 5:])[1], rtol=1e-5, atol=1e-6)
  reset_end = np.zeros((1, 10), bool)
  reset_end[0, 9] = True
  mask_end = np.ones((1, 10), bool)
  mask_end[0, 9] = False
  carry, _ = apply(params, xs, mask=mask_end, reset=reset_end)
  assert all(np.all(np.asarray(leaf) == 0) for leaf in jax.tree_util.tree_leaves(carry))


def test_layouts_time_major_unbatched_and_many_batch_axes():
  layer, params = _layer_and_params()
  xs = np.random.default_rng(7).normal(size=(2, 3, 9, 2)).astype(np.float32)
  _, ys = layer.apply(params, xs)
  flat = layer.apply(params, xs.reshape(6, 9, 2))[1].reshape(2, 3, 9, 3)
  np.testing.assert_allclose(ys, flat, rtol=1e-6)
  np.testing.assert_allclose(layer.apply(params, xs[0, 1])[1], ys[0, 1], rtol=1e-5, atol=1e-6)
  _, tm = layer.apply(params, np.moveaxis(xs, 2, 0), time_major=True)
  np.testing.assert_allclose(np.moveaxis(tm, 0, 2), ys, rtol=1e-6)


def test_dropout_needs_a_key_and_only_acts_in_training():
  layer, params = _layer_and_params(dropout=0.5)
  xs = np.random.default_rng(8).normal(size=(2, 9, 2)).astype(np.float32)
  with pytest.raises(ValueError, match="key"):
    layer.apply(params, xs, training=True)
  _, a = layer.apply(params, xs, training=True, key=jax.random.PRNGKey(0))
  _, b = layer.apply(params, xs, training=True, key=jax.random.PRNGKey(1))
  _, c = layer.apply(params, xs)
  assert not np.allclose(a, b)
  np.testing.assert_allclose(c, _numpy_tcn(params, xs, 3), rtol=1e-5, atol=1e-5)


def test_gradients_match_finite_differences():
  # Central differences of a jitted float64 loss along random directions of
  # (params, xs): two compiled programs, where check_grads runs its
  # perturbations and comparisons as dozens of eager ones.
  layer, params = _layer_and_params(channels=(3, 2), kernel_size=2)
  xs = np.random.default_rng(9).normal(size=(2, 6, 2))
  with jax.enable_x64(True):
    point = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), (params, xs))
    loss = jax.jit(lambda args: jnp.sum(jnp.sin(layer.apply(*args)[1])))
    grad = jax.jit(jax.grad(loss))(point)
    rng = np.random.default_rng(0)
    eps = 1e-6
    for _ in range(3):
      direction = jax.tree_util.tree_map(lambda a: rng.normal(size=a.shape), point)
      shifted = [jax.tree_util.tree_map(lambda a, d, s=s: a + s * eps * d, point, direction)
                 for s in (1, -1)]
      numeric = (loss(shifted[0]) - loss(shifted[1])) / (2 * eps)
      analytic = sum(float(np.vdot(g, d)) for g, d in zip(jax.tree_util.tree_leaves(grad),
                                                          jax.tree_util.tree_leaves(direction)))
      np.testing.assert_allclose(analytic, float(numeric), rtol=1e-6)


def test_bad_arguments_are_named():
  with pytest.raises(ValueError, match="channels"):
    tcn_lib.tcn([])
  with pytest.raises(ValueError, match="kernel_size"):
    tcn_lib.tcn([3], kernel_size=0)
  with pytest.raises(ValueError, match="dropout"):
    tcn_lib.tcn([3], dropout=1.0)
  layer, params = _layer_and_params()
  with pytest.raises(ValueError, match="2 features"):
    layer.apply(params, np.zeros((1, 5, 3), np.float32))
  with pytest.raises(ValueError, match="mask must have shape"):
    layer.apply(params, np.zeros((1, 5, 2), np.float32), mask=np.ones((1, 4), bool))
  with pytest.raises(ValueError, match="levels"):
    tcn_lib.receptive_field(2, 0)
