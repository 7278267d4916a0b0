"""The one model resolver: ``config.model`` -> a recurrent or convolutional body.

Every task builds its body here, from the same fields (``experiments.configs.
common.model_config`` writes them)::

  cell         any cell factory in ``seqjax.cells`` that needs only hidden_size
               (lstm, gru, rnn, min_gru, lru, leaky, ctrnn, ...) or "tcn"
  hidden_size  units per recurrent layer, or channels per TCN level
  num_layers   recurrent layers (ignored by the TCN)
  levels       TCN residual blocks, dilations 1, 2, ..., 2^(levels-1)
  kernel_size  TCN taps per convolution
  dropout      RNNs: between layers; TCN: after each convolution
  forget_bias  given to the factories that take one (the LSTM family)
  implementation  seqjax.unroll's implementation for the recurrent layers
  cell_options further keyword arguments of the cell factory (e.g. an NTM's
               memory_size); an argument the factory does not take is an error

A recurrent body is ``seqjax.layers.stacked(recurrent(cell), num_layers)``, a
convolutional one ``seqjax.tcn.tcn([hidden_size] * levels)``; with
``input_dropout`` (a language model's embedding dropout) either also drops its
input.
"""

from __future__ import annotations

import inspect
from typing import Optional

from seqjax import Cell, Implementation, cells, layers
from seqjax.tcn import tcn


def _builds_from_width(factory) -> bool:
  """Whether ``factory(hidden_size)`` is a complete call returning a ``Cell``."""
  signature = inspect.signature(factory)
  parameters = list(signature.parameters)
  if not parameters or parameters[0] != "hidden_size":  # e.g. delayed(cell, ...) wraps a cell
    return False
  required = [p for p in list(signature.parameters.values())[1:]
              if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
  return signature.return_annotation in ("Cell", Cell) and not required


def cell_factories() -> tuple[str, ...]:
  """Names of the cell factories in ``seqjax.cells`` that need only ``hidden_size``."""
  return tuple(sorted(name for name in cells.__all__
                      if inspect.isfunction(getattr(cells, name))
                      and _builds_from_width(getattr(cells, name))))


def validate(model) -> None:
  """Raises ValueError naming the bad ``config.model`` field."""
  factories = cell_factories()
  if model.cell != "tcn" and model.cell not in factories:
    raise ValueError(f"config.model.cell must be 'tcn' or name a cell factory in seqjax.cells "
                     f"({', '.join(factories)}), got {model.cell!r}")
  for field in ("hidden_size", "num_layers", "levels", "kernel_size"):
    value = model[field]
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
      raise ValueError(f"config.model.{field} must be a positive integer, got {value!r}")
  if not 0 <= model.dropout < 1:
    raise ValueError(f"config.model.dropout must be in [0, 1), got {model.dropout}")
  Implementation.check(model.implementation, "config.model.implementation")
  if model.cell != "tcn":
    _cell_options(model, getattr(cells, model.cell))


def _cell_options(model, factory) -> dict:
  """``config.model.cell_options`` as keyword arguments ``factory`` takes (ValueError if not)."""
  options = dict(model.get("cell_options", None) or {})
  accepted = set(inspect.signature(factory).parameters) - {"hidden_size"}
  unknown = sorted(set(options) - accepted)
  if unknown:
    raise ValueError(f"config.model.cell_options must be keyword arguments of "
                     f"seqjax.cells.{model.cell} ({', '.join(sorted(accepted))}), got {unknown}")
  return options


def build_body(model, *, input_dropout: Optional[float] = None) -> layers.Layer:
  """The body ``config.model`` describes, as a ``seqjax.layers.Layer``.

  Args:
    model: ``config.model`` (see the module docstring).
    input_dropout: rate of dropout on the body's input; ``None`` adds no
      input stage (for a TCN, no wrapping ``stacked`` layer: its params stay
      those of the bare TCN).
  """
  validate(model)
  if model.cell == "tcn":
    body = tcn([model.hidden_size] * model.levels, kernel_size=model.kernel_size,
               dropout=model.dropout)
    return body if input_dropout is None else layers.stacked(body, 1,
                                                             input_dropout=input_dropout)
  factory = getattr(cells, model.cell)
  options = {}
  if "forget_bias" in inspect.signature(factory).parameters:
    options["forget_bias"] = model.forget_bias
  options.update(_cell_options(model, factory))
  layer = layers.recurrent(factory(model.hidden_size, **options),
                           implementation=model.implementation)
  return layers.stacked(layer, model.num_layers, dropout=model.dropout,
                        input_dropout=input_dropout or 0.0)
