"""Stage 7: ``Solution`` + ``GroundNetwork`` → ``Proof``: why an atom has its MAP value.

A proof lists the ground formulas that mention the atom. Each is weighed by
what it would cost to flip the atom alone: formulas whose cost would rise
*support* the value, formulas whose cost would fall *oppose* it. Every ground
formula carries its rule (text, file:line), its substitution and the evidence
atoms it rests on with their sources (file and line, or table and row).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from reasoner.constants import GROUND_ATOM
from reasoner.errors import ArgumentError, Option
from reasoner.evidence import parse_constant, split_args
from reasoner.ground import FALSE, TRUE, UNKNOWN, GroundBlock, GroundNetwork
from reasoner.normalize import Cmp, Junction, Lit, Node, Truth, leaves
from reasoner.solve import Solution

__all__ = [
    "EvidenceCitation",
    "GroundFormulaProof",
    "Occurrences",
    "Proof",
    "decimal_json",
    "decimal_text",
    "explain_atom",
    "explain_key",
    "find_atom",
]



@dataclass(frozen=True, slots=True)
class EvidenceCitation:
    """An atom a ground formula rests on: its value and where that value comes from."""

    atom: str
    value: bool
    source: str  # "evidence.db:3", "facts.csv row 17", "closed world", "derived", "inferred"


@dataclass(frozen=True, slots=True)
class GroundFormulaProof:
    rule: str
    location: str
    weight: str  # as written, or "hard"
    substitution: tuple[tuple[str, str], ...]
    satisfied: bool
    effect: Decimal  # cost change if the atom alone were flipped (>0 supports)
    atoms: tuple[EvidenceCitation, ...]


@dataclass(frozen=True, slots=True)
class Proof:
    atom: str
    value: bool
    decided_by: str  # "evidence", "inference", "no formula"
    source: str | None
    margin: Decimal | None
    supporting: tuple[GroundFormulaProof, ...]
    opposing: tuple[GroundFormulaProof, ...]
    neutral: int

    def to_json(self) -> dict[str, object]:
        def formula(item: GroundFormulaProof) -> dict[str, object]:
            return {
                "rule": item.rule,
                "location": item.location,
                "weight": item.weight,
                "substitution": dict(item.substitution),
                "satisfied": item.satisfied,
                "effect": decimal_json(item.effect),
                "atoms": [{"atom": a.atom, "value": a.value, "source": a.source} for a in item.atoms],
            }

        return {
            "atom": self.atom,
            "value": self.value,
            "decided_by": self.decided_by,
            "source": self.source,
            "margin": None if self.margin is None else decimal_json(self.margin),
            "supporting": [formula(item) for item in self.supporting],
            "opposing": [formula(item) for item in self.opposing],
            "neutral_formulas": self.neutral,
        }


def decimal_json(value: Decimal) -> float | int | str:
    if value.is_infinite():
        return "hard" if value > 0 else "-hard"
    return int(value) if value == value.to_integral_value() else float(value)


def find_atom(network: GroundNetwork, text: str) -> tuple[str, int]:
    """(predicate, key) of an atom written like ``Cancer(Anna)``; an ``ArgumentError`` (about
    the ``explain`` argument) if there is no such atom."""
    match = GROUND_ATOM.match(text)
    if not match or match.group(1):
        raise ArgumentError(Option("explain"), f": '{text}' is not an atom such as 'Cancer(Anna)'")
    name = match.group(2)
    predicate = network.program.predicates.get(name)
    if predicate is None:
        raise ArgumentError(Option("explain"), f": unknown predicate '{name}'")
    args = split_args(match.group(3)) or []
    if len(args) != predicate.arity:
        plural = "s" if predicate.arity != 1 else ""
        raise ArgumentError(Option("explain"), f": '{name}' takes {predicate.arity} argument{plural}, got {len(args)}")
    index = network.predicates[name]
    ids = []
    for arg, type_name in zip(args, predicate.types, strict=True):
        value = parse_constant(arg)
        position = network.constants.index.get_indexer([value])[0] if len(network.constants) else -1
        domain = network.constants.domains.get(type_name)
        if position < 0 or domain is None or position not in set(domain.tolist()):
            raise ArgumentError(Option("explain"), f": '{arg}' is not a constant of type '{type_name}'")
        ids.append(np.array([position], dtype=np.int64))
    key = int(index.keys(network.constants, ids)[0]) if ids else 0
    return name, key


def atom_value(network: GroundNetwork, solution: Solution, predicate: str, key: int) -> tuple[bool, str, str | None]:
    """(value, decided_by, source) of any ground atom."""
    index = network.predicates[predicate]
    state, rows = index.lookup(np.array([key], dtype=np.int64))
    if state[0] != UNKNOWN:
        source = _source(network, predicate, int(rows[0])) if rows[0] >= 0 else "closed world"
        return bool(state[0] == TRUE), "evidence", source
    atom_id = int(network.atoms.ids(predicate, np.array([key]))[0])
    if atom_id:
        return bool(solution.values[atom_id]), "inference", None
    return False, "no formula", None


def _source(network: GroundNetwork, predicate: str, row: int, occurrences: Occurrences | None = None) -> str:
    sources, lines = occurrences.evidence_rows(predicate) if occurrences else _evidence_rows(network, predicate)
    source = int(sources[row])
    line = int(lines[row])
    info = network.evidence.sources[source]
    if info.kind == "rules":
        return f"derived by {info.path}:{line}"
    return f"{info.path}:{line}" if info.kind == "db" else f"{info.path} row {line}"


def _evidence_rows(network: GroundNetwork, predicate: str) -> tuple[np.ndarray, np.ndarray]:
    frame = network.evidence.relations[predicate].frame
    return frame["source"].to_numpy(), frame["row"].to_numpy()


class Occurrences:
    """Where each atom occurs: (block, row) pairs, built once for explaining many atoms
    (with the evidence sources per predicate, also looked up once)."""

    def evidence_rows(self, predicate: str) -> tuple[np.ndarray, np.ndarray]:
        """Source index and row (line) of every evidence atom of ``predicate``."""
        if predicate not in self._evidence:
            self._evidence[predicate] = _evidence_rows(self._network, predicate)
        return self._evidence[predicate]

    def plan(self, block: GroundBlock) -> _Plan:
        """The block's ``_Plan``, prepared once."""
        found = self._plans.get(id(block))
        if found is None:
            found = self._plans[id(block)] = _plan(self._network, block)
        return found

    def __init__(self, network: GroundNetwork) -> None:
        self._network = network
        self._evidence: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._plans: dict[int, _Plan] = {}  # by id() of a block of ``network`` (which keeps them alive)
        atoms, blocks, rows = [], [], []
        for number, block in enumerate(network.blocks):
            for leaf_atoms in block.leaf_atoms:
                present = np.flatnonzero(leaf_atoms)
                atoms.append(np.asarray(leaf_atoms)[present].astype(np.int64))
                blocks.append(np.full(present.size, number, dtype=np.int64))
                rows.append(present.astype(np.int64))
        empty = np.empty(0, dtype=np.int64)
        atom = np.concatenate(atoms) if atoms else empty
        numbers = np.concatenate(blocks) if blocks else empty
        row = np.concatenate(rows) if rows else empty
        triples = np.unique(np.stack([atom, numbers, row], axis=1), axis=0) if atom.size else np.empty((0, 3), np.int64)
        self._atoms = triples[:, 0]
        self._places = triples[:, 1:]

    def of(self, atom_id: int) -> np.ndarray:
        """(block, row) pairs, sorted, of the ground formulas that mention the atom."""
        start, stop = np.searchsorted(self._atoms, [atom_id, atom_id + 1])
        return self._places[start:stop]


