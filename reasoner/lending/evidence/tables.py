"""Cleaned HMDA + ``AuditConfig`` → the tables the rule library binds (``PartitionTables``).

==============  ==============================================================================
table           one row per
==============  ==============================================================================
applications    input row: the cleaned columns (``reasoner.lending.registers.hmda``) and the group
                columns below; row *n* of this table is row *n* of the input
lenders         lender: applications, decisions, usable rows, ``tested`` (1 when a statistic
                could be computed for at least one comparison)
pairs           similar pair: comparison, b (compared applicant), a (reference applicant),
                distance, rank, lei, no_stronger (1 when a is no better qualified than b:
                ``[similarity] comparator_tolerance``), spread_gap (b's rate spread minus a's, NaN unless both
                loans were originated with a spread); searched pairs are ordered by
                comparison (``audit.toml`` order), lei, b (as text) and rank
denial_odds     lender × comparison: ``statistics.lender_denial_odds``, then
                ``min_detectable_odds_ratio`` (``power``) and the effect sizes (``effects``)
matched_pairs   lender × comparison: ``statistics.matched_pair_test`` (rank-1 pairs)
pricing         lender × comparison: ``statistics.pricing_disparity``
redlining       lender × market × band × measure, and pooled per lender: ``redlining.redlining_signals``
outliers        compared applicant × comparison: ``statistics.cluster_outliers``
interactions    lender × interaction (race × sex, race × tract): ``interaction.interaction_tests``
==============  ==============================================================================

Not bound by the rules, for the report: ``reason_mix`` and ``contradicted_reasons``
(``denial_reasons``), lender × comparison (× reason).

Group columns: ``race_ethnicity`` is 'Hispanic or Latino' for Hispanic applicants of any race,
'White non-Hispanic' for White applicants who are not Hispanic, otherwise ``race`` (White
applicants whose ethnicity is joint or not available get none, so they are in neither group);
``minority`` is 'Minority' for any race other than White or for Hispanic applicants,
'White non-Hispanic' for the reference group; ``minority_sex`` and ``minority_tract`` combine
``minority`` with ``sex`` (Male/Female) and with the tract ('majority-minority tract' when
``tract_minority_pct`` is above the configured percentage, else 'other tract').
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy import special, stats

from reasoner.lending.config import AuditConfig, Comparison
from reasoner.lending.evidence.denial_reasons import denial_reason_tables
from reasoner.lending.evidence.effects import with_effects
from reasoner.lending.evidence.interaction import interaction_tests
from reasoner.lending.evidence.power import with_power
from reasoner.lending.evidence.redlining import RedliningCells, read_assessment_areas, redlining_cells
from reasoner.lending.evidence.similar import PairCounts, PairRows, Scaling, SimilaritySpec, similar_pair_rows_of
from reasoner.lending.evidence.statistics import (
    Columns,
    PairTexts,
    Prepared,
    application_index,
    cluster_outlier_columns,
    denial_probabilities,
    holm_adjusted,
    lender_denial_odds_columns,
    matched_pair_columns,
    pair_rows,
    pricing_columns,
)
from reasoner.lending.proxies.groups import (
    PROXIED_COLUMNS,
    estimated_rows,
    group_weights,
    has_estimates,
    pairing_frame,
)

__all__ = [
    "MINORITY_GROUPS",
    "PAIR_COLUMNS",
    "PartitionTables",
    "add_group_columns",
    "application_positions",
    "audit_tables",
    "register_redlining",
    "register_redlining_cells",
    "similarity_spec",
    "with_evidence",
]

HISPANIC = "Hispanic or Latino"
WHITE = "White non-Hispanic"
MINORITY_GROUPS = (
    HISPANIC,
    "Black or African American",
    "Asian",
    "American Indian or Alaska Native",
    "Native Hawaiian or Other Pacific Islander",
    "2 or more minority races",
)
PAIR_COLUMNS = ("comparison", "b", "a", "distance", "rank", "lei", "spread_gap", "no_stronger")


@dataclass(frozen=True, slots=True)
class PartitionTables:
    applications: pd.DataFrame
    lenders: pd.DataFrame
    pairs: pd.DataFrame
    denial_odds: pd.DataFrame
    matched_pairs: pd.DataFrame
    pricing: pd.DataFrame
    redlining: pd.DataFrame
    outliers: pd.DataFrame
    interactions: pd.DataFrame
    pair_counts: dict[str, PairCounts] = field(default_factory=dict)
    pairs_given: bool = False
    reason_mix: pd.DataFrame = field(default_factory=pd.DataFrame)  # not bound: the report's
    contradicted_reasons: pd.DataFrame = field(default_factory=pd.DataFrame)

    def named(self) -> dict[str, pd.DataFrame]:
        """Every table by the name the rules bind it with."""
        return {
            "applications": self.applications,
            "lenders": self.lenders,
            "pairs": self.pairs,
            "denial_odds": self.denial_odds,
            "matched_pairs": self.matched_pairs,
            "pricing": self.pricing,
            "redlining": self.redlining,
            "outliers": self.outliers,
            "interactions": self.interactions,
        }


def add_group_columns(frame: pd.DataFrame, majority_minority_percent: float) -> pd.DataFrame:
    """The frame with ``race_ethnicity``, ``minority``, ``minority_sex``, ``minority_tract``.

    Worked out on codes: each text column factorized once, each new column taken from a few texts
    (no text compared or made per row)."""
    frame = frame.copy(deep=False)  # copy-on-write: the caller's frame keeps its columns
    race, races = _codes(frame["race"])
    ethnicity, ethnicities = _codes(frame["ethnicity"])
    sex, sexes = _codes(frame["sex"])
    hispanic = _is(ethnicity, ethnicities, (HISPANIC,))
    white = _is(race, races, ("White",))
    # race_ethnicity: a code into the race texts, then HISPANIC and WHITE; -1 for none
    names = [*races, HISPANIC, WHITE]
    race_ethnicity = np.where(hispanic, len(races), np.where(white, -1, race))
    not_hispanic = _is(ethnicity, ethnicities, ("Not Hispanic or Latino",))
    race_ethnicity = np.where(white & not_hispanic, len(races) + 1, race_ethnicity)
    is_minority = _is(race_ethnicity, names, MINORITY_GROUPS)
    is_white = _is(race_ethnicity, names, (WHITE,))
    minority = np.where(is_minority, 0, np.where(is_white, 1, -1))  # codes into ("Minority", WHITE)
    percent = frame["tract_minority_pct"].to_numpy(dtype=np.float64, na_value=np.nan)
    majority = percent > majority_minority_percent
    # minority_sex: group × (Male, Female); minority_tract: group × (majority-minority tract, other tract)
    male, female = _is(sex, sexes, ("Male",)), _is(sex, sexes, ("Female",))
    minority_sex = np.where((minority >= 0) & (male | female), 2 * minority + female, -1)
    minority_tract = np.where((minority >= 0) & np.isfinite(percent), 2 * minority + ~majority, -1)
    groups = ("Minority", WHITE)
    for name, codes, texts in (
        ("race_ethnicity", race_ethnicity, names),
        ("minority", minority, list(groups)),
        ("minority_sex", minority_sex, [f"{group} {value}" for group in groups for value in ("Male", "Female")]),
        (
            "minority_tract",
            minority_tract,
            [f"{group} / {tract}" for group in groups for tract in ("majority-minority tract", "other tract")],
        ),
    ):
        frame[name] = pd.Series(_texts(codes, texts), index=frame.index)
    return frame


def _codes(column: pd.Series) -> tuple[np.ndarray, list[str]]:
    """A text column's codes (-1: missing) and texts."""
    codes, uniques = pd.factorize(column)
    return codes, [str(value) for value in uniques]


