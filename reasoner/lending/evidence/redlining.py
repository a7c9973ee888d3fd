"""Redlining evidence: a lender's applications and originations in minority tracts against
peers of similar volume in the same market, as the Interagency Fair Lending Examination
Procedures and peer analyses (NCRC) compare them.

``redlining_signals(frame, *, bands=(50, 80), peer_volume=(0.5, 2.0), min_peers=5,
min_group=5, assessment_areas=None)`` returns one row per lender × market × band × measure,
plus one pooled row per lender × band × measure (``market_kind == 'pooled'``).

Population. Applications are actions 1–5 (originated, approved not accepted, denied,
withdrawn, incomplete); originations are action 1. Set aside and counted on every row:
purchased loans (6: the lender did not take the application), preapproval requests (7, 8)
and, when the cleaned frame has the columns, the segments examiners analyse apart: reverse
mortgages, open-end lines of credit, business or commercial purpose and loans not for a
principal residence (``occupancy_type`` 2 or 3). A row without a tract minority percentage
or a market is counted as ``unplaced``.

Markets. An application's market is its MSA/MD; outside any metro area (``99999``, or no MSA
given) it is the non-metropolitan part of its state (``non-metro MS``; the state from the
county's FIPS code when the state is missing), as CRA assessment areas and the FFIEC's
aggregate tables divide non-metro areas: never one national market. With
``assessment_areas`` (columns ``lei``, ``county``, ``msa``; ``read_assessment_areas``) a
listed lender's one market is its assessment area (the listed counties and MSAs, peers'
applications there included), and its applications elsewhere are counted ``outside_area``.

Peers. The other lenders in the market with ``peer_volume`` (0.5–2×) the lender's
applications there (regulators band peers by volume: a community bank is not compared with
the national lenders that dominate its MSA); when fewer than ``min_peers`` such lenders exist,
every other lender in the market (``peer_basis`` says which).

Bands: tracts whose minority population percentage is above each of ``bands`` (strict, as
the majority-minority test elsewhere). HMDA publishes only ``tract_minority_population_percent``,
so majority-Black and majority-Hispanic tracts cannot be told apart from the register.

Tests. Per market: the lender's share of its applications (originations) in the band
against the peers', ``share_ratio`` (lender / peers, an adverse-impact-style ratio whose
meaning does not depend on how common such tracts are) and the one-sided Fisher exact test
that the lender's share is lower (hypergeometric); ``p_adjusted`` is Holm's adjustment over
the lender's markets (per band and measure). Pooled: the Mantel–Haenszel risk ratio over the
lender's tested markets and the one-sided Cochran–Mantel–Haenszel test with continuity
correction (a lender avoiding minority tracts everywhere, by a little in each market, shows
here first).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from reasoner.errors import EvidenceError
from reasoner.lending.evidence.statistics import MIN_GROUP, holm_adjusted

__all__ = [
    "MEASURES",
    "REDLINING_COLUMNS",
    "SEGMENT_COLUMNS",
    "RedliningCells",
    "read_assessment_areas",
    "redlining_cells",
    "redlining_columns",
    "redlining_signals",
]

REDLINING_COLUMNS = ("lei", "msa", "state_code", "county_code", "tract_minority_pct", "action_taken")
# (column, what a row set aside is); a column absent from the frame is not used
SEGMENT_COLUMNS = (
    ("reverse_mortgage", "reverse mortgage"),
    ("open_end_line_of_credit", "open-end line of credit"),
    ("business_or_commercial_purpose", "business or commercial purpose"),
    ("occupancy_type", "not a principal residence"),
)
MEASURES = ("applications", "originations")
NON_METRO = "99999"
PURCHASED = 6
PREAPPROVALS = (7, 8)
APPLICATIONS = (1, 2, 3, 4, 5)
ORIGINATED = 1
COUNT_COLUMNS = ("purchased", "preapprovals", "other_segments", "unplaced", "outside_area")
THREADED_CELLS = 2048  # distinct cells of exact tests per thread before a second thread computes half


def redlining_columns(frame: pd.DataFrame) -> list[str]:
    """The columns of ``frame`` that ``redlining_signals`` reads (the segment columns it has)."""
    return [*REDLINING_COLUMNS, *(name for name, _ in SEGMENT_COLUMNS if name in frame.columns)]


def redlining_signals(
    frame: pd.DataFrame,
    *,
    bands: Sequence[float] = (50.0, 80.0),
    peer_volume: tuple[float, float] = (0.5, 2.0),
    min_peers: int = 5,
    min_group: int = MIN_GROUP,
    assessment_areas: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Minority-tract shares of each lender against its volume peers, per market and pooled.

    Columns: lei, market, market_kind ('MSA', 'non-metro state', 'assessment area',
    'pooled'), band (the tract minority percentage exceeded), measure ('applications',
    'originations'), count (the lender's in the market), band_count, share, peers (lenders
    compared; NaN when pooled), peer_basis, peer_count, peer_band_count, peer_share,
    share_ratio (share / peer_share; pooled: Mantel–Haenszel), p_value (one-sided, lower),
    p_adjusted (Holm over the lender's markets; pooled: the pooled p), markets (1, or the
    markets pooled), purchased, preapprovals, other_segments, unplaced, outside_area (rows
    set aside; pooled: the lender's), reason. Sorted by lei, market_kind == 'pooled' last,
    market, band, measure.
    """
    return redlining_cells(
        frame,
        bands=bands,
        peer_volume=peer_volume,
        min_peers=min_peers,
        min_group=min_group,
        assessment_areas=assessment_areas,
    ).signals()


