"""MetricWriter (JSON lines + TensorBoard events without TensorFlow), read_metrics, Progress."""

import glob
import json
import math
import os
import struct
import subprocess
import sys
import textwrap

import jax.numpy as jnp
import numpy as np
import pytest

from seqjax.train import metrics
from seqjax.train.metrics import MetricWriter, Progress, read_metrics


def _crc32c(data: bytes) -> int:
  """CRC-32C (Castagnoli), bit by bit: an independent check of the TFRecord framing."""
  crc = 0xFFFFFFFF
  for byte in data:
    crc ^= byte
    for _ in range(8):
      crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
  return crc ^ 0xFFFFFFFF


def _masked_crc(data: bytes) -> int:
  crc = _crc32c(data)
  return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def test_crc32c_reference():
  assert _crc32c(b"123456789") == 0xE3069283  # the standard check value


def _read_scalars(workdir):
  """{tag: [(step, value)]} from the TFRecord event files TensorBoard would read."""
  from tensorboardX.proto import event_pb2  # TensorBoard's Event schema, bundled
  files = glob.glob(os.path.join(workdir, "tensorboard", "events.out.tfevents.*"))
  assert len(files) == 1, files
  scalars = {}
  with open(files[0], "rb") as file:
    data = file.read()
  offset = 0
  while offset < len(data):
    header = data[offset:offset + 8]
    (length,) = struct.unpack("<Q", header)
    (header_crc,) = struct.unpack("<I", data[offset + 8:offset + 12])
    assert header_crc == _masked_crc(header)
    payload = data[offset + 12:offset + 12 + length]
    (payload_crc,) = struct.unpack("<I", data[offset + 12 + length:offset + 16 + length])
    assert payload_crc == _masked_crc(payload)
    offset += 16 + length
    event = event_pb2.Event.FromString(payload)
    for value in event.summary.value:
      scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
  assert offset == len(data)
  return scalars


def _strict_json(line):
  def reject(constant):
    raise ValueError(f"non-standard JSON constant {constant}")
  return json.loads(line, parse_constant=reject)


def test_writes_json_lines_and_tensorboard_scalars(tmp_path):
  with MetricWriter(tmp_path, enabled=True) as writer:
    writer.write(1, {"loss": 2.5, "grad_norm": np.float32(0.125), "tokens": 640})
    writer.write(2, {"loss": jnp.asarray(1.75), "grad_norm": 3.0, "tokens": np.int64(1280)})
    writer.write(2, {"bpc": 4.0625, "accuracy": jnp.float32(0.3)}, split="valid")
    writer.write(3, {"loss": float("nan"), "grad_norm": float("inf")})
  with open(tmp_path / "metrics.jsonl") as file:
    lines = [_strict_json(line) for line in file]
  assert lines[0] == {"step": 1, "split": "train", "loss": 2.5, "grad_norm": 0.125, "tokens": 640}
  assert isinstance(lines[1]["tokens"], int) and lines[1]["loss"] == 1.75
  assert lines[2] == {"step": 2, "split": "valid", "bpc": 4.0625,
                      "accuracy": pytest.approx(0.3, rel=1e-7)}
  assert lines[3] == {"step": 3, "split": "train", "loss": "nan", "grad_norm": "inf"}

  records = read_metrics(tmp_path)
  assert records[:3] == lines[:3]
  assert math.isnan(records[3]["loss"]) and records[3]["grad_norm"] == math.inf

  scalars = _read_scalars(str(tmp_path))
  assert scalars["train/loss"][:2] == [(1, 2.5), (2, 1.75)]
  assert math.isnan(scalars["train/loss"][2][1])
  assert scalars["train/grad_norm"] == [(1, 0.125), (2, 3.0), (3, math.inf)]
  assert scalars["train/tokens"] == [(1, 640.0), (2, 1280.0)]
  assert scalars["valid/bpc"] == [(2, 4.0625)]
  assert scalars["valid/accuracy"] == [(2, pytest.approx(0.3, rel=1e-7))]


@pytest.mark.integration  # starts a process
def test_tensorboard_needs_no_tensorflow(tmp_path):
  script = textwrap.dedent(f"""
      import sys
      sys.modules["tensorflow"] = None  # any "import tensorflow" now fails
      sys.modules["tensorboard"] = None
      from seqjax.train.metrics import MetricWriter
      with MetricWriter({str(tmp_path)!r}, enabled=True) as writer:
        writer.write(7, {{"loss": 0.5}})
      assert not [m for m in sys.modules if m.startswith("tensorflow") and sys.modules[m]]
      print("ok")
      """)
  result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
  assert result.returncode == 0, result.stderr[-3000:]
  assert _read_scalars(str(tmp_path)) == {"train/loss": [(7, 0.5)]}


def test_resumed_run_appends_and_deduplicate_keeps_the_rerun(tmp_path):
  with MetricWriter(tmp_path, tensorboard=False, enabled=True) as writer:
    for step in (1, 2, 3):
      writer.write(step, {"loss": float(step)})
  # Killed after step 3, resumed from a checkpoint at step 2: steps 3, 4 again.
  with MetricWriter(tmp_path, tensorboard=False, enabled=True) as writer:
    writer.write(3, {"loss": 30.0})
    writer.write(4, {"loss": 40.0})
    writer.write(4, {"bpc": 9.0}, split="valid")
  everything = read_metrics(tmp_path)
  assert [(r["step"], r["split"]) for r in everything] == [
      (1, "train"), (2, "train"), (3, "train"), (3, "train"), (4, "train"), (4, "valid")]
  assert [r["loss"] for r in everything[:5]] == [1.0, 2.0, 3.0, 30.0, 40.0]
  latest = read_metrics(tmp_path, deduplicate=True)
  assert [(r["step"], r["split"], r.get("loss", r.get("bpc"))) for r in latest] == [
      (1, "train", 1.0), (2, "train", 2.0), (3, "train", 30.0), (4, "train", 40.0),
      (4, "valid", 9.0)]
  assert not os.path.exists(tmp_path / "tensorboard")


