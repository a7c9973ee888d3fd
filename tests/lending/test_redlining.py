"""Redlining evidence (``reasoner.lending.evidence.redlining``): population, markets, volume peers, bands,
exact and pooled tests, assessment areas, and the audit's verdicts on registers built for it."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from support import REPOSITORY

from reasoner.errors import EvidenceError, RuleError, UsageError
from reasoner.lending import synthesize
from reasoner.lending.audit.run import _RedliningFile, _RedliningWriter, audit
from reasoner.lending.config import load_config
from reasoner.lending.evidence.redlining import read_assessment_areas, redlining_cells, redlining_signals
from reasoner.lending.evidence.statistics import holm_adjusted
from reasoner.lending.evidence.tables import register_redlining
from reasoner.lending.outputs.explain_finding import explain_finding

pytestmark = pytest.mark.slow  # end-to-end audits: outside the inner loop, pytest -m "not slow"

ROOT = REPOSITORY
RULES = ROOT / "rules"


def register(blocks: list[tuple[str, str | None, float, int, int]], **extra: object) -> pd.DataFrame:
    """Rows from blocks (lei, msa, tract minority percent, action, count); state MS, county 28049."""
    columns: dict[str, list[object]] = {"lei": [], "msa": [], "tract_minority_pct": [], "action_taken": []}
    for lei, msa, percent, action, count in blocks:
        columns["lei"] += [lei] * count
        columns["msa"] += [msa] * count
        columns["tract_minority_pct"] += [percent] * count
        columns["action_taken"] += [action] * count
    frame = pd.DataFrame(columns)
    frame["lei"] = frame["lei"].astype("str")
    frame["msa"] = frame["msa"].astype("str")
    frame["state_code"] = pd.Series("MS", index=frame.index, dtype="str")
    frame["county_code"] = pd.Series("28049", index=frame.index, dtype="str")
    for name, value in extra.items():
        frame[name] = value
    return frame


def row(table: pd.DataFrame, **where: object) -> pd.Series:
    found = table
    for name, value in where.items():
        found = found[found[name] == value]
    assert len(found) == 1, found
    return found.iloc[0]


# --- population ---------------------------------------------------------------------------------


def test_purchased_loans_and_preapprovals_are_set_aside_and_counted() -> None:
    frame = register(
        [
            ("A", "M1", 80.0, 1, 6), ("A", "M1", 10.0, 3, 14),
            ("A", "M1", 10.0, 6, 30),  # purchased in White tracts: not applications
            ("A", "M1", 10.0, 7, 2), ("A", "M1", 90.0, 8, 3),  # preapproval requests
            ("B", "M1", 80.0, 1, 20), ("B", "M1", 10.0, 1, 20),
        ]
    )  # fmt: skip
    table = redlining_signals(frame, min_peers=1)
    a = row(table, lei="A", market="M1", band=50.0, measure="applications")
    assert (a["count"], a["band_count"], a["purchased"], a["preapprovals"]) == (20, 6, 30, 5)
    assert a["share"] == pytest.approx(0.3) and a["peer_share"] == pytest.approx(0.5)
    assert a["share_ratio"] == pytest.approx(0.6)
    assert a["p_value"] == pytest.approx(stats.fisher_exact([[6, 14], [20, 20]], alternative="less").pvalue, rel=1e-10)
    originations = row(table, lei="A", market="M1", band=50.0, measure="originations")
    assert (originations["count"], originations["band_count"]) == (6, 6)
    pooled = row(table, lei="A", market_kind="pooled", band=50.0, measure="applications")
    assert (pooled["purchased"], pooled["preapprovals"], pooled["markets"]) == (30, 5, 1)


@pytest.mark.parametrize(
    ("column", "codes"),
    [
        ("reverse_mortgage", [1, 2]),
        ("open_end_line_of_credit", [1, 2]),
        ("business_or_commercial_purpose", [1, 2]),
        ("occupancy_type", [3, 1]),
    ],
)
def test_other_segments_are_set_aside_when_the_register_has_the_column(column: str, codes: list[int]) -> None:
    blocks = [("A", "M1", 10.0, 1, 10), ("A", "M1", 80.0, 1, 10), ("B", "M1", 80.0, 1, 10), ("B", "M1", 10.0, 1, 10)]
    frame = register(blocks)
    flag = np.full(len(frame), codes[1], dtype=np.float64)
    flag[:10] = codes[0]  # A's White-tract loans are of the other segment
    flag[-1] = np.nan  # unknown (exempt): kept
    with_column = redlining_signals(frame.assign(**{column: flag}), min_peers=1)
    a = row(with_column, lei="A", market="M1", band=50.0, measure="applications")
    assert (a["count"], a["band_count"], a["other_segments"]) == (10, 10, 10)
    without = row(redlining_signals(frame, min_peers=1), lei="A", market="M1", band=50.0, measure="applications")
    assert (without["count"], without["other_segments"]) == (20, 0)


# --- markets ------------------------------------------------------------------------------------


def test_outside_metro_areas_the_market_is_the_state() -> None:
    frame = register(
        [("A", "99999", 60.0, 1, 10), ("A", "99999", 60.0, 1, 10), ("A", None, 60.0, 1, 5), ("A", "M1", 60.0, 1, 5)]
    )
    frame.loc[10:19, "state_code"] = "AL"
    frame.loc[20:21, "state_code"] = None  # the state from the county's FIPS code
    frame.loc[22:24, ["state_code", "county_code"]] = None  # nowhere: unplaced
    table = redlining_signals(frame)
    markets = table.loc[table["measure"] == "applications"].drop_duplicates("market")
    assert markets[["market", "market_kind", "count"]].values.tolist() == [
        ["M1", "MSA", 5],
        ["non-metro AL", "non-metro state", 10],
        ["non-metro FIPS 28", "non-metro state", 2],
        ["non-metro MS", "non-metro state", 10],
        ["all markets", "pooled", 0],
    ]
    assert row(table, market_kind="pooled", band=50.0, measure="applications")["unplaced"] == 3


# --- peers --------------------------------------------------------------------------------------


def test_peers_are_lenders_of_similar_volume_unless_too_few() -> None:
    # A: 100 applications, 20% in minority tracts. Peers of 50-200: B, C (50% share); the giant G
    # (1,000) and the small S (10) are outside the band.
    blocks = [("A", "M1", 80.0, 1, 20), ("A", "M1", 10.0, 1, 80)]
    blocks += [(lei, "M1", 80.0, 1, 50) for lei in ("B", "C")] + [(lei, "M1", 10.0, 1, 50) for lei in ("B", "C")]
    blocks += [("G", "M1", 80.0, 1, 100), ("G", "M1", 10.0, 1, 900), ("S", "M1", 10.0, 1, 10)]
    frame = register(blocks)
    banded = row(redlining_signals(frame, min_peers=2), lei="A", band=50.0, measure="applications", market="M1")
    assert (banded["peers"], banded["peer_count"], banded["peer_band_count"]) == (2, 200, 100)
    assert banded["peer_basis"] == "volume 0.5-2x" and banded["share_ratio"] == pytest.approx(0.4)
    every = row(redlining_signals(frame, min_peers=3), lei="A", band=50.0, measure="applications", market="M1")
    assert (every["peers"], every["peer_count"], every["peer_band_count"]) == (4, 1210, 200)
    assert every["peer_basis"] == "all lenders in the market"


def test_bands_are_strict_and_configurable() -> None:
    frame = register(
        [("A", "M1", 50.0, 1, 5), ("A", "M1", 80.0, 1, 5), ("A", "M1", 80.1, 1, 5), ("B", "M1", 10.0, 1, 5)]
    )
    table = redlining_signals(frame, bands=(40.0, 50.0, 80.0))
    counts = table[(table["lei"] == "A") & (table["measure"] == "applications") & (table["market"] == "M1")]
    assert counts[["band", "band_count"]].values.tolist() == [[40.0, 15], [50.0, 10], [80.0, 5]]


# --- tests across markets -----------------------------------------------------------------------


def _many_markets() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    blocks = []
    for number in range(8):
        market = f"M{number}"
        low = 5 if number == 0 else 18  # A avoids minority tracts in M0 only
        blocks += [("A", market, 80.0, 1, low), ("A", market, 10.0, 3, 40 - low)]
        for peer in "BCDEF":
            inside = int(rng.integers(15, 25))
            blocks += [(peer, market, 80.0, 1, inside), (peer, market, 20.0, 1, 40 - inside)]
    return register(blocks)


def test_markets_are_adjusted_by_holm_within_the_lender() -> None:
    table = redlining_signals(_many_markets())
    mine = table[(table["lei"] == "A") & (table["market_kind"] == "MSA") & (table["band"] == 50.0)]
    for measure, part in mine.groupby("measure"):
        expected = holm_adjusted(part["p_value"].to_numpy(), np.zeros(len(part)))
        assert part["p_adjusted"].to_numpy() == pytest.approx(expected, nan_ok=True), measure
    m0 = row(mine, market="M0", measure="applications")
    assert m0["p_adjusted"] == pytest.approx(min(1.0, 8 * m0["p_value"]))


def test_pooled_row_is_the_mantel_haenszel_test_over_the_markets() -> None:
    table = redlining_signals(_many_markets())
    strata = table[(table["lei"] == "A") & (table["market_kind"] == "MSA") & (table["band"] == 50.0)]
    strata = strata[(strata["measure"] == "applications") & (strata["reason"] == "")]
    observed = expected = variance = numerator = denominator = 0.0
    for _, s in strata.iterrows():  # textbook formulas, one stratum at a time
        a, n1 = float(s["band_count"]), float(s["count"])
        b, n0 = float(s["peer_band_count"]), float(s["peer_count"])
        n, m = n1 + n0, a + b
        observed += a
        expected += n1 * m / n
        variance += n1 * n0 * m * (n - m) / (n * n * (n - 1))
        numerator += a * n0 / n
        denominator += b * n1 / n
    pooled = row(table, lei="A", market_kind="pooled", band=50.0, measure="applications")
    assert pooled["markets"] == len(strata) == 8
    assert pooled["share_ratio"] == pytest.approx(numerator / denominator)
    assert pooled["p_value"] == pytest.approx(stats.norm.cdf((observed - expected + 0.5) / np.sqrt(variance)))
    assert pooled["p_adjusted"] == pooled["p_value"]


def test_the_table_does_not_depend_on_row_order() -> None:
    frame = _many_markets()
    shuffled = frame.sample(frac=1.0, random_state=3).reset_index(drop=True)
    pd.testing.assert_frame_equal(redlining_signals(frame), redlining_signals(shuffled))


# --- assessment areas ---------------------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_an_assessment_area_is_the_lenders_market(tmp_path: Path) -> None:
    frame = register(
        [("A", "M1", 80.0, 1, 4), ("A", "M1", 10.0, 1, 16), ("A", "M2", 80.0, 1, 9),
         ("B", "M1", 80.0, 1, 10), ("B", "M1", 10.0, 1, 10), ("C", "M2", 80.0, 1, 10), ("C", "M2", 10.0, 1, 10)]
    )  # fmt: skip
    frame.loc[frame["msa"] == "M1", "county_code"] = "28001"
    areas = read_assessment_areas(write(tmp_path / "areas.csv", "lei,county,msa\nA,28001,\n"))
    table = redlining_signals(frame, assessment_areas=areas, min_peers=1)
    mine = table[(table["lei"] == "A") & (table["measure"] == "applications") & (table["band"] == 50.0)]
    assert mine["market"].tolist() == ["area of A", "all markets"]
    area = mine.iloc[0]
    assert (area["market_kind"], area["count"], area["band_count"], area["outside_area"]) == (
        "assessment area",
        20,
        4,
        9,
    )
    assert (area["peer_count"], area["peer_band_count"]) == (20, 10)  # B's applications in county 28001
    others = table[table["lei"] == "B"]
    assert set(others["market"]) == {"M1", "all markets"}  # B, not listed, keeps its MSA and has A as a peer
    assert row(others, market="M1", band=50.0, measure="applications")["peer_count"] == 20


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lender,county\nA,28001\n", r"areas.csv: expected the columns 'lei' and 'county' or 'msa'"),
        (
            "lei,county\nA,28001\n,28003\n",
            r"areas.csv: column 'lei': expected a lender's LEI, got an empty value \(row 2\)",
        ),
        ("lei,county,msa\nA,28001,\nA,,\n", r"areas.csv: row 2: expected a county or an MSA"),
        (
            "lei,county\nA,28001\nA,281\n",
            r"areas.csv: column 'county': expected a 5-digit state\+county FIPS code, got '281' \(row 2\)",
        ),
        ("lei,msa\nA,99999\n", r"areas.csv: column 'msa': expected a 5-digit MSA/MD code \(99999.*\(row 1\)"),
        ("lei,county\n", r"areas.csv: no rows"),
    ],
)
def test_assessment_area_mistakes_name_the_file_column_and_row(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(EvidenceError, match=message):
        read_assessment_areas(write(tmp_path / "areas.csv", text))


def test_a_bad_assessment_area_file_stops_the_audit_with_its_row(
    tmp_path: Path, reason: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    text = (rules / "audit.toml").read_text(encoding="utf-8")
    text = text.replace('# assessment_areas = "areas.csv"', 'assessment_areas = "areas.csv"')
    (rules / "audit.toml").write_text(text, encoding="utf-8")
    write(rules / "areas.csv", "lei,county\n5493000007WZSHXDHH53,13121\n5493000007WZSHXDHH53,1312\n")
    done = reason([rules, ROOT / "examples" / "hmda" / "sample.parquet", "-o", tmp_path / "out"], timeout=300)
    assert done.returncode == 2, done.stderr
    assert "areas.csv: column 'county': expected a 5-digit state+county FIPS code, got '1312' (row 2)" in done.stderr
    assert "Traceback" not in done.stderr


def _config(tmp_path: Path, section: str) -> Path:
    text = (RULES / "audit.toml").read_text(encoding="utf-8")
    start = text.index("[redlining]")
    end = text.index("# ---", start)
    return write(tmp_path / "audit.toml", text[:start] + section + "\n" + text[end:])


def test_the_redlining_settings_are_read_and_checked(tmp_path: Path) -> None:
    write(tmp_path / "areas.csv", "lei,county\nA,28001\n")
    section = '[redlining]\nbands = [50, 75]\npeer_volume = [0.25, 4]\nmin_peers = 3\nassessment_areas = "areas.csv"'
    settings = load_config(_config(tmp_path, section)).redlining
    assert settings.bands == (50.0, 75.0) and settings.peer_volume == (0.25, 4.0) and settings.min_peers == 3
    assert settings.assessment_areas == tmp_path / "areas.csv"
    frame = register([("A", "M1", 80.0, 1, 6), ("B", "M1", 10.0, 1, 6)])
    frame["county_code"] = "28001"
    table = register_redlining(frame, load_config(_config(tmp_path, section)))
    assert sorted(set(table.loc[table["lei"] == "A", "market"])) == ["all markets", "area of A"]
    assert set(table["band"]) == {50.0, 75.0}
    assert load_config(_config(tmp_path, "")).redlining.bands == (50.0, 80.0)  # the section is optional
    for bad, message in (
        ("bands = [80, 50]", "'bands' must list increasing"),
        ('bands = ["50"]', "'bands' must list increasing"),
        ("peer_volume = [2, 0.5]", "'peer_volume' must satisfy"),
        ('assessment_areas = "nowhere.csv"', "assessment-area file 'nowhere.csv' not found"),
        ("min_peer = 3", "unknown key 'min_peer' in \\[redlining\\]"),
    ):
        path = _config(tmp_path, f"[redlining]\n{bad}")
        with pytest.raises(RuleError, match=message) as caught:
            load_config(path)
        line = caught.value.diagnostics[0].span.line
        assert path.read_text().splitlines()[line - 1].startswith(bad.split(" ")[0]), bad


# --- the audit on registers built for it --------------------------------------------------------


@pytest.fixture(scope="module")
def world() -> tuple[pd.DataFrame, pd.DataFrame]:
    raw, truth = synthesize(12_000, 24, 5)
    raw = raw.astype(object)
    return raw, truth


def _audited(raw: pd.DataFrame, folder: Path) -> pd.DataFrame:
    folder.mkdir()
    path = folder / "register.parquet"
    raw.reset_index(drop=True).to_parquet(path, index=False)
    result = audit([RULES], path, workers=1)
    return result.findings.lenders.set_index("lei")


def _largest_fair(raw: pd.DataFrame, truth: pd.DataFrame) -> str:
    fair = truth[(truth["kind"] == "fair") & ~truth["exempt"]]
    return str(fair.sort_values(["applications", "lei"]).iloc[-1]["lei"])


def _white_tract_loans(raw: pd.DataFrame, lei: str) -> pd.DataFrame:
    percent = pd.to_numeric(raw["tract_minority_population_percent"], errors="coerce")
    loans = raw[(raw["lei"] == lei) & (raw["action_taken"] == "1") & (percent < 30)]
    return pd.concat([loans] * 3, ignore_index=True)


def test_a_fair_lender_buying_loans_in_white_tracts_is_not_flagged(
    world: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    raw, truth = world
    lei = _largest_fair(raw, truth)
    bought = _white_tract_loans(raw, lei).assign(action_taken="6")
    lenders = _audited(pd.concat([raw, bought], ignore_index=True), tmp_path / "bought")
    assert "redlining" not in list(lenders.loc[lei, "violations"])
    # The same loans counted as its own applications would be a real shortfall: the test can fail.
    taken = bought.assign(action_taken="1")
    lenders = _audited(pd.concat([raw, taken], ignore_index=True), tmp_path / "taken")
    assert "redlining" in list(lenders.loc[lei, "violations"])


def test_a_lender_avoiding_minority_tracts_is_flagged(world: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path) -> None:
    raw, truth = world
    lei = _largest_fair(raw, truth)
    percent = pd.to_numeric(raw["tract_minority_population_percent"], errors="coerce")
    theirs = (raw["lei"] == lei) & (percent > 50)
    avoided = theirs & (np.arange(len(raw)) % 5 != 0)  # keeps one in five of its minority-tract applications
    lenders = _audited(raw[~avoided.to_numpy()], tmp_path / "avoided")
    assert lenders.loc[lei, "flagged"] and "redlining" in list(lenders.loc[lei, "violations"])
    fair = truth.loc[(truth["kind"] == "fair") & (truth["lei"] != lei), "lei"]
    assert not lenders.loc[fair, "flagged"].any()


def test_the_report_and_the_explanation_say_what_was_set_aside_and_pooled(sample_audit: tuple[Path, Path]) -> None:
    out = sample_audit[1]
    truth = pd.read_csv(out.parent / "sample.truth.csv")
    lei = str(truth.loc[truth["kind"] == "redlining", "lei"].iat[0])
    report = (out / "report.md").read_text(encoding="utf-8")
    section = report[report.index(f"## Lender {lei}") :]
    assert "Tracts over 50% minority against peers of similar volume (set aside: " in section
    assert "| all markets | applications |" in section and "markets pooled |" in section
    text = explain_finding(out, lei)
    assert "markets pooled, tracts over 50% minority, applications:" in text
    assert "Mantel-Haenszel ratio" in text and "set aside: " in text
    assert "PooledShortfall(" in text and "[redlining row " in text


def test_a_wide_volume_band_stays_within_the_market() -> None:
    # BIG (1,000 applications) in M1 with 6 peers of 300; M2 holds lenders of 300 that a
    # band of 0.5-5x must not reach (markets are kept apart on the search key).
    blocks = [("BIG", "M1", 80.0, 1, 500), ("BIG", "M1", 10.0, 1, 500)]
    blocks += [(f"P{index}", "M1", 80.0, 1, 300) for index in range(6)]
    blocks += [(f"Q{index}", "M2", 10.0, 1, 300) for index in range(6)]
    frame = register(blocks)
    found = row(
        redlining_signals(frame, peer_volume=(0.2, 5.0), min_peers=1),
        lei="BIG",
        band=50.0,
        measure="applications",
        market="M1",
    )
    assert found["peers"] == 6 and found["peer_basis"] == "volume 0.2-5x"


@pytest.mark.parametrize("threaded", [False, True])
def test_hypergeometric_p_values_once_per_distinct_cell_are_those_of_every_row(
    monkeypatch: pytest.MonkeyPatch, threaded: bool
) -> None:
    from reasoner.lending.evidence import redlining
    from reasoner.lending.evidence.redlining import _hypergeom_lower

    if threaded:  # half the distinct cells in a second thread: the same bits as one call
        monkeypatch.setattr(redlining, "THREADED_CELLS", 10)
        monkeypatch.setattr(redlining, "_cores", lambda: 2)

    rng = np.random.default_rng(3)
    n1, n0 = rng.integers(1, 40, 500), rng.integers(0, 400, 500)
    a, b = rng.binomial(n1, 0.3), rng.binomial(n0, 0.4)
    tested = rng.random(500) < 0.8
    expected = np.where(tested, stats.hypergeom.cdf(a, n1 + n0, a + b, n1), np.nan)
    assert _hypergeom_lower(a, n1, b, n0, tested).tobytes() == expected.tobytes()
    assert np.isnan(_hypergeom_lower(a, n1, b, n0, np.zeros(500, dtype=bool))).all()


def test_sorted_codes_of_a_held_dictionary_are_those_of_its_text() -> None:
    from reasoner.lending.evidence.redlining import _sorted_codes

    texts = pd.Series(["b", None, "a", "d", "b", "a"], dtype="str")
    held = pd.Series(pd.Categorical(texts, categories=pd.Index(["a", "b", "c", "d"], dtype="str")))  # "c" unused
    expected_codes, expected = pd.factorize(texts.astype("str"), sort=True)
    for column in (texts, held, held.cat.reorder_categories(["d", "c", "b", "a"])):  # unsorted: factorized as text
        codes, uniques = _sorted_codes(column)
        assert codes.tolist() == expected_codes.tolist() and uniques.tolist() == list(expected)
    assert _sorted_codes(held)[0].tolist() == [1, -1, 0, 2, 1, 0]
    every = held.cat.remove_unused_categories()  # every category used: its codes as they are
    codes, uniques = _sorted_codes(every)
    assert codes.tolist() == expected_codes.tolist() and uniques.tolist() == list(expected)


@pytest.mark.parametrize("distinct", [1, 7, 5000, 10**9])
def test_distinct_keys_by_hashing_are_those_of_numpys_unique(distinct: int) -> None:
    from reasoner.lending.evidence.redlining import _unique_inverse

    keys = np.random.default_rng(distinct).integers(0, distinct, 20_000, dtype=np.int64)
    for case in (keys, keys[:0], keys[:1], keys - distinct // 2):  # negative keys: hashed
        values, inverse = _unique_inverse(case)
        expected_values, expected_inverse = np.unique(case, return_inverse=True)
        assert values.tolist() == expected_values.tolist() and inverse.tolist() == expected_inverse.tolist()
        assert values.dtype == expected_values.dtype


def _with_unplaced_lender() -> pd.DataFrame:
    """``_many_markets`` and a lender G whose every row is set aside (purchased), so G has no market."""
    frame = _many_markets()
    return pd.concat([frame, register([("G", "M0", 80.0, 6, 12)])], ignore_index=True)


@pytest.mark.parametrize(
    "leis", [["A"], ["B", "C"], ["A", "B", "C", "D", "E", "F", "G"], ["G"], ["F", "A"], ["nobody"], []]
)
def test_the_rows_of_some_lenders_are_the_whole_tables_rows_about_them(leis: list[str]) -> None:
    """What the audit hands each partition while the workers run (``RedliningCells.signals(leis)``): the
    whole table's rows about those lenders, bit for bit, with its dtypes, whichever lenders are asked."""
    frame = _with_unplaced_lender()
    cells = redlining_cells(frame)
    whole = redlining_signals(frame)
    pd.testing.assert_frame_equal(cells.signals(), whole, check_exact=True)
    expected = whole[whole["lei"].isin(leis)].reset_index(drop=True)
    found = cells.signals(leis)
    if len(expected):
        pd.testing.assert_frame_equal(found, expected, check_exact=True)
    else:  # nothing about them: no rows, the columns of the table
        assert found.empty and list(found.columns) == list(whole.columns)


