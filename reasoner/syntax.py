"""The abstract syntax of rule files: frozen nodes, each with its source span."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

__all__ = [
    "And",
    "Atom",
    "Binding",
    "Column",
    "Comparison",
    "Condition",
    "Constant",
    "DerivedRule",
    "Equivalent",
    "Formula",
    "Implies",
    "Literal",
    "Not",
    "Or",
    "PredicateDeclaration",
    "Program",
    "Quantified",
    "Span",
    "Statement",
    "Term",
    "TypeDeclaration",
    "Variable",
    "WeightedFormula",
]


@dataclass(frozen=True, slots=True)
class Span:
    """Where a node stands: file, 1-based line and column, and the line's text."""

    file: str
    line: int
    column: int
    end_line: int
    end_column: int
    line_text: str = field(default="", compare=False, repr=False)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True, slots=True)
class Variable:
    """A variable; ``per_constant`` when written ``+x`` (Alchemy, pracmln): one formula, and
    one weight to learn, per constant of its type. At inference every expansion shares the
    formula's weight, so it grounds as an ordinary variable."""

    name: str
    span: Span = field(compare=False)
    per_constant: bool = False

    def __str__(self) -> str:
        return f"+{self.name}" if self.per_constant else self.name


@dataclass(frozen=True, slots=True)
class Constant:
    """A constant: an ``int``, a ``float`` or a ``str`` (bare or quoted in the source)."""

    value: int | float | str
    span: Span = field(compare=False)

    def __str__(self) -> str:
        import json

        from reasoner.constants import display

        text = display(self.value)
        if isinstance(self.value, str) and not ("A" <= text[:1] <= "Z" or text.startswith('"')):
            # A bare lower-case or '_' name would read back as a variable or not at all.
            return json.dumps(self.value, ensure_ascii=False)
        return text


Term = Variable | Constant


@dataclass(frozen=True, slots=True)
class Atom:
    predicate: str
    args: tuple[Term, ...]
    span: Span = field(compare=False)

    def __str__(self) -> str:
        return f"{self.predicate}({', '.join(str(arg) for arg in self.args)})"


@dataclass(frozen=True, slots=True)
class Comparison:
    """A built-in comparison ``left op right`` with op one of = != < <= > >=."""

    op: str
    left: Term
    right: Term
    span: Span = field(compare=False)

    def __str__(self) -> str:
        return f"{self.left} {self.op} {self.right}"


@dataclass(frozen=True, slots=True)
class Not:
    operand: Formula
    span: Span = field(compare=False)

    def __str__(self) -> str:
        return f"!{_wrap(self.operand)}"


@dataclass(frozen=True, slots=True)
class And:
    operands: tuple[Formula, ...]
    span: Span = field(compare=False)

    def __str__(self) -> str:
        return " ^ ".join(_wrap(operand) for operand in self.operands)


@dataclass(frozen=True, slots=True)
class Or:
    operands: tuple[Formula, ...]
    span: Span = field(compare=False)

    def __str__(self) -> str:
        return " v ".join(_wrap(operand) for operand in self.operands)


@dataclass(frozen=True, slots=True)
class Implies:
    left: Formula
    right: Formula
    span: Span = field(compare=False)

    def __str__(self) -> str:
        return f"{_wrap(self.left)} => {_wrap(self.right)}"


@dataclass(frozen=True, slots=True)
class Equivalent:
    left: Formula
    right: Formula
    span: Span = field(compare=False)

    def __str__(self) -> str:
        return f"{_wrap(self.left)} <=> {_wrap(self.right)}"


@dataclass(frozen=True, slots=True)
class Quantified:
    """``EXIST x,y body`` (quantifier ``exists``) or ``FORALL x body`` (``forall``)."""

    quantifier: str
    variables: tuple[Variable, ...]
    body: Formula
    span: Span = field(compare=False)

    def __str__(self) -> str:
        keyword = "EXIST" if self.quantifier == "exists" else "FORALL"
        names = ",".join(variable.name for variable in self.variables)
        return f"{keyword} {names} {_wrap(self.body)}"


