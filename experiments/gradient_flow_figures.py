r"""Gradient flow through time: vanishing gradients, the exploding-gradient cliff, Jacobian spectra.

Three figures, written to ``--out_dir``:

* ``gradient_norms.png``, the vanishing-gradient picture: the mean over a
  batch of ``log10 ||dL/ds_t||`` against the distance ``T - 1 - t`` from the
  last step, where the loss is read (``seqjax.diagnostics.hidden_gradient_norms``,
  one backward pass by the zero-perturbation trick; ``s`` is the whole carry:
  ``h`` for the Elman RNN, GRU and leaky units, ``[h; c]`` for the LSTM,
  ``h`` and the delay line for the delayed RNN). One curve per recurrent
  model: tanh RNNs with orthogonal and with Gaussian recurrent weights scaled
  to spectral radius 0.9 / 1.0 / 1.1, the LSTM with forget-gate bias 0 and 1,
  the GRU, leaky units with timescales of 10 to 100 steps and an RNN with
  delay paths (skip connections through time); at initialisation and, with
  ``--train_steps > 0``, after a brief Adam training on the adding problem (or
  ``--task``) of ``seqjax.data.pathological``.
* ``cliff.png``, the exploding-gradient cliff of Pascanu, Mikolov & Bengio
  (2013), their Figure 6: the single-unit recurrence
  ``x_t = w sigmoid(x_{t-1}) + b``, ``x_0 = 0.5``, 50 steps, loss
  ``(x_50 - 0.7)^2``. Where ``b`` crosses a bifurcation the state ends on the
  other attractor and the loss drops by orders of magnitude within a sliver of
  parameter space. Left: the loss along ``b`` (``w`` fixed), with the
  iterates of plain gradient descent (one lands on the cliff face and is thrown
  far away) and of gradient descent with the gradient's norm clipped (its
  steps are bounded, so it crosses the cliff and stays in the valley). Right:
  the loss surface over ``(w, b)`` with both trajectories.
* ``spectra.png``: the singular values of the step Jacobians
  ``J_t = ds_t/ds_{t-1}`` along a trajectory (``step_jacobians``,
  ``singular_values``) and the Lyapunov spectrum (``lyapunov_exponents``) of
  the tanh RNN (orthogonal, radius 1) and the LSTM from the first figure
  (trained when ``--train_steps > 0``) driven by the task's inputs, and of
  echo-state reservoirs (``seqjax.cells.esn``) at spectral radius 0.8 and
  1.5 driven by a small input: at 0.8 every exponent is below 0 (about
  ``log 0.8``: perturbations and gradients die out), at 1.5 the largest is
  above 0 (chaos: they grow).

  python -m experiments.gradient_flow_figures --out_dir=/tmp/gradient_flow
  python -m experiments.gradient_flow_figures --out_dir=/tmp/gradient_flow --train_steps=0
  python -m experiments.gradient_flow_figures --out_dir=/tmp/gf_quick --quick  # seconds

Every figure's numbers come from a function that returns arrays
(``gradient_norm_curves``, ``cliff_data``, ``spectra_data``); the ``draw_*``
functions only draw them.

References:
  Bengio, Simard & Frasconi 1994, "Learning long-term dependencies with
  gradient descent is difficult", IEEE Trans. Neural Networks 5(2).
  Pascanu, Mikolov & Bengio 2013, "On the difficulty of training recurrent
  neural networks", https://arxiv.org/abs/1211.5063
  Jaeger 2001, "The echo state approach to analysing and training recurrent
  neural networks", GMD Report 148.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import optax
from absl import app, flags, logging

matplotlib.use("Agg")  # headless: the figures are written to files
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

from seqjax import cells, diagnostics  # noqa: E402
from seqjax import init as initializers  # noqa: E402
from seqjax.data import pathological  # noqa: E402
from seqjax.scan import unroll  # noqa: E402
from seqjax.types import Cell, keep_frozen  # noqa: E402

#: The tasks a model can be trained on: one target per sequence, read at the last step.
TASKS = ("adding", "multiplication", "temporal_order", "temporal_order_3bit")
#: The spectral radii of the tanh RNNs of the first figure.
RADII = (0.9, 1.0, 1.1)
#: The reservoirs' spectral radii of the third figure.
ESN_RADII = (0.8, 1.5)
#: The models of the third figure taken from the first.
SPECTRA_MODELS = ("tanh, orthogonal, radius 1.0", "LSTM, forget bias 1")


class Sizes(NamedTuple):
  """How big each experiment is (``QUICK`` for a smoke run)."""

  hidden_size: int = 32       # H of the models of the first figure
  batch_size: int = 32        # sequences averaged over, and the training batch
  esn_size: int = 200         # reservoir units
  esn_steps: int = 800        # driven steps for the reservoirs' Lyapunov exponents
  warmup: int = 200           # steps before the exponents are averaged
  jacobian_steps: int = 200   # steps whose Jacobians' singular values are drawn
  grid: int = 161             # cliff surface: grid points per axis
  line_points: int = 2001     # cliff line: points along b
  max_length: int = 100_000   # cap on --length
  max_train_steps: int = 100_000


QUICK = Sizes(hidden_size=8, batch_size=4, esn_size=40, esn_steps=120, warmup=40,
              jacobian_steps=30, grid=41, line_points=401, max_length=20, max_train_steps=3)


# --------------------------------------------------------------------------
# The models and the task.


def model_cells(hidden_size: int) -> dict[str, Cell]:
  """The recurrent models of the first figure, by label, in drawing order."""
  models = {}
  for radius in RADII:
    models[f"tanh, orthogonal, radius {radius}"] = cells.rnn(
        hidden_size, recurrent_init=initializers.orthogonal(radius))
  for radius in RADII:
    models[f"tanh, Gaussian, radius {radius}"] = cells.rnn(
        hidden_size, recurrent_init=initializers.spectral(radius))
  models["LSTM, forget bias 0"] = cells.lstm(hidden_size, forget_bias=0.0)
  models["LSTM, forget bias 1"] = cells.lstm(hidden_size, forget_bias=1.0)
  models["GRU"] = cells.gru(hidden_size)
  models["leaky tanh, timescales 10-100"] = cells.leaky(
      hidden_size, timescales="sampled", tau_range=(10.0, 100.0))
  models["tanh, orthogonal 0.9, + delays 4, 16"] = cells.delayed(
      cells.rnn(hidden_size, recurrent_init=initializers.orthogonal(0.9)), (4, 16))
  return models


def init_params(cell: Cell, key: jax.Array, task: str) -> dict:
  """``{"cell": ..., "head": {"w": (O, K), "b": (K,)}}``, the head reading the last output."""
  spec = pathological.SPECS[task]
  k_cell, k_head = jax.random.split(key)
  w = jax.random.normal(k_head, (cell.output_size, spec.output_size), jnp.float32)
  return {"cell": cell.init(k_cell, spec.input_size),
          "head": {"w": w / np.sqrt(cell.output_size).astype(np.float32),
                   "b": jnp.zeros((spec.output_size,), jnp.float32)}}


def task_batch(task: str, seed: int, batch_size: int, length: int) -> tuple[jax.Array, jax.Array]:
  """A batch of ``task``: inputs (B, T, D) float32 and targets (B,)."""
  inputs, targets = pathological.TASKS[task](np.random.default_rng(seed), batch_size, length)
  return jnp.asarray(inputs), jnp.asarray(targets)


def task_loss(task: str, head: dict, ys: jax.Array, targets: jax.Array) -> jax.Array:
  """The task's loss (a mean over the batch) of the head applied to the last output ys[:, -1]."""
  out = ys[:, -1] @ head["w"] + head["b"]
  if pathological.SPECS[task].loss == "squared_error":
    return jnp.mean((out[:, 0] - targets) ** 2)
  log_probs = jax.nn.log_softmax(out)
  return -jnp.mean(jnp.take_along_axis(log_probs, targets[:, None], axis=1))


