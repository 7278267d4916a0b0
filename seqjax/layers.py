"""Recurrent layers: one cell over a sequence, bidirectional pairs and stacks.

A layer is, like a cell, a record of pure functions closed over its
hyperparameters, but it maps a whole sequence to a sequence::

  layer = stacked(bidirectional(lstm(64)), num_layers=2, dropout=0.1)
  params = layer.init(key, input_size)                  # {"layer_0": ..., ...}
  carry = layer.initial_carry(params, batch_shape)      # optional
  carry, ys = layer.apply(params, xs, mask=mask, key=key, training=True)

Every layer loops over time through ``seqjax.unroll`` only, so masking,
resets, ``time_major`` and any number of batch axes mean the same thing here
as there. ``stacked`` and ``bidirectional`` accept cells or layers, so they
nest freely (a stack of bidirectional layers, a bidirectional pair of stacks).

References:
  Schuster & Paliwal 1997, "Bidirectional recurrent neural networks".
  Graves 2013, "Generating Sequences With Recurrent Neural Networks",
  https://arxiv.org/abs/1308.0850 (skip connections from the input to every
  layer and from every layer to the output).
  Gal & Ghahramani 2016, "A Theoretically Grounded Application of Dropout in
  Recurrent Neural Networks", https://arxiv.org/abs/1512.05287 (variational
  dropout: one mask per sequence, shared over time, also on the recurrence).
"""

from __future__ import annotations

import inspect
import numbers
from typing import Any, Callable, NamedTuple, Optional, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np

from seqjax import checks
from seqjax import scan
from seqjax.types import Array, Carry, Cell, Implementation, Params, PRNGKey


class Layer(NamedTuple):
  """A sequence-to-sequence recurrent layer: a record of pure functions.

  Attributes:
    init: ``(key, input_size) -> params``, a pytree of arrays (plain dicts for
      the composite layers).
    initial_carry: ``(params, batch_shape) -> carry``; reads ``params`` only
      for shapes and dtypes, so it also works on ``jax.eval_shape`` of ``init``.
    apply: ``(params, xs, carry=None, *, mask=None, reset=None, key=None,
      training=False, time_major=False) -> (carry, ys)`` with ``xs``
      ``(*B, T, D)`` (``(T, *B, D)`` if ``time_major``), ``ys`` ``(*B, T, O)``
      in the same layout and ``mask``/``reset`` ``(*B, T)`` booleans as in
      ``seqjax.unroll``. The layers built here also accept the keyword
      ``recurrent_dropout`` (a rate, or ``None`` for the layer's own default),
      through which ``stacked`` reaches the cells inside nested layers.
      ``training``, ``time_major`` and the rates are Python values: under
      ``jax.jit`` close over them or mark them static; ``key`` may be a legacy
      ``uint32[2]`` key or a typed key of any PRNG implementation.
    output_size: O, the size of the last axis of ``ys``.
    name: a short human-readable description.
    reverse: True if the layer runs time right to left (``recurrent(cell,
      reverse=True)``, a stack holding such a layer); ``bidirectional``
      refuses such a layer for either direction.
  """

  init: Callable[[PRNGKey, int], Params]
  initial_carry: Callable[[Params, tuple[int, ...]], Carry]
  apply: Callable[..., tuple[Carry, Array]]
  output_size: int
  name: str
  reverse: bool = False

  def __repr__(self) -> str:
    return f"Layer({self.name})"


CellOrLayer = Union[Cell, Layer]


def _dropout_rate(name: str, value: Any) -> float:
  """Returns ``value`` if it is a number in [0, 1), else raises."""
  if isinstance(value, bool) or not isinstance(value, numbers.Real):
    raise TypeError(f"{name} must be a number in [0, 1), got {value!r}")
  if not 0.0 <= value < 1.0:
    raise ValueError(f"{name} must be in [0, 1) (the probability of dropping "
                     f"a unit), got {value}")
  return float(value)


