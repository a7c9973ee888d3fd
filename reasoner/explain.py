"""Stage 7: ``Solution`` + ``GroundNetwork`` → ``Proof``: why an atom has its MAP value.

A proof lists the ground formulas that mention the atom. Each is weighed by
what it would cost to flip the atom alone: formulas whose cost would rise
*support* the value, formulas whose cost would fall *oppose* it. Every ground
formula carries its rule (text, file:line), its substitution and the evidence
atoms it rests on with their sources (file and line, or table and row).
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from decimal import Decimal
from typing import cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from reasoner.constants import GROUND_ATOM
from reasoner.errors import ArgumentError, Option
from reasoner.evidence import parse_constant, split_args
from reasoner.ground import FALSE, TRUE, UNKNOWN, GroundBlock, GroundNetwork, evaluate
from reasoner.normalize import Cmp, Lit, leaves
from reasoner.solve import Solution

__all__ = [
    "EvidenceCitation",
    "GroundFormulaProof",
    "Occurrences",
    "Proof",
    "decimal_json",
    "decimal_text",
    "ProofColumns",
    "explain_atom",
    "explain_columns",
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


def _source(network: GroundNetwork, predicate: str, row: int, occurrences: Occurrences | None = None) -> str:
    if occurrences is not None:
        return occurrences.source_texts(predicate, [row])[0]
    sources, lines = _evidence_rows(network, predicate)
    return _source_prefix(network, int(sources[row])) + str(int(lines[row]))


def _source_prefix(network: GroundNetwork, source: int) -> str:
    """What a citation of ``source`` says before its line or row number."""
    info = network.evidence.sources[source]
    if info.kind == "rules":
        return f"derived by {info.path}:"
    return f"{info.path}:" if info.kind == "db" else f"{info.path} row "


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

    def source_texts(self, predicate: str, rows: list[int]) -> list[str]:
        """Where each of the evidence atoms ``rows`` of ``predicate`` comes from ("facts.csv row 17",
        "evidence.db:3", "derived by rules.mln:4"), each made once: many formulas cite one atom."""
        made = self._texts.setdefault(predicate, {})
        missing = [row for row in dict.fromkeys(rows) if row not in made]
        if missing:
            sources, lines = self.evidence_rows(predicate)
            wanted = np.asarray(missing, dtype=np.int64)
            prefixes = {source: _source_prefix(self._network, source) for source in np.unique(sources[wanted]).tolist()}
            for row, source, line in zip(missing, sources[wanted].tolist(), lines[wanted].tolist(), strict=True):
                made[row] = prefixes[source] + str(line)
        return [made[row] for row in rows]

    def source_array(self, predicate: str, rows: np.ndarray) -> pa.Array:
        """``source_texts`` of the evidence atoms ``rows`` as Arrow text, made in Arrow: each source's
        prefix once, then every row's line or row number (``str`` of an integer, as Arrow writes it)."""
        if not len(rows):
            return pa.array([], pa.large_string())
        sources, lines = self.evidence_rows(predicate)
        if not np.issubdtype(lines.dtype, np.integer):  # numbers as Python writes them
            return pa.array(self.source_texts(predicate, np.asarray(rows).tolist()), pa.large_string())
        sources, lines = sources[rows], lines[rows]
        if (sources == sources[0]).all():  # most predicates' rows come from one source
            prefix: pa.Array | pa.Scalar = pa.scalar(_source_prefix(self._network, int(sources[0])), pa.large_string())
        else:
            distinct, inverse = np.unique(sources, return_inverse=True)
            prefix = pa.array(
                [_source_prefix(self._network, source) for source in distinct.tolist()], pa.large_string()
            ).take(pa.array(inverse.reshape(-1), pa.int64()))
        return pc.binary_join_element_wise(
            prefix,
            pc.cast(pa.array(lines, pa.int64()), pa.large_string()),
            pa.scalar("", pa.large_string()),
        )

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
        self._texts: dict[str, dict[int, str]] = {}  # per predicate, evidence row → ``source_texts``
        # (atom, value, source) → its citation: an atom is cited by many formulas, made once
        self.citations: dict[tuple[str, bool, str], EvidenceCitation] = {}
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
        triples = np.stack([atom, numbers, row], axis=1)[np.lexsort((row, numbers, atom))]
        if len(triples):  # an atom twice in one ground formula: once
            triples = triples[np.concatenate([[True], (triples[1:] != triples[:-1]).any(axis=1)])]
        self._atoms = triples[:, 0]
        self._places = triples[:, 1:]

    def of(self, atom_id: int) -> np.ndarray:
        """(block, row) pairs, sorted, of the ground formulas that mention the atom."""
        start, stop = np.searchsorted(self._atoms, [atom_id, atom_id + 1])
        return self._places[start:stop]

    def of_many(self, atom_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every (block, row) pair of ``of`` for each of ``atom_ids``, concatenated in their order:
        the position in ``atom_ids`` each pair belongs to, and the pairs."""
        starts = np.searchsorted(self._atoms, atom_ids)
        counts = np.searchsorted(self._atoms, atom_ids + 1) - starts
        owners = np.repeat(np.arange(len(atom_ids), dtype=np.int64), counts)
        # positions starts[i] .. starts[i] + counts[i] - 1, for every i
        offsets = np.arange(len(owners), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
        return owners, self._places[np.repeat(starts, counts) + offsets]


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
    return explain_keys(network, solution, predicate, np.array([key], dtype=np.int64), occurrences)[0]


def explain_keys(
    network: GroundNetwork,
    solution: Solution,
    predicate: str,
    keys: np.ndarray,
    occurrences: Occurrences | None = None,
) -> list[Proof]:
    """The proofs of the atoms ``keys`` of ``predicate``, in their order (``explain_key`` of each):
    the ground formulas of all of them are weighed block by block, in numpy."""
    keys = np.asarray(keys, dtype=np.int64)
    canonical = network.key_text(predicate, keys)
    state, evidence_rows = network.predicates[predicate].lookup(keys)
    atom_ids = network.atoms.ids(predicate, keys)
    occurrences = occurrences or Occurrences(network)
    owners, places = occurrences.of_many(atom_ids[atom_ids != 0])
    owners = np.flatnonzero(atom_ids)[owners]
    formulas: list[list[GroundFormulaProof]] = [[] for _ in range(len(keys))]
    if len(owners):
        order = np.argsort(places[:, 0], kind="stable")  # by block, each atom's formulas in their order
        blocks = places[order, 0]
        bounds = np.flatnonzero(np.diff(blocks)) + 1
        for part in np.split(order, bounds):
            block = network.blocks[int(places[part[0], 0])]
            found = _ground_formulas(network, solution, block, places[part, 1], atom_ids[owners[part]], occurrences)
            # each atom's formulas by block, then row: the order of ``Occurrences.of``
            for owner, proof in zip(owners[part].tolist(), found, strict=True):
                formulas[owner].append(proof)
    heads = _heads(network, solution, predicate, state, evidence_rows, atom_ids, occurrences)
    proofs = []
    for number, (text, value, decided_by, source, margin) in enumerate(zip(canonical, *heads, strict=True)):
        supporting = [proof for proof in formulas[number] if proof.effect > 0]
        opposing = [proof for proof in formulas[number] if proof.effect < 0]
        neutral = len(formulas[number]) - len(supporting) - len(opposing)
        # Ties are broken by the formula's text before its location, so neither the order nor the
        # names of the rule files change the order of a proof.
        supporting.sort(key=lambda item: (-item.effect, item.rule, item.substitution, item.location))
        opposing.sort(key=lambda item: (item.effect, item.rule, item.substitution, item.location))
        proofs.append(Proof(text, value, decided_by, source, margin, tuple(supporting), tuple(opposing), neutral))
    return proofs


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
    its leaves, rule text, location, weight and effect size."""

    leaves: tuple[_Leaf, ...]
    rule: str
    location: str
    weight: str
    magnitude: Decimal


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
    )


