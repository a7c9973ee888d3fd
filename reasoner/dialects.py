"""What the other engines' programs mean, rewritten into the core language.

Alchemy, pracmln and RockIt write a few things differently from Tuffy; the parser reads their
syntax and the functions here turn it into ordinary syntax nodes, so that no later stage knows
about dialects:

- pracmln's weights written as arithmetic (``log(0.9)``, ``logx(.75/.25)``, ``-float('inf')``)
  become numbers (``weight_expression``);
- in a pracmln formula that writes its variables ``?x`` (its ``PRACGrammar``), bare lower-case
  names are constants (``prac_formula``);
- in a RockIt program, whose declarations name capitalised types (``*Smokes(Person)``),
  capitalised bare names in formulas are variables and only quoted strings are constants
  (``rockit_formula``);
- an "exactly one value" argument (``orders(person, dish!)``) becomes two hard formulas built
  from the declaration (``determined_formulas``).
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal

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
    PredicateDeclaration,
    Quantified,
    Term,
    Variable,
    WeightedFormula,
)

__all__ = [
    "EXPRESSION_WEIGHT_PLACES",
    "ExpressionWeight",
    "WeightExpressionError",
    "bare_name",
    "determined_formulas",
    "formula_terms",
    "map_terms",
    "prac_formula",
    "rockit_formula",
    "weight_expression",
]

EXPRESSION_WEIGHT_PLACES = 6  # a computed weight is rounded to this many decimal places (pracmln prints 6)


def _logx(value: float) -> float:
    """pracmln's ``logx``: the natural logarithm, and -100 for 0."""
    return -100.0 if value == 0 else math.log(value)


_FUNCTIONS: dict[str, Callable[..., float]] = {
    "abs": abs,
    "exp": math.exp,
    "log": math.log,
    "log10": math.log10,
    "log2": math.log2,
    "logx": _logx,
    "pow": math.pow,
    "sqrt": math.sqrt,
}


class WeightExpressionError(ValueError):
    """A weight expression that is not arithmetic or cannot be computed."""


@dataclass(frozen=True, slots=True)
class ExpressionWeight:
    """A computed weight: a number, or infinite (``hard``; ``negated`` for ``-inf``)."""

    weight: Decimal | None
    negated: bool = False


def weight_expression(text: str) -> ExpressionWeight:
    """The value of a pracmln weight expression: numbers, ``+ - * / **``, parentheses,
    ``log logx exp sqrt log10 log2 pow abs`` and ``float('inf')``."""
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, RecursionError, MemoryError):
        raise WeightExpressionError("is not an arithmetic expression") from None
    try:
        value = _evaluate(tree.body)
    except RecursionError:
        raise WeightExpressionError("is nested too deeply") from None
    except (ValueError, TypeError, OverflowError, ZeroDivisionError) as error:
        reason = "division by zero" if isinstance(error, ZeroDivisionError) else str(error)
        raise WeightExpressionError(f"cannot be computed ({reason})") from None
    if math.isnan(value):
        raise WeightExpressionError("is not a number (NaN)")
    if math.isinf(value):
        return ExpressionWeight(None, negated=value < 0)
    if abs(value) >= 1e15:
        raise WeightExpressionError("is too large; write 'float(\'inf\')' for a hard formula")
    places = Decimal(1).scaleb(-EXPRESSION_WEIGHT_PLACES)
    return ExpressionWeight(Decimal(repr(value)).quantize(places))


def _evaluate(node: ast.expr) -> float:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        operand = _evaluate(node.operand)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp):
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Add):
            return left + right
        if isinstance(node.op, ast.Sub):
            return left - right
        if isinstance(node.op, ast.Mult):
            return left * right
        if isinstance(node.op, ast.Div):
            return left / right
        if isinstance(node.op, ast.Pow):
            return float(math.pow(left, right))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        name = node.func.id
        if name == "float" and len(node.args) == 1:
            argument = node.args[0]
            if isinstance(argument, ast.Constant) and argument.value in ("inf", "+inf", "-inf"):
                return float(argument.value)
        elif name in _FUNCTIONS:
            return float(_FUNCTIONS[name](*(_evaluate(argument) for argument in node.args)))
    raise ValueError(f"'{ast.unparse(node)}' is not supported")


# -- terms of formulas -----------------------------------------------------------------


def formula_terms(formula: Formula) -> Iterator[Term]:
    """Every term of a formula, left to right (quantified variables included)."""
    if isinstance(formula, Atom):
        yield from formula.args
    elif isinstance(formula, Comparison):
        yield formula.left
        yield formula.right
    elif isinstance(formula, Not):
        yield from formula_terms(formula.operand)
    elif isinstance(formula, (And, Or)):
        for operand in formula.operands:
            yield from formula_terms(operand)
    elif isinstance(formula, (Implies, Equivalent)):
        yield from formula_terms(formula.left)
        yield from formula_terms(formula.right)
    elif isinstance(formula, Quantified):
        yield from formula.variables
        yield from formula_terms(formula.body)