def train(cell: Cell, params: dict, task: str, *, steps: int, batch_size: int, length: int,
          learning_rate: float = 3e-3, seed: int = 0) -> tuple[dict, np.ndarray]:
  """``steps`` Adam updates (gradients clipped to global norm 1) on fresh batches of ``task``.

  Frozen parameters (the leaky units' timescales) stay fixed.

  Returns:
    The trained params and the training losses (steps,).
  """
  optimizer = keep_frozen(optax.chain(optax.clip_by_global_norm(1.0),
                                      optax.adam(learning_rate)))

  def loss_fn(p, xs, targets):
    _, ys = unroll(cell, p["cell"], xs)
    return task_loss(task, p["head"], ys, targets)

  @jax.jit
  def update(p, opt_state, xs, targets):
    loss, grads = jax.value_and_grad(loss_fn)(p, xs, targets)
    updates, opt_state = optimizer.update(grads, opt_state, p)
    return optax.apply_updates(p, updates), opt_state, loss

  losses = []
  # optax mixes dtypes on purpose (Adam's b1 ** count with an int count).
  with jax.numpy_dtype_promotion("standard"):
    opt_state = optimizer.init(params)
    for step in range(steps):
      xs, targets = task_batch(task, 1_000_000 * (seed + 1) + step, batch_size, length)
      params, opt_state, loss = update(params, opt_state, xs, targets)
      losses.append(float(loss))
  return params, np.asarray(losses, np.float32)


# --------------------------------------------------------------------------
# Figure 1: ||dL/ds_t|| against the distance from the loss.


