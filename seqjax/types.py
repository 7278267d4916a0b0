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
    sequence: optional whole-sequence fast path with the meaning of a
      ``lax.scan`` of ``step``. Signature ``(params, carry, xs, *, mask,
      restart, restart_carry, reverse) -> (carry, ys)`` with time-major
      ``xs`` of shape ``(T, *B, D)``; ``mask`` and ``restart`` are ``None``
      or boolean ``(T, *B)`` (``restart[t]`` replaces the carry by
      ``restart_carry`` before step ``t`` is processed). ``seqjax.unroll``
      dispatches to it; tests compare it with the plain scan of ``step``.
      A cell derived with ``cell._replace(step=...)`` must also replace (or
      set to ``None``) ``sequence``, which still computes the old step.
    fast_on: backends (``jax.default_backend()`` names) on which
      ``unroll(..., implementation="auto")`` picks ``sequence`` over the plain
      scan; chosen by measurement (see ``benchmarks/``).
    onednn: optional whole-sequence CPU kernel from oneDNN (the library behind
      PyTorch's CPU ``nn.LSTM``), signature as ``sequence`` plus a keyword
      ``time_major``: ``xs`` and ``ys`` may be batch-major ``(*B, T, ...)``,
      which oneDNN reads without a transpose. Only ``unroll(...,
      implementation="onednn")`` uses it (see ``seqjax/_native/onednn.py``).
      Like ``sequence`` it must be replaced when ``step`` is.
  """

  init: Callable[[PRNGKey, int], Params]
  initial_carry: Callable[[Params, tuple[int, ...]], Carry]
  step: Callable[[Params, Carry, Array], tuple[Carry, Array]]
  input_size: Callable[[Params], int]
  hidden_size: int
  output_size: int
  name: str
  sequence: Optional[Callable[..., tuple[Carry, Array]]] = None
  fast_on: tuple[str, ...] = ("cpu", "gpu", "tpu")
  onednn: Optional[Callable[..., tuple[Carry, Array]]] = None

  def __repr__(self) -> str:
    return f"Cell({self.name})"


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