def _is(codes: np.ndarray, texts: list[str], wanted: tuple[str, ...]) -> np.ndarray:
    """Per row, whether its code's text is one of ``wanted`` (never for -1)."""
    lookup = np.array([text in wanted for text in texts] + [False], dtype=bool)
    return lookup[codes]  # -1 reads the last entry: False


def _texts(codes: np.ndarray, texts: list[str]) -> pd.api.extensions.ExtensionArray:
    """A text column (dtype 'str') of ``texts[code]`` per row, missing where the code is -1."""
    dictionary = pa.array(texts, type=pa.large_string())
    return pd.array(dictionary.take(pa.array(np.maximum(codes, 0), mask=codes < 0)), dtype="str")


def audit_tables(
    cleaned: pd.DataFrame,
    config: AuditConfig,
    pairs: pd.DataFrame | None = None,
    *,
    scaling: Scaling | None = None,
    redlining: pd.DataFrame | None = None,
) -> PartitionTables:
    """Every table of the module docstring for the cleaned rows ``cleaned`` (``hmda.CleanedHMDA.frame``).

    ``pairs`` replaces the similarity search when given. For a part of a register (some of
    its lenders, ``audit.audit``): ``scaling`` is the similarity scaling of the whole register
    (``similar.fit_scaling``) and ``redlining`` its redlining rows about these lenders, which
    compare each lender with its MSA peers.
    """
    frame = add_group_columns(cleaned, config.majority_minority_percent)
    estimated = has_estimates(frame)
    # Estimated groups: only applicants above the threshold are paired, in a copy the search alone sees.
    threshold = config.proxies.pair_threshold
    paired = pairing_frame(frame, threshold, config.majority_minority_percent) if estimated else frame
    counts: dict[str, PairCounts] = {}
    tolerance = dict(config.comparator_tolerance)
    if pairs is None and config.comparisons:
        specs = [similarity_spec(config, comparison) for comparison in config.comparisons]
        found = similar_pair_rows_of(paired, specs, scaling)
        counts = {comparison.name: part.counts for comparison, part in zip(config.comparisons, found, strict=True)}
        pairs, first, second = _searched_pairs(frame, config.comparisons, found, tolerance)
        # Each comparison's pairs are one run of the table, in the comparisons' order: slices, not a grouping.
        ends = np.cumsum([part.reference_rows.size for part in found])
        per_comparison = {
            comparison.name: pairs.iloc[end - part.reference_rows.size : end]
            for comparison, part, end in zip(config.comparisons, found, ends, strict=True)
        }
    else:
        if pairs is None:
            pairs = pd.DataFrame(columns=list(PAIR_COLUMNS[:-2]))
        pairs, first, second = _with_pair_columns(pairs, frame, tolerance)
        per_comparison = {name: part for name, part in pairs.groupby("comparison", sort=True)}

    odds: list[tuple[Columns, Comparison]] = []
    matched: list[tuple[Columns, Comparison]] = []
    pricing: list[tuple[Columns, Comparison]] = []
    outliers: list[tuple[Columns, Comparison]] = []
    # The text columns the pair tests read, as Python strings ('' for missing) and the lenders' codes, once for
    # every comparison (not converted and searched for missing values again per test).
    decided = PairTexts.of(
        pd.DataFrame(
            {name: frame[name].to_numpy(dtype=object, na_value="") for name in ("application_id", "lei", "decision")},
            dtype=object,
        )
    )
    shared = Prepared(frame)  # rows in canonical order and covariate matrices, once for every comparison
    denial_probability = denial_probabilities(frame, config.denial_model, prepared=shared)
    id_index = application_index(frame)
    for comparison in config.comparisons:
        column, reference, compared = comparison.column, comparison.reference, comparison.compared
        found_pairs = per_comparison.get(comparison.name, pairs.iloc[:0])
        rows = _pair_rows(found_pairs, frame, id_index, first, second)  # looked up once for both pair tests
        weighted, weights = (frame, None)
        if estimated:
            weighted, weights = _weighted(frame, comparison, config.majority_minority_percent)
        # A weighted comparison's frame is the frame with weight columns: its rows, matrices and masks are shared's.
        prepared = shared if weighted is frame else shared.sharing(weighted)
        odds.append(
            (
                lender_denial_odds_columns(
                    weighted,
                    column,
                    reference,
                    compared,
                    config.denial_model,
                    min_group=config.min_group,
                    weights=weights,
                    prepared=prepared,
                ),
                comparison,
            )
        )
        matched.append(
            (
                matched_pair_columns(found_pairs, decided, denial_probability=denial_probability, rows=rows),
                comparison,
            )
        )
        pricing.append(
            (
                pricing_columns(
                    weighted,
                    column,
                    reference,
                    compared,
                    config.pricing_model,
                    min_group=config.min_group,
                    weights=weights,
                    prepared=prepared,
                ),
                comparison,
            )
        )
        outliers.append(
            (
                cluster_outlier_columns(
                    decided,
                    found_pairs,
                    min_neighbours=config.outlier_min_neighbours,
                    share=config.outlier_share,
                    rows=rows,
                ),
                comparison,
            )
        )
    denial_odds = _with_holm(_joined(odds, ["lei", "comparison", "group"]))
    treatment = [comparison.name for comparison in config.comparisons if comparison.theory == "treatment"]
    denial_odds = with_evidence(denial_odds, "log_odds_ratio", math.log(config.alternative_odds_ratio), treatment)
    denial_odds = with_effects(with_power(denial_odds))
    matched_pairs = _with_holm(_joined(matched, ["lei", "comparison"]))
    pricing_table = with_evidence(
        _with_holm(_joined(pricing, ["lei", "comparison", "group"])),
        "adjusted_gap",
        config.alternative_pricing_gap,
        treatment,
    )
    if estimated:
        denial_odds, matched_pairs, pricing_table = (
            _with_estimated(table, frame, config) for table in (denial_odds, matched_pairs, pricing_table)
        )
    mix, contradicted = denial_reason_tables(frame, config.comparisons)
    return PartitionTables(
        applications=frame,
        lenders=_lenders(frame, denial_odds),
        pairs=pairs,
        denial_odds=denial_odds,
        matched_pairs=matched_pairs,
        pricing=pricing_table,
        redlining=register_redlining(frame, config) if redlining is None else redlining.reset_index(drop=True),
        outliers=_joined(outliers, ["lei", "comparison", "application_id"]),
        interactions=interaction_tests(
            frame,
            covariates=config.denial_model,
            majority_minority_percent=config.majority_minority_percent,
            min_group=config.min_group,
            prepared=shared,
        ),
        pair_counts=counts,
        pairs_given=not counts,
        reason_mix=mix,
        contradicted_reasons=contradicted,
    )