def gradient_norms(cell: Cell, params: dict, xs: jax.Array,
                   loss_fn: Callable[[jax.Array], jax.Array]) -> np.ndarray:
  """Mean over the batch of ``log10 ||dL/ds_t||``, indexed by the distance ``T - 1 - t``.

  Args:
    cell: the recurrent cell.
    params: the cell's params.
    xs: inputs (B, T, D).
    loss_fn: ``ys (B, T, O) -> scalar``, rows not interacting.

  Returns:
    (T,) float64: entry d is the batch mean of ``log10 ||dL/ds_{T-1-d}||``
    (s the whole carry). Zero norms (a state the loss does not depend on)
    count as 1e-30.
  """
  norms = diagnostics.hidden_gradient_norms(cell, params, xs, loss_fn, state="carry")
  logs = np.log10(np.maximum(np.asarray(norms, np.float64), 1e-30))  # (B, T)
  return logs.mean(axis=0)[::-1]


def gradient_norm_curves(models: dict[str, Cell], params: dict[str, dict], task: str, *,
                         batch_size: int, length: int, seed: int = 0) -> dict[str, np.ndarray]:
  """``gradient_norms`` of every model on one batch of ``task``, its loss ``task_loss``.

  Args:
    models: label -> cell.
    params: label -> ``{"cell": ..., "head": ...}`` (``init_params``).
    task: a name in ``TASKS``.
    batch_size, length: the batch's B and T.
    seed: the batch's seed.

  Returns:
    label -> (T,) mean ``log10 ||dL/ds_{T-1-d}||`` for d = 0..T-1.
  """
  xs, targets = task_batch(task, seed, batch_size, length)
  curves = {}
  for label, cell in models.items():
    head = params[label]["head"]
    curves[label] = gradient_norms(cell, params[label]["cell"], xs,
                                   lambda ys, head=head: task_loss(task, head, ys, targets))
  return curves


def _style(label: str) -> dict:
  """Colour and line style per model family."""
  shade = {"0.9": 0.45, "1.0": 0.7, "1.1": 0.95}
  if "delays" in label:
    return {"color": "tab:brown", "ls": ":", "lw": 2.5}
  if label.startswith("tanh, orthogonal"):
    return {"color": plt.cm.Reds(shade[label[-3:]]), "ls": "-"}
  if label.startswith("tanh, Gaussian"):
    return {"color": plt.cm.Blues(shade[label[-3:]]), "ls": "--"}
  if label.startswith("LSTM"):
    return {"color": plt.cm.Greens(0.5 if label.endswith("0") else 0.85), "ls": "-", "lw": 2}
  if label.startswith("GRU"):
    return {"color": "tab:purple", "ls": "-", "lw": 2}
  return {"color": "tab:orange", "ls": "-.", "lw": 2}  # leaky


def draw_gradient_norms(panels: Sequence[tuple[str, dict[str, np.ndarray]]], path: str, *,
                        title: str = "") -> None:
  """One panel per (title, curves): ``log10 ||dL/ds_t|| - log10 ||dL/ds_{T-1}||`` vs T - 1 - t."""
  fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 5), squeeze=False,
                           sharey=True, constrained_layout=True)
  for ax, (panel_title, curves) in zip(axes[0], panels):
    for label, curve in curves.items():
      ax.plot(np.arange(len(curve)), curve - curve[0], label=label, **_style(label))
    ax.axhline(0.0, color="k", lw=0.5)
    ax.set_xlabel("distance from the loss, T - 1 - t (steps)")
    ax.set_title(panel_title)
    ax.grid(alpha=0.3)
  axes[0, 0].set_ylabel("log10 ||dL/ds_t|| - log10 ||dL/ds_{T-1}||  (batch mean)")
  axes[0, -1].legend(fontsize=8, loc="lower left")
  if title:
    fig.suptitle(title)
  fig.savefig(path, dpi=110)
  plt.close(fig)


# --------------------------------------------------------------------------
# Figure 2: the cliff.


def pascanu_loss(w: jax.Array, b: jax.Array, *, steps: int = 50, x0: float = 0.5,
                 target: float = 0.7) -> jax.Array:
  """``(x_steps - target)^2`` for ``x_t = w sigmoid(x_{t-1}) + b`` from ``x_0 = x0``.

  Pascanu, Mikolov & Bengio (2013), Section 3.1 and Figure 6: a one-unit
  recurrent network whose loss has a cliff where ``(w, b)`` crosses a
  bifurcation of the map.
  """
  w = jnp.asarray(w, jnp.float32)
  b = jnp.asarray(b, jnp.float32)

  def body(x, _):
    return w * jax.nn.sigmoid(x) + b, None

  x, _ = jax.lax.scan(body, jnp.full(jnp.broadcast_shapes(w.shape, b.shape), x0, jnp.float32),
                      None, length=steps)
  return (x - target) ** 2


