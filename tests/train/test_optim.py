"""Tests of seqjax.train.optim: clipping, the optax rules, schedules, freezing, validation."""

import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from seqjax.train import optim


def config(**fields):
  """Default config with clipping off unless asked for, then ``fields``."""
  return {**optim.default_optimizer_config().to_dict(), "clip_global_norm": 0.0,
          **fields}


def updates_for(optimizer, grads_sequence, params):
  """Applies ``optimizer`` to each gradient in turn; returns (updates, params)."""
  state = optimizer.init(params)
  updates = []
  for grads in grads_sequence:
    u, state = jax.jit(optimizer.update)(grads, state, params)
    params = optax.apply_updates(params, u)
    updates.append(u)
  return updates, params


def test_default_config_builds_and_documents_every_field():
  c = optim.default_optimizer_config()
  assert isinstance(c, ml_collections.ConfigDict)
  doc = optim.default_optimizer_config.__doc__
  for field in c.keys():
    assert f"{field}:" in doc, field
  optim.make_optimizer(c, total_steps=10)


def test_global_norm_10_is_clipped_to_1():
  opt = optim.make_optimizer(config(name="sgd", learning_rate=1.0,
                                    clip_global_norm=1.0), total_steps=10)
  params = {"a": jnp.zeros(2), "b": jnp.zeros((1, 1))}
  grads = {"a": jnp.array([6.0, 0.0]), "b": jnp.array([[8.0]])}  # norm 10
  (u,), _ = updates_for(opt, [grads], params)
  np.testing.assert_allclose(float(optax.tree.norm(u)), 1.0, rtol=1e-6)
  np.testing.assert_allclose(u["a"], [-0.6, 0.0], rtol=1e-6)
  np.testing.assert_allclose(u["b"], [[-0.8]], rtol=1e-6)


def test_a_gradient_below_the_norm_bound_is_untouched():
  opt = optim.make_optimizer(config(name="sgd", learning_rate=1.0,
                                    clip_global_norm=1.0), total_steps=10)
  grads = {"a": jnp.array([0.3, -0.4])}
  (u,), _ = updates_for(opt, [grads], {"a": jnp.zeros(2)})
  np.testing.assert_allclose(u["a"], [-0.3, 0.4], rtol=1e-6)


def test_element_wise_clip_bounds_every_entry():
  opt = optim.make_optimizer(config(name="sgd", learning_rate=1.0,
                                    clip_value=0.5), total_steps=10)
  grads = {"w": 3.0 * jax.random.normal(jax.random.PRNGKey(0), (7, 5))}
  (u,), _ = updates_for(opt, [grads], {"w": jnp.zeros((7, 5))})
  assert float(jnp.max(jnp.abs(u["w"]))) <= 0.5
  np.testing.assert_allclose(u["w"], -np.clip(grads["w"], -0.5, 0.5), rtol=1e-6)
  assert np.any(np.abs(grads["w"]) > 0.5) and np.any(np.abs(grads["w"]) < 0.5)


def test_element_wise_clip_runs_before_the_global_norm_clip():
  # Element-wise first: [1000, 1] -> [1, 1] -> [1, 1] / sqrt(2). The other order
  # would give [1, 0.001]: the outlier would wipe out the second entry.
  opt = optim.make_optimizer(config(name="sgd", learning_rate=1.0, clip_value=1.0,
                                    clip_global_norm=1.0), total_steps=10)
  (u,), _ = updates_for(opt, [{"w": jnp.array([1000.0, 1.0])}], {"w": jnp.zeros(2)})
  np.testing.assert_allclose(u["w"], -np.full(2, 1 / math.sqrt(2)), rtol=1e-6)


