r"""Permuted MNIST: sequential MNIST with a fixed, seeded pixel permutation.

Same data, models, budget (~70K parameters) and settings as ``mnist.py`` (see
its docstring for the sources); the permutation is
``experiments.datasets.mnist.pixel_permutation(config.data.permutation_seed)``, applied
to every split. Published results (Bai et al. 2018, Table 1): TCN 97.2%,
GRU 87.3%, LSTM 85.7%, RNN 25.3%.

  python -m experiments.train --config experiments/configs/pmnist.py:tcn --workdir /tmp/pmnist
"""

from experiments.configs import mnist


def get_config(variant: str = "tcn"):
  return mnist.get_config(variant, permute=True)
