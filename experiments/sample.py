r"""Generates text from the newest checkpoint of a character-level LM run.

  python -m experiments.sample --workdir /tmp/char_lm --prime "ROMEO:" --length 500 --temperature 0.8
"""

from __future__ import annotations

import json
import pathlib
import sys

import ml_collections
from absl import app, flags, logging

from experiments.tasks import char_lm
from seqjax.train.loop import restore_params

_WORKDIR = flags.DEFINE_string("workdir", None, "Workdir of a finished or running char_lm run.")
_PRIME = flags.DEFINE_string("prime", "ROMEO:\n", "Text the sample continues.")
_LENGTH = flags.DEFINE_integer("length", 500, "Characters to generate.")
_TEMPERATURE = flags.DEFINE_float("temperature", 0.8, "Softmax temperature (> 0).")
_SEED = flags.DEFINE_integer("seed", 0, "Sampling seed.")
flags.mark_flags_as_required(["workdir"])


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  workdir = pathlib.Path(_WORKDIR.value)
  config_path = workdir / "config.json"
  if not config_path.exists():
    sys.exit(f"error: {config_path} not found: is {workdir} an experiments.train workdir?")
  config = ml_collections.ConfigDict(json.loads(config_path.read_text()))
  vocab = char_lm.load_vocab(config, workdir)
  model = char_lm.build_model(config, vocab.size)
  try:
    params, step = restore_params(
        config, workdir, model.init,
        lambda params, batch_size: model.initial_carry(params, (batch_size,)))
  except FileNotFoundError as error:
    sys.exit(f"error: {error}")
  print(f"# sample from step {step} of {workdir}, temperature {_TEMPERATURE.value}")
  print(char_lm.sample(config, params, vocab, prime=_PRIME.value.replace("\\n", "\n"),
                       length=_LENGTH.value, temperature=_TEMPERATURE.value, seed=_SEED.value))


if __name__ == "__main__":
  app.run(main)
