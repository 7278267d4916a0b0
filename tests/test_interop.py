"""Tests of seqjax.interop against PyTorch's and Flax's own modules.

PyTorch is the independent reference for ``from_torch``/``to_torch``: its
``nn.LSTM``/``nn.GRU``/``nn.RNN`` (with ``pack_padded_sequence`` for padding)
give outputs, final states and gradients (w.r.t. the inputs and w.r.t. its
own parameters) that seqjax must reproduce through the converter, to 1e-5 in
float32 and 1e-10 in float64. Gradients w.r.t. PyTorch's parameters are
seqjax's gradients pulled back through ``from_torch`` (``jax.grad`` of a loss
of ``from_torch(state_dict)``), i.e. through the converter's own mapping.
Flax's ``nn.LSTMCell``/``nn.OptimizedLSTMCell``/``nn.GRUCell`` are the
reference for ``from_flax``/``to_flax``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

# Guard only: .ci/run installs torch (a test requirement, not a seqjax dependency).
torch = pytest.importorskip("torch")

from flax import linen as flax_nn  # noqa: E402

import seqjax  # noqa: E402
from seqjax import interop  # noqa: E402
from seqjax.cells.gru import gru  # noqa: E402
from seqjax.cells.lstm import lstm  # noqa: E402
from seqjax.types import LSTMCarry  # noqa: E402

B, T, D, H = 3, 5, 4, 6
LENGTHS = np.array([5, 3, 1])  # unsorted on purpose for a later row: enforce_sorted=False
TOLERANCE = {np.float32: 1e-5, np.float64: 1e-10}
TORCH_DTYPE = {np.float32: torch.float32, np.float64: torch.float64}

torch.set_num_threads(1)


def _module(kind, num_layers=1, bidirectional=False, dtype=np.float32, seed=0, **kw):
  """A PyTorch module of ``kind`` with its default (uniform) init, biases included."""
  torch.manual_seed(seed)
  if kind == "lstm":
    module = torch.nn.LSTM(D, H, num_layers, batch_first=True, bidirectional=bidirectional, **kw)
  elif kind == "gru":
    module = torch.nn.GRU(D, H, num_layers, batch_first=True, bidirectional=bidirectional, **kw)
  else:
    module = torch.nn.RNN(D, H, num_layers, nonlinearity=kind[len("rnn_"):],
                          batch_first=True, bidirectional=bidirectional, **kw)
  assert module.mode.lower() == kind
  return module.to(TORCH_DTYPE[dtype])


def _numpy_state(module):
  return {k: v.detach().numpy().copy() for k, v in module.state_dict().items()}


def _inputs(dtype, seed=1):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(B, T, D)).astype(dtype)
  return x, rng


def _torch_run(module, x, lengths, out_weight, state_weights):
  """Outputs, final states, d loss / d x and d loss / d params of PyTorch's module."""
  module.zero_grad()
  x_t = torch.tensor(x, requires_grad=True)
  packed = torch.nn.utils.rnn.pack_padded_sequence(
      x_t, torch.tensor(lengths), batch_first=True, enforce_sorted=False)
  out, state = module(packed)
  out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=T)
  states = state if isinstance(state, tuple) else (state,)
  loss = (out * torch.tensor(out_weight)).sum() + sum(
      (s * torch.tensor(w)).sum() for s, w in zip(states, state_weights))
  loss.backward()
  grads = {k: p.grad.numpy() for k, p in module.named_parameters()}
  return out.detach().numpy(), [s.detach().numpy() for s in states], x_t.grad.numpy(), grads


def _torch_layout(carry, num_layers, bidirectional):
  """seqjax's final carry -> PyTorch's ``(h_n, c_n)`` / ``(h_n,)``, each (L*dirs, B, H)."""
  per_layer = carry if num_layers > 1 else (carry,)
  directions = [d for layer in per_layer for d in (layer if bidirectional else (layer,))]
  if isinstance(directions[0], LSTMCarry):
    return [jnp.stack([d.h for d in directions]), jnp.stack([d.c for d in directions])]
  return [jnp.stack(directions)]


