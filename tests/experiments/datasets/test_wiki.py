"""Tests for experiments.datasets.wiki: the gensim Wikipedia dump as enwik8-style bytes."""

from __future__ import annotations

import bz2
import gzip
import importlib.util
import zipfile

import numpy as np
import pytest

from experiments.datasets import packaged, wiki
from seqjax.data.streams import StreamBatches

NUM_BYTES = 6_089_746  # the uncompressed size of wiki.WIKI_FILE


@pytest.fixture(scope="module")
def raw() -> bytes:
  # Read independently of the loader: bz2 straight from the package folder.
  return bz2.decompress(wiki.corpus_path().read_bytes())


@pytest.fixture(scope="module")
def splits():
  return wiki.load_wiki_bytes()


def test_corpus_is_the_gensim_test_file():
  path = wiki.corpus_path()
  assert path.name == wiki.WIKI_FILE
  assert path.parent.parts[-3:] == ("gensim", "test", "test_data")


def test_splits_are_the_file_in_order(raw, splits):
  assert len(raw) == NUM_BYTES
  assert tuple(splits) == wiki.SPLITS == ("train", "validation", "test")
  for split in splits.values():
    assert split.dtype == np.uint8 and split.ndim == 1
  assert sum(len(s) for s in splits.values()) == len(raw)
  assert np.concatenate(list(splits.values())).tobytes() == raw
  assert {k: len(v) for k, v in splits.items()} == wiki.split_sizes(len(raw)) == {
      "train": 5_480_772, "validation": 304_487, "test": 304_487}
  for split in ("validation", "test"):
    assert abs(len(splits[split]) / len(raw) - 0.05) < 1e-4
  assert abs(len(splits["train"]) / len(raw) - 0.90) < 1e-4
  # enwik8's first bytes: the dump starts with the <mediawiki> root element.
  header = b'<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/"'
  assert splits["train"][:len(header)].tobytes() == header
  assert splits["test"].tobytes().endswith(b"</page>\n</mediawiki>\n")
  assert wiki.VOCAB_SIZE == 256
  assert int(max(s.max() for s in splits.values())) < wiki.VOCAB_SIZE


def test_arrays_are_writable(splits):
  assert all(split.flags.writeable for split in splits.values())


def test_split_sizes_match_enwik8():
  assert wiki.split_sizes(10**8) == {"train": 90_000_000, "validation": 5_000_000,
                                     "test": 5_000_000}
  assert wiki.split_sizes(0) == {"train": 0, "validation": 0, "test": 0}
  assert wiki.split_sizes(39) == {"train": 39 - 2, "validation": 1, "test": 1}
  for bad in (-1, 1.5, True, "10"):
    with pytest.raises(ValueError, match="num_bytes"):
      wiki.split_sizes(bad)


def test_documents_are_the_splits_as_int32(splits):
  documents = wiki.load_wiki_documents()
  assert tuple(documents) == wiki.SPLITS
  for split, docs in documents.items():
    assert len(docs) == 1
    assert docs[0].dtype == np.int32 and docs[0].shape == splits[split].shape
    np.testing.assert_array_equal(docs[0], splits[split])
  # One document per split: the char-LM batcher resets only at the start.
  batch = StreamBatches(documents["validation"], batch_size=4, seq_len=64).batch(1)
  assert batch["inputs"].shape == (4, 64) and not batch["reset"].any()
  assert batch["mask"].all()


def test_explicit_paths_in_every_format(raw, tmp_path):
  head = raw[:100_000]
  (tmp_path / "enwik8").write_bytes(head)
  (tmp_path / "enwik8.bz2").write_bytes(bz2.compress(head))
  (tmp_path / "enwik8.gz").write_bytes(gzip.compress(head))
  with zipfile.ZipFile(tmp_path / "enwik8.zip", "w") as archive:
    archive.writestr("enwik8", head)
  (tmp_path / "no-extension").write_bytes(bz2.compress(head))  # magic, not name
  for name in ("enwik8", "enwik8.bz2", "enwik8.gz", "enwik8.zip", "no-extension"):
    splits = wiki.load_wiki_bytes(path=tmp_path / name)
    assert np.concatenate(list(splits.values())).tobytes() == head, name
    assert len(splits["test"]) == 5_000
  assert wiki.load_wiki_bytes(path=str(tmp_path / "enwik8"))["train"].size == 90_000


def test_missing_explicit_path_is_named(tmp_path):
  missing = tmp_path / "nowhere" / "enwik8"
  with pytest.raises(FileNotFoundError, match="nowhere/enwik8"):
    wiki.load_wiki_bytes(path=missing)
  with pytest.raises(FileNotFoundError, match="nowhere/enwik8"):
    wiki.load_wiki_documents(path=missing)
  with pytest.raises(FileNotFoundError, match="existing file"):
    wiki.load_wiki_bytes(path=tmp_path)  # a folder, not a file


def test_zip_with_two_files_is_refused(tmp_path):
  with zipfile.ZipFile(tmp_path / "two.zip", "w") as archive:
    archive.writestr("a", b"x")
    archive.writestr("b", b"y")
  with pytest.raises(ValueError, match="exactly one file"):
    wiki.load_wiki_bytes(path=tmp_path / "two.zip")


def test_missing_package_gives_install_command(monkeypatch):
  real = importlib.util.find_spec
  monkeypatch.setattr(importlib.util, "find_spec",
                      lambda name, *a: None if name == "gensim" else real(name, *a))
  with pytest.raises(ModuleNotFoundError) as info:
    wiki.corpus_path()
  assert str(info.value) == wiki.SOURCE.message
  assert "`pip install gensim`" in str(info.value)
  assert isinstance(info.value, packaged.DataNotFoundError)
  with pytest.raises(packaged.DataNotFoundError):
    wiki.load_wiki_bytes()
  with pytest.raises(packaged.DataNotFoundError):
    wiki.load_wiki_documents()


def test_package_without_test_data(monkeypatch, tmp_path):
  (tmp_path / "gensim").mkdir()
  spec = importlib.util.spec_from_file_location(
      "gensim", tmp_path / "gensim" / "__init__.py",
      submodule_search_locations=[str(tmp_path / "gensim")])
  real = importlib.util.find_spec
  monkeypatch.setattr(importlib.util, "find_spec",
                      lambda name, *a: spec if name == "gensim" else real(name, *a))
  with pytest.raises(packaged.DataNotFoundError, match="test_data"):
    wiki.corpus_path()
