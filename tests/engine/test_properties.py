"""Property tests: the engine against a brute-force MLN solver written here.

The oracle shares no code with the engine. Programs are generated twice over:
as rule and evidence text for the engine, and as plain tuples for the oracle,
which grounds every formula with ``itertools.product`` over the domains,
evaluates it recursively and enumerates every world of the open atoms (at most
``MAX_OPEN_ATOMS``). Truth values are Python booleans, or numpy arrays holding
one boolean per world so that all worlds are evaluated in one pass.
"""

from __future__ import annotations

import functools
import itertools
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reasoner import ground as ground_module
from reasoner.check import QueryPattern
from reasoner.errors import RuleError
from reasoner.pipeline import Run, run
from reasoner.solve import solve

MAX_OPEN_ATOMS = 10
WEIGHT_SCALE = 100  # generated weights have at most two decimals

# Formulas are nested tuples:
#   ("atom", predicate, args)    args: ("var", name) | ("const", value)
#   ("cmp", op, left, right)     op: "=" | "!=" | "<" | "<=" | ">" | ">="
#   ("not", f)  ("and", (f, ...))  ("or", (f, ...))  ("imp", f, g)  ("iff", f, g)
#   ("exist" | "forall", (name, ...), body[, keyword])
Node = tuple[Any, ...]
Key = tuple[str, tuple[Any, ...]]  # (predicate, constants): a ground atom


@dataclass
class Predicate:
    name: str
    types: tuple[str, ...]
    role: str  # "query" | "hidden" (open world) | "evidence" (closed world)

    @property
    def open_world(self) -> bool:
        return self.role != "evidence"


@dataclass
class Formula:
    node: Node
    weight: Decimal | None  # None: hard
    variable_types: dict[str, str]  # every variable, free or bound
    free: tuple[str, ...]


@dataclass
class Program:
    universes: dict[str, tuple[Any, ...]]  # constants a type may take
    declared: dict[str, tuple[Any, ...]]  # constants declared in the rule file
    predicates: dict[str, Predicate]
    starred: bool  # Tuffy style: closed predicates declared with '*'
    formulas: list[Formula]
    evidence: dict[Key, bool] = field(default_factory=dict)
    minimal_parentheses: bool = True
    margins: tuple[str, ...] | None = None  # predicates whose atoms get margins; None: every query atom

    # -- text for the engine --------------------------------------------
    def rules_text(self) -> str:
        lines = []
        for type_name, constants in self.declared.items():
            if constants:
                lines.append(f"{type_name} = {{{', '.join(str(c) for c in constants)}}}")
        for predicate in self.predicates.values():
            star = "*" if self.starred and predicate.role == "evidence" else ""
            lines.append(f"{star}{predicate.name}({', '.join(predicate.types)})")
        for formula in self.formulas:
            body = render(formula.node, self.minimal_parentheses)
            lines.append(f"{body}." if formula.weight is None else f"{formula.weight} {body}")
        return "\n".join(lines) + "\n"

    def db_text(self) -> str:
        return "".join(f"{'' if truth else '!'}{atom_text(key)}\n" for key, truth in self.evidence.items())

    # -- semantics for the oracle ---------------------------------------
    def domains(self) -> dict[str, list[Any]]:
        found: dict[str, set[Any]] = {name: set(constants) for name, constants in self.declared.items()}
        for (name, args) in self.evidence:
            for type_name, value in zip(self.predicates[name].types, args, strict=True):
                found[type_name].add(value)
        for formula in self.formulas:
            for node in walk(formula.node):
                if node[0] == "atom":
                    for type_name, arg in zip(self.predicates[node[1]].types, node[2], strict=True):
                        if arg[0] == "const":
                            found[type_name].add(arg[1])
        return {name: sorted(values, key=str) for name, values in found.items()}

    def ground_atoms(self, name: str, domains: dict[str, list[Any]]) -> list[Key]:
        types = self.predicates[name].types
        return [(name, args) for args in itertools.product(*(domains[t] for t in types))]

    def open_atoms(self) -> list[Key]:
        domains = self.domains()
        return [
            key
            for name, predicate in self.predicates.items()
            if predicate.open_world
            for key in self.ground_atoms(name, domains)
            if key not in self.evidence
        ]


def atom_text(key: Key) -> str:
    name, args = key
    return f"{name}({','.join(str(a) for a in args)})"


def walk(node: Node):
    yield node
    kind = node[0]
    if kind == "not":
        yield from walk(node[1])
    elif kind in ("and", "or"):
        for child in node[1]:
            yield from walk(child)
    elif kind in ("imp", "iff"):
        yield from walk(node[1])
        yield from walk(node[2])
    elif kind in ("exist", "forall"):
        yield from walk(node[2])


# -- printing ------------------------------------------------------------------

