"""Marginal probabilities against a brute-force oracle (``tests/test_properties.py``'s).

The oracle enumerates every world of the open atoms with its own grounding and weighs
world ``x`` by ``exp(-cost(x))`` over the worlds that satisfy the hard formulas; the
marginal of an atom is the weighed share of worlds where it holds. Exact enumeration
must agree to rounding; MC-SAT within ``MCSAT_TOLERANCE`` for its fixed seed, unless its
split-R-hat or the chains' difference says that they have not mixed (then within
``UNMIXED_TOLERANCE``).
"""

from __future__ import annotations

import itertools
import json
import math
import random
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings

from reasoner import sample
from reasoner.check import QueryPattern
from reasoner.cli import main
from reasoner.marginal import MarginalRun, atom_marginals, run_marginals
from reasoner.pipeline import Run, run
from reasoner.sample import ChainSummary, _SampleSat, component_model, effective_samples, exact
from tests.engine.test_properties import (
    COMMON,
    WEIGHT_SCALE,
    BruteForce,
    Formula,
    Node,
    Predicate,
    Program,
    atom_text,
    programs,
)
from tests.engine.test_properties import run_program as run_map

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
@settings(COMMON, max_examples=25, derandomize=True)  # statistical: fixed examples, no flaky CI
@given(program=programs())
def test_mcsat_marginals_are_close_to_brute_force(program: Program, tmp_path: Path) -> None:
    result = run_program(program, tmp_path, method="mcsat", samples=2000, burn_in=50, seed=3)
    # chains that have not mixed (strongly coupled atoms) must say so: split-R-hat above 1.05,
    # or two chains more than 0.1 apart on an atom
    converged = result.marginals.r_hat <= UNMIXED_R_HAT and result.marginals.chain_difference <= UNMIXED_DIFFERENCE
    compare(program, result, MCSAT_TOLERANCE if converged else UNMIXED_TOLERANCE)


def _atom(predicate: str, *args: str) -> Node:
    return ("atom", predicate, tuple(("var", a) if a.islower() else ("const", a) for a in args))


# Found by the property test above (MC-SAT said 0.0 for P0(C,A), the oracle 0.879), reduced to
# the two formulas that matter. With !P1(A, C) the first is `P0(x, p) <=> !P0(C, A)` for
# (y, q) = (C, A) and `P0(x, p)` otherwise: once the four other P0 atoms are true, P0(C, A)
# false satisfies five groundings of weight 2.99 and true five others and the 1.98 unit. The
# two worlds are one flip apart, but an MC-SAT step moves from one to the other only when it
# drops all five (e^-14.95): both chains stayed where they arrived first, and agreed, so the
# diagnostics did not flag them.
ONE_FLIP_APART = Program(
    universes={"t0": ("A", "B", "C"), "t1": ("A", "B")},
    declared={"t0": (), "t1": ("A", "B")},
    predicates={"P0": Predicate("P0", ("t0", "t1"), "query"), "P1": Predicate("P1", ("t1", "t0"), "evidence")},
    starred=False,
    formulas=[
        Formula(
            ("iff", _atom("P0", "x", "p"), ("imp", _atom("P0", "y", "q"), _atom("P1", "q", "y"))),
            Decimal("2.99"),
            {"x": "t0", "p": "t1", "y": "t0", "q": "t1"},
            ("x", "p", "y", "q"),
        ),
        Formula(_atom("P0", "x", "p"), Decimal("1.98"), {"x": "t0", "p": "t1"}, ("x", "p")),
    ],
    evidence={
        ("P0", ("C", "B")): True,
        **{("P1", (q, y)): (q, y) != ("A", "C") for q in ("A", "B") for y in ("A", "B", "C")},
    },
)


def test_mcsat_crosses_between_worlds_one_flip_apart(tmp_path: Path) -> None:
    """MC-SAT alone cannot leave either of the two likely worlds of ``ONE_FLIP_APART`` (P0(C, A)
    false or true, exactly 0.121 and 0.879); the Metropolis flips after each step join them."""
    result = run_program(ONE_FLIP_APART, tmp_path, method="mcsat", samples=2000, burn_in=50, seed=3)
    assert result.marginals.sampled_components == 1
    compare(ONE_FLIP_APART, result, MCSAT_TOLERANCE)


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


