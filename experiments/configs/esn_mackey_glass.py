r"""Echo-state network forecasting Mackey-Glass (tau = 17), the classic ESN benchmark.

The series (``seqjax.data.timeseries.mackey_glass``: RK4 with step 0.1,
sampled every time unit, 1000 transient samples dropped) is cut into
[washout 100 | train 3000 | validation 500 | test 1000]; a 500-unit leaky
reservoir (radius 1.25, leak 0.3, as in the reservoirpy tutorials after
Jaeger & Haas 2004) is run once and a ridge readout solved in closed form.
See ``experiments/tasks/esn.py`` for the protocol and the metrics.

  python -m experiments.train --config experiments/configs/esn_mackey_glass.py --workdir /tmp/esn_mg
  python -m experiments.train --config experiments/configs/esn_mackey_glass.py:quick \
      --workdir /tmp/esn_mg_quick --config.reservoir.leak_rate=0.5

Expected (measured on CPU, seed 0): one-step test NRMSE 2.6e-4 (validation 2.4e-4;
persistence 0.145); closed-loop NRMSE 1.0e-3 at 10 steps, 1.6e-2 at 84 steps and
3.6e-2 at 200 steps (81 starts). Jaeger & Haas (2004) report ~1e-4.2 at 84 steps
with 1000 units, float64 and noise-regularised training; this run uses float32
and 500 units. About 20 s on 2 CPU cores. The quick variant (100 units, ridge
1e-4): one-step test NRMSE ~3e-3, 84-step ~6e-2.
"""

import ml_collections


def get_config(variant: str = "default") -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.task = "esn"
  config.seed = 0                    # reservoir weights

  config.data = ml_collections.ConfigDict()
  config.data.series = "mackey_glass"
  config.data.tau = 17.0             # delay; 17 is mildly chaotic
  config.data.dt = 0.1               # RK4 step
  config.data.subsample = 10         # RK4 steps per sample: one sample per time unit
  config.data.discard = 1000         # transient samples dropped from the constant history
  config.data.washout = 100          # steps that only warm the reservoir up
  config.data.train = 3000           # steps the readout is fitted on
  config.data.validation = 500
  config.data.test = 1000

  config.reservoir = ml_collections.ConfigDict()
  config.reservoir.hidden_size = 500
  config.reservoir.spectral_radius = 1.25
  config.reservoir.connectivity = 0.1
  config.reservoir.input_scaling = 1.0
  config.reservoir.bias_scaling = 0.2
  config.reservoir.leak_rate = 0.3

  config.ridge = 1e-6                # Tikhonov penalty of the readout
  config.horizons = (1, 10, 84, 200)  # closed-loop steps at which NRMSE is reported
  config.closed_loop_stride = 10     # steps between closed-loop starts in the test segment

  if variant == "quick":
    config.reservoir.hidden_size = 100
    config.ridge = 1e-4              # a small reservoir needs more to stay stable in closed loop
    config.data.train = 1000
    config.data.validation = 200
    config.data.test = 300
    config.horizons = (1, 10, 84)
    config.closed_loop_stride = 20
  elif variant != "default":
    raise ValueError(f"unknown esn_mackey_glass variant {variant!r}; expected default or quick")
  return config
