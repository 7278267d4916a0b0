"""Shape legend, carry types and the cell record shared by every part of seqjax.

Shape legend used in every docstring:

  B   batch (any number of leading axes, written ``*B``; ``()`` means unbatched)
  T   time
  D   input features
  H   hidden units
  O   output features (``cell.output_size``)

Arrays are batch-major, ``(*B, T, D)``, unless a function says ``time_major``,
in which case they are ``(T, *B, D)``. Features are always the last axis.
"""

from __future__ import annotations

import enum
from typing import Any, Callable, NamedTuple, Optional

import jax
import optax

Array = jax.Array
PRNGKey = jax.Array
Params = Any  # a pytree of arrays (nested dicts)
Carry = Any  # an array or a NamedTuple of arrays, each (*B, ...)

#: Parameters stored under this key of a params dict are fixed: training leaves
#: them alone (see ``seqjax.trainable_mask``). Echo-state reservoirs and fixed
#: or sampled timescales live here.
FROZEN = "frozen"


class LSTMCarry(NamedTuple):
  """Carry of the LSTM family."""

  h: Array  # shape=(*B, H): hidden state, also the cell's output.
  c: Array  # shape=(*B, H): memory cell.


class Implementation(str, enum.Enum):
  """How ``seqjax.unroll`` runs a cell over time (the ``implementation`` argument).

  The one list of these names: ``unroll``, ``layers.recurrent``, the Flax
  adapters and the experiment configs all check against it with
  ``Implementation.check``.
  """

  AUTO = "auto"  # the cell's fast path on the backends it was measured faster on, else SCAN
  SCAN = "scan"  # lax.scan of cell.step
  FAST = "fast"  # the cell's whole-sequence fast path (an error if it has none)

  @classmethod
  def check(cls, value: Any, name: str = "implementation") -> "Implementation":
    """``value`` as an ``Implementation``, or a ValueError naming ``name``."""
    try:
      return cls(value)
    except ValueError:
      raise ValueError(f"{name} must be one of {tuple(i.value for i in cls)}, "
                       f"got {value!r}") from None


class FastPath(NamedTuple):
  """A whole-sequence implementation of one particular ``step``.

  ``run(params, carry, xs, *, mask, restart, restart_carry, reverse) ->
  (carry, ys)`` has the meaning of a ``lax.scan`` of ``step`` (see
  ``seqjax.scan.scan_steps``): time-major ``xs`` (T, *B, D); ``mask`` and
  ``restart`` are ``None`` or boolean (T, *B) (``restart[t]`` replaces the
  carry by ``restart_carry`` before step t). It records the ``step`` it
  computes, and ``seqjax.unroll`` refuses it for a cell whose ``step`` is any
  other function: a derived cell can never run a stale fast path.
  """

  run: Callable[..., tuple[Carry, Array]]
  backends: tuple[str, ...]  # jax.default_backend() names where "auto" takes it (measured)
  step: Callable[..., tuple[Carry, Array]]  # the step function ``run`` computes


class Cell(NamedTuple):
  """A recurrent cell: a record of pure functions closed over hyperparameters.

  Built by a factory such as ``seqjax.cells.lstm(hidden_size=256)``, in the
  style of optax's ``GradientTransformation``::

    params = cell.init(key, input_size)              # pytree of arrays
    carry = cell.initial_carry(params, batch_shape)  # batch_shape=() unbatched
    carry, y = cell.step(params, carry, x_t)         # x_t: (*B, D) -> y: (*B, O)

  Attributes:
    init: ``(key, input_size) -> params``.
    initial_carry: ``(params, batch_shape) -> carry``; every leaf has shape
      ``(*batch_shape, ...)``. It may read ``params`` only for shapes and
      dtypes, so it also works on the shapes of
      ``jax.eval_shape(functools.partial(cell.init, input_size=D), key)``
      (``input_size`` must stay a Python int).
    step: ``(params, carry, x_t) -> (carry, y_t)``, one time step on the raw
      input; ``x_t`` is ``(*B, D)`` and ``y_t`` is ``(*B, O)``. This is the
      definition of the cell.
    input_size: ``params -> D``, the input size ``params`` were built for.
    hidden_size: H, the number of recurrent units.
    output_size: O, the size of ``y_t``.
    name: a short human-readable description.
    fast: optional ``FastPath``, a whole-sequence implementation of ``step``
      that ``seqjax.unroll`` dispatches to (``Implementation``); tests compare
      it with the plain scan of ``step`` in outputs and gradients.

  Derive a cell with another step by ``cell.with_step(new_step)`` (or
  ``cell._replace(step=...)``): both drop the fast path, which computes the
  old step.
  """

  init: Callable[[PRNGKey, int], Params]
  initial_carry: Callable[[Params, tuple[int, ...]], Carry]
  step: Callable[[Params, Carry, Array], tuple[Carry, Array]]
  input_size: Callable[[Params], int]
  hidden_size: int
  output_size: int
  name: str
  fast: Optional[FastPath] = None

  def with_step(self, step: Callable[[Params, Carry, Array], tuple[Carry, Array]],
                **changes: Any) -> "Cell":
    """This cell with another ``step`` (and any other ``changes``), no fast path."""
    return _namedtuple_replace(self, step=step, fast=None, **changes)

  def __repr__(self) -> str:
    return f"Cell({self.name})"


def _cell_replace(self: Cell, **changes: Any) -> Cell:
  """``Cell._replace`` that drops the fast path when ``step`` changes alone."""
  if "step" in changes and "fast" not in changes:
    changes["fast"] = None
  return _namedtuple_replace(self, **changes)


# NamedTuple forbids defining ``_replace`` in the class body; a derived cell
# must not keep a fast path that computes the old step, so patch it here.
_namedtuple_replace = Cell._replace
Cell._replace = _cell_replace  # type: ignore[method-assign]

def trainable_mask(params: Params) -> Any:
  """Boolean pytree like ``params``: False under any ``FROZEN`` key.

  Note that ``optax.masked(opt, mask)`` passes the *raw gradient* through for
  masked-out leaves; to keep them fixed use ``keep_frozen(opt)``.
  """

  def mark(tree, trainable):
    if isinstance(tree, dict):
      return {k: mark(v, trainable and k != FROZEN) for k, v in tree.items()}
    return jax.tree_util.tree_map(lambda _: trainable, tree)

  return mark(params, True)


def keep_frozen(optimizer: optax.GradientTransformation) -> optax.GradientTransformation:
  """Wraps ``optimizer`` so that parameters under a ``FROZEN`` key never change.

  Trainable leaves get ``optimizer``'s updates; frozen leaves get zero updates
  and no optimiser state (``optax.multi_transform`` with ``set_to_zero``).
  """

  def labels(params):
    return jax.tree_util.tree_map(lambda t: "trainable" if t else "frozen",
                                  trainable_mask(params))

  return optax.multi_transform(
      {"trainable": optimizer, "frozen": optax.set_to_zero()}, labels)
