"""Learning to simulate springs: a graph network against an MLP, trained on one-step targets.

Data (``seqjax.data.springs``): N systems of P particles in the plane, each
with its own random springs (Hooke's law with rest lengths), masses and
stiffnesses, simulated frictionlessly with velocity Verlet. A model sees the
last C frames' velocities ``v_t = (x_t - x_{t-1}) / dt``, the masses and the
springs, and predicts every particle's acceleration
``a_t = (x_{t+1} - 2 x_t + x_{t-1}) / dt^2`` (Sanchez-Gonzalez et al. 2020).

Models (``config.model.kind``):

  gn    ``seqjax.graphs.encode_process_decode``: a node per particle (its C
        normalised velocities and its mass), an edge per spring and direction
        (the displacement x_s - x_r, its length, the rest length and the
        stiffness), M interaction-network steps, decoded to accelerations.
  mlp   one MLP over everything at once: every particle's node features and,
        for every pair of particles, the spring between them (zeros when
        there is none), the displacement and the distance.

Training (``noise_std`` > 0): the input positions get random-walk noise, and
the target becomes the acceleration that takes the noisy present to the true
next frame, ``(x_{t+1} - 2 x~_t + x~_{t-1}) / dt^2``, so that a model learns
to correct the errors its own rollouts make (Sanchez-Gonzalez et al.,
section 4). Loss: the mean squared error of accelerations normalised by the
training set's statistics.

``report`` rolls the trained model out on the test systems from frame C for
the rest of each trajectory (feeding back its own predictions through
``seqjax.data.springs.rollout_step``), logs the position error against time
beside the constant-velocity guess, and writes ``rollout.npz`` and
``rollout.png`` (error against time; one predicted rollout next to the truth)
into the workdir.
"""

from __future__ import annotations

import pathlib
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from experiments.tasks import training
from seqjax import graphs
from seqjax.data import springs
from seqjax.pytree import count_params
from seqjax.train.loop import Task

KINDS = ("gn", "mlp")
EDGE_FEATURES = 5   # displacement (2), distance, rest length, stiffness


def validate(config) -> None:
  training.validate(config)
  if config.model.kind not in KINDS:
    raise ValueError(f"config.model.kind must be one of {KINDS}, got {config.model.kind!r}")
  data = config.data
  training.positive_ints(config, *(f"data.{field}" for field in (
      "particles", "train_size", "test_size", "steps", "substeps", "history")))
  if data.steps <= data.history + 1:
    raise ValueError(f"config.data.steps must exceed config.data.history + 1 = "
                     f"{data.history + 1} (frames to predict from), got {data.steps}")
  if not data.dt > 0:
    raise ValueError(f"config.data.dt must be > 0, got {data.dt}")
  if not data.noise_std >= 0:
    raise ValueError(f"config.data.noise_std must be >= 0, got {data.noise_std}")


class Stats(NamedTuple):
  """Normalisation of the training set: velocity and acceleration mean/std (2,)."""
  velocity_mean: np.ndarray
  velocity_std: np.ndarray
  acceleration_mean: np.ndarray
  acceleration_std: np.ndarray


class Simulator(NamedTuple):
  """A learned simulator: ``init(key) -> params``, ``apply(params, window, system) -> (P, 2)``.

  ``window``: positions of the last C + 1 frames (C + 1, P, 2); ``system``: a
  ``seqjax.data.springs.SpringSystem``; the output is the normalised
  acceleration of every particle at the last frame.
  """
  init: object
  apply: object


def _dataset(data, seed: int, size: int) -> springs.SpringTrajectories:
  return springs.trajectories(
      seed, size, data.particles, data.steps, data.dt, substeps=data.substeps,
      num_springs=data.num_springs, mass_range=tuple(data.mass_range),
      stiffness_range=tuple(data.stiffness_range),
      rest_length_range=tuple(data.rest_length_range), position_std=data.position_std,
      speed=data.speed)


def _node_features(window, system, dt: float, stats: Stats):
  """(P, 2C + 1): the C normalised velocities of the window and the mass."""
  velocities = (window[1:] - window[:-1]) / dt
  velocities = (velocities - stats.velocity_mean) / stats.velocity_std
  p = window.shape[1]
  return jnp.concatenate([jnp.moveaxis(velocities, 0, 1).reshape(p, -1),
                          system.masses[:, None]], -1)


def _displacements(x, senders, receivers):
  d = x[senders] - x[receivers]
  return jnp.concatenate([d, jnp.linalg.norm(d, axis=-1, keepdims=True)], -1)


