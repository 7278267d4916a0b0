"""The TCN-vs-RNN benchmark configs, tasks and table (experiments/configs, experiments/table.py)."""

import importlib
import json

import jax
import numpy as np
import pytest

from experiments import table
from experiments import tasks
from experiments.configs import common
from experiments.tasks import bodies
from seqjax.pytree import count_params
from seqjax.train import loop

TASK_CONFIGS = ["adding", "copy_memory", "mnist", "pmnist", "music"]


def _config(task, variant):
  return importlib.import_module(f"experiments.configs.{task}").get_config(variant)


@pytest.mark.parametrize("task", TASK_CONFIGS)
@pytest.mark.parametrize("model", common.MODELS)
def test_parameter_counts_meet_the_papers_budget(task, model):
  config = _config(task, model)
  built = tasks.TASKS[config.task].build_model(config)
  params = jax.eval_shape(built.init, jax.random.PRNGKey(0))
  budget = table.PAPER[task]["size"]
  assert abs(count_params(params) - budget) <= 0.1 * budget, count_params(params)
  assert config.model.cell == model


def test_paper_settings_where_the_paper_gives_them():
  adding = _config("adding", "tcn")
  assert (adding.model.kernel_size, adding.model.levels, adding.model.hidden_size) == (8, 8, 24)
  assert adding.data.seq_len == 600 and adding.optimizer.clip_global_norm == 0
  mnist = _config("mnist", "tcn")
  assert (mnist.model.kernel_size, mnist.model.levels, mnist.model.hidden_size) == (7, 8, 25)
  assert not mnist.data.permute and _config("pmnist", "tcn").data.permute
  copy = _config("copy_memory", "tcn")
  assert (copy.model.kernel_size, copy.model.levels) == (8, 8)
  assert copy.data.blank_length == 1000 and copy.optimizer.name == "rmsprop"
  assert _config("adding", "lstm").model.hidden_size == 130
  # The word-LM LSTM keeps the paper's SGD 30; the GRU and RNN, which it
  # diverges, override the RNN family's rate with their own.
  rates = {m: _config("lm_bbc_words", m).optimizer.learning_rate for m in ("lstm", "gru", "rnn")}
  assert rates == {"lstm": 30.0, "gru": 4.0, "rnn": 1.0}


def test_variant_parsing():
  assert common.parse_variant("gru,quick") == ("gru", True)
  assert common.parse_variant("") == ("tcn", False)
  with pytest.raises(ValueError, match="variant"):
    common.parse_variant("transformer")


# Each quick config trains and ends better than its task's baseline.
QUICK = [
    ("adding", "validation/mse", lambda value, base: value < 0.8 * base),
    ("copy_memory", "validation/loss", lambda value, base: value < 0.5 * base),
    ("mnist", "validation/accuracy", lambda value, base: value > 0.5),
    ("music", "validation/nll", lambda value, base: value < base - 0.5),
]


@pytest.mark.parametrize("task,metric,better", QUICK, ids=[q[0] for q in QUICK])
def test_quick_config_trains_past_the_baseline(task, metric, better, tmp_path):
  config = _config(task, "quick")
  module = tasks.TASKS[config.task]
  task_spec, _ = module.build(config, tmp_path)
  final, params = loop.train_and_evaluate(config, tmp_path, task_spec, log=lambda line: None)
  _, baseline = module.baseline(config)
  assert better(final[metric], baseline), (final, baseline)
  written = json.loads((tmp_path / "final.json").read_text())
  assert written["step"] == config.num_steps and written["stopped_by"] is None
  assert written["num_params"] == count_params(params)
  assert written["metrics"] == pytest.approx(final)


def test_stop_when_ends_training_at_the_target(tmp_path):
  config = _config("adding", "quick")
  with config.unlocked():
    config.eval_every = 20
    config.stop_when = "validation/mse<100"
  task_spec, _ = tasks.TASKS["adding"].build(config, tmp_path)
  loop.train_and_evaluate(config, tmp_path, task_spec, log=lambda line: None)
  written = json.loads((tmp_path / "final.json").read_text())
  assert written["step"] == 20 and written["stopped_by"] == "the target"


def test_stop_when_is_checked():
  reached = loop.parse_stop_when("validation/accuracy>0.9")
  assert reached({"validation/accuracy": 0.95}) and not reached({"validation/accuracy": 0.5})
  assert loop.parse_stop_when("validation/mse<1e-3")({"validation/mse": 1e-4})
  assert loop.parse_stop_when("") is None
  for bad in ("accuracy>0.9", "validation/mse<x", "validation/mse=1"):
    with pytest.raises(ValueError, match="stop_when"):
      loop.parse_stop_when(bad)
  with pytest.raises(ValueError, match="does not report"):
    loop.parse_stop_when("validation/acc>0.9")({"validation/accuracy": 0.5})


