"""Flax adapters: every ``seqjax.Cell`` as a Flax module, linen and nnx.

A seqjax cell is a record of pure functions over a params pytree; these
wrappers only decide where Flax keeps that pytree. The cell's own layout is
kept intact (one pytree under one name), so everything written for seqjax
params, including ``seqjax.trainable_mask`` and the ``"frozen"`` subtree of
echo-state reservoirs, works on the Flax variables too.

Linen:

* ``LinenCell``: an ``nn.RNNCellBase``; drop it into ``nn.RNN``,
  ``nn.Bidirectional`` or a hand-written ``nn.scan``. Its params live under
  ``"cell"``.
* ``LinenRNN``: a whole-sequence module that calls ``seqjax.unroll`` (the
  cell's fused fast path where it has one, and seqjax's ``mask`` / ``reset``
  semantics).

NNX:

* ``NNXCell``: an ``nnx.RNNCellBase``; usable step by step, inside
  ``nnx.RNN``, or over a whole sequence with ``NNXCell.unroll``. Every array
  of the cell's params is its own ``nnx.Param`` in a dict that mirrors the
  params pytree, so state paths read ``(..., "params", "w_x")`` and the
  filter ``TRAINABLE`` can leave a ``"frozen"`` subtree out of training.

Shapes: B batch (any number of leading axes, including none), T time,
D input features, O output features (``cell.output_size``).
"""

from __future__ import annotations

import functools
from typing import Any, Optional

import jax
from flax import linen as nn
from flax import nnx

from seqjax import checks
from seqjax.scan import unroll as _unroll
from seqjax.types import FROZEN, Array, Carry, Cell, Params, PRNGKey

__all__ = ["LinenCell", "LinenRNN", "NNXCell", "TRAINABLE"]

#: nnx filter selecting the trainable parameters: every ``nnx.Param`` except
#: those under a ``"frozen"`` key (echo-state reservoirs, fixed timescales).
#: Use it as ``nnx.Optimizer(model, tx, wrt=TRAINABLE)`` together with
#: ``nnx.value_and_grad(loss, argnums=nnx.DiffState(0, TRAINABLE))``.
TRAINABLE = nnx.All(nnx.Param, nnx.Not(nnx.PathContains(FROZEN)))


def _check_cell(cell: Any) -> Cell:
  if not isinstance(cell, Cell):
    raise TypeError(f"cell must be a seqjax.Cell (e.g. seqjax.cells.rnn(8)), "
                    f"got {type(cell).__name__}")
  return cell


def _split_input_shape(input_shape: Any) -> tuple[tuple[int, ...], int]:
  """``(*B, D)`` -> ``(B, D)``, with a clear error for anything else."""
  try:
    shape = tuple(int(n) for n in input_shape)
  except TypeError:
    raise TypeError(f"input_shape must be a tuple of ints (*B, D), got "
                    f"{input_shape!r}") from None
  if not shape:
    raise ValueError("input_shape must be (*B, D) with at least the feature "
                     "axis D, got ()")
  checks.positive_int("input_shape[-1]", shape[-1])
  return shape[:-1], shape[-1]


def _initial_carry(cell: Cell, rng: Optional[PRNGKey],
                   input_shape: tuple[int, ...]) -> Carry:
  """``cell.initial_carry`` for inputs ``(*B, D)``, from abstract params only."""
  cell = _check_cell(cell)
  batch_shape, input_size = _split_input_shape(input_shape)
  if rng is None:
    rng = jax.random.key(0)
  # input_size must stay a Python int: eval_shape would otherwise trace it.
  params = jax.eval_shape(functools.partial(cell.init, input_size=input_size),
                          rng)
  return cell.initial_carry(params, batch_shape)


# ----------------------------------------------------------------------------
# Linen
# ----------------------------------------------------------------------------


