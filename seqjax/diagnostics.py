"""Gradient flow through time: state gradients, step Jacobians, Lyapunov spectra.

How well a recurrent network carries credit back through time is read off
three quantities, all computed here for any ``seqjax.Cell`` (carry an array or
a NamedTuple such as ``LSTMCarry(h, c)``):

* ``hidden_gradient_norms``: ``||dL/dh_t||`` for every step t, in one
  backward pass. Its decay towards early t is the vanishing gradient, its
  growth the exploding one (Bengio, Simard & Frasconi 1994; Pascanu, Mikolov &
  Bengio 2013).
* ``step_jacobians``: the Jacobians ``ds_t/ds_{t-1}`` of one step along a
  trajectory, whose products carry ``dL/ds`` back in time, and
  ``singular_values`` of them.
* ``lyapunov_exponents``: the average exponential growth rates of
  perturbations of the state along the driven trajectory (Benettin et al. 1980
  QR method; for recurrent networks e.g. Engelken, Wolf & Abbott 2023).
  Exponents below 0 mean gradients that vanish over long spans, above 0
  gradients that explode (and chaotic dynamics).

Indexing used throughout: ``h_{-1}`` is the initial carry and ``h_t`` the
carry after step t (t = 0, ..., T-1), so step t maps ``h_{t-1} -> h_t`` and
emits ``y_t``.

Shapes: B batch (any leading axes, ``()`` unbatched), T time, D input
features, H hidden units, O outputs, N the size of the flattened state.

References:
  Bengio, Simard & Frasconi 1994, "Learning long-term dependencies with
  gradient descent is difficult", IEEE Trans. Neural Networks 5(2).
  Pascanu, Mikolov & Bengio 2013, "On the difficulty of training recurrent
  neural networks", https://arxiv.org/abs/1211.5063
  Benettin, Galgani, Giorgilli & Strelcyn 1980, "Lyapunov characteristic
  exponents for smooth dynamical systems and for Hamiltonian systems; a method
  for computing all of them", Meccanica 15.
  Engelken, Wolf & Abbott 2023, "Lyapunov spectra of chaotic recurrent neural
  networks", https://arxiv.org/abs/2006.02427
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend import core as jax_core

from seqjax import checks
from seqjax import scan as scan_lib
from seqjax.types import Array, Carry, Cell, Params

__all__ = ["hidden_gradients", "hidden_gradient_norms", "step_jacobians", "singular_values",
           "lyapunov_exponents"]

#: The values of the ``state`` argument: the carry's ``h`` (the carry itself
#: when it is an array), or every leaf of the carry.
STATES = ("h", "carry")


# --------------------------------------------------------------------------
# Argument checks.


def _check_cell(cell: Any) -> Cell:
  if not isinstance(cell, Cell):
    raise TypeError(f"cell must be a seqjax.Cell, got {type(cell).__name__}")
  return cell


def _check_xs(cell: Cell, params: Params, xs: Any, *, batched: bool) -> Array:
  """``xs`` as a jax array (*B, T, D) (``batched``) or (T, D), checked against params."""
  layout = "(*B, T, D)" if batched else "(T, D) (unbatched)"
  if not hasattr(xs, "shape") or not hasattr(xs, "dtype"):
    raise TypeError(f"xs must be an array of shape {layout}, got {type(xs).__name__}")
  shape = tuple(xs.shape)
  if len(shape) < 2 or (not batched and len(shape) != 2):
    raise ValueError(f"xs must have shape {layout}, got shape {shape}")
  checks.float_array("xs", xs)
  input_size = scan_lib.check_params(cell, params)
  if shape[-1] != input_size:
    raise ValueError(f"xs must have {input_size} features (the input_size the params were "
                     f"built for), got shape {shape}")
  return jnp.asarray(xs)


def _initial_carry(cell: Cell, params: Params, carry: Optional[Carry],
                   batch_shape: tuple[int, ...]) -> Carry:
  initial = cell.initial_carry(params, batch_shape)
  if carry is None:
    return initial
  scan_lib.check_carry(carry, initial)
  return jax.tree_util.tree_map(jnp.asarray, carry)


def _state_positions(cell: Cell, carry: Carry, state: Any) -> tuple[int, ...]:
  """Indices, among the carry's leaves, of the state that ``state`` names."""
  checks.one_of("state", state, STATES)
  leaves = jax.tree_util.tree_leaves(carry)
  if state == "carry":
    return tuple(range(len(leaves)))
  if isinstance(carry, jax.Array):
    return (0,)
  marked = jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(carry),
                                        list(range(len(leaves))))
  index = getattr(marked, "h", None)
  if not isinstance(index, int):
    raise ValueError(f"state='h' needs a carry that is an array or has an array field h; "
                     f"{cell.name}'s carry is {type(carry).__name__}: use state='carry'")
  return (index,)


