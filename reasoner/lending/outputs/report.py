"""``Audit`` → the regulatory report: ``report.md`` (text) and ``report.html`` (self-contained).

Sections: summary, lenders by tier (and the lenders not tested or underpowered,
``verdict_section``), one page per flagged lender with its effect size and strongest evidence,
denial reasons (Regulation B), data quality (rows read, used, excluded by reason; similar
pairs), method. Both formats take
their evidence tables from ``_evidence``, so they state the same numbers.

The HTML page is one file that loads nothing: inline CSS, inline SVG charts, no script, no
font, image or link outside the page (a Content-Security-Policy of ``default-src 'none'``
makes any stray reference inert). It prints on A4/Letter (one flagged lender per page) and
adds charts: risk scores by tier (summary); per flagged lender a forest plot of the adjusted
denial odds ratios with 95% CIs on a log axis, the outcomes of the matched pairs as stacked
bars, the lender's shares of applications and originations from majority-minority tracts
against its volume peers per market, and the adjusted rate-spread gaps. Its evidence tables are those of
``report.md``; the recommended action, a function of the tier, is given once per tier. Sections
are capped at the ``MAX_LENDER_SECTIONS`` highest-risk flagged lenders, the lenders table at
``MAX_LENDER_ROWS`` rows and a lender's redlining markets at ``MAX_MSAS`` (the smallest p-values), each with a
note saying so; ``report.md`` and ``explanations.parquet`` (``reason explain OUT ID``) keep everything.

Charts are hand-written SVG rather than matplotlib: four simple chart kinds (points with
bars, stacked bars, grouped bars, a histogram) take a few hundred lines, and writing the markup
ourselves makes the output byte-identical for the same audit by construction (no hash
salts, dates, clip-path ids or font subsetting to pin, and no change of bytes with the
plotting library's version), keeps chart text as real text in the page's own font
(selectable, searchable, crisp in print), keeps each chart to a few kilobytes, and avoids a
large dependency (matplotlib and its fonts) for a report.
"""

from __future__ import annotations

import math
import re
from collections import Counter, namedtuple
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from reasoner import __version__
from reasoner.lending.audit.run import Audit
from reasoner.lending.config import STATUS_TIERS, TIERS
from reasoner.lending.evidence.kinds import LENDER_PAGE, evidence_kind
from reasoner.lending.outputs.model_section import model_section_html, model_section_markdown
from reasoner.lending.outputs.verdict_section import denial_reason_tables, effect_sentence, untested_table
from reasoner.reporting import (
    BLUE,
    INK,
    MUTED,
    RED,
    Html,
    Point,
    and_list,
    clip,
    escape_html,
    escape_markdown,
    figure,
    finite,
    forest,
    html_table,
    inline_html,
    markdown_code,
    markdown_table,
    nice_step,
    number,
    px,
    svg,
    svg_line,
    svg_rect,
    svg_text,
)

__all__ = ["escape_markdown", "markdown_code", "render_html", "render_markdown", "render_reports"]

MAX_APPLICATIONS_LISTED = 10
MAX_LENDER_SECTIONS = 50  # HTML: sections for the highest-risk flagged lenders only
MAX_LENDER_ROWS = 500  # HTML: rows of the lenders-by-tier table
MAX_MSAS = 15  # HTML: markets per lender in the redlining table and chart


@dataclass(frozen=True, slots=True)
class _Summary:
    rows: int
    usable: int
    lenders: int
    flagged: int
    applications: int
    tiers: dict[str, int]


def _summary(audit: Audit) -> _Summary:
    lenders = audit.findings.lenders
    cleaned = audit.cleaned
    return _Summary(
        rows=cleaned.rows_read,
        usable=cleaned.usable,
        lenders=len(lenders),
        flagged=int(lenders["flagged"].sum()),
        applications=len(audit.findings.applications),
        tiers={tier: int((lenders["risk_tier"] == tier).sum()) for tier in (*TIERS, *STATUS_TIERS)},
    )


def _header(audit: Audit) -> list[str]:
    """The input and rules lines (Markdown inline syntax)."""
    cleaned = audit.cleaned
    return [
        f"Input: {markdown_code(audit.facts.name)} (SHA-256 `{audit.facts_sha256[:16]}…`), {cleaned.rows_read:,} rows; "
        f"applications identified by {markdown_code(cleaned.id_column)}"
        + (" (the input has no application id: rows are cited by number)" if cleaned.id_column == "row" else "")
        + ".",
        f"Rules: {len(audit.rules)} files and {markdown_code(audit.config.path.name)}; solver status: "
        f"{audit.engine.status}.",
        *_not_optimal(audit),
    ]


def _not_optimal(audit: Audit) -> list[str]:
    """A warning line when the time limit stopped the solver before it proved the world optimal."""
    engine = audit.engine
    if engine.status != "feasible":
        return []
    return [
        f"**Not proven optimal:** the time limit ({audit.options.get('time_limit')} s) stopped the solver on "
        f"{engine.unfinished_components:,} component(s); the findings come from the best world found (cost "
        f"{engine.cost}, lower bound {engine.lower_bound}). "
        "Rerun with a longer --time-limit, or none, for a proven result."
    ]


def _listed(lenders: pd.DataFrame) -> pd.DataFrame:
    """Lenders of the lenders-by-tier table: every tier but the lowest and the untested ones."""
    return lenders[~lenders["risk_tier"].isin((TIERS[-1], *STATUS_TIERS))]


def _lender_row(r: Any) -> tuple[object, ...]:
    """A row of the lenders-by-tier table, from a row of ``findings.lenders``."""
    violations = ", ".join(r.violations) or "–"
    return (r.lei, r.risk_tier, r.risk_score, r.confidence, violations, r.flagged_applications, r.recommended_action)


class _ByLender:
    """Rows of the per-lender tables as Python tuples, grouped by lender once (pandas is slow at small filters).

    Only the flagged lenders' rows: only their pages are written (a quarter of the rows at 1,000,000
    applications; the others' rows as Python tuples took half of this grouping's time)."""

    def __init__(self, audit: Audit) -> None:
        lenders = audit.findings.lenders
        flagged = lenders.loc[lenders["flagged"], "lei"]
        frames = {kind.table: getattr(audit.tables, kind.table) for kind in LENDER_PAGE}
        applications = audit.findings.applications
        applications = applications[applications["lei"].isin(flagged)]
        self.findings = {str(lei): int(count) for lei, count in applications.groupby("lei", sort=False).size().items()}
        frames["applications"] = _nearest_only(_strongest(applications))
        self._parts: dict[str, dict[str, list[Any]]] = {}
        for name, frame in frames.items():
            frame = frame[frame["lei"].isin(flagged)]
            parts: dict[str, list[Any]] = {}
            for row in _rows(frame):
                parts.setdefault(str(row.lei), []).append(row)
            self._parts[name] = parts

    def __call__(self, name: str, lei: str) -> list[Any]:
        """The rows of table ``name`` about lender ``lei``, in table order; for "applications", the
        ``MAX_APPLICATIONS_LISTED`` strongest findings, strongest first (``self.findings``: how many in all)."""
        return self._parts[name].get(lei, [])


