"""Checkpointer: bitwise round trips, pruning, atomicity, fallback and clear errors."""

import functools
import glob
import logging
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
from orbax.checkpoint._src.path import atomicity
import pytest

import seqjax
from seqjax.train.checkpoint import Checkpointer, CheckpointError
from seqjax.train.state import TrainState
from seqjax.types import LSTMCarry

HIDDEN = 4


def _optimizer():
  return seqjax.keep_frozen(optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-3)))


@functools.partial(jax.jit, static_argnames="hidden")
def _arrays(seed, hidden):
  """Params and optimiser state after one real update (non-trivial Adam moments)."""
  keys = jax.random.split(jax.random.PRNGKey(seed), 6)
  params = {
      "cell": {"kernel": jax.random.normal(keys[0], (3, hidden)),
               "bias": jax.random.normal(keys[1], (hidden,)).astype(jnp.bfloat16)},
      "frozen": {"reservoir": jax.random.normal(keys[2], (hidden, hidden))},
  }
  optimizer = _optimizer()
  opt_state = optimizer.init(params)
  grads = jax.tree.map(lambda p: jnp.full_like(p, 0.5), params)
  updates, opt_state = optimizer.update(grads, opt_state, params)
  params = optax.apply_updates(params, updates)
  lstm = LSTMCarry(h=jax.random.normal(keys[3], (2, hidden)),
                   c=jax.random.normal(keys[4], (2, hidden)))
  return (jnp.asarray(seed, jnp.int32), params, opt_state, jax.random.PRNGKey(seed + 100),
          lstm)


def _state(seed, carry="lstm"):
  """A TrainState with frozen params, a keep_frozen Adam state and the given carry."""
  step, params, opt_state, rng, lstm = _arrays(seed, HIDDEN)
  carries = {"none": None, "lstm": lstm, "array": lstm.h,
             "tuple": (lstm.h, LSTMCarry(lstm.c, lstm.h))}
  return TrainState(step=step, params=params, opt_state=opt_state, rng=rng,
                    carry=carries[carry])


def _bits(x):
  x = np.asarray(x)
  return x.dtype, x.shape, x.tobytes()


def _assert_bitwise_equal(restored, expected):
  assert jax.tree.structure(restored) == jax.tree.structure(expected)
  for got, want in zip(jax.tree.leaves(restored), jax.tree.leaves(expected)):
    assert isinstance(got, jax.Array)
    assert _bits(got) == _bits(want)
    assert got.sharding == want.sharding


def _target(state):
  """A fresh state of the same structure and different values: what a resumed run builds."""
  return jax.tree.map(jnp.zeros_like, state)


@pytest.mark.parametrize("carry", ["none", "lstm", "array", "tuple"])
def test_round_trip_is_bitwise_and_keeps_structure(tmp_path, carry):
  state = _state(1, carry)
  with Checkpointer(tmp_path, save_every=5) as checkpointer:
    assert checkpointer.save(5, state)
  with Checkpointer(tmp_path, save_every=5) as checkpointer:
    restored, step = checkpointer.restore(_target(state))
  assert step == 5
  _assert_bitwise_equal(restored, state)
  assert isinstance(restored, TrainState)
  if carry == "none":
    assert restored.carry is None
  if carry == "lstm":
    assert isinstance(restored.carry, LSTMCarry)
  assert restored.params["cell"]["bias"].dtype == jnp.bfloat16
  assert restored.rng.dtype == jnp.uint32
  # The frozen subtree's optimiser state holds no arrays and still comes back.
  assert (jax.tree.structure(restored.opt_state.inner_states["frozen"])
          == jax.tree.structure(state.opt_state.inner_states["frozen"]))


