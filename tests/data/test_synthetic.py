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


# --- sequence-to-sequence tasks: addition, reversal, sorting ---

_SEQ2SEQ_CASES = [
    ("addition", dict(max_digits=4)),
    ("reversal", dict(min_length=2, max_length=7)),
    ("sorting", dict(min_length=1, max_length=6)),
]


def _seq2seq(task, seed, batch_size=64, **kwargs):
  return synthetic.SEQ2SEQ_TASKS[task](np.random.default_rng(seed), batch_size, **kwargs)


def test_seq2seq_tokens_ids():
  tokens = synthetic.SEQ2SEQ_TOKENS
  assert (tokens.pad, tokens.bos, tokens.eos) == (0, 1, 2)
  assert [tokens.id_of(c) for c in "0123456789+"] == list(range(3, 14))
  assert tokens.size == 14
  with pytest.raises(ValueError, match="char"):
    tokens.id_of("x")


def test_encode_decode_round_trip():
  strings = ["", "0", "12+345", "9876543210", "+"]
  ids, lengths = synthetic.encode_chars(strings, 12)
  assert ids.shape == (5, 12) and ids.dtype == np.int32
  np.testing.assert_array_equal(lengths, [len(s) + 1 for s in strings])
  np.testing.assert_array_equal(ids[2, :7], [4, 5, 13, 6, 7, 8, 2])
  np.testing.assert_array_equal(ids[2, 7:], 0)
  assert synthetic.decode_chars(ids) == strings
  # Decoding stops at the first EOS and skips BOS and PAD.
  assert synthetic.decode_chars(np.array([[1, 4, 0, 5, 2, 6, 7]])) == ["12"]
  assert synthetic.decode_chars(np.array([[4, 5, 6]])) == ["123"]   # no EOS


def test_encode_decode_bad_arguments_are_named():
  with pytest.raises(ValueError, match="length"):
    synthetic.encode_chars(["123"], 3)              # needs 4 with EOS
  with pytest.raises(ValueError, match="strings"):
    synthetic.encode_chars(["12a"], 8)
  with pytest.raises(TypeError, match="strings"):
    synthetic.encode_chars("123", 8)
  with pytest.raises(ValueError, match="ids"):
    synthetic.decode_chars(np.array([[3, 14]]))
  with pytest.raises(ValueError, match="ids"):
    synthetic.decode_chars(np.array([3, 4]))


def test_addition_targets_are_the_sums_of_the_sources():
  batch = synthetic.addition(np.random.default_rng(0), 300, 5)
  sources = synthetic.decode_chars(batch.source)
  targets = synthetic.decode_chars(batch.target)
  for source, target in zip(sources, targets):
    a, b = source.split("+")
    assert 1 <= len(a) <= 5 and 1 <= len(b) <= 5
    assert a == str(int(a)) and b == str(int(b))      # no leading zeros
    assert target == str(int(a) + int(b))
  # Digit counts are uniform over 1..max_digits (300 draws of each operand).
  counts = np.bincount([len(s.split("+")[0]) for s in sources], minlength=6)[1:]
  assert counts.min() > 30
  # Some sums carry into an extra digit.
  assert any(len(t) == 6 for t in targets)


def test_addition_with_many_digits_is_exact():
  batch = synthetic.addition(np.random.default_rng(1), 50, 25)
  for source, target in zip(synthetic.decode_chars(batch.source),
                            synthetic.decode_chars(batch.target)):
    a, b = source.split("+")
    assert target == str(int(a) + int(b))


def test_reversal_and_sorting_match_python():
  rev = synthetic.reversal(np.random.default_rng(3), 200, 1, 9)
  srt = synthetic.sorting(np.random.default_rng(3), 200, 1, 9)
  sources = synthetic.decode_chars(rev.source)
  assert synthetic.decode_chars(srt.source) == sources
  assert synthetic.decode_chars(rev.target) == [s[::-1] for s in sources]
  assert synthetic.decode_chars(srt.target) == ["".join(sorted(s)) for s in sources]
  assert {len(s) for s in sources} == set(range(1, 10))
  assert all(s.isdigit() for s in sources)


