"""``ModelAudit`` → ``report.md`` and a self-contained ``report.html`` (inline SVG, no script).

Sections: the model and data (with digests), counterfactual twins (what was varied, which
columns followed the twin, flip rates per attribute and pair of groups with exact intervals,
the twins that flipped), group fairness metrics (AIF360 names, bootstrap intervals), the
reweighing weights when asked for, and the method. Charts use ``reasoner.reporting``'s forest
plot: flip rates (reference 0) and disparate impact ratios on a log axis (reference 0.8, the
four-fifths rule).
"""

from __future__ import annotations

import math

import pandas as pd

from reasoner import __version__
from reasoner.model.audit import ModelAudit
from reasoner.model.metrics import FOUR_FIFTHS, four_fifths_breaches
from reasoner.model.twins import PROXY_SUFFIX
from reasoner.reporting import (
    Point,
    escape_html,
    escape_markdown,
    figure,
    forest,
    html_table,
    markdown_code,
    markdown_table,
    number,
)

__all__ = ["FOUR_FIFTHS", "MAX_FLIPS_LISTED", "flip_sentence", "render_model_html", "render_model_markdown"]

MAX_FLIPS_LISTED = 20


def flip_sentence(row: object) -> str:
    """'the model denies the Black or African American twin and approves the White twin of applicant 12'."""
    attribute = str(row.attribute)  # type: ignore[attr-defined]
    via = (
        f" ({attribute.removesuffix(PROXY_SUFFIX)}, with the proxies following the twin)"
        if attribute.endswith(PROXY_SUFFIX)
        else f" ({attribute})"
    )
    return (
        f"the model denies the {row.denied_group} twin and approves the {row.approved_group} twin "  # type: ignore[attr-defined]
        f"of applicant {row.application_id}{via}"  # type: ignore[attr-defined]
    )


def _listed_flips(result: ModelAudit) -> pd.DataFrame:
    """The flips to list: largest score shifts first, flips of the attribute alone before those through proxies."""
    flips = result.flips.assign(_proxy=result.flips["attribute"].str.endswith(PROXY_SUFFIX))
    ordered = flips.sort_values(
        ["_proxy", "score_shift", "application_id"], ascending=[True, False, True], kind="stable"
    )
    return ordered.drop_duplicates(["_proxy", "application_id"]).head(MAX_FLIPS_LISTED)


def _rates(result: ModelAudit) -> pd.DataFrame:
    return result.flip_rates[result.flip_rates["scope"] == "model"]


def _metrics(result: ModelAudit) -> pd.DataFrame:
    return result.metrics[result.metrics["scope"] == "model"]


def _header(result: ModelAudit) -> list[str]:
    model = result.model
    bases = "synthetic base profiles drawn from" if result.synthetic else "base applicants from"
    return [
        f"Model: `{model.name}` ({model.kind}, SHA-256 `{model.sha256 or 'n/a'}`).",
        f"Data: {bases} `{result.data.name}` (SHA-256 `{result.data_sha256}`); protected attributes: "
        + ", ".join(f"`{name}` (reference {result.references[name]!r})" for name in result.protected)
        + ".",
        f"{len(result.twins):,} twins; {len(result.flips):,} flipped pairs of twins.",
    ]


def _rate_rows(result: ModelAudit) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for r in _rates(result).itertuples(index=False):
        pair = "any two groups" if r.group_a == "*" else f"{r.group_a} / {r.group_b}"
        rows.append(
            (
                r.attribute,
                pair,
                r.twins,
                r.flips,
                f"{100 * r.flip_rate:.2f}%",
                f"{100 * r.ci_low:.2f}–{100 * r.ci_high:.2f}%",
                r.mean_abs_score_shift,
                r.max_abs_score_shift,
            )
        )
    return rows


RATE_HEADERS = (
    "attribute",
    "groups",
    "base applicants",
    "flips",
    "flip rate",
    "95% CI (exact)",
    "mean |score shift|",
    "max |score shift|",
)
METRIC_HEADERS = ("attribute", "group", "reference", "metric", "value", "95% CI (bootstrap)", "rows", "reference rows")


def _metric_rows(result: ModelAudit) -> list[tuple[object, ...]]:
    return [
        (
            r.attribute,
            "all groups (Fairlearn)" if r.group == "*" else r.group,
            "–" if r.reference == "*" else r.reference,
            r.metric,
            r.value,
            f"{number(r.ci_low)} to {number(r.ci_high)}",
            r.rows,
            r.reference_rows if r.reference != "*" else "–",
        )
        for r in _metrics(result).itertuples(index=False)
    ]


def _breaches(result: ModelAudit) -> pd.DataFrame:
    return four_fifths_breaches(_metrics(result))


def _method() -> list[str]:
    return [
        "- Twins: every column other than the protected attribute is held fixed (financials, geography, the tract's "
        "minority share, names, co-applicant fields, the other protected attributes); HMDA fields that encode the same "
        "attribute of the applicant follow the twin (see the README). A flip is a pair of twins of one applicant, one "
        "approved and one denied.",
        "- Flip-rate intervals: exact (Clopper–Pearson) binomial 95% intervals, scipy.stats.binomtest.",
        "- Group metrics: AIF360 definitions (disparate impact = favourable rate of the group / of the reference; "
        "statistical parity difference = the difference; equal opportunity difference = TPR difference; average odds "
        "difference = mean of the FPR and TPR differences); 95% stratified bootstrap percentile intervals with a "
        "fixed seed.",
        "- Four-fifths rule: a disparate impact ratio below 0.8 is a breach; the lending audit's rules count it as "
        "evidence when the whole interval is below 0.8.",
    ]