def _result(step, num_steps, stopped_by, value):
  return {"step": step, "num_steps": num_steps, "stopped_by": stopped_by,
          "train_seconds": 90.0, "num_params": 70369, "metrics": {"test/mse": value}}


def test_table_marks_complete_target_and_budget_cut_runs():
  rows = [{"task": "adding", "model": "tcn", "result": _result(100, 100, None, 1e-4),
           "baseline": ("always predict 1", 1 / 6)},
          {"task": "adding", "model": "gru", "result": _result(40, 100, "the target", 2e-3),
           "baseline": ("always predict 1", 1 / 6)},
          {"task": "adding", "model": "lstm", "result": _result(25, 100, "the time limit", 0.16),
           "baseline": ("always predict 1", 1 / 6)}]
  text = table.markdown_table(rows)
  lines = text.strip().splitlines()
  assert len(lines) == 5
  assert "complete schedule" in lines[2] and "1.00e-04" in lines[2] and "5.80e-05" in lines[2]
  assert "stopped at target" in lines[3] and "40 / 100" in lines[3]
  assert "cut by budget (25% of schedule)" in lines[4] and "0.164" in lines[4]
  assert "70,369 / ~70,000" in lines[2] and "1.5 min" in lines[2]


def test_table_reuses_a_finished_run_without_training(tmp_path):
  workdir = tmp_path / "adding" / "tcn"
  workdir.mkdir(parents=True)
  (workdir / "final.json").write_text(json.dumps(_result(7, 9, None, 0.5)))
  result = table.run_pair("adding", "tcn", root=tmp_path, budget=1.0, quick=True,
                          overrides=[], rerun=False, log=lambda line: None)
  assert result["step"] == 7 and not (workdir / "train.log").exists()


def test_adding_curriculum_lengths():
  from experiments.tasks import adding
  stages = adding.parse_curriculum("200:3,400:2")
  assert [adding.length_at(s, 600, stages) for s in range(7)] == [200] * 3 + [400] * 2 + [600] * 2
  assert adding.parse_curriculum("") == []
  with pytest.raises(ValueError, match="curriculum"):
    adding.parse_curriculum("200")
  config = _config("adding", "tcn")
  task_spec, _ = tasks.TASKS["adding"].build(config, None)
  assert task_spec.train_batch(0)["inputs"].shape[1] == 200
  assert task_spec.train_batch(3000)["inputs"].shape[1] == 600


def test_periodic_evaluation_runs_without_a_target(tmp_path):
  config = _config("adding", "quick")
  with config.unlocked():
    config.num_steps = 20
    config.eval_every = 10
  task_spec, _ = tasks.TASKS["adding"].build(config, tmp_path)
  lines = []
  loop.train_and_evaluate(config, tmp_path, task_spec, log=lines.append)
  assert any(line.startswith("step     10 | validation/mse") for line in lines), lines


LM_CONFIGS = ["lm_shakespeare", "lm_wiki_bytes", "lm_bbc_words"]


@pytest.mark.parametrize("task", LM_CONFIGS)
def test_language_model_sizes_meet_the_papers_budget(task):
  from experiments.tasks import char_lm
  vocab = char_lm.vocab_size(_config(task, "tcn"))
  budget = table.PAPER[task]["size"]
  for model in common.MODELS:
    config = _config(task, model)
    params = jax.eval_shape(char_lm.build_model(config, vocab).init, jax.random.PRNGKey(0))
    assert abs(count_params(params) - budget) <= 0.1 * budget, (model, count_params(params))


@pytest.mark.parametrize("task", LM_CONFIGS)
def test_quick_language_model_beats_the_unigram_baseline(task, tmp_path):
  from experiments.tasks import char_lm
  config = _config(task, "tcn,quick")
  task_spec, vocab = char_lm.build(config, tmp_path)
  final, params = loop.train_and_evaluate(config, tmp_path, task_spec, log=lambda line: None)
  name, value = char_lm.baseline(config)
  metric = table.PAPER[task]["metric"]
  assert final[f"validation/{metric}"] < value, (final, value)
  text = char_lm.sample(config, params, vocab, prime=config.sample.prime, length=5,
                        temperature=1.0)
  assert text.startswith(config.sample.prime) and len(text) > len(config.sample.prime)


def test_collect_only_marks_missing_runs(tmp_path):
  result = table.run_pair("copy_memory", "gru", root=tmp_path, budget=1.0, quick=True,
                          overrides=[], rerun=False, collect_only=True, log=lambda line: None)
  assert result == {"missing": True}
  text = table.markdown_table([{"task": "copy_memory", "model": "gru", "result": result,
                                "baseline": ("memoryless", 0.02)}])
  assert "not run yet" in text and "~16,000" in text


