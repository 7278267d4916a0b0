"""Orbax checkpoints of a training state: atomic, pruned, restored with fallback.

A ``Checkpointer`` saves any pytree of arrays (a ``TrainState`` with its
params, optimiser state, step, PRNG key and persistent carry) every
``save_every`` steps into ``directory/<step>/``, keeps the newest ``keep`` of
them, and restores the newest one that can actually be read::

  checkpointer = Checkpointer(workdir / "checkpoints", save_every=1000, keep=3)
  restored = checkpointer.restore(state)        # None on a fresh workdir
  if restored is not None:
    state, step = restored
  ...
  checkpointer.save(step, state)                # a no-op unless step % 1000 == 0
  checkpointer.save(step, state, force=True)    # at the end, or when preempted
  checkpointer.close()

Atomicity (read from orbax-checkpoint 0.12.8's ``_src/path/atomicity.py``): on
a local or POSIX filesystem orbax writes a step into
``<step>.orbax-checkpoint-tmp`` and, once every file is written, renames it to
``<step>`` (``AtomicRenameTemporaryPath.finalize``); on GCS, where renames are
not atomic, it writes a ``commit_success.txt`` file last instead
(``CommitFileTemporaryPath``). Orbax lists only finalised steps, so a save killed
half-way leaves at most a temporary directory that is never restored from
(it is removed when the next ``Checkpointer`` opens the directory), and the
previous checkpoints are never touched before the new one is complete: old
steps are pruned only after the rename. ``save`` uses orbax's synchronous
checkpointer, whose tensorstore writes are fsynced (``file_io_sync``), so a
checkpoint whose ``save`` returned survives a crash of the process.

On disk the state is a plain nested dict of arrays keyed by the state's pytree
path (``{"params": {"lstm": {"kernel": ...}}, "carry": {"h": ..., "c": ...}}``),
without ``None`` leaves or empty nodes, so any orbax user can read it without
seqjax, and ``restore`` can compare it key by key with the state it is asked to
fill (``None`` carries, ``NamedTuple`` carries and ``optax`` states round-trip
through the target's own tree structure).

Not detected: silent bit flips inside a data file (orbax's zarr/OCDBT format
stores no checksums); truncated, deleted and half-written files are.
"""

from __future__ import annotations

import os
from typing import Any, Optional

from absl import logging
from etils import epath
import jax
import numpy as np
import orbax.checkpoint as ocp

from seqjax import checks

# The single item inside each step directory: ``<directory>/<step>/state/``.
_ITEM = "state"

# How many differing keys a structure-mismatch message lists before eliding.
_MAX_LISTED = 8


class CheckpointError(RuntimeError):
  """A checkpoint exists but cannot be restored (unreadable or mismatched)."""


def _key_name(key: Any) -> str:
  """The on-disk name of one pytree path entry."""
  if isinstance(key, jax.tree_util.DictKey):
    return str(key.key)
  if isinstance(key, jax.tree_util.GetAttrKey):
    return key.name
  if isinstance(key, jax.tree_util.SequenceKey):
    return str(key.idx)
  if isinstance(key, jax.tree_util.FlattenedIndexKey):
    return str(key.key)
  return str(key)


def _flatten(tree: Any, what: str) -> tuple[list[tuple[tuple[str, ...], Any]], Any]:
  """Leaves of ``tree`` keyed by their path names, and its treedef.

  ``None`` leaves and empty nodes (``optax.EmptyState()``, ``()``) have no
  leaves, so they vanish here and come back from the target's treedef.
  """
  with_path, treedef = jax.tree_util.tree_flatten_with_path(tree)
  named = [(tuple(_key_name(k) for k in path), leaf) for path, leaf in with_path]
  seen: dict[tuple[str, ...], str] = {}
  for (names, _), (path, _) in zip(named, with_path):
    if names in seen:
      raise ValueError(f"{what} has two leaves, {seen[names]} and "
                       f"{jax.tree_util.keystr(path)}, that map to the same "
                       f"checkpoint key {'/'.join(names)!r}")
    seen[names] = jax.tree_util.keystr(path)
  return named, treedef