def render_model_markdown(result: ModelAudit) -> str:
    out = ["# Model audit report", ""]
    out += [f"{line}  " for line in _header(result)]
    out += ["", "## Counterfactual twins", ""]
    for name in result.protected:
        followed = ", ".join(markdown_code(c) for c in result.followed.get(name, ())) or "none"
        groups = ", ".join(escape_markdown(group) for group in result.groups[name])
        out.append(f"- {markdown_code(name)}: groups {groups}; columns that follow the twin: {followed}.")
    out += ["", *markdown_table(RATE_HEADERS, _rate_rows(result)), ""]
    if len(result.flips):
        listed = _listed_flips(result)
        out += [
            f"Twins that flipped ({len(listed)} applicants with the largest score shifts, of {len(result.flips):,} "
            "flipped pairs; flips.parquet has all):",
            "",
        ]
        for r in listed.itertuples(index=False):
            shift = (
                "" if math.isnan(r.score_shift) else f" (score {number(r.denied_score)} → {number(r.approved_score)})"
            )
            out.append(f"- {escape_markdown(flip_sentence(r))}{shift}")  # groups and ids from the data
        out.append("")
    else:
        out += ["No twins flipped: the model's decision never depends on the protected attributes alone.", ""]
    out += ["## Group fairness metrics", ""]
    metrics = _metrics(result)
    if len(metrics):
        out += [*markdown_table(METRIC_HEADERS, _metric_rows(result)), ""]
        breaches = _breaches(result)
        for r in breaches.itertuples(index=False):
            out.append(
                f"- Four-fifths rule breached: {escape_markdown(r.attribute)} = {escape_markdown(r.group)}, disparate "
                f"impact {number(r.value)} "
                f"(95% CI {number(r.ci_low)} to {number(r.ci_high)})."
            )
        out.append("")
    else:
        out += ["No group has enough rows for the metrics.", ""]
    if result.weights is not None:
        weights = result.weights.groupby(["group", "outcome"], dropna=True)["weight"].first().reset_index()
        out += [
            "## Kamiran–Calders reweighing",
            "",
            "weights.parquet holds one weight per training row; the weight of each cell:",
            "",
        ]
        out += [*markdown_table(("group", "outcome", "weight"), weights.itertuples(index=False)), ""]
    out += ["## Method", "", *_method(), "", f"Generated by reasoner {__version__}."]
    return "\n".join(out) + "\n"


def _rate_chart(result: ModelAudit) -> str:
    """One row per attribute (a base applicant flips when any two of its twins differ); the pairs are in the table."""
    rates = _rates(result)
    points = [
        Point(str(r.attribute), r.flip_rate, r.ci_low, r.ci_high)
        for r in rates[rates["group_a"] == "*"].itertuples(index=False)
    ]
    return forest(
        points,
        log=False,
        reference=0.0,
        axis="flip rate (share of base applicants)",
        left="",
        right="more flips",
        title="Counterfactual flip rates",
    )


def _impact_chart(result: ModelAudit) -> str:
    metrics = _metrics(result)
    points = [
        Point(f"{r.group}", r.value, r.ci_low, r.ci_high)
        if r.value > 0 and math.isfinite(r.value)
        else Point(r.group, math.nan, math.nan, math.nan, "no favourable decisions")
        for r in metrics[metrics["metric"] == "disparate_impact"].itertuples(index=False)
    ]
    return forest(
        points,
        log=True,
        reference=FOUR_FIFTHS,
        axis="disparate impact ratio (log scale)",
        left="four-fifths breached",
        right="",
        title="Disparate impact by group",
    )


CSS = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:0 auto;padding:1rem 1.5rem;color:#1f2328;"
    "line-height:1.45}"
    "table{border-collapse:collapse;font-size:.86rem}"
    "th,td{border-bottom:1px solid #d8dde3;padding:.3rem .55rem;text-align:left}"
    "td.num,th.num{text-align:right}figcaption{color:#5f6b76;font-size:.84rem}svg.chart{display:block;max-width:100%;height:auto}"
    "code{font-size:.85em}"
)


def render_model_html(result: ModelAudit) -> str:
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        f"<title>Model audit report — {escape_html(result.model.name)}</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>Model audit report</h1>",
        *(f"<p>{escape_html(line).replace('`', '')}</p>" for line in _header(result)),
        "<h2>Counterfactual twins</h2>",
        figure(
            _rate_chart(result),
            "Share of base applicants whose twins get different decisions (any two groups), with exact 95% intervals; "
            "the pairs of groups are in the table.",
        ),
        html_table(RATE_HEADERS, _rate_rows(result), numeric={2, 3, 4, 6, 7}),
    ]
    if len(result.flips):
        top = _listed_flips(result)
        out.append(
            "<ul>" + "".join(f"<li>{escape_html(flip_sentence(r))}</li>" for r in top.itertuples(index=False)) + "</ul>"
        )
    out.append("<h2>Group fairness metrics</h2>")
    if len(_metrics(result)):
        out.append(
            figure(
                _impact_chart(result),
                "Disparate impact ratio of each group against its reference, 95% bootstrap intervals; "
                "dashed: 0.8 (four-fifths rule).",
            )
        )
        out.append(html_table(METRIC_HEADERS, _metric_rows(result), numeric={4, 6, 7}))
    out += ["<h2>Method</h2>", "<ul>" + "".join(f"<li>{escape_html(line[2:])}</li>" for line in _method()) + "</ul>"]
    out += [
        f"<footer>Generated by reasoner {escape_html(__version__)}. "
        "Self-contained: no script, font or image is loaded.</footer>",
        "</body></html>",
    ]
    return "\n".join(out) + "\n"
