"""Byte-level language modelling on a Wikipedia XML dump, as in enwik8.

enwik8 (the first 10^8 bytes of an English Wikipedia XML dump, used by the
Hutter Prize and by character-level language models since Graves 2013,
https://arxiv.org/abs/1308.0850) cannot be downloaded here. Its stand-in is
real data that installs offline: the ``gensim`` package ships, for its own
tests, a shortened English Wikipedia dump of the same kind::

  gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2

1.7 MB compressed, 6,089,746 bytes of raw XML: 206 ``<page>`` elements
(articles in MediaWiki markup, with titles, revision ids, timestamps,
contributors and SHA-1s), 201 distinct byte values. The package is never
imported (``import gensim`` takes seconds and pulls in scipy); only its folder
is located. A user with the real enwik8 (or any other dump) passes ``path=``;
the file may be raw, bz2, gzip or a single-member zip (enwik8 ships as
``enwik8.zip``), recognised by its first bytes, not its name.

Preprocessing follows enwik8: none. Tokens are the file's bytes, ids
``0 .. 255`` (``VOCAB_SIZE``), so multi-byte UTF-8 characters are several
tokens and the XML markup is part of the text to model. The split is
contiguous, in file order, like enwik8's 90M / 5M / 5M: the last two
twentieths of the file (``len // 20`` bytes each) are validation then test,
everything before is training. With the gensim file: 5,480,772 train,
304,487 validation and 304,487 test bytes. Both held-out parts therefore come
from the end of the dump and cut through a page where they start, as in
enwik8. Figures measured on this 6 MB file are not comparable to published
enwik8 numbers (a sixteenth of the data, other articles); say so wherever
one is quoted.

Decompressing the file takes about 0.2 s on a CPU core, so nothing is cached.
"""

from __future__ import annotations

import bz2
import gzip
import pathlib
import zipfile
from typing import Optional

import numpy as np

from experiments.datasets import packaged
from experiments.datasets.packaged import PathLike
from seqjax.data.vocab import CharVocab

#: What ``experiments.datasets`` knows this corpus as: text for language models.
KIND = "text"
UNIT = "byte"  # what a token is: bits per byte are reported
VOCAB = CharVocab

#: Number of token ids: every byte value, whether or not it occurs.
VOCAB_SIZE = 256

#: Split names, in file order.
SPLITS: tuple[str, ...] = ("train", "validation", "test")

#: The dump's file name inside ``gensim/test/test_data``.
WIKI_FILE = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"

#: Where the dump ships (as gensim's test data).
SOURCE = packaged.Source("gensim", f"test/test_data/{WIKI_FILE}",
                         what="the Wikipedia dump", install="pip install gensim")


def corpus_path() -> pathlib.Path:
  """The Wikipedia dump (``WIKI_FILE``) inside the installed ``gensim`` package.

  Returns:
    Path of the ``.bz2`` file.

  Raises:
    DataNotFoundError: (a ``ModuleNotFoundError``) if ``gensim`` is not
      installed, or is installed without its test data, with the install
      command in the message.
  """
  return packaged.locate(SOURCE)


def read_dump(path: PathLike) -> bytes:
  """The bytes of a dump, decompressed if it is bz2, gzip or zip.

  Args:
    path: a raw file (e.g. ``enwik8``), or one compressed with bz2, gzip or
      zip (a zip must hold exactly one file, as ``enwik8.zip`` does). The
      format is recognised from the first bytes.

  Returns:
    The uncompressed contents.

  Raises:
    FileNotFoundError: if ``path`` is not an existing file (the message names
      it).
    ValueError: for a zip archive that does not hold exactly one file.
  """
  path = pathlib.Path(path).expanduser()
  if not path.is_file():
    raise FileNotFoundError(f"no Wikipedia dump at {str(path)!r}: path must be "
                            f"an existing file (raw, .bz2, .gz or .zip)")
  with open(path, "rb") as f:
    magic = f.read(4)
  if magic.startswith(b"BZh"):
    with bz2.open(path, "rb") as f:
      return f.read()
  if magic.startswith(b"\x1f\x8b"):
    with gzip.open(path, "rb") as f:
      return f.read()
  if magic == b"PK\x03\x04":
    with zipfile.ZipFile(path) as archive:
      members = [m for m in archive.infolist() if not m.is_dir()]
      if len(members) != 1:
        raise ValueError(f"the zip archive {str(path)!r} must hold exactly one "
                         f"file (as enwik8.zip does), got "
                         f"{[m.filename for m in members]}")
      return archive.read(members[0])
  return path.read_bytes()


