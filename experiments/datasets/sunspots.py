"""Yearly mean sunspot numbers, 1700-2008 (309 values), from ``statsmodels``.

The file ``statsmodels/datasets/sunspots/sunspots.csv`` (columns ``YEAR``,
``SUNACTIVITY``) ships with statsmodels (``pip install statsmodels``); it is
read directly, without importing statsmodels (which takes seconds). It is the
data of ``statsmodels.api.datasets.sunspots.load_pandas().data``.
"""

from __future__ import annotations

import pathlib
from typing import Optional, Union

import numpy as np

from experiments.datasets import packaged
from experiments.datasets.packaged import PathLike

#: What ``experiments.datasets`` knows this data set as: one series.
KIND = "series"

#: Where the series ships.
SOURCE = packaged.Source("statsmodels", "datasets/sunspots/sunspots.csv",
                         what="the yearly sunspot numbers", install="pip install statsmodels")


def sunspots(*, with_years: bool = False,
             path: Optional[PathLike] = None) -> Union[np.ndarray, tuple[np.ndarray, np.ndarray]]:
  """The yearly sunspot numbers.

  Args:
    with_years: also return the years.
    path: a CSV with a ``YEAR,SUNACTIVITY`` header line; the packaged file by
      default.

  Returns:
    float32 (309,) sunspot numbers, or ``(values, years)`` with int64 years
    (309,) when ``with_years``.

  Raises:
    DataNotFoundError: (a ``ModuleNotFoundError``) naming ``pip install
      statsmodels`` when it is missing.
  """
  path = packaged.locate(SOURCE) if path is None else pathlib.Path(path).expanduser()
  with open(path, encoding="utf-8") as f:
    header = [name.strip().strip('"') for name in f.readline().split(",")]
    if header != ["YEAR", "SUNACTIVITY"]:
      raise ValueError(f"{path} must start with the header YEAR,SUNACTIVITY, got {header}")
    table = np.loadtxt(f, delimiter=",", ndmin=2)
  values = table[:, 1].astype(np.float32)
  if with_years:
    return values, table[:, 0].astype(np.int64)
  return values


def load(*, cache_dir: Optional[PathLike] = None) -> np.ndarray:
  """The packaged series, float32 (309,) (``cache_dir`` unused: nothing is cached)."""
  del cache_dir
  return sunspots()
