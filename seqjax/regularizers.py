"""Regularisers of the gradient flow through time.

``pascanu_omega`` is the vanishing-gradient regulariser of Pascanu, Mikolov &
Bengio (2013), section 3.3: it asks every step to preserve the norm of the
gradient it carries back,

  Omega = sum_k ( || dL/dh_k  dh_k/dh_{k-1} || / || dL/dh_k || - 1 )^2,

and is added to the training loss with a weight (their ``alpha``), see
``omega_loss``. Indexing as in ``seqjax.diagnostics``: ``h_{-1}`` is the
initial carry, step k maps ``h_{k-1} -> h_k``, and term k is that step's
Jacobian (the paper's ``x_{k+1}`` is our ``h_k``).

References:
  Pascanu, Mikolov & Bengio 2013, "On the difficulty of training recurrent
  neural networks", ICML, https://arxiv.org/abs/1211.5063 (eq. 9-10);
  reference implementation https://github.com/pascanur/trainingRNNs (RNN.py).
"""

from __future__ import annotations

import operator
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from seqjax import checks
from seqjax import diagnostics
from seqjax.types import Array, Carry, Cell, Params

__all__ = ["pascanu_omega", "omega_loss"]


def _time_range(time_range: Any, steps: int) -> tuple[int, int]:
  """``time_range`` as ``(start, stop)`` with ``0 <= start < stop <= T``."""
  if time_range is None:
    return 0, steps
  if not isinstance(time_range, (tuple, list)) or len(time_range) != 2:
    raise TypeError(f"time_range must be a pair (start, stop) of ints, got {time_range!r}")
  bounds = []
  for value in time_range:
    if isinstance(value, (bool, np.bool_)):
      raise TypeError(f"time_range must hold ints, got {time_range!r}")
    try:
      bounds.append(operator.index(value))
    except TypeError:
      raise TypeError(f"time_range must hold ints, got {time_range!r}") from None
  start, stop = bounds
  if not 0 <= start < stop <= steps:
    raise ValueError(f"time_range must satisfy 0 <= start < stop <= T={steps} (the steps of "
                     f"xs), got {tuple(time_range)}")
  return start, stop


def _loss_and_omega(cell: Cell, params: Params, xs: Array, loss_fn: Callable[[Array], Array],
                    *, mask: Optional[Array], carry: Optional[Carry], time_range: Any,
                    state: str, immediate: bool) -> tuple[Array, Array]:
  checks.boolean("immediate", immediate)
  sens = diagnostics.sensitivities(
      cell, params, xs, loss_fn, mask=mask, carry=carry, state=state, keep_inputs=True)
  steps = sens.xs.shape[0]
  start, stop = _time_range(time_range, steps)
  positions = sens.positions
  leaves, tree = jax.tree_util.tree_flatten(sens.carry)
  for p in positions:
    if jnp.iscomplexobj(leaves[p]):
      raise TypeError(f"pascanu_omega needs a real-valued state; {cell.name}'s carry has a "
                      f"complex leaf")
  deltas = [jax.lax.stop_gradient(d) for d in sens.deltas]       # dL/dh_k, constants
  inputs = sens.inputs                                           # h_{k-1}, (T, *B, ...)
  if immediate:
    inputs = jax.lax.stop_gradient(inputs)

  def carried_back(previous, x, delta):
    """dL/dh_k dh_k/dh_{k-1} at one step k (a vector-Jacobian product of the step)."""
    previous_leaves = jax.tree_util.tree_leaves(previous)

    def step_state(state_leaves):
      all_leaves = list(previous_leaves)
      for p, value in zip(positions, state_leaves):
        all_leaves[p] = value
      new, _ = cell.step(params, jax.tree_util.tree_unflatten(tree, all_leaves), x)
      new_leaves = jax.tree_util.tree_leaves(new)
      return [new_leaves[p] for p in positions]

    _, vjp = jax.vjp(step_state, [previous_leaves[p] for p in positions])
    return vjp(delta)[0]

  # All T steps at once: the step is vmapped over time at the stored states.
  pulled = jax.vmap(carried_back)(inputs, sens.xs, deltas)
  lead = 1 + len(sens.batch_shape)
  numerator = diagnostics.row_norms(pulled, lead)
  denominator = jax.lax.stop_gradient(diagnostics.row_norms(deltas, lead))
  valid = denominator > jnp.finfo(denominator.dtype).tiny
  k = jnp.arange(steps).reshape((steps,) + (1,) * len(sens.batch_shape))
  valid &= (k >= start) & (k < stop)
  if sens.mask is not None:
    valid &= sens.mask
  ratio = numerator / jnp.where(valid, denominator, jnp.ones_like(denominator))
  terms = jnp.where(valid, (ratio - 1.0) ** 2, jnp.zeros_like(ratio))
  count = jnp.sum(valid.astype(terms.dtype))
  omega = jnp.sum(terms) / jnp.maximum(count, 1.0)
  diagnostics.raise_if_not_finite("dL/dh_k", sens.loss, denominator, sens.mask)
  return sens.loss, omega