OPTAX_REFERENCES = [
    (dict(name="adam", learning_rate=0.01), lambda: optax.adam(0.01)),
    (dict(name="adamw", learning_rate=0.01, weight_decay=0.1),
     lambda: optax.adamw(0.01, weight_decay=0.1)),
    (dict(name="sgd", learning_rate=0.1), lambda: optax.sgd(0.1)),
    (dict(name="sgd", learning_rate=0.1, momentum=0.9),
     lambda: optax.sgd(0.1, momentum=0.9)),
    (dict(name="sgd", learning_rate=0.1, weight_decay=0.01),
     lambda: optax.chain(optax.add_decayed_weights(0.01), optax.sgd(0.1))),
    (dict(name="rmsprop", learning_rate=0.01), lambda: optax.rmsprop(0.01)),
    (dict(name="rmsprop", learning_rate=0.01, momentum=0.5),
     lambda: optax.rmsprop(0.01, momentum=0.5)),
    (dict(name="adam", learning_rate=0.01, clip_global_norm=0.5),
     lambda: optax.chain(optax.clip_by_global_norm(0.5), optax.adam(0.01))),
    (dict(name="adam", learning_rate=0.01, schedule="cosine"),
     lambda: optax.adam(optax.cosine_decay_schedule(0.01, 5))),
]


@pytest.mark.parametrize("fields,reference", OPTAX_REFERENCES,
                         ids=[f"{c['name']}-{i}" for i, (c, _) in enumerate(OPTAX_REFERENCES)])
def test_matches_optax(fields, reference):
  opt = optim.make_optimizer(config(**fields), total_steps=5)
  keys = jax.random.split(jax.random.PRNGKey(1), 4)
  params = {"w": jax.random.normal(keys[0], (3, 2)), "b": jnp.ones(2)}
  grads = [{"w": jax.random.normal(k, (3, 2)), "b": jax.random.normal(k, (2,))}
           for k in keys[1:]]
  got, got_params = updates_for(opt, grads, params)
  want, want_params = updates_for(reference(), grads, params)
  for g, w in zip(got, want):
    jax.tree_util.tree_map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7), g, w)
  jax.tree_util.tree_map(
      lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7),
      got_params, want_params)


def learning_rates(fields, total_steps):
  """The rate of each update 0..total_steps, read off sgd updates of gradient 1."""
  opt = optim.make_optimizer(config(name="sgd", **fields), total_steps)
  ones = {"w": jnp.ones(())}
  updates, _ = updates_for(opt, [ones] * (total_steps + 1), {"w": jnp.zeros(())})
  return np.array([-float(u["w"]) for u in updates])


def test_warmup_cosine_schedule():
  lr, warmup, total, floor = 0.5, 4, 12, 0.1
  rates = learning_rates(dict(learning_rate=lr, schedule="warmup_cosine",
                              warmup_steps=warmup, final_lr_fraction=floor), total)
  assert rates[0] < 1e-6 * lr
  np.testing.assert_allclose(rates[:warmup + 1], lr * np.arange(warmup + 1) / warmup,
                             rtol=1e-6, atol=1e-8)
  assert rates.argmax() == warmup
  np.testing.assert_allclose(rates[warmup], lr, rtol=1e-6)
  np.testing.assert_allclose(rates[total], floor * lr, rtol=1e-5)
  t = np.arange(warmup, total + 1) - warmup
  cosine = floor * lr + (lr - floor * lr) * 0.5 * (1 + np.cos(np.pi * t / (total - warmup)))
  np.testing.assert_allclose(rates[warmup:], cosine, rtol=1e-5)
  schedule = optim.learning_rate_schedule(
      config(learning_rate=lr, schedule="warmup_cosine", warmup_steps=warmup,
             final_lr_fraction=floor), total)
  np.testing.assert_allclose([schedule(i) for i in range(total + 1)], rates, rtol=1e-6)


def test_cosine_schedule_starts_at_the_rate_and_ends_at_the_floor():
  rates = learning_rates(dict(learning_rate=0.2, schedule="cosine",
                              final_lr_fraction=0.25), 8)
  t = np.arange(9)
  np.testing.assert_allclose(rates, 0.05 + 0.15 * 0.5 * (1 + np.cos(np.pi * t / 8)),
                             rtol=1e-5)


