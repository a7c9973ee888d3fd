"""Render synthetic applications as the public LAR: 99 string columns, codes as published.

Each column is a pandas categorical built from integer codes and the strings they stand for,
so a column costs one or two bytes a row whatever its text. Values follow the public data
dictionary and the HMDA edits (see ``reasoner.lending.registers.fields``): pricing is ``NA`` unless the
loan was originated or approved (V657, V677), DTI and CLTV are ``NA`` for withdrawn,
incomplete and purchased files (V679, V681), property value for withdrawn and incomplete
(V688); a partially exempt lender reports ``Exempt`` (text fields) or ``1111`` (coded fields).
Records of the confounded register (``synth``'s default) also carry occupancy, loan term,
open-end and business-purpose flags, up to three ranked denial reasons and Hispanic
applicants without a race (race code 6, 'Race Not Available'); without them (``--simple``) those
columns are written as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from reasoner.lending.registers.fields import DTI_BUCKETS, PUBLISHED_COLUMNS

if TYPE_CHECKING:
    from reasoner.lending.synthetic.synth import World

__all__ = ["AGES", "DTI_TEXTS", "GROUP_RACE", "YEAR", "dti_as_read", "dti_codes", "publish_register"]

YEAR = "2022"
LOAN_TYPE_NAMES = ("Conventional", "FHA", "VA", "FSA/RHS")
LIEN_NAMES = ("First Lien", "Subordinate Lien")
CONFORMING_LIMIT = 647_200
# latent groups: 0 White, 1 Black, 2 Hispanic (White race), 3 Asian, 4 other minority race
GROUP_RACE = ("White", "Black or African American", "White", "Asian", "American Indian or Alaska Native")
GROUP_RACE_CODE = ("5", "3", "5", "2", "1")
AGES = ("<25", "25-34", "35-44", "45-54", "55-64", "65-74", ">74")


DTI_TEXTS = ("<20%", "20%-<30%", "30%-<36%", *(str(value) for value in range(36, 50)), "50%-60%", ">60%")


def dti_codes(dti: np.ndarray) -> np.ndarray:
    """Index into ``DTI_TEXTS`` of the published string of each exact ratio (percent)."""
    exact = np.clip(np.floor(dti), 36, 49).astype(np.int64) - 33
    codes: np.ndarray = np.select([dti < 20, dti < 30, dti < 36, dti < 50, dti <= 60], [0, 1, 2, exact, 17], 18)
    return codes


def dti_as_read(dti: np.ndarray) -> np.ndarray:
    """The number a reader of the published string gets back (``fields.DTI_BUCKETS``)."""
    return np.select(
        [dti < 20, dti < 30, dti < 36, dti < 50, dti <= 60],
        [DTI_BUCKETS["<20%"], DTI_BUCKETS["20%-<30%"], DTI_BUCKETS["30%-<36%"], np.floor(dti), DTI_BUCKETS["50%-60%"]],
        DTI_BUCKETS[">60%"],
    )


def publish_register(world: World, record: dict[str, np.ndarray], size: int) -> pd.DataFrame:
    """The published-format frame for one batch of synthetic applications."""
    msas = world.msas
    lender, action, group = record["lender"], record["action"], record["group"]
    exempt = world.exempt[lender]
    originated = action == 1
    priced = np.isin(action, (1, 2))
    no_ratios = np.isin(action, (4, 5, 6))
    denied = np.isin(action, (3, 7))
    unavailable = (record["unavailable"] < 0.12) | ((action == 6) & (record["unavailable"] < 0.5))
    joint = ~unavailable & (record["coapplicant"] < 0.05) & (group > 0)
    coapplicant = joint | (record["coapplicant"] < 0.4)
    sex = np.select(
        [
            (record["sex"] < 0.05) | unavailable & (record["sex"] < 0.5),
            coapplicant & (record["sex"] < 0.6),
            record["sex"] < 0.78,
        ],
        [3, 2, 0],
        1,
    )  # 0 Male, 1 Female, 2 Joint, 3 not available
    age = np.where((action == 6) & (record["unavailable"] < 0.05), len(AGES), record["age"])
    fine = (record["noise"] * 7.0) % 1.0
    race_missing = record.get("race_missing", np.zeros(size, dtype=bool))
    realistic = "occupancy" in record
    columns: dict[str, pd.Categorical] = {}

    def put(name: str, codes: np.ndarray, texts: Sequence[str], *overrides: tuple[np.ndarray, str]) -> None:
        columns[name] = _categorical(codes, texts, overrides)

    def const(name: str, text: str, *overrides: tuple[np.ndarray, str]) -> None:
        put(name, np.zeros(size, dtype=np.int64), [text], *overrides)

    def number(name: str, values: np.ndarray, digits: int, *overrides: tuple[np.ndarray, str]) -> None:
        codes, texts = _number_codes(values, digits)
        put(name, codes, texts, *overrides)

    const("activity_year", YEAR)
    put("lei", lender, list(world.lei))
    put("derived_msa-md", record["msa"], [msa[0] for msa in msas])
    put("state_code", record["msa"], [msa[1] for msa in msas])
    put("county_code", record["msa"], [msa[2] for msa in msas])
    put("census_tract", record["tract"], list(world.tract_code))
    const("conforming_loan_limit", "C", (record["loan_amount"] > CONFORMING_LIMIT, "NC"))
    products = [f"{kind}:{lien}" for kind in LOAN_TYPE_NAMES for lien in LIEN_NAMES]
    put("derived_loan_product_type", (record["loan_type"] - 1) * 2 + (record["lien"] - 1), products)
    const("derived_dwelling_category", "Single Family (1-4 Units):Site-Built")
    hispanic = group == 2
    const(
        "derived_ethnicity",
        "Not Hispanic or Latino",
        (hispanic, "Hispanic or Latino"),
        (hispanic & joint, "Joint"),
        (unavailable, "Ethnicity Not Available"),
    )
    put(
        "derived_race",
        group,
        list(GROUP_RACE),
        (joint & ~hispanic, "Joint"),
        (race_missing, "Race Not Available"),
        (unavailable, "Race Not Available"),
    )
    put("derived_sex", sex, ["Male", "Female", "Joint", "Sex Not Available"])
    put("action_taken", action - 1, [str(code) for code in range(1, 9)])
    purchasers = np.array([0, 1, 3, 5, 6, 71])[(fine * 6).astype(np.int64)]
    number("purchaser_type", np.where(np.isin(action, (1, 6)), purchasers, 0), 0)
    const("preapproval", "2", (np.isin(action, (7, 8)), "1"))
    number("loan_type", record["loan_type"], 0)
    number("loan_purpose", record["purpose"], 0)
    number("lien_status", record["lien"], 0)
    if realistic:
        const("reverse_mortgage", "2", (exempt, "1111"))
        const("open-end_line_of_credit", "2", (record["open_end"], "1"), (exempt, "1111"))
        const("business_or_commercial_purpose", "2", (record["business"], "1"), (exempt, "1111"))
    else:
        for name in ("reverse_mortgage", "open-end_line_of_credit", "business_or_commercial_purpose"):
            const(name, "2", (exempt, "1111"))
    number("loan_amount", record["loan_amount"], 0)
    number("combined_loan_to_value_ratio", record["cltv"], 3, (no_ratios, "NA"), (exempt, "Exempt"))
    number("interest_rate", record["interest_rate"], 3, (~priced & (action != 6), "NA"), (exempt, "Exempt"))
    number("rate_spread", record["rate_spread"], 3, (~priced, "NA"), (exempt, "Exempt"))
    const("hoepa_status", "3", (np.isin(action, (1, 6)), "2"))
    number(
        "total_loan_costs",
        np.round(2500 + 0.008 * record["loan_amount"], -1),
        2,
        (~originated, "NA"),
        (exempt, "Exempt"),
    )
    const("total_points_and_fees", "NA", (exempt, "Exempt"))
    number(
        "origination_charges",
        np.round(800 + 0.004 * record["loan_amount"], -1),
        2,
        (~originated, "NA"),
        (exempt, "Exempt"),
    )
    number(
        "discount_points",
        np.round(0.005 * record["loan_amount"], -1),
        2,
        (originated & (fine > 0.3), ""),
        (~originated, "NA"),
        (exempt, "Exempt"),
    )
    const("lender_credits", "", (~originated, "NA"), (exempt, "Exempt"))
    if realistic:
        number("loan_term", record["term"], 0, (exempt, "Exempt"))
    else:
        const("loan_term", "360", (fine < 0.1, "180"), (exempt, "Exempt"))
    for name in ("prepayment_penalty_term", "intro_rate_period"):
        const(name, "NA", (exempt, "Exempt"))
    for name in ("negative_amortization", "interest_only_payment", "balloon_payment", "other_nonamortizing_features"):
        const(name, "2", (exempt, "1111"))
    number("property_value", record["property_value"], 0, (np.isin(action, (4, 5)), "NA"), (exempt, "Exempt"))
    const("construction_method", "1")
    if realistic:
        number("occupancy_type", record["occupancy"], 0)
    else:
        const("occupancy_type", "1", (fine > 0.9, "2"), (fine > 0.96, "3"))
    const("manufactured_home_secured_property_type", "3", (exempt, "1111"))
    const("manufactured_home_land_property_interest", "5", (exempt, "1111"))
    const("total_units", "1")
    const("multifamily_affordable_units", "NA")
    income_na = record["income_na"] | (action == 6) & (record["unavailable"] < 0.3)
    number("income", record["income"], 0, (income_na, "NA"))
    put("debt_to_income_ratio", dti_codes(record["dti"]), DTI_TEXTS, (no_ratios, "NA"), (exempt, "Exempt"))
    scores = np.array([1, 2, 3, 7, 8])[(fine * 5).astype(np.int64)]
    number("applicant_credit_score_type", scores, 0, (no_ratios, "9"), (exempt, "1111"))
    number("co-applicant_credit_score_type", scores, 0, (no_ratios, "9"), (~coapplicant, "10"), (exempt, "1111"))
    ethnicity = np.where(hispanic, np.where(fine < 0.3, 11, 1), 2)
    number("applicant_ethnicity-1", ethnicity, 0, (unavailable, "3"))
    number("co-applicant_ethnicity-1", ethnicity, 0, (hispanic & joint, "2"), (unavailable, "3"), (~coapplicant, "5"))
    for person in ("applicant", "co-applicant"):
        for index in range(2, 6):
            const(f"{person}_ethnicity-{index}", "")
    const("applicant_ethnicity_observed", "2")
    const("co-applicant_ethnicity_observed", "2", (~coapplicant, "4"))
    put("applicant_race-1", group, list(GROUP_RACE_CODE), (race_missing | unavailable, "6"))
    put("co-applicant_race-1", group, list(GROUP_RACE_CODE), (joint, "5"), (unavailable, "6"), (~coapplicant, "8"))
    for person in ("applicant", "co-applicant"):
        for index in range(2, 6):
            const(f"{person}_race-{index}", "")
    const("applicant_race_observed", "2")
    const("co-applicant_race_observed", "2", (~coapplicant, "4"))
    put("applicant_sex", sex, ["1", "2", "1", "3"])
    put("co-applicant_sex", sex, ["2", "1", "2", "3"], (~coapplicant, "5"))
    const("applicant_sex_observed", "2")
    const("co-applicant_sex_observed", "2", (~coapplicant, "4"))
    put("applicant_age", age, [*AGES, "8888"])
    put("co-applicant_age", age, [*AGES, "8888"], (~coapplicant, "9999"))
    above = np.where(age == 4, np.where(fine < 0.3, "Yes", "No"), np.where((age == 5) | (age == 6), "Yes", "No"))
    const("applicant_age_above_62", "No", (above == "Yes", "Yes"), (age == len(AGES), "NA"))
    const("co-applicant_age_above_62", "No", (above == "Yes", "Yes"), (~coapplicant | (age == len(AGES)), "NA"))
    const("submission_of_application", "1", (fine > 0.8, "2"), (action == 6, "3"), (exempt, "1111"))
    const("initially_payable_to_institution", "1", (action == 6, "3"), (exempt, "1111"))
    const("aus-1", "1", (fine > 0.5, "2"), (fine > 0.85, "6"), (action == 6, "6"), (exempt, "1111"))
    for index in range(2, 6):
        const(f"aus-{index}", "")
    if realistic:  # reasons ranked by what weighed in the decision (synth._denial_reasons)
        number("denial_reason-1", np.where(denied, record["reason_1"], 10), 0, (exempt, "1111"))
        for index in (2, 3):
            codes = record[f"reason_{index}"]
            number(f"denial_reason-{index}", codes, 0, (~denied | (codes == 0), ""), (exempt, ""))
        const("denial_reason-4", "")
    else:
        reason = np.select([record["dti"] >= 45, record["cltv"] > 95, fine < 0.1], [1, 4, 7], 3)
        number("denial_reason-1", np.where(denied, reason, 10), 0, (exempt, "1111"))
        for index in range(2, 5):
            const(f"denial_reason-{index}", "")
    population = world.tract_population

    def per_tract(name: str, values: np.ndarray, digits: int) -> None:
        put(name, record["tract"], [_format(int(key), digits) for key in np.round(values * 10**digits)])

    per_tract("tract_population", population, 0)
    per_tract("tract_minority_population_percent", world.tract_minority * 100, 2)
    put("ffiec_msa_md_median_family_income", record["msa"], [str(msa[3]) for msa in msas])
    per_tract("tract_to_msa_income_percentage", world.tract_income_pct, 0)
    per_tract("tract_owner_occupied_units", np.round(population * 0.27), 0)
    per_tract("tract_one_to_four_family_homes", np.round(population * 0.36), 0)
    per_tract("tract_median_age_of_housing_units", population % 61 + 8, 0)
    return pd.DataFrame({name: columns[name] for name in PUBLISHED_COLUMNS})


def _categorical(
    codes: np.ndarray, texts: Sequence[str], overrides: Sequence[tuple[np.ndarray, str]]
) -> pd.Categorical:
    """Strings ``texts[codes]``, then each override's text where its mask holds (later ones win)."""
    labels = list(texts)
    codes = np.asarray(codes, dtype=np.int64)
    for mask, text in overrides:
        if mask.any():
            codes = np.where(mask, len(labels), codes)
            labels.append(text)
    categories, inverse = np.unique(np.asarray(labels, dtype=str), return_inverse=True)
    used = np.zeros(categories.size, dtype=bool)
    used[inverse[np.bincount(codes, minlength=len(labels)) > 0]] = True
    keep = np.cumsum(used) - 1
    return pd.Categorical.from_codes(keep[inverse][codes], categories=categories[used].tolist())


def _number_codes(values: np.ndarray, digits: int) -> tuple[np.ndarray, list[str]]:
    """Codes and texts for numbers written with at most ``digits`` decimals (no trailing zeros)."""
    keys = np.round(np.asarray(values, dtype=float) * 10**digits).astype(np.int64)
    if keys.size == 0:
        return keys, []
    low = int(keys.min())
    if int(keys.max()) - low < 50_000_000:  # counting beats sorting for a bounded range
        present = np.flatnonzero(np.bincount(keys - low))
        position = np.zeros(int(present[-1]) + 1, dtype=np.int64)
        position[present] = np.arange(present.size)
        return position[keys - low], [_format(int(key) + low, digits) for key in present]
    unique, codes = np.unique(keys, return_inverse=True)
    return codes, [_format(int(key), digits) for key in unique]


def _format(key: int, digits: int) -> str:
    if digits == 0:
        return str(key)
    sign = "-" if key < 0 else ""
    whole, part = divmod(abs(key), 10**digits)
    fraction = f"{part:0{digits}d}".rstrip("0")
    return f"{sign}{whole}.{fraction}" if fraction else f"{sign}{whole}"
