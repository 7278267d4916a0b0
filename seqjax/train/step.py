"""Jitted train and eval steps around a user loss function.

A loss function is pure::

  loss_fn(params, batch, carry, rng) -> (loss, (new_carry, metrics))

with ``loss`` a float scalar, ``new_carry`` of the structure and shapes of
``carry`` (leaves ``(B, ...)``, or None) and ``metrics`` a dict of scalars.
``rng`` is a (typed) PRNG key during training and ``None`` during evaluation,
so a model can switch dropout off with ``training=rng is not None``.

The steps are ``jax.jit``-compiled (no ``pmap``). Given a batch sharded over a
``jax.sharding.Mesh`` and a replicated state (``seqjax.train.sharding``), XLA's
GSPMD partitioner splits the computation and inserts the all-reduce of the
gradients, so the same step runs on one CPU, several GPUs or a TPU slice.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding, PartitionSpec

from seqjax.train.state import TrainState, key_from
from seqjax.types import Carry, Params, PRNGKey, trainable_mask

Batch = Any  # a pytree of arrays with a leading batch axis B.
Metrics = dict[str, jax.Array]  # scalars.
LossFn = Callable[[Params, Batch, Carry, Optional[PRNGKey]],
                  tuple[jax.Array, tuple[Carry, Metrics]]]

#: Metric names the train step reports itself.
RESERVED_METRICS = ("grad_norm", "finite")


def _check_output(output: Any, carry: Carry) -> tuple[jax.Array, Carry, Metrics]:
  """Unpacks ``loss_fn``'s output, with trace-time errors for wrong shapes."""
  if not (isinstance(output, tuple) and len(output) == 2
          and isinstance(output[1], tuple) and len(output[1]) == 2):
    raise TypeError(f"loss_fn must return (loss, (new_carry, metrics)), got "
                    f"{jax.tree_util.tree_structure(output)}")
  loss, (new_carry, metrics) = output
  if np.shape(loss) != () or not jnp.issubdtype(jnp.result_type(loss), jnp.floating):
    raise ValueError(f"loss_fn must return a float scalar loss, got shape "
                     f"{np.shape(loss)} and dtype {jnp.result_type(loss)}")
  if not isinstance(metrics, dict):
    raise TypeError(f"loss_fn must return its metrics as a dict, got "
                    f"{type(metrics).__name__}")
  for name, value in metrics.items():
    if np.shape(value) != ():
      raise ValueError(f"loss_fn metric {name!r} must be a scalar, got shape "
                       f"{np.shape(value)}")
  expected = jax.tree_util.tree_structure(carry)
  got = jax.tree_util.tree_structure(new_carry)
  shapes = [(np.shape(a), jnp.result_type(a)) for a in jax.tree_util.tree_leaves(carry)]
  new_shapes = [(np.shape(a), jnp.result_type(a))
                for a in jax.tree_util.tree_leaves(new_carry)]
  # The carry is part of the state: a change of structure, shape or dtype would
  # recompile the step on every call and break donation and checkpoints.
  if expected != got or shapes != new_shapes:
    raise ValueError(f"loss_fn must return a new carry like the one it was "
                     f"given: expected {expected} with (shape, dtype) {shapes}, "
                     f"got {got} with {new_shapes}")
  return loss, new_carry, metrics


def _freeze(params: Params) -> Params:
  """``params`` with no gradient flowing into leaves under a FROZEN key.

  Frozen parameters never train (``seqjax.types.keep_frozen``); stopping their
  gradient here lets XLA drop the backward computation for them (a large
  reservoir's is the most expensive part) and keeps them out of ``grad_norm``.
  """
  return jax.tree_util.tree_map(
      lambda p, trainable: p if trainable else jax.lax.stop_gradient(p),
      params, trainable_mask(params))


