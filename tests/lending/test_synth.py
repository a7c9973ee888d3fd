"""Synthetic registers: published format, HMDA edits, determinism, and measurable planted effects.

The effect measurements here share no code with the generator: a linear probability model
per lender on the cleaned frame, peer shares per MSA, mean rate-spread gaps.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from reasoner.errors import UsageError
from reasoner.lending import clean_hmda, read_hmda, synthesize, write_synth
from reasoner.lending.registers.fields import DERIVED_RACE, PUBLISHED_COLUMNS

NUM_APPLICATIONS = 60_000
NUM_LENDERS = 20
DTI_TEXTS = {"<20%", "20%-<30%", "30%-<36%", "50%-60%", ">60%", "NA", "Exempt"} | {
    str(value) for value in range(36, 50)
}


@pytest.fixture(scope="module")
def world() -> tuple[pd.DataFrame, pd.DataFrame]:
    return synthesize(NUM_APPLICATIONS, NUM_LENDERS, 5, simple=True)


@pytest.fixture(scope="module")
def cleaned(world: tuple[pd.DataFrame, pd.DataFrame]) -> pd.DataFrame:
    frame = clean_hmda(world[0], "synth").frame.copy()
    frame["minority"] = ~frame["race"].isin(["White"]) | (frame["ethnicity"] == "Hispanic or Latino")
    frame["majority_minority"] = frame["tract_minority_pct"] > 50
    return frame


def text(raw: pd.DataFrame, name: str) -> pd.Series:
    return raw[name].astype("str")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- format ----------------------------------------------------------------------------------


def test_published_columns_and_strings(world: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    raw, _ = world
    assert list(raw.columns) == list(PUBLISHED_COLUMNS) and len(raw) == NUM_APPLICATIONS
    for name in raw.columns:
        assert all(isinstance(value, str) for value in raw[name].cat.categories), name
    assert raw.isna().sum().sum() == 0


def test_values_look_published(world: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    raw, _ = world
    assert set(text(raw, "debt_to_income_ratio")) <= DTI_TEXTS
    assert set(text(raw, "derived_race")) <= set(DERIVED_RACE)
    assert text(raw, "census_tract").str.fullmatch(r"\d{11}").all()
    assert text(raw, "county_code").str.fullmatch(r"\d{5}").all() and "06037" in set(text(raw, "county_code"))
    amounts = text(raw, "loan_amount").astype(int)
    assert (amounts % 10_000 == 5_000).all()  # midpoint of the $10,000 interval
    values = text(raw, "property_value")
    numbers = values[~values.isin(["NA", "Exempt"])].astype(int)
    assert (numbers % 10_000 == 5_000).all()
    income = text(raw, "income")
    assert income[income != "NA"].str.fullmatch(r"\d+").all()  # thousands of dollars
    assert income[income != "NA"].astype(int).median() < 1000
    leis = text(raw, "lei").unique()
    assert all(len(lei) == 20 for lei in leis)
    assert all(int("".join(str(int(c, 36)) for c in lei)) % 97 == 1 for lei in leis)  # ISO 17442 check digits


def test_hmda_edits_hold(world: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    raw, _ = world
    action = text(raw, "action_taken").astype(int)
    missing = {"NA", "Exempt"}
    assert text(raw, "rate_spread")[action.isin([3, 4, 5, 6, 7])].isin(missing).all()  # V657
    assert text(raw, "interest_rate")[action.isin([3, 4, 5, 7])].isin(missing).all()  # V677
    assert text(raw, "debt_to_income_ratio")[action.isin([4, 5, 6])].isin(missing).all()  # V679
    assert text(raw, "combined_loan_to_value_ratio")[action.isin([4, 5, 6])].isin(missing).all()  # V681
    assert text(raw, "property_value")[action.isin([4, 5])].isin(missing).all()  # V688
    reason = text(raw, "denial_reason-1")
    assert reason[action.isin([3, 7])].isin([str(code) for code in range(1, 10)] + ["1111"]).all()  # V670
    assert reason[~action.isin([3, 7])].isin(["10", "1111"]).all()
    assert text(raw, "rate_spread")[action == 1].ne("NA").all()
    assert text(raw, "debt_to_income_ratio")[action == 3].ne("NA").all()  # denials keep their DTI


def test_traps_are_present(world: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    raw, _ = world
    action = text(raw, "action_taken")
    assert {"1", "2", "3", "4", "5", "6"} <= set(action)
    assert (text(raw, "debt_to_income_ratio") == "Exempt").any()
    assert (text(raw, "denial_reason-1") == "1111").any()
    assert (text(raw, "income") == "NA").any()
    assert (text(raw, "derived_race") == "Race Not Available").any()
    assert (text(raw, "applicant_age") == "8888").any() and (text(raw, "co-applicant_age") == "9999").any()


def test_truth_frame(world: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    raw, truth = world
    assert list(truth.columns[:4]) == ["lei", "discriminates", "kind", "effect_size"]
    assert len(truth) == NUM_LENDERS and truth["lei"].is_unique
    assert set(truth["lei"]) >= set(text(raw, "lei"))
    assert set(truth["kind"]) == {"fair", "disparate_treatment", "redlining", "pricing"}
    assert (truth["discriminates"] == (truth["kind"] != "fair")).all()
    assert (truth.loc[truth["discriminates"], "effect_size"] > 0).all()
    assert (truth.loc[~truth["discriminates"], "effect_size"] == 0).all()
    assert truth["applications"].sum() == NUM_APPLICATIONS
    assert (truth["kind"] == "fair").sum() >= NUM_LENDERS // 2
    assert (truth["pool_gap"] > 0.3).any()  # fair lenders with financially different pools
    counts = text(raw, "lei").value_counts()
    assert counts.max() > 4 * counts.median()  # skewed lender sizes
    assert text(raw, "derived_msa-md").nunique() >= 8


# --- determinism -----------------------------------------------------------------------------


def test_same_seed_same_frames() -> None:
    first, truth_first = synthesize(3_000, 6, 42)
    second, truth_second = synthesize(3_000, 6, 42)
    pd.testing.assert_frame_equal(first.astype("str"), second.astype("str"))
    pd.testing.assert_frame_equal(truth_first, truth_second)
    other, _ = synthesize(3_000, 6, 43)
    assert not first.astype("str").equals(other.astype("str"))


@pytest.mark.parametrize("name", ["lar.csv", "lar.parquet"])
def test_same_seed_same_bytes(tmp_path: Path, name: str) -> None:
    one = write_synth(tmp_path / "one" / name, 4_000, 7, 9)
    two = write_synth(tmp_path / "two" / name, 4_000, 7, 9)
    assert digest(one) == digest(two)
    truth = one.with_name(f"{Path(name).stem}.truth.csv")
    assert truth.exists() and digest(truth) == digest(two.with_name(truth.name))


def test_written_files_read_back(tmp_path: Path) -> None:
    raw, truth = synthesize(4_000, 7, 9)
    csv = read_hmda(write_synth(tmp_path / "lar.csv", 4_000, 7, 9))
    parquet = read_hmda(write_synth(tmp_path / "lar.parquet", 4_000, 7, 9))
    pd.testing.assert_frame_equal(csv, raw.astype("str"))
    pd.testing.assert_frame_equal(parquet, raw.astype("str"))
    written = pd.read_csv(tmp_path / "lar.truth.csv", dtype={"lei": "str", "kind": "str", "group": "str"})
    pd.testing.assert_frame_equal(written, truth)


def test_bad_arguments() -> None:
    with pytest.raises(UsageError):
        synthesize(10, 0, 1)
    empty, truth = synthesize(0, 3, 1)
    assert list(empty.columns) == list(PUBLISHED_COLUMNS) and len(empty) == 0 and len(truth) == 3


# --- the cleaned synthetic register ----------------------------------------------------------


def test_clean_hmda_exclusions_match_the_raw_codes(world: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    raw, _ = world
    result = clean_hmda(raw, "synth")
    assert result.rows_read == NUM_APPLICATIONS and result.id_column == "row"
    action = text(raw, "action_taken").astype(int)
    left = pd.Series(True, index=raw.index)
    expected = {}
    for reason, mask in [
        ("not a decision", action >= 4),
        ("missing income", text(raw, "income") == "NA"),
        ("missing dti", text(raw, "debt_to_income_ratio") == "NA"),
        ("exempt dti", text(raw, "debt_to_income_ratio") == "Exempt"),
        ("missing cltv", text(raw, "combined_loan_to_value_ratio") == "NA"),
        ("exempt cltv", text(raw, "combined_loan_to_value_ratio") == "Exempt"),
        ("missing loan amount", text(raw, "loan_amount") == "NA"),
        ("unknown race code", ~text(raw, "derived_race").isin(DERIVED_RACE)),
        (
            "no group known",
            text(raw, "derived_race").isin(("Race Not Available", "Free Form Text Only"))
            & (text(raw, "derived_ethnicity") != "Hispanic or Latino")
            & ~text(raw, "derived_sex").isin(("Male", "Female")),
        ),
    ]:
        expected[reason] = int((mask & left).sum())
        left &= ~mask
    assert result.exclusions == expected
    assert expected["not a decision"] > 0 and expected["exempt dti"] > 0 and expected["missing income"] > 0
    assert expected["missing dti"] == 0  # V679: a decided application has its DTI (or Exempt)
    assert len(result.usable) == int(left.sum()) > NUM_APPLICATIONS // 2


def denial_gaps(frame: pd.DataFrame) -> pd.DataFrame:
    """Per lender: raw minority-white denial gap and the gap holding financials equal (LPM)."""
    usable = frame[frame["excluded"] == ""]
    rows = []
    for lei, group in usable.groupby("lei"):
        denied = (group["decision"] == "denied").to_numpy(dtype=float)
        minority = group["minority"].to_numpy(dtype=bool)
        design = np.column_stack(
            [
                np.ones(len(group)),
                minority,
                group["dti"],
                group["cltv"],
                np.log(group["loan_amount"] / group["income"]),
                group["loan_type"] == 2,
            ]
        ).astype(float)
        coefficients = np.linalg.lstsq(design, denied, rcond=None)[0]
        rows.append((lei, len(group), denied[minority].mean() - denied[~minority].mean(), coefficients[1]))
    gaps = pd.DataFrame(rows, columns=["lei", "usable", "raw_gap", "conditional_gap"])
    return gaps[gaps["usable"] >= 200]  # lenders too small (or all Exempt) say nothing


def test_disparate_treatment_is_measurable(world: tuple[pd.DataFrame, pd.DataFrame], cleaned: pd.DataFrame) -> None:
    gaps = denial_gaps(cleaned).merge(world[1], on="lei")
    treating = gaps[gaps["kind"] == "disparate_treatment"]
    fair = gaps[gaps["kind"] == "fair"]
    assert len(treating) >= 1 and len(fair) >= 8
    assert treating["conditional_gap"].min() > 0.05
    assert treating["conditional_gap"].mean() > fair["conditional_gap"].quantile(0.9) + 0.03
    assert abs(fair["conditional_gap"].median()) < 0.02


def test_fair_lenders_with_different_pools_show_raw_gaps_only(
    world: tuple[pd.DataFrame, pd.DataFrame], cleaned: pd.DataFrame
) -> None:
    gaps = denial_gaps(cleaned).merge(world[1], on="lei")
    wide = gaps[(gaps["kind"] == "fair") & (gaps["pool_gap"] > 0.3)]
    assert len(wide) >= 1
    raw_gap = np.average(wide["raw_gap"], weights=wide["usable"])
    conditional_gap = np.average(wide["conditional_gap"], weights=wide["usable"])
    assert raw_gap > 0.04  # a raw approval gap …
    assert abs(conditional_gap) < 0.02 and conditional_gap < raw_gap / 3  # … that the financials explain


def test_redlining_is_measurable(world: tuple[pd.DataFrame, pd.DataFrame], cleaned: pd.DataFrame) -> None:
    totals = cleaned.groupby("msa")["majority_minority"].agg(["sum", "count"])
    rows = []
    for lei, group in cleaned.groupby("lei"):
        own = group.groupby("msa")["majority_minority"].agg(["sum", "count"])
        peers = (totals["sum"] - own["sum"].reindex(totals.index, fill_value=0)) / (
            totals["count"] - own["count"].reindex(totals.index, fill_value=0)
        )
        share_gap = group["majority_minority"].mean() - group["msa"].map(peers).mean()
        usable = group[group["excluded"] == ""]
        design = np.column_stack(
            [
                np.ones(len(usable)),
                usable["majority_minority"],
                usable["minority"],
                usable["dti"],
                usable["cltv"],
                np.log(usable["loan_amount"] / usable["income"]),
            ]
        ).astype(float)
        denied = (usable["decision"] == "denied").to_numpy(dtype=float)
        rows.append((lei, len(usable), share_gap, np.linalg.lstsq(design, denied, rcond=None)[0][1]))
    measured = pd.DataFrame(rows, columns=["lei", "usable", "share_gap", "tract_gap"]).merge(world[1], on="lei")
    redlining = measured[measured["kind"] == "redlining"]
    others = measured[measured["kind"] != "redlining"]
    assert len(redlining) >= 1
    assert redlining["share_gap"].max() < -0.1 < others["share_gap"].min()  # fewer applications …
    others = others[others["usable"] >= 200]
    assert redlining["tract_gap"].min() > 0.04  # … and worse outcomes there
    assert redlining["tract_gap"].mean() > others["tract_gap"].quantile(0.9) + 0.03


def test_pricing_disparity_is_measurable(world: tuple[pd.DataFrame, pd.DataFrame], cleaned: pd.DataFrame) -> None:
    originated = cleaned[(cleaned["action_taken"] == 1) & cleaned["rate_spread"].notna()]
    gaps = (
        originated.groupby("lei")
        .apply(
            lambda group: (
                group.loc[group["minority"], "rate_spread"].mean() - group.loc[~group["minority"], "rate_spread"].mean()
            ),
            include_groups=False,
        )
        .rename("price_gap")
        .reset_index()
        .merge(world[1], on="lei")
    )
    pricing = gaps[gaps["kind"] == "pricing"]
    assert len(pricing) >= 1
    assert pricing["price_gap"].min() > gaps.loc[gaps["kind"] != "pricing", "price_gap"].max()
    assert (pricing["price_gap"] > 0.25).all()


@pytest.mark.parametrize(("lenders", "kinds"), [(1, {"fair"}), (2, {"fair", "disparate_treatment"}), (6, set())])
def test_small_worlds_keep_half_fair(lenders: int, kinds: set[str]) -> None:
    _, truth = synthesize(500, lenders, 3)
    assert len(truth) == lenders and (truth["kind"] == "fair").sum() >= (lenders + 1) // 2
    assert kinds <= set(truth["kind"])
    if lenders == 6:
        assert set(truth["kind"]) == {"fair", "disparate_treatment", "redlining", "pricing"}


# --- the default register: confounds of real registers ---------------------------------------
# Measured on the published columns only (no code shared with the generator).

SIMPLE_CSV_SHA256 = "0a51fb355b915850b5eefec418215396d0b805a81667c1f9e153577c32706acd"
SIMPLE_TRUTH_SHA256 = "6a11509a780d5b3f3309290eb4151a9b75a64528292bf61821269764bdd948b8"


def test_simple_register_is_the_generator_before_confounds(tmp_path: Path) -> None:
    """Digests of ``write_synth(…, 3000, 6, 42)`` written before the confounds were added."""
    path = write_synth(tmp_path / "lar.csv", 3_000, 6, 42, simple=True)
    assert digest(path) == SIMPLE_CSV_SHA256 and digest(tmp_path / "lar.truth.csv") == SIMPLE_TRUTH_SHA256
    assert digest(write_synth(tmp_path / "default.csv", 3_000, 6, 42)) != SIMPLE_CSV_SHA256


@pytest.fixture(scope="module")
def confounded() -> tuple[pd.DataFrame, pd.DataFrame]:
    raw, truth = synthesize(60_000, 120, 7)
    return raw.astype("str"), truth


def test_confounded_truth_names_the_group(confounded: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    _, truth = confounded
    assert list(truth.columns) == [
        "lei", "discriminates", "kind", "effect_size", "group", "applications", "pool_gap", "exempt",
        "buys_in_white_tracts",
    ]  # fmt: skip
    fair = truth["kind"] == "fair"
    assert (truth.loc[fair, "group"] == "none").all() and not truth.loc[~fair, "group"].eq("none").any()
    assert (truth.loc[truth["kind"] == "redlining", "group"] == "majority-minority tracts").all()
    one_group = truth.loc[truth["kind"].isin(["disparate_treatment", "pricing"]), "group"]
    assert "minority" in set(one_group) and len(set(one_group) & {"Black", "Hispanic", "Asian"}) >= 2
    odds = np.exp(truth.loc[truth["kind"] == "disparate_treatment", "effect_size"])
    assert odds.between(1.49, 3.01).all()
    assert truth.loc[truth["kind"] == "pricing", "effect_size"].between(0.1, 0.3).all()
    sizes = truth["applications"]
    assert 200 <= sizes.median() <= 450 and sizes.max() > 8 * sizes.median()  # many small lenders
    assert sizes[truth["discriminates"]].min() < 300  # small lenders discriminate too
    assert truth.loc[truth["buys_in_white_tracts"], "kind"].eq("fair").all() and truth["buys_in_white_tracts"].any()


def test_product_mix_and_fha_premium(confounded: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    raw, _ = confounded
    fha = raw["loan_type"] == "2"
    white = (raw["derived_race"] == "White") & (raw["derived_ethnicity"] == "Not Hispanic or Latino")
    black = raw["derived_race"] == "Black or African American"
    hispanic = raw["derived_ethnicity"] == "Hispanic or Latino"
    assert fha[black].mean() > fha[white].mean() + 0.08 and fha[hispanic].mean() > fha[white].mean() + 0.06
    originated = (raw["action_taken"] == "1") & (raw["rate_spread"] != "Exempt") & (raw["lien_status"] == "1")
    spread = raw.loc[originated, "rate_spread"].astype(float)
    premium = spread[fha[originated]].mean() - spread[raw.loc[originated, "loan_type"] == "1"].mean()
    assert premium > 0.6


def test_underwriting_jumps_at_dti_and_cltv_thresholds(confounded: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    raw, _ = confounded
    decided = raw[raw["action_taken"].isin(["1", "2", "3"]) & ~raw["debt_to_income_ratio"].isin(["NA", "Exempt"])]
    denied = decided["action_taken"] == "3"
    dti = decided["debt_to_income_ratio"]
    just_below = denied[dti.isin(["41", "42", "43"])].mean()
    just_above = denied[dti.isin(["44", "45", "46"])].mean()
    assert just_above > just_below + 0.08  # a jump, not the gentle slope between 36 and 43
    assert denied[dti == "50%-60%"].mean() > denied[dti.isin(["47", "48", "49"])].mean() + 0.1
    cltv = decided["combined_loan_to_value_ratio"].astype(float)
    assert denied[cltv.between(95.5, 99)].mean() > denied[cltv.between(91, 94.5)].mean() + 0.1


def test_denial_reasons_follow_the_file(confounded: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    raw, _ = confounded
    denied = raw["action_taken"].isin(["3", "7"]) & (raw["denial_reason-1"] != "1111")
    first = raw.loc[denied, "denial_reason-1"]
    assert set(first) <= {"1", "3", "4", "9"}
    reasons = raw.loc[denied, ["denial_reason-1", "denial_reason-2", "denial_reason-3"]]
    high_dti = raw.loc[denied, "debt_to_income_ratio"].isin([">60%"])
    assert reasons[high_dti].eq("1").any(axis=1).all()  # DTI over 60% is always among the reasons
    named_dti = reasons.eq("1").any(axis=1)
    assert not named_dti[raw.loc[denied, "debt_to_income_ratio"].isin(["<20%", "20%-<30%"])].any()
    for index in (2, 3, 4):
        assert raw.loc[~denied, f"denial_reason-{index}"].eq("").all()
    repeated = (reasons["denial_reason-1"] == reasons["denial_reason-2"]) & (reasons["denial_reason-2"] != "")
    assert not repeated.any()


def test_published_fields_vary_as_in_real_registers(confounded: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    raw, _ = confounded
    assert {"1", "2", "3"} <= set(raw["occupancy_type"]) and {"120", "180", "360"} <= set(raw["loan_term"])
    assert {"1", "2"} <= set(raw["open-end_line_of_credit"])
    assert {"1", "2"} <= set(raw["business_or_commercial_purpose"])
    assert raw.loc[raw["open-end_line_of_credit"] == "1", "lien_status"].eq("2").all()
    assert raw.loc[raw["business_or_commercial_purpose"] == "1", "occupancy_type"].eq("3").all()
    assert {"7", "8"} <= set(raw["action_taken"])
    hispanic = raw["derived_ethnicity"] == "Hispanic or Latino"
    without_race = raw.loc[hispanic, "derived_race"].eq("Race Not Available").mean()
    assert 0.25 < without_race < 0.5
    assert raw.loc[hispanic & (raw["derived_race"] == "Race Not Available"), "applicant_race-1"].eq("6").all()
    assert (raw["derived_sex"] == "Sex Not Available").any()


def test_purchased_loans_come_from_white_tracts(confounded: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    raw, truth = confounded
    buyers = set(truth.loc[truth["buys_in_white_tracts"], "lei"])
    minority = raw["tract_minority_population_percent"].astype(float)
    at_buyers = raw["lei"].isin(buyers)
    purchased = at_buyers & (raw["action_taken"] == "6")
    assert purchased.sum() > 0.2 * at_buyers.sum()
    applied = at_buyers & raw["action_taken"].isin(["1", "2", "3", "4", "5"])
    assert minority[purchased].mean() < minority[applied].mean() - 10


def test_fair_lenders_deny_minority_applicants_a_little_more(confounded: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    """The unpublished credit gap: fair lenders' Black applicants are denied more than White
    ones with the same published financials and product, by a small pooled odds ratio."""
    raw, truth = confounded
    fair = raw["lei"].isin(set(truth.loc[truth["kind"] == "fair", "lei"]))
    decided = fair & raw["action_taken"].isin(["1", "2", "3"]) & ~raw["debt_to_income_ratio"].isin(["NA", "Exempt"])
    rows = raw[decided & ~raw["income"].eq("NA")]
    white = (rows["derived_race"] == "White") & (rows["derived_ethnicity"] == "Not Hispanic or Latino")
    black = rows["derived_race"] == "Black or African American"
    rows = rows[white | black]
    design = pd.get_dummies(
        rows[["debt_to_income_ratio", "loan_type", "loan_purpose", "lien_status", "occupancy_type"]], dtype=float
    )
    cltv = rows["combined_loan_to_value_ratio"].astype(float)
    design["log_income"] = np.log(rows["income"].astype(float))
    design["log_amount"] = np.log(rows["loan_amount"].astype(float))
    for cut in (80, 95):
        design[f"cltv_over_{cut}"] = (cltv > cut).astype(float)
    design["cltv"] = cltv / 100
    design["black"] = (rows["derived_race"] == "Black or African American").astype(float)
    denied = rows["action_taken"].eq("3").to_numpy()
    model = LogisticRegression(C=1e6, solver="newton-cholesky").fit(design.to_numpy(), denied)
    odds_ratio = float(np.exp(model.coef_[0][-1]))
    assert 1.05 < odds_ratio < 1.6


@pytest.mark.slow
def test_cli_simple_flag_writes_the_simple_register(
    tmp_path: Path, reason: Callable[..., CompletedProcess[str]]
) -> None:
    done = reason(["synth", tmp_path / "lar.csv", "--applications", 3000, "--lenders", 6, "--seed", 42, "--simple"])
    assert done.returncode == 0, done.stderr
    assert digest(tmp_path / "lar.csv") == SIMPLE_CSV_SHA256
    default = reason(["synth", tmp_path / "default.csv", "--applications", 3000, "--lenders", 6, "--seed", 42])
    assert default.returncode == 0 and "group" in (tmp_path / "default.truth.csv").read_text().splitlines()[0]


def test_a_register_is_written_whole_or_not_at_all(tmp_path: Path) -> None:
    from reasoner.atomic import written_whole

    target = tmp_path / "facts.parquet"
    target.write_bytes(b"previous")
    with pytest.raises(RuntimeError), written_whole(target) as partial:
        partial.write_bytes(b"half")
        raise RuntimeError("stopped")
    assert target.read_bytes() == b"previous" and [p.name for p in tmp_path.iterdir()] == ["facts.parquet"]
    with written_whole(target) as partial:
        partial.write_bytes(b"whole")
    assert target.read_bytes() == b"whole" and [p.name for p in tmp_path.iterdir()] == ["facts.parquet"]
    fresh = tmp_path / "fresh.txt"
    fresh.write_text("")
    with written_whole(tmp_path / "new.txt") as partial:
        partial.write_text("x")
    assert (tmp_path / "new.txt").stat().st_mode == fresh.stat().st_mode  # the permissions of any new file


@pytest.mark.slow
def test_a_synth_stopped_midway_leaves_no_register(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    target = tmp_path / "facts.parquet"
    command = [sys.executable, "-m", "reasoner", "synth", str(target), "--applications", "3000000", "--simple"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not any(tmp_path.glob(".facts.parquet.*.partial")) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # writing, not yet done
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode != 0, "the register was written before the signal: make it larger"
    assert "terminated" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []
