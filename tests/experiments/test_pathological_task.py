"""The pathological-tasks experiment: task, config, and the gradient table (Pascanu et al. 2013)."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest

from experiments import gradient_table
from experiments import train as launcher
from experiments.configs import pathological as configs
from experiments.tasks import TASKS
from experiments.tasks import pathological as task_lib
from seqjax import regularizers
from seqjax.data import pathological as data_lib


def _tiny(variant="adding,12,rnn,clip,quick", steps=10):
  config = configs.get_config(variant)
  config.num_steps = steps
  config.checkpoint_every = steps
  config.eval_every = 0
  config.data.validation_size = 50
  config.data.test_size = 60
  config.data.eval_batch_size = 25
  return config


def test_registered_and_every_variant_validates():
  assert TASKS["pathological"] is task_lib
  for variant in configs.VARIANTS:
    launcher.validate(configs.get_config(variant))
  config = configs.get_config("multiplication,100,gru,clip_omega,seed=4")
  assert (config.data.task, config.data.length, config.model.cell, config.seed) == (
      "multiplication", 100, "gru", 4)
  assert config.regularizer.omega_weight == configs.OMEGA_WEIGHT
  assert configs.get_config("adding,rnn,sgd").optimizer.clip_global_norm == 0.0
  assert configs.get_config("adding,delayed").model.delays == configs.DELAYS
  with pytest.raises(ValueError, match="variant"):
    configs.get_config("adding,transformer")


@pytest.mark.parametrize("field,value,match", [
    ("data.task", "copying", "config.data.task"),
    ("data.length", 5, "config.data.length"),
    ("data.test_size", 0, "config.data.test_size"),
    ("model.cell", "tcn", "config.model.cell"),
    ("model.init", "glorot", "config.model.init"),
    ("model.num_layers", 2, "config.model.num_layers"),
    ("model.delays", (2, 2), "config.model.delays"),
    ("model.spectral_radius", -1.0, "config.model.spectral_radius"),
    ("regularizer.omega_weight", -1.0, "config.regularizer.omega_weight"),
    ("regularizer.time_range", (5, 99), "config.regularizer.time_range"),
    ("batch_size", 0, "config.batch_size"),
])
def test_validation_names_the_field(field, value, match):
  config = configs.get_config("adding,20,rnn,clip_omega")
  section, _, name = field.rpartition(".")
  (config[section] if section else config)[name] = value
  with pytest.raises(ValueError, match=match):
    launcher.validate(config)


def test_smart_init_for_lstm_is_refused():
  config = configs.get_config("adding,20,lstm,clip")
  config.model.init = "smart"
  with pytest.raises(ValueError, match="config.model.init"):
    task_lib.validate(config)


def test_held_out_sets_do_not_depend_on_the_seed_and_training_batches_do():
  a = task_lib.held_out("temporal_order", 20, 8, "validation")
  b = task_lib.held_out("temporal_order", 20, 8, "test")
  assert not np.array_equal(a[0], b[0])
  np.testing.assert_array_equal(a[0], task_lib.held_out("temporal_order", 20, 8, "validation")[0])
  assert not np.array_equal(task_lib.train_data("adding", 20, 4, 0, 3)[0],
                            task_lib.train_data("adding", 20, 4, 1, 3)[0])


@pytest.mark.parametrize("task", list(data_lib.TASKS))
def test_wrong_per_sequence_is_the_librarys_error_rule(task):
  length = 12
  inputs, targets = data_lib.TASKS[task](np.random.default_rng(0), 64, length)
  spec = data_lib.SPECS[task]
  rng = np.random.default_rng(1)
  if spec.output == "regression":
    outputs = (targets + rng.normal(0, 0.25, targets.shape)).astype(np.float32)
  else:
    outputs = rng.normal(size=targets.shape + (spec.output_size,)).astype(np.float32)
    # Some sequences right: put the target class on top.
    right = np.eye(spec.output_size, dtype=np.float32)[targets] * 10
    outputs[::2] += right[::2]
  wrong = np.asarray(task_lib.wrong_per_sequence(task, outputs, targets))
  assert wrong.shape == (64,)
  assert wrong.mean() == pytest.approx(data_lib.error_rate(task, outputs, targets))


def test_model_shapes_follow_the_spec():
  for variant in ("noiseless_memorization,6,rnn,clip", "adding,12,leaky,clip",
                  "random_permutation,12,gru,clip", "temporal_order_3bit,12,delayed,clip"):
    config = configs.get_config(variant)
    model = task_lib.build_model(config)
    params = model.init(jax.random.PRNGKey(0))
    inputs, targets = data_lib.TASKS[config.data.task](np.random.default_rng(0), 3,
                                                       config.data.length)
    outputs = model.apply(params, inputs)
    spec = data_lib.SPECS[config.data.task]
    if spec.output == "regression":
      assert outputs.shape == targets.shape
    else:
      assert outputs.shape == targets.shape + (spec.output_size,)


def test_smart_init_is_sparse_with_spectral_radius_095():
  config = configs.get_config("adding,20,rnn,clip")
  params = task_lib.build_model(config).init(jax.random.PRNGKey(0))
  w = np.asarray(params["cell"]["w_h"])
  assert (np.count_nonzero(w, axis=1) == task_lib.SMART_NONZEROS).all()
  assert np.max(np.abs(np.linalg.eigvals(w))) == pytest.approx(0.95, rel=1e-4)
  assert np.std(params["head"]["w"]) < 0.02


def test_omega_term_adds_weight_times_pascanus_omega():
  config = configs.get_config("temporal_order,12,rnn,clip_omega")
  model = task_lib.build_model(config)
  params = model.init(jax.random.PRNGKey(0))
  inputs, targets = task_lib.train_data("temporal_order", 12, 6, 0, 0)
  weight = config.regularizer.omega_weight
  total, parts = jax.jit(lambda p: model.objective(p, inputs, targets, weight))(params)
  plain, _ = jax.jit(lambda p: model.objective(p, inputs, targets, 0))(params)
  task_loss = lambda ys: model.losses(model.readout(params["head"], ys), targets).mean()
  omega = regularizers.pascanu_omega(model.cell, params["cell"], inputs, task_loss)
  assert float(omega) > 0
  np.testing.assert_allclose(parts["loss"], plain, rtol=1e-5)
  np.testing.assert_allclose(parts["omega"], omega, rtol=1e-5)
  np.testing.assert_allclose(total - plain, weight * omega, rtol=1e-4)


def test_a_quick_run_trains_and_reports_the_error(tmp_path):
  lines = []
  final = task_lib.run(_tiny(), str(tmp_path), log=lines.append)
  for split in ("validation", "test"):
    assert 0.0 <= final[f"{split}/error"] <= 1.0
  assert final["test/solved"] in (0.0, 1.0)
  assert any("test error" in line for line in lines)
  assert json.loads((tmp_path / "final.json").read_text())["step"] == 10


def test_a_grid_run_is_the_configs_run(tmp_path):
  """Same init, batches, update and held-out set as experiments.train's run of the config."""
  config = _tiny("adding,12,rnn,clip,seed=1,quick", steps=12)
  final = task_lib.run(config, str(tmp_path), log=lambda line: None)
  [row] = gradient_table.run_group("rnn", "adding", 12, ("clip",), (1,), budget_steps=12,
                                   budget_seconds=600, eval_every=12, validation_size=50,
                                   test_size=60, log=lambda line: None)
  assert row["validation_error"] == pytest.approx(final["validation/error"])
  assert row["steps"] == 12 and row["group_steps"] == 12