# -- some atoms, each component seeded by its atom (the audit's risk score) -----------------


@settings(COMMON, max_examples=10)
@given(program=programs())
def test_atom_marginals_match_brute_force(program: Program, tmp_path: Path) -> None:
    result = run_map(program, tmp_path)
    asked = [atom for atom in result.atoms if atom.atom_id]
    seeds = [(i,) for i in range(len(asked))]
    found = atom_marginals(result.encoding, [a.atom_id for a in asked], seeds, auto_limit=20)
    expected = oracle_marginals(BruteForce(program))
    if expected is None or found is None:
        assert expected is None and (found is None or not asked)
        return
    for atom, probability in zip(asked, found.probability.tolist(), strict=True):
        assert abs(probability - expected[atom.text]) <= 1e-9, (atom.text, probability, expected[atom.text])
    assert found.exact.all() and not found.interval.any()


VERDICT_RULES = """
Evidence(lender, kind, weight)
A(lender)
B(lender)
C(lender)
Flagged(lender)
Cleared(lender)
Tested(lender)
w: Evidence(l, K1, w) => A(l)
w: Evidence(l, K2, w) => B(l)
w: Evidence(l, K3, w) => C(l)
-2.75 A(l)
-2.5 B(l)
-4.5 C(l)
Flagged(l) <=> A(l) v B(l) v C(l).
Cleared(l) <=> Tested(l) ^ !Flagged(l).
!(Cleared(l) ^ Flagged(l)).
"""
VERDICT_PRIORS = {"A": -2.75, "B": -2.5, "C": -4.5}
VERDICT_EVIDENCE = {"L1": {"A": 1.25, "B": 3.0}, "L2": {}, "L3": {"C": 6.0, "A": 0.5}}


def _verdict_run(directory: Path, lenders: list[str]) -> Run:
    rules, db = directory / "verdict.mln", directory / "verdict.db"
    rules.write_text(VERDICT_RULES, encoding="utf-8")
    kinds = {"A": "K1", "B": "K2", "C": "K3"}
    lines = [f"Tested({lender})" for lender in lenders]
    lines += [f"Evidence({lender}, {kinds[k]}, {w})" for lender in lenders for k, w in VERDICT_EVIDENCE[lender].items()]
    db.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return run([rules], [db], queries=["Flagged", "A", "B", "C", "Cleared"], margins=[])


def _flagged(result: Run, lender: str) -> int:
    return next(atom.atom_id for atom in result.atoms if atom.text == f"Flagged({lender})")


def test_a_verdict_probability_is_the_brute_force_sum_over_its_worlds(tmp_path: Path) -> None:
    """The audit's verdict shape (an atom true when any kind is, a cleared atom, unit weights):
    P(Flagged) summed over all 2^5 worlds of a lender's atoms in plain Python."""
    result = _verdict_run(tmp_path, list(VERDICT_EVIDENCE))
    leis = list(VERDICT_EVIDENCE)
    found = atom_marginals(result.encoding, [_flagged(result, lei) for lei in leis], [(i,) for i in range(3)])
    assert found is not None and found.exact.all()
    for lei, probability in zip(leis, found.probability.tolist(), strict=True):
        total = flagged = 0.0
        for a, b, c, f, cleared in itertools.product((False, True), repeat=5):
            if f != (a or b or c) or cleared != (not f) or (cleared and f):  # the hard formulas (Tested true)
                continue
            log_weight = sum(
                (VERDICT_PRIORS[k] + VERDICT_EVIDENCE[lei].get(k, 0.0)) * value
                for k, value in zip("ABC", (a, b, c), strict=True)
            )
            total += math.exp(log_weight)
            flagged += math.exp(log_weight) * f
        assert abs(probability - flagged / total) < 1e-12, lei
    closed = 1 - math.prod(1 - 1 / (1 + math.exp(-w)) for w in VERDICT_PRIORS.values())
    assert abs(found.probability[1] - closed) < 1e-12  # L2: the presumptions alone


