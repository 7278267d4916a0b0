"""``unroll(..., implementation="onednn")``: oneDNN's RNN kernels against the plain scan.

The reference is ``seqjax.unroll(..., implementation="scan")``, autodiff of a
``lax.scan`` of the cell's own ``step``: outputs, final carries and gradients
(parameters, inputs, initial carry) must agree to 1e-5. The CI command
installs oneDNN (``.[onednn]``) and these tests build the kernel.
"""

from __future__ import annotations

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import seqjax
from seqjax import layers
from seqjax._native import onednn
from seqjax.cells import gru, lstm, rnn, tied_lstm

CELLS = {
    "lstm": lambda hidden, forget_bias: lstm(hidden, forget_bias=forget_bias),
    "gru": lambda hidden, forget_bias: gru(hidden),
    "rnn_tanh": lambda hidden, forget_bias: rnn(hidden),
    "rnn_relu": lambda hidden, forget_bias: rnn(hidden, activation="relu"),
}


def _problem(batch_shape, hidden=5, length=6, features=4, forget_bias=0.7, seed=0, name="lstm"):
  cell = CELLS[name](hidden, forget_bias)
  k_p, k_x, k_c = jax.random.split(jax.random.PRNGKey(seed), 3)
  params = cell.init(k_p, features)
  # Nonzero biases, so that every bias gradient is exercised per gate.
  params = {k: v + 0.1 * jnp.cos(jnp.arange(v.size, dtype=v.dtype).reshape(v.shape))
            if k.startswith("b") else v for k, v in params.items()}
  xs = jax.random.normal(k_x, batch_shape + (length, features))
  zeros = cell.initial_carry(params, batch_shape)
  leaves, treedef = jax.tree_util.tree_flatten(zeros)
  keys = jax.random.split(k_c, len(leaves))
  carry = jax.tree_util.tree_unflatten(
      treedef, [0.5 * jax.random.normal(k, leaf.shape) for k, leaf in zip(keys, leaves)])
  return cell, params, xs, carry


def _loss(cell, implementation, reverse, time_major=False):
  def loss(params, xs, carry):
    final, ys = seqjax.unroll(cell, params, xs, carry, reverse=reverse, time_major=time_major,
                              implementation=implementation)
    if time_major:
      ys = jnp.swapaxes(ys, 0, 1)
    weights = jnp.cos(jnp.arange(ys.size, dtype=ys.dtype).reshape(ys.shape))
    final = jax.tree_util.tree_leaves(final)
    return (jnp.sum(weights * ys) + 0.5 * jnp.sum(ys ** 2) + jnp.sum(jnp.sin(final[0]))
            + sum(jnp.sum(leaf ** 2) for leaf in final[1:]))
  return loss


def test_the_kernel_builds_here():
  ok, detail = onednn.availability()
  assert ok, detail
  assert pathlib.Path(detail).is_file()


# Every cell in both directions; the batch-shape handling (shared by all cells)
# on the LSTM and the GRU.
CASES = ([(name, (3,), reverse) for name in sorted(CELLS) for reverse in (False, True)]
         + [(name, shape, reverse) for name in ("lstm", "gru") for shape in ((), (2, 3))
            for reverse in (False, True)])


@pytest.mark.parametrize("name,batch_shape,reverse", CASES)
def test_outputs_and_gradients_match_the_scan(name, batch_shape, reverse):
  cell, params, xs, carry = _problem(batch_shape, name=name)
  got = jax.jit(lambda p, x, c: seqjax.unroll(cell, p, x, c, reverse=reverse,
                                              implementation="onednn"))(params, xs, carry)
  want = seqjax.unroll(cell, params, xs, carry, reverse=reverse, implementation="scan")
  for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
    np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5)
  grads = jax.jit(jax.grad(_loss(cell, "onednn", reverse), argnums=(0, 1, 2)))(params, xs, carry)
  expected = jax.grad(_loss(cell, "scan", reverse), argnums=(0, 1, 2))(params, xs, carry)
  for a, b in zip(jax.tree_util.tree_leaves(grads), jax.tree_util.tree_leaves(expected)):
    np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("forget_bias", [0.0, 1.0])
def test_forget_bias_and_time_major(forget_bias):
  cell, params, xs, carry = _problem((2,), hidden=7, length=9, features=3,
                                     forget_bias=forget_bias, seed=1)
  xs_tm = jnp.swapaxes(xs, 0, 1)
  got = seqjax.unroll(cell, params, xs_tm, carry, time_major=True, implementation="onednn")
  want = seqjax.unroll(cell, params, xs, carry, implementation="scan")
  np.testing.assert_allclose(got[1], jnp.swapaxes(want[1], 0, 1), atol=1e-5, rtol=1e-5)
  np.testing.assert_allclose(got[0].c, want[0].c, atol=1e-5, rtol=1e-5)
  assert set(params) == {"w_x", "w_h", "b"}
  grad = jax.grad(_loss(cell, "onednn", False, time_major=True))(params, xs_tm, carry)
  expected = jax.grad(_loss(cell, "scan", False))(params, xs, carry)
  for a, b in zip(jax.tree_util.tree_leaves(grad), jax.tree_util.tree_leaves(expected)):
    np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["lstm", "gru", "rnn_tanh"])