def _descend(grad_fn: Callable, start: jax.Array, learning_rate: float, threshold: float,
             num_updates: int, clip: bool) -> tuple[jax.Array, jax.Array]:
  """Gradient descent from ``start`` (P,): the iterates (num_updates + 1, P) and the steps."""

  def body(p, _):
    g = grad_fn(p)
    if clip:  # rescale the gradient to norm ``threshold`` when it is longer
      norm = jnp.sqrt(jnp.sum(g ** 2))
      g = g * jnp.minimum(1.0, threshold / jnp.maximum(norm, 1e-30))
    step = -learning_rate * g
    return p + step, (p + step, step)

  _, (points, steps) = jax.lax.scan(body, start, None, length=num_updates)
  return jnp.concatenate([start[None], points]), steps


def cliff_data(*, steps: int = 50, line_w: float = 4.5, b_range: tuple[float, float] = (-4.0, 0.0),
               w_range: tuple[float, float] = (3.0, 7.0), line_points: int = 2001,
               grid: int = 161, learning_rate: float = 0.02, threshold: float = 2.0,
               num_updates: int = 50, num_starts: int = 512) -> dict[str, np.ndarray]:
  """The loss of ``pascanu_loss`` along a line and over a plane, and descents across the cliff.

  Plain gradient descent lands on the cliff's face (a sliver of width ~4e-3
  in ``b`` at ``w = 4.5``, ~1e-4 at ``w = 5``) only from some starts: among
  ``num_starts`` starts spread along ``b`` over five clipped steps, the one
  whose plain run is the earliest to take a step at least half as long as the
  longest step of all runs is kept (ties: the longest step), and the clipped
  run starts from the same point.

  Args:
    steps: the recurrence's length.
    line_w: the fixed ``w`` of the line (a one-dimensional descent on ``b``).
    b_range, w_range: the plotted ranges.
    line_points, grid: points along the line, and per axis of the plane.
    learning_rate: the step size of both descents.
    threshold: the clipped descent rescales gradients longer than this to
      this norm, so its steps are at most ``learning_rate * threshold``.
    num_updates: descent steps.
    num_starts: starts tried (see above).

  Returns:
    ``b`` (line_points,), ``line_loss`` and ``line_grad`` (dL/db) along it;
    ``w_grid`` (grid,), ``b_grid`` (grid,), ``surface`` (grid, grid) with
    ``surface[i, j]`` the loss at ``(w_grid[j], b_grid[i])``; for the line
    (``line_*``, parameters ``(b,)``) and the plane (``plane_*``,
    parameters ``(w, b)``) and each of ``plain`` and ``clipped``: the
    iterates ``*_points`` (num_updates + 1, P), their losses ``*_loss`` and
    the steps ``*_steps`` (num_updates, P); ``learning_rate``, ``threshold``
    and ``line_w`` as 0-d arrays.
  """
  def loss(w, b):
    return pascanu_loss(w, b, steps=steps)

  b = jnp.linspace(*b_range, line_points, dtype=jnp.float32)
  line_loss, line_grad = jax.vmap(jax.value_and_grad(loss, argnums=1),
                                  in_axes=(None, 0))(jnp.float32(line_w), b)
  w_grid = jnp.linspace(*w_range, grid, dtype=jnp.float32)
  b_grid = jnp.linspace(*b_range, grid, dtype=jnp.float32)
  surface = jax.vmap(lambda bb: loss(w_grid, bb))(b_grid)

  out = {"b": b, "line_loss": line_loss, "line_grad": line_grad, "w_grid": w_grid,
         "b_grid": b_grid, "surface": surface}
  problems = {
      # On the line: descend on b alone, w = line_w, from the high side of the cliff.
      "line": (lambda p: jax.grad(loss, argnums=1)(jnp.float32(line_w), p[0])[None],
               jnp.asarray([b_range[0] + 0.1 * (b_range[1] - b_range[0])], jnp.float32),
               lambda p: loss(jnp.float32(line_w), p[0])),
      # On the plane: descend on (w, b) from the high side, away from the line.
      "plane": (lambda p: jnp.stack(jax.grad(loss, argnums=(0, 1))(p[0], p[1])),
                jnp.asarray([w_range[0] + 0.85 * (w_range[1] - w_range[0]),
                             b_range[0] + 0.05 * (b_range[1] - b_range[0])], jnp.float32),
                lambda p: loss(p[0], p[1])),
  }
  for name, (grad_fn, start, point_loss) in problems.items():
    # Starts spread along the last coordinate (b), over a few clipped steps.
    offsets = jnp.linspace(0.0, 5 * learning_rate * threshold, num_starts, dtype=jnp.float32)
    starts = start[None] + offsets[:, None] * jnp.eye(start.shape[0], dtype=jnp.float32)[-1]
    runs = jax.vmap(lambda s: _descend(grad_fn, s, learning_rate, threshold, num_updates,
                                       clip=False))(starts)
    lengths = jnp.sqrt(jnp.sum(runs[1] ** 2, axis=-1))  # (num_starts, num_updates)
    # The earliest to take a step at least half the longest of all; ties: the longest step.
    big = lengths >= 0.5 * jnp.max(lengths)
    first = jnp.where(jnp.any(big, axis=1), jnp.argmax(big, axis=1), num_updates)
    score = first.astype(jnp.float32) - jnp.max(lengths, axis=1) / (1.0 + jnp.max(lengths))
    start = starts[jnp.argmin(score)]
    for kind in ("plain", "clipped"):
      points, step = _descend(grad_fn, start, learning_rate, threshold, num_updates,
                              clip=kind == "clipped")
      out[f"{name}_{kind}_points"] = points
      out[f"{name}_{kind}_loss"] = jax.vmap(point_loss)(points)
      out[f"{name}_{kind}_steps"] = step
  out.update(learning_rate=learning_rate, threshold=threshold, line_w=line_w)
  return {k: np.asarray(v) for k, v in out.items()}


