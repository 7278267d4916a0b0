"""The text-classification task: batching, vocabularies, word2vec starts, and a quick run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from experiments import text_table
from experiments.configs import text_classification as configs
from experiments.tasks import text_classification as task


def test_vocabulary_keeps_frequent_words_and_encode_truncates():
  docs = [["a", "b", "a"], ["a", "c"], ["b", "d", "e", "a"]]
  vocab = task.build_vocab(docs, size=10, min_count=2)
  assert vocab.words == ("a", "b", task.UNK)
  ids, lengths = task.encode(vocab, docs + [[]], max_len=3)
  np.testing.assert_array_equal(lengths, [3, 2, 3, 0])
  assert vocab.decode(ids[2]) == ["b", task.UNK, task.UNK]
  assert task.build_vocab(docs, size=2, min_count=1).words == ("a", task.UNK)


def test_word2vec_variants_need_a_vectors_file(tmp_path):
  config = configs.get_config("rt,bow0,w2v,quick")
  with pytest.raises(ValueError, match="config.model.pretrained"):
    task.validate(config)
  with pytest.raises(ValueError, match="variant"):
    configs.get_config("rt,bow7")
  config = configs.get_config("imdb,gru1,quick")
  config.data.ngrams = 2
  with pytest.raises(ValueError, match="config.data.ngrams"):
    task.validate(config)


def _vectors_file(path, words, dim=16, seed=0):
  vectors = np.random.default_rng(seed).normal(size=(len(words), dim)).astype(np.float32)
  lines = [f"{len(words)} {dim}"] + [w + " " + " ".join(f"{x:.6f}" for x in v)
                                     for w, v in zip(words, vectors)]
  path.write_text("\n".join(lines) + "\n")
  return {w: np.round(v, 6) for w, v in zip(words, vectors)}


@pytest.mark.integration
def test_quick_runs_train_and_start_from_vectors(tmp_path):
  from experiments.datasets import rotten_tomatoes
  del rotten_tomatoes
  vectors = _vectors_file(tmp_path / "vectors.txt", ["the", "film", "good", "zzzunseen"])
  config = configs.get_config("rt,bow0,w2v_frozen,quick")
  config.model.pretrained = str(tmp_path / "vectors.txt")
  task.validate(config)
  lines = []
  final = task.run(config, str(tmp_path / "run"), log=lines.append)
  assert 0.0 <= final["test/accuracy"] <= 1.0 and final["test/loss"] > 0
  # The frozen table still holds the file's vectors for the words it had.
  built, _ = task.build(config, str(tmp_path / "run"))
  params = built.init_params(__import__("jax").random.key(0))
  table = np.asarray(params["frozen"]["embed"])
  from seqjax.data.text import tokenize
  from experiments import datasets
  texts = datasets.load("rotten_tomatoes")["train"][0]
  vocab = task.build_vocab([tokenize(t) for t in texts], config.data.vocab_size,
                           config.data.min_count)
  for word in ("the", "film", "good"):
    np.testing.assert_allclose(table[vocab.words.index(word)], vectors[word], atol=1e-6)
  assert any(line.startswith("final: rotten_tomatoes") for line in lines)


def test_markdown_table_marks_missing_and_cut_runs():
  done = {"metrics": {"test/accuracy": 0.9012}, "train_seconds": 90.0, "step": 10,
          "num_steps": 10}
  cut = dict(done, step=5)
  text = text_table.markdown([("fastText", {"imdb": done, "rt": cut, "bbc": None}),
                              ("BiGRU", {"imdb": {"missing": True}, "rt": {"failed": 1},
                                         "bbc": done})],
                             ["imdb", "rt", "bbc"])
  row = text.splitlines()[2]
  assert "90.1% (1.5)" in row and "5/10 steps" in row and "n/a" in row
  assert text.splitlines()[3].split(" | ")[1:3] == ["not run", "failed"]
  json.dumps(text)


@pytest.mark.integration
def test_merge_fills_cells_without_a_run_and_json_keeps_them(tmp_path):
  import subprocess
  import sys
  earlier = {"cells": {
      "imdb,fasttext": {"metrics": {"test/accuracy": 0.905}, "train_seconds": 78.0},
      "rt,gru2,w2v": {"metrics": {"test/accuracy": 0.78}, "train_seconds": 90.0,
                      "step": 10, "num_steps": 20}}}
  (tmp_path / "earlier.json").write_text(json.dumps(earlier))
  out = subprocess.run(
      [sys.executable, "-m", "experiments.text_table", f"--workdir={tmp_path / 'runs'}",
       "--collect_only", "--rows=fasttext,gru2", "--datasets=imdb,rt",
       f"--merge={tmp_path / 'earlier.json'}", f"--json={tmp_path / 'now.json'}"],
      capture_output=True, text=True, check=True).stdout
  rows = {line.split(" | ")[0].strip("| "): line for line in out.splitlines()
          if line.startswith("| ")}
  assert rows["fastText bigrams"].split(" | ")[1:] == ["90.5% (1.3)", "not run |"]
  assert "78.0% (1.5, 10/20 steps)" in rows["BiGRU x2, word2vec"]
  assert rows["BiGRU x2"].count("not run") == 2
  assert json.loads((tmp_path / "now.json").read_text()) == earlier
  # Without --collect_only a merged cell is still not trained again.
  out = subprocess.run(
      [sys.executable, "-m", "experiments.text_table", f"--workdir={tmp_path / 'runs'}",
       "--rows=fasttext", "--datasets=imdb", f"--merge={tmp_path / 'earlier.json'}"],
      capture_output=True, text=True, check=True).stdout
  assert "| fastText bigrams | 90.5% (1.3) |" in out
  assert not (tmp_path / "runs" / "text_classification").exists()
  bad = subprocess.run(
      [sys.executable, "-m", "experiments.text_table", f"--workdir={tmp_path}",
       "--collect_only", f"--merge={tmp_path / 'runs'}"], capture_output=True, text=True)
  assert bad.returncode != 0 and "--merge must be a JSON file" in bad.stderr
