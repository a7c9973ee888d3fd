"""Weight learning: recovery of known weights, the likelihood never lowered (against the
brute-force oracle's own likelihood), and rule files written back as they were."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from reasoner.cli import main
from reasoner.errors import ArgumentError
from reasoner.learn import learn_weights, write_learned
from tests.engine.test_properties import COMMON, BruteForce, Program, atom_text, programs

SMOKERS = """// people
Person(person)
Smokes(person)
Cancer(person)

// smoking is rare
0 Smokes(x)    // learned
// smoking causes cancer
1 Smokes(x) => Cancer(x)
Person(x) => Person(x).
"""


def smokers_data(directory: Path, people: int, weights: tuple[float, float], seed: int) -> tuple[Path, Path, Path]:
    """Independent people whose (Smokes, Cancer) are drawn from the program's distribution."""
    rng = np.random.default_rng(seed)
    worlds = list(itertools.product((0, 1), (0, 1)))
    log_weight = np.array([weights[0] * s + weights[1] * (not s or c) for s, c in worlds])
    probability = np.exp(log_weight) / np.exp(log_weight).sum()
    lines = []
    for person in range(people):
        smokes, cancer = worlds[rng.choice(4, p=probability)]
        lines += [f"Smokes(P{person})"] * smokes + [f"Cancer(P{person})"] * cancer
    rules, evidence, truth = directory / "smokers.mln", directory / "evidence.db", directory / "truth.db"
    rules.write_text(SMOKERS, encoding="utf-8")
    evidence.write_text("".join(f"Person(P{person})\n" for person in range(people)), encoding="utf-8")
    truth.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return rules, evidence, truth


def test_weights_sampled_from_known_weights_are_recovered(tmp_path: Path) -> None:
    rules, evidence, truth = smokers_data(tmp_path, 2000, (-0.5, 1.5), seed=5)
    learning = learn_weights([rules], [evidence], truth)
    learned = [item.weight for item in learning.weights]
    assert learned == pytest.approx([-0.5, 1.5], abs=0.25)
    assert learning.sampled_components == 0
    assert learning.log_likelihood is not None and learning.start_log_likelihood is not None
    assert learning.log_likelihood > learning.start_log_likelihood


@pytest.mark.slow
def test_mcsat_learning_on_a_large_component_moves_towards_the_weights(tmp_path: Path) -> None:
    rules, evidence, truth = smokers_data(tmp_path, 400, (-0.5, 1.5), seed=7)
    # a fixed-weight chain of friends joins 30 people in one component: sampled with MC-SAT
    text = SMOKERS.replace("Person(person)", "Person(person)\nFriends(person, person)")
    rules.write_text(text + "@0.1 Friends(x, y) => (Smokes(x) <=> Smokes(y))\n", encoding="utf-8")
    with evidence.open("a", encoding="utf-8") as handle:
        handle.writelines(f"Friends(P{i}, P{i + 1})\n" for i in range(30))
    learning = learn_weights([rules], [evidence], truth, iterations=15, samples=200, seed=1)
    assert learning.sampled_components == 1
    assert [item.formula.statement.text for item in learning.weights] == ["0 Smokes(x)", "1 Smokes(x) => Cancer(x)"]
    learned = [item.weight for item in learning.weights]
    assert learned == pytest.approx([-0.5, 1.5], abs=0.6)


def oracle_log_likelihood(program: Program, oracle: BruteForce, weights: list[float], world: int) -> float:
    """The oracle's CLL of one world of the open atoms under per-formula weights."""
    log_weight = np.zeros(len(oracle.cost))
    soft = [formula for formula in program.formulas if formula.weight is not None]
    for formula, weight in zip(soft, weights, strict=True):
        for value in oracle.groundings(formula, oracle.vector_value):
            log_weight = log_weight + weight * np.asarray(value, dtype=np.float64)
    allowed = log_weight[oracle.feasible]
    top = allowed.max()
    return float(log_weight[world] - top - np.log(np.exp(allowed - top).sum()))


