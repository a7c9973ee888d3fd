"""Proofs of many atoms at once (``explain_keys``, block by block in numpy) against the text a
reader checks, and against one atom at a time."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import reasoner
from reasoner.explain import Occurrences, explain_key, explain_keys, render_proof

# Two variables bound to one constant (Knows(A, A)) make two leaves name one atom: cited once.
RULES = """\
person = {A, B, C}
Knows(person, person)
Smokes(person)
Cancer(person)
1.0 Knows(x, y) ^ Smokes(x) ^ Smokes(y) => Cancer(x)
2 Smokes(x) ^ Smokes(x) => Cancer(x)
-0.3 Cancer(x)
1.5 Knows(x, y) ^ Cancer(x) => Cancer(y)
"""
EVIDENCE = "Knows(A, A)\nKnows(A, B)\nKnows(B, C)\nSmokes(A)\nSmokes(B)\n"

# As the proof was before proofs were weighed block by block (one ground formula at a time).
EXPECTED = (
    "Cancer(A) = true\n"
    "  inferred: the best world with it false costs 3.7 more\n"
    "  supporting (3):\n"
    "    [2] 2 Smokes(x) ^ Smokes(x) => Cancer(x)    (<rules>:6)\n"
    "        with x=A\n"
    "        Smokes(A) = true  [{evidence}:4]\n"
    "        Cancer(A) = true  [inferred]\n"
    "    [1] 1.0 Knows(x, y) ^ Smokes(x) ^ Smokes(y) => Cancer(x)    (<rules>:5)\n"
    "        with x=A, y=A\n"
    "        Knows(A,A) = true  [{evidence}:1]\n"
    "        Smokes(A) = true  [{evidence}:4]\n"
    "        Cancer(A) = true  [inferred]\n"
    "    [1] 1.0 Knows(x, y) ^ Smokes(x) ^ Smokes(y) => Cancer(x)    (<rules>:5)\n"
    "        with x=A, y=B\n"
    "        Knows(A,B) = true  [{evidence}:2]\n"
    "        Smokes(A) = true  [{evidence}:4]\n"
    "        Smokes(B) = true  [{evidence}:5]\n"
    "        Cancer(A) = true  [inferred]\n"
    "  opposing (1):\n"
    "    [0.3] -0.3 Cancer(x)    (<rules>:7)\n"
    "        with x=A\n"
    "        Cancer(A) = true  [inferred]\n"
    "  2 other ground formulas mention it without effect"
)


def _run(tmp_path: Path) -> reasoner.Run:
    evidence = tmp_path / "evidence.db"
    evidence.write_text(EVIDENCE, encoding="utf-8")
    return reasoner.run(RULES, evidence, queries=["Cancer"], margins=["Cancer"])


def test_an_atom_two_leaves_name_is_cited_once_at_its_first_leaf(tmp_path: Path) -> None:
    text = render_proof(reasoner.explain(_run(tmp_path), "Cancer(A)"))
    assert text == EXPECTED.format(evidence=tmp_path / "evidence.db")


def test_many_atoms_at_once_give_each_atom_s_proof_alone(tmp_path: Path) -> None:
    result = _run(tmp_path)
    network, solution = result.network, result.solution
    occurrences = Occurrences(network)
    for predicate in ("Cancer", "Smokes", "Knows"):
        keys = np.arange(network.predicates[predicate].num_atoms, dtype=np.int64)
        for order in (keys, keys[::-1].copy(), np.concatenate([keys, keys[:1]])):
            together = explain_keys(network, solution, predicate, order, occurrences)
            alone = [explain_key(network, solution, predicate, int(key)) for key in order.tolist()]
            assert together == alone
    assert explain_keys(network, solution, "Cancer", np.empty(0, dtype=np.int64)) == []


def test_leaves_with_constants_cite_each_atom_once(tmp_path: Path) -> None:
    """Leaves of one predicate with a constant name one atom when a variable takes that constant
    (Knows(x, A) and Knows(x, y) at y=A); leaves with different constants never do."""
    rules = RULES + "0.7 Knows(x, A) ^ Knows(x, y) ^ Knows(x, B) => Cancer(x)\n"
    evidence = tmp_path / "evidence.db"
    evidence.write_text(EVIDENCE, encoding="utf-8")
    run = reasoner.run(rules, evidence, queries=["Cancer"], margins=["Cancer"])
    proof = reasoner.explain(run, "Cancer(A)")
    items = [item for item in (*proof.supporting, *proof.opposing) if item.rule.startswith("0.7")]
    assert {dict(item.substitution)["y"] for item in items} == {"A", "B"}  # Knows(A, C) is false: decided
    for item in items:
        atoms = [citation.atom for citation in item.atoms]
        assert len(atoms) == len(set(atoms)), atoms
        y = dict(item.substitution)["y"]
        assert set(atoms) == {"Knows(A,A)", f"Knows(A,{y})", "Knows(A,B)", "Cancer(A)"}


def test_proofs_as_columns_are_the_proofs_of_explain_keys(tmp_path: Path) -> None:
    """``explain_columns`` holds the proofs ``explain_keys`` gives (atoms two leaves name cited once,
    constants in leaves, atoms in no formula, evidence), whatever the order of the atoms asked."""
    from reasoner.explain import explain_columns

    rules = RULES + "0.7 Knows(x, A) ^ Knows(x, y) ^ Knows(x, B) => Cancer(x)\n"
    evidence = tmp_path / "evidence.db"
    evidence.write_text(EVIDENCE, encoding="utf-8")
    result = reasoner.run(rules, evidence, queries=["Cancer"], margins=["Cancer"])
    network, solution = result.network, result.solution
    for predicate in ("Cancer", "Smokes", "Knows"):
        keys = np.arange(network.predicates[predicate].num_atoms, dtype=np.int64)
        for order in (keys, keys[::-1].copy(), np.concatenate([keys, keys[:1]])):
            expected = explain_keys(network, solution, predicate, order, Occurrences(network))
            columns = explain_columns(network, solution, predicate, order, Occurrences(network))
            assert len(columns) == len(expected)
            assert [columns.proof(number) for number in range(len(columns))] == expected
    assert len(explain_columns(network, solution, "Cancer", np.empty(0, dtype=np.int64))) == 0


def test_source_array_is_source_texts_in_arrow(tmp_path: Path) -> None:
    """``Occurrences.source_array`` gives the texts ``source_texts`` gives, whatever rows are asked
    (repeated, out of order, none)."""
    network = _run(tmp_path).network
    occurrences = Occurrences(network)
    for predicate in ("Knows", "Smokes"):
        count = len(occurrences.evidence_rows(predicate)[0])
        for rows in (np.arange(count), np.arange(count)[::-1].copy(), np.array([1, 0, 1]), np.empty(0, np.int64)):
            expected = Occurrences(network).source_texts(predicate, rows.tolist())
            assert occurrences.source_array(predicate, rows).to_pylist() == expected
