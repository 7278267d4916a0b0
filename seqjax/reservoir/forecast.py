"""Forecasting with reservoirs: teacher-forced and closed-loop (generative) modes.

A readout from ``seqjax.reservoir.fit_readout`` (or
``seqjax.reservoir.fit_readout_online``) trained to predict the next
input, ``y_t ~ x_{t+1}``, forecasts in two ways::

  predictions, _ = one_step_predictions(cell, params, readout_params, inputs)
  future = warmup_and_generate(cell, params, readout_params, inputs, horizon=84)

``one_step_predictions`` always sees the true inputs (teacher forcing);
``closed_loop``/``warmup_and_generate`` feed each prediction back as the next
input, so errors compound and the reservoir must model the dynamics.

Also here: ``esn_with_feedback`` (output feedback ``W_fb y_{t-1}``, Jaeger
2001), and ``deep_esn`` (stacked reservoirs, Gallicchio et al. 2017).

References:
  Jaeger 2001, "The 'echo state' approach to analysing and training recurrent
  neural networks", GMD Report 148.
  Jaeger & Haas 2004, "Harnessing nonlinearity: predicting chaotic systems
  and saving energy in wireless communication", Science 304.
  Gallicchio, Micheli & Pedrelli 2017, "Deep reservoir computing: a critical
  experimental analysis", Neurocomputing 268.
"""

from __future__ import annotations

import functools
import math
import numbers
from typing import Optional, Sequence

import jax
import jax.numpy as jnp

from seqjax import checks
from seqjax.cells.esn import esn
from seqjax.reservoir.readout import readout as linear_readout
from seqjax.scan import unroll
from seqjax.types import FROZEN, Array, Carry, Cell, Params


def _check_cell(cell) -> None:
  if not isinstance(cell, Cell):
    raise TypeError(f"cell must be a seqjax.Cell, got {type(cell).__name__}")


def _check_readout(readout_params, input_size: int, state_size: int) -> int:
  """Validates ``{"w": (D + H, O), "b"?: (O,)}``; returns O."""
  if not isinstance(readout_params, dict) or "w" not in readout_params:
    raise TypeError("readout_params must be a dict {'w': (D + H, O), 'b': (O,)} from "
                    f"fit_readout, got {type(readout_params).__name__}")
  w_shape = checks.shape_of(readout_params["w"])
  if len(w_shape) != 2 or w_shape[0] != input_size + state_size:
    raise ValueError(f"readout_params['w'] must have shape (D + H, O) = "
                     f"({input_size + state_size}, O) for D={input_size} inputs and "
                     f"H={state_size} cell outputs, got {w_shape}")
  if "b" in readout_params and checks.shape_of(readout_params["b"]) != w_shape[1:]:
    raise ValueError(f"readout_params['b'] must have shape (O,) = {w_shape[1:]}, "
                     f"got {checks.shape_of(readout_params['b'])}")
  return w_shape[1]


def one_step_predictions(cell: Cell,
                         params: Params,
                         readout_params: Params,
                         inputs: Array,
                         *,
                         carry: Optional[Carry] = None) -> tuple[Array, Carry]:
  """Teacher-forced predictions: the reservoir always reads the true inputs.

  ::

    carry_t, h_t = cell.step(params, carry_{t-1}, x_t)
    y_t = x_t W[:D] + h_t W[D:] + b          (seqjax.reservoir.readout)

  i.e. ``readout(readout_params, inputs, unroll(cell, params, inputs)[1])``.
  With a readout trained on ``targets[t] = inputs[t + 1]``, ``y_t`` is the
  one-step-ahead forecast of ``x_{t+1}``.

  Args:
    cell: a ``seqjax.Cell`` (``esn``, ``esn_with_feedback``, ``deep_esn``, ...).
    params: its parameters.
    readout_params: ``{"w": (D + H, O), "b": (O,)}`` with H the cell's
      ``output_size``.
    inputs: x, (*B, T, D).
    carry: initial carry (leaves (*B, ...)); defaults to
      ``cell.initial_carry``.

  Returns:
    ``(predictions, final_carry)``: predictions (*B, T, O) and the carry
    after the last step (to continue with ``closed_loop``).

  Raises:
    ValueError/TypeError: naming the argument, for a readout that does not
      fit the inputs and the cell, or inputs ``unroll`` rejects.
  """
  _check_cell(cell)
  input_size = cell.input_size(params)
  _check_readout(readout_params, input_size, cell.output_size)
  return _one_step(cell, params, readout_params, jnp.asarray(inputs), carry)