def as_layer(value: Any, argument: str = "layer") -> Layer:
  """``value`` as a ``Layer``: a Layer as is, a Cell lifted by ``recurrent``.

  Args:
    value: a ``Cell`` or ``Layer``.
    argument: the caller's argument name, for the TypeError raised otherwise.
  """
  if isinstance(value, Layer):
    return value
  if isinstance(value, Cell):
    return recurrent(value)
  raise TypeError(f"{argument} must be a seqjax.Cell or a seqjax.layers.Layer, "
                  f"got {type(value).__name__}")


def _accepts_recurrent_dropout(layer: Layer) -> bool:
  try:
    parameters = inspect.signature(layer.apply).parameters
  except (TypeError, ValueError):
    return False
  return "recurrent_dropout" in parameters or any(
      p.kind == inspect.Parameter.VAR_KEYWORD for p in parameters.values())


def _require_key(key: Optional[PRNGKey], rates: dict[str, float]) -> None:
  active = {name: rate for name, rate in rates.items() if rate > 0}
  if key is None and active:
    given = ", ".join(f"{name}={rate}" for name, rate in active.items())
    raise ValueError(f"key must be a PRNG key when training=True with {given}; "
                     f"got key=None (pass key=..., or training=False)")


def _split(key: Optional[PRNGKey], num: int) -> list[Optional[PRNGKey]]:
  if key is None:
    return [None] * num
  return list(jax.random.split(key, num))


def dropout_mask(key: PRNGKey, rate: float, shape: tuple[int, ...], dtype) -> Array:
  """Inverted-dropout multiplier of ``shape``: 0 with probability ``rate``, else 1/(1-rate).

  Multiplying activations by it keeps their expectation (Srivastava et al.
  2014); shared by the recurrent layers and the TCN.

  Args:
    key: PRNG key the kept positions are drawn from.
    rate: probability of dropping each entry, in [0, 1).
    shape: shape of the mask, e.g. (T, *B, H).
    dtype: dtype of the mask.
  """
  keep = jax.random.bernoulli(key, 1.0 - rate, shape)
  return keep.astype(dtype) / jnp.asarray(1.0 - rate, dtype)


def _dropout(key: PRNGKey, rate: float, xs: Array, time_axis: int,
             variational: bool) -> Array:
  """Drops features of ``xs``; a ``variational`` mask is shared over time."""
  shape = list(xs.shape)
  if variational:
    shape[time_axis] = 1
  return xs * dropout_mask(key, rate, tuple(shape), xs.dtype)


def _time_axis(ndim: int, time_major: bool) -> int:
  """Time axis of an array ``(*B, T, F)`` (``(T, *B, F)`` if ``time_major``)."""
  return 0 if time_major else ndim - 2


def _with_recurrent_dropout(cell: Cell, template: Carry, key: PRNGKey,
                            rate: float) -> Cell:
  """``cell`` whose fed-back hidden state is multiplied by one fixed mask.

  The mask is drawn once per sequence (Gal & Ghahramani 2016) with the shape
  of the hidden state in ``template``: the carry itself for an array carry,
  its field ``h`` for a NamedTuple carry, so that an LSTM's memory ``c`` is
  never dropped (dropping it would erase long-term memory, see Semeniuta et
  al. 2016, arXiv:1603.05118).
  """
  if isinstance(template, (jax.Array, np.ndarray, jax.ShapeDtypeStruct)):
    keep = dropout_mask(key, rate, template.shape, template.dtype)

    def drop(carry):
      return carry * keep
  elif hasattr(template, "_fields") and "h" in template._fields:
    keep = dropout_mask(key, rate, template.h.shape, template.h.dtype)

    def drop(carry):
      return carry._replace(h=carry.h * keep)
  else:
    raise ValueError(f"recurrent_dropout needs a carry that is an array or a "
                     f"NamedTuple with a field 'h'; {cell.name} has carry "
                     f"{jax.tree_util.tree_structure(template)}")

  def step(params, carry, x):
    return cell.step(params, drop(carry), x)

  # with_step drops the fast path: a fused whole-sequence kernel cannot see the mask.
  return cell.with_step(step, name=f"{cell.name} with recurrent_dropout={rate}")