def _fake(model, method, task, length, seed, solved, steps, error):
  return dict(model=model, method=method, task=task, length=length, seed=seed,
              solved=solved, steps=steps, validation_error=error, budget_steps=500)


def test_markdown_table_from_fake_results():
  results = [_fake("rnn", "sgd", "adding", 50, s, False, 500, 0.4) for s in range(2)]
  results += [_fake("rnn", "clip_omega", "adding", 50, 0, True, 100, 0.005),
              _fake("rnn", "clip_omega", "adding", 50, 1, True, 300, 0.0),
              _fake("rnn", "clip_omega", "adding", 50, 2, False, 500, 0.2)]
  results += [_fake("lstm", "clip", "temporal_order", 100, 0, True, 200, 0.0)]
  table = gradient_table.markdown(results)
  lines = table.splitlines()
  assert lines[0] == "| task | T | RNN SGD | RNN SGD+clip+Ω | LSTM |"
  # Rows in the library's task order: temporal order before adding.
  assert lines[2] == "| temporal_order | 100 | · | · | 1/1 (200), 0% |"
  assert lines[3] == "| adding | 50 | 0/2, 40% | 2/3 (200), 0% | · |"
  assert "budget 500 SGD steps" in table


def test_estimate_scales_with_steps_and_length():
  row = dict(setup_cpu=2.0, train_cpu=1.9, first_validation_cpu=0.5, validation_cpu=0.1)
  measured = {"kinds": {("rnn", False): row}, "tasks": {"adding": 1.0}, "length": 50,
              "steps": 20}
  plan = gradient_table.groups((("rnn", "clip"),), ("adding",), (50, 100))
  totals = gradient_table.estimate(measured, plan, budget_steps=100, eval_every=50,
                                   validation_size=1000)
  # 2 setups (+ the first validation's compilation), 0.1 s/step x (1 + 2), 2 validations each.
  assert totals["setup"] == pytest.approx(2 * 2.4)
  assert totals["train"] == pytest.approx(100 * 0.1 * 3)
  assert totals["validation"] == pytest.approx(2 * 0.1 * 3)


