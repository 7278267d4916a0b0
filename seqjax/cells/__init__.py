"""Recurrent cells as records of pure functions (see ``seqjax.Cell``)."""

from seqjax.cells.rnn import jordan, rnn