def redlining_cells(
    frame: pd.DataFrame,
    *,
    bands: Sequence[float] = (50.0, 80.0),
    peer_volume: tuple[float, float] = (0.5, 2.0),
    min_peers: int = 5,
    min_group: int = MIN_GROUP,
    assessment_areas: pd.DataFrame | None = None,
) -> RedliningCells:
    """The register-wide part of ``redlining_signals`` (same arguments): ``RedliningCells.signals()``
    is its table, ``signals(leis)`` the rows of some lenders."""
    missing = [name for name in REDLINING_COLUMNS if name not in frame.columns]
    if missing:
        raise ValueError(f"redlining signals: the frame has no column {', '.join(repr(m) for m in missing)}")
    bands = tuple(float(band) for band in bands)
    action = pd.to_numeric(frame["action_taken"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    percent = frame["tract_minority_pct"].to_numpy(dtype=np.float64, na_value=np.nan)
    place, places = _places(frame)
    market_of_place, kind_of_place = _markets(places)

    # The first reason a row is not analysed: 1 purchased, 2 preapproval, 3 other segment, 4 unplaced.
    reason = np.zeros(len(frame), dtype=np.int64)
    reason[~np.isin(action, APPLICATIONS)] = 4  # actions outside 1-8 (never in a valid register)
    reason[np.isin(action, PREAPPROVALS)] = 2
    reason[action == PURCHASED] = 1
    segment = _segments(frame)
    reason[(reason == 0) & segment] = 3
    reason[(reason == 0) & ~(np.isfinite(percent) & (market_of_place != "")[place])] = 4

    # Counts per cell (lender × place): everything after this works on cells, not rows.
    lei_code, leis = _sorted_codes(frame["lei"])
    cell_key = lei_code.astype(np.int64) * len(places) + place
    cell_values, cell = _unique_inverse(cell_key)
    cell_place = cell_values % len(places) if len(places) else cell_values
    rows = pd.DataFrame(
        {
            "lei": np.asarray(leis, dtype=object)[cell_values // max(len(places), 1)],
            "market": market_of_place[cell_place],
            "kind": kind_of_place[cell_place],
            "county": places["county_code"].to_numpy(dtype=object)[cell_place],
            "msa": places["msa"].to_numpy(dtype=object)[cell_place],
        }
    )

    def per_cell(indicator: np.ndarray) -> np.ndarray:
        return np.bincount(cell, indicator.astype(np.float64), cell_values.size).astype(np.int64)

    analysed = reason == 0
    originated = analysed & (action == ORIGINATED)
    rows["applications"] = per_cell(analysed)
    rows["originations"] = per_cell(originated)
    for band in bands:
        inside = percent > band
        rows[f"applications_{band}"] = per_cell(analysed & inside)
        rows[f"originations_{band}"] = per_cell(originated & inside)
    for code, name in enumerate(COUNT_COLUMNS[:4], start=1):
        rows[name] = per_cell(reason == code)
    counted = [name for name in rows.columns if name.startswith(MEASURES)]

    areas = _areas(assessment_areas)
    in_area = rows["lei"].isin(areas["lei"])
    market_rows = rows[~in_area & (rows["market"] != "")]
    per_market = market_rows.groupby(["market", "lei"], sort=True)[[*counted, *COUNT_COLUMNS[:4]]].sum().reset_index()
    per_market["market_kind"] = market_rows.groupby(["market", "lei"], sort=True)["kind"].first().to_numpy()
    per_market["outside_area"] = 0
    per_market["focal"] = True
    # A listed lender's market is its area; it is a peer in every market (and area) it lends in.
    peers_rows = rows[in_area & (rows["market"] != "")]
    peer_only = peers_rows.groupby(["market", "lei"], sort=True)[counted].sum().reset_index()
    peer_only["market_kind"] = peers_rows.groupby(["market", "lei"], sort=True)["kind"].first().to_numpy()
    peer_only["focal"] = False
    parts = [part for part in (per_market, peer_only, _area_markets(rows, areas, counted)) if len(part)]
    lenders = pd.concat(parts, ignore_index=True) if parts else per_market
    for name in COUNT_COLUMNS:
        lenders[name] = lenders[name].fillna(0).astype(np.int64) if name in lenders else 0
    lenders = lenders.sort_values(["market", "lei"], kind="stable").reset_index(drop=True)
    table, cells = _peer_tests(lenders, bands, peer_volume, min_peers, min_group)
    return RedliningCells(table, cells, rows[["lei", *COUNT_COLUMNS[:4]]], bands)


class RedliningCells:
    """The register-wide part of ``redlining_signals``: every focal lender × market × band × measure
    with its peers' counts (``_peer_tests``), before the exact tests, Holm's adjustment and the
    pooled rows, which are each about one lender. ``signals(leis)`` finishes the rows of some
    lenders: the rows of ``signals()`` about them, bit for bit (a cell's exact test is its own,
    Holm's families and the pooled sums are per lender), so that the audit can hand each partition
    its lenders' rows as they are made (``audit.run``) rather than make the whole table first."""

    def __init__(
        self, table: pd.DataFrame, cells: np.ndarray | None, rows: pd.DataFrame, bands: tuple[float, ...]
    ) -> None:
        self._table = table  # p_value a placeholder; no p_adjusted
        self._cells = cells  # per table row: a, n1, b, n0 and 1.0 when tested; None: no band (no test)
        # The pooled rows read no exact test: made here for every lender (pandas' grouped sums of some lenders'
        # rows may differ from the whole table's in the last bit).
        self._pooled = _pooled(table, rows, bands)
        self._table_rows = _rows_by_value(table["lei"])
        self._pooled_rows = _rows_by_value(self._pooled["lei"])

    def signals(self, leis: Iterable[str] | None = None) -> pd.DataFrame:
        """The rows of the lenders ``leis`` (None: every lender), sorted as ``redlining_signals``' are."""
        table, cells, pooled = self._table, self._cells, self._pooled
        if leis is None:
            table = table.copy()
        else:
            wanted = list(dict.fromkeys(leis))
            chosen = _positions(self._table_rows, wanted)
            table = table.take(chosen).reset_index(drop=True)
            cells = None if cells is None else cells[chosen]
            pooled = pooled.take(_positions(self._pooled_rows, wanted)).reset_index(drop=True)
        if cells is not None:
            table["p_value"] = _hypergeom_lower(cells[:, 0], cells[:, 1], cells[:, 2], cells[:, 3], cells[:, 4] > 0)
        table["p_adjusted"] = holm_adjusted(
            table["p_value"].to_numpy(dtype=np.float64),
            (table["lei"] + "\x00" + table["band"].astype(str) + "\x00" + table["measure"]).to_numpy(),
        )
        result = pd.concat([table, pooled], ignore_index=True)
        result["pooled_last"] = result["market_kind"] == "pooled"
        result = result.sort_values(["lei", "pooled_last", "market", "band", "measure"], kind="stable")
        result = result.drop(columns="pooled_last").reset_index(drop=True)
        for name in ("lei", "market", "market_kind", "measure", "peer_basis", "reason"):
            result[name] = result[name].astype("str")
        return result[list(OUTPUT_COLUMNS)]


def _rows_by_value(column: pd.Series) -> dict[object, np.ndarray]:
    """The positions of each value's rows, ascending (missing values: none)."""
    codes, values = pd.factorize(column)
    order = np.argsort(codes, kind="stable")  # missing (-1) first
    ends = np.cumsum(np.bincount(codes + 1, minlength=len(values) + 1))
    return {value: order[ends[number] : ends[number + 1]] for number, value in enumerate(values.tolist())}


def _positions(by_value: dict[object, np.ndarray], wanted: list[str]) -> np.ndarray:
    """The rows of the values ``wanted``, in the frame's order."""
    found = [by_value[value] for value in wanted if value in by_value]
    return np.sort(np.concatenate(found)) if found else np.zeros(0, dtype=np.int64)


OUTPUT_COLUMNS = (
    "lei", "market", "market_kind", "band", "measure", "count", "band_count", "share", "peers", "peer_basis",
    "peer_count", "peer_band_count", "peer_share", "share_ratio", "p_value", "p_adjusted", "markets",
    *COUNT_COLUMNS, "reason",
)  # fmt: skip


def _places(frame: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
    """Each row's place (its distinct MSA, state and county) and the places: columns msa,
    state_code, county_code ('' when missing). Markets are worked out once per place."""
    codes, values = [], []
    for name in ("msa", "state_code", "county_code"):
        code, uniques = _sorted_codes(frame[name])
        codes.append(code.astype(np.int64) + 1)  # 0: missing
        values.append(np.concatenate([[""], np.asarray(uniques, dtype=object)]))
    key = (codes[0] * len(values[1]) + codes[1]) * len(values[2]) + codes[2]
    found, place = _unique_inverse(key)
    county, rest = found % len(values[2]), found // len(values[2])
    parts = {"msa": rest // len(values[1]), "state_code": rest % len(values[1]), "county_code": county}
    places = pd.DataFrame({name: values[i][parts[name]] for i, name in enumerate(parts)})
    return place.astype(np.int64), places


def _sorted_codes(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """``pd.factorize(column.astype("str"), sort=True)``: codes (-1: missing) and the distinct texts,
    sorted. A text column held as a dictionary with sorted categories (``CompactFrame.restore(...,
    text_as_held=True)``) gives its own codes, without a text column of every row (at 12,000,000
    rows, 340 MB of LEIs and 96 MB of codes)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        categories = column.cat.categories
        if pd.api.types.is_string_dtype(categories.dtype) and categories.is_monotonic_increasing:
            # ``remove_unused_categories``, by counting codes rather than sorting them
            codes = column.cat.codes.to_numpy(dtype=np.int64)
            used = np.bincount(codes + 1, minlength=len(categories) + 1)[1:] > 0  # code -1 (missing) counted apart
            if used.all():  # every category a row's: the codes are already those of the used ones
                return codes, np.asarray(categories.astype("str"), dtype=object)
            renumbered = np.append(np.cumsum(used, dtype=np.int64) - 1, -1)  # code -1 (missing) stays -1
            return renumbered[codes], np.asarray(categories[used].astype("str"), dtype=object)
    codes, uniques = pd.factorize(column.astype("str"), sort=True)
    return np.asarray(codes, dtype=np.int64), np.asarray(uniques, dtype=object)


def _unique_inverse(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(keys, return_inverse=True)`` of integer keys, by hashing (one pass over the rows)
    and sorting only the distinct keys, not every row (a row a place or a cell: few distinct); by
    counting when the keys are small non-negative numbers (no more than the rows: a place's key of
    its MSA, state and county codes), without hashing 12,000,000 of them."""
    if keys.size and keys.min() >= 0 and keys.max() < max(keys.size, 1 << 16):
        present = np.bincount(keys) > 0
        rank = np.cumsum(present, dtype=np.int64) - 1
        return np.flatnonzero(present).astype(np.int64), rank[keys]
    codes, uniques = pd.factorize(keys)
    order = np.argsort(uniques, kind="stable")
    rank = np.empty(len(uniques), dtype=np.int64)
    rank[order] = np.arange(len(uniques), dtype=np.int64)
    return np.asarray(uniques)[order], rank[np.asarray(codes)]


def _markets(places: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Each place's market ('' when none can be told) and its kind."""
    msa = places["msa"].astype(object)
    state = places["state_code"].astype(object)
    county = places["county_code"].astype(object)
    metro = ((msa != "") & (msa != NON_METRO)).to_numpy()
    from_county = ("FIPS " + county.str[:2]).where(county.str.len() >= 2, "")
    region = state.where(state != "", from_county).to_numpy(dtype=object)
    market = np.where(metro, msa.to_numpy(dtype=object), np.where(region != "", "non-metro " + region.astype(str), ""))
    kind = np.where(metro, "MSA", np.where(region != "", "non-metro state", ""))
    return market.astype(object), kind.astype(object)


def _segments(frame: pd.DataFrame) -> np.ndarray:
    """Rows of a segment analysed apart, from the segment columns the frame has: code 1 (yes) of
    the reverse-mortgage, open-end and business-purpose flags, occupancy 2 or 3. Missing and
    exempt values keep the row (nothing says it is of another segment)."""
    flagged = np.zeros(len(frame), dtype=bool)
    for name, _ in SEGMENT_COLUMNS:
        if name not in frame.columns:
            continue
        column = frame[name]
        if pd.api.types.is_bool_dtype(column.dtype):
            yes = column.fillna(False).to_numpy(dtype=bool)
            flagged |= ~yes if name == "occupancy_type" else yes
            continue
        code = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        flagged |= np.isin(code, (2, 3)) if name == "occupancy_type" else code == 1
    return flagged


def _areas(areas: pd.DataFrame | None) -> pd.DataFrame:
    if areas is None:
        return pd.DataFrame(
            {"lei": pd.Series(dtype=object), "county": pd.Series(dtype=object), "msa": pd.Series(dtype=object)}
        )
    return areas[["lei", "county", "msa"]].astype(object)


def _area_markets(rows: pd.DataFrame, areas: pd.DataFrame, counted: list[str]) -> pd.DataFrame:
    """Per assessment-area lender, every lender's counts inside the area (the listed counties and
    MSAs); the area lender's own applications outside it are counted ``outside_area``."""
    if areas.empty:
        return pd.DataFrame()
    placed = rows[rows["market"] != ""].reset_index(drop=True)
    placed["cell"] = np.arange(len(placed))
    matched = []
    for key in ("county", "msa"):
        listed = areas.loc[areas[key] != "", ["lei", key]].rename(columns={"lei": "area_lei"}).drop_duplicates()
        matched.append(listed.merge(placed[[key, "cell"]], on=key)[["area_lei", "cell"]])
    inside = pd.concat(matched, ignore_index=True).drop_duplicates()
    joined = placed.iloc[inside["cell"].to_numpy()].assign(area_lei=inside["area_lei"].to_numpy())
    table = joined.groupby(["area_lei", "lei"], sort=True)[[*counted, *COUNT_COLUMNS[:4]]].sum().reset_index()
    table["focal"] = table["lei"] == table["area_lei"]
    table["market"] = "area of " + table["area_lei"].astype(str)
    table["market_kind"] = "assessment area"
    own_inside = inside.loc[
        placed["lei"].to_numpy()[inside["cell"].to_numpy()] == inside["area_lei"].to_numpy(), "cell"
    ]
    outside_cells = np.setdiff1d(placed.loc[placed["lei"].isin(areas["lei"]), "cell"].to_numpy(), own_inside.to_numpy())
    outside = placed.iloc[outside_cells].groupby("lei")["applications"].sum()
    table["outside_area"] = np.where(table["focal"], table["lei"].map(outside).fillna(0), 0).astype(np.int64)
    own = table[table["focal"]]
    listed_missing = sorted(set(areas["lei"]) - set(own["lei"]))
    if listed_missing:  # a listed lender with no application in its area: still a row (not tested)
        empty = pd.DataFrame({"area_lei": listed_missing, "lei": listed_missing})
        empty["market"] = "area of " + empty["lei"]
        empty["market_kind"] = "assessment area"
        empty["focal"] = True
        empty["outside_area"] = [int(outside.get(name, 0)) for name in listed_missing]
        table = pd.concat([table, empty], ignore_index=True)
    for name in counted:
        table[name] = table[name].fillna(0).astype(np.int64)
    return table.drop(columns="area_lei")


def _peer_tests(
    lenders: pd.DataFrame, bands: tuple[float, ...], peer_volume: tuple[float, float], min_peers: int, min_group: int
) -> tuple[pd.DataFrame, np.ndarray | None]:
    """One row per focal lender × market × band × measure: its share, its volume peers' and the
    one-sided Fisher exact test."""
    codes = pd.factorize(lenders["market"], sort=True)[0]
    volume = lenders["applications"].to_numpy(dtype=np.float64)
    # markets far enough apart on one key that no volume band reaches into the next market
    span = float(volume.max() * (peer_volume[1] + 2) + 10) if len(volume) else 1.0
    order = np.lexsort((volume, codes))
    key = (codes * span + volume)[order]
    low = np.searchsorted(key, codes * span + peer_volume[0] * volume, side="left")
    high = np.searchsorted(key, codes * span + peer_volume[1] * volume, side="right")
    banded = high - low - 1  # the lender itself is in its own band
    active = volume > 0  # a lender with only rows set aside in the market is no one's peer
    market_size = np.bincount(codes, active, codes.max() + 1 if codes.size else 0)[codes].astype(np.int64) - active
    by_volume = banded >= min_peers
    focal = lenders["focal"].to_numpy(dtype=bool)

    def peer_sum(values: np.ndarray) -> np.ndarray:
        cumulative = np.concatenate([[0], np.cumsum(values[order])])
        totals = np.bincount(codes, values, codes.max() + 1 if codes.size else 0)[codes]
        result: np.ndarray = np.where(by_volume, cumulative[high] - cumulative[low], totals) - values
        return result

    parts, cells = [], []
    for band in bands:
        for measure in MEASURES:
            count = lenders[measure].to_numpy(dtype=np.float64)
            inside = lenders[f"{measure}_{band}"].to_numpy(dtype=np.float64)
            peer_count, peer_inside = peer_sum(count), peer_sum(inside)
            peers = np.where(by_volume, banded, market_size)
            part = lenders.loc[focal, ["lei", "market", "market_kind", *COUNT_COLUMNS]].copy()
            part.insert(3, "band", band)
            part.insert(4, "measure", measure)
            n1, a, n0, b = count[focal], inside[focal], peer_count[focal], peer_inside[focal]
            part["count"] = n1.astype(np.int64)
            part["band_count"] = a.astype(np.int64)
            part["share"] = _ratio(a, n1)
            part["peers"] = peers[focal].astype(np.float64)
            basis = f"volume {peer_volume[0]:g}-{peer_volume[1]:g}x"
            part["peer_basis"] = np.where(by_volume[focal], basis, "all lenders in the market")
            part["peer_count"] = n0.astype(np.int64)
            part["peer_band_count"] = b.astype(np.int64)
            part["peer_share"] = _ratio(b, n0)
            part["share_ratio"] = _ratio(part["share"].to_numpy(), part["peer_share"].to_numpy())
            reason = np.where(
                peers[focal] == 0,
                "no peers in the market",
                np.where(n1 < min_group, f"fewer than {min_group} {measure} in the market", ""),
            )
            reason = np.where((reason == "") & (n0 == 0), f"no peer {measure} in the market", reason)
            part["p_value"] = np.nan  # below: every band's and measure's tests at once
            part["markets"] = 1
            part["reason"] = reason
            parts.append(part)
            cells.append((a, n1, b, n0, reason == ""))
    if not parts:
        return pd.DataFrame(columns=list(OUTPUT_COLUMNS)), None
    # every band's and measure's cells as one array (the exact tests: ``RedliningCells.signals``)
    tests = np.stack([np.concatenate(column).astype(np.float64) for column in zip(*cells, strict=True)], axis=1)
    return pd.concat(parts, ignore_index=True), tests


def _hypergeom_lower(a: np.ndarray, n1: np.ndarray, b: np.ndarray, n0: np.ndarray, tested: np.ndarray) -> np.ndarray:
    """P(X <= a) for X hypergeometric (a + b of the n1 + n0 inside, n1 drawn) where ``tested``,
    else NaN: each distinct (a, n1, b, n0) once (``scipy.stats.hypergeom.cdf`` is elementwise, so
    the values are those of one call on every row; most cells repeat a few small counts), the
    distinct cells' second half in a thread when there are many (the ufunc releases the GIL: the
    second core, idle until the partitions start, computes it)."""
    p_value = np.full(a.shape, np.nan)
    if not tested.any():
        return p_value
    cells = np.stack([a[tested], n1[tested], b[tested], n0[tested]], axis=1)
    distinct, inverse = np.unique(cells, axis=0, return_inverse=True)
    da, dn1, db, dn0 = distinct.T

    def cdf(part: slice) -> np.ndarray:
        computed: np.ndarray = stats.hypergeom.cdf(da[part], (dn1 + dn0)[part], (da + db)[part], dn1[part])
        return computed

    half = len(distinct) // 2
    if half < THREADED_CELLS or _cores() < 2:
        values = cdf(slice(None))
    else:
        with ThreadPoolExecutor(1) as pool:
            second = pool.submit(cdf, slice(half, None))
            values = np.concatenate([cdf(slice(0, half)), second.result()])
    p_value[tested] = values[inverse.reshape(-1)]
    return p_value


def _cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _pooled(table: pd.DataFrame, rows: pd.DataFrame, bands: tuple[float, ...]) -> pd.DataFrame:
    """Per lender × band × measure, over its tested markets: the Mantel–Haenszel risk ratio of its
    share against its peers' and the one-sided Cochran–Mantel–Haenszel test (continuity
    corrected); rows set aside counted over the whole lender."""
    tested = table[table["reason"] == ""]
    a = tested["band_count"].to_numpy(dtype=np.float64)
    n1 = tested["count"].to_numpy(dtype=np.float64)
    b = tested["peer_band_count"].to_numpy(dtype=np.float64)
    n0 = tested["peer_count"].to_numpy(dtype=np.float64)
    total, inside = n1 + n0, a + b
    with np.errstate(divide="ignore", invalid="ignore"):
        strata = pd.DataFrame(
            {
                "lei": tested["lei"].to_numpy(),
                "band": tested["band"].to_numpy(),
                "measure": tested["measure"].to_numpy(),
                "count": n1,
                "band_count": a,
                "peer_count": n0,
                "peer_band_count": b,
                "expected": n1 * inside / total,
                "variance": np.where(total > 1, n1 * n0 * inside * (total - inside) / (total**2 * (total - 1)), 0.0),
                "numerator": a * n0 / total,
                "denominator": b * n1 / total,
                "markets": 1,
            }
        )
    sums = strata.groupby(["lei", "band", "measure"], sort=True).sum().reset_index()
    keys = pd.MultiIndex.from_product(
        [np.unique(rows["lei"].to_numpy(dtype=object)), bands, MEASURES], names=["lei", "band", "measure"]
    ).to_frame(index=False)
    sums = keys.merge(sums, on=["lei", "band", "measure"], how="left")
    for name in ("count", "band_count", "peer_count", "peer_band_count", "markets"):
        sums[name] = sums[name].fillna(0).astype(np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = (sums["band_count"] - sums["expected"] + 0.5) / np.sqrt(sums["variance"])
    good = (sums["markets"] > 0) & (sums["variance"] > 0)
    sums["p_value"] = np.where(good, np.minimum(1.0, stats.norm.cdf(statistic)), np.nan)
    sums["p_adjusted"] = sums["p_value"]
    sums["share"] = _ratio(sums["band_count"].to_numpy(), sums["count"].to_numpy())
    sums["peer_share"] = _ratio(sums["peer_band_count"].to_numpy(), sums["peer_count"].to_numpy())
    sums["share_ratio"] = np.where(good, _ratio(sums["numerator"].to_numpy(), sums["denominator"].to_numpy()), np.nan)
    sums["market"] = "all markets"
    sums["market_kind"] = "pooled"
    sums["peers"] = np.nan
    sums["peer_basis"] = "per market"
    set_aside = rows.groupby("lei", sort=True)[list(COUNT_COLUMNS[:4])].sum()
    outside = table[table["measure"] == MEASURES[0]].groupby("lei")["outside_area"].max()
    for name in COUNT_COLUMNS[:4]:
        sums[name] = sums["lei"].map(set_aside[name]).fillna(0).astype(np.int64)
    sums["outside_area"] = sums["lei"].map(outside).fillna(0).astype(np.int64)
    sums["reason"] = np.where(
        sums["markets"] == 0,
        "no market tested",
        np.where(good, "", "no variation in the pooled markets"),
    )
    return sums[list(OUTPUT_COLUMNS)]


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1.0), np.nan)


def read_assessment_areas(path: Path) -> pd.DataFrame:
    """Lenders' assessment areas (or REMAs) from a CSV with a header: ``lei`` and at least one of
    ``county`` (5-digit state+county FIPS) and ``msa`` (5-digit MSA/MD code); each row names one
    county or MSA (or both) of the lender's area. Returns columns lei, county, msa ('' when not
    given), sorted. An ``EvidenceError`` names the file, column and row of any mistake."""
    name = path.name
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except FileNotFoundError:
        raise EvidenceError(f"{name}: assessment-area file not found ({path})") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise EvidenceError(f"{name}: not a readable CSV file of assessment areas: {error}") from None
    columns = {str(column).strip().lower(): column for column in raw.columns}
    if "lei" not in columns or not ({"county", "msa"} & set(columns)):
        raise EvidenceError(
            f"{name}: expected the columns 'lei' and 'county' or 'msa' (or both), got "
            f"{', '.join(repr(str(column)) for column in raw.columns) or 'none'}"
        )
    areas = pd.DataFrame(
        {key: raw[columns[key]].str.strip() if key in columns else "" for key in ("lei", "county", "msa")}
    )
    if areas.empty:
        raise EvidenceError(f"{name}: no rows: an assessment-area file lists at least one county or MSA")
    row = np.arange(1, len(areas) + 1)
    empty_lei = areas["lei"].to_numpy() == ""
    if empty_lei.any():
        raise EvidenceError(
            f"{name}: column 'lei': expected a lender's LEI, got an empty value (row {row[empty_lei][0]})"
        )
    neither = (areas["county"].to_numpy() == "") & (areas["msa"].to_numpy() == "")
    if neither.any():
        raise EvidenceError(
            f"{name}: row {row[neither][0]}: expected a county or an MSA of the lender's area, got neither"
        )
    for key, what in (("county", "a 5-digit state+county FIPS code"), ("msa", "a 5-digit MSA/MD code")):
        values = areas[key]
        bad = ((values != "") & ~values.str.fullmatch(r"\d{5}")).to_numpy()
        if key == "msa":
            bad = bad | (values == NON_METRO).to_numpy()
            what += " (99999, outside any MSA, is not an area: list the counties)"
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise EvidenceError(
                f"{name}: column '{key}': expected {what}, got '{values.iat[first]}' (row {row[first]})"
            )
    return areas.drop_duplicates().sort_values(["lei", "county", "msa"], kind="stable").reset_index(drop=True)
