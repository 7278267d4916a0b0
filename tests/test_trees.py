"""Tests for seqjax.trees: tree validation, batching into a step schedule, tree cells, encode.

References are independent: each tree is evaluated alone by plain Python
recursion from the root, written from Tai et al.'s equations (and Socher et
al.'s for the plain recursive net) in float64 numpy; gradients are its central
differences, coordinate by coordinate. A chain-shaped tree is checked against
``seqjax.unroll`` of the LSTM.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax import trees
from seqjax.cells import gru, lstm, tied_lstm
from seqjax.scan import unroll

D, H, V, K = 3, 4, 7, 3
FORGET_BIAS = 0.7


# ----------------------------------------------------------------------------
# Trees, and the references.


def _random_tree(rng, n, slots=K, features=False):
  """A random tree of n nodes: each new node takes a random free slot of an earlier
  node, then the non-root nodes are relabelled at random (children may precede
  their parents and slots have gaps)."""
  children = -np.ones((n, slots), np.int64)
  for i in range(1, n):
    free = np.argwhere(children[:i] < 0)
    parent, slot = free[rng.integers(len(free))]
    children[parent, slot] = i
  label = np.concatenate([[0], 1 + rng.permutation(n - 1)])
  relabelled = -np.ones_like(children)
  relabelled[label] = np.where(children >= 0, label[children], -1)
  if features:
    inputs = rng.normal(size=(n, D)).astype(np.float32)
  else:
    inputs = rng.integers(0, V, size=n).astype(np.int32)
  return trees.Tree(inputs, relabelled)


_RNG = np.random.default_rng(0)
TREES = [_random_tree(_RNG, n) for n in (6, 1, 9, 4, 2, 7)]
NODES = sum(len(t.inputs) for t in TREES)
DEPTH = max(int(trees.levels(t.children)[0]) for t in TREES)


def _sigmoid(xp, a):
  return 1.0 / (1.0 + xp.exp(-a))


def _kids(children, j):
  """[(slot, child)] of node j's real children."""
  return [(slot, int(c)) for slot, c in enumerate(children[j]) if c >= 0]


def _ref_recursive_net(xp, p, x, children, j, out, arity=K):
  """Socher et al.: h = tanh(x W_x + sum_l h_l W_h[l] + b), absent children zero.

  Evaluates node j's subtree by recursion, storing each node's h in ``out``."""
  a = x[j] @ p["w_x"] + p["b"]
  for slot, c in _kids(children, j):
    a = a + _ref_recursive_net(xp, p, x, children, c, out) @ p["w_h"][slot * H:(slot + 1) * H]
  out[j] = xp.tanh(a)
  return out[j]


def _ref_child_sum(xp, p, x, children, j, out):
  """Tai et al. 2015 eqs. 2-8; returns (h, c) and stores h in ``out``."""
  w_i, w_f, w_u, w_o = (p["w_x"][:, g * H:(g + 1) * H] for g in range(4))
  u_i, u_f, u_u, u_o = (p["w_h"][:, g * H:(g + 1) * H] for g in range(4))
  b_i, b_f, b_u, b_o = (p["b"][g * H:(g + 1) * H] for g in range(4))
  states = [_ref_child_sum(xp, p, x, children, c, out) for _, c in _kids(children, j)]
  h_tilde = sum((h for h, _ in states), xp.zeros(H, x.dtype))
  i = _sigmoid(xp, x[j] @ w_i + h_tilde @ u_i + b_i)
  o = _sigmoid(xp, x[j] @ w_o + h_tilde @ u_o + b_o)
  u = xp.tanh(x[j] @ w_u + h_tilde @ u_u + b_u)
  c = i * u
  for h_k, c_k in states:
    c = c + _sigmoid(xp, x[j] @ w_f + h_k @ u_f + b_f + FORGET_BIAS) * c_k
  out[j] = o * xp.tanh(c)
  return out[j], c