def _strongest(applications: pd.DataFrame) -> pd.DataFrame:
    """Each lender's ``MAX_APPLICATIONS_LISTED`` strongest findings, strongest first (violation
    score descending, NaN and infinities last, then application id; ties in table order), by
    one stable sort: the report lists these and counts the rest, and turning every finding into a Python
    tuple was most of the report's grouping (a national register has a few hundred thousand)."""
    score = applications["violation_score"].to_numpy(dtype=np.float64, na_value=np.nan)
    finite = np.isfinite(score)
    ids = pd.factorize(applications["application_id"].astype(str), sort=True)[0]  # ranks in id (code point) order
    lenders = pd.factorize(applications["lei"])[0]
    order = np.lexsort((ids, np.where(finite, -score, 0.0), ~finite, lenders))
    ranked = applications.iloc[order]
    return ranked[ranked.groupby("lei", sort=False).cumcount().to_numpy() < MAX_APPLICATIONS_LISTED]


def _nearest_only(applications: pd.DataFrame) -> pd.DataFrame:
    """The findings with only their nearest comparator (all the report shows): a national register's
    comparators as Python objects would take gigabytes."""
    column = applications["comparators"]
    if not isinstance(column.dtype, pd.ArrowDtype):
        return applications
    nearest = pc.list_slice(pa.chunked_array(column.array._pa_array), 0, 1)
    return applications.assign(comparators=pd.Series(pd.arrays.ArrowExtensionArray(nearest), index=applications.index))


def _rows(frame: pd.DataFrame) -> list[Any]:
    """``list(frame.itertuples(index=False))``, faster: Python values through one ``tolist`` per column."""
    row = namedtuple("row", [str(c) for c in frame.columns], rename=True)  # type: ignore[misc]
    return [row._make(values) for values in zip(*(frame[c].tolist() for c in frame.columns), strict=True)]


LENDER_HEADERS = ("LEI", "tier", "risk", "confidence", "violations", "flagged applications", "recommended action")


def render_reports(audit: Audit) -> tuple[str, str]:
    """``render_markdown(audit)`` and ``render_html(audit)``, grouping the per-lender tables by
    lender once for both (1.2 s of the 1,000,000-row audit's writing, each time)."""
    by = _ByLender(audit)
    return render_markdown(audit, by), render_html(audit, by)


def render_markdown(audit: Audit, by: _ByLender | None = None) -> str:
    """``report.md``; ``by``: the per-lender tables grouped (``render_reports``), else grouped here."""
    summary = _summary(audit)
    lenders = audit.findings.lenders
    lines = [
        "# Fair-lending audit report",
        "",
        *_header(audit),
        "",
        "## Summary",
        "",
        f"- {summary.lenders:,} lenders audited, **{summary.flagged:,} flagged** (tiers 1–3).",
        f"- {summary.applications:,} application findings.",
        f"- {summary.usable:,} of {summary.rows:,} rows usable for treatment rules; the others are counted "
        "under Data quality.",
        "",
        "## Lenders by tier",
        "",
    ]
    lines += markdown_table(["tier", "lenders"], [(tier, count) for tier, count in summary.tiers.items()])
    lines += ["", "### Flagged and monitored lenders", ""]
    lines += markdown_table(LENDER_HEADERS, [_lender_row(row) for row in _rows(_listed(lenders))])
    lines += _untested_markdown(lenders)
    by = _ByLender(audit) if by is None else by
    for row in _rows(lenders[lenders["flagged"]]):
        lines += ["", *_lender_page(by, row)]
    lines += _denial_reasons_markdown(audit)
    model = model_section_markdown(audit)
    lines += [*([""] + model if model else []), "", *_data_quality(audit), "", *_method(audit)]
    return "\n".join(lines) + "\n"


def _untested_markdown(lenders: pd.DataFrame) -> list[str]:
    """The lenders not tested or underpowered (``verdict_section.untested_table``)."""
    table = untested_table(lenders)
    if table is None:
        return []
    return [
        "",
        "### Lenders not tested or underpowered",
        "",
        table.caption,
        "",
        *markdown_table(table.headers, table.rows),
    ]


def _denial_reasons_markdown(audit: Audit) -> list[str]:
    """The Regulation B section (``verdict_section.denial_reason_tables``)."""
    intro, tables = denial_reason_tables(audit)
    lines = ["", "## Denial reasons (Regulation B)", "", intro]
    for table in tables:
        lines += ["", table.caption, ""]
        lines += markdown_table(table.headers, table.rows) if table.rows else ["None."]
    return lines


def _lender_page(by: _ByLender, r: Any) -> list[str]:
    lines = [
        f"## Lender {escape_markdown(r.lei)}",
        "",
        f"{r.risk_tier}, risk score {number(r.risk_score, 2)}, {r.confidence}; "
        f"violations: {escape_markdown(', '.join(r.violations))}; margin {number(r.margin)}.",
        f"Recommended action: {escape_markdown(r.recommended_action)}.",
        *([effect_sentence(r)] if effect_sentence(r) else []),
        "",
    ]
    for block in _evidence(by, r.lei):
        lines += [block.caption, "", *markdown_table(block.headers, block.rows)]
        if block.kind != "applications":
            lines.append("")
    return lines


@dataclass(frozen=True, slots=True)
class _Block:
    """One evidence table of a lender: ``caption`` in Markdown inline syntax."""

    kind: str  # an evidence kind's table (``evidence.kinds.LENDER_PAGE``), or "applications"
    caption: str
    headers: tuple[str, ...]
    rows: list[tuple[object, ...]]
    records: list[Any]  # the rows as found in the audit tables


def _evidence(by: _ByLender, lei: str) -> list[_Block]:
    """The lender's evidence tables, in page order (``evidence.kinds.LENDER_PAGE``), then its strongest
    application findings; empty ones left out."""
    blocks = [_PAGE_TABLES[kind.table](by, lei) for kind in LENDER_PAGE]
    return [block for block in (*blocks, _applications_block(by, lei)) if block is not None]


