"""Every notebook in colabs/ is committed without outputs and its code runs.

Shell and magic lines (``!``/``%``) are skipped and ``# @param`` settings named
in SMALL are shrunk so the run stays quick.
"""

import json
import pathlib
import re

import pytest

COLABS = sorted((pathlib.Path(__file__).resolve().parents[1] / "colabs").glob("*.ipynb"))
SMALL = {"steps": "20", "length": "8", "hidden_size": "8", "max_documents": "1500",
         "epochs": "1"}


def _code(notebook):
  for cell in notebook["cells"]:
    if cell["cell_type"] == "code":
      yield "".join(cell["source"])


def test_there_are_notebooks():
  assert COLABS


@pytest.mark.parametrize("path", COLABS, ids=lambda p: p.name)
def test_outputs_are_stripped(path):
  notebook = json.loads(path.read_text())
  for cell in notebook["cells"]:
    if cell["cell_type"] == "code":
      assert cell["outputs"] == [] and cell["execution_count"] is None


@pytest.mark.parametrize("path", COLABS, ids=lambda p: p.name)
@pytest.mark.usefixtures("optax_promotion")  # calls optax directly
def test_notebook_runs(path):
  namespace = {}
  for source in _code(json.loads(path.read_text())):
    lines = [l for l in source.splitlines() if not l.lstrip().startswith(("!", "%"))]
    source = "\n".join(lines)
    for name, value in SMALL.items():
      source = re.sub(rf"^{name} = .*# @param.*$", f"{name} = {value}", source, flags=re.M)
    exec(compile(source, str(path), "exec"), namespace)