def _ref_nary(xp, p, x, children, j, out, arity=K):
  """Tai et al. 2015 eqs. 9-14, U^f_kl for every pair of slots; returns (h, c)."""
  block = lambda row, col: p["w_h"][row * H:(row + 1) * H, col * H:(col + 1) * H]  # noqa: E731
  w = [p["w_x"][:, g * H:(g + 1) * H] for g in range(4)]
  b = [p["b"][g * H:(g + 1) * H] for g in range(4)]
  h, c = {}, {}
  for slot, child in _kids(children, j):
    h[slot], c[slot] = _ref_nary(xp, p, x, children, child, out)

  def recurrent(col):  # sum_l h_l U_l over the present children (absent ones are zero)
    return sum((h[l] @ block(l, col) for l in h), xp.zeros(H, x.dtype))

  i = _sigmoid(xp, x[j] @ w[0] + recurrent(0) + b[0])
  u = xp.tanh(x[j] @ w[2] + recurrent(arity + 1) + b[2])
  o = _sigmoid(xp, x[j] @ w[3] + recurrent(arity + 2) + b[3])
  cell = i * u
  for k in c:
    cell = cell + _sigmoid(xp, x[j] @ w[1] + recurrent(1 + k) + b[1] + FORGET_BIAS) * c[k]
  out[j] = o * xp.tanh(cell)
  return out[j], cell


CELLS = {
    "recursive_net": (lambda: trees.recursive_net(H, arity=K), _ref_recursive_net),
    "child_sum": (lambda: trees.child_sum_tree_lstm(H, forget_bias=FORGET_BIAS), _ref_child_sum),
    "nary": (lambda: trees.nary_tree_lstm(H, K, forget_bias=FORGET_BIAS), _ref_nary),
}


def _ref_all_h(ref, xp, p, x, children):
  """Every node's h, from one recursion from the root of this tree alone."""
  out = {}
  ref(xp, p, x, children, 0, out)
  return [out[j] for j in range(children.shape[0])]


def _params(name, seed=1):
  cell = CELLS[name][0]()
  params = cell.init(jax.random.PRNGKey(seed), D)
  rng = np.random.default_rng(seed)
  # Random nonzero biases, so that no gate sits at 0.5.
  params = {k: jnp.asarray(v + 0.3 * rng.normal(size=v.shape).astype(np.float32))
            for k, v in params.items()}
  embed = jnp.asarray(rng.normal(size=(V, D)).astype(np.float32))
  return cell, params, embed


def _weights(seed, num_trees, num_nodes):
  rng = np.random.default_rng(seed)
  return (rng.normal(size=(num_trees, H)).astype(np.float32),
          rng.normal(size=(num_nodes, H)).astype(np.float32))


@functools.lru_cache(maxsize=None)
def _value_and_grad(name):
  """One jitted function per cell; jit caches one program per batch shape."""
  cell = CELLS[name][0]()

  def loss(params, embed, batch, root_w, node_w):
    node_h, root_h = trees.encode(cell, params, batch, embed=embed)
    return jnp.sum(root_h * root_w) + jnp.sum(node_h * node_w), (node_h, root_h)

  return jax.jit(jax.value_and_grad(loss, argnums=(0, 1), has_aux=True))


def _batched(name, params, embed, batch, seed=5):
  root_w, node_w = _weights(seed, len(TREES), sum(len(t.inputs) for t in TREES))
  g, n = batch.roots.shape[0], batch.children.shape[0]
  # Padded nodes and trees get weights too: their outputs must be constant zeros.
  root_pad = np.full((g, H), 3.0, np.float32)
  root_pad[:len(TREES)] = root_w
  node_pad = np.full((n, H), 3.0, np.float32)
  node_pad[:node_w.shape[0]] = node_w
  (value, (node_h, root_h)), grads = _value_and_grad(name)(params, embed, batch, root_pad,
                                                            node_pad)
  return value, node_h, root_h, grads


# ----------------------------------------------------------------------------
# Host side.


def test_levels_of_a_hand_built_tree():
  #        0
  #      /   \
  #     3     1
  #    / \     \
  #   2   4     5        node 4 has one child in its second slot
  #        \
  #         6
  children = [[3, 1], [-1, 5], [-1, -1], [2, 4], [-1, 6], [-1, -1], [-1, -1]]
  np.testing.assert_array_equal(trees.levels(children), [3, 1, 0, 2, 1, 0, 0])
  np.testing.assert_array_equal(trees.levels([[-1]]), [0])
  np.testing.assert_array_equal(trees.levels(np.zeros((1, 0), int)), [0])