class LinenCell(nn.RNNCellBase):
  """A ``seqjax.Cell`` as a linen ``RNNCellBase``, for ``nn.RNN`` and friends.

  The cell's params are one param named ``"cell"`` holding
  ``cell.init(key, D)`` unchanged, so inside ``nn.RNN(LinenCell(cell))`` they
  are ``variables["params"]["cell"]["cell"]`` and can be passed straight to
  ``cell.step`` or ``seqjax.unroll``.

  Shapes: ``carry`` leaves ``(*B, ...)`` as ``cell.initial_carry`` makes them,
  ``x`` ``(*B, D)``, output ``y`` ``(*B, O)``.

  Built inside another module's compact method, the ``LinenCell`` becomes that
  module's child, as any Flax cell does, so its params sit at
  ``params[<cell name>]["cell"]``; name it (``LinenCell(cell, name="rnn")``) for
  a stable path.

  Note that ``nn.RNN(..., seq_lengths=...)`` follows Flax's convention: padded
  steps still run and their outputs are *not* zeroed (the returned carry is the
  one after each row's last real step). ``LinenRNN`` with ``mask`` zeroes them.

  Attributes:
    cell: a ``seqjax.Cell``, e.g. ``seqjax.cells.rnn(8)``.

  Example:

    >>> import jax, jax.numpy as jnp
    >>> import flax.linen as nn
    >>> from seqjax.cells.rnn import rnn
    >>> from seqjax.flax import LinenCell
    >>> layer = nn.RNN(LinenCell(rnn(8)))
    >>> xs = jnp.ones((2, 5, 3))                       # (B, T, D)
    >>> variables = layer.init(jax.random.key(0), xs)
    >>> layer.apply(variables, xs).shape               # (B, T, O)
    (2, 5, 8)
    >>> jax.tree.map(jnp.shape, variables["params"]["cell"]["cell"])
    {'b': (8,), 'w_h': (8, 8), 'w_x': (3, 8)}
  """

  cell: Cell

  @nn.compact
  def __call__(self, carry: Carry, x: Array) -> tuple[Carry, Array]:
    """One step: ``(carry, x (*B, D)) -> (carry, y (*B, O))``."""
    cell = _check_cell(self.cell)
    params = self.param("cell", lambda key: cell.init(key, x.shape[-1]))
    return cell.step(params, carry, x)

  @nn.nowrap
  def initialize_carry(self, rng: Optional[PRNGKey],
                       input_shape: tuple[int, ...]) -> Carry:
    """The cell's initial carry for inputs of shape ``input_shape``.

    Args:
      rng: unused except for shape inference (seqjax carries start
        deterministically); may be None.
      input_shape: ``(*B, D)``, the shape of one step's input.

    Returns:
      ``cell.initial_carry`` for batch shape ``B``, leaves ``(*B, ...)`` in the
      params' dtype.
    """
    return _initial_carry(self.cell, rng, input_shape)

  @property
  def num_feature_axes(self) -> int:
    return 1


