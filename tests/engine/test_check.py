"""Stage 2: names, arities, types, safety and roles; and golden error messages.

Each folder ``tests/golden/errors/<case>/`` holds ``rules.mln`` (and maybe
``evidence.db``, a table, ``args.txt`` with the command-line arguments, which
default to ``check rules.mln``) and ``expected.txt``: the exact stderr of
``reason`` run in that folder. ``pytest --update-golden`` rewrites
the expected files.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path

import pytest
from support import GOLDEN

from reasoner.check import CheckedProgram, QueryPattern, check_program
from reasoner.cli import main
from reasoner.errors import RuleError
from reasoner.parse import parse_text
from reasoner.syntax import Span

ERRORS = GOLDEN / "errors"
ERROR_CASES = sorted(path.name for path in ERRORS.iterdir() if path.is_dir()) if ERRORS.is_dir() else []


def checked(text: str, *queries: str) -> CheckedProgram:
    return check_program(parse_text(text, "rules.mln"), [QueryPattern(name) for name in queries])


def errors(text: str, *queries: str) -> list[str]:
    """``file:line:col: message`` of every diagnostic."""
    with pytest.raises(RuleError) as caught:
        checked(text, *queries)
    return [f"{d.span.file}:{d.span.line}:{d.span.column}: {d.message}" for d in caught.value.diagnostics]


def rendered(text: str, *queries: str) -> str:
    with pytest.raises(RuleError) as caught:
        checked(text, *queries)
    return caught.value.render()


SMOKERS = """\
person = {Anna, Bob}
Friends(person, person)
Smokes(person)
Cancer(person)
1.5 Smokes(x) => Cancer(x)
1.1 Friends(x, y) => (Smokes(x) <=> Smokes(y))
Friends(x, y) => Friends(y, x).
"""

TUFFY = """\
*Friends(person, person)
Smokes(person)
Cancer(person)
0.5 !Smokes(a1) v Cancer(a1)
0.4 !Friends(a1,a2) v !Smokes(a1) v Smokes(a2)
"""


# -- roles -------------------------------------------------------------------------


def test_alchemy_roles_queries_open_others_closed() -> None:
    program = checked(SMOKERS, "Smokes", "Cancer")
    roles = {name: predicate.role for name, predicate in program.predicates.items()}
    assert roles == {"Cancer": "query", "Friends": "evidence", "Smokes": "query"}
    assert program.predicates["Smokes"].open_world and not program.predicates["Friends"].open_world
    assert program.query_predicates() == ("Cancer", "Smokes")


def test_tuffy_roles_unstarred_predicates_are_open_world() -> None:
    program = checked(TUFFY, "Cancer")
    roles = {name: predicate.role for name, predicate in program.predicates.items()}
    assert roles == {"Cancer": "query", "Friends": "evidence", "Smokes": "hidden"}
    assert program.predicates["Smokes"].open_world


def test_redeclaring_with_a_star_closes_the_predicate() -> None:
    program = checked("Smokes(person)\n*Smokes(person)\nCancer(person)\n1 Smokes(x) => Cancer(x)\n", "Cancer")
    assert program.predicates["Smokes"].role == "evidence"


def test_derived_predicates_and_strata_in_dependency_order() -> None:
    text = """\
Edge(node, node)
Reach(node, node)
Far(node, node)
Reach(x, y) :- Edge(x, y).
Reach(x, z) :- Reach(x, y), Edge(y, z).
Far(x, y) :- Edge(x, y), !Reach(y, x).
"""
    program = checked(text)
    assert program.predicates["Reach"].role == "derived"
    assert program.predicates["Far"].role == "derived"
    assert program.predicates["Edge"].role == "evidence"
    assert [[rule.head.predicate for rule in stratum] for stratum in program.derived_strata] == [
        ["Reach", "Reach"],
        ["Far"],
    ]


# -- formulas, types, constants -----------------------------------------------------


def test_formula_variables_and_types_in_order_of_appearance() -> None:
    program = checked(SMOKERS, "Smokes", "Cancer")
    assert [(f.variables, f.types) for f in program.formulas] == [
        (("x",), ("person",)),
        (("x", "y"), ("person", "person")),
        (("x", "y"), ("person", "person")),
    ]
    assert [f.statement.hard for f in program.formulas] == [False, False, True]


def test_quantified_variables_are_bound_not_free() -> None:
    program = checked("Friends(person, person)\nSmokes(person)\n1 Smokes(x) => EXIST y Friends(x, y)\n", "Smokes")
    formula = program.formulas[0]
    assert formula.variables == ("x",)
    assert formula.bound_types == (("y", "person"),)
    assert formula.type_of("y") == "person"


def test_constants_in_formulas_join_their_type() -> None:
    program = checked('person = {Anna}\nSmokes(person)\n1 Smokes(Bob) ^ Smokes("Chris") ^ Smokes(3)\n', "Smokes")
    assert program.constants == {"person": ("Anna", "Bob", "Chris", 3)}
    assert program.types == ("person",)


def test_ranges_become_constants() -> None:
    program = checked("level = {1, ..., 3}\nHigh(level)\n1 High(x) ^ x > 2\n", "High")
    assert program.constants["level"] == (1, 2, 3)


def test_comparison_variable_typed_by_an_atom_is_fine() -> None:
    program = checked("Age(person, years)\nOld(person)\n1 Age(p, a) ^ a >= 65 => Old(p)\n", "Old")
    assert program.formulas[0].variables == ("p", "a")


# -- errors ------------------------------------------------------------------------------


def test_unknown_predicate_with_did_you_mean() -> None:
    message = rendered(SMOKERS + "1 Smoke(x)\n", "Smokes")
    assert message == (
        "rules.mln:8:3: error: unknown predicate 'Smoke/1'\n"
        "    8 | 1 Smoke(x)\n"
        "      |   ^~~~~\n"
        "note: did you mean 'Smokes/1' (declared at rules.mln:3:1)?"
    )


def test_unknown_predicate_without_a_close_name_suggests_a_declaration() -> None:
    assert "note: declare it first, e.g. 'Zebra(type1, type2)'" in rendered("Smokes(person)\n1 Zebra(x, y)\n")


def test_every_error_is_reported_sorted_by_position() -> None:
    text = """\