def _is_concrete(*trees: Any) -> bool:
  return not any(isinstance(leaf, jax.core.Tracer)
                 for leaf in jax.tree_util.tree_leaves(trees))


# --------------------------------------------------------------------------
# Norms that neither overflow nor have NaN gradients at zero.


def row_norms(leaves: list[Array], lead: int) -> Array:
  """Euclidean norm over every axis after the first ``lead`` ones, across ``leaves``.

  Computed as ``s * sqrt(sum (g / s)^2)`` with ``s = max |g|`` (held constant
  for the gradient), so that gradients of 1e30 (float32) do not overflow in the
  square; a zero vector has norm 0 and gradient 0.
  """
  def reduce_axes(leaf):
    return tuple(range(lead, leaf.ndim))

  scale = None
  for leaf in leaves:
    peak = jnp.max(jnp.abs(leaf), axis=reduce_axes(leaf), initial=0.0)
    scale = peak if scale is None else jnp.maximum(scale, peak.astype(scale.dtype))
  scale = jax.lax.stop_gradient(scale)
  scale = jnp.where((scale > 0) & jnp.isfinite(scale), scale, jnp.ones_like(scale))
  total = None
  for leaf in leaves:
    scaled = leaf / _expand(scale, leaf).astype(leaf.dtype)
    squares = jnp.sum(jnp.real(scaled * jnp.conj(scaled)), axis=reduce_axes(leaf))
    total = squares if total is None else total + squares.astype(total.dtype)
  positive = total > 0
  root = jnp.where(positive, jnp.sqrt(jnp.where(positive, total, jnp.ones_like(total))),
                   jnp.zeros_like(total))
  return scale.astype(root.dtype) * root


def _expand(values: Array, like: Array) -> Array:
  return values.reshape(values.shape + (1,) * (like.ndim - values.ndim))


# --------------------------------------------------------------------------
# A step whose new state is perturbed, its output computed from the perturbed state.


_CALLS = ("jit", "pjit", "closed_call", "core_call")


def _bind(eqn, invals: list[Any]) -> list[Any]:
  params = eqn.primitive.get_bind_params(eqn.params)
  if isinstance(params, tuple):  # older JAX: (subfuns, params)
    subfuns, params = params
    invals = list(subfuns) + list(invals)
  manager = getattr(getattr(eqn, "ctx", None), "manager", None)
  if manager is None:
    out = eqn.primitive.bind(*invals, **params)
  else:
    with manager:
      out = eqn.primitive.bind(*invals, **params)
  return list(out) if eqn.primitive.multiple_results else [out]


def _called_jaxpr(eqn) -> Optional[tuple[Any, Any]]:
  """(jaxpr, consts) of a plain call (a nested ``jax.jit``), to evaluate inline."""
  if eqn.primitive.name not in _CALLS:
    return None
  inner = eqn.params.get("jaxpr", eqn.params.get("call_jaxpr"))
  if isinstance(inner, jax_core.ClosedJaxpr):
    return inner.jaxpr, inner.consts
  if isinstance(inner, jax_core.Jaxpr):
    return inner, ()
  return None