PRECEDENCE = {"iff": 1, "imp": 2, "or": 3, "and": 4, "not": 5, "atom": 6, "cmp": 6, "exist": 0, "forall": 0}


def render_term(term: tuple[str, Any]) -> str:
    return str(term[1])


def render(node: Node, minimal: bool, top: bool = True) -> str:
    """Formula text; ``minimal`` leaves out the parentheses precedence makes redundant."""

    def sub(child: Node, least: int, last: bool = False) -> str:
        wrap = PRECEDENCE[child[0]] < least if minimal else child[0] not in ("atom",)
        text = render(child, minimal, top=wrap or (last and top))  # top: nothing follows it
        return f"({text})" if wrap else text

    kind = node[0]
    if kind == "atom":
        return f"{node[1]}({', '.join(render_term(arg) for arg in node[2])})"
    if kind == "cmp":
        return f"{render_term(node[2])} {node[1]} {render_term(node[3])}"
    if kind == "not":
        child = node[1]
        return "!" + (f"({render(child, minimal, False)})" if child[0] == "cmp" else sub(child, 5))
    if kind == "and":
        return " ^ ".join(sub(child, 4) for child in node[1])
    if kind == "or":
        return " v ".join(sub(child, 3) for child in node[1])
    if kind == "imp":  # right associative; a quantifier may end it without parentheses
        bare = minimal and top and node[2][0] in ("exist", "forall")
        return f"{sub(node[1], 3)} => {render(node[2], minimal) if bare else sub(node[2], 2, last=True)}"
    if kind == "iff":
        return f"{sub(node[1], 2)} <=> {sub(node[2], 2)}"
    word = node[3] if len(node) > 3 else kind.upper()
    return f"{word} {','.join(node[1])} {render(node[2], minimal, top=True)}"


# -- the oracle ------------------------------------------------------------------


def _not(value: Any) -> Any:
    return np.logical_not(value) if isinstance(value, np.ndarray) else not value


def _all(values: Any) -> Any:
    return functools.reduce(operator.and_, values, True)


def _any(values: Any) -> Any:
    return functools.reduce(operator.or_, values, False)


def truth(node: Node, env: dict[str, Any], value_of: Callable[[Key], Any], formula: Formula, domains: dict) -> Any:
    """Value of a formula under a substitution: a bool, or an array of bools (one per world)."""

    def term(arg: tuple[str, Any]) -> Any:
        return env[arg[1]] if arg[0] == "var" else arg[1]

    def go(node: Node, env: dict[str, Any]) -> Any:
        return truth(node, env, value_of, formula, domains)

    kind = node[0]
    if kind == "atom":
        return value_of((node[1], tuple(term(arg) for arg in node[2])))
    if kind == "cmp":
        left, right, op = term(node[2]), term(node[3]), node[1]
        if op in ("=", "!="):
            return (left == right) == (op == "=")
        if isinstance(left, str) or isinstance(right, str):
            return False  # an order comparison involving a non-number is false
        return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]
    if kind == "not":
        return _not(go(node[1], env))
    if kind == "and":
        return _all(go(child, env) for child in node[1])
    if kind == "or":
        return _any(go(child, env) for child in node[1])
    if kind == "imp":
        return _not(go(node[1], env)) | go(node[2], env)
    if kind == "iff":
        left, right = go(node[1], env), go(node[2], env)
        return left == right
    names = node[1]
    cases = [
        go(node[2], {**env, **dict(zip(names, values, strict=True))})
        for values in itertools.product(*(domains[formula.variable_types[n]] for n in names))
    ]
    return _any(cases) if kind == "exist" else _all(cases)