def _ground_formula(
    network: GroundNetwork,
    solution: Solution,
    block: GroundBlock,
    row: int,
    atom_id: int,
    occurrences: Occurrences | None = None,
) -> GroundFormulaProof:
    rows, atoms = np.array([row], dtype=np.int64), np.array([atom_id], dtype=np.int64)
    return _ground_formulas(network, solution, block, rows, atoms, occurrences)[0]


def _ground_formulas(
    network: GroundNetwork,
    solution: Solution,
    block: GroundBlock,
    rows: np.ndarray,
    atom_ids: np.ndarray,
    occurrences: Occurrences | None = None,
) -> list[GroundFormulaProof]:
    """The groundings ``rows`` of ``block``, each weighed for flipping its atom of ``atom_ids``
    (0: none): leaf states, the tree's value and the effect in numpy, a row at a time only the
    texts of its substitution and citations."""
    plan = occurrences.plan(block) if occurrences else _plan(network, block)
    made = occurrences.citations if occurrences else {}
    count = len(rows)
    constant_text = network.constants.text
    # per variable, the text of its constant in each row
    columns = [[constant_text(constant) for constant in column] for column in block.substitutions[rows].T.tolist()]
    now_states, flipped_states = [], []
    leaf_citations: list[list[EvidenceCitation]] = []  # per cited leaf, per row
    leaf_texts: dict[str, list[tuple[tuple[str | int, ...], list[str]]]] = {}  # per predicate: args, atom texts
    cited_leaves: set[tuple[str, tuple[str | int, ...]]] = set()
    for leaf, all_states, all_atoms, all_evidence in zip(
        plan.leaves, block.leaf_states, block.leaf_atoms, block.leaf_evidence, strict=True
    ):
        states = np.asarray(all_states)[rows]
        literal = leaf.literal
        if literal is None:  # a comparison: never unknown, cites nothing
            now_states.append(states)
            flipped_states.append(states)
            continue
        leaf_truth = _leaf_truth(literal, states, np.asarray(all_atoms)[rows], solution, atom_ids)
        inferred = leaf_truth.inferred
        now_states.append(leaf_truth.now)
        flipped_states.append(leaf_truth.flipped)
        if (literal.predicate, leaf.args) in cited_leaves:  # the same atom as an earlier leaf: cited once
            continue
        cited_leaves.add((literal.predicate, leaf.args))
        evidence = np.asarray(all_evidence)[rows]
        sources: list[str] = ["closed world"] * count
        cited = ~inferred & (evidence >= 0)
        if cited.any():
            rows_cited = evidence[cited].tolist()
            texts_cited = (
                occurrences.source_texts(literal.predicate, rows_cited)
                if occurrences
                else [_source(network, literal.predicate, row_index) for row_index in rows_cited]
            )
            for where, text in zip(np.flatnonzero(cited).tolist(), texts_cited, strict=True):
                sources[where] = text
        for where in np.flatnonzero(inferred).tolist():
            sources[where] = "inferred"
        # the atom's truth: its MAP value when inferred, else the literal's state read back through its sign
        truth = leaf_truth.truth.tolist()
        head = f"{literal.predicate}("
        arguments = [[arg] * count if isinstance(arg, str) else columns[arg] for arg in leaf.args]
        if len(arguments) == 1:
            texts = [head + text + ")" for text in arguments[0]]
        elif arguments:
            texts = [head + ",".join(parts) + ")" for parts in zip(*arguments, strict=True)]
        else:
            texts = [head + ")"] * count
        leaf_texts.setdefault(literal.predicate, []).append((leaf.args, texts))
        leaf_citations.append(
            [
                made.get(key) or made.setdefault(key, EvidenceCitation(*key))
                for key in zip(texts, truth, sources, strict=True)
            ]
        )
    # Rows where leaves of one predicate with different arguments name the same atom (two variables
    # bound to one constant): the atom is cited once, at its first leaf.
    # Two leaves with different constants at one argument never name one atom: not compared.
    repeated = np.zeros(count, dtype=bool)
    for texts_of in leaf_texts.values():
        for number, (earlier_args, earlier) in enumerate(texts_of):
            for later_args, later in texts_of[number + 1 :]:
                if any(
                    isinstance(first, str) and isinstance(second, str) and first != second
                    for first, second in zip(earlier_args, later_args, strict=True)
                ):
                    continue
                repeated |= np.array([a == b for a, b in zip(earlier, later, strict=True)], dtype=bool)
    now_value = evaluate(block.tree, now_states, count) == TRUE
    flipped_value = evaluate(block.tree, flipped_states, count) == TRUE
    # The block's tree is negated for negative weights: "true" means "not costly".
    changed = (now_value != flipped_value).tolist()
    variables = block.formula.variables
    lines = list(zip(*columns, strict=True)) if columns else [()] * count
    per_row = zip(*leaf_citations, strict=True) if leaf_citations else [()] * count
    found = []
    for line, is_now, is_changed, again, citations in zip(
        lines, now_value.tolist(), changed, repeated.tolist(), per_row, strict=True
    ):
        if again:
            once: dict[str, EvidenceCitation] = {}
            for citation in citations:
                once.setdefault(citation.atom, citation)
            citations = tuple(once.values())
        effect = (plan.magnitude if is_now else -plan.magnitude) if is_changed else Decimal(0)
        found.append(
            GroundFormulaProof(
                rule=plan.rule,
                location=plan.location,
                weight=plan.weight,
                substitution=tuple(zip(variables, line, strict=True)),
                satisfied=is_now != block.negated,
                effect=effect,
                atoms=citations,
            )
        )
    return found