def _eval_perturbed(jaxpr, consts, args, perturbed_args: dict, add: dict) -> tuple[list, dict]:
  """Evaluates ``jaxpr`` twice over: as is, and with ``add[v]`` added to the variables ``v``.

  The second evaluation ("perturbed") adds ``add[v]`` to ``v`` where an
  equation makes it, *as a cut*: the perturbed value of ``v`` is its plain
  value plus ``add[v]``, never recomputed from other perturbed variables, so
  perturbing one carry leaf does not leak into another that the step computes
  from it (an LSTM's ``h_t = o_t tanh(c_t)``), while everything else computed
  from ``v`` (the step's output) sees it. Only equations downstream of a
  perturbation are evaluated twice. Nested ``jax.jit`` calls are evaluated
  inline so that the perturbation lands inside them.

  Args:
    jaxpr, consts, args: the jaxpr, its constants and its plain inputs.
    perturbed_args: ``{index: value}``, inputs whose perturbed value differs.
    add: ``{var: value}``.

  Returns:
    The plain outputs and ``{index: value}``, the outputs whose perturbed
    value differs.
  """
  env: dict = {}
  perturbed: dict = {}

  def read(v):
    return v.val if isinstance(v, jax_core.Literal) else env[v]

  def read_perturbed(v):
    return perturbed[v] if isinstance(v, jax_core.Var) and v in perturbed else read(v)

  def touched(v):
    return isinstance(v, jax_core.Var) and v in perturbed

  env.update(zip(jaxpr.constvars, consts))
  env.update(zip(jaxpr.invars, args))
  for i, value in perturbed_args.items():
    perturbed[jaxpr.invars[i]] = value
  for eqn in jaxpr.eqns:
    invals = [read(v) for v in eqn.invars]
    inputs_touched = any(touched(v) for v in eqn.invars)
    wanted = [i for i, v in enumerate(eqn.outvars) if isinstance(v, jax_core.Var) and v in add]
    called = _called_jaxpr(eqn) if (wanted or inputs_touched) else None
    outs_perturbed: dict = {}
    if called is not None:
      inner, inner_consts = called
      inner_add: dict = {}
      for i in wanted:
        w = inner.outvars[i]
        if isinstance(w, jax_core.Var):
          inner_add[w] = add[eqn.outvars[i]] + inner_add.get(w, 0)
      inner_args = {j: perturbed[v] for j, v in enumerate(eqn.invars) if touched(v)}
      outs, outs_perturbed = _eval_perturbed(inner, inner_consts, invals, inner_args, inner_add)
    else:
      outs = _bind(eqn, invals)
      if inputs_touched:
        outs_perturbed = dict(enumerate(_bind(eqn, [read_perturbed(v) for v in eqn.invars])))
    env.update(zip(eqn.outvars, outs))
    for i, value in outs_perturbed.items():
      perturbed[eqn.outvars[i]] = value
    for i in wanted:                      # the cut: plain value plus the perturbation
      perturbed[eqn.outvars[i]] = outs[i] + add[eqn.outvars[i]]
  outs = [read(v) for v in jaxpr.outvars]
  changed = {i: perturbed[v] for i, v in enumerate(jaxpr.outvars) if touched(v)}
  return outs, changed


def _perturbed_step(cell: Cell, params: Params, carry: Carry, x: Array,
                    eps: list[Array], positions: tuple[int, ...]) -> tuple[Carry, Array]:
  """``cell.step`` with ``eps[i]`` added to the new carry's leaf ``positions[i]``.

  Each perturbed leaf of the new carry is its plain value plus its ``eps``
  (the carry's leaves are independent coordinates of the state: perturbing
  ``c_t`` does not change ``h_t``), and the step's output ``y_t`` is computed
  from the perturbed leaves wherever the step computes it from them
  (``y_t = h_t`` in the Elman RNN, LSTM and GRU; ``y_t = readout(h_t)`` in the
  LRU). Steps that compute the state and the output inside one opaque
  primitive (a ``lax.cond``, a ``custom_vjp``) get the perturbation on the
  carry only.
  """
  closed, out_shape = jax.make_jaxpr(cell.step, return_shape=True)(params, carry, x)
  out_tree = jax.tree_util.tree_structure(out_shape)
  args = jax.tree_util.tree_leaves((params, carry, x))
  jaxpr = closed.jaxpr
  add: dict = {}
  for position, value in zip(positions, eps):
    v = jaxpr.outvars[position]
    if isinstance(v, jax_core.Var):
      add[v] = value + add.get(v, 0)
  outs, changed = _eval_perturbed(jaxpr, closed.consts, args, {}, add)
  num_carry = len(jax.tree_util.tree_leaves(carry))
  # Carry leaves: plain, plus their own perturbation; the output: computed from them.
  new_outs = [out if i < num_carry else changed.get(i, out) for i, out in enumerate(outs)]
  for position, value in zip(positions, eps):
    new_outs[position] = outs[position] + value
  return jax.tree_util.tree_unflatten(out_tree, new_outs)