def _mesh_shardings(tree: Any) -> Any:
  """The pytree of ``tree``'s shardings if all are mesh shardings, else None."""
  leaves, treedef = jax.tree_util.tree_flatten(tree)
  shardings = [getattr(x, "sharding", None) for x in leaves]
  if not all(isinstance(s, NamedSharding) for s in shardings):
    return None
  return jax.tree_util.tree_unflatten(treedef, shardings)


def _replicated(shardings: Any) -> Optional[NamedSharding]:
  """Replicated sharding on the mesh of the first of ``shardings``."""
  leaves = jax.tree_util.tree_leaves(shardings)
  return NamedSharding(leaves[0].mesh, PartitionSpec()) if leaves else None


def _jit_keeping_layout(fn: Callable, output_layout: Callable,
                        donate_argnums: tuple[int, ...] = ()) -> Callable:
  """``jax.jit(fn)`` whose outputs keep the layout of its mesh-sharded inputs.

  XLA is free to choose output shardings; on a 1-device mesh it drops
  ``P("data")`` from the carry, for example. A state that came back with a
  new layout would compile the step again on the next call and could not
  reuse donated buffers in place, so when the inputs live on a mesh, the
  outputs are pinned (``out_shardings``) to ``output_layout(*args)``.
  """
  unconstrained = jax.jit(fn, donate_argnums=donate_argnums)
  compiled = {}

  def run(*args):
    layout = output_layout(*args)
    if layout is None:
      return unconstrained(*args)
    leaves, treedef = jax.tree_util.tree_flatten(layout)
    key = (treedef, tuple(leaves))
    if key not in compiled:
      compiled[key] = jax.jit(fn, donate_argnums=donate_argnums,
                              out_shardings=layout)
    return compiled[key](*args)

  functools.update_wrapper(run, fn)
  return run