def _nest(named: list[tuple[tuple[str, ...], Any]]) -> dict[str, Any]:
  """``[(("a", "b"), x)] -> {"a": {"b": x}}``."""
  root: dict[str, Any] = {}
  for names, value in named:
    node = root
    for name in names[:-1]:
      child = node.setdefault(name, {})
      if not isinstance(child, dict):
        raise ValueError(f"checkpoint key {'/'.join(names)!r} is both a leaf "
                         f"and a subtree")
      node = child
    if names[-1] in node:
      raise ValueError(f"checkpoint key {'/'.join(names)!r} is both a leaf "
                       f"and a subtree")
    node[names[-1]] = value
  return root


def _leaf_for_save(leaf: Any, names: tuple[str, ...]) -> Any:
  if isinstance(leaf, jax.Array):
    if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
      raise TypeError(f"state leaf {'/'.join(names)!r} is a typed PRNG key "
                      f"array; store raw key data (jax.random.key_data) in the "
                      f"state instead")
    return leaf
  if isinstance(leaf, (np.ndarray, np.generic, bool, int, float, complex)):
    return np.asarray(leaf)
  raise TypeError(f"state leaf {'/'.join(names)!r} must be an array, got "
                  f"{type(leaf).__name__}")


def _abstract_leaf(leaf: Any, names: tuple[str, ...]) -> Any:
  """What orbax restores a target leaf as: same shape, dtype and placement."""
  if isinstance(leaf, jax.Array):
    if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
      raise TypeError(f"target leaf {'/'.join(names)!r} is a typed PRNG key "
                      f"array; use raw key data (jax.random.key_data)")
    # Reading the sharding from the target puts every restored shard straight
    # onto the devices the training step expects (no host round trip).
    return jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=leaf.sharding)
  if isinstance(leaf, jax.ShapeDtypeStruct):
    sharding = leaf.sharding
    if sharding is None:
      sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    return jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=sharding)
  if isinstance(leaf, (np.ndarray, np.generic, bool, int, float, complex)):
    return np.zeros(np.shape(leaf), np.asarray(leaf).dtype)
  raise TypeError(f"target leaf {'/'.join(names)!r} must be an array or a "
                  f"jax.ShapeDtypeStruct, got {type(leaf).__name__}")


def _describe(shape: tuple[int, ...], dtype: Any) -> str:
  return f"{np.dtype(dtype).name}{list(shape)}"


def _saved_layout(metadata: Any) -> dict[tuple[str, ...], tuple[tuple[int, ...], np.dtype]]:
  """``{path names: (shape, dtype)}`` from orbax's metadata of a saved item."""
  tree = getattr(metadata, "tree", metadata)
  if not isinstance(tree, dict):
    raise ValueError(f"unexpected checkpoint metadata {type(tree).__name__}")
  layout = {}
  for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
    names = tuple(_key_name(k) for k in path)
    layout[names] = (tuple(leaf.shape), np.dtype(leaf.dtype))
  return layout


def _mismatch_message(saved, expected) -> str:
  """Lists the keys and shapes that differ between checkpoint and target."""
  lines = []
  missing = sorted(set(expected) - set(saved))
  extra = sorted(set(saved) - set(expected))
  differ = sorted(k for k in set(saved) & set(expected) if saved[k] != expected[k])
  for title, keys, show in (
      ("in the target but not in the checkpoint", missing,
       lambda k: _describe(*expected[k])),
      ("in the checkpoint but not in the target", extra,
       lambda k: _describe(*saved[k])),
      ("with a different shape or dtype (checkpoint vs target)", differ,
       lambda k: f"{_describe(*saved[k])} vs {_describe(*expected[k])}")):
    if keys:
      listed = ", ".join(f"{'/'.join(k)} {show(k)}" for k in keys[:_MAX_LISTED])
      more = f" and {len(keys) - _MAX_LISTED} more" if len(keys) > _MAX_LISTED else ""
      lines.append(f"  {len(keys)} leaves {title}: {listed}{more}")
  return "\n".join(lines)


def _as_step(step: Any, name: str = "step") -> int:
  return checks.non_negative_int(name, step)