class BruteForce:
    """Cost (scaled by ``WEIGHT_SCALE``) and feasibility of every world of the open atoms."""

    def __init__(self, program: Program) -> None:
        self.program = program
        self.domains = program.domains()
        self.open = program.open_atoms()
        self.index = {key: i for i, key in enumerate(self.open)}
        self.atom_named = {
            atom_text(key): key for name in program.predicates for key in program.ground_atoms(name, self.domains)
        }
        worlds = np.arange(2 ** len(self.open))
        self.bits = [((worlds >> i) & 1).astype(bool) for i in range(len(self.open))]
        self.cost = np.zeros(len(worlds), dtype=np.int64)
        self.feasible = np.ones(len(worlds), dtype=bool)
        for formula in program.formulas:
            for value in self.groundings(formula, self.vector_value):
                if formula.weight is None:
                    self.feasible &= value
                elif formula.weight > 0:
                    self.cost += int(formula.weight * WEIGHT_SCALE) * _not(value)
                elif formula.weight < 0:
                    self.cost += int(-formula.weight * WEIGHT_SCALE) * value

    def groundings(self, formula: Formula, value_of: Callable[[Key], Any]) -> list[Any]:
        types = [formula.variable_types[name] for name in formula.free]
        return [
            truth(formula.node, dict(zip(formula.free, values, strict=True)), value_of, formula, self.domains)
            for values in itertools.product(*(self.domains[t] for t in types))
        ]

    def fixed_value(self, key: Key) -> bool | None:
        if key in self.program.evidence:
            return self.program.evidence[key]
        if not self.program.predicates[key[0]].open_world:
            return False
        return None

    def vector_value(self, key: Key) -> Any:
        fixed = self.fixed_value(key)
        return fixed if fixed is not None else self.bits[self.index[key]]

    def world_cost(self, world: dict[Key, bool]) -> tuple[int, bool]:
        """(scaled cost, hard formulas hold) of one world, with Python booleans only."""

        def value_of(key: Key) -> bool:
            fixed = self.fixed_value(key)
            return fixed if fixed is not None else world[key]

        cost, feasible = 0, True
        for formula in self.program.formulas:
            for value in self.groundings(formula, value_of):
                if formula.weight is None:
                    feasible = feasible and bool(value)
                elif formula.weight > 0 and not value:
                    cost += int(formula.weight * WEIGHT_SCALE)
                elif formula.weight < 0 and value:
                    cost += int(-formula.weight * WEIGHT_SCALE)
        return cost, feasible

    def optimum(self, mask: np.ndarray | None = None) -> int | None:
        allowed = self.feasible if mask is None else self.feasible & mask
        return int(self.cost[allowed].min()) if allowed.any() else None

    def relevant(self, key: Key) -> bool:
        """Whether any world's cost or feasibility changes when only this atom flips."""
        bit = self.bits[self.index[key]]
        step = 1 << self.index[key]
        low = np.flatnonzero(~bit)
        return bool(
            (self.cost[low] != self.cost[low + step]).any() or (self.feasible[low] != self.feasible[low + step]).any()
        )


# -- generating programs --------------------------------------------------------

FREE_VARIABLES = {0: ("x", "y"), 1: ("p", "q")}
CONSTANT_POOLS = (("A", "B", "C"), ("B", "C", "D"), (1, 2, 3), (2, "A", 1), (0.5, 1, 2.5))


@st.composite
def weights(draw: st.DrawFn) -> Decimal | None:
    if draw(st.integers(0, 14)) == 0:
        return None
    choice = draw(st.integers(0, 5))
    if choice == 0:
        return Decimal(0)
    if choice == 1:
        return Decimal(draw(st.integers(-3, 3)))
    return Decimal(draw(st.integers(-300, 300))) / 100


