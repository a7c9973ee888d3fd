"""Formulas → negation normal form trees over variable slots, ready for grounding.

Implications and equivalences are rewritten, negations pushed to the leaves,
quantifiers expanded over their (finite) domains. A formula with a negative
weight ``w`` is replaced by its negation with weight ``|w|``: a true ground
formula then costs ``|w|`` exactly as the semantics says.

Leaves are ``Lit`` (a predicate literal) and ``Cmp`` (a built-in comparison);
arguments are ``Var(slot)`` (a free variable of the formula) or ``Const(value)``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from reasoner.check import CheckedFormula
from reasoner.constants import ConstantValue
from reasoner.errors import LimitError
from reasoner.limits import MAX_EXPANSION, MAX_FORMULA_LEAVES, MAX_PRUNING_CLAUSES
from reasoner.syntax import (
    And,
    Atom,
    Comparison,
    Constant,
    Equivalent,
    Formula,
    Implies,
    Not,
    Or,
    Quantified,
    Term,
)

__all__ = [
    "Arg",
    "Cmp",
    "Const",
    "Junction",
    "Lit",
    "Node",
    "Truth",
    "leaves",
    "normalize",
    "to_clauses",
]


# An order comparison involving a non-number is false, so its negation is true:
# ``!(x < y)`` is not ``x >= y`` but ``!<``, "not less than" (also true for strings).
NEGATED_OPERATOR = {
    "=": "!=", "!=": "=",
    "<": "!<", "<=": "!<=", ">": "!>", ">=": "!>=",
    "!<": "<", "!<=": "<=", "!>": ">", "!>=": ">=",
}


@dataclass(frozen=True, slots=True)
class Var:
    slot: int


@dataclass(frozen=True, slots=True)
class Const:
    value: ConstantValue


Arg = Var | Const


@dataclass(frozen=True, slots=True)
class Lit:
    positive: bool
    predicate: str
    args: tuple[Arg, ...]


@dataclass(frozen=True, slots=True)
class Cmp:
    op: str
    left: Arg
    right: Arg


@dataclass(frozen=True, slots=True)
class Junction:
    kind: str  # "and" | "or"
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Truth:
    value: bool


Node = Lit | Cmp | Junction | Truth


def normalize(
    formula: CheckedFormula,
    domains: Mapping[str, Sequence[ConstantValue]],
    negate: bool = False,
) -> Node:
    """The NNF tree of a checked formula (negated when ``negate``).

    Rewriting '<=>' doubles both sides and a quantifier copies its body once per case, so a
    short formula can have an astronomically large NNF; its size is computed first and a
    ``LimitError`` raised beyond ``MAX_FORMULA_LEAVES`` leaves, before anything is built.
    """
    size = _leaf_count(formula.formula, formula, domains)
    if size > MAX_FORMULA_LEAVES:
        span = formula.span
        raise LimitError(
            f"{span.file}:{span.line}:{span.column}: formula expands to {size:,} literals once '<=>' and "
            f"quantifiers are rewritten (limit {MAX_FORMULA_LEAVES:,}); split it into several formulas or "
            "name a part with a derived predicate"
        )
    slots = {name: Var(index) for index, name in enumerate(formula.variables)}
    return _simplify(_nnf(formula.formula, not negate, slots, formula, domains))


def _leaf_count(node: Formula, formula: CheckedFormula, domains: Mapping[str, Sequence[ConstantValue]]) -> int:
    """Leaves of the NNF of ``node`` (exact, as an unbounded integer; cheap to compute)."""
    if isinstance(node, (Atom, Comparison)):
        return 1
    if isinstance(node, Not):
        return _leaf_count(node.operand, formula, domains)
    if isinstance(node, (And, Or)):
        return sum(_leaf_count(operand, formula, domains) for operand in node.operands)
    if isinstance(node, Implies):
        return _leaf_count(node.left, formula, domains) + _leaf_count(node.right, formula, domains)
    if isinstance(node, Equivalent):
        return 2 * (_leaf_count(node.left, formula, domains) + _leaf_count(node.right, formula, domains))
    if isinstance(node, Quantified):
        cases = 1
        for variable in node.variables:
            cases *= len(domains.get(formula.type_of(variable.name), ()))
        return max(1, cases) * _leaf_count(node.body, formula, domains)
    return 1


def _term(term: Term, env: Mapping[str, Arg]) -> Arg:
    if isinstance(term, Constant):
        return Const(term.value)
    return env[term.name]


def _nnf(
    node: Formula,
    positive: bool,
    env: Mapping[str, Arg],
    formula: CheckedFormula,
    domains: Mapping[str, Sequence[ConstantValue]],
) -> Node:
    if isinstance(node, Atom):
        return Lit(positive, node.predicate, tuple(_term(arg, env) for arg in node.args))
    if isinstance(node, Comparison):
        op = node.op if positive else NEGATED_OPERATOR[node.op]
        return Cmp(op, _term(node.left, env), _term(node.right, env))
    if isinstance(node, Not):
        return _nnf(node.operand, not positive, env, formula, domains)
    if isinstance(node, (And, Or)):
        kind = "and" if isinstance(node, And) == positive else "or"
        return Junction(kind, tuple(_nnf(op, positive, env, formula, domains) for op in node.operands))
    if isinstance(node, Implies):
        rewritten: Formula = Or((Not(node.left, node.span), node.right), node.span)
        return _nnf(rewritten, positive, env, formula, domains)
    if isinstance(node, Equivalent):
        a, b = node.left, node.right
        both = And((Or((Not(a, node.span), b), node.span), Or((a, Not(b, node.span)), node.span)), node.span)
        return _nnf(both, positive, env, formula, domains)
    if isinstance(node, Quantified):
        names = [variable.name for variable in node.variables]
        value_lists = [domains.get(formula.type_of(name), ()) for name in names]
        size = 1
        for values in value_lists:
            size *= len(values)
        if size > MAX_EXPANSION:
            raise LimitError(
                f"{node.span.file}:{node.span.line}:{node.span.column}: quantifier over "
                f"{', '.join(names)} expands to {size:,} cases (limit {MAX_EXPANSION:,}); "
                "replace it by a derived predicate or restrict its domain"
            )
        existential = (node.quantifier == "exists") == positive
        children = []
        for values in itertools.product(*value_lists):
            inner = dict(env)
            inner.update({name: Const(value) for name, value in zip(names, values, strict=True)})
            children.append(_nnf(node.body, positive, inner, formula, domains))
        return Junction("or" if existential else "and", tuple(children))
    raise TypeError(f"unexpected formula node {node!r}")


def _simplify(node: Node) -> Node:
    """Fold constant comparisons and truth values; flatten nested junctions of one kind."""
    if isinstance(node, Cmp) and isinstance(node.left, Const) and isinstance(node.right, Const):
        return Truth(compare_values(node.op, node.left.value, node.right.value))
    if not isinstance(node, Junction):
        return node
    children: list[Node] = []
    for child in (_simplify(child) for child in node.children):
        if isinstance(child, Truth):
            if child.value == (node.kind == "or"):
                return Truth(child.value)
            continue
        if isinstance(child, Junction) and child.kind == node.kind:
            children.extend(child.children)
        else:
            children.append(child)
    if not children:
        return Truth(node.kind == "and")
    if len(children) == 1:
        return children[0]
    return Junction(node.kind, tuple(children))


def compare_values(op: str, left: ConstantValue, right: ConstantValue) -> bool:
    """A built-in comparison of two constants (order comparisons need numbers)."""
    if op == "=":
        return left == right
    if op == "!=":
        return left != right
    if op.startswith("!"):
        return not compare_values(op[1:], left, right)
    if isinstance(left, str) or isinstance(right, str):
        return False
    return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]


def leaves(node: Node) -> Iterator[Lit | Cmp]:
    """Leaves left to right."""
    if isinstance(node, (Lit, Cmp)):
        yield node
    elif isinstance(node, Junction):
        for child in node.children:
            yield from leaves(child)


def to_clauses(node: Node) -> list[list[Lit | Cmp]] | None:
    """CNF of the tree (for pruning only), or None when it would exceed a small size."""
    if isinstance(node, Truth):
        return [] if node.value else [[]]
    if isinstance(node, (Lit, Cmp)):
        return [[node]]
    parts = [to_clauses(child) for child in node.children]
    if any(part is None for part in parts):
        return None
    if node.kind == "and":
        result = [clause for part in parts for clause in part]  # type: ignore[union-attr]
        return result if len(result) <= MAX_PRUNING_CLAUSES else None
    product: list[list[Lit | Cmp]] = [[]]
    for part in parts:
        assert part is not None
        product = [left + right for left in product for right in part]
        if len(product) > MAX_PRUNING_CLAUSES:
            return None
    return product
