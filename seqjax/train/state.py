"""The train state: everything a training run needs to continue exactly.

``TrainState`` is a ``NamedTuple``, hence a pytree: ``jax.jit`` takes it whole
(and donates its buffers), ``seqjax.train.sharding`` lays it out over devices,
and orbax checkpoints it leaf by leaf. The PRNG key is stored as raw key data
(``uint32``) rather than as a typed key array because raw data saves, restores
and shards like any other integer array.
"""

from __future__ import annotations

import numbers
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from seqjax.types import Params, PRNGKey


class TrainState(NamedTuple):
  """Parameters, optimiser state, step, PRNG key and truncated-BPTT carry.

  Built by ``create_train_state`` and advanced by the function that
  ``seqjax.train.step.make_train_step`` returns. The per-step key is
  ``jax.random.fold_in(key_from(rng), step)``, so a resumed run draws exactly
  the random numbers the uninterrupted run would have drawn.
  """

  step: jax.Array  # shape=(), dtype=int32: number of updates applied so far.
  params: Params  # pytree of arrays (nested dicts).
  opt_state: optax.OptState  # state of the optimiser, a pytree.
  rng: jax.Array  # shape=(2,), dtype=uint32: base PRNG key as raw key data.
  # Persistent truncated-BPTT carry, leaves (B, ...), or None: the final carry
  # of one chunk of a long stream starts the next chunk.
  carry: Any = None


def key_from(rng: jax.Array) -> PRNGKey:
  """Typed PRNG key from raw key data (a typed key is returned as it is).

  Args:
    rng: raw key data, ``uint32`` of shape ``(2,)`` for the default threefry
      implementation (what ``jax.random.key_data`` returns), or a typed key.

  Returns:
    A typed key array of shape ``()``.
  """
  if jnp.issubdtype(jnp.result_type(rng), jax.dtypes.prng_key):
    return rng
  return jax.random.wrap_key_data(rng)


def _raw_key(rng: Any) -> jax.Array:
  """Raw ``uint32`` key data from a seed, a typed key or legacy key data."""
  if isinstance(rng, bool):
    raise TypeError(f"rng must be an integer seed or a PRNG key, got {rng!r}")
  if isinstance(rng, numbers.Integral):
    return jax.random.key_data(jax.random.key(int(rng)))
  if not hasattr(rng, "dtype"):
    raise TypeError(f"rng must be an integer seed or a PRNG key, got "
                    f"{type(rng).__name__}")
  if jnp.issubdtype(rng.dtype, jax.dtypes.prng_key):
    if rng.shape != ():
      raise ValueError(f"rng must be a single PRNG key (shape ()), got a key "
                       f"array of shape {rng.shape}")
    return jax.random.key_data(rng)
  expected = jax.random.key_data(jax.random.key(0))
  if np.dtype(rng.dtype) != np.dtype(expected.dtype) or rng.shape != expected.shape:
    raise ValueError(f"rng must be an integer seed, a typed key or raw key data "
                     f"of shape {expected.shape} and dtype "
                     f"{np.dtype(expected.dtype).name} (jax.random.PRNGKey(seed)), "
                     f"got shape {tuple(rng.shape)} and dtype "
                     f"{np.dtype(rng.dtype).name}")
  return jnp.asarray(rng)


def create_train_state(params: Params,
                       optimizer: optax.GradientTransformation,
                       rng: Any,
                       carry: Any = None) -> TrainState:
  """A fresh train state at step 0.

  Args:
    params: pytree of arrays, e.g. from ``cell.init``.
    optimizer: the optax transformation the run trains with (e.g. from
      ``seqjax.train.optim.make_optimizer``); its state is initialised here.
    rng: an integer seed, a typed key (``jax.random.key(seed)``) or raw key
      data (``jax.random.PRNGKey(seed)``); stored as raw key data.
    carry: the initial persistent carry for truncated BPTT, leaves
      ``(B, ...)`` (e.g. ``cell.initial_carry(params, (B,))``), or None for
      models that start every batch from scratch.

  Returns:
    ``TrainState(step=0, params, optimizer.init(params), rng, carry)``.
  """
  if not isinstance(optimizer, optax.GradientTransformation):
    raise TypeError(f"optimizer must be an optax.GradientTransformation, got "
                    f"{type(optimizer).__name__}")
  state = TrainState(step=jnp.zeros((), jnp.int32),
                     params=params,
                     opt_state=optimizer.init(params),
                     rng=_raw_key(rng),
                     carry=carry)
  return _unaliased(state)


def _unaliased(tree: Any) -> Any:
  """Copies repeated array leaves so that every leaf owns its buffer.

  A train step donates the state, and XLA refuses to donate one buffer twice;
  sharing is common and legitimate elsewhere (e.g. an LSTM's zero ``h`` and
  ``c`` may be the same array).
  """
  seen = set()

  def own(leaf):
    if isinstance(leaf, jax.Array):
      if id(leaf) in seen:
        return jnp.array(leaf, copy=True)
      seen.add(id(leaf))
    return leaf

  return jax.tree_util.tree_map(own, tree)
