"""One run per workdir: an exclusive lock on ``<workdir>/.lock``.

Two runs writing into one workdir (a job script started twice, a scheduler's
retry beside a live job) interleave their metrics and race in orbax's step
deletion and temporary directories. ``hold_workdir`` makes the second one fail
at once, before it touches anything in the workdir::

  with hold_workdir(workdir):      # WorkdirLockedError if another run holds it
    ...train, checkpoint, write metrics...

The lock is ``fcntl.flock`` on ``<workdir>/.lock``: the kernel releases it when
the holding process ends in any way (``kill -9`` included), so a killed run
never leaves a stale lock, and the file itself may stay on disk. While held,
the file names the holder (pid, host, start time, command line) so that the
refusal can say who it is; the holder empties it when it lets go.

Re-entrant within a thread: ``train_and_evaluate`` takes the lock and so does
the launcher around it (it writes ``config.json`` first), in the same thread. A
second thread of the same process is refused like another process.

Multi-host (one process per host, one workdir on shared storage): only the
primary process (``jax.process_index() == 0``) writes metrics and results, and
only it takes the lock; with ``jax.process_count() > 1`` every process then
waits at a barrier, so that no process of a second job proceeds past it while
another job holds the workdir (the refused primary exits, and JAX's
distributed runtime ends the other processes of that job when their
coordinator is gone). On NFS, Linux emulates ``flock`` with byte-range locks
that every client sees. A filesystem without locks at all (``ENOLCK``,
``EOPNOTSUPP``) gets a warning and an unlocked run.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import json
import os
import pathlib
import socket
import sys
import threading
import time
from typing import Iterator, NamedTuple, Optional

from absl import logging

LOCK_NAME = ".lock"

# errno values that mean "this filesystem has no locks", not "someone holds it".
_NO_LOCKS = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, getattr(errno, "ENOTSUP", -1)}
# How long a refused run waits for a just-started holder to write its name.
_NAME_WAIT_SECONDS = 0.5


class WorkdirLockedError(RuntimeError):
  """Another run (process or thread) holds the workdir's lock."""


class _Held(NamedTuple):
  fd: Optional[int]  # the open lock file (None: no locks on this filesystem)
  thread: int  # threading.get_ident() of the holder
  depth: int  # nesting depth of hold_workdir in that thread


# Locks this process holds, by the lock file's resolved path.
_HELD: dict[str, _Held] = {}
_HELD_GUARD = threading.Lock()


def _holder_text(fd: int) -> str:
  """``pid 123 on host h since 2024-01-01T12:00:00 (python -m ...)``, or ``an unknown process``."""
  deadline = time.monotonic() + _NAME_WAIT_SECONDS
  while True:
    data = os.pread(fd, 65536, 0)
    try:
      holder = json.loads(data)
      return (f"pid {holder['pid']} on host {holder['host']} since {holder['started']} "
              f"({holder['command']})")
    except (ValueError, KeyError, TypeError):
      # The holder takes the lock, then writes its name: it may not have yet.
      if time.monotonic() > deadline:
        return "an unknown process (its lock file names no holder)"
      time.sleep(0.05)


def _is_primary() -> bool:
  # A process that has not imported JAX has not started its distributed runtime.
  return "jax" not in sys.modules or sys.modules["jax"].process_index() == 0


def _barrier(workdir: pathlib.Path) -> None:
  if "jax" in sys.modules and sys.modules["jax"].process_count() > 1:
    from jax.experimental import multihost_utils  # pylint: disable=import-outside-toplevel
    multihost_utils.sync_global_devices(f"seqjax workdir lock {workdir}")


def _acquire(path: pathlib.Path, workdir: pathlib.Path) -> Optional[int]:
  """Opens and flocks ``path``; returns its fd, or None where the filesystem has no locks."""
  # O_CREAT without O_TRUNC: a refused run must not erase the holder's name.
  fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except BlockingIOError:
    holder = _holder_text(fd)
    os.close(fd)
    raise WorkdirLockedError(
        f"workdir {workdir} is in use by another run: {holder}; wait for it to end or "
        f"stop it, or choose another workdir (the lock is {path})") from None
  except OSError as error:
    os.close(fd)
    if error.errno not in _NO_LOCKS:
      raise
    logging.warning("The filesystem of %s does not support locks (%s); a second run "
                    "into this workdir will not be stopped.", workdir, error.strerror)
    return None
  name = {"pid": os.getpid(), "host": socket.gethostname(),
          "started": datetime.datetime.now().isoformat(timespec="seconds"),
          "command": " ".join(sys.argv) or sys.executable}
  os.ftruncate(fd, 0)
  os.pwrite(fd, json.dumps(name).encode(), 0)
  return fd


def _release(fd: Optional[int]) -> None:
  if fd is None:
    return
  try:
    os.ftruncate(fd, 0)
  finally:
    os.close(fd)  # closing the last descriptor releases the flock


@contextlib.contextmanager
def hold_workdir(workdir: str | os.PathLike) -> Iterator[pathlib.Path]:
  """Holds ``<workdir>/.lock`` exclusively for the ``with`` block.

  Creates ``workdir`` (and its parents) if missing; creates or opens the lock
  file but writes nothing else. Non-primary processes of a multi-host run
  create ``workdir`` but take no lock (see the module docstring).

  Args:
    workdir: the run's directory.

  Yields:
    ``workdir`` as a ``pathlib.Path``.

  Raises:
    WorkdirLockedError: another process, or another thread of this one,
      holds the lock; the message names the workdir and the holder (pid, host,
      start time, command line).
    OSError: ``workdir`` cannot be created, or the lock file cannot be
      created in it (e.g. a path under a regular file, no write permission).
  """
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  if not _is_primary():
    _barrier(workdir)
    yield workdir
    return
  path = workdir / LOCK_NAME
  key = os.path.realpath(path)
  me = threading.get_ident()
  with _HELD_GUARD:
    held = _HELD.get(key)
    if held is not None and held.thread != me:
      raise WorkdirLockedError(
          f"workdir {workdir} is in use by another thread of this process "
          f"(pid {os.getpid()}); one run per workdir")
    if held is None:
      fd = _acquire(path, workdir)
      held = _Held(fd, me, 0)
    _HELD[key] = held._replace(depth=held.depth + 1)
  try:
    _barrier(workdir)
    yield workdir
  finally:
    with _HELD_GUARD:
      held = _HELD.pop(key)
      if held.depth > 1:
        _HELD[key] = held._replace(depth=held.depth - 1)
      else:
        _release(held.fd)