def recurrent(cell: Cell,
              *,
              reverse: bool = False,
              unroll: int = 1,
              remat: bool = False,
              implementation: str = "auto") -> Layer:
  """Lifts a cell to a layer that runs it over a whole sequence.

  ``apply(params, xs, carry=None, *, mask=None, reset=None, key=None,
  training=False, time_major=False, recurrent_dropout=None)`` is
  ``seqjax.unroll(cell, params, xs, carry, mask=mask, reset=reset, ...)``:
  ``xs`` ``(*B, T, D)`` -> ``ys`` ``(*B, T, O)`` (time-major ``(T, *B, ...)``
  if ``time_major``), carry as ``cell.initial_carry``. Params are the cell's
  params. With ``training=True`` and ``recurrent_dropout=p > 0`` (``key``
  required) the fed-back hidden state (the carry, or its field ``h``) is
  multiplied before every step by one inverted-dropout mask ``(*B, H)`` drawn
  per sequence (Gal & Ghahramani 2016, https://arxiv.org/abs/1512.05287); the
  returned carry is the undropped one.

  Args:
    cell: a ``seqjax.Cell``.
    reverse: process time right to left (outputs stay in input order); with
      right padding and ``mask`` each sequence starts at its last real step.
    unroll: ``lax.scan`` unroll factor, > 0.
    remat: recompute each step in the backward pass (``jax.checkpoint``).
    implementation: ``"auto"``, ``"scan"`` or ``"fast"`` (``seqjax.Implementation``), as
      in ``seqjax.unroll``; recurrent dropout always uses the scan of ``step``.

  Returns:
    A ``Layer`` with ``output_size = cell.output_size``.
  """
  if not isinstance(cell, Cell):
    raise TypeError(f"cell must be a seqjax.Cell, got {type(cell).__name__}")
  unroll_factor = checks.positive_int("unroll", unroll)
  Implementation.check(implementation)
  reverse, remat = bool(reverse), bool(remat)

  def apply(params, xs, carry=None, *, mask=None, reset=None, key=None,
            training=False, time_major=False, recurrent_dropout=None):
    rate = _dropout_rate("recurrent_dropout", recurrent_dropout or 0.0)
    run_cell, impl = cell, implementation
    if training and rate > 0:
      _require_key(key, {"recurrent_dropout": rate})
      shape = checks.shape_of(xs)
      batch_shape = tuple(shape[1:-1] if time_major else shape[:-2])
      template = carry if carry is not None else cell.initial_carry(
          params, batch_shape)
      run_cell = _with_recurrent_dropout(cell, template, key, rate)
      impl = "scan"
    return scan.unroll(run_cell, params, xs, carry, mask=mask, reset=reset,
                       reverse=reverse, time_major=time_major, unroll=unroll_factor,
                       remat=remat, implementation=impl)

  name = cell.name + (", reverse" if reverse else "")
  return Layer(cell.init, cell.initial_carry, apply, cell.output_size,
               f"recurrent({name})", reverse)


def _flip_reset(reset: Array, time_axis: int) -> Array:
  """Segment starts -> segment starts of the time-reversed sequence."""
  reset = jnp.moveaxis(jnp.asarray(reset).astype(jnp.bool_), time_axis, 0)
  reset = jnp.flip(scan.reverse_restart(reset), axis=0)
  return jnp.moveaxis(reset, 0, time_axis)


def _time_reversed(layer: Layer) -> Layer:
  """``layer`` run on the time-reversed sequence, outputs in input order.

  Exact with any padding because ``unroll`` skips masked steps wherever they
  are; ``reset`` is translated so that every segment still starts from a
  fresh carry, at its last element.
  """

  def apply(params, xs, carry=None, *, mask=None, reset=None, key=None,
            training=False, time_major=False, recurrent_dropout=None):
    xs = jnp.asarray(xs)
    t_x = _time_axis(xs.ndim, time_major)
    t_flags = 0 if time_major else xs.ndim - 2
    if mask is not None:
      mask = jnp.flip(jnp.asarray(mask), axis=t_flags)
    if reset is not None:
      reset = _flip_reset(reset, t_flags)
    extra = {} if recurrent_dropout is None else {"recurrent_dropout": recurrent_dropout}
    carry, ys = layer.apply(params, jnp.flip(xs, axis=t_x), carry, mask=mask,
                            reset=reset, key=key, training=training,
                            time_major=time_major, **extra)
    return carry, jnp.flip(ys, axis=t_x)

  return layer._replace(apply=apply, name=f"reversed({layer.name})",
                        reverse=not layer.reverse)


