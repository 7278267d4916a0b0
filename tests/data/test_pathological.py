"""seqjax.data.pathological: every sample of seeded batches matches its definition.

Labels and targets are recomputed from the inputs alone by plain Python
(reading the one-hot symbols back), never by the generators' own arithmetic.
"""

import itertools

import numpy as np
import pytest

from seqjax.data import pathological as pt

RNG = np.random.default_rng


def _symbols(row):
  """One row of one-hot inputs (T, K) as a list of ints, checking it is one-hot."""
  assert set(np.unique(row)) <= {0.0, 1.0}
  assert np.all(row.sum(axis=-1) == 1.0)
  return [int(np.flatnonzero(step)[0]) for step in row]


def _check_temporal_order(inputs, labels, windows):
  names = ["".join(order) for order in itertools.product("XY", repeat=len(windows))]
  for row, label in zip(inputs, labels):
    symbols = _symbols(row)
    relevant = [(t, "XY"[s]) for t, s in enumerate(symbols) if s in (pt.X, pt.Y)]
    assert len(relevant) == len(windows)
    for (t, _), (lo, hi) in zip(relevant, windows):
      assert lo <= t < hi
    assert all(s in pt.DISTRACTORS for s in symbols if s not in (pt.X, pt.Y))
    assert label == names.index("".join(symbol for _, symbol in relevant))