class _FormulaBuilder:
    def __init__(self, draw: st.DrawFn, program: Program) -> None:
        self.draw = draw
        self.program = program
        self.types = sorted(program.universes)
        self.variable_types: dict[str, str] = {}
        self.fresh = 0

    def pool(self, type_name: str, scope: dict[str, str]) -> list[str]:
        free = list(FREE_VARIABLES[self.types.index(type_name)])
        return free + [name for name, t in scope.items() if t == type_name]

    def term(self, type_name: str, scope: dict[str, str], constant_chance: int = 6) -> tuple[str, Any]:
        draw = self.draw
        if draw(st.integers(0, constant_chance)) == 0:
            return ("const", draw(st.sampled_from(self.program.universes[type_name])))
        name = draw(st.sampled_from(self.pool(type_name, scope)))
        self.variable_types[name] = type_name
        return ("var", name)

    def atom(
        self, scope: dict[str, str], predicate: Predicate | None = None, forced: tuple[str, str] | None = None
    ) -> Node:
        """An atom (of ``predicate``; with variable ``forced = (name, type)`` as one argument)."""
        if predicate is None:
            predicate = self.draw(st.sampled_from(sorted(self.program.predicates.values(), key=lambda p: p.name)))
        args = []
        used = False
        for type_name in predicate.types:
            if forced is not None and not used and type_name == forced[1]:
                args.append(("var", forced[0]))
                used = True
            else:
                args.append(self.term(type_name, scope))
        return ("atom", predicate.name, tuple(args))

    def comparison(self, scope: dict[str, str]) -> Node:
        draw = self.draw
        type_name = draw(st.sampled_from(self.types))
        name = draw(st.sampled_from(self.pool(type_name, scope)))
        self.variable_types[name] = type_name
        op = draw(st.sampled_from(["=", "!=", "!=", "<", "<=", ">", ">="]))
        numbers = [c for c in self.program.universes[type_name] if not isinstance(c, str)]
        if draw(st.booleans()):
            right = ("var", draw(st.sampled_from(self.pool(type_name, scope))))
            self.variable_types[right[1]] = type_name
        elif op in ("=", "!="):
            right = ("const", draw(st.sampled_from(["Z", 7, *self.program.universes[type_name]])))
        else:  # the checker rejects an order comparison with a string constant
            right = ("const", draw(st.sampled_from([0, 2, 7, *numbers])))
        return ("cmp", op, ("var", name), right)

    def formula(self, scope: dict[str, str], depth: int) -> Node:
        draw = self.draw
        kinds = ["atom", "atom", "atom", "cmp"]
        if depth > 0:
            kinds += ["not", "and", "or", "imp", "iff", "and", "or", "imp", "exist"]
        kind = draw(st.sampled_from(kinds))
        if kind == "atom":
            return self.atom(scope)
        if kind == "cmp":
            return self.comparison(scope)
        if kind == "not":
            return ("not", self.formula(scope, depth - 1))
        if kind in ("and", "or"):
            count = draw(st.integers(2, 3))
            return (kind, tuple(self.formula(scope, depth - 1) for _ in range(count)))
        if kind in ("imp", "iff"):
            return (kind, self.formula(scope, depth - 1), self.formula(scope, depth - 1))
        quantifier = draw(st.sampled_from(["exist", "exist", "forall"]))
        names = []
        inner = dict(scope)
        for _ in range(draw(st.integers(1, 2))):
            name = f"e{self.fresh}"
            self.fresh += 1
            inner[name] = draw(st.sampled_from(self.types))
            names.append(name)
        body = self.formula(inner, depth - 1)
        for name in names:
            if not self.in_atom(body, name):
                body = ("and", (body, self.atom(inner, self.predicate_with(inner[name]), (name, inner[name]))))
            self.variable_types[name] = inner[name]
        word = "FORALL" if quantifier == "forall" else draw(st.sampled_from(["EXIST", "EXISTS"]))
        return (quantifier, tuple(names), body, word)

    def predicate_with(self, type_name: str) -> Predicate:
        choices = [p for p in self.program.predicates.values() if type_name in p.types]
        return self.draw(st.sampled_from(sorted(choices, key=lambda p: p.name)))

    @staticmethod
    def in_atom(node: Node, name: str) -> bool:
        return any(n[0] == "atom" and ("var", name) in n[2] for n in walk(node))

    def repair(self, node: Node, root: Node) -> Node:
        """Replace comparisons of variables that no atom binds (the checker rejects them)."""
        kind = node[0]
        if kind == "cmp":
            for arg in (node[2], node[3]):
                if arg[0] == "var" and not self.in_atom(root, arg[1]):
                    type_name = self.variable_types[arg[1]]
                    return self.atom({}, self.predicate_with(type_name), (arg[1], type_name))
            return node
        if kind == "not":
            return ("not", self.repair(node[1], root))
        if kind in ("and", "or"):
            return (kind, tuple(self.repair(child, root) for child in node[1]))
        if kind in ("imp", "iff"):
            return (kind, self.repair(node[1], root), self.repair(node[2], root))
        if kind in ("exist", "forall"):
            return (kind, node[1], self.repair(node[2], root), *node[3:])
        return node

    def build(self) -> Formula:
        node = self.formula({}, self.draw(st.integers(0, 3)))
        node = self.repair(node, node)
        bound = {name for n in walk(node) if n[0] in ("exist", "forall") for name in n[1]}
        free: list[str] = []
        for n in walk(node):
            if n[0] == "atom":
                for arg in n[2]:
                    if arg[0] == "var" and arg[1] not in bound and arg[1] not in free:
                        free.append(arg[1])
        types = {name: t for name, t in self.variable_types.items()}
        return Formula(node, self.draw(weights()), types, tuple(free))


@st.composite
def programs(draw: st.DrawFn) -> Program:
    num_predicates = draw(st.integers(2, 4))
    num_types = draw(st.integers(1, 2))
    type_names = [f"t{i}" for i in range(num_types)]
    predicates: dict[str, Predicate] = {}
    num_queries = draw(st.integers(1, 2))
    starred = draw(st.booleans())
    for i in range(num_predicates):
        arity = draw(st.integers(1, 2))
        types = tuple(draw(st.sampled_from(type_names)) for _ in range(arity))
        if i < num_queries:
            role = "query"
        elif starred and draw(st.booleans()):
            role = "hidden"
        else:
            role = "evidence"
        predicates[f"P{i}"] = Predicate(f"P{i}", types, role)
    if not any(p.role == "evidence" for p in predicates.values()):
        for p in predicates.values():  # no '*' declaration: no hidden predicates either
            p.role = "query" if p.role == "query" else "evidence"
    used = sorted({t for p in predicates.values() for t in p.types})
    universes = {}
    declared = {}
    for type_name in used:
        pool = draw(st.sampled_from(CONSTANT_POOLS))
        universe = tuple(pool[: draw(st.sampled_from([3, 2, 3, 1, 3, 2]))])
        universes[type_name] = universe
        if draw(st.integers(0, 5)) == 0:
            declared[type_name] = tuple(c for c in universe if draw(st.booleans()))
        else:
            declared[type_name] = universe
    program = Program(universes, declared, predicates, starred, [], minimal_parentheses=draw(st.booleans()))
    for _ in range(draw(st.integers(1, 4))):
        program.formulas.append(_FormulaBuilder(draw, program).build())

    # Evidence over the universes (it may add constants to the domains).
    for name, predicate in predicates.items():
        for args in itertools.product(*(universes[t] for t in predicate.types)):
            state = draw(st.integers(0, 7 if predicate.open_world else 3))
            if state == 1:
                program.evidence[(name, args)] = True
            elif state == 2:
                program.evidence[(name, args)] = False
    # Fix some open atoms by evidence so that brute force stays instant.
    open_atoms = program.open_atoms()
    keep = MAX_OPEN_ATOMS - draw(st.integers(0, 6))
    if len(open_atoms) > keep:
        order = draw(st.permutations(open_atoms))
        for key in order[: len(open_atoms) - keep]:
            program.evidence[key] = draw(st.booleans())
    if draw(st.integers(0, 3)) == 0:
        program.margins = tuple(draw(st.lists(st.sampled_from(sorted(predicates)), max_size=3, unique=True)))
    return program


