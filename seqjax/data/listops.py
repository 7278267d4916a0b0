"""ListOps and arithmetic expressions: nested expressions over digits, their values and gold trees.

ListOps (Nangia & Bowman 2018) nests list operators over the digits 0-9; the
value of an expression is a digit, so it is a 10-way classification of a
sequence whose answer depends on its whole tree structure::

  [MAX 2 9 [MIN 4 7 ] 0 ]              = 9
  [SM [MED 3 8 1 ] 6 [MIN 5 2 ] ]      = (3 + 6 + 2) mod 10 = 1

  MIN, MAX   the smallest / largest argument
  MED        the median, rounded down: int(np.median(args)) as in Nangia &
             Bowman's generator (so [MED 1 2 ] = 1, [MED 2 5 7 8 ] = 6)
  SM         the sum modulo 10 (token ``[SM``, the original's; SUM_MOD)

Arithmetic expressions are binary and fully parenthesised, over ``+ - *``,
valued modulo ``modulus`` (10 by default: again a digit)::

  ( ( 7 * 8 ) - 3 )                    = 53 mod 10 = 3

An expression is a nested tuple: a digit is an ``int``, an operation is
``(operator, args)`` with ``operator`` one of ``LISTOPS_OPERATORS`` or
``ARITHMETIC_OPERATORS`` and ``args`` a tuple of expressions. Its depth is the
nesting of operations (a digit 0, ``[MAX 2 9 ]`` 1). ``evaluate`` is the
plain recursive definition, the reference the generators are tested against.

Gold trees (``to_tree``) are ``seqjax.trees.Tree`` records for
``seqjax.trees.batch_trees``: one node per operation (input: its operator's
token, ``[MAX`` or ``+``) whose children are its arguments in order, and one
leaf per digit; no bracket nodes. Folded (``to_tree(e, fold=True)``), the
binary left-branching form Nangia & Bowman train their Tree-LSTM on: an
operation reads its arguments one at a time, each partial application
``[OP a_1 .. a_i ]`` a node over the previous one and ``a_i``;
``node_values`` gives every node's value in either form. Nodes are numbered in pre-order (the root
is node 0). Token ids index ``VOCAB``, shared by both tasks, with id 0 for
padding.

References:
  Nangia & Bowman 2018, "ListOps: A diagnostic dataset for latent tree
  learning", https://arxiv.org/abs/1804.06028 (generator:
  https://github.com/nyu-mll/spinn/tree/listops-release)
  Tai, Socher & Manning 2015 (tree-structured LSTMs on gold trees),
  https://arxiv.org/abs/1503.00075
"""

from __future__ import annotations

import numbers
from typing import Any, Collection, NamedTuple, Optional, Sequence, Union

import numpy as np

from seqjax import checks
from seqjax.trees import Tree

__all__ = ["VOCAB", "TOKEN_IDS", "LISTOPS_OPERATORS", "ARITHMETIC_OPERATORS", "Expressions",
           "evaluate", "depth", "to_tokens", "parse", "to_tree", "node_values", "to_ids",
           "generate", "generate_arithmetic"]

PAD = "<pad>"
DIGITS = tuple(str(d) for d in range(10))
LISTOPS_OPERATORS = ("MIN", "MAX", "MED", "SM")
ARITHMETIC_OPERATORS = ("+", "-", "*")
CLOSE = "]"
#: Token of every id: padding, the digits, ListOps' operators and bracket,
#: then arithmetic's parentheses and operators.
VOCAB = ((PAD,) + DIGITS + tuple("[" + op for op in LISTOPS_OPERATORS) + (CLOSE,)
         + ("(", ")") + ARITHMETIC_OPERATORS)
TOKEN_IDS = {token: i for i, token in enumerate(VOCAB)}

Expression = Union[int, tuple]  # a digit, or (operator, (argument, ...))

_ATTEMPTS = 1000  # draws per example before a constraint is declared unsatisfiable