@pytest.mark.parametrize("children, message", [
    ([[1, 5], [-1, -1]], r"children\[0, 1\] = 5"),
    ([[1, -2], [-1, -1]], r"children\[0, 1\] = -2"),
    ([[1], [1]], "cycle.*node 1 its own child"),
    ([[1], [0]], "cycle or a root other than node 0"),
    ([[1, -1], [2, -1], [-1, -1], [4, -1], [3, -1]], "cycle through node 3"),
    ([[1, 2], [2, -1], [-1, -1]], "node 2 is the child of nodes 0 and 1"),
    ([[1, 1], [-1, -1]], "node 1 is the child of nodes 0 and 0"),
    ([[1], [-1], [-1]], "node 2 is no node's child"),
])
def test_levels_name_children_for_every_malformed_tree(children, message):
  with pytest.raises(ValueError, match="children.*" + message):
    trees.levels(children)


def test_levels_reject_arrays_that_are_not_children():
  with pytest.raises(TypeError, match="children must be an integer array"):
    trees.levels([[1.0, -1.0], [-1.0, -1.0]])
  with pytest.raises(ValueError, match="children must have shape"):
    trees.levels([1, -1])
  with pytest.raises(ValueError, match="children must have at least one node"):
    trees.levels(np.zeros((0, 2), int))


def _schedule_is_valid(batch):
  """Every real internal node exactly once; each after all its children."""
  n = batch.children.shape[0]
  step_of = {}
  for s, row in enumerate(np.asarray(batch.schedule)):
    for node in row[row < n]:
      assert node not in step_of
      step_of[int(node)] = s
  internal = {int(i) for i in np.nonzero(np.asarray(batch.child_mask).any(axis=1))[0]}
  assert set(step_of) == internal
  for node, s in step_of.items():
    for child in np.asarray(batch.children)[node]:
      if child < n and child in step_of:
        assert step_of[int(child)] < s


def test_batch_layout_equals_a_python_assembly():
  batch = trees.batch_trees(TREES, buckets="exact")
  sizes = [len(t.inputs) for t in TREES]
  total = sum(sizes)
  n = batch.children.shape[0]
  assert n == total and batch.roots.shape == (len(TREES),)
  start = 0
  for g, tree in enumerate(TREES):
    rows = slice(start, start + sizes[g])
    np.testing.assert_array_equal(batch.inputs[rows], tree.inputs)
    want = np.where(tree.children >= 0, tree.children + start, n)
    np.testing.assert_array_equal(batch.children[rows], want)
    np.testing.assert_array_equal(batch.child_mask[rows], tree.children >= 0)
    np.testing.assert_array_equal(batch.level[rows], trees.levels(tree.children))
    np.testing.assert_array_equal(batch.tree_ids[rows], g)
    assert batch.roots[g] == start and batch.depth[g] == trees.levels(tree.children)[0]
    start += sizes[g]
  assert batch.node_mask.all() and batch.tree_mask.all()
  assert batch.schedule.shape[0] >= batch.depth.max()
  _schedule_is_valid(batch)
  for field in ("children", "schedule", "roots", "level", "tree_ids", "depth", "inputs"):
    assert getattr(batch, field).dtype == np.int32, field