def build_model(config, stats: Stats) -> Simulator:
  data, m = config.data, config.model
  node_size = 2 * data.history + 1
  p = data.particles
  if m.kind == "gn":
    net = graphs.encode_process_decode(2, latent_size=m.latent_size, num_steps=m.message_steps,
                                       mlp_layers=m.mlp_layers)

    def apply(params, window, system):
      edges = springs.spring_edges(system)
      features = jnp.concatenate([_displacements(window[-1], edges.senders, edges.receivers),
                                  edges.features], -1)
      nodes = _node_features(window, system, data.dt, stats)
      graph = graphs.GraphsTuple(nodes=nodes, edges=features,
                                 senders=edges.senders, receivers=edges.receivers, globals=None,
                                 n_node=jnp.array([p]), n_edge=jnp.array([features.shape[0]]))
      return net.apply(params, graph)

    return Simulator(lambda key: net.init(key, node_size, EDGE_FEATURES), apply)

  rows, cols = np.triu_indices(p, 1)
  pair_size = p * (p - 1) // 2
  net = graphs.mlp([m.latent_size] * m.mlp_layers + [2 * p])

  def apply(params, window, system):
    stiffness = jnp.zeros((p, p)).at[system.springs[:, 0], system.springs[:, 1]].add(
        system.stiffness)
    rest = jnp.zeros((p, p)).at[system.springs[:, 0], system.springs[:, 1]].add(
        system.rest_lengths)
    stiffness, rest = stiffness + stiffness.T, rest + rest.T
    pairs = jnp.concatenate([_displacements(window[-1], rows, cols),
                             rest[rows, cols][:, None], stiffness[rows, cols][:, None]], -1)
    nodes = _node_features(window, system, data.dt, stats)
    x = jnp.concatenate([nodes.reshape(-1), pairs.reshape(-1)])
    return net.apply(params, x).reshape(p, 2)

  return Simulator(lambda key: net.init(key, p * node_size + pair_size * EDGE_FEATURES), apply)


def _stats(train: springs.SpringTrajectories, dt: float) -> Stats:
  fd = springs.finite_difference_targets(train.positions, dt)
  v = np.asarray(fd.velocities).reshape(-1, 2)
  a = np.asarray(fd.accelerations).reshape(-1, 2)
  return Stats(v.mean(0), v.std(0) + 1e-8, a.mean(0), a.std(0) + 1e-8)


def _system(batch) -> springs.SpringSystem:
  return springs.SpringSystem(batch["masses"], batch["springs"], batch["rest_lengths"],
                              batch["stiffness"], batch["damping"], batch["box"])


def _examples(trajectories, rng: np.random.Generator, count: int, history: int) -> dict:
  """``count`` (trajectory, frame) samples: windows of C + 1 frames and the next frame."""
  n, frames = trajectories.positions.shape[:2]
  which = rng.integers(n, size=count)
  start = rng.integers(frames - history - 1, size=count)
  index = start[:, None] + np.arange(history + 2)
  window = trajectories.positions[which[:, None], index]
  system = trajectories.system
  return {"window": window[:, :-1], "next": window[:, -1],
          "masses": system.masses[which], "springs": system.springs[which],
          "rest_lengths": system.rest_lengths[which], "stiffness": system.stiffness[which],
          "damping": system.damping[which], "box": system.box[which]}


def build(config, workdir):
  data = config.data
  train = _dataset(data, config.seed, data.train_size)
  held = {"validation": _dataset(data, config.seed + 10**6, data.test_size),
          "test": _dataset(data, config.seed + 2 * 10**6, data.test_size)}
  stats = _stats(train, data.dt)
  model = build_model(config, stats)
  a_mean, a_std = jnp.asarray(stats.acceleration_mean), jnp.asarray(stats.acceleration_std)

  def loss_fn(params, batch, carry, rng, training):
    window, nxt = batch["window"], batch["next"]
    if training and data.noise_std > 0:
      steps = window.shape[1]
      noise = jax.random.normal(rng, window.shape) * (data.noise_std / np.sqrt(steps))
      window = window + jnp.cumsum(noise, axis=1)
    target = (nxt - 2 * window[:, -1] + window[:, -2]) / data.dt**2
    target = (target - a_mean) / a_std
    predicted = jax.vmap(model.apply, (None, 0, 0))(params, window, _system(batch))
    weight = batch["weight"][:, None, None]
    total = jnp.sum(jnp.square(predicted - target) * weight)
    count = jnp.sum(weight) * target.shape[1] * 2
    return total / count, (carry, {"se_sum": total, "count": count})

  def train_batch(step):
    batch = _examples(train, np.random.default_rng([config.seed, step]), config.batch_size,
                      data.history)
    return {**batch, "weight": np.ones(config.batch_size, np.float32)}

  def held_out(split):
    examples = _examples(held[split], np.random.default_rng([config.seed, split == "test"]),
                         data.eval_examples, data.history)
    return training.fixed_batches(examples, config.batch_size)

  task = Task(
      init_params=model.init, init_carry=None, loss_fn=loss_fn, train_batch=train_batch,
      eval_batches={split: held_out(split) for split in held},
      summarize=lambda s: {"mse": s["se_sum"] / max(s["count"], 1.0)},
      tokens_per_batch=config.batch_size, eval_batch_size=config.batch_size,
      progress_metrics=("loss",))
  return task, (model, stats, held["test"], workdir)


