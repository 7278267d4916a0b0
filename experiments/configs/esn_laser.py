r"""Echo-state network forecasting the Santa Fe laser series (competition data set A).

The 10,093-point series (``experiments/datasets/laser.py``, shipped in
``reservoirpy==0.4.2``: ``pip install --no-deps reservoirpy==0.4.2``) is cut into
[washout 100 | train 4000 | validation 1000 | test 2000]; a leaky reservoir is
run once and a ridge readout solved in closed form. Reservoir settings and the
ridge were picked by a small manual search on the validation one-step NRMSE.
See ``experiments/tasks/esn.py`` for the protocol and the metrics.

  python -m experiments.train --config experiments/configs/esn_laser.py --workdir /tmp/esn_laser
  python -m experiments.train --config experiments/configs/esn_laser.py:quick --workdir /tmp/q

Expected (measured on CPU, seed 0): one-step test NRMSE 7.2e-2 (validation 4.1e-2;
persistence 0.97, since the series oscillates with a period of ~8 steps);
closed-loop NRMSE 0.31 at 5 steps, 0.42 at 10 and 1.8 at 50 (196 starts: the
laser's sudden intensity collapses are not predictable far ahead). About 12 s
on 2 CPU cores.
"""

import ml_collections

from experiments.configs import common


def get_config(variant: str = "default") -> ml_collections.ConfigDict:
  common.check_variant("esn_laser", variant, ("default", "quick"))
  config = common.esn_config(
      "laser", washout=100, train=4000, validation=1000, test=2000,
      hidden_size=300, spectral_radius=0.9, connectivity=0.1, input_scaling=1.0,
      bias_scaling=0.2, leak_rate=0.7,
      ridge=1e-3, horizons=(1, 5, 10, 50), closed_loop_stride=10)
  if variant == "quick":
    config.reservoir.hidden_size = 100
    config.data.train = 1500
    config.data.validation = 300
    config.data.test = 500
  return config
