r"""End-to-end demo: an LSTM learns the adding problem and prints its loss falling.

The adding problem (Hochreiter & Schmidhuber 1997): each step carries a value
in U(0, 1) and a marker; exactly two steps are marked and the target is the sum
of their values. Predicting the mean of the target (1.0) gives MSE ~0.167; a
model that solves the task drives the MSE towards 0.

  python -m experiments.demo                      # ~1 minute on 2 CPU cores
  python -m experiments.demo --cell=gru --length=100 --steps=3000
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import app, flags, logging

import seqjax

CELLS = {
    "lstm": lambda h: seqjax.cells.lstm(h),
    "gru": lambda h: seqjax.cells.gru(h),
    "rnn": lambda h: seqjax.cells.rnn(h),
    "min_gru": lambda h: seqjax.cells.min_gru(h),
}

_CELL = flags.DEFINE_enum("cell", "lstm", list(CELLS), "Recurrent cell.")
_LENGTH = flags.DEFINE_integer("length", 50, "Sequence length T.")
_HIDDEN = flags.DEFINE_integer("hidden_size", 64, "Hidden units H.")
_STEPS = flags.DEFINE_integer("steps", 1200, "Training steps.")
_BATCH = flags.DEFINE_integer("batch_size", 64, "Batch size B.")
_SEED = flags.DEFINE_integer("seed", 0, "Random seed.")


def adding_batch(rng: np.random.Generator, batch_size: int, length: int):
  """Returns inputs (B, T, 2) and targets (B,) of the adding problem."""
  values = rng.uniform(size=(batch_size, length))
  markers = np.zeros((batch_size, length))
  for row in range(batch_size):
    markers[row, rng.choice(length, size=2, replace=False)] = 1.0
  xs = np.stack([values, markers], axis=-1).astype(np.float32)
  return xs, (values * markers).sum(axis=1).astype(np.float32)


def train(cell_name: str = "lstm", length: int = 50, hidden_size: int = 64,
          steps: int = 1200, batch_size: int = 64, seed: int = 0,
          log_every: int = 100, log=print) -> list[tuple[int, float]]:
  """Trains ``cell_name`` on the adding problem; returns [(step, test MSE)]."""
  cell = CELLS[cell_name](hidden_size)
  key_cell, key_out = jax.random.split(jax.random.PRNGKey(seed))
  params = {
      "cell": cell.init(key_cell, 2),
      "w": jax.random.normal(key_out, (cell.output_size,)) / np.sqrt(cell.output_size),
      "b": jnp.ones(()),
  }

  def loss_fn(params, xs, ys):
    _, hs = seqjax.unroll(cell, params["cell"], xs)
    prediction = hs[:, -1] @ params["w"] + params["b"]
    return jnp.mean((prediction - ys) ** 2)

  optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(optax.cosine_decay_schedule(3e-3, steps, alpha=0.1)))
  opt_state = optimizer.init(params)

  @jax.jit
  def train_step(params, opt_state, xs, ys):
    loss, grads = jax.value_and_grad(loss_fn)(params, xs, ys)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  rng = np.random.default_rng(seed)
  test_xs, test_ys = adding_batch(rng, 1000, length)
  evaluate = jax.jit(loss_fn)
  log(f"seqjax demo: {cell.name} on the adding problem, T={length}; "
      f"predicting the mean scores MSE {np.var(test_ys):.3f} on the test batch")
  history = []
  start = time.perf_counter()
  for step in range(1, steps + 1):
    xs, ys = adding_batch(rng, batch_size, length)
    params, opt_state, loss = train_step(params, opt_state, xs, ys)
    if step % log_every == 0 or step in (1, steps):
      history.append((step, float(evaluate(params, test_xs, test_ys))))
      log(f"step {step:5d}  train MSE {float(loss):.4f}  test MSE {history[-1][1]:.4f}  "
          f"({time.perf_counter() - start:.0f} s)")
  log(f"final test MSE {history[-1][1]:.4f} (mean predictor: {np.var(test_ys):.3f})")
  return history


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # keep JAX's backend probing off the console
  train(_CELL.value, _LENGTH.value, _HIDDEN.value, _STEPS.value, _BATCH.value,
        _SEED.value, log=lambda line: print(line, flush=True))


if __name__ == "__main__":
  app.run(main)