def pascanu_omega(cell: Cell,
                  params: Params,
                  xs: Array,
                  loss_fn: Callable[[Array], Array],
                  *,
                  mask: Optional[Array] = None,
                  carry: Optional[Carry] = None,
                  time_range: Optional[tuple[int, int]] = None,
                  state: str = "carry",
                  immediate: bool = True) -> Array:
  """Pascanu et al.'s (2013) regulariser: each step should preserve ``||dL/dh||``.

  With ``delta_k = dL/dh_k`` the total derivative of the loss with respect
  to the state after step k (``seqjax.diagnostics.hidden_gradients``) and
  ``J_k = dh_k/dh_{k-1}`` the Jacobian of step k::

    Omega_k = ( || delta_k J_k || / || delta_k || - 1 )^2
    Omega   = mean over batch rows b and steps k in time_range of Omega_k[b]

  ``delta_k J_k`` is the part of ``dL/dh_{k-1}`` carried back through step k,
  so ``Omega_k = 0`` when step k neither shrinks nor stretches the gradient
  along the direction the loss actually uses. The paper sums over k (their
  eq. 9); the mean over the counted (b, k) terms is what their reference
  code returns (it divides the sum by the number of terms), and it keeps the
  weight of the regulariser independent of T and the batch size.

  As in the paper, ``delta_k`` is a constant (``lax.stop_gradient``): the
  gradient of ``Omega`` with respect to ``params`` flows through the
  Jacobians ``J_k`` only. With ``immediate=True`` (the paper's "immediate
  partial derivative", eq. 10) the state ``h_{k-1}`` where ``J_k`` is taken
  is held constant too, so only the parameters' direct appearance in one
  step counts (for the Elman RNN ``J_k = diag(1 - h_k^2) W_h^T``, with
  ``h_k = tanh(x_k W_x + h_{k-1} W_h + b)`` recomputed from the held
  ``h_{k-1}``; the paper's Theano code also holds ``h_k`` and updates ``W_h``
  alone). With ``immediate=False`` the gradient also flows back through
  ``h_{k-1}`` into earlier steps.

  Terms where ``delta_k`` is zero (the ratio is undefined) and masked steps
  are left out of the mean (the reference code does the same for
  ``||delta_k||^2 < 1e-20``); with no term left ``Omega = 0``. The paper
  writes the ratio of norms, as here; its reference code takes the ratio of
  *squared* norms.

  Cost: one forward pass that stores the states (as backpropagation does),
  one backward pass for all ``delta_k``, and one vector-Jacobian product of
  the step at every k, vmapped over time.

  Args:
    cell: a ``seqjax.Cell``.
    params: its parameters.
    xs: inputs (*B, T, D), or (T, D).
    loss_fn: ``ys -> scalar``, ``ys`` the outputs (*B, T, O) (the task loss,
      e.g. a readout and cross entropy closed over their parameters).
    mask: optional (*B, T) booleans (``seqjax.unroll``'s rule); masked steps
      add no term.
    carry: initial carry, leaves (*B, ...).
    time_range: ``(start, stop)``, the steps k counted, ``0 <= start < stop
      <= T``; defaults to all T (k = 0 is the step from the initial carry).
    state: ``"carry"`` (default): ``h`` is the whole carry, and ``J_k`` the
      Jacobian of the full state map (``[h; c]`` for an LSTM), the one that
      carries gradients back. ``"h"``: the carry's ``h`` field only (``J_k =
      dh_k/dh_{k-1}`` with ``c_{k-1}`` held); for array carries (Elman RNN,
      GRU) both are the same.
    immediate: hold ``h_{k-1}`` constant in the gradient (the paper); False
      differentiates through it as well.

  Returns:
    Omega, a scalar in the state's dtype.

  Raises:
    ValueError naming ``time_range`` outside ``0 <= start < stop <= T``, and
    the argument checks of ``seqjax.diagnostics.hidden_gradients``; with
    concrete values, ValueError naming what went non-finite.
  """
  _, omega = _loss_and_omega(cell, params, xs, loss_fn, mask=mask, carry=carry,
                             time_range=time_range, state=state, immediate=immediate)
  return omega


