"""Similarly situated applicants: nearest reference-group neighbours within blocks.

``similar_pairs(frame, spec)`` takes a cleaned HMDA frame (see ``reasoner.lending.registers.hmda``) and a
``SimilaritySpec`` and returns one row per pair ``(a, b)``: ``b`` an applicant of a compared
group, ``a`` one of its ``spec.neighbours`` nearest applicants of the reference group in the
same block (by default the same lender, loan type, purpose and lien), nearest first:

==============  =======  ==========================================================
column          type     meaning
==============  =======  ==========================================================
a               str      ``application_id`` of the reference-group applicant
b               str      ``application_id`` of the compared-group applicant
distance        float64  Euclidean distance of the scaled similarity columns
rank            int64    1 for ``b``'s nearest reference applicant, 2 for the next …
<block column>  as is    the block key (``lei``, ``loan_type`` …), the same for a and b
==============  =======  ==========================================================

Rows are sorted by ``(b, rank)``; application ids compare as text. Only rows usable for
treatment rules take part (``excluded == ''`` and a decision 'approved' or 'denied') whose
group is the reference or a compared one; of those, rows with a missing (or non-finite)
similarity value or block key do not take part, and neither do rows with a value <= 0 in a
column of ``spec.log_columns``. ``pairs.attrs['counts']`` is a ``PairCounts`` saying how
many rows took part, were left out and why, and how many found no neighbour.

Scaling is fitted once on the whole frame (every usable row with complete similarity
values, whatever its group or block), never per block, so a distance means the same in
every block and does not depend on which groups are compared. 'robust' subtracts the
median and divides by the interquartile range, 'standard' the mean and the standard
deviation, 'none' leaves the values as they are; a column whose spread is zero is divided
by 1 (robust falls back to the standard deviation first). ``log_columns`` are replaced by
their natural logarithm before scaling (income and loan amount are skewed: a $20,000
difference matters at $40,000 and hardly at $400,000).

Ties are broken by application id: of two reference applicants at the same distance the
one whose id sorts first ranks first, so the output depends on the data only, not on row
order or on the search structure. A pair is kept when its distance is at most
``max_distance`` (all pairs when it is None); ranks stay 1, 2, … over the kept pairs.

Search runs within blocks, never over all pairs of the frame. Small blocks (at most
``TREE_MIN_REFERENCES`` reference applicants) are searched exhaustively, many blocks at a
time in batches of at most ``BATCH_PAIRS`` candidate pairs; the larger blocks share one
scipy ``cKDTree`` of their reference applicants, each block placed apart from the others by
an extra coordinate (so a query finds its own block's applicants first), queried once for
``neighbours + 1`` candidates per compared applicant (plus one radius query for the few
applicants with a tie at the boundary), and the candidates' distances are recomputed with
the same formula as the exhaustive search, so both paths give identical results. Memory is
bounded by the large blocks' reference applicants and one batch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from reasoner.errors import UsageError, closest

__all__ = [
    "BATCH_PAIRS",
    "GroupRows",
    "SCALINGS",
    "TREE_MIN_REFERENCES",
    "PairCounts",
    "PairRows",
    "Scaling",
    "SimilaritySpec",
    "fit_scaling",
    "similar_pair_rows_of",
    "similar_pairs",
    "similar_pairs_of",
]

SCALINGS = ("robust", "standard", "none")
TREE_MIN_REFERENCES = 16  # blocks with more reference applicants get a KD-tree
BATCH_PAIRS = 1_000_000  # candidate pairs per exhaustive batch (bounds memory)
DECISIONS = ("approved", "denied")
MINORITY_RACES = (
    "Black or African American",
    "Asian",
    "American Indian or Alaska Native",
    "Native Hawaiian or Other Pacific Islander",
    "2 or more minority races",
)
TREE_MAX_SPAN = 1e150  # the blocks' extra coordinate in the shared tree stays below this (squares stay finite)
RELATIVE_TIE = 1e-9  # distances this close (relatively) may be a tie between the two search paths


@dataclass(frozen=True, slots=True)
class SimilaritySpec:
    """What makes two applicants similarly situated (see the module docstring).

    ``columns`` are the numeric similarity columns, ``log_columns`` those of them taken as
    logarithms, ``scaling`` one of ``SCALINGS``; ``blocks`` the columns that must be equal;
    ``neighbours`` the number of reference neighbours per compared applicant and
    ``max_distance`` the largest distance kept (None: no limit). ``group_column`` holds the
    groups: ``reference`` (e.g. 'White') and the ``compared`` ones.
    """

    columns: tuple[str, ...] = ("income", "dti", "cltv", "loan_amount")
    scaling: str = "robust"
    blocks: tuple[str, ...] = ("lei", "loan_type", "loan_purpose", "lien_status")
    neighbours: int = 5
    max_distance: float | None = None
    group_column: str = "race"
    reference: str = "White"
    compared: tuple[str, ...] = MINORITY_RACES
    log_columns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.columns:
            raise UsageError("similarity spec: no similarity columns")
        for name, values in (("columns", self.columns), ("blocks", self.blocks), ("compared", self.compared)):
            if isinstance(values, str) or len(set(values)) != len(values):
                raise UsageError(f"similarity spec: '{name}' must be a tuple without repeats, got {values!r}")
        if self.scaling not in SCALINGS:
            raise UsageError(f"similarity spec: unknown scaling '{self.scaling}' (expected one of {SCALINGS})")
        if isinstance(self.neighbours, bool) or not isinstance(self.neighbours, int) or self.neighbours < 1:
            raise UsageError(f"similarity spec: 'neighbours' must be an integer >= 1, got {self.neighbours!r}")
        if self.max_distance is not None and not self.max_distance >= 0:
            raise UsageError(f"similarity spec: 'max_distance' must be >= 0 or None, got {self.max_distance!r}")
        if not self.compared:
            raise UsageError("similarity spec: no compared group")
        if self.reference in self.compared:
            raise UsageError(f"similarity spec: reference group '{self.reference}' is also a compared group")
        stray = [name for name in self.log_columns if name not in self.columns]
        if stray:
            raise UsageError(f"similarity spec: log column '{stray[0]}' is not a similarity column")
        overlap = [name for name in self.columns if name in self.blocks]
        if overlap:
            raise UsageError(f"similarity spec: column '{overlap[0]}' is both a similarity and a block column")


@dataclass(frozen=True, slots=True)
class PairCounts:
    """Rows of ``similar_pairs``: who took part, who was left out and why.

    ``reference`` and ``compared``: rows of each side that took part. ``missing``: usable
    rows of these groups left out for a missing similarity value or block key (a value <= 0
    in a log column counts as missing); ``missing_by_column`` counts them per column (a row
    missing two values counts under both). ``without_reference``: compared rows whose block
    has no reference applicant; ``beyond_distance``: compared rows whose nearest reference
    applicant is farther than ``max_distance``; ``matched``: compared rows with a pair.
    """

    reference: int
    compared: int
    missing: int
    missing_by_column: tuple[tuple[str, int], ...]
    without_reference: int
    beyond_distance: int
    matched: int
    pairs: int


@dataclass(frozen=True, slots=True)
class Scaling:
    """Centre and spread of every similarity column (``None`` for scaling 'none' or no rows).

    Fitted once on a whole register (``fit_scaling``) and handed to ``similar_pairs`` for
    each part of it, so that a part's distances are those of the whole register.
    """

    centre: tuple[float, ...] | None
    spread: tuple[float, ...] | None


@dataclass(frozen=True, slots=True)
class _Sides:
    """Rows that take part, sorted by (block, application id), with scaled values."""

    reference_rows: np.ndarray  # positions in the frame
    compared_rows: np.ndarray
    reference_values: np.ndarray  # (rows, columns) scaled
    compared_values: np.ndarray
    reference_start: np.ndarray  # per block: first reference position
    reference_count: np.ndarray  # per block: number of reference rows
    compared_block: np.ndarray  # per compared row: its block number


def fit_scaling(frame: pd.DataFrame, spec: SimilaritySpec) -> Scaling:
    """The scaling ``similar_pairs(frame, spec)`` fits (module docstring), for use on parts of ``frame``.

    It does not depend on the groups compared: every usable row with complete values counts.
    """
    _check_columns(frame, spec, groups=False)
    decided = frame["decision"].isin(DECISIONS).to_numpy(dtype=bool)
    usable = frame["excluded"].eq("").fillna(False).to_numpy(dtype=bool) & decided
    if spec.scaling != "robust":
        values = _features(frame, spec)
        return _fit(values, usable & np.isfinite(values).all(axis=1), spec.scaling)
    columns = _feature_columns(frame, spec)
    for column in columns:
        usable &= np.isfinite(column)
    return _fit_robust(columns, usable)


def _feature_columns(frame: pd.DataFrame, spec: SimilaritySpec) -> list[np.ndarray]:
    """The columns of ``_features(frame, spec)``, each its own array (the same values)."""
    columns = []
    for name in spec.columns:
        column = frame[name].to_numpy(dtype=np.float64, na_value=np.nan)
        if name in spec.log_columns:
            positive = column > 0
            column = np.log(np.where(positive, column, 1.0))
            column[~positive] = np.nan
        columns.append(column)
    return columns


def _fit_robust(columns: list[np.ndarray], fit_rows: np.ndarray) -> Scaling:
    """``_fit(np.column_stack(columns), fit_rows, "robust")``, the same bits, column by column: a
    column's quartiles from its own contiguous values (not a partition along the rows of a matrix
    of every column, 1.7 of 11 s at 12,000,000 rows), its standard deviation only for a column
    whose interquartile range is 0 (from the same matrix, as ``_fit``)."""
    if not fit_rows.any():
        return Scaling(None, None)
    fitted = [column[fit_rows] for column in columns]
    quartiles = np.array([np.percentile(column, [25.0, 50.0, 75.0]) for column in fitted]).reshape(len(fitted), 3)
    lower, centre, upper = quartiles.T
    spread = upper - lower
    if not (spread > 0).all():
        spread = np.where(spread > 0, spread, np.column_stack(fitted).std(axis=0))
    spread = np.where(spread > 0, spread, 1.0)
    return Scaling(tuple(float(value) for value in centre), tuple(float(value) for value in spread))


def similar_pairs(frame: pd.DataFrame, spec: SimilaritySpec, scaling: Scaling | None = None) -> pd.DataFrame:
    """Each compared applicant's nearest reference applicants in its block (module docstring).

    ``scaling`` (from ``fit_scaling`` on a larger frame this one is part of) replaces the
    scaling fitted on ``frame``.
    """
    return similar_pairs_of(frame, (spec,), scaling)[0]


def similar_pairs_of(
    frame: pd.DataFrame, specs: Sequence[SimilaritySpec], scaling: Scaling | None = None
) -> list[pd.DataFrame]:
    """``similar_pairs(frame, spec, scaling)`` for each of ``specs``, the same tables and counts.

    Specs that differ only in their groups and select the same reference rows (the audit's
    'minority', 'black', 'hispanic' and 'asian' comparisons all compare with White
    non-Hispanic applicants) share one search, over the union of their compared rows: a
    compared applicant's nearest reference applicants do not depend on the other compared
    applicants (the reference rows, their order, the trees and the distances are the same), so
    each spec keeps the pairs of its own compared rows, in the same order and with the same bits.
    """
    return [_pairs_frame(frame, found) for found in similar_pair_rows_of(frame, specs, scaling)]


class GroupRows:
    """Which rows of ``frame`` are in some groups of a column (``rows``): each column factorized
    once for every question asked of it, not compared as text per question."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self._frame = frame
        self._codes: dict[str, tuple[np.ndarray, list[object]]] = {}

    def rows(self, column: str, groups: Sequence[str]) -> np.ndarray:
        """Per row, whether its value in ``column`` is one of ``groups`` (False where missing)."""
        if column not in self._codes:
            codes, uniques = pd.factorize(self._frame[column])
            self._codes[column] = codes, list(uniques)
        codes, uniques = self._codes[column]
        wanted = np.array([value in groups for value in uniques] + [False], dtype=bool)
        member: np.ndarray = wanted[codes]  # code -1 (missing) reads the last entry: False
        return member


