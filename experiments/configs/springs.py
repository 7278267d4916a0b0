r"""Learning to simulate springs: encode-process-decode graph network against an MLP.

Variant: ``<model>[,quick]`` with model gn (default) or mlp; ``quick`` is a
~1 minute smoke run.

Data: 5 particles per system, 5 random springs of the 10 pairs (stiffness
0.5-2, rest length 0.5-1.5), masses 0.5-2, frictionless, no walls; frames
dt = 0.05 apart (10 Verlet substeps each), 200 frames per trajectory; 500
training systems, 16 validation and 16 test systems. Inputs: the last 5
velocities. Training: Adam 1e-3 decayed by cosine, batch 64, random-walk
input noise of std 3e-4 at the last frame, up to 20,000 steps or 8 minutes.
Both models have about 139K parameters: the graph network 64 latent units,
2 hidden layers per MLP, 3 message-passing steps; the MLP 3 hidden layers of 236.
``report`` rolls each model out for 194 frames on the test systems.

  python -m experiments.train --config experiments/configs/springs.py:gn --workdir /tmp/springs_gn
  python -m experiments.train --config experiments/configs/springs.py:mlp --workdir /tmp/springs_mlp
"""

import ml_collections

from experiments.configs import common

MODELS = ("gn", "mlp")
#: Every variant (checked by the config tests).
VARIANTS = tuple(m + q for m in MODELS for q in ("", ",quick"))


def get_config(variant: str = "gn") -> ml_collections.ConfigDict:
  parts = [p for p in variant.split(",") if p and p != "default"]
  models = [p for p in parts if p in MODELS]
  if len(models) > 1 or any(p not in MODELS + ("quick",) for p in parts):
    raise ValueError(f"variant must be <model>[,quick] with model in {MODELS}, got {variant!r}")
  model = models[0] if models else "gn"
  config = common.loop_config("springs")
  config.data = dict(particles=5, num_springs=5, mass_range=(0.5, 2.0), stiffness_range=(0.5, 2.0),
                     rest_length_range=(0.5, 1.5), position_std=0.5, speed=0.5, dt=0.05,
                     substeps=10, steps=200, train_size=500, test_size=16, history=5,
                     noise_std=3e-4, eval_examples=2048)
  if model == "gn":
    config.model = ml_collections.ConfigDict(dict(kind="gn", latent_size=64, message_steps=3,
                                                  mlp_layers=2))
  else:
    config.model = ml_collections.ConfigDict(dict(kind="mlp", latent_size=236, message_steps=0,
                                                  mlp_layers=3))
  config.batch_size = 64
  config.num_steps = 20_000
  config.optimizer.learning_rate = 1e-3
  config.optimizer.schedule = "cosine"
  config.log_every = 200
  config.eval_every = 2000
  config.checkpoint_every = 1000
  config.time_limit_minutes = 8.0
  if "quick" in parts:
    config.data.update(train_size=16, test_size=2, steps=40, eval_examples=128)
    config.model.latent_size = 16
    common.smoke_run(config, 40)
  return config