def run(config, workdir, log=print) -> dict:
  """Trains and evaluates (see ``experiments.tasks``)."""
  return training.run(config, workdir, build, report, log)


def rollout(model: Simulator, params, stats: Stats, trajectories, config, *,
            constant_velocity: bool = False) -> np.ndarray:
  """Positions (N, K, P, 2) of the model's rollouts from frame C, K = steps - C.

  Each step feeds the model its own previous predictions; the first window
  is the true frames 0..C. ``constant_velocity`` replaces the model by a = 0.
  """
  data = config.data
  a_mean, a_std = jnp.asarray(stats.acceleration_mean), jnp.asarray(stats.acceleration_std)
  frames = data.steps - data.history

  def one(positions, system):
    def step(window, _):
      if constant_velocity:
        acceleration = jnp.zeros_like(window[-1])
      else:
        acceleration = model.apply(params, window, system) * a_std + a_mean
      nxt = springs.rollout_step(window[-1], window[-2], acceleration, data.dt)
      return jnp.concatenate([window[1:], nxt[None]]), nxt

    _, out = jax.lax.scan(step, positions[:data.history + 1], None, length=frames)
    return out

  fn = jax.jit(jax.vmap(one))
  return np.asarray(fn(jnp.asarray(trajectories.positions),
                       jax.tree_util.tree_map(jnp.asarray, trajectories.system)))


def rollout_errors(predicted: np.ndarray, trajectories, history: int) -> np.ndarray:
  """(K,) mean squared position error per rollout step, over systems and particles."""
  truth = trajectories.positions[:, history + 1:]
  return np.mean(np.square(predicted - truth), axis=(0, 2, 3))


def report(config, final, params, extras, log=print) -> None:
  model, stats, test, workdir = extras
  data = config.data
  log(f"final: springs, {config.model.kind}: test one-step mse {final['test/mse']:.4g} "
      f"(normalised accelerations; validation {final['validation/mse']:.4g}); "
      f"{count_params(params)} parameters")
  predicted = rollout(model, params, stats, test, config)
  errors = rollout_errors(predicted, test, data.history)
  still = rollout_errors(rollout(model, params, stats, test, config, constant_velocity=True),
                         test, data.history)
  marks = [k for k in (10, 50, 100, 200, 400) if k <= len(errors)]
  log("rollout position mse at step " + ", ".join(
      f"{k}: {errors[k - 1]:.3g} (constant velocity {still[k - 1]:.3g})" for k in marks))
  if workdir:
    workdir = pathlib.Path(workdir)
    np.savez(workdir / "rollout.npz", errors=errors, constant_velocity=still,
             predicted=predicted[0], truth=test.positions[0, data.history + 1:],
             start=test.positions[0, :data.history + 1], springs=test.system.springs[0],
             dt=data.dt)
    draw_rollout(workdir / "rollout.npz", workdir / "rollout.png", config.model.kind)


def draw_rollout(npz_path, png_path, name: str) -> None:
  """Error against time and one rollout beside the truth, from ``rollout.npz``."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  saved = np.load(npz_path)
  fig, (ax, truth_ax, model_ax) = plt.subplots(1, 3, figsize=(13, 4))
  steps = np.arange(1, len(saved["errors"]) + 1)
  ax.semilogy(steps, saved["errors"], label=name)
  ax.semilogy(steps, saved["constant_velocity"], "--", color="gray", label="constant velocity")
  ax.set(xlabel="rollout step", ylabel="position mse", title="rollout error")
  ax.legend()
  for axis, key, title in ((truth_ax, "truth", "ground truth"), (model_ax, "predicted", name)):
    draw_paths(axis, saved[key], saved["springs"])
    axis.set_title(title)
  both = np.concatenate([saved["truth"], saved["predicted"]]).reshape(-1, 2)
  low, high = np.nanmin(both, 0), np.nanmax(both, 0)
  middle, half = (low + high) / 2, max(high - low) / 2 * 1.05 + 1e-6
  for axis in (truth_ax, model_ax):
    axis.set_xlim(middle[0] - half, middle[0] + half)
    axis.set_ylim(middle[1] - half, middle[1] + half)
    axis.set_aspect("equal")
  fig.tight_layout()
  fig.savefig(png_path, dpi=110)
  plt.close(fig)


def draw_paths(ax, positions: np.ndarray, spring_pairs: np.ndarray) -> None:
  """Particle paths (K, P, 2) on matplotlib axes ``ax``; the springs (S, 2) at the last frame."""
  for p in range(positions.shape[1]):
    line, = ax.plot(positions[:, p, 0], positions[:, p, 1], lw=1)
    ax.plot(positions[-1, p, 0], positions[-1, p, 1], "o", color=line.get_color())
  for i, j in spring_pairs:
    ax.plot(positions[-1, [i, j], 0], positions[-1, [i, j], 1], color="k", lw=0.6, alpha=0.5)


def baseline(config) -> tuple[str, float]:
  """Predicting the mean acceleration: a normalised mse of 1."""
  del config
  return "mean acceleration", 1.0
