"""seqjax: recurrent and sequence models as pure JAX functions."""

from seqjax import (attention, cells, classifiers, decoding, diagnostics, embeddings, heads, init,
                    interop, layers, losses, models, pytree, regularizers, seq2seq, word2vec,
                    word_vectors)
from seqjax.models import Model
from seqjax.pytree import count_params
from seqjax.scan import unroll
from seqjax.types import (FROZEN, Cell, FastPath, Implementation, LSTMCarry, keep_frozen,
                          trainable_mask)

__version__ = "0.1.0"
