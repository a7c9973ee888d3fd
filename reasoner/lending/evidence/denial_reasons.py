"""Denial reasons by group at the same lender (Regulation B, 12 CFR 1002.9).

A creditor must give a denied applicant the specific principal reasons for the denial, and they
must be accurate (CFPB Circular 2023-03). HMDA reports up to four (``denial_reason_1`` … ``_4``;
1 debt-to-income ratio, 2 employment history, 3 credit history, 4 collateral, 5 insufficient
cash, 6 unverifiable information, 7 application incomplete, 8 mortgage insurance denied, 9
other). Over the usable denied applicants of each lender × comparison (``audit.toml``):

``reason_mix``
    per reason: how many denied applicants of each group cite it, their shares, and a
    one-sided Fisher exact test (hypergeometric) that the compared group's denials cite it
    more often than the reference group's, with ``p_adjusted``, Holm's adjustment over the
    lender's reasons and comparisons. Rows for lender × comparison with denied applicants in
    both groups.
``contradicted_reasons``
    denials whose stated reasons contradict the file: debt-to-income (1) cited while the
    reported DTI is below ``DTI_LIMIT`` (36%), or collateral (4) cited while the combined
    loan-to-value ratio is below ``CLTV_LIMIT`` (80%); per group, with the one-sided Fisher
    exact test that the compared group's denials are contradicted more often, and
    ``p_adjusted``, Holm's adjustment over the lender's comparisons. A significant excess is
    a finding for the report (an inaccurate adverse-action notice given more often to one
    group), not a rule of the library.

Denials without any reason count in the denominators (they cite none). Columns of the
reasons the input lacks are skipped; without any, both tables are empty.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy import stats

from reasoner.lending.config import Comparison
from reasoner.lending.evidence.similar import GroupRows
from reasoner.lending.evidence.statistics import holm_adjusted

__all__ = [
    "CLTV_LIMIT",
    "CONTRADICTED_COLUMNS",
    "DTI_LIMIT",
    "REASONS",
    "REASON_COLUMNS",
    "REASON_MIX_COLUMNS",
    "contradicted_reasons",
    "denial_reason_tables",
    "reason_mix",
]

REASON_COLUMNS = ("denial_reason_1", "denial_reason_2", "denial_reason_3", "denial_reason_4")
REASONS = {
    1: "debt-to-income ratio",
    2: "employment history",
    3: "credit history",
    4: "collateral",
    5: "insufficient cash",
    6: "unverifiable information",
    7: "credit application incomplete",
    8: "mortgage insurance denied",
    9: "other",
}
DTI_LIMIT = 36.0  # percent: a DTI below it is within the conventional limit
CLTV_LIMIT = 80.0  # percent: a CLTV below it needs no mortgage insurance
REASON_MIX_COLUMNS = (
    "lei", "comparison", "reason", "reason_name", "compared_denials", "reference_denials", "compared_citing",
    "reference_citing", "compared_share", "reference_share", "p_value", "p_adjusted",
)
CONTRADICTED_COLUMNS = (
    "lei", "comparison", "compared_denials", "reference_denials", "compared_contradicted", "reference_contradicted",
    "compared_share", "reference_share", "p_value", "p_adjusted",
)


def _cited(frame: pd.DataFrame) -> np.ndarray | None:
    """(rows, 9) booleans: the row's denial reasons include reason k + 1; None without any reason column."""
    present = [name for name in REASON_COLUMNS if name in frame.columns]
    if not present:
        return None
    cited = np.zeros((len(frame), len(REASONS)), dtype=bool)
    for name in present:
        values = frame[name].to_numpy(dtype=np.float64, na_value=np.nan)
        for code in REASONS:
            cited[:, code - 1] |= values == code
    return cited