def _weighted(
    frame: pd.DataFrame, comparison: Comparison, majority_minority_percent: float
) -> tuple[pd.DataFrame, dict[str, str] | None]:
    """The frame with one weight column per group of ``comparison`` (``proxies.group_weights``) and
    their names; the frame itself and None when the comparison uses reported groups only."""
    groups = (comparison.reference, *comparison.compared)
    weights = group_weights(frame, comparison.column, groups, majority_minority_percent)
    if weights is None:
        return frame, None
    names: dict[str, str] = {}
    for group in groups:  # new columns, never a register's own (a shared Prepared reads only added ones)
        name = f"weight of {group}"
        while name in frame.columns or name in names.values():
            name = f"{name} "
        names[group] = name
    return frame.assign(**{names[group]: values for group, values in weights.items()}), names


def _with_estimated(table: pd.DataFrame, frame: pd.DataFrame, config: AuditConfig) -> pd.DataFrame:
    """``groups_estimated``: 1 on a lender's rows of a comparison whose groups rest partly on
    estimated race and ethnicity (the lender has applicants with estimates, and the comparison is
    by race or ethnicity), else 0. Only registers with estimates have the column."""
    with_estimates = set(frame.loc[estimated_rows(frame), "lei"].astype(str))
    proxied = {comparison.name for comparison in config.comparisons if comparison.column in PROXIED_COLUMNS}
    flags = table["lei"].astype(str).isin(with_estimates) & table["comparison"].isin(proxied)
    table = table.copy()
    table.insert(table.columns.get_loc("reason"), "groups_estimated", flags.astype(np.int64).to_numpy())
    return table