@pytest.mark.parametrize("task, kwargs", _SEQ2SEQ_CASES)
def test_seq2seq_shapes_are_fixed_by_the_arguments(task, kwargs):
  widths = synthetic.max_lengths(task, **kwargs)
  for seed in range(5):
    batch = _seq2seq(task, seed, 16, **kwargs)
    assert (batch.source.shape[1], batch.target.shape[1]) == widths
    assert batch.source.shape[0] == batch.target.shape[0] == 16
    assert batch.source_lengths.shape == batch.target_lengths.shape == (16,)
    for array in batch:
      assert array.dtype == np.int32
  assert synthetic.max_lengths("addition", max_digits=3) == (8, 5)
  assert synthetic.max_lengths("reversal", max_length=7) == (8, 8)


@pytest.mark.parametrize("task, kwargs", _SEQ2SEQ_CASES)
def test_seq2seq_lengths_eos_and_padding(task, kwargs):
  batch = _seq2seq(task, 0, 200, **kwargs)
  tokens = synthetic.SEQ2SEQ_TOKENS
  for ids, lengths in ((batch.source, batch.source_lengths),
                       (batch.target, batch.target_lengths)):
    cols = np.arange(ids.shape[1])
    # Exactly one EOS per row, at lengths - 1; characters before, PAD after.
    np.testing.assert_array_equal((ids == tokens.eos).sum(1), 1)
    np.testing.assert_array_equal(np.argmax(ids == tokens.eos, axis=1), lengths - 1)
    before = cols < lengths[:, None] - 1
    assert np.all(ids[before] >= tokens.first_char)
    np.testing.assert_array_equal(ids[cols >= lengths[:, None]], tokens.pad)
    assert not np.any(ids == tokens.bos)
    # Some rows fill the whole width (the widths are the maxima, and reached).
    assert lengths.max() == ids.shape[1]


def test_decoder_inputs_start_with_bos():
  batch = synthetic.reversal(np.random.default_rng(0), 8, 1, 4)
  inputs = synthetic.decoder_inputs(batch.target)
  assert inputs.shape == batch.target.shape and inputs.dtype == np.int32
  np.testing.assert_array_equal(inputs[:, 0], synthetic.SEQ2SEQ_TOKENS.bos)
  np.testing.assert_array_equal(inputs[:, 1:], batch.target[:, :-1])


@pytest.mark.parametrize("task, kwargs", _SEQ2SEQ_CASES)
def test_seq2seq_is_a_function_of_the_seed(task, kwargs):
  a = _seq2seq(task, [5, 1], **kwargs)
  b = _seq2seq(task, [5, 1], **kwargs)
  c = _seq2seq(task, [5, 2], **kwargs)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x, y)
  assert not np.array_equal(a.source, c.source)


def test_seq2seq_bad_arguments_are_named():
  rng = np.random.default_rng(0)
  with pytest.raises(ValueError, match="max_digits"):
    synthetic.addition(rng, 4, 0)
  with pytest.raises(ValueError, match="batch_size"):
    synthetic.addition(rng, 0, 3)
  with pytest.raises(ValueError, match="batch_size"):
    synthetic.sorting(rng, -1, 1, 3)
  with pytest.raises(ValueError, match="min_length"):
    synthetic.reversal(rng, 4, 0, 3)
  with pytest.raises(ValueError, match="min_length"):
    synthetic.reversal(rng, 4, 5, 3)
  with pytest.raises(ValueError, match="max_length"):
    synthetic.sorting(rng, 4, 1, 0)
  with pytest.raises(ValueError, match="task"):
    synthetic.max_lengths("copy", max_length=3)
  with pytest.raises(ValueError, match="max_digits"):
    synthetic.max_lengths("addition")
  with pytest.raises(ValueError, match="max_length"):
    synthetic.max_lengths("addition", max_digits=3, max_length=3)
  with pytest.raises(ValueError, match="max_length"):
    synthetic.max_lengths("sorting", min_length=2)