@dataclass(frozen=True, slots=True)
class PairRows:
    """The pairs of ``similar_pairs(frame, spec)`` as positions in ``frame`` (``similar_pair_rows_of``):
    per pair the row of ``a`` (reference) and of ``b`` (compared), the distance and the rank, in
    the table's order; and the table's counts."""

    spec: SimilaritySpec
    reference_rows: np.ndarray  # int64
    compared_rows: np.ndarray  # int64
    distance: np.ndarray
    rank: np.ndarray  # int64
    counts: PairCounts


def similar_pair_rows_of(
    frame: pd.DataFrame, specs: Sequence[SimilaritySpec], scaling: Scaling | None = None
) -> list[PairRows]:
    """``similar_pairs_of(frame, specs, scaling)`` as rows of ``frame`` (``PairRows``), for a caller
    that reads the pairs' columns from the frame itself rather than finding the ids again."""
    for spec in specs:
        _check_columns(frame, spec)
    decided = frame["decision"].isin(DECISIONS).to_numpy(dtype=bool)
    usable = frame["excluded"].eq("").fillna(False).to_numpy(dtype=bool) & decided
    sides_of = []
    shared: dict[tuple[object, ...], list[int]] = {}
    groups = GroupRows(frame)
    for index, spec in enumerate(specs):
        is_reference = usable & groups.rows(spec.group_column, (spec.reference,))
        is_compared = usable & groups.rows(spec.group_column, spec.compared)
        sides_of.append((is_reference, is_compared))
        search = (spec.columns, spec.scaling, spec.blocks, spec.neighbours, spec.max_distance, spec.log_columns)
        shared.setdefault((*search, is_reference.tobytes()), []).append(index)
    results: dict[int, PairRows] = {}
    order_key = _id_order(frame["application_id"]) if specs else np.empty(0, np.int64)  # once for every search
    features: dict[tuple[tuple[str, ...], tuple[str, ...]], np.ndarray] = {}
    blocks: dict[tuple[str, ...], np.ndarray] = {}
    missing_keys: dict[str, np.ndarray] = {}
    for members in shared.values():
        spec = specs[members[0]]
        is_reference = sides_of[members[0]][0]
        union = np.logical_or.reduce([sides_of[index][1] for index in members])
        if (spec.columns, spec.log_columns) not in features:
            features[spec.columns, spec.log_columns] = _features(frame, spec)
        values = features[spec.columns, spec.log_columns]
        if spec.blocks not in blocks:
            blocks[spec.blocks] = _block_codes(frame, spec.blocks)
        found = _searched(frame, spec, scaling, usable, is_reference, union, values, blocks[spec.blocks], order_key)
        for name in spec.blocks:
            if name not in missing_keys:
                missing_keys[name] = frame[name].isna().to_numpy(dtype=bool)
        for index in members:
            results[index] = _pairs(missing_keys, specs[index], found, is_reference, sides_of[index][1])
    return [results[index] for index in range(len(specs))]