# Jitted with the cell static (a Cell hashes by its functions): one compiled
# call instead of one dispatch per operation.
@functools.partial(jax.jit, static_argnames=("cell",))
def _one_step(cell, params, readout_params, inputs, carry):
  final_carry, states = unroll(cell, params, inputs, carry)
  return linear_readout(readout_params, inputs, states), final_carry


def _check_horizon(horizon) -> int:
  if isinstance(horizon, bool) or not isinstance(horizon, numbers.Integral):
    raise TypeError(f"horizon must be a positive integer number of steps, got {horizon!r}")
  if horizon <= 0:
    raise ValueError(f"horizon must be a positive integer, got {horizon}")
  return int(horizon)


@functools.partial(jax.jit, static_argnames=("cell", "steps"))
def _generate(cell, params, readout_params, carry, first_input, steps: int):
  """``steps`` >= 0 closed-loop steps from ``first_input``: predictions (*B, steps, O)."""
  input_size = first_input.shape[-1]
  w = readout_params["w"]

  def body(state, _):
    carry, x = state
    carry, h = cell.step(params, carry, x)
    y = x @ w[:input_size] + h @ w[input_size:]
    if "b" in readout_params:
      y = y + readout_params["b"]
    y = y.astype(x.dtype)
    return (carry, y), y

  _, ys = jax.lax.scan(body, (carry, first_input), None, length=steps)
  return jnp.moveaxis(ys, 0, -2)


def _check_closed_loop(cell, params, readout_params) -> int:
  _check_cell(cell)
  input_size = cell.input_size(params)
  num_outputs = _check_readout(readout_params, input_size, cell.output_size)
  if num_outputs != input_size:
    raise ValueError(f"closed-loop generation feeds predictions back as inputs, so "
                     f"the readout's O must equal the input size D={input_size}, "
                     f"got readout_params['w'] of shape "
                     f"{checks.shape_of(readout_params['w'])} (O={num_outputs})")
  return input_size


def closed_loop(cell: Cell,
                params: Params,
                readout_params: Params,
                carry: Carry,
                last_input: Array,
                horizon: int) -> Array:
  """Generative mode: every prediction is fed back as the next input.

  Starting from ``c_0 = carry`` and ``u_0 = last_input``, for k = 0 ..
  horizon - 1::

    c_{k+1}, h_{k+1} = cell.step(params, c_k, u_k)
    u_{k+1} = u_k W[:D] + h_{k+1} W[D:] + b
    predictions[k] = u_{k+1}

  If ``carry`` is the state after the inputs ``x_0 .. x_{t-1}`` and
  ``last_input = x_t``, ``predictions[k]`` forecasts ``x_{t+k+1}``. A
  ``lax.scan`` over the horizon: jittable (with ``horizon`` static), and
  works on any device.

  Args:
    cell: a ``seqjax.Cell``.
    params: its parameters.
    readout_params: ``{"w": (D + H, O), "b": (O,)}`` with O == D (the
      predictions become inputs) and H the cell's ``output_size``.
    carry: the carry to start from, leaves (*B, ...).
    last_input: the first input to feed, u_0, (*B, D).
    horizon: number of generated steps, > 0.

  Returns:
    predictions, (*B, horizon, O).

  Raises:
    ValueError/TypeError: naming the argument, for horizon <= 0, a readout
      with O != D or of the wrong shape, a ``last_input`` of the wrong size.
  """
  horizon = _check_horizon(horizon)
  input_size = _check_closed_loop(cell, params, readout_params)
  shape = checks.shape_of(last_input)
  if not shape or shape[-1] != input_size:
    raise ValueError(f"last_input must have shape (*B, D) with D={input_size}, got {shape}")
  checks.float_array("last_input", last_input)
  return _generate(cell, params, readout_params, carry, jnp.asarray(last_input), horizon)


def warmup_and_generate(cell: Cell,
                        params: Params,
                        readout_params: Params,
                        inputs: Array,
                        horizon: int) -> Array:
  """Forecasts ``horizon`` steps past the end of ``inputs``.

  Runs the reservoir over the true ``inputs`` x_0 .. x_{T-1} (teacher forced,
  from ``cell.initial_carry``); the prediction after the last input,
  ``y_{T-1}`` (the forecast of x_T), is the first prediction and the first
  fed-back input of ``closed_loop``::

    predictions[0]  = y_{T-1}                                  ~ x_T
    predictions[1:] = closed_loop(..., carry_{T-1}, y_{T-1}, horizon - 1)

  so ``predictions[k]`` forecasts ``x_{T+k}``: the continuation of the
  series, to be compared with the true future values.

  Args:
    cell: a ``seqjax.Cell``.
    params: its parameters.
    readout_params: ``{"w": (D + H, O), "b": (O,)}`` with O == D.
    inputs: warm-up inputs x, (*B, T, D); T should cover the reservoir's
      washout.
    horizon: number of forecast steps, > 0.

  Returns:
    predictions, (*B, horizon, O).

  Raises:
    ValueError/TypeError: naming the argument, as ``closed_loop`` and
      ``one_step_predictions``.
  """
  horizon = _check_horizon(horizon)
  _check_closed_loop(cell, params, readout_params)
  return _warmup_and_generate(cell, params, readout_params, jnp.asarray(inputs), horizon)


