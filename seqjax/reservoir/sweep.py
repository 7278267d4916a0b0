"""Echo-state hyperparameter sweeps: the whole grid in one compiled, vmapped call.

An echo-state network's quality hinges on a handful of scalars (spectral
radius, leak rate, input scaling, ridge), and the usual way to pick them is a
grid search. Because ``rho(r W) = r rho(W)``, every configuration can share one
random reservoir drawn and normalised once to spectral radius 1: configuration
``i`` uses ``r_i W``, ``s_i W_in`` and ``c_i b``, so its radius is exact without
an eigenvalue computation per configuration, and the pipeline

  run the reservoir over the training inputs -> closed-form ridge readout
  (after a washout) -> keep running over the validation inputs from the last
  training state -> validation NRMSE

is one pure function of the configuration, ``jax.vmap``-ed over the grid and
jitted. The per-step products ``h W`` of all configurations become one
``(N, H) @ (H, H)`` matrix product, and the input projection ``x W_in`` is
computed once for the whole grid::

  configs = grid(spectral_radius=[0.5, 0.9, 1.2], leak_rate=[0.1, 0.3, 1.0],
                 ridge=[1e-8, 1e-6])                     # each (18,)
  results = sweep(key, 200, train_x, train_y, val_x, val_y, configs, washout=100)
  print(table(results))                                 # best configuration first

``sweep(key, H, ...)`` evaluates exactly the reservoirs that
``esn(H, spectral_radius=r, input_scaling=s, bias_scaling=c, connectivity=...)``
``.init(key, D)`` builds (up to float rounding), so the winner can be rebuilt as
a cell with the same key.

References:
  Lukosevicius 2012, "A practical guide to applying echo state networks",
  Neural Networks: Tricks of the Trade (which hyperparameters matter and how
  to search them).
"""

from __future__ import annotations

import functools
import itertools
import math
import numbers
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from seqjax import checks
from seqjax.cells.esn import esn
from seqjax.reservoir.metrics import nrmse
from seqjax.reservoir.readout import (blas_thread_limit, factor_readout, fit_readout, readout,
                                      solve_readout)
from seqjax.types import FROZEN, Array, PRNGKey

#: The hyperparameters a configuration may set, with the value used when a
#: sweep leaves one out (the defaults of ``seqjax.cells.esn`` and
#: ``fit_readout``).
DEFAULTS = {
    "spectral_radius": 0.9,
    "leak_rate": 1.0,
    "input_scaling": 1.0,
    "bias_scaling": 0.0,
    "ridge": 1e-6,
}

# (lowest allowed value, whether the bound itself is excluded, highest value).
_RANGES = {
    "spectral_radius": (0.0, True, math.inf),
    "leak_rate": (0.0, True, 1.0),
    "input_scaling": (0.0, False, math.inf),
    "bias_scaling": (0.0, False, math.inf),
    "ridge": (0.0, False, math.inf),
}


def grid(**axes: Sequence[float]) -> dict[str, Array]:
  """Cartesian product of hyperparameter values, flattened to N configurations.

  ``grid(a=[a_1, ..., a_n], b=[b_1, ..., b_m])`` returns ``{"a": (n*m,),
  "b": (n*m,)}`` holding every pair ``(a_i, b_j)``, the first axis varying
  slowest (``itertools.product`` order).

  Args:
    **axes: name -> 1-D sequence of values (at least one value each).

  Returns:
    name -> float32 array (N,), N the product of the axis lengths.

  Raises:
    ValueError: for no axes, or an axis that is empty or not 1-D.
  """
  if not axes:
    raise ValueError("grid needs at least one axis, e.g. grid(leak_rate=[0.1, 1.0])")
  values = {}
  for name, axis in axes.items():
    axis = np.asarray(axis, np.float32)
    if axis.ndim != 1 or axis.size == 0:
      raise ValueError(f"grid axis {name} must be a non-empty 1-D sequence of numbers, "
                       f"got shape {axis.shape}")
    values[name] = axis
  points = list(itertools.product(*values.values()))
  return {name: jnp.asarray([point[i] for point in points], jnp.float32)
          for i, name in enumerate(values)}


