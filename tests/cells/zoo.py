"""Every cell configuration the generic protocol tests run over.

Nothing here is kept by hand: each ``tests/cells/test_<family>.py`` declares
``PROTOCOL_CELLS = {name: build(dtype) -> Cell}`` for its cells, and this
module collects them, so a new cell brings its own entries with its own test
file. Which cells have a fast path is read from the cells themselves.
"""

import importlib
import pathlib

import jax.numpy as jnp


def _collect():
  cells = {}
  for path in sorted(pathlib.Path(__file__).parent.glob("test_*.py")):
    if "\nPROTOCOL_CELLS = {" not in path.read_text():
      continue  # e.g. the protocol suite itself, which imports this module
    module = importlib.import_module(f"tests.cells.{path.stem}")
    for name, build in getattr(module, "PROTOCOL_CELLS", {}).items():
      if name in cells:
        raise ValueError(f"protocol cell {name!r} declared twice ({path.name})")
      cells[name] = build
  return cells


CELLS = _collect()


def make(name, dtype=jnp.float32):
  return CELLS[name](dtype)


# Cells that define a whole-sequence fast path (``Cell.fast``), derived.
WITH_FAST_PATH = sorted(name for name in CELLS if make(name).fast is not None)