def make_train_step(loss_fn: LossFn,
                    optimizer: optax.GradientTransformation,
                    *,
                    donate: bool = True) -> Callable[[TrainState, Batch],
                                                     tuple[TrainState, Metrics]]:
  """A jitted ``train_step(state, batch) -> (state, metrics)``.

  One step:

  1. ``rng = jax.random.fold_in(key_from(state.rng), state.step)``, a fresh
     key per step that depends only on the base key and the step, so a resumed
     run repeats the uninterrupted one.
  2. ``carry = stop_gradient(state.carry)``: truncated backpropagation through
     time, gradients stop at chunk boundaries.
  3. ``(loss, (new_carry, metrics)), grads = value_and_grad(loss_fn)(params,
     batch, carry, rng)``, with no gradient into parameters under a
     ``"frozen"`` key.
  4. ``grad_norm = optax.tree.norm(grads)``, before any clipping (the
     optimiser's clipping happens inside ``optimizer.update``).
  5. ``finite = isfinite(loss) & isfinite(grad_norm)``. If finite, the
     optimiser update is applied and the carry replaced by ``new_carry``; if
     not, params, optimiser state and carry are returned unchanged (selected
     with ``jnp.where``, so no NaN is ever written into the state) and the
     caller decides from ``metrics["finite"]`` whether to stop or go on.
  6. ``step`` increases by one either way.

  Args:
    loss_fn: ``(params, batch, carry, rng) -> (loss, (new_carry, metrics))``,
      see the module docstring. ``carry`` is ``state.carry`` (possibly None).
    optimizer: optax transformation, e.g. from
      ``seqjax.train.optim.make_optimizer``; ``state.opt_state`` must come
      from its ``init``.
    donate: donate the input state's buffers to the output (``jax.jit``'s
      ``donate_argnums``): the update happens in place, and the ``state``
      passed in must not be used afterwards.

  Returns:
    ``train_step(state, batch) -> (new_state, metrics)``; ``metrics`` holds
    ``loss``, ``grad_norm`` (float scalars), ``finite`` (bool scalar) and
    ``loss_fn``'s own metrics, all on device (no host synchronisation). It
    calls ``jax.jit`` -compiled code; for a state laid out on a mesh
    (``seqjax.train.sharding.shard_train_state``) the new state keeps that
    layout, so the step compiles once per layout.
  """
  if not callable(loss_fn):
    raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
  if not isinstance(optimizer, optax.GradientTransformation):
    raise TypeError(f"optimizer must be an optax.GradientTransformation, got "
                    f"{type(optimizer).__name__}")

  def loss_of_params(params, batch, carry, rng):
    loss, new_carry, metrics = _check_output(
        loss_fn(_freeze(params), batch, carry, rng), carry)
    return loss, (new_carry, metrics)

  def train_step(state: TrainState, batch: Batch) -> tuple[TrainState, Metrics]:
    if not isinstance(state, TrainState):
      raise TypeError(f"state must be a seqjax.train.TrainState, got "
                      f"{type(state).__name__}")
    rng = jax.random.fold_in(key_from(state.rng), state.step)
    carry = jax.tree_util.tree_map(jax.lax.stop_gradient, state.carry)
    (loss, (new_carry, metrics)), grads = jax.value_and_grad(
        loss_of_params, has_aux=True)(state.params, batch, carry, rng)
    clash = sorted(set(metrics) & set(RESERVED_METRICS))
    if clash:
      raise ValueError(f"loss_fn metrics must not be named {clash}: the train "
                       f"step reports {RESERVED_METRICS} itself")
    # optax mixes dtypes on purpose (Adam's ``b1 ** count`` with an int
    # count, norms summed over bf16 and f32 leaves): it runs under standard
    # promotion, so a user who turns on strict promotion to check their own
    # model can still train it.
    with jax.numpy_dtype_promotion("standard"):
      grad_norm = optax.tree.norm(grads)
      updates, new_opt_state = optimizer.update(grads, state.opt_state, state.params)
      new_params = optax.apply_updates(state.params, updates)
    finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)

    def keep_if_finite(new, old):
      return jax.tree_util.tree_map(lambda n, o: jnp.where(finite, n, o), new, old)

    new_state = TrainState(
        step=state.step + jnp.ones((), state.step.dtype),
        params=keep_if_finite(new_params, state.params),
        opt_state=keep_if_finite(new_opt_state, state.opt_state),
        rng=state.rng,
        carry=keep_if_finite(new_carry, state.carry))
    metrics = {**metrics,
               "loss": loss,
               "grad_norm": grad_norm,
               "finite": finite}
    return new_state, metrics

  def output_layout(state, batch):
    del batch
    shardings = _mesh_shardings(state)
    return None if shardings is None else (shardings, _replicated(shardings))

  return _jit_keeping_layout(train_step, output_layout,
                             donate_argnums=(0,) if donate else ())


def make_eval_step(loss_fn: LossFn) -> Callable[[Params, Batch, Carry],
                                                  tuple[Metrics, Carry]]:
  """A jitted ``eval_step(params, batch, carry) -> (metrics, new_carry)``.

  Calls ``loss_fn(params, batch, carry, None)`` (``rng=None``: evaluation is
  deterministic) without computing gradients. Chain the returned carry into
  the next batch of a stream to evaluate with a persistent carry.

  Args:
    loss_fn: as for ``make_train_step``.

  Returns:
    ``eval_step(params, batch, carry) -> (metrics, new_carry)`` with
    ``metrics`` = ``loss_fn``'s metrics plus ``loss`` (float scalar).
  """
  if not callable(loss_fn):
    raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")

  def eval_step(params: Params, batch: Batch, carry: Carry) -> tuple[Metrics, Carry]:
    loss, new_carry, metrics = _check_output(loss_fn(params, batch, carry, None),
                                             carry)
    return {**metrics, "loss": loss}, new_carry

  def output_layout(params, batch, carry):
    del batch
    shardings = _mesh_shardings(params)
    carry_shardings = _mesh_shardings(carry) if carry is not None else None
    if (shardings is None or not jax.tree_util.tree_leaves(params)
        or (carry is not None and carry_shardings is None)):
      return None
    return _replicated(shardings), carry_shardings

  return _jit_keeping_layout(eval_step, output_layout)