def _inside(points: np.ndarray, limits: Sequence[tuple[float, float]]) -> int:
  """How many leading iterates (points (K, P)) lie inside the plotted box, at least 1."""
  low = np.asarray([lo for lo, _ in limits])
  high = np.asarray([hi for _, hi in limits])
  outside = np.flatnonzero(np.any((points < low) | (points > high), axis=1))
  return int(outside[0]) if len(outside) and outside[0] > 0 else len(points)


def _draw_path(ax, xs: np.ndarray, ys: np.ndarray, count: int, color: str, label: str) -> None:
  """The first ``count`` iterates (xs[i], ys[i]) joined by arrows."""
  ax.plot(xs[:count], ys[:count], "o", color=color, ms=4, label=label, zorder=3)
  for i in range(count - 1):
    ax.annotate("", xy=(xs[i + 1], ys[i + 1]), xytext=(xs[i], ys[i]),
                arrowprops=dict(arrowstyle="->", color=color, lw=1.2), zorder=3)


def _thrown(ax, start: np.ndarray, end: np.ndarray, limits: Sequence[tuple[float, float]],
            where: str, color: str) -> None:
  """An arrow from ``start`` towards the off-plot ``end``, cut at the box, labelled."""
  direction = end - start
  with np.errstate(divide="ignore", invalid="ignore"):
    fractions = [((hi if d > 0 else lo) - s) / d for s, d, (lo, hi) in
                 zip(start, direction, limits) if d != 0]
  edge = start + min(min(fractions), 1.0) * 0.98 * direction
  ax.annotate("", xy=edge, xytext=start, zorder=4,
              arrowprops=dict(arrowstyle="->", color=color, lw=1.5, ls="--"))
  ax.annotate(where, xy=edge, xytext=(-6 if direction[0] > 0 else 6,
                                      -6 if direction[1] > 0 else 6),
              textcoords="offset points", ha="right" if direction[0] > 0 else "left",
              va="top" if direction[1] > 0 else "bottom", color=color, fontsize=8)


def draw_cliff(data: dict[str, np.ndarray], path: str) -> None:
  """The loss along b with both descents (left) and over (w, b) with both (right).

  A descent thrown out of the plotted range is drawn up to its last iterate
  inside, with a dashed arrow towards where it went.
  """
  lr, thr = float(data["learning_rate"]), float(data["threshold"])
  fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.2), constrained_layout=True)
  b = data["b"]
  floor = 1e-6
  left.semilogy(b, np.maximum(data["line_loss"], floor), color="k", lw=1.2, label="loss")
  b_limits = [(float(b[0]), float(b[-1]))]
  for kind, color in (("clipped", "tab:blue"), ("plain", "tab:red")):  # plain on top
    points = data[f"line_{kind}_points"]
    losses = np.maximum(data[f"line_{kind}_loss"], floor)
    steps = np.abs(data[f"line_{kind}_steps"][:, 0])
    what = (f"plain GD (largest step {steps.max():.3g})" if kind == "plain" else
            f"clipped GD, ||g|| <= {thr:g} (largest step {steps.max():.3g})")
    count = _inside(points, b_limits)
    _draw_path(left, points[:count, 0], losses[:count], count, color, what)
    if count < len(points):
      # On a log axis the arrow is drawn in (b, log10 loss) and placed in data coordinates.
      start = np.asarray([points[count - 1, 0], np.log10(losses[count - 1])])
      end = np.asarray([points[count, 0], np.log10(losses[count])])
      direction = end - start
      t = min(1.0, 0.98 * ((b_limits[0][1] if direction[0] > 0 else b_limits[0][0]) - start[0])
              / direction[0])
      edge = start + t * direction
      left.annotate("", xy=(edge[0], 10 ** edge[1]), xytext=(start[0], 10 ** start[1]),
                    arrowprops=dict(arrowstyle="->", color=color, lw=1.5, ls="--"), zorder=4)
      left.annotate(f"thrown to b = {points[count, 0]:.3g}\n(loss {losses[count]:.3g})",
                    xy=(edge[0], 10 ** edge[1]), xytext=(-4 if direction[0] > 0 else 4, 6),
                    textcoords="offset points", ha="right" if direction[0] > 0 else "left",
                    color=color, fontsize=8)
  left.set_xlim(*b_limits[0])
  left.set_xlabel("b")
  left.set_ylabel("loss (x_50 - 0.7)^2")
  left.set_title(f"along b at w = {float(data['line_w']):g}; learning rate {lr:g}")
  left.legend(fontsize=8, loc="lower left")

  w_grid, b_grid = data["w_grid"], data["b_grid"]
  image = right.pcolormesh(w_grid, b_grid, np.log10(np.maximum(data["surface"], floor)),
                           cmap="viridis", shading="auto")
  fig.colorbar(image, ax=right, label="log10 loss")
  right.axvline(float(data["line_w"]), color="w", ls=":", lw=1)
  limits = [(float(w_grid[0]), float(w_grid[-1])), (float(b_grid[0]), float(b_grid[-1]))]
  for kind, color in (("plain", "tab:red"), ("clipped", "w")):
    points = data[f"plane_{kind}_points"]
    count = _inside(points, limits)
    right.plot(points[:count, 0], points[:count, 1], "o-", color=color, ms=3, lw=1,
               label=f"{kind} GD" + ("" if kind == "plain" else f", ||g|| <= {thr:g}"))
    if count < len(points):
      _thrown(right, points[count - 1], points[count], limits,
              f"thrown to ({points[count, 0]:.3g}, {points[count, 1]:.3g})", color)
  right.set_xlim(*limits[0])
  right.set_ylim(*limits[1])
  right.set_xlabel("w")
  right.set_ylabel("b")
  right.set_title("x_t = w sigmoid(x_{t-1}) + b, 50 steps: the loss over (w, b)")
  right.legend(fontsize=8, loc="lower left")
  fig.suptitle("The exploding-gradient cliff (Pascanu, Mikolov & Bengio 2013, Figure 6)")
  fig.savefig(path, dpi=110)
  plt.close(fig)


