"""seqjax.word2vec against numpy references, jax.grad, gensim's formulas and a planted corpus."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax import word2vec
from seqjax.word2vec import CBOWBatch, SkipGramBatch, Word2VecConfig, Word2VecParams

# --------------------------------------------------------------------------- helpers


def _sigmoid(x):
  return 1 / (1 + np.exp(-x))


def _params(vocab_size=7, size=4, seed=0):
  rng = np.random.default_rng(seed)
  return Word2VecParams(jnp.asarray(rng.normal(size=(vocab_size, size)), jnp.float32),
                        jnp.asarray(rng.normal(size=(vocab_size, size)), jnp.float32))


def _skipgram_batch():
  # Example 1 repeats example 0's centre (their W_in changes add up); example
  # 2 draws its own target as a noise word (skipped); example 3 is padding.
  return SkipGramBatch(centres=jnp.array([1, 1, 4, 6], jnp.int32),
                       contexts=jnp.array([2, 3, 5, 0], jnp.int32),
                       negatives=jnp.array([[0, 6], [2, 2], [5, 1], [3, 4]], jnp.int32),
                       mask=jnp.array([1, 1, 1, 0], jnp.float32))


def _numpy_skipgram(params, batch, lr):
  """word2vec.c's per-pair arithmetic, every pair computed from the same tables."""
  w_in, w_out = (np.asarray(t, np.float64) for t in params)
  new_in, new_out, loss = w_in.copy(), w_out.copy(), 0.0
  for centre, context, negatives, mask in zip(*(np.asarray(f) for f in batch)):
    if not mask:
      continue
    v = w_in[centre]
    change = np.zeros_like(v)
    for target, label in [(context, 1.0)] + [(k, 0.0) for k in negatives]:
      if label == 0.0 and target == context:
        continue  # gensim skips a noise word equal to the target
      score = w_out[target] @ v
      loss -= np.log(_sigmoid(score if label else -score))
      g = lr * (label - _sigmoid(score))
      change += g * w_out[target]
      new_out[target] += g * v
    new_in[centre] += change
  return new_in, new_out, loss


# --------------------------------------------------------------------------- loss and step