_FALSE, _TRUE, _UNKNOWN = int(FALSE), int(TRUE), int(UNKNOWN)


class _LeafTruth(typing.NamedTuple):
    """A cited leaf in the rows explained: its states now (an unknown one read from the solution)
    and with the explained atom flipped, whether its atom is inferred (not evidence), and the atom's
    truth (its MAP value when inferred, else the literal's state read back through its sign)."""

    now: np.ndarray
    flipped: np.ndarray
    inferred: np.ndarray
    truth: np.ndarray


def _leaf_truth(
    literal: Lit, states: np.ndarray, atoms: np.ndarray, solution: Solution, atom_ids: np.ndarray
) -> _LeafTruth:
    """``_LeafTruth`` of a leaf of ``literal`` from its ``states`` and ``atoms`` in the rows explained,
    each row's explained atom in ``atom_ids`` (0: none); shared by ``_ground_formulas`` and
    ``_block_columns``."""
    inferred = (states == _UNKNOWN) & (atoms != 0)
    values = solution.values[atoms].astype(bool)  # values[0] (no atom): unused
    now = values == literal.positive
    flipped = now ^ (atoms == atom_ids)
    return _LeafTruth(
        np.where(inferred, np.where(now, TRUE, FALSE), states).astype(np.int8),
        np.where(inferred, np.where(flipped, TRUE, FALSE), states).astype(np.int8),
        inferred,
        np.where(inferred, values, (states == _TRUE) == literal.positive),
    )


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


