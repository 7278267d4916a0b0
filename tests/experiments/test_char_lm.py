"""The character-level LM experiment end to end, shrunk: train, evaluate, sample, resume."""

import math
import os
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
TINY = ["--config.model.hidden_size=48", "--config.batch_size=8", "--config.data.seq_len=32",
        "--config.num_steps=120", "--config.log_every=40", "--config.eval_every=0",
        "--config.checkpoint_every=60", "--config.data.max_eval_chunks=4",
        "--config.data.eval_batch_size=8", "--config.sample.length=40"]


def _run(*args):
  result = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "JAX_PLATFORMS": "cpu"})
  assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
  return result.stdout


def test_quick_char_lm_trains_samples_and_resumes(tmp_path):
  out = _run("experiments.train", "--config=experiments/configs/char_lm.py:quick",
             f"--workdir={tmp_path}", *TINY)
  train_bpc = [float(b) for b in re.findall(r"step +\d+/120 \| loss [\d.]+ \| bpc ([\d.]+)", out)]
  assert len(train_bpc) == 3 and train_bpc[-1] < train_bpc[0], out
  final = float(re.search(r"final: validation ([\d.]+) bpc", out).group(1))
  uniform = math.log2(77)  # 76 characters + the unknown symbol
  assert final < uniform - 1.5, out
  assert "sample (temperature 0.8):\nROMEO:\n" in out
  assert (tmp_path / "config.json").exists() and (tmp_path / "vocab.json").exists()
  assert (tmp_path / "metrics.jsonl").exists() and any((tmp_path / "tensorboard").iterdir())

  sample = _run("experiments.sample", f"--workdir={tmp_path}", "--prime=JULIET:",
                "--length=30", "--temperature=0.5")
  assert "# sample from step 120" in sample
  text = sample.split("\n", 1)[1]
  assert text.startswith("JULIET:") and len(text) == len("JULIET:") + 30 + 1  # print adds "\n"

  # The same command with more steps resumes from the last checkpoint.
  more = _run("experiments.train", "--config=experiments/configs/char_lm.py:quick",
              f"--workdir={tmp_path}", *TINY[:3], "--config.num_steps=140", *TINY[4:])
  assert "resumed from the checkpoint at step 120" in more