def test_padding_and_buckets():
  total = sum(len(t.inputs) for t in TREES)
  batch = trees.batch_trees(TREES, num_trees=8, max_nodes=40, max_steps=9, max_width=5)
  assert batch.inputs.shape == (40,) and batch.schedule.shape == (9, 5)
  assert batch.roots.shape == (8,) and batch.children.shape == (40, K)
  np.testing.assert_array_equal(batch.roots[len(TREES):], 40)
  np.testing.assert_array_equal(batch.node_mask, np.arange(40) < total)
  np.testing.assert_array_equal(batch.tree_mask, np.arange(8) < len(TREES))
  np.testing.assert_array_equal(batch.children[total:], 40)
  np.testing.assert_array_equal(batch.tree_ids[total:], 8)
  _schedule_is_valid(batch)
  # Sizes without a budget are rounded up: 6 trees, 29 nodes.
  assert trees.batch_trees(TREES).roots.shape == (6,)
  assert trees.batch_trees(TREES).inputs.shape == (32,)
  assert trees.batch_trees(TREES, buckets="pow2").roots.shape == (8,)
  assert trees.batch_trees(TREES, buckets=lambda s: 10 * s).inputs.shape == (290,)
  # A width of 1 is a step per internal node.
  narrow = trees.batch_trees(TREES, max_width=1, buckets="exact")
  internal = int(np.asarray(narrow.child_mask).any(axis=1).sum())
  assert narrow.schedule.shape == (internal, 1)
  _schedule_is_valid(narrow)
  # With max_steps alone, the width grows until the batch fits.
  fitted = trees.batch_trees(TREES, max_steps=int(narrow.depth.max()))
  assert fitted.schedule.shape[0] == narrow.depth.max()
  _schedule_is_valid(fitted)
  # The schedule is Hu's: with two nodes a step, a chain of 4 operations and
  # 4 single operations take 4 steps (the chain's first, then the others
  # beside it), where one level after another would take 3 + 3.
  chain = trees.Tree(np.zeros(5, np.int32), [[1], [2], [3], [4], [-1]])
  single = trees.Tree(np.zeros(2, np.int32), [[1], [-1]])
  hu = trees.batch_trees([single, single, chain, single, single], max_width=2, buckets="exact")
  assert hu.schedule.shape == (4, 2)
  _schedule_is_valid(hu)
  # A batch of leaves has no steps.
  leaves = trees.batch_trees([TREES[1], TREES[1]], buckets="exact")
  assert leaves.schedule.shape == (0, 1)


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_trees=5), "num_trees=5 is too small.*6"),
    (dict(max_nodes=NODES - 1), f"max_nodes={NODES - 1} is too small.*{NODES}"),
    (dict(max_steps=DEPTH - 1), f"max_steps={DEPTH - 1} is too small.*depth {DEPTH}"),
    (dict(max_steps=DEPTH, max_width=1), f"max_steps={DEPTH} is too small.*max_width=1"),
    (dict(max_children=2), "max_children=2 is too small for trees"),
    (dict(buckets="linear"), "buckets must be one of"),
    (dict(buckets=lambda s: s - 1), "buckets must round a size up"),
    (dict(max_width=0), "max_width must be a positive integer"),
])
def test_batch_rejects_budgets_it_exceeds_naming_them(kwargs, message):
  with pytest.raises(ValueError, match=message):
    trees.batch_trees(TREES, **kwargs)


def test_batch_names_the_malformed_tree():
  cyclic = trees.Tree(np.zeros(3, np.int32), np.array([[1], [2], [1]]))
  with pytest.raises(ValueError, match=r"trees\[1\] has a cycle or a root"):
    trees.batch_trees([TREES[0], trees.Tree(np.zeros(2, np.int32), [[1], [0]])])
  with pytest.raises(ValueError, match=r"trees\[2\] is not a tree: node 1 is the child"):
    trees.batch_trees([TREES[0], TREES[1], cyclic])
  out_of_range = trees.Tree(np.zeros(2, np.int32), np.array([[1, 2], [-1, -1]]))
  with pytest.raises(ValueError, match=r"trees\[1\] has an out-of-range child"):
    trees.batch_trees([TREES[0], out_of_range])
  with pytest.raises(ValueError, match=r"trees\[1\].inputs must have shape"):
    trees.batch_trees([TREES[0], trees.Tree(np.zeros(3, np.int32), TREES[3].children)])
  with pytest.raises(ValueError, match=r"trees\[1\].inputs must match trees\[0\]"):
    trees.batch_trees([TREES[0], _random_tree(np.random.default_rng(1), 3, features=True)])
  with pytest.raises(TypeError, match=r"trees\[0\] must be a Tree"):
    trees.batch_trees([np.zeros(3)])
  with pytest.raises(TypeError, match="trees must be a sequence"):
    trees.batch_trees(TREES[0])
  with pytest.raises(ValueError, match="trees must hold at least one tree"):
    trees.batch_trees([])


