"""``unroll``'s argument checks and layout handling (numerics: tests/cells/test_protocol.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import seqjax
from seqjax.cells.rnn import rnn
from seqjax.scan import reverse_restart, unroll


@pytest.fixture(scope="module")
def cell_and_params():
  cell = rnn(4)
  return cell, cell.init(jax.random.PRNGKey(0), 3)


def test_rank_error(cell_and_params):
  cell, params = cell_and_params
  with pytest.raises(ValueError, match=r"xs must have shape \(\*B, T, D\).*got shape \(3,\)"):
    unroll(cell, params, jnp.zeros(3))


def test_integer_input_error(cell_and_params):
  cell, params = cell_and_params
  with pytest.raises(TypeError, match="xs must be a floating-point array, got dtype int32"):
    unroll(cell, params, jnp.zeros((2, 5, 3), jnp.int32))


def test_mask_shape_error_names_layout(cell_and_params):
  cell, params = cell_and_params
  with pytest.raises(ValueError, match=r"mask must have shape \(2, 5\) \(\(\*B, T\)\), got \(5, 2\)"):
    unroll(cell, params, jnp.zeros((2, 5, 3)), mask=np.ones((5, 2), bool))
  with pytest.raises(ValueError, match=r"reset must have shape \(5, 2\) \(\(T, \*B\)\), got \(2, 5\)"):
    unroll(cell, params, jnp.zeros((5, 2, 3)), reset=np.ones((2, 5), bool), time_major=True)


def test_mask_dtype_error(cell_and_params):
  cell, params = cell_and_params
  with pytest.raises(TypeError, match="mask must be boolean"):
    unroll(cell, params, jnp.zeros((2, 5, 3)), mask=np.full((2, 5), "yes"))


def test_carry_shape_error(cell_and_params):
  cell, params = cell_and_params
  with pytest.raises(ValueError, match=r"carry leaf must have shape \(2, 4\).*got \(4,\)"):
    unroll(cell, params, jnp.zeros((2, 5, 3)), jnp.zeros(4))


def test_errors_raise_at_trace_time(cell_and_params):
  cell, params = cell_and_params
  with pytest.raises(ValueError, match="xs must have 3 features"):
    jax.jit(lambda x: unroll(cell, params, x)).lower(jax.ShapeDtypeStruct((2, 5, 7), jnp.float32))


def test_fast_without_fast_path(cell_and_params):
  cell, params = cell_and_params
  cell = cell._replace(fast=None)
  with pytest.raises(ValueError, match="implementation='fast' but rnn"):
    unroll(cell, params, jnp.zeros((5, 3)), implementation="fast")
  with pytest.raises(ValueError, match="implementation must be one of"):
    unroll(cell, params, jnp.zeros((5, 3)), implementation="quick")


def test_not_a_cell(cell_and_params):
  _, params = cell_and_params
  with pytest.raises(TypeError, match="cell must be a seqjax.Cell, got dict"):
    unroll({}, params, jnp.zeros((5, 3)))


def test_integer_mask_accepted(cell_and_params):
  cell, params = cell_and_params
  xs = jax.random.normal(jax.random.PRNGKey(1), (2, 5, 3))
  mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
  np.testing.assert_array_equal(unroll(cell, params, xs, mask=mask)[1],
                                unroll(cell, params, xs, mask=mask.astype(bool))[1])


def test_reverse_restart():
  reset = jnp.array([True, False, True, False, False, True])
  np.testing.assert_array_equal(reverse_restart(reset),
                                [False, True, False, False, True, False])


@pytest.mark.usefixtures("optax_promotion")  # calls optax directly
def test_trainable_mask_freezes_frozen_subtrees():
  params = {"w": jnp.ones(2), "frozen": {"w_rec": jnp.ones((2, 2))},
            "block": {"frozen": {"tau": jnp.ones(2)}, "b": jnp.zeros(2)}}
  mask = seqjax.trainable_mask(params)
  assert mask == {"w": True, "frozen": {"w_rec": False},
                  "block": {"frozen": {"tau": False}, "b": True}}
  optimizer = seqjax.keep_frozen(optax.adam(0.5))
  grads = jax.tree_util.tree_map(jnp.ones_like, params)
  updates, _ = optimizer.update(grads, optimizer.init(params), params)
  new = optax.apply_updates(params, updates)
  np.testing.assert_array_equal(new["frozen"]["w_rec"], params["frozen"]["w_rec"])
  np.testing.assert_array_equal(new["block"]["frozen"]["tau"], 1.0)
  np.testing.assert_allclose(new["w"], params["w"] - 0.5, rtol=1e-4)  # adam's first step is lr


def test_protocol_violations_of_custom_cells_are_caught():
  # Without its fast path, so that ``unroll`` runs the (replaced) step.
  base = rnn(4)._replace(fast=None)
  params = base.init(jax.random.PRNGKey(0), 3)
  xs = jnp.zeros((2, 5, 3))
  wrong_output = base._replace(output_size=7, name="wrong_output")
  with pytest.raises(AssertionError, match="wrong_output.step output"):
    unroll(wrong_output, params, xs)
  growing = base._replace(step=lambda p, h, x: (jnp.concatenate([h, h], -1), h), name="growing")
  with pytest.raises(AssertionError, match="growing.step must return a carry like its input"):
    unroll(growing, params, xs)


def test_traced_mask_and_reset(cell_and_params):
  cell, params = cell_and_params
  xs = jax.random.normal(jax.random.PRNGKey(2), (2, 5, 3))
  mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
  reset = np.zeros((2, 5), bool)
  reset[1, 2] = True
  jitted = jax.jit(lambda p, x, m, r: unroll(cell, p, x, mask=m, reset=r))
  _, got = jitted(params, xs, mask, reset)
  _, want = unroll(cell, params, xs, mask=mask, reset=reset)
  np.testing.assert_allclose(got, want, atol=1e-6)


@pytest.mark.parametrize("implementation", ["scan", "fast"])
@pytest.mark.parametrize("reverse", [False, True])
def test_remat_chunks_keep_values_and_gradients(implementation, reverse):
  # T=11 runs as 4 chunks of 3 steps with one padded step: padding, masks,
  # resets and direction must all survive the chunking.
  from seqjax.cells.lstm import lstm
  cell = lstm(4)
  params = cell.init(jax.random.PRNGKey(0), 3)
  xs = jax.random.normal(jax.random.PRNGKey(1), (2, 11, 3))
  mask = np.ones((2, 11), bool)
  mask[0, 8:] = False
  reset = np.zeros((2, 11), bool)
  reset[1, 4] = True

  def loss(p, x, remat):
    carry, ys = unroll(cell, p, x, mask=mask, reset=reset, reverse=reverse, remat=remat,
                       implementation=implementation)
    return jnp.sum(jnp.sin(ys)) + jnp.sum(carry.c ** 2)

  want = jax.value_and_grad(loss, argnums=(0, 1))(params, xs, False)
  got = jax.value_and_grad(loss, argnums=(0, 1))(params, xs, True)
  jax.tree_util.tree_map(
      lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), got, want)


def test_remat_stores_less_for_the_backward_pass():
  from seqjax.cells.lstm import lstm
  cell = lstm(32)
  params = cell.init(jax.random.PRNGKey(0), 8)
  xs = jnp.zeros((4, 900, 8))

  def temp_bytes(remat):
    def loss(p, x):
      return jnp.sum(unroll(cell, p, x, remat=remat)[1][:, -1])
    compiled = jax.jit(jax.grad(loss)).lower(params, xs).compile()
    return compiled.memory_analysis().temp_size_in_bytes

  # Without remat the backward pass keeps ~6 (B, H) arrays per step (gates,
  # h, c); with it, one carry per 30-step chunk plus one chunk's activations.
  assert temp_bytes(True) * 4 < temp_bytes(False)


# Inputs that must be refused with a one-line error naming the argument.
def _one_line(excinfo):
  assert "\n" not in str(excinfo.value), str(excinfo.value)


@pytest.mark.parametrize("option", ["reverse", "time_major", "remat"])
def test_boolean_options_must_be_booleans(cell_and_params, option):
  cell, params = cell_and_params
  with pytest.raises(TypeError, match=f"{option} must be True or False, got 'no'") as info:
    unroll(cell, params, jnp.zeros((2, 5, 3)), **{option: "no"})
  _one_line(info)


@pytest.mark.parametrize("flag", ["mask", "reset"])
def test_numeric_flags_must_be_exactly_zero_or_one(cell_and_params, flag):
  cell, params = cell_and_params
  xs = jnp.zeros((2, 5, 3))
  with pytest.raises(ValueError, match=f"{flag} must be boolean or exactly 0/1, got a value 0.3"):
    unroll(cell, params, xs, **{flag: np.full((2, 5), 0.3, np.float32)})
  ones = np.ones((2, 5), np.float32)
  want = unroll(cell, params, xs + 1.0, **{flag: ones.astype(bool)})[1]
  np.testing.assert_array_equal(unroll(cell, params, xs + 1.0, **{flag: ones})[1], want)


def test_params_of_another_cell_name_the_key_and_shapes(cell_and_params):
  cell, _ = cell_and_params
  other = rnn(6).init(jax.random.PRNGKey(1), 3)
  with pytest.raises(ValueError, match=r"params\['b'\] has shape \(6,\), expected \(4,\)") as info:
    unroll(cell, other, jnp.zeros((2, 5, 3)))
  _one_line(info)


def test_params_with_missing_or_extra_keys(cell_and_params):
  cell, params = cell_and_params
  missing = {k: v for k, v in params.items() if k != "b"}
  with pytest.raises(ValueError, match=r"params is missing \['b'\] \(expected shape \(4,\)\)"):
    unroll(cell, missing, jnp.zeros((2, 5, 3)))
  extra = dict(params, w_peep=jnp.zeros(4))
  with pytest.raises(ValueError, match=r"params has an unexpected entry \['w_peep'\]"):
    unroll(cell, extra, jnp.zeros((2, 5, 3)))


def test_transposed_lstm_recurrent_weight_is_refused():
  cell = seqjax.cells.lstm(4)
  params = cell.init(jax.random.PRNGKey(0), 3)
  params = dict(params, w_h=params["w_h"].T)  # torch's (4H, H) layout
  with pytest.raises(ValueError, match=r"params\['w_h'\] has shape \(16, 4\), expected \(4, 16\)"):
    unroll(cell, params, jnp.zeros((2, 5, 3)))


def test_params_none(cell_and_params):
  cell, _ = cell_and_params
  with pytest.raises(TypeError, match="params must be the pytree of arrays returned by cell.init"):
    unroll(cell, None, jnp.zeros((2, 5, 3)))
  with pytest.raises(TypeError, match="params must be the params this cell's init built"):
    cell.step(None, jnp.zeros(4), jnp.zeros(3))


def test_initial_carry_batch_shape_must_be_a_tuple(cell_and_params):
  cell, params = cell_and_params
  with pytest.raises(TypeError, match=r"batch_shape must be a tuple of non-negative ints .* got 4"):
    cell.initial_carry(params, 4)
  assert cell.initial_carry(params, [2]).shape == (2, 4)


def test_step_with_wrong_feature_size(cell_and_params):
  cell, params = cell_and_params
  with pytest.raises(ValueError, match=r"x_t must have shape \(\*B, 3\) .* got shape \(2, 5\)") as info:
    cell.step(params, jnp.zeros((2, 4)), jnp.zeros((2, 5)))
  _one_line(info)


def test_integer_carry_is_refused(cell_and_params):
  cell, params = cell_and_params
  with pytest.raises(TypeError, match="carry leaf must have a floating dtype like float32, got int32"):
    unroll(cell, params, jnp.zeros((2, 5, 3)), jnp.zeros((2, 4), jnp.int32))
  with pytest.raises(TypeError, match="carry must hold floating arrays .* dtype int32"):
    cell.step(params, jnp.zeros((2, 4), jnp.int32), jnp.zeros((2, 3)))


def test_nested_list_xs(cell_and_params):
  cell, params = cell_and_params
  with pytest.raises(TypeError, match=r"xs must be an array of shape \(\*B, T, D\) .* got list"):
    unroll(cell, params, [[[0.0, 0.0, 0.0]]])


def test_stale_fast_path_cannot_run():
  cell = seqjax.cells.lstm(4)
  params = cell.init(jax.random.PRNGKey(0), 3)

  def doubled(p, carry, x):
    return cell.step(p, carry, 2.0 * x)

  for derived in (cell.with_step(doubled), cell._replace(step=doubled)):
    assert derived.fast is None
    xs = jnp.ones((2, 5, 3))
    np.testing.assert_allclose(unroll(derived, params, xs)[1],
                               unroll(cell, params, 2.0 * xs, implementation="scan")[1],
                               rtol=1e-6)
  forged = seqjax.Cell(*cell[:-1], fast=cell.fast)._replace(name="forged")
  forged = forged._replace(step=doubled, fast=cell.fast)
  with pytest.raises(ValueError, match="carries a fast path for another step function"):
    unroll(forged, params, jnp.ones((2, 5, 3)))


@pytest.mark.parametrize("factory, argument", [
    (lambda v: seqjax.cells.ctrnn(4, tau=v), "tau"),
    (lambda v: seqjax.cells.ctrnn(4, dt=v), "dt"),
    (lambda v: seqjax.cells.lstm(4, forget_bias=v), "forget_bias"),
    (lambda v: seqjax.cells.leaky(4, timescales="fixed", tau=v), "tau"),
    (lambda v: seqjax.cells.lru(4, max_phase=v), "max_phase"),
    (lambda v: seqjax.cells.lru(4, r_min=v), "r_min"),
])
@pytest.mark.parametrize("value", [float("inf"), float("nan")])
def test_float_hyperparameters_must_be_finite(factory, argument, value):
  with pytest.raises((ValueError, TypeError), match=argument):
    factory(value)
