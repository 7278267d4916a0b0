"""Tests for seqjax.data.listops: generated values against independent evaluators.

ListOps strings are evaluated by a stack machine over their tokens (the way
Nangia & Bowman's generator folds its tuples, with numpy's median);
arithmetic strings by Python's own ``eval``. Gold trees are evaluated by a
recursive walk of their arrays.
"""

from __future__ import annotations

import numpy as np
import pytest

from seqjax import trees
from seqjax.data import listops


def _stack_value(text):
  """Nangia & Bowman's semantics over tokens: a stack of [operator, arguments] frames."""
  stack = [["ROOT", []]]
  for token in text.split():
    if token.startswith("["):
      stack.append([token[1:], []])
    elif token == "]":
      operator, args = stack.pop()
      value = {"MIN": min, "MAX": max, "MED": lambda a: int(np.median(a)),
               "SM": lambda a: int(np.sum(a)) % 10}[operator](args)
      stack[-1][1].append(value)
    else:
      stack[-1][1].append(int(token))
  (value,) = stack[0][1]
  return value


def _tree_value(tree, node=0):
  """The value of a gold tree, by a recursive walk of its arrays."""
  token = listops.VOCAB[tree.inputs[node]]
  if token in listops.DIGITS:
    return int(token)
  args = [_tree_value(tree, int(c)) for c in tree.children[node] if c >= 0]
  if token.startswith("["):
    return {"[MIN": min, "[MAX": max, "[MED": lambda a: int(np.median(a)),
            "[SM": lambda a: sum(a) % 10}[token](args)
  left, right = args
  return eval(f"{left} {token} {right}") % 10  # noqa: S307 (digits and one operator)


LISTOPS = listops.generate(0, 400, max_depth=5, max_args=4, max_length=80)
ARITHMETIC = listops.generate_arithmetic(1, 300, max_depth=4, max_length=40)


def test_listops_values_equal_a_stack_evaluator_and_the_gold_trees():
  assert LISTOPS.values.shape == (400,) and LISTOPS.values.dtype == np.int32
  for text, value, tree in zip(LISTOPS.tokens, LISTOPS.values, LISTOPS.trees):
    assert _stack_value(text) == value == _tree_value(tree), text
  # Every class occurs, no class dominates.
  counts = np.bincount(LISTOPS.values, minlength=10)
  assert counts.min() > 10 and counts.max() < 0.3 * len(LISTOPS.values)


def test_arithmetic_values_equal_python_eval_and_the_gold_trees():
  for text, value, tree in zip(ARITHMETIC.tokens, ARITHMETIC.values, ARITHMETIC.trees):
    assert eval(text) % 10 == value == _tree_value(tree), text  # noqa: S307
  assert set(ARITHMETIC.values) == set(range(10))
  seven = listops.generate_arithmetic(2, 50, modulus=7)
  assert all(eval(t) % 7 == v for t, v in zip(seven.tokens, seven.values))  # noqa: S307


def test_the_module_docstring_examples():
  assert listops.evaluate(listops.parse("[MAX 2 9 [MIN 4 7 ] 0 ]")) == 9
  assert listops.evaluate(listops.parse("[SM [MED 3 8 1 ] 6 [MIN 5 2 ] ]")) == 1
  assert listops.evaluate(listops.parse("( ( 7 * 8 ) - 3 )")) == 3


def test_median_rounds_down_as_numpy_int_median():
  assert listops.evaluate(("MED", (1, 2))) == 1
  assert listops.evaluate(("MED", (2, 5, 7, 8))) == 6
  assert listops.evaluate(("MED", (9, 0, 4))) == 4
  assert listops.evaluate(("SM", (9, 8, ("MAX", (3, 7))))) == 4
  assert listops.evaluate(("-", (2, ("*", (3, 4))))) == (2 - 12) % 10


@pytest.mark.parametrize("data", [LISTOPS, ARITHMETIC], ids=["listops", "arithmetic"])
def test_depths_lengths_and_trees_agree_with_the_strings(data):
  for e, text, depth, length, tree in zip(data.expressions, data.tokens, data.depths,
                                          data.lengths, data.trees):
    assert listops.parse(text) == e
    assert " ".join(listops.to_tokens(e)) == text and len(text.split()) == length
    assert listops.depth(e) == depth == trees.levels(tree.children)[0]
    # Pre-order: operations hold operator tokens, leaves digits, in string order.
    words = [w for w in text.split() if w not in ("]", "(", ")")]
    operators = [w for w in words if w not in listops.DIGITS]
    digits = [w for w in words if w in listops.DIGITS]
    is_leaf = (tree.children < 0).all(axis=1)
    assert [listops.VOCAB[i] for i in tree.inputs[is_leaf]] == digits
    assert sorted(listops.VOCAB[i] for i in tree.inputs[~is_leaf]) == sorted(operators)
  assert data.depths.min() >= 1


