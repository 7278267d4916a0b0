"""The training loop: resume equality, non-finite guard, time limit, metrics files."""

import json

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from seqjax.cells import gru
from seqjax.scan import unroll
from seqjax.train.lock import WorkdirLockedError
from seqjax.train.loop import NonFiniteError, Task, restore_params, train_and_evaluate
from seqjax.train.optim import default_optimizer_config
from tests.train.test_lock import start_holder

B, K, H = 4, 6, 8
CELL = gru(H)


def _batch(step, poison_at=None):
  rng = np.random.default_rng(step)
  xs = rng.normal(size=(B, K, 1)).astype(np.float32)
  ys = np.cumsum(xs, axis=1) * 0.3
  if step == poison_at:
    xs[0, 0, 0] = np.nan
  reset = np.zeros((B, K), bool)
  reset[:, 0] = step % 5 == 0  # a new "document" every 5 chunks
  return {"inputs": xs, "targets": ys.astype(np.float32), "reset": reset}


def _task(poison_at=None):
  def init_params(key):
    k1, k2 = jax.random.split(key)
    return {"cell": CELL.init(k1, 1), "w": jax.random.normal(k2, (H, 1)) * 0.1}

  def loss_fn(params, batch, carry, rng, training):
    carry, hs = unroll(CELL, params["cell"], batch["inputs"], carry, reset=batch["reset"])
    err = (hs @ params["w"] - batch["targets"]) ** 2
    return jnp.mean(err), (carry, {"sse": jnp.sum(err), "n": jnp.float32(err.size)})

  return Task(
      init_params=init_params,
      init_carry=lambda params, batch_size: CELL.initial_carry(params["cell"], (batch_size,)),
      loss_fn=loss_fn,
      train_batch=lambda step: _batch(step, poison_at),
      eval_batches={"validation": lambda: (_batch(10_000 + i) for i in range(2))},
      summarize=lambda sums: {"mse": sums["sse"] / sums["n"]},
      tokens_per_batch=B * K,
      eval_batch_size=B,
  )


def _config(num_steps, **overrides):
  config = ml_collections.ConfigDict(dict(
      seed=0, num_steps=num_steps, batch_size=B, log_every=2, eval_every=0,
      checkpoint_every=3, keep_checkpoints=2, skip_nonfinite=False, time_limit_minutes=0.0))
  config.optimizer = default_optimizer_config()
  config.optimizer.learning_rate = 1e-2
  config.optimizer.clip_global_norm = 1.0
  config.update(overrides)
  return config


def _quiet(_):
  pass


def test_interrupted_and_resumed_run_equals_straight_run(tmp_path):
  straight, params_straight = train_and_evaluate(_config(12), tmp_path / "a", _task(), log=_quiet)
  # "Kill" after 6 steps (a run configured to stop there), then resume to 12.
  train_and_evaluate(_config(6), tmp_path / "b", _task(), log=_quiet)
  lines = []
  resumed, params_resumed = train_and_evaluate(_config(12), tmp_path / "b", _task(), log=lines.append)
  assert any("resumed from the checkpoint at step 6" in line for line in lines), lines
  jax.tree_util.tree_map(np.testing.assert_array_equal, params_resumed, params_straight)
  assert resumed == straight
  # The metrics file has train lines for both halves and final evaluations.
  records = [json.loads(l) for l in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
  train_steps = [r["step"] for r in records if r["split"] == "train"]
  assert sorted(train_steps) == list(range(1, 13))  # every step once, across both halves
  assert all("grad_norm" in r and "loss" in r for r in records if r["split"] == "train")


def test_training_lowers_validation_error(tmp_path):
  untrained = _config(1)
  untrained.optimizer.learning_rate = 1e-9
  before, _ = train_and_evaluate(untrained, tmp_path / "a", _task(), log=_quiet)
  after, _ = train_and_evaluate(_config(60), tmp_path / "b", _task(), log=_quiet)
  assert after["validation/mse"] < 0.7 * before["validation/mse"]


def test_non_finite_loss_stops_with_a_clear_message(tmp_path):
  with pytest.raises(NonFiniteError, match=r"non-finite loss or gradient at step 7.*"
                     r"Last good checkpoint: step 6"):
    train_and_evaluate(_config(12), tmp_path, _task(poison_at=7), log=_quiet)
  params, step = restore_params(_config(12), tmp_path, _task().init_params, _task().init_carry)
  assert step == 6
  assert all(np.all(np.isfinite(x)) for x in jax.tree_util.tree_leaves(params))


def test_non_finite_update_skipped_when_configured(tmp_path):
  final, params = train_and_evaluate(_config(10, skip_nonfinite=True), tmp_path,
                                     _task(poison_at=4), log=_quiet)
  assert np.isfinite(final["validation/mse"])
  assert all(np.all(np.isfinite(x)) for x in jax.tree_util.tree_leaves(params))


def test_restore_without_checkpoint(tmp_path):
  with pytest.raises(FileNotFoundError, match="no checkpoint in"):
    restore_params(_config(3), tmp_path, _task().init_params, _task().init_carry)


def test_sigterm_saves_a_checkpoint_and_the_rerun_resumes(tmp_path):
  import os
  import signal
  task = _task()

  def batch_then_signal(step):
    if step == 4:  # a scheduler preempts the job while step 4 is prepared
      os.kill(os.getpid(), signal.SIGTERM)
    return _batch(step)

  lines = []
  final, _ = train_and_evaluate(_config(12), tmp_path, task._replace(train_batch=batch_then_signal),
                                log=lines.append)
  assert final == {}
  assert any("stopped by SIGTERM at step 5" in line for line in lines), lines
  lines = []
  train_and_evaluate(_config(12), tmp_path, task, log=lines.append)
  assert any("resumed from the checkpoint at step 5" in line for line in lines), lines


def test_a_workdir_in_use_is_refused_before_anything_is_written(tmp_path):
  holder = start_holder(tmp_path)
  try:
    with pytest.raises(WorkdirLockedError, match=f"in use by another run: pid {holder.pid} "):
      train_and_evaluate(_config(3), tmp_path, _task(), log=_quiet)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock"]
  finally:
    holder.stdin.close()
    holder.wait(timeout=60)
  final, _ = train_and_evaluate(_config(3), tmp_path, _task(), log=_quiet)
  assert np.isfinite(final["validation/mse"])