# --------------------------------------------------------------------------
# Figure 3: step-Jacobian singular values and Lyapunov exponents.


def esn_system(radius: float, *, hidden_size: int, steps: int, seed: int = 0,
               input_scaling: float = 0.1) -> tuple[Cell, Any, jax.Array, jax.Array]:
  """A sparse echo-state reservoir (leak rate 1) at spectral ``radius``, and its drive.

  Returns:
    ``(cell, params, xs (steps, 1), carry (H,))``: the drive is two
    incommensurate sines (the reservoir sees them through ``w_in`` entries
    of at most ``input_scaling``), the initial state uniform in [-1, 1]
    (so that the 1.5 reservoir does not sit on its unstable fixed point 0).
  """
  cell = cells.esn(hidden_size, spectral_radius=radius, input_scaling=input_scaling)
  params = cell.init(jax.random.PRNGKey(seed), 1)
  t = np.arange(steps)
  xs = (np.sin(2 * np.pi * t / 40) + 0.5 * np.sin(2 * np.pi * t / 17)).astype(np.float32)
  carry = jax.random.uniform(jax.random.PRNGKey(seed + 1000), (hidden_size,), jnp.float32,
                             -1.0, 1.0)
  return cell, params, jnp.asarray(xs[:, None]), carry


def esn_lyapunov(radius: float, *, hidden_size: int = 200, steps: int = 600, warmup: int = 200,
                 num: Optional[int] = None, seed: int = 0, input_scaling: float = 0.1
                 ) -> np.ndarray:
  """The Lyapunov exponents (largest first) of ``esn_system(radius, ...)``."""
  cell, params, xs, carry = esn_system(radius, hidden_size=hidden_size, steps=steps, seed=seed,
                                       input_scaling=input_scaling)
  return np.asarray(diagnostics.lyapunov_exponents(cell, params, xs, carry=carry, num=num,
                                                   warmup=warmup))


def jacobian_spectrum(cell: Cell, params: Any, xs: jax.Array, *, carry: Any = None,
                      jacobian_steps: int, warmup: int) -> dict[str, np.ndarray]:
  """Singular values of the step Jacobians and the Lyapunov spectrum along one trajectory.

  Args:
    cell, params: the system.
    xs: its unbatched drive (T, D), T > warmup.
    carry: the initial carry (default the cell's).
    jacobian_steps: how many steps' Jacobians, the last ones of xs, to keep.
    warmup: steps before the Lyapunov exponents are averaged.

  Returns:
    ``singular_values`` (jacobian_steps, N), largest first, and ``lyapunov`` (N,).
  """
  start = cell.initial_carry(params, ()) if carry is None else carry
  # The Jacobians of the last ``jacobian_steps`` steps, from the state entering them.
  head = max(xs.shape[0] - jacobian_steps, 0)
  entering = unroll(cell, params, xs[:head], start)[0] if head else start
  jacobians = diagnostics.step_jacobians(cell, params, xs[head:], carry=entering)
  return {"singular_values": np.asarray(diagnostics.singular_values(jacobians)),
          "lyapunov": np.asarray(diagnostics.lyapunov_exponents(cell, params, xs, carry=start,
                                                                warmup=warmup))}