def test_controls_are_honoured():
  assert LISTOPS.depths.max() <= 5 and LISTOPS.lengths.max() <= 80
  assert max((t.children >= 0).sum(axis=1).max() for t in LISTOPS.trees) <= 4
  assert {t.children.shape[1] for t in LISTOPS.trees} == {4}
  assert {t.children.shape[1] for t in ARITHMETIC.trees} == {2}
  exact = listops.generate(3, 60, max_depth=7, depth=6, max_length=300)
  assert set(exact.depths) == {6}
  spread = listops.generate(4, 200, max_depth=8, depth=range(2, 9), max_length=400)
  assert set(spread.depths) == set(range(2, 9))
  short = listops.generate(5, 100, max_depth=6, depth=3, max_length=12)
  assert short.lengths.max() <= 12 and set(short.depths) == {3}
  only = listops.generate(6, 100, operators=("SM",), max_args=2, depth=1)
  assert {t.split()[0] for t in only.tokens} == {"[SM"} and set(only.lengths) == {4}
  assert len({t for t in listops.generate(7, 300, depth=1, max_args=3, unique=True,
                                          operators=("MAX",)).tokens}) == 300
  train = listops.generate(8, 200, depth=1, max_args=2, operators=("MIN",))
  test = listops.generate(9, 200, depth=1, max_args=2, operators=("MIN",),
                          exclude=set(train.tokens))
  assert not set(train.tokens) & set(test.tokens)


def test_same_seed_same_data_other_seed_other_data():
  again = listops.generate(np.random.default_rng(0), 400, max_depth=5, max_args=4,
                           max_length=80)
  assert again.tokens == LISTOPS.tokens
  for a, b in zip(again.trees, LISTOPS.trees):
    np.testing.assert_array_equal(a.inputs, b.inputs)
    np.testing.assert_array_equal(a.children, b.children)
  other = listops.generate(1, 400, max_depth=5, max_args=4, max_length=80)
  assert other.tokens != LISTOPS.tokens
  assert listops.generate(0, 0).values.shape == (0,)


def test_to_ids_round_trips_and_pads():
  ids, mask = listops.to_ids(LISTOPS.tokens[:5])
  assert ids.dtype == np.int32 and ids.shape == (5, LISTOPS.lengths[:5].max())
  np.testing.assert_array_equal(mask.sum(axis=1), LISTOPS.lengths[:5])
  for row, text in zip(range(5), LISTOPS.tokens):
    assert " ".join(listops.VOCAB[i] for i in ids[row][mask[row]]) == text
  np.testing.assert_array_equal(ids[~mask], 0)
  assert listops.to_ids(ARITHMETIC.tokens[:2], length=50)[0].shape == (2, 50)
  assert listops.VOCAB[0] == "<pad>" and len(set(listops.VOCAB)) == len(listops.VOCAB)


def test_batched_gold_trees_keep_their_arrays():
  batch = trees.batch_trees(LISTOPS.trees[:16], max_children=4)
  for g, tree in enumerate(LISTOPS.trees[:16]):
    start = int(batch.roots[g])
    np.testing.assert_array_equal(batch.inputs[start:start + len(tree.inputs)], tree.inputs)
  np.testing.assert_array_equal(batch.depth[:16], LISTOPS.depths[:16])


def _fold_walk(tree, node=0):
  """A folded tree's partial applications, walked down slot 0: (operator, [argument nodes])."""
  args = []
  while tree.children[node, 0] >= 0:
    args.append(int(tree.children[node, 1]))
    node = int(tree.children[node, 0])
  return listops.VOCAB[tree.inputs[node]], args[::-1]


def _folded_value(tree, node=0):
  """The value of a folded tree, by a recursive walk of its arrays."""
  token = listops.VOCAB[tree.inputs[node]]
  if token in listops.DIGITS:
    return int(token)
  operator, args = _fold_walk(tree, node)
  values = [_folded_value(tree, a) for a in args]
  if operator.startswith("["):
    return {"[MIN": min, "[MAX": max, "[MED": lambda a: int(np.median(a)),
            "[SM": lambda a: sum(a) % 10}[operator](values)
  left, right = values
  return eval(f"{left} {operator} {right}") % 10  # noqa: S307


