"""Marginal probabilities against a brute-force oracle (``tests/test_properties.py``'s).

The oracle enumerates every world of the open atoms with its own grounding and weighs
world ``x`` by ``exp(-cost(x))`` over the worlds that satisfy the hard formulas; the
marginal of an atom is the weighed share of worlds where it holds. Exact enumeration
must agree to rounding; MC-SAT within ``MCSAT_TOLERANCE`` for its fixed seed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import given, settings

from reasoner.check import QueryPattern
from reasoner.marginal import MarginalRun, run_marginals
from tests.test_properties import COMMON, WEIGHT_SCALE, BruteForce, Program, atom_text, programs

MCSAT_TOLERANCE = 0.08  # largest |MC-SAT − exact| allowed on an atom, 2 chains × 1,000 samples (0.033 seen)
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


@settings(COMMON, max_examples=80)
@given(program=programs())
def test_exact_marginals_match_brute_force(program: Program, tmp_path: Path) -> None:
    compare(program, run_program(program, tmp_path, method="exact"), 1e-9)


@settings(COMMON, max_examples=40)
@given(program=programs())
def test_mcsat_marginals_are_close_to_brute_force(program: Program, tmp_path: Path) -> None:
    result = run_program(program, tmp_path, method="mcsat", samples=1000, burn_in=50, seed=3)
    compare(program, result, MCSAT_TOLERANCE)