def bidirectional(forward: CellOrLayer,
                  backward: Optional[CellOrLayer] = None,
                  *,
                  merge: str = "concat") -> Layer:
  """Runs one cell (or layer) left to right and another right to left.

  ``ys = merge(ys_f, ys_b)`` where ``ys_f`` ``(*B, T, O_f)`` comes from the
  forward direction and ``ys_b`` ``(*B, T, O_b)`` from the backward one, both
  in input order, so ``ys[..., t, :]`` sees the whole sequence. With ``mask``
  the backward direction of every sequence starts at its last real step
  (``unroll(..., reverse=True, mask=mask)``), whatever the padding, and
  outputs on padded steps are zero.

  Params: ``{"forward": ..., "backward": ...}``. Carry: ``(carry_f, carry_b)``;
  the final backward carry is the one after step 0.
  ``apply(params, xs, carry=None, *, mask=None, reset=None, key=None,
  training=False, time_major=False, recurrent_dropout=None)``: ``xs``
  ``(*B, T, D)`` -> ``ys`` ``(*B, T, O)`` (``(T, *B, ...)`` if ``time_major``);
  ``key`` is split between the directions.

  Args:
    forward: a ``Cell`` (lifted with ``recurrent``) or a ``Layer``, run left to
      right.
    backward: a ``Cell`` or ``Layer``, given as it would run left to right:
      ``bidirectional`` runs it right to left (a Cell through
      ``unroll(reverse=True)``, a Layer on the time-reversed sequence with its
      outputs flipped back). Defaults to ``forward`` with its own params.
      A layer built with ``recurrent(cell, reverse=True)`` is refused here
      (``Layer.reverse``): reversing it again would silently run it forward.
      To choose the implementation of both directions, pass layers:
      ``bidirectional(recurrent(cell, implementation="scan"))`` (both
      directions, each with its own params) or
      ``bidirectional(recurrent(cell_f, implementation=...),
      recurrent(cell_b, implementation=...))``; ``unroll`` and ``remat`` are
      chosen the same way.
    merge: ``"concat"`` (O = O_f + O_b, forward features first) or ``"sum"``
      (O = O_f = O_b).

  Returns:
    A ``Layer``.

  Raises:
    ValueError: ``merge`` not one of the above, ``"sum"`` with O_f != O_b, or
      a direction that already runs right to left (``Layer.reverse``).
  """
  checks.one_of("merge", merge, ("concat", "sum"))
  fwd = as_layer(forward, "forward")
  backward = forward if backward is None else backward
  for argument, layer in (("forward", forward), ("backward", backward)):
    if isinstance(layer, Layer) and layer.reverse:
      raise ValueError(f"{argument} must run left to right, got {layer.name} (reverse=True); "
                       f"bidirectional reverses the backward layer itself: pass "
                       f"recurrent(cell) without reverse=True")
  if isinstance(backward, Cell):
    bwd = recurrent(backward, reverse=True)
    passes_rate = _accepts_recurrent_dropout(fwd)
  else:
    backward = as_layer(backward, "backward")
    bwd = _time_reversed(backward)
    passes_rate = _accepts_recurrent_dropout(fwd) and _accepts_recurrent_dropout(backward)
  if merge == "sum" and fwd.output_size != bwd.output_size:
    raise ValueError(f"merge='sum' needs equal output sizes, got forward "
                     f"{fwd.output_size} and backward {bwd.output_size} "
                     f"(use merge='concat')")
  output_size = (fwd.output_size + bwd.output_size if merge == "concat"
                 else fwd.output_size)

  def init(key, input_size):
    k_f, k_b = jax.random.split(key)
    return {"forward": fwd.init(k_f, input_size),
            "backward": bwd.init(k_b, input_size)}

  def initial_carry(params, batch_shape=()):
    return (fwd.initial_carry(params["forward"], batch_shape),
            bwd.initial_carry(params["backward"], batch_shape))

  def apply(params, xs, carry=None, *, mask=None, reset=None, key=None,
            training=False, time_major=False, recurrent_dropout=None):
    if carry is None:
      carry = (None, None)
    elif not isinstance(carry, tuple) or len(carry) != 2:
      raise ValueError(f"carry must be a tuple (forward_carry, backward_carry), "
                       f"got {type(carry).__name__}")
    carry_f, carry_b = carry
    k_f, k_b = _split(key, 2)
    extra = {}
    if recurrent_dropout is not None:
      if not passes_rate:
        if recurrent_dropout:
          raise ValueError(f"recurrent_dropout={recurrent_dropout} was given "
                           f"but the apply of a direction does not accept "
                           f"recurrent_dropout")
      else:
        extra = {"recurrent_dropout": recurrent_dropout}
    common = dict(mask=mask, reset=reset, training=training,
                  time_major=time_major, **extra)
    carry_f, ys_f = fwd.apply(params["forward"], xs, carry_f, key=k_f, **common)
    carry_b, ys_b = bwd.apply(params["backward"], xs, carry_b, key=k_b, **common)
    ys = jnp.concatenate([ys_f, ys_b], axis=-1) if merge == "concat" else ys_f + ys_b
    return (carry_f, carry_b), ys

  return Layer(init, initial_carry, apply, output_size,
               f"bidirectional({fwd.name}, {bwd.name}, merge={merge})")


