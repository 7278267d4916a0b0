"""Every public function and class of the library has a docstring that says something."""

import importlib
import inspect
import pkgutil

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


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_has_docstring(name):
  doc = inspect.getdoc(PUBLIC[name]) or ""
  assert len(doc) >= 20, f"{name} needs a docstring"


CELL_FACTORIES = [n for n, obj in PUBLIC.items()
                  if n.startswith("seqjax.cells.") and inspect.isfunction(obj)
                  and inspect.signature(obj).return_annotation in ("Cell", seqjax.Cell)]


def test_cell_factories_found():
  assert len(CELL_FACTORIES) == 10, CELL_FACTORIES


@pytest.mark.parametrize("name", CELL_FACTORIES)
def test_cell_docstrings_give_equations_and_shapes(name):
  doc = inspect.getdoc(PUBLIC[name])
  assert "_t" in doc and "=" in doc, f"{name}: no update equations"
  assert "(*B" in doc, f"{name}: no shapes"