# ----------------------------------------------------------------------------
# Encoding.


@pytest.mark.parametrize("name", sorted(CELLS))
def test_encode_equals_a_recursive_evaluation_of_each_tree_values_and_gradients(name):
  cell, params, embed = _params(name)
  batch = trees.batch_trees(TREES, max_children=K)
  value, node_h, root_h, grads = _batched(name, params, embed, batch)
  ref = CELLS[name][1]
  p64 = {k: np.asarray(v, np.float64) for k, v in params.items()}
  start = 0
  for g, tree in enumerate(TREES):
    x = np.asarray(embed, np.float64)[tree.inputs]
    want = np.stack(_ref_all_h(ref, np, p64, x, tree.children))
    np.testing.assert_allclose(node_h[start:start + len(x)], want, atol=2e-6, rtol=1e-5)
    np.testing.assert_allclose(root_h[g], want[0], atol=2e-6, rtol=1e-5)
    start += len(x)
  np.testing.assert_array_equal(node_h[start:], 0.0)

  # Gradients: central differences of the float64 recursion, every coordinate
  # of every parameter and of the embedding table.
  root_w, node_w = _weights(5, len(TREES), start)
  variables = dict(p64, embed=np.asarray(embed, np.float64))

  def ref_loss():
    total, first = 0.0, 0
    for g, tree in enumerate(TREES):
      hs = _ref_all_h(ref, np, variables, variables["embed"][tree.inputs], tree.children)
      total += np.sum(hs[0] * root_w[g]) + sum(np.sum(h * node_w[first + j])
                                              for j, h in enumerate(hs))
      first += len(hs)
    return total

  np.testing.assert_allclose(value, ref_loss(), rtol=1e-5)
  got = dict(grads[0], embed=grads[1])
  eps = 1e-6
  for key, array in variables.items():
    want = np.zeros_like(array)
    for index in np.ndindex(array.shape):
      array[index] += eps
      up = ref_loss()
      array[index] -= 2 * eps
      down = ref_loss()
      array[index] += eps
      want[index] = (up - down) / (2 * eps)
    np.testing.assert_allclose(got[key], want, atol=2e-5, rtol=1e-4, err_msg=key)
    assert np.abs(want).sum() > 0, key


@pytest.mark.parametrize("name", sorted(CELLS))
def test_padding_changes_no_value_and_no_gradient(name):
  """The same trees in a larger bucket, padded inputs holding ids far out of
  range, and extra padded trees: the same states and gradients."""
  cell, params, embed = _params(name)
  tight = trees.batch_trees(TREES, max_children=K)
  loose = trees.batch_trees(TREES, max_children=K, num_trees=9, max_nodes=45, max_steps=11,
                            max_width=4)
  total = sum(len(t.inputs) for t in TREES)
  garbage = np.asarray(loose.inputs).copy()
  garbage[total:] = np.resize([10**6, -7, V], 45 - total)
  loose = loose._replace(inputs=garbage)
  _, node_a, root_a, grads_a = _batched(name, params, embed, tight)
  _, node_b, root_b, grads_b = _batched(name, params, embed, loose)
  np.testing.assert_allclose(node_b[:total], node_a[:total], atol=1e-6, rtol=1e-6)
  np.testing.assert_array_equal(node_b[total:], 0.0)
  np.testing.assert_allclose(root_b[:len(TREES)], root_a[:len(TREES)], atol=1e-6, rtol=1e-6)
  np.testing.assert_array_equal(root_b[len(TREES):], 0.0)
  for a, b in zip(jax.tree_util.tree_leaves(grads_a), jax.tree_util.tree_leaves(grads_b)):
    assert np.all(np.isfinite(b))
    np.testing.assert_allclose(b, a, atol=1e-6, rtol=1e-5)


