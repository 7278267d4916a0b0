"""hold_workdir: one run per workdir, released by the OS, re-entrant per thread, multi-host."""

import errno
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time

import jax
import pytest

from seqjax.train import lock
from seqjax.train.lock import WorkdirLockedError, hold_workdir

# Holds the lock of argv[1] until stdin closes (or the process is killed). Loads
# lock.py alone: importing seqjax (and so JAX) would only make the test slower.
HOLDER = textwrap.dedent(f"""
    import importlib.util, sys
    spec = importlib.util.spec_from_file_location("lock", {lock.__file__!r})
    lock = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lock)
    with lock.hold_workdir(sys.argv[1]):
      print("held", flush=True)
      sys.stdin.read()
    print("released", flush=True)
    """)


def start_holder(workdir):
  process = subprocess.Popen([sys.executable, "-c", HOLDER, str(workdir)], text=True,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=dict(os.environ, JAX_PLATFORMS="cpu"))
  line = process.stdout.readline()
  if line.strip() != "held":
    process.kill()
    raise AssertionError(f"the holder did not take the lock: {line!r} {process.stderr.read()}")
  return process


def _files(directory):
  """{relative path: (size, mtime_ns, bytes)} of every file under ``directory``."""
  found = {}
  for root, _, names in os.walk(directory):
    for name in names:
      path = os.path.join(root, name)
      with open(path, "rb") as file:
        found[os.path.relpath(path, directory)] = (os.path.getsize(path),
                                                   os.stat(path).st_mtime_ns, file.read())
  return found


def test_a_second_process_is_refused_naming_the_holder_and_nothing_changes(tmp_path):
  workdir = tmp_path / "run"
  holder = start_holder(workdir)
  try:
    before = _files(workdir)
    with pytest.raises(WorkdirLockedError) as info:
      with hold_workdir(workdir):
        pytest.fail("entered a workdir held by another process")
    message = str(info.value)
    assert f"workdir {workdir} is in use by another run" in message
    assert f"pid {holder.pid} on host {socket.gethostname()}" in message
    assert "\n" not in message
    assert _files(workdir) == before  # the holder's name is still in the lock file
  finally:
    holder.stdin.close()
    holder.wait(timeout=60)
  assert holder.returncode == 0
  with hold_workdir(workdir):  # released when the holder let go
    pass


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
  holder = start_holder(tmp_path)
  holder.send_signal(signal.SIGKILL)
  holder.wait(timeout=60)
  holder.stdin.close()
  assert json.loads((tmp_path / lock.LOCK_NAME).read_text())["pid"] == holder.pid
  with hold_workdir(tmp_path):
    assert json.loads((tmp_path / lock.LOCK_NAME).read_text())["pid"] == os.getpid()
  assert (tmp_path / lock.LOCK_NAME).read_text() == ""  # emptied when released


def test_reentrant_in_one_thread_refused_in_another(tmp_path):
  errors = []

  def other_thread():
    try:
      with hold_workdir(tmp_path):
        errors.append(None)
    except WorkdirLockedError as error:
      errors.append(error)

  with hold_workdir(tmp_path) as held:
    assert held == tmp_path
    with hold_workdir(tmp_path / "." ):  # the same lock file, another spelling
      pass
    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join()
    assert isinstance(errors[0], WorkdirLockedError), errors
    assert "another thread of this process" in str(errors[0])
    # Still held after the inner block ended: another process is refused.
    probe = subprocess.run([sys.executable, "-c", HOLDER, str(tmp_path)], text=True, input="",
                           capture_output=True, timeout=120,
                           env=dict(os.environ, JAX_PLATFORMS="cpu"))
    assert probe.returncode != 0 and f"pid {os.getpid()}" in probe.stderr, probe.stderr[-2000:]
  thread = threading.Thread(target=other_thread)
  thread.start()
  thread.join()
  assert errors[1] is None, errors  # released after the outer block


def test_creates_the_workdir_and_reports_unusable_paths(tmp_path):
  with hold_workdir(tmp_path / "a" / "b"):
    assert (tmp_path / "a" / "b" / lock.LOCK_NAME).is_file()
  (tmp_path / "file").write_text("x")
  with pytest.raises(NotADirectoryError):
    with hold_workdir(tmp_path / "file" / "run"):
      pass


def test_non_primary_processes_take_no_lock(tmp_path, monkeypatch):
  holder = start_holder(tmp_path / "run")
  try:
    monkeypatch.setattr(jax, "process_index", lambda: 1)
    with hold_workdir(tmp_path / "run"):  # process 0 holds it for the whole job
      pass
    with hold_workdir(tmp_path / "other"):
      assert list((tmp_path / "other").iterdir()) == []
  finally:
    holder.stdin.close()
    holder.wait(timeout=60)


@pytest.mark.parametrize("code", [errno.ENOLCK, errno.EOPNOTSUPP])
def test_a_filesystem_without_locks_warns_and_runs(tmp_path, monkeypatch, code):
  def no_locks(fd, operation):
    raise OSError(code, os.strerror(code))

  monkeypatch.setattr(fcntl, "flock", no_locks)
  warnings = []
  monkeypatch.setattr(lock.logging, "warning", lambda *args: warnings.append(args[0] % args[1:]))
  with hold_workdir(tmp_path):
    with hold_workdir(tmp_path):
      pass
  assert len(warnings) == 1 and "does not support locks" in warnings[0], warnings


# Multi-host: 2 processes of one job share the workdir; only process 0 locks it.
MULTIHOST = textwrap.dedent("""
    import os, pathlib, sys
    from seqjax.train import sharding
    from seqjax.train.lock import hold_workdir
    process_id, port, workdir = int(sys.argv[1]), sys.argv[2], pathlib.Path(sys.argv[3])
    sharding.initialize_distributed({"distributed": {
        "coordinator_address": f"localhost:{port}", "num_processes": 2,
        "process_id": process_id}})
    with hold_workdir(workdir):
      (workdir.parent / f"inside_{process_id}").write_text(str(os.getpid()))
      while not (workdir.parent / "release").exists():
        import time; time.sleep(0.05)
    print("done", process_id, flush=True)
    """)


def test_multihost_only_process_zero_holds_the_lock(tmp_path):
  with socket.socket() as s:  # a free port for the coordinator
    s.bind(("localhost", 0))
    port = s.getsockname()[1]
  workdir = tmp_path / "run"
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  processes = [subprocess.Popen([sys.executable, "-c", MULTIHOST, str(i), str(port), str(workdir)],
                                env=env, text=True, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE) for i in range(2)]
  try:
    deadline = time.monotonic() + 240
    while not all((tmp_path / f"inside_{i}").exists() for i in range(2)):
      finished = [p for p in processes if p.poll() is not None]
      assert not finished, finished[0].communicate()[1][-3000:]
      assert time.monotonic() < deadline, "the two processes did not both get past the lock"
      time.sleep(0.1)
    holder = json.loads((workdir / lock.LOCK_NAME).read_text())
    assert holder["pid"] == processes[0].pid
    with pytest.raises(WorkdirLockedError, match=f"pid {processes[0].pid} "):
      with hold_workdir(workdir):  # a second job's primary process
        pass
    (tmp_path / "release").write_text("")
    outputs = [p.communicate(timeout=120) for p in processes]
  finally:
    for process in processes:
      process.kill()
  for i, (process, (out, err)) in enumerate(zip(processes, outputs)):
    assert process.returncode == 0 and f"done {i}" in out, err[-3000:]
