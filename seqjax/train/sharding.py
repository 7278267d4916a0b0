"""Data parallelism over every device with ``jax.sharding``.

One 1-D ``Mesh`` with axis ``"data"``: batches (and the truncated-BPTT carry,
whose rows belong to the batch rows) are split along their leading axis, one
slice per device; parameters, optimiser state, step and key are replicated.
The train step is an ordinary ``jax.jit`` function (``seqjax.train.step``);
XLA's GSPMD partitioner sees the input shardings, runs each device on its
rows and inserts the all-reduce of the gradients. The same code runs on one
CPU, ``XLA_FLAGS=--xla_force_host_platform_device_count=8`` CPU devices,
several GPUs, or a TPU slice; multi-host after ``initialize_distributed``.

Typical use::

  initialize_distributed(config)           # first, before any JAX computation
  mesh = make_mesh()
  check_batch_size(config.batch_size, mesh)
  state = shard_train_state(mesh, create_train_state(params, optimizer, seed, carry))
  for numpy_batch in batches:               # each process passes its own rows
    state, metrics = train_step(state, shard_batch(mesh, numpy_batch))
"""

from __future__ import annotations

import numbers
from typing import Any, Mapping, Optional, Sequence

import jax
import ml_collections
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from seqjax.train.state import TrainState

#: Name of the mesh axis the batch is split over.
DATA_AXIS = "data"


def make_mesh(devices: Optional[Sequence[jax.Device]] = None) -> Mesh:
  """A 1-D mesh with axis ``"data"`` over all (or the given) devices.

  Args:
    devices: the devices to use, by default ``jax.devices()`` (every device of
      every process). Their order is chosen by ``jax.make_mesh``, which on TPU
      follows the physical topology (a ring, for fast all-reduces).

  Returns:
    A ``jax.sharding.Mesh`` of shape ``{"data": len(devices)}`` whose axis is
    of type ``Auto``, so ``jax.jit`` partitions the step from its input
    shardings (GSPMD); ``jax.make_mesh`` would default to ``Explicit`` axes,
    which need sharding annotations inside the model.
  """
  devices = list(jax.devices() if devices is None else devices)
  if not devices:
    raise ValueError("devices must hold at least one device, got an empty list")
  if len(set(devices)) != len(devices):
    raise ValueError(f"devices must be distinct, got {devices}")
  return jax.make_mesh((len(devices),), (DATA_AXIS,),
                       axis_types=(jax.sharding.AxisType.Auto,),
                       devices=devices)


def _data_size(mesh: Mesh) -> int:
  if not isinstance(mesh, Mesh):
    raise TypeError(f"mesh must be a jax.sharding.Mesh (from make_mesh), got "
                    f"{type(mesh).__name__}")
  if DATA_AXIS not in mesh.shape:
    raise ValueError(f"mesh must have an axis named {DATA_AXIS!r} (see "
                     f"make_mesh), got axes {tuple(mesh.shape)}")
  return mesh.shape[DATA_AXIS]


def _nearest(size: int, devices: int) -> list[int]:
  below = size // devices * devices
  return [s for s in (below, below + devices) if s > 0]


def check_batch_size(batch_size: int, mesh: Mesh) -> None:
  """Raises ValueError unless ``batch_size`` splits evenly over the devices.

  Args:
    batch_size: the global batch size B (summed over all processes).
    mesh: a mesh from ``make_mesh``.

  Raises:
    TypeError/ValueError naming ``batch_size``, the number of devices and the
    nearest valid batch sizes.
  """
  devices = _data_size(mesh)
  if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
    raise TypeError(f"batch_size must be a positive integer, got {batch_size!r}")
  if batch_size <= 0:
    raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
  if batch_size % devices:
    nearest = " or ".join(str(s) for s in _nearest(int(batch_size), devices))
    raise ValueError(f"batch_size={batch_size} does not divide evenly over the "
                     f"{devices} devices of the mesh (each device takes "
                     f"batch_size / {devices} rows); use a multiple of "
                     f"{devices}, e.g. {nearest}")


def _process_local_count(mesh: Mesh) -> int:
  here = jax.process_index()
  return sum(d.process_index == here for d in mesh.devices.flat)


