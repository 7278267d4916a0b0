"""Helpers shared by the cell factories."""

from __future__ import annotations

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
  """Resolves an activation given by name (tanh, relu, sigmoid, identity, softsign) or callable."""
  if callable(name):
    return name
  checks.one_of(argument, name, tuple(_ACTIVATIONS))
  return _ACTIVATIONS[name]


def activation_name(fn: ActivationLike) -> str:
  return fn if isinstance(fn, str) else getattr(fn, "__name__", "custom")


def input_size_of(kernel: str) -> Callable:
  """``params -> D`` for cells whose input kernel ``params[kernel]`` is (D, ...)."""
  return lambda params: params[kernel].shape[0]


def check_input_size(input_size) -> int:
  return checks.positive_int("input_size", input_size)


def zeros_carry(params, batch_shape, size: int, like: str):
  """A zero carry ``(*batch_shape, size)`` with the dtype of ``params[like]``."""
  return jnp.zeros(checks.batch_shape(batch_shape) + (size,), params[like].dtype)


def dense_params(keys, input_size: int, hidden_size: int, kernel_init, recurrent_init,
                 bias_init, dtype) -> dict:
  """``{"w_x": (D, H), "w_h": (H, H), "b": (H,)}`` of the single-matrix cells.

  ``keys`` are the three PRNG keys for ``w_x``, ``w_h`` and ``b``.
  """
  k_x, k_h, k_b = keys
  return {
      "w_x": kernel_init(k_x, (input_size, hidden_size), dtype),
      "w_h": recurrent_init(k_h, (hidden_size, hidden_size), dtype),
      "b": bias_init(k_b, (hidden_size,), dtype),
  }