def omega_loss(cell: Cell,
               params: Params,
               xs: Array,
               loss_fn: Callable[[Array], Array],
               *,
               weight: float,
               mask: Optional[Array] = None,
               carry: Optional[Carry] = None,
               time_range: Optional[tuple[int, int]] = None,
               state: str = "carry",
               immediate: bool = True) -> tuple[Array, dict[str, Array]]:
  """The task loss plus ``weight * Omega``, from one shared forward pass.

  ``loss_fn(ys)`` and ``pascanu_omega`` share the run of the recurrence, so
  the regularised objective costs about one extra vector-Jacobian product per
  step over plain backpropagation::

    total = loss_fn(ys) + weight * Omega

  Use it as the objective of a training step, e.g. with a readout ``head``::

    def objective(params):
      task = lambda ys: mean_cross_entropy(head(params["head"], ys), targets)
      total, parts = omega_loss(cell, params["cell"], xs, task, weight=2.0, mask=mask)
      return total, parts
    grads, parts = jax.grad(objective, has_aux=True)(params)

  The gradient of ``loss_fn(ys)`` is the ordinary one; that of ``Omega``
  treats ``dL/dh`` as constant (see ``pascanu_omega``). Pascanu et al. pair
  the regulariser with gradient-norm clipping (``optax.clip_by_global_norm``).

  Args:
    cell, params, xs, loss_fn, mask, carry, time_range, state, immediate: as
      in ``pascanu_omega``.
    weight: the regulariser's weight (the paper's ``alpha``), a finite
      number >= 0, or a scalar jax array (e.g. a schedule's value).

  Returns:
    ``(total, {"loss": loss_fn(ys), "omega": Omega})``.
  """
  if isinstance(weight, jax.Array) and jnp.shape(weight) == ():
    if not isinstance(weight, jax.core.Tracer) and not 0 <= float(weight) < np.inf:
      raise ValueError(f"weight must be a finite number >= 0, got {float(weight)}")
  else:
    if isinstance(weight, (bool, np.bool_)) or not isinstance(weight, (int, float, np.number)):
      raise TypeError(f"weight must be a real number (or a scalar jax array), got {weight!r}")
    weight = checks.finite("weight", float(weight))
    if weight < 0:
      raise ValueError(f"weight must be >= 0, got {weight}")
  loss, omega = _loss_and_omega(cell, params, xs, loss_fn, mask=mask, carry=carry,
                                time_range=time_range, state=state, immediate=immediate)
  dtype = jnp.result_type(loss)
  total = loss + jnp.asarray(weight).astype(dtype) * omega.astype(dtype)
  return total, {"loss": loss, "omega": omega}
