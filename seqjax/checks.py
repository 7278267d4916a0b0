"""Argument checks that fail at trace time with messages naming the argument."""

from __future__ import annotations

import numbers
import operator
from typing import Any, Iterable

import jax
import jax.numpy as jnp
import numpy as np


def positive_int(name: str, value: Any) -> int:
  """Returns ``value`` if it is an integer > 0, else raises ValueError.

  Args:
    name: the argument's name, given in the error message.
    value: the value to check; a bool or a non-integer raises TypeError.
  """
  if isinstance(value, bool) or not isinstance(value, numbers.Integral):
    raise TypeError(f"{name} must be a positive integer, got {value!r} "
                    f"of type {type(value).__name__}")
  if value <= 0:
    raise ValueError(f"{name} must be a positive integer, got {value}")
  return int(value)


def non_negative_int(name: str, value: Any) -> int:
  """An int >= 0 from a Python, numpy or 0-d jax integer (not a bool).

  Args:
    name: the argument's name, given in the error message.
    value: the value to check; a bool or anything ``operator.index`` rejects
      raises TypeError, a negative integer ValueError.
  """
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


def float_dtype(dtype: Any, name: str = "dtype") -> np.dtype:
  """``dtype`` as a numpy float32 or float64 dtype, else TypeError; float64 without
  ``jax_enable_x64`` is a ValueError (JAX would silently compute in float32).

  Args:
    dtype: anything ``np.dtype`` accepts.
    name: the argument's name, given in the error message.
  """
  dtype = np.dtype(dtype)
  if dtype not in (np.float32, np.float64):
    raise TypeError(f"{name} must be float32 or float64, got {dtype}")
  if dtype == np.float64 and not jax.config.jax_enable_x64:
    raise ValueError(f"{name}=float64 needs jax_enable_x64 (wrap the call in "
                     "`with jax.enable_x64(True):`)")
  return dtype


def positive(name: str, value: Any) -> float:
  """Returns ``value`` if it is a finite real number > 0, else raises ValueError.

  Args:
    name: the argument's name, given in the error message.
    value: the value to check; a bool or a non-real raises TypeError.
  """
  if isinstance(value, bool) or not isinstance(value, numbers.Real):
    raise TypeError(f"{name} must be a positive number, got {value!r}")
  if not value > 0:
    raise ValueError(f"{name} must be > 0, got {value}")
  if not np.isfinite(value):
    raise ValueError(f"{name} must be finite, got {value}")
  return float(value)


def in_range(name: str, value: Any, low: float, high: float,
             low_open: bool = False) -> float:
  """Returns ``value`` if ``low (<=|<) value <= high``, else raises ValueError.

  Args:
    name: the argument's name, given in the error message.
    value: the value to check; a bool or a non-real raises TypeError.
    low: the lower bound.
    high: the upper bound, always allowed.
    low_open: exclude ``low`` itself (``low < value``); by default it is
      allowed (``low <= value``).
  """
  if isinstance(value, bool) or not isinstance(value, numbers.Real):
    raise TypeError(f"{name} must be a number, got {value!r}")
  ok = (low < value if low_open else low <= value) and value <= high
  if not ok:
    bracket = "(" if low_open else "["
    raise ValueError(f"{name} must be in {bracket}{low}, {high}], got {value}")
  return float(value)


def one_of(name: str, value: Any, choices: Iterable[Any]) -> Any:
  """Returns ``value`` if it is one of ``choices``, else a ValueError listing them.

  Args:
    name: the argument's name, given in the error message.
    value: the value to check.
    choices: the allowed values.
  """
  choices = tuple(choices)
  if value not in choices:
    raise ValueError(f"{name} must be one of {choices}, got {value!r}")
  return value


