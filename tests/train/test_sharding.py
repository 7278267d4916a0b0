"""Tests of seqjax.train.sharding: an 8-device data-parallel step equals the 1-device step.

The number of CPU devices is fixed when JAX starts, so the 8-device part runs
this file as a script in a fresh process with
``XLA_FLAGS=--xla_force_host_platform_device_count=8`` (``worker()`` below)
and the tests compare the numbers it prints. The multi-host part starts two
such processes (2 CPU devices each) joined by ``jax.distributed``.
"""

import functools
import json
import os
import socket
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec

import seqjax
from seqjax.train import optim, sharding
from seqjax.train.state import create_train_state
from seqjax.train.step import make_eval_step, make_train_step

DEVICES = 8
BATCH = 16  # two rows per device
CELL = seqjax.cells.gru(5)


def init_params():
  k1, k2 = jax.random.split(jax.random.PRNGKey(0))
  return {"cell": CELL.init(k1, 3),
          "readout": {"w": 0.5 * jax.random.normal(k2, (5, 2)), "b": jnp.zeros(2)}}


def make_batches(num=3, batch_size=BATCH):
  rng = np.random.default_rng(0)
  batches = []
  for _ in range(num):
    x = rng.normal(size=(batch_size, 6, 3)).astype(np.float32)
    y = np.stack([np.cumsum(x[..., 0], 1), x[..., 1] * x[..., 2]], -1)
    batches.append({"x": x, "y": y.astype(np.float32)})
  return batches


def loss_fn(params, batch, carry, rng, traces):
  traces.append(1)  # runs once per compilation
  x = batch["x"]
  if rng is not None:  # input dropout: the random bits must not depend on the layout
    keep = jax.random.bernoulli(rng, 0.8, x.shape)
    x = jnp.where(keep, x / 0.8, 0.0)
  carry, hs = seqjax.unroll(CELL, params["cell"], x, carry)
  pred = hs @ params["readout"]["w"] + params["readout"]["b"]
  loss = jnp.mean((pred - batch["y"]) ** 2)
  return loss, (carry, {"mean_abs_carry": jnp.mean(jnp.abs(carry))})


def optimizer():
  # Clipping active (norm bound below the gradient norm), so the all-reduced
  # gradient's norm matters too.
  return optim.make_optimizer({"name": "adam", "learning_rate": 0.05,
                               "clip_global_norm": 0.2}, total_steps=10)