def explain_atom(
    network: GroundNetwork, solution: Solution, text: str, occurrences: Occurrences | None = None
) -> Proof:
    """The proof of one atom's MAP value (``occurrences`` speeds up explaining many)."""
    predicate, key = find_atom(network, text)
    return explain_key(network, solution, predicate, key, occurrences)


def explain_key(
    network: GroundNetwork, solution: Solution, predicate: str, key: int, occurrences: Occurrences | None = None
) -> Proof:
    """The proof of the atom ``key`` of ``predicate``."""
    canonical = network.key_text(predicate, np.array([key]))[0]
    value, decided_by, source = atom_value(network, solution, predicate, key)
    atom_id = int(network.atoms.ids(predicate, np.array([key]))[0])
    margin = None
    if decided_by == "no formula":
        margin = Decimal(0)
    elif atom_id and atom_id in solution.margins:
        scaled = solution.margins[atom_id]
        # None: no world with the atom flipped satisfies the hard formulas.
        margin = Decimal("Infinity") if scaled is None else Decimal(scaled) / solution.scale
    supporting: list[GroundFormulaProof] = []
    opposing: list[GroundFormulaProof] = []
    neutral = 0
    if atom_id:
        occurrences = occurrences or Occurrences(network)
        for block_index, row in occurrences.of(atom_id).tolist():
            proof = _ground_formula(network, solution, network.blocks[block_index], row, atom_id, occurrences)
            if proof.effect > 0:
                supporting.append(proof)
            elif proof.effect < 0:
                opposing.append(proof)
            else:
                neutral += 1
    # Ties are broken by the formula's text before its location, so neither the order nor the
    # names of the rule files change the order of a proof.
    supporting.sort(key=lambda item: (-item.effect, item.rule, item.substitution, item.location))
    opposing.sort(key=lambda item: (item.effect, item.rule, item.substitution, item.location))
    return Proof(canonical, value, decided_by, source, margin, tuple(supporting), tuple(opposing), neutral)