def _check_step_output(cell: Cell, carry: Carry, new_carry: Carry, y: Array,
                       batch_shape: tuple[int, ...]) -> None:
  if jax.tree_util.tree_structure(new_carry) != jax.tree_util.tree_structure(carry) or any(
      jnp.shape(a) != jnp.shape(b) for a, b in zip(jax.tree_util.tree_leaves(new_carry),
                                                   jax.tree_util.tree_leaves(carry))):
    raise ValueError(f"{cell.name}.step must return a carry like its input")
  if jnp.shape(y) != batch_shape + (cell.output_size,):
    raise ValueError(f"{cell.name}.step returned an output of shape {jnp.shape(y)}, expected "
                     f"{batch_shape + (cell.output_size,)} (*B, output_size)")


# --------------------------------------------------------------------------
# dL/dh_t by the zero-perturbation trick.


class _Sensitivities(NamedTuple):
  """What one forward and one backward pass with perturbations give."""

  loss: Array                   # loss_fn(ys), scalar
  deltas: list[Array]           # dL/d(state leaf) per step, each (T, *B, ...), time-major
  inputs: Any                   # carry entering each step (T, *B, ...) leaves, or None
  xs: Array                     # time-major inputs (T, *B, D), padding zeroed
  mask: Optional[Array]         # (T, *B) booleans or None
  batch_shape: tuple[int, ...]
  positions: tuple[int, ...]    # the state's leaf indices in the carry
  carry: Carry                  # the initial carry


def sensitivities(cell: Cell, params: Params, xs: Any, loss_fn: Callable[[Array], Array], *,
                   mask: Optional[Array], carry: Optional[Carry], state: str,
                   keep_inputs: bool) -> _Sensitivities:
  """Runs the recurrence with zero perturbations on the state and differentiates the loss.

  The shared pass of ``hidden_gradients`` and ``seqjax.regularizers.pascanu_omega``.

  Args:
    cell: a ``seqjax.Cell``; params: its params.
    xs: (*B, T, D) inputs.
    loss_fn: ``ys (*B, T, O) -> scalar``.
    mask: (*B, T) booleans or None; carry: the initial carry or None.
    state: ``"h"`` or ``"carry"`` (what is perturbed; see ``hidden_gradients``).
    keep_inputs: also return the per-step inputs and carries (for Omega's VJPs).
  """
  _check_cell(cell)
  if not callable(loss_fn):
    raise TypeError(f"loss_fn must be a callable ys -> scalar, got {type(loss_fn).__name__}")
  xs = _check_xs(cell, params, xs, batched=True)
  xs = jnp.moveaxis(xs, -2, 0)                       # (T, *B, D)
  steps, batch_shape = xs.shape[0], tuple(xs.shape[1:-1])
  if mask is not None:
    mask = scan_lib.check_flags("mask", mask, batch_shape + (steps,), "(*B, T)")
    mask = jnp.moveaxis(mask, -1, 0)                 # (T, *B)
    xs = jnp.where(mask[..., None], xs, jnp.zeros((), xs.dtype))
  carry = _initial_carry(cell, params, carry, batch_shape)
  positions = _state_positions(cell, carry, state)
  leaves = jax.tree_util.tree_leaves(carry)
  eps0 = [jnp.zeros((steps,) + leaves[p].shape, leaves[p].dtype) for p in positions]

  def body(carry, inputs):
    x_t, eps_t, mask_t = inputs
    new_carry, y_t = _perturbed_step(cell, params, carry, x_t, eps_t, positions)
    _check_step_output(cell, carry, new_carry, y_t, batch_shape)
    if mask_t is not None:
      new_carry = scan_lib.select(mask_t, new_carry, carry)
      y_t = jnp.where(scan_lib.expand_to(mask_t, y_t), y_t, jnp.zeros_like(y_t))
    return new_carry, (y_t, carry if keep_inputs else None)

  def objective(eps):
    _, (ys, inputs) = jax.lax.scan(body, carry, (xs, eps, mask))
    loss = loss_fn(jnp.moveaxis(ys, 0, -2))
    if jnp.shape(loss) != () or not jnp.issubdtype(jnp.result_type(loss), jnp.floating):
      raise ValueError(f"loss_fn must return a real floating scalar, got shape "
                       f"{jnp.shape(loss)} and dtype {jnp.result_type(loss)}")
    return loss, inputs

  (loss, inputs), deltas = jax.value_and_grad(objective, has_aux=True)(eps0)
  return _Sensitivities(loss, list(deltas), inputs, xs, mask, batch_shape, positions, carry)