def _chain(xs):
  """The chain tree of a sequence x_0..x_{T-1}: node i holds x_{T-1-i}, its child node i+1."""
  steps = len(xs)
  children = np.where(np.arange(steps) < steps - 1, np.arange(1, steps + 1), -1)[:, None]
  return trees.Tree(xs[::-1].copy(), children)


SEQ_CELL = lstm(H, forget_bias=FORGET_BIAS)


@functools.lru_cache(maxsize=None)
def _lstm_reference():
  """Params, two sequences and ``seqjax.unroll``'s outputs on them, shared by the builds."""
  rng = np.random.default_rng(3)
  params = SEQ_CELL.init(jax.random.PRNGKey(3), D)
  params = {k: v + 0.3 * rng.normal(size=v.shape).astype(np.float32) for k, v in params.items()}
  seqs = [rng.normal(size=(t, D)).astype(np.float32) for t in (5, 2)]
  return params, seqs, [unroll(SEQ_CELL, params, xs[None])[1][0] for xs in seqs]


@pytest.mark.parametrize("build", ["child_sum", "nary_arity_1", "from_lstm"])
def test_a_chain_tree_is_the_lstm_unrolled(build):
  """Padded inputs hold NaN here: features are replaced, not multiplied, by zero."""
  tree_cell = {"child_sum": lambda: trees.child_sum_tree_lstm(H, forget_bias=FORGET_BIAS),
               "nary_arity_1": lambda: trees.nary_tree_lstm(H, 1, forget_bias=FORGET_BIAS),
               "from_lstm": lambda: trees.from_lstm(SEQ_CELL)}[build]()
  params, seqs, outputs = _lstm_reference()
  # The params of the tree cell and of the LSTM are the same pytree.
  shapes = jax.eval_shape(lambda k: tree_cell.init(k, D), jax.random.PRNGKey(0))
  assert jax.tree_util.tree_map(lambda s: s.shape, shapes) == jax.tree_util.tree_map(
      np.shape, params)
  batch = trees.batch_trees([_chain(s) for s in seqs], num_trees=3, max_nodes=9)
  inputs = np.asarray(batch.inputs).copy()
  inputs[7:] = np.nan
  node_h, root_h = jax.jit(functools.partial(trees.encode, tree_cell))(
      params, batch._replace(inputs=inputs))
  start = 0
  for g, (xs, ys) in enumerate(zip(seqs, outputs)):
    np.testing.assert_allclose(node_h[start:start + len(xs)], ys[::-1], atol=1e-6, rtol=1e-5)
    np.testing.assert_allclose(root_h[g], ys[-1], atol=1e-6, rtol=1e-5)
    start += len(xs)
  np.testing.assert_array_equal(root_h[2], 0.0)


@pytest.mark.parametrize("name", sorted(CELLS))
def test_leaf_is_a_node_without_children_and_masked_children_are_ignored(name):
  cell, params, _ = _params(name)
  rng = np.random.default_rng(4)
  x = rng.normal(size=(2, D)).astype(np.float32)
  leaf = cell.leaf(params, x)
  state = cell.leaf(params, np.zeros((2, D), np.float32))
  zeros = jax.tree_util.tree_map(lambda s: jnp.zeros((2, K) + s.shape[1:]), state)
  nan = jax.tree_util.tree_map(lambda s: jnp.full((2, K) + s.shape[1:], jnp.nan), state)
  none = np.zeros((2, K), bool)
  for children in (zeros, nan):
    node = cell.node(params, x, children, none)
    for a, b in zip(jax.tree_util.tree_leaves(node), jax.tree_util.tree_leaves(leaf)):
      np.testing.assert_allclose(a, b, atol=1e-7, rtol=1e-6)
  assert cell.hidden(leaf).shape == (2, H)


def test_one_compilation_per_bucket():
  cell = trees.recursive_net(H, arity=K)
  params = cell.init(jax.random.PRNGKey(0), D)
  embed = jnp.ones((V, D))
  traces = []

  @jax.jit
  def run(params, batch):
    traces.append(None)
    return trees.encode(cell, params, batch, embed=embed)[1]

  budget = dict(max_children=K, num_trees=4, max_nodes=32, max_steps=8, max_width=4)
  rng = np.random.default_rng(7)
  for _ in range(3):
    run(params, trees.batch_trees([_random_tree(rng, n) for n in rng.integers(1, 8, 4)],
                                  **budget))
  assert len(traces) == 1
  run(params, trees.batch_trees(TREES, max_children=K))
  assert len(traces) == 2