@dataclass(frozen=True, slots=True)
class _Found:
    """One search: the pairs of every compared row searched (frame rows, ordered by compared
    applicant's id and rank), and what the counts of ``PairCounts`` are taken from."""

    compared_rows: np.ndarray  # per pair
    reference_rows: np.ndarray
    distance: np.ndarray
    rank: np.ndarray
    sides: _Sides
    present: np.ndarray  # (rows, columns): similarity value known
    taking_part: np.ndarray  # per row: complete values and a block key


def _searched(
    frame: pd.DataFrame,
    spec: SimilaritySpec,
    scaling: Scaling | None,
    usable: np.ndarray,
    is_reference: np.ndarray,
    is_compared: np.ndarray,
    values: np.ndarray,
    blocks: np.ndarray,
    order_key: np.ndarray,
) -> _Found:
    """The search of ``is_compared`` rows' neighbours among ``is_reference`` rows; ``values``:
    ``_features(frame, spec)``, ``blocks``: ``_block_codes(frame, spec.blocks)``, ``order_key``:
    ``_id_order`` of the frame's ids."""
    present = np.isfinite(values)
    complete = present.all(axis=1)
    block_codes = np.where(is_reference | is_compared, blocks, -1)
    taking_part = complete & (block_codes >= 0)
    scaled = _apply(values, scaling if scaling is not None else _fit(values, usable & complete, spec.scaling))
    sides = _sides(scaled, block_codes, order_key, is_reference & taking_part, is_compared & taking_part)

    found = [_search(sides, spec, batch) for batch in _work(sides, spec)]
    compared_index = np.concatenate([part[0] for part in found] + [np.empty(0, np.int64)])
    reference_index = np.concatenate([part[1] for part in found] + [np.empty(0, np.int64)])
    distance = np.concatenate([part[2] for part in found] + [np.empty(0)])
    rank = np.concatenate([part[3] for part in found] + [np.empty(0, np.int64)])

    compared_frame_rows = sides.compared_rows[compared_index]
    reference_frame_rows = sides.reference_rows[reference_index]
    order = np.lexsort((rank, order_key[compared_frame_rows]))
    return _Found(
        compared_frame_rows[order], reference_frame_rows[order], distance[order], rank[order], sides, present,
        taking_part,
    )