def test_folded_trees_are_binary_and_every_partial_application_has_its_value():
  for expression, text, value in zip(LISTOPS.expressions[:150], LISTOPS.tokens,
                                     LISTOPS.values):
    tree = listops.to_tree(expression, fold=True)
    assert tree.children.shape[1] == 2 and _folded_value(tree) == value, text
    # One node per digit, k + 1 per operation of k arguments (each digit or operation
    # but the root is an argument): 2 digits + 2 operations - 1.
    digits = sum(t in listops.DIGITS for t in text.split())
    assert len(tree.inputs) == 2 * digits + 2 * text.count("[") - 1
    values = listops.node_values(expression, fold=True)
    for n in range(len(tree.inputs)):
      token = listops.VOCAB[tree.inputs[n]]
      if token in listops.DIGITS:
        assert values[n] == int(token)
      elif tree.children[n, 0] < 0:
        assert values[n] == -1   # the operator alone
      else:   # [OP a_1 ... a_i ]: the stack evaluator on that expression's own string
        operator, args = _fold_walk(tree, n)
        partial = " ".join([operator] + [str(_folded_value(tree, a)) for a in args] + ["]"])
        assert values[n] == _stack_value(partial), (text, n)
    # Nested values: every node's, by the recursive walk of the nested tree's arrays.
    nested_tree = listops.to_tree(expression)
    nested = listops.node_values(expression)
    assert nested[0] == value
    assert list(nested) == [_tree_value(nested_tree, n) for n in range(len(nested_tree.inputs))]
  batch = trees.batch_trees([listops.to_tree(e, fold=True) for e in LISTOPS.expressions[:32]],
                            max_children=2)
  assert int(batch.depth.max()) > int(LISTOPS.depths[:32].max())


def test_folded_arithmetic_has_values_only_where_both_operands_are_read():
  for expression, value in zip(ARITHMETIC.expressions[:50], ARITHMETIC.values):
    tree = listops.to_tree(expression, fold=True)
    assert _folded_value(tree) == value
    values = listops.node_values(expression, fold=True)
    # An operation is 3 nodes: P_0 and P_1 have no value, P_2 the operation's.
    operator_nodes = sum(listops.VOCAB[i] in listops.ARITHMETIC_OPERATORS for i in tree.inputs)
    assert (values < 0).sum() == 2 * operator_nodes // 3
    for n in np.nonzero(values < 0)[0]:
      assert tree.children[n, 0] < 0 or tree.children[tree.children[n, 0], 0] < 0
    assert values[0] == value


@pytest.mark.parametrize("call, message", [
    (lambda: listops.generate(0, 5, max_args=1), "max_args must be >= 2"),
    (lambda: listops.generate(0, 5, max_depth=3, depth=4), "depth must be <= max_depth"),
    (lambda: listops.generate(0, 5, depth=3, max_length=9), "max_length must be >= 10"),
    (lambda: listops.generate(0, 5, depth=[]), "depth must be None, an int"),
    (lambda: listops.generate(0, 5, depth=0), "depth must be a positive integer"),
    (lambda: listops.generate(0, 5, operators=("SUM",)), "operators must be a non-empty"),
    (lambda: listops.generate(0, 5, branch_probability=1.5), "branch_probability"),
    (lambda: listops.generate(0, -1), "n must be >= 0"),
    (lambda: listops.generate(0, 500, depth=1, max_args=2, operators=("MAX",), unique=True),
     "max_length=100 .*unique=True.* left no ListOps expression"),
    (lambda: listops.generate_arithmetic(0, 5, modulus=1), "modulus must be >= 2"),
    (lambda: listops.generate_arithmetic(0, 5, operators=("/",)), "operators must be"),
    (lambda: listops.generate_arithmetic(0, 5, depth=2, max_length=8), "max_length must be >= 9"),
    (lambda: listops.parse("[MAX 2 9"), "text is not an expression: it ends early"),
    (lambda: listops.parse("[MAX 2 9 ] 3"), "text is not an expression: tokens follow"),
    (lambda: listops.parse("( 2 / 9 )"), "text is not an expression: expected one of"),
    (lambda: listops.parse("[MAX ]"), r"text is not an expression: \[MAX has no arguments"),
    (lambda: listops.to_tree(("MAX", (1, 2, 3)), max_children=2), "max_children=2 is too small"),
    (lambda: listops.to_tree(("MAX", (1, 2, 3)), max_children=1, fold=True),
     "max_children=1 is too small: an operation of expression has 2 children"),
    (lambda: listops.to_ids(["[MAX 2 x ]"]), r"tokens\[0\] has an unknown token 'x'"),
    (lambda: listops.to_ids(["[MAX 2 3 ]"], length=3), "length must be >= the longest"),
    (lambda: listops.evaluate(("POW", (2, 3))), "unknown operator 'POW'"),
])
def test_bad_arguments_are_named(call, message):
  with pytest.raises(ValueError, match=message):
    call()


def test_bad_types_are_named():
  with pytest.raises(TypeError, match="rng must be a numpy Generator or an int seed"):
    listops.generate("0", 5)
  with pytest.raises(TypeError, match="exclude must be a collection"):
    listops.generate(0, 5, exclude="[MAX 1 2 ]")
  with pytest.raises(TypeError, match="expression must be an int or"):
    listops.evaluate("7")
  with pytest.raises(TypeError, match="tokens must be a sequence"):
    listops.to_ids("[MAX 1 2 ]")