def assert_rows_sharded(array, mesh):
  """``array`` is split along axis 0, one distinct slice per device of ``mesh``."""
  devices = mesh.shape[sharding.DATA_AXIS]
  assert isinstance(array.sharding, NamedSharding), array.sharding
  assert array.sharding.spec == PartitionSpec(sharding.DATA_AXIS), array.sharding
  shards = array.addressable_shards
  assert len(shards) == devices, len(shards)
  assert len({shard.device for shard in shards}) == devices
  assert {shard.data.shape[0] for shard in shards} == {array.shape[0] // devices}
  starts = sorted(shard.index[0].start or 0 for shard in shards)
  assert starts == list(range(0, array.shape[0], array.shape[0] // devices)), starts


def assert_replicated(array, mesh):
  assert array.sharding.is_fully_replicated, array.sharding
  assert len(array.addressable_shards) == mesh.size


def train(mesh, steps=3):
  """3 train steps and an eval step on ``mesh``."""
  traces = []
  fn = functools.partial(loss_fn, traces=traces)
  opt = optimizer()
  params = init_params()
  state = create_train_state(params, opt, rng=42,
                             carry=CELL.initial_carry(params["cell"], (BATCH,)))
  train_step = make_train_step(fn, opt)
  eval_step = make_eval_step(fn)
  state = sharding.shard_train_state(mesh, state)
  metrics = []
  for batch in make_batches(steps):
    batch = sharding.shard_batch(mesh, batch)
    for leaf in jax.tree_util.tree_leaves(batch):
      assert_rows_sharded(leaf, mesh)
    assert_rows_sharded(state.carry, mesh)
    state, m = train_step(state, batch)
    metrics.append({k: float(v) for k, v in m.items()})
  # The layout survives the steps, and nothing was compiled twice.
  assert_rows_sharded(state.carry, mesh)
  for leaf in jax.tree_util.tree_leaves((state.params, state.opt_state, state.step)):
    assert_replicated(leaf, mesh)
  assert len(traces) == 1, f"the train step was traced {len(traces)} times"
  batch = sharding.shard_batch(mesh, make_batches(1)[0])
  eval_metrics, eval_carry = eval_step(state.params, batch, state.carry)
  return {"params": [np.asarray(p).tolist() for p in jax.tree_util.tree_leaves(state.params)],
          "carry": np.asarray(state.carry).tolist(),
          "step": int(state.step),
          "metrics": metrics,
          "eval": {k: float(v) for k, v in eval_metrics.items()},
          "eval_carry": np.asarray(eval_carry).tolist()}


def worker():
  """Runs in a fresh process with 8 forced CPU devices; prints JSON."""
  assert jax.device_count() == DEVICES, jax.devices()
  mesh = sharding.make_mesh()
  assert mesh.shape == {sharding.DATA_AXIS: DEVICES}, mesh.shape
  result = {"devices": jax.device_count(),
            "eight": train(mesh),
            "one": train(sharding.make_mesh(jax.devices()[:1]))}
  errors = {}
  for name, call in [("check", lambda: sharding.check_batch_size(12, mesh)),
                     ("shard_batch", lambda: sharding.shard_batch(
                         mesh, make_batches(1, batch_size=12)[0]))]:
    try:
      call()
      errors[name] = None
    except ValueError as e:
      errors[name] = str(e)
  result["errors"] = errors
  print("RESULT " + json.dumps(result))


@pytest.fixture(scope="module")
def eight_devices():
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8",
             JAX_PLATFORMS="cpu")
  proc = subprocess.run([sys.executable, os.path.abspath(__file__)], env=env,
                        capture_output=True, text=True, timeout=600)
  lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
  assert proc.returncode == 0 and lines, (
      f"the 8-device worker failed (exit code {proc.returncode}):\n"
      f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
  return json.loads(lines[-1][len("RESULT "):])


def assert_runs_equal(a, b, what):
  assert a["step"] == b["step"] == 3
  for name in ("params", "carry", "eval_carry"):
    for x, y in zip(a[name] if name == "params" else [a[name]],
                    b[name] if name == "params" else [b[name]]):
      np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-5,
                                 err_msg=f"{what}: {name} differ")
  for m_a, m_b in zip(a["metrics"] + [a["eval"]], b["metrics"] + [b["eval"]]):
    assert set(m_a) == set(m_b)
    for key in m_a:
      np.testing.assert_allclose(m_a[key], m_b[key], rtol=1e-5, atol=1e-6,
                                 err_msg=f"{what}: metric {key} differs")


def test_eight_device_step_equals_one_device_step(eight_devices):
  assert eight_devices["devices"] == DEVICES
  assert_runs_equal(eight_devices["eight"], eight_devices["one"], "8 vs 1 device")
  metrics = eight_devices["eight"]["metrics"]
  assert all(m["finite"] for m in metrics)
  assert all(m["grad_norm"] > 0.2 for m in metrics)  # clipping was active
  assert metrics[-1]["loss"] != metrics[0]["loss"]


def test_batch_size_not_divisible_by_the_device_count(eight_devices):
  for message in eight_devices["errors"].values():
    assert message is not None, "batch size 12 on 8 devices was accepted"
    assert "batch_size=12" in message and "8 devices" in message, message
    assert "8 or 16" in message, message


def test_single_device_mesh_and_validation():
  mesh = sharding.make_mesh()
  assert mesh.axis_names == (sharding.DATA_AXIS,)
  assert mesh.axis_types == (jax.sharding.AxisType.Auto,)
  assert mesh.size == jax.device_count()
  sharding.check_batch_size(3 * jax.device_count(), mesh)
  with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
    sharding.check_batch_size(0, mesh)
  with pytest.raises(TypeError, match="batch_size"):
    sharding.check_batch_size(4.0, mesh)
  with pytest.raises(ValueError, match="axis named 'data'"):
    sharding.check_batch_size(4, jax.make_mesh((1,), ("model",)))
  with pytest.raises(ValueError, match="devices"):
    sharding.make_mesh([])
  with pytest.raises(ValueError, match="leading"):
    sharding.shard_batch(mesh, {"x": np.zeros((4, 2)), "y": np.zeros((3,))})
  with pytest.raises(ValueError, match=r"batch\['n'\].*scalar"):
    sharding.shard_batch(mesh, {"x": np.zeros((4, 2)), "n": np.float32(1.0)})


def test_layout_is_kept_across_steps_on_a_one_device_mesh():
  # XLA returns the carry of a 1-device mesh without its P("data"); the step
  # pins the output layout so that the next call does not compile again.
  traces = []

  def linear_loss_fn(params, batch, carry, rng):
    del rng
    traces.append(1)
    pred = batch["x"] @ params["w"] + carry
    return jnp.mean((pred - batch["y"]) ** 2), (jnp.tanh(pred), {})

  mesh = sharding.make_mesh(jax.devices()[:1])
  opt = optimizer()
  state = sharding.shard_train_state(mesh, create_train_state(
      {"w": jnp.ones((3, 2))}, opt, rng=0, carry=jnp.zeros((4, 2))))
  train_step = make_train_step(linear_loss_fn, opt)
  for batch in make_batches(3, batch_size=4):
    state, _ = train_step(state, sharding.shard_batch(mesh, {"x": batch["x"][:, 0],
                                                             "y": batch["y"][:, 0]}))
  assert len(traces) == 1, f"the train step was traced {len(traces)} times"
  assert state.carry.sharding == NamedSharding(mesh, PartitionSpec(sharding.DATA_AXIS))
  assert int(state.step) == 3
  replicated = sharding.replicate(mesh, {"a": np.ones(3)})
  assert replicated["a"].sharding == NamedSharding(mesh, PartitionSpec())
  np.testing.assert_array_equal(replicated["a"], np.ones(3))


# Multi-host: 2 processes x 2 CPU devices, each passing only its own rows.

HOST_ROWS = 4  # rows of the global batch of 8 that each of the 2 processes holds


def linear_loss_fn(params, batch, carry, rng):
  x = batch["x"]
  if rng is not None:
    x = jnp.where(jax.random.bernoulli(rng, 0.8, x.shape), x / 0.8, 0.0)
  pred = x @ params["w"] + carry
  return jnp.mean((pred - batch["y"]) ** 2), (jnp.tanh(pred), {})


def linear_run(steps=2, process_id=None, mesh=None):
  """Trains the linear model; returns host copies of (params, carry, losses)."""
  opt = optimizer()
  state = create_train_state({"w": jnp.full((3, 2), 0.3)}, opt, rng=1,
                             carry=jnp.zeros((2 * HOST_ROWS, 2)))
  if mesh is not None:
    state = sharding.shard_train_state(mesh, state)
  train_step = make_train_step(linear_loss_fn, opt)
  losses = []
  for batch in make_batches(steps, batch_size=2 * HOST_ROWS):
    batch = {"x": batch["x"][:, 0], "y": batch["y"][:, 0]}
    if mesh is not None:
      rows = slice(process_id * HOST_ROWS, (process_id + 1) * HOST_ROWS)
      batch = sharding.shard_batch(mesh, {k: v[rows] for k, v in batch.items()})
    state, metrics = train_step(state, batch)
    losses.append(float(metrics["loss"]))
  if mesh is not None:
    from jax.experimental import multihost_utils
    state = multihost_utils.process_allgather(state, tiled=True)
  return np.asarray(state.params["w"]), np.asarray(state.carry), losses


def multihost_worker(process_id, port):
  """One of 2 processes, each with 2 CPU devices; prints JSON."""
  sharding.initialize_distributed({"distributed": {
      "coordinator_address": f"localhost:{port}", "num_processes": 2,
      "process_id": process_id}})
  assert jax.process_count() == 2 and jax.device_count() == 4, jax.devices()
  mesh = sharding.make_mesh()
  w, carry, losses = linear_run(process_id=process_id, mesh=mesh)
  print("RESULT " + json.dumps({"w": w.tolist(), "carry": carry.tolist(),
                                "losses": losses}))


def test_two_processes_equal_one(tmp_path):
  with socket.socket() as s:  # a free port for the coordinator
    s.bind(("localhost", 0))
    port = s.getsockname()[1]
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2",
             JAX_PLATFORMS="cpu")
  procs = [subprocess.Popen([sys.executable, os.path.abspath(__file__), "multihost",
                             str(i), str(port)], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
           for i in range(2)]
  outputs = []
  try:
    for proc in procs:
      outputs.append(proc.communicate(timeout=300))
  finally:
    for proc in procs:
      proc.kill()
  w, carry, losses = linear_run()
  for i, (proc, (out, err)) in enumerate(zip(procs, outputs)):
    lines = [l for l in out.splitlines() if l.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, (
        f"process {i} of 2 failed (exit code {proc.returncode}):\n{out[-3000:]}\n"
        f"{err[-5000:]}")
    result = json.loads(lines[-1][len("RESULT "):])
    np.testing.assert_allclose(result["w"], w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result["carry"], carry, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result["losses"], losses, rtol=1e-5)
  assert not np.allclose(w, 0.3)


class Recorder:

  def __init__(self):
    self.calls = []

  def __call__(self, **kwargs):
    self.calls.append(kwargs)


@pytest.fixture
def recorder(monkeypatch):
  recorder = Recorder()
  monkeypatch.setattr(jax.distributed, "initialize", recorder)
  monkeypatch.setattr(jax.distributed, "is_initialized", lambda: False)
  return recorder


def test_initialize_distributed(recorder):
  off = [{}, {"distributed": None}, {"distributed": False},
         {"distributed": sharding.default_distributed_config()}]
  for config in off:
    sharding.initialize_distributed(config)
  assert recorder.calls == []

  sharding.initialize_distributed({"distributed": True})
  assert recorder.calls[-1] == dict(coordinator_address=None, num_processes=None,
                                    process_id=None)
  config = sharding.default_distributed_config()
  config.update(enabled=True, coordinator_address="10.0.0.1:1234", num_processes=4,
                process_id=2)
  sharding.initialize_distributed({"distributed": config})
  assert recorder.calls[-1] == dict(coordinator_address="10.0.0.1:1234",
                                    num_processes=4, process_id=2)
  assert len(recorder.calls) == 2


@pytest.mark.parametrize("fields,message", [
    ({"process_id": 4, "num_processes": 4}, r"distributed\.process_id must be < num_processes"),
    ({"num_processes": -2}, r"distributed\.num_processes must be >= 0"),
    ({"coordinator_address": "localhost"}, r"distributed\.coordinator_address"),
    ({"coordinater_address": "a:1"}, r"distributed\.coordinater_address is not"),
])
def test_initialize_distributed_rejects_bad_fields(recorder, fields, message):
  with pytest.raises(ValueError, match=message):
    sharding.initialize_distributed({"distributed": fields})
  assert recorder.calls == []


if __name__ == "__main__":
  if sys.argv[1:2] == ["multihost"]:
    multihost_worker(int(sys.argv[2]), int(sys.argv[3]))
  else:
    worker()
