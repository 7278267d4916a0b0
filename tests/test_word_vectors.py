"""seqjax.word_vectors against gensim's KeyedVectors on the same vectors, and the file format."""

from __future__ import annotations

import numpy as np
import pytest

from seqjax import word_vectors
from seqjax.word_vectors import WordVectors

gensim = pytest.importorskip("gensim")
from gensim.models import KeyedVectors  # noqa: E402
from gensim.test.utils import datapath  # noqa: E402

QUESTIONS = datapath("questions-words.txt")


def _keyed(vectors: WordVectors) -> KeyedVectors:
  keyed = KeyedVectors(vectors.vectors.shape[1])
  keyed.add_vectors(list(vectors.words), vectors.vectors)
  return keyed


def _random_vectors(size=200, dim=16, seed=0):
  rng = np.random.default_rng(seed)
  return WordVectors.create([f"w{i}" for i in range(size)],
                            rng.normal(size=(size, dim)).astype(np.float32))


# --------------------------------------------------------------------------- file format


def test_text_format_round_trips_through_gensim(tmp_path):
  vectors = _random_vectors()
  path = tmp_path / "seqjax.txt"
  vectors.save_word2vec_format(path)
  assert path.read_text().splitlines()[0] == "200 16"
  keyed = KeyedVectors.load_word2vec_format(str(path))
  assert tuple(keyed.index_to_key) == vectors.words
  np.testing.assert_array_equal(keyed.vectors, vectors.vectors)  # 9 digits: exact float32
  back = WordVectors.load_word2vec_format(path)
  assert back.words == vectors.words and back.vectors.dtype == np.float32
  np.testing.assert_array_equal(back.vectors, vectors.vectors)


@pytest.mark.parametrize("binary", [False, True])
def test_gensims_files_load(tmp_path, binary):
  vectors = _random_vectors(seed=1)
  keyed = _keyed(vectors)
  path = tmp_path / "gensim.bin"
  keyed.save_word2vec_format(str(path), binary=binary)
  back = word_vectors.load_word2vec_format(path, binary=binary)
  assert back.words == vectors.words
  np.testing.assert_allclose(back.vectors, vectors.vectors, rtol=1e-6)


def test_binary_format_round_trips_through_gensim(tmp_path):
  vectors = WordVectors.create(["über", "b", "c'est"],
                               np.arange(12, dtype=np.float32).reshape(3, 4))
  path = tmp_path / "seqjax.bin"
  word_vectors.save_word2vec_format(vectors, path, binary=True)
  keyed = KeyedVectors.load_word2vec_format(str(path), binary=True)
  assert tuple(keyed.index_to_key) == vectors.words
  np.testing.assert_array_equal(keyed.vectors, vectors.vectors)
  np.testing.assert_array_equal(word_vectors.load_word2vec_format(path, binary=True).vectors,
                                vectors.vectors)
  # word2vec.c ends each binary vector with a newline: read too.
  raw = b"2 2\nab " + np.array([1, 2], "<f4").tobytes() + b"\ncd " + np.array(
      [3, 4], "<f4").tobytes() + b"\n"
  (tmp_path / "c.bin").write_bytes(raw)
  back = word_vectors.load_word2vec_format(tmp_path / "c.bin", binary=True)
  assert back.words == ("ab", "cd") and back.vectors.tolist() == [[1, 2], [3, 4]]


def test_bad_files_and_words_raise(tmp_path):
  with pytest.raises(ValueError, match="whitespace"):
    WordVectors.create(["a b"], np.zeros((1, 2))).save_word2vec_format(tmp_path / "x.txt")
  (tmp_path / "header.txt").write_text("three 2\na 1 2\n")
  with pytest.raises(ValueError, match="first line"):
    word_vectors.load_word2vec_format(tmp_path / "header.txt")
  (tmp_path / "short.txt").write_text("3 2\na 1 2\nb 3 4\n")
  with pytest.raises(ValueError, match="expected 3 words"):
    word_vectors.load_word2vec_format(tmp_path / "short.txt")
  (tmp_path / "wide.txt").write_text("1 2\na 1 2 3\n")
  with pytest.raises(ValueError, match="line 2"):
    word_vectors.load_word2vec_format(tmp_path / "wide.txt")
  with pytest.raises(ValueError, match="one row per word"):
    WordVectors.create(["a", "b"], np.zeros((3, 2)))


