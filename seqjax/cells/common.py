"""Helpers shared by the cell factories."""

from __future__ import annotations

import functools
from typing import Callable, Union

import jax
import jax.numpy as jnp

from seqjax import checks

ActivationLike = Union[str, Callable[[jax.Array], jax.Array]]

_ACTIVATIONS = {
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "sigmoid": jax.nn.sigmoid,
    "identity": lambda x: x,
    "softsign": jax.nn.soft_sign,
}


def activation(name: ActivationLike, argument: str = "activation") -> Callable:
  """Resolves an activation given by name (tanh, relu, sigmoid, identity, softsign) or callable.

  Args:
    name: one of those names, or a callable ``(*B, H) -> (*B, H)``, which is
      returned unchanged.
    argument: the argument name the ValueError for an unknown ``name`` gives
      (e.g. ``"activation"`` or ``"output_activation"``).

  Returns:
    The activation function.
  """
  if callable(name):
    return name
  checks.one_of(argument, name, tuple(_ACTIVATIONS))
  return _ACTIVATIONS[name]


def activation_name(fn: ActivationLike) -> str:
  """The name an activation is shown by in a cell's ``name`` ("custom" if unnamed).

  Args:
    fn: an activation as ``activation`` accepts it: a name, returned as is, or
      a callable, shown by its ``__name__``.
  """
  return fn if isinstance(fn, str) else getattr(fn, "__name__", "custom")


def input_size_of(kernel: str) -> Callable:
  """``params -> D`` for cells whose input kernel ``params[kernel]`` is (D, ...)."""
  return lambda params: params[kernel].shape[0]


def check_input_size(input_size) -> int:
  """``input_size`` (D) as a positive int, or a one-line error naming it."""
  return checks.positive_int("input_size", input_size)


def zeros_carry(params, batch_shape, size: int, like: str):
  """A zero carry ``(*batch_shape, size)`` with the dtype of ``params[like]``."""
  return jnp.zeros(checks.batch_shape(batch_shape) + (size,), params[like].dtype)


def dense_params(keys, input_size: int, hidden_size: int, kernel_init, recurrent_init,
                 bias_init, dtype) -> dict:
  """``{"w_x": (D, H), "w_h": (H, H), "b": (H,)}`` of the single-matrix cells.

  Args:
    keys: the three PRNG keys for ``w_x``, ``w_h`` and ``b``, in that order.
    input_size: D, the size of the inputs' feature axis.
    hidden_size: H, the size of the hidden state.
    kernel_init: initialiser ``(key, shape, dtype) -> array`` of ``w_x`` (D, H).
    recurrent_init: initialiser ``(key, shape, dtype) -> array`` of ``w_h`` (H, H).
    bias_init: initialiser ``(key, shape, dtype) -> array`` of ``b`` (H,).
    dtype: the dtype passed to all three initialisers.
  """
  k_x, k_h, k_b = keys
  return {
      "w_x": kernel_init(k_x, (input_size, hidden_size), dtype),
      "w_h": recurrent_init(k_h, (hidden_size, hidden_size), dtype),
      "b": bias_init(k_b, (hidden_size,), dtype),
  }


def checked_step(input_size: Callable) -> Callable:
  """Decorates a cell's ``step`` with trace-time checks of its arguments.

  ``input_size`` is ``params -> D``. A call with ``x_t`` of the wrong feature
  size, or a carry leaf that is not floating (an int carry), raises a one-line
  error naming the argument, what was received and what was expected, instead
  of a ``dot_general`` shape error deep inside the step. Costs nothing at run
  time: the checks read static shapes and dtypes.
  """

  def decorate(step: Callable) -> Callable:

    @functools.wraps(step)
    def checked(params, carry, x):
      x_shape = checks.shape_of(x)
      try:
        size = input_size(params)
      except (KeyError, TypeError, IndexError, AttributeError):
        raise TypeError(f"params must be the params this cell's init built, got "
                        f"{type(params).__name__}") from None
      if not x_shape or x_shape[-1] != size:
        raise ValueError(f"x_t must have shape (*B, {size}) (the input_size the params were "
                         f"built for), got shape {x_shape}")
      for leaf in jax.tree_util.tree_leaves(carry):
        dtype = jnp.result_type(leaf)
        if not jnp.issubdtype(dtype, jnp.inexact):
          raise TypeError(f"carry must hold floating arrays like cell.initial_carry, "
                          f"got a leaf of dtype {dtype}")
      return step(params, carry, x)

    return checked

  return decorate