def test_select_best_reports_the_best_validated_parameters(tmp_path):
  config = _config("adding", "quick")
  with config.unlocked():
    config.num_steps = 60
    config.eval_every = 20
    config.optimizer.learning_rate = 0.05   # noisy on purpose: the last step need not be best
    config.select_best = "validation/mse:max"  # the worst, so that it is not the last step
  task_spec, _ = tasks.TASKS["adding"].build(config, tmp_path)
  lines = []
  final, _ = loop.train_and_evaluate(config, tmp_path, task_spec, log=lines.append)
  seen = {int(line.split()[1]): float(line.split("validation/mse ")[1].split()[0])
          for line in lines if line.startswith("step ") and "validation/mse" in line
          and "test/" not in line}
  best_step = max(seen, key=seen.get)
  written = json.loads((tmp_path / "final.json").read_text())
  record = json.loads((tmp_path / "best.json").read_text())
  assert written["selected_step"] == record["step"] == best_step
  assert record["value"] == pytest.approx(seen[best_step], abs=1e-4)
  # The final figures are those of the selected parameters, re-evaluated.
  assert final["validation/mse"] == pytest.approx(record["value"], rel=1e-5)


def test_select_best_is_checked():
  assert loop.parse_select_best("validation/nll:min") == ("validation/nll", "min")
  for bad in ("validation/nll", "nll:min", "validation/nll:lowest"):
    with pytest.raises(ValueError, match="select_best"):
      loop.parse_select_best(bad)


def test_select_best_survives_a_resume(tmp_path):
  config = _config("adding", "quick")
  with config.unlocked():
    config.num_steps = 40
    config.eval_every = 20
    config.checkpoint_every = 20
    config.select_best = "validation/mse:max"
  task_spec, _ = tasks.TASKS["adding"].build(config, tmp_path)
  loop.train_and_evaluate(config, tmp_path, task_spec, log=lambda line: None)
  first = json.loads((tmp_path / "best.json").read_text())
  with config.unlocked():
    config.num_steps = 60
  final, _ = loop.train_and_evaluate(config, tmp_path, task_spec, log=lambda line: None)
  record = json.loads((tmp_path / "best.json").read_text())
  # The resumed run compares against the first run's best, loaded from disk.
  assert record["value"] >= first["value"]
  assert final["validation/mse"] == pytest.approx(record["value"], rel=1e-5)


def test_model_implementation_is_passed_to_unroll_and_checked():
  model = common.model_config("gru", hidden_size=6, num_layers=2)
  assert model.implementation == "auto"
  body = bodies.build_body(model)
  params = body.init(jax.random.PRNGKey(0), 3)
  xs = jax.random.normal(jax.random.PRNGKey(1), (2, 5, 3))
  for implementation, fused in (("scan", False), ("fast", True)):
    with model.unlocked():
      model.implementation = implementation
    built = bodies.build_body(model)
    np.testing.assert_allclose(built.apply(params, xs)[1], body.apply(params, xs)[1],
                               atol=1e-5, rtol=1e-5)
    # The fast path is a jax.custom_vjp; the plain scan has none.
    assert ("custom_vjp" in str(jax.make_jaxpr(built.apply)(params, xs))) == fused, implementation
  with model.unlocked():
    model.implementation = "cudnn"
  with pytest.raises(ValueError, match="config.model.implementation must be one of"):
    bodies.build_body(model)


def test_best_params_keep_their_value_inside_the_npz(tmp_path):
  params = {"w": np.arange(3.0, dtype=np.float32), "b": np.float32(2.0)}
  best = loop._BestParams("validation/nll:min", tmp_path, params)
  best.offer(10, {"validation/nll": 1.5}, params)
  # A crash after the npz was replaced but before best.json was: a stale copy.
  (tmp_path / "best.json").write_text(json.dumps(
      {"name": "validation/nll", "value": 9.0, "step": 5}))
  again = loop._BestParams("validation/nll:min", tmp_path, params)
  assert (again.value, again.step) == (1.5, 10)
  np.testing.assert_array_equal(again.params["w"], params["w"])
  # Files written before the record moved into the npz still load via best.json.
  np.savez(tmp_path / "best_params.npz", leaf_0=np.float32(3.0), leaf_1=np.zeros(3, np.float32))
  old = loop._BestParams("validation/nll:min", tmp_path, params)
  assert (old.value, old.step) == (9.0, 5) and float(old.params["b"]) == 3.0
  # Another metric's record is not this run's best.
  assert loop._BestParams("validation/acc:max", tmp_path, params).value is None


def test_a_run_stopped_by_a_signal_is_not_finished(tmp_path):
  workdir = tmp_path / "adding" / "tcn"
  workdir.mkdir(parents=True)
  (workdir / "final.json").write_text(json.dumps(_result(7, 9, "SIGTERM", None)))
  result = table.run_pair("adding", "tcn", root=tmp_path, budget=1.0, quick=True,
                          overrides=[], rerun=False, collect_only=True, log=lambda line: None)
  assert result == {"missing": True}