# --------------------------------------------------------------------------- neighbours


@pytest.mark.parametrize("positive, negative", [(["w3"], []), (["w1", "w7"], ["w2"]),
                                                (["w5", "w9", "w11"], ["w4", "w0"])])
def test_most_similar_is_gensims(positive, negative):
  vectors = _random_vectors()
  keyed = _keyed(vectors)
  for restrict in (None, 120):
    ours = word_vectors.most_similar(vectors, positive, negative, topn=10, restrict_vocab=restrict)
    theirs = keyed.most_similar(positive=positive, negative=negative, topn=10,
                                restrict_vocab=restrict)
    assert [w for w, _ in ours] == [w for w, _ in theirs]
    np.testing.assert_allclose([s for _, s in ours], [s for _, s in theirs], rtol=1e-5)
  ours = word_vectors.most_similar(vectors, positive, negative, topn=10, method="3cosmul")
  theirs = keyed.most_similar_cosmul(positive=positive, negative=negative, topn=10)
  assert [w for w, _ in ours] == [w for w, _ in theirs]
  np.testing.assert_allclose([s for _, s in ours], [s for _, s in theirs], rtol=1e-5)


def test_analogy_is_vector_arithmetic():
  rng = np.random.default_rng(0)
  table = {w: rng.normal(size=8) for w in ("man", "woman", "boy", "girl", "king", "cat", "dog")}
  table["queen"] = table["king"] - table["man"] + table["woman"] + 0.01 * rng.normal(size=8)
  vectors = WordVectors.create(list(table), np.array(list(table.values()), np.float32))
  for method in word_vectors.METHODS:
    assert word_vectors.analogy(vectors, "king", "man", "woman", method=method)[0][0] == "queen"
  with pytest.raises(KeyError, match="prince"):
    word_vectors.analogy(vectors, "prince", "man", "woman")
  with pytest.raises(ValueError, match="method"):
    word_vectors.most_similar(vectors, ["king"], method="3coswhat")


# --------------------------------------------------------------------------- analogies


def _analogy_vectors(seed=0, dim=24):
  """Every word of questions-words.txt as written, lower-case variants after them, fillers;
  two sections planted (b = a + offset) so that some answers are right."""
  sections, words = {}, []
  name = None
  for line in open(QUESTIONS, encoding="utf-8"):
    if line.startswith(": "):
      name = line[2:].strip()
      sections[name] = []
      continue
    quad = line.split()
    sections[name].append(quad)
    words.extend(quad)
  words = list(dict.fromkeys(words))
  rng = np.random.default_rng(seed)
  rng.shuffle(words)
  variants = [w.lower() for w in words if w.lower() != w][:40]
  fillers = [f"filler{i}" for i in range(100)]
  everything = words + [w for w in variants if w not in words] + fillers
  table = {w: rng.normal(size=dim) for w in everything}
  for planted in ("capital-common-countries", "gram3-comparative"):
    offset = 3 * rng.normal(size=dim)
    for a, b, c, d in sections[planted]:
      table[b] = table[a] + offset + 0.3 * rng.normal(size=dim)
      table[d] = table[c] + offset + 0.3 * rng.normal(size=dim)
  return WordVectors.create(everything, np.array([table[w] for w in everything], np.float32))