def test_each_partitions_redlining_rows_are_written_whole_and_in_order(tmp_path: Path) -> None:
    """``run._RedliningWriter`` (a thread of the main process) writes each partition's rows while the workers
    run; ``run._RedliningFile`` (in the worker) waits for them: the rows of the whole table about its lenders."""
    frame = _with_unplaced_lender()
    whole = redlining_signals(frame)
    leis_of = [np.array(group, dtype=object) for group in (["A", "B"], ["C"], ["D", "E"], ["F"], ["G"])]
    writer = _RedliningWriter(redlining_cells(frame), leis_of, tmp_path, 2)
    for index, leis in enumerate(leis_of):
        found = _RedliningFile(tmp_path, index)()
        expected = whole[whole["lei"].isin(leis)]
        if len(expected):
            pd.testing.assert_frame_equal(found.reset_index(drop=True), expected.reset_index(drop=True))
        else:
            assert found.empty
    writer.finish()
    assert not list(tmp_path.iterdir())  # each file was taken by its partition, none half-written left


def test_the_redlining_rows_are_made_in_the_order_the_partitions_are_dispatched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dispatched largest first (``run._largest_first``), the partitions' rows are made in that order, the
    first ``first`` together, then groups twice as large: each partition's file holds its own lenders' rows."""
    frame = _with_unplaced_lender()
    whole = redlining_signals(frame)
    cells = redlining_cells(frame)
    made = cells.signals
    asked: list[list[str]] = []

    def recorded(leis: object = None) -> pd.DataFrame:
        asked.append(list(leis))  # type: ignore[call-overload]
        return made(leis)  # type: ignore[arg-type]

    monkeypatch.setattr(cells, "signals", recorded)
    leis_of = [np.array(group, dtype=object) for group in (["A", "B"], ["C"], ["D", "E"], ["F"], ["G"])]
    writer = _RedliningWriter(cells, leis_of, tmp_path, 2, [4, 2, 0, 1, 3])
    writer.finish()
    assert asked == [["G", "D", "E"], ["A", "B", "C", "F"]]
    for index, leis in enumerate(leis_of):
        found = _RedliningFile(tmp_path, index)()
        expected = whole[whole["lei"].isin(leis)]
        if len(expected):
            pd.testing.assert_frame_equal(found.reset_index(drop=True), expected.reset_index(drop=True))
        else:  # G: no market
            assert found.empty


def test_an_error_making_the_redlining_rows_stops_the_waiting_partition(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer's error is marked for the waiting worker (which stops waiting) and raised by the main process."""
    cells = redlining_cells(_with_unplaced_lender())

    def broken(leis: object = None) -> pd.DataFrame:
        raise MemoryError("no room for the redlining rows")

    monkeypatch.setattr(cells, "signals", broken)
    writer = _RedliningWriter(cells, [np.array(["A"], dtype=object)], tmp_path, 2)
    with pytest.raises(UsageError, match="redlining table was not made"):
        _RedliningFile(tmp_path, 0)()
    with pytest.raises(MemoryError, match="no room"):
        writer.finish()