def _pairs(
    missing_keys: dict[str, np.ndarray],
    spec: SimilaritySpec,
    found: _Found,
    is_reference: np.ndarray,
    is_compared: np.ndarray,
) -> PairRows:
    """The pairs and counts of ``spec``, whose compared rows are ``is_compared``, from a search of them
    (and perhaps of other compared rows); ``missing_keys``: per block column, the rows without a key."""
    mine = is_compared[found.compared_rows]
    compared_frame_rows, reference_frame_rows = found.compared_rows[mine], found.reference_rows[mine]
    sides = found.sides
    sides_mask = is_reference | is_compared
    missing_by_column = tuple(
        (name, int((sides_mask & ~found.present[:, index]).sum())) for index, name in enumerate(spec.columns)
    ) + tuple((name, int((sides_mask & missing_keys[name]).sum())) for name in spec.blocks)
    searched = is_compared[sides.compared_rows]  # this spec's compared rows among those searched
    with_reference = sides.reference_count[sides.compared_block] > 0
    matched = int(np.count_nonzero(found.rank[mine] == 1))  # a matched row's pairs are ranked 1, 2, …
    counts = PairCounts(
        reference=int(sides.reference_rows.size),
        compared=int(searched.sum()),
        missing=int((sides_mask & ~found.taking_part).sum()),
        missing_by_column=missing_by_column,
        without_reference=int((searched & ~with_reference).sum()),
        beyond_distance=int((searched & with_reference).sum()) - matched,
        matched=matched,
        pairs=int(compared_frame_rows.size),
    )
    return PairRows(
        spec,
        reference_frame_rows.astype(np.int64, copy=False),
        compared_frame_rows.astype(np.int64, copy=False),
        found.distance[mine],
        found.rank[mine].astype(np.int64),
        counts,
    )