@settings(COMMON, max_examples=20)
@given(program=programs(), data=st.data())
def test_learning_never_lowers_the_training_likelihood(program: Program, data: st.DataObject, tmp_path: Path) -> None:
    assume(all(p.role != "hidden" for p in program.predicates.values()))
    assume(any(formula.weight is not None for formula in program.formulas))
    oracle = BruteForce(program)
    assume(oracle.feasible.any())
    world = data.draw(st.sampled_from(np.flatnonzero(oracle.feasible).tolist()))
    true_atoms = [atom_text(key) for key, i in oracle.index.items() if (world >> i) & 1]
    rules, evidence, truth = tmp_path / "rules.mln", tmp_path / "evidence.db", tmp_path / "truth.db"
    rules.write_text(program.rules_text(), encoding="utf-8")
    evidence.write_text(program.db_text(), encoding="utf-8")
    truth.write_text("".join(f"{atom}\n" for atom in true_atoms), encoding="utf-8")
    from reasoner.check import QueryPattern

    queries = [QueryPattern(name) for name, p in program.predicates.items() if p.role == "query"]
    learning = learn_weights([rules], [evidence], truth, queries=queries, iterations=20)
    start = [float(item.start) for item in learning.weights]
    learned = [item.weight for item in learning.weights]
    before = oracle_log_likelihood(program, oracle, start, world)
    after = oracle_log_likelihood(program, oracle, learned, world)
    assert after >= before - 1e-9
    assert learning.log_likelihood is not None and learning.start_log_likelihood is not None
    assert learning.log_likelihood - learning.start_log_likelihood == pytest.approx(after - before, abs=1e-6)


def test_learned_file_keeps_comments_hard_and_fixed_formulas(tmp_path: Path) -> None:
    rules, evidence, truth = smokers_data(tmp_path, 300, (-0.5, 1.5), seed=3)
    rules.write_text(SMOKERS + "@0.7 Cancer(x) // fixed\n", encoding="utf-8")
    out = tmp_path / "learned.mln"
    learning = learn_weights([rules], [evidence], truth)
    write_learned(learning, out, evidence=[evidence], truth=truth)
    written = out.read_text(encoding="utf-8").split("\n")
    original = rules.read_text(encoding="utf-8").split("\n")
    assert written[0].startswith("// weights learned by 'reason learn' from evidence.db and truth.db")
    assert len(written) == len(original) + 1
    changed = [(old, new) for old, new in zip(original, written[1:], strict=True) if old != new]
    assert [old for old, _ in changed] == ["0 Smokes(x)    // learned", "1 Smokes(x) => Cancer(x)"]
    assert changed[0][1].endswith(" Smokes(x)    // learned")
    assert float(changed[0][1].split()[0]) == pytest.approx(learning.weights[0].weight, abs=1e-4)


def test_learn_command_writes_the_rules_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules, evidence, truth = smokers_data(tmp_path, 300, (-0.5, 1.5), seed=3)
    out = tmp_path / "learned.mln"
    assert main(["learn", str(rules), str(evidence), str(truth), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "training conditional log-likelihood" in printed
    assert out.read_text(encoding="utf-8").count("\n") == SMOKERS.count("\n") + 1
    assert main(["learn", str(rules), str(evidence), str(truth), "-o", str(out)]) == 2  # exists: --force


def test_nothing_to_learn_is_an_argument_error(tmp_path: Path) -> None:
    rules, evidence, truth = smokers_data(tmp_path, 10, (-0.5, 1.5), seed=3)
    rules.write_text("Person(person)\nSmokes(person)\nCancer(person)\nPerson(x) => Smokes(x).\n", encoding="utf-8")
    with pytest.raises(ArgumentError, match="no formula to learn"):
        learn_weights([rules], [evidence], truth)


def test_an_unweighted_template_gets_its_learned_weight_written_before_it(tmp_path: Path) -> None:
    rules, evidence, truth = smokers_data(tmp_path, 600, (-0.5, 1.5), seed=9)
    rules.write_text(SMOKERS.replace("1 Smokes(x) => Cancer(x)", "Smokes(x) => Cancer(x)"), encoding="utf-8")
    learning = learn_weights([rules], [evidence], truth)
    assert [item.start for item in learning.weights] == [0.0, 0.0]
    out = tmp_path / "learned.mln"
    write_learned(learning, out, evidence=[evidence], truth=truth)
    line = next(line for line in out.read_text(encoding="utf-8").split("\n") if line.endswith("Smokes(x) => Cancer(x)"))
    assert float(line.split()[0]) == pytest.approx(1.5, abs=0.35)


def test_per_constant_weights_are_refused_with_their_position(tmp_path: Path) -> None:
    rules, evidence, truth = smokers_data(tmp_path, 10, (-0.5, 1.5), seed=3)
    rules.write_text(SMOKERS.replace("0 Smokes(x)", "0 Smokes(+x)"), encoding="utf-8")
    with pytest.raises(ArgumentError, match=r"smokers.mln:7:1: per-constant weights \('\+x'\) are not learned yet"):
        learn_weights([rules], [evidence], truth)