def _odds_block(by: _ByLender, lei: str) -> _Block | None:
    odds = [r for r in by("denial_odds", lei) if r.reason == ""]
    if not odds:
        return None
    return _Block(
        "denial_odds",
        "Denial odds of the compared group, adjusted for the financials:",
        (
            "comparison",
            "compared",
            "reference",
            "denial rate (compared)",
            "denial rate (reference)",
            "odds ratio",
            "95% CI",
            "p",
            "p (Holm)",
            "excess denials (95% CI)",
            "smallest detectable OR",
        ),
        [
            (
                r.comparison,
                r.compared_applications,
                r.reference_applications,
                r.compared_denial_rate,
                r.reference_denial_rate,
                r.odds_ratio,
                f"{number(r.ci_low, 2)}–{number(r.ci_high, 2)}",
                r.p_value,
                r.p_adjusted,
                _excess(r),
                r.min_detectable_odds_ratio,
            )
            for r in odds
        ],
        odds,
    )


def _pairs_block(by: _ByLender, lei: str) -> _Block | None:
    pairs = [r for r in by("matched_pairs", lei) if r.discordant > 0]
    if not pairs:
        return None
    return _Block(
        "matched_pairs",
        "Matched pairs (nearest similar reference applicant):",
        (
            "comparison",
            "pairs",
            "reference favoured",
            "expected",
            "compared favoured",
            "ratio",
            "adjusted ratio",
            "p",
            "p (Holm)",
            "McNemar p",
        ),
        [
            (
                r.comparison,
                r.pairs,
                r.reference_favoured,
                r.expected_reference_favoured,
                r.compared_favoured,
                r.discordant_ratio,
                r.adjusted_ratio,
                r.p_value,
                r.p_adjusted,
                r.mcnemar_p_value,
            )
            for r in pairs
        ],
        pairs,
    )


def _redlining_block(by: _ByLender, lei: str) -> _Block | None:
    band = _first_band(by, lei)  # once, not per row
    red = [r for r in by("redlining", lei) if r.reason == "" and r.band == band]
    if not red:
        return None
    pooled = next((r for r in by("redlining", lei) if r.market_kind == "pooled"), None)
    return _Block(
        "redlining",
        f"Tracts over {number(red[0].band, 0)}% minority against peers of similar volume{_set_aside(pooled)}:",
        ("market", "measure", "lender", "share", "peers' share", "ratio", "p", "p (Holm)", "peers"),
        [
            (
                r.market,
                r.measure,
                r.count,
                r.share,
                r.peer_share,
                r.share_ratio,
                r.p_value,
                r.p_adjusted,
                _peers(r),
            )
            for r in red
        ],
        red,
    )


def _pricing_block(by: _ByLender, lei: str) -> _Block | None:
    pricing = [r for r in by("pricing", lei) if r.reason == ""]
    if not pricing:
        return None
    return _Block(
        "pricing",
        "Rate spread among originated loans (percentage points):",
        ("comparison", "loans (compared)", "loans (reference)", "raw gap", "adjusted gap", "p", "p (Holm)"),
        [
            (
                r.comparison,
                r.compared_loans,
                r.reference_loans,
                r.raw_gap,
                r.adjusted_gap,
                r.p_value,
                r.p_adjusted,
            )
            for r in pricing
        ],
        pricing,
    )


def _applications_block(by: _ByLender, lei: str) -> _Block | None:
    shown = by("applications", lei)
    if not shown:
        return None
    return _Block(
        "applications",
        f"Strongest application findings ({by.findings[lei]:,} in all; `reason explain OUT ID` prints any in full):",
        ("application", "input row", "finding", "group", "score", "confidence", "nearest comparator"),
        [
            (
                r.application_id,
                r.row,
                r.finding,
                r.race_ethnicity,
                r.violation_score,
                r.confidence,
                _comparator(r.comparators),
            )
            for r in shown
        ],
        shown,
    )


# The table of each evidence kind on a lender page (report.md and report.html).
_PAGE_TABLES: dict[str, Callable[[_ByLender, str], _Block | None]] = {
    "denial_odds": _odds_block,
    "matched_pairs": _pairs_block,
    "redlining": _redlining_block,
    "pricing": _pricing_block,
}


def _excess(r: Any) -> str:
    """Excess denials of a ``denial_odds`` row with their 95% CI (``effects``)."""
    if not finite(r.excess_denials):
        return "–"
    low, high = number(r.excess_denials_ci_low, 1), number(r.excess_denials_ci_high, 1)
    return f"{number(r.excess_denials, 1)} ({low} to {high})"


def _peers(r: Any) -> str:
    """Who a redlining row compares the lender with: '12 (volume 0.5-2x)', or '6 markets pooled'."""
    return f"{int(r.peers):,} ({r.peer_basis})" if finite(r.peers) else f"{int(r.markets):,} markets pooled"


def _first_band(by: _ByLender, lei: str) -> float:
    """The lowest tract band of the lender's redlining rows (majority-minority), NaN when none."""
    return min((float(r.band) for r in by("redlining", lei)), default=math.nan)


def _set_aside(pooled: Any) -> str:
    """'; set aside: 12 purchased loans, …' from a pooled redlining row ('' when nothing was)."""
    if pooled is None:
        return ""
    parts = [
        (pooled.purchased, "purchased loan"),
        (pooled.preapprovals, "preapproval request"),
        (pooled.other_segments, "reverse, open-end, business-purpose or non-owner-occupied loan"),
        (pooled.unplaced, "application without a tract or market"),
        (pooled.outside_area, "application outside the assessment area"),
    ]
    listed = [f"{int(count):,} {what}{'s' if int(count) != 1 else ''}" for count, what in parts if int(count) > 0]
    return f" (set aside: {', '.join(listed)})" if listed else ""


def _strength(r: Any) -> float:
    """The p-value of a market's redlining row (2 when it was not computed)."""
    return float(r.p_value) if finite(r.p_value) else 2.0


@dataclass(frozen=True, slots=True)
class _MarketShares:
    """One market of the redlining chart: the lender's and its peers' shares, both measures."""

    market: str
    applications: int
    shares: dict[str, tuple[float, float]]  # measure → (lender, peers)


def _comparator(comparators: object) -> str:
    items = list(comparators) if comparators is not None else []  # type: ignore[call-overload]
    if not items:
        return "–"
    first = items[0]
    return f"{first['application_id']} ({first['decision']}, distance {number(first['distance'], 2)})"