def base_reservoir(key: PRNGKey, hidden_size: int, input_size: int, *,
                   connectivity: float = 0.1) -> dict[str, Array]:
  """The unit-scaled reservoir shared by every configuration of a sweep.

  Exactly ``esn(hidden_size, spectral_radius=1, input_scaling=1,
  bias_scaling=1, connectivity=connectivity).init(key, input_size)["frozen"]``:
  a sparse N(0, 1) ``w_rec`` normalised to spectral radius 1 (exact
  eigenvalues), ``w_in`` and ``b`` uniform in [-1, 1]. A configuration with
  radius r, input scaling s and bias scaling c uses ``r w_rec``, ``s w_in``
  and ``c b``, which is what ``esn`` with those values draws from the same key.

  Args:
    key: PRNG key (the ``init`` key of the equivalent ``esn`` cells).
    hidden_size: H.
    input_size: D.
    connectivity: fraction in (0, 1] of the units each unit receives input from
      (``seqjax.cells.esn``).

  Returns:
    ``{"w_in": (D, H), "w_rec": (H, H), "b": (H,)}``, float32.
  """
  cell = esn(hidden_size, spectral_radius=1.0, connectivity=connectivity,
             input_scaling=1.0, bias_scaling=1.0)
  return cell.init(key, input_size)[FROZEN]


def _check_series(name: str, x: Any, layout: str) -> None:
  if len(checks.shape_of(x)) != 2:
    raise ValueError(f"{name} must have shape {layout}, got shape {checks.shape_of(x)}")
  checks.float_array(name, x)


def _check_data(reservoir, train_inputs, train_targets, val_inputs, val_targets,
                washout) -> int:
  _check_series("train_inputs", train_inputs, "(T, D)")
  _check_series("train_targets", train_targets, "(T, O)")
  _check_series("val_inputs", val_inputs, "(V, D)")
  _check_series("val_targets", val_targets, "(V, O)")
  (steps, input_size), (val_steps, val_input_size) = (
      checks.shape_of(train_inputs), checks.shape_of(val_inputs))
  if checks.shape_of(train_targets)[0] != steps:
    raise ValueError(f"train_targets (T, O) must have the T={steps} steps of train_inputs, "
                     f"got shape {checks.shape_of(train_targets)}")
  if checks.shape_of(val_targets)[0] != val_steps:
    raise ValueError(f"val_targets (V, O) must have the V={val_steps} steps of val_inputs, "
                     f"got shape {checks.shape_of(val_targets)}")
  if val_input_size != input_size:
    raise ValueError(f"val_inputs must have the D={input_size} features of train_inputs, "
                     f"got shape {checks.shape_of(val_inputs)}")
  if checks.shape_of(val_targets)[1] != checks.shape_of(train_targets)[1]:
    raise ValueError(f"val_targets and train_targets must have the same number of outputs "
                     f"O, got {checks.shape_of(val_targets)} and "
                     f"{checks.shape_of(train_targets)}")
  if checks.shape_of(reservoir["w_in"])[0] != input_size:
    raise ValueError(f"train_inputs must have the D={checks.shape_of(reservoir['w_in'])[0]}"
                     f" features the reservoir was built for, got shape ({steps}, {input_size})")
  if isinstance(washout, bool) or not isinstance(washout, numbers.Integral):
    raise TypeError(f"washout must be an integer number of steps, got {washout!r}")
  if not 0 <= washout < steps:
    raise ValueError(f"washout must be in [0, T) with T={steps} training steps, got {washout}")
  return int(washout)