def _pairs_frame(frame: pd.DataFrame, found: PairRows) -> pd.DataFrame:
    """The table of ``similar_pairs`` (module docstring) from its rows."""
    ids = frame["application_id"]
    pairs = pd.DataFrame(
        {
            "a": ids.iloc[found.reference_rows].reset_index(drop=True),
            "b": ids.iloc[found.compared_rows].reset_index(drop=True),
            "distance": found.distance,
            "rank": found.rank,
        }
    )
    for name in found.spec.blocks:
        pairs[name] = frame[name].iloc[found.compared_rows].reset_index(drop=True)
    pairs.attrs["counts"] = found.counts
    pairs.attrs["spec"] = found.spec
    return pairs


def _check_columns(frame: pd.DataFrame, spec: SimilaritySpec, *, groups: bool = True) -> None:
    group = (spec.group_column,) if groups else ()
    needed = ("application_id", "excluded", "decision", *group, *spec.blocks, *spec.columns)
    known = [str(name) for name in frame.columns]
    for name in needed:
        if name not in frame.columns:
            close = closest(name, known, cutoff=0.75)
            hint = f" (did you mean '{close}'?)" if close else ""
            raise UsageError(f"similar pairs: the frame has no column '{name}'{hint}")
    for name in spec.columns:
        if not pd.api.types.is_numeric_dtype(frame[name]):
            raise UsageError(f"similar pairs: similarity column '{name}' is not numeric ({frame[name].dtype})")


