"""Tests for experiments.datasets.music: piano rolls, voices, splits, baseline, batching.

Only a handful of real chorales are parsed here (the whole corpus takes half
a minute); ``load_chorale_rolls`` runs on a small folder of copied files.
"""

from __future__ import annotations

import importlib.util
import math
import shutil
import sys

import numpy as np
import pytest

from experiments.datasets import music


@pytest.fixture(scope="module")
def m21():
  return pytest.importorskip("music21", reason="the chorales ship in music21")


def _part(m21, name, events):
  """A part from (pitches or None for a rest, quarter length) pairs, in sequence."""
  part = m21.stream.Part()
  part.partName = name
  for pitches, length in events:
    if pitches is None:
      part.append(m21.note.Rest(quarterLength=length))
    elif isinstance(pitches, (list, tuple)):
      part.append(m21.chord.Chord(list(pitches), quarterLength=length))
    else:
      part.append(m21.note.Note(pitches, quarterLength=length))
  return part


def _roll_from(steps, length):
  roll = np.zeros((length, 88), np.float32)
  for t, pitches in steps.items():
    for pitch in pitches:
      roll[t, pitch - 21] = 1.0
  return roll


@pytest.fixture
def small_score(m21):
  """Four voices (stored bass first) and a horn part that must be ignored."""
  score = m21.stream.Score()
  for part in [
      _part(m21, "Bass", [("C3", 4)]),
      _part(m21, "Horn 1", [("G5", 4), ("A5", 1)]),  # ends after the voices
      # A quarter, a half note, a rest.
      _part(m21, "Soprano", [("C5", 1), ("D5", 2), (None, 1)]),
      # A chord, an eighth on the beat, an eighth between beats (never sampled).
      _part(m21, "Alto", [(("E4", "G4"), 2), ("F4", 0.5), ("A4", 0.5), ("G4", 1)]),
      # An eighth rest, then a dotted quarter that sounds only at t = 1.
      _part(m21, "Tenor", [(None, 0.5), ("B3", 1.5), ("C4", 2)]),
  ]:
    score.insert(0, part)
  return score


def test_piano_roll_of_a_hand_built_score(small_score):
  expected = _roll_from({
      0: [72, 64, 67, 48],           # C5; E4+G4 chord; rest in the tenor; C3
      1: [74, 64, 67, 59, 48],       # D5 (half); chord; B3 (dotted quarter); C3
      2: [74, 65, 60, 48],           # D5 held; F4 eighth; C4; C3
      3: [67, 60, 48],               # soprano rest; G4; C4; C3 (A4 at 2.5 unseen)
  }, length=4)
  roll = music.piano_roll(small_score)
  assert roll.dtype == np.float32 and roll.shape == (4, 88)
  np.testing.assert_array_equal(roll, expected)

  # Every note counts without voice selection, and the horn's last quarter
  # lengthens the roll.
  everything = music.piano_roll(small_score, voices_only=False)
  horn = _roll_from({t: [79] for t in range(4)} | {4: [81]}, length=5)
  np.testing.assert_array_equal(everything, np.pad(expected, ((0, 1), (0, 0))) + horn)


def test_piano_roll_length_rounds_up_and_rejects_off_keyboard_pitches(m21):
  part = _part(m21, "Soprano", [("C4", 3), ("E4", 0.5)])  # 3.5 quarters
  roll = music.piano_roll(part, voices_only=False)
  np.testing.assert_array_equal(roll, _roll_from({0: [60], 1: [60], 2: [60], 3: [64]}, 4))
  with pytest.raises(ValueError, match="outside the 88 piano keys"):
    music.piano_roll(_part(m21, "Bass", [("C0", 1)]), voices_only=False)


def test_voice_parts_by_name(m21, small_score):
  assert [p.partName for p in music.voice_parts(small_score)] == [
      "Soprano", "Alto", "Tenor", "Bass"]
  # A voice doubled by instruments is still the voice; "Bassoon" is not a bass.
  score = m21.stream.Score()
  for name in ["Soprano\rOboe 1,2\rViolin1", "Alto", "Tenor Viola", "Bass Continuo",
               "Bassoon", "Continuo"]:
    score.insert(0, _part(m21, name, [("C4", 1)]))
  tenor, bass = music.voice_parts(score)[2:]
  assert (tenor.partName, bass.partName) == ("Tenor Viola", "Bass Continuo")
  # Two soprano parts (a five-voice chorale), or a missing voice: skipped.
  score.insert(0, _part(m21, "Soprano 2", [("C4", 1)]))
  with pytest.raises(ValueError, match="one part for each"):
    music.voice_parts(score)
  with pytest.raises(ValueError, match="one part for each"):
    music.piano_roll(_part(m21, "Soprano", [("C4", 1)]))  # a part, not a score