def raise_if_not_finite(what: str, loss: Array, norms: Array, mask: Optional[Array]) -> None:
  """ValueError naming what went non-finite, for concrete values (no-op under tracing).

  Args:
    what: the quantity's name in the message (``"dL/dh_t"``).
    loss: the scalar loss.
    norms: (T, *B) per-step norms; masked entries are ignored.
    mask: (T, *B) booleans or None.
  """
  if not _is_concrete(loss, norms, mask):
    return
  loss_value = np.asarray(loss)
  if not np.isfinite(loss_value):
    raise ValueError(f"loss_fn(ys) is not finite ({loss_value.item()}): the forward pass or "
                     f"the loss overflowed or produced NaN, so {what} is undefined")
  values = np.asarray(norms)
  bad = ~np.isfinite(values)
  if mask is not None:
    bad &= np.asarray(mask)
  if bad.any():
    where = np.argwhere(bad)[0]
    row = f", batch row {tuple(int(i) for i in where[1:])}" if len(where) > 1 else ""
    raise ValueError(f"{what} is not finite ({values[tuple(where)].item()}) at step "
                     f"t={int(where[0])}{row} of T={values.shape[0]}: the backward pass "
                     f"overflowed (an exploding gradient beyond the float range) or met a NaN")


def hidden_gradients(cell: Cell,
                     params: Params,
                     xs: Array,
                     loss_fn: Callable[[Array], Array],
                     *,
                     mask: Optional[Array] = None,
                     carry: Optional[Carry] = None,
                     state: str = "h") -> Any:
  """``dL/dh_t`` for every step t, in one forward and one backward pass.

  The zero-perturbation trick: the recurrence runs with a perturbation
  ``eps_t`` (zeros) added to the state after step t,
  ``h_t = f(h_{t-1}, x_t) + eps_t``, and ``dL/dh_t = dL/deps_t`` for all t
  comes out of one backward pass. This is the *total* derivative of the loss
  with respect to the state after step t: the path through the step's own
  output ``y_t`` (when the step computes it from ``h_t``, as every seqjax
  cell does) plus every path through the later steps,

    dL/dh_t = (dy_t/dh_t)^T dL/dy_t + (dh_{t+1}/dh_t)^T dL/dh_{t+1},

  the quantity whose decay towards small t is the vanishing gradient.

  The carry's leaves are treated as independent coordinates of the state:
  ``eps_t`` is added to the new carry's leaf as the step returns it (so
  perturbing an LSTM's ``c_t`` leaves its ``h_t`` alone), and the step's
  output is recomputed from the perturbed leaves wherever the step computes
  it from them (``y_t = h_t``, or a readout of it as in the LRU; the step is
  traced to a jaxpr for this, nested ``jax.jit`` calls evaluated inline). A
  step that computes state and output together inside one opaque primitive
  (a ``lax.cond``, ``custom_vjp``) gets the perturbation on the carry only,
  and ``dL/dh_t`` then lacks the path through ``y_t``.

  The recurrence is a ``lax.scan`` of ``cell.step`` (never the cell's fast
  path), with ``seqjax.unroll``'s mask rule: on a masked step the carry is held,
  the output is zero and the padded input is never read (it may hold NaN).

  Args:
    cell: a ``seqjax.Cell``.
    params: its parameters.
    xs: inputs (*B, T, D), or (T, D) unbatched.
    loss_fn: ``ys -> scalar``, ``ys`` the cell's outputs (*B, T, O) (zero on
      masked steps). Rows must not interact in it (a sum or mean over rows is
      fine) for the result's row b to be row b's own gradient.
    mask: optional (*B, T) booleans, True on real steps. A masked step leaves
      the state alone, so nothing depends on a perturbation there: its entry
      is exactly 0, and the real steps get what the unpadded sequence gives.
    carry: initial carry, leaves (*B, ...); defaults to
      ``cell.initial_carry(params, B)``.
    state: ``"h"``: the carry's ``h`` field (the carry itself when it is an
      array: Elman RNN, GRU); for an LSTM this is ``dL/dh_t`` with the memory
      cell ``c`` left unperturbed. ``"carry"``: every leaf of the carry (for
      an LSTM both ``dL/dh_t`` and ``dL/dc_t``).

  Returns:
    With ``state="h"``: an array (*B, T, H), entry ``[..., t, :]`` being
    ``dL/dh_t``. With ``state="carry"``: a pytree like the carry whose leaves
    are (*B, T, ...).

  Raises:
    ValueError/TypeError naming the argument for a bad ``cell``, ``params``,
    ``xs``, ``mask``, ``carry``, ``state`` or ``loss_fn`` (one that does not
    return a real scalar).
  """
  sens = sensitivities(cell, params, xs, loss_fn, mask=mask, carry=carry, state=state,
                        keep_inputs=False)
  lead = len(sens.batch_shape)
  per_leaf = [jnp.moveaxis(d, 0, lead) for d in sens.deltas]
  if state == "h":
    return per_leaf[0]
  return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(sens.carry), per_leaf)