class Expressions(NamedTuple):
  """n generated expressions in every form a model reads (from ``generate``)."""

  expressions: tuple  # n nested tuples: int digits, (operator, args) operations
  tokens: tuple  # n strings of space-separated tokens, e.g. "[MAX 2 9 ]"
  values: np.ndarray  # (n,) int32: each expression's value (``evaluate``)
  depths: np.ndarray  # (n,) int32: each expression's nesting depth (>= 1)
  lengths: np.ndarray  # (n,) int32: each expression's number of tokens
  trees: tuple  # n seqjax.trees.Tree: gold trees, token-id inputs (``to_tree``)


def _check_operator(operator: Any) -> None:
  if operator not in LISTOPS_OPERATORS and operator not in ARITHMETIC_OPERATORS:
    raise ValueError(f"expression has an unknown operator {operator!r}, expected one of "
                     f"{LISTOPS_OPERATORS + ARITHMETIC_OPERATORS}")


def _median(args: list[int]) -> int:
  ordered = sorted(args)
  middle = len(ordered) // 2
  if len(ordered) % 2:
    return ordered[middle]
  return (ordered[middle - 1] + ordered[middle]) // 2


def evaluate(expression: Expression, modulus: int = 10) -> int:
  """The value of an expression, by plain recursion (the reference definition).

  ``MIN``/``MAX`` the extreme argument, ``MED`` the median rounded down
  (``int(np.median(args))`` for digits, as in Nangia & Bowman's code), ``SM``
  the sum mod ``modulus``; ``+ - *`` their exact integer result mod
  ``modulus`` (Python's ``%``: in ``[0, modulus)``).

  Args:
    expression: an int digit, or ``(operator, args)`` with a tuple of
      expressions as ``args``.
    modulus: of ``SM`` and of arithmetic, > 1; 10 (the standard) keeps every
      value a digit.

  Returns:
    The value, an int.
  """
  if not isinstance(expression, tuple):
    # Concrete types, not numbers.Integral: an ABC check costs 10x, per node.
    if isinstance(expression, (bool, np.bool_)) or not isinstance(expression, (int, np.integer)):
      raise TypeError(f"expression must be an int or an (operator, args) tuple, got "
                      f"{expression!r}")
    return int(expression)
  operator, args = expression
  _check_operator(operator)
  return _apply(operator, [evaluate(arg, modulus) for arg in args], modulus)


def _apply(operator: str, values: list[int], modulus: int = 10) -> int:
  """``operator`` applied to its arguments' values (``evaluate``'s semantics)."""
  if operator in ARITHMETIC_OPERATORS and len(values) != 2:
    raise ValueError(f"expression's {operator!r} needs 2 arguments, got {len(values)}")
  if not values:
    raise ValueError(f"expression's {operator!r} has no arguments")
  if operator == "MIN":
    return min(values)
  if operator == "MAX":
    return max(values)
  if operator == "MED":
    return _median(values)
  if operator == "SM":
    return sum(values) % modulus
  left, right = values
  exact = {"+": left + right, "-": left - right, "*": left * right}[operator]
  return exact % modulus


def depth(expression: Expression) -> int:
  """Nesting depth of an expression: 0 for a digit, 1 + its deepest argument's otherwise.

  Args:
    expression: an int digit or an ``(operator, args)`` tuple.
  """
  if not isinstance(expression, tuple):
    return 0
  return 1 + max((depth(arg) for arg in expression[1]), default=0)


def to_tokens(expression: Expression) -> tuple[str, ...]:
  """An expression's tokens: ``[MAX 2 9 ]`` for ListOps, ``( 2 + 9 )`` for arithmetic.

  Args:
    expression: an int digit or an ``(operator, args)`` tuple.

  Returns:
    A tuple of tokens, each in ``VOCAB``.
  """
  out: list[str] = []

  def walk(e):
    if not isinstance(e, tuple):
      out.append(str(int(e)))
      return
    operator, args = e
    _check_operator(operator)
    if operator in LISTOPS_OPERATORS:
      out.append("[" + operator)
      for arg in args:
        walk(arg)
      out.append(CLOSE)
    else:
      out.append("(")
      walk(args[0])
      out.append(operator)
      walk(args[1])
      out.append(")")

  walk(expression)
  return tuple(out)


