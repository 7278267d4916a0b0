"""Recurrent cells as records of pure functions (see ``seqjax.Cell``)."""

from seqjax.cells.gru import gru
from seqjax.cells.lstm import lstm, tied_lstm
from seqjax.cells.rnn import jordan, rnn
