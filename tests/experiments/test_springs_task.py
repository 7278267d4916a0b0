"""The learned-simulator experiment: config checks, rollouts, quick runs of both models."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs import springs as configs
from experiments.tasks import springs as task
from seqjax.data import springs


@pytest.mark.parametrize("field,value,match", [
    ("model.kind", "transformer", "config.model.kind must be one of"),
    ("data.history", 0, "config.data.history must be a positive integer"),
    ("data.steps", 6, "config.data.steps must exceed config.data.history"),
    ("data.noise_std", -1.0, "config.data.noise_std must be >= 0"),
])
def test_bad_fields_are_named(field, value, match):
  config = configs.get_config("gn")
  section, name = field.split(".")
  config[section][name] = value
  with pytest.raises(ValueError, match=match):
    task.validate(config)


def test_rollout_with_the_true_physics_retraces_the_trajectories():
  """A 'model' that returns the simulator's own accelerations, normalised, rolled
  out by ``task.rollout`` reproduces ``springs.simulate`` (one substep: Stormer-Verlet
  is exactly the finite-difference update the rollout inverts)."""
  config = configs.get_config("gn,quick")
  config.data.update(substeps=1, steps=60)
  data = task._dataset(config.data, 3, 2)
  stats = task.Stats(np.zeros(2), np.ones(2), np.array([0.1, -0.2]), np.array([2.0, 0.5]))

  def apply(params, window, system):
    del params
    a = springs.accelerations(window[-1], jnp.zeros_like(window[-1]), system)
    return (a - stats.acceleration_mean) / stats.acceleration_std

  predicted = task.rollout(task.Simulator(None, apply), None, stats, data, config)
  truth = data.positions[:, config.data.history + 1:]
  assert predicted.shape == truth.shape == (2, 60 - config.data.history, 5, 2)
  np.testing.assert_allclose(predicted, truth, atol=2e-4)
  assert task.rollout_errors(predicted, data, config.data.history).max() < 1e-7
  # The constant-velocity guess is far off: the comparison the report makes.
  still = task.rollout(task.Simulator(None, apply), None, stats, data, config,
                       constant_velocity=True)
  assert task.rollout_errors(still, data, config.data.history)[-1] > 1e-3


def test_both_models_see_every_spring_and_give_one_acceleration_per_particle():
  for kind in ("gn", "mlp"):
    config = configs.get_config(f"{kind},quick")
    data = task._dataset(config.data, 0, 1)
    stats = task._stats(data, config.data.dt)
    model = task.build_model(config, stats)
    params = model.init(jax.random.key(0))
    system = springs.SpringSystem(*(np.asarray(f[0]) for f in data.system))
    window = data.positions[0, :config.data.history + 1]
    out = model.apply(params, window, system)
    assert out.shape == (config.data.particles, 2)
    # Changing one spring's stiffness changes the prediction: the springs are read.
    stiffness = system.stiffness.copy()
    stiffness[0] = 5.0
    stiffer = system._replace(stiffness=stiffness)
    assert not np.allclose(model.apply(params, window, stiffer), out)


@pytest.mark.integration
@pytest.mark.parametrize("variant", ["gn,quick", "mlp,quick"])
def test_quick_runs_roll_out_and_draw(variant, tmp_path):
  config = configs.get_config(variant)
  lines = []
  final = task.run(config, str(tmp_path), log=lines.append)
  assert np.isfinite(final["test/mse"])
  assert any(line.startswith("rollout position mse at step 10:") for line in lines)
  saved = np.load(tmp_path / "rollout.npz")
  assert saved["errors"].shape == (config.data.steps - config.data.history,)
  assert (tmp_path / "rollout.png").stat().st_size > 10_000
