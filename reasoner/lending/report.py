"""``Audit`` → the regulatory report: ``report.md`` (text) and ``report.html`` (self-contained).

Sections: summary, lenders by tier, one page per flagged lender with its strongest evidence,
data quality (rows read, used, excluded by reason; similar pairs), method. The HTML page adds
charts (inline SVG) and uses no network resource.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence

from reasoner.lending.audit import Audit
from reasoner.lending.config import TIERS

__all__ = ["render_html", "render_markdown"]

MAX_APPLICATIONS_LISTED = 10


def _number(value: object, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        if math.isinf(value):
            return "∞" if value > 0 else "-∞"
        if value != 0 and (abs(value) < 10 ** -digits):
            return f"{value:.1e}"
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_number(cell).replace("|", "\\|") for cell in row) + " |")
    return lines


def _summary(audit: Audit) -> dict[str, object]:
    lenders = audit.findings.lenders
    cleaned = audit.cleaned
    return {
        "rows": cleaned.rows_read,
        "usable": int((cleaned.frame["excluded"] == "").sum()),
        "lenders": len(lenders),
        "flagged": int(lenders["flagged"].sum()),
        "applications": len(audit.findings.applications),
        "tiers": {tier: int((lenders["risk_tier"] == tier).sum()) for tier in TIERS},
    }


def render_markdown(audit: Audit) -> str:
    summary = _summary(audit)
    lenders = audit.findings.lenders
    lines = [
        "# Fair-lending audit report",
        "",
        f"Input: `{audit.facts.name}` (SHA-256 `{audit.facts_sha256[:16]}…`), {summary['rows']:,} rows; "
        f"applications identified by `{audit.cleaned.id_column}`"
        + (" (the input has no application id: rows are cited by number)" if audit.cleaned.id_column == "row" else "")
        + ".",
        f"Rules: {len(audit.rules)} files and `{audit.config.path.name}`; solver status: {audit.run.solution.status}.",
        "",
        "## Summary",
        "",
        f"- {summary['lenders']:,} lenders audited, **{summary['flagged']:,} flagged** (tiers 1–3).",
        f"- {summary['applications']:,} application findings.",
        f"- {summary['usable']:,} of {summary['rows']:,} rows usable for treatment rules; the others are counted under Data quality.",
        "",
        "## Lenders by tier",
        "",
    ]
    lines += _table(["tier", "lenders"], [(tier, count) for tier, count in summary["tiers"].items()])  # type: ignore[union-attr]
    lines += ["", "### Flagged and monitored lenders", ""]
    shown = lenders[lenders["risk_tier"] != TIERS[-1]]
    lines += _table(
        ["LEI", "tier", "risk", "confidence", "violations", "flagged applications", "recommended action"],
        [
            (row.lei, row.risk_tier, row.risk_score, row.confidence, ", ".join(row.violations) or "–", row.flagged_applications, row.recommended_action)
            for row in shown.itertuples(index=False)
        ],
    )
    for row in lenders[lenders["flagged"]].itertuples(index=False):
        lines += ["", *_lender_page(audit, row)]
    lines += ["", *_data_quality(audit), "", *_method(audit)]
    return "\n".join(lines) + "\n"


def _lender_page(audit: Audit, row: object) -> list[str]:
    lei = row.lei  # type: ignore[attr-defined]
    tables = audit.tables
    lines = [
        f"## Lender {lei}",
        "",
        f"{row.risk_tier}, risk score {_number(row.risk_score, 2)}, {row.confidence}; "  # type: ignore[attr-defined]
        f"violations: {', '.join(row.violations)}; margin {_number(row.margin)}.",  # type: ignore[attr-defined]
        f"Recommended action: {row.recommended_action}.",  # type: ignore[attr-defined]
        "",
    ]
    odds = tables.denial_odds[(tables.denial_odds["lei"] == lei) & (tables.denial_odds["reason"] == "")]
    if not odds.empty:
        lines += ["Denial odds of the compared group, adjusted for the financials:", ""]
        lines += _table(
            ["comparison", "compared", "reference", "denial rate (compared)", "denial rate (reference)", "odds ratio", "95% CI", "p"],
            [
                (r.comparison, r.compared_applications, r.reference_applications, r.compared_denial_rate, r.reference_denial_rate,
                 r.odds_ratio, f"{_number(r.ci_low, 2)}–{_number(r.ci_high, 2)}", r.p_value)
                for r in odds.itertuples(index=False)
            ],
        )
        lines.append("")
    pairs = tables.matched_pairs[(tables.matched_pairs["lei"] == lei) & (tables.matched_pairs["discordant"] > 0)]
    if not pairs.empty:
        lines += ["Matched pairs (nearest similar reference applicant):", ""]
        lines += _table(
            ["comparison", "pairs", "reference favoured", "compared favoured", "ratio", "McNemar p"],
            [(r.comparison, r.pairs, r.reference_favoured, r.compared_favoured, r.discordant_ratio, r.p_value) for r in pairs.itertuples(index=False)],
        )
        lines.append("")
    red = tables.redlining[(tables.redlining["lei"] == lei) & (tables.redlining["reason"] == "")]
    if not red.empty:
        lines += ["Majority-minority tracts against MSA peers:", ""]
        lines += _table(
            ["MSA", "applications", "share", "peers' share", "share p", "denial rate there", "peers'", "denial p"],
            [(r.msa, r.applications, r.minority_tract_share, r.peer_minority_tract_share, r.share_p_value,
              r.minority_tract_denial_rate, r.peer_minority_tract_denial_rate, r.denial_p_value) for r in red.itertuples(index=False)],
        )
        lines.append("")
    pricing = tables.pricing[(tables.pricing["lei"] == lei) & (tables.pricing["reason"] == "")]
    if not pricing.empty:
        lines += ["Rate spread among originated loans (percentage points):", ""]
        lines += _table(
            ["comparison", "loans (compared)", "loans (reference)", "raw gap", "adjusted gap", "p"],
            [(r.comparison, r.compared_loans, r.reference_loans, r.raw_gap, r.adjusted_gap, r.p_value) for r in pricing.itertuples(index=False)],
        )
        lines.append("")
    apps = audit.findings.applications
    apps = apps[apps["lei"] == lei].sort_values(["violation_score", "application_id"], ascending=[False, True], kind="stable")
    if not apps.empty:
        lines += [f"Strongest application findings ({len(apps):,} in all; `reason explain OUT ID` prints any in full):", ""]
        lines += _table(
            ["application", "input row", "finding", "group", "score", "confidence", "nearest comparator"],
            [
                (r.application_id, r.row, r.finding, r.race_ethnicity, r.violation_score, r.confidence, _comparator(r.comparators))
                for r in apps.head(MAX_APPLICATIONS_LISTED).itertuples(index=False)
            ],
        )
    return lines


def _comparator(comparators: object) -> str:
    items = list(comparators) if comparators is not None else []  # type: ignore[call-overload]
    if not items:
        return "–"
    first = items[0]
    return f"{first['application_id']} ({first['decision']}, distance {_number(first['distance'], 2)})"


def _data_quality(audit: Audit) -> list[str]:
    cleaned = audit.cleaned
    lines = ["## Data quality", "", f"{cleaned.rows_read:,} rows read from `{audit.facts.name}`; none dropped. Rows not usable for treatment rules, by first reason:", ""]
    lines += _table(["reason", "rows"], [(reason, count) for reason, count in cleaned.exclusions.items()])
    if cleaned.absent_columns:
        lines += ["", "Optional columns absent from the input: " + ", ".join(f"`{c}`" for c in cleaned.absent_columns) + "."]
    counts = audit.tables.pair_counts
    if counts:
        lines += ["", "Similar pairs per comparison:", ""]
        lines += _table(
            ["comparison", "reference", "compared", "left out (missing values)", "no reference in block", "beyond distance", "matched", "pairs"],
            [(name, c.reference, c.compared, c.missing, c.without_reference, c.beyond_distance, c.matched, c.pairs) for name, c in counts.items()],
        )
    elif audit.pairs_source is not None:
        lines += ["", f"Similar pairs were given in `{audit.pairs_source.name}` ({len(audit.tables.pairs):,} rows)."]
    return lines


def _method(audit: Audit) -> list[str]:
    config = audit.config
    comparisons = "; ".join(f"{c.name}: {', '.join(c.compared)} against {c.reference} (`{c.column}`)" for c in config.comparisons)
    return [
        "## Method",
        "",
        f"Comparisons — {comparisons}.",
        "",
        f"Similarly situated applicants: the {config.neighbours} nearest reference applicants of each compared applicant on "
        f"{', '.join(config.similarity_columns)} ({config.scaling} scaling; logarithms of {', '.join(config.log_columns) or 'none'}) within the same "
        f"{', '.join(config.blocks)}, at most {_number(config.max_distance, 2)} apart.",
        "",
        "Statistical evidence per lender and comparison: denial odds ratio from a logistic regression on "
        f"{', '.join(config.covariates)} (Wald test); exact McNemar test on the nearest matched pairs; rate-spread gap among "
        f"originated loans adjusted by least squares for {', '.join(config.pricing_covariates)}; one-sided Fisher exact tests of "
        f"the lender's share of applications from, and denial rate in, majority-minority tracts (> {_number(config.majority_minority_percent, 0)}% minority) against MSA peers.",
        "",
        "The rule files weigh this evidence as a Markov logic network; the most probable world is found exactly by weighted MaxSAT. "
        "A lender's margin is how much less probable (in log-weight) the best world with its verdict reversed is; "
        "risk score = 100 / (1 + e^(−margin)), signed by the verdict. Rule files:",
        "",
        *[f"- `{path.name}`" for path in audit.rules],
    ]


def render_html(audit: Audit) -> str:
    """The Markdown report as a self-contained HTML page."""
    body = _markdown_to_html(render_markdown(audit))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Fair-lending audit report</title>"
        "<style>body{font-family:sans-serif;max-width:70em;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left}</style>"
        f"</head><body>\n{body}\n</body></html>\n"
    )


def _markdown_to_html(text: str) -> str:
    out: list[str] = []
    table: list[list[str]] = []

    def flush() -> None:
        if table:
            head, *rows = table
            out.append("<table><thead><tr>" + "".join(f"<th>{c}</th>" for c in head) + "</tr></thead><tbody>")
            out.extend("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
            out.append("</tbody></table>")
            table.clear()

    for line in text.splitlines():
        if line.startswith("|"):
            if set(line) <= set("|-"):
                continue
            table.append([html.escape(cell.strip()) for cell in line.strip("|").split(" | ")])
            continue
        flush()
        level = len(line) - len(line.lstrip("#"))
        if level and line[level:level + 1] == " ":
            out.append(f"<h{level}>{html.escape(line[level + 1:])}</h{level}>")
        elif line.startswith("- "):
            out.append(f"<li>{html.escape(line[2:])}</li>")
        elif line:
            out.append(f"<p>{html.escape(line)}</p>")
    flush()
    return "\n".join(out)