def map_terms(formula: Formula, change: Callable[[Term], Term]) -> Formula:
    """The formula with every term replaced by ``change(term)``."""
    if isinstance(formula, Atom):
        return Atom(formula.predicate, tuple(change(arg) for arg in formula.args), formula.span)
    if isinstance(formula, Comparison):
        return Comparison(formula.op, change(formula.left), change(formula.right), formula.span)
    if isinstance(formula, Not):
        return Not(map_terms(formula.operand, change), formula.span)
    if isinstance(formula, And):
        return And(tuple(map_terms(operand, change) for operand in formula.operands), formula.span)
    if isinstance(formula, Or):
        return Or(tuple(map_terms(operand, change) for operand in formula.operands), formula.span)
    if isinstance(formula, Implies):
        return Implies(map_terms(formula.left, change), map_terms(formula.right, change), formula.span)
    if isinstance(formula, Equivalent):
        return Equivalent(map_terms(formula.left, change), map_terms(formula.right, change), formula.span)
    variables = []
    for variable in formula.variables:
        changed = change(variable)
        variables.append(changed if isinstance(changed, Variable) else variable)
    return Quantified(formula.quantifier, tuple(variables), map_terms(formula.body, change), formula.span)


def prac_formula(formula: Formula) -> Formula:
    """pracmln's ``PRACGrammar``: when a formula writes variables ``?x``, they are its only
    variables and its bare lower-case names are constants. Other formulas are unchanged."""
    if not any(isinstance(term, Variable) and term.name.startswith("?") for term in formula_terms(formula)):
        return formula

    def change(term: Term) -> Term:
        if not isinstance(term, Variable):
            return term
        if term.name.startswith("?"):
            return Variable(term.name[1:], term.span, term.per_constant)
        return Constant(term.name, term.span)

    return map_terms(formula, change)


def rockit_formula(formula: Formula) -> Formula:
    """RockIt: capitalised bare names are variables (its constants are quoted strings)."""

    def change(term: Term) -> Term:
        if isinstance(term, Constant) and isinstance(term.value, str) and bare_name(term):
            return Variable(term.value, term.span)
        return term

    return map_terms(formula, change)


def bare_name(constant: Constant) -> bool:
    """A constant written as a capitalised name, not as a quoted string or a number."""
    span = constant.span
    return isinstance(constant.value, str) and span.line_text[span.column - 1 : span.column].isupper()


# -- exactly one value -------------------------------------------------------------------


def determined_formulas(declaration: PredicateDeclaration) -> tuple[WeightedFormula, ...]:
    """The hard formulas that say a declaration's ``!`` arguments take exactly one value (at
    most one for pracmln's ``?``) for each binding of the other arguments.

    For ``orders(person, dish!)``: ``EXIST d orders(p, d).`` (some value; left out for
    ``?``) and ``!orders(p, d) v !orders(p, e) v d = e.`` (no two values). With several
    determined arguments the combination of their values is what is unique.
    """
    if not declaration.determined:
        return ()
    span = declaration.span
    arity = len(declaration.types)
    first = [Variable(f"{_letter(declaration.types[i])}{i + 1}", span) for i in range(arity)]
    second = [
        Variable(f"{_letter(declaration.types[i])}{i + 1}_", span) if i in declaration.determined else first[i]
        for i in range(arity)
    ]
    one = Atom(declaration.name, tuple(first), span)
    other = Atom(declaration.name, tuple(second), span)
    text = _declaration_text(declaration)
    formulas: list[WeightedFormula] = []
    if declaration.exhaustive:
        bound = tuple(first[i] for i in declaration.determined)
        some = Quantified("exists", bound, one, span) if len(bound) < arity else one
        formulas.append(WeightedFormula(None, some, f"{some}. // from {text}", span))
    same = tuple(Comparison("=", first[i], second[i], span) for i in declaration.determined)
    unique = Or((Not(one, span), Not(other, span), same[0] if len(same) == 1 else And(same, span)), span)
    formulas.append(WeightedFormula(None, unique, f"{unique}. // from {text}", span))
    return tuple(formulas)


def _letter(type_name: str) -> str:
    head = type_name[:1].lower()
    return head if head.isalpha() else "v"


def _declaration_text(declaration: PredicateDeclaration) -> str:
    mark = "!" if declaration.exhaustive else "?"
    types = ", ".join(
        type_ + (mark if index in declaration.determined else "") for index, type_ in enumerate(declaration.types)
    )
    return f"{declaration.name}({types})"

