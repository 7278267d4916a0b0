r"""What word vectors know: the lecture's neighbour table, vector arithmetic and a PCA picture.

Reads word2vec vectors (the text format, e.g. written by
``benchmarks/word2vec_vs_gensim.py --save_dir``) and prints, for the lecture's
query words that occur in them, the nearest neighbours by cosine
(``seqjax.word_vectors.most_similar``), then vector-arithmetic queries
("king - man + woman", "vietnam + capital"), and draws countries and their
capitals projected on the first two principal components of their vectors,
each country joined to its capital (Mikolov et al. 2013, Figure 2).

  python -m experiments.word2vec_explore --vectors /tmp/w2v/sg_seqjax.txt \
      --png docs/figures/word2vec_capitals.png --out /tmp/w2v/explore.md
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import numpy as np

from seqjax import word_vectors

#: The lecture's neighbour table (Collobert et al. 2011; Mikolov et al. 2013).
NEIGHBOUR_QUERIES = ("france", "jesus", "xbox", "reddish", "scratched", "megabits",
                     "paris", "king", "good", "terrible", "movie", "london")
#: (a, b, c): "a - b + c", or (a, "", c): "a + c".
ARITHMETIC = (("king", "man", "woman"), ("paris", "france", "italy"),
              ("walking", "walk", "swim"), ("bigger", "big", "small"),
              ("vietnam", "", "capital"), ("germany", "", "capital"),
              ("actor", "man", "woman"))
#: Pairs from the capital-common-countries section of questions-words.txt.
CAPITALS = (("france", "paris"), ("germany", "berlin"), ("italy", "rome"),
            ("spain", "madrid"), ("russia", "moscow"), ("japan", "tokyo"),
            ("china", "beijing"), ("greece", "athens"), ("egypt", "cairo"),
            ("england", "london"), ("canada", "ottawa"), ("ireland", "dublin"),
            ("poland", "warsaw"), ("portugal", "lisbon"), ("sweden", "stockholm"))


def neighbour_table(vectors: word_vectors.WordVectors, topn: int = 5) -> str:
  """Markdown: each query word present in ``vectors`` and its ``topn`` neighbours."""
  known = set(vectors.words)
  lines = ["| word | nearest neighbours (cosine) |", "|---|---|"]
  for word in NEIGHBOUR_QUERIES:
    if word not in known:
      lines.append(f"| {word} | (not in the vocabulary) |")
      continue
    near = word_vectors.most_similar(vectors, [word], topn=topn)
    lines.append(f"| {word} | " + ", ".join(f"{w} ({s:.2f})" for w, s in near) + " |")
  return "\n".join(lines)


def arithmetic_table(vectors: word_vectors.WordVectors, topn: int = 3) -> str:
  """Markdown: each arithmetic query and its best answers (3CosAdd)."""
  known = set(vectors.words)
  lines = ["| query | answers |", "|---|---|"]
  for a, b, c in ARITHMETIC:
    query = f"{a} - {b} + {c}" if b else f"{a} + {c}"
    if not {a, c} | ({b} if b else set()) <= known:
      lines.append(f"| {query} | (a word is not in the vocabulary) |")
      continue
    answers = word_vectors.most_similar(vectors, [a, c], [b] if b else [], topn=topn)
    lines.append(f"| {query} | " + ", ".join(f"{w} ({s:.2f})" for w, s in answers) + " |")
  return "\n".join(lines)


def capitals_figure(vectors: word_vectors.WordVectors, path: str) -> int:
  """Draws the PCA picture; returns how many country-capital pairs it shows."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  index = vectors.index()
  pairs = [(c, k) for c, k in CAPITALS if c in index and k in index]
  if not pairs:
    raise ValueError("none of the country-capital pairs is in the vocabulary")
  words = [w for pair in pairs for w in pair]
  x = np.asarray(vectors.vectors[[index[w] for w in words]], np.float64)
  x /= np.linalg.norm(x, axis=1, keepdims=True)
  x -= x.mean(0)
  _, _, vt = np.linalg.svd(x, full_matrices=False)
  xy = x @ vt[:2].T
  fig, ax = plt.subplots(figsize=(7, 6))
  for i, (country, capital) in enumerate(pairs):
    a, b = xy[2 * i], xy[2 * i + 1]
    ax.annotate("", xy=b, xytext=a, arrowprops=dict(arrowstyle="->", color="0.6", lw=0.8))
    ax.scatter(*a, color="tab:blue", s=12)
    ax.scatter(*b, color="tab:red", s=12)
    ax.text(*a, country, color="tab:blue", fontsize=9)
    ax.text(*b, capital, color="tab:red", fontsize=9)
  ax.set_title("Countries (blue) and capitals (red): 2-D PCA of the word vectors")
  ax.set_xticks([])
  ax.set_yticks([])
  fig.tight_layout()
  pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(path, dpi=120)
  return len(pairs)


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--vectors", required=True, help="word2vec text file")
  parser.add_argument("--png", default="", help="where to draw the capitals picture")
  parser.add_argument("--out", default="", help="also write the tables here (markdown)")
  args = parser.parse_args(argv)
  if not pathlib.Path(args.vectors).is_file():
    sys.exit(f"error: --vectors must be a word2vec text file, got {args.vectors!r}")
  vectors = word_vectors.load_word2vec_format(args.vectors)
  text = neighbour_table(vectors) + "\n\n" + arithmetic_table(vectors)
  print(text)
  if args.out:
    pathlib.Path(args.out).write_text(text + "\n")
  if args.png:
    count = capitals_figure(vectors, args.png)
    print(f"wrote {args.png} ({count} country-capital pairs)")


if __name__ == "__main__":
  main()
