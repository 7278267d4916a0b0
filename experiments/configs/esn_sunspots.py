r"""Echo-state network forecasting yearly sunspot numbers (1700-2008, 309 years).

The series (``seqjax.data.timeseries.sunspots``, shipped in statsmodels:
``pip install statsmodels``) is cut into [washout 20 | train 180 | validation
50 | test 59]; a small leaky reservoir is run once and a ridge readout solved in
closed form. With 180 training years the readout needs a strong ridge;
settings were picked by a small manual search on the validation one-step
NRMSE. See ``experiments/tasks/esn.py`` for the protocol and the metrics.

  python -m experiments.train --config experiments/configs/esn_sunspots.py --workdir /tmp/esn_sun
  python -m experiments.train --config experiments/configs/esn_sunspots.py:quick --workdir /tmp/q

Expected (measured on CPU, seed 0): one-step test NRMSE 0.45 (validation 0.34;
persistence 0.64 and 0.57); closed-loop NRMSE 0.68 at 2 years, 0.81 at 5 and
0.65 at 10 (50 starts). A small data set: the numbers move by a few hundredths
with the seed. About 10 s on 2 CPU cores, mostly loading statsmodels.
"""

import ml_collections


def get_config(variant: str = "default") -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.task = "esn"
  config.seed = 0                    # reservoir weights

  config.data = ml_collections.ConfigDict()
  config.data.series = "sunspots"
  config.data.washout = 20           # years that only warm the reservoir up
  config.data.train = 180            # years the readout is fitted on
  config.data.validation = 50
  config.data.test = 59

  config.reservoir = ml_collections.ConfigDict()
  config.reservoir.hidden_size = 50
  config.reservoir.spectral_radius = 0.9
  config.reservoir.connectivity = 0.2
  config.reservoir.input_scaling = 0.5
  config.reservoir.bias_scaling = 0.2
  config.reservoir.leak_rate = 1.0

  config.ridge = 1e-2                # Tikhonov penalty of the readout
  config.horizons = (1, 2, 5, 10)    # closed-loop steps at which NRMSE is reported
  config.closed_loop_stride = 1      # steps between closed-loop starts in the test segment

  if variant == "quick":
    config.reservoir.hidden_size = 30
  elif variant != "default":
    raise ValueError(f"unknown esn_sunspots variant {variant!r}; expected default or quick")
  return config