def _put(x: Any, sharding: NamedSharding) -> jax.Array:
  """Places a value that every process holds in full (e.g. params)."""
  if jax.process_count() == 1 or (isinstance(x, jax.Array)
                                  and not x.is_fully_addressable):
    return jax.device_put(x, sharding)
  # Multi-host: every process holds the whole value (same seed, same init);
  # with global_shape == local shape, each process keeps only its devices'
  # part. (jax.device_put would also work, but first compares the value across
  # processes with a collective per leaf.)
  x = np.asarray(x)
  return jax.make_array_from_process_local_data(sharding, x, x.shape)


def _leaf_name(path) -> str:
  return jax.tree_util.keystr(path) or "<root>"


def shard_batch(mesh: Mesh, batch: Any) -> Any:
  """Global arrays sharded along the batch axis over the ``"data"`` axis.

  Args:
    mesh: a mesh from ``make_mesh``.
    batch: pytree of numpy (or jax) arrays, each ``(B_local, ...)`` with the
      same leading size. On one process ``B_local = B``; on several, each
      process passes its own ``B / process_count`` rows (its slice of the
      global batch, as a per-host input pipeline yields them).

  Returns:
    The same pytree of ``jax.Array`` s of shape ``(B, ...)``, rows split evenly
    over the mesh's devices (``NamedSharding(mesh, P("data"))``).

  Raises:
    ValueError naming the leaf for a scalar leaf or disagreeing leading sizes,
    and the ``check_batch_size`` error for a batch size that does not divide
    over the devices.
  """
  devices = _data_size(mesh)
  leaves = jax.tree_util.tree_leaves_with_path(batch)
  if not leaves:
    raise ValueError("batch must contain at least one array, got an empty pytree")
  leaves = [(path, x if hasattr(x, "shape") else np.asarray(x)) for path, x in leaves]
  sizes = {}
  for path, x in leaves:
    if x.ndim == 0:
      raise ValueError(f"batch{_leaf_name(path)} must have a leading batch axis, "
                       f"got a scalar")
    sizes[_leaf_name(path)] = x.shape[0]
  if len(set(sizes.values())) > 1:
    raise ValueError(f"batch leaves must share their leading (batch) size, got "
                     f"{sizes}")
  rows = next(iter(sizes.values()))
  local = _process_local_count(mesh)
  if local == devices:
    check_batch_size(rows, mesh)
  elif rows % local:
    raise ValueError(f"per-process batch size {rows} does not divide evenly "
                     f"over this process's {local} devices; use a multiple of "
                     f"{local}, e.g. {' or '.join(map(str, _nearest(rows, local)))}")
  sharding = NamedSharding(mesh, PartitionSpec(DATA_AXIS))
  treedef = jax.tree_util.tree_structure(batch)
  return jax.tree_util.tree_unflatten(
      treedef, [jax.make_array_from_process_local_data(sharding, x)
                for _, x in leaves])


def replicate(mesh: Mesh, tree: Any) -> Any:
  """Copies every leaf of ``tree`` onto every device of ``mesh``.

  Args:
    mesh: a mesh from ``make_mesh``.
    tree: pytree of arrays, the same value on every process.

  Returns:
    The pytree of ``jax.Array`` s with ``NamedSharding(mesh, P())``.
  """
  _data_size(mesh)
  sharding = NamedSharding(mesh, PartitionSpec())
  return jax.tree_util.tree_map(lambda x: _put(x, sharding), tree)


def shard_train_state(mesh: Mesh, state: TrainState) -> TrainState:
  """Lays a train state out for data parallelism.

  Args:
    mesh: a mesh from ``make_mesh``.
    state: a ``TrainState`` holding the same values on every process (e.g.
      from ``create_train_state`` with the same seed, or a restored
      checkpoint).

  Returns:
    ``state`` with step, params, optimiser state and key replicated, and each
    carry leaf ``(B, ...)`` split along its leading axis, as the batch rows it
    belongs to.

  Raises:
    ValueError naming the carry leaf whose leading size does not divide over
    the devices.
  """
  if not isinstance(state, TrainState):
    raise TypeError(f"state must be a seqjax.train.TrainState, got "
                    f"{type(state).__name__}")
  devices = _data_size(mesh)
  rows = NamedSharding(mesh, PartitionSpec(DATA_AXIS))

  def shard_rows(path, x):
    shape = np.shape(x)
    if not shape or shape[0] % devices:
      raise ValueError(f"state.carry{_leaf_name(path)} must have a leading batch "
                       f"axis divisible by the {devices} devices of the mesh, "
                       f"got shape {shape}")
    return _put(x, rows)

  replicated = replicate(mesh, state._replace(carry=None))
  carry = jax.tree_util.tree_map_with_path(shard_rows, state.carry)
  return replicated._replace(carry=carry)


