"""Similarly situated pairs: hand-built cases, a brute-force oracle over all pairs, synthetic data.

The oracle shares no code with the module: it merges every reference row with every compared
row of the same block (pandas), computes distances with ``np.linalg.norm`` and sorts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from support import RULES

import reasoner.lending.evidence.similar as similar_module
from reasoner.errors import UsageError
from reasoner.lending import clean_hmda, synthesize
from reasoner.lending.config import load_config
from reasoner.lending.evidence.similar import PairCounts, SimilaritySpec, _block_codes, similar_pairs
from reasoner.lending.evidence.tables import add_group_columns, similarity_spec

BLACK = "Black or African American"


def frame_of(rows: list[dict[str, object]]) -> pd.DataFrame:
    """A cleaned-looking frame: defaults for every column the module reads."""
    defaults: dict[str, object] = {
        "lei": "L1",
        "loan_type": 1,
        "loan_purpose": 1,
        "lien_status": 1,
        "income": 100_000.0,
        "dti": 30.0,
        "cltv": 80.0,
        "loan_amount": 200_000.0,
        "decision": "approved",
        "excluded": "",
        "race": "White",
    }
    frame = pd.DataFrame([{**defaults, **row} for row in rows])
    for name in ("application_id", "lei", "decision", "excluded", "race"):
        frame[name] = frame[name].astype("str")
    return frame


def spec_of(**changes: object) -> SimilaritySpec:
    base: dict[str, object] = {
        "columns": ("income", "dti"),
        "scaling": "none",
        "neighbours": 2,
        "compared": (BLACK,),
    }
    return SimilaritySpec(**{**base, **changes})  # type: ignore[arg-type]


# --- hand-built cases -----------------------------------------------------------------------


def test_nearest_reference_applicants_within_the_block() -> None:
    frame = frame_of(
        [
            {"application_id": "r1", "income": 10.0, "dti": 0.0},
            {"application_id": "r2", "income": 13.0, "dti": 4.0},  # distance 5 from c1
            {"application_id": "r3", "income": 10.0, "dti": 1.0},  # distance 1 from c1
            {"application_id": "r4", "income": 10.0, "dti": 1.0, "lei": "L2"},  # other lender
            {"application_id": "c1", "income": 10.0, "dti": 0.0, "race": BLACK},
            {"application_id": "c2", "income": 20.0, "dti": 0.0, "race": BLACK, "lei": "L2"},
            {"application_id": "x1", "income": 10.0, "dti": 0.0, "race": "Asian"},  # not compared
        ]
    )
    pairs = similar_pairs(frame, spec_of())
    assert list(pairs.columns) == ["a", "b", "distance", "rank", "lei", "loan_type", "loan_purpose", "lien_status"]
    assert pairs[["a", "b", "rank", "lei"]].values.tolist() == [
        ["r1", "c1", 1, "L1"],
        ["r3", "c1", 2, "L1"],
        ["r4", "c2", 1, "L2"],
    ]
    assert pairs["distance"].tolist() == pytest.approx([0.0, 1.0, np.hypot(10.0, 1.0)])
    assert pairs["rank"].dtype == np.int64 and pairs["distance"].dtype == np.float64


def test_ties_break_by_application_id_whatever_the_row_order() -> None:
    rows = [
        {"application_id": "r9", "income": 1.0},
        {"application_id": "r2", "income": -1.0},
        {"application_id": "r5", "income": 1.0},
        {"application_id": "c1", "income": 0.0, "race": BLACK},
    ]
    for order in ([0, 1, 2, 3], [3, 2, 1, 0], [1, 3, 0, 2]):
        pairs = similar_pairs(frame_of([rows[index] for index in order]), spec_of(columns=("income",), neighbours=2))
        assert pairs["a"].tolist() == ["r2", "r5"]
        assert pairs["distance"].tolist() == [1.0, 1.0]


def test_max_distance_keeps_ranks_contiguous_and_counts_the_unmatched() -> None:
    frame = frame_of(
        [
            {"application_id": "r1", "income": 0.0},
            {"application_id": "r2", "income": 3.0},
            {"application_id": "c1", "income": 1.0, "race": BLACK},
            {"application_id": "c2", "income": 10.0, "race": BLACK},
            {"application_id": "c3", "income": 1.0, "race": BLACK, "loan_type": 2},  # block without reference
        ]
    )
    pairs = similar_pairs(frame, spec_of(columns=("income",), neighbours=3, max_distance=2.0))
    assert pairs[["a", "b", "rank"]].values.tolist() == [["r1", "c1", 1], ["r2", "c1", 2]]
    counts = pairs.attrs["counts"]
    assert isinstance(counts, PairCounts)
    assert (counts.reference, counts.compared, counts.without_reference, counts.beyond_distance) == (2, 3, 1, 1)
    assert (counts.matched, counts.pairs, counts.missing) == (1, 2, 0)


def test_only_usable_decided_rows_take_part_and_missing_values_are_counted() -> None:
    frame = frame_of(
        [
            {"application_id": "r1", "income": 5.0},
            {"application_id": "r2", "income": 0.0, "excluded": "race not available"},
            {"application_id": "r3", "income": 0.0, "decision": "other"},
            {"application_id": "r4", "income": np.nan},
            {"application_id": "r5", "income": 1.0, "dti": np.nan},
            {"application_id": "c1", "income": 0.0, "race": BLACK, "decision": "denied"},
            {"application_id": "c2", "income": 0.0, "race": BLACK, "loan_amount": 0.0},
        ]
    )
    spec = spec_of(columns=("income", "dti", "loan_amount"), neighbours=5, log_columns=("loan_amount",))
    pairs = similar_pairs(frame, spec)
    assert pairs[["a", "b"]].values.tolist() == [["r1", "c1"]]
    counts = pairs.attrs["counts"]
    assert counts.missing == 3  # r4 (income), r5 (dti), c2 (log of 0)
    assert dict(counts.missing_by_column) == {
        "income": 1,
        "dti": 1,
        "loan_amount": 1,
        "lei": 0,
        "loan_type": 0,
        "loan_purpose": 0,
        "lien_status": 0,
    }


def test_scaling_is_fitted_on_the_whole_frame() -> None:
    incomes = [0.0, 1.0, 2.0, 3.0, 4.0, 10.0, 20.0, 40.0]
    rows = [
        {"application_id": f"r{index}", "income": value, "lei": f"L{index % 2}"} for index, value in enumerate(incomes)
    ]
    rows += [{"application_id": "c0", "income": 2.5, "race": BLACK, "lei": "L0"}]
    frame = frame_of(rows)
    values = np.array(incomes + [2.5])
    for scaling, spread in (
        ("robust", np.percentile(values, 75) - np.percentile(values, 25)),
        ("standard", values.std()),
    ):
        pairs = similar_pairs(frame, spec_of(columns=("income",), scaling=scaling, neighbours=1))
        assert pairs["a"].tolist() == ["r2"]  # 2.0 in lender L0
        assert pairs["distance"].iloc[0] == pytest.approx(0.5 / spread)


def test_no_compared_applicant_gives_an_empty_frame() -> None:
    pairs = similar_pairs(frame_of([{"application_id": "r1"}]), spec_of())
    assert len(pairs) == 0 and list(pairs.columns)[:4] == ["a", "b", "distance", "rank"]
    assert pairs.attrs["counts"].compared == 0


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"scaling": "minmax"}, "unknown scaling 'minmax'"),
        ({"neighbours": 0}, "'neighbours' must be an integer >= 1"),
        ({"reference": BLACK}, "is also a compared group"),
        ({"log_columns": ("cltv",)}, "log column 'cltv' is not a similarity column"),
        ({"columns": "income"}, "'columns' must be a tuple"),
        ({"max_distance": -1.0}, "'max_distance' must be >= 0"),
        ({"blocks": ("lei", "income")}, "both a similarity and a block column"),
    ],
)
def test_bad_specs_are_usage_errors(changes: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        spec_of(**changes)


def test_unknown_column_suggests_a_name() -> None:
    with pytest.raises(UsageError, match="no column 'incme' \\(did you mean 'income'\\?\\)"):
        similar_pairs(frame_of([{"application_id": "r1"}]), spec_of(columns=("incme",)))


# --- brute-force oracle ---------------------------------------------------------------------


def oracle(frame: pd.DataFrame, spec: SimilaritySpec, scaled: pd.DataFrame) -> pd.DataFrame:
    """All cross-group pairs within blocks, nearest first, ties by id; k per compared row."""
    usable = frame[(frame["excluded"] == "") & frame["decision"].isin(["approved", "denied"])]
    usable = usable[usable[list(spec.columns)].notna().all(axis=1)]
    reference = usable[usable[spec.group_column] == spec.reference]
    compared = usable[usable[spec.group_column].isin(spec.compared)]
    keys = list(spec.blocks)
    merged = compared[["application_id", *keys]].merge(
        reference[["application_id", *keys]], on=keys, suffixes=("_b", "_a")
    )
    first = scaled.loc[merged["application_id_a"], list(spec.columns)].to_numpy()
    second = scaled.loc[merged["application_id_b"], list(spec.columns)].to_numpy()
    merged["distance"] = np.linalg.norm(first - second, axis=1)
    if spec.max_distance is not None:
        merged = merged[merged["distance"] <= spec.max_distance]
    merged = merged.sort_values(["application_id_b", "distance", "application_id_a"])
    merged["rank"] = merged.groupby("application_id_b").cumcount() + 1
    merged = merged[merged["rank"] <= spec.neighbours]
    return merged.rename(columns={"application_id_a": "a", "application_id_b": "b"}).reset_index(drop=True)


def random_frame(seed: int, size: int, integer: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    draw = (lambda: rng.integers(0, 6, size).astype(float)) if integer else (lambda: rng.normal(0, 1, size))
    frame = pd.DataFrame(
        {
            "application_id": [f"{number:05d}" for number in rng.permutation(size)],
            "lei": rng.choice(["A", "B", "C"], size, p=[0.7, 0.2, 0.1]),
            "loan_type": rng.choice([1, 2], size),
            "income": draw(),
            "dti": draw(),
            "cltv": draw(),
            "decision": rng.choice(["approved", "denied", "other"], size, p=[0.6, 0.3, 0.1]),
            "excluded": rng.choice(["", "missing income"], size, p=[0.95, 0.05]),
            "race": rng.choice(["White", BLACK, "Asian", "Joint"], size, p=[0.5, 0.25, 0.15, 0.1]),
        }
    )
    frame.loc[rng.random(size) < 0.03, "cltv"] = np.nan
    for name in ("application_id", "lei", "decision", "excluded", "race"):
        frame[name] = frame[name].astype("str")
    return frame


@pytest.mark.parametrize("tree_min", [0, 8, 10**9])
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("neighbours, max_distance", [(1, None), (4, None), (3, 1.5)])
def test_integer_grid_with_many_ties_matches_the_oracle_exactly(
    monkeypatch: pytest.MonkeyPatch, tree_min: int, seed: int, neighbours: int, max_distance: float | None
) -> None:
    monkeypatch.setattr(similar_module, "TREE_MIN_REFERENCES", tree_min)
    frame = random_frame(seed, 1000, integer=True)
    spec = SimilaritySpec(
        columns=("income", "dti", "cltv"),
        scaling="none",
        blocks=("lei", "loan_type"),
        neighbours=neighbours,
        max_distance=max_distance,
        compared=(BLACK, "Asian"),
    )
    pairs = similar_pairs(frame, spec)
    expected = oracle(frame, spec, frame.set_index("application_id"))
    assert pairs[["a", "b", "rank"]].values.tolist() == expected[["a", "b", "rank"]].values.tolist()
    np.testing.assert_array_equal(pairs["distance"].to_numpy(), expected["distance"].to_numpy())
    assert pairs[["lei", "loan_type"]].values.tolist() == expected[["lei", "loan_type"]].values.tolist()


@pytest.mark.parametrize("scaling", ["robust", "standard"])
@pytest.mark.parametrize("tree_min", [0, 10**9])
def test_continuous_values_match_the_oracle(monkeypatch: pytest.MonkeyPatch, scaling: str, tree_min: int) -> None:
    monkeypatch.setattr(similar_module, "TREE_MIN_REFERENCES", tree_min)
    frame = random_frame(7, 1200, integer=False)
    spec = SimilaritySpec(columns=("income", "dti", "cltv"), scaling=scaling, blocks=("lei",), neighbours=3)
    fit = frame[(frame["excluded"] == "") & frame["decision"].isin(["approved", "denied"])]
    fit = fit[fit[["income", "dti", "cltv"]].notna().all(axis=1)][["income", "dti", "cltv"]]
    if scaling == "robust":
        centre, spread = fit.median(), fit.quantile(0.75) - fit.quantile(0.25)
    else:
        centre, spread = fit.mean(), fit.std(ddof=0)
    scaled = (frame.set_index("application_id")[["income", "dti", "cltv"]] - centre) / spread
    pairs = similar_pairs(frame, spec)
    expected = oracle(frame, spec, scaled)
    assert pairs[["a", "b", "rank"]].values.tolist() == expected[["a", "b", "rank"]].values.tolist()
    np.testing.assert_allclose(pairs["distance"].to_numpy(), expected["distance"].to_numpy(), rtol=1e-12)


# --- synthetic register ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def cleaned() -> pd.DataFrame:
    raw, _ = synthesize(20_000, 40, 3)
    return clean_hmda(raw, "synth").frame


def test_synthetic_pairs_stay_in_block_and_cross_groups(cleaned: pd.DataFrame) -> None:
    spec = SimilaritySpec(log_columns=("income", "loan_amount"))
    pairs = similar_pairs(cleaned, spec)
    assert len(pairs) > 1000
    rows = cleaned.set_index("application_id")
    first, second = rows.loc[pairs["a"]], rows.loc[pairs["b"]]
    assert (first["race"] == "White").all() and second["race"].isin(spec.compared).all()
    for name in spec.blocks:
        assert (first[name].to_numpy() == second[name].to_numpy()).all()
        assert (pairs[name].to_numpy() == second[name].to_numpy()).all()
    assert (first["excluded"] == "").all() and (second["excluded"] == "").all()
    assert pairs["rank"].between(1, spec.neighbours).all()
    assert not pairs.duplicated(["a", "b"]).any()
    ordered = pairs.sort_values(["b", "rank"], key=lambda column: column.astype("str"), kind="stable")
    assert ordered.index.tolist() == list(range(len(pairs)))
    assert (pairs.groupby("b")["distance"].diff().dropna() >= 0).all()
    counts = pairs.attrs["counts"]
    assert counts.matched == pairs["b"].nunique() and counts.pairs == len(pairs)
    assert counts.matched + counts.without_reference + counts.beyond_distance == counts.compared


def test_synthetic_pairs_do_not_depend_on_row_order(cleaned: pd.DataFrame) -> None:
    spec = SimilaritySpec(log_columns=("income", "loan_amount"), neighbours=3)
    shuffled = cleaned.sample(frac=1.0, random_state=5)
    pd.testing.assert_frame_equal(similar_pairs(cleaned, spec), similar_pairs(shuffled, spec))


@pytest.mark.parametrize("tree_min", [similar_module.TREE_MIN_REFERENCES, 8])
def test_specs_with_the_same_reference_rows_share_a_search_and_give_what_each_gives_alone(
    cleaned: pd.DataFrame, monkeypatch: pytest.MonkeyPatch, tree_min: int
) -> None:
    """The audit's comparisons (four of them compare with White non-Hispanic applicants, two
    with White non-Hispanic applicants in other tracts): searched together, each has the pairs,
    distances (to the bit) and counts it has when searched alone."""
    monkeypatch.setattr(similar_module, "TREE_MIN_REFERENCES", tree_min)
    config = load_config(RULES / "audit.toml")
    frame = add_group_columns(cleaned, config.majority_minority_percent)
    specs = [similarity_spec(config, comparison) for comparison in config.comparisons]
    together = similar_module.similar_pairs_of(frame, specs)
    assert len({(spec.group_column, spec.reference) for spec in specs}) < len(specs)  # some searches are shared
    for spec, shared in zip(specs, together, strict=True):
        alone = similar_pairs(frame, spec)
        pd.testing.assert_frame_equal(shared, alone)
        assert shared["distance"].to_numpy().tobytes() == alone["distance"].to_numpy().tobytes()
        assert shared.attrs["counts"] == alone.attrs["counts"]
        assert len(alone) > 0 and alone.attrs["counts"].beyond_distance + alone.attrs["counts"].matched > 0


def test_group_rows_are_the_rows_whose_value_is_one_of_the_groups() -> None:
    frame = pd.DataFrame(
        {
            "race": pd.Series(["White", None, BLACK, "Asian", BLACK, "White"], dtype="str"),
            "mixed": pd.Series([1, "1", None, "Asian", 2.5, "White"], dtype=object),
        }
    )
    groups = similar_module.GroupRows(frame)
    for column in ("race", "mixed"):
        for wanted in (("White",), (BLACK, "Asian"), ("nobody",), ()):
            expected = frame[column].isin(wanted).fillna(False).to_numpy(dtype=bool)
            assert groups.rows(column, wanted).tolist() == expected.tolist(), (column, wanted)


@pytest.mark.parametrize("tree_min", [0, 5])
def test_one_tree_over_blocks_far_apart_tied_and_barely_large_matches_the_oracle(
    monkeypatch: pytest.MonkeyPatch, tree_min: int
) -> None:
    """The large blocks share one KD-tree, kept apart by an extra coordinate: blocks on wildly
    different scales, a block of identical applicants (every distance a tie) and blocks of just
    ``neighbours + 1`` reference applicants give the pairs of the exhaustive oracle, to the bit."""
    monkeypatch.setattr(similar_module, "TREE_MIN_REFERENCES", tree_min)
    frame = random_frame(11, 1500, integer=False)
    lei = frame["lei"].to_numpy(dtype=object)
    for name in ("income", "dti", "cltv"):
        values = frame[name].to_numpy(dtype=np.float64, na_value=np.nan)
        values = np.where(lei == "B", values * 1e3 + 1e7, values)  # far away and wide
        values = np.where(lei == "C", 2.0, values)  # identical applicants
        frame[name] = values
    white = np.flatnonzero((frame["race"] == "White").to_numpy() & (lei == "A"))
    frame.loc[white[:4], "loan_type"] = 1  # block (A, 1): just neighbours + 1 reference applicants
    frame.loc[white[4:], "loan_type"] = 3
    spec = SimilaritySpec(columns=("income", "dti", "cltv"), scaling="none", blocks=("lei", "loan_type"), neighbours=3)
    pairs = similar_pairs(frame, spec)
    expected = oracle(frame, spec, frame.set_index("application_id"))
    assert pairs[["a", "b", "rank"]].values.tolist() == expected[["a", "b", "rank"]].values.tolist()
    np.testing.assert_array_equal(pairs["distance"].to_numpy(), expected["distance"].to_numpy())
    assert (pairs["lei"] == "C").any() and (pairs["lei"] == "B").any()


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_a_value_too_large_for_the_shared_tree_is_searched_block_by_block(monkeypatch: pytest.MonkeyPatch) -> None:
    """A finite but huge covariate (a mistyped 1e160) would make the blocks' extra coordinate in
    the shared tree infinite (and 0 * inf not 0): each block gets its own tree, and the pairs are
    the exhaustive oracle's, the huge applicant's distances infinite as there."""
    monkeypatch.setattr(similar_module, "TREE_MIN_REFERENCES", 0)
    frame = random_frame(5, 600, integer=False)
    reference = np.flatnonzero(
        (frame["race"] == "White").to_numpy() & (frame["lei"] == "A").to_numpy() & frame["cltv"].notna().to_numpy()
    )
    frame.loc[reference[0], "cltv"] = 1e160
    spec = SimilaritySpec(columns=("income", "dti", "cltv"), scaling="none", blocks=("lei", "loan_type"), neighbours=3)
    pairs = similar_pairs(frame, spec)
    expected = oracle(frame, spec, frame.set_index("application_id"))
    assert pairs[["a", "b", "rank"]].values.tolist() == expected[["a", "b", "rank"]].values.tolist()
    np.testing.assert_array_equal(pairs["distance"].to_numpy(), expected["distance"].to_numpy())
    assert pairs["lei"].nunique() > 1


def test_the_robust_scaling_fitted_column_by_column_is_the_matrix_fit_bit_for_bit() -> None:
    from reasoner.lending.evidence.similar import Scaling, _features, _fit, fit_scaling

    rng = np.random.default_rng(5)
    rows = 20_011
    frame = pd.DataFrame(
        {
            "application_id": np.arange(rows).astype(str),
            "excluded": rng.choice(["", "", "", "no decision"], rows),
            "decision": rng.choice(["approved", "denied", "withdrawn"], rows),
            "income": rng.lognormal(4.0, 1.0, rows) * rng.choice([1.0, -1.0, 0.0], rows, p=[0.9, 0.05, 0.05]),
            "dti": np.where(rng.random(rows) < 0.1, np.nan, rng.normal(36.0, 9.0, rows).round(1)),
            "cltv": rng.choice([80.0, 95.0], rows, p=[0.85, 0.15]),  # mostly one value: interquartile range 0
            "loan_amount": rng.integers(1, 500, rows).astype(np.float64) * 1000.0,
        }
    )
    spec = SimilaritySpec(
        columns=("income", "dti", "cltv", "loan_amount"), log_columns=("income", "loan_amount"), blocks=()
    )
    decided = frame["decision"].isin(["approved", "denied"]).to_numpy() & frame["excluded"].eq("").to_numpy()
    values = _features(frame, spec)
    for size in (rows, 7, 0):
        fit_rows = decided[:size] & np.isfinite(values[:size]).all(axis=1)
        assert fit_scaling(frame.iloc[:size], spec) == _fit(values[:size], fit_rows, "robust")
    fit_rows = decided & np.isfinite(values).all(axis=1)
    spread = fit_scaling(frame, spec).spread
    # cltv's range is 0: its deviation (summed down the matrix's rows, as _fit: a 1-D sum differs in its last bits)
    assert spread is not None and spread[2] == pytest.approx(values[fit_rows, 2].std(), rel=1e-9)
    assert fit_scaling(frame.iloc[:0], spec) == Scaling(None, None)


def test_block_codes_are_groupby_numbers() -> None:
    random = np.random.default_rng(3)
    size = 300
    frame = pd.DataFrame(
        {
            "lei": pd.Series(random.choice(["B", "A", "C", None], size), dtype="str"),
            "kind": pd.Categorical(random.choice(["2", "1", "3"], size), categories=["3", "1", "2"]),
            "lien": random.choice([1.0, 2.0, np.nan], size),
        }
    )
    for blocks in (("lei",), ("lei", "kind"), ("lei", "kind", "lien"), ("kind", "lien")):
        number = frame.groupby(list(blocks), sort=True, dropna=True, observed=True).ngroup()
        expected = number.to_numpy(dtype=np.float64, na_value=-1.0).astype(np.int64)
        assert _block_codes(frame, blocks).tolist() == expected.tolist()
    assert _block_codes(frame, ()).tolist() == [0] * size


def test_block_codes_of_more_combinations_than_an_integer_holds_are_groupby_numbers() -> None:
    """Four key columns of 2**16 levels each (2**64 combinations): the keys are ranked between columns."""
    random = np.random.default_rng(5)
    size = 70_000
    frame = pd.DataFrame({name: random.permutation(size) % 65_536 for name in "abcd"})
    frame.loc[::97, "c"] = np.nan
    blocks = ("a", "b", "c", "d")
    number = frame.groupby(list(blocks), sort=True, dropna=True, observed=True).ngroup()
    expected = number.to_numpy(dtype=np.float64, na_value=-1.0).astype(np.int64)
    assert _block_codes(frame, blocks).tolist() == expected.tolist()


def test_block_codes_of_a_million_rows_are_groupby_numbers() -> None:
    """Many rows, few combinations: ranked by counting the keys used."""
    random = np.random.default_rng(9)
    size = 1_000_000
    frame = pd.DataFrame({"lei": random.integers(0, 3_000, size), "kind": random.choice([1.0, 2.0, np.nan], size)})
    number = frame.groupby(["lei", "kind"], sort=True, dropna=True, observed=True).ngroup()
    expected = number.to_numpy(dtype=np.float64, na_value=-1.0).astype(np.int64)
    assert _block_codes(frame, ("lei", "kind")).tolist() == expected.tolist()
