"""The lender risk score: the marginal probability of the verdict atom (``audit/score.py``).

The bundled sample's lenders (one audit per session, ``sample_audit``) against a closed form of
the rule files' presumptions, and a small register audited with every lender component sampled
(``marginal_exact_atoms = 0``) in one partition and in one partition per lender.
"""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from support import REPOSITORY

from reasoner.errors import RuleError
from reasoner.lending.audit.run import audit
from reasoner.lending.config import TIERS, load_config

RULES = REPOSITORY / "rules"


@pytest.fixture(scope="module")
def lenders(sample_audit: tuple[Path, Path]) -> pd.DataFrame:
    return pd.read_parquet(sample_audit[1] / "lenders.parquet")


def presumption() -> float:
    """P(Flagged) of a lender without evidence, from the rule files' unit weights on the four kinds
    alone: the verdict is their disjunction and each is independent, ``1 − Π (1 − σ(w))``."""
    config = load_config(RULES / "audit.toml")
    weights = {}
    for path in sorted(RULES.glob("*.mln")):
        for line in path.read_text(encoding="utf-8").splitlines():
            found = re.fullmatch(r"(-?\d+(?:\.\d+)?)\s+(\w+)\(l\)", line.strip())
            if found and found[2] in dict(config.lender_kinds):
                weights[found[2]] = float(found[1])
    assert set(weights) == set(dict(config.lender_kinds))
    return 1 - math.prod(1 - 1 / (1 + math.exp(-w)) for w in weights.values())


@pytest.mark.slow  # an audit of the sample
def test_a_lender_without_evidence_scores_the_presumption(lenders: pd.DataFrame) -> None:
    bare = lenders[lenders["violation_score"] == 0]
    assert len(bare) >= 3
    assert (bare["risk_score"] == round(100 * presumption(), 2)).all()
    assert (lenders["risk_interval"] == 0).all()  # the library's lender components are enumerated


@pytest.mark.slow  # an audit of the sample
def test_unflagged_lenders_share_a_score_only_when_their_evidence_is_the_same(lenders: pd.DataFrame) -> None:
    """The old max-marginal score gave every unflagged lender whose cheapest way to be flagged was
    the redlining presumption the same 7.59, whatever evidence it had on the other kinds."""
    unflagged = lenders[~lenders["flagged"]]
    assert unflagged["risk_score"].nunique() >= 3
    assert (unflagged.groupby("risk_score")["violation_score"].nunique() == 1).all()
    evidence = unflagged[unflagged["violation_score"] > 0]
    assert len(evidence) >= 2 and (evidence["risk_score"] > round(100 * presumption(), 2)).all()
    assert set(unflagged["margin"]) == {2.5}  # ... all of them at the same margin


@pytest.mark.slow  # an audit of the sample
def test_tiers_and_confidence_follow_the_probability(lenders: pd.DataFrame) -> None:
    config = load_config(RULES / "audit.toml")
    assert (lenders["flagged"] == lenders["risk_tier"].isin(TIERS[:3])).all()
    for row in lenders.itertuples():
        verdict = row.risk_score / 100 if row.flagged else 1 - row.risk_score / 100
        if row.verdict_status not in ("FLAGGED", "CLEARED") or not 0.5 <= verdict < 0.9999:
            continue
        log_odds = math.log(verdict / (1 - verdict))
        if any(abs(log_odds - low) < 0.01 for _, low in config.confidence):
            continue  # the score is rounded to 2 decimals: too close to a cut-off to tell
        label = next((name for name, low in config.confidence if log_odds >= low), "LOW_CONFIDENCE")
        assert row.confidence == label, row


@pytest.fixture(scope="module")
def sampled(sample_audit: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The rule library with every lender component sampled (200 samples a chain), and a register
    of four of the sample's lenders (one flagged)."""
    folder = tmp_path_factory.mktemp("sampled")
    rules = folder / "rules"
    shutil.copytree(RULES, rules)
    config = rules / "audit.toml"
    text = config.read_text(encoding="utf-8")
    text = text.replace("marginal_exact_atoms = 12", "marginal_exact_atoms = 0")
    config.write_text(text.replace("marginal_samples = 1000", "marginal_samples = 200"), encoding="utf-8")
    frame = pd.read_parquet(sample_audit[0] / "sample.parquet")
    known = pd.read_parquet(sample_audit[1] / "lenders.parquet").sort_values("lei")
    chosen = [*known[known["flagged"]]["lei"][:1], *known[~known["flagged"]]["lei"][:3]]
    register = folder / "four.parquet"
    frame[frame["lei"].isin(chosen)].to_parquet(register)
    return rules, register


@pytest.mark.slow  # an audit of the sample
def test_sampled_scores_do_not_depend_on_the_partitions(sampled: tuple[Path, Path]) -> None:
    """Seeded per lender (from the LEI): the same bits in one partition and in one per lender. (How
    close MC-SAT comes to the exact probabilities is tested in tests/engine/test_marginals.py.)"""
    rules, register = sampled
    together = audit([rules], register, workers=1).findings.lenders.sort_values("lei").reset_index(drop=True)
    apart = audit([rules], register, workers=1, partition_rows=1).findings.lenders
    apart = apart.sort_values("lei").reset_index(drop=True)
    columns = ["lei", "risk_score", "risk_interval", "risk_tier", "confidence", "flagged"]
    pd.testing.assert_frame_equal(together[columns], apart[columns])
    assert (together["risk_interval"] > 0).all() and together["risk_score"].between(0, 100).all()


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("marginal_samples = 1000", "marginal_samples = 1", "'marginal_samples' must be between 2 and 1000000, not 1"),
        ("marginal_samples = 1000", "marginal_samples = 10.5", "'marginal_samples' must be"),
        ("marginal_seed = 0", "marginal_seed = -3", "'marginal_seed' must be 0 or more, not -3"),
        ("marginal_exact_atoms = 12", "marginal_exact_atoms = 21", "'marginal_exact_atoms' must be between 0 and 20"),
    ],
)
def test_sampling_settings_are_checked_with_their_position(tmp_path: Path, old: str, new: str, expected: str) -> None:
    text = (RULES / "audit.toml").read_text(encoding="utf-8")
    assert old in text
    config = tmp_path / "audit.toml"
    config.write_text(text.replace(old, new), encoding="utf-8")
    line = next(number for number, content in enumerate(text.splitlines(), 1) if content.startswith(old))
    with pytest.raises(RuleError) as caught:
        load_config(config)
    assert expected in caught.value.render() and f"audit.toml:{line}:" in caught.value.render()