def stacked(layers: Union[CellOrLayer, Sequence[CellOrLayer]],
            num_layers: Optional[int] = None,
            *,
            skip_input: bool = False,
            skip_output: bool = False,
            dropout: float = 0.0,
            input_dropout: float = 0.0,
            recurrent_dropout: float = 0.0,
            variational: bool = False) -> Layer:
  """A deep recurrent network: layer ``l`` reads the outputs of layer ``l-1``.

  With ``x`` ``(*B, T, D)`` and ``y_l`` ``(*B, T, O_l)``::

    y_0 = layer_0(drop_in(x))
    y_l = layer_l(drop(y_{l-1}))                        l > 0
    y_l = layer_l(concat(drop_in(x), drop(y_{l-1})))    l > 0, skip_input
    ys  = y_{L-1}, or concat(y_0, ..., y_{L-1})         skip_output

  (skip connections as in Graves 2013, https://arxiv.org/abs/1308.0850).
  Params: ``{"layer_0": ..., "layer_1": ...}``. Carry: a tuple of the layers'
  carries. ``apply(params, xs, carry=None, *, mask=None, reset=None,
  key=None, training=False, time_major=False, recurrent_dropout=None)``:
  ``xs`` ``(*B, T, D)`` -> ``ys`` ``(*B, T, O)`` (``(T, *B, ...)`` if
  ``time_major``); ``mask`` and ``reset`` go to every layer.

  Dropout acts only with ``training=True``, then needs ``key``, and scales
  kept units by ``1/(1-p)`` (inverted dropout). ``input_dropout`` drops
  features of ``x`` (the same dropped ``x`` feeds every layer with
  ``skip_input``); ``dropout`` drops features of each ``y_l`` that feeds layer
  ``l+1`` (never the returned outputs, skip outputs included); with
  ``variational`` both masks are drawn once per sequence, ``(*B, 1, F)``, and
  shared over time, otherwise anew at every step. ``recurrent_dropout`` is
  always variational: each cell's fed-back hidden state (an array carry, or
  the field ``h`` of a NamedTuple carry, never an LSTM's memory ``c``) is
  multiplied by one mask per sequence before every step (Gal & Ghahramani
  2016, https://arxiv.org/abs/1512.05287).

  Args:
    layers: a ``Cell`` or ``Layer`` repeated ``num_layers`` times (each copy
      with its own params), or a sequence of them, one per layer. Cells are
      lifted with ``recurrent``.
    num_layers: L, > 0, for a single cell or layer (default 1); for a sequence
      it may be omitted or must equal its length.
    skip_input: feed the network input to every layer ``l > 0`` as well.
    skip_output: return the concatenation of all layers' outputs.
    dropout: rate between layers, in [0, 1).
    input_dropout: rate on the network input, in [0, 1).
    recurrent_dropout: rate on the fed-back hidden states, in [0, 1); the
      layers must accept ``recurrent_dropout`` (all layers built here do).
      ``apply(..., recurrent_dropout=p)`` overrides it.
    variational: share the ``dropout``/``input_dropout`` masks over time.

  Returns:
    A ``Layer`` with ``output_size = O_{L-1}``, or ``sum_l O_l`` with
    ``skip_output``.

  Raises:
    ValueError/TypeError naming the argument: ``num_layers`` not a positive
    integer or not matching ``layers``; an empty ``layers``; a rate outside
    [0, 1); an element that is neither a Cell nor a Layer.
  """
  if isinstance(layers, (Cell, Layer)):
    count = 1 if num_layers is None else checks.positive_int("num_layers", num_layers)
    members = [as_layer(layers, "layers")] * count
  elif isinstance(layers, Sequence) and not isinstance(layers, str):
    if len(layers) == 0:
      raise ValueError("layers must hold at least one Cell or Layer, got an empty sequence")
    if num_layers is not None and checks.positive_int(
        "num_layers", num_layers) != len(layers):
      raise ValueError(f"num_layers must equal len(layers)={len(layers)} when "
                       f"layers is a sequence, got num_layers={num_layers}")
    members = [as_layer(layer, f"layers[{i}]") for i, layer in enumerate(layers)]
  else:
    raise TypeError(f"layers must be a Cell, a Layer or a sequence of them, "
                    f"got {type(layers).__name__}")
  dropout = _dropout_rate("dropout", dropout)
  input_dropout = _dropout_rate("input_dropout", input_dropout)
  default_recurrent_dropout = _dropout_rate("recurrent_dropout", recurrent_dropout)
  skip_input, skip_output, variational = bool(skip_input), bool(skip_output), bool(variational)
  accepts = [_accepts_recurrent_dropout(layer) for layer in members]

  def check_accepts(rate):
    for i, layer in enumerate(members):
      if rate > 0 and not accepts[i]:
        raise ValueError(f"recurrent_dropout={rate} needs layers whose apply "
                         f"accepts recurrent_dropout; layer {i} ({layer.name}) "
                         f"does not")

  check_accepts(default_recurrent_dropout)
  num = len(members)
  names = [f"layer_{i}" for i in range(num)]
  sizes = [layer.output_size for layer in members]
  output_size = sum(sizes) if skip_output else sizes[-1]

  def init(key, input_size):
    input_size = checks.positive_int("input_size", input_size)
    keys = jax.random.split(key, num)
    params = {}
    for i, (layer, name) in enumerate(zip(members, names)):
      size = input_size if i == 0 else sizes[i - 1] + (input_size if skip_input else 0)
      params[name] = layer.init(keys[i], size)
    return params

  def initial_carry(params, batch_shape=()):
    return tuple(layer.initial_carry(params[name], batch_shape)
                 for layer, name in zip(members, names))

  def apply(params, xs, carry=None, *, mask=None, reset=None, key=None,
            training=False, time_major=False, recurrent_dropout=None):
    rec_rate = (default_recurrent_dropout if recurrent_dropout is None
                else _dropout_rate("recurrent_dropout", recurrent_dropout))
    training = bool(training)
    if training:
      _require_key(key, {"input_dropout": input_dropout, "dropout": dropout,
                         "recurrent_dropout": rec_rate})
    if carry is None:
      carry = (None,) * num
    elif not isinstance(carry, tuple) or len(carry) != num:
      raise ValueError(f"carry must be a tuple with one carry per layer "
                       f"({num}), got {type(carry).__name__}")
    xs = jnp.asarray(xs)
    checks.float_array("xs", xs)
    if xs.ndim < 2:
      raise ValueError(f"xs must have shape {'(T, *B, D)' if time_major else '(*B, T, D)'}"
                       f", got shape {xs.shape}")
    time_axis = _time_axis(xs.ndim, time_major)
    k_in, *keys = _split(key, 2 * num + 1)
    layer_keys, drop_keys = keys[:num], keys[num:]
    if training and input_dropout > 0:
      xs = _dropout(k_in, input_dropout, xs, time_axis, variational)
    check_accepts(rec_rate)
    # An explicit rate (even 0) overrides nested layers' own defaults.
    pass_rate = recurrent_dropout is not None or default_recurrent_dropout > 0
    inputs, outputs, finals = xs, [], []
    for i, (layer, name) in enumerate(zip(members, names)):
      final, ys = layer.apply(params[name], inputs, carry[i], mask=mask,
                              reset=reset, key=layer_keys[i], training=training,
                              time_major=time_major,
                              **({"recurrent_dropout": rec_rate}
                                 if pass_rate and accepts[i] else {}))
      finals.append(final)
      outputs.append(ys)
      if i + 1 < num:
        inputs = ys
        if training and dropout > 0:
          inputs = _dropout(drop_keys[i], dropout, inputs, time_axis, variational)
        if skip_input:
          inputs = jnp.concatenate([xs, inputs], axis=-1)
    ys = jnp.concatenate(outputs, axis=-1) if skip_output else outputs[-1]
    return tuple(finals), ys

  options = [f"num_layers={num}"]
  for flag, value in (("skip_input", skip_input), ("skip_output", skip_output),
                      ("variational", variational)):
    if value:
      options.append(flag)
  for rate_name, rate in (("dropout", dropout), ("input_dropout", input_dropout),
                          ("recurrent_dropout", default_recurrent_dropout)):
    if rate > 0:
      options.append(f"{rate_name}={rate}")
  inner = members[0].name if len(set(map(id, members))) == 1 else ", ".join(
      layer.name for layer in members)
  return Layer(init, initial_carry, apply, output_size,
               f"stacked({inner}, {', '.join(options)})",
               any(layer.reverse for layer in members))


