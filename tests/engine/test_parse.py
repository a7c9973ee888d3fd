"""Stage 1: every construct of the rule language parses to the right AST.

Spans do not take part in node equality, so expected trees are built with a
dummy span; positions are checked separately where they matter.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reasoner.errors import RuleError
from reasoner.parse import parse_program, parse_text
from reasoner.syntax import (
    And,
    Atom,
    Binding,
    Column,
    Comparison,
    Condition,
    Constant,
    DerivedRule,
    Equivalent,
    Formula,
    Implies,
    Literal,
    Not,
    Or,
    PredicateDeclaration,
    Quantified,
    Span,
    Statement,
    Term,
    TypeDeclaration,
    Variable,
    WeightedFormula,
)

NO_SPAN = Span("<test>", 1, 1, 1, 2)


def var(name: str) -> Variable:
    return Variable(name, NO_SPAN)


def const(value: int | float | str) -> Constant:
    return Constant(value, NO_SPAN)


def term(value: str | int | float) -> Term:
    """Lower-case names are variables, everything else a constant."""
    if isinstance(value, str) and value[:1].islower():
        return var(value)
    return const(value)


def atom(predicate: str, *args: str | int | float) -> Atom:
    return Atom(predicate, tuple(term(arg) for arg in args), NO_SPAN)


def neg(formula: Formula) -> Not:
    return Not(formula, NO_SPAN)


def conj(*operands: Formula) -> And:
    return And(operands, NO_SPAN)


def disj(*operands: Formula) -> Or:
    return Or(operands, NO_SPAN)


def implies(left: Formula, right: Formula) -> Implies:
    return Implies(left, right, NO_SPAN)


def iff(left: Formula, right: Formula) -> Equivalent:
    return Equivalent(left, right, NO_SPAN)


def compare(op: str, left: str | int | float, right: str | int | float) -> Comparison:
    return Comparison(op, term(left), term(right), NO_SPAN)


def statements(text: str) -> tuple[Statement, ...]:
    return parse_text(text, "rules.mln").statements


def without_text(found: tuple[Statement, ...]) -> tuple[Statement, ...]:
    """Statements with the source text of formulas blanked, to compare trees only."""
    return tuple(replace(item, text="") if isinstance(item, WeightedFormula) else item for item in found)


def only(text: str) -> Statement:
    found = statements(text)
    assert len(found) == 1, found
    return found[0]


def formula_of(text: str) -> Formula:
    statement = only(text)
    assert isinstance(statement, WeightedFormula)
    return statement.formula


def parse_error(text: str) -> str:
    with pytest.raises(RuleError) as caught:
        parse_text(text, "rules.mln")
    return caught.value.render()


# -- comments and layout -------------------------------------------------------


def test_line_and_block_comments_are_ignored() -> None:
    text = """// a line comment
Smokes(person) // after a declaration
/* a block comment
   over two lines: Cancer(person) */