def test_metropolis_flips_keep_the_distribution(tmp_path: Path) -> None:
    """Worlds drawn from the exact distribution of a component with hard formulas, auxiliary
    variables and negative weights (the verdict's L1) are still drawn from it after the flips
    MC-SAT adds to each step, and every hard clause still holds."""
    result = _verdict_run(tmp_path, ["L1"])
    component = next(c for c in result.encoding.components if _flagged(result, "L1") in c.variables.tolist())
    model = component_model(result.encoding, component)
    table = exact(model)
    assert table is not None and model.num_vars > model.num_atoms and len(model.hard)
    sampler = _SampleSat(model, 0.5, 0.5, 0.5)
    weight = [0.0] * (len(model.offsets) - 1)
    for clause, w in zip(model.soft.tolist(), model.soft_weight.tolist(), strict=True):
        weight[clause] = w
    rng = np.random.default_rng(7)
    generator = random.Random(7)
    probability = table.probabilities(model.soft_weight)
    worlds = 4000
    after = np.zeros(model.num_atoms)
    for index in rng.choice(len(probability), size=worlds, p=probability).tolist():
        values = sampler.start(table.atoms[index].tolist())
        counts = sampler.counts(values)
        sampler.metropolis(values, counts, weight, 3 * model.num_atoms, generator)
        assert counts == sampler.counts(values) and values == sampler.start(values[1 : model.num_atoms + 1])
        assert all(counts[c] > 0 for c, mode in enumerate(sampler.base_mode) if mode == 1)
        after += values[1 : model.num_atoms + 1]
    assert np.abs(after / worlds - probability @ table.atoms).max() < 0.03


def test_a_sampled_component_depends_on_its_seed_not_on_the_rest_of_the_network(tmp_path: Path) -> None:
    """MC-SAT (forced: auto_limit 0) seeded per lender: L3's probability is the same bits whether
    the network holds the other lenders or not, and close to the exact one."""
    alone = _verdict_run(tmp_path, ["L3"])
    together = _verdict_run(tmp_path, ["L2", "L1", "L3"])
    seed = (0, 1234)
    one = atom_marginals(alone.encoding, [_flagged(alone, "L3")], [seed], samples=400, auto_limit=0)
    three = atom_marginals(
        together.encoding, [_flagged(together, lei) for lei in ("L1", "L3")], [(0, 99), seed], samples=400, auto_limit=0
    )
    exact = atom_marginals(alone.encoding, [_flagged(alone, "L3")], [seed])
    assert one is not None and three is not None and exact is not None
    assert not one.exact.any() and one.interval[0] > 0
    assert one.probability[0] == three.probability[1] and one.interval[0] == three.interval[1]
    assert abs(one.probability[0] - exact.probability[0]) <= max(one.interval[0], 0.02)
    other = atom_marginals(alone.encoding, [_flagged(alone, "L3")], [(1, 1234)], samples=400, auto_limit=0)
    assert other is not None and other.probability[0] != one.probability[0]


def test_sampling_workers_give_the_same_marginals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Three chains of people (three sampled components) on 1, 2 and 3 worker processes."""
    rules, _ = chain_program(tmp_path, 1)
    db = tmp_path / "chains.db"
    db.write_text(
        "".join(f"Friends(P{c}_{i}, P{c}_{i + 1})\n" for c in range(3) for i in range(7)) + "0.9 Smokes(P0_0)\n",
        encoding="utf-8",
    )
    arguments = [str(rules), str(db), "-q", "Smokes,Cancer", "--marginals", "--samples", "200", "--json"]
    outputs = []
    for workers in ("1", "2", "3"):
        assert main([*arguments, "--no-timings", "--workers", workers]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1] == outputs[2]
    assert json.loads(outputs[0])["sampling"]["sampled_components"] == 3


@pytest.mark.slow
def test_the_marginals_benchmark_runs(tmp_path: Path) -> None:
    """The benchmark calls the library directly: a change of its API must not leave it broken."""
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "marginals.py"
    command = [sys.executable, str(script), "--sizes", "200", "--samples", "4", "--burn-in", "1", "--workers", "1,2"]
    done = subprocess.run([*command, "--no-accuracy"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [row["workers"] for row in rows] == [1, 2] and rows[0]["unknown_atoms"] == rows[1]["unknown_atoms"] > 0


def _summary_of(trace: np.ndarray) -> ChainSummary:
    """A ChainSummary holding ``trace`` (chains, samples, atoms) and the halves' counts it implies."""
    chains, samples, _ = trace.shape
    half = samples // 2
    atom_true = np.stack([trace[:, :half].sum(axis=1), trace[:, half:].sum(axis=1)], axis=1).astype(np.int64)
    half_samples = np.tile([half, samples - half], (chains, 1))
    return ChainSummary(atom_true, half_samples, trace, np.zeros(0), np.zeros((0, 0)), chains * samples)


