"""The translation task: vocabularies, BLEU, schedules, quick runs and the table command."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

from experiments import translation_table
from experiments.configs import translation as configs
from experiments.datasets import bible
from experiments.tasks import translation as task
from seqjax import seq2seq

needs_bible = pytest.mark.skipif(
    not all((bible.sword_path() / bible.SOURCES[lang].path).is_dir()
            for lang in (bible.SOURCE_LANGUAGE, bible.TARGET_LANGUAGE)),
    reason="the SWORD modules are missing: apt-get install sword-text-kjv sword-text-sparv")


def test_bleu_of_references_against_themselves_is_100():
  refs = ["In the beginning God created the heaven and the earth.",
          "And the earth was without form, and void; and darkness was upon the face."]
  assert task.corpus_bleu(refs, refs) == pytest.approx(100.0)
  # Lower-cased and re-spaced hypotheses (what detokenize gives) still score 100.
  assert task.corpus_bleu([r.lower() for r in refs], refs) == pytest.approx(100.0)
  assert task.corpus_bleu(["and the earth was void ."] * 2, refs) < 50
  with pytest.raises(ValueError, match="pair up"):
    task.corpus_bleu(refs[:1], refs)


def test_vocabulary_starts_with_the_specials():
  sentences = [["a", "b", "a"], ["a", "c", "<s>"], ["b"]]
  vocab = task.build_vocab(sentences, size=6, min_count=1)
  assert vocab.words[:4] == task.SPECIALS and vocab.unk_id == task.UNK
  assert vocab.words[4:] == ("a", "b")  # by count, then size
  assert list(vocab.encode(["a", "zzz"])) == [4, task.UNK]
  assert task.build_vocab(sentences, size=10, min_count=2).words[4:] == ("a", "b")


def test_teacher_probability_follows_the_schedule():
  config = configs.get_config("addition,ss_linear")
  probs = [task.teacher_probability(config, s) for s in (0, 2500, 5000, 9000)]
  np.testing.assert_allclose(probs, [1.0, 0.75, 0.5, 0.5], rtol=1e-5)
  config = configs.get_config("addition,ss_exp")
  assert task.teacher_probability(config, 5000) == pytest.approx(0.5, rel=1e-3)
  config = configs.get_config("addition,ss_sigmoid")
  expected = seq2seq.teacher_forcing_schedule(1000, "inverse_sigmoid", k=config.training.k)
  assert task.teacher_probability(config, 1000) == pytest.approx(float(expected))
  assert task.teacher_probability(configs.get_config("addition"), 123) == 1.0
  built, _ = task.build(configs.get_config("addition,ss_linear,quick"), "unused")
  batch = built.train_batch(3)
  assert batch["teacher_prob"].shape == (16,)
  assert batch["source"].shape == (16, 8) and batch["target_mask"].dtype == bool


@pytest.mark.parametrize("variant", ["addition", "bible"])
@pytest.mark.parametrize("schedule", ["ss_linear", "ss_exp", "ss_sigmoid"])
def test_every_decay_ends_the_run_at_half_teacher_forcing(variant, schedule):
  config = configs.get_config(f"{variant},{schedule}")
  end = configs.SS_STEPS_BIBLE if variant == "bible" else config.num_steps
  assert task.teacher_probability(config, 0) == pytest.approx(1.0, abs=0.02)
  assert task.teacher_probability(config, end) == pytest.approx(0.5, abs=1e-3)
  if schedule == "ss_sigmoid":   # Bengio et al.'s k / (k + exp(i / k)), in numpy
    k = config.training.k
    assert k / (k + np.exp(end / k)) == pytest.approx(0.5, abs=1e-6)


@pytest.mark.parametrize("field, value, match", [
    ("data.dataset", "klingon", "config.data.dataset"),
    ("training.schedule", "cosine", "config.training.schedule"),
    ("decode.beam_size", 0, "config.decode.beam_size"),
    ("model.hidden_size", 33, "config.model.hidden_size"),
    ("model.attention", "cosine", "config.model.attention"),
    ("data.max_pairs", -1, "config.data.max_pairs"),
    ("training.label_smoothing", 1.0, "config.training.label_smoothing"),
])
def test_bad_fields_are_named(field, value, match):
  config = configs.get_config("bible,quick")
  section, name = field.split(".")
  config[section][name] = value
  with pytest.raises(ValueError, match=match):
    task.validate(config)


def test_variants_parse_and_bad_ones_are_refused():
  config = configs.get_config("bible,none,ss_sigmoid")
  assert config.model.attention == "none" and config.model.reverse_source
  assert config.training.schedule == "inverse_sigmoid"
  assert config.model.hidden_size == configs.HIDDEN["none"]
  for bad in ("bible,dot,none", "addition,ss_linear,ss_exp", "french"):
    with pytest.raises(ValueError, match="variant"):
      configs.get_config(bad)


def test_bible_models_have_equal_parameter_counts():
  """The table compares models at equal size: within 3.5% of the additive one."""
  import jax
  from seqjax.pytree import count_params
  sizes = {}
  for kind in ("none", "additive", "dot"):
    config = configs.get_config(f"bible,{kind}")
    v = config.data.source_vocab_size
    model = task.build_model(config, v, config.data.target_vocab_size)
    sizes[kind] = count_params(jax.eval_shape(model.init, jax.random.key(0)))
  for kind, n in sizes.items():
    assert abs(n / sizes["additive"] - 1) < 0.035, sizes


@pytest.mark.integration
def test_quick_addition_run_decodes_and_draws(tmp_path):
  config = configs.get_config("addition,quick")
  task.validate(config)
  lines = []
  final = task.run(config, str(tmp_path), log=lines.append)
  for mode in ("greedy", "beam"):
    assert 0.0 <= final[f"test/exact_match_{mode}"] <= 1.0
    assert final[f"test/sentences_per_second_{mode}"] > 0
  assert json.loads((tmp_path / "decode.json").read_text())["test/exact_match_greedy"] == \
      final["test/exact_match_greedy"]
  assert (tmp_path / "attention.png").stat().st_size > 1000
  assert lines[-1].startswith("final: addition")


@pytest.mark.integration
@needs_bible
def test_quick_bible_run_writes_translations_and_bleu(tmp_path):
  config = configs.get_config("bible,quick")
  final = task.run(config, str(tmp_path), log=lambda _: None)
  assert 0.0 <= final["test/bleu_greedy"] <= 100 and 0.0 <= final["test/bleu_beam"] <= 100
  rows = (tmp_path / "translations_test_beam.tsv").read_text().splitlines()
  assert rows[0].split("\t") == ["source_tokens", "source", "reference", "hypothesis"]
  assert len(rows) > 10
  assert (tmp_path / "attention.png").exists()
  points = translation_table.bleu_by_length(tmp_path / "translations_test_greedy.tsv")
  assert points and all(0 <= bleu <= 100 and n > 0 for _, bleu, n in points)
  # The CLI's translate: the checkpoint, the saved vocabularies, unknown words.
  from experiments import translate
  from seqjax.train.loop import restore_params
  source_vocab, target_vocab = task.load_vocabularies(tmp_path)
  model = task.build_model(config, source_vocab.size, target_vocab.size)
  params, step = restore_params(config, tmp_path, model.init)
  assert step == config.num_steps
  results, unknown = translate.translate(config, params, source_vocab, target_vocab,
                                         "Y dijo Dios: zzzqx", beam_size=3, alpha=0.6)
  assert unknown == 1 and 1 <= len(results) <= 3
  assert [r[2] for r in results] == sorted((r[2] for r in results), reverse=True)
  with pytest.raises(ValueError, match="text must contain"):
    translate.translate(config, params, source_vocab, target_vocab, " ", beam_size=2, alpha=0.0)
  # The table decodes a run whose training finished but whose decoding did not.
  (tmp_path / "decode.json").unlink()
  (tmp_path / "config.json").write_text(config.to_json_best_effort())  # as the launcher does
  again = translation_table.decode_run(tmp_path)
  assert again["test/bleu_beam"] == pytest.approx(final["test/bleu_beam"])
  assert (tmp_path / "decode.json").exists()
  # Resuming with vocabularies built from other data is refused, naming the side.
  config.data.target_vocab_size = 60
  with pytest.raises(ValueError, match="target vocabulary built from the data"):
    task.build(config, str(tmp_path))


def test_bleu_by_length_buckets_and_table(tmp_path):
  tsv = tmp_path / "t.tsv"
  lines = ["source_tokens\tsource\treference\thypothesis",
           "5\tx\tthe lord spake unto moses\tthe lord spake unto moses",
           "15\tx\tand he said unto them , go ye\tand he said",
           "16\tx\tand it came to pass\tand it came to pass"]
  tsv.write_text("\n".join(lines) + "\n")
  points = translation_table.bleu_by_length(tsv)
  assert [(b, n) for b, _, n in points] == [("1-10", 1), ("11-20", 2)]
  assert points[0][1] == pytest.approx(100.0) and points[1][1] < 100.0
  row = {"step": 10, "train_seconds": 120.0,
         "decode": {"test/bleu_greedy": 7.5, "test/bleu_beam": 8.25,
                    "test/sentences_per_second_greedy": 300.0,
                    "test/sentences_per_second_beam": 90.0}}
  table = translation_table.markdown([("additive attention", row), ("dot", {"missing": True})])
  assert "| additive attention | 7.50 | 8.25 | 2.0 (10) | 300 / 90 |" in table
  assert "| dot | not run |" in table


def test_gnmt_style_model_builds_and_runs():
  """Bidirectional first encoder layer, residuals from the third layer on (Wu et al. 2016)."""
  import jax
  config = configs.get_config("bible,quick")
  config.model.update(encoder_layers=4, decoder_layers=4, residual=True, hidden_size=8,
                      attention_size=8, embed_size=6)
  task.validate(config)
  model = task.build_model(config, 30, 40)
  assert model.name.count("residual(") == 2  # encoder layers 2 and 3
  params = model.init(jax.random.key(0))
  source = np.array([[5, 6, 7, task.EOS]], np.int32)
  target = np.array([[8, 9, task.EOS]], np.int32)
  total, count = seq2seq.sequence_loss(model, params, source, target)
  assert np.isfinite(float(total)) and float(count) == 3
  long_source = np.full((1, 120), 5, np.int32)  # longer than any training source: no limit
  from seqjax import decoding
  out = decoding.greedy(model, params, long_source, max_length=10)
  assert 1 <= int(out.lengths[0]) <= 10
