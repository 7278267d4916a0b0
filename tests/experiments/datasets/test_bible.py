"""Tests for experiments.datasets.bible: Spanish-English verse pairs from two SWORD modules."""

from __future__ import annotations

import json
import sys

import pytest

from experiments import datasets
from experiments.datasets import bible, packaged
from seqjax.data.text import detokenize, word_punct_tokenize

pytest.importorskip("pysword", reason="the modules are read with pysword==0.2.8")

needs_modules = pytest.mark.skipif(
    not all((bible.sword_path() / bible.SOURCES[lang].path).is_dir()
            for lang in (bible.SOURCE_LANGUAGE, bible.TARGET_LANGUAGE)),
    reason="the SWORD modules are missing: apt-get install sword-text-kjv sword-text-sparv")


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
  return tmp_path_factory.mktemp("bible")


@pytest.fixture(scope="module")
def splits(cache_dir):
  """One read of both modules (about 5 s), cached in ``cache_dir`` for the other tests."""
  return bible.load(cache_dir=cache_dir)


@needs_modules
def test_counts_are_within_the_documented_bounds(splits):
  sizes = {name: len(pairs.keys) for name, pairs in splits.items()}
  assert list(sizes) == ["train", "validation", "test"]
  assert 30_000 <= sum(sizes.values()) <= 31_102  # 30,456: 31,102 slots less 24 chapters
  assert 1_000 <= sizes["validation"] <= 2_000 and 1_000 <= sizes["test"] <= 2_000
  chapters = {name: {bible.chapter_name(k) for k in pairs.keys} for name, pairs in splits.items()}
  assert len(chapters["validation"]) == bible.NUM_VALIDATION == 58
  assert len(chapters["test"]) == bible.NUM_TEST == 58
  assert 1_100 <= sum(map(len, chapters.values())) <= 1_189
  for pairs in splits.values():
    assert len(pairs.source) == len(pairs.target) == len(pairs.keys)


@needs_modules
def test_pairs_are_aligned_and_clean(splits):
  pairs = {key: (s, t) for p in splits.values() for s, t, key in zip(*p)}
  source, target = pairs[("Gen", 1, 1)]
  assert "principio" in source and "beginning" in target
  assert pairs[("John", 11, 35)] == ("Y lloró Jesús.", "Jesus wept.")
  # A psalm title is in verse 1 on both sides, and an epistle's subscription.
  assert pairs[("Ps", 3, 1)][0].startswith("Salmo de David")
  assert pairs[("Ps", 3, 1)][1].startswith("A Psalm of David")
  assert pairs[("Rom", 16, 27)][1].endswith("servant of the church at Cenchrea.")
  assert "enviada por medio de Febe" in pairs[("Rom", 16, 27)][0]  # abutting tags spaced
  # Chapters the Spanish module numbers its own way are gone (13:1 is the KJV's 12:16).
  assert not any(key[:2] in {("Num", 13), ("Job", 40), ("1Kgs", 22)} for key in pairs)
  assert ("Num", 14, 1) in pairs
  for source, target in pairs.values():
    for text in (source, target):
      assert text and text == " ".join(text.split())
      assert not any(mark in text for mark in "¶<>\\"), text


@needs_modules
def test_splits_are_disjoint_by_chapter_and_deterministic(splits):
  seen_chapters, seen_keys = set(), set()
  for name, pairs in splits.items():
    chapters = {bible.chapter_name(k) for k in pairs.keys}
    assert not chapters & seen_chapters, f"{name} shares a chapter with another split"
    assert not set(pairs.keys) & seen_keys
    seen_chapters |= chapters
    seen_keys |= set(pairs.keys)
  everything = bible.Pairs(*(sum((list(p[i]) for p in splits.values()), []) for i in range(3)))
  canonical = sorted(range(len(everything.keys)), key=lambda i: everything.keys[i])
  rebuilt = bible.Pairs(*([column[i] for i in canonical] for column in everything))
  again = bible.split(rebuilt, bible.NUM_VALIDATION, bible.NUM_TEST, bible.SPLIT_SEED)
  for name, pairs in splits.items():
    assert set(again[name].keys) == set(pairs.keys)
  other = bible.split(rebuilt, bible.NUM_VALIDATION, bible.NUM_TEST, bible.SPLIT_SEED + 1)
  assert set(other["test"].keys) != set(splits["test"].keys)


@needs_modules
def test_the_cache_is_written_then_read_without_pysword(splits, cache_dir, monkeypatch):
  (cache_file,) = cache_dir.glob("bible_es_en_*.json")
  assert set(json.loads(cache_file.read_text("utf-8"))) == {"source", "target", "keys"}

  def refuse(*args, **kwargs):
    raise AssertionError("read the modules again instead of the cache")

  monkeypatch.setattr(bible, "verse_pairs", refuse)
  monkeypatch.setattr(bible, "_pysword", refuse)
  again = bible.load(cache_dir=cache_dir)
  assert again == splits