def _data_quality(audit: Audit) -> list[str]:
    cleaned = audit.cleaned
    lines = [
        "## Data quality",
        "",
        f"{cleaned.rows_read:,} rows read from {markdown_code(audit.facts.name)}; none dropped. Rows not usable for "
        "treatment "
        "rules, by first reason:",
        "",
    ]
    lines += markdown_table(["reason", "rows"], [(reason, count) for reason, count in cleaned.exclusions.items()])
    if cleaned.absent_columns:
        lines += [
            "",
            "Optional columns absent from the input: "
            + ", ".join(markdown_code(c) for c in cleaned.absent_columns)
            + ".",
        ]
    if cleaned.notes:
        lines += ["", "Register and groups:", ""] + [f"- {escape_markdown(note)}" for note in cleaned.notes]
    counts = audit.tables.pair_counts
    if counts:
        lines += ["", "Similar pairs per comparison:", ""]
        lines += markdown_table(PAIR_COUNT_HEADERS, _pair_count_rows(audit))
    elif audit.pairs_source is not None:
        lines += [
            "",
            f"Similar pairs were given in {markdown_code(audit.pairs_source.name)} ({audit.tables.pair_rows:,} rows).",
        ]
    return lines


PAIR_COUNT_HEADERS = (
    "comparison",
    "reference",
    "compared",
    "left out (missing values)",
    "no reference in block",
    "beyond distance",
    "matched",
    "pairs",
)


def _pair_count_rows(audit: Audit) -> list[tuple[object, ...]]:
    return [
        (name, c.reference, c.compared, c.missing, c.without_reference, c.beyond_distance, c.matched, c.pairs)
        for name, c in audit.tables.pair_counts.items()
    ]


def _method(audit: Audit) -> list[str]:
    config = audit.config
    comparisons = "; ".join(
        f"{escape_markdown(c.name)}: {escape_markdown(', '.join(c.compared))} against {escape_markdown(c.reference)} "
        f"({markdown_code(c.column)})"
        for c in config.comparisons
    )
    return [
        "## Method",
        "",
        f"Comparisons — {comparisons}.",
        "",
        f"Similarly situated applicants: the {config.neighbours} nearest reference applicants of each compared "
        "applicant on "
        f"{escape_markdown(', '.join(config.similarity_columns))} ({config.scaling} scaling; logarithms of "
        f"{escape_markdown(', '.join(config.log_columns) or 'none')}) within the same "
        f"{escape_markdown(', '.join(config.blocks))}, at most {number(config.max_distance, 2)} apart.",
        "",
        "Statistical evidence per lender and comparison: denial odds ratio from a logistic regression on "
        f"{', '.join(config.denial_model.phrases())} (Wald test); on the nearest matched pairs, an exact test of how "
        "often "
        "discordant pairs favour the reference applicant against what the pair's financials predict (each "
        "applicant's denial probability from a per-lender logistic regression on the same covariates without the "
        "group; Poisson-binomial), with McNemar's test beside it; rate-spread "
        "gap among "
        f"originated loans adjusted by least squares for {', '.join(config.pricing_model.phrases())} (HC3 robust "
        "errors); one-sided Fisher "
        "exact tests of "
        "the lender's share of applications (actions 1–5; purchased loans and preapproval requests set aside) and "
        "of originations from tracts over "
        f"{' and '.join(number(band, 0) + '%' for band in config.redlining.bands)} minority against peer lenders "
        f"of {number(config.redlining.peer_volume[0], 1)}–{number(config.redlining.peer_volume[1], 1)} times its "
        "volume in each market (MSA; the non-metro part of the state outside MSAs; the assessment area when "
        "given), Holm-adjusted over the lender's markets, and pooled over them (Mantel–Haenszel ratio, "
        "Cochran–Mantel–Haenszel test); the rules weigh these and the denial odds of the comparisons in "
        "audit.toml, such as 'neighbourhood'. "
        "A lender is tested once per comparison, so the rules weigh p-values adjusted by Holm's method over the "
        "lender's comparisons ('p (Holm)').",
        "",
        "The rule files weigh this evidence as a Markov logic network; the most probable world is found exactly by "
        "weighted MaxSAT. "
        "A lender's margin is how much less probable (in log-weight) the best world with its verdict reversed is; "
        "risk score = 100 × the probability that the lender is flagged, over every world of the rules (its "
        "marginal probability). Rule files:",
        "",
        *[f"- {markdown_code(path.name)}" for path in sorted(audit.rules, key=str)],
    ]


# --- HTML -------------------------------------------------------------------------------------

TIER_COLOURS = {  # background, text
    TIERS[0]: ("#8e1b1b", "#ffffff"),
    TIERS[1]: ("#d2461f", "#ffffff"),
    TIERS[2]: ("#f0a630", "#1f1f1f"),
    TIERS[3]: ("#5b8fc7", "#ffffff"),
    TIERS[4]: ("#a7adb4", "#1f1f1f"),
}

CSS = """
:root{--ink:#1f2328;--muted:#5c636b;--rule:#d5d9de;--soft:#f4f6f8}
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--ink);
 line-height:1.45;max-width:72rem;margin:0 auto;padding:1.5rem 1.25rem 3rem;font-size:15px;background:#fff}
h1{font-size:1.9rem;margin:0 0 .4rem}
h2{font-size:1.4rem;margin:2.2rem 0 .8rem;padding-bottom:.25rem;border-bottom:2px solid var(--ink)}
h3{font-size:1.15rem;margin:0 0 .5rem;display:flex;flex-wrap:wrap;align-items:center;gap:.5rem}
h4{font-size:1rem;margin:1.4rem 0 .4rem}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;font-size:.9em;
 background:var(--soft);padding:0 .2em;border-radius:3px}
a{color:#1c5fa8}
.meta{color:var(--muted);margin:.2rem 0}
nav.toc{margin:1rem 0;padding:.5rem .75rem;background:var(--soft);border-radius:6px;font-size:.92rem}
nav.toc a{margin-right:1rem}
.cards{display:flex;flex-wrap:wrap;gap:.6rem;margin:1rem 0}
.card{flex:1 1 9rem;border-radius:6px;padding:.55rem .75rem;min-width:9rem}
.card .count{display:block;font-size:1.8rem;font-weight:700;line-height:1.1}
.card .label{font-size:.78rem;letter-spacing:.02em}
.badge{display:inline-block;border-radius:999px;padding:.05rem .55rem;font-size:.75rem;font-weight:600;
 letter-spacing:.02em;white-space:nowrap}
.t1{background:#8e1b1b;color:#fff}.t2{background:#d2461f;color:#fff}.t3{background:#f0a630;color:#1f1f1f}
.t4{background:#5b8fc7;color:#fff}.t5{background:#a7adb4;color:#1f1f1f}.t0{background:#ddd;color:#1f1f1f}
.ts{background:#fff;color:#1f1f1f;outline:2px dashed #8a8f96;outline-offset:-2px}
.scroll{overflow-x:auto;margin:.5rem 0 1rem}
table{border-collapse:collapse;font-size:.86rem;font-variant-numeric:tabular-nums}
th,td{border-bottom:1px solid var(--rule);padding:.3rem .55rem;text-align:left;vertical-align:top}
thead th{border-bottom:2px solid var(--ink);background:var(--soft);font-weight:600}
td.num,th.num{text-align:right;white-space:nowrap}
tbody tr:nth-child(even){background:#fafbfc}
.note{color:var(--muted);font-size:.88rem}
.lender{border-top:3px solid var(--ink);margin:2.2rem 0 0;padding-top:.9rem}
h2+.lender{border-top:none;margin-top:0;padding-top:0}
.facts{margin:.2rem 0}
.action{margin:.4rem 0 .8rem;padding:.45rem .7rem;background:var(--soft);border-left:4px solid var(--ink)}
figure{margin:.6rem 0 .4rem}
figcaption{color:var(--muted);font-size:.84rem;margin-top:.2rem;max-width:52rem}
svg.chart{display:block;max-width:100%;height:auto;font-family:inherit}
.bar{display:inline-block;height:.7em;background:#5b8fc7;vertical-align:middle}
ul.rules{columns:2;font-size:.9rem}
footer{margin-top:3rem;color:var(--muted);font-size:.82rem;border-top:1px solid var(--rule);padding-top:.6rem}
@page{margin:14mm}
@media print{
 body{max-width:none;padding:0;font-size:10.5pt}
 nav.toc,.back{display:none}
 a{color:inherit;text-decoration:none}
 #flagged,#data-quality{break-before:page}
 .lender{break-before:page;border-top:none}
 #flagged>.lender:first-of-type{break-before:auto}
 h2{break-after:avoid}h3,h4{break-after:avoid}
 figure,tr,.card{break-inside:avoid}
 .scroll{overflow:visible}
 *{-webkit-print-color-adjust:exact;print-color-adjust:exact}
}
"""