# -- running the engine -----------------------------------------------------------


def run_program(program: Program, directory: Path, **options: Any) -> Run:
    rules = directory / "rules.mln"
    db = directory / "evidence.db"
    rules.write_text(program.rules_text(), encoding="utf-8")
    db.write_text(program.db_text(), encoding="utf-8")
    queries = [QueryPattern(name) for name, p in program.predicates.items() if p.role == "query"]
    margins = None if program.margins is None else list(program.margins)
    return run([rules], [db], queries=queries, margins=margins, **options)


def describe(program: Program) -> str:
    return f"--- rules.mln\n{program.rules_text()}--- evidence.db\n{program.db_text()}"


def scaled(result: Run, value: int) -> Decimal:
    return Decimal(value) / Decimal(result.solution.scale)


def oracle_cost(value: int) -> Decimal:
    return Decimal(value) / WEIGHT_SCALE


def engine_world(result: Run, program: Program, oracle: BruteForce) -> dict[Key, bool]:
    """The returned world over every open atom (atoms the network does not hold: false)."""
    world = {key: False for key in oracle.open}
    values = result.solution.values
    for atom_id in range(1, result.network.atoms.size + 1):
        key = oracle.atom_named[result.network.atom_text(atom_id)]
        assert key in oracle.index, f"network atom {atom_text(key)} is not open"
        world[key] = bool(values[atom_id])
    return world


def check_against_oracle(program: Program, result: Run, oracle: BruteForce) -> None:
    best = oracle.optimum()
    solution = result.solution
    if best is None:
        assert solution.status == "unsatisfiable"
        return
    assert solution.status == "optimal"
    # (1) the optimum
    assert scaled(result, solution.cost) == oracle_cost(best)
    # (2) the returned world has the reported cost
    world = engine_world(result, program, oracle)
    cost, feasible = oracle.world_cost(world)
    assert feasible
    assert oracle_cost(cost) == scaled(result, solution.cost)
    # query atoms: evidence, values, margins
    reported = {atom.text: atom for atom in result.atoms}
    expected = {
        atom_text(key)
        for name, p in program.predicates.items()
        if p.role == "query"
        for key in program.ground_atoms(name, oracle.domains)
    }
    assert set(reported) == expected
    for text, atom in reported.items():
        key = oracle.atom_named[text]
        wanted = program.margins is None or key[0] in program.margins
        assert result.has_margin(atom) == wanted, text
        if key in program.evidence:
            assert atom.fixed and atom.atom_id == 0 and atom.value == program.evidence[key]
            assert result.margin(atom) is None  # evidence cannot be flipped
            continue
        assert not atom.fixed
        if atom.atom_id == 0:
            # In no open ground formula: its value cannot matter.
            assert not atom.value
            assert not oracle.relevant(key), f"{text} matters but is not in the network"
            assert result.margin(atom) == 0
            continue
        assert atom.value == world[key]
        if not wanted:
            assert atom.atom_id not in solution.margins
            continue
        # (4) margins: the best world with the atom flipped, against the optimum
        bit = oracle.bits[oracle.index[key]]
        other = oracle.optimum(bit if not atom.value else ~bit)
        margin = result.margin(atom)
        if other is None:
            assert margin is None, f"{text}: margin {margin}, but flipping it breaks a hard formula"
        else:
            assert margin is not None, f"{text}: margin None, but flipping costs {oracle_cost(other - best)}"
            assert margin == oracle_cost(other - best), text
    # open atoms outside the network do not matter either
    in_network = {oracle.atom_named[result.network.atom_text(i)] for i in range(1, result.network.atoms.size + 1)}
    for key in oracle.open:
        if key not in in_network:
            assert not oracle.relevant(key), f"{atom_text(key)} matters but is not in the network"