@functools.partial(jax.jit, static_argnames=("cell", "horizon"))
def _warmup_and_generate(cell, params, readout_params, inputs, horizon):
  predictions, carry = _one_step(cell, params, readout_params, inputs, None)
  first = predictions[..., -1, :]
  rest = _generate(cell, params, readout_params, carry, first, horizon - 1)
  return jnp.concatenate([first[..., None, :], rest], axis=-2)


def feedback_inputs(inputs: Array, targets: Array) -> Array:
  """Teacher-forced inputs for ``esn_with_feedback``: ``[x_t, y_{t-1}]``.

  ::

    u_t = concat(x_t, y_{t-1}),   y_{-1} = 0

  Args:
    inputs: x, (*B, T, D) (D may be 0 for a purely autonomous generator).
    targets: the true outputs y, (*B, T, O).

  Returns:
    u, (*B, T, D + O).

  Raises:
    ValueError/TypeError: for arrays of mismatched leading shapes or non-float
      dtypes.
  """
  for name, array, layout in (("inputs", inputs, "(*B, T, D)"),
                              ("targets", targets, "(*B, T, O)")):
    if len(checks.shape_of(array)) < 2:
      raise ValueError(f"{name} must have shape {layout}, got {checks.shape_of(array)}")
    checks.float_array(name, array)
  if checks.shape_of(inputs)[:-1] != checks.shape_of(targets)[:-1]:
    raise ValueError(f"inputs (*B, T, D) and targets (*B, T, O) must match in every "
                     f"axis but the last, got {checks.shape_of(inputs)} and "
                     f"{checks.shape_of(targets)}")
  return _feedback_inputs(jnp.asarray(inputs), jnp.asarray(targets))


@jax.jit
def _feedback_inputs(inputs, targets):
  previous = jnp.concatenate([jnp.zeros_like(targets[..., :1, :]), targets[..., :-1, :]],
                             axis=-2)
  dtype = jnp.result_type(inputs, targets)
  return jnp.concatenate([inputs.astype(dtype), previous.astype(dtype)], axis=-1)


def esn_with_feedback(hidden_size: int,
                      output_size: int,
                      *,
                      feedback_scaling: float = 1.0,
                      **esn_kwargs) -> Cell:
  """Echo-state reservoir with output feedback ``W_fb y_{t-1}``.

  Equations (x_t: (*B, D), y_{t-1}: (*B, O), a = ``leak_rate``)::

    h_t = (1 - a) h_{t-1} + a tanh(x_t W_in + h_{t-1} W_rec + y_{t-1} W_fb + b)

  Implemented as ``seqjax.cells.esn`` whose input is ``u_t = concat(x_t,
  y_{t-1})`` (build it with ``feedback_inputs``): ``W_fb`` is the last
  ``output_size`` rows of ``params["frozen"]["w_in"]`` (D + O, H), drawn
  U(-feedback_scaling, feedback_scaling) instead of U(-input_scaling,
  input_scaling). So ``init(key, input_size)`` takes the width of ``u_t``,
  ``input_size = D + O`` (``D = 0``, ``input_size = O``, gives the classic
  autonomous pattern generator), and every seqjax tool that works with
  ``esn`` works unchanged: ``unroll`` on ``feedback_inputs(x, y)`` in
  training (teacher forcing: the true ``y_{t-1}`` is fed), ``fit_readout``
  on ``(u, states, y)``. With ``D = 0`` the readout maps ``[y_{t-1}, h_t]``
  to ``y_t``, so ``closed_loop`` runs the trained generator on its own
  output.

  Args:
    hidden_size: H, > 0.
    output_size: O, > 0, the size of the fed-back readout output.
    feedback_scaling: half-width of the uniform ``W_fb`` entries, >= 0.
    **esn_kwargs: any other ``seqjax.cells.esn`` argument
      (``spectral_radius``, ``input_scaling``, ``leak_rate``, ...).

  Returns:
    A ``seqjax.Cell`` with ``output_size = hidden_size`` (its outputs are the
    states; ``output_size`` here is the readout's O).

  Raises:
    ValueError/TypeError: naming the argument, for bad sizes, a negative
      feedback_scaling, any error of ``esn``, and at ``init`` an
      ``input_size`` smaller than ``output_size``.
  """
  output_size = checks.positive_int("output_size", output_size)
  if isinstance(feedback_scaling, bool) or not isinstance(feedback_scaling, numbers.Real):
    raise TypeError(f"feedback_scaling must be a non-negative number, got {feedback_scaling!r}")
  if not (feedback_scaling >= 0 and math.isfinite(feedback_scaling)):
    raise ValueError(f"feedback_scaling must be finite and >= 0, got {feedback_scaling}")
  feedback_scaling = float(feedback_scaling)
  base = esn(hidden_size, **esn_kwargs)

  def init(key, input_size):
    input_size = checks.positive_int("input_size", input_size)
    if input_size < output_size:
      raise ValueError(f"input_size is the width of concat(x_t, y_(t-1)), D + O, so it "
                       f"must be >= output_size={output_size}, got {input_size}")
    k_base, k_feedback = jax.random.split(key)
    params = base.init(k_base, input_size)
    w_in = params[FROZEN]["w_in"]
    w_feedback = jax.random.uniform(k_feedback, (output_size, base.hidden_size), w_in.dtype,
                                    -feedback_scaling, feedback_scaling)
    frozen = dict(params[FROZEN], w_in=w_in.at[input_size - output_size:].set(w_feedback))
    return {FROZEN: frozen}

  return base._replace(
      init=init,
      name=f"esn_with_feedback({base.name[4:-1]}, output_size={output_size}, "
           f"feedback_scaling={feedback_scaling})")