Smokes(person)
Age(person, years)
1 Smoke(x) ^ Age(x)
1 Age(x, y) ^ Smokes(y)
1 Smokes(x) ^ z > 3
"""
    assert errors(text) == [
        "rules.mln:3:3: unknown predicate 'Smoke/1'",
        "rules.mln:3:14: 'Age' takes 2 arguments, got 1",
        "rules.mln:4:22: type clash: variable 'y' is 'person' here but 'years' at rules.mln:4:10",
        "rules.mln:5:15: variable 'z' cannot be grounded: it appears only in comparisons",
    ]


def test_predicate_declared_twice_with_other_types() -> None:
    assert errors("Smokes(person)\nSmokes(city)\n") == [
        "rules.mln:2:1: predicate 'Smokes' declared again with other types"
    ]


def test_comparison_of_different_types() -> None:
    message = rendered("Age(person, years)\n1 Age(p, a) ^ p = a\n")
    assert "error: comparison of 'p' (person) with 'a' (years)" in message


def test_ordering_comparison_needs_numbers() -> None:
    assert errors("Age(person, years)\n1 Age(p, a) ^ a < Old\n") == ["rules.mln:2:19: '<' needs numbers, got Old"]


@pytest.mark.parametrize(
    ("queries", "message"),
    [
        (("Cancr",), "<query>:1:1: query predicate 'Cancr' is not declared"),
        (("Friends",), "<query>:1:1: query predicate 'Friends' is declared closed-world with '*'"),
    ],
)
def test_bad_queries(queries: tuple[str, ...], message: str) -> None:
    assert errors(TUFFY, *queries) == [message]


def test_query_span_points_into_the_query_file() -> None:
    span = Span("query.db", 2, 1, 2, 6, "Cancr(x)")
    with pytest.raises(RuleError) as caught:
        check_program(parse_text(SMOKERS, "rules.mln"), [QueryPattern("Cancr")], {"Cancr": span})
    assert caught.value.render().splitlines()[0] == "query.db:2:1: error: query predicate 'Cancr' is not declared"


def test_derived_predicate_cannot_be_a_query() -> None:
    text = "Edge(node, node)\nReach(node, node)\nReach(x, y) :- Edge(x, y).\n"
    assert errors(text, "Reach") == ["<query>:1:1: query predicate 'Reach' is derived by rules; it cannot be a query"]


def test_derived_rule_safety() -> None:
    text = """\
Edge(node, node)
Blocked(node)
Open(node, node)
Open(x, z) :- Edge(x, y), !Blocked(w), x != q.
"""
    assert errors(text) == [
        "rules.mln:4:9: head variable 'z' does not appear in a positive body atom",
        "rules.mln:4:36: variable 'w' is not bound by a positive atom of the rule body",
        "rules.mln:4:45: variable 'q' is not bound by a positive atom of the rule body",
    ]


def test_negation_through_recursion() -> None:
    text = "Edge(n, n)\nWin(n)\nWin(x) :- Edge(x, y), !Win(y).\n"
    assert errors(text) == ["rules.mln:3:23: 'Win' is negated inside its own recursion"]


def test_binding_arity_and_numeric_condition() -> None:
    text = "Income(app, amount)\nbind Income(id) from loans where income > High\n"
    assert errors(text) == [
        "rules.mln:2:1: 'Income' takes 2 arguments, but the binding names 1 column",
        "rules.mln:2:43: '>' needs a number, got High",
    ]


def test_binding_of_unknown_predicate() -> None:
    assert errors("Income(app, amount)\nbind Incme(id, x) from loans\n") == [
        "rules.mln:2:1: unknown predicate 'Incme/2'"
    ]


# -- golden error messages through the command line -------------------------------------------


def test_there_are_golden_error_cases() -> None:
    assert len(ERROR_CASES) >= 15


@pytest.mark.parametrize("case", ERROR_CASES)
def test_golden_error_message(
    case: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], golden: Callable[[Path, str], None]
) -> None:
    # In-process for speed; tests/engine/test_cli.py runs the same command line in a subprocess.
    folder = ERRORS / case
    arguments_file = folder / "args.txt"
    arguments = shlex.split(arguments_file.read_text()) if arguments_file.exists() else ["check", "rules.mln"]
    monkeypatch.chdir(folder)
    code = main(arguments)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert code == 2, captured.err
    assert captured.out == ""
    first = captured.err.splitlines()[0]
    assert ": error: " in first and not first.startswith("error:"), first
    golden(folder / "expected.txt", captured.err)