class Checkpointer:
  """Saves a state pytree every ``save_every`` steps; restores the newest good one.

  A thin layer over ``orbax.checkpoint.CheckpointManager`` (synchronous, so a
  ``save`` that returned is on disk; ``LatestN(keep)`` pruning; leftover
  temporary directories of killed saves are deleted on opening). See the module
  docstring for the on-disk layout and why saves are atomic.

  Multi-host: every process must call ``save`` and ``restore`` with the same
  steps (orbax synchronises them), and ``directory`` must be a filesystem all
  processes see.

  Args:
    directory: where step directories ``<directory>/<step>/`` live; created
      if missing. Local paths and ``gs://`` URLs both work.
    save_every: ``save`` writes when ``step % save_every == 0``, >= 1.
    keep: how many of the newest checkpoints to keep, >= 1.

  Raises:
    TypeError, ValueError: ``save_every`` or ``keep`` is not a positive int.
  """

  def __init__(self, directory: str | os.PathLike, *, save_every: int,
               keep: int = 3):
    for name, value in (("save_every", save_every), ("keep", keep)):
      if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r} "
                        f"({type(value).__name__})")
      if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    directory = os.fspath(directory)
    if "://" not in directory:
      # Orbax's step bookkeeping compares paths, so a relative path that
      # means something else after a chdir would be a different directory.
      directory = os.path.abspath(directory)
    self._directory = epath.Path(directory)
    self._save_every = save_every
    self._keep = keep
    registry = ocp.handlers.DefaultCheckpointHandlerRegistry()
    registry.add(_ITEM, ocp.args.StandardSave)
    registry.add(_ITEM, ocp.args.StandardRestore)
    options = ocp.CheckpointManagerOptions(
        preservation_policy=ocp.checkpoint_managers.LatestN(keep),
        enable_async_checkpointing=False,
        cleanup_tmp_directories=True,
        create=True)
    self._manager = ocp.CheckpointManager(self._directory, options=options,
                                          handler_registry=registry)
    # Orbax deletes leftover temporary directories in a background thread and
    # waits for it only inside save(); waiting here keeps the promise that an
    # open Checkpointer's directory holds no leftovers (orbax 0.12 has no
    # public call for it, hence the guarded private one).
    wait_for_cleanup = getattr(self._manager, "_maybe_await_cleanup_tmp_directory", None)
    if wait_for_cleanup is not None:
      wait_for_cleanup()
    # Steps found unreadable by restore(); save() may overwrite them.
    self._unreadable: set[int] = set()

  @property
  def directory(self) -> epath.Path:
    """The checkpoint directory (absolute)."""
    return self._directory

  def all_steps(self) -> list[int]:
    """Steps of the finalised checkpoints on disk, ascending (not checked for readability)."""
    return sorted(int(s) for s in self._manager.all_steps())

  def latest_step(self) -> Optional[int]:
    """The newest finalised step on disk, or None; ``restore`` may fall back past it."""
    steps = self.all_steps()
    return steps[-1] if steps else None

  def should_save(self, step: int) -> bool:
    """Whether ``save(step, state)`` (without ``force``) writes: ``step % save_every == 0``."""
    return _as_step(step) % self._save_every == 0

  def save(self, step: int, state: Any, *, force: bool = False) -> bool:
    """Writes ``state`` as checkpoint ``step`` if due, and waits until it is on disk.

    Args:
      step: the training step the state is at (an int or an integer scalar
        array), >= 0.
      state: a pytree of arrays (``jax.Array``, possibly sharded, or numpy);
        ``None`` leaves and empty nodes are allowed and not stored.
      force: write even if ``step`` is not a multiple of ``save_every`` (the
        final step, a preemption).

    Returns:
      True if a checkpoint was written; False if the step is not due, or a
      readable checkpoint of this step already exists (e.g. the final save of
      a run resumed at its last step). An existing checkpoint of this step that
      ``restore`` found unreadable is replaced.

    Raises:
      TypeError, ValueError: bad ``step`` or a leaf that is not an array.
    """
    step = _as_step(step)
    if not (force or self.should_save(step)):
      return False
    named, _ = _flatten(state, "state")
    item = _nest([(names, _leaf_for_save(leaf, names)) for names, leaf in named])
    if step in self._manager.all_steps():
      if step not in self._unreadable:
        logging.info("Checkpoint %d already exists in %s; not saving again.",
                     step, self._directory)
        return False
      logging.warning("Replacing unreadable checkpoint %s.",
                      self._directory / str(step))
      self._manager.delete(step)
      self._unreadable.discard(step)
    # ``force=True``: the decision was made above; orbax's own policy would
    # refuse steps below an existing (possibly unreadable) newer one.
    self._manager.save(step, args=ocp.args.Composite(
        **{_ITEM: ocp.args.StandardSave(item)}), force=True)
    self._manager.wait_until_finished()
    return True

  def restore(self, target: Any) -> Optional[tuple[Any, int]]:
    """Restores the newest readable checkpoint into the structure of ``target``.

    Checkpoints are tried newest first; one that cannot be read (a truncated or
    deleted file, missing metadata) is logged as a warning naming its directory
    and the previous one is tried. Structure is checked before any array is
    read.

    Args:
      target: a pytree like the saved state (e.g. the freshly initialised
        ``TrainState``). Leaves may be ``jax.Array`` (the restored leaf gets its
        sharding, dtype and shape), ``jax.ShapeDtypeStruct`` (its sharding, or
        the default device if it has none) or numpy arrays (restored as numpy).
        ``None`` leaves and ``NamedTuple``/optax node types are taken from
        ``target``; its values are not read, so donated arrays are fine.

    Returns:
      ``(state, step)``: ``state`` has ``target``'s tree structure with the
      saved values bit for bit; or None if ``directory`` holds no checkpoint.

    Raises:
      CheckpointError: checkpoints exist but none can be read (the message
        names the directory and each step tried with its error), or the newest
        readable one has a different structure, shapes or dtypes from
        ``target`` (e.g. another model config).
    """
    self._manager.reload()
    steps = sorted(self._manager.all_steps(), reverse=True)
    if not steps:
      return None
    named, treedef = _flatten(target, "target")
    expected = {}
    abstract = []
    for names, leaf in named:
      spec = _abstract_leaf(leaf, names)
      expected[names] = (tuple(spec.shape), np.dtype(spec.dtype))
      abstract.append((names, spec))
    abstract_item = _nest(abstract)
    failures = []
    for step in steps:
      path = self._directory / str(step)
      try:
        metadata = self._manager.item_metadata(step)[_ITEM]
        if metadata is None:
          raise ValueError("no readable metadata")
        saved = _saved_layout(metadata)
      except Exception as error:  # pylint: disable=broad-except
        # Anything that stops reading a checkpoint means "try the previous
        # one": orbax and tensorstore raise many unrelated exception types.
        self._note_unreadable(step, path, error, failures)
        continue
      if saved != expected:
        raise CheckpointError(
            f"checkpoint {path} does not match the structure of the state "
            f"being restored (a different model or optimiser config?):\n"
            f"{_mismatch_message(saved, expected)}")
      try:
        restored = self._manager.restore(step, args=ocp.args.Composite(
            **{_ITEM: ocp.args.StandardRestore(abstract_item)}))[_ITEM]
        leaves = []
        for names, _ in named:
          node = restored
          for name in names:
            node = node[name]
          leaves.append(node)
      except Exception as error:  # pylint: disable=broad-except
        self._note_unreadable(step, path, error, failures)
        continue
      if failures:
        logging.warning("Restored checkpoint %s after skipping %d unreadable "
                        "newer one(s).", path, len(failures))
      return jax.tree_util.tree_unflatten(treedef, leaves), step
    tried = "\n".join(f"  step {s}: {e}" for s, e in failures)
    raise CheckpointError(
        f"no readable checkpoint in {self._directory}: tried steps "
        f"{steps}, all failed:\n{tried}")

  def _note_unreadable(self, step: int, path: epath.Path, error: Exception,
                       failures: list[tuple[int, str]]) -> None:
    # Tensorstore errors carry a multi-kilobyte JSON spec; the first line
    # names the file and the problem.
    first_line = str(error).splitlines()[0][:300] if str(error) else ""
    message = f"{type(error).__name__}: {first_line}"
    logging.warning("Checkpoint %s is unreadable (%s); trying the previous one.",
                    path, message)
    failures.append((step, message))
    self._unreadable.add(step)

  def close(self) -> None:
    """Waits for pending work (deletions) and releases orbax's resources."""
    self._manager.close()

  def __enter__(self) -> "Checkpointer":
    return self

  def __exit__(self, *exc_info) -> None:
    self.close()

  def __repr__(self) -> str:
    return (f"Checkpointer({str(self._directory)!r}, save_every="
            f"{self._save_every}, keep={self._keep})")
