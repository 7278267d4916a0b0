"""The Santa Fe laser series (competition data set A plus continuation), from ``reservoirpy``.

Intensity of a far-infrared NH3 laser in a chaotic regime: 10,093 integer
samples in [0, 255]. The file ``reservoirpy/datasets/santafe_laser.npy``
ships in ``reservoirpy==0.4.2`` (``pip install --no-deps reservoirpy==0.4.2``);
the package is located, never imported. A user with the original file
passes ``path=``.

Reference:
  Weigend & Gershenfeld 1993, "Time Series Prediction: Forecasting the Future
  and Understanding the Past" (Santa Fe data set A).
"""

from __future__ import annotations

import pathlib
from typing import Optional

import numpy as np

from experiments.datasets import packaged
from experiments.datasets.packaged import PathLike

#: What ``experiments.datasets`` knows this data set as: one series.
KIND = "series"

#: Samples in the packaged file.
LASER_LENGTH = 10093

#: Where the series ships.
SOURCE = packaged.Source("reservoirpy", "datasets/santafe_laser.npy",
                         what="the Santa Fe laser series",
                         install="pip install --no-deps reservoirpy==0.4.2",
                         alternative=" (or pass path= to a copy of santafe_laser.npy)")


def santa_fe_laser(path: Optional[PathLike] = None) -> np.ndarray:
  """The laser series.

  Args:
    path: optional ``.npy`` file holding the series as (T,) or (T, 1); the
      packaged file by default.

  Returns:
    The series, numpy float32 of shape (10093,) for the packaged file.

  Raises:
    DataNotFoundError: (a ``ModuleNotFoundError``) when ``path`` is None and
      reservoirpy is not installed (the message names the pip command).
    FileNotFoundError: when ``path`` names no file.
  """
  if path is None:
    path = packaged.locate(SOURCE)
  path = pathlib.Path(path).expanduser()
  if not path.is_file():
    raise FileNotFoundError(f"no Santa Fe laser file at {path}; pass path= to a copy of "
                            f"santafe_laser.npy or omit it to use the one `{SOURCE.install}` "
                            f"installs")
  series = np.load(path)
  if series.ndim == 2 and series.shape[1] == 1:
    series = series[:, 0]
  if series.ndim != 1:
    raise ValueError(f"the laser file {path} must hold a (T,) or (T, 1) array, "
                     f"got shape {series.shape}")
  return series.astype(np.float32)


def load(*, cache_dir: Optional[PathLike] = None) -> np.ndarray:
  """The packaged series, float32 (10093,) (``cache_dir`` unused: nothing is cached)."""
  del cache_dir
  return santa_fe_laser()