# -- the properties -----------------------------------------------------------------

COMMON = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def check_one_problem(result: Run) -> None:
    """(3) Solving the network as one problem changes neither status, cost nor margins."""
    whole = solve(result.encoding, margin_atoms=list(result.solution.margins), split=False)
    assert whole.status == result.solution.status
    if whole.status != "unsatisfiable":
        assert whole.cost == result.solution.cost
        assert whole.margins == result.solution.margins


@pytest.mark.slow
@settings(COMMON, max_examples=300)
@given(program=programs())
def test_engine_matches_brute_force(program: Program, tmp_path: Path) -> None:
    """(1) optimum, (2) cost of the returned world, (3) one problem = components, (4) margins."""
    oracle = BruteForce(program)
    result = run_program(program, tmp_path)
    try:
        check_against_oracle(program, result, oracle)
        check_one_problem(result)
    except AssertionError as error:
        raise AssertionError(f"{error}\n{describe(program)}") from error


@pytest.mark.slow
@settings(COMMON, max_examples=150)
@given(program=programs())
def test_grounding_without_sql_gives_the_sql_groundings(program: Program, tmp_path: Path) -> None:
    """Clauses grounded in numpy (``ground._scan_clause``) give the substitutions, leaf states
    and evidence rows the SQL queries give."""
    result = run_program(program, tmp_path)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ground_module, "_scan_clause", lambda *args: None)
        sql = ground_module.ground(result.program, result.evidence)
    assert len(sql.blocks) == len(result.network.blocks)
    for mine, theirs in zip(result.network.blocks, sql.blocks, strict=True):
        assert np.array_equal(mine.substitutions, theirs.substitutions), describe(program)
        assert np.array_equal(mine.root_state, theirs.root_state)
        for a, b in zip(mine.leaf_states + mine.leaf_evidence, theirs.leaf_states + theirs.leaf_evidence, strict=True):
            assert np.array_equal(a, b)


def test_grounding_limit_reads_the_same_without_sql(tmp_path: Path) -> None:
    """A formula over its grounding limit is refused with the same message by both paths."""
    from reasoner.errors import LimitError
    from reasoner.limits import Limits

    rules = tmp_path / "wide.mln"
    rules.write_text(
        "t = {A, B, C, D, E}\nQ(t)\nR(t)\n"
        "1 (Q(x) ^ R(x) ^ Q(A)) v (R(x) ^ Q(B) ^ R(C)) v (Q(x) ^ R(D) ^ Q(C)) v (R(x) ^ Q(D) ^ R(E))\n",
        encoding="utf-8",
    )
    messages = []
    for scan in (ground_module._scan_clause, lambda *args: None):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(ground_module, "_scan_clause", scan)
            with pytest.raises(LimitError) as raised:
                run([rules], queries=[QueryPattern("Q")], limits=Limits(max_groundings=3))
            messages.append(str(raised.value))
    assert messages[0] == messages[1] and "formula has 5 groundings" in messages[0]


def test_joins_on_shared_variables_are_grounded_in_numpy_as_in_sql(tmp_path: Path) -> None:
    """Clauses whose negated evidence atoms bind every variable through shared ones (a chain of
    joins, with constants and a repeated variable) are grounded without SQL, as SQL grounds them;
    a join of more rows than the grounding limit is left to SQL."""
    rules = tmp_path / "joins.mln"
    rules.write_text(
        "t = {A, B, C, D}\nE(t, t)\nG(t, t)\nF(t)\n"
        "1 E(x, y) ^ G(y, z) ^ E(z, z) => F(x)\n"
        "1 E(x, A) ^ G(x, y) ^ G(y, w) => F(w)\n"
        "2 G(x, y) ^ E(y, x) ^ x != y => F(y)\n",
        encoding="utf-8",
    )
    db = tmp_path / "e.db"
    db.write_text(
        "E(A, B)\nE(B, C)\nE(C, C)\nE(A, A)\nE(D, A)\nE(B, A)\n"
        "G(B, C)\nG(C, A)\nG(A, A)\nG(B, B)\nG(A, D)\nG(D, B)\nG(A, B)\n",
        encoding="utf-8",
    )
    result = run([rules], [db], queries=[QueryPattern("F")])

    def no_sql(self: object, sql: str) -> None:
        raise AssertionError(f"grounded in SQL: {sql}")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ground_module._Relations, "execute", no_sql)
        numpy_network = ground_module.ground(result.program, result.evidence)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ground_module, "_scan_clause", lambda *args: None)
        sql = ground_module.ground(result.program, result.evidence)
    assert [len(block) for block in sql.blocks] == [6, 11, 2]
    for mine, theirs in zip(numpy_network.blocks, sql.blocks, strict=True):
        assert np.array_equal(mine.substitutions, theirs.substitutions)
        assert np.array_equal(mine.root_state, theirs.root_state)
        for a, b in zip(mine.leaf_states + mine.leaf_evidence, theirs.leaf_states + theirs.leaf_evidence, strict=True):
            assert np.array_equal(a, b)
    left = {0: np.array([0, 0, 1]), 1: np.array([5, 5, 6])}
    right = {1: np.array([5, 5, 7]), 2: np.array([8, 9, 9])}
    joined = ground_module._join(left, right, 10, 4)
    assert joined is not None and sorted(zip(*(joined[slot].tolist() for slot in (0, 1, 2)), strict=True)) == [
        (0, 5, 8), (0, 5, 8), (0, 5, 9), (0, 5, 9)
    ]
    assert ground_module._join(left, right, 10, 3) is None  # 4 rows: over the limit
    assert ground_module._join(left, {2: np.array([1])}, 10, 100) is None  # nothing shared: a cross product


