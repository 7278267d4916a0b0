"""The Bible in Spanish and English, verse by verse: a parallel corpus for translation.

Source (Spanish) is the Reina-Valera 1909, target (English) the King James
Version (1769 text); both are in the public domain (the modules' ``.conf``
files: "Copyright=PUBLIC DOMAIN"; the KJV's Crown patent binds printing in
the UK only). They ship as the SWORD modules ``spaRV1909eb`` and
``engKJV2006eb`` of two Debian packages (``apt-get install sword-text-kjv
sword-text-sparv`` puts them under ``/usr/share/sword``) and are read with
``pysword`` (``pip install pysword==0.2.8``). Both modules use the KJV
versification, so a verse key ``(book, chapter, verse)`` (OSIS book names
``"Gen"``, ``"1Sam"``, ``"Matt"``; each chapter's verses from the book's
``chapter_lengths``) names the same slot in both: the two texts of a slot
are a pair. 31,102 slots.

Cleaning (``clean_verse``). pysword's cleaner removes the OSIS markup
(Strong's-number ``<w>`` tags, footnotes) after three repairs: the KJV's
psalm titles ("A Psalm of David, when he fled...") and epistle
subscriptions, which pysword drops as headings, are kept as text, because
the RV1909 has them inside the verse (its Psalm 3:1 starts "Salmo de David,
cuando huía..."); a space goes between two tags that abut (the RV1909 writes
``<w>enviada</w><w>por</w>`` in 582 places); the KJV's stray USFM markers
(``\\nd`` before LORD, 27 verses) are dropped. Then the paragraph mark
``¶`` (2,970 KJV verses) and Hebrew letters (Psalm 119's acrostic headings,
"ב BETH.") are removed and whitespace is normalised.

Alignment (``misaligned_chapters``). In places the RV1909 module numbers
verses its own (the Hebrew Bible's) way: Numbers 13 runs one verse behind
(its 13:1 is the KJV's 12:16, whose slot is empty), Job 40 five verses
ahead, 1 Kings 22 one behind from 22:44 on (it splits the KJV's 22:43).
Both modules tag every word with the Strong's number of the Hebrew or Greek
word it translates, which finds these whatever the language: a verse is
misaligned if either text is empty (18 Spanish slots, no English one) or if
its Spanish shares fewer Strong's numbers (Jaccard) with the English of the
same verse than with the English verse before or after it. Every chapter
holding a misaligned verse is dropped whole (the verses around a shift are
merged or split too): 24 chapters, 646 slots (1 Chronicles 1 and 21,
1 Kings 18 and 22, Numbers 12, 13, 29, 30, Job 35, 38-40, ...). In the 1,165
chapters kept, the aligned Spanish and English share 82% of their Strong's numbers at
the median. Left in are boundaries a clause apart (2 Samuel 2:31-32, 1 Samuel
17:55-56: a pair where one side has half a sentence more), which the test
cannot see; they are what the pairs whose length ratio is furthest from the
median show.

The result: 30,456 pairs from 1,165 chapters; 898k English and 813k Spanish
tokens (``seqjax.data.text.word_punct_tokenize``). English verses have 24
words (whitespace-separated) at the median, the middle half 17 to 32; 5,771
(19%) have at most 15 words, 21,679 (71%) at most 30; the shortest 2
("Jesus wept.", "Rejoice evermore."), the longest 90 (Esther 8:9). Spanish
verses have 21 words at the median. ``load`` splits by *chapter*, never by
verse, so that neighbouring verses (which often repeat each other) do not
leak across splits: the chapter names ``"<book>.<chapter>"`` are ordered by
``packaged.split_by_hash`` (seed ``SPLIT_SEED``), ``NUM_VALIDATION`` (58,
5%) go to validation and ``NUM_TEST`` (58) to test: 27,555 training pairs
(1,049 chapters), 1,355 validation and 1,546 test pairs.

Reading both modules takes about 5 s (pysword decompresses a whole book for
every verse it reads, about 3 minutes for the two Bibles; ``verse_pairs``
keeps the last book). ``load`` caches the pairs as JSON (8.6 MB) under
``packaged.default_cache_dir()`` (``bible_es_en_<hash>.json``, written
atomically), keyed by ``packaged.source_digest`` of the loader's version
and the bytes of both modules' files (each ``.conf`` and six data files,
6.0 MB, read and hashed in about 10 ms); a cached load takes 0.2 s, reads
no module through pysword and does not need pysword installed.

Caveats. The two are independent translations from the original languages,
three centuries apart, not translations of each other: a pair may differ in
what it makes explicit, and the KJV is Early Modern English ("thou hast",
"saith"). The RV1909 capitalises the first word of every chapter ("EN el
principio", "Y DESPUÉS") and has Psalm 119's acrostic letters in the verse
("ALEPH.", "TAU."), the KJV from "BETH." on (its "ALEPH." heads the
chapter, not a verse); the KJV keeps its translators' italic additions as
plain words and writes "LORD" in capitals, the RV1909 "Jehová".
Names are spelt differently (Moisés / Moses, Josaphat / Jehoshaphat).
"""