def test_on_disk_layout_is_a_plain_dict_without_none(tmp_path):
  state = _state(2, "none")
  with Checkpointer(tmp_path, save_every=1) as checkpointer:
    checkpointer.save(1, state)
  raw = ocp.StandardCheckpointer().restore(tmp_path / "1" / "state")
  assert set(raw) == {"step", "params", "opt_state", "rng"}  # no "carry" key
  np.testing.assert_array_equal(raw["params"]["frozen"]["reservoir"],
                                state.params["frozen"]["reservoir"])


def test_restore_places_leaves_on_the_target_sharding(tmp_path):
  state = _state(3)
  with Checkpointer(tmp_path, save_every=1) as checkpointer:
    checkpointer.save(1, state)
    mesh = jax.sharding.Mesh(np.array(jax.devices()[:1]), ("data",))
    replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    target = jax.device_put(_target(state), replicated)
    assert not isinstance(state.params["cell"]["kernel"].sharding,
                          jax.sharding.NamedSharding)
    restored, _ = checkpointer.restore(target)
    for leaf in jax.tree.leaves(restored):
      assert leaf.sharding == replicated
    # An abstract target (no arrays allocated) restores the same values.
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=replicated),
                            state)
    from_abstract, _ = checkpointer.restore(abstract)
  for got, want in zip(jax.tree.leaves(from_abstract), jax.tree.leaves(state)):
    assert _bits(got) == _bits(want)
    assert got.sharding == replicated


@pytest.mark.integration  # starts a process
def test_restore_shards_over_several_devices(tmp_path):
  """Saved replicated on 4 devices, restored batch-sharded, and the other way round."""
  script = textwrap.dedent(f"""
      import os
      os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
      import jax, jax.numpy as jnp, numpy as np
      from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
      from seqjax.train.checkpoint import Checkpointer
      from seqjax.types import LSTMCarry
      mesh = Mesh(np.array(jax.devices()), ("data",))
      rep, rows = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
      state = {{"w": jnp.arange(12.).reshape(3, 4),
                "carry": LSTMCarry(jnp.arange(32.).reshape(8, 4), -jnp.arange(32.).reshape(8, 4))}}
      saved = {{"w": jax.device_put(state["w"], rep), "carry": jax.device_put(state["carry"], rep)}}
      with Checkpointer({str(tmp_path)!r}, save_every=1) as ckpt:
        ckpt.save(1, saved)
        target = {{"w": jax.device_put(jnp.zeros((3, 4)), rep),
                   "carry": jax.device_put(LSTMCarry(jnp.zeros((8, 4)), jnp.zeros((8, 4))), rows)}}
        restored, _ = ckpt.restore(target)
        assert restored["w"].sharding == rep
        assert restored["carry"].h.sharding == rows and restored["carry"].c.sharding == rows
        assert len(restored["carry"].h.addressable_shards) == 4
        assert restored["carry"].h.addressable_shards[1].data.shape == (2, 4)
        for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(state)):
          np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        ckpt.save(2, restored)
        back, _ = ckpt.restore(saved)
        assert back["carry"].h.sharding == rep
        np.testing.assert_array_equal(np.asarray(back["carry"].c), np.asarray(state["carry"].c))
      print("ok")
      """)
  result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.strip().endswith("ok")


def test_keeps_only_the_last_k(tmp_path):
  state = _state(4, "none")
  with Checkpointer(tmp_path, save_every=1, keep=2) as checkpointer:
    for step in range(1, 6):
      assert checkpointer.save(step, state)
    assert checkpointer.all_steps() == [4, 5]
    assert checkpointer.latest_step() == 5
  assert sorted(p for p in os.listdir(tmp_path) if p[0].isdigit()) == ["4", "5"]
  with Checkpointer(tmp_path, save_every=1, keep=2) as checkpointer:
    assert checkpointer.all_steps() == [4, 5]