def evaluate(reservoir: Mapping[str, Array],
             config: Mapping[str, Array],
             train_inputs: Array,
             train_targets: Array,
             val_inputs: Array,
             val_targets: Array,
             *,
             washout: int = 100) -> dict[str, Array]:
  """Trains and validates one echo-state configuration (the body of ``sweep``).

  With ``W_in, W, b`` from ``base_reservoir`` and the configuration's radius
  r, input scaling s, bias scaling c, leak rate a and ridge lambda::

    h_t = (1 - a) h_{t-1} + a tanh(s x_t W_in + r h_{t-1} W + c b),  h_0 = 0
    W_out, b_out = fit_readout(x, h, y, ridge=lambda, washout=washout)
    (validation continues from the last training state h_T)
    NRMSE = seqjax.reservoir.nrmse(yhat, y): per output rms(yhat_o - y_o) / std(y_o),
            averaged over outputs

  Pure and jittable (``washout`` static); ``sweep`` vmaps it over the grid,
  and a loop over configurations can call one jitted copy of it.

  Args:
    reservoir: ``{"w_in": (D, H), "w_rec": (H, H), "b": (H,)}`` from
      ``base_reservoir`` (spectral radius 1, unit scalings).
    config: ``DEFAULTS``'s names -> scalars; every name must be present.
    train_inputs: (T, D).
    train_targets: (T, O).
    val_inputs: (V, D), the steps right after the training inputs.
    val_targets: (V, O).
    washout: initial training steps left out of the readout fit and of the
      training error, 0 <= washout < T (static).

  Returns:
    ``{"val_nrmse": (), "train_nrmse": ()}``; training error after the washout.
  """
  washout = _check_data(reservoir, train_inputs, train_targets, val_inputs,
                        val_targets, washout)
  missing = sorted(set(DEFAULTS) - set(config))
  if missing:
    raise ValueError(f"config is missing {missing}; it needs every name in {sorted(DEFAULTS)}")
  radius, leak_rate = config["spectral_radius"], config["leak_rate"]
  input_scaling, bias_scaling = config["input_scaling"], config["bias_scaling"]
  w_rec, bias = reservoir["w_rec"], bias_scaling * reservoir["b"]

  def step(h, drive_t):
    # ``r (h W)`` rather than ``h (r W)``: under vmap the shared W turns the
    # grid's matrix-vector products into one matrix-matrix product.
    pre = input_scaling * drive_t + radius * (h @ w_rec) + bias
    h = (1.0 - leak_rate) * h + leak_rate * jnp.tanh(pre)
    return h, h

  # The input projection does not depend on the configuration, so it is
  # hoisted out of the time loop (and, under vmap, out of the grid).
  h0 = jnp.zeros(w_rec.shape[:1], w_rec.dtype)
  last, train_states = jax.lax.scan(step, h0, train_inputs @ reservoir["w_in"])
  _, val_states = jax.lax.scan(step, last, val_inputs @ reservoir["w_in"])
  readout_params = fit_readout(train_inputs, train_states, train_targets,
                               ridge=config["ridge"], washout=washout)
  return _scores(readout_params, train_inputs, train_states, train_targets, val_inputs,
                 val_states, val_targets, washout)


def _scores(readout_params, train_inputs, train_states, train_targets, val_inputs,
            val_states, val_targets, washout) -> dict[str, Array]:
  """Validation NRMSE and training NRMSE after the washout of a fitted readout."""
  train_predictions = readout(readout_params, train_inputs, train_states)
  return {
      "val_nrmse": nrmse(readout(readout_params, val_inputs, val_states), val_targets),
      "train_nrmse": nrmse(train_predictions[washout:], train_targets[washout:]),
  }


_RESERVOIR_NAMES = ("spectral_radius", "leak_rate", "input_scaling", "bias_scaling")