def float_array(name: str, x: Any) -> None:
  """Raises TypeError unless ``x`` has a floating (or complex) dtype.

  Args:
    name: the argument's name, given in the error message.
    x: an array of any shape, or anything ``jnp.result_type`` accepts.
  """
  dtype = jnp.result_type(x)
  if not (jnp.issubdtype(dtype, jnp.floating)
          or jnp.issubdtype(dtype, jnp.complexfloating)):
    raise TypeError(f"{name} must be a floating-point array, got dtype "
                    f"{np.dtype(dtype).name} (cast it, e.g. x.astype(jnp.float32))")


def shape_of(x: Any) -> tuple[int, ...]:
  """The shape of an array, scalar or nested sequence as a tuple.

  Args:
    x: the array, scalar (shape ``()``) or nested sequence.
  """
  return tuple(np.shape(x))


def boolean(name: str, value: Any) -> bool:
  """Returns ``value`` if it is a real boolean (Python or numpy), else raises TypeError.

  Args:
    name: the argument's name, given in the error message.
    value: the value to check.
  """
  if not isinstance(value, (bool, np.bool_)):
    raise TypeError(f"{name} must be True or False, got {value!r} "
                    f"of type {type(value).__name__}")
  return bool(value)


def finite(name: str, value: Any) -> float:
  """Returns ``value`` as a float if it is a finite real number, else raises.

  Args:
    name: the argument's name, given in the error message.
    value: the value to check; a bool or a non-real raises TypeError, an
      infinity or NaN ValueError.
  """
  if isinstance(value, bool) or not isinstance(value, numbers.Real):
    raise TypeError(f"{name} must be a real number, got {value!r} "
                    f"of type {type(value).__name__}")
  if not np.isfinite(value):
    raise ValueError(f"{name} must be finite, got {value}")
  return float(value)


def _key_name(path) -> str:
  return "".join(str(p) for p in path) or "(root)"


def tree_like(name: str, tree: Any, expected: Any) -> None:
  """Raises a one-line error unless ``tree`` has ``expected``'s keys and leaf shapes.

  The message names the first missing or extra key, or the key whose shape
  differs, with the shape received and the one expected.

  Args:
    name: the argument's name (e.g. ``"params"``), given in the error message;
      a differing leaf is named ``name`` followed by its key path.
    tree: the pytree to check.
    expected: a pytree of arrays or ``jax.ShapeDtypeStruct`` (e.g. from
      ``jax.eval_shape``) with the keys and leaf shapes ``tree`` must have.
  """
  import jax  # local: checks stays importable without initialising a backend

  got = dict(jax.tree_util.tree_flatten_with_path(tree)[0])
  want = dict(jax.tree_util.tree_flatten_with_path(expected)[0])
  got_names = {_key_name(k): v for k, v in got.items()}
  want_names = {_key_name(k): v for k, v in want.items()}
  for key in want_names:
    if key not in got_names:
      raise ValueError(f"{name} is missing {key} (expected shape "
                       f"{tuple(want_names[key].shape)}); present: {sorted(got_names)}")
  for key in got_names:
    if key not in want_names:
      raise ValueError(f"{name} has an unexpected entry {key}; expected only "
                       f"{sorted(want_names)}")
  for key, leaf in got_names.items():
    shape, expected_shape = shape_of(leaf), tuple(want_names[key].shape)
    if shape != expected_shape:
      raise ValueError(f"{name}{key} has shape {shape}, expected {expected_shape}")


def batch_shape(value: Any, name: str = "batch_shape") -> tuple[int, ...]:
  """``value`` as a tuple of non-negative ints (``()`` means unbatched).

  Args:
    value: a tuple or list of non-negative ints, e.g. ``(32,)`` or ``()``;
      anything else raises TypeError.
    name: the argument's name, given in the error message.
  """
  if isinstance(value, (tuple, list)) and all(
      isinstance(d, (numbers.Integral, np.integer)) and not isinstance(d, bool) and d >= 0
      for d in value):
    return tuple(int(d) for d in value)
  raise TypeError(f"{name} must be a tuple of non-negative ints such as (32,) or () "
                  f"for unbatched, got {value!r}")