from __future__ import annotations

import functools
import json
import os
import pathlib
import re
from typing import Iterable, NamedTuple, Optional, Sequence

from experiments.datasets import imdb, packaged
from experiments.datasets.packaged import PathLike

#: What ``experiments.datasets`` knows this corpus as: pairs for translation.
KIND = "parallel"
SOURCE_LANGUAGE, TARGET_LANGUAGE = "es", "en"

#: The SWORD modules (source, target) and where a SWORD library keeps them.
SOURCE_MODULE, TARGET_MODULE = "spaRV1909eb", "engKJV2006eb"
DEFAULT_SWORD_PATH = "/usr/share/sword"
_MODULE_DIR = "modules/texts/ztext"
_DATA_FILES = tuple(f"{t}.bz{x}" for t in ("ot", "nt") for x in "svz")

#: Chapters held out (of the 1,165 kept), and the split's seed.
NUM_VALIDATION, NUM_TEST, SPLIT_SEED = 58, 58, 0

_APT = "apt-get install sword-text-kjv sword-text-sparv"
_PIP = "pip install pysword==0.2.8"
_ELSEWHERE = (f" and `{_PIP}` (or pass path=... or set $SWORD_PATH to a SWORD folder "
              f"holding mods.d/ and {_MODULE_DIR}/)")

#: Where each part ships: the two modules (Debian packages) and their reader.
SOURCES: dict[str, packaged.Source] = {
    SOURCE_LANGUAGE: packaged.Source(
        "sword-text-sparv", f"{_MODULE_DIR}/{SOURCE_MODULE}",
        what=f"the Reina-Valera 1909 Bible (SWORD module {SOURCE_MODULE})",
        install=_APT, alternative=_ELSEWHERE),
    TARGET_LANGUAGE: packaged.Source(
        "sword-text-kjv", f"{_MODULE_DIR}/{TARGET_MODULE}",
        what=f"the King James Bible (SWORD module {TARGET_MODULE})",
        install=_APT, alternative=_ELSEWHERE),
    "reader": packaged.Source("pysword", "bible.py", what="the SWORD module reader",
                              install=_PIP),
}

# Bumped whenever verse_pairs changes its output, so that stale caches are
# never read.
_LOADER_VERSION = 1

_TITLE_TAG = re.compile(r"</?title\b[^>]*>")
_ABUTTING_TAGS = re.compile(r"(</(?:w|transChange|divineName|seg)>)(?=<(?:w|transChange)\b)")
_USFM_MARKER = re.compile(r"\\\+?[a-z]+\d*\*?")
_LEFTOVER_TAG = re.compile(r"<[^>]*>")
_HEBREW = re.compile(r"[\u0590-\u05ff]")
_STRONG = re.compile(r"strong:([HG])0*(\d+)")
_NOTE = re.compile(r"<note\b.*?</note>", re.DOTALL)