def _error(got, want):
  """Max absolute error, relative to the reference's scale where it exceeds 1."""
  want = np.asarray(want)
  return float(np.max(np.abs(np.asarray(got) - want)) / max(1.0, np.max(np.abs(want))))


def _compare_with_torch(kind, num_layers, bidirectional, padded, dtype, implementation):
  module = _module(kind, num_layers, bidirectional, dtype)
  state = _numpy_state(module)
  x, rng = _inputs(dtype)
  lengths = LENGTHS if padded else np.full(B, T)
  mask = np.arange(T)[None, :] < lengths[:, None] if padded else None
  if padded:  # padded steps may hold anything: neither library reads them
    x = np.where(mask[..., None], x, np.asarray(1e3, dtype))
  directions = 2 if bidirectional else 1
  out_weight = rng.normal(size=(B, T, directions * H)).astype(dtype)
  num_states = 2 if kind == "lstm" else 1
  state_weights = [rng.normal(size=(num_layers * directions, B, H)).astype(dtype)
                   for _ in range(num_states)]
  want_out, want_states, want_dx, want_grads = _torch_run(module, x, lengths, out_weight,
                                                          state_weights)

  def loss(state_dict, xs):
    layer, params = interop.from_torch(state_dict, kind, implementation=implementation)
    carry, ys = layer.apply(params, xs, mask=mask)
    states = _torch_layout(carry, num_layers, bidirectional)
    value = jnp.sum(ys * out_weight) + sum(jnp.sum(s * w) for s, w in zip(states, state_weights))
    return value, (ys, states)

  state_jax = {k: jnp.asarray(v) for k, v in state.items()}
  # One compilation instead of an eager scan and its transpose, op by op.
  (_, (ys, states)), (grads, dx) = jax.jit(
      jax.value_and_grad(loss, argnums=(0, 1), has_aux=True))(state_jax, jnp.asarray(x))
  assert ys.dtype == dtype and all(g.dtype == dtype for g in grads.values())
  errors = {"outputs": _error(ys, want_out), "d/dx": _error(dx, want_dx)}
  for i, (s, w) in enumerate(zip(states, want_states)):
    errors[("h_n", "c_n")[i]] = _error(s, w)
  assert set(grads) == set(want_grads)
  errors["d/dweights"] = max(_error(grads[k], want_grads[k]) for k in want_grads)
  return errors


KINDS = tuple(interop.KINDS)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("num_layers,bidirectional,padded,implementation", [
    (1, False, False, "auto"),
    (2, True, True, "scan"),
    (2, True, True, "fast"),
])
def test_outputs_states_and_gradients_equal_torch(kind, dtype, num_layers, bidirectional,
                                                  padded, implementation):
  with jax.enable_x64(dtype == np.float64):
    errors = _compare_with_torch(kind, num_layers, bidirectional, padded, dtype,
                                 implementation)
  assert max(errors.values()) < TOLERANCE[dtype], errors