@pytest.mark.parametrize("restrict_vocab, case_insensitive", [(600, True), (800, False)])
def test_analogies_score_exactly_gensims_questions(restrict_vocab, case_insensitive):
  vectors = _analogy_vectors()
  keyed = _keyed(vectors)
  score, sections = keyed.evaluate_word_analogies(QUESTIONS, restrict_vocab=restrict_vocab,
                                                  case_insensitive=case_insensitive)
  ours = word_vectors.evaluate_analogies(vectors, QUESTIONS, restrict_vocab=restrict_vocab,
                                         case_insensitive=case_insensitive, batch_size=256)
  theirs = {s["section"]: (len(s["correct"]), len(s["incorrect"])) for s in sections}
  total = theirs.pop("Total accuracy")
  assert {s.name: (s.correct, s.incorrect) for s in ours.sections} == theirs
  assert (ours.correct, ours.scored - ours.correct) == total
  assert ours.accuracy == pytest.approx(score)
  assert 0.02 < ours.accuracy < 0.9 and ours.skipped > 0  # right and wrong, scored and skipped
  semantic = [s for s in ours.sections if not s.name.startswith("gram")]
  assert [s.name for s in semantic] == ["capital-common-countries", "capital-world", "currency",
                                        "city-in-state", "family"]
  assert ours.semantic_scored == sum(s.total for s in semantic)
  assert ours.semantic_scored + ours.syntactic_scored == ours.scored
  assert ours.semantic_accuracy == pytest.approx(sum(s.correct for s in semantic)
                                                 / ours.semantic_scored)


def test_analogies_with_3cosmul_follow_most_similar_cosmul():
  vectors = _analogy_vectors(seed=1)
  vectors = WordVectors(vectors.words[:300], vectors.vectors[:300])
  keyed = _keyed(vectors)
  ours = word_vectors.evaluate_analogies(vectors, QUESTIONS, restrict_vocab=300,
                                         method="3cosmul")
  index = {w.upper(): w for w in reversed(vectors.words)}
  correct = scored = 0
  for line in open(QUESTIONS, encoding="utf-8"):
    quad = [w.upper() for w in line.split()]
    if line.startswith(": ") or not all(w in index for w in quad):
      continue
    a, b, c, expected = quad
    best = next(w for w, _ in keyed.most_similar_cosmul(positive=[index[b], index[c]],
                                                       negative=[index[a]], topn=5)
                if w.upper() not in (a, b, c))
    correct += best.upper() == expected
    scored += 1
  assert (ours.correct, ours.scored) == (correct, scored) and scored > 20


def test_nothing_scored_is_zero_as_gensim():
  vectors = _random_vectors(size=30)
  score = word_vectors.evaluate_analogies(vectors, QUESTIONS)
  assert score.scored == 0 and score.accuracy == 0.0 and score.skipped == 19544


# --------------------------------------------------------------------------- similarity


@pytest.mark.parametrize("name", ["wordsim353.tsv", "simlex999.txt"])
def test_similarity_is_gensims(name):
  words = []
  for line in open(datapath(name), encoding="utf-8"):
    if not line.startswith("#"):
      words.extend(line.split("\t")[:2])
  words = list(dict.fromkeys(words))
  rng = np.random.default_rng(0)
  kept = [w for w in words if rng.random() > 0.1] + ["TIGER", "Cat"]  # skips and case variants
  vectors = WordVectors.create(kept, rng.normal(size=(len(kept), 12)).astype(np.float32))
  pearson, spearman, oov_ratio = _keyed(vectors).evaluate_word_pairs(datapath(name))
  ours = word_vectors.evaluate_similarity(vectors, datapath(name))
  assert ours.spearman == pytest.approx(spearman[0], abs=1e-9)
  assert ours.pearson == pytest.approx(pearson[0], rel=1e-5)
  assert ours.oov_ratio == pytest.approx(oov_ratio) and ours.skipped > 0
  total = 353 if name == "wordsim353.tsv" else 999
  assert ours.pairs + ours.skipped == total


def test_similarity_without_known_pairs_raises():
  with pytest.raises(ValueError, match="no pair"):
    word_vectors.evaluate_similarity(_random_vectors(size=5), datapath("wordsim353.tsv"))
