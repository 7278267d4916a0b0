"""The task protocol (experiments/tasks/__init__.py) and the one model resolver (bodies.py)."""

from __future__ import annotations

import inspect
import pathlib

import jax
import numpy as np
import pytest

import seqjax
from experiments import tasks
from experiments.configs import common
from experiments.tasks import bodies, training

HELPERS = {"__init__", "bodies", "training"}


def test_every_task_module_is_registered_and_follows_the_protocol():
  files = {p.stem for p in pathlib.Path(tasks.__file__).parent.glob("*.py")} - HELPERS
  assert {module.__name__.rsplit(".", 1)[1] for module in tasks.TASKS.values()} == files
  for name, module in tasks.TASKS.items():
    assert list(inspect.signature(module.validate).parameters) == ["config"], name
    assert list(inspect.signature(module.run).parameters) == ["config", "workdir", "log"], name


def test_cell_factories_are_derived_from_seqjax_cells():
  factories = bodies.cell_factories()
  assert {"lstm", "gru", "rnn", "min_gru", "lru", "leaky", "ctrnn"} <= set(factories)
  assert "fit_readout" not in factories and "linear_recurrence" not in factories


@pytest.mark.parametrize("cell", bodies.cell_factories())
def test_any_cell_builds_a_stacked_body(cell):
  model = common.model_config(cell, hidden_size=4, num_layers=2)
  body = bodies.build_body(model)
  params = body.init(jax.random.PRNGKey(0), 3)
  _, ys = body.apply(params, jax.random.normal(jax.random.PRNGKey(1), (2, 5, 3)))
  assert ys.shape[:2] == (2, 5) and set(params) == {"layer_0", "layer_1"}


def test_resolver_settings_reach_the_body():
  lstm = bodies.build_body(common.model_config("lstm", hidden_size=3, forget_bias=0.0))
  reference = seqjax.layers.stacked(seqjax.cells.lstm(3, forget_bias=0.0), 1)
  params = lstm.init(jax.random.PRNGKey(0), 2)
  xs = jax.random.normal(jax.random.PRNGKey(1), (1, 4, 2))
  np.testing.assert_allclose(lstm.apply(params, xs)[1], reference.apply(params, xs)[1],
                             atol=1e-6)
  # A TCN is bare unless the task asks for input dropout (a language model's embedding).
  model = common.model_config("tcn", hidden_size=5, levels=2, kernel_size=2, dropout=0.1)
  assert set(bodies.build_body(model).init(jax.random.PRNGKey(0), 2)) == {"levels"}
  wrapped = bodies.build_body(model, input_dropout=0.1)
  assert set(wrapped.init(jax.random.PRNGKey(0), 2)) == {"layer_0"}


@pytest.mark.parametrize("field,value,match", [
    ("cell", "transformer", "config.model.cell must be 'tcn' or name a cell factory"),
    ("hidden_size", 0, "config.model.hidden_size must be a positive integer"),
    ("num_layers", -2, "config.model.num_layers must be a positive integer, got -2"),
    ("dropout", 1.0, r"config.model.dropout must be in \[0, 1\)"),
    ("implementation", "cudnn", "config.model.implementation must be one of"),
])
def test_resolver_names_the_bad_field(field, value, match):
  model = common.model_config("gru", hidden_size=4)
  model[field] = value
  with pytest.raises(ValueError, match=match):
    bodies.build_body(model)


def test_loop_fields_are_checked_for_trained_tasks():
  config = common.loop_config("adding")
  training.validate(config)
  for field, value, match in (("batch_size", 0, "config.batch_size must be a positive integer"),
                              ("eval_every", -1, "config.eval_every must be >= 0"),
                              ("stop_when", "mse<1", "stop_when")):
    bad = common.loop_config("adding")
    bad[field] = value
    with pytest.raises(ValueError, match=match):
      training.validate(bad)


def test_fixed_batches_pad_the_last_batch_with_weight_zero():
  batches = list(training.fixed_batches({"x": np.arange(5)}, 2)())
  assert [b["x"].tolist() for b in batches] == [[0, 1], [2, 3], [4, 4]]
  assert batches[-1]["weight"].tolist() == [1.0, 0.0]


def test_epoch_batch_indices_cover_each_epoch_once():
  seen = np.concatenate([training.epoch_batch_indices(10, 3, step, seed=0) for step in range(3)])
  assert sorted(seen.tolist()) == sorted(set(seen.tolist())) and len(seen) == 9
  again = training.epoch_batch_indices(10, 3, 3, seed=0)   # the next epoch reshuffles
  assert len(again) == 3