def _features(frame: pd.DataFrame, spec: SimilaritySpec) -> np.ndarray:
    """Similarity columns as floats; logarithms for ``log_columns`` (NaN where value <= 0)."""
    values = np.column_stack([frame[name].to_numpy(dtype=np.float64, na_value=np.nan) for name in spec.columns])
    for index, name in enumerate(spec.columns):
        if name in spec.log_columns:
            column = values[:, index]
            positive = column > 0
            values[:, index] = np.log(np.where(positive, column, 1.0))
            values[~positive, index] = np.nan
    return values


def _block_codes(frame: pd.DataFrame, blocks: tuple[str, ...]) -> np.ndarray:
    """Block number per row (numbered in the order of the sorted keys); -1 for a row with a missing key.

    Only which rows share a block matters to the search (a row's neighbours are in its block, ties
    are broken by id, the pairs are ordered by id): the numbers are computed once for every search
    of a frame, over all its rows. Each key column factorized in its sorted order and the codes
    combined into one integer per row, ranked by counting the keys used (or by ``np.unique`` when the
    combinations far outnumber the rows): the numbers of ``groupby(blocks, sort=True).ngroup()`` without a
    grouping's per-call cost (~5 ms), and faster than it at a million rows too."""
    key = np.zeros(len(frame), dtype=np.int64)
    missing = np.zeros(len(frame), dtype=bool)
    bound = 1  # key < bound
    for name in blocks:
        codes, levels = pd.factorize(frame[name], sort=True)  # -1: missing
        missing |= codes < 0
        if bound * max(len(levels), 1) >= 2**62:  # too many combinations for an integer: ranked first
            key, bound = np.unique(key, return_inverse=True)[1].reshape(-1), len(frame) + 1
        key, bound = key * len(levels) + codes, bound * max(len(levels), 1)
    if bound <= 4 * len(frame) + 1024:  # few combinations: ranked by counting the keys used, not by a sort
        used = np.zeros(bound + 1, dtype=bool)
        used[np.where(missing, bound, key)] = True
        rank = np.cumsum(used[:bound]) - 1
        return np.where(missing, -1, rank[np.where(missing, 0, key)])
    number = np.unique(np.where(missing, -1, key), return_inverse=True)[1].reshape(-1)
    return np.where(missing, -1, number - int(missing.any()))


def _fit(values: np.ndarray, fit_rows: np.ndarray, scaling: str) -> Scaling:
    """Centre and spread of every column from ``fit_rows`` (module docstring)."""
    if scaling == "none" or not fit_rows.any():
        return Scaling(None, None)
    fitted = values[fit_rows]
    deviation = fitted.std(axis=0)
    if scaling == "robust":
        lower, centre, upper = np.percentile(fitted, [25.0, 50.0, 75.0], axis=0)
        spread = np.where(upper - lower > 0, upper - lower, deviation)
    else:
        centre, spread = fitted.mean(axis=0), deviation
    spread = np.where(spread > 0, spread, 1.0)
    return Scaling(tuple(float(value) for value in centre), tuple(float(value) for value in spread))


def _apply(values: np.ndarray, scaling: Scaling) -> np.ndarray:
    """Every column centred and divided by its spread."""
    if scaling.centre is None or scaling.spread is None:
        return values
    width = values.shape[1]
    centre = np.array(scaling.centre, dtype=np.float64).reshape(1, width)
    spread = np.array(scaling.spread, dtype=np.float64).reshape(1, width)
    scaled: np.ndarray = (values - centre) / spread
    return scaled