def parse(text: Union[str, Sequence[str]]) -> Expression:
  """The expression of a token string (``to_tokens``'s inverse).

  Args:
    text: space-separated tokens (``"[MAX 2 9 ]"``, ``"( 2 + 9 )"``) or a
      sequence of tokens.

  Returns:
    The expression: an int digit or an ``(operator, args)`` tuple.

  Raises:
    ValueError: one line naming ``text``: an unknown token, an unbalanced
      bracket, or trailing tokens.
  """
  tokens = text.split() if isinstance(text, str) else list(text)
  position = 0

  def fail(message):
    raise ValueError(f"text is not an expression: {message} at token {position} of "
                     f"{' '.join(tokens)!r}")

  def take():
    nonlocal position
    if position >= len(tokens):
      fail("it ends early")
    position += 1
    return tokens[position - 1]

  def expression():
    token = take()
    if token in DIGITS:
      return int(token)
    if token.startswith("[") and token[1:] in LISTOPS_OPERATORS:
      args = []
      while position < len(tokens) and tokens[position] != CLOSE:
        args.append(expression())
      take()
      if not args:
        fail(f"{token} has no arguments")
      return (token[1:], tuple(args))
    if token == "(":
      left = expression()
      operator = take()
      if operator not in ARITHMETIC_OPERATORS:
        fail(f"expected one of {ARITHMETIC_OPERATORS}, got {operator!r}")
      right = expression()
      if take() != ")":
        fail("expected ')'")
      return (operator, (left, right))
    fail(f"unexpected token {token!r}")

  result = expression()
  if position != len(tokens):
    fail("tokens follow the expression")
  return result


def to_tree(expression: Expression, max_children: Optional[int] = None, *,
            fold: bool = False) -> Tree:
  """The gold tree of an expression as arrays, for ``seqjax.trees.batch_trees``.

  Nested (``fold=False``): nodes in pre-order (the root is node 0); an
  operation's node has its operator's token (``[MAX``, ``+``) as input and its
  arguments as children, in order; a digit is a leaf with the digit's token.

  Folded (``fold=True``): a binary tree in which every operation folds its
  arguments in from the left, as Nangia & Bowman's left-branching gold trees
  do. ``[OP a_1 ... a_k ]`` becomes the chain of its partial applications
  ``P_0 .. P_k``, each with the operator's token as input::

    P_0 = leaf                     the operator alone (no value)
    P_i = node(P_{i-1}, a_i)       the expression [OP a_1 ... a_i ], i = 1..k

  so slot 0 carries what has been read and slot 1 the next argument; P_k is
  the operation's node. Every P_i (i >= 1) of a ListOps operation is itself an
  expression with a value (``node_values``), which a binary Tree-LSTM can
  compute one argument at a time (SM as a running sum mod 10, MIN/MAX as a
  running extreme, MED from the multiset read so far) instead of from the sum
  of all its children at once. Pre-order as well.

  Args:
    expression: an int digit or an ``(operator, args)`` tuple.
    max_children: K, the columns of ``children`` (>= the most arguments of any
      operation, or >= 2 folded); None for exactly that most.
    fold: the folded binary form instead of the nested one.

  Returns:
    ``seqjax.trees.Tree(inputs (n,) int32 token ids, children (n, K) int32)``.
  """
  ids: list[int] = []
  rows: list[list[int]] = []

  def add(token_id):
    ids.append(token_id)
    rows.append([])
    return len(ids) - 1

  def walk(e):
    if not isinstance(e, tuple):
      return add(TOKEN_IDS[str(int(e))])
    operator, args = e
    _check_operator(operator)
    token = TOKEN_IDS["[" + operator if operator in LISTOPS_OPERATORS else operator]
    if not fold:
      index = add(token)
      rows[index] = [walk(arg) for arg in args]
      return index

    def partial(i):  # P_i, numbered before its children (pre-order)
      index = add(token)
      if i:
        rows[index] = [partial(i - 1), walk(args[i - 1])]
      return index

    return partial(len(args))

  walk(expression)
  widest = max(len(r) for r in rows)
  slots = max(widest, 1) if max_children is None else checks.positive_int("max_children",
                                                                          max_children)
  if widest > slots:
    raise ValueError(f"max_children={slots} is too small: an operation of expression has "
                     f"{widest} {'children' if fold else 'arguments'}")
  children = np.full((len(ids), slots), -1, np.int32)
  for i, row in enumerate(rows):
    children[i, :len(row)] = row
  return Tree(np.array(ids, np.int32), children)