def render_html(audit: Audit, by: _ByLender | None = None) -> str:
    """The report as one self-contained HTML page (inline CSS and SVG; no script, no network)."""
    summary = _summary(audit)
    lenders = audit.findings.lenders
    flagged = lenders[lenders["flagged"]]
    sectioned = flagged.head(MAX_LENDER_SECTIONS)
    anchors = _anchors(sectioned["lei"].tolist())
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        f"<title>Fair-lending audit report — {escape_html(audit.facts.name)}</title>",
        f"<style>{CSS}</style>",
        "</head><body>",
        '<header id="top">',
        "<h1>Fair-lending audit report</h1>",
        *(f'<p class="meta">{inline_html(line)}</p>' for line in _header(audit)),
        '<nav class="toc">Contents: <a href="#summary">Summary</a><a href="#lenders">Lenders by tier</a>'
        + ('<a href="#flagged">Flagged lenders</a>' if len(flagged) else "")
        + '<a href="#denial-reasons">Denial reasons</a>'
        + ('<a href="#model">Model evidence</a>' if audit.model_evidence is not None else "")
        + '<a href="#data-quality">Data quality</a><a href="#method">Method</a></nav>',
        "</header>",
        '<section id="summary">',
        "<h2>Summary</h2>",
        '<div class="cards">',
    ]
    for tier, count in summary.tiers.items():
        out.append(
            f'<div class="card {_tier_class(tier)}"><span class="count">{count:,}</span>'
            f'<span class="label">{escape_html(tier)}</span></div>'
        )
    out += [
        "</div>",
        "<ul>",
        f"<li>{summary.lenders:,} lenders audited, <strong>{summary.flagged:,} flagged</strong> (tiers 1–3).</li>",
        f"<li>{summary.applications:,} application findings.</li>",
        f"<li>{summary.usable:,} of {summary.rows:,} rows usable for treatment rules; the others are "
        'counted under <a href="#data-quality">Data quality</a>.</li>',
        "</ul>",
        figure(
            _risk_histogram(lenders, audit.config.tiers),
            "Lenders by risk score (bins of 5 points), coloured by tier; dashed lines: the tier cut-offs ("
            + ", ".join(f"{escape_html(tier)} from {number(low, 1)}" for tier, low in audit.config.tiers)
            + "). Flagged lenders are in tiers 1–3 whatever their score; lenders not tested or underpowered are "
            "left out (their score is the presumption of compliance, not evidence).",
        ),
        "</section>",
        '<section id="lenders">',
        "<h2>Lenders by tier</h2>",
        html_table(
            ("tier", "lenders", "recommended action"),
            [(Html(_badge(tier)), count, audit.config.action(tier)) for tier, count in summary.tiers.items()],
            numeric={1},
        ),
        "<h3>Flagged and monitored lenders</h3>",
    ]
    listed = _listed(lenders)
    rows = []
    for row in _rows(listed.head(MAX_LENDER_ROWS)):
        anchor = anchors.get(row.lei)
        lei = (
            f'<a href="#{anchor}"><code>{escape_html(row.lei)}</code></a>'
            if anchor
            else f"<code>{escape_html(row.lei)}</code>"
        )
        cells = _lender_row(row)[:-1]  # the recommended action is the tier's, in the table above
        rows.append((Html(lei), Html(_badge(row.risk_tier)), number(row.risk_score, 2), *cells[3:]))
    out.append(html_table(LENDER_HEADERS[:-1], rows, numeric={2, 5}))
    out += _untested_html(lenders)
    notes = []
    if len(listed) > MAX_LENDER_ROWS:
        notes.append(
            f"The {MAX_LENDER_ROWS:,} highest-risk of {len(listed):,} lenders in tiers 1–4 are listed; "
            "lenders.parquet and report.md have all."
        )
    if summary.tiers[TIERS[-1]]:
        notes.append(f"{summary.tiers[TIERS[-1]]:,} lenders in {TIERS[-1]} are not listed.")
    if any(summary.tiers[tier] for tier in STATUS_TIERS):
        notes.append("Lenders not tested or underpowered are listed below.")
    if len(flagged) > MAX_LENDER_SECTIONS:
        notes.append(
            f"Linked LEIs have a section below (the {MAX_LENDER_SECTIONS} highest-risk of {len(flagged):,} flagged "
            "lenders)."
        )
    elif len(flagged):
        notes.append("Linked LEIs have a section below.")
    if notes:
        out.append(f'<p class="note">{escape_html(" ".join(notes))}</p>')
    out.append("</section>")
    if len(flagged):
        out += ['<section id="flagged">', "<h2>Flagged lenders</h2>"]
        if len(flagged) > MAX_LENDER_SECTIONS:
            out.append(
                f'<p class="note">{len(flagged):,} lenders are flagged; the {MAX_LENDER_SECTIONS} with the highest '
                "risk scores have a section here. report.md and explanations.parquet "
                "(<code>reason explain OUT LEI</code>) cover every flagged lender.</p>"
            )
        by = _ByLender(audit) if by is None else by
        for row in _rows(sectioned):
            out += _lender_html(audit, by, row, anchors[row.lei])
        out.append("</section>")
    out += _denial_reasons_html(audit)
    out += model_section_html(audit)
    out += _data_quality_html(audit)
    out += _method_html(audit)
    out += [
        f"<footer>Generated by reasoner {escape_html(__version__)} from <code>{escape_html(audit.facts.name)}</code>. "
        "This page is self-contained: it loads no script, font, image or style sheet.</footer>",
        "</body></html>",
    ]
    return "\n".join(out) + "\n"


