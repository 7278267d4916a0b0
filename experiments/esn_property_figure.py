r"""The echo-state-property figure: spectral radius 0.8 forgets the initial state, 1.5 does not.

One sparse reservoir (leak rate 0.4) is rescaled to spectral radius 0.8 and
1.5 and driven by the same small quasi-periodic input from several random
initial states. Left: a few units' trajectories (one line per initial state);
right: the distance between every pair of runs over time, log scale
(``seqjax.reservoir.diagnostics.state_distance``). At 0.8 the runs merge
(the state echoes the input alone); at 1.5 (effective radius
``(1 - a) + a * 1.5 > 1``) they settle on different attractors and stay apart.

  python -m experiments.esn_property_figure --workdir=/tmp/esn_property
  # writes /tmp/esn_property/esn_property.png and prints the final distances
"""

from __future__ import annotations

import argparse
import itertools
import os
from typing import Sequence

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

matplotlib.use("Agg")  # headless: the figure is written to a file
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

from seqjax.cells.esn import esn  # noqa: E402
from seqjax.reservoir.diagnostics import effective_spectral_radius, state_distance  # noqa: E402
from seqjax.scan import unroll  # noqa: E402
from seqjax.types import FROZEN  # noqa: E402

RADII = (0.8, 1.5)


def _input(steps: int) -> np.ndarray:
  """The shared drive: two incommensurate sines, (T, 1)."""
  t = np.arange(steps)
  return (np.sin(2 * np.pi * t / 40) + 0.5 * np.sin(2 * np.pi * t / 17)).astype(
      np.float32)[:, None]


def run(workdir: str, *, hidden_size: int = 200, steps: int = 600, num_states: int = 5,
        leak_rate: float = 0.4, input_scaling: float = 0.05, seed: int = 0,
        units: Sequence[int] = (0, 1, 2)) -> dict[float, np.ndarray]:
  """Draws the figure into ``workdir/esn_property.png``.

  Returns:
    spectral radius -> (num_states * (num_states - 1) / 2,) final distances
    between every pair of runs.
  """
  os.makedirs(workdir, exist_ok=True)
  inputs = jnp.asarray(_input(steps))
  starts = jax.random.uniform(jax.random.PRNGKey(seed + 1000), (num_states, hidden_size),
                              jnp.float32, -1.0, 1.0)
  pairs = list(itertools.combinations(range(num_states), 2))
  fig, axes = plt.subplots(len(RADII), len(units) + 1, figsize=(4 * (len(units) + 1), 6.5),
                           sharex=True, constrained_layout=True)
  # One reservoir, drawn at spectral radius 1 and rescaled per row (the cell's
  # step does not depend on the radius it was built with), so each jitted
  # function below compiles once.
  cell = esn(hidden_size, spectral_radius=1.0, leak_rate=leak_rate,
             input_scaling=input_scaling)
  unit_params = cell.init(jax.random.PRNGKey(seed), 1)
  batched_inputs = jnp.broadcast_to(inputs, (num_states, steps, 1))
  trajectories = jax.jit(lambda params: unroll(cell, params, batched_inputs, starts)[1])
  first, second = (np.array(side) for side in zip(*pairs))
  final = {}
  for row, radius in enumerate(RADII):
    frozen = unit_params[FROZEN]
    params = {FROZEN: {**frozen, "w_rec": radius * frozen["w_rec"]}}
    effective = float(effective_spectral_radius(params, leak_rate))
    states = np.asarray(trajectories(params))  # (num_states, T, H)
    for column, unit in enumerate(units):
      ax = axes[row, column]
      ax.plot(states[:, :, unit].T, lw=1)
      ax.set_title(f"radius {radius}: unit {unit}")
      ax.set_ylim(-1, 1)
      ax.set_ylabel("h")
    distances = np.asarray(state_distance(
        cell, params, jnp.broadcast_to(inputs, (len(pairs), steps, 1)),
        starts[first], starts[second]))  # (pairs, T)
    final[radius] = distances[:, -1]
    ax = axes[row, -1]
    # Distances that reach exactly 0 in float32 are drawn at the floor.
    ax.semilogy(np.maximum(distances.T, 1e-12), lw=1)
    ax.axhline(1e-6, color="k", ls=":", lw=1)
    ax.set_ylim(1e-12, 1e2)
    ax.set_title(f"radius {radius}: distance of each pair\n(effective radius {effective:.2f})")
  for ax in axes[-1]:
    ax.set_xlabel("step t")
  fig.suptitle(f"Echo-state property: leak rate {leak_rate}, H={hidden_size}, "
               f"{num_states} initial states, the same input")
  path = os.path.join(workdir, "esn_property.png")
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return final


def main(argv: Sequence[str] | None = None) -> dict[float, np.ndarray]:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--workdir", required=True, help="where esn_property.png is written")
  parser.add_argument("--hidden_size", type=int, default=200)
  parser.add_argument("--steps", type=int, default=600)
  parser.add_argument("--num_states", type=int, default=5)
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args(argv)
  final = run(args.workdir, hidden_size=args.hidden_size, steps=args.steps,
              num_states=args.num_states, seed=args.seed)
  for radius, distances in final.items():
    print(f"spectral radius {radius}: final pairwise distances "
          f"min {distances.min():.3g}, max {distances.max():.3g}")
  print(f"wrote {os.path.join(args.workdir, 'esn_property.png')}")
  return final


if __name__ == "__main__":
  main()