@functools.partial(jax.jit, static_argnames=("washout",))
def _evaluate_grid(reservoir, reservoir_configs, which, ridges, train_inputs,
                   train_targets, val_inputs, val_targets, washout):
  """``evaluate`` for every configuration, sharing work across ridge values.

  Args:
    reservoir: the unit reservoir.
    reservoir_configs: the U distinct (spectral_radius, leak_rate,
      input_scaling, bias_scaling) of the grid, each (U,).
    which: (N,) int, configuration i's row in ``reservoir_configs``.
    ridges: (N,).

  Configurations that differ only in ridge share their reservoir states and
  the factorisation of their training features (``factor_readout``); each
  ridge then costs one ``solve_readout``, a QR of an (F + K, F + O) matrix
  (K = min(N_rows, F + O)).
  """
  w_in, w_rec, b = reservoir["w_in"], reservoir["w_rec"], reservoir["b"]
  # The input projection does not depend on the configuration.
  train_drive, val_drive = train_inputs @ w_in, val_inputs @ w_in

  def states(config):
    radius, leak_rate = config["spectral_radius"], config["leak_rate"]
    input_scaling, bias = config["input_scaling"], config["bias_scaling"] * b

    def step(h, drive_t):
      # ``r (h W)`` rather than ``h (r W)``: under vmap the shared W turns the
      # grid's matrix-vector products into one matrix-matrix product.
      pre = input_scaling * drive_t + radius * (h @ w_rec) + bias
      h = (1.0 - leak_rate) * h + leak_rate * jnp.tanh(pre)
      return h, h

    last, train_states = jax.lax.scan(step, jnp.zeros(w_rec.shape[:1], w_rec.dtype),
                                      train_drive)
    _, val_states = jax.lax.scan(step, last, val_drive)
    return train_states, val_states

  train_states, val_states = jax.vmap(states)(reservoir_configs)   # (U, T, H), (U, V, H)

  def factor(states):
    return factor_readout(train_inputs, states, train_targets, washout=washout)

  factors = jax.vmap(factor)(train_states)

  def one(index, ridge):
    # As in fit_readout: GPUs and TPUs otherwise run float32 matmuls at
    # reduced precision.
    with jax.default_matmul_precision("highest"):
      fitted = solve_readout(jax.tree_util.tree_map(lambda leaf: leaf[index], factors), ridge)
      return _scores(fitted, train_inputs, train_states[index], train_targets, val_inputs,
                     val_states[index], val_targets, washout)

  return jax.vmap(one)(which, ridges)


def _full_configs(configs: Mapping[str, Any]) -> dict[str, Array]:
  if not isinstance(configs, Mapping) or not configs:
    raise ValueError(f"configs must be a non-empty dict of name -> (N,) arrays "
                     f"(see grid), got {configs!r}")
  unknown = sorted(set(configs) - set(DEFAULTS))
  if unknown:
    raise ValueError(f"configs has unknown hyperparameters {unknown}; "
                     f"known: {sorted(DEFAULTS)}")
  sizes = {name: checks.shape_of(values) for name, values in configs.items()}
  if any(len(shape) != 1 for shape in sizes.values()) or len(set(sizes.values())) != 1:
    raise ValueError(f"configs values must be 1-D arrays of one common length N, "
                     f"got shapes {sizes}")
  (count,) = next(iter(sizes.values()))
  if count == 0:
    raise ValueError("configs must hold at least one configuration, got N=0")
  full = {}
  for name, default in DEFAULTS.items():
    values = configs.get(name, np.full(count, default, np.float32))
    if not isinstance(values, jax.core.Tracer):
      concrete = np.asarray(values, np.float64)
      low, low_open, high = _RANGES[name]
      ok = np.isfinite(concrete) & (concrete > low if low_open else concrete >= low)
      ok &= concrete <= high
      if not ok.all():
        bad = concrete[~ok][0]
        bracket = "(" if low_open else "["
        raise ValueError(f"configs[{name!r}] must be in {bracket}{low}, {high}] and finite, "
                         f"got {bad}")
    full[name] = jnp.asarray(values, jnp.float32)
  return full


