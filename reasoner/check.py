"""Stage 2: ``Program`` → ``CheckedProgram``: names, arities, types, safety, roles.

Every problem is a positioned ``Diagnostic``; all of them are collected and
raised together as one ``RuleError``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import networkx as nx

from reasoner.constants import ConstantValue
from reasoner.dialects import determined_formulas
from reasoner.errors import Diagnostic, RuleError, closest
from reasoner.syntax import (
    And,
    Atom,
    Binding,
    Comparison,
    Constant,
    DerivedRule,
    Equivalent,
    Formula,
    Implies,
    Literal,
    Not,
    Or,
    PredicateDeclaration,
    Program,
    Quantified,
    Span,
    Term,
    TypeDeclaration,
    Variable,
    WeightedFormula,
)

__all__ = [
    "CheckedFormula",
    "CheckedProgram",
    "Predicate",
    "QueryPattern",
    "check_program",
    "predicate_like",
    "require_weights",
    "where",
]

NUMERIC_OPERATORS = ("<", "<=", ">", ">=")


@dataclass(frozen=True, slots=True)
class Predicate:
    """A declared predicate and its role.

    ``role`` is ``evidence`` (closed world), ``derived`` (closed world, computed
    from derived rules), ``query`` (open world, reported) or ``hidden`` (open
    world, not reported: Tuffy's unstarred predicates that are not queried).
    """

    name: str
    types: tuple[str, ...]
    role: str
    span: Span

    @property
    def arity(self) -> int:
        return len(self.types)

    @property
    def open_world(self) -> bool:
        return self.role in ("query", "hidden")

    @property
    def signature(self) -> str:
        return f"{self.name}/{len(self.types)}"


@dataclass(frozen=True, slots=True)
class CheckedFormula:
    """A formula statement with the types of its free variables (in order of appearance)."""

    index: int
    statement: WeightedFormula
    variables: tuple[str, ...]
    types: tuple[str, ...]
    bound_types: tuple[tuple[str, str], ...] = ()

    @property
    def formula(self) -> Formula:
        return self.statement.formula

    @property
    def span(self) -> Span:
        return self.statement.span

    def type_of(self, variable: str) -> str:
        if variable in self.variables:
            return self.types[self.variables.index(variable)]
        return dict(self.bound_types)[variable]


@dataclass(frozen=True, slots=True)
class QueryPattern:
    """A query: a predicate, optionally restricted to atoms matching constant arguments."""

    predicate: str
    args: tuple[ConstantValue | None, ...] | None = None

    def matches(self, args: tuple[ConstantValue, ...]) -> bool:
        if self.args is None:
            return True
        return all(want is None or want == have for want, have in zip(self.args, args, strict=True))


@dataclass(frozen=True, slots=True)
class CheckedProgram:
    program: Program
    predicates: dict[str, Predicate]
    formulas: tuple[CheckedFormula, ...]
    constants: dict[str, tuple[ConstantValue, ...]]
    bindings: tuple[Binding, ...]
    derived_strata: tuple[tuple[DerivedRule, ...], ...]
    queries: tuple[QueryPattern, ...]
    warnings: tuple[Diagnostic, ...] = field(default=())

    @property
    def types(self) -> tuple[str, ...]:
        names = {type_ for predicate in self.predicates.values() for type_ in predicate.types}
        return tuple(sorted(names | set(self.constants)))

    def query_predicates(self) -> tuple[str, ...]:
        return tuple(sorted({query.predicate for query in self.queries}))


def check_program(
    program: Program,
    queries: Iterable[QueryPattern] = (),
    query_spans: dict[str, Span] | None = None,
) -> CheckedProgram:
    """Check a parsed program against the query; raise ``RuleError`` listing every problem."""
    return _Checker(program, tuple(queries), query_spans or {}).run()


class _Checker:
    def __init__(
        self, program: Program, queries: tuple[QueryPattern, ...], query_spans: dict[str, Span]
    ) -> None:
        self.program = program
        self.queries = queries
        self.query_spans = query_spans
        self.errors: list[Diagnostic] = []
        self.warnings: list[Diagnostic] = []
        self.declarations: dict[str, PredicateDeclaration] = {}
        self.constants: dict[str, dict[ConstantValue, None]] = {}

    def error(self, span: Span, message: str, *notes: str) -> None:
        self.errors.append(Diagnostic(span, message, notes=notes))

    def run(self) -> CheckedProgram:
        statements = self.program.statements
        for statement in statements:
            if isinstance(statement, PredicateDeclaration):
                self._declare(statement)
            elif isinstance(statement, TypeDeclaration):
                bucket = self.constants.setdefault(statement.name, {})
                for constant in statement.constants:
                    bucket.setdefault(constant.value, None)
        formulas: list[CheckedFormula] = []
        bindings: list[Binding] = []
        derived: list[DerivedRule] = []
        for statement in statements:
            if isinstance(statement, WeightedFormula):
                checked = self._check_formula(statement, len(formulas))
                if checked is not None:
                    formulas.append(checked)
                if statement.unweighted:
                    self.warnings.append(_unweighted(statement, "warning"))
            elif isinstance(statement, Binding):
                self._check_binding(statement)
                bindings.append(statement)
            elif isinstance(statement, DerivedRule):
                self._check_derived(statement)
                derived.append(statement)
        # 'orders(person, dish!)': its hard formulas come after the program's own.
        for name in sorted(self.declarations):
            for statement in determined_formulas(self.declarations[name]):
                checked = self._check_formula(statement, len(formulas))
                if checked is not None:
                    formulas.append(checked)
        predicates = self._roles(derived)
        strata = self._stratify(derived)
        if self.errors:
            raise RuleError(sorted(self.errors, key=_diagnostic_order))
        constants = {name: tuple(bucket) for name, bucket in sorted(self.constants.items())}
        return CheckedProgram(
            program=self.program,
            predicates=predicates,
            formulas=tuple(formulas),
            constants=constants,
            bindings=tuple(bindings),
            derived_strata=strata,
            queries=self.queries,
            warnings=tuple(self.warnings),
        )

    # -- declarations --------------------------------------------------
    def _declare(self, declaration: PredicateDeclaration) -> None:
        previous = self.declarations.get(declaration.name)
        if previous is None:
            self.declarations[declaration.name] = declaration
        elif previous.types != declaration.types:
            notes = [f"first declared as '{previous.signature}' at {where(previous.span)}"]
            if any(type_[:1].isupper() for type_ in declaration.types):
                notes.append(f"a fact or a hard formula ends with a period: '{declaration.span.line_text.strip()}.'")
            self.error(declaration.span, f"predicate '{declaration.name}' declared again with other types", *notes)
        elif previous.determined and declaration.determined and (
            (previous.determined, previous.exhaustive) != (declaration.determined, declaration.exhaustive)
        ):
            self.error(
                declaration.span,
                f"predicate '{declaration.name}' declared again with other determined arguments ('!', '?')",
                f"first declared at {where(previous.span)}",
            )
        elif previous.closed != declaration.closed or (declaration.determined and not previous.determined):
            marked = previous if previous.determined else declaration
            self.declarations[declaration.name] = PredicateDeclaration(
                previous.name,
                previous.types,
                previous.closed or declaration.closed,
                previous.span,
                marked.determined,
                marked.exhaustive,
            )

    def _lookup(self, atom: Atom) -> PredicateDeclaration | None:
        declaration = self.declarations.get(atom.predicate)
        if declaration is None:
            notes = predicate_like(atom.predicate, self.declarations)
            if not notes:
                types = ", ".join(f"type{i + 1}" for i in range(len(atom.args)))
                notes.append(f"declare it first, e.g. '{atom.predicate}({types})'")
            span = _name_span(atom)
            self.error(span, f"unknown predicate '{atom.predicate}/{len(atom.args)}'", *notes)
            return None
        if len(declaration.types) != len(atom.args):
            self.error(
                _name_span(atom),
                f"'{atom.predicate}' takes {len(declaration.types)} argument"
                f"{'s' if len(declaration.types) != 1 else ''}, got {len(atom.args)}",
                f"declared as '{declaration.name}({', '.join(declaration.types)})' at {where(declaration.span)}",
            )
            return None
        return declaration

    # -- formulas ------------------------------------------------------
    def _check_formula(self, statement: WeightedFormula, index: int) -> CheckedFormula | None:
        before = len(self.errors)
        scope = _Scope(self)
        scope.visit(statement.formula, bound=frozenset())
        scope.finish()
        if len(self.errors) > before:
            return None
        free = tuple(name for name in scope.order if name not in scope.bound_names)
        for name in statement.unique:
            if name not in statement.per_constant:
                self.error(
                    statement.span,
                    f"'#unique' names '{name}', which is not a '+' variable of this formula",
                    f"its '+' variables: {', '.join(statement.per_constant) or 'none'}",
                )
                return None
        if statement.unique and not (statement.unweighted or statement.weight == 0):
            self.error(
                statement.span,
                "'#unique' is supported on learning templates only (weight 0 or no weight)",
                "at inference every expansion of a '+' variable is kept; learn the weights with 'reason learn'",
            )
            return None
        if statement.weight_variable is not None and statement.weight_variable not in free:
            self.error(
                statement.span,
                f"the weight variable '{statement.weight_variable}' does not appear free in the formula",
                "a formula 'w: F' takes each grounding's weight from the value of the variable 'w' in F, "
                "e.g. 'w: Strength(l, w) => Flagged(l)'",
            )
            return None
        types = tuple(scope.types[name] for name in free)
        bound = tuple((name, scope.types[name]) for name in scope.order if name in scope.bound_names)
        return CheckedFormula(index, statement, free, types, bound)

    # -- bindings ------------------------------------------------------
    def _check_binding(self, binding: Binding) -> None:
        declaration = self.declarations.get(binding.predicate)
        if declaration is None:
            fake = Atom(binding.predicate, tuple(Variable("_", c.span) for c in binding.columns), binding.span)
            self._lookup(fake)
            return
        if len(declaration.types) != len(binding.columns):
            self.error(
                binding.span,
                f"'{binding.predicate}' takes {len(declaration.types)} argument"
                f"{'s' if len(declaration.types) != 1 else ''}, but the binding names "
                f"{len(binding.columns)} column{'s' if len(binding.columns) != 1 else ''}",
                f"declared as '{declaration.name}({', '.join(declaration.types)})' at {where(declaration.span)}",
            )
        for condition in binding.conditions:
            if condition.op in NUMERIC_OPERATORS:
                for value in condition.values:
                    if isinstance(value.value, str):
                        self.error(value.span, f"'{condition.op}' needs a number, got {value}")

    # -- derived rules -------------------------------------------------
    def _check_derived(self, rule: DerivedRule) -> None:
        head = self._lookup(rule.head)
        types: dict[str, str] = {}
        positive: set[str] = set()
        for literal in rule.body:
            if isinstance(literal, Literal):
                declaration = self._lookup(literal.atom)
                if declaration is None:
                    continue
                for arg, type_ in zip(literal.atom.args, declaration.types, strict=True):
                    self._note_term(arg, type_, types)
                    if literal.positive and isinstance(arg, Variable):
                        positive.add(arg.name)
        if head is not None:
            for arg, type_ in zip(rule.head.args, head.types, strict=True):
                self._note_term(arg, type_, types)
        for literal in rule.body:
            atoms: list[Term] = []
            if isinstance(literal, Literal) and not literal.positive:
                atoms = list(literal.atom.args)
            elif isinstance(literal, Comparison):
                atoms = [literal.left, literal.right]
                self._check_comparison(literal, types)
            for term in atoms:
                if isinstance(term, Variable) and term.name not in positive:
                    self.error(
                        term.span,
                        f"variable '{term.name}' is not bound by a positive atom of the rule body",
                        "each variable of a derived rule must appear in a positive body atom",
                    )
        for term in rule.head.args:
            if isinstance(term, Variable) and term.name not in positive:
                self.error(
                    term.span,
                    f"head variable '{term.name}' does not appear in a positive body atom",
                    "a derived rule cannot invent values: bind the variable in the body",
                )

    def _note_term(self, term: Term, type_: str, types: dict[str, str]) -> None:
        if isinstance(term, Constant):
            self.constants.setdefault(type_, {}).setdefault(term.value, None)
            return
        known = types.setdefault(term.name, type_)
        if known != type_:
            self.error(
                term.span,
                f"type clash: variable '{term.name}' is '{type_}' here but '{known}' elsewhere in the rule",
            )

    def _check_comparison(self, comparison: Comparison, types: dict[str, str]) -> None:
        if comparison.op in NUMERIC_OPERATORS:
            for term in (comparison.left, comparison.right):
                if isinstance(term, Constant) and isinstance(term.value, str):
                    self.error(term.span, f"'{comparison.op}' needs numbers, got {term}")
        left, right = comparison.left, comparison.right
        if isinstance(left, Variable) and isinstance(right, Variable):
            left_type, right_type = types.get(left.name), types.get(right.name)
            if left_type and right_type and left_type != right_type:
                self.error(
                    comparison.span,
                    f"comparison of '{left.name}' ({left_type}) with '{right.name}' ({right_type})",
                    "compared variables should have the same type",
                )

    # -- roles and strata ----------------------------------------------
    def _roles(self, derived: list[DerivedRule]) -> dict[str, Predicate]:
        query_names = {query.predicate for query in self.queries}
        derived_names = {rule.head.predicate for rule in derived}
        tuffy = any(declaration.closed for declaration in self.declarations.values())
        for name in sorted(query_names):
            span = self.query_spans.get(name, Span("<query>", 1, 1, 1, 2, name))
            declaration = self.declarations.get(name)
            if declaration is None:
                self.error(span, f"query predicate '{name}' is not declared", *predicate_like(name, self.declarations))
            elif name in derived_names:
                self.error(span, f"query predicate '{name}' is derived by rules; it cannot be a query")
            elif declaration.closed:
                self.error(
                    span,
                    f"query predicate '{name}' is declared closed-world with '*'",
                    f"declared at {where(declaration.span)}",
                )
        predicates: dict[str, Predicate] = {}
        for name in sorted(self.declarations):
            declaration = self.declarations[name]
            if name in derived_names:
                role = "derived"
            elif name in query_names:
                role = "query"
            elif tuffy and not declaration.closed:
                role = "hidden"
            else:
                role = "evidence"
            predicates[name] = Predicate(name, declaration.types, role, declaration.span)
        return predicates

    def _stratify(self, derived: list[DerivedRule]) -> tuple[tuple[DerivedRule, ...], ...]:
        if not derived:
            return ()
        graph = nx.DiGraph()
        for rule in derived:
            graph.add_node(rule.head.predicate)
            for literal in rule.body:
                if isinstance(literal, Literal):
                    graph.add_edge(literal.atom.predicate, rule.head.predicate)
        components = list(nx.strongly_connected_components(graph))
        component_of = {name: index for index, names in enumerate(components) for name in names}
        for rule in derived:
            for literal in rule.body:
                if (
                    isinstance(literal, Literal)
                    and not literal.positive
                    and component_of[literal.atom.predicate] == component_of[rule.head.predicate]
                ):
                    self.error(
                        literal.span,
                        f"'{literal.atom.predicate}' is negated inside its own recursion",
                        "negation through recursion has no single meaning; restructure the rules",
                    )
        condensed = nx.condensation(graph, components)
        order = list(
            nx.lexicographical_topological_sort(
                condensed, key=lambda node: min(condensed.nodes[node]["members"])
            )
        )
        strata: list[tuple[DerivedRule, ...]] = []
        for node in order:
            members = condensed.nodes[node]["members"]
            rules = tuple(rule for rule in derived if rule.head.predicate in members)
            if rules:
                strata.append(rules)
        return tuple(strata)


class _Scope:
    """Collects variable types of one formula and reports clashes and unsafe variables."""

    def __init__(self, checker: _Checker) -> None:
        self.checker = checker
        self.types: dict[str, str] = {}
        self.first: dict[str, Span] = {}
        self.order: list[str] = []
        self.bound_names: set[str] = set()
        self.comparison_only: dict[str, Span] = {}
        self.comparisons: list[Comparison] = []
        self.quantified: dict[str, Span] = {}

    def visit(self, formula: Formula, bound: frozenset[str]) -> None:
        if isinstance(formula, Atom):
            declaration = self.checker._lookup(formula)
            if declaration is None:
                return
            for arg, type_ in zip(formula.args, declaration.types, strict=True):
                if isinstance(arg, Constant):
                    self.checker.constants.setdefault(type_, {}).setdefault(arg.value, None)
                    continue
                self._use(arg, type_)
        elif isinstance(formula, Comparison):
            self.comparisons.append(formula)
            for term in (formula.left, formula.right):
                if isinstance(term, Variable):
                    if term.name not in self.order:
                        self.order.append(term.name)
                    self.comparison_only.setdefault(term.name, term.span)
        elif isinstance(formula, Not):
            self.visit(formula.operand, bound)
        elif isinstance(formula, (And, Or)):
            for operand in formula.operands:
                self.visit(operand, bound)
        elif isinstance(formula, (Implies, Equivalent)):
            self.visit(formula.left, bound)
            self.visit(formula.right, bound)
        elif isinstance(formula, Quantified):
            for variable in formula.variables:
                if variable.name not in self.order:
                    self.order.append(variable.name)
                self.bound_names.add(variable.name)
                self.quantified.setdefault(variable.name, variable.span)
            self.visit(formula.body, bound | {v.name for v in formula.variables})

    def _use(self, variable: Variable, type_: str) -> None:
        if variable.name not in self.order:
            self.order.append(variable.name)
        known = self.types.get(variable.name)
        if known is None:
            self.types[variable.name] = type_
            self.first[variable.name] = variable.span
        elif known != type_:
            self.checker.error(
                variable.span,
                f"type clash: variable '{variable.name}' is '{type_}' here "
                f"but '{known}' at {where(self.first[variable.name])}",
            )

    def finish(self) -> None:
        for name, span in self.comparison_only.items():
            if name not in self.types:
                self.checker.error(
                    span,
                    f"variable '{name}' cannot be grounded: it appears only in comparisons",
                    "use it as an argument of a predicate in the same formula",
                )
        for name, span in self.quantified.items():
            if name not in self.types and name not in self.comparison_only:
                self.checker.error(
                    span,
                    f"quantified variable '{name}' is not used in the formula",
                    "use it as an argument of a predicate, or leave out the quantifier",
                )
        for comparison in self.comparisons:
            self.checker._check_comparison(comparison, self.types)
        self.order = [name for name in self.order if name in self.types]


def _name_span(atom: Atom) -> Span:
    span = atom.span
    return Span(span.file, span.line, span.column, span.line, span.column + len(atom.predicate), span.line_text)


def predicate_like(name: str, declared: Mapping[str, Predicate | PredicateDeclaration]) -> list[str]:
    """A note naming the closest declared predicate and where it is declared, if any."""
    close = closest(name, declared)
    if close is None:
        return []
    found = declared[close]
    return [f"did you mean '{found.signature}' (declared at {where(found.span)})?"]


def require_weights(program: CheckedProgram) -> None:
    """Raise ``RuleError`` when a formula has no weight: inference needs every weight."""
    diagnostics = [_unweighted(f.statement, "error") for f in program.formulas if f.statement.unweighted]
    if diagnostics:
        raise RuleError(diagnostics)


def _unweighted(statement: WeightedFormula, severity: str) -> Diagnostic:
    message = "formula has no weight" + ("; inference needs one" if severity == "error" else "")
    return Diagnostic(
        statement.span,
        message,
        severity=severity,
        notes=(
            "learn its weight from data with 'reason learn', or write one before it (soft) "
            "or a period after it (hard)",
        ),
    )


def where(span: Span) -> str:
    return f"{span.file}:{span.line}:{span.column}"


def _diagnostic_order(diagnostic: Diagnostic) -> tuple[str, int, int]:
    return (diagnostic.span.file, diagnostic.span.line, diagnostic.span.column)


def iter_atoms(formula: Formula) -> Iterator[Atom]:
    """Every atom of a formula, left to right."""
    if isinstance(formula, Atom):
        yield formula
    elif isinstance(formula, Not):
        yield from iter_atoms(formula.operand)
    elif isinstance(formula, (And, Or)):
        for operand in formula.operands:
            yield from iter_atoms(operand)
    elif isinstance(formula, (Implies, Equivalent)):
        yield from iter_atoms(formula.left)
        yield from iter_atoms(formula.right)
    elif isinstance(formula, Quantified):
        yield from iter_atoms(formula.body)