@dataclass(frozen=True, slots=True)
class _Denials:
    """What both tables read: the reasons cited (``_cited``), the lenders (sorted LEIs as text) and,
    per comparison, its name and the usable denied rows of its two groups: their positions, lender
    codes (into ``leis``) and whether they are in the compared group."""

    cited: np.ndarray | None
    leis: np.ndarray
    units: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]


def _denials(frame: pd.DataFrame, comparisons: Sequence[Comparison]) -> _Denials:
    denied = (frame["excluded"].eq("") & frame["decision"].eq("denied")).fillna(False).to_numpy(dtype=bool)
    lender, uniques = pd.factorize(frame["lei"].astype("str"), sort=True)  # codes of the LEIs sorted as text
    known_lei = lender >= 0
    leis = np.asarray(uniques, dtype=object)
    units = []
    groups = GroupRows(frame)
    for comparison in comparisons:
        is_reference = groups.rows(comparison.column, (comparison.reference,))
        is_compared = groups.rows(comparison.column, comparison.compared)
        rows = np.flatnonzero(denied & known_lei & (is_reference | is_compared))
        units.append((comparison.name, rows, lender[rows], is_compared[rows]))
    return _Denials(_cited(frame), leis, units)


def _excess_p(
    compared_hits: np.ndarray, reference_hits: np.ndarray, compared: np.ndarray, reference: np.ndarray
) -> np.ndarray:
    """One-sided Fisher exact p-value that the compared group has the hits more often: P(X >= x)
    for X hypergeometric (population compared + reference, hits, draws compared); elementwise."""
    total = compared + reference
    hits = compared_hits + reference_hits
    with np.errstate(invalid="ignore"):
        p_value: np.ndarray = stats.hypergeom.sf(compared_hits - 1, total, hits, compared)
    return np.where(total > 0, np.minimum(p_value, 1.0), np.nan)