class Pairs(NamedTuple):
  """Verse-aligned texts, N of each.

  Attributes:
    source: N Spanish verses (raw text, cleaned of markup).
    target: N English verses, same order.
    keys: N ``(book, chapter, verse)``, e.g. ``("Gen", 1, 1)``.
  """

  source: list[str]
  target: list[str]
  keys: list[tuple[str, int, int]]


def sword_path(path: Optional[PathLike] = None) -> pathlib.Path:
  """The SWORD library folder: ``path``, else ``$SWORD_PATH``, else ``/usr/share/sword``."""
  return pathlib.Path(path or os.environ.get("SWORD_PATH") or DEFAULT_SWORD_PATH).expanduser()


def _conf_file(root: pathlib.Path, module: str) -> Optional[pathlib.Path]:
  """The ``mods.d/*.conf`` that declares ``[module]``, if any."""
  conf_dir = root / "mods.d"
  if not conf_dir.is_dir():
    return None
  for conf in sorted(conf_dir.glob("*.conf")):
    try:
      if f"[{module}]" in conf.read_text(encoding="utf-8", errors="replace"):
        return conf
    except OSError:
      continue
  return None


def module_files(path: Optional[PathLike] = None) -> dict[str, pathlib.Path]:
  """Every file of both modules: name relative to the SWORD folder -> path.

  Raises:
    DataNotFoundError: (a ``ModuleNotFoundError``) naming the apt-get and pip
      commands, if either module's ``.conf`` or data files are missing.
  """
  root = sword_path(path)
  files = {}
  for language in (SOURCE_LANGUAGE, TARGET_LANGUAGE):
    source = SOURCES[language]
    module = source.path.rsplit("/", 1)[-1]
    conf = _conf_file(root, module)
    data = [root / source.path / name for name in _DATA_FILES]
    if conf is None or not all(f.is_file() for f in data):
      raise packaged.DataNotFoundError(f"{source.message}; looked in {root}", name=source.package)
    for f in [conf] + data:
      files[f.relative_to(root).as_posix()] = f
  return files


def clean_verse(raw: str) -> str:
  """One verse's OSIS markup as plain text (see the module docstring).

  Args:
    raw: the verse as the module stores it (``clean=False`` in pysword).

  Returns:
    The text with single spaces and no ``¶``; ``""`` for an empty slot.
  """
  text = _TITLE_TAG.sub(" ", raw)  # keep psalm titles and subscriptions as text
  text = _ABUTTING_TAGS.sub(r"\1 ", text)
  text = _USFM_MARKER.sub(" ", text)
  text = _LEFTOVER_TAG.sub(" ", _osis_cleaner().clean(text))
  text = _HEBREW.sub(" ", text.replace("\u00b6", " "))
  return " ".join(text.split())


@functools.lru_cache(maxsize=1)
def _pysword():
  """The ``pysword`` package, with its ``modules`` and ``cleaner`` imported."""
  try:
    import pysword.cleaner  # pylint: disable=import-outside-toplevel
    import pysword.modules  # pylint: disable=import-outside-toplevel
  except ImportError as e:
    raise packaged.DataNotFoundError(SOURCES["reader"].message, name="pysword") from e
  return pysword


@functools.lru_cache(maxsize=1)
def _osis_cleaner():
  return _pysword().cleaner.OSISCleaner()


def strong_numbers(raw: str) -> frozenset[str]:
  """The Strong's numbers a verse's markup tags its words with (footnotes left out).

  Both modules tag their words with the Hebrew or Greek word they translate
  (``<w lemma="strong:H7225">beginning</w>``), so two verses that translate
  the same original share most of them, whatever their language.

  Returns:
    e.g. ``frozenset({"H7225", "H430"})`` (leading zeros dropped); empty for
    a verse without tags.
  """
  return frozenset(f"{letter}{int(number)}"
                   for letter, number in _STRONG.findall(_NOTE.sub(" ", raw)))