def _chordify_reference(m21, parts, length):
  """An independent route to the roll: music21's own vertical slices."""
  chords = m21.stream.Score(list(parts)).chordify().flatten()
  roll = np.zeros((length, 88), np.float32)
  for chord in chords.notes:
    onset = chords.elementOffset(chord)
    for t in range(math.ceil(onset), min(math.ceil(onset + chord.quarterLength), length)):
      for pitch in chord.pitches:
        roll[t, pitch.midi - 21] = 1.0
  return roll


@pytest.mark.parametrize("name, voices_end, score_end", [
    ("bach/bwv66.6", 36, 36),    # four parts, starting with a pickup
    ("bach/bwv130.6", 48, 49),   # horns and timpani listed before the voices
])
def test_real_chorale(m21, name, voices_end, score_end):
  score = m21.corpus.parse(name, forceSource=True)
  voices = music.voice_parts(score)
  assert [p.partName for p in voices] == ["Soprano", "Alto", "Tenor", "Bass"]
  assert len(score.parts) >= 4 and score.highestTime == score_end
  roll = music.piano_roll(score)
  length = math.ceil(max(part.highestTime for part in voices))
  assert roll.shape == (length, 88) == (voices_end, 88)
  assert set(np.unique(roll)) <= {0.0, 1.0}
  active = roll.sum(axis=1)
  assert active.min() >= 0 and active.max() <= 4 and active.mean() > 3
  keys = np.nonzero(roll.any(axis=0))[0] + 21
  assert 36 <= keys.min() and keys.max() <= 84  # within the range of the voices
  fresh = m21.corpus.parse(name, forceSource=True)  # chordify adopts the parts
  np.testing.assert_array_equal(
      roll, _chordify_reference(m21, music.voice_parts(fresh), length))


def test_split_sizes_scale_the_jsb_proportions():
  assert music.split_sizes(382) == {"train": 229, "validation": 76, "test": 77}
  assert music.split_sizes(404) == {"train": 243, "validation": 80, "test": 81}
  for n in (0, 1, 5, 100, 407, 1000):
    assert sum(music.split_sizes(n).values()) == n


def test_split_pieces_is_fixed_disjoint_and_complete():
  names = [f"bwv{i}.{i % 7}" for i in range(404)]
  splits = music.split_pieces(names)
  assert {split: len(members) for split, members in splits.items()} == {
      "train": 243, "validation": 80, "test": 81}
  sets = [set(members) for members in splits.values()]
  assert sum(len(s) for s in sets) == len(set.union(*sets)) == 404
  assert set.union(*sets) == set(names)
  # Fixed: independent of the input order, and the documented recipe.
  assert music.split_pieces(list(reversed(names))) == splits
  shuffled = [sorted(names)[i] for i in np.random.default_rng(0).permutation(404)]
  assert splits == {"train": shuffled[:243], "validation": shuffled[243:323],
                    "test": shuffled[323:]}
  assert music.split_pieces(names, seed=1) != splits
  with pytest.raises(ValueError, match="twice"):
    music.split_pieces(names + names[:1])


def test_drop_duplicates_keeps_the_first_name():
  a, b = np.eye(3, 88, dtype=np.float32), np.ones((2, 88), np.float32)
  rolls = {"bwv9": a.copy(), "bwv1": a.copy(), "bwv5": b, "bwv2": a[:2].copy()}
  assert list(music.drop_duplicates(rolls)) == ["bwv1", "bwv5", "bwv2"]


def test_marginal_nll_matches_the_formula():
  rng = np.random.default_rng(0)
  train = [(rng.random((t, 88)) < 0.05).astype(np.float32) for t in (7, 12, 5)]
  evaluation = [(rng.random((t, 88)) < 0.05).astype(np.float32) for t in (9, 4)]
  eps = 1e-3
  frames = np.concatenate(train).astype(np.float64)
  p = np.clip(frames.mean(axis=0), eps, 1 - eps)
  x = np.concatenate(evaluation).astype(np.float64)
  expected = np.mean([-np.sum(row * np.log(p) + (1 - row) * np.log(1 - p)) for row in x])
  assert (p == eps).any()  # some keys never on in training: clipping matters
  nll = music.marginal_nll(train, evaluation, eps=eps)
  assert nll == pytest.approx(expected, rel=1e-12)
  # One array is one piece.
  assert music.marginal_nll(np.concatenate(train), np.concatenate(evaluation)) == \
      pytest.approx(expected, rel=1e-12)