@dataclass(frozen=True, slots=True)
class ProofColumns:
    """The proofs of many atoms of one predicate, as ``explain_keys`` gives them, held as columns:
    per atom its head (``atoms`` … ``neutral``) and its formulas (``formula_offsets``: atom ``i``'s are
    ``formula_offsets[i]:formula_offsets[i + 1]``, its ``supporting[i]`` supporting ones first, each
    group in its proof's order); per formula its rule, substitution, satisfaction and effect, and its
    cited atoms (``citation_offsets``, the same way) as Arrow text and numpy values: a citation is a
    row of three arrays, not a Python object (a partition cites about as many atoms as it has rows)."""

    atoms: list[str]
    values: list[bool]
    decided_by: list[str]
    sources: list[str | None]
    margins: list[Decimal | None]
    neutral: list[int]
    formula_offsets: np.ndarray
    supporting: list[int]
    rules: list[str]
    locations: list[str]
    weights: list[str]
    substitutions: list[tuple[tuple[str, str], ...]]
    satisfied: list[bool]
    effects: list[Decimal]
    citation_offsets: np.ndarray
    citation_atoms: pa.Array
    citation_values: np.ndarray
    citation_sources: pa.Array

    def __len__(self) -> int:
        return len(self.atoms)

    def proof(self, number: int) -> Proof:
        """Atom ``number``'s ``Proof`` (the one ``explain_keys`` gives)."""
        start, stop = self.formula_offsets[number : number + 2].tolist()
        formulas = []
        for formula in range(start, stop):
            first, last = self.citation_offsets[formula : formula + 2].tolist()
            citations = tuple(
                EvidenceCitation(atom, value, source)
                for atom, value, source in zip(
                    self.citation_atoms[first:last].to_pylist(),
                    self.citation_values[first:last].tolist(),
                    self.citation_sources[first:last].to_pylist(),
                    strict=True,
                )
            )
            formulas.append(
                GroundFormulaProof(
                    self.rules[formula],
                    self.locations[formula],
                    self.weights[formula],
                    self.substitutions[formula],
                    self.satisfied[formula],
                    self.effects[formula],
                    citations,
                )
            )
        middle = self.supporting[number]
        return Proof(
            self.atoms[number],
            self.values[number],
            self.decided_by[number],
            self.sources[number],
            self.margins[number],
            tuple(formulas[:middle]),
            tuple(formulas[middle:]),
            self.neutral[number],
        )