def split_sizes(num_bytes: int) -> dict[str, int]:
  """Bytes per split for a file of ``num_bytes``: 90% / 5% / 5%, contiguous.

  Args:
    num_bytes: the length of the whole file.

  Returns:
    ``{"train": n - 2 * (n // 20), "validation": n // 20, "test": n // 20}``;
    for enwik8 (10^8 bytes) exactly 90M / 5M / 5M.
  """
  if (isinstance(num_bytes, bool) or not isinstance(num_bytes, (int, np.integer))
      or num_bytes < 0):
    raise ValueError(f"num_bytes must be a non-negative int, got {num_bytes!r}")
  held_out = int(num_bytes) // 20
  return {"train": int(num_bytes) - 2 * held_out, "validation": held_out,
          "test": held_out}


def load_wiki_bytes(*, path: Optional[PathLike] = None) -> dict[str, np.ndarray]:
  """Train / validation / test bytes of the Wikipedia dump, enwik8-style.

  Args:
    path: the dump to read (raw, bz2, gzip or zip); defaults to
      ``corpus_path()``, the file shipped with ``gensim``.

  Returns:
    ``{"train": (N_train,), "validation": (N_valid,), "test": (N_test,)}``,
    uint8 arrays of token ids (the bytes themselves, vocabulary
    ``VOCAB_SIZE``), whose concatenation in this order is the file (sizes from
    ``split_sizes``). The three arrays are writable views of one buffer.

  Raises:
    DataNotFoundError: if ``path`` is None and ``gensim`` is missing.
    FileNotFoundError: if an explicit ``path`` does not exist.
  """
  data = read_dump(corpus_path() if path is None else path)
  # bytearray makes the buffer writable, so the arrays behave like any other.
  stream = np.frombuffer(bytearray(data), dtype=np.uint8)
  sizes = split_sizes(len(stream))
  splits, start = {}, 0
  for split in SPLITS:
    splits[split] = stream[start:start + sizes[split]]
    start += sizes[split]
  return splits


def load_wiki_documents(*, path: Optional[PathLike] = None
                        ) -> dict[str, list[np.ndarray]]:
  """The splits of ``load_wiki_bytes`` as documents for the char-LM trainer.

  One document per split, the whole split, rather than one per ``<page>``:
  the enwik8 protocol reads each split as a single stream (a model's context
  runs across page boundaries, and the split points cut through pages), and
  cutting at pages would drop the bytes between them (the ``<siteinfo>``
  header, indentation) or need a rule for where they belong. Given to
  ``seqjax.data.streams.StreamBatches``, one document means no resets inside
  a split, as in enwik8 training.

  Args:
    path: as for ``load_wiki_bytes``.

  Returns:
    ``{"train": [ids], "validation": [ids], "test": [ids]}``, each ``ids`` an
    int32 array (N_split,) equal to that split's bytes.
  """
  return {split: [ids.astype(np.int32)]
          for split, ids in load_wiki_bytes(path=path).items()}


def load(*, cache_dir: Optional[PathLike] = None
         ) -> tuple[dict[str, list[np.ndarray]], CharVocab]:
  """The splits as one document each, in a vocabulary of the training bytes.

  Bytes are read as Latin-1 characters (one character per byte), so a
  ``CharVocab`` applies: its ids are the distinct training bytes, sorted, then
  an unknown symbol for bytes only held-out text has.

  Args:
    cache_dir: unused (decompressing takes 0.2 s: nothing is cached).

  Returns:
    ``(documents, vocab)``: ``{"train": [ids], "validation": [ids], "test":
    [ids]}``, each one int32 array over the whole split (see
    ``load_wiki_documents`` for why one document), and the vocabulary.
  """
  del cache_dir
  texts = {split: data.tobytes().decode("latin-1") for split, data in load_wiki_bytes().items()}
  vocab = CharVocab.from_text(texts["train"])
  return {split: [vocab.encode(text)] for split, text in texts.items()}, vocab


def encode(vocab: CharVocab, text: str) -> np.ndarray:
  """A prime for sampling as ids: its UTF-8 bytes."""
  return vocab.encode(text.encode("utf-8").decode("latin-1"))


def decode(vocab: CharVocab, ids) -> str:
  """Sampled ids as text: the bytes decoded as UTF-8 (broken sequences replaced)."""
  return vocab.decode(ids).encode("latin-1", errors="replace").decode("utf-8", errors="replace")
