"""benchmarks/beam_search_speed.py: the Python-loop beam search equals seqjax's, and a tiny run."""

from __future__ import annotations

import functools
import json

import jax
import numpy as np
import pytest

import beam_search_speed
from seqjax import attention, cells, decoding, seq2seq

EOS = 2


@functools.lru_cache(maxsize=None)
def _model():
  """A tiny model whose hypotheses end at different lengths (EOS likely, V small)."""
  model = seq2seq.encoder_decoder(9, 7, cells.gru(5), cells.lstm(6), embed_size=4,
                                  attention=attention.additive(5))
  params = model.init(jax.random.key(1))
  params["head"]["w"] = params["head"]["w"] * 3.0
  params["head"]["b"] = params["head"]["b"].at[EOS].add(0.5)
  return model, params


def _sources():
  rng = np.random.default_rng(3)
  rows = [rng.integers(3, 9, n).astype(np.int32) for n in (1, 4, 6, 2)]
  width = max(row.size for row in rows)
  ids = np.zeros((len(rows), width), np.int32)
  for i, row in enumerate(rows):
    ids[i, :row.size] = row
  return rows, ids, ids != 0, width


@pytest.mark.parametrize("beam_size", [1, 2, 4])
def test_python_loop_equals_jitted_beam_search(beam_size):
  model, params = _model()
  rows, ids, mask, width = _sources()
  max_length, ended_early, at_limit = 8, 0, 0
  for alpha, ratio in ((0.0, None), (0.6, None), (0.0, (1.0, 2.0)), (0.6, (1.5, 1.0))):
    beams = jax.device_get(jax.jit(lambda p, s, m: decoding.beam_search(
        model, p, s, m, beam_size=beam_size, max_length=max_length, alpha=alpha,
        length_ratio=ratio))(params, ids, mask))
    for i, row in enumerate(rows):
      # Padded to the batch's width (one compile) and at its own length.
      for pad_to in (width, None):
        tokens, scores, log_probs = beam_search_speed.python_beam_search(
            model, params, row, beam_size, max_length, alpha, ratio, pad_to=pad_to)
        found = int(np.sum(np.isfinite(beams.scores[i])))
        assert len(tokens) == found >= 1, (alpha, ratio, i)
        for rank in range(found):
          n = int(beams.lengths[i, rank])
          assert tokens[rank] == list(beams.tokens[i, rank, :n]), (alpha, ratio, i, rank)
        np.testing.assert_allclose(scores, beams.scores[i, :found], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(log_probs, beams.log_probs[i, :found], rtol=1e-5, atol=1e-5)
      limit = max_length if ratio is None else min(max_length,
                                                   int(np.ceil(ratio[0] * row.size + ratio[1])))
      ended_early += sum(len(t) < limit for t in tokens)
      at_limit += sum(len(t) == limit for t in tokens)
  # Hypotheses finished before the limit (merged with later ones) and at it.
  assert ended_early > 0 and at_limit > 0


def test_top_orders_like_lax_top_k():
  values = np.array([1.0, 3.0, -np.inf, 3.0, 2.0, -np.inf, 1.0, 3.0], np.float32)
  for n in range(1, values.size + 1):
    want = np.asarray(jax.lax.top_k(values, n)[1])
    np.testing.assert_array_equal(beam_search_speed._top(values, n), want)


def test_main_tiny_run_writes_json(tmp_path, capsys):
  path = tmp_path / "beam.json"
  result = beam_search_speed.main(["--quick", "--num_sentences", "6", "--batch_size", "4",
                                   "--beam_size", "3", "--eos_bias", "2.0", "--json",
                                   str(path)])
  saved = json.loads(path.read_text())
  assert saved["benchmark"] == "beam_search_speed" and saved["sentences"] == 6
  assert saved["mismatches"] == 0 and saved["mismatched_sentences"] == []
  for name in ("jitted", "python"):
    assert saved["sentences_per_second"][name] > 0
    assert saved["sentences_per_second"][name] == pytest.approx(
        result["sentences_per_second"][name])
  assert saved["speedup"] == pytest.approx(
      saved["sentences_per_second"]["jitted"] / saved["sentences_per_second"]["python"])
  assert 0 < saved["python_step_share"] <= 1
  out = capsys.readouterr().out
  assert "| jitted |" in out and "| python |" in out and "mismatches 0 of 6" in out
