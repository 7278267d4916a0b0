"""Tests of seqjax.train.step against hand-written optax updates."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import seqjax
from seqjax.train import optim
from seqjax.train.state import TrainState, create_train_state
from seqjax.train.step import make_eval_step, make_train_step


def assert_trees_close(a, b, tol=1e-6):
  assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
  jax.tree_util.tree_map(
      lambda x, y: np.testing.assert_allclose(x, y, rtol=tol, atol=tol), a, b)


def assert_trees_bitwise_equal(a, b):
  assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
  for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
    x, y = np.asarray(x), np.asarray(y)
    assert x.dtype == y.dtype and x.shape == y.shape
    assert x.tobytes() == y.tobytes()


def host(tree):
  """A host copy, safe to compare with after the device state was donated."""
  return jax.tree_util.tree_map(np.array, tree)


# A tiny linear regression: y = x w + b.


def linear_params():
  return {"w": jnp.array([[0.5], [-1.0], [0.25]]), "b": jnp.array([0.1])}


def linear_batch(seed=0, batch_size=8):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(batch_size, 3)).astype(np.float32)
  y = (x @ np.array([[1.0], [2.0], [-1.0]]) + 0.5).astype(np.float32)
  return {"x": x, "y": y}


def linear_loss(params, batch):
  pred = batch["x"] @ params["w"] + params["b"]
  return jnp.mean((pred - batch["y"]) ** 2)


def linear_loss_fn(params, batch, carry, rng):
  del rng
  loss = linear_loss(params, batch)
  return loss, (carry, {"mse": loss})


def hand_written_steps(optimizer, params, batches):
  """value_and_grad + optimizer.update + apply_updates, in plain Python."""
  opt_state = optimizer.init(params)
  history = []
  for batch in batches:
    loss, grads = jax.value_and_grad(linear_loss)(params, batch)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    history.append((loss, grads))
  return params, opt_state, history


@pytest.mark.parametrize("clip", [0.0, 0.1])
def test_train_step_equals_hand_written_optax_update(clip):
  config = {"name": "adam", "learning_rate": 0.1, "clip_global_norm": clip}
  optimizer = optim.make_optimizer(config, total_steps=10)
  batches = [linear_batch(seed) for seed in range(3)]
  state = create_train_state(linear_params(), optimizer, rng=0)
  train_step = make_train_step(linear_loss_fn, optimizer)
  metrics = []
  for batch in batches:
    state, m = train_step(state, batch)
    metrics.append(m)

  reference = optax.adam(0.1)
  if clip:
    reference = optax.chain(optax.clip_by_global_norm(clip), reference)
  params, opt_state, history = hand_written_steps(reference, linear_params(), batches)
  assert_trees_close(state.params, params)
  assert_trees_close(jax.tree_util.tree_leaves(state.opt_state),
                     jax.tree_util.tree_leaves(opt_state))
  assert int(state.step) == 3
  for m, (loss, grads) in zip(metrics, history):
    norm = np.sqrt(sum(np.sum(np.square(g)) for g in jax.tree_util.tree_leaves(grads)))
    np.testing.assert_allclose(m["grad_norm"], optax.tree.norm(grads), rtol=1e-6)
    np.testing.assert_allclose(m["grad_norm"], norm, rtol=1e-5)
    np.testing.assert_allclose(m["loss"], loss, rtol=1e-6)
    np.testing.assert_allclose(m["mse"], loss, rtol=1e-6)
    assert bool(m["finite"])
  if clip:  # The norm is logged before clipping.
    assert min(float(m["grad_norm"]) for m in metrics) > 10 * clip


# A tiny RNN (GRU + linear readout) with a carry that persists across batches.

CELL = seqjax.cells.gru(4)


def rnn_params(seed=0):
  k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
  return {"cell": CELL.init(k1, 2),
          "readout": {"w": 0.5 * jax.random.normal(k2, (4, 1)), "b": jnp.zeros(1)}}


def rnn_batch(seed):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(4, 5, 2)).astype(np.float32)
  return {"x": x, "y": np.cumsum(x[..., :1], axis=1).astype(np.float32)}


def rnn_loss(params, batch, carry):
  carry, hs = seqjax.unroll(CELL, params["cell"], batch["x"], carry)
  pred = hs @ params["readout"]["w"] + params["readout"]["b"]
  return jnp.mean((pred - batch["y"]) ** 2), carry


def rnn_loss_fn(params, batch, carry, rng):
  del rng
  loss, carry = rnn_loss(params, batch, carry)
  return loss, (carry, {})


def test_rnn_train_step_with_persistent_carry_equals_hand_written():
  optimizer = optax.sgd(0.1, momentum=0.9)
  params = rnn_params()
  carry = CELL.initial_carry(params["cell"], (4,))
  state = create_train_state(params, optimizer, rng=3, carry=carry)
  train_step = make_train_step(rnn_loss_fn, optimizer)
  batches = [rnn_batch(seed) for seed in range(3)]
  for batch in batches:
    state, metrics = train_step(state, batch)

  params = rnn_params()  # the state's buffers were donated
  carry = CELL.initial_carry(params["cell"], (4,))
  opt_state = optimizer.init(params)
  # Jitted only because op-by-op dispatch of a scan's gradient is slow.
  value_and_grad = jax.jit(jax.value_and_grad(rnn_loss, has_aux=True))
  for batch in batches:
    (loss, new_carry), grads = value_and_grad(params, batch, carry)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    params, carry = optax.apply_updates(params, updates), new_carry
  assert_trees_close(state.params, params)
  assert_trees_close(state.carry, carry)
  np.testing.assert_allclose(metrics["loss"], loss, rtol=1e-6)
  np.testing.assert_allclose(metrics["grad_norm"], optax.tree.norm(grads), rtol=1e-6)
  assert not np.allclose(state.carry, 0.0)  # the carry really was carried


def test_nan_loss_leaves_the_state_unchanged_and_is_reported():
  optimizer = optim.make_optimizer({"name": "adam", "learning_rate": 0.1}, 10)
  params = rnn_params()
  state = create_train_state(params, optimizer, rng=0,
                             carry=CELL.initial_carry(params["cell"], (4,)))
  train_step = make_train_step(rnn_loss_fn, optimizer)
  state, metrics = train_step(state, rnn_batch(0))
  assert bool(metrics["finite"])
  before = host(state)

  bad = rnn_batch(1)
  bad["x"][2, 3, 1] = np.nan
  state, metrics = train_step(state, bad)
  assert not bool(metrics["finite"])
  assert np.isnan(metrics["loss"]) and np.isnan(metrics["grad_norm"])
  assert int(state.step) == 2
  assert_trees_bitwise_equal(state.params, before.params)
  assert_trees_bitwise_equal(state.opt_state, before.opt_state)
  assert_trees_bitwise_equal(state.carry, before.carry)
  assert_trees_bitwise_equal(state.rng, before.rng)

  state, metrics = train_step(state, rnn_batch(2))  # training goes on
  assert bool(metrics["finite"]) and int(state.step) == 3
  assert not np.allclose(state.params["readout"]["w"], before.params["readout"]["w"])


def test_infinite_gradient_with_finite_loss_is_caught():
  def loss_fn(params, batch, carry, rng):
    del batch, rng
    return jnp.sum(jnp.sqrt(params["w"])), (carry, {})  # d sqrt(w)/dw = inf at 0

  optimizer = optax.sgd(0.1)
  state = create_train_state({"w": jnp.array([0.0, 1.0])}, optimizer, rng=0)
  state, metrics = make_train_step(loss_fn, optimizer)(state, {})
  assert np.isfinite(metrics["loss"]) and not np.isfinite(metrics["grad_norm"])
  assert not bool(metrics["finite"])
  np.testing.assert_array_equal(state.params["w"], [0.0, 1.0])


def noisy_loss_fn(params, batch, carry, rng):
  # Dropout on the inputs: the loss depends on the step's key.
  keep = jax.random.bernoulli(rng, 0.5, batch["x"].shape)
  x = jnp.where(keep, batch["x"] / 0.5, 0.0)
  loss = jnp.mean((x @ params["w"] + params["b"] - batch["y"]) ** 2)
  return loss, (carry, {"noise": jax.random.uniform(rng)})


def run_noisy(seed, steps=3):
  optimizer = optax.sgd(0.0)  # params fixed: the loss varies only through rng
  state = create_train_state(linear_params(), optimizer, rng=seed)
  train_step = make_train_step(noisy_loss_fn, optimizer)
  history = []
  for _ in range(steps):
    state, metrics = train_step(state, linear_batch(0))
    history.append((float(metrics["loss"]), float(metrics["noise"])))
  return state, history


def test_rng_differs_per_step_and_is_reproducible():
  state, history = run_noisy(seed=7)
  losses = [loss for loss, _ in history]
  assert len(set(losses)) == len(losses), losses
  assert run_noisy(seed=7)[1] == history
  assert run_noisy(seed=8)[1] != history
  for step, (_, noise) in enumerate(history):
    key = jax.random.fold_in(jax.random.key(7), step)
    np.testing.assert_allclose(noise, jax.random.uniform(key), rtol=1e-6)
  # The base key stays put: the step is folded in.
  np.testing.assert_array_equal(state.rng, jax.random.key_data(jax.random.key(7)))


def test_donated_state_can_be_stepped_twice_and_matches_undonated():
  optimizer = optax.adam(0.05)
  results = {}
  for donate in (True, False):
    state = create_train_state(linear_params(), optimizer, rng=0)
    train_step = make_train_step(linear_loss_fn, optimizer, donate=donate)
    first, _ = train_step(state, linear_batch(0))
    second, metrics = train_step(first, linear_batch(1))
    results[donate] = host((second, metrics))
    assert first.params["w"].is_deleted() == donate
    assert not second.params["w"].is_deleted()
  assert_trees_bitwise_equal(results[True], results[False])


def carry_loss_fn(params, batch, carry, rng):
  del rng
  pred = carry * params["w"] + params["b"]  # carry (B, 1)
  loss = jnp.mean((pred - batch["y"]) ** 2)
  return loss, (jnp.tanh(pred + carry), {})


def carry_problem():
  params = {"w": jnp.array([0.7]), "b": jnp.array([-0.2])}
  carry = jnp.array([[1.0], [-2.0], [0.5], [3.0]])
  batch = {"y": jnp.array([[0.5], [1.0], [-1.0], [2.0]])}
  return params, carry, batch


def test_incoming_carry_is_treated_as_a_constant():
  params, carry, batch = carry_problem()
  optimizer = optax.sgd(1.0)
  state = create_train_state(params, optimizer, rng=0, carry=carry)
  new, metrics = make_train_step(carry_loss_fn, optimizer)(state, batch)
  params, carry, batch = carry_problem()  # the state's buffers were donated

  def reference(p):
    return carry_loss_fn(p, batch, jax.lax.stop_gradient(carry), None)[0]

  grads = jax.grad(reference)(params)
  assert_trees_close(new.params, jax.tree_util.tree_map(jnp.subtract, params, grads))
  np.testing.assert_allclose(metrics["grad_norm"], optax.tree.norm(grads), rtol=1e-6)


def test_no_gradient_flows_back_through_the_carry():
  # Truncated BPTT: whatever the step computes from the incoming carry (the
  # new params, the new carry) has zero derivative with respect to it.
  params, carry, batch = carry_problem()
  optimizer = optax.sgd(0.1)
  state = create_train_state(params, optimizer, rng=0, carry=carry)
  train_step = make_train_step(carry_loss_fn, optimizer, donate=False)

  def outputs(c):
    new, metrics = train_step(state._replace(carry=c), batch)
    return new.carry, new.params, metrics["loss"]

  d_carry, d_params, d_loss = jax.jacobian(outputs)(carry)
  for leaf in jax.tree_util.tree_leaves((d_carry, d_params, d_loss)):
    np.testing.assert_array_equal(leaf, 0.0)
  # The same derivatives of the loss function itself are not zero: the test
  # would notice a missing stop_gradient.
  d_direct = jax.jacobian(lambda c: carry_loss_fn(params, batch, c, None)[1][0])(carry)
  assert np.abs(d_direct).max() > 0.1


def test_frozen_params_get_no_gradient():
  def loss_fn(params, batch, carry, rng):
    del batch, rng
    loss = jnp.sum(params["w"] ** 2) + jnp.sum(params["frozen"]["r"] ** 2)
    return loss, (carry, {})

  optimizer = optax.sgd(0.1)  # not wrapped with keep_frozen on purpose
  params = {"w": jnp.array([3.0, 4.0]), "frozen": {"r": jnp.array([100.0])}}
  state = create_train_state(params, optimizer, rng=0)
  state, metrics = make_train_step(loss_fn, optimizer)(state, {})
  np.testing.assert_array_equal(state.params["frozen"]["r"], [100.0])
  np.testing.assert_allclose(state.params["w"], [3.0 - 0.6, 4.0 - 0.8], rtol=1e-6)
  np.testing.assert_allclose(metrics["grad_norm"], 10.0, rtol=1e-6)


def test_eval_step_returns_metrics_and_carry_without_a_key():
  seen = []

  def loss_fn(params, batch, carry, rng):
    seen.append(rng)
    loss, carry = rnn_loss(params, batch, carry)
    return loss, (carry, {"rmse": jnp.sqrt(loss)})

  params = rnn_params()
  carry = CELL.initial_carry(params["cell"], (4,))
  eval_step = make_eval_step(loss_fn)
  metrics, new_carry = eval_step(params, rnn_batch(0), carry)
  loss, want_carry = rnn_loss(params, rnn_batch(0), carry)
  assert seen == [None]
  assert set(metrics) == {"loss", "rmse"}
  np.testing.assert_allclose(metrics["loss"], loss, rtol=1e-6)
  np.testing.assert_allclose(metrics["rmse"], jnp.sqrt(loss), rtol=1e-6)
  assert_trees_close(new_carry, want_carry)
  np.testing.assert_array_equal(params["readout"]["w"], rnn_params()["readout"]["w"])


def test_bad_loss_functions_fail_at_trace_time_with_clear_messages():
  optimizer = optax.sgd(0.1)
  state = create_train_state(linear_params(), optimizer, rng=0, carry=jnp.zeros((8, 2)))
  batch = linear_batch(0)

  def no_aux(params, batch, carry, rng):
    return linear_loss(params, batch)

  def vector_loss(params, batch, carry, rng):
    return batch["x"] @ params["w"], (carry, {})

  def reserved(params, batch, carry, rng):
    return linear_loss(params, batch), (carry, {"grad_norm": 1.0})

  def reshaped_carry(params, batch, carry, rng):
    return linear_loss(params, batch), (carry[:, :1], {})

  cases = [(no_aux, TypeError, r"\(loss, \(new_carry, metrics\)\)"),
           (vector_loss, ValueError, "scalar loss"),
           (reserved, ValueError, "grad_norm"),
           (reshaped_carry, ValueError, "new carry like the one")]
  for loss_fn, error, message in cases:
    with pytest.raises(error, match=message):
      make_train_step(loss_fn, optimizer, donate=False)(state, batch)
  with pytest.raises(TypeError, match="optimizer"):
    make_train_step(linear_loss_fn, "adam")
  with pytest.raises(TypeError, match="TrainState"):
    make_train_step(linear_loss_fn, optimizer)(tuple(state), batch)


def test_create_train_state():
  optimizer = optax.adam(0.1)
  for rng in (5, jax.random.key(5), jax.random.PRNGKey(5)):
    state = create_train_state(linear_params(), optimizer, rng)
    assert isinstance(state, TrainState)
    assert state.step.shape == () and state.step.dtype == jnp.int32 and int(state.step) == 0
    assert state.rng.dtype == jnp.uint32 and state.rng.shape == (2,)
    np.testing.assert_array_equal(state.rng, jax.random.PRNGKey(5))
    assert state.carry is None
  with pytest.raises(ValueError, match="rng"):
    create_train_state(linear_params(), optimizer, jnp.zeros(3, jnp.uint32))
  with pytest.raises(TypeError, match="rng"):
    create_train_state(linear_params(), optimizer, 1.5)


def test_state_with_aliased_carry_leaves_can_be_donated():
  # An LSTM's initial carry may hold one zero array as both h and c.
  from seqjax.cells import lstm
  from seqjax.train.state import create_train_state as create
  cell = lstm(4)
  params = cell.init(jax.random.PRNGKey(0), 2)
  zeros = jnp.zeros((3, 4))
  state = create(params, optax.sgd(0.1), 0, carry=seqjax.LSTMCarry(zeros, zeros))
  assert state.carry.h is not state.carry.c

  def loss_fn(p, batch, carry, rng):
    carry, hs = seqjax.unroll(cell, p, batch["x"], carry)
    return jnp.mean(hs ** 2), (carry, {})

  step = make_train_step(loss_fn, optax.sgd(0.1))
  batch = {"x": jnp.ones((3, 5, 2))}
  state, _ = step(state, batch)
  state, metrics = step(state, batch)
  assert bool(metrics["finite"])


def test_train_step_runs_under_strict_promotion_with_mixed_dtype_params():
  """A user checking their model under strict promotion can still train it:
  the step runs optax (which mixes dtypes) under standard promotion, and the
  bf16 leaf stays bf16."""
  params = {**linear_params(), "scale": jnp.ones((), jnp.bfloat16)}

  def loss_fn(params, batch, carry, rng):
    scale = params["scale"].astype(jnp.float32)
    return scale * linear_loss(params, batch), (carry, {})

  optimizer = optim.make_optimizer({"name": "adam", "learning_rate": 0.1,
                                    "clip_global_norm": 1.0}, total_steps=10)
  with jax.numpy_dtype_promotion("strict"):
    state = create_train_state(params, optimizer, rng=0)
    state, metrics = make_train_step(loss_fn, optimizer)(state, linear_batch())
  assert bool(metrics["finite"])
  assert state.params["scale"].dtype == jnp.bfloat16
  assert float(state.params["scale"]) != 1.0
