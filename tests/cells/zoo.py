"""Every cell configuration the generic protocol tests run over.

Each entry builds a small cell for a given dtype; imports are lazy so that a
broken cell module fails its own entries, not the whole suite.
"""

import jax.numpy as jnp


def _rnn(**kw):
  from seqjax.cells.rnn import rnn
  return lambda dtype: rnn(5, dtype=dtype, **kw)


def _jordan():
  from seqjax.cells.rnn import jordan
  return lambda dtype: jordan(5, 4, dtype=dtype)


def _lstm(**kw):
  from seqjax.cells.lstm import lstm
  return lambda dtype: lstm(5, dtype=dtype, **kw)


def _tied_lstm(**kw):
  from seqjax.cells.lstm import tied_lstm
  return lambda dtype: tied_lstm(5, dtype=dtype, **kw)


def _gru(**kw):
  from seqjax.cells.gru import gru
  return lambda dtype: gru(5, dtype=dtype, **kw)


def _leaky(**kw):
  from seqjax.cells.leaky import leaky
  return lambda dtype: leaky(5, dtype=dtype, **kw)


def _ctrnn():
  from seqjax.cells.ctrnn import ctrnn
  return lambda dtype: ctrnn(5, dt=0.2, dtype=dtype)


def _esn():
  from seqjax.cells.esn import esn
  return lambda dtype: esn(6, spectral_radius=0.9, connectivity=0.5, leak_rate=0.5, dtype=dtype)


def _lru():
  from seqjax.cells.linear import lru
  return lambda dtype: lru(5, state_size=4, r_min=0.5, r_max=0.95, dtype=dtype)


def _min_gru():
  from seqjax.cells.linear import min_gru
  return lambda dtype: min_gru(5, dtype=dtype)


CELLS = {
    "rnn_tanh": lambda: _rnn(),
    "rnn_relu": lambda: _rnn(activation="relu"),
    "jordan": _jordan,
    "lstm": lambda: _lstm(),
    "lstm_peephole": lambda: _lstm(peephole=True),
    "tied_lstm": lambda: _tied_lstm(),
    "gru_reset_after": lambda: _gru(reset_after=True),
    "gru_reset_before": lambda: _gru(reset_after=False),
    "leaky_fixed": lambda: _leaky(timescales="fixed", tau=3.0),
    "leaky_sampled": lambda: _leaky(timescales="sampled", tau_range=(1.0, 50.0)),
    "leaky_learned": lambda: _leaky(timescales="learned"),
    "ctrnn": _ctrnn,
    "esn": _esn,
    "lru": _lru,
    "min_gru": _min_gru,
}


# Cells that define a whole-sequence fast path (``Cell.sequence``).
WITH_FAST_PATH = ["rnn_tanh", "rnn_relu", "lstm", "tied_lstm", "gru_reset_after", "esn", "lru",
                  "min_gru"]


def make(name, dtype=jnp.float32):
  return CELLS[name]()(dtype)