def sweep(base_reservoir_key: PRNGKey,
          hidden_size: int,
          train_inputs: Array,
          train_targets: Array,
          val_inputs: Array,
          val_targets: Array,
          configs: Mapping[str, Array],
          *,
          connectivity: float = 0.1,
          washout: int = 100) -> dict[str, Array]:
  """Validation NRMSE of every configuration of a grid, in one compiled call.

  Draws the unit reservoir once (``base_reservoir``) and evaluates
  ``evaluate`` for all N configurations under ``jax.jit(jax.vmap(...))``:
  no Python loop over configurations, one compilation per (shapes, washout,
  number of distinct reservoirs). Configurations that differ only in ``ridge``
  share one reservoir run and one QR factorisation of their training features
  (each extra ridge value costs a small (2F, F) QR), so a long ridge axis is
  nearly free. Memory grows as U (T + V) H for the states of the U distinct
  reservoirs plus U (T - washout) (D + H) for the fit; split a very large grid
  into chunks.

  Args:
    base_reservoir_key: PRNG key of the shared reservoir.
    hidden_size: H, > 0.
    train_inputs: (T, D) float.
    train_targets: (T, O) float, e.g. the inputs one step ahead.
    val_inputs: (V, D), the steps right after the training inputs (the
      reservoir continues from its last training state).
    val_targets: (V, O).
    configs: any of ``spectral_radius`` (> 0), ``leak_rate`` (in (0, 1]),
      ``input_scaling``, ``bias_scaling``, ``ridge`` (>= 0) -> (N,) arrays,
      e.g. from ``grid``; names left out take their ``DEFAULTS`` value.
    connectivity: fraction in (0, 1] of the units each unit receives input from
      (``seqjax.cells.esn``).
    washout: initial training steps left out of the readout fit, 0 <= washout < T.

  Returns:
    Every hyperparameter in ``DEFAULTS`` -> (N,), plus ``"val_nrmse"`` and
    ``"train_nrmse"`` (N,), in the order of ``configs`` (see ``table``).

  Raises:
    ValueError/TypeError: naming the argument, for mismatched shapes, unknown
      hyperparameter names, values outside their ranges, a bad washout.
  """
  hidden_size = checks.positive_int("hidden_size", hidden_size)
  full = _full_configs(configs)
  input_size = checks.shape_of(train_inputs)[-1] if checks.shape_of(train_inputs) else 0
  reservoir = base_reservoir(base_reservoir_key, hidden_size, input_size,
                             connectivity=connectivity)
  washout = _check_data(reservoir, train_inputs, train_targets, val_inputs,
                        val_targets, washout)
  # Configurations that differ only in ridge share a reservoir run; with
  # traced values (sweep under jit) every configuration gets its own.
  if any(isinstance(full[name], jax.core.Tracer) for name in _RESERVOIR_NAMES):
    which = jnp.arange(full["ridge"].shape[0])
    reservoir_configs = {name: full[name] for name in _RESERVOIR_NAMES}
  else:
    columns = np.stack([np.asarray(full[name]) for name in _RESERVOIR_NAMES], 1)
    unique, which = np.unique(columns, axis=0, return_inverse=True)
    which = jnp.asarray(which.reshape(-1), jnp.int32)
    reservoir_configs = {name: jnp.asarray(unique[:, i])
                         for i, name in enumerate(_RESERVOIR_NAMES)}
  arguments = (reservoir, reservoir_configs, which, full["ridge"],
               jnp.asarray(train_inputs), jnp.asarray(train_targets),
               jnp.asarray(val_inputs), jnp.asarray(val_targets))
  if any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(arguments)):
    results = _evaluate_grid(*arguments, washout=washout)
  else:
    # As in fit_readout: the host LAPACK of the QR factorisations on one thread.
    with blas_thread_limit():
      results = jax.block_until_ready(_evaluate_grid(*arguments, washout=washout))
  return {**full, **results}


def table(results: Mapping[str, Array], *, sort_by: str = "val_nrmse") -> str:
  """Markdown table of ``sweep`` results, best (lowest ``sort_by``) first.

  Args:
    results: name -> (N,) arrays, as returned by ``sweep``.
    sort_by: the column to sort by, ascending; NaNs (diverged fits) go last.

  Returns:
    A GitHub-markdown table with one row per configuration, values to 4
    significant digits.
  """
  if sort_by not in results:
    raise ValueError(f"sort_by must name a column of results {sorted(results)}, "
                     f"got {sort_by!r}")
  columns = {name: np.asarray(values).reshape(-1) for name, values in results.items()}
  key = columns[sort_by]
  order = np.argsort(np.where(np.isnan(key), np.inf, key), kind="stable")
  names = [n for n in columns if n not in ("val_nrmse", "train_nrmse")]
  names += [n for n in ("train_nrmse", "val_nrmse") if n in columns]
  lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
  for i in order:
    lines.append("| " + " | ".join(f"{columns[n][i]:.4g}" for n in names) + " |")
  return "\n".join(lines)
