"""seqjax: recurrent and sequence models as pure JAX functions."""

from seqjax import cells, init, layers
from seqjax.scan import unroll
from seqjax.types import (FROZEN, Cell, FastPath, Implementation, LSTMCarry, keep_frozen,
                          trainable_mask)

__version__ = "0.1.0"
