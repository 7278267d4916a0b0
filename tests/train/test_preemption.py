"""StopRequested: SIGTERM/Ctrl-C set a flag, handlers are restored, a killed run checkpoints."""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import jax.numpy as jnp
import numpy as np
import pytest

from seqjax.train.checkpoint import Checkpointer
from seqjax.train.preemption import StopRequested


def _deliver(signum):
  """Sends ``signum`` to this process and waits for Python to run its handler."""
  os.kill(os.getpid(), signum)
  # CPython runs Python-level handlers at the next bytecode boundary of the
  # main thread; sleeping gives it those boundaries.
  for _ in range(20):
    time.sleep(0.005)


@pytest.mark.parametrize("signum, name", [(signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "SIGINT")],
                         ids=["SIGTERM", "SIGINT"])
def test_signal_sets_the_flag_and_handlers_are_restored(signum, name):
  before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
  with StopRequested() as stop:
    assert signal.getsignal(signal.SIGTERM) is not before[signal.SIGTERM]
    assert not stop.requested and stop.signal_name is None
    _deliver(signum)  # the process is still alive: the handler only set a flag
    assert stop.requested
    assert stop.signal_name == name
  assert {s: signal.getsignal(s) for s in before} == before
  assert stop.requested  # still readable after the block


def test_second_sigint_raises_keyboard_interrupt_and_second_sigterm_is_ignored():
  # Not necessarily default_int_handler: a shell starts background jobs with
  # SIGINT ignored.
  before = signal.getsignal(signal.SIGINT)
  with StopRequested() as stop:
    _deliver(signal.SIGTERM)
    _deliver(signal.SIGTERM)
    assert stop.signal_name == "SIGTERM"
    with pytest.raises(KeyboardInterrupt):
      _deliver(signal.SIGINT)
  assert signal.getsignal(signal.SIGINT) is before


def test_handlers_restored_when_the_block_raises():
  before = signal.getsignal(signal.SIGTERM)
  with pytest.raises(ZeroDivisionError):
    with StopRequested():
      1 / 0
  assert signal.getsignal(signal.SIGTERM) is before


def test_reentering_resets_and_nesting_the_same_object_is_refused():
  stop = StopRequested()
  with stop:
    _deliver(signal.SIGTERM)
    with pytest.raises(RuntimeError, match="already active"):
      stop.__enter__()
  with stop:
    assert not stop.requested and stop.signal_name is None


def test_outside_the_main_thread_it_does_nothing():
  before = signal.getsignal(signal.SIGTERM)
  seen = []

  def worker():
    with StopRequested() as stop:
      seen.append((signal.getsignal(signal.SIGTERM), stop.requested))

  thread = threading.Thread(target=worker)
  thread.start()
  thread.join()
  assert seen == [(before, False)]


SCRIPT = textwrap.dedent("""
    import sys, time
    import jax.numpy as jnp
    from seqjax.train.checkpoint import Checkpointer
    from seqjax.train.preemption import StopRequested

    checkpointer = Checkpointer(sys.argv[1], save_every=1000000)
    state = {"w": jnp.zeros((3,)), "count": jnp.int32(0)}
    step = 0
    with StopRequested() as stop:
      print("ready", flush=True)
      while not stop.requested:
        step += 1
        state = {"w": state["w"] + 1.0, "count": state["count"] + 1}
        time.sleep(0.01)
      saved = checkpointer.save(step, state, force=True)
    checkpointer.close()
    print("stopped", stop.signal_name, step, saved, flush=True)
    """)


def test_sigterm_makes_a_running_loop_checkpoint_and_exit_cleanly(tmp_path):
  process = subprocess.Popen([sys.executable, "-c", SCRIPT, str(tmp_path)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  try:
    assert process.stdout.readline().strip() == "ready"
    time.sleep(0.2)  # let it run some steps
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
  finally:
    if process.poll() is None:
      process.kill()
  assert process.returncode == 0, err[-3000:]
  words = out.split()
  assert words[:2] == ["stopped", "SIGTERM"] and words[3] == "True", out
  step = int(words[2])
  assert step >= 1
  with Checkpointer(tmp_path, save_every=1000000) as checkpointer:
    assert checkpointer.all_steps() == [step]
    restored, restored_step = checkpointer.restore({"w": jnp.ones((3,)), "count": jnp.int32(5)})
  assert restored_step == step
  np.testing.assert_array_equal(restored["w"], np.full((3,), float(step), np.float32))
  assert int(restored["count"]) == step
