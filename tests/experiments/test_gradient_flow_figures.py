"""experiments/gradient_flow_figures.py: the data behind each figure behaves as theory says."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl import flags

from experiments import gradient_flow_figures as figures
from seqjax import cells
from seqjax import init as initializers


def _norms(recurrent_scale, *, hidden_size=16, length=30, input_scale=0.01, seed=0):
  """gradient_norms of a tanh RNN with orthogonal recurrent weights times recurrent_scale."""
  cell = cells.rnn(hidden_size, recurrent_init=initializers.orthogonal(recurrent_scale))
  params = cell.init(jax.random.PRNGKey(seed), 3)
  xs = input_scale * jax.random.normal(jax.random.PRNGKey(seed + 1), (4, length, 3))
  readout = jax.random.normal(jax.random.PRNGKey(seed + 2), (hidden_size,))
  return figures.gradient_norms(cell, params, xs, lambda ys: jnp.sum(ys[:, -1] @ readout))


def test_tiny_recurrent_weights_make_the_gradient_vanish_step_by_step():
  # J_t = diag(1 - h_t^2) W_h^T with W_h = 0.1 * orthogonal: each step back
  # multiplies ||dL/dh|| by 0.1 (h stays near 0, so tanh' is about 1).
  curve = _norms(0.1, length=20)
  assert curve.shape == (20,)
  assert np.all(np.diff(curve) < 0), curve
  np.testing.assert_allclose(np.diff(curve), -1.0, atol=0.05)


def test_orthogonal_radius_one_keeps_the_gradient_where_half_loses_it():
  # Small inputs keep tanh in its linear range: an orthogonal W_h preserves
  # the gradient's norm, W_h = 0.5 * orthogonal halves it every step.
  length = 30
  one, half = _norms(1.0, length=length), _norms(0.5, length=length)
  drop_one, drop_half = one[0] - one[-1], half[0] - half[-1]
  assert abs(drop_one) < 0.05, one
  np.testing.assert_allclose(drop_half / (length - 1), math.log10(2.0), rtol=0.02)
  assert drop_half > 100 * max(drop_one, 0.01)


def test_cliff_has_a_jump_and_clipping_bounds_the_steps():
  data = figures.cliff_data(grid=21, line_points=401)
  loss = data["line_loss"]
  assert np.all(np.isfinite(loss)) and loss.min() > 0
  assert loss.max() / loss.min() > 1e3                 # orders of magnitude along the line
  # ... and the loss falls by orders of magnitude between two neighbouring
  # points (0.01 apart in b), where it elsewhere changes by a fraction of a percent.
  jumps = np.abs(np.diff(np.log10(loss)))
  assert jumps.max() > 2 and np.median(jumps) < 0.01, (jumps.max(), np.median(jumps))
  assert data["line_grad"].shape == loss.shape
  assert data["surface"].shape == (21, 21)
  bound = float(data["learning_rate"] * data["threshold"])
  for where in ("line", "plane"):
    clipped = np.linalg.norm(data[f"{where}_clipped_steps"], axis=-1)
    plain = np.linalg.norm(data[f"{where}_plain_steps"], axis=-1)
    assert clipped.max() <= bound * (1 + 1e-5), (where, clipped.max())
    assert plain.max() > 100 * bound, (where, plain.max())   # thrown off the cliff
    points = data[f"{where}_clipped_points"]
    assert points.shape == (len(clipped) + 1, 1 if where == "line" else 2)
    np.testing.assert_array_equal(points[0], data[f"{where}_plain_points"][0])


@pytest.mark.parametrize("input_scaling", [0.0, 0.1])
def test_esn_lyapunov_sign_follows_the_spectral_radius(input_scaling):
  # Autonomous (from a random state) or driven by a small input, the 0.8
  # reservoir contracts at about log 0.8 per step; the 1.5 one is chaotic
  # (measured +0.035 autonomous, +0.046 driven at this seed, H=200).
  stable = figures.esn_lyapunov(0.8, hidden_size=200, steps=600, warmup=200, num=1,
                                input_scaling=input_scaling)
  chaotic = figures.esn_lyapunov(1.5, hidden_size=200, steps=600, warmup=200, num=1,
                                 input_scaling=input_scaling)
  assert -0.3 < stable[0] < math.log(0.8) + 0.03, stable
  assert chaotic[0] > 0.01, chaotic


def test_training_moves_trainable_params_and_keeps_frozen_ones():
  cell = cells.leaky(4, timescales="sampled", tau_range=(10.0, 100.0))
  params = figures.init_params(cell, jax.random.PRNGKey(0), "adding")
  trained, losses = figures.train(cell, params, "adding", steps=2, batch_size=4, length=10)
  assert losses.shape == (2,) and np.all(np.isfinite(losses))
  np.testing.assert_array_equal(trained["cell"]["frozen"]["tau"], params["cell"]["frozen"]["tau"])
  assert not np.allclose(trained["cell"]["w_h"], params["cell"]["w_h"])
  assert not np.allclose(trained["head"]["w"], params["head"]["w"])


def test_main_quick_writes_three_pngs(tmp_path):
  flag_values = flags.FlagValues()
  figures.define_flags(flag_values)
  flag_values(["gradient_flow_figures", f"--out_dir={tmp_path}", "--quick", "--train_steps=1"])
  figures.main(["gradient_flow_figures"], flag_values)
  for name in ("gradient_norms.png", "cliff.png", "spectra.png"):
    data = (tmp_path / name).read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 10_000, name
