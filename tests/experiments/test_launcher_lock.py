"""Two launches into one workdir: the second is refused at once and the first runs as if alone."""

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
# ~1000 steps of a 16-unit RNN: long enough to be paused at step 40 with most of
# the run still ahead, short enough for a test.
ARGS = ("--config=experiments/configs/adding.py:rnn,quick", "--config.num_steps=1000",
        "--config.log_every=20", "--config.checkpoint_every=20", "--config.keep_checkpoints=2",
        "--config.data.test_size=64", "--config.model.hidden_size=16", "--config.batch_size=8")
ENV = {**os.environ, "JAX_PLATFORMS": "cpu"}


def start(workdir, stderr_path):
  with open(stderr_path, "w") as stderr:
    return subprocess.Popen([sys.executable, "-m", "experiments.train", *ARGS,
                             f"--workdir={workdir}"], cwd=ROOT, env=ENV, text=True,
                            stdout=subprocess.PIPE, stderr=stderr)


def wait_for_step(process, step, stderr_path):
  """Reads the run's stdout up to its progress line of ``step``."""
  for line in process.stdout:
    if line.split()[:2] == ["step", f"{step}/1000"]:
      return
  process.wait()
  raise AssertionError(f"the run ended (exit code {process.returncode}) before step {step}:"
                       f"\n{pathlib.Path(stderr_path).read_text()[-3000:]}")


def finish(process, stderr_path):
  out, _ = process.communicate(timeout=600)
  assert process.returncode == 0, pathlib.Path(stderr_path).read_text()[-3000:]
  return out


def files(directory):
  """{relative path: (size, mtime_ns)} of everything under ``directory``."""
  return {os.path.relpath(os.path.join(root, name), directory):
          (os.stat(os.path.join(root, name)).st_size, os.stat(os.path.join(root, name)).st_mtime_ns)
          for root, _, names in os.walk(directory) for name in names}


def outcome(workdir):
  """What must not depend on how the run was launched: results and checkpoints."""
  final = json.loads((workdir / "final.json").read_text())
  return ({k: final[k] for k in ("step", "metrics", "selected_step", "stopped_by")},
          sorted(os.listdir(workdir / "checkpoints")))


def test_second_launch_is_refused_and_the_first_ends_as_a_lone_run(tmp_path):
  alone, shared = tmp_path / "alone", tmp_path / "shared"
  lone = start(alone, tmp_path / "alone.err")
  first = start(shared, tmp_path / "first.err")
  try:
    wait_for_step(first, 40, tmp_path / "first.err")
    # Paused with most of its run ahead, the first run holds the lock for sure.
    first.send_signal(signal.SIGSTOP)
    assert first.poll() is None, "the first run ended before it could be paused"
    before = files(shared)
    assert any(name.startswith("checkpoints/") for name in before), sorted(before)
    second = subprocess.run([sys.executable, "-m", "experiments.train", *ARGS,
                             f"--workdir={shared}"], cwd=ROOT, env=ENV, text=True,
                            capture_output=True, timeout=300)
    lines = [line for line in second.stderr.splitlines() if line.strip()]
    assert second.returncode != 0 and lines, second.stderr[-3000:]
    assert lines[-1].startswith(f"error: workdir {shared} is in use by another run: "
                                f"pid {first.pid} on host {socket.gethostname()} "), lines[-1]
    assert "Traceback" not in second.stderr and not second.stdout, second.stderr[-3000:]
    assert files(shared) == before  # not a byte of the first run's files touched
    first.send_signal(signal.SIGCONT)
    finish(first, tmp_path / "first.err")
    finish(lone, tmp_path / "alone.err")
  finally:
    for process in (lone, first):
      if process.poll() is None:
        process.send_signal(signal.SIGCONT)
        process.kill()
  assert outcome(shared) == outcome(alone)
  assert (shared / "metrics.jsonl").read_text() == (alone / "metrics.jsonl").read_text()
  assert not [p for p in os.listdir(shared / "checkpoints") if "tmp" in p]


def test_a_killed_run_leaves_no_lock_and_the_next_launch_resumes(tmp_path):
  killed, alone = tmp_path / "killed", tmp_path / "alone"
  lone = start(alone, tmp_path / "alone.err")
  run = start(killed, tmp_path / "killed.err")
  try:
    wait_for_step(run, 60, tmp_path / "killed.err")
    run.send_signal(signal.SIGKILL)
    run.wait(timeout=60)
    assert json.loads((killed / ".lock").read_text())["pid"] == run.pid  # its name is left behind
    again = start(killed, tmp_path / "again.err")
    out = finish(again, tmp_path / "again.err")
    finish(lone, tmp_path / "alone.err")
  finally:
    for process in (lone, run):
      if process.poll() is None:
        process.kill()
  assert "resumed from the checkpoint at step" in out, out[-2000:]
  # kill -9 and resume end bitwise where the uninterrupted run ends.
  assert outcome(killed) == outcome(alone)
