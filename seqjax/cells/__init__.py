"""Recurrent cells as records of pure functions (see ``seqjax.Cell``)."""

from seqjax.cells.ctrnn import ctrnn
from seqjax.cells.esn import esn, fit_readout, readout
from seqjax.cells.gru import gru
from seqjax.cells.leaky import leaky, timescales_of
from seqjax.cells.linear import linear_recurrence, lru, min_gru
from seqjax.cells.lstm import lstm, tied_lstm
from seqjax.cells.rnn import jordan, rnn