def ground_formula_citations(
    network: GroundNetwork, solution: Solution, block_index: int, row: int
) -> GroundFormulaProof:
    """A ground formula with its evidence, for unsatisfiable cores (open atoms have no value)."""
    proof = _ground_formula(network, solution, network.blocks[block_index], row, 0)
    atoms = tuple(
        EvidenceCitation(atom.atom, atom.value, "open") if atom.source == "inferred" else atom
        for atom in proof.atoms
    )
    return GroundFormulaProof(
        proof.rule, proof.location, proof.weight, proof.substitution, proof.satisfied, proof.effect, atoms
    )


@dataclass(frozen=True, slots=True)
class _Leaf:
    """A leaf of a block's tree, prepared once: its literal (None for a comparison) and, per
    argument, the constant's text or the substitution slot it takes its constant from."""

    literal: Lit | None
    args: tuple[str | int, ...]


@dataclass(slots=True)
class _Plan:
    """What explaining any grounding of one block needs that does not depend on the grounding:
    its leaves, rule text, location, weight and effect sizes, and the tree's value for each
    combination of leaf states met so far (a formula has few leaves, so few combinations)."""

    leaves: tuple[_Leaf, ...]
    rule: str
    location: str
    weight: str
    magnitude: Decimal
    kleene: dict[tuple[int, ...], int]


def _plan(network: GroundNetwork, block: GroundBlock) -> _Plan:
    from reasoner.normalize import Const

    prepared = []
    for leaf in leaves(block.tree):
        if isinstance(leaf, Cmp):
            prepared.append(_Leaf(None, ()))
            continue
        args = tuple(
            network.constants.text(network.constants.id(arg.value)) if isinstance(arg, Const) else int(arg.slot)
            for arg in leaf.args
        )
        prepared.append(_Leaf(leaf, args))
    # The block's weight is |w| (a formula 'w: F' has one block per distinct value of w).
    weight = None if block.weight is None else (-block.weight if block.negated else block.weight)
    statement = block.formula.statement
    return _Plan(
        leaves=tuple(prepared),
        rule=statement.text,
        location=f"{statement.span.file}:{statement.span.line}",
        weight="hard" if weight is None else str(weight),
        magnitude=Decimal("Infinity") if weight is None else abs(weight),
        kleene={},
    )


