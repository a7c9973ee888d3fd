"""The run's query atoms: kept as columns (``QueryAtoms``), made into ``QueryAtom`` s on first use."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import reasoner
from reasoner.check import QueryPattern
from reasoner.ground import TRUE, UNKNOWN
from reasoner.pipeline import QueryAtom, query_atoms

RULES = """\
person = {Anna, Bob, Chris}
Smokes(person)
Friends(person, person)
Cancer(person)
1.5 Smokes(x) => Cancer(x)
1.1 Friends(x, y) ^ Smokes(x) => Smokes(y)
-0.5 Cancer(x)
"""
EVIDENCE = "Smokes(Anna)\nFriends(Anna, Bob)\n!Cancer(Chris)\n"


def _run(tmp_path: Path, queries: list[QueryPattern]) -> reasoner.Run:
    evidence = tmp_path / "evidence.db"
    evidence.write_text(EVIDENCE, encoding="utf-8")
    return reasoner.run(RULES, evidence, queries=queries)


def test_the_atoms_are_the_columns_valued_by_the_solver_or_the_evidence(tmp_path: Path) -> None:
    result = _run(tmp_path, [QueryPattern("Cancer"), QueryPattern("Smokes")])
    network, solution, query = result.network, result.solution, result.query
    assert query.predicates == ("Cancer", "Smokes") and len(query) == 6
    expected = []
    for name, keys, states, ids in zip(query.predicates, query.keys, query.states, query.ids, strict=True):
        assert np.array_equal(keys, np.arange(network.predicates[name].num_atoms))
        for text, state, atom_id in zip(network.key_text(name, keys), states.tolist(), ids.tolist(), strict=True):
            value = bool(solution.values[atom_id]) if atom_id else state == TRUE
            expected.append(QueryAtom(text, value, atom_id, state != UNKNOWN))
    assert list(result.atoms) == expected
    assert result.atoms is result.atoms  # made once
    assert result.values == {atom.text: atom.value for atom in expected}
    assert result.values["Cancer(Anna)"] and not result.values["Cancer(Chris)"]  # inferred; given as evidence
    assert [atom.fixed for atom in result.atoms if atom.text.startswith("Cancer")] == [False, False, True]
    assert query.margin_ids({"Cancer"}).tolist() == [atom.atom_id for atom in expected[:3] if atom.atom_id]


def test_patterns_with_arguments_keep_only_their_atoms(tmp_path: Path) -> None:
    patterns = [QueryPattern("Cancer", ("Bob",)), QueryPattern("Friends", (None, "Bob"))]
    result = _run(tmp_path, patterns)
    texts = ["Cancer(Bob)", "Friends(Anna,Bob)", "Friends(Bob,Bob)", "Friends(Chris,Bob)"]
    assert [atom.text for atom in result.atoms] == texts
    atoms, notes = query_atoms(result.network, patterns)
    assert [atom.text for atom in atoms] == [atom.text for atom in result.atoms] and not notes
    assert [atom.value for atom in atoms if atom.text.startswith("Friends")] == [True, False, False]  # evidence