def register_redlining(frame: pd.DataFrame, config: AuditConfig) -> pd.DataFrame:
    """The redlining table of a whole register (each lender against its peers), as ``[redlining]``
    of ``audit.toml`` says: bands, volume peers, the assessment areas when a file is named."""
    return register_redlining_cells(frame, config).signals()


def register_redlining_cells(frame: pd.DataFrame, config: AuditConfig) -> RedliningCells:
    """The register-wide part of ``register_redlining``'s table (cells, markets, peers, pooled rows):
    its rows are made from it whole (``signals()``) or some lenders at a time (``signals(leis)``)."""
    settings = config.redlining
    areas = None if settings.assessment_areas is None else read_assessment_areas(settings.assessment_areas)
    return redlining_cells(
        frame,
        bands=settings.bands,
        peer_volume=settings.peer_volume,
        min_peers=settings.min_peers,
        min_group=config.min_group,
        assessment_areas=areas,
    )


def similarity_spec(config: AuditConfig, comparison: Comparison) -> SimilaritySpec:
    """The similarity search of one comparison, as ``audit.toml`` declares it."""
    return SimilaritySpec(
        columns=config.similarity_columns,
        scaling=config.scaling,
        blocks=config.blocks,
        neighbours=config.neighbours,
        max_distance=config.max_distance,
        group_column=comparison.column,
        reference=comparison.reference,
        compared=comparison.compared,
        log_columns=config.log_columns,
    )


