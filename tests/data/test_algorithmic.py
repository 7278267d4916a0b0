"""The NTM tasks' layouts, checked against sequences assembled step by step in Python."""

from __future__ import annotations

import numpy as np
import pytest

from seqjax.data import algorithmic


def _rows(batch):
  return [tuple(a[b] for a in batch) for b in range(len(batch.inputs))]


def test_copy_layout_equals_a_python_assembly():
  batch = algorithmic.copy(np.random.default_rng(0), 16, 1, 5, width=4)
  assert batch.inputs.shape == (16, 11, 5) and batch.targets.shape == (16, 11, 4)
  for inputs, targets, scored, real in _rows(batch):
    length = int(inputs[:, 4].argmax())  # the delimiter's step is L
    seq = inputs[:length, :4]
    want_in = [list(v) + [0] for v in seq] + [[0] * 4 + [1]] + [[0] * 5] * (10 - length)
    want_out = [[0] * 4] * (length + 1) + [list(v) for v in seq] + [[0] * 4] * (10 - 2 * length)
    np.testing.assert_array_equal(inputs, want_in)
    np.testing.assert_array_equal(targets, want_out)
    assert list(scored) == [length < t <= 2 * length for t in range(11)]
    assert list(real) == [t <= 2 * length for t in range(11)]
    assert set(np.unique(seq)) <= {0.0, 1.0}
  lengths = {int(i[:, 4].argmax()) for i in batch.inputs}
  assert lengths <= set(range(1, 6)) and len(lengths) > 2


def test_repeat_copy_layout_equals_a_python_assembly():
  batch = algorithmic.repeat_copy(np.random.default_rng(1), 12, 1, 3, 1, 4, width=3,
                                  repeat_scale=5)
  total = 3 + 2 + 3 * 4
  assert batch.inputs.shape == (12, total, 5) and batch.targets.shape == (12, total, 4)
  for inputs, targets, scored, real in _rows(batch):
    length = int(inputs[:, 3].argmax())
    n = int(round(inputs[length, 4] * 5))
    seq = [list(v) for v in inputs[:length, :3]]
    want_out = [[0] * 4] * (length + 1) + [v + [0] for v in seq] * n + [[0, 0, 0, 1]]
    want_out += [[0] * 4] * (total - len(want_out))
    np.testing.assert_array_equal(targets, want_out)
    end = length + n * length + 1
    assert list(scored) == [length < t <= end for t in range(total)]
    assert list(real) == [t <= end for t in range(total)]
    assert 1 <= n <= 4


def test_associative_recall_layout_equals_a_python_assembly():
  batch = algorithmic.associative_recall(np.random.default_rng(2), 10, 2, 4, item_length=2,
                                         width=3)
  total = algorithmic.associative_recall_steps(4, 2)
  assert batch.inputs.shape == (10, total, 5)
  for inputs, targets, scored, real in _rows(batch):
    starts = list(np.nonzero(inputs[:, 3])[0])
    queries = list(np.nonzero(inputs[:, 4])[0])
    k = len(starts)
    assert starts == [3 * i for i in range(k)] and queries == [3 * k, 3 * k + 3]
    items = [inputs[s + 1:s + 3, :3] for s in starts]
    query = inputs[3 * k + 1:3 * k + 3, :3]
    q = next(i for i, it in enumerate(items) if np.array_equal(it, query))
    assert q < k - 1
    start = 3 * k + 4
    np.testing.assert_array_equal(targets[start:start + 2], items[q + 1])
    assert list(np.nonzero(scored)[0]) == [start, start + 1]
    assert real.sum() == start + 2 and not targets[~scored].any()


def test_bit_errors_count_wrong_bits_on_scored_steps_only():
  targets = np.array([[[1, 0], [0, 1], [1, 1]]], np.float32)
  logits = np.array([[[2.0, -1.0], [3.0, 1.0], [-1.0, -1.0]]])
  scored = np.array([[True, True, False]])
  np.testing.assert_array_equal(algorithmic.bit_errors(logits, targets, scored), [1.0])


def test_steps_argument_pads_to_a_common_length():
  batch = algorithmic.copy(np.random.default_rng(3), 4, 2, 3, steps=20)
  assert batch.inputs.shape[1] == 20 and not batch.mask[:, 7:].any()


@pytest.mark.parametrize("call,match", [
    (lambda r: algorithmic.copy(r, 2, 3, 2), "min_length must be <= max_length"),
    (lambda r: algorithmic.copy(r, 2, 0, 2), "min_length"),
    (lambda r: algorithmic.copy(r, 2, 1, 5, steps=8), "steps must be >= 2 \\* max_length"),
    (lambda r: algorithmic.repeat_copy(r, 2, 1, 2, 3, 2), "min_repeats must be <="),
    (lambda r: algorithmic.associative_recall(r, 2, 1, 3), "min_items must be >= 2"),
    (lambda r: algorithmic.copy(r, 0, 1, 2), "batch_size"),
])
def test_bad_arguments_name_themselves(call, match):
  with pytest.raises(ValueError, match=match):
    call(np.random.default_rng(0))