def node_values(expression: Expression, *, fold: bool = False) -> np.ndarray:
  """The value of every node of ``to_tree(expression, fold=fold)``, in its node order.

  A digit's node has the digit; an operation's node its value (``evaluate``).
  Folded, the partial application ``P_i`` = ``[OP a_1 ... a_i ]`` has that
  expression's value for ListOps operators, and -1 where it has none: ``P_0``
  (the operator alone) and an arithmetic operator's ``P_1`` (one operand).

  Args:
    expression: an int digit or an ``(operator, args)`` tuple.
    fold: values for the folded form (``to_tree(..., fold=True)``).

  Returns:
    (n,) int32, n the tree's nodes.
  """
  values: list[int] = []

  def walk(e):
    """Appends e's nodes' values in pre-order; returns e's value (each subtree once)."""
    if not isinstance(e, tuple):
      values.append(evaluate(e))
      return values[-1]
    operator, args = e
    _check_operator(operator)
    # Pre-order puts e's node (nested), or its partial applications P_k .. P_0
    # (folded), before the arguments' subtrees a_1 .. a_k: their slots are
    # filled once the arguments' values are known. Folded, P_i sits at start + k - i.
    start, k = len(values), len(args)
    values.extend([-1] * (k + 1 if fold else 1))
    arg_values = [walk(arg) for arg in args]
    value = _apply(operator, arg_values)
    if not fold:
      values[start] = value
      return value
    for i in range(1, k + 1):
      if operator in LISTOPS_OPERATORS or i == k:   # an arithmetic P_1 has one operand
        values[start + k - i] = _apply(operator, arg_values[:i])
    return value

  walk(expression)
  return np.array(values, np.int32)


def to_ids(tokens: Sequence[str], length: Optional[int] = None) -> tuple[np.ndarray, np.ndarray]:
  """Token strings as padded token ids, for sequence models (an LSTM baseline).

  Args:
    tokens: n strings of space-separated tokens (``Expressions.tokens``).
    length: T, the padded length (>= the longest); None for the longest.

  Returns:
    ``(ids, mask)``: (n, T) int32 ids into ``VOCAB`` (0 after the end), and
    (n, T) bool, True on real tokens.
  """
  if isinstance(tokens, str):
    raise TypeError("tokens must be a sequence of token strings, got one str (wrap it in a "
                    "list)")
  split = [t.split() for t in tokens]
  longest = max((len(s) for s in split), default=0)
  total = longest if length is None else checks.non_negative_int("length", length)
  if total < longest:
    raise ValueError(f"length must be >= the longest expression's {longest} tokens, "
                     f"got {total}")
  ids = np.zeros((len(split), total), np.int32)
  for row, words in enumerate(split):
    for col, word in enumerate(words):
      if word not in TOKEN_IDS:
        raise ValueError(f"tokens[{row}] has an unknown token {word!r}")
      ids[row, col] = TOKEN_IDS[word]
  mask = np.arange(total)[None, :] < np.array([len(s) for s in split], np.int64)[:, None]
  return ids, mask


def _as_rng(rng: Any) -> np.random.Generator:
  if isinstance(rng, np.random.Generator):
    return rng
  if isinstance(rng, (bool, np.bool_)) or not isinstance(rng, numbers.Integral):
    raise TypeError(f"rng must be a numpy Generator or an int seed, got {type(rng).__name__}")
  return np.random.default_rng(int(rng))


def _depths(depth_arg: Any, max_depth: int) -> Optional[tuple[int, ...]]:
  if depth_arg is None:
    return None
  values = (depth_arg,) if isinstance(depth_arg, numbers.Integral) else tuple(depth_arg)
  if not values:
    raise ValueError("depth must be None, an int or a non-empty sequence of ints, got ()")
  for value in values:
    value = checks.positive_int("depth", value)
    if value > max_depth:
      raise ValueError(f"depth must be <= max_depth = {max_depth}, got {value}")
  return tuple(int(v) for v in values)