def hidden_gradient_norms(cell: Cell,
                          params: Params,
                          xs: Array,
                          loss_fn: Callable[[Array], Array],
                          *,
                          mask: Optional[Array] = None,
                          carry: Optional[Carry] = None,
                          state: str = "h") -> Array:
  """``||dL/dh_t||_2`` for every step t and batch row, in one backward pass.

  The norms of ``hidden_gradients`` (see there for the definition: the total
  derivative of the loss with respect to the state after step t, through the
  step's output and all later steps, computed by differentiating with respect
  to a zero perturbation of the state)::

    g[b, t] = || dL/dh_t[b] ||_2     (over the state's features; with
                                       state="carry" over every carry leaf)

  A plot of ``g`` against t shows how far back the loss's gradient reaches:
  for a loss on the last step only, ``g[t]`` falls roughly like
  ``exp(lambda_1 (T - 1 - t))``, ``lambda_1`` the largest Lyapunov exponent.

  Args:
    cell: a ``seqjax.Cell``.
    params: its parameters.
    xs: inputs (*B, T, D), or (T, D) unbatched.
    loss_fn: ``ys -> scalar``, ``ys`` the outputs (*B, T, O).
    mask: optional (*B, T) booleans (``seqjax.unroll``'s rule); masked steps
      get 0.
    carry: initial carry, leaves (*B, ...).
    state: ``"h"`` (the carry's ``h`` field, or the carry when it is an
      array) or ``"carry"`` (all of it: ``[h; c]`` for an LSTM).

  Returns:
    (*B, T) norms (``(T,)`` unbatched), in the state's real dtype. The norm
    is computed with a rescaling, so gradients beyond ``sqrt(float max)`` do
    not overflow.

  Raises:
    ValueError naming what went non-finite (the loss, or ``dL/dh_t`` at the
    first bad step and row) when the values are concrete. Under ``jax.jit``
    nothing can be checked: non-finite entries come back as inf or NaN.
    ValueError/TypeError naming the argument for bad inputs, as
    ``hidden_gradients``.
  """
  sens = sensitivities(cell, params, xs, loss_fn, mask=mask, carry=carry, state=state,
                        keep_inputs=False)
  norms = row_norms(sens.deltas, 1 + len(sens.batch_shape))   # (T, *B)
  raise_if_not_finite(f"dL/d{'h' if state == 'h' else 'carry'}_t", sens.loss, norms,
                       sens.mask)
  return jnp.moveaxis(norms, 0, -1)


# --------------------------------------------------------------------------
# The flattened state vector.


def _state_vector(carry: Carry) -> Array:
  """The carry as one real vector: leaves raveled in tree order, complex ones as [re; im]."""
  parts = []
  for leaf in jax.tree_util.tree_leaves(carry):
    leaf = jnp.ravel(leaf)
    if jnp.iscomplexobj(leaf):
      parts += [jnp.real(leaf), jnp.imag(leaf)]
    else:
      parts.append(leaf)
  dtype = jnp.result_type(*parts)
  return jnp.concatenate([p.astype(dtype) for p in parts])


