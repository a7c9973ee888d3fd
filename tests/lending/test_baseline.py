"""The analyst baseline: closed forms on hand-built lenders, the rows it keeps, Holm, and speed.

With every control constant within a lender the regressions reduce to two-group comparisons:
the denial model to the 2x2 table (log odds ratio, Wald standard error
sqrt(1/a_m + 1/d_m + 1/a_w + 1/d_w)) and the pricing model to a difference in means whose HC3
variance is RSS_m / (n_m - 1)^2 + RSS_w / (n_w - 1)^2 (each row's leverage is 1 / n of its group).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from reasoner.lending import clean_hmda, synthesize
from reasoner.lending.evidence.tables import HISPANIC, WHITE, add_group_columns
from reasoner.lending.synthetic.baseline import analyst_baseline

BLACK = "Black or African American"


def rows(lei: str, race: str, decisions: list[str], spreads: list[float] | None = None, **fixed: object) -> list[dict]:
    spreads = spreads if spreads is not None else [np.nan] * len(decisions)
    minority = WHITE if race == WHITE else "Minority"
    return [
        {
            "lei": lei,
            "excluded": fixed.get("excluded", ""),
            "decision": decision,
            "action_taken": 1 if decision == "approved" else 3,
            "rate_spread": spread,
            "income": 90_000.0,
            "dti": 36.0,
            "cltv": 80.0,
            "loan_type": 1,
            "loan_purpose": 1,
            "race_ethnicity": race,
            "minority": minority,
            "sex": "Male",
        }
        for decision, spread in zip(decisions, spreads, strict=True)
    ]


def frame(*parts: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([row for part in parts for row in part]).astype({"action_taken": "Int64"})


def test_denial_is_the_two_by_two_table() -> None:
    table = frame(
        rows("L1", BLACK, ["approved"] * 2 + ["denied"] * 8),
        rows("L1", WHITE, ["approved"] * 9 + ["denied"] * 1),
    )
    result = analyst_baseline(table).set_index("lei")
    z = np.log(36) / np.sqrt(1 / 2 + 1 / 8 + 1 / 9 + 1)
    p = 2 * stats.norm.sf(z)
    assert result.loc["L1", "tests"] == 2  # minority and Black: the same rows
    assert result.loc["L1", "p_value"] == pytest.approx(p, rel=0.1)  # the light penalty moves it a little
    assert result.loc["L1", "p_adjusted"] == pytest.approx(2 * result.loc["L1", "p_value"])  # Holm over 2


def test_pricing_uses_hc3_standard_errors() -> None:
    rng = np.random.default_rng(3)
    black = np.round(0.5 + rng.normal(0, 0.4, 30), 3)
    white = np.round(0.3 + rng.normal(0, 0.1, 60), 3)
    table = frame(
        rows("L1", BLACK, ["approved"] * 30, list(black)),
        rows("L1", WHITE, ["approved"] * 60, list(white)),
    )
    error = np.sqrt(((black - black.mean()) ** 2).sum() / 29**2 + ((white - white.mean()) ** 2).sum() / 59**2)
    t = (black.mean() - white.mean()) / error
    p = 2 * stats.t.sf(t, 90 - 2)
    result = analyst_baseline(table).set_index("lei")
    assert result.loc["L1", "p_value"] == pytest.approx(p, rel=1e-6)
    assert result.loc["L1", "strongest"] in {"pricing: minority", "pricing: Black"}


def test_estimates_favouring_the_group_are_not_disadvantage() -> None:
    table = frame(
        rows("L1", BLACK, ["approved"] * 9 + ["denied"] * 1),
        rows("L1", WHITE, ["approved"] * 2 + ["denied"] * 8),
    )
    assert analyst_baseline(table)["p_value"].iloc[0] == 1.0


def test_hispanic_applicants_without_race_are_kept_and_small_groups_are_not_tested() -> None:
    hispanic = rows("L1", HISPANIC, ["approved"] * 2 + ["denied"] * 8, excluded="race not available")
    table = frame(
        hispanic,
        rows("L1", WHITE, ["approved"] * 9 + ["denied"] * 1),
        rows("L2", BLACK, ["approved"] * 2 + ["denied"] * 2),
        rows("L2", WHITE, ["approved"] * 9 + ["denied"] * 1),
        rows("L3", BLACK, ["approved"] * 9 + ["denied"] * 1, excluded="missing income"),
        rows("L3", WHITE, ["approved"] * 9 + ["denied"] * 1),
    )
    result = analyst_baseline(table).set_index("lei")
    assert result.loc["L1", "tests"] == 2 and result.loc["L1", "strongest"] in {"denial: Hispanic", "denial: minority"}
    assert result.loc["L1", "p_value"] < 0.01
    assert result.loc["L2", "tests"] == 0 and np.isnan(result.loc["L2", "p_adjusted"])
    assert "fewer than 5" in result.loc["L2", "reason"]
    assert result.loc["L3", "tests"] == 0  # other exclusions stay excluded


@pytest.mark.slow
def test_a_confounded_register_ranks_pricing_lenders_and_is_fast() -> None:
    raw, truth = synthesize(40_000, 80, 21)
    table = add_group_columns(clean_hmda(raw, "synth").frame, 50.0)
    started = time.perf_counter()
    result = analyst_baseline(table)
    assert time.perf_counter() - started < 30  # seconds on a shared 2-core machine
    merged = truth.merge(result, on="lei", how="left")
    pricing = merged.loc[merged["kind"] == "pricing", "p_adjusted"]
    fair = merged.loc[merged["kind"] == "fair", "p_adjusted"]
    assert (pricing < 0.05).mean() >= 0.5 and (fair < 0.05).mean() < 0.15