def _both(lender: np.ndarray, compared: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The lenders with denials in both groups, and their denials in each group (compared, reference)."""
    n1 = np.bincount(lender[compared], minlength=count)
    n0 = np.bincount(lender[~compared], minlength=count)
    both = np.flatnonzero((n1 > 0) & (n0 > 0))
    return both, n1[both], n0[both]


def _counts(
    hits: np.ndarray, lender: np.ndarray, compared: np.ndarray, count: int, noun: str,
    lenders: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> dict[str, np.ndarray]:
    """Per lender with denials in both groups (``lenders``: ``_both``): denials, denials with
    ``hits`` (``compared_{noun}``, ``reference_{noun}``) and shares (the p-values are computed
    for all rows at once, ``_with_p``)."""
    both, n1, n0 = lenders
    x1 = np.bincount(lender[compared], hits[compared], count)[both].astype(np.int64)
    x0 = np.bincount(lender[~compared], hits[~compared], count)[both].astype(np.int64)
    return {
        "compared_denials": n1,
        "reference_denials": n0,
        f"compared_{noun}": x1,
        f"reference_{noun}": x0,
        "compared_share": x1 / n1,
        "reference_share": x0 / n0,
    }


def denial_reason_tables(frame: pd.DataFrame, comparisons: Sequence[Comparison]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``reason_mix(frame, comparisons)`` and ``contradicted_reasons(frame, comparisons)``, the
    groups' denied rows found once for both."""
    denials = _denials(frame, comparisons)
    return _reason_mix(denials), _contradicted_reasons(frame, denials)


def reason_mix(frame: pd.DataFrame, comparisons: Sequence[Comparison]) -> pd.DataFrame:
    """The ``reason_mix`` table of the module docstring, sorted by lei, comparison (audit.toml
    order) and reason."""
    return _reason_mix(_denials(frame, comparisons))


def _reason_mix(denials: _Denials) -> pd.DataFrame:
    cited, leis = denials.cited, denials.leis
    parts = []
    for order, (_, rows, lender, compared) in enumerate(denials.units):
        if cited is None or not rows.size:
            continue
        lenders = _both(lender, compared, leis.size)
        both = lenders[0]
        if not both.size:
            continue
        for code in REASONS:
            counts = _counts(cited[rows, code - 1], lender, compared, leis.size, "citing", lenders)
            unit = {"_lei": both, "_order": _repeat(order, both.size), "reason": _repeat(code, both.size)}
            parts.append(unit | counts)
    return _finish(parts, REASON_MIX_COLUMNS, "citing", denials)


def contradicted_reasons(frame: pd.DataFrame, comparisons: Sequence[Comparison]) -> pd.DataFrame:
    """The ``contradicted_reasons`` table of the module docstring, sorted by lei and comparison
    (audit.toml order)."""
    return _contradicted_reasons(frame, _denials(frame, comparisons))


def _contradicted_reasons(frame: pd.DataFrame, denials: _Denials) -> pd.DataFrame:
    cited, leis = denials.cited, denials.leis
    parts = []
    if cited is not None:
        dti = frame["dti"].to_numpy(dtype=np.float64, na_value=np.nan)
        cltv = frame["cltv"].to_numpy(dtype=np.float64, na_value=np.nan)
        contradicted = (cited[:, 0] & (dti < DTI_LIMIT)) | (cited[:, 3] & (cltv < CLTV_LIMIT))
        for order, (_, rows, lender, compared) in enumerate(denials.units):
            lenders = _both(lender, compared, leis.size)
            both = lenders[0]
            if both.size:
                counts = _counts(contradicted[rows], lender, compared, leis.size, "contradicted", lenders)
                parts.append({"_lei": both, "_order": _repeat(order, both.size)} | counts)
    return _finish(parts, CONTRADICTED_COLUMNS, "contradicted", denials)


def _repeat(value: int, size: int) -> np.ndarray:
    return np.full(size, value, dtype=np.int64)


def _finish(parts: list[dict[str, np.ndarray]], columns: Sequence[str], noun: str, denials: _Denials) -> pd.DataFrame:
    """The parts' columns joined (one frame, not one per part), sorted by lender (as text), comparison
    (audit.toml order) and reason; the texts taken from the lender, comparison and reason codes; the
    p-values of an excess of ``noun`` among the compared (``_excess_p``, for every row at once) and
    Holm's adjustment over each lender's rows."""
    if not parts:
        return _empty(columns)
    joined = {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
    keys = [joined[name] for name in ("reason", "_order", "_lei") if name in joined]  # last key sorts first
    order = np.lexsort(keys)  # stable: ties keep the parts' order
    joined = {name: values[order] for name, values in joined.items()}
    joined["p_value"] = _excess_p(
        joined[f"compared_{noun}"], joined[f"reference_{noun}"], joined["compared_denials"], joined["reference_denials"]
    )
    joined["p_adjusted"] = holm_adjusted(joined["p_value"], joined["_lei"])
    joined["lei"] = _texts(joined["_lei"], denials.leis)
    joined["comparison"] = _texts(joined["_order"], np.array([unit[0] for unit in denials.units], dtype=object))
    if "reason_name" in columns:
        joined["reason_name"] = _texts(joined["reason"] - 1, np.array(list(REASONS.values()), dtype=object))
    return pd.DataFrame({name: joined[name] for name in columns})


def _texts(codes: np.ndarray, texts: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """A text column (dtype 'str') of ``texts[code]`` per row."""
    return pd.array(pa.array(texts, type=pa.large_string()).take(pa.array(codes)), dtype="str")


def _empty(columns: Sequence[str]) -> pd.DataFrame:
    text = {"lei", "comparison", "reason_name"}
    integer = {"reason", "compared_denials", "reference_denials", "compared_citing", "reference_citing",
               "compared_contradicted", "reference_contradicted"}
    return pd.DataFrame(
        {
            name: pd.Series([], dtype="str" if name in text else "int64" if name in integer else "float64")
            for name in columns
        }
    )