def default_distributed_config() -> ml_collections.ConfigDict:
  """The ``config.distributed`` fields read by ``initialize_distributed``.

  Fields:
    enabled: call ``jax.distributed.initialize`` (needed only for runs that
      span several processes/hosts).
    coordinator_address: ``"host:port"`` of process 0; ``""`` auto-detects
      (TPU pods, SLURM, Open MPI, Kubernetes; see ``jax.distributed``).
    num_processes: number of processes, > 0; 0 auto-detects.
    process_id: this process's index in ``[0, num_processes)``; -1
      auto-detects.

  Returns:
    A ``ConfigDict`` with ``enabled=False``.
  """
  return ml_collections.ConfigDict({
      "enabled": False,
      "coordinator_address": "",
      "num_processes": 0,
      "process_id": -1,
  })


def _get(config: Any, name: str, default: Any) -> Any:
  if isinstance(config, Mapping):
    return config.get(name, default)
  return getattr(config, name, default)


def initialize_distributed(config: Any) -> None:
  """Starts multi-host JAX when ``config.distributed`` asks for it.

  Must run before any other JAX computation. A no-op when
  ``config.distributed`` is missing, None, False or has ``enabled=False``,
  and when JAX's distributed runtime is already up.

  Args:
    config: the experiment config; its field ``distributed`` is either a bool
      (True: auto-detect everything) or a ``ConfigDict``/mapping with the
      fields of ``default_distributed_config`` (a mapping without ``enabled``
      counts as enabled). Empty fields (``""``, 0, -1) are auto-detected by
      ``jax.distributed.initialize``.

  Raises:
    ValueError/TypeError naming ``distributed.<field>`` for invalid values.
  """
  distributed = _get(config, "distributed", None)
  if distributed is None or distributed is False:
    return
  if distributed is True:
    distributed = {}
  elif not isinstance(distributed, (Mapping, ml_collections.ConfigDict)):
    raise TypeError(f"distributed must be a bool or a ConfigDict with fields "
                    f"{sorted(default_distributed_config().keys())}, got "
                    f"{type(distributed).__name__}")
  fields = dict(default_distributed_config().to_dict(), enabled=True)
  given = (distributed.to_dict() if isinstance(distributed, ml_collections.ConfigDict)
           else dict(distributed))
  unknown = sorted(set(given) - set(fields))
  if unknown:
    raise ValueError(f"distributed.{unknown[0]} is not a distributed field; the "
                     f"fields are {sorted(fields)}")
  fields.update(given)
  if not isinstance(fields["enabled"], bool):
    raise TypeError(f"distributed.enabled must be a bool, got {fields['enabled']!r}")
  if not fields["enabled"]:
    return

  address = fields["coordinator_address"] or ""
  if not isinstance(address, str) or (address and ":" not in address):
    raise ValueError(f"distributed.coordinator_address must be 'host:port' or '' "
                     f"(auto-detect), got {address!r}")
  num_processes, process_id = fields["num_processes"], fields["process_id"]
  for name, value, low in (("num_processes", num_processes, 0),
                           ("process_id", process_id, -1)):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
      raise TypeError(f"distributed.{name} must be an integer, got {value!r}")
    if value < low:
      raise ValueError(f"distributed.{name} must be >= {low} ({low} = "
                       f"auto-detect), got {value}")
  if num_processes and process_id >= num_processes:
    raise ValueError(f"distributed.process_id must be < num_processes "
                     f"({num_processes}), got {process_id}")
  if jax.distributed.is_initialized():
    return
  jax.distributed.initialize(
      coordinator_address=address or None,
      num_processes=num_processes or None,
      process_id=None if process_id < 0 else process_id)
