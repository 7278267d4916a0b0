"""Where preprocessed data is cached, and how cache files are written."""

from __future__ import annotations

import os
import pathlib
import tempfile
import warnings
from typing import Union


def default_cache_dir() -> pathlib.Path:
  """Where seqjax caches preprocessed data: ``$SEQJAX_CACHE`` or ``~/.cache/seqjax``."""
  return pathlib.Path(os.environ.get("SEQJAX_CACHE") or
                      os.path.join("~", ".cache", "seqjax")).expanduser()


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