def _id_order(ids: pd.Series) -> np.ndarray:
    """Position of every row when application ids are sorted as text."""
    order = ids.astype("str").reset_index(drop=True).argsort(kind="stable").to_numpy()
    key = np.empty(order.size, dtype=np.int64)
    key[order] = np.arange(order.size)
    return key


def _sides(
    scaled: np.ndarray, block: np.ndarray, order_key: np.ndarray, reference: np.ndarray, compared: np.ndarray
) -> _Sides:
    reference_rows = np.flatnonzero(reference)
    reference_rows = reference_rows[np.lexsort((order_key[reference_rows], block[reference_rows]))]
    compared_rows = np.flatnonzero(compared)
    compared_rows = compared_rows[np.lexsort((order_key[compared_rows], block[compared_rows]))]
    num_blocks = int(block.max()) + 1 if block.size else 0
    reference_count = np.bincount(block[reference_rows], minlength=num_blocks)
    reference_start = np.cumsum(reference_count) - reference_count
    return _Sides(
        reference_rows=reference_rows,
        compared_rows=compared_rows,
        reference_values=np.ascontiguousarray(scaled[reference_rows]),
        compared_values=np.ascontiguousarray(scaled[compared_rows]),
        reference_start=reference_start,
        reference_count=reference_count,
        compared_block=block[compared_rows],
    )


def _work(sides: _Sides, spec: SimilaritySpec) -> Iterator[tuple[str, np.ndarray]]:
    """Units of search: ('batch', compared positions) of small blocks, and one ('tree', positions)
    of every large block's compared rows."""
    cost = sides.reference_count[sides.compared_block]
    tree = (cost > TREE_MIN_REFERENCES) & (cost > spec.neighbours)
    positions = np.flatnonzero(~tree & (cost > 0))
    if positions.size:
        cumulative = np.cumsum(cost[positions])
        batch = (cumulative - 1) // BATCH_PAIRS
        bounds = np.flatnonzero(np.diff(batch)) + 1
        for part in np.split(positions, bounds):
            yield "batch", part
    tree_positions = np.flatnonzero(tree)
    if tree_positions.size:
        yield "tree", tree_positions