@dataclass(frozen=True, slots=True)
class _BlockColumns:
    """``_ground_formulas`` of some rows of one block, as columns (``_block_columns``)."""

    plan: _Plan
    variables: tuple[str, ...]
    changed: np.ndarray  # bool per row: flipping the atom changes the formula's cost
    now: np.ndarray  # bool per row: the formula's (possibly negated) tree is true now
    satisfied: np.ndarray  # bool per row
    columns: list[list[str]]  # per variable, its constant's text per row
    citation_counts: np.ndarray  # per row
    citation_atoms: pa.Array  # row after row, each row's cited leaves in order
    citation_values: np.ndarray
    citation_sources: pa.Array


def explain_columns(
    network: GroundNetwork,
    solution: Solution,
    predicate: str,
    keys: np.ndarray,
    occurrences: Occurrences | None = None,
) -> ProofColumns:
    """``explain_keys`` as ``ProofColumns``: the same proofs, their citations made as arrays block by block."""
    keys = np.asarray(keys, dtype=np.int64)
    canonical = network.key_text(predicate, keys)
    state, evidence_rows = network.predicates[predicate].lookup(keys)
    atom_ids = network.atoms.ids(predicate, keys)
    occurrences = occurrences or Occurrences(network)
    owners, places = occurrences.of_many(atom_ids[atom_ids != 0])
    owners = np.flatnonzero(atom_ids)[owners]
    parts: list[tuple[np.ndarray, _BlockColumns]] = []
    if len(owners):
        order = np.argsort(places[:, 0], kind="stable")  # by block, each atom's formulas in their order
        bounds = np.flatnonzero(np.diff(places[order, 0])) + 1
        for part in np.split(order, bounds):
            block = network.blocks[int(places[part[0], 0])]
            found = _block_columns(network, solution, block, places[part, 1], atom_ids[owners[part]], occurrences)
            parts.append((owners[part], found))
    # every formula with an effect, in the order of ``explain_keys``'s proofs
    totals = np.zeros(len(keys), dtype=np.int64)
    entries: list[tuple[object, ...]] = []
    rules: list[str] = []
    locations: list[str] = []
    weights: list[str] = []
    substitutions: list[tuple[tuple[str, str], ...]] = []
    satisfied: list[bool] = []
    effects: list[Decimal] = []
    citation_base = 0
    starts_of: list[np.ndarray] = []
    counts_of: list[np.ndarray] = []
    for part_owners, found in parts:
        np.add.at(totals, part_owners, 1)
        plan = found.plan
        # a formula whose cost the flip changes, by a weight other than 0 (else it is neutral)
        kept = np.flatnonzero(found.changed) if plan.magnitude else np.empty(0, dtype=np.int64)
        counts = found.citation_counts
        starts_of.append((np.cumsum(counts) - counts + citation_base)[kept])
        counts_of.append(counts[kept])
        citation_base += int(counts.sum())
        rows_kept = kept.tolist()
        picked = [[column[row] for row in rows_kept] for column in found.columns]
        variables = found.variables
        part_substitutions = (
            [tuple(zip(variables, line, strict=True)) for line in zip(*picked, strict=True)]
            if picked
            else [()] * len(rows_kept)
        )
        positive, negative = plan.magnitude, -plan.magnitude
        now = found.now[kept].tolist()
        base = len(rules)
        # Ties are broken by the formula's text before its location (``explain_keys``).
        entries.extend(
            (owner, 0, negative, plan.rule, substitution, plan.location, base + number)
            if is_now
            else (owner, 1, negative, plan.rule, substitution, plan.location, base + number)
            for number, (owner, is_now, substitution) in enumerate(
                zip(part_owners[kept].tolist(), now, part_substitutions, strict=True)
            )
        )
        rules.extend([plan.rule] * len(rows_kept))
        locations.extend([plan.location] * len(rows_kept))
        weights.extend([plan.weight] * len(rows_kept))
        substitutions.extend(part_substitutions)
        satisfied.extend(found.satisfied[kept].tolist())
        effects.extend([positive if is_now else negative for is_now in now])
    entries.sort()
    ordering = [cast(int, entry[-1]) for entry in entries]
    formula_owners = np.array([entry[0] for entry in entries], dtype=np.int64)
    kept_per_atom = np.bincount(formula_owners, minlength=len(keys)) if len(formula_owners) else np.zeros(
        len(keys), dtype=np.int64
    )
    supporting_per_atom = (
        np.bincount(formula_owners[[entry[1] == 0 for entry in entries]], minlength=len(keys))
        if len(formula_owners)
        else np.zeros(len(keys), dtype=np.int64)
    )
    formula_offsets = np.concatenate([[0], np.cumsum(kept_per_atom)]).astype(np.int64)
    # the citations of the formulas in their new order
    first = np.concatenate(starts_of)[ordering] if ordering else np.empty(0, dtype=np.int64)
    lengths = np.concatenate(counts_of)[ordering] if ordering else np.empty(0, dtype=np.int64)
    offsets = np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    taken = np.repeat(first, lengths) + offsets
    atoms_of = [found.citation_atoms for _, found in parts]
    all_atoms = pa.concat_arrays(atoms_of) if atoms_of else pa.array([], pa.large_string())
    all_sources = (
        pa.concat_arrays([found.citation_sources for _, found in parts]) if parts else pa.array([], pa.large_string())
    )
    all_values = (
        np.concatenate([found.citation_values for _, found in parts]) if parts else np.empty(0, dtype=bool)
    )
    index = pa.array(taken, pa.int64())
    heads = _heads(network, solution, predicate, state, evidence_rows, atom_ids, occurrences)
    return ProofColumns(
        atoms=canonical,
        values=heads[0],
        decided_by=heads[1],
        sources=heads[2],
        margins=heads[3],
        neutral=(totals - kept_per_atom).tolist(),
        formula_offsets=formula_offsets,
        supporting=supporting_per_atom.tolist(),
        rules=[rules[number] for number in ordering],
        locations=[locations[number] for number in ordering],
        weights=[weights[number] for number in ordering],
        substitutions=[substitutions[number] for number in ordering],
        satisfied=[satisfied[number] for number in ordering],
        effects=[effects[number] for number in ordering],
        citation_offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        citation_atoms=all_atoms.take(index),
        citation_values=all_values[taken],
        citation_sources=all_sources.take(index),
    )