def _read_module(modules, module: str, books: Optional[set[str]]
                 ) -> dict[tuple[str, int, int], tuple[str, frozenset[str]]]:
  """``{(book, chapter, verse): (text, Strong's numbers)}`` of one module, in canonical order."""
  bible = modules.get_bible_from_module(module)
  if hasattr(bible, "_decompressed_text"):
    # pysword decompresses a whole book for every verse it reads (3 minutes
    # for both Bibles); the blocks never change, so remembering the last two
    # is safe, and 50 times faster.
    decompress = bible._decompressed_text  # pylint: disable=protected-access
    bible._decompressed_text = functools.lru_cache(maxsize=2)(decompress)
  structure = bible.get_structure().get_books()
  verses = {}
  for testament in ("ot", "nt"):
    for book in structure.get(testament, []):
      if books is not None and book.osis_name not in books:
        continue
      keys = [(book.osis_name, chapter, verse)
              for chapter, length in enumerate(book.chapter_lengths, 1)
              for verse in range(1, length + 1)]
      raws = list(bible.get_iter(books=book.name, clean=False))
      if len(raws) != len(keys):
        raise ValueError(f"module {module} must hold {len(keys)} verses of {book.name}, "
                         f"got {len(raws)}")
      verses.update((key, (clean_verse(raw), strong_numbers(raw)))
                    for key, raw in zip(keys, raws))
  return verses


def _overlap(a: frozenset[str], b: frozenset[str]) -> float:
  return len(a & b) / len(a | b) if a or b else 0.0


def misaligned_chapters(keys: Sequence[tuple[str, int, int]], source: Sequence[str],
                        target: Sequence[str], source_strongs: Sequence[frozenset[str]],
                        target_strongs: Sequence[frozenset[str]]) -> set[tuple[str, int]]:
  """The ``(book, chapter)`` whose verses the two modules number differently.

  A verse is misaligned when either text is empty, or when both carry
  Strong's numbers and the source's share (Jaccard) with the target of the
  same verse is smaller than with the target of the verse before or after
  it (in the order given, across chapters). A chapter with one misaligned
  verse is dropped whole: where numbering departs, the verses around the
  departure are merged or split too.

  Args:
    keys: N verse keys in canonical order.
    source: N texts.
    target: N texts.
    source_strongs: N sets of Strong's numbers (``strong_numbers``).
    target_strongs: N sets.
  """
  n = len(keys)
  bad = set()
  for i, key in enumerate(keys):
    if not source[i] or not target[i]:
      bad.add(key[:2])
    elif source_strongs[i] and target_strongs[i]:
      here = _overlap(source_strongs[i], target_strongs[i])
      if any(_overlap(source_strongs[i], target_strongs[j]) > here
             for j in (i - 1, i + 1) if 0 <= j < n):
        bad.add(key[:2])
  return bad