def _draw(rng, n, *, operators, min_args, max_args, max_depth, max_length, depth_arg,
          branch_probability, unique, exclude, min_length_of, modulus, name) -> Expressions:
  """Shared loop of both generators: draw, reject on length / uniqueness, assemble."""
  rng = _as_rng(rng)
  n = checks.non_negative_int("n", n)
  max_depth = checks.positive_int("max_depth", max_depth)
  max_length = checks.positive_int("max_length", max_length)
  p = checks.in_range("branch_probability", branch_probability, 0.0, 1.0)
  unique = checks.boolean("unique", unique)
  if isinstance(exclude, str):
    raise TypeError("exclude must be a collection of token strings, got one str")
  excluded = set(exclude)
  wanted = _depths(depth_arg, max_depth)
  shallowest = min(wanted) if wanted else 1
  if max_length < min_length_of(shallowest):
    raise ValueError(f"max_length must be >= {min_length_of(shallowest)}, the shortest "
                     f"{name} of depth {shallowest}, got {max_length}")
  ops = tuple(operators)

  def operation(limit, exact):
    """An operation of depth exactly ``limit`` if ``exact``, else of depth <= ``limit``."""
    operator = ops[int(rng.random() * len(ops))]
    count = min_args + int(rng.random() * (max_args - min_args + 1))
    spine = int(rng.random() * count) if exact and limit > 1 else -1
    args = []
    for position in range(count):
      if position == spine:
        args.append(operation(limit - 1, True))
      elif limit > 1 and rng.random() < p:
        args.append(operation(limit - 1, False))
      else:
        args.append(int(rng.random() * 10))
    return (operator, tuple(args))

  seen: set[str] = set()
  expressions, strings = [], []
  for index in range(n):
    target = wanted[int(rng.random() * len(wanted))] if wanted else None
    for _ in range(_ATTEMPTS):
      expression = operation(target or max_depth, target is not None)
      tokens = to_tokens(expression)
      text = " ".join(tokens)
      if len(tokens) <= max_length and text not in excluded and not (unique and text in seen):
        break
    else:
      raise ValueError(
          f"max_length={max_length} (with unique={unique} and {len(excluded)} excluded) left "
          f"no {name} of depth {target or f'<= {max_depth}'} in {_ATTEMPTS} draws for example "
          f"{index}: raise max_length, or ask for fewer or shallower expressions")
    seen.add(text)
    expressions.append(expression)
    strings.append(text)
  return Expressions(
      tuple(expressions), tuple(strings),
      np.array([evaluate(e, modulus) for e in expressions], np.int32).reshape(n),
      np.array([depth(e) for e in expressions], np.int32).reshape(n),
      np.array([len(s.split()) for s in strings], np.int32).reshape(n),
      tuple(to_tree(e, max_args) for e in expressions))