def test_skipgram_loss_and_step_match_numpy():
  params, batch = _params(), _skipgram_batch()
  expected_in, expected_out, expected_loss = _numpy_skipgram(params, batch, 0.1)
  total, count = word2vec.skipgram_loss(params, batch)
  np.testing.assert_allclose(total, expected_loss, rtol=1e-5)
  assert count == 3
  new, loss = word2vec.skipgram_step(params, batch, 0.1)
  np.testing.assert_allclose(loss, expected_loss, rtol=1e-5)
  np.testing.assert_allclose(new.input_vectors, expected_in, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(new.output_vectors, expected_out, rtol=1e-5, atol=1e-6)


def test_negative_sampling_loss_is_the_formula():
  rng = np.random.default_rng(1)
  v, u, noise = rng.normal(size=(3, 5)), rng.normal(size=(3, 5)), rng.normal(size=(3, 2, 5))
  noise_mask = np.array([[1, 1], [1, 0], [0, 0]], np.float32)
  loss = word2vec.negative_sampling_loss(*(jnp.asarray(x, jnp.float32) for x in (v, u, noise)),
                                         jnp.asarray(noise_mask))
  expected = (-np.log(_sigmoid((v * u).sum(-1)))
              - (noise_mask * np.log(_sigmoid(-np.einsum("be,bke->bk", v, noise)))).sum(-1))
  np.testing.assert_allclose(loss, expected, rtol=1e-5)


def test_skipgram_step_is_sgd_on_the_loss():
  params, batch = _params(), _skipgram_batch()
  grads = jax.grad(lambda p: word2vec.skipgram_loss(p, batch)[0])(params)
  new, _ = word2vec.skipgram_step(params, batch, 0.05)
  for table, before, grad in zip(new, params, grads):
    np.testing.assert_allclose(table, before - 0.05 * grad, rtol=1e-5, atol=1e-6)


def _cbow_batch():
  # Example 0: 3 context words; example 1: one (and a noise word equal to
  # its target); example 2: no context word (changes nothing); 3: padding.
  return CBOWBatch(contexts=jnp.array([[1, 2, 3, 0], [0, 4, 0, 0], [5, 5, 5, 5], [1, 1, 1, 1]],
                                      jnp.int32),
                   context_mask=jnp.array([[1, 1, 0, 1], [0, 1, 0, 0], [0, 0, 0, 0],
                                           [1, 1, 1, 1]], jnp.float32),
                   centres=jnp.array([6, 2, 3, 4], jnp.int32),
                   negatives=jnp.array([[4, 5], [2, 1], [1, 2], [6, 5]], jnp.int32),
                   mask=jnp.array([1, 1, 1, 0], jnp.float32))


def _numpy_cbow(params, batch, lr):
  """gensim's w2v_fast_sentence_cbow_neg (cbow_mean=1), every example from the same tables."""
  w_in, w_out = (np.asarray(t, np.float64) for t in params)
  new_in, new_out, loss = w_in.copy(), w_out.copy(), 0.0
  for contexts, context_mask, centre, negatives, mask in zip(*(np.asarray(f) for f in batch)):
    words = contexts[context_mask > 0]
    if not mask or len(words) == 0:
      continue
    hidden = w_in[words].mean(0)
    work = np.zeros_like(hidden)
    for target, label in [(centre, 1.0)] + [(k, 0.0) for k in negatives]:
      if label == 0.0 and target == centre:
        continue
      score = w_out[target] @ hidden
      loss -= np.log(_sigmoid(score if label else -score))
      g = lr * (label - _sigmoid(score))
      work += g * w_out[target]
      new_out[target] += g * hidden
    for word in words:
      new_in[word] += work  # the whole of it to each context word, as word2vec.c
  return new_in, new_out, loss


def test_cbow_loss_and_step_match_gensims_arithmetic():
  params, batch = _params(), _cbow_batch()
  expected_in, expected_out, expected_loss = _numpy_cbow(params, batch, 0.1)
  total, count = word2vec.cbow_loss(params, batch)
  np.testing.assert_allclose(total, expected_loss, rtol=1e-5)
  assert count == 2
  new, loss = word2vec.cbow_step(params, batch, 0.1)
  np.testing.assert_allclose(loss, expected_loss, rtol=1e-5)
  np.testing.assert_allclose(new.input_vectors, expected_in, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(new.output_vectors, expected_out, rtol=1e-5, atol=1e-6)


def test_cbow_step_against_jax_grad():
  # W_out moves by -lr * its gradient; a context row by -lr * count * its
  # gradient (word2vec.c hands each context word the gradient of the mean).
  params, batch = _params(), _cbow_batch()
  grads = jax.grad(lambda p: word2vec.cbow_loss(p, batch)[0])(params)
  new, _ = word2vec.cbow_step(params, batch, 0.05)
  np.testing.assert_allclose(new.output_vectors,
                             params.output_vectors - 0.05 * grads.output_vectors,
                             rtol=1e-5, atol=1e-6)
  # Example 0's context rows 1, 2, 0 (count 3) and example 1's row 4 (count 1)
  # are touched by one example each.
  change = np.asarray(new.input_vectors - params.input_vectors)
  for row, count in ((1, 3), (2, 3), (0, 3), (4, 1)):
    np.testing.assert_allclose(change[row], -0.05 * count * grads.input_vectors[row],
                               rtol=1e-4, atol=1e-6)
  for row in (3, 5, 6):
    np.testing.assert_array_equal(change[row], 0)


def test_train_steps_equals_successive_steps():
  params = _params()
  batch = _skipgram_batch()
  stacked = jax.tree.map(lambda x: jnp.stack([x, x[::-1]]), batch)
  rates = jnp.array([0.1, 0.05], jnp.float32)
  expected, loss_0 = word2vec.skipgram_step(params, batch, 0.1)
  expected, loss_1 = word2vec.skipgram_step(expected, jax.tree.map(lambda x: x[::-1], batch), 0.05)
  got, total = word2vec.train_steps(_params(), stacked, rates)
  for a, b in zip(got, expected):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(total, loss_0 + loss_1, rtol=1e-5)


def test_init_is_gensims():
  params = word2vec.init(jax.random.key(0), 50, 20)
  w_in = np.asarray(params.input_vectors)
  assert w_in.shape == (50, 20) and w_in.dtype == np.float32
  assert np.abs(w_in).max() < 1 / 20 and np.abs(w_in).max() > 0.9 / 20
  assert not np.asarray(params.output_vectors).any()


# --------------------------------------------------------------------------- vocabulary


TEXT = [["the", "cat", "sat", "on", "the", "mat"], ["the", "dog", "sat"], [],
        ["a", "cat", "and", "a", "dog", "and", "a", "bird"], ["mat"]]


def test_vocabulary_order_and_counts_are_gensims():
  gensim = pytest.importorskip("gensim")
  vocabulary = word2vec.build_vocabulary(TEXT, min_count=2)
  model = gensim.models.Word2Vec(min_count=2, vector_size=4)
  model.build_vocab(TEXT)
  assert vocabulary.words == tuple(model.wv.index_to_key)
  np.testing.assert_array_equal(vocabulary.counts,
                                [model.wv.get_vecattr(w, "count") for w in vocabulary.words])
  # Ties go latest first occurrence first: "a" (3) before "the" (3), and
  # "and" before "dog", "mat", "sat", "cat" (2 each).
  assert vocabulary.words == ("a", "the", "and", "dog", "mat", "sat", "cat")


def test_encode_sentences_drops_unknown_words():
  vocabulary = word2vec.build_vocabulary(TEXT, min_count=2)
  sentences = word2vec.encode_sentences(TEXT, vocabulary)
  assert sentences.ids.dtype == np.int32 and sentences.offsets.dtype == np.int64
  index = {w: i for i, w in enumerate(vocabulary.words)}
  expected = [[index[w] for w in s if w in index] for s in TEXT]
  assert [sentences.ids[a:b].tolist() for a, b in zip(sentences.offsets[:-1],
                                                      sentences.offsets[1:])] == expected
  # The same from a corpus in its own ids.
  words = list(dict.fromkeys(w for s in TEXT for w in s))
  ids = np.array([words.index(w) for s in TEXT for w in s])
  offsets = np.cumsum([0] + [len(s) for s in TEXT])
  again = word2vec.encode_ids(ids, offsets, words, vocabulary)
  np.testing.assert_array_equal(again.ids, sentences.ids)
  np.testing.assert_array_equal(again.offsets, sentences.offsets)


def test_too_large_min_count_names_the_argument():
  with pytest.raises(ValueError, match=r"min_count=9 leaves no word.*occurs 3 times"):
    word2vec.build_vocabulary(TEXT, min_count=9)
  with pytest.raises(ValueError, match="empty corpus"):
    word2vec.build_vocabulary([[], []])
  with pytest.raises(ValueError, match="min_count"):
    word2vec.build_vocabulary(TEXT, min_count=0)


# --------------------------------------------------------------------------- sampling


def test_keep_probabilities_are_word2vecs_formula():
  counts = np.array([100_000, 5_000, 300, 40, 5])
  total = counts.sum()
  t = 1e-3 * total
  expected = np.minimum((np.sqrt(counts / t) + 1) * t / counts, 1)
  np.testing.assert_allclose(word2vec.keep_probabilities(counts, 1e-3), expected)
  assert expected[0] < 0.2 and expected[-1] == 1
  np.testing.assert_array_equal(word2vec.keep_probabilities(counts, 0), 1)
  t = int(300 * (3 + np.sqrt(5)) / 2)  # sample >= 1: a count, gensim's shorthand
  np.testing.assert_allclose(word2vec.keep_probabilities(counts, 300),
                             np.minimum((np.sqrt(counts / t) + 1) * t / counts, 1))
  with pytest.raises(ValueError, match="sample"):
    word2vec.keep_probabilities(counts, -1e-3)


def test_keep_probabilities_match_gensims_prepare_vocab():
  gensim = pytest.importorskip("gensim")
  rng = np.random.default_rng(0)
  words = [f"w{i}" for i in range(60)]
  corpus = [list(rng.choice(words, size=50, p=np.arange(60, 0, -1) ** 2 / np.sum(
      np.arange(60, 0, -1) ** 2))) for _ in range(200)]
  model = gensim.models.Word2Vec(min_count=1, sample=1e-2, vector_size=4)
  model.build_vocab(corpus)
  vocabulary = word2vec.build_vocabulary(corpus, min_count=1)
  assert vocabulary.words == tuple(model.wv.index_to_key)
  theirs = model.wv.expandos["sample_int"] / (2 ** 32 - 1)
  np.testing.assert_allclose(word2vec.keep_probabilities(vocabulary.counts, 1e-2), theirs,
                             atol=1e-9)
  assert theirs.min() < 0.8  # the test exercises real down-sampling


def test_noise_distribution_and_alias_draws():
  counts = np.array([1000, 200, 50, 7, 1])
  p = word2vec.noise_distribution(counts)
  np.testing.assert_allclose(p, counts ** 0.75 / np.sum(counts ** 0.75))
  table = word2vec.alias_table(p)
  draws = word2vec.draw_alias(table, np.random.default_rng(0), (400_000,))
  assert draws.dtype == np.int32
  frequencies = np.bincount(draws, minlength=5) / draws.size
  # 4 standard errors of a binomial share.
  assert np.all(np.abs(frequencies - p) <= 4 * np.sqrt(p * (1 - p) / draws.size))


def test_noise_distribution_matches_gensims_cum_table():
  gensim = pytest.importorskip("gensim")
  model = gensim.models.Word2Vec(min_count=1, vector_size=4)
  model.build_vocab(TEXT)
  vocabulary = word2vec.build_vocabulary(TEXT, min_count=1)
  theirs = np.diff(np.concatenate([[0], model.cum_table])) / model.cum_table[-1]
  np.testing.assert_allclose(word2vec.noise_distribution(vocabulary.counts), theirs, atol=1e-9)


def test_subsample_keeps_each_word_at_its_rate():
  ids = np.repeat(np.arange(3, dtype=np.int32), 20_000)
  sentences = word2vec.Sentences(ids, np.array([0, 30_000, 60_000]))
  keep = np.array([1.0, 0.5, 0.1])
  kept, positions = word2vec.subsample(sentences, keep, np.random.default_rng(0))
  np.testing.assert_array_equal(kept.ids, ids[positions])
  np.testing.assert_allclose(np.bincount(kept.ids) / 20_000, keep, atol=0.02)
  assert kept.offsets[1] == np.sum(positions < 30_000) and kept.offsets[-1] == len(kept.ids)


# --------------------------------------------------------------------------- windows


def _loop_examples(sentences, window, reduced):
  """gensim's train_batch_sg / train_batch_cbow loops, written out."""
  pairs, cbow = [], []
  for start, end in zip(sentences.offsets[:-1].tolist(), sentences.offsets[1:].tolist()):
    for i in range(start, end):
      first = max(i - window + int(reduced[i]), start)
      last = min(i + window + 1 - int(reduced[i]), end)
      context = [int(sentences.ids[j]) for j in range(first, last) if j != i]
      pairs += [(int(sentences.ids[i]), c) for c in context]
      if context:
        cbow.append((int(sentences.ids[i]), context))
  return pairs, cbow


@pytest.mark.parametrize("window", [1, 3, 5])
def test_pairs_and_cbow_windows_equal_gensims_loop(window):
  rng = np.random.default_rng(window)
  lengths = [7, 1, 0, 12, 2, 30]
  sentences = word2vec.Sentences(rng.integers(0, 40, size=sum(lengths)).astype(np.int32),
                                 np.cumsum([0] + lengths))
  reduced = word2vec.reduced_windows(rng, len(sentences.ids), window)
  assert reduced.min() >= 0 and reduced.max() < window
  expected_pairs, expected_cbow = _loop_examples(sentences, window, reduced)
  centres, contexts = word2vec.skipgram_pairs(sentences, window, reduced)
  assert list(zip(centres.tolist(), contexts.tolist())) == expected_pairs
  contexts, mask, centres = word2vec.cbow_examples(sentences, window, reduced)
  assert contexts.shape == mask.shape == (len(expected_cbow), 2 * window)
  got = [(c, row[m].tolist()) for c, row, m in zip(centres.tolist(), contexts, mask)]
  assert got == expected_cbow


def test_dynamic_window_shrinks_with_the_draw():
  sentences = word2vec.Sentences(np.arange(9, dtype=np.int32), np.array([0, 9]))
  reduced = np.full(9, 2)  # window 3 - 2 = 1 each side
  centres, contexts = word2vec.skipgram_pairs(sentences, 3, reduced)
  assert np.all(np.abs(centres - contexts) == 1) and len(centres) == 16


# --------------------------------------------------------------------------- the stream


def _corpus(seed=0, sentences=400, length=10, size=20):
  rng = np.random.default_rng(seed)
  groups = [np.arange(size // 2), np.arange(size // 2, size)]
  ids = [rng.choice(groups[s % 2], size=length).astype(np.int32) for s in range(sentences)]
  counts = np.bincount(np.concatenate(ids), minlength=size)
  return ids, counts, groups


def test_batch_stream_blocks():
  ids, counts, _ = _corpus(sentences=60)
  config = Word2VecConfig(vector_size=8, window=2, negative=3, epochs=2, batch_size=16,
                          steps_per_call=4, sample=0)
  blocks = list(word2vec.batch_stream(ids, counts, config))
  again = list(word2vec.batch_stream(ids, counts, config))
  sentence_of = np.repeat(np.arange(len(ids)), [len(s) for s in ids])
  flat = np.concatenate(ids)
  for block, twin in zip(blocks, again):  # seeded: the same stream twice
    for a, b in zip(block.batches, twin.batches):
      np.testing.assert_array_equal(a, b)
    batches = block.batches
    assert isinstance(batches, SkipGramBatch) and batches.centres.shape == (4, 16)
    assert batches.negatives.shape == (4, 16, 3) and batches.negatives.dtype == np.int32
    assert int(batches.mask.sum()) == block.examples
  # Every pair lies within the window of one sentence (sample=0 keeps all).
  allowed = {(int(flat[i]), int(flat[j])) for i in range(len(flat)) for j in range(len(flat))
             if 0 < abs(i - j) <= 2 and sentence_of[i] == sentence_of[j]}
  real = [(c, o) for b in blocks for c, o, m in zip(b.batches.centres.ravel().tolist(),
                                                    b.batches.contexts.ravel().tolist(),
                                                    b.batches.mask.ravel().tolist()) if m]
  assert set(real) <= allowed
  # About 2 epochs x 600 tokens x (3 expected pairs a token, less at the edges).
  assert 2 * 600 * 2.4 < len(real) < 2 * 600 * 3
  assert blocks[-1].examples < 64 and blocks[-1].words == 2 * 600
  rates = np.concatenate([b.learning_rates for b in blocks])
  assert rates[0] == pytest.approx(0.025) and np.all(np.diff(rates) <= 0)
  assert 1e-4 <= rates[-1] < 0.025 * 0.05


def test_decay_by_sentences_follows_gensims_schedule():
  # One long sentence, then 99 short ones: by words the long one is half the
  # text, by sentences (gensim's Word2Vec(sentences)) 1% of it.
  rng = np.random.default_rng(0)
  ids = [rng.integers(0, 20, 500).astype(np.int32)] + [
      rng.integers(0, 20, 5).astype(np.int32) for _ in range(99)]
  counts = np.bincount(np.concatenate(ids), minlength=20)
  config = Word2VecConfig(window=2, epochs=2, batch_size=8, steps_per_call=4, sample=0)

  def rate_after_the_long_sentence(decay):
    for block in word2vec.batch_stream(ids, counts, config._replace(decay=decay)):
      if block.words > 500:  # the first block reaching past it
        return float(block.learning_rates[-1])

  by_words, by_sentences = (rate_after_the_long_sentence(d) for d in ("words", "sentences"))
  drop = 0.025 - 1e-4
  assert by_words == pytest.approx(0.025 - drop * 0.25, abs=drop * 0.01)  # 500 of 2 x 995
  assert by_sentences == pytest.approx(0.025 - drop * 0.005, abs=drop * 0.006)  # 1 of 2 x 100
  with pytest.raises(ValueError, match="decay"):
    word2vec.check_config(config._replace(decay="tokens"))


def test_cbow_blocks():
  ids, counts, _ = _corpus(sentences=20)
  config = Word2VecConfig(model="cbow", window=3, negative=2, epochs=1, batch_size=8,
                          steps_per_call=2)
  block = next(word2vec.batch_stream(ids, counts, config))
  assert isinstance(block.batches, CBOWBatch)
  assert block.batches.contexts.shape == block.batches.context_mask.shape == (2, 8, 6)
  assert block.batches.context_mask.dtype == np.float32
  assert block.batches.context_mask.sum(-1).min() >= 1
  assert 0.045 < block.learning_rates[0] <= 0.05  # CBoW's default alpha, decaying


# --------------------------------------------------------------------------- training


def _cosines(table):
  unit = table / np.linalg.norm(table, axis=1, keepdims=True)
  return unit @ unit.T


@pytest.mark.parametrize("model", ["skipgram", "cbow"])
def test_planted_groups_separate(model):
  ids, counts, groups = _corpus(sentences=300)
  config = Word2VecConfig(model=model, vector_size=16, window=3, negative=4, epochs=3,
                          sample=0, batch_size=32, steps_per_call=16)
  reports = []
  params = word2vec.train(ids, counts, config, callback=reports.append, report_every=2)
  cosines = _cosines(np.asarray(params.input_vectors))
  a, b = groups
  within = np.mean([cosines[np.ix_(g, g)][~np.eye(len(g), dtype=bool)].mean() for g in groups])
  across = cosines[np.ix_(a, b)].mean()
  assert within > across + 0.3, (within, across)
  # Progress: reported along the way and at the end, the loss falling.
  assert len(reports) >= 2 and reports[-1].words == reports[-1].total_words == 3 * 3000
  assert reports[-1].epoch == pytest.approx(3.0)
  assert all(np.isfinite(r.loss) for r in reports) and reports[-1].loss < reports[0].loss
  assert reports[-1].learning_rate < reports[0].learning_rate


def test_train_is_deterministic_and_compiles_once():
  ids, counts, _ = _corpus(sentences=40)
  config = Word2VecConfig(vector_size=8, epochs=1, batch_size=16, steps_per_call=4)
  first = word2vec.train(ids, counts, config)
  compiled = word2vec.train_steps._cache_size()
  second = word2vec.train(ids, counts, config)
  assert word2vec.train_steps._cache_size() == compiled
  for a, b in zip(first, second):
    np.testing.assert_array_equal(a, b)
  third = word2vec.train(ids, counts, config._replace(seed=1))
  assert not np.allclose(third.input_vectors, first.input_vectors)


@pytest.mark.parametrize("setting, message", [
    (dict(window=0), "window"), (dict(negative=0), "negative"),
    (dict(vector_size=0), "vector_size"), (dict(epochs=0), "epochs"),
    (dict(model="glove"), "model"), (dict(batch_size=0), "batch_size"),
    (dict(alpha=-0.1), "alpha"), (dict(sample=-1.0), "sample"),
])
def test_bad_settings_raise_naming_them(setting, message):
  ids, counts, _ = _corpus(sentences=4)
  with pytest.raises(ValueError, match=message):
    word2vec.train(ids, counts, Word2VecConfig(**setting))


def test_empty_corpus_raises():
  with pytest.raises(ValueError, match="empty corpus"):
    word2vec.train([np.zeros(0, np.int32)], np.array([3]), Word2VecConfig())
  with pytest.raises(ValueError, match=r"ids in \[0, 2\)"):
    list(word2vec.batch_stream([np.array([0, 5], np.int32)], np.array([1, 1]), Word2VecConfig()))