1.5 Smokes(x) /* inside */ => Cancer(x)
"""
    assert without_text(statements(text)) == (
        PredicateDeclaration("Smokes", ("person",), False, NO_SPAN),
        WeightedFormula(Decimal("1.5"), implies(atom("Smokes", "x"), atom("Cancer", "x")), "", NO_SPAN),
    )


def test_blank_lines_and_no_final_newline() -> None:
    assert statements("\n\n   \nSmokes(person)") == (PredicateDeclaration("Smokes", ("person",), False, NO_SPAN),)
    assert statements("") == ()
    assert statements("// only a comment") == ()


def test_statement_spans_lines_inside_parentheses() -> None:
    text = "1 Friends(x,\n    y) ^ (Smokes(x)\n  v Smokes(y))\n"
    statement = only(text)
    assert isinstance(statement, WeightedFormula)
    assert statement.formula == conj(atom("Friends", "x", "y"), disj(atom("Smokes", "x"), atom("Smokes", "y")))
    assert statement.text == "1 Friends(x, y) ^ (Smokes(x) v Smokes(y))"
    assert (statement.span.line, statement.span.end_line) == (1, 3)


def test_type_declaration_spans_lines_inside_braces() -> None:
    assert only("person = {Anna,\n  Bob}\n") == TypeDeclaration("person", (const("Anna"), const("Bob")), NO_SPAN)


def test_crlf_line_endings() -> None:
    assert without_text(statements("Smokes(person)\r\n1 Smokes(x)\r\n")) == (
        PredicateDeclaration("Smokes", ("person",), False, NO_SPAN),
        WeightedFormula(Decimal(1), atom("Smokes", "x"), "", NO_SPAN),
    )


# -- declarations --------------------------------------------------------------


def test_predicate_declarations_plain_and_tuffy_closed() -> None:
    assert statements("Friends(person, person)\n*Smokes(person)\nFlag()\n") == (
        PredicateDeclaration("Friends", ("person", "person"), False, NO_SPAN),
        PredicateDeclaration("Smokes", ("person",), True, NO_SPAN),
        PredicateDeclaration("Flag", (), False, NO_SPAN),
    )


def test_declaration_with_a_constant_is_an_error_with_hints() -> None:
    message = parse_error('Smokes("Anna")\n')  # bare 'Smokes(Anna)' declares a RockIt type 'Anna'
    assert message.startswith("rules.mln:1:8: error: 'Smokes(Anna)' is neither a declaration nor a formula")
    assert "note: a formula needs a weight before it (soft) or a period after it (hard)" in message


def test_type_declarations() -> None:
    assert only("person = {Anna, Bob}") == TypeDeclaration("person", (const("Anna"), const("Bob")), NO_SPAN)
    assert only('city = {"New York", Paris, 3, 2.5}') == TypeDeclaration(
        "city", (const("New York"), const("Paris"), const(3), const(2.5)), NO_SPAN
    )


def test_integer_range() -> None:
    declaration = only("level = {1, ..., 5}")
    assert isinstance(declaration, TypeDeclaration)
    assert [constant.value for constant in declaration.constants] == [1, 2, 3, 4, 5]
    assert [constant.value for constant in only("d = {-1, ..., 1}").constants] == [-1, 0, 1]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("level = {5, ..., 1}", "range ends before it starts"),
        ("level = {A, ..., C}", "a range '{A, ..., B}' needs integer bounds"),
        ("level = {1, ..., 2000000}", "range has more than 1,000,000 constants"),
    ],
)
def test_bad_ranges(text: str, message: str) -> None:
    assert f"error: {message}" in parse_error(text)


# -- constants -----------------------------------------------------------------


def test_constants_integer_float_string_name() -> None:
    formula = formula_of('1 P(7, -3, 2.5, 1e3, "a \\"quoted\\" string", Anna, "Anna", x)')
    assert isinstance(formula, Atom)
    values = [(type(arg).__name__, arg.value if isinstance(arg, Constant) else arg.name) for arg in formula.args]
    assert values == [
        ("Constant", 7),
        ("Constant", -3),
        ("Constant", 2.5),
        ("Constant", 1000),  # an integral float is the integer
        ("Constant", 'a "quoted" string'),
        ("Constant", "Anna"),
        ("Constant", "Anna"),  # quoted and bare names are the same constant
        ("Variable", "x"),
    ]
    assert isinstance(formula.args[2].value, float)  # type: ignore[union-attr]


def test_float_constants_with_exponents() -> None:
    formula = formula_of("1 P(1.5e-3, 2E+4, .5e1, -2.5E2)")
    assert formula == atom("P", 0.0015, 20000, 5, -250)


# -- weights -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "weight", "fixed"),
    [
        ("1.5", Decimal("1.5"), False),
        ("2", Decimal(2), False),
        ("-0.5", Decimal("-0.5"), False),
        ("+3", Decimal(3), False),
        (".25", Decimal("0.25"), False),
        ("1e3", Decimal(1000), False),
        ("2.5E-2", Decimal("0.025"), False),
        ("-1e-1", Decimal("-0.1"), False),
        ("@5", Decimal(5), True),
        ("@-1.25", Decimal("-1.25"), True),
    ],
)
def test_weights(text: str, weight: Decimal, fixed: bool) -> None:
    statement = only(f"{text} Smokes(x)")
    assert isinstance(statement, WeightedFormula)
    assert statement.weight == weight
    assert statement.fixed is fixed
    assert not statement.hard
    assert statement.formula == atom("Smokes", "x")
    assert statement.text == f"{text} Smokes(x)"


def test_hard_formula_ends_with_a_period() -> None:
    statement = only("Smokes(x) => Cancer(x).")
    assert isinstance(statement, WeightedFormula)
    assert statement.hard and statement.weight is None
    assert statement.formula == implies(atom("Smokes", "x"), atom("Cancer", "x"))
    assert statement.text == "Smokes(x) => Cancer(x)."


def test_hard_formula_ending_in_a_number() -> None:
    assert formula_of("P(x) ^ x = 3.") == conj(atom("P", "x"), compare("=", "x", 3))
    assert formula_of("P(x) ^ x = 2.5.") == conj(atom("P", "x"), compare("=", "x", 2.5))


def test_weighted_formula_span_covers_weight() -> None:
    statement = only("\n  1.5 Smokes(x)")
    assert (statement.span.line, statement.span.column) == (2, 3)


# -- connectives and precedence --------------------------------------------------


def test_connectives() -> None:
    p, q = atom("P", "x"), atom("Q", "x")
    assert formula_of("1 !P(x)") == neg(p)
    assert formula_of("1 P(x) ^ Q(x)") == conj(p, q)
    assert formula_of("1 P(x) v Q(x)") == disj(p, q)
    assert formula_of("1 P(x) => Q(x)") == implies(p, q)
    assert formula_of("1 P(x) <=> Q(x)") == iff(p, q)
    assert formula_of("1 !!P(x)") == neg(neg(p))


def test_precedence_not_and_or_implies_equivalent() -> None:
    a, b, c, d, e = (atom(name, "x") for name in "ABCDE")
    assert formula_of("1 !A(x) v B(x) ^ C(x) => D(x) <=> E(x)") == iff(implies(disj(neg(a), conj(b, c)), d), e)
    assert formula_of("1 A(x) <=> B(x) => C(x) v D(x) ^ !E(x)") == iff(a, implies(b, disj(c, conj(d, neg(e)))))
    assert formula_of("1 A(x) ^ B(x) v C(x) ^ D(x)") == disj(conj(a, b), conj(c, d))
    assert formula_of("1 !A(x) ^ B(x)") == conj(neg(a), b)


def test_chains_flatten_and_implication_is_right_associative() -> None:
    a, b, c = (atom(name, "x") for name in "ABC")
    assert formula_of("1 A(x) ^ B(x) ^ C(x)") == conj(a, b, c)
    assert formula_of("1 A(x) v B(x) v C(x)") == disj(a, b, c)
    assert formula_of("1 A(x) => B(x) => C(x)") == implies(a, implies(b, c))
    assert formula_of("1 A(x) <=> B(x) <=> C(x)") == iff(iff(a, b), c)


def test_parentheses_override_precedence() -> None:
    a, b, c = (atom(name, "x") for name in "ABC")
    assert formula_of("1 A(x) ^ (B(x) v C(x))") == conj(a, disj(b, c))
    assert formula_of("1 !(A(x) ^ B(x))") == neg(conj(a, b))
    assert formula_of("1 (A(x) => B(x)) => C(x)") == implies(implies(a, b), c)
    assert formula_of("1 A(x) v (B(x) v C(x))") == disj(a, disj(b, c))
    assert formula_of("1 ((A(x)))") == a


def test_predicate_named_v() -> None:
    assert without_text(statements("v(person)\n1 v(x) v w(x)\n1 !v(x)\n")) == (
        PredicateDeclaration("v", ("person",), False, NO_SPAN),
        WeightedFormula(Decimal(1), disj(atom("v", "x"), atom("w", "x")), "", NO_SPAN),
        WeightedFormula(Decimal(1), neg(atom("v", "x")), "", NO_SPAN),
    )


def test_variable_named_v() -> None:
    # The lexer is contextual: 'v' is the disjunction only where a connective may stand.
    assert formula_of("1 P(v) v v = x") == disj(atom("P", "v"), compare("=", "v", "x"))


# -- quantifiers and comparisons -------------------------------------------------


def test_quantifiers() -> None:
    assert formula_of("1 EXIST x,y Friends(x, y)") == Quantified(
        "exists", (var("x"), var("y")), atom("Friends", "x", "y"), NO_SPAN
    )
    assert formula_of("1 EXISTS y Friends(x, y)") == Quantified(
        "exists", (var("y"),), atom("Friends", "x", "y"), NO_SPAN
    )
    assert formula_of("1 FORALL x Smokes(x)") == Quantified("forall", (var("x"),), atom("Smokes", "x"), NO_SPAN)


def test_quantifier_scope_extends_right() -> None:
    body = disj(atom("P", "x"), atom("Q", "x"))
    assert formula_of("1 EXIST x P(x) v Q(x)") == Quantified("exists", (var("x"),), body, NO_SPAN)
    assert formula_of("1 P(y) => EXIST x Q(x)") == implies(
        atom("P", "y"), Quantified("exists", (var("x"),), atom("Q", "x"), NO_SPAN)
    )
    assert formula_of("1 P(y) ^ (EXIST x Q(x))") == conj(
        atom("P", "y"), Quantified("exists", (var("x"),), atom("Q", "x"), NO_SPAN)
    )


def test_nested_quantifier_needs_parentheses_and_says_so() -> None:
    message = parse_error("1 !Smokes(x) v EXIST y Friends(x, y)\n")
    assert "note: a quantified formula inside another needs parentheses" in message


@pytest.mark.parametrize("op", ["=", "!=", "<", "<=", ">", ">="])
def test_comparisons(op: str) -> None:
    assert formula_of(f"1 P(x, y) ^ x {op} y") == conj(atom("P", "x", "y"), compare(op, "x", "y"))
    assert formula_of(f"1 P(x) ^ x {op} 3") == conj(atom("P", "x"), compare(op, "x", 3))


def test_comparison_binds_tighter_than_connectives() -> None:
    assert formula_of("1 !x = y v P(x, y)") == disj(neg(compare("=", "x", "y")), atom("P", "x", "y"))
    assert formula_of('1 P(x) ^ x != "New York"') == conj(atom("P", "x"), compare("!=", "x", "New York"))


# -- bindings and derived rules --------------------------------------------------


def test_binding_with_row_quoted_column_and_conditions() -> None:
    statement = only('bind Pred(col, @row, "quoted-col") from table where col = 3 and c in (1, 2)')
    assert statement == Binding(
        "Pred",
        (Column("col", NO_SPAN), Column(None, NO_SPAN), Column("quoted-col", NO_SPAN)),
        "table",
        (
            Condition(Column("col", NO_SPAN), "=", (const(3),), NO_SPAN),
            Condition(Column("c", NO_SPAN), "in", (const(1), const(2)), NO_SPAN),
        ),
        NO_SPAN,
    )
    assert isinstance(statement, Binding)
    assert statement.columns[2].span.column == 22  # the quoted column, for messages


def test_binding_without_conditions_and_with_comparisons() -> None:
    assert only("bind Income(id, income) from loans") == Binding(
        "Income", (Column("id", NO_SPAN), Column("income", NO_SPAN)), "loans", (), NO_SPAN
    )
    statement = only('bind Big(id) from loans where income >= 100.5 and @row < 10 and state != "NY"')
    assert isinstance(statement, Binding)
    assert [(str(c.column), c.op, tuple(v.value for v in c.values)) for c in statement.conditions] == [
        ("income", ">=", (100.5,)),
        ("@row", "<", (10,)),
        ("state", "!=", ("NY",)),
    ]


def test_derived_rule() -> None:
    statement = only("Head(x) :- Body(x, y), !Other(y), x != y.")
    assert statement == DerivedRule(
        atom("Head", "x"),
        (
            Literal(True, atom("Body", "x", "y"), NO_SPAN),
            Literal(False, atom("Other", "y"), NO_SPAN),
            compare("!=", "x", "y"),
        ),
        NO_SPAN,
    )


def test_derived_rule_over_lines_with_constants() -> None:
    statement = only('Near(a, b) :- Distance(a, b,\n  d), d <= 0.1, Kind(a, "x y").')
    assert statement == DerivedRule(
        atom("Near", "a", "b"),
        (
            Literal(True, atom("Distance", "a", "b", "d"), NO_SPAN),
            compare("<=", "d", 0.1),
            Literal(True, Atom("Kind", (var("a"), const("x y")), NO_SPAN), NO_SPAN),
        ),
        NO_SPAN,
    )


# -- positions -------------------------------------------------------------------


def test_spans_are_one_based_and_cover_the_node() -> None:
    formula = formula_of("0.5  Smokes(anna_1) => Cancer(anna_1)")
    assert isinstance(formula, Implies)
    left = formula.left
    assert isinstance(left, Atom)
    assert (left.span.line, left.span.column, left.span.end_column) == (1, 6, 20)
    assert left.span.line_text == "0.5  Smokes(anna_1) => Cancer(anna_1)"
    variable = left.args[0]
    assert (variable.span.column, variable.span.end_column) == (13, 19)


def test_statements_from_several_files_keep_their_file(tmp_path: Path) -> None:
    (tmp_path / "b.mln").write_text("1 Smokes(x)\n")
    (tmp_path / "a.mln").write_text("Smokes(person)\n")
    (tmp_path / "notes.txt").write_text("not rules\n")
    program = parse_program([tmp_path])
    files = (str(tmp_path / "a.mln"), str(tmp_path / "b.mln"))
    assert tuple(statement.span.file for statement in program.statements) == files
    assert program.files == files


def test_errors_of_several_files_are_reported_together(tmp_path: Path) -> None:
    (tmp_path / "a.mln").write_text("1 Smokes(x) ^\n")
    (tmp_path / "b.mln").write_text("Smokes(x) =>\n")
    with pytest.raises(RuleError) as caught:
        parse_program([tmp_path])
    assert [d.span.file for d in caught.value.diagnostics] == [str(tmp_path / "a.mln"), str(tmp_path / "b.mln")]


# -- syntax errors ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "head"),
    [
        ("1 Smokes(x) ^^ Cancer(x)\n", "rules.mln:1:14: error: unexpected '^'"),
        ("1 Smokes(x) =>\n", "rules.mln:1:15: error: unexpected end of line"),
        ("1 Smokes(x\n", "rules.mln:1:11: error: unexpected end of file"),
        ("Smokes(x) => Cancer(x) Foo(x)\n", "rules.mln:1:24: error: unexpected 'Foo'"),
        ("abc Smokes(x)\n", "rules.mln:1:1: error: weight 'abc' is not a number"),
        ("1,5 Smokes(x)\n", "rules.mln:1:1: error: weight '1,5' is not a number"),
        ("1 Smokes(x) # comment\n", "rules.mln:1:13: error: unexpected character '#'"),
        ("1 Smokes(x) ^ Cancer(x) :- Foo(x).\n", "rules.mln:1:25: error: unexpected ':-'"),
    ],
)
def test_syntax_errors_are_positioned(text: str, head: str) -> None:
    message = parse_error(text)
    assert message.splitlines()[0].startswith(head), message
    assert "Traceback" not in message


def test_syntax_error_shows_the_line_with_a_caret() -> None:
    message = parse_error("Smokes(person)\n1.0 Smokes(x) ^^ Smokes(x)\n")
    lines = message.splitlines()
    assert lines[1] == "    2 | 1.0 Smokes(x) ^^ Smokes(x)"
    assert lines[2] == "      |                ^"


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    message = parse_error("1 " + "(" * 500 + "P(x)" + ")" * 500 + "\n")
    assert "error: formula nested deeper than 200 levels" in message


def test_overlong_line_is_an_error() -> None:
    message = parse_error("1 P(x) " + "^ P(x) " * 200_000 + "\n")
    assert "error: line is" in message and "the limit is 1,000,000" in message
    assert len(message) < 500  # the line's neighbourhood, not the line


def test_an_error_on_a_huge_line_shows_only_its_neighbourhood() -> None:
    constants = ", ".join(f"C{i}" for i in range(20_000))
    message = parse_error(f"person = {{{constants}, @}}\n")
    first, source, caret = message.splitlines()[:3]
    assert first.startswith("rules.mln:1:") and "'@'" in first
    assert len(source) < 120 and source.rstrip().endswith("C19999, @}")
    assert source.index("@") == caret.index("^")  # the caret stays under the token


# -- printing and re-parsing -------------------------------------------------------

SMOKERS = """\
person = {Anna, Bob}
Friends(person, person)
Smokes(person)
Cancer(person)
1.5 Smokes(x) => Cancer(x)
1.1 Friends(x, y) => (Smokes(x) <=> Smokes(y))
-0.5 !Smokes(x) v (EXIST y Friends(x, y) ^ x != y)
Friends(x, y) => Friends(y, x).
"""


def _reparse(formula: Formula, hard: bool) -> Formula:
    text = f"{formula}." if hard else f"1 {formula}"
    return formula_of(text)


def test_printing_and_reparsing_a_program() -> None:
    for statement in statements(SMOKERS):
        if isinstance(statement, WeightedFormula):
            assert _reparse(statement.formula, statement.hard) == statement.formula
            assert _reparse(statement.formula, not statement.hard) == statement.formula


@pytest.mark.parametrize(
    "value",
    [
        "anna",
        "Anna",
        "New York",
        "01",
        "",
        "v",
        "x y",
        'say "hi"',
        "back\\slash",
        "_under",
        "EXIST",
        3,
        -7,
        2.5,
        1e-07,
        1e20,
    ],
)
def test_printing_constants_reparses_them(value: int | float | str) -> None:
    formula = Atom("P", (Constant(value, NO_SPAN),), NO_SPAN)
    assert _reparse(formula, hard=False) == formula


# A random formula tree printed and re-parsed gives the same tree.

_VARIABLES = st.sampled_from(["x", "y", "z", "a1", "person", "w_2", "v", "vv", "value", "in", "from", "where"])
_CONSTANT_VALUES = st.one_of(
    st.sampled_from(["Anna", "Bob", "New York", "anna", "A_1", "01", "é"]),
    st.integers(min_value=-1000, max_value=1000),
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False).filter(
        lambda number: not number.is_integer()
    ),
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\n\r"), max_size=6),
)
_TERMS = st.one_of(_VARIABLES.map(var), _CONSTANT_VALUES.map(const))
_PREDICATES = st.sampled_from(["P", "Q", "Friends", "v", "smokes", "Has_2"])
_ATOMS = st.builds(
    lambda predicate, args: Atom(predicate, tuple(args), NO_SPAN), _PREDICATES, st.lists(_TERMS, min_size=0, max_size=3)
)
_COMPARISONS = st.builds(
    lambda op, left, right: Comparison(op, left, right, NO_SPAN),
    st.sampled_from(["=", "!=", "<", "<=", ">", ">="]),
    _VARIABLES.map(var),
    _TERMS,
)


def _compound(children: st.SearchStrategy[Formula]) -> st.SearchStrategy[Formula]:
    operands = st.lists(children, min_size=2, max_size=3).map(tuple)
    return st.one_of(
        children.map(neg),
        operands.map(lambda items: And(items, NO_SPAN)),
        operands.map(lambda items: Or(items, NO_SPAN)),
        st.builds(implies, children, children),
        st.builds(iff, children, children),
        st.builds(
            lambda quantifier, names, body: Quantified(quantifier, tuple(var(n) for n in names), body, NO_SPAN),
            st.sampled_from(["exists", "forall"]),
            st.lists(_VARIABLES, min_size=1, max_size=2, unique=True),
            children,
        ),
    )


FORMULAS = st.recursive(st.one_of(_ATOMS, _COMPARISONS), _compound, max_leaves=8)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(FORMULAS, st.booleans())
def test_printing_and_reparsing_random_formulas(formula: Formula, hard: bool) -> None:
    assert _reparse(formula, hard) == formula