class LinenRNN(nn.Module):
  """A ``seqjax.Cell`` run over a whole sequence by ``seqjax.unroll``.

  Unlike ``nn.RNN(LinenCell(cell))`` this goes through ``seqjax.unroll``, so it
  uses the cell's fused whole-sequence path where one exists, and has seqjax's
  ``mask`` (padding anywhere; padded outputs are zero and the carry is held)
  and ``reset`` (packed segments) semantics. Params: one param ``"cell"``
  holding ``cell.init(key, D)`` unchanged.

  Attributes:
    cell: a ``seqjax.Cell``.
    time_major: layout of ``xs``, ``mask``, ``reset`` and the outputs;
      ``(T, *B, ...)`` if True, else ``(*B, T, ...)``.
    unroll, remat, implementation: passed to ``seqjax.unroll``.

  Example:

    >>> import jax, jax.numpy as jnp
    >>> from seqjax.cells.rnn import rnn
    >>> from seqjax.flax import LinenRNN
    >>> layer = LinenRNN(rnn(8))
    >>> xs = jnp.ones((2, 5, 3))                       # (B, T, D)
    >>> mask = jnp.arange(5) < jnp.array([[5], [3]])   # (B, T)
    >>> variables = layer.init(jax.random.key(0), xs)
    >>> carry, ys = layer.apply(variables, xs, mask=mask, return_carry=True)
    >>> ys.shape, carry.shape                          # (B, T, O), (B, H)
    ((2, 5, 8), (2, 8))
    >>> bool(jnp.all(ys[1, 3:] == 0))                  # padded steps are zero
    True
  """

  cell: Cell
  time_major: bool = False
  unroll: int = 1
  remat: bool = False
  implementation: str = "auto"

  @nn.compact
  def __call__(self,
               xs: Array,
               *,
               mask: Optional[Array] = None,
               reset: Optional[Array] = None,
               reverse: bool = False,
               carry: Optional[Carry] = None,
               return_carry: bool = False):
    """Runs the cell over ``xs``.

    Args:
      xs: ``(*B, T, D)`` (``(T, *B, D)`` if ``time_major``).
      mask: optional booleans ``(*B, T)`` (``(T, *B)`` if ``time_major``),
        True on real steps.
      reset: optional booleans shaped like ``mask``, True at the first step of
        each new segment of a packed row.
      reverse: process time right to left (outputs stay in input order).
      carry: initial carry, leaves ``(*B, ...)``; defaults to
        ``cell.initial_carry``.
      return_carry: also return the final carry.

    Returns:
      ``ys`` of shape ``(*B, T, O)`` (``(T, *B, O)`` if ``time_major``), or
      ``(final_carry, ys)`` if ``return_carry``.
    """
    cell = _check_cell(self.cell)
    xs_shape = checks.shape_of(xs)
    if len(xs_shape) < 2:
      raise ValueError(f"xs must have at least time and feature axes, got "
                       f"shape {xs_shape}")
    params = self.param("cell", lambda key: cell.init(key, xs_shape[-1]))
    final, ys = _unroll(cell, params, xs, carry, mask=mask, reset=reset,
                        reverse=reverse, time_major=self.time_major,
                        unroll=self.unroll, remat=self.remat,
                        implementation=self.implementation)
    return (final, ys) if return_carry else ys

  @nn.nowrap
  def initialize_carry(self, rng: Optional[PRNGKey],
                       input_shape: tuple[int, ...]) -> Carry:
    """The cell's initial carry for one step's input shape ``(*B, D)``."""
    return _initial_carry(self.cell, rng, input_shape)


# ----------------------------------------------------------------------------
# NNX
# ----------------------------------------------------------------------------


def _is_variable(x: Any) -> bool:
  return isinstance(x, nnx.Variable)