def verse_pairs(path: Optional[PathLike] = None, *,
                books: Optional[Iterable[str]] = None) -> Pairs:
  """Every aligned verse pair, in canonical order (Genesis 1:1 first), read with pysword.

  Slow (about 5 s): ``load`` caches it.

  Args:
    path: the SWORD folder (holding ``mods.d/`` and ``modules/``); defaults
      to ``$SWORD_PATH`` or ``/usr/share/sword``.
    books: OSIS names of the books to read (``("Gen", "Jonah")``); all 66 if
      None.

  Returns:
    ``Pairs`` of every chapter but the ``misaligned_chapters``.

  Raises:
    DataNotFoundError: if a module or pysword is missing (the message gives
      the commands).
    ValueError: if ``books`` names a book the modules do not have.
  """
  module_files(path)  # the friendly error when a module is missing
  modules = _pysword().modules.SwordModules(str(sword_path(path)))
  modules.parse_modules()
  wanted = None if books is None else set(books)
  es = _read_module(modules, SOURCE_MODULE, wanted)
  en = _read_module(modules, TARGET_MODULE, wanted)
  if wanted is not None:
    found = {book for book, _, _ in es}
    if wanted - found or not found:
      raise ValueError(f"books must be OSIS book names such as 'Gen' or 'Matt', got "
                       f"{sorted(wanted - found) or sorted(wanted)}")
  keys = [key for key in es if key in en]
  columns = [[es[k][0] for k in keys], [en[k][0] for k in keys],
             [es[k][1] for k in keys], [en[k][1] for k in keys]]
  dropped = misaligned_chapters(keys, *columns)
  index = [i for i, key in enumerate(keys) if key[:2] not in dropped]
  return Pairs([columns[0][i] for i in index], [columns[1][i] for i in index],
               [keys[i] for i in index])


def chapter_name(key: tuple[str, int, int]) -> str:
  """The chapter a verse key belongs to, as split: ``("Gen", 1, 1)`` -> ``"Gen.1"``."""
  return f"{key[0]}.{key[1]}"


def split(pairs: Pairs, num_validation: int, num_test: int, seed: int) -> dict[str, Pairs]:
  """``{split: Pairs}`` by ``packaged.split_by_hash`` of the chapter names, order kept.

  Args:
    pairs: N verse pairs.
    num_validation: chapters in validation.
    num_test: chapters in test.
    seed: the split's seed.
  """
  chapters = list(dict.fromkeys(map(chapter_name, pairs.keys)))
  which = dict(zip(chapters, packaged.split_by_hash(chapters, num_validation, num_test, seed)))
  out = {}
  for i, name in enumerate(imdb.SPLITS):
    index = [j for j, key in enumerate(pairs.keys) if which[chapter_name(key)] == i]
    out[name] = Pairs(*([column[j] for j in index] for column in pairs))
  return out


def _read_cache(cache_file: pathlib.Path) -> Optional[Pairs]:
  if not cache_file.is_file():
    return None
  try:
    cached = json.loads(cache_file.read_text(encoding="utf-8"))
    pairs = Pairs(cached["source"], cached["target"], [tuple(k) for k in cached["keys"]])
  except (OSError, ValueError, KeyError, TypeError):
    return None  # an unreadable cache is rebuilt, then overwritten
  if not len(pairs.source) == len(pairs.target) == len(pairs.keys):
    return None
  return pairs


def load(*, cache_dir: Optional[PathLike] = None,
         path: Optional[PathLike] = None) -> dict[str, Pairs]:
  """``{"train" | "validation" | "test": Pairs}``: the verse pairs split by chapter, cached.

  Args:
    cache_dir: where to cache the pairs; defaults to
      ``packaged.default_cache_dir()``. The file is
      ``bible_es_en_<hash>.json``, the hash covering the loader's version
      and every module file's name and bytes.
    path: the SWORD folder; defaults to ``$SWORD_PATH`` or ``/usr/share/sword``.

  Returns:
    Each split's pairs in canonical order (see the module docstring for the
    counts).
  """
  files = module_files(path)
  digest = packaged.source_digest(
      {"loader": _LOADER_VERSION, "modules": [SOURCE_MODULE, TARGET_MODULE]},
      {name: f.read_bytes() for name, f in files.items()})
  cache_file = packaged.cache_path(cache_dir, "bible_es_en", digest, ".json")
  pairs = _read_cache(cache_file)
  if pairs is None:
    pairs = verse_pairs(path)
    packaged.write_atomically(cache_file, json.dumps(pairs._asdict(), ensure_ascii=False))
  return split(pairs, NUM_VALIDATION, NUM_TEST, SPLIT_SEED)