def test_check_grads_on_the_custom_vjp(name):
  cell, params, xs, carry = _problem((2,), hidden=3, length=4, features=2, name=name)
  loss = _loss(cell, "onednn", False)
  check_grads(lambda p, x: loss(p, x, carry), (params, xs), order=1, modes=["rev"],
              eps=1e-2, atol=2e-2, rtol=2e-2)


def test_default_carry_remat_vmap_and_layers():
  cell, params, xs, _ = _problem((3,), length=8)
  want = seqjax.unroll(cell, params, xs, implementation="scan")
  got = seqjax.unroll(cell, params, xs, implementation="onednn", remat=True)
  np.testing.assert_allclose(got[1], want[1], atol=1e-5, rtol=1e-5)
  grad_remat = jax.grad(lambda p: jnp.sum(
      seqjax.unroll(cell, p, xs, implementation="onednn", remat=True)[1] ** 2))(params)
  grad_scan = jax.grad(lambda p: jnp.sum(
      seqjax.unroll(cell, p, xs, implementation="scan")[1] ** 2))(params)
  for a, b in zip(jax.tree_util.tree_leaves(grad_remat), jax.tree_util.tree_leaves(grad_scan)):
    np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5)
  # vmap over a stack of parameter sets (the kernel runs once per set).
  stacked = jax.tree_util.tree_map(lambda a: jnp.stack([a, 0.5 * a]), params)
  batched = jax.vmap(lambda p: seqjax.unroll(cell, p, xs, implementation="onednn")[1])(stacked)
  np.testing.assert_allclose(batched[1], seqjax.unroll(
      cell, jax.tree_util.tree_map(lambda a: 0.5 * a, params), xs, implementation="scan")[1],
      atol=1e-5, rtol=1e-5)
  layer = layers.recurrent(cell, reverse=True, implementation="onednn")
  np.testing.assert_allclose(layer.apply(params, xs)[1],
                             seqjax.unroll(cell, params, xs, reverse=True)[1], atol=1e-5, rtol=1e-5)


def test_unsupported_uses_raise_clear_errors():
  cell, params, xs, _ = _problem((3,))
  with pytest.raises(ValueError, match="supports neither mask nor reset"):
    seqjax.unroll(cell, params, xs, mask=jnp.ones((3, 6), bool), implementation="onednn")
  with pytest.raises(ValueError, match="supports neither mask nor reset"):
    seqjax.unroll(cell, params, xs, reset=jnp.zeros((3, 6), bool), implementation="onednn")
  with pytest.raises(TypeError, match="float32 only; xs is bfloat16"):
    seqjax.unroll(cell, params, xs.astype(jnp.bfloat16), implementation="onednn")
  with pytest.raises(ValueError, match="at least one time step"):
    seqjax.unroll(cell, params, xs[:, :0], implementation="onednn")
  for other in (lstm(5, peephole=True), tied_lstm(5), gru(5, reset_after=False),
                rnn(5, activation="sigmoid")):
    p = other.init(jax.random.PRNGKey(0), 4)
    with pytest.raises(ValueError, match="has no oneDNN kernel"):
      seqjax.unroll(other, p, xs, implementation="onednn")
  with pytest.raises(ValueError, match="onednn"):
    seqjax.unroll(cell, params, xs, implementation="cudnn")
  # Recurrent dropout needs the step-by-step scan; the layer falls back to it.
  layer = layers.recurrent(cell, implementation="onednn")
  out = layer.apply(params, xs, key=jax.random.PRNGKey(1), training=True, recurrent_dropout=0.5)
  assert out[1].shape == (3, 6, 5)


def test_missing_onednn_or_compiler_is_explained(tmp_path, monkeypatch):
  with pytest.raises(onednn.OneDNNUnavailable, match=r'pip install "seqjax\[onednn\]"'):
    onednn._onednn_root([tmp_path])
  (tmp_path / "include" / "oneapi" / "dnnl").mkdir(parents=True)
  (tmp_path / "include" / "oneapi" / "dnnl" / "dnnl.hpp").write_text("")
  (tmp_path / "lib").mkdir()
  (tmp_path / "lib" / "libdnnl.so.3").write_text("")
  assert onednn._onednn_root([pathlib.Path("/nonexistent"), tmp_path]) == tmp_path
  monkeypatch.setenv("CXX", "")
  monkeypatch.setattr(onednn.shutil, "which", lambda name: None)
  with pytest.raises(onednn.OneDNNUnavailable, match="no C\\+\\+ compiler"):
    onednn._compiler()