def test_constant_schedule_with_and_without_warmup():
  np.testing.assert_allclose(learning_rates(dict(learning_rate=0.3), 4), 0.3, rtol=1e-6)
  rates = learning_rates(dict(learning_rate=0.3, warmup_steps=3), 6)
  np.testing.assert_allclose(rates, [0, 0.1, 0.2, 0.3, 0.3, 0.3, 0.3], rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", optim.NAMES)
def test_frozen_params_never_change(name):
  fields = dict(name=name, learning_rate=0.1, weight_decay=0.1, clip_value=10.0,
                clip_global_norm=1.0)
  if name in ("sgd", "rmsprop"):
    fields["momentum"] = 0.9
  opt = optim.make_optimizer(config(**fields), total_steps=10)
  params = {"w": jnp.ones(3), "frozen": {"reservoir": jnp.ones((2, 2))},
            "readout": {"frozen": jnp.full(2, 3.0), "b": jnp.ones(2)}}
  grads = jax.tree_util.tree_map(jnp.ones_like, params)
  _, new = updates_for(opt, [grads] * 3, params)
  np.testing.assert_array_equal(new["frozen"]["reservoir"], params["frozen"]["reservoir"])
  np.testing.assert_array_equal(new["readout"]["frozen"], params["readout"]["frozen"])
  assert not np.allclose(new["w"], params["w"])
  assert not np.allclose(new["readout"]["b"], params["readout"]["b"])


def test_frozen_gradients_do_not_count_in_the_global_norm():
  opt = optim.make_optimizer(config(name="sgd", learning_rate=1.0,
                                    clip_global_norm=1.0), total_steps=10)
  params = {"w": jnp.zeros(2), "frozen": jnp.zeros(2)}
  grads = {"w": jnp.array([0.6, 0.8]), "frozen": jnp.array([1e3, 1e3])}
  (u,), _ = updates_for(opt, [grads], params)
  np.testing.assert_allclose(u["w"], [-0.6, -0.8], rtol=1e-6)
  np.testing.assert_array_equal(u["frozen"], [0.0, 0.0])


def test_accepts_a_plain_mapping_and_fills_defaults():
  opt = optim.make_optimizer({"name": "sgd", "learning_rate": 0.5, "clip_global_norm": 0},
                             total_steps=3)
  (u,), _ = updates_for(opt, [{"w": jnp.array([2.0])}], {"w": jnp.zeros(1)})
  np.testing.assert_allclose(u["w"], [-1.0])


INVALID = [
    (dict(learning_rate=0.0), ValueError, "optimizer.learning_rate"),
    (dict(learning_rate=-1e-3), ValueError, "optimizer.learning_rate"),
    (dict(learning_rate=float("nan")), ValueError, "optimizer.learning_rate"),
    (dict(learning_rate="fast"), TypeError, "optimizer.learning_rate"),
    (dict(name="adagrad"), ValueError, "optimizer.name"),
    (dict(schedule="linear"), ValueError, "optimizer.schedule"),
    (dict(clip_global_norm=-1.0), ValueError, "optimizer.clip_global_norm"),
    (dict(clip_value=-0.1), ValueError, "optimizer.clip_value"),
    (dict(weight_decay=-0.1), ValueError, "optimizer.weight_decay"),
    (dict(name="sgd", momentum=1.0), ValueError, "optimizer.momentum"),
    (dict(name="sgd", momentum=-0.5), ValueError, "optimizer.momentum"),
    (dict(name="adam", momentum=0.9), ValueError, "optimizer.momentum"),
    (dict(schedule="warmup_cosine", warmup_steps=11), ValueError, "optimizer.warmup_steps"),
    (dict(schedule="warmup_cosine", warmup_steps=10), ValueError, "optimizer.warmup_steps"),
    (dict(schedule="cosine", warmup_steps=2), ValueError, "optimizer.warmup_steps"),
    (dict(warmup_steps=-1), ValueError, "optimizer.warmup_steps"),
    (dict(warmup_steps=2.5), TypeError, "optimizer.warmup_steps"),
    (dict(final_lr_fraction=1.5), ValueError, "optimizer.final_lr_fraction"),
]


@pytest.mark.parametrize("fields,error,field", INVALID,
                         ids=[f"{f}-{i}" for i, (_, _, f) in enumerate(INVALID)])
def test_invalid_configs_name_the_field(fields, error, field):
  with pytest.raises(error, match=field.replace(".", r"\.")):
    optim.make_optimizer(config(**fields), total_steps=10)


def test_unknown_field_and_bad_total_steps():
  with pytest.raises(ValueError, match=r"optimizer\.learnig_rate.*learning_rate"):
    optim.make_optimizer({"learnig_rate": 0.1}, total_steps=10)
  with pytest.raises(ValueError, match="total_steps"):
    optim.make_optimizer(config(), total_steps=0)
  with pytest.raises(TypeError, match="optimizer config"):
    optim.make_optimizer(["adam"], total_steps=10)


def test_pytorch_style_rmsprop_follows_torch_formula():
  # torch.optim.RMSprop (alpha=0.99, eps=1e-8, centered=False), written out in numpy.
  lr = 5e-4
  optimizer = optim.make_optimizer(
      dict(name="rmsprop", learning_rate=lr, clip_global_norm=0.0, rmsprop_style="pytorch"), 10)
  params = {"w": jnp.asarray([0.5, -1.0, 2.0])}
  state = optimizer.init(params)
  want, square_avg = np.array([0.5, -1.0, 2.0]), np.zeros(3)
  for step in range(4):
    g = np.array([1e-5, -3e-4, 2.0]) * (step + 1)
    updates, state = optimizer.update({"w": jnp.asarray(g)}, state, params)
    params = optax.apply_updates(params, updates)
    square_avg = 0.99 * square_avg + 0.01 * g * g
    want = want - lr * g / (np.sqrt(square_avg) + 1e-8)
  np.testing.assert_allclose(params["w"], want, rtol=1e-5)
  with pytest.raises(ValueError, match="rmsprop_style"):
    optim.make_optimizer(dict(name="rmsprop", rmsprop_style="keras"), 10)


def test_nesterov_momentum_equals_the_formula():
  # Sutskever et al. (2013) as optax writes it: v_t = g_t + mu v_{t-1};
  # the step is -lr (g_t + mu v_t).
  lr, mu = 0.1, 0.9
  opt = optim.make_optimizer(config(name="sgd", learning_rate=lr, momentum=mu, nesterov=True,
                                    clip_global_norm=0.0), total_steps=5)
  gs = [np.array([1.0, -2.0]), np.array([0.5, 0.5]), np.array([-1.0, 3.0])]
  updates, _ = updates_for(opt, [{"w": jnp.asarray(g)} for g in gs], {"w": jnp.zeros(2)})
  v = np.zeros(2)
  for g, u in zip(gs, updates):
    v = g + mu * v
    np.testing.assert_allclose(u["w"], -lr * (g + mu * v), rtol=1e-6)
  heavy_ball = optim.make_optimizer(config(name="sgd", learning_rate=lr, momentum=mu,
                                           clip_global_norm=0.0), total_steps=5)
  hb, _ = updates_for(heavy_ball, [{"w": jnp.asarray(g)} for g in gs], {"w": jnp.zeros(2)})
  assert not np.allclose(hb[1]["w"], updates[1]["w"])


@pytest.mark.parametrize("fields", [dict(name="adam", nesterov=True),
                                    dict(name="sgd", momentum=0.0, nesterov=True),
                                    dict(name="sgd", momentum=0.9, nesterov=1)])
def test_nesterov_needs_sgd_with_momentum(fields):
  with pytest.raises(ValueError, match="optimizer.nesterov"):
    optim.make_optimizer(config(**fields), total_steps=5)