Formula = Atom | Comparison | Not | And | Or | Implies | Equivalent | Quantified


def _wrap(formula: Formula) -> str:
    if isinstance(formula, (Atom, Comparison, Not)):
        return str(formula)
    return f"({formula})"


@dataclass(frozen=True, slots=True)
class TypeDeclaration:
    """``person = {Anna, Bob}``: constants that belong to a type."""

    name: str
    constants: tuple[Constant, ...]
    span: Span = field(compare=False)


@dataclass(frozen=True, slots=True)
class PredicateDeclaration:
    """``Friends(person, person)``; ``closed`` when written with Tuffy's ``*``.

    ``determined`` lists the arguments written ``type!`` (Alchemy, pracmln): for each binding
    of the other arguments exactly one binding of these makes the atom true; with
    ``exhaustive`` false (pracmln's ``type?``) at most one does.
    """

    name: str
    types: tuple[str, ...]
    closed: bool
    span: Span = field(compare=False)
    determined: tuple[int, ...] = ()
    exhaustive: bool = True

    @property
    def signature(self) -> str:
        return f"{self.name}/{len(self.types)}"


@dataclass(frozen=True, slots=True)
class WeightedFormula:
    """A formula with a weight, or a hard formula (``weight is None``).

    ``weight_variable`` names the free variable whose value is each grounding's weight
    (RockIt's ``conf: !Conf(x, conf) v Red(x)``); ``weight`` is then ``None`` and the
    formula is soft. ``unweighted``: a soft formula whose weight is to be learned
    (Alchemy's learning templates, written with neither a weight nor a period).
    ``per_constant`` names the variables written ``+x`` (see ``Variable``); ``unique`` those
    named by pracmln's ``#unique{+?x, +?y}`` before the formula: of the expansions that only
    permute their constants, learning keeps one.
    """

    weight: Decimal | None
    formula: Formula
    text: str
    span: Span = field(compare=False)
    fixed: bool = False
    weight_variable: str | None = None
    unweighted: bool = False
    per_constant: tuple[str, ...] = ()
    unique: tuple[str, ...] = ()

    @property
    def hard(self) -> bool:
        return self.weight is None and self.weight_variable is None and not self.unweighted


@dataclass(frozen=True, slots=True)
class Column:
    """A table column; the 1-based row number when ``name is None`` (``@row``); or, when
    ``constant`` is set, that constant in every row (``bind Level(lei, P01) from ...``)."""

    name: str | None
    span: Span = field(compare=False)
    constant: int | float | str | None = None

    def __str__(self) -> str:
        if self.constant is not None:
            return str(self.constant)
        return "@row" if self.name is None else self.name


@dataclass(frozen=True, slots=True)
class Condition:
    """``column op value`` or ``column in (values)`` (op ``in``) in a binding."""

    column: Column
    op: str
    values: tuple[Constant, ...]
    span: Span = field(compare=False)


@dataclass(frozen=True, slots=True)
class Binding:
    """``bind Pred(col, ...) from table where ... [with probability col]``: evidence read from a
    table; with ``probability``, each row's atom is soft evidence of that probability."""

    predicate: str
    columns: tuple[Column, ...]
    table: str
    conditions: tuple[Condition, ...]
    span: Span = field(compare=False)
    probability: Column | None = None


@dataclass(frozen=True, slots=True)
class Literal:
    """An atom or its negation in the body of a derived rule."""

    positive: bool
    atom: Atom
    span: Span = field(compare=False)


@dataclass(frozen=True, slots=True)
class DerivedRule:
    """``Head(x) :- Body(x, y), !Other(y), x != y.``: deterministic derived evidence."""

    head: Atom
    body: tuple[Literal | Comparison, ...]
    span: Span = field(compare=False)


Statement = TypeDeclaration | PredicateDeclaration | WeightedFormula | Binding | DerivedRule


@dataclass(frozen=True, slots=True)
class Program:
    """Every statement of every rule file, in file order."""

    statements: tuple[Statement, ...]
    files: tuple[str, ...]