def test_read_metrics_tolerates_a_truncated_last_line_only(tmp_path):
  assert read_metrics(tmp_path) == []
  with MetricWriter(tmp_path, tensorboard=False, enabled=True) as writer:
    writer.write(1, {"loss": 1.0})
  with open(tmp_path / "metrics.jsonl", "a") as file:
    file.write('{"step": 2, "split": "tr')  # a kill mid-write
  assert read_metrics(tmp_path) == [{"step": 1, "split": "train", "loss": 1.0}]
  with open(tmp_path / "metrics.jsonl", "a") as file:
    file.write('\n{"step": 3, "split": "train", "loss": 3.0}\n')
  with pytest.raises(ValueError, match="metrics.jsonl line 2 is not valid JSON"):
    read_metrics(tmp_path)


def test_disabled_writer_writes_nothing(tmp_path):
  writer = MetricWriter(tmp_path / "run", enabled=False)
  writer.write(1, {"loss": 1.0})
  writer.close()
  assert not os.path.exists(tmp_path / "run")


@pytest.mark.parametrize("step, values, split, error, match", [
    (1, {"step": 1.0}, "train", ValueError, "metric name 'step' is reserved"),
    (1, {"loss": jnp.ones(3)}, "train", ValueError,
     r"metric 'loss' must be a scalar, got shape \(3,\)"),
    (1, {"loss": "high"}, "train", TypeError, "metric 'loss' must be a real number"),
    (1, {"loss": 1.0}, "train/x", ValueError, "split must be a non-empty string without '/'"),
    (-1, {"loss": 1.0}, "train", ValueError, "step must be >= 0, got -1"),
    (1.0, {"loss": 1.0}, "train", TypeError, "step must be an integer, got 1.0"),
])
def test_bad_writes(tmp_path, step, values, split, error, match):
  with MetricWriter(tmp_path, tensorboard=False, enabled=True) as writer:
    with pytest.raises(error, match=match):
      writer.write(step, values, split=split)
  assert read_metrics(tmp_path) == []


def test_write_after_close(tmp_path):
  writer = MetricWriter(tmp_path, tensorboard=False, enabled=True)
  writer.close()
  writer.close()
  with pytest.raises(ValueError, match="closed"):
    writer.write(1, {"loss": 1.0})


class FakeClock:

  def __init__(self):
    self.now = 100.0

  def __call__(self):
    return self.now


def test_progress_line_rates_and_eta():
  clock = FakeClock()
  progress = Progress(5000, tokens_per_step=5120, start_step=0, clock=clock)
  clock.now += 30.0  # compiling the first step
  progress.mark(200)
  clock.now += 1000 / 8.1  # 1000 steps at 8.1 steps/s
  assert progress.line(1200, {"loss": 1.23449}) == (
      "step 1200/5000 | loss 1.234 | 8.1 steps/s | 41.5k tokens/s | ETA 7m49s")
  clock.now += 20.0  # the rate follows the latest window: 100 steps in 20 s
  assert progress.line(1300, {"loss": jnp.float32(0.5), "bpc": 2.0}) == (
      "step 1300/5000 | loss 0.5 | bpc 2 | 5 steps/s | 25.6k tokens/s | ETA 12m20s")
  clock.now += 10.0
  assert progress.line(5000, {}) == "step 5000/5000 | 370 steps/s | 1.89M tokens/s | ETA 0s"


def test_progress_without_mark_counts_from_construction():
  clock = FakeClock()
  progress = Progress(100, tokens_per_step=0, start_step=40, clock=clock)
  clock.now += 6.0
  assert progress.line(43, {"loss": 3.0}) == "step  43/100 | loss 3 | 0.5 steps/s | ETA 1m54s"
  # No new steps or no time passed: no rate to report.
  assert progress.line(43, {}) == "step  43/100 | -- steps/s | ETA --"
  clock.now += 2 * 3600 + 180.0
  assert progress.line(44, {}) == "step  44/100 | 0.000136 steps/s | ETA 4d18h"


@pytest.mark.parametrize("seconds, text", [
    (0.4, "0s"), (59.4, "59s"), (60, "1m00s"), (469.1, "7m49s"), (3599, "59m59s"),
    (2 * 3600 + 3 * 60 + 29, "2h03m"), (86400 + 3600, "1d01h")])
def test_duration_format(seconds, text):
  assert metrics._duration(seconds) == text


@pytest.mark.parametrize("value, text", [
    (8.1, "8.1"), (0.0523, "0.0523"), (999, "999"), (41472, "41.5k"), (1.2e6, "1.2M"),
    (3.456e9, "3.46G")])
def test_rate_format(value, text):
  assert metrics._si(value) == text


@pytest.mark.parametrize("args, error, match", [
    ((0, 10), ValueError, "total_steps must be >= 1, got 0"),
    ((10, -1), ValueError, "tokens_per_step must be >= 0, got -1"),
    ((10, 1, 11), ValueError, r"start_step \(11\) must be <= total_steps \(10\)"),
    ((10.0, 1), TypeError, "total_steps must be an int, got 10.0"),
])
def test_progress_bad_arguments(args, error, match):
  with pytest.raises(error, match=match):
    Progress(*args)