def _heads(
    network: GroundNetwork,
    solution: Solution,
    predicate: str,
    state: np.ndarray,
    evidence_rows: np.ndarray,
    atom_ids: np.ndarray,
    occurrences: Occurrences | None,
) -> tuple[list[bool], list[str], list[str | None], list[Decimal | None]]:
    """Per atom: its value, what decided it, its evidence source and its margin (``Proof``'s head)."""
    values: list[bool] = []
    decided: list[str] = []
    sources: list[str | None] = []
    margins: list[Decimal | None] = []
    for value_state, row, atom_id in zip(state.tolist(), evidence_rows.tolist(), atom_ids.tolist(), strict=True):
        source: str | None
        if value_state != _UNKNOWN:
            source = _source(network, predicate, row, occurrences) if row >= 0 else "closed world"
            value, decided_by = value_state == _TRUE, "evidence"
        else:
            source, value = None, bool(solution.values[atom_id]) if atom_id else False
            decided_by = "inference" if atom_id else "no formula"
        margin = None
        if decided_by == "no formula":
            margin = Decimal(0)
        elif atom_id and atom_id in solution.margins:
            scaled = solution.margins[atom_id]
            # None: no world with the atom flipped satisfies the hard formulas.
            margin = Decimal("Infinity") if scaled is None else Decimal(scaled) / solution.scale
        values.append(value)
        decided.append(decided_by)
        sources.append(source)
        margins.append(margin)
    return values, decided, sources, margins


