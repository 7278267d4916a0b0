"""Recursive networks over trees, many trees at once under ``jit``.

A tree's node states are computed bottom up: a leaf's from its input alone, an
internal node's from its input and its children's states. Written as Python
recursion this is one trace per tree shape; here a batch of trees becomes a
fixed set of arrays and the whole batch runs as one ``lax.scan`` over *steps*,
each computing up to W nodes whose children are all done. A node's level is
its height (0 for a leaf, else 1 + its highest child's); a step holds nodes of
one level or of several, when none depends on another in the same step. This
is the dynamic batching of Looks et al. 2017 (TensorFlow Fold), with the
schedule built on the host and padded to bucket sizes: one compilation per
bucket, never one per tree.

Shape legend (this module)::

  G   trees in a batch (padded)
  N   nodes of all the batch's trees together (padded); index N is the dummy slot
  K   child slots per node (the widest node's children)
  S   scan steps (>= the deepest tree's depth)
  W   nodes per step
  D   node input features;  H  hidden units

On the host (numpy) a tree is a ``Tree``: ``inputs`` (one token id or one
feature vector per node) and ``children`` (n, K) (``-1`` for an empty slot),
with the root at node 0. ``batch_trees`` lays many trees out as one
``TreeBatch``; ``encode`` runs a ``TreeCell`` over it on device::

  cell = seqjax.trees.child_sum_tree_lstm(hidden_size=64)
  params = cell.init(key, input_size=32)
  batch = seqjax.trees.batch_trees(trees)           # numpy, padded to buckets
  node_h, root_h = seqjax.trees.encode(cell, params, batch, embed=table)

How ``encode`` works: a state buffer holds one row per node plus the dummy row
N (always zero: the state of an absent child). All N rows first get their
*leaf* state in one call (``TreeCell.leaf``: a node with no children), then
the scan visits the S steps; step s gathers its W nodes' children's states
(W, K, ...) from the buffer, computes their states with ``TreeCell.node`` and
writes them back. Padding is inert: padded nodes are never scheduled nor read
(their inputs are replaced by zeros first, so even NaN there leaves values and
gradients alone), padded schedule slots write nowhere, and padded trees'
roots read the dummy row.

Composition functions (``TreeCell`` factories):
  ``recursive_net``         h = tanh(x W_x + [h_1; ...; h_K] W_h + b)     (Socher et al. 2011)
  ``child_sum_tree_lstm``   Tai et al. 2015 eqs. 2-8; params are ``seqjax.cells.lstm``'s
  ``nary_tree_lstm``        Tai et al. 2015 eqs. 9-14; with arity 1 it is the LSTM
  ``from_lstm``             the Child-Sum Tree-LSTM of an existing ``seqjax.cells.lstm`` cell

References:
  Goller & Kuchler 1996, "Learning task-dependent distributed representations
  by backpropagation through structure".
  Socher, Lin, Ng & Manning 2011, "Parsing natural scenes and natural language
  with recursive neural networks".
  Tai, Socher & Manning 2015, "Improved semantic representations from
  tree-structured long short-term memory networks",
  https://arxiv.org/abs/1503.00075
  Looks, Herreshoff, Hutchins & Norvig 2017, "Deep learning with dynamic
  computation graphs" (TensorFlow Fold), https://arxiv.org/abs/1702.02181
  Goodfellow, Bengio & Courville 2016, "Deep Learning", section 10.6
  (recursive neural networks), https://www.deeplearningbook.org/contents/rnn.html
  Hu 1961, "Parallel sequencing and assembly line problems" (the schedule:
  fewest steps of a given width for an in-forest).
"""

from __future__ import annotations

import numbers
import re
from typing import Any, Callable, NamedTuple, Optional, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np

from seqjax import checks
from seqjax import init as initializers
from seqjax.cells import common
from seqjax.cells.lstm import lstm
from seqjax.embeddings import lookup
from seqjax.types import Array, Cell, LSTMCarry, Params, PRNGKey

__all__ = ["Tree", "TreeBatch", "TreeCell", "levels", "batch_trees", "encode",
           "recursive_net", "child_sum_tree_lstm", "nary_tree_lstm", "from_lstm"]

State = Any  # a node state: an array (*B, H) or a NamedTuple of them (LSTMCarry)


# ----------------------------------------------------------------------------
# Host side: trees as arrays, validated, and batched into a step schedule.


class Tree(NamedTuple):
  """One tree on the host: node inputs and children, the root at node 0.

  ``children[i, k]`` is the index of node i's k-th child, ``-1`` for an empty
  slot. Slots are positions: an N-ary cell gives slot k its own weights, so
  ``[-1, 5]`` is a node with only a second child. Every node but the root is
  the child of exactly one node (``levels`` checks it).
  """

  inputs: np.ndarray  # (n,) int token ids, or (n, D) float features: one per node
  children: np.ndarray  # (n, K) int: child indices into this tree's nodes, -1 for none


class TreeBatch(NamedTuple):
  """Many trees as one padded array layout (built by ``batch_trees``).

  Tree g's nodes are rows ``roots[g] .. roots[g] + n_g - 1`` of the flat node
  arrays, in the tree's own order; rows after the last tree's are padding.
  Index N (one past the last row) is the dummy slot: the state of an absent
  child, the target of padded schedule entries and padded trees' roots.
  """

  inputs: Array  # (N,) int32 token ids or (N, D) features; padded rows hold zeros (or anything)
  children: Array  # (N, K) int32 flat indices of each node's children; N for an empty slot
  child_mask: Array  # (N, K) bool: True where the slot holds a real child
  node_mask: Array  # (N,) bool: True for real nodes
  level: Array  # (N,) int32: each node's height (0 for leaves and padding)
  tree_ids: Array  # (N,) int32: each node's tree, G for padding (a segment id)
  schedule: Array  # (S, W) int32: the internal nodes each scan step computes; N pads
  roots: Array  # (G,) int32: each tree's root (its first node); N for padded trees
  tree_mask: Array  # (G,) bool: True for real trees
  depth: Array  # (G,) int32: each tree's depth, its root's level (0 for padding)


