"""Programs written for Alchemy, pracmln and RockIt run unchanged.

The example programs in ``examples/dialects/`` are run as they are; each answer is checked
against a brute-force oracle written here from the program's meaning (it shares no code with
the engine: it enumerates every world of the open atoms and adds up the costs by hand).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reasoner.check import QueryPattern, check_program
from reasoner.cli import main
from reasoner.errors import RuleError
from reasoner.parse import parse_text
from reasoner.pipeline import Run, run
from reasoner.syntax import Constant, PredicateDeclaration, Variable, WeightedFormula

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "dialects"

World = Callable[[str], bool]
# The cost of a world (a function from atom text to truth), or None when a hard formula fails.
CostOf = Callable[[World], float | None]


def brute_force(atoms: list[str], cost_of: CostOf) -> float | None:
    """The least cost over every world of ``atoms``; None when no world satisfies the hard formulas."""
    best: float | None = None
    for bits in itertools.product((False, True), repeat=len(atoms)):
        world = dict(zip(atoms, bits, strict=True))
        cost = cost_of(world.__getitem__)
        if cost is not None and (best is None or cost < best):
            best = cost
    return best


def engine_world(result: Run) -> dict[str, bool]:
    return {atom.text: atom.value for atom in result.atoms}


def assert_optimal(result: Run, atoms: list[str], cost_of: CostOf, *, tolerance: float = 1e-9) -> None:
    """The engine's cost is the oracle's optimum, and its world costs exactly that."""
    best = brute_force(atoms, cost_of)
    assert best is not None
    assert result.solution.status == "optimal"
    cost = float(result.cost(result.solution.cost))
    assert abs(cost - best) <= tolerance, (cost, best)
    world = engine_world(result)
    assert set(atoms) <= set(world)
    own = cost_of(world.__getitem__)
    assert own is not None and abs(own - best) <= tolerance


def infer(folder: str, name: str, queries: Iterable[str]) -> Run:
    return run(
        [EXAMPLES / folder / f"{name}.mln"],
        [EXAMPLES / folder / f"{name}.db"],
        queries=[QueryPattern(query) for query in queries],
    )


def lost(weight: float, holds: bool) -> float:
    """What one grounding costs: w when false for w > 0, |w| when true for w < 0."""
    if weight > 0:
        return 0.0 if holds else weight
    return -weight if holds else 0.0


# -- Alchemy -------------------------------------------------------------------------


def test_alchemy_exactly_one_dish_and_per_constant_weights_match_the_oracle() -> None:
    result = infer("alchemy", "diet", ["Orders"])
    people, dishes = ("Ann", "Bob", "Cal"), ("Soup", "Salad", "Steak")
    vegetarian, friends = {"Ann"}, {("Bob", "Ann"), ("Cal", "Bob")}
    atoms = [f"Orders({p},{d})" for p in people for d in dishes if (p, d) != ("Cal", "Soup")]

    def cost_of(world: World) -> float | None:
        def orders(p: str, d: str) -> bool:
            return True if (p, d) == ("Cal", "Soup") else world(f"Orders({p},{d})")

        if any(sum(orders(p, d) for d in dishes) != 1 for p in people):
            return None  # each person orders exactly one dish
        cost = 0.0
        for p in people:
            cost += lost(2, not (p in vegetarian and orders(p, "Steak")))
            cost += lost(-0.5, orders(p, "Salad"))
            for d in dishes:
                cost += lost(0.3, orders(p, d))
                for q in people:
                    cost += lost(1.2, not ((p, q) in friends and orders(q, d)) or orders(p, d))
        return cost

    assert_optimal(result, atoms, cost_of)
    assert engine_world(result)["Orders(Ann,Steak)"] is False


def test_alchemy_per_constant_variables_are_recorded() -> None:
    program = parse_text((EXAMPLES / "alchemy" / "diet.mln").read_text(), "diet.mln")
    formulas = [s for s in program.statements if isinstance(s, WeightedFormula)]
    assert [formula.per_constant for formula in formulas] == [(), (), ("d",), ()]
    assert str(formulas[2].formula) == "Orders(p, +d)"


def test_alchemy_learning_templates_parse_check_with_a_warning_and_fail_at_inference(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rules = EXAMPLES / "alchemy" / "templates.mln"
    assert main(["check", str(rules)]) == 0
    captured = capsys.readouterr()
    assert "ok: 1 file(s), 5 predicates, 3 formulas" in captured.out
    assert f"{rules}:11:1: warning: formula has no weight" in captured.err
    assert f"{rules}:12:1: warning: formula has no weight" in captured.err
    program = check_program(parse_text(rules.read_text(), str(rules)))
    unweighted = [formula.statement for formula in program.formulas if formula.statement.unweighted]
    assert [statement.per_constant for statement in unweighted] == [(), ("c",)]
    assert [formula.statement.hard for formula in program.formulas] == [False, False, True]
    facts = tmp_path / "facts.db"
    facts.write_text("Teaches(Ann, Logic)\n")
    assert main([str(rules), str(facts), "--query", "Professor"]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"{rules}:11:1: error: formula has no weight; inference needs one\n")
    assert "    11 | Teaches(p, c) => Professor(p)" in error
    assert "note: learn its weight from data with 'reason learn'" in error
    assert "Traceback" not in error


# -- pracmln ---------------------------------------------------------------------------


def test_pracmln_tagger_matches_the_oracle() -> None:
    result = infer("pracmln", "tagger", ["state"])
    tags, positions = ("N", "V", "P"), (0, 1, 2, 3)
    observed = {0: "time", 1: "flies", 2: "like", 3: "arrows"}
    follows = {(0, 1), (1, 2), (2, 3)}
    emissions = [
        ("time", "N", math.log(0.7 / 0.3)),
        ("flies", "V", math.log(0.6 / 0.4)),
        ("flies", "N", math.log(0.4 / 0.6)),
        ("like", "P", math.log(0.9 / 0.1)),
        ("like", "N", -100.0),  # logx(0)
    ]
    transitions = [("N", "V", math.log(0.8 / 0.2)), ("V", "P", math.log(0.7 / 0.3)), ("P", "N", math.log(0.6 / 0.4))]
    atoms = [f"state({t},{s})" for t in positions for s in tags]

    def cost_of(world: World) -> float | None:
        def state(t: int, s: str) -> bool:
            return world(f"state({t},{s})")

        if any(sum(state(t, s) for s in tags) != 1 for t in positions):
            return None
        if any(observed[t] == "arrows" and state(t, "P") for t in positions):
            return None
        if any((a, b) in follows and state(a, "P") and state(b, "V") for a in positions for b in positions):
            return None  # weight -float('inf')
        cost = 0.0
        for t in positions:
            for word, tag, weight in emissions:
                cost += lost(weight, observed[t] == word and state(t, tag))
        for a in positions:
            for b in positions:
                for first, second, weight in transitions:
                    cost += lost(weight, (a, b) in follows and state(a, first) and state(b, second))
                for s in tags:
                    cost += lost(0.1, (a, b) in follows and a != b and state(a, s) and state(b, s))
        return cost

    assert_optimal(result, atoms, cost_of, tolerance=1e-4)  # weights are rounded to 6 decimals
    world = engine_world(result)
    assert [s for t in positions for s in tags if world[f"state({t},{s})"]] == ["N", "V", "P", "N"]


def test_pracmln_alarm_matches_the_oracle() -> None:
    result = infer("pracmln", "alarm", ["burglary", "suspect"])
    people = ("James", "Maria", "Stefan")
    lives = {"James": "Freiburg", "Stefan": "Freiburg", "Maria": "Austin"}
    quarter = {"James": "Bad", "Stefan": "Good", "Maria": "Average"}
    atoms = [f"burglary({x})" for x in people] + [f"suspect({x},{z})" for x in people for z in people]

    def cost_of(world: World) -> float | None:
        def burglary(x: str) -> bool:
            return world(f"burglary({x})")

        def suspect(x: str, z: str) -> bool:
            return world(f"suspect({x},{z})")

        if any(sum(suspect(x, z) for z in people) > 1 for x in people):
            return None  # 'suspect(person, person?)': at most one
        cost = 0.0
        for x in people:
            cost += lost(math.log(0.9 / 0.1), not burglary(x) or x == "James")  # alarm(James) only
            cost += lost(math.log(0.6 / 0.4), quarter[x] != "Bad" or burglary(x))
            cost += lost(math.log(0.3 / 0.7), quarter[x] != "Good" or burglary(x))
            for z in people:
                cost += lost(-0.4, suspect(x, z))
                for place in ("Freiburg", "Austin"):
                    body = lives[x] == place and lives[z] == place and x != z and burglary(z)
                    cost += lost(1.1, not body or suspect(x, z))
        return cost

    assert_optimal(result, atoms, cost_of, tolerance=1e-4)


def test_pracmln_fixweight_marks_the_next_formula_fixed() -> None:
    program = parse_text((EXAMPLES / "pracmln" / "alarm.mln").read_text())
    formulas = [s for s in program.statements if isinstance(s, WeightedFormula)]
    assert [formula.fixed for formula in formulas] == [True, False, False, False, False]
    assert formulas[0].weight == Decimal("2.197225")


# -- RockIt ----------------------------------------------------------------------------


def test_rockit_weights_from_evidence_and_capitalised_types_match_the_oracle() -> None:
    result = infer("rockit", "images", ["red"])
    images = ("img1", "img2", "img3", "img4", "img5")
    confidence = {"img1": 0.8, "img2": -0.6, "img3": 0.1, "img4": 1.25}
    similar = {("img1", "img3"), ("img2", "img4"), ("img4", "img5")}
    atoms = [f"red({x})" for x in images]

    def cost_of(world: World) -> float | None:
        def red(x: str) -> bool:
            return world(f"red({x})")

        if red("img5"):
            return None
        cost = 0.0
        for x in images:
            cost += lost(-0.2, red(x))
            for value in confidence.values():  # every grounding of 'conf', as the README says
                cost += lost(value, confidence.get(x) != value or red(x))
            for y in images:
                cost += lost(1.5, (x, y) not in similar or not red(x) or red(y))
        return cost

    assert_optimal(result, atoms, cost_of)


def test_rockit_capitalised_names_are_variables_and_quoted_ones_constants() -> None:
    statements = parse_text('*similar(Image, Image)\nred(Image)\n1 !similar(X, "a") v red(X)\n').statements
    declaration, _, formula = statements
    assert isinstance(declaration, PredicateDeclaration) and declaration.types == ("Image", "Image")
    assert isinstance(formula, WeightedFormula)
    assert str(formula.formula) == '!similar(X, "a") v red(X)'
    variable = formula.formula.operands[0].operand.args[0]  # type: ignore[union-attr]
    assert isinstance(variable, Variable)


def test_without_capitalised_types_capitalised_names_stay_constants() -> None:
    statements = parse_text("Smokes(person)\n1 Smokes(Anna)\n").statements
    formula = statements[1]
    assert isinstance(formula, WeightedFormula)
    assert isinstance(formula.formula.args[0], Constant)  # type: ignore[union-attr]


# -- exactly one value: property test against a brute-force oracle ---------------------------


@st.composite
def functional_programs(draw: st.DrawFn) -> tuple[str, str, list[str], CostOf]:
    """A random program over 'Pick(person, value!)' (or '?', or two determined arguments)."""
    two = draw(st.booleans())
    people = [f"P{i}" for i in range(draw(st.integers(1, 2 if two else 3)))]
    values = [f"V{i}" for i in range(draw(st.integers(1, 2 if two else 3)))]
    slots = [f"S{i}" for i in range(draw(st.integers(1, 2)))] if two else [""]
    exhaustive = draw(st.booleans())
    mark = "!" if exhaustive else "?"
    keys = [(p, v, s) for p in people for v in values for s in slots]

    def text(key: tuple[str, str, str]) -> str:
        return f"Pick({','.join(part for part in key if part)})"

    halves = st.integers(-4, 4).map(lambda n: n / 2)
    weights = {key: draw(halves) for key in keys}
    pair_weight = draw(halves)
    evidence = draw(st.dictionaries(st.sampled_from(keys), st.booleans(), max_size=3))
    types = f"person, value{mark}" + (f", slot{mark}" if two else "")
    lines = [f"person = {{{', '.join(people)}}}", f"value = {{{', '.join(values)}}}"]
    if two:
        lines.append(f"slot = {{{', '.join(slots)}}}")
    lines.append(f"Pick({types})")
    lines.extend(f"{weights[key]} {text(key)}" for key in keys)
    tail = ", s" if two else ""
    lines.append(f"{pair_weight} Pick(x, v{tail}) ^ Pick(y, v{tail}) ^ x != y")
    rules = "\n".join(lines) + "\n"
    facts = "".join(f"{'' if truth else '!'}{text(key)}\n" for key, truth in evidence.items())
    atoms = [text(key) for key in keys if key not in evidence]

    def cost_of(world: World) -> float | None:
        def pick(key: tuple[str, str, str]) -> bool:
            return evidence[key] if key in evidence else world(text(key))

        for p in people:
            chosen = sum(pick((p, v, s)) for v in values for s in slots)
            if chosen > 1 or (exhaustive and chosen == 0):
                return None
        cost = sum(lost(weights[key], pick(key)) for key in keys)
        for x, y in itertools.product(people, repeat=2):
            for v in values:
                for s in slots:
                    cost += lost(pair_weight, pick((x, v, s)) and pick((y, v, s)) and x != y)
        return cost

    return rules, facts, atoms, cost_of


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(functional_programs())
def test_exactly_one_value_agrees_with_the_brute_force_oracle(
    tmp_path: Path, case: tuple[str, str, list[str], CostOf]
) -> None:
    rules_text, facts_text, atoms, cost_of = case
    rules, facts = tmp_path / "rules.mln", tmp_path / "facts.db"
    rules.write_text(rules_text)
    facts.write_text(facts_text)
    result = run([rules], [facts], queries=[QueryPattern("Pick")])
    if brute_force(atoms, cost_of) is None:
        assert result.solution.status == "unsatisfiable"
    else:
        assert_optimal(result, atoms, cost_of)


# -- syntax of the dialects ---------------------------------------------------------------


def test_lower_case_domain_constants() -> None:
    (declaration,) = parse_text("observation = {flies, like, a, flower}\n").statements
    assert [constant.value for constant in declaration.constants] == ["flies", "like", "a", "flower"]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("weight", "value"),
    [
        ("log(0.9)", "-0.105361"),
        ("logx(0.9)", "-0.105361"),
        ("logx(0)", "-100.000000"),
        ("logx(.75/.25)", "1.098612"),
        ("log(4)/2", "0.693147"),
        ("-log(2)*3", "-2.079442"),
        ("exp(1)", "2.718282"),
        ("(1.5)", "1.500000"),
        ("sqrt(2)**2", "2.000000"),
    ],
)
def test_pracmln_weight_expressions(weight: str, value: str) -> None:
    (formula,) = parse_text(f"{weight} P(x)\n").statements
    assert isinstance(formula, WeightedFormula) and formula.weight == Decimal(value)


def test_infinite_weights_are_hard_formulas() -> None:
    plus, minus = parse_text("float('inf') P(x)\n-float('inf') P(x) ^ Q(x)\n").statements
    assert isinstance(plus, WeightedFormula) and plus.hard and str(plus.formula) == "P(x)"
    assert isinstance(minus, WeightedFormula) and minus.hard and str(minus.formula) == "!(P(x) ^ Q(x))"


def test_prac_variables_make_bare_names_constants() -> None:
    (formula,) = parse_text("1 observation(?t, flies) ^ ?t =/= ?u ^ (EXIST ?v seq(?t, ?v))\n").statements
    assert isinstance(formula, WeightedFormula)
    assert str(formula.formula) == 'observation(t, "flies") ^ t != u ^ (EXIST v seq(t, v))'


def rule_error(text: str) -> str:
    with pytest.raises(RuleError) as caught:
        check_program(parse_text(text, "rules.mln"))
    return caught.value.render()


@pytest.mark.parametrize(
    ("text", "head", "note"),
    [
        (
            "log(0) P(x)\n",
            "rules.mln:1:1: error: weight 'log(0)' cannot be computed (math domain error)",
            "logx (log, and -100 for 0)",
        ),
        ("1 P(x, y!)\n", "rules.mln:1:9: error: '!' after an argument belongs in a predicate declaration", "declare"),
        ("P(a!, b?)\n", "rules.mln:1:8: error: a declaration mixes '!' (exactly one value) and '?'", "all with"),
        ("P(a!)\n", "rules.mln:1:4: error: every argument is marked as determined", "orders(person, dish!)"),
        ("1 P(+A)\n", "rules.mln:1:5: error: '+' needs a variable, got A", "one weight per constant"),
        ("#include \"other.mln\"\n", "rules.mln:1:1: error: the directive '#include' is not supported", "command line"),
        ("*P(x) v Q(x)\n", "rules.mln:1:1: error: '*' marks a closed-world predicate declaration", "own"),
        ("|c| P(c) <= 1\n", "rules.mln:1:1: error: unexpected character '|'", "cardinality formulas"),
        ("sum(x, y) := [x + y]\n", "rules.mln:1:11: error: unexpected character ':'", ""),
        ("1 P(x, [x + 1])\n", "rules.mln:1:8: error: unexpected character '['", "numeric extension"),
        (
            "observation={flies, like\n",
            "rules.mln:1:25: error: unexpected end of file; expected ',' or '}'",
            "never closed",
        ),
        (
            "P(person)\nP(Anna)\n",
            "rules.mln:2:1: error: predicate 'P' declared again with other types",
            "a fact or a hard formula ends with a period: 'P(Anna).'",
        ),
    ],
)
def test_dialect_errors_are_positioned(text: str, head: str, note: str) -> None:
    message = rule_error(text)
    assert message.splitlines()[0].startswith(head), message
    assert note in message
    assert "is not a number" not in message


def test_pracmln_unique_is_kept_on_learning_templates_only() -> None:
    text = (
        "object(cluster, kind!)\nscene(s)\n#unique{+?t1, +?t2}\n"
        "0 scene(?s) ^ object(?c1, +?t1) ^ object(?c2, +?t2)\n"
    )
    program = check_program(parse_text(text, "rules.mln"))
    (formula,) = [f for f in program.formulas if f.statement.unique]
    assert formula.statement.unique == ("t1", "t2") and formula.statement.per_constant == ("t1", "t2")
    message = rule_error(text.replace("\n0 ", "\n1.5 "))
    assert message.startswith("rules.mln:4:1: error: '#unique' is supported on learning templates only")
    message = rule_error(text.replace("+?t2}", "+?s}"))
    assert message.startswith("rules.mln:4:1: error: '#unique' names 's', which is not a '+' variable of this formula")
    assert "malformed '#unique'" in rule_error("#unique{t1 t2}\n0 P(+x)\n")


def test_pracmln_quantifier_after_an_operator_applies_to_its_parenthesised_body() -> None:
    statements = parse_text("1 P(x) v EXIST y (Q(x, y)) v R(x)\n1 !EXIST y (Q(x, y)) ^ P(x)\n").statements
    assert [str(s.formula) for s in statements] == [  # type: ignore[union-attr]
        "P(x) v (EXIST y Q(x, y)) v R(x)",
        "!(EXIST y Q(x, y)) ^ P(x)",
    ]
    assert "needs parentheses" in rule_error("1 P(x) ^ EXIST y Q(x, y)\n")
