"""seqjax.data.synthetic: the adding problem and copy memory match their definitions."""

import math

import numpy as np
import pytest

from seqjax.data import synthetic


def test_adding_problem_has_two_markers_and_the_sum_as_target():
  inputs, targets = synthetic.adding_problem(np.random.default_rng(0), 500, 40)
  assert inputs.shape == (500, 40, 2) and targets.shape == (500,)
  assert inputs.dtype == np.float32 and targets.dtype == np.float32
  values, markers = inputs[..., 0], inputs[..., 1]
  assert np.all((values >= 0) & (values < 1))
  assert set(np.unique(markers)) == {0.0, 1.0}
  np.testing.assert_array_equal(markers.sum(1), 2)
  for row in range(500):
    marked = np.flatnonzero(markers[row])
    assert targets[row] == pytest.approx(values[row, marked].sum(), abs=1e-6)
  # Marker positions cover the whole sequence, first and second half alike.
  positions = np.flatnonzero(markers.reshape(-1)) % 40
  assert positions.min() == 0 and positions.max() == 39


def test_adding_problem_trivial_baseline_is_one_sixth():
  _, targets = synthetic.adding_problem(np.random.default_rng(1), 20000, 10)
  assert np.mean((targets - 1.0)**2) == pytest.approx(synthetic.ADDING_TRIVIAL_MSE, rel=0.03)


def test_adding_problem_is_a_function_of_the_seed():
  a = synthetic.adding_problem(np.random.default_rng([3, 7]), 4, 9)
  b = synthetic.adding_problem(np.random.default_rng([3, 7]), 4, 9)
  c = synthetic.adding_problem(np.random.default_rng([3, 8]), 4, 9)
  np.testing.assert_array_equal(a[0], b[0])
  assert not np.array_equal(a[0], c[0])


def test_copy_memory_layout():
  blank, copy = 30, 10
  inputs, targets = synthetic.copy_memory(np.random.default_rng(0), 64, blank, copy)
  assert inputs.shape == targets.shape == (64, blank + 2 * copy)
  symbols = inputs[:, :copy]
  assert symbols.min() >= 1 and symbols.max() <= 8
  assert set(np.unique(symbols)) == set(range(1, 9))
  np.testing.assert_array_equal(inputs[:, copy:copy + blank - 1], 0)   # T - 1 blanks
  np.testing.assert_array_equal(inputs[:, copy + blank - 1:], 9)       # delimiter + recall
  assert (inputs[0] == 9).sum() == copy + 1
  np.testing.assert_array_equal(targets[:, :blank + copy], 0)
  np.testing.assert_array_equal(targets[:, -copy:], symbols)


def test_copy_memory_baseline_is_memoryless_cross_entropy():
  assert synthetic.copy_memory_baseline(1000) == pytest.approx(10 * math.log(8) / 1020)
  assert synthetic.copy_memory_baseline(1000) == pytest.approx(0.0204, abs=1e-4)
  # The strategy it describes: blank with certainty, then uniform over 8 symbols.
  _, targets = synthetic.copy_memory(np.random.default_rng(2), 200, 50)
  probs = np.zeros(targets.shape + (10,))
  probs[:, :-10, 0] = 1.0
  probs[:, -10:, 1:9] = 1.0 / 8
  nll = -np.log(np.take_along_axis(probs, targets[..., None], -1)).mean()
  assert nll == pytest.approx(synthetic.copy_memory_baseline(50))


def test_bad_sizes_are_named():
  rng = np.random.default_rng(0)
  with pytest.raises(ValueError, match="length"):
    synthetic.adding_problem(rng, 4, 1)
  with pytest.raises(ValueError, match="batch_size"):
    synthetic.adding_problem(rng, 0, 10)
  with pytest.raises(ValueError, match="blank_length"):
    synthetic.copy_memory(rng, 4, 0)