def test_should_save_and_force(tmp_path):
  state = _state(5, "none")
  with Checkpointer(tmp_path, save_every=3) as checkpointer:
    assert [s for s in range(10) if checkpointer.should_save(s)] == [0, 3, 6, 9]
    assert checkpointer.should_save(jnp.int32(6))
    assert not checkpointer.save(4, state)
    assert checkpointer.all_steps() == []
    assert checkpointer.save(6, state)
    assert checkpointer.save(7, state, force=True)
    # The final save of a run resumed at its last step: already there.
    assert not checkpointer.save(7, state, force=True)
    assert checkpointer.all_steps() == [6, 7]
    assert checkpointer.latest_step() == 7


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(save_every=0), ValueError, "save_every must be >= 1, got 0"),
    (dict(save_every="10"), TypeError, "save_every must be an int, got '10'"),
    (dict(save_every=1, keep=0), ValueError, "keep must be >= 1, got 0"),
])
def test_bad_arguments(tmp_path, kwargs, error, match):
  with pytest.raises(error, match=match):
    Checkpointer(tmp_path, **kwargs)


def test_bad_step(tmp_path):
  with Checkpointer(tmp_path, save_every=1) as checkpointer:
    with pytest.raises(ValueError, match="step must be >= 0, got -1"):
      checkpointer.save(-1, {"x": jnp.ones(2)})
    with pytest.raises(TypeError, match="step must be an integer, got 1.5"):
      checkpointer.should_save(1.5)
    with pytest.raises(TypeError, match="'x' must be an array, got str"):
      checkpointer.save(1, {"x": "not an array"})


def test_restore_on_an_empty_directory_is_none(tmp_path):
  with Checkpointer(tmp_path / "new", save_every=1) as checkpointer:
    assert checkpointer.restore(_state(0)) is None
    assert checkpointer.latest_step() is None
    assert checkpointer.all_steps() == []
  assert os.path.isdir(tmp_path / "new")