def _distance(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Row-wise Euclidean distance, summed column by column (one formula for both paths)."""
    total = np.zeros(first.shape[0])
    for index in range(first.shape[1]):
        difference = first[:, index] - second[:, index]
        total += difference * difference
    return np.sqrt(total)


def _search(
    sides: _Sides, spec: SimilaritySpec, unit: tuple[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    kind, positions = unit
    if kind == "tree":
        return _tree_search(sides, spec, positions)
    cost = sides.reference_count[sides.compared_block[positions]]
    compared = np.repeat(positions, cost)
    offset = np.arange(compared.size) - np.repeat(np.cumsum(cost) - cost, cost)
    reference = np.repeat(sides.reference_start[sides.compared_block[positions]], cost) + offset
    distance = _distance(sides.reference_values[reference], sides.compared_values[compared])
    return _nearest(compared, reference, distance, spec)


def _tree_search(
    sides: _Sides, spec: SimilaritySpec, positions: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The nearest of the compared rows at ``positions`` (their blocks have more than ``neighbours``
    reference rows), by one KD-tree over the reference rows of all their blocks.

    A block's number times a spacing wider than any distance within a block is an extra
    coordinate, so a row's ``neighbours + 1`` nearest in the tree are in its block (a row of
    another block is farther than every row of its own), and distances within a block are those
    of the block alone (the extra coordinates differ by exactly 0). The tree gives candidates
    only; every candidate's distance is computed again by ``_distance``, the exhaustive search's
    formula. A row whose ``neighbours + 1``-th candidate is not clearly farther than its
    ``neighbours``-th may have ties beyond the tree's choice: all its reference rows within that
    distance are asked for by a radius query and ranked with the batch path's ``_nearest``; the
    others' ranks come from their own candidates, sorted by distance and then reference position
    (the same order)."""
    blocks, local = np.unique(sides.compared_block[positions], return_inverse=True)
    counts = sides.reference_count[blocks]
    offsets = np.cumsum(counts) - counts
    reference = np.repeat(sides.reference_start[blocks] - offsets, counts) + np.arange(int(counts.sum()))
    points = sides.reference_values[reference]
    queries = sides.compared_values[positions]
    low = np.minimum(points.min(axis=0), queries.min(axis=0))
    high = np.maximum(points.max(axis=0), queries.max(axis=0))
    with np.errstate(over="ignore"):  # an overflow makes it inf: a tree per block, below
        spacing = 2.0 * float(np.sqrt(np.sum((high - low) ** 2))) + 1.0  # > twice any distance within a block
    if blocks.size > 1 and not spacing * blocks.size < TREE_MAX_SPAN:
        # Values so far apart (a mistyped 1e160) that the tree's squared distances would overflow:
        # a tree per block, whose extra coordinate is 0.
        found = [_tree_search(sides, spec, positions[local == block]) for block in range(blocks.size)]
        compared, nearest, distance, rank = (np.concatenate([part[index] for part in found]) for index in range(4))
        return compared, nearest, distance, rank
    if blocks.size == 1:
        spacing = 0.0  # a single block needs no extra coordinate (and inf * 0 is not 0)
    tree = cKDTree(np.column_stack([points, np.repeat(np.arange(blocks.size) * spacing, counts)]))
    placed = np.column_stack([queries, local * spacing])
    wanted = spec.neighbours + 1
    tree_distance, found = tree.query(placed, k=wanted)
    mine = _distance(points[found.ravel()], np.repeat(queries, wanted, axis=0)).reshape(found.shape)
    candidates = reference[found]
    order = np.lexsort((candidates, mine), axis=1)  # per row: by distance, ties by reference position
    mine = np.take_along_axis(mine, order, axis=1)
    candidates = np.take_along_axis(candidates, order, axis=1)
    limit = mine[:, spec.neighbours - 1] * (1 + RELATIVE_TIE) + 1e-12
    ambiguous = tree_distance[:, -1] <= limit
    clear = ~ambiguous
    distance = mine[clear, : spec.neighbours].ravel()
    rank = np.tile(np.arange(1, spec.neighbours + 1, dtype=np.int64), int(clear.sum()))
    compared = np.repeat(positions[clear], spec.neighbours)
    nearest = candidates[clear, : spec.neighbours].ravel()
    if spec.max_distance is not None:  # the kept candidates of a row are its first ones: ranks stay 1, 2, …
        close = distance <= spec.max_distance
        compared, nearest, distance, rank = compared[close], nearest[close], distance[close], rank[close]
    if not ambiguous.any():
        return compared, nearest, distance, rank
    within = tree.query_ball_point(placed[ambiguous], r=limit[ambiguous])
    sizes = np.array([len(hits) for hits in within], dtype=np.int64)
    tied_compared = np.repeat(positions[ambiguous], sizes)
    tied_reference = reference[np.concatenate(list(within)).astype(np.int64)]
    tied_distance = _distance(sides.reference_values[tied_reference], sides.compared_values[tied_compared])
    tied = _nearest(tied_compared, tied_reference, tied_distance, spec)
    return (
        np.concatenate([compared, tied[0]]),
        np.concatenate([nearest, tied[1]]),
        np.concatenate([distance, tied[2]]),
        np.concatenate([rank, tied[3]]),
    )


def _nearest(
    compared: np.ndarray, reference: np.ndarray, distance: np.ndarray, spec: SimilaritySpec
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The ``neighbours`` nearest candidates per compared row, ties by reference position."""
    if spec.max_distance is not None:
        close = distance <= spec.max_distance
        compared, reference, distance = compared[close], reference[close], distance[close]
    order = np.lexsort((reference, distance, compared))
    compared, reference, distance = compared[order], reference[order], distance[order]
    first = np.r_[True, compared[1:] != compared[:-1]] if compared.size else np.zeros(0, bool)
    starts = np.flatnonzero(first)
    rank = np.arange(compared.size) - np.repeat(starts, np.diff(np.r_[starts, compared.size])) + 1
    keep = rank <= spec.neighbours
    return compared[keep], reference[keep], distance[keep], rank[keep]