def test_an_unreadable_cache_reads_as_a_miss(tmp_path):
  path = tmp_path / "bible_es_en_x.json"
  assert bible._read_cache(path) is None  # pylint: disable=protected-access
  for text in ("not json", "[]", '{"source": ["a"], "target": [], "keys": []}'):
    path.write_text(text)
    assert bible._read_cache(path) is None  # pylint: disable=protected-access


def test_missing_modules_name_the_install_commands(tmp_path, monkeypatch):
  for call in (lambda: bible.load(cache_dir=tmp_path, path=tmp_path / "no-sword"),
               lambda: bible.verse_pairs(tmp_path)):
    with pytest.raises(packaged.DataNotFoundError) as info:
      call()
    message = str(info.value)
    assert "apt-get install sword-text-kjv sword-text-sparv" in message
    assert "pip install pysword==0.2.8" in message
  monkeypatch.setenv("SWORD_PATH", str(tmp_path))
  assert bible.sword_path() == tmp_path
  with pytest.raises(packaged.DataNotFoundError, match=str(tmp_path)):
    bible.module_files()


@needs_modules
def test_missing_pysword_names_the_pip_command(monkeypatch):
  bible._pysword.cache_clear()  # pylint: disable=protected-access
  monkeypatch.setitem(sys.modules, "pysword", None)
  try:
    with pytest.raises(packaged.DataNotFoundError, match=r"pip install pysword==0\.2\.8"):
      bible.verse_pairs(books=("Ruth",))
  finally:
    bible._pysword.cache_clear()  # pylint: disable=protected-access


@needs_modules
def test_verse_pairs_of_some_books_drop_shifted_chapters():
  pairs = bible.verse_pairs(books=("Ruth", "Jonah"))
  chapters = list(dict.fromkeys(key[:2] for key in pairs.keys))
  # Jonah 1:17 is the Spanish 2:1: both chapters go, 3 and 4 stay.
  assert chapters == [("Ruth", 1), ("Ruth", 2), ("Ruth", 3), ("Ruth", 4), ("Jonah", 3),
                      ("Jonah", 4)]
  assert pairs.keys[0] == ("Ruth", 1, 1) and len(pairs.keys) == 85 + 10 + 11
  with pytest.raises(ValueError, match="books must be OSIS book names"):
    bible.verse_pairs(books=("Genesis",))


def test_misaligned_chapters_finds_shifts_and_gaps():
  keys = [("A", 1, 1), ("A", 1, 2), ("A", 1, 3), ("B", 1, 1), ("B", 1, 2), ("C", 1, 1),
          ("C", 1, 2), ("D", 1, 1)]
  target = [frozenset({f"H{i}", f"H{i + 100}"}) for i in range(len(keys))]
  source = list(target)
  source[3], source[4] = target[4], target[3] | {"H999"}  # B's two verses swapped
  source_texts = ["es"] * len(keys)
  source_texts[5] = ""  # an empty Spanish slot
  source[6] = frozenset()  # no tags: nothing to compare, kept
  got = bible.misaligned_chapters(keys, source_texts, ["en"] * len(keys), source, target)
  assert got == {("B", 1), ("C", 1)}


def test_clean_verse_keeps_titles_and_drops_marks():
  raw = ('<title canonical="true" type="psalm">A <w lemma="strong:H4210">Psalm</w>.</title>'
         '<lg/> ¶ the \\nd <divineName><w lemma="strong:H3068">LORD</w></divineName>'
         '<transChange type="added">is</transChange><w lemma="strong:H1">good</w>;'
         '<note placement="foot">Heb. a note</note>  ב BETH.  ')
  assert bible.clean_verse(raw) == "A Psalm. the LORD is good; BETH."
  assert bible.strong_numbers(raw) == {"H4210", "H3068", "H1"}
  assert bible.clean_verse("") == ""


@needs_modules
def test_verses_round_trip_through_the_tokenizer(splits):
  sample = [t for p in splits.values() for texts in (p.source, p.target) for t in texts[::20]]
  assert len(sample) > 3_000
  same = sum(" ".join(detokenize(word_punct_tokenize(t)).split()) == " ".join(t.lower().split())
             for t in sample)
  assert same / len(sample) > 0.99  # measured: every one of the 60,912 verses


def test_registry_kind():
  assert datasets.module("bible_es_en") is bible
  assert bible.KIND == "parallel" and "bible_es_en" in datasets.names("parallel")
  assert (bible.SOURCE_LANGUAGE, bible.TARGET_LANGUAGE) == ("es", "en")
  assert all(isinstance(s, packaged.Source) for s in bible.SOURCES.values())
  assert bible.Pairs._fields == ("source", "target", "keys")