def _from_state_vector(vector: Array, like: Carry) -> Carry:
  leaves, tree = jax.tree_util.tree_flatten(like)
  out, start = [], 0
  for leaf in leaves:
    size = int(np.prod(leaf.shape))
    if jnp.iscomplexobj(leaf):
      re = vector[start:start + size]
      im = vector[start + size:start + 2 * size]
      value = jax.lax.complex(re, im)
      start += 2 * size
    else:
      value = vector[start:start + size]
      start += size
    out.append(value.reshape(leaf.shape).astype(leaf.dtype))
  return jax.tree_util.tree_unflatten(tree, out)


def _trajectory_setup(name: str, cell: Cell, params: Params, xs: Any,
                      carry: Optional[Carry], min_steps: int) -> tuple[Array, Carry]:
  _check_cell(cell)
  xs = _check_xs(cell, params, xs, batched=False)
  if xs.shape[0] < min_steps:
    raise ValueError(f"xs must have at least {min_steps} time step(s) for {name}, got shape "
                     f"{tuple(xs.shape)}")
  return xs, _initial_carry(cell, params, carry, ())


def step_jacobians(cell: Cell,
                   params: Params,
                   xs: Array,
                   *,
                   carry: Optional[Carry] = None) -> Array:
  """Jacobians of one step, ``J_t = ds_t/ds_{t-1}``, along the trajectory driven by ``xs``.

  ``s`` is the state vector: the carry's leaves flattened and joined in tree
  order, so ``s = h`` for an Elman RNN or GRU (N = H), ``s = [h; c]`` for an
  ``LSTMCarry(h, c)`` (N = 2H); a complex leaf (the LRU) contributes its real
  then its imaginary part. With ``s_{-1}`` the initial carry::

    s_t = F(s_{t-1}, x_t),     J_t[i, j] = d s_t[i] / d s_{t-1}[j]

  so a gradient travels back as ``dL/ds_{t-1} = J_t^T dL/ds_t + ...``. For the
  Elman RNN ``h_t = tanh(x_t W_x + h_{t-1} W_h + b)`` (seqjax's row-vector
  convention) ``J_t = diag(1 - h_t^2) W_h^T``.

  Args:
    cell: a ``seqjax.Cell``.
    params: its parameters.
    xs: unbatched inputs (T, D), T >= 1 (for an autonomous system pass
      zeros).
    carry: unbatched initial carry; defaults to ``cell.initial_carry(params, ())``.

  Returns:
    (T, N, N), forward-mode Jacobians of ``cell.step`` (its fast path is not
    used).

  Raises:
    ValueError naming ``xs`` for batched inputs or T = 0; ValueError when a
    concrete Jacobian is not finite (naming the step); under ``jax.jit`` such
    entries come back as inf/NaN.
  """
  xs, carry = _trajectory_setup("step_jacobians", cell, params, xs, carry, 1)

  def body(vector, x):
    def f(v):
      new, _ = cell.step(params, _from_state_vector(v, carry), x)
      new_vector = _state_vector(new)
      return new_vector, new_vector

    jacobian, new_vector = jax.jacfwd(f, has_aux=True)(vector)
    return new_vector, jacobian

  _, jacobians = jax.lax.scan(body, _state_vector(carry), xs)
  if _is_concrete(jacobians):
    bad = ~np.isfinite(np.asarray(jacobians)).all(axis=(1, 2))
    if bad.any():
      raise ValueError(f"the step Jacobian is not finite at step t={int(np.argmax(bad))} of "
                       f"T={bad.shape[0]}: the trajectory overflowed or met a NaN")
  return jacobians


def singular_values(jacobians: Array) -> Array:
  """Singular values of each Jacobian, largest first.

  ``sigma_1`` bounds how much one step can stretch a gradient (``||J^T g||
  <= sigma_1 ||g||``); ``prod_t sigma_1(J_t)`` bounds the gradient's growth
  over a span.

  Args:
    jacobians: (..., N, M), e.g. the (T, N, N) of ``step_jacobians``.

  Returns:
    (..., min(N, M)) singular values in descending order.
  """
  if not hasattr(jacobians, "shape") or len(jacobians.shape) < 2:
    raise ValueError(f"jacobians must have shape (..., N, M), got "
                     f"{checks.shape_of(jacobians)}")
  checks.float_array("jacobians", jacobians)
  return jnp.linalg.svd(jnp.asarray(jacobians), compute_uv=False)