def _as_children(name: str, children: Any) -> np.ndarray:
  """``children`` as an (n, K) int64 array, or a one-line error naming ``name``."""
  array = np.asarray(children)
  if array.ndim == 1 and array.size == 0:
    array = array.reshape(0, 0)
  if array.size and not np.issubdtype(array.dtype, np.integer):
    raise TypeError(f"{name} must be an integer array (n, K), got dtype {array.dtype}")
  if array.ndim != 2:
    raise ValueError(f"{name} must have shape (n, K) (one row of child indices per node, "
                     f"-1 for none), got shape {array.shape}")
  if array.shape[0] == 0:
    raise ValueError(f"{name} must have at least one node (the root), got shape {array.shape}")
  return array.astype(np.int64)


def _forest_levels(names: Sequence[str],
                   blocks: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
  """Validates trees given as (n_g, K_g) children blocks; levels and distances to the roots.

  All trees are checked and levelled together, vectorised over the forest
  (a batch of thousands of small trees costs a few numpy calls per level, not
  a Python loop per node). Errors name ``names[g]`` and local node indices.

  Returns:
    ``(level, distance)``: (sum n_g,) int64 heights and distances from the
    root (edges), tree after tree.
  """
  sizes = np.array([b.shape[0] for b in blocks], np.int64)
  offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
  total = int(sizes.sum())
  width = max(b.shape[1] for b in blocks)
  local = np.full((total, width), -1, np.int64)
  for block, start in zip(blocks, offsets):
    local[start:start + block.shape[0], :block.shape[1]] = block
  tree_of = np.repeat(np.arange(len(blocks)), sizes)
  node = np.arange(total) - offsets[tree_of]
  size = sizes[tree_of][:, None]

  def fail(flat, message):
    g = int(tree_of[flat])
    raise ValueError(f"{names[g]} {message}")

  bad = (local < -1) | (local >= size)
  if bad.any():
    i, k = np.argwhere(bad)[0]
    fail(i, f"has an out-of-range child: children[{node[i]}, {k}] = {local[i, k]}, "
            f"expected a node index in [0, {sizes[tree_of[i]]}) or -1 for none")
  own = local == node[:, None]
  if own.any():
    i, k = np.argwhere(own)[0]
    fail(i, f"has a cycle: children[{node[i]}, {k}] = {node[i]} makes node {node[i]} "
            f"its own child")
  real = local >= 0
  flat = np.where(real, local + offsets[tree_of][:, None], total)
  parents = np.bincount(flat[real], minlength=total)
  roots = offsets
  if (parents[roots] > 0).any():
    g = int(np.argmax(parents[roots] > 0))
    i, k = np.argwhere(flat == roots[g])[0]
    fail(i, f"has a cycle or a root other than node 0: children[{node[i]}, {k}] = 0 "
            f"makes the root (node 0) a child")
  if (parents > 1).any():
    j = int(np.argmax(parents > 1))
    (a, _), (b, _) = np.argwhere(flat == j)[:2]
    fail(j, f"is not a tree: node {node[j]} is the child of nodes {node[a]} and {node[b]} "
            f"(a tree gives every node but the root one parent, in one slot)")
  orphan = parents == 0
  orphan[roots] = False
  if orphan.any():
    j = int(np.argmax(orphan))
    fail(j, f"is not one tree: node {node[j]} is no node's child, so it is a second root "
            f"(the root is node 0)")
  # Top-down breadth-first walk from the roots: with one parent per node it
  # visits each node once and stops; what it never reaches lies on a cycle.
  depth_of = np.full(total, -1, np.int64)
  frontier = roots
  by_depth = []
  while frontier.size:
    depth_of[frontier] = len(by_depth)
    by_depth.append(frontier)
    below = flat[frontier]
    frontier = below[below < total]
  if (depth_of < 0).any():
    j = int(np.argmax(depth_of < 0))
    fail(j, f"has a cycle through node {node[j]} (it cannot be reached from the root, "
            f"node 0)")
  level = np.zeros(total + 1, np.int64)
  for nodes in reversed(by_depth):
    kids = flat[nodes]
    heights = np.where(kids < total, level[kids] + 1, 0)
    level[nodes] = heights.max(axis=1) if width else 0
  return level[:total], depth_of


def levels(children: Any) -> np.ndarray:
  """Each node's level (height) in one tree: 0 for a leaf, else 1 + its children's highest.

  ``children`` must describe one rooted tree with root node 0: every entry is
  a node index or ``-1``, no node is its own descendant, and every node but
  the root is the child of exactly one node.

  Args:
    children: (n, K) integer array; ``children[i, k]`` is node i's k-th child,
      ``-1`` for none.

  Returns:
    (n,) int64 levels; ``levels(children)[0]`` is the tree's depth.

  Raises:
    TypeError: ``children`` is not an integer array.
    ValueError: one line naming ``children``: an index out of range, a cycle
      (a node its own child, or unreachable from the root), a node with two
      parents, or a second root.
  """
  return _forest_levels(["children"], [_as_children("children", children)])[0]


_BUCKETS = ("geometric", "pow2", "exact")


def _geometric(size: int) -> int:
  """The smallest of 1, 2, 3, 4, 6, 8, 12, 16, 24, ... (2^k and 3 2^(k-1)) >= ``size``."""
  if size <= 2:
    return max(size, 1)
  power = 1 << (size - 1).bit_length()
  return 3 * power // 4 if size <= 3 * power // 4 else power


def _rounder(buckets: Union[str, Callable[[int], int]]) -> Callable[[int], int]:
  if callable(buckets):
    return buckets
  checks.one_of("buckets", buckets, _BUCKETS + ("a callable int -> int",))
  if buckets == "exact":
    return lambda size: size
  if buckets == "pow2":
    return lambda size: 1 if size <= 1 else 1 << (size - 1).bit_length()
  return _geometric


def _rounded(rounder: Callable[[int], int], needed: int, minimum: int = 0) -> int:
  size = rounder(needed)
  if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < needed:
    raise ValueError(f"buckets must round a size up to an int >= it, got {size!r} for {needed}")
  return max(int(size), minimum)


def _size(name: str, budget: Optional[int], needed: int, what: str,
          rounder: Callable[[int], int], minimum: int = 0) -> int:
  """The padded size of one axis: ``budget`` if given (and large enough), else rounded up."""
  if budget is not None:
    budget = checks.non_negative_int(name, budget)
    if budget < needed:
      raise ValueError(f"{name}={budget} is too small for this batch: {what} {needed}")
    return max(budget, minimum)
  return _rounded(rounder, needed, minimum)


def _pack(level: np.ndarray, distance: np.ndarray, flat: np.ndarray, width: int) -> np.ndarray:
  """Assigns every internal node a scan step, at most ``width`` nodes a step.

  Hu's list scheduling: at each step, of the nodes whose children are all
  done, the ``width`` farthest from their root go first (ties: lower index).
  For unit-time tasks on an in-forest (every node one parent) this gives the
  fewest steps any schedule of that width can (Hu 1961), so nodes of
  several levels share a step when none depends on another, and no step is
  spent on one long chain that could have started earlier.

  Args:
    level: (n,) levels of the forest's nodes (0: a leaf, never scheduled).
    distance: (n,) each node's distance from its tree's root.
    flat: (n, K) children as forest indices, n for an empty slot.
    width: W, the nodes a step holds.

  Returns:
    (n,) int64: each node's step, -1 for leaves.

  References:
    Hu 1961, "Parallel sequencing and assembly line problems", Operations
    Research 9(6).
  """
  total = level.shape[0]
  step = np.full(total, -1, np.int64)
  internal = level > 0
  parent = np.full(total + 1, total, np.int64)
  rows, cols = np.nonzero(flat < total)
  parent[flat[rows, cols]] = rows
  # Children still to compute: the internal ones (leaves are done before step 0).
  waiting = np.bincount(parent[:total][internal], minlength=total + 1)[:total]
  ready = np.nonzero(internal & (waiting == 0))[0]
  current = 0
  while ready.size:
    order = np.lexsort((ready, -distance[ready]))
    chosen, ready = ready[order[:width]], ready[order[width:]]
    step[chosen] = current
    up = parent[chosen]
    up = up[up < total]
    np.subtract.at(waiting, up, 1)
    ready = np.concatenate([ready, np.unique(up[waiting[up] == 0])])
    current += 1
  return step


def batch_trees(trees: Sequence[Any],
                *,
                max_children: Optional[int] = None,
                num_trees: Optional[int] = None,
                max_nodes: Optional[int] = None,
                max_steps: Optional[int] = None,
                max_width: Optional[int] = None,
                buckets: Union[str, Callable[[int], int]] = "geometric") -> TreeBatch:
  """Lays out many trees as one padded ``TreeBatch`` with a step schedule (host, numpy).

  Every tree is validated (as ``levels`` does) and every budget checked before
  the batch is built. The internal nodes are packed into S scan steps of W
  nodes, each after its children's steps, by Hu's list scheduling (the
  farthest from their root first), which needs the fewest steps any
  schedule of width W can: S >= the deepest tree's depth, and nodes of
  different levels share a step when none depends on another (a batch of
  bushy trees has a wide first level and narrow upper ones; one step per
  level, W as wide as the widest, would mostly compute padding). Each
  padded size is the budget given for it, or, with none, the size this batch
  needs rounded up by ``buckets``, so that batches of similar trees share
  shapes and a jitted step compiles once per bucket:

    G = num_trees     trees               >= len(trees)
    N = max_nodes     nodes               >= the trees' nodes together
    S = max_steps     scan steps          >= the deepest tree's depth
    W = max_width     nodes per step      (default: the internal nodes / depth, rounded)
    K = max_children  child slots per node (default: the widest ``children``)

  Give all four of G, N, S, W for exactly one compilation in a training run
  (a batch that does not fit raises ValueError instead of recompiling). With
  ``max_steps`` but no ``max_width``, W is the default, or where that needs
  more than ``max_steps`` steps, the narrowest width that fits, rounded up.

  Args:
    trees: a sequence of ``Tree`` (or ``(inputs, children)`` pairs); all
      inputs token ids (n,) or all features (n, D) with one D.
    max_children: K, the child slots per node (an N-ary cell's arity); a node
      with a child in slot k >= max_children raises ValueError. Slots keep
      their positions (an N-ary cell gives each its own weights).
    num_trees: G, or None for ``len(trees)`` rounded by ``buckets``.
    max_nodes: N, or None for the node count rounded by ``buckets``.
    max_steps: S, or None for the steps the packing needs rounded by
      ``buckets``.
    max_width: W, or None for the internal nodes divided by the depth (the
      mean level width), rounded by ``buckets``.
    buckets: how sizes without a budget are rounded up: ``"geometric"``
      (1, 2, 3, 4, 6, 8, 12, 16, 24, ...: at most 1.5x padding, two shapes
      per doubling), ``"pow2"`` (powers of two), ``"exact"`` (no padding:
      one compilation per distinct shape), or a callable ``int -> int``
      returning a size >= its argument.

  Returns:
    A ``TreeBatch`` of numpy arrays (int32 indices; ``inputs`` int32 token
    ids or features in the trees' dtype).

  Raises:
    TypeError / ValueError: one line naming the argument: ``trees[g]`` for a
    malformed tree (shapes, dtypes, a cycle, an out-of-range child), or the
    budget the batch exceeds.
  """
  rounder = _rounder(buckets)
  if isinstance(trees, (Tree, np.ndarray)) or not isinstance(trees, Sequence):
    raise TypeError(f"trees must be a sequence of Tree (inputs, children), got "
                    f"{type(trees).__name__}")
  if not trees:
    raise ValueError("trees must hold at least one tree, got an empty sequence")
  blocks, inputs = [], []
  for g, tree in enumerate(trees):
    if not isinstance(tree, tuple) or len(tree) != 2:
      raise TypeError(f"trees[{g}] must be a Tree(inputs, children), got {type(tree).__name__}")
    children = _as_children(f"trees[{g}].children", tree[1])
    x = np.asarray(tree[0])
    if x.ndim not in (1, 2) or x.shape[0] != children.shape[0]:
      raise ValueError(f"trees[{g}].inputs must have shape (n,) or (n, D) with n = "
                       f"{children.shape[0]} (one row per node of children), got {x.shape}")
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
      raise TypeError(f"trees[{g}].inputs must be int token ids or float features, "
                      f"got dtype {x.dtype}")
    if inputs and (x.shape[1:] != inputs[0].shape[1:]
                   or np.issubdtype(x.dtype, np.integer) != np.issubdtype(inputs[0].dtype,
                                                                          np.integer)):
      raise ValueError(f"trees[{g}].inputs must match trees[0].inputs (shape (n,) + "
                       f"{inputs[0].shape[1:]}, dtype {inputs[0].dtype}), got shape "
                       f"{x.shape} and dtype {x.dtype}")
    blocks.append(children)
    inputs.append(x)
  if max_children is not None:
    slots = checks.positive_int("max_children", max_children)
    for g, block in enumerate(blocks):
      beyond = block[:, slots:] >= 0
      if beyond.any():
        i, k = np.argwhere(beyond)[0]
        raise ValueError(f"max_children={slots} is too small for trees[{g}]: node {i} has a "
                         f"child in slot {k + slots} (children[{i}, {k + slots}] = "
                         f"{block[i, k + slots]})")
  else:
    slots = max(max(b.shape[1] for b in blocks), 1)
  level, distance = _forest_levels([f"trees[{g}]" for g in range(len(trees))], blocks)

  sizes = np.array([b.shape[0] for b in blocks], np.int64)
  offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
  total = int(sizes.sum())
  deepest = int(level.max())
  num_trees = _size("num_trees", num_trees, len(trees), "it has trees:", rounder, 1)
  n = _size("max_nodes", max_nodes, total, "its trees have nodes:", rounder, 1)
  if max_steps is not None:
    max_steps = checks.non_negative_int("max_steps", max_steps)
    if max_steps < deepest:
      raise ValueError(f"max_steps={max_steps} is too small for this batch: its deepest tree "
                       f"has depth {deepest} (a step per level at least)")
  if max_width is not None:
    max_width = checks.positive_int("max_width", max_width)

  flat = np.full((total, slots), total, np.int64)
  for block, start in zip(blocks, offsets):
    cols = min(block.shape[1], slots)
    part = block[:, :cols]
    flat[start:start + block.shape[0], :cols] = np.where(part >= 0, part + start, total)
  internal = int((level > 0).sum())
  width = max_width or _rounded(rounder, -(-internal // max(deepest, 1)), 1)
  step = _pack(level, distance, flat, width)
  needed = int(step.max(initial=-1)) + 1
  if max_width is None and max_steps is not None and needed > max_steps:
    # The fewest steps never grow with the width (Hu's schedule is optimal),
    # so bisect for the narrowest width that fits, then round it up.
    low, high = width, max(internal, 1)
    while high - low > 1:
      middle = (low + high) // 2
      fits = int(_pack(level, distance, flat, middle).max(initial=-1)) + 1 <= max_steps
      low, high = (low, middle) if fits else (middle, high)
    width = _rounded(rounder, high, 1)
    step = _pack(level, distance, flat, width)
    needed = int(step.max(initial=-1)) + 1
  num_steps = _size("max_steps", max_steps, needed,
                    f"with max_width={width} its trees need steps:", rounder)

  children = np.where(flat < total, flat, n).astype(np.int32)
  children = np.concatenate([children, np.full((n - total, slots), n, np.int32)])
  node_mask = np.arange(n) < total
  rows = np.concatenate(inputs)
  padded_inputs = np.zeros((n,) + rows.shape[1:],
                           np.int32 if np.issubdtype(rows.dtype, np.integer) else rows.dtype)
  padded_inputs[:total] = rows
  schedule = np.full((num_steps, width), n, np.int32)
  scheduled = np.nonzero(step >= 0)[0]
  if scheduled.size:
    order = scheduled[np.lexsort((scheduled, step[scheduled]))]
    rows_of = step[order]
    first = np.searchsorted(rows_of, rows_of, side="left")
    schedule[rows_of, np.arange(order.size) - first] = order
  roots = np.full(num_trees, n, np.int32)
  roots[:len(trees)] = offsets
  depths = np.zeros(num_trees, np.int32)
  depths[:len(trees)] = level[offsets]
  node_level = np.zeros(n, np.int32)
  node_level[:total] = level
  tree_ids = np.full(n, num_trees, np.int32)
  tree_ids[:total] = np.repeat(np.arange(len(trees)), sizes)
  return TreeBatch(padded_inputs, children, children < n, node_mask, node_level, tree_ids,
                   schedule, roots, np.arange(num_trees) < len(trees), depths)


# ----------------------------------------------------------------------------
# Composition functions.


class TreeCell(NamedTuple):
  """A composition function for tree nodes: a record of pure functions.

  Built by a factory such as ``child_sum_tree_lstm(hidden_size=64)``, in the
  style of ``seqjax.Cell``::

    params = tree_cell.init(key, input_size)           # pytree of arrays
    state = tree_cell.leaf(params, x)                  # x (*B, D): a node without children
    state = tree_cell.node(params, x, children, mask)  # children: states (*B, K, ...)
    h = tree_cell.hidden(state)                        # (*B, H)

  A state is an array (*B, H) or a NamedTuple of them (``LSTMCarry(h, c)``);
  an absent child's state is all zeros, and ``node`` must also ignore any
  child whose ``mask`` is False, whatever its state holds. ``leaf(params, x)``
  equals ``node`` with every child absent (it only skips the work).

  Attributes:
    init: ``(key, input_size) -> params``.
    leaf: ``(params, x (*B, D)) -> state``.
    node: ``(params, x (*B, D), children (*B, K, ...), child_mask (*B, K))
      -> state``.
    hidden: ``state -> h (*B, H)``, what ``encode`` returns.
    input_size: ``params -> D``.
    hidden_size: H.
    arity: the most child slots a node may have (slot k has its own weights),
      or None for any number (a cell symmetric in its children).
    name: a short human-readable description.
  """

  init: Callable[[PRNGKey, int], Params]
  leaf: Callable[[Params, Array], State]
  node: Callable[[Params, Array, State, Array], State]
  hidden: Callable[[State], Array]
  input_size: Callable[[Params], int]
  hidden_size: int
  arity: Optional[int]
  name: str

  def __repr__(self) -> str:
    return f"TreeCell({self.name})"


def _pad_slots(children: State, child_mask: Array, arity: int) -> tuple[State, Array]:
  """Children (*B, K, ...) with K < arity padded with absent slots up to ``arity``."""
  k = child_mask.shape[-1]
  if k > arity:
    raise ValueError(f"child_mask has {k} child slots, more than the cell's arity {arity}")
  if k == arity:
    return children, child_mask
  pad = lambda a: jnp.concatenate(  # noqa: E731
      [a, jnp.zeros(a.shape[:-2] + (arity - k,) + a.shape[-1:], a.dtype)], axis=-2)
  mask = jnp.concatenate([child_mask, jnp.zeros(child_mask.shape[:-1] + (arity - k,), bool)],
                         axis=-1)
  return jax.tree_util.tree_map(pad, children), mask


def _masked(children: State, child_mask: Array) -> State:
  """Children states with absent slots zeroed (``where``: NaN there cannot leak)."""
  return jax.tree_util.tree_map(
      lambda a: jnp.where(child_mask[..., None], a, jnp.zeros((), a.dtype)), children)


def recursive_net(hidden_size: int,
                  arity: int = 2,
                  *,
                  activation: common.ActivationLike = "tanh",
                  kernel_init=initializers.glorot_uniform(),
                  recurrent_init=initializers.glorot_uniform(),
                  bias_init=initializers.zeros,
                  dtype=jnp.float32) -> TreeCell:
  """The plain recursive network: a node is a layer over its input and its children.

  Equations (x: (*B, D), h_k: (*B, H) the state of child slot k, zero for an
  absent child; ``[;]`` concatenates)::

    h = tanh(x W_x + [h_1; ...; h_K] W_h + b)        K = arity
    leaf: h = tanh(x W_x + b)                        (the same with every child absent)

  Socher et al. 2011 compose two children without an input of the parent's
  own (``p = tanh(W [c_1; c_2] + b)``) and take the leaves' word vectors as
  their states; here every node may carry an input (e.g. an operator token),
  and a leaf is the same layer with no children. Pass zero inputs at internal
  nodes for Socher's form.

  Params: ``w_x`` (D, H), ``w_h`` (K H, H) (rows ``[k H, (k+1) H)`` weigh
  slot k), ``b`` (H,). State: h (*B, H).

  Args:
    hidden_size: H, > 0.
    arity: K, the child slots (each with its own weights), > 0.
    activation: tanh by default, or another name ``seqjax.cells`` knows
      (relu, sigmoid, identity, softsign) or a callable.
    kernel_init: initialiser of ``w_x``.
    recurrent_init: initialiser of ``w_h``.
    bias_init: initialiser of ``b``.
    dtype: dtype of the parameters.

  Returns:
    A ``TreeCell`` with ``arity = K``.

  References:
    Socher, Lin, Ng & Manning 2011, "Parsing natural scenes and natural
    language with recursive neural networks", ICML.
    Goodfellow, Bengio & Courville 2016, "Deep Learning", section 10.6.
  """
  hidden_size = checks.positive_int("hidden_size", hidden_size)
  arity = checks.positive_int("arity", arity)
  act = common.activation(activation)

  def init(key, input_size):
    input_size = common.check_input_size(input_size)
    k_x, k_h, k_b = jax.random.split(key, 3)
    return {
        "w_x": kernel_init(k_x, (input_size, hidden_size), dtype),
        "w_h": recurrent_init(k_h, (arity * hidden_size, hidden_size), dtype),
        "b": bias_init(k_b, (hidden_size,), dtype),
    }

  def leaf(params, x):
    return act(x @ params["w_x"] + params["b"])

  def node(params, x, children, child_mask):
    children, child_mask = _pad_slots(children, child_mask, arity)
    h = _masked(children, child_mask)
    stacked = h.reshape(h.shape[:-2] + (arity * hidden_size,))
    return act(x @ params["w_x"] + stacked @ params["w_h"] + params["b"])

  return TreeCell(init, leaf, node, lambda state: state, common.input_size_of("w_x"),
                  hidden_size, arity,
                  f"recursive_net(hidden_size={hidden_size}, arity={arity}, "
                  f"activation={common.activation_name(activation)})")


def _lstm_output(pre, forget, child_c):
  """c = i * u + sum_k f_k * c_k, h = o * tanh(c) from the gates' pre-activations."""
  a_i, _, a_g, a_o = jnp.split(pre, 4, axis=-1)
  c = jax.nn.sigmoid(a_i) * jnp.tanh(a_g)
  if forget is not None:
    c = c + jnp.sum(forget * child_c, axis=-2)
  return LSTMCarry(h=jax.nn.sigmoid(a_o) * jnp.tanh(c), c=c)


def _child_sum(hidden_size: int, forget_bias: float, init: Callable, name: str) -> TreeCell:
  h_size = hidden_size

  def leaf(params, x):
    return _lstm_output(x @ params["w_x"] + params["b"], None, None)

  def node(params, x, children, child_mask):
    child = _masked(children, child_mask)
    w_h = params["w_h"]
    a_x = x @ params["w_x"] + params["b"]
    pre = a_x + jnp.sum(child.h, axis=-2) @ w_h
    a_f = a_x[..., None, h_size:2 * h_size] + child.h @ w_h[:, h_size:2 * h_size]
    forget = jax.nn.sigmoid(a_f + forget_bias)
    return _lstm_output(pre, forget, child.c)

  return TreeCell(init, leaf, node, lambda state: state.h, common.input_size_of("w_x"),
                  hidden_size, None, name)


def child_sum_tree_lstm(hidden_size: int,
                        *,
                        forget_bias: float = 1.0,
                        kernel_init=initializers.glorot_uniform(),
                        recurrent_init=initializers.blockwise(initializers.orthogonal(), 4),
                        bias_init=initializers.zeros,
                        dtype=jnp.float32) -> TreeCell:
  """Child-Sum Tree-LSTM (Tai et al. 2015, eqs. 2-8): an LSTM with any number of predecessors.

  Equations for node j with children C(j) (x_j: (*B, D); h_k, c_k: (*B, H);
  an absent child contributes nothing)::

    h~_j  = sum_{k in C(j)} h_k
    i_j   = sigmoid(x_j W_xi + h~_j W_hi + b_i)
    f_jk  = sigmoid(x_j W_xf + h_k  W_hf + b_f + forget_bias)    one per child k
    u_j   = tanh   (x_j W_xg + h~_j W_hg + b_g)
    o_j   = sigmoid(x_j W_xo + h~_j W_ho + b_o)
    c_j   = i_j * u_j + sum_{k in C(j)} f_jk * c_k
    h_j   = o_j * tanh(c_j)

  The params are exactly ``seqjax.cells.lstm(hidden_size,
  forget_bias=forget_bias)``'s (built by its ``init``): ``w_x`` (D, 4H), ``w_h``
  (H, 4H), ``b`` (4H,), gates in the order i, f, g (Tai's u), o. A node with
  one child is therefore one LSTM step from the child's (h, c), and a leaf
  one step from zeros: a chain-shaped tree computes ``seqjax.unroll`` of that
  LSTM. State: ``LSTMCarry(h, c)``, each (*B, H). The sum makes the cell
  blind to the order of the children (``arity`` None: any number of them).

  Args:
    hidden_size: H, > 0.
    forget_bias: added to every forget gate's pre-activation (as in
      ``seqjax.cells.lstm``).
    kernel_init: initialiser of ``w_x``.
    recurrent_init: initialiser of ``w_h``; the default makes each gate's
      (H, H) block orthogonal.
    bias_init: initialiser of ``b``.
    dtype: dtype of the parameters.

  Returns:
    A ``TreeCell`` with ``arity=None``.

  References:
    Tai, Socher & Manning 2015, "Improved semantic representations from
    tree-structured long short-term memory networks", section 3.1,
    https://arxiv.org/abs/1503.00075
  """
  cell = lstm(hidden_size, forget_bias=forget_bias, kernel_init=kernel_init,
              recurrent_init=recurrent_init, bias_init=bias_init, dtype=dtype)
  forget_bias = float(forget_bias)
  return _child_sum(cell.hidden_size, forget_bias, cell.init,
                    f"child_sum_tree_lstm(hidden_size={cell.hidden_size}, "
                    f"forget_bias={forget_bias})")


_LSTM_NAME = re.compile(r"lstm\(hidden_size=(\d+), forget_bias=([^,]+), peephole=(\w+)\)")


def from_lstm(cell: Cell) -> TreeCell:
  """The Child-Sum Tree-LSTM whose params are those of ``cell``, a ``seqjax.cells.lstm``.

  The tree cell uses ``cell.init`` (same initialisers, dtype and shapes) and
  ``cell``'s ``forget_bias``, so params trained in a sequence model serve a
  tree model and back; equations in ``child_sum_tree_lstm``. Peepholes and
  the coupled input-forget gate (``tied_lstm``) have no Tree-LSTM form here
  (a peephole reads one previous c, the coupled input gate one forget gate)
  and raise. The match is checked: ``cell.step`` must equal the tree cell on
  a one-child probe, so a cell derived with another step raises too.

  Args:
    cell: a cell built by ``seqjax.cells.lstm(..., peephole=False)`` (its
      ``step`` may be wrapped, e.g. jitted).

  Returns:
    A ``TreeCell`` with ``arity=None``.

  Raises:
    TypeError: ``cell`` is not a ``seqjax.Cell``.
    ValueError: one line naming ``cell``: not a plain LSTM (peepholes, the
      tied variant, another cell, or a step that differs from the LSTM's).
  """
  if not isinstance(cell, Cell):
    raise TypeError(f"cell must be a seqjax.Cell built by seqjax.cells.lstm, "
                    f"got {type(cell).__name__}")
  match = _LSTM_NAME.fullmatch(cell.name)
  if not match:
    raise ValueError(f"cell must be a seqjax.cells.lstm cell without peepholes, got "
                     f"{cell.name}")
  if match.group(3) != "False":
    raise ValueError(f"cell must have no peepholes (a Tree-LSTM node has several "
                     f"previous cells, a peephole reads one), got {cell.name}")
  forget_bias = float(match.group(2))
  tree_cell = _child_sum(cell.hidden_size, forget_bias, cell.init,
                         f"child_sum_tree_lstm(from {cell.name})")
  _check_probe(cell, tree_cell)
  return tree_cell


def _check_probe(cell: Cell, tree_cell: TreeCell) -> None:
  """Raises unless ``cell.step`` equals ``tree_cell.node`` with one child on random values."""
  with jax.ensure_compile_time_eval():
    shapes = jax.eval_shape(lambda k: cell.init(k, 3), jax.random.PRNGKey(0))
    if not (isinstance(shapes, dict) and set(shapes) == {"w_x", "w_h", "b"}
            and shapes["w_h"].shape == (cell.hidden_size, 4 * cell.hidden_size)):
      raise ValueError(f"cell must have the params of seqjax.cells.lstm (w_x, w_h (H, 4H), "
                       f"b), got {jax.tree_util.tree_map(lambda s: s.shape, shapes)}")
    # numpy draws: the probe should not compile a random-number program.
    rng = np.random.default_rng(0)
    dtype = shapes["b"].dtype
    draw = lambda *shape: jnp.asarray(rng.normal(0.0, 0.5, shape), dtype)  # noqa: E731
    params = {k: draw(*s.shape) for k, s in shapes.items()}
    h, c, x = draw(2, cell.hidden_size), draw(2, cell.hidden_size), draw(2, 3)
    (h_step, c_step), _ = cell.step(params, LSTMCarry(h, c), x)
    tree = tree_cell.node(params, x, LSTMCarry(h[:, None], c[:, None]), jnp.ones((2, 1), bool))
    close = bool(jnp.allclose(tree.h, h_step, atol=1e-4) & jnp.allclose(tree.c, c_step,
                                                                          atol=1e-4))
  if not close:
    raise ValueError(f"cell's step must be the LSTM's (seqjax.cells.lstm), but {cell.name}'s "
                     f"step computes something else on a probe")


def nary_tree_lstm(hidden_size: int,
                   arity: int,
                   *,
                   forget_bias: float = 1.0,
                   kernel_init=initializers.glorot_uniform(),
                   recurrent_init=None,
                   bias_init=initializers.zeros,
                   dtype=jnp.float32) -> TreeCell:
  """N-ary Tree-LSTM (Tai et al. 2015, eqs. 9-14): each child slot has its own weights.

  Equations for node j with child slots l = 1..N (x_j: (*B, D); h_jl, c_jl:
  (*B, H), zeros for an absent child; ``U_l`` acts on slot l)::

    i_j   = sigmoid(x_j W_xi + sum_l h_jl U^i_l + b_i)
    f_jk  = sigmoid(x_j W_xf + sum_l h_jl U^f_kl + b_f + forget_bias)   k = 1..N
    u_j   = tanh   (x_j W_xg + sum_l h_jl U^u_l + b_g)
    o_j   = sigmoid(x_j W_xo + sum_l h_jl U^o_l + b_o)
    c_j   = i_j * u_j + sum_l f_jl * c_jl
    h_j   = o_j * tanh(c_j)

  Each child's forget gate f_jk sees every sibling through U^f_kl, which
  Tai et al. introduce so that a node can keep one child's memory depending
  on the others'.

  Params: ``w_x`` (D, 4H) and ``b`` (4H,), gates i, f, g (Tai's u), o as in
  ``seqjax.cells.lstm`` (W_xf and b_f are shared by the N forget gates, as in
  eq. 10); ``w_h`` (N H, (N + 3) H) with row block l = slot l and column
  blocks ``[i, f_1, ..., f_N, g, o]``: ``U^f_kl = w_h[l H:(l+1) H, (1+k) H:(2+k) H]``
  (0-based k, l). With ``arity=1`` these are exactly the LSTM's params and the
  cell is the LSTM (a chain of nodes is ``seqjax.unroll`` of
  ``seqjax.cells.lstm(hidden_size, forget_bias=forget_bias)``). State:
  ``LSTMCarry(h, c)``, each (*B, H).

  Args:
    hidden_size: H, > 0.
    arity: N, the child slots, > 0 (Tai et al. use N = 2 on binarised parse
      trees).
    forget_bias: added to every forget gate's pre-activation.
    kernel_init: initialiser of ``w_x``.
    recurrent_init: initialiser of ``w_h``; None (the default) makes each of
      its N + 3 column blocks (N H, H) orthogonal.
    bias_init: initialiser of ``b``.
    dtype: dtype of the parameters.

  Returns:
    A ``TreeCell`` with ``arity = N``.

  References:
    Tai, Socher & Manning 2015, "Improved semantic representations from
    tree-structured long short-term memory networks", section 3.2,
    https://arxiv.org/abs/1503.00075
  """
  hidden_size = checks.positive_int("hidden_size", hidden_size)
  arity = checks.positive_int("arity", arity)
  forget_bias = checks.finite("forget_bias", forget_bias)
  if recurrent_init is None:
    recurrent_init = initializers.blockwise(initializers.orthogonal(), arity + 3)
  h_size = hidden_size

  def init(key, input_size):
    input_size = common.check_input_size(input_size)
    k_x, k_h, k_b = jax.random.split(key, 3)
    return {
        "w_x": kernel_init(k_x, (input_size, 4 * h_size), dtype),
        "w_h": recurrent_init(k_h, (arity * h_size, (arity + 3) * h_size), dtype),
        "b": bias_init(k_b, (4 * h_size,), dtype),
    }

  def leaf(params, x):
    return _lstm_output(x @ params["w_x"] + params["b"], None, None)

  def node(params, x, children, child_mask):
    children, child_mask = _pad_slots(children, child_mask, arity)
    child = _masked(children, child_mask)
    a_x = x @ params["w_x"] + params["b"]
    a_h = child.h.reshape(child.h.shape[:-2] + (arity * h_size,)) @ params["w_h"]
    rec_i = a_h[..., :h_size]
    rec_f = a_h[..., h_size:(arity + 1) * h_size]
    rec_go = a_h[..., (arity + 1) * h_size:]
    pre = a_x + jnp.concatenate([rec_i, jnp.zeros_like(rec_i), rec_go], axis=-1)
    a_f = a_x[..., None, h_size:2 * h_size] + rec_f.reshape(rec_f.shape[:-1] + (arity, h_size))
    forget = jax.nn.sigmoid(a_f + forget_bias)
    return _lstm_output(pre, forget, child.c)

  return TreeCell(init, leaf, node, lambda state: state.h, common.input_size_of("w_x"),
                  hidden_size, arity,
                  f"nary_tree_lstm(hidden_size={hidden_size}, arity={arity}, "
                  f"forget_bias={forget_bias})")


# ----------------------------------------------------------------------------
# Device side: the scan over steps.

_FIELDS = {  # field: (rank, kind, layout) of a TreeBatch
    "children": (2, "int", "(N, K)"),
    "child_mask": (2, "bool", "(N, K)"),
    "node_mask": (1, "bool", "(N,)"),
    "schedule": (2, "int", "(S, W)"),
    "roots": (1, "int", "(G,)"),
}


def _check_batch(batch: Any) -> tuple[int, int]:
  """Trace-time checks of a ``TreeBatch``'s shapes and dtypes; returns (N, K)."""
  if not isinstance(batch, TreeBatch):
    raise TypeError(f"batch must be a TreeBatch (from seqjax.trees.batch_trees), "
                    f"got {type(batch).__name__}")
  for field, (rank, kind, layout) in _FIELDS.items():
    value = getattr(batch, field)
    shape, dtype = checks.shape_of(value), np.dtype(jnp.result_type(value))
    ok_kind = dtype == np.bool_ if kind == "bool" else np.issubdtype(dtype, np.integer)
    if len(shape) != rank or not ok_kind:
      raise ValueError(f"batch.{field} must be {kind} of shape {layout}, got {dtype.name} "
                       f"of shape {shape}")
  n, k = checks.shape_of(batch.children)
  for field in ("child_mask", "node_mask"):
    if checks.shape_of(getattr(batch, field))[0] != n or (
        field == "child_mask" and checks.shape_of(batch.child_mask) != (n, k)):
      raise ValueError(f"batch.{field} must have shape {_FIELDS[field][2]} with N = {n}, "
                       f"K = {k} (batch.children's), got {checks.shape_of(getattr(batch, field))}")
  inputs = checks.shape_of(batch.inputs)
  if len(inputs) not in (1, 2) or inputs[0] != n:
    raise ValueError(f"batch.inputs must have shape (N,) or (N, D) with N = {n} "
                     f"(batch.children's rows), got {inputs}")
  return n, k


def encode(tree_cell: TreeCell, params: Params, batch: TreeBatch, *,
           embed: Optional[Array] = None) -> tuple[Array, Array]:
  """Runs ``tree_cell`` bottom up over every tree of ``batch``: one ``lax.scan`` over steps.

  Equations (``state_n`` for each node n; ``children(n)`` its child slots)::

    state_n = leaf(x_n)                                   level 0 (no children)
    state_n = node(x_n, [state_c for c in children(n)])   after all its children
    x_n     = embed[inputs_n] (token ids) or inputs_n (features)

  A batch costs S + 1 cell calls, traced once: one over all N nodes as
  leaves, then one per step of W nodes (``batch.schedule``). Padding never
  changes a real node's value or gradient (see the module docstring). Works
  under ``jit`` and ``grad``; the batch's arrays may be traced (only their
  shapes are read at trace time).

  Token ids or features: with integer ``batch.inputs`` give ``embed``, the
  (V, D) table (typically ``params["embed"]`` of the caller's model, so its
  gradient flows); ids of real nodes must lie in ``[0, V)`` (checked when
  concrete, NaN when traced, as ``seqjax.embeddings.lookup``). With float
  ``batch.inputs`` (N, D) leave ``embed`` None.

  Args:
    tree_cell: a ``TreeCell`` (``child_sum_tree_lstm``, ``nary_tree_lstm``,
      ``recursive_net``, ``from_lstm``).
    params: its params (``tree_cell.init(key, D)``).
    batch: a ``TreeBatch`` from ``batch_trees``; its K child slots must not
      exceed ``tree_cell.arity``.
    embed: (V, D) embedding table for token-id inputs, else None.

  Returns:
    ``(node_h, root_h)``: every node's hidden state (N, H), zeros on padded
    nodes, and each tree's root's (G, H), zeros for padded trees.

  Raises:
    TypeError / ValueError: one line naming ``batch``'s field, ``embed`` or
    ``tree_cell``, at trace time, before any work.
  """
  if not isinstance(tree_cell, TreeCell):
    raise TypeError(f"tree_cell must be a seqjax.trees.TreeCell, got {type(tree_cell).__name__}")
  n, k = _check_batch(batch)
  if tree_cell.arity is not None and k > tree_cell.arity:
    raise ValueError(f"batch.children has {k} child slots, more than {tree_cell.name}'s arity "
                     f"{tree_cell.arity}: build the batch with batch_trees(..., "
                     f"max_children={tree_cell.arity})")
  ids = jnp.issubdtype(jnp.result_type(batch.inputs), jnp.integer)
  node_mask = jnp.asarray(batch.node_mask)
  if ids:
    if embed is None:
      raise ValueError("embed must be the (V, D) embedding table: batch.inputs holds token "
                       "ids")
    if checks.shape_of(batch.inputs) != (n,):
      raise ValueError(f"batch.inputs of token ids must have shape (N,) = ({n},), got "
                       f"{checks.shape_of(batch.inputs)}")
    if len(checks.shape_of(embed)) != 2:
      raise ValueError(f"embed must be an embedding table of shape (V, D), got shape "
                       f"{checks.shape_of(embed)}")
    x = lookup(embed, batch.inputs, mask=node_mask)
  else:
    if embed is not None:
      raise ValueError("embed must be None: batch.inputs holds features (N, D), not token ids")
    checks.float_array("batch.inputs", batch.inputs)
    if len(checks.shape_of(batch.inputs)) != 2:
      raise ValueError(f"batch.inputs of features must have shape (N, D), got "
                       f"{checks.shape_of(batch.inputs)}")
    x = jnp.where(node_mask[:, None], batch.inputs, jnp.zeros((), batch.inputs.dtype))
  size = tree_cell.input_size(params)
  if x.shape[-1] != size:
    raise ValueError(f"node inputs must have {size} features (the input_size params were built "
                     f"for), got {x.shape[-1]} (from {'embed' if ids else 'batch.inputs'})")

  # Row n is the dummy slot: zero inputs, zero state, no children.
  x = jnp.concatenate([x, jnp.zeros((1, size), x.dtype)])
  real = jnp.concatenate([node_mask, jnp.zeros((1,), bool)])
  children = jnp.concatenate([jnp.asarray(batch.children, jnp.int32),
                              jnp.full((1, k), n, jnp.int32)])
  child_mask = jnp.concatenate([jnp.asarray(batch.child_mask), jnp.zeros((1, k), bool)])
  schedule = jnp.asarray(batch.schedule, jnp.int32)
  width = schedule.shape[1]

  leaves = tree_cell.leaf(params, x)
  buffer = jax.tree_util.tree_map(
      lambda s: jnp.where(real.reshape((-1,) + (1,) * (s.ndim - 1)), s, jnp.zeros((), s.dtype)),
      leaves)
  # Per-step inputs are gathered before the loop, so their gradients leave it
  # as scan outputs instead of a dense (N, D) accumulator carried through it.
  # Padded slots write out of range (dropped); distinct targets keep the
  # scatter's indices unique.
  scheduled = schedule < n
  targets = jnp.where(scheduled, schedule, n + 1 + jnp.arange(width, dtype=jnp.int32))
  xs = (x[schedule], children[schedule], child_mask[schedule] & scheduled[..., None], targets)

  def step(buffer, inputs):
    x_s, child_index, mask_s, target = inputs
    child_states = jax.tree_util.tree_map(lambda b: b[child_index], buffer)
    states = tree_cell.node(params, x_s, child_states, mask_s)
    buffer = jax.tree_util.tree_map(
        lambda b, s: b.at[target].set(s.astype(b.dtype), mode="drop", unique_indices=True),
        buffer, states)
    return buffer, None

  buffer, _ = jax.lax.scan(step, buffer, xs)
  hidden = tree_cell.hidden(buffer)
  return hidden[:n], hidden[jnp.asarray(batch.roots, jnp.int32)]
