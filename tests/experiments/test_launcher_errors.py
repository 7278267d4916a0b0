"""experiments.train: each mistake on the command line ends in one `error:` line naming it."""

import glob
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
CONFIG = "experiments/configs/adding.py:rnn,quick"
# A run of a few seconds: 30 steps of a 16-unit RNN, checkpoints at 10, 20 and 30.
SMALL = ("--config.num_steps=30", "--config.log_every=10", "--config.checkpoint_every=10",
         "--config.keep_checkpoints=3", "--config.data.test_size=64",
         "--config.model.hidden_size=16", "--config.batch_size=8")


def launch(*args, config=CONFIG):
  flags = [f"--config={config}"] if config else []
  return subprocess.run([sys.executable, "-m", "experiments.train", *flags, *args],
                        cwd=ROOT, capture_output=True, text=True, timeout=300,
                        env={**os.environ, "JAX_PLATFORMS": "cpu"})


def last_line(result):
  """stderr's last non-empty line, after checking that the launch failed."""
  lines = [line for line in result.stderr.splitlines() if line.strip()]
  assert result.returncode != 0 and lines, (result.returncode, result.stderr[-3000:])
  return lines[-1]


@pytest.mark.parametrize("args, config, named", [
    (["--config.nonexistent=1"], CONFIG, "--config.nonexistent: config has no field 'nonexistent'"),
    (["--config.model.hiden_size=3"], CONFIG,
     "--config.model.hiden_size: config.model has no field 'hiden_size'; "
     "did you mean 'hidden_size'?"),
    (["--config.num_steps.every=3"], CONFIG, "--config.num_steps.every: config.num_steps is the int"),
    ([], "experiments/configs/nope.py", "--config=experiments/configs/nope.py: no config file"),
    (["--config.num_steps=3"], "experiments/configs/nope.py",
     "--config=experiments/configs/nope.py: no config file"),
    ([], "experiments/configs/adding.py:nope",
     "--config=experiments/configs/adding.py:nope: variant must be"),
    (["--config.num_steps=many"], CONFIG, "--config.num_steps=many: invalid literal"),
    (["--wrokdir=/tmp/x"], CONFIG, "Unknown command line flag 'wrokdir'"),
], ids=["unknown_field", "unknown_nested_field", "field_of_a_number", "missing_file",
        "missing_file_with_override", "missing_variant", "bad_value", "unknown_flag"])
def test_bad_command_line_is_one_error_line(tmp_path, args, config, named):
  workdir = tmp_path / "run"
  result = launch(f"--workdir={workdir}", *args, config=config)
  line = last_line(result)
  assert line.startswith("error: ") and named in line, result.stderr[-3000:]
  assert "Traceback" not in result.stderr, result.stderr[-3000:]
  assert not workdir.exists()


@pytest.mark.parametrize("where", ["under_a_file", "a_file", "unwritable"])
def test_unusable_workdir_is_one_error_line(tmp_path, where):
  (tmp_path / "file").write_text("not a directory")
  workdir = {"under_a_file": tmp_path / "file" / "run", "a_file": tmp_path / "file",
             "unwritable": tmp_path / "read_only"}[where]
  if where == "unwritable":
    workdir.mkdir()
    workdir.chmod(0o500)
    if os.access(workdir, os.W_OK):  # root writes through any mode bits
      workdir.chmod(0o700)
      pytest.skip("running as root, where chmod does not stop writes; under_a_file and "
                  "a_file cover a workdir that cannot be used")
  try:
    result = launch(f"--workdir={workdir}", *SMALL)
  finally:
    if where == "unwritable":
      workdir.chmod(0o700)
  line = last_line(result)
  assert line.startswith(f"error: --workdir {workdir} cannot be used"), result.stderr[-3000:]
  assert "Traceback" not in result.stderr, result.stderr[-3000:]


def test_all_checkpoints_unreadable_ends_with_the_error_line(tmp_path):
  result = launch(f"--workdir={tmp_path}", *SMALL)
  assert result.returncode == 0, result.stderr[-3000:]
  steps = sorted(os.listdir(tmp_path / "checkpoints"))
  assert steps == ["10", "20", "30"], steps
  for step in steps:  # truncate each checkpoint's biggest data file
    files = glob.glob(str(tmp_path / "checkpoints" / step / "state" / "d" / "*"))
    biggest = max(files, key=os.path.getsize)
    with open(biggest, "r+b") as file:
      file.truncate(os.path.getsize(biggest) // 2)
  result = launch(f"--workdir={tmp_path}", *SMALL)
  line = last_line(result)
  assert line.startswith(f"error: no readable checkpoint in {tmp_path / 'checkpoints'}: "
                         f"tried steps [30, 20, 10], all failed"), result.stderr[-3000:]
  assert "Traceback" not in result.stderr, result.stderr[-3000:]