def test_from_lstm_rejects_what_has_no_tree_lstm_form():
  with pytest.raises(ValueError, match="cell must have no peepholes"):
    trees.from_lstm(lstm(H, peephole=True))
  with pytest.raises(ValueError, match="cell must be a seqjax.cells.lstm.*tied_lstm"):
    trees.from_lstm(tied_lstm(H))
  with pytest.raises(ValueError, match="cell must be a seqjax.cells.lstm.*gru"):
    trees.from_lstm(gru(H))
  cell = lstm(H)

  def doubled(params, carry, x):
    carry, y = cell.step(params, carry, x)
    return carry._replace(h=2 * carry.h), 2 * y

  with pytest.raises(ValueError, match="cell's step must be the LSTM's"):
    trees.from_lstm(cell.with_step(doubled))
  with pytest.raises(TypeError, match="cell must be a seqjax.Cell"):
    trees.from_lstm(trees.child_sum_tree_lstm(H))
  # A jitted step is still the LSTM.
  assert trees.from_lstm(cell._replace(step=jax.jit(cell.step))).hidden_size == H


def test_encode_rejects_bad_input_before_any_work():
  cell, params, embed = _params("recursive_net")
  batch = trees.batch_trees(TREES)
  wide = trees.batch_trees(TREES, max_children=K + 1)
  with pytest.raises(ValueError, match="batch.children has 4 child slots.*arity 3.*"
                                       "max_children=3"):
    trees.encode(cell, params, wide, embed=embed)
  with pytest.raises(ValueError, match="embed must be the"):
    trees.encode(cell, params, batch)
  with pytest.raises(ValueError, match="embed must be an embedding table"):
    trees.encode(cell, params, batch, embed=embed[0])
  with pytest.raises(ValueError, match="node inputs must have 3 features.*embed"):
    trees.encode(cell, params, batch, embed=jnp.ones((V, D + 1)))
  with pytest.raises(ValueError, match="ids must be token ids in"):
    trees.encode(cell, params, batch, embed=embed[:2])
  features = batch._replace(inputs=np.ones((batch.inputs.shape[0], D), np.float32))
  with pytest.raises(ValueError, match="embed must be None"):
    trees.encode(cell, params, features, embed=embed)
  with pytest.raises(ValueError, match="batch.schedule must be int of shape"):
    trees.encode(cell, params, batch._replace(schedule=np.zeros(3, np.int32)), embed=embed)
  with pytest.raises(ValueError, match="batch.node_mask must have shape"):
    trees.encode(cell, params, batch._replace(node_mask=np.ones(3, bool)), embed=embed)
  with pytest.raises(TypeError, match="batch must be a TreeBatch"):
    trees.encode(cell, params, tuple(batch), embed=embed)
  with pytest.raises(TypeError, match="tree_cell must be a seqjax.trees.TreeCell"):
    trees.encode(lstm(H), params, batch, embed=embed)


def test_factories_name_bad_arguments():
  with pytest.raises(ValueError, match="hidden_size"):
    trees.recursive_net(0)
  with pytest.raises(ValueError, match="arity"):
    trees.nary_tree_lstm(H, 0)
  with pytest.raises(TypeError, match="arity"):
    trees.recursive_net(H, arity=2.0)
  with pytest.raises(ValueError, match="forget_bias"):
    trees.child_sum_tree_lstm(H, forget_bias=float("nan"))
  with pytest.raises(ValueError, match="forget_bias"):
    trees.nary_tree_lstm(H, 2, forget_bias=float("inf"))
  with pytest.raises(ValueError, match="activation"):
    trees.recursive_net(H, activation="swish")
  with pytest.raises(ValueError, match="input_size"):
    trees.child_sum_tree_lstm(H).init(jax.random.PRNGKey(0), 0)
