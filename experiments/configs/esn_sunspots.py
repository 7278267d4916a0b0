r"""Echo-state network forecasting yearly sunspot numbers (1700-2008, 309 years).

The series (``experiments/datasets/sunspots.py``, shipped in statsmodels:
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
with the seed. A few seconds on 2 CPU cores (the CSV is read without importing statsmodels).
"""

import ml_collections

from experiments.configs import common


def get_config(variant: str = "default") -> ml_collections.ConfigDict:
  common.check_variant("esn_sunspots", variant, ("default", "quick"))
  config = common.esn_config(
      "sunspots", washout=20, train=180, validation=50, test=59,   # years
      hidden_size=50, spectral_radius=0.9, connectivity=0.2, input_scaling=0.5,
      bias_scaling=0.2, leak_rate=1.0,
      ridge=1e-2, horizons=(1, 2, 5, 10), closed_loop_stride=1)
  if variant == "quick":
    config.reservoir.hidden_size = 30
  return config