@pytest.mark.parametrize("kind", KINDS)
def test_round_trip_from_torch_to_torch_is_the_original_state_dict(kind):
  module = _module(kind, num_layers=2, bidirectional=True)
  state = _numpy_state(module)
  layer, params = interop.from_torch(state, kind.upper())
  forget_bias = 0.0 if kind == "lstm" else None
  back = interop.to_torch(params, kind, forget_bias=forget_bias, like=state)
  assert list(back) == list(state)  # PyTorch's key order too
  for key in state:
    assert back[key].dtype == state[key].dtype, key
    np.testing.assert_array_equal(back[key], state[key], err_msg=key)

  # Without ``like`` the biases are split differently but compute the same module.
  plain = interop.to_torch(params, kind, forget_bias=forget_bias)
  for key in state:
    if key.startswith("weight"):
      np.testing.assert_array_equal(plain[key], state[key])
  reloaded = _module(kind, num_layers=2, bidirectional=True, seed=5)
  reloaded.load_state_dict({k: torch.as_tensor(v) for k, v in plain.items()})
  x, _ = _inputs(np.float32)
  with torch.no_grad():
    want, got = module(torch.tensor(x))[0].numpy(), reloaded(torch.tensor(x))[0].numpy()
  np.testing.assert_allclose(got, want, atol=1e-6)
  _, ys = layer.apply(params, x)
  np.testing.assert_allclose(ys, want, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_round_trip_seqjax_to_torch_to_seqjax_is_exact(kind):
  layer = seqjax.layers.stacked(
      seqjax.layers.bidirectional(interop.torch_cell(kind, H)), num_layers=2)
  shapes = jax.eval_shape(lambda key: layer.init(key, D), jax.random.PRNGKey(0))
  rng = np.random.default_rng(3)
  params = jax.tree_util.tree_map(
      lambda s: rng.normal(size=s.shape).astype(s.dtype), shapes)
  state = interop.to_torch(params, kind, forget_bias=0.0 if kind == "lstm" else None)
  _, again = interop.from_torch(state, kind)
  assert jax.tree_util.tree_structure(again) == jax.tree_util.tree_structure(params)
  for got, want in zip(jax.tree_util.tree_leaves(again), jax.tree_util.tree_leaves(params)):
    np.testing.assert_array_equal(got, want)


def test_seqjax_lstm_forget_bias_is_folded_into_torch_bias():
  cell = lstm(H)  # seqjax's default forget_bias=1.0
  params = jax.tree_util.tree_map(
      lambda p: p + 0.1, cell.init(jax.random.PRNGKey(0), D))
  x, _ = _inputs(np.float32)
  carry, ys = seqjax.unroll(cell, params, x)
  with pytest.raises(ValueError, match="forget_bias=.*1.0"):
    interop.to_torch(params, "lstm")
  state = interop.to_torch(params, "lstm", forget_bias=1.0)
  np.testing.assert_allclose(state["bias_ih_l0"][H:2 * H], params["b"][H:2 * H] + 1.0)
  module = _module("lstm")
  module.load_state_dict({k: torch.as_tensor(v) for k, v in state.items()})
  with torch.no_grad():
    out, (h_n, c_n) = module(torch.tensor(x))
  np.testing.assert_allclose(ys, out.numpy(), atol=1e-5)
  np.testing.assert_allclose(carry.c, c_n[0].numpy(), atol=1e-5)


def test_bias_false_modules_and_prefixed_state_dicts():
  module = _module("gru", bias=False)
  model = torch.nn.Sequential()
  model.add_module("rnn", module)
  model.add_module("head", torch.nn.Linear(H, 2))
  state = _numpy_state(model)
  layer, params = interop.from_torch(state, "gru", prefix="rnn.")
  np.testing.assert_array_equal(params["b"], 0.0)
  np.testing.assert_array_equal(params["b_hn"], 0.0)
  x, _ = _inputs(np.float32)
  with torch.no_grad():
    want = module(torch.tensor(x))[0].numpy()
  np.testing.assert_allclose(layer.apply(params, x)[1], want, atol=1e-5)
  back = interop.to_torch(params, "gru", bias=False, prefix="rnn.")
  assert set(back) == {"rnn.weight_ih_l0", "rnn.weight_hh_l0"}
  for key in back:
    np.testing.assert_array_equal(back[key], state[key])
  params["b_hn"] = params["b_hn"] + 1.0
  with pytest.raises(ValueError, match="bias=False.*nonzero"):
    interop.to_torch(params, "gru", bias=False)


def _one_line_error(error, *fragments):
  message = str(error.value)
  assert "\n" not in message, message
  for fragment in fragments:
    assert fragment in message, (fragment, message)


def test_from_torch_shape_and_key_errors_are_one_line():
  state = _numpy_state(_module("lstm", num_layers=2, bidirectional=True))
  bad = dict(state, weight_hh_l1_reverse=state["weight_hh_l1_reverse"].T)
  with pytest.raises(ValueError) as error:
    interop.from_torch(bad, "lstm")
  _one_line_error(error, "weight_hh_l1_reverse", "(6, 24)", "(24, 6)", "transposed")
  bad = dict(state, weight_ih_l1=state["weight_ih_l1"][:, :H])  # layer 1 reads 2H features
  with pytest.raises(ValueError) as error:
    interop.from_torch(bad, "lstm")
  _one_line_error(error, "weight_ih_l1", "(24, 6)", "(24, 12)")
  bad = {k: v for k, v in state.items() if k != "bias_hh_l1_reverse"}
  with pytest.raises(ValueError) as error:
    interop.from_torch(bad, "lstm")
  _one_line_error(error, "missing", "bias_hh_l1_reverse", "(24,)")
  with pytest.raises(ValueError) as error:
    interop.from_torch(dict(state, extra=np.zeros(3)), "lstm")
  _one_line_error(error, "unexpected key", "extra")
  with pytest.raises(ValueError) as error:
    interop.from_torch(dict(state, weight_hr_l0=np.zeros((3, H))), "lstm")
  _one_line_error(error, "weight_hr_l0", "proj_size")
  with pytest.raises(ValueError) as error:  # a GRU's weights read as an LSTM's
    interop.from_torch(_numpy_state(_module("gru")), "lstm")
  _one_line_error(error, "weight_hh_l0", "(18, 6)", "(4H, H)")
  with pytest.raises(ValueError, match="kind must be one of"):
    interop.from_torch(state, "rnn")


def test_to_torch_refuses_cells_torch_cannot_express():
  with pytest.raises(ValueError, match="w_peep"):
    interop.to_torch(lstm(H, peephole=True).init(jax.random.PRNGKey(0), D), "lstm",
                     forget_bias=1.0)
  with pytest.raises(ValueError, match="b_hn.*reset_after=True"):
    interop.to_torch(gru(H, reset_after=False).init(jax.random.PRNGKey(0), D), "gru")
  with pytest.raises(ValueError, match="forget_bias applies to kind='lstm' only"):
    interop.to_torch(gru(H).init(jax.random.PRNGKey(0), D), "gru", forget_bias=1.0)
  params = interop.torch_cell("lstm", H).init(jax.random.PRNGKey(0), D)
  with pytest.raises(ValueError) as error:
    interop.to_torch(params, "gru")
  _one_line_error(error, "w_h")
  bad = dict(params, b=params["b"][:3 * H])
  with pytest.raises(ValueError) as error:
    interop.to_torch(bad, "lstm", forget_bias=0.0)
  _one_line_error(error, "['b']", "(18,)", "(24,)")


@pytest.mark.parametrize("change", ["missing", "extra", "torch_layout"])
def test_unroll_rejects_params_that_do_not_fit_the_cell(change):
  state = _numpy_state(_module("lstm"))
  layer, params = interop.from_torch(state, "lstm")
  cell = interop.torch_cell("lstm", H)
  x, _ = _inputs(np.float32)
  if change == "missing":
    params = {k: v for k, v in params.items() if k != "b"}
    fragments = ["'b'", "(24,)"]
  elif change == "extra":
    params = dict(params, b_hh=jnp.asarray(state["bias_hh_l0"]))
    fragments = ["'b_hh'"]
  else:  # PyTorch's (4H, H) recurrent weight where seqjax keeps (H, 4H)
    params = dict(params, w_h=jnp.asarray(state["weight_hh_l0"]))
    fragments = ["'w_h'", "(24, 6)", "(6, 24)"]
  for run in (lambda: seqjax.unroll(cell, params, x), lambda: layer.apply(params, x)):
    with pytest.raises(ValueError) as error:
      run()
    _one_line_error(error, *fragments)


# ------------------------------------------------------------------- Flax


def _flax_run(module, variables, x):
  """Python loop of the Flax cell over (B, T, D): final carry and outputs."""
  carry = module.initialize_carry(jax.random.PRNGKey(0), x[:, 0].shape)
  step = jax.jit(module.apply)
  ys = []
  for t in range(x.shape[1]):
    carry, y = step(variables, carry, x[:, t])
    ys.append(y)
  return carry, jnp.stack(ys, axis=1)


def _flax_variables(module, dtype, seed):
  """The module's own init, with every leaf (biases too) moved away from zero."""
  carry = module.initialize_carry(jax.random.PRNGKey(0), (B, D))
  variables = module.init(jax.random.PRNGKey(seed), carry, jnp.zeros((B, D), dtype))
  rng = np.random.default_rng(seed)
  return jax.tree_util.tree_map(
      lambda v: np.asarray(v) + rng.normal(scale=0.3, size=v.shape).astype(dtype), variables)


FLAX_CELLS = (flax_nn.LSTMCell, flax_nn.OptimizedLSTMCell, flax_nn.GRUCell)


@pytest.mark.parametrize("flax_cell", FLAX_CELLS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_from_flax_equals_flax_and_round_trips(flax_cell, dtype):
  with jax.enable_x64(dtype == np.float64):
    module = flax_cell(features=H, dtype=dtype, param_dtype=dtype)
    variables = _flax_variables(module, dtype, seed=4)
    x, _ = _inputs(dtype)
    want_carry, want_ys = _flax_run(module, variables, x)
    cell, params = interop.from_flax(variables)
    carry, ys = seqjax.unroll(cell, params, x, implementation="scan")
    assert ys.dtype == dtype
    np.testing.assert_allclose(ys, want_ys, rtol=0, atol=TOLERANCE[dtype])
    if isinstance(carry, LSTMCarry):
      np.testing.assert_allclose(carry.c, want_carry[0], rtol=0, atol=TOLERANCE[dtype])
      np.testing.assert_allclose(carry.h, want_carry[1], rtol=0, atol=TOLERANCE[dtype])
    else:
      np.testing.assert_allclose(carry, want_carry, rtol=0, atol=TOLERANCE[dtype])
    is_lstm = flax_cell is not flax_nn.GRUCell
    back = interop.to_flax(params, forget_bias=0.0 if is_lstm else None)
    assert jax.tree_util.tree_structure(back) == jax.tree_util.tree_structure(variables)
    for (path, got), want in zip(jax.tree_util.tree_leaves_with_path(back),
                                 jax.tree_util.tree_leaves(variables)):
      np.testing.assert_array_equal(got, want, err_msg=str(path))
    _, again = interop.from_flax(variables["params"])  # the inner dict works too
    for got, want in zip(jax.tree_util.tree_leaves(again), jax.tree_util.tree_leaves(params)):
      np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("flax_cell", FLAX_CELLS, ids=lambda c: c.__name__)
def test_to_flax_of_seqjax_cells_equals_flax(flax_cell):
  is_lstm = flax_cell is not flax_nn.GRUCell
  cell = lstm(H) if is_lstm else gru(H)  # the LSTM with seqjax's forget_bias=1.0
  rng = np.random.default_rng(5)
  params = jax.tree_util.tree_map(
      lambda p: np.asarray(p) + rng.normal(scale=0.3, size=p.shape).astype(np.float32),
      cell.init(jax.random.PRNGKey(1), D))
  x, _ = _inputs(np.float32)
  _, ys = seqjax.unroll(cell, params, x)
  if is_lstm:
    with pytest.raises(ValueError, match="forget_bias"):
      interop.to_flax(params)
  variables = interop.to_flax(params, forget_bias=1.0 if is_lstm else None)
  _, want = _flax_run(flax_cell(features=H), variables, x)
  np.testing.assert_allclose(ys, want, rtol=0, atol=1e-5)


def test_from_flax_errors_name_the_gate_and_shapes():
  module = flax_nn.LSTMCell(features=H)
  variables = _flax_variables(module, np.float32, seed=6)
  gates = dict(variables["params"])
  with pytest.raises(ValueError) as error:
    interop.from_flax({k: v for k, v in gates.items() if k != "io"})
  _one_line_error(error, "LSTMCell", "GRUCell")
  bad = dict(gates, hg={"kernel": gates["hg"]["kernel"][:, :2], "bias": gates["hg"]["bias"]})
  with pytest.raises(ValueError) as error:
    interop.from_flax(bad)
  _one_line_error(error, "['hg']['kernel']", "(6, 2)", "(6, 6)")
  bad = dict(gates, ii={"kernel": gates["ii"]["kernel"], "bias": np.zeros(H)})
  with pytest.raises(ValueError) as error:
    interop.from_flax(bad)
  _one_line_error(error, "['ii']", "kernel")
  with pytest.raises(ValueError, match="gru.*reset_after=True"):
    interop.to_flax(gru(H, reset_after=False).init(jax.random.PRNGKey(0), D))