def test_groups_share_a_step_except_omega():
  plan = gradient_table.groups(gradient_table.COLUMNS, ("adding",), (50,))
  assert [(m, meth) for m, _, _, meth in plan] == [
      ("rnn", ("sgd", "clip")), ("rnn", ("clip_omega",)), ("lstm", ("clip",)),
      ("gru", ("clip",)), ("leaky", ("clip",)), ("delayed", ("clip",))]


def test_main_quick_fills_one_cell_and_resumes(tmp_path, capsys):
  argv = ["--workdir", str(tmp_path), "--quick", "--tasks", "temporal_order",
          "--columns", "rnn:clip", "--lengths", "10", "--seeds", "2", "--budget_steps", "6",
          "--eval_every", "3", "--out", str(tmp_path / "t.md")]
  assert gradient_table.main(argv) == 0
  table = (tmp_path / "t.md").read_text()
  assert "| temporal_order | 10 |" in table and "/2" in table
  results = json.loads((tmp_path / "results.json").read_text())
  assert len(results) == 2 and {r["seed"] for r in results} == {0, 1}
  assert all(0.0 <= r["validation_error"] <= 1.0 and r["steps"] <= 6 for r in results)
  capsys.readouterr()
  assert gradient_table.main(argv) == 0  # a finished group is read back, not retrained
  assert "[1/1]" not in capsys.readouterr().out
  with pytest.raises(SystemExit):
    gradient_table.main(argv[:-2] + ["--columns", "rnn:adam"])


def test_stored_group_is_reused_unless_its_results_could_differ():
  settings = dict(seeds=5, budget_steps=400, budget_minutes=15.0, eval_every=100,
                  validation_size=1000, test_size=10_000)
  full = dict(reached_validation=False, group_steps=400, budget_steps=400)
  stored = {"settings": dict(settings, budget_minutes=5.0), "results": [full, full]}
  # A time budget that stopped nothing does not change seeded, step-budgeted runs.
  assert gradient_table._reusable(stored, settings)
  # One that cut a run short does.
  cut = dict(full, group_steps=250)
  assert not gradient_table._reusable(dict(stored, results=[cut]), settings)
  assert gradient_table._reusable(dict(stored, results=[cut]), dict(settings, budget_minutes=5.0))
  # A group whose runs all reached the target early was stopped by them, not the clock.
  early = dict(full, reached_validation=True, group_steps=250)
  assert gradient_table._reusable(dict(stored, results=[early]), settings)
  assert not gradient_table._reusable(stored, dict(settings, budget_steps=500))


@pytest.mark.parametrize("init", ["orthogonal", "identity", "gaussian"])
def test_recurrent_initialisers_from_the_config(init):
  config = configs.get_config("adding,50,rnn,clip")
  config.model.init, config.model.spectral_radius = init, 1.1
  config.optimizer.momentum, config.optimizer.nesterov = 0.9, True
  launcher.validate(config)
  cell = task_lib.build_cell(config.model)
  w = np.asarray(cell.init(jax.random.PRNGKey(3), 2)["w_h"], np.float64)
  h = config.model.hidden_size
  if init == "orthogonal":
    np.testing.assert_allclose(w @ w.T, 1.21 * np.eye(h), atol=1e-5)
  elif init == "identity":
    np.testing.assert_allclose(w, 1.1 * np.eye(h), rtol=1e-7)   # float32 1.1
  else:
    assert np.abs(np.linalg.eigvals(w)).max() == pytest.approx(1.1, rel=1e-4)
    assert np.count_nonzero(w) == h * h
  config.model.cell = "lstm"
  with pytest.raises(ValueError, match="config.model.init"):
    task_lib.validate(config)