def _ground_formula(
    network: GroundNetwork,
    solution: Solution,
    block: GroundBlock,
    row: int,
    atom_id: int,
    occurrences: Occurrences | None = None,
) -> GroundFormulaProof:
    plan = occurrences.plan(block) if occurrences else _plan(network, block)
    constant_text = network.constants.text
    texts = [constant_text(constant) for constant in block.substitutions[row].tolist()]
    substitution = tuple(zip(block.formula.variables, texts, strict=True))
    states_now: list[int] = []
    states_flipped: list[int] = []
    citations: list[EvidenceCitation] = []
    seen: set[str] = set()
    leaf_columns = zip(plan.leaves, block.leaf_states, block.leaf_atoms, block.leaf_evidence, strict=True)
    for leaf, states, atoms, evidence in leaf_columns:
        state = int(states[row])
        atom = int(atoms[row])
        literal = leaf.literal
        if state == _UNKNOWN and atom:
            assert literal is not None  # a comparison is never unknown
            value = bool(solution.values[atom])
            now = value == literal.positive
            flipped = now if atom != atom_id else not now
            states_now.append(_TRUE if now else _FALSE)
            states_flipped.append(_TRUE if flipped else _FALSE)
        else:
            states_now.append(state)
            states_flipped.append(state)
        if literal is None:
            continue
        parts = [arg if isinstance(arg, str) else texts[arg] for arg in leaf.args]
        text = f"{literal.predicate}({','.join(parts)})"
        if text in seen:
            continue
        seen.add(text)
        if state == _UNKNOWN and atom:
            citations.append(EvidenceCitation(text, bool(solution.values[atom]), "inferred"))
        else:
            atom_true = bool((state == _TRUE) == literal.positive)
            row_index = int(evidence[row])
            source = _source(network, literal.predicate, row_index, occurrences) if row_index >= 0 else "closed world"
            citations.append(EvidenceCitation(text, atom_true, source))
    now = _evaluate(plan, block.tree, tuple(states_now)) == _TRUE
    flipped = _evaluate(plan, block.tree, tuple(states_flipped)) == _TRUE
    # The block's tree is negated for negative weights: "true" means "not costly".
    effect = Decimal(0)
    if now != flipped:
        effect = plan.magnitude if now else -plan.magnitude
    return GroundFormulaProof(
        rule=plan.rule,
        location=plan.location,
        weight=plan.weight,
        substitution=substitution,
        satisfied=now != block.negated,
        effect=effect,
        atoms=tuple(citations),
    )


_FALSE, _TRUE, _UNKNOWN = int(FALSE), int(TRUE), int(UNKNOWN)


def _evaluate(plan: _Plan, tree: Node, states: tuple[int, ...]) -> int:
    """``_kleene`` of the block's tree for these leaf states, remembered in the block's plan."""
    found = plan.kleene.get(states)
    if found is None:
        found = plan.kleene[states] = _kleene(tree, iter(states))
    return found


def _kleene(node: Node, states: Iterator[int]) -> int:
    """``ground.evaluate`` for one grounding, in plain Python (proofs evaluate one at a time).

    Leaves take their states from ``states`` in the same order (every child is visited).
    """
    if isinstance(node, (Lit, Cmp)):
        return next(states)
    if isinstance(node, Truth):
        return _TRUE if node.value else _FALSE
    assert isinstance(node, Junction)
    children = [_kleene(child, states) for child in node.children]
    if node.kind == "and":
        if _FALSE in children:
            return _FALSE
        return _TRUE if all(child == _TRUE for child in children) else _UNKNOWN
    if _TRUE in children:
        return _TRUE
    return _FALSE if all(child == _FALSE for child in children) else _UNKNOWN


def render_proof(proof: Proof) -> str:
    """The proof as text a reader can check line by line."""
    lines = [f"{proof.atom} = {'true' if proof.value else 'false'}"]
    if proof.decided_by == "evidence":
        lines.append(f"  given as evidence ({proof.source})")
    elif proof.decided_by == "no formula":
        lines.append("  no ground formula mentions it: false by default (margin 0)")
    elif proof.margin is None:
        lines.append("  inferred (margin not computed: only query atoms get margins)")
    elif proof.margin.is_infinite():
        lines.append(f"  inferred: no world with it {'false' if proof.value else 'true'} satisfies the hard formulas")
    else:
        flipped = "false" if proof.value else "true"
        lines.append(f"  inferred: the best world with it {flipped} costs {decimal_text(proof.margin)} more")
    for title, items in (("supporting", proof.supporting), ("opposing", proof.opposing)):
        if not items:
            continue
        lines.append(f"  {title} ({len(items)}):")
        for item in items:
            effect = "hard" if item.effect.is_infinite() else decimal_text(abs(item.effect))
            lines.append(f"    [{effect}] {item.rule}    ({item.location})")
            if item.substitution:
                lines.append("        with " + ", ".join(f"{name}={value}" for name, value in item.substitution))
            for atom in item.atoms:
                lines.append(f"        {atom.atom} = {'true' if atom.value else 'false'}  [{atom.source}]")
    if proof.neutral:
        plural = "s mention" if proof.neutral != 1 else " mentions"
        lines.append(f"  {proof.neutral} other ground formula{plural} it without effect")
    return "\n".join(lines)


def decimal_text(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text