def _truncate_data(step_dir):
  files = glob.glob(os.path.join(step_dir, "state", "d", "*"))
  assert files, os.listdir(os.path.join(step_dir, "state"))
  biggest = max(files, key=os.path.getsize)
  with open(biggest, "r+b") as file:
    file.truncate(os.path.getsize(biggest) // 2)


def _delete_data(step_dir):
  for path in glob.glob(os.path.join(step_dir, "state", "d", "*")):
    os.remove(path)


def _delete_metadata(step_dir):
  os.remove(os.path.join(step_dir, "state", "_METADATA"))


def _empty_the_directory(step_dir):
  for path in glob.glob(os.path.join(step_dir, "**"), recursive=True)[::-1]:
    if os.path.isfile(path):
      os.remove(path)


CORRUPTIONS = [_truncate_data, _delete_data, _delete_metadata, _empty_the_directory]

# When one read of a corrupt checkpoint fails, orbax abandons its other
# in-flight tensorstore reads; their late callbacks hit orbax's closed asyncio
# loop ("Event loop is closed"), which pytest reports as unraisable exceptions.
# That is orbax-internal noise, not a failure of the restore under test.
_IGNORE_ORBAX_NOISE = pytest.mark.filterwarnings(
    "ignore::pytest.PytestUnraisableExceptionWarning")


@_IGNORE_ORBAX_NOISE
@pytest.mark.parametrize("corrupt", CORRUPTIONS, ids=lambda f: f.__name__.strip("_"))
def test_corrupt_newest_falls_back_to_previous_with_warning(tmp_path, caplog, corrupt):
  old, new = _state(10), _state(20)
  with Checkpointer(tmp_path, save_every=10) as checkpointer:
    checkpointer.save(10, old)
    checkpointer.save(20, new)
  corrupt(str(tmp_path / "20"))
  with Checkpointer(tmp_path, save_every=10) as checkpointer:
    with caplog.at_level(logging.WARNING):
      restored, step = checkpointer.restore(_target(new))
    assert step == 10
    _assert_bitwise_equal(restored, old)
    assert any(str(tmp_path / "20") in r.getMessage() and "unreadable" in r.getMessage()
               for r in caplog.records), [r.getMessage() for r in caplog.records]
    # Training goes on from step 10 and reaches step 20 again: the unreadable
    # checkpoint is replaced by the new one.
    assert checkpointer.save(20, new)
    restored, step = checkpointer.restore(_target(new))
  assert step == 20
  _assert_bitwise_equal(restored, new)


def test_interrupted_save_leaves_previous_checkpoint_usable(tmp_path, monkeypatch):
  """A save killed before orbax's final rename leaves only a temporary directory."""
  old, new = _state(1), _state(2)
  with Checkpointer(tmp_path, save_every=1) as checkpointer:
    checkpointer.save(1, old)

    async def killed(self):
      raise RuntimeError("killed before the rename")

    monkeypatch.setattr(atomicity.AtomicRenameTemporaryPath, "finalize", killed)
    with pytest.raises(RuntimeError, match="killed before the rename"):
      checkpointer.save(2, new)
    monkeypatch.undo()
  leftovers = [p for p in os.listdir(tmp_path) if p.startswith("2.")]
  assert leftovers and "orbax-checkpoint-tmp" in leftovers[0]
  assert os.listdir(tmp_path / leftovers[0])  # half-written, not empty
  assert not os.path.exists(tmp_path / "2")
  with Checkpointer(tmp_path, save_every=1) as checkpointer:
    assert checkpointer.all_steps() == [1]
    restored, step = checkpointer.restore(_target(old))
    assert step == 1
    _assert_bitwise_equal(restored, old)
    # Opening the directory removed the leftover, and step 2 can be saved again.
    assert not [p for p in os.listdir(tmp_path) if "orbax-checkpoint-tmp" in p]
    assert checkpointer.save(2, new)
    restored, step = checkpointer.restore(_target(new))
  assert step == 2
  _assert_bitwise_equal(restored, new)


@_IGNORE_ORBAX_NOISE
def test_all_checkpoints_unreadable_is_a_clear_error(tmp_path):
  state = _state(3)
  with Checkpointer(tmp_path, save_every=1) as checkpointer:
    checkpointer.save(1, state)
    checkpointer.save(2, state)
  _truncate_data(str(tmp_path / "2"))
  _delete_metadata(str(tmp_path / "1"))
  with Checkpointer(tmp_path, save_every=1) as checkpointer:
    with pytest.raises(CheckpointError) as info:
      checkpointer.restore(_target(state))
  message = str(info.value)
  assert f"no readable checkpoint in {tmp_path}" in message
  assert "tried steps [2, 1]" in message
  assert "step 2: " in message and "step 1: " in message


@pytest.mark.parametrize("change, expected", [
    (lambda s: s._replace(carry=None),
     "2 leaves in the checkpoint but not in the target: carry/c float32[2, 4], carry/h"),
    (lambda s: s._replace(carry=LSTMCarry(jnp.zeros((2, HIDDEN + 1)), jnp.zeros((2, HIDDEN + 1)))),
     "with a different shape or dtype (checkpoint vs target): carry/c float32[2, 4] vs "
     "float32[2, 5]"),
    (lambda s: s._replace(step=s.step.astype(jnp.float32)),
     "step int32[] vs float32[]"),
    (lambda s: s._replace(params={**s.params, "readout": jnp.ones(3)}),
     "1 leaves in the target but not in the checkpoint: params/readout float32[3]"),
], ids=["carry_dropped", "hidden_size", "dtype", "new_param"])
def test_structure_mismatch_is_a_clear_error(tmp_path, change, expected):
  state = _state(4)
  with Checkpointer(tmp_path, save_every=1) as checkpointer:
    checkpointer.save(1, state)
    with pytest.raises(CheckpointError) as info:
      checkpointer.restore(change(state))
  message = str(info.value)
  assert f"checkpoint {tmp_path / '1'} does not match the structure" in message
  assert expected in message, message