def test_marginal_nll_of_fair_coins_is_88_ln_2():
  train = [np.ones((3, 88), np.float32), np.zeros((3, 88), np.float32)]  # p_k = 1/2
  rng = np.random.default_rng(1)
  evaluation = [(rng.random((10, 88)) < 0.3).astype(np.float32)]
  nll = music.marginal_nll(train, evaluation)
  assert nll == pytest.approx(88 * math.log(2), rel=1e-12)
  with pytest.raises(ValueError, match="eval_rolls"):
    music.marginal_nll(train, [np.zeros((0, 88))])
  with pytest.raises(ValueError, match="eps"):
    music.marginal_nll(train, evaluation, eps=0.0)


def test_pad_batch():
  rolls = [np.full((t, 88), t, np.float32) for t in (3, 5, 1)]
  x, mask = music.pad_batch(rolls)
  assert x.shape == (3, 5, 88) and x.dtype == np.float32
  assert mask.shape == (3, 5) and mask.dtype == bool
  np.testing.assert_array_equal(mask.sum(axis=1), [3, 5, 1])
  for i, roll in enumerate(rolls):
    np.testing.assert_array_equal(x[i, :len(roll)], roll)
    assert not x[i, len(roll):].any() and mask[i, :len(roll)].all()
  x, mask = music.pad_batch(rolls, length=8)
  assert x.shape == (3, 8, 88) and mask.shape == (3, 8) and not mask[:, 5:].any()
  with pytest.raises(ValueError, match="length"):
    music.pad_batch(rolls, length=4)
  with pytest.raises(ValueError, match="empty"):
    music.pad_batch([])


def test_chorale_files_of_the_real_corpus(m21):
  files = music.chorale_files()
  assert len(files) == 410 and list(files) == sorted(files)
  assert all(name.startswith("bwv") for name in files)
  assert files["bwv277"].suffix == ".mxl"  # also shipped as .krn
  assert "bwv66.6" in files


def test_load_chorale_rolls_caches_and_drops(m21, tmp_path, monkeypatch):
  source = music.corpus_dir()
  folder = tmp_path / "chorales"
  folder.mkdir()
  # bwv62.6 duplicates bwv274; bwv27.6 has two soprano parts; bwv277 comes in
  # two formats.
  for name in ("bwv66.6.mxl", "bwv274.mxl", "bwv62.6.mxl", "bwv27.6.mxl",
               "bwv277.mxl", "bwv277.krn"):
    shutil.copy(source / name, folder / name)
  cache = tmp_path / "cache"
  rolls = music.load_chorale_rolls(cache_dir=cache, directory=folder, processes=2)
  assert list(rolls) == ["bwv274", "bwv277", "bwv66.6"]
  direct = music.piano_roll(m21.corpus.parse("bach/bwv66.6", forceSource=True))
  np.testing.assert_array_equal(rolls["bwv66.6"], direct)
  (cached,) = cache.glob("bach_chorales_*.npz")
  with np.load(cached) as data:  # the cache keeps the duplicate; loading drops it
    assert list(data["names"]) == ["bwv274", "bwv277", "bwv62.6", "bwv66.6"]

  def no_parsing(*args):
    raise AssertionError("parsed although the cache is valid")

  monkeypatch.setattr(music, "_parse_file", no_parsing)
  monkeypatch.setattr(music, "_parse_in_workers", no_parsing)
  again = music.load_chorale_rolls(cache_dir=cache, directory=folder)
  assert list(again) == list(rolls)
  for name in rolls:
    np.testing.assert_array_equal(again[name], rolls[name])
    assert again[name].dtype == np.float32
  splits = music.load_chorales(cache_dir=cache, directory=folder)
  assert sum(len(members) for members in splits.values()) == 3

  # Removing a file changes the key: parsing runs again (in this process).
  (folder / "bwv27.6.mxl").unlink()
  with pytest.raises(AssertionError, match="parsed although"):
    music.load_chorale_rolls(cache_dir=cache, directory=folder, processes=1)
  monkeypatch.undo()
  in_process = music.load_chorale_rolls(cache_dir=cache, directory=folder, processes=1)
  assert list(in_process) == list(rolls)
  for name in rolls:
    np.testing.assert_array_equal(in_process[name], rolls[name])
  assert len(list(cache.glob("bach_chorales_*.npz"))) == 2


def test_missing_music21_gives_the_pip_command(monkeypatch):
  real_find_spec = importlib.util.find_spec
  monkeypatch.setattr(importlib.util, "find_spec",
                      lambda name, *args: None if name == "music21"
                      else real_find_spec(name, *args))
  with pytest.raises(ModuleNotFoundError) as error:
    music.load_chorales()
  assert "pip install music21==10.5.1" in str(error.value)
  with pytest.raises(ValueError, match="directory"):
    music.chorale_files(directory=sys.prefix + "/no/such/folder")
