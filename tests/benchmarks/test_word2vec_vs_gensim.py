"""Smoke test of benchmarks/word2vec_vs_gensim.py at a tiny size: table, JSON, saved vectors."""

import json
import math
import pathlib
import subprocess
import sys

import pytest

pytest.importorskip("gensim")

from seqjax import word_vectors  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def result(tmp_path_factory):
  folder = tmp_path_factory.mktemp("word2vec_vs_gensim")
  completed = subprocess.run(
      [sys.executable, str(ROOT / "benchmarks" / "word2vec_vs_gensim.py"), "--models", "sg,cbow",
       "--max_sentences", "400", "--epochs", "1", "--min_count", "3", "--vector_size", "16",
       "--batch_size", "32", "--steps_per_call", "8", "--json", str(folder / "result.json"),
       "--save_dir", str(folder)],
      cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert completed.returncode == 0, completed.stderr[-3000:]
  return json.loads((folder / "result.json").read_text()), completed.stdout, folder


def test_a_row_per_library_and_model(result):
  data, stdout, _ = result
  assert data["benchmark"] == "word2vec_vs_gensim"
  assert data["corpus"]["sentences"] == 400 and data["corpus"]["tokens"] > 50_000
  rows = {(row["model"], row["library"]): row for row in data["rows"]}
  assert set(rows) == {(m, lib) for m in ("sg", "cbow") for lib in ("seqjax", "gensim")}
  for row in rows.values():
    assert row["train_seconds"] > 0 and row["train_cpu_seconds"] > 0
    assert row["words_per_second"] == pytest.approx(
        data["corpus"]["tokens"] / row["train_seconds"])
    analogy = row["analogy"]
    assert 0 <= analogy["accuracy"] <= 1 and analogy["scored"] >= 0
    assert analogy["semantic_scored"] + analogy["syntactic_scored"] == analogy["scored"]
    assert len(analogy["sections"]) == 14
    for name in ("wordsim353", "simlex999"):
      rho = row[name]["spearman"]
      assert math.isnan(rho) or -1 <= rho <= 1
  for model in ("sg", "cbow"):
    assert rows[(model, "seqjax")]["vocabulary"] == rows[(model, "gensim")]["vocabulary"]
    profile = rows[(model, "seqjax")]["profile"]
    assert profile["pipeline_words_per_second"] > 0 and profile["step_words_per_second"] > 0
  assert "| sg | seqjax |" in stdout and "seqjax / gensim" in stdout


def test_both_libraries_ran_the_same_settings(result):
  data, _, _ = result
  for comparison in data["comparisons"]:
    assert comparison["same_vocabulary"]
    assert comparison["words_per_second_ratio"] > 0
  for model, sg in (("sg", 1), ("cbow", 0)):
    rows = {row["library"]: row for row in data["rows"] if row["model"] == model}
    ours, theirs = rows["seqjax"]["settings"], rows["gensim"]["settings"]
    assert theirs["sg"] == sg and theirs["hs"] == 0 and theirs["cbow_mean"] == 1
    assert ours["model"] == ("skipgram" if sg else "cbow")
    for key in ("vector_size", "window", "negative", "sample", "alpha", "min_alpha", "epochs",
                "ns_exponent"):
      assert ours[key] == pytest.approx(theirs[key]), key
    assert ours["decay"] == theirs["decay"] == "sentences"
    assert theirs["min_count"] == 3 and theirs["workers"] == 2


def test_the_saved_vectors_are_seqjaxs(result):
  data, _, folder = result
  for model in ("sg", "cbow"):
    vectors = word_vectors.load_word2vec_format(folder / f"seqjax_{model}.txt")
    row = next(r for r in data["rows"] if r["model"] == model and r["library"] == "seqjax")
    assert vectors.vectors.shape == (row["vocabulary"], 16)
