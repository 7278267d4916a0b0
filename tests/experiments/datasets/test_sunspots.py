"""Tests for experiments.datasets.sunspots: the yearly sunspot numbers shipped in statsmodels."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from experiments.datasets import sunspots


def test_sunspots(monkeypatch):
  values, years = sunspots.sunspots(with_years=True)
  assert values.shape == years.shape == (309,) and values.dtype == np.float32
  assert years[0] == 1700 and years[-1] == 2008 and np.all(np.diff(years) == 1)
  assert values.min() == 0 and 150 < values.max() < 200
  np.testing.assert_array_equal(sunspots.sunspots(), values)
  np.testing.assert_array_equal(sunspots.load(), values)
  real_find_spec = importlib.util.find_spec
  monkeypatch.setattr(importlib.util, "find_spec",
                      lambda name, *a: None if name == "statsmodels" else real_find_spec(name, *a))
  with pytest.raises(ModuleNotFoundError, match="pip install statsmodels"):
    sunspots.sunspots()


def test_read_without_importing_statsmodels_equals_its_loader():
  was_imported = "statsmodels" in sys.modules
  values, years = sunspots.sunspots(with_years=True)
  assert was_imported or "statsmodels" not in sys.modules
  datasets = pytest.importorskip("statsmodels.datasets")
  frame = datasets.sunspots.load_pandas().data
  np.testing.assert_array_equal(values, frame["SUNACTIVITY"].to_numpy(np.float32))
  np.testing.assert_array_equal(years, frame["YEAR"].to_numpy().astype(np.int64))


def test_a_users_csv(tmp_path):
  path = tmp_path / "spots.csv"
  path.write_text('"YEAR","SUNACTIVITY"\n1900,9.5\n1901,2.7\n')
  np.testing.assert_array_equal(sunspots.sunspots(path=path), np.float32([9.5, 2.7]))
  path.write_text("year,value\n1900,9.5\n")
  with pytest.raises(ValueError, match="YEAR,SUNACTIVITY"):
    sunspots.sunspots(path=path)