def _block_columns(
    network: GroundNetwork,
    solution: Solution,
    block: GroundBlock,
    rows: np.ndarray,
    atom_ids: np.ndarray,
    occurrences: Occurrences | None,
) -> _BlockColumns:
    """``_ground_formulas`` as columns: the same states, effects and citations (a leaf naming the
    atom an earlier leaf of the row names is not cited again), the citations' texts made in Arrow."""
    plan = occurrences.plan(block) if occurrences else _plan(network, block)
    count = len(rows)
    constant_text = network.constants.text
    columns = [[constant_text(constant) for constant in column] for column in block.substitutions[rows].T.tolist()]
    arrow_columns: dict[int, pa.Array] = {}
    now_states, flipped_states = [], []
    cited_atoms: list[pa.Array] = []
    cited_values: list[np.ndarray] = []
    cited_sources: list[pa.Array] = []
    cited_keep: list[np.ndarray] = []
    leaf_args: dict[str, list[tuple[tuple[str | int, ...], int]]] = {}  # per predicate: cited leaves' args
    for leaf, all_states, all_atoms, all_evidence in zip(
        plan.leaves, block.leaf_states, block.leaf_atoms, block.leaf_evidence, strict=True
    ):
        states = np.asarray(all_states)[rows]
        literal = leaf.literal
        if literal is None:  # a comparison: never unknown, cites nothing
            now_states.append(states)
            flipped_states.append(states)
            continue
        leaf_truth = _leaf_truth(literal, states, np.asarray(all_atoms)[rows], solution, atom_ids)
        inferred = leaf_truth.inferred
        now_states.append(leaf_truth.now)
        flipped_states.append(leaf_truth.flipped)
        earlier = leaf_args.setdefault(literal.predicate, [])
        if any(args == leaf.args for args, _ in earlier):  # the same atom as an earlier leaf: cited once
            continue
        # the atom's text: the predicate, then its arguments' texts (a constant's or a variable's per row)
        pieces: list[pa.Array | str] = [f"{literal.predicate}("]
        for number, arg in enumerate(leaf.args):
            text = ("," if number else "") + (arg if isinstance(arg, str) else "")
            if isinstance(pieces[-1], str):
                pieces[-1] += text
            elif text:
                pieces.append(text)
            if not isinstance(arg, str):
                if arg not in arrow_columns:
                    arrow_columns[arg] = pa.array(columns[arg], pa.large_string())
                pieces.append(arrow_columns[arg])
        if isinstance(pieces[-1], str):
            pieces[-1] += ")"
        else:
            pieces.append(")")
        if len(pieces) == 1:
            atom_text = pa.array([pieces[0]] * count, pa.large_string())
        else:
            parts = [piece if isinstance(piece, pa.Array) else pa.scalar(piece, pa.large_string()) for piece in pieces]
            atom_text = pc.binary_join_element_wise(*parts, pa.scalar("", pa.large_string()))
        # Rows where an earlier leaf of the predicate names the same atom (two variables bound to one
        # constant): cited once, at its first leaf. Leaves with different constants at one argument never do.
        keep = np.ones(count, dtype=bool)
        for args, position in earlier:
            if not any(
                isinstance(first, str) and isinstance(second, str) and first != second
                for first, second in zip(args, leaf.args, strict=True)
            ):
                keep &= ~pc.equal(cited_atoms[position], atom_text).to_numpy(zero_copy_only=False)
        earlier.append((leaf.args, len(cited_atoms)))
        evidence = np.asarray(all_evidence)[rows]
        # where the atom's value comes from: its evidence row, -1 the closed world, -2 inferred
        origin = np.where(inferred, -2, np.where(evidence >= 0, evidence, -1)).astype(np.int64)
        distinct, inverse = np.unique(origin, return_inverse=True)
        unsourced = int(np.searchsorted(distinct, 0))  # -2 and -1 first: inferred, closed world
        rows_cited = distinct[unsourced:]
        made = pa.concat_arrays(
            [
                pa.array(["inferred" if row == -2 else "closed world" for row in distinct[:unsourced].tolist()],
                         pa.large_string()),
                occurrences.source_array(literal.predicate, rows_cited)
                if occurrences
                else pa.array([_source(network, literal.predicate, row) for row in rows_cited.tolist()],
                              pa.large_string()),
            ]
        )
        cited_atoms.append(atom_text)
        # the atom's truth: its MAP value when inferred, else the literal's state read back through its sign
        cited_values.append(leaf_truth.truth)
        cited_sources.append(made.take(pa.array(inverse.reshape(-1), pa.int64())))
        cited_keep.append(keep)
    now_value = evaluate(block.tree, now_states, count) == TRUE
    flipped_value = evaluate(block.tree, flipped_states, count) == TRUE
    # The block's tree is negated for negative weights: "true" means "not costly".
    if cited_atoms:
        keep_all = np.stack(cited_keep, axis=1)  # row by row, each row's leaves in order
        order = (np.arange(len(cited_atoms), dtype=np.int64)[None, :] * count + np.arange(count)[:, None])[keep_all]
        index = pa.array(order, pa.int64())
        atoms_text = pa.concat_arrays(cited_atoms).take(index)
        sources_text = pa.concat_arrays(cited_sources).take(index)
        values_all = np.concatenate(cited_values)[order]
        counts = keep_all.sum(axis=1).astype(np.int64)
    else:
        atoms_text = sources_text = pa.array([], pa.large_string())
        values_all = np.empty(0, dtype=bool)
        counts = np.zeros(count, dtype=np.int64)
    return _BlockColumns(
        plan=plan,
        variables=block.formula.variables,
        changed=now_value != flipped_value,
        now=now_value,
        satisfied=now_value != block.negated,
        columns=columns,
        citation_counts=counts,
        citation_atoms=atoms_text,
        citation_values=values_all,
        citation_sources=sources_text,
    )