def test_effective_samples_of_independent_sticky_and_constant_atoms() -> None:
    """Two chains of 4,000 samples: an atom drawn afresh each sample has about 8,000 effective
    samples; one that switches with probability 0.05 per sample (lag-1 correlation 0.9: an
    integrated autocorrelation time of (1 + 0.9) / (1 - 0.9) = 19) about 8,000 / 19; a constant
    one counts every sample."""
    rng = np.random.default_rng(11)
    chains, samples = 2, 4000
    trace = np.zeros((chains, samples, 3), dtype=bool)
    trace[:, :, 0] = rng.random((chains, samples)) < 0.5
    switches = rng.random((chains, samples)) < 0.05
    trace[:, :, 1] = (np.cumsum(switches, axis=1) + rng.integers(0, 2, (chains, 1))) % 2 == 1
    found = effective_samples(_summary_of(trace))
    assert 0.8 * chains * samples <= found[0] <= chains * samples
    assert abs(found[1] / (chains * samples / 19) - 1) < 0.35
    assert found[2] == chains * samples


@pytest.mark.slow
def test_sampled_intervals_cover_the_exact_probabilities(tmp_path: Path) -> None:
    """MC-SAT forced on the three verdict components (slowly mixing: a verdict atom tied to its
    kinds by hard formulas), 12 seeds of 1,000 samples: the 95% intervals hold the exact
    probability at least 93% of the time. With the binomial floor of independent samples they held
    it 89% of the time (the chains' autocorrelation ignored)."""
    result = _verdict_run(tmp_path, list(VERDICT_EVIDENCE))
    ids = [atom.atom_id for atom in result.atoms if atom.atom_id]
    exact_found = atom_marginals(result.encoding, ids, [(0, i) for i in range(len(ids))])
    assert exact_found is not None and exact_found.exact.all()
    covered = []
    for seed in range(12):
        found = atom_marginals(result.encoding, ids, [(seed, i) for i in range(len(ids))], auto_limit=0)
        assert found is not None and not found.exact.any()
        covered.extend((np.abs(found.probability - exact_found.probability) <= found.interval).tolist())
    assert np.mean(covered) >= 0.93, np.mean(covered)


def test_effective_samples_split_the_chains_and_do_not_depend_on_the_block_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An atom false for the first 60% of each chain and random after it is one that drifts: the
    chains split in halves disagree, so its effective samples are few (unsplit, each chain's own
    autocorrelation would have looked short). Atoms taken one at a time (a small memory budget)
    give what all at once give (to the FFT's rounding)."""
    rng = np.random.default_rng(5)
    chains, samples = 2, 1000
    trace = rng.random((chains, samples, 4)) < 0.5
    trace[:, : int(0.6 * samples), 1] = False
    trace[:, :, 2] = (np.cumsum(rng.random((chains, samples)) < 0.02, axis=1) % 2) == 1
    together = effective_samples(_summary_of(trace))
    assert together[1] < 0.05 * chains * samples < together[0]
    monkeypatch.setattr(sample, "ESS_MEMORY", 1)
    np.testing.assert_allclose(effective_samples(_summary_of(trace)), together, rtol=1e-12)