def deep_esn(layers: Sequence[Cell]) -> Cell:
  """Stacked reservoirs (DeepESN): layer l reads the states of layer l - 1.

  Equations (L layers, h^l_t the output of layer l)::

    h^0_t = layer_0(h^0_{t-1}, x_t)
    h^l_t = layer_l(h^l_{t-1}, h^(l-1)_t),   l = 1 .. L - 1
    y_t   = concat(h^0_t, ..., h^(L-1)_t)

  The readout sees every layer, as in Gallicchio et al. 2017: deeper layers
  add slower, more abstract timescales. Params ``{"layer_0": ..., ...,
  "layer_{L-1}": ...}``, each layer's own params (an ``esn`` layer keeps its
  ``"frozen"`` subtree, so ``seqjax.trainable_mask`` still marks it fixed);
  the carry is the tuple of the layers' carries. ``init(key, input_size)``
  builds layer l for the ``output_size`` of layer l - 1. Being a ``Cell``, it
  works with ``unroll``, ``fit_readout``, ``one_step_predictions`` and
  ``closed_loop``.

  Args:
    layers: a non-empty sequence of ``seqjax.Cell`` (typically ``esn``).

  Returns:
    A ``seqjax.Cell`` with ``hidden_size`` and ``output_size`` the sums over
    the layers.

  Raises:
    TypeError/ValueError: for an empty ``layers`` or an element that is not a
      Cell.
  """
  if isinstance(layers, Cell) or not isinstance(layers, Sequence):
    raise TypeError(f"layers must be a sequence of seqjax.Cell, got {type(layers).__name__}")
  layers = tuple(layers)
  if not layers:
    raise ValueError("layers must contain at least one Cell, got an empty sequence")
  for index, layer in enumerate(layers):
    if not isinstance(layer, Cell):
      raise TypeError(f"layers[{index}] must be a seqjax.Cell, got {type(layer).__name__}")
  names = [f"layer_{index}" for index in range(len(layers))]

  def init(key, input_size):
    input_size = checks.positive_int("input_size", input_size)
    params = {}
    for name, layer, layer_key in zip(names, layers, jax.random.split(key, len(layers))):
      params[name] = layer.init(layer_key, input_size)
      input_size = layer.output_size
    return params

  def initial_carry(params, batch_shape=()):
    return tuple(layer.initial_carry(params[name], batch_shape)
                 for name, layer in zip(names, layers))

  def step(params, carry, x):
    new_carry, outputs = [], []
    for name, layer, layer_carry in zip(names, layers, carry):
      layer_carry, x = layer.step(params[name], layer_carry, x)
      new_carry.append(layer_carry)
      outputs.append(x)
    return tuple(new_carry), jnp.concatenate(outputs, axis=-1)

  return Cell(init, initial_carry, step,
              lambda params: layers[0].input_size(params[names[0]]),
              sum(layer.hidden_size for layer in layers),
              sum(layer.output_size for layer in layers),
              "deep_esn(" + ", ".join(layer.name for layer in layers) + ")")