class NNXCell(nnx.RNNCellBase):
  """A ``seqjax.Cell`` as an nnx ``RNNCellBase``, holding its own params.

  Every array of ``cell.init(rngs.params(), input_size)`` becomes an
  ``nnx.Param`` in ``self.params``, a dict with the layout of the cell's params
  (so state paths read ``("params", "w_x")``, ``("params", "frozen", ...)``).
  One ``nnx.Param`` per array rather than one holding the whole pytree: array
  variables support ``v[...]``, sharding metadata and path filters such as
  ``TRAINABLE``, which leaves an echo-state reservoir's ``"frozen"`` subtree
  out of training.

  Shapes: ``carry`` leaves ``(*B, ...)``, ``x`` ``(*B, D)``, ``y`` ``(*B, O)``.

  Args:
    cell: a ``seqjax.Cell``.
    input_size: D, > 0.
    rngs: an ``nnx.Rngs``; ``rngs.params()`` seeds ``cell.init``.

  Example:

    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> from seqjax.cells.rnn import rnn
    >>> from seqjax.flax import NNXCell
    >>> layer = NNXCell(rnn(8), 3, rngs=nnx.Rngs(0))
    >>> xs = jnp.ones((2, 5, 3))                              # (B, T, D)
    >>> carry = layer.initialize_carry((2, 3))                # (B, D) -> (B, H)
    >>> carry, y = layer(carry, xs[:, 0])                     # one step
    >>> y.shape
    (2, 8)
    >>> carry, ys = layer.unroll(xs, mask=jnp.ones((2, 5), bool))  # whole sequence
    >>> ys.shape
    (2, 5, 8)
    >>> nnx.RNN(layer)(xs).shape                              # or inside nnx.RNN
    (2, 5, 8)
  """

  def __init__(self, cell: Cell, input_size: int, *, rngs: nnx.Rngs):
    self.cell = _check_cell(cell)
    self.input_size = checks.positive_int("input_size", input_size)
    if not isinstance(rngs, nnx.Rngs):
      raise TypeError(f"rngs must be an nnx.Rngs, got {type(rngs).__name__}")
    params = cell.init(rngs.params(), self.input_size)
    self.params = nnx.data(jax.tree_util.tree_map(nnx.Param, params))

  @property
  def cell_params(self) -> Params:
    """The params as a plain pytree of arrays, the layout of ``cell.init``."""
    return jax.tree_util.tree_map(lambda v: v.get_value(), self.params,
                                  is_leaf=_is_variable)

  def __call__(self, carry: Carry, x: Array) -> tuple[Carry, Array]:
    """One step: ``(carry, x (*B, D)) -> (carry, y (*B, O))``."""
    return self.cell.step(self.cell_params, carry, x)

  def initialize_carry(self, input_shape: tuple[int, ...],
                       rngs: Any = None) -> Carry:
    """The cell's initial carry for one step's input shape.

    Args:
      input_shape: ``(*B, D)``; D must equal the ``input_size`` the cell was
        built with.
      rngs: unused (seqjax carries start deterministically); accepted for the
        ``nnx.RNNCellBase`` protocol.

    Returns:
      ``cell.initial_carry`` for batch shape ``B``, leaves ``(*B, ...)``.
    """
    del rngs
    batch_shape, input_size = _split_input_shape(input_shape)
    if input_size != self.input_size:
      raise ValueError(f"input_shape must end in input_size={self.input_size}, "
                       f"got {tuple(input_shape)}")
    return self.cell.initial_carry(self.cell_params, batch_shape)

  @property
  def num_feature_axes(self) -> int:
    return 1

  def unroll(self,
             xs: Array,
             carry: Optional[Carry] = None,
             *,
             mask: Optional[Array] = None,
             reset: Optional[Array] = None,
             reverse: bool = False,
             time_major: bool = False,
             unroll: int = 1,
             remat: bool = False,
             implementation: str = "auto") -> tuple[Carry, Array]:
    """Runs the cell over a whole sequence with ``seqjax.unroll``.

    Args:
      xs: ``(*B, T, D)`` (``(T, *B, D)`` if ``time_major``).
      carry: initial carry, leaves ``(*B, ...)``; defaults to
        ``cell.initial_carry``.
      mask: optional booleans ``(*B, T)`` (``(T, *B)`` if ``time_major``),
        True on real steps; padded steps hold the carry and output zeros.
      reset: optional booleans shaped like ``mask``, True at the first step of
        each new segment of a packed row.
      reverse, time_major, unroll, remat, implementation: as in
        ``seqjax.unroll``.

    Returns:
      ``(final_carry, ys)``, ``ys`` of shape ``(*B, T, O)`` (``(T, *B, O)`` if
      ``time_major``).
    """
    return _unroll(self.cell, self.cell_params, xs, carry, mask=mask,
                   reset=reset, reverse=reverse, time_major=time_major,
                   unroll=unroll, remat=remat, implementation=implementation)
