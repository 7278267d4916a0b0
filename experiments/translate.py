r"""Translates Spanish text with a trained Bible model (the newest checkpoint of a run).

  python -m experiments.translate --workdir /tmp/translation_table/translation/bible,additive \
      --text "En el principio creó Dios los cielos y la tierra." --beam_size 5 --nbest 3

The text is tokenized like the training data (lower-cased words and
punctuation, ``seqjax.data.text.word_punct_tokenize``); words outside the
run's source vocabulary are read as ``<unk>`` (how many is printed). A
recurrent encoder has no maximum source length: longer sources than the
run trained on are translated (usually worse); the output stops at EOS or at
``config.decode``'s length limit. Prints the n-best translations with their
log-probabilities and length-normalised scores.
"""

from __future__ import annotations

import json
import pathlib
import sys

import ml_collections
import numpy as np
from absl import app, flags, logging

from experiments.tasks import translation
from seqjax import decoding
from seqjax.data.text import detokenize, word_punct_tokenize
from seqjax.train.loop import restore_params



def define_flags():
  """The command's flags (defined only when it runs, so importing it defines none)."""
  flags.DEFINE_string("workdir", None, "A translation run's workdir.", required=True)
  flags.DEFINE_string("text", None, "Spanish text to translate.", required=True)
  flags.DEFINE_integer("beam_size", 5, "Beam width (1: greedy).")
  flags.DEFINE_integer("nbest", 1, "Translations printed, best first (<= beam_size).")
  flags.DEFINE_float("alpha", None, "Length-normalisation exponent (default: the config's).")


def translate(config, params, source_vocab, target_vocab, text: str, *, beam_size: int,
              alpha: float) -> tuple[list[tuple[str, float, float]], int]:
  """``([(translation, log_prob, score)] best first, unknown source words)``.

  Raises:
    ValueError: empty ``text`` (no token) or ``beam_size`` < 1.
  """
  tokens = word_punct_tokenize(text)
  if not tokens:
    raise ValueError(f"text must contain at least one word or punctuation mark, got {text!r}")
  ids = np.concatenate([source_vocab.encode(tokens), [translation.EOS]]).astype(np.int32)
  unknown = int(np.sum(ids == translation.UNK))
  model = translation.build_model(config, source_vocab.size, target_vocab.size)
  d = config.decode
  beams = decoding.beam_search(model, params, ids[None], None, beam_size=beam_size,
                               max_length=d.max_length, alpha=alpha,
                               length_ratio=tuple(d.length_ratio) if d.length_ratio else None)
  out = []
  for k in range(beam_size):
    if not np.isfinite(float(beams.scores[0, k])):
      continue
    n = int(beams.lengths[0, k])
    words = target_vocab.decode(np.asarray(beams.tokens[0, k, :n - 1]))
    out.append((detokenize(words), float(beams.log_probs[0, k]), float(beams.scores[0, k])))
  return out, unknown


def main(argv):
  del argv
  f = flags.FLAGS
  logging.set_verbosity(logging.WARNING)
  workdir = pathlib.Path(f.workdir)
  config_path = workdir / "config.json"
  if not config_path.exists():
    sys.exit(f"error: {config_path} not found: is {workdir} an experiments.train workdir?")
  config = ml_collections.ConfigDict(json.loads(config_path.read_text()))
  if config.task != "translation" or config.data.dataset in translation.SYNTHETIC:
    sys.exit(f"error: {workdir} is not a Bible translation run (task {config.task!r}, "
             f"dataset {config.data.get('dataset')!r})")
  if f.beam_size < 1 or not 1 <= f.nbest <= f.beam_size:
    sys.exit(f"error: --beam_size must be >= 1 and --nbest in [1, beam_size], got "
             f"{f.beam_size} and {f.nbest}")
  try:
    source_vocab, target_vocab = translation.load_vocabularies(workdir)
    model = translation.build_model(config, source_vocab.size, target_vocab.size)
    params, step = restore_params(config, workdir, model.init)
    alpha = config.decode.alpha if f.alpha is None else f.alpha
    results, unknown = translate(config, params, source_vocab, target_vocab, f.text,
                                 beam_size=f.beam_size, alpha=alpha)
  except (FileNotFoundError, ValueError) as error:
    sys.exit(f"error: {error}")
  print(f"# step {step} of {workdir}; {unknown} unknown source word(s); beam {f.beam_size}, "
        f"alpha {alpha}")
  for text, log_prob, score in results[:f.nbest]:
    print(f"{score:8.3f} {log_prob:8.3f}  {text}")


if __name__ == "__main__":
  define_flags()
  app.run(main)
