"""experiments/word2vec_explore.py on planted vectors whose answers are known."""

from __future__ import annotations

import numpy as np

from experiments import word2vec_explore as explore
from seqjax import word_vectors


def _planted(tmp_path):
  rng = np.random.default_rng(0)
  dim = 64
  royal, male, female, capital = (rng.normal(size=dim) for _ in range(4))
  planted = {"king": royal + male, "queen": royal + female, "man": male, "woman": female}
  for country, city in explore.CAPITALS[:4]:
    base = rng.normal(size=dim)
    planted[country], planted[city] = base, base + capital
  planted["francia"] = planted["france"] + 0.1 * rng.normal(size=dim)  # a near twin
  words = list(planted) + [f"noise{i}" for i in range(50)]
  vectors = np.stack(list(planted.values()) + [rng.normal(size=dim) for _ in range(50)])
  path = tmp_path / "vectors.txt"
  word_vectors.WordVectors.create(words, vectors).save_word2vec_format(path)
  return path


def test_tables_and_picture(tmp_path, capsys):
  path = _planted(tmp_path)
  png = tmp_path / "capitals.png"
  explore.main(["--vectors", str(path), "--png", str(png), "--out", str(tmp_path / "t.md")])
  text = (tmp_path / "t.md").read_text()
  rows = {line.split(" | ")[0].strip("| "): line for line in text.splitlines()}
  assert rows["king - man + woman"].split(" | ")[1].startswith("queen (")
  assert rows["france"].split(" | ")[1].startswith("francia (")
  assert "(not in the vocabulary)" in rows["xbox"]
  assert png.stat().st_size > 10_000
  assert "(4 country-capital pairs)" in capsys.readouterr().out
