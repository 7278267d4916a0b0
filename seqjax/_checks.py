"""Argument checks that fail at trace time with messages naming the argument."""

from __future__ import annotations

import numbers
import operator
from typing import Any, Iterable

import jax.numpy as jnp
import numpy as np


def positive_int(name: str, value: Any) -> int:
  """Returns ``value`` if it is an integer > 0, else raises ValueError."""
  if isinstance(value, bool) or not isinstance(value, numbers.Integral):
    raise TypeError(f"{name} must be a positive integer, got {value!r} "
                    f"of type {type(value).__name__}")
  if value <= 0:
    raise ValueError(f"{name} must be a positive integer, got {value}")
  return int(value)


def non_negative_int(name: str, value: Any) -> int:
  """An int >= 0 from a Python, numpy or 0-d jax integer (not a bool)."""
  if isinstance(value, (bool, np.bool_)):
    raise TypeError(f"{name} must be an integer, got {value!r}")
  try:
    result = operator.index(value)
  except TypeError:
    raise TypeError(f"{name} must be an integer, got {value!r} "
                    f"({type(value).__name__})") from None
  if result < 0:
    raise ValueError(f"{name} must be >= 0, got {result}")
  return result


def positive(name: str, value: Any) -> float:
  """Returns ``value`` if it is a real number > 0, else raises ValueError."""
  if isinstance(value, bool) or not isinstance(value, numbers.Real):
    raise TypeError(f"{name} must be a positive number, got {value!r}")
  if not value > 0:
    raise ValueError(f"{name} must be > 0, got {value}")
  return float(value)


def in_range(name: str, value: Any, low: float, high: float,
             low_open: bool = False) -> float:
  """Returns ``value`` if ``low (<=|<) value <= high``, else raises ValueError."""
  if isinstance(value, bool) or not isinstance(value, numbers.Real):
    raise TypeError(f"{name} must be a number, got {value!r}")
  ok = (low < value if low_open else low <= value) and value <= high
  if not ok:
    bracket = "(" if low_open else "["
    raise ValueError(f"{name} must be in {bracket}{low}, {high}], got {value}")
  return float(value)


def one_of(name: str, value: Any, choices: Iterable[Any]) -> Any:
  choices = tuple(choices)
  if value not in choices:
    raise ValueError(f"{name} must be one of {choices}, got {value!r}")
  return value


def float_array(name: str, x: Any) -> None:
  """Raises TypeError unless ``x`` has a floating (or complex) dtype."""
  dtype = jnp.result_type(x)
  if not (jnp.issubdtype(dtype, jnp.floating)
          or jnp.issubdtype(dtype, jnp.complexfloating)):
    raise TypeError(f"{name} must be a floating-point array, got dtype "
                    f"{np.dtype(dtype).name} (cast it, e.g. x.astype(jnp.float32))")


def shape_of(x: Any) -> tuple[int, ...]:
  return tuple(np.shape(x))