def residual(layer: CellOrLayer) -> Layer:
  """A layer whose outputs are added to its inputs: ``ys = xs + layer(xs)``.

  Residual connections between deep recurrent layers as in GNMT (Wu et al.
  2016, https://arxiv.org/abs/1609.08144, from the third encoder layer on).
  ``apply(params, xs, carry=None, **kwargs)`` is the wrapped layer's, with
  ``xs`` ``(*B, T, D)`` -> ``ys`` ``(*B, T, D)``; on masked steps the wrapped
  layer's output is replaced by zeros, so ``ys`` equals ``xs`` there. Params
  and carry are the wrapped layer's.

  Args:
    layer: a ``Cell`` (lifted with ``recurrent``) or ``Layer`` whose output
      size must equal its input size D (checked by ``init``).
  """
  inner = as_layer(layer, "layer")

  def init(key, input_size):
    if input_size != inner.output_size:
      raise ValueError(f"input_size must equal the wrapped layer's output size "
                       f"{inner.output_size} for a residual connection, got {input_size}")
    return inner.init(key, input_size)

  def apply(params, xs, carry=None, *, mask=None, **kwargs):
    carry, ys = inner.apply(params, xs, carry, mask=mask, **kwargs)
    if mask is not None:
      keep = jnp.expand_dims(jnp.asarray(mask, bool), -1)  # mask is in xs' layout
      ys = jnp.where(keep, ys, jnp.zeros((), ys.dtype))
    return carry, xs + ys

  return Layer(init, inner.initial_carry, apply, inner.output_size,
               f"residual({inner.name})", inner.reverse)