def spectra_data(models: dict[str, Cell], params: dict[str, dict], task: str, *, sizes: Sizes,
                 length: int, seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
  """``jacobian_spectrum`` of each model in ``SPECTRA_MODELS`` and of the reservoirs.

  The models are driven by one sequence of ``task`` of length ``max(length,
  esn_steps)`` from their zero carry; the reservoirs (``esn_system``) by their
  sines from a random carry.

  Returns:
    label -> ``{"singular_values": (S, N), "lyapunov": (N,)}``.
  """
  out = {}
  steps = max(length, sizes.esn_steps)
  warmup = min(sizes.warmup, steps // 4)
  xs, _ = task_batch(task, seed + 7, 1, steps)
  for label in SPECTRA_MODELS:
    out[label] = jacobian_spectrum(models[label], params[label]["cell"], xs[0],
                                   jacobian_steps=min(sizes.jacobian_steps, steps),
                                   warmup=warmup)
  for radius in ESN_RADII:
    cell, esn_params, drive, carry = esn_system(radius, hidden_size=sizes.esn_size,
                                                steps=sizes.esn_steps, seed=seed)
    out[f"ESN, radius {radius}"] = jacobian_spectrum(
        cell, esn_params, drive, carry=carry, jacobian_steps=sizes.jacobian_steps,
        warmup=sizes.warmup)
  return out


def draw_spectra(data: dict[str, dict[str, np.ndarray]], path: str, *, title: str = "") -> None:
  """Singular values of J_t (spread over t), sigma_1(J_t) along t, and the Lyapunov spectra."""
  colors = {SPECTRA_MODELS[0]: "tab:red", SPECTRA_MODELS[1]: "tab:green",
            f"ESN, radius {ESN_RADII[0]}": "tab:blue", f"ESN, radius {ESN_RADII[1]}": "tab:orange"}
  fig, (ax_sv, ax_top, ax_lyap) = plt.subplots(1, 3, figsize=(17, 5), constrained_layout=True)
  for label, values in data.items():
    color = colors.get(label)
    sv = np.log10(np.maximum(values["singular_values"], 1e-12))  # (S, N)
    index = (np.arange(sv.shape[1]) + 0.5) / sv.shape[1]
    low, mid, high = np.percentile(sv, [10, 50, 90], axis=0)
    ax_sv.plot(index, mid, color=color, label=f"{label} (N={sv.shape[1]})")
    ax_sv.fill_between(index, low, high, color=color, alpha=0.2, lw=0)
    ax_top.plot(np.arange(sv.shape[0]), sv[:, 0], color=color, lw=1, label=label)
    lyapunov = values["lyapunov"]
    index = (np.arange(len(lyapunov)) + 0.5) / len(lyapunov)
    ax_lyap.plot(index, np.maximum(lyapunov, -5.0), "o-", ms=2, lw=1, color=color,
                 label=f"{label}: lambda_1 = {lyapunov[0]:+.3f}")
  ax_sv.axhline(0.0, color="k", lw=0.5)
  ax_sv.set_xlabel("singular value index i / N")
  ax_sv.set_ylabel("log10 sigma_i(J_t): median over t, 10-90% band")
  ax_sv.set_title("singular values of the step Jacobians J_t = ds_t/ds_{t-1}")
  ax_sv.legend(fontsize=8)
  ax_top.axhline(0.0, color="k", lw=0.5)
  ax_top.set_xlabel("step along the trajectory")
  ax_top.set_ylabel("log10 sigma_1(J_t)")
  ax_top.set_title("the largest singular value along the trajectory")
  ax_lyap.axhline(0.0, color="k", lw=0.5)
  ax_lyap.set_xlabel("exponent index i / N")
  ax_lyap.set_ylabel("Lyapunov exponent lambda_i (per step; clipped at -5)")
  ax_lyap.set_title("Lyapunov spectra (QR method)")
  ax_lyap.legend(fontsize=8, loc="lower left")
  if title:
    fig.suptitle(title)
  fig.savefig(path, dpi=110)
  plt.close(fig)


# --------------------------------------------------------------------------
# The command line.


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """The command line (defined on demand, so that importing this module defines no flags)."""
  flags.DEFINE_string("out_dir", None, "Where gradient_norms.png, cliff.png and spectra.png go.",
                      flag_values=flag_values)
  flags.DEFINE_integer("train_steps", 300, "Adam steps on --task before the 'after training' "
                       "curves and spectra; 0 draws the models at initialisation only.",
                       lower_bound=0, flag_values=flag_values)
  flags.DEFINE_integer("length", 100, "Sequence length T of the task (>= 10).", lower_bound=10,
                       flag_values=flag_values)
  flags.DEFINE_enum("task", "adding", TASKS, "The task the models are trained and measured on.",
                    flag_values=flag_values)
  flags.DEFINE_float("learning_rate", 3e-3, "Adam's learning rate.", flag_values=flag_values)
  flags.DEFINE_integer("seed", 0, "Seed of the parameters and the batches.",
                       flag_values=flag_values)
  flags.DEFINE_bool("quick", False, f"A smoke run in seconds: sizes {QUICK._asdict()}, "
                    f"--length and --train_steps capped by them.", flag_values=flag_values)
  flags.mark_flag_as_required("out_dir", flag_values=flag_values)


def run(out_dir: str, *, train_steps: int = 300, length: int = 100, task: str = "adding",
        learning_rate: float = 3e-3, seed: int = 0, sizes: Sizes = Sizes(),
        log: Callable[[str], None] = print) -> dict[str, Any]:
  """Computes and draws the three figures into ``out_dir``.

  Returns:
    ``{"norms": {"initialisation": curves, "trained": curves or absent},
    "train_losses": label -> (train_steps,), "cliff": cliff_data(...),
    "spectra": spectra_data(...), "paths": [three PNG paths]}``.
  """
  os.makedirs(out_dir, exist_ok=True)
  length = min(length, sizes.max_length)
  train_steps = min(train_steps, sizes.max_train_steps)
  start = time.perf_counter()
  models = model_cells(sizes.hidden_size)
  keys = jax.random.split(jax.random.PRNGKey(seed), len(models))
  params = {label: init_params(cell, key, task)
            for (label, cell), key in zip(models.items(), keys)}
  norms = {"initialisation": gradient_norm_curves(models, params, task,
                                                  batch_size=sizes.batch_size, length=length,
                                                  seed=seed)}
  log(f"gradient norms at initialisation ({time.perf_counter() - start:.0f} s)")
  losses = {}
  if train_steps:
    for label, cell in models.items():
      params[label], losses[label] = train(cell, params[label], task, steps=train_steps,
                                           batch_size=sizes.batch_size, length=length,
                                           learning_rate=learning_rate, seed=seed)
      log(f"{label}: loss {losses[label][0]:.4f} -> {losses[label][-10:].mean():.4f} "
          f"(mean of the last 10) after {train_steps} steps "
          f"({time.perf_counter() - start:.0f} s)")
    norms["trained"] = gradient_norm_curves(models, params, task, batch_size=sizes.batch_size,
                                            length=length, seed=seed)
  panels = [("at initialisation", norms["initialisation"])]
  if train_steps:
    panels.append((f"after {train_steps} Adam steps on {task}", norms["trained"]))
  paths = [os.path.join(out_dir, name) for name in ("gradient_norms.png", "cliff.png",
                                                     "spectra.png")]
  draw_gradient_norms(panels, paths[0], title=(
      f"Vanishing gradients: loss at the last step of {task}, T={length}, "
      f"H={sizes.hidden_size}, mean over {sizes.batch_size} sequences"))
  cliff = cliff_data(grid=sizes.grid, line_points=sizes.line_points)
  draw_cliff(cliff, paths[1])
  log(f"cliff: loss along b from {cliff['line_loss'].min():.3g} to "
      f"{cliff['line_loss'].max():.3g}; largest step plain "
      f"{np.abs(cliff['line_plain_steps']).max():.3g}, clipped "
      f"{np.abs(cliff['line_clipped_steps']).max():.3g} ({time.perf_counter() - start:.0f} s)")
  spectra = spectra_data(models, params, task, sizes=sizes, length=length, seed=seed)
  state = f"after {train_steps} steps on {task}" if train_steps else "at initialisation"
  draw_spectra(spectra, paths[2], title=(
      f"Step-Jacobian spectra and Lyapunov exponents\n{' and '.join(SPECTRA_MODELS)} "
      f"(H={sizes.hidden_size}, {state}, driven by {task}); echo-state reservoirs "
      f"(H={sizes.esn_size}, leak rate 1, driven by a small input)"))
  for label, values in spectra.items():
    log(f"{label}: largest Lyapunov exponent {values['lyapunov'][0]:+.4f} per step")
  for path in paths:
    log(f"wrote {path}")
  return {"norms": norms, "train_losses": losses, "cliff": cliff, "spectra": spectra,
          "paths": paths}


def main(argv: Sequence[str], flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """Runs ``run`` with the flags (``flag_values``, parsed; ``define_flags`` defines them)."""
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logging.set_verbosity(logging.WARNING)  # keep JAX's backend probing off the console
  f = flag_values
  run(f.out_dir, train_steps=f.train_steps, length=f.length, task=f.task,
             learning_rate=f.learning_rate, seed=f.seed, sizes=QUICK if f.quick else Sizes(),
             log=lambda line: print(line, flush=True))


if __name__ == "__main__":
  define_flags()
  app.run(main)
