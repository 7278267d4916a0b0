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

from experiments.configs import common


def get_config(variant: str = "default") -> ml_collections.ConfigDict:
  common.check_variant("esn_mackey_glass", variant, ("default", "quick"))
  config = common.esn_config(
      "mackey_glass",
      tau=17.0,            # delay; 17 is mildly chaotic
      dt=0.1,              # RK4 step
      subsample=10,        # RK4 steps per sample: one sample per time unit
      discard=1000,        # transient samples dropped from the constant history
      washout=100, train=3000, validation=500, test=1000,
      hidden_size=500, spectral_radius=1.25, connectivity=0.1, input_scaling=1.0,
      bias_scaling=0.2, leak_rate=0.3,
      ridge=1e-6, horizons=(1, 10, 84, 200), closed_loop_stride=10)
  if variant == "quick":
    config.reservoir.hidden_size = 100
    config.ridge = 1e-4              # a small reservoir needs more to stay stable in closed loop
    config.data.train = 1000
    config.data.validation = 200
    config.data.test = 300
    config.horizons = (1, 10, 84)
    config.closed_loop_stride = 20
  return config