def test_no_duckdb_thread_is_forked(tmp_path: Path) -> None:
    """The kept DuckDB connection is closed before a fork (its threads would not survive it)."""
    import os

    rules = tmp_path / "join.mln"
    # No atom binds z: a product with its domain, which the numpy scan leaves to SQL.
    rules.write_text("t = {A, B}\nE(t, t)\nF(t)\n1 E(x, y) => F(z)\n", encoding="utf-8")
    db = tmp_path / "e.db"
    db.write_text("E(A, B)\nE(B, A)\n", encoding="utf-8")
    ground_module._close_before_fork()  # whatever an earlier test left: this run must open its own
    run([rules], [db], queries=[QueryPattern("F")])
    assert getattr(ground_module._THREAD, "connection", None) is not None  # the join ran in DuckDB
    pid = os.fork()
    if pid == 0:  # the child: no connection inherited
        os._exit(0 if getattr(ground_module._THREAD, "connection", None) is None else 1)
    _pid, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert getattr(ground_module._THREAD, "connection", None) is None


def _atom(predicate: str, *args: str) -> Node:
    return ("atom", predicate, tuple(("var", a) if a.islower() else ("const", a) for a in args))


def test_oracle_sees_every_grounding(tmp_path: Path) -> None:
    """The oracle itself, on a program small enough to check by hand."""
    program = Program(
        universes={"t0": ("A", "B")},
        declared={"t0": ("A", "B")},
        predicates={"P0": Predicate("P0", ("t0",), "query"), "P1": Predicate("P1", ("t0",), "evidence")},
        starred=False,
        formulas=[
            Formula(("imp", _atom("P1", "x"), _atom("P0", "x")), Decimal(2), {"x": "t0"}, ("x",)),
            Formula(_atom("P0", "x"), Decimal("-0.5"), {"x": "t0"}, ("x",)),
        ],
        evidence={("P1", ("A",)): True},
    )
    oracle = BruteForce(program)
    assert oracle.open == [("P0", ("A",)), ("P0", ("B",))]
    # worlds: bit 0 = P0(A), bit 1 = P0(B)
    assert oracle.cost.tolist() == [200, 50, 250, 100]
    assert oracle.optimum() == 50
    result = run_program(program, tmp_path)
    check_against_oracle(program, result, oracle)


def test_hard_formula_repeating_its_only_atom(tmp_path: Path) -> None:
    """Regression: a one-variable component ignored the hard clause [1, 1]."""
    program = Program(
        universes={"t0": ("A",)},
        declared={"t0": ("A",)},
        predicates={"P0": Predicate("P0", ("t0",), "query"), "P1": Predicate("P1", ("t0",), "evidence")},
        starred=False,
        formulas=[Formula(("or", (_atom("P0", "A"), _atom("P0", "A"))), None, {}, ())],
    )
    assert "P0(A) v P0(A).\n" in program.rules_text()
    result = run_program(program, tmp_path)
    check_against_oracle(program, result, BruteForce(program))
    assert [(atom.text, atom.value) for atom in result.atoms] == [("P0(A)", True)]


def test_comparison_before_a_connective(tmp_path: Path) -> None:
    """Regression: '=>' after a comparison lexed as '=' '>', and 'x = A' began a type declaration."""
    program = Program(
        universes={"t0": ("A", "B")},
        declared={"t0": ("A", "B")},
        predicates={"P0": Predicate("P0", ("t0",), "query"), "P1": Predicate("P1", ("t0", "t0"), "evidence")},
        starred=False,
        formulas=[
            Formula(("imp", ("cmp", "=", ("var", "x"), ("const", "A")), _atom("P0", "x")), None, {"x": "t0"}, ("x",)),
            Formula(
                ("imp", ("and", (_atom("P1", "x", "y"), ("cmp", "!=", ("var", "x"), ("var", "y")))), _atom("P0", "y")),
                Decimal("1.5"),
                {"x": "t0", "y": "t0"},
                ("x", "y"),
            ),
        ],
        evidence={("P1", ("A", "B")): True},
    )
    text = program.rules_text()
    assert "x = A => P0(x).\n" in text
    assert "1.5 P1(x, y) ^ x != y => P0(y)\n" in text
    result = run_program(program, tmp_path)
    check_against_oracle(program, result, BruteForce(program))
    assert result.solution.status == "optimal"