def application_positions(frame: pd.DataFrame) -> pd.Series:
    """Position of each application in ``frame``, indexed by its id as text."""
    return pd.Series(np.arange(len(frame)), index=frame["application_id"].astype(str))


def _searched_pairs(
    frame: pd.DataFrame, comparisons: Sequence[Comparison], found: Sequence[PairRows], tolerance: dict[str, float]
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The pair table (module docstring) of the pairs the search found, as ``_with_pair_columns``
    gives it for them, and the rows of every pair's ``a`` and ``b``: the rows the search knows, not
    found again by id. Each comparison's pairs are ordered by lender (text), then as found
    (compared applicant, rank): a partition's pairs of a comparison are then one run of the whole
    register's (``explanations``)."""
    lender_codes, _ = pd.factorize(frame["lei"], sort=True, use_na_sentinel=False)
    reference, compared, distance, rank = [], [], [], []
    for part in found:
        codes = lender_codes[part.compared_rows]
        order: slice | np.ndarray = slice(None) if (codes[1:] >= codes[:-1]).all() else np.argsort(codes, kind="stable")
        reference.append(part.reference_rows[order])
        compared.append(part.compared_rows[order])
        distance.append(part.distance[order])
        rank.append(part.rank[order])
    first, second = np.concatenate(reference), np.concatenate(compared)
    names = pa.array([comparison.name for comparison in comparisons], type=pa.large_string())
    sizes = [part.reference_rows.size for part in found]
    which = np.repeat(np.arange(len(sizes)), sizes)  # the comparison of each pair
    known = np.ones(first.size, dtype=bool)
    spread = _spread(frame)
    pairs = pd.DataFrame(
        {
            "comparison": pd.array(names.take(pa.array(which)), dtype="str"),  # one text per comparison, taken
            "a": frame["application_id"].take(first).reset_index(drop=True),
            "b": frame["application_id"].take(second).reset_index(drop=True),
            "distance": np.concatenate(distance),
            "rank": np.concatenate(rank),
            "lei": frame["lei"].take(second).reset_index(drop=True),
            "spread_gap": spread[second] - spread[first],
            "no_stronger": _no_stronger(frame, first, second, known, tolerance),
        }
    )
    return pairs, first.astype(np.float64), second.astype(np.float64)


def _pair_rows(
    pairs: pd.DataFrame, frame: pd.DataFrame, id_index: pd.Index, first: np.ndarray, second: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``statistics.pair_rows`` of some rows of the pair table, from the rows of every pair's ``a``
    and ``b`` found by ``_with_pair_columns`` (NaN: not in the frame, which ``pair_rows`` reports)."""
    at = pairs.index.to_numpy()
    a, b = first[at], second[at]
    if np.isnan(a).any() or np.isnan(b).any():
        return pair_rows(pairs, frame, id_index)
    return a.astype(np.int64), b.astype(np.int64)


def _with_pair_columns(
    pairs: pd.DataFrame, frame: pd.DataFrame, tolerance: dict[str, float]
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The pair table with ``spread_gap`` and ``no_stronger``, and per pair the rows of ``a`` and
    ``b`` in ``frame`` (float: NaN for an id not in it)."""
    pairs = pairs.reset_index(drop=True)
    spread = _spread(frame)
    position = application_positions(frame)
    first = position.reindex(pairs["a"].astype(str)).to_numpy()
    second = position.reindex(pairs["b"].astype(str)).to_numpy()
    known = ~(np.isnan(first) | np.isnan(second))
    gap = np.full(len(pairs), np.nan)
    gap[known] = spread[second[known].astype(np.int64)] - spread[first[known].astype(np.int64)]
    out = pairs.copy()
    out["spread_gap"] = gap
    out["no_stronger"] = _no_stronger(frame, first, second, known, tolerance)
    return out, first, second


def _spread(frame: pd.DataFrame) -> np.ndarray:
    """Each row's rate spread when its loan was originated, else NaN."""
    spread = frame["rate_spread"].to_numpy(dtype=np.float64, na_value=np.nan)
    originated = frame["action_taken"].to_numpy() == 1
    return np.where(originated, spread, np.nan)


def _no_stronger(
    frame: pd.DataFrame, first: np.ndarray, second: np.ndarray, known: np.ndarray, tolerance: dict[str, float]
) -> np.ndarray:
    """Per pair, 1 when the reference applicant ``a`` is no better qualified than the compared
    applicant ``b`` (a comparative file review's control): ``a``'s income at most ``income``
    (a share) above ``b``'s, its DTI and CLTV at most ``dti`` and ``cltv`` points below; else 0
    (and 0 when either is unknown)."""
    result = np.zeros(len(first), dtype=np.int64)
    if not known.any():
        return result
    a, b = first[known].astype(np.int64), second[known].astype(np.int64)

    def values(name: str) -> np.ndarray:
        return frame[name].to_numpy(dtype=np.float64, na_value=np.nan)

    income, dti, cltv = values("income"), values("dti"), values("cltv")
    weaker = (
        (income[a] <= income[b] * (1 + tolerance["income"]))
        & (dti[a] >= dti[b] - tolerance["dti"])
        & (cltv[a] >= cltv[b] - tolerance["cltv"])
    )
    result[known] = weaker.astype(np.int64)
    return result


MAX_EVIDENCE = 25.0  # the largest weight one body of evidence may carry (e^25: beyond any doubt)


def with_evidence(table: pd.DataFrame, estimate: str, alternative: float, comparisons: list[str]) -> pd.DataFrame:
    """The table with the evidence each row carries, graded rather than thresholded:

    - ``llr``: the log-likelihood ratio of the estimate (normal, with its standard error ``s``;
      for a t statistic, the standard error that gives the same p-value under the normal)
      under the alternative effect ``d`` (a log odds ratio, or a rate-spread gap) against no
      effect: ``(estimate * d - d**2 / 2) / s**2``. Positive when the data favour a disparity of
      size ``d`` over none, negative when they favour none; it grows with precision, so a large
      lender's small, significant gap (below ``d / 2``) counts against a finding, not for it.
    - ``strongest``: 1 on the lender's row of highest ``llr`` among ``comparisons`` (the nested
      comparisons look at the same applicants: the lender's evidence is counted once), else 0.
    - ``evidence_weight``: on that row, ``llr - ln k`` (k the lender's comparisons with an
      estimate: looking k times costs ln k, the log of Bonferroni's factor), floored at 0 and
      capped at ``MAX_EVIDENCE``; 0 elsewhere.
    """
    table = table.copy()
    value = table[estimate].to_numpy(dtype=np.float64, na_value=np.nan)
    error = table["standard_error"].to_numpy(dtype=np.float64, na_value=np.nan)
    if "degrees_of_freedom" in table.columns:  # a t statistic: its normal equivalent, so few loans weigh little
        freedom = table["degrees_of_freedom"].to_numpy(dtype=np.float64, na_value=np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            statistic = value / error
            # the z with the t statistic's tail probability, on the log scale: exact far in the tail too
            equivalent = -np.sign(statistic) * special.ndtri_exp(stats.t.logsf(np.abs(statistic), freedom))
            equivalent = np.where(np.isfinite(equivalent), equivalent, statistic)  # beyond scipy's tail: t itself
            error = np.where(np.abs(equivalent) > 0, value / equivalent, error)
    with np.errstate(divide="ignore", invalid="ignore"):
        llr = (value * alternative - alternative**2 / 2) / error**2
    table["llr"] = llr
    eligible = table["comparison"].isin(comparisons).to_numpy() & np.isfinite(llr)
    best, looks = _strongest(table["lei"], llr, eligible)
    strongest = np.zeros(len(table), dtype=np.int64)
    strongest[best] = 1
    weight = np.zeros(len(table))
    weight[best] = np.round(np.clip(llr[best] - np.log(looks), 0.0, MAX_EVIDENCE), 4)  # the rules' precision
    table["strongest"] = strongest
    table["evidence_weight"] = weight
    return table


def _strongest(lei: pd.Series, llr: np.ndarray, eligible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per lender with an ``eligible`` row (in LEI order): its row of highest ``llr`` (the first such row
    on a tie) and how many eligible rows it has, as float. Sorted as arrays (``np.lexsort``: texts compare
    by code point, as pandas sorts them); should an LEI be missing, by pandas as before."""
    rows = np.flatnonzero(eligible)
    leis = lei.to_numpy(dtype=object)[rows]
    if not all(type(value) is str for value in leis):  # a missing LEI: pandas' sort and grouping
        ranked = pd.DataFrame({"lei": lei, "llr": np.where(eligible, llr, -np.inf), "row": np.arange(len(lei))})
        ranked = ranked[eligible].sort_values(["lei", "llr", "row"], ascending=[True, False, True], kind="stable")
        best = ranked.drop_duplicates("lei")["row"].to_numpy()
        tried = ranked.groupby("lei", sort=False)["row"].size()
        return best, tried.reindex(lei.iloc[best]).to_numpy(dtype=np.float64)
    order = np.lexsort((rows, -llr[rows], leis))  # by LEI, then the highest llr (finite here), then the row
    leis = leis[order]
    starts = np.flatnonzero(np.concatenate(([True], leis[1:] != leis[:-1]))) if leis.size else rows[:0]
    looks = np.diff(np.append(starts, leis.size)).astype(np.float64)
    return rows[order][starts], looks


def _with_holm(table: pd.DataFrame) -> pd.DataFrame:
    """``p_adjusted``: ``p_value`` adjusted by Holm's method over the lender's comparisons (a lender
    is tested once per comparison, so one chance finding among them is not evidence)."""
    table["p_adjusted"] = holm_adjusted(table["p_value"].to_numpy(dtype=np.float64), table["lei"].to_numpy())
    return table


def _tag(result: pd.DataFrame, comparison: Comparison) -> pd.DataFrame:
    result = result.copy()
    result.insert(1 if "lei" in result.columns[:1] else 0, "comparison", comparison.name)
    return result


def _tagged(parts: list[tuple[pd.DataFrame, Comparison]]) -> pd.DataFrame:
    """The comparisons' tables joined, each row with its comparison's name (``_tag``): inserted once
    into the joined table when every table has the same columns, not into a copy of each."""
    columns = [list(table.columns) for table, _ in parts]
    if any(names != columns[0] for names in columns):  # tables of different columns: tagged one by one
        return pd.concat([_tag(table, comparison) for table, comparison in parts], ignore_index=True)
    joined = pd.concat([table for table, _ in parts], ignore_index=True)
    names = np.array([comparison.name for _, comparison in parts], dtype=object)
    column = pd.Series(np.repeat(names, [len(table) for table, _ in parts]), dtype="str")
    joined.insert(1 if "lei" in joined.columns[:1] else 0, "comparison", column)
    return joined


def _joined(parts: list[tuple[Columns, Comparison]], keys: list[str]) -> pd.DataFrame:
    """``_sorted(_tagged(...), keys)`` of the comparisons' tables given as arrays (``statistics.Columns``):
    joined and sorted as arrays, one frame built (not a frame per comparison, joined, tagged and sorted)."""
    if not parts:
        return _sorted(_tagged([]), keys)
    names = list(parts[0][0].values)
    joined = {name: np.concatenate([part.values[name] for part, _ in parts]) for name in names}
    sizes = [len(part.values[names[0]]) for part, _ in parts]
    comparison = np.repeat(np.array([comparison.name for _, comparison in parts], dtype=object), sizes)
    items = list(joined.items())
    items.insert(1 if names[:1] == ["lei"] else 0, ("comparison", comparison))
    table = Columns(dict(items), parts[0][0].texts | {"comparison"})
    columns = [table.values[key] for key in keys]
    if not all(type(value) is str for column in columns for value in column):  # missing: sorted by pandas
        return _sorted(table.frame(), keys)
    order = np.lexsort(columns[::-1])  # a stable sort by the keys: texts compare by code point, as in pandas
    return Columns({name: values[order] for name, values in table.values.items()}, table.texts).frame()


def _sorted(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)


def _lenders(frame: pd.DataFrame, denial_odds: pd.DataFrame) -> pd.DataFrame:
    """Per lender (LEI in text order; rows without one left out): its applications, decisions (approved or
    denied), usable decisions (not excluded), usable denials, and whether a denial-odds row of it was fitted.
    Counted by ``np.bincount`` over the lenders' codes (the sums of ``groupby("lei", sort=True).sum()``)."""
    decision = frame["decision"]
    decided = decision.isin(("approved", "denied")).to_numpy(dtype=bool)
    usable = decided & frame["excluded"].eq("").to_numpy(dtype=bool)
    denied = usable & decision.eq("denied").to_numpy(dtype=bool)
    codes, leis = pd.factorize(frame["lei"], sort=True)  # text order, as the grouping sorts; missing: -1
    known = codes >= 0
    count = len(leis)

    def counted(mask: np.ndarray) -> np.ndarray:
        return np.bincount(codes[known & mask], minlength=count).astype(np.int64)

    lenders = pd.DataFrame(
        {
            "lei": pd.Series(np.asarray(leis, dtype=object), dtype="str"),
            "applications": counted(known),
            "decisions": counted(decided),
            "usable": counted(usable),
            "denied": counted(denied),
        }
    )
    tested = denial_odds.loc[denial_odds["reason"] == "", "lei"].unique()
    lenders["tested"] = lenders["lei"].isin(tested).astype(np.int64)
    return lenders