def _anchors(leis: Sequence[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    used: set[str] = set()
    for lei in leis:
        anchor = "lender-" + re.sub(r"[^A-Za-z0-9_-]", "_", lei)
        if anchor in used:
            anchor += f"-{len(used)}"
        used.add(anchor)
        found[lei] = anchor
    return found


def _tier_class(tier: object) -> str:
    """CSS class of a tier: t1 … t5, ts for NOT_TESTED/UNDERPOWERED, t0 for anything else."""
    if tier in STATUS_TIERS:
        return "ts"
    return f"t{TIERS.index(tier) + 1}" if tier in TIERS else "t0"


def _badge(tier: object) -> str:
    return f'<span class="badge {_tier_class(tier)}">{escape_html(tier)}</span>'


def _untested_html(lenders: pd.DataFrame) -> list[str]:
    table = untested_table(lenders)
    if table is None:
        return []
    return [
        "<h3>Lenders not tested or underpowered</h3>",
        f'<p class="note">{inline_html(table.caption)}</p>',
        html_table(table.headers, table.rows, numeric={2, 3, 5}),
    ]


def _denial_reasons_html(audit: Audit) -> list[str]:
    intro, tables = denial_reason_tables(audit)
    out = ['<section id="denial-reasons">', "<h2>Denial reasons (Regulation B)</h2>", f"<p>{inline_html(intro)}</p>"]
    for table in tables:
        out.append(f"<p>{inline_html(table.caption)}</p>")
        out.append(html_table(table.headers, table.rows) if table.rows else '<p class="note">None.</p>')
    out.append("</section>")
    return out


def _lender_html(audit: Audit, by: _ByLender, r: Any, anchor: str) -> list[str]:
    lei = r.lei
    denial = r.denial_rate
    facts = [
        f"risk score <strong>{number(r.risk_score, 2)}</strong>",
        escape_html(r.confidence),
        f"margin {number(r.margin)}",
        "violations: <strong>" + escape_html(", ".join(r.violations) or "–") + "</strong>",
        f"{r.applications:,} applications, {r.usable_applications:,} usable"
        + (f", denial rate {denial:.1%}" if finite(denial) else ""),
        f"{r.flagged_applications:,} flagged applications",
    ]
    out = [
        f'<article class="lender" id="{anchor}">',
        f"<h3>Lender <code>{escape_html(lei)}</code> {_badge(r.risk_tier)}</h3>",
        f'<p class="facts">{" · ".join(facts)}</p>',
        f'<p class="action"><strong>Recommended action:</strong> {escape_html(r.recommended_action)}.</p>',
        *([f'<p class="facts">{inline_html(effect_sentence(r))}</p>'] if effect_sentence(r) else []),
    ]
    for block in _evidence(by, lei):
        if block.kind == "applications":
            out += [
                "<h4>Strongest application findings</h4>",
                f'<p class="note">The {len(block.rows):,} with the highest violation scores of '
                f"{by.findings.get(lei, 0):,} in all; <code>reason explain OUT ID</code> prints any in full.</p>",
            ]
        else:
            kind = evidence_kind(block.kind)
            out.append(f"<h4>{escape_html(kind.title if kind is not None else block.kind)}</h4>")
            shown, block = _PAGE_FIGURES[block.kind](audit, by, lei, block)
            out += [*shown, f'<p class="note">{inline_html(block.caption)}</p>']
        out.append(html_table(block.headers, block.rows))
    out += ['<p class="back"><a href="#lenders">↑ Lenders by tier</a></p>', "</article>"]
    return out


# A lender page's figure of an evidence kind, before its table: (the HTML, the block to tabulate).
_Figure = Callable[[Audit, _ByLender, str, _Block], tuple[list[str], _Block]]


def _odds_figure(audit: Audit, by: _ByLender, lei: str, block: _Block) -> tuple[list[str], _Block]:
    covariates = escape_html(and_list(list(audit.config.denial_model.phrases())))
    caption = (
        "Odds that an applicant of the compared group is denied, relative to a reference-group applicant "
        f"with the same {covariates} (logistic regression), with 95% confidence intervals, on a log scale. "
        "Above 1: the compared group is approved less often than its financials explain. "
        f'<span style="color:{RED}">Red</span>: the whole interval is above 1; '
        f'<span style="color:{BLUE}">blue</span>: below 1.'
    )
    return [figure(_odds_chart(by("denial_odds", lei)), caption)], block


def _pairs_figure(audit: Audit, by: _ByLender, lei: str, block: _Block) -> tuple[list[str], _Block]:
    caption = (
        "Each compared applicant paired with the nearest similarly situated reference-group applicant at "
        "the lender. Reference favoured: the reference applicant was approved and the compared one "
        "denied; compared favoured: the reverse."
    )
    return [figure(_pairs_chart([r for r in by("matched_pairs", lei) if r.pairs > 0]), caption)], block


def _redlining_figure(audit: Audit, by: _ByLender, lei: str, block: _Block) -> tuple[list[str], _Block]:
    out = []
    markets = sorted({str(r.market) for r in block.records if r.market_kind != "pooled"})
    if len(markets) > MAX_MSAS:  # keep the markets with the strongest signals
        records = block.records
        strongest = {str(r.market): _strength(r) for r in records if r.measure == "applications"}
        kept_markets = set(sorted(markets, key=lambda m: (strongest.get(m, 2.0), m))[:MAX_MSAS])
        order = [i for i, r in enumerate(records) if r.market_kind == "pooled" or str(r.market) in kept_markets]
        out.append(
            f'<p class="note">The {MAX_MSAS} of {len(markets):,} markets with the smallest p-values; '
            "report.md lists all.</p>"
        )
        rows = [block.rows[i] for i in order]
        block = _Block(block.kind, block.caption, block.headers, rows, [records[i] for i in order])
    caption = (
        "The lender's share of its applications (left) and originations (right) in each market that come "
        f"from tracts with more than {number(block.records[0].band, 0)}% minority residents, against "
        "peer lenders of similar volume in the market (purchased loans and preapproval requests set "
        "aside); a share well below the peers' suggests avoiding these neighbourhoods."
    )
    out.append(figure(_redlining_chart(_market_shares(block.records)), caption))
    return out, block


def _pricing_figure(audit: Audit, by: _ByLender, lei: str, block: _Block) -> tuple[list[str], _Block]:
    caption = (
        "Gap in mean rate spread (percentage points) of the compared group's originated loans against the "
        f"reference group's, adjusted for {escape_html(and_list(list(audit.config.pricing_model.phrases())))} "
        "(least squares), with 95% confidence intervals. Above 0: the compared group pays more."
    )
    return [figure(_pricing_chart(block.records), caption)], block


_PAGE_FIGURES: dict[str, _Figure] = {
    "denial_odds": _odds_figure,
    "matched_pairs": _pairs_figure,
    "redlining": _redlining_figure,
    "pricing": _pricing_figure,
}


def _data_quality_html(audit: Audit) -> list[str]:
    cleaned = audit.cleaned
    rows = cleaned.rows_read or 1
    out = [
        '<section id="data-quality">',
        "<h2>Data quality</h2>",
        f"<p>{cleaned.rows_read:,} rows read from <code>{escape_html(audit.facts.name)}</code>; none dropped. "
        "Rows not usable for treatment rules, by first reason:</p>",
    ]
    out.append(
        html_table(
            ("reason", "rows", "share of rows"),
            [
                (
                    reason,
                    count,
                    Html(
                        f'<span class="bar" style="width:{max(count / rows * 12, 0.05 if count else 0):.2f}em"></span> '
                        f"{count / rows:.1%}"
                    ),
                )
                for reason, count in cleaned.exclusions.items()
            ],
            numeric={1},
        )
    )
    if cleaned.absent_columns:
        out.append(
            "<p>Optional columns absent from the input: "
            + ", ".join(f"<code>{escape_html(c)}</code>" for c in cleaned.absent_columns)
            + ".</p>"
        )
    if cleaned.notes:
        out.append(
            "<p>Register and groups:</p><ul>"
            + "".join(f"<li>{escape_html(note)}</li>" for note in cleaned.notes)
            + "</ul>"
        )
    if audit.tables.pair_counts:
        out += ["<p>Similar pairs per comparison:</p>", html_table(PAIR_COUNT_HEADERS, _pair_count_rows(audit))]
    elif audit.pairs_source is not None:
        out.append(
            f"<p>Similar pairs were given in <code>{escape_html(audit.pairs_source.name)}</code> "
            f"({audit.tables.pair_rows:,} "
            "rows).</p>"
        )
    out.append("</section>")
    return out


def _method_html(audit: Audit) -> list[str]:
    out = ['<section id="method">']
    items: list[str] = []
    for line in _method(audit):
        if line.startswith("- "):
            items.append(f"<li>{inline_html(line[2:])}</li>")
            continue
        if items:
            out += ['<ul class="rules">', *items, "</ul>"]
            items = []
        if line.startswith("## "):
            out.append(f"<h2>{escape_html(line[3:])}</h2>")
        elif line:
            out.append(f"<p>{inline_html(line)}</p>")
    if items:
        out += ['<ul class="rules">', *items, "</ul>"]
    out.append("</section>")
    return out


# --- SVG charts ---------------------------------------------------------------------------------
# Coordinates are rounded to 0.1 px and every number is formatted explicitly, so the same data
# gives the same bytes.


def _odds_chart(rows: list[Any]) -> str:
    groups = Counter(r.comparison for r in rows)
    points = [
        Point(
            f"{r.comparison}: {r.group}" if groups[r.comparison] > 1 else str(r.comparison),
            float(r.odds_ratio),
            float(r.ci_low),
            float(r.ci_high),
            str(r.reason) or ("" if finite(r.odds_ratio) or r.odds_ratio == math.inf else "no estimate"),
        )
        for r in rows
    ]
    return forest(
        points,
        log=True,
        reference=1.0,
        axis="adjusted denial odds ratio, compared vs reference group (log scale)",
        left="denied less often",
        right="denied more often",
        title="Adjusted denial odds ratios with 95% CIs",
    )


def _pricing_chart(rows: list[Any]) -> str:
    points = [
        Point(
            f"{r.comparison}",
            float(r.adjusted_gap),
            float(r.ci_low),
            float(r.ci_high),
            "" if finite(r.adjusted_gap) else "no estimate",
        )
        for r in rows
    ]
    return forest(
        points,
        log=False,
        reference=0.0,
        axis="adjusted rate-spread gap, compared minus reference (percentage points)",
        left="compared pays less",
        right="compared pays more",
        title="Adjusted rate-spread gaps with 95% CIs",
    )


PAIR_PARTS = (
    ("both_approved", "both approved", "#b9dfb3", INK),
    ("both_denied", "both denied", "#c9cdd2", INK),
    ("reference_favoured", "reference favoured", "#d6604d", "#ffffff"),
    ("compared_favoured", "compared favoured", "#4b8bc4", "#ffffff"),
)


def _pairs_chart(rows: list[Any]) -> str:
    if not rows:
        return ""
    width, label_w, x0, x1 = 760, 160, 170, 660
    row_h, top = 26, 34
    height = top + row_h * len(rows) + 26
    body = []
    x: float = x0
    for _, label, colour, _ink in PAIR_PARTS:  # legend
        body.append(svg_rect(x, 6, 12, 12, colour))
        body.append(svg_text(x + 17, 12, label, size=11.5))
        x += 30 + 6.6 * len(label)
    bottom = top + row_h * len(rows)
    for share in (0, 0.25, 0.5, 0.75, 1):
        gx = x0 + share * (x1 - x0)
        body.append(svg_line(gx, top - 4, gx, bottom, "#dfe3e8"))
        body.append(svg_text(gx, bottom + 12, f"{share:.0%}", anchor="middle", size=11, fill=MUTED))
    for i, r in enumerate(rows):
        y = top + row_h * i
        total = int(r.pairs)
        body.append(svg_text(label_w, y + row_h / 2 - 2, clip(str(r.comparison), 26), anchor="end"))
        x = float(x0)
        for column, label, colour, ink in PAIR_PARTS:
            count = int(getattr(r, column))
            w = count / total * (x1 - x0) if total else 0
            if w > 0:
                body.append(
                    svg_rect(x, y + 3, w, row_h - 10, colour, f"{r.comparison}: {count:,} {label} of {total:,} pairs")
                )
                if w >= 8 + 7 * len(f"{count:,}"):
                    body.append(
                        svg_text(x + w / 2, y + row_h / 2 - 2, f"{count:,}", anchor="middle", size=11, fill=ink)
                    )
            x += w
        body.append(svg_text(x1 + 8, y + row_h / 2 - 2, f"{total:,} pairs", size=11.5, fill=MUTED))
    return svg(width, height, "Matched-pair outcomes by comparison", body)


def _market_shares(records: list[Any]) -> list[_MarketShares]:
    """The redlining rows of one band, one entry per market (pooled last), for the chart."""
    shares: dict[str, dict[str, tuple[float, float]]] = {}
    counts: dict[str, int] = {}
    for r in records:
        key = str(r.market)
        shares.setdefault(key, {})[str(r.measure)] = (float(r.share), float(r.peer_share))
        if r.measure == "applications":
            counts[key] = int(r.count)
    order = sorted(shares, key=lambda market: market == "all markets")  # stable: table order, pooled last
    return [_MarketShares(market, counts.get(market, 0), shares[market]) for market in order]


def _redlining_chart(rows: list[_MarketShares]) -> str:
    if not rows:
        return ""
    width, label_w = 780, 100
    panels = (
        ("applications", "share of applications", 110),
        ("originations", "share of originations", 455),
    )
    panel_w, row_h, top = 270, 30, 52
    height = top + row_h * len(rows) + 26
    body = [
        svg_rect(label_w + 10, 6, 12, 10, "#2f5f8f"),
        svg_text(label_w + 27, 11, "this lender", size=11.5),
        svg_rect(label_w + 115, 6, 12, 10, "#b8bec5"),
        svg_text(label_w + 132, 11, "peers of similar volume", size=11.5),
    ]
    bottom = top + row_h * len(rows)
    for measure, title, x0 in panels:
        values = [value for r in rows for value in r.shares.get(measure, ()) if finite(value)]
        limit = min(1.0, max(0.1, math.ceil(max(values, default=0.1) * 10 - 1e-9) / 10))
        body.append(svg_text(x0, top - 16, title, size=11.5, weight="600"))
        step = 0.25 if limit > 0.5 else 0.1
        for k in range(int(round(limit / step)) + 1):
            gx = x0 + k * step / limit * panel_w
            body.append(svg_line(gx, top - 4, gx, bottom, "#dfe3e8"))
            body.append(svg_text(gx, bottom + 12, f"{k * step:.0%}", anchor="middle", size=11, fill=MUTED))
        for i, r in enumerate(rows):
            y = top + row_h * i
            pair = r.shares.get(measure, (math.nan, math.nan))
            for j, (value, colour) in enumerate(zip(pair, ("#2f5f8f", "#b8bec5"), strict=True)):
                by = y + 3 + j * 11
                if finite(value):
                    w = float(value) / limit * panel_w
                    who = "lender" if j == 0 else "peers"
                    body.append(svg_rect(x0, by, w, 10, colour, f"{r.market}, {who}: {float(value):.1%}"))
                    body.append(
                        svg_text(x0 + w + 4, by + 5, f"{float(value):.0%}", size=10.5, fill=INK if j == 0 else MUTED)
                    )
                else:
                    body.append(svg_text(x0 + 4, by + 5, "–", size=10.5, fill=MUTED))
    for i, r in enumerate(rows):
        y = top + row_h * i
        body.append(svg_text(label_w, y + 14, clip(r.market, 16), anchor="end"))
        body.append(svg_text(label_w, y + 25, f"{r.applications:,} apps", anchor="end", size=10, fill=MUTED))
    return svg(width, height, "Minority tracts: lender against peers of similar volume", body)


def _risk_histogram(lenders: pd.DataFrame, cutoffs: Sequence[tuple[str, float]]) -> str:
    if lenders.empty:
        return ""
    width, x0, x1, top, plot_h = 760, 52, 740, 40, 160
    bins = 20
    counts = [[0] * len(TIERS) for _ in range(bins)]
    for score, tier in zip(lenders["risk_score"].tolist(), lenders["risk_tier"].tolist(), strict=True):
        if not finite(score) or tier not in TIERS:
            continue
        b = min(int(float(score) // 5), bins - 1)
        counts[max(b, 0)][TIERS.index(tier)] += 1
    peak = max(sum(c) for c in counts) or 1
    step = max(1, int(nice_step(peak, 4)))
    limit = math.ceil(peak / step) * step
    bottom = top + plot_h
    body = []
    x: float = x0
    for index, tier in enumerate(TIERS):  # legend
        body.append(svg_rect(x, 8, 12, 12, TIER_COLOURS[tier][0]))
        body.append(svg_text(x + 17, 14, tier, size=11))
        x += 30 + 6.3 * len(tier) if index < len(TIERS) - 1 else 0
    for k in range(0, limit + 1, step):
        gy = bottom - k / limit * plot_h
        body.append(svg_line(x0, gy, x1, gy, "#dfe3e8"))
        body.append(svg_text(x0 - 6, gy, f"{k:,}", anchor="end", size=11, fill=MUTED))
    bin_w = (x1 - x0) / bins
    for b, per_tier in enumerate(counts):
        y: float = bottom
        for index, count in enumerate(per_tier):
            if count:
                h = count / limit * plot_h
                y -= h
                body.append(
                    svg_rect(
                        x0 + b * bin_w + 1,
                        y,
                        bin_w - 2,
                        h,
                        TIER_COLOURS[TIERS[index]][0],
                        f"risk {b * 5}–{b * 5 + 5}: {count:,} {TIERS[index]}",
                    )
                )
        if sum(per_tier):
            body.append(
                svg_text(x0 + (b + 0.5) * bin_w, y - 7, f"{sum(per_tier):,}", anchor="middle", size=10, fill=MUTED)
            )
    for _, low in cutoffs:
        cx = x0 + float(low) / 100 * (x1 - x0)
        body.append(svg_line(cx, top - 6, cx, bottom, INK, 1, "4 3"))
    body.append(svg_line(x0, bottom, x1, bottom, INK))
    for v in range(0, 101, 10):
        body.append(svg_text(x0 + v / 100 * (x1 - x0), bottom + 12, f"{v}", anchor="middle", size=11, fill=MUTED))
    body.append(svg_text((x0 + x1) / 2, bottom + 30, "risk score", anchor="middle", size=11.5))
    body.append(
        f'<text x="14" y="{px(top + plot_h / 2)}" transform="rotate(-90 14 {px(top + plot_h / 2)})" '
        f'text-anchor="middle" font-size="11.5" fill="{INK}">lenders</text>'
    )
    return svg(width, bottom + 42, "Lenders by risk score and tier", body)