def lyapunov_exponents(cell: Cell,
                       params: Params,
                       xs: Array,
                       *,
                       carry: Optional[Carry] = None,
                       num: Optional[int] = None,
                       warmup: int = 0) -> Array:
  """The Lyapunov spectrum of the driven recurrence, by Benettin's QR method.

  ``num`` orthonormal tangent vectors ``Q`` (N, num), starting as the first
  columns of the identity, ride along the trajectory ``s_t = F(s_{t-1}, x_t)``
  and are re-orthonormalised after every step::

    Z_t = J_t Q_{t-1}             (J_t = ds_t/ds_{t-1}, as Jacobian-vector products)
    Q_t R_t = Z_t                 (QR decomposition)
    lambda_i = 1 / (T - warmup) * sum_{t >= warmup} log |R_t[i, i]|

  The exponents are growth rates per step in natural log units: a
  perturbation (and a gradient travelling back) along the i-th direction
  scales like ``exp(lambda_i t)``. For the linear map ``s -> A s`` they tend to
  ``log |eig(A)|``. With a finite T they are finite-time exponents of this
  input sequence; ``warmup`` steps align ``Q`` with the growing directions
  (and let the state forget its start) before anything is averaged.

  The state is the flattened carry of ``step_jacobians`` (``[h; c]`` for an
  LSTM). A direction the Jacobians annihilate (a ReLU unit that stays off)
  has exponent ``-inf``.

  Args:
    cell: a ``seqjax.Cell``.
    params: its parameters.
    xs: unbatched inputs (T, D) with T > warmup (at least one averaged step);
      for an autonomous system pass zeros.
    carry: unbatched initial carry; defaults to ``cell.initial_carry(params, ())``.
    num: how many exponents, 1 <= num <= N; defaults to N (all).
    warmup: steps run (and ``Q`` evolved) before averaging starts, >= 0.

  Returns:
    (num,) exponents, sorted in descending order, in the state's real dtype.

  Raises:
    ValueError naming ``xs`` (batched, or not more than ``warmup`` steps),
    ``num`` or ``warmup``; ValueError naming the first step where the
    trajectory or the tangent vectors went non-finite, for concrete values
    (under ``jax.jit`` the exponents come back NaN).
  """
  warmup = checks.non_negative_int("warmup", warmup)
  xs, carry = _trajectory_setup("lyapunov_exponents", cell, params, xs, carry, 1)
  steps = xs.shape[0]
  if steps <= warmup:
    raise ValueError(f"xs must have more than warmup={warmup} time steps (at least one step "
                     f"to average), got shape {tuple(xs.shape)}")
  vector = _state_vector(carry)
  size = vector.shape[0]
  if num is None:
    num = size
  num = checks.positive_int("num", num)
  if num > size:
    raise ValueError(f"num must be at most the state size N={size}, got {num}")

  def body(state, x):
    vector, q = state

    def f(v):
      new, _ = cell.step(params, _from_state_vector(v, carry), x)
      return _state_vector(new)

    new_vector, jvp = jax.linearize(f, vector)
    z = jax.vmap(jvp, in_axes=1, out_axes=1)(q)
    q, r = jnp.linalg.qr(z)
    logs = jnp.log(jnp.abs(jnp.diagonal(r)))
    flags = (~jnp.all(jnp.isfinite(new_vector)), ~jnp.all(jnp.isfinite(z)))
    return (new_vector, q), (logs, flags)

  q0 = jnp.eye(size, num, dtype=vector.dtype)
  _, (logs, (bad_state, bad_tangent)) = jax.lax.scan(body, (vector, q0), xs)
  if _is_concrete(bad_state, bad_tangent):
    for flags, what in ((bad_state, "the trajectory (carry)"),
                        (bad_tangent, "the tangent vectors (J_t Q)")):
      flags = np.asarray(flags)
      if flags.any():
        raise ValueError(f"{what} went non-finite at step t={int(np.argmax(flags))} of "
                         f"T={steps}: the Lyapunov exponents are undefined")
  exponents = jnp.mean(logs[warmup:], axis=0)
  return -jnp.sort(-exponents)

