"""The trees and graphs tasks shard whole padded batches (one per device) over the mesh:
their quick runs on 8 forced CPU devices give the figures of the same runs on one device."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# (springs batches are ordinary rows: the loop's own sharding tests cover them)
VARIANTS = ["graphs.py:shortest_path,ggnn,quick", "listops.py:tree_lstm,quick"]


def _final(variant, workdir, devices):
  env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
             JAX_PLATFORMS="cpu")
  subprocess.run([sys.executable, "-m", "experiments.train", "--config",
                  f"experiments/configs/{variant}", "--workdir", str(workdir)],
                 cwd=ROOT, env=env, check=True, capture_output=True, timeout=600)
  return json.loads((workdir / "final.json").read_text())["metrics"]


@pytest.mark.integration
@pytest.mark.parametrize("variant", VARIANTS)
def test_eight_devices_equal_one(variant, tmp_path):
  one = _final(variant, tmp_path / "one", 1)
  eight = _final(variant, tmp_path / "eight", 8)
  assert one.keys() == eight.keys()
  for name in one:
    assert eight[name] == pytest.approx(one[name], rel=2e-3, abs=1e-5), name