def generate(rng: Any,
             n: int,
             *,
             max_depth: int = 6,
             max_args: int = 5,
             max_length: int = 100,
             depth: Any = None,
             branch_probability: float = 0.25,
             operators: Sequence[str] = LISTOPS_OPERATORS,
             unique: bool = False,
             exclude: Collection[str] = ()) -> Expressions:
  """n random ListOps expressions (Nangia & Bowman 2018) with values, depths and gold trees.

  Every expression is an operation (never a bare digit). Drawing one of depth
  at most m: an operator uniformly from ``operators``, 2 to ``max_args``
  arguments (uniform), each a sub-expression of depth at most m - 1 with
  probability ``branch_probability`` (if m > 1), else a digit 0-9. Nangia &
  Bowman's generator draws the same way (their ``VALUE_P`` = 0.25 is
  ``branch_probability``, ``MAX_ARGS`` = 5 ``max_args``), but from a root
  that may be a bare digit; here the root is always an operation.

  ``depth`` targets depths: an expression of depth exactly d has one argument
  (uniformly placed) of depth exactly d - 1 and the others drawn as above with
  at most d - 1. Draws longer than ``max_length`` tokens (or repeated, with
  ``unique``, or in ``exclude``) are drawn again, so the result follows the
  drawing distribution conditioned on those constraints.

  Args:
    rng: a numpy Generator or an int seed; the same seed gives the same
      expressions.
    n: how many expressions, >= 0.
    max_depth: the deepest nesting allowed, >= 1.
    max_args: the most arguments of an operation, >= 2.
    max_length: the most tokens an expression may have (brackets included),
      >= 4 (``[MAX 1 2 ]``) and >= 3 d + 1 for a requested depth d.
    depth: None (depths as drawn, <= ``max_depth``), an int d (every
      expression has depth d), or a sequence of ints (each expression's depth
      drawn uniformly from it, e.g. ``range(1, 9)`` for a flat distribution).
    branch_probability: the chance that an argument is a sub-expression, in
      [0, 1].
    operators: the operators to draw from, a subset of ``LISTOPS_OPERATORS``.
    unique: no expression twice in the result.
    exclude: token strings never produced (e.g. the training set's
      ``tokens``, to draw a disjoint test set).

  Returns:
    ``Expressions``; its trees have ``max_args`` child slots.

  Raises:
    ValueError: one line naming the argument that is out of range, or
      ``max_length`` when the constraints leave no expression to draw.
  """
  max_args = checks.positive_int("max_args", max_args)
  if max_args < 2:
    raise ValueError(f"max_args must be >= 2 (an operation takes 2 or more arguments), "
                     f"got {max_args}")
  ops = tuple(operators)
  if not ops or any(op not in LISTOPS_OPERATORS for op in ops):
    raise ValueError(f"operators must be a non-empty subset of {LISTOPS_OPERATORS}, got {ops}")
  return _draw(rng, n, operators=ops, min_args=2, max_args=max_args, max_depth=max_depth,
               max_length=max_length, depth_arg=depth, branch_probability=branch_probability,
               unique=unique, exclude=exclude, min_length_of=lambda d: 3 * d + 1, modulus=10,
               name="ListOps expression")


def generate_arithmetic(rng: Any,
                        n: int,
                        *,
                        max_depth: int = 4,
                        max_length: int = 60,
                        depth: Any = None,
                        branch_probability: float = 0.5,
                        operators: Sequence[str] = ARITHMETIC_OPERATORS,
                        modulus: int = 10,
                        unique: bool = False,
                        exclude: Collection[str] = ()) -> Expressions:
  """n random arithmetic expressions over digits, valued modulo ``modulus``.

  Binary operations ``+ - *``, fully parenthesised, e.g. ``( ( 7 * 8 ) - 3 )``;
  the value is the exact integer result mod ``modulus`` (3 here), a class in
  ``[0, modulus)``. Drawn as ``generate`` draws ListOps, with exactly two
  arguments per operation (the gold trees are binary).

  Args:
    rng: a numpy Generator or an int seed.
    n: how many expressions, >= 0.
    max_depth: the deepest nesting allowed, >= 1.
    max_length: the most tokens (parentheses included), >= 4 d + 1 for the
      shallowest depth d asked for (5 for ``( 1 + 2 )``).
    depth: None, an int or a sequence of ints, as in ``generate``.
    branch_probability: the chance that an argument is a sub-expression.
    operators: a non-empty subset of ``ARITHMETIC_OPERATORS``.
    modulus: the number of classes, >= 2.
    unique: no expression twice in the result.
    exclude: token strings never produced.

  Returns:
    ``Expressions``; its trees have 2 child slots.
  """
  modulus = checks.positive_int("modulus", modulus)
  if modulus < 2:
    raise ValueError(f"modulus must be >= 2, got {modulus}")
  ops = tuple(operators)
  if not ops or any(op not in ARITHMETIC_OPERATORS for op in ops):
    raise ValueError(f"operators must be a non-empty subset of {ARITHMETIC_OPERATORS}, "
                     f"got {ops}")
  return _draw(rng, n, operators=ops, min_args=2, max_args=2, max_depth=max_depth,
               max_length=max_length, depth_arg=depth, branch_probability=branch_probability,
               unique=unique, exclude=exclude, min_length_of=lambda d: 4 * d + 1,
               modulus=modulus, name="arithmetic expression")
