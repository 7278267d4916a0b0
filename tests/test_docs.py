"""Every public function and class of the library has a docstring that says something,
and the README lists every cell."""

import importlib
import inspect
import pathlib
import pkgutil
import re

import pytest

import seqjax


def _public_objects():
  for info in pkgutil.walk_packages(seqjax.__path__, "seqjax."):
    if any(part.startswith("_") for part in info.name.split(".")):
      continue
    module = importlib.import_module(info.name)
    for name, obj in vars(module).items():
      if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
        continue
      if inspect.isfunction(obj) or inspect.isclass(obj):
        yield f"{info.name}.{name}", obj


PUBLIC = dict(_public_objects())


def test_the_walk_finds_the_cells():
  assert {"seqjax.cells.lstm.lstm", "seqjax.scan.unroll", "seqjax.layers.stacked"} <= set(PUBLIC)


def _undocumented_params(obj):
  """Parameters of the function `obj` (bar self/cls and `_`-names) its docstring never names."""
  doc = inspect.getdoc(obj) or ""
  params = [p for p in inspect.signature(obj).parameters
            if p not in ("self", "cls") and not p.startswith("_")]
  return [p for p in params if not re.search(rf"(?<![\w.]){re.escape(p)}(?!\w)", doc)]


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_has_docstring(name):
  obj = PUBLIC[name]
  doc = inspect.getdoc(obj) or ""
  assert len(doc) >= 20, f"{name} needs a docstring"
  if inspect.isclass(obj):
    return
  missing = _undocumented_params(obj)
  assert missing == [], f"{name}: docstring never names parameters {missing}"


# Functions of seqjax.cells that return a cell someone else built or chose
# rather than define one (no equations of their own).
RESOLVERS = {"seqjax.cells.addressing.controller"}
CELL_FACTORIES = [n for n, obj in PUBLIC.items()
                  if n.startswith("seqjax.cells.") and inspect.isfunction(obj)
                  and inspect.signature(obj).return_annotation in ("Cell", seqjax.Cell)
                  and n not in RESOLVERS]


def _returns_cell(obj):
  return inspect.isfunction(obj) and inspect.signature(obj).return_annotation in ("Cell", seqjax.Cell)


EXPORTED_FACTORIES = sorted(n for n in seqjax.cells.__all__ if _returns_cell(getattr(seqjax.cells, n)))


def test_cell_factories_found():
  """The walk finds every factory `seqjax.cells` exports, and only those."""
  assert "lstm" in EXPORTED_FACTORIES
  assert sorted(n.rsplit(".", 1)[1] for n in CELL_FACTORIES) == EXPORTED_FACTORIES


def test_readme_cell_table_names_only_existing_factories():
  """No stale rows. (A new cell must not need a README edit: one file plus one
  test file is the whole of adding a cell, so the table may lag behind
  ``seqjax.cells.__all__``, the complete list.)"""
  readme = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()
  table = readme.split("### Cells", 1)[1].split("\n#", 1)[0]
  listed = set(re.findall(r"`(\w+)\([^`]*\)`", table))
  factories = {n for n in listed if n[0].islower()}   # carries (LSTMCarry(h, c)) aside
  assert factories and sorted(factories - set(EXPORTED_FACTORIES)) == []


@pytest.mark.parametrize("name", CELL_FACTORIES)
def test_cell_docstrings_give_equations_and_shapes(name):
  doc = inspect.getdoc(PUBLIC[name])
  assert "_t" in doc and "=" in doc, f"{name}: no update equations"
  assert "(*B" in doc, f"{name}: no shapes"