def test_negated_order_comparison_of_strings(tmp_path: Path) -> None:
    """Regression: '!(x < y)' became 'x >= y', false for strings where it must be true."""
    program = Program(
        universes={"t0": ("A", "B")},
        declared={"t0": ("A", "B")},
        predicates={"P0": Predicate("P0", ("t0",), "query"), "P1": Predicate("P1", ("t0", "t0"), "evidence")},
        starred=False,
        formulas=[
            Formula(
                ("imp", ("and", (_atom("P1", "x", "y"), ("cmp", "<", ("var", "x"), ("var", "y")))), _atom("P0", "x")),
                Decimal(2),
                {"x": "t0", "y": "t0"},
                ("x", "y"),
            ),
            Formula(("not", _atom("P0", "x")), Decimal(1), {"x": "t0"}, ("x",)),
            Formula(
                ("and", (_atom("P1", "x", "y"), ("cmp", ">", ("var", "x"), ("var", "y")))),
                Decimal("-1.5"),
                {"x": "t0", "y": "t0"},
                ("x", "y"),
            ),
        ],
        evidence={("P1", ("B", "A")): True},
    )
    result = run_program(program, tmp_path)
    check_against_oracle(program, result, BruteForce(program))
    assert result.cost(result.solution.cost) == 0


def test_long_clause_grounds_quickly(tmp_path: Path) -> None:
    """Regression: each literal of a clause was one more table in one SQL join (200 here: 43 s)."""
    people = tuple(f"C{i}" for i in range(100))
    program = Program(
        universes={"t0": people, "t1": (1, 2, 3)},
        declared={"t0": people, "t1": (1, 2, 3)},
        predicates={"P0": Predicate("P0", ("t1", "t1"), "query"), "P1": Predicate("P1", ("t1", "t0"), "evidence")},
        starred=False,
        formulas=[
            Formula(
                (
                    "imp",
                    ("forall", ("e0",), ("and", (_atom("P1", "p", "e0"), _atom("P1", "q", "e0")))),
                    _atom("P0", "p", "q"),
                ),
                Decimal(1),
                {"p": "t1", "q": "t1", "e0": "t0"},
                ("p", "q"),
            ),
            Formula(_atom("P0", "p", "q"), Decimal("-0.5"), {"p": "t1", "q": "t1"}, ("p", "q")),
        ],
        evidence={("P1", (n, c)): True for n in (1, 2) for c in people} | {("P1", (3, "C7")): True},
    )
    result = run_program(program, tmp_path)
    assert result.seconds["ground"] < 10
    check_against_oracle(program, result, BruteForce(program))


def test_unused_quantified_variable_is_an_error(tmp_path: Path) -> None:
    """Regression: 'EXIST y P(x)' crashed with a KeyError in grounding."""
    rules = tmp_path / "rules.mln"
    rules.write_text("P(t)\nQ(t)\n1 (EXIST y P(x)) => Q(x)\n", encoding="utf-8")
    with pytest.raises(RuleError, match="quantified variable 'y' is not used in the formula"):
        run([rules], queries=[QueryPattern("Q")])


_IMPLICATION = ("imp", ("and", (_atom("P", "x"), ("not", ("cmp", "!=", ("var", "x"), ("const", "A"))))),
                ("exist", ("e0",), _atom("Q", "x", "e0")))


@pytest.mark.parametrize(
    ("node", "minimal", "text"),
    [
        (_IMPLICATION, True, "P(x) ^ !(x != A) => EXIST e0 Q(x, e0)"),
        (_IMPLICATION, False, "(P(x) ^ (!(x != A))) => (EXIST e0 Q(x, e0))"),
        (("and", (_IMPLICATION, _atom("R", "x"))), True, "(P(x) ^ !(x != A) => EXIST e0 Q(x, e0)) ^ R(x)"),
        (("imp", _atom("R", "x"), _IMPLICATION), True, "R(x) => P(x) ^ !(x != A) => EXIST e0 Q(x, e0)"),
        (("iff", _IMPLICATION, _atom("R", "x")), True, "P(x) ^ !(x != A) => (EXIST e0 Q(x, e0)) <=> R(x)"),
        (("imp", _IMPLICATION, _atom("R", "x")), True, "(P(x) ^ !(x != A) => EXIST e0 Q(x, e0)) => R(x)"),
    ],
)
def test_printing_formulas(node: Node, minimal: bool, text: str) -> None:
    assert render(node, minimal) == text
