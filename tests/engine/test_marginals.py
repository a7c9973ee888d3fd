"""Marginal probabilities against a brute-force oracle (``tests/test_properties.py``'s).

The oracle enumerates every world of the open atoms with its own grounding and weighs
world ``x`` by ``exp(-cost(x))`` over the worlds that satisfy the hard formulas; the
marginal of an atom is the weighed share of worlds where it holds. Exact enumeration
must agree to rounding; MC-SAT within ``MCSAT_TOLERANCE`` for its fixed seed, unless its
split-R-hat or the chains' difference says that they have not mixed (then within
``UNMIXED_TOLERANCE``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings

from reasoner.check import QueryPattern
from reasoner.cli import main
from reasoner.marginal import MarginalRun, run_marginals
from tests.engine.test_properties import COMMON, WEIGHT_SCALE, BruteForce, Program, atom_text, programs

MCSAT_TOLERANCE = 0.1  # largest |MC-SAT − exact| allowed on an atom, 2 chains × 2,000 samples
UNMIXED_R_HAT = 1.05  # beyond it the diagnostic flags the chains as not mixed ...
UNMIXED_DIFFERENCE = 0.1  # ... or so do chains this far apart on one atom ...
UNMIXED_TOLERANCE = 0.25  # ... and the error may be larger
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def oracle_marginals(oracle: BruteForce, log_weight: np.ndarray | None = None) -> dict[str, float] | None:
    """P(atom) for every open atom; None when no world satisfies the hard formulas."""
    if not oracle.feasible.any():
        return None
    weight = -oracle.cost.astype(np.float64) / WEIGHT_SCALE
    if log_weight is not None:
        weight = weight + log_weight
    weight = np.where(oracle.feasible, np.exp(weight - weight[oracle.feasible].max()), 0.0)
    weight /= weight.sum()
    return {atom_text(key): float(weight @ oracle.bits[i]) for key, i in oracle.index.items()}


def run_program(
    program: Program, directory: Path, extra_db: list[Path] | None = None, **options: object
) -> MarginalRun:
    rules = directory / "rules.mln"
    db = directory / "evidence.db"
    rules.write_text(program.rules_text(), encoding="utf-8")
    db.write_text(program.db_text(), encoding="utf-8")
    queries = [QueryPattern(name) for name, p in program.predicates.items() if p.role == "query"]
    return run_marginals([rules], [db, *(extra_db or [])], queries=queries, **options)  # type: ignore[arg-type]


def compare(program: Program, result: MarginalRun, tolerance: float, log_weight: np.ndarray | None = None) -> None:
    oracle = BruteForce(program)
    expected = oracle_marginals(oracle, log_weight)
    if expected is None:
        assert result.marginals.status == "unsatisfiable"
        return
    assert result.marginals.status == "ok"
    for atom, probability in zip(result.atoms, result.probabilities, strict=True):
        if atom.fixed:
            assert probability == (1.0 if atom.value else 0.0)
            continue
        assert abs(probability - expected[atom.text]) <= tolerance, (atom.text, probability, expected[atom.text])


@settings(COMMON, max_examples=25)
@given(program=programs())
def test_exact_marginals_match_brute_force(program: Program, tmp_path: Path) -> None:
    compare(program, run_program(program, tmp_path, method="exact"), 1e-9)


@pytest.mark.slow
@settings(COMMON, max_examples=25)
@given(program=programs())
def test_mcsat_marginals_are_close_to_brute_force(program: Program, tmp_path: Path) -> None:
    result = run_program(program, tmp_path, method="mcsat", samples=2000, burn_in=50, seed=3)
    # chains that have not mixed (strongly coupled atoms) must say so: split-R-hat above 1.05,
    # or two chains more than 0.1 apart on an atom
    converged = result.marginals.r_hat <= UNMIXED_R_HAT and result.marginals.chain_difference <= UNMIXED_DIFFERENCE
    compare(program, result, MCSAT_TOLERANCE if converged else UNMIXED_TOLERANCE)


def test_marginals_command_prints_result_lines(capsys: pytest.CaptureFixture[str]) -> None:
    rules, db = EXAMPLES / "smokers" / "smokers.mln", EXAMPLES / "smokers" / "evidence.db"
    assert main([str(rules), str(db), "--query", "Smokes,Cancer", "--marginals"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 16 and lines[0].startswith("Cancer(Anna) 0.8")
    for line in lines:
        atom, probability = line.split(" ")
        assert atom.endswith(")") and 0 <= float(probability) <= 1
    assert main([str(rules), str(db), "--query", "Smokes,Cancer", "--marginals", "--json", "--no-timings"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["status"] == "ok" and len(printed["marginals"]) == 16
    assert printed["sampling"]["exact_components"] == 6 and printed["sampling"]["sampled_components"] == 0


def chain_program(directory: Path, people: int) -> tuple[Path, Path]:
    """One component of ``2 * people`` atoms: sampled, not enumerated."""
    rules = directory / "chain.mln"
    rules.write_text(
        "Friends(person, person)\nSmokes(person)\nCancer(person)\n1.5 Smokes(x) => Cancer(x)\n"
        "1.1 Friends(x, y) => (Smokes(x) <=> Smokes(y))\n-0.5 Smokes(x)\n",
        encoding="utf-8",
    )
    db = directory / "chain.db"
    friends = "".join(f"Friends(P{i}, P{i + 1})\n" for i in range(people - 1))
    db.write_text(friends + "0.9 Smokes(P0)\n", encoding="utf-8")
    return rules, db


def test_mcsat_output_depends_on_the_seed_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules, db = chain_program(tmp_path, 12)
    arguments = [str(rules), str(db), "-q", "Smokes,Cancer", "--marginals", "--samples", "300", "--json"]
    arguments.append("--no-timings")
    outputs = []
    for seed in ("1", "1", "2"):
        assert main([*arguments, "--seed", seed]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1] != outputs[2]
    sampling = json.loads(outputs[0])["sampling"]
    assert sampling["sampled_components"] == 1 and sampling["sampled_atoms"] == 24
    assert 1 <= sampling["r_hat"] < 1.2


def test_mcsat_agrees_with_exact_on_a_chain(tmp_path: Path) -> None:
    """A 16-atom chain enumerated exactly (2^16 worlds) and sampled with MC-SAT."""
    rules, db = chain_program(tmp_path, 8)
    queries = [QueryPattern("Smokes"), QueryPattern("Cancer")]
    exact = run_marginals([rules], [db], queries=queries, method="exact")
    sampled = run_marginals([rules], [db], queries=queries, method="mcsat", samples=2000, seed=5)
    assert sampled.marginals.sampled_components == 1 and exact.marginals.exact_components == 1
    assert np.abs(np.array(exact.probabilities) - np.array(sampled.probabilities)).max() < MCSAT_TOLERANCE


def test_bad_sampling_options_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    rules, db = EXAMPLES / "smokers" / "smokers.mln", EXAMPLES / "smokers" / "evidence.db"
    assert main([str(rules), str(db), "--query", "Smokes", "--marginals", "--samples", "1"]) == 2
    assert "--samples must be at least 2" in capsys.readouterr().err
    assert main([str(rules), str(db), "--query", "Smokes", "--marginals", "--explain", "Smokes(Anna)"]) == 2