@pytest.mark.parametrize("length", [10, 37, 60])
def test_temporal_order_matches_its_definition(length):
  inputs, labels = pt.temporal_order(RNG(0), 300, length)
  assert inputs.shape == (300, length, 6) and inputs.dtype == np.float32
  assert labels.shape == (300,) and labels.dtype == np.int32
  w = length // 10
  windows = [(w, 2 * w), (length // 2, length // 2 + w)]
  _check_temporal_order(inputs, labels, windows)
  assert set(labels.tolist()) == {0, 1, 2, 3}
  if w > 1:  # both ends of each window are drawn
    positions = np.argwhere(inputs[..., :2].sum(-1) == 1)[:, 1]
    assert {w, 2 * w - 1, length // 2, length // 2 + w - 1} <= set(positions.tolist())


@pytest.mark.parametrize("length", [10, 45])
def test_temporal_order_3bit_matches_its_definition(length):
  inputs, labels = pt.temporal_order_3bit(RNG(1), 400, length)
  assert inputs.shape == (400, length, 6) and labels.shape == (400,)
  w = length // 10
  windows = [(w, 2 * w), (3 * length // 10, 3 * length // 10 + w),
             (6 * length // 10, 6 * length // 10 + w)]
  _check_temporal_order(inputs, labels, windows)
  assert set(labels.tolist()) == set(range(8))


@pytest.mark.parametrize("task", ["adding", "multiplication"])
@pytest.mark.parametrize("length", [10, 53])
def test_adding_and_multiplication_match_their_definitions(task, length):
  inputs, targets = pt.TASKS[task](RNG(2), 300, length)
  assert inputs.shape == (300, length, 2) and inputs.dtype == np.float32
  assert targets.shape == (300,) and targets.dtype == np.float32
  w = length // 10
  for row, target in zip(inputs, targets):
    values, markers = row[:, 0].tolist(), row[:, 1].tolist()
    assert all(0.0 <= v < 1.0 for v in values)
    assert set(markers) == {0.0, 1.0}
    marked = [t for t, m in enumerate(markers) if m == 1.0]
    assert len(marked) == 2
    assert 0 <= marked[0] < w and w <= marked[1] < w + 4 * length // 10
    u, v = values[marked[0]], values[marked[1]]
    want = (u + v) / 2 if task == "adding" else u * v
    assert target == pytest.approx(want, abs=1e-6)


@pytest.mark.parametrize("length", [2, 30])
def test_random_permutation_matches_its_definition(length):
  inputs, labels = pt.random_permutation(RNG(3), 500, length)
  assert inputs.shape == (500, length, 100) and inputs.dtype == np.float32
  assert labels.shape == (500,) and labels.dtype == np.int32
  seen = set()
  for row, label in zip(inputs, labels):
    symbols = _symbols(row)
    assert symbols[0] in (0, 1) and label == symbols[0]
    assert all(2 <= s < 100 for s in symbols[1:])
    seen.update(symbols[1:])
  assert set(labels.tolist()) == {0, 1}
  if length == 30:
    assert seen == set(range(2, 100))


@pytest.mark.parametrize("pattern_length,num_values", [(5, 2), (10, 5)])
def test_noiseless_memorization_matches_its_definition(pattern_length, num_values):
  length = 12
  inputs, targets = pt.noiseless_memorization(RNG(4), 200, length,
                                              pattern_length=pattern_length,
                                              num_values=num_values)
  total = length + 2 * pattern_length
  assert inputs.shape == (200, total, num_values + 2) and inputs.dtype == np.float32
  assert targets.shape == (200, total) and targets.dtype == np.int32
  blank, go = num_values, num_values + 1
  patterns = set()
  for row, target in zip(inputs, targets):
    symbols = _symbols(row)
    pattern = symbols[:pattern_length]
    assert all(0 <= s < num_values for s in pattern)
    rest = symbols[pattern_length:]
    assert rest.count(go) == 1 and rest.index(go) == length  # after exactly T blanks
    assert all(s == blank for s in rest if s != go)
    want = [blank] * (pattern_length + length) + pattern
    assert target.tolist() == want
    patterns.add(tuple(pattern))
  if num_values == 2:
    assert len(patterns) == 2 ** pattern_length  # all 32 binary patterns in 200 draws


@pytest.mark.parametrize("name", sorted(pt.TASKS))
def test_specs_describe_the_batches(name):
  spec = pt.SPECS[name]
  inputs, targets = pt.TASKS[name](RNG(5), 7, 20)
  assert inputs.shape[0] == 7 and inputs.shape[-1] == spec.input_size
  if spec.targets_at == "last":
    assert inputs.shape[1] == 20 and targets.shape == (7,)
  else:
    assert targets.shape == inputs.shape[:2]
  if spec.output == "classes":
    assert targets.dtype == np.int32 and targets.min() >= 0
    assert targets.max() < spec.output_size and spec.loss == "cross_entropy"
  else:
    assert spec.output == "regression" and spec.output_size == 1
    assert targets.dtype == np.float32 and spec.loss == "squared_error"


@pytest.mark.parametrize("name", sorted(pt.TASKS))
def test_batches_are_functions_of_the_seed(name):
  a = pt.TASKS[name](RNG([7, 1]), 6, 20)
  b = pt.TASKS[name](RNG([7, 1]), 6, 20)
  c = pt.TASKS[name](RNG([7, 2]), 6, 20)
  for u, v in zip(a, b):
    np.testing.assert_array_equal(u, v)
  assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize("name,minimum", [
    ("temporal_order", 10), ("temporal_order_3bit", 10), ("adding", 10),
    ("multiplication", 10), ("random_permutation", 2), ("noiseless_memorization", 1)])
def test_too_short_length_raises(name, minimum):
  with pytest.raises(ValueError, match=f"length must be .*{minimum}|length must be a positive"):
    pt.TASKS[name](RNG(0), 4, minimum - 1)
  pt.TASKS[name](RNG(0), 4, minimum)  # the minimum itself works


@pytest.mark.parametrize("name", sorted(pt.TASKS))
def test_bad_batch_size_raises(name):
  with pytest.raises(ValueError, match="batch_size must be a positive integer"):
    pt.TASKS[name](RNG(0), 0, 20)


def test_bad_memorization_arguments_raise():
  with pytest.raises(ValueError, match="pattern_length"):
    pt.noiseless_memorization(RNG(0), 2, 5, pattern_length=0)
  with pytest.raises(ValueError, match="num_values must be >= 2"):
    pt.noiseless_memorization(RNG(0), 2, 5, num_values=1)


def test_error_rate_follows_the_papers_rules():
  # Classification at the last step: arg-max against the label.
  _, labels = pt.temporal_order(RNG(6), 200, 20)
  logits = np.eye(4)[labels] * 5.0
  assert pt.error_rate("temporal_order", logits, labels) == 0.0
  logits[:3] = np.eye(4)[(labels[:3] + 1) % 4]
  assert pt.error_rate("temporal_order", logits, labels) == pytest.approx(3 / 200)
  assert not pt.solved("temporal_order", logits, labels)
  logits[:3] = np.eye(4)[labels[:3]]
  logits[0] = np.eye(4)[(labels[0] + 1) % 4]
  assert pt.solved("temporal_order", logits, labels)  # 0.5% < 1%
  # Regression: a sequence is wrong when its squared error exceeds 0.04.
  _, targets = pt.adding(RNG(7), 100, 20)
  predictions = targets + 0.19  # squared error 0.0361
  predictions[:2] = targets[:2] + 0.21  # 0.0441
  assert pt.error_rate("adding", predictions, targets) == pytest.approx(0.02)
  assert pt.error_rate("adding", predictions[:, None], targets) == pytest.approx(0.02)
  # Memorization: one wrong step fails the whole sequence.
  _, targets = pt.noiseless_memorization(RNG(8), 50, 6)
  scores = np.eye(3)[targets]
  scores[4, -1] = np.eye(3)[(targets[4, -1] + 1) % 3]
  assert pt.error_rate("noiseless_memorization", scores, targets) == pytest.approx(1 / 50)


def test_error_rate_rejects_bad_arguments():
  with pytest.raises(ValueError, match="task must be one of"):
    pt.error_rate("parity", np.zeros((2, 4)), np.zeros(2, np.int32))
  with pytest.raises(ValueError, match="outputs must have shape"):
    pt.error_rate("temporal_order", np.zeros((3, 4)), np.zeros(2, np.int32))
  with pytest.raises(ValueError, match="outputs must have shape"):
    pt.error_rate("adding", np.zeros((2, 3)), np.zeros(2, np.float32))
