"""The lending report's model section: the model evidence the rules weighed, per lender.

Present only when the audit was given ``--model-evidence`` (``Audit.model_evidence``); the
report is unchanged otherwise. Per lender with model evidence: the twins, flips and flip rate
(exact 95% interval) of the model on the lender's applicants, disparate impact ratios below
four-fifths, example flipped twins, and whether the lender was flagged; in HTML a forest plot
of the flip rates.
"""

from __future__ import annotations

from reasoner.lending.audit.run import Audit
from reasoner.reporting import Point, figure, forest, html_table, inline_html, markdown_table

__all__ = ["model_section_html", "model_section_markdown"]

MAX_EXAMPLES = 3


def _rows(audit: Audit) -> list[tuple[object, ...]]:
    assert audit.model_evidence is not None
    rates = audit.model_evidence["model_flip_rates"]
    flips = audit.model_evidence["model_flips"]
    metrics = audit.model_evidence["model_metrics"]
    verdicts = audit.findings.lenders.set_index("lei")
    rows: list[tuple[object, ...]] = []
    for r in rates[rates["via"] == "attribute"].itertuples(index=False):
        mine = flips[(flips["lei"] == r.lei) & (flips["attribute"] == r.attribute) & (flips["via"] == "attribute")]
        breaches = metrics[
            (metrics["lei"] == r.lei)
            & (metrics["attribute"] == r.attribute)
            & (metrics["metric"] == "disparate_impact")
            & (metrics["ci_high"] < 0.8)
        ]
        tier = verdicts.loc[r.lei, "risk_tier"] if r.lei in verdicts.index else "not in the facts"
        examples = "; ".join(
            f"denies the {f.denied_group} twin and approves the {f.approved_group} twin of applicant {f.application_id}"
            for f in mine.sort_values(["score_shift", "application_id"], ascending=[False, True], kind="stable")
            .drop_duplicates("application_id")
            .head(MAX_EXAMPLES)
            .itertuples(index=False)
        )
        rows.append(
            (
                r.lei,
                r.attribute,
                int(r.twins),
                int(r.flips),
                f"{100 * r.flip_rate:.2f}% ({100 * r.ci_low:.2f}–{100 * r.ci_high:.2f}%)",
                ", ".join(f"{b.group} {b.value:.2f}" for b in breaches.itertuples(index=False)) or "none",
                tier,
                examples or "–",
            )
        )
    return rows


HEADERS = (
    "lender",
    "attribute",
    "base applicants",
    "flips",
    "flip rate (exact 95% CI)",
    "DI < 0.8 (CI)",
    "tier",
    "the model …",
)


def _intro(audit: Audit) -> str:
    source = audit.model_source or {}
    return (
        f"Model evidence from `{source.get('path', '')}`: model `{source.get('model', '')}` (SHA-256 "
        f"`{source.get('model_sha256', '')}`). The rules of 70-model.mln weigh each flipped twin, the flip rate and "
        "four-fifths breaches as evidence of disparate treatment beside the statistics above."
    )


def model_section_markdown(audit: Audit) -> list[str]:
    if audit.model_evidence is None:
        return []
    return ["## Model evidence", "", _intro(audit), "", *markdown_table(HEADERS, _rows(audit))]


def model_section_html(audit: Audit) -> list[str]:
    if audit.model_evidence is None:
        return []
    rates = audit.model_evidence["model_flip_rates"]
    rates = rates[rates["via"] == "attribute"]
    points = [
        Point(f"{r.lei[:8]}… {r.attribute.removeprefix('derived_')}", r.flip_rate, r.ci_low, r.ci_high)
        for r in rates.itertuples(index=False)
        if isinstance(r.flip_rate, float)
    ]
    chart = forest(
        points,
        log=False,
        reference=0.0,
        axis="flip rate of the lender's model",
        left="",
        right="more flips",
        title="Counterfactual flip rates by lender",
    )
    return [
        '<section id="model">',
        "<h2>Model evidence</h2>",
        f"<p>{inline_html(_intro(audit))}</p>",
        figure(
            chart,
            "Share of the lender's applicants whose twins (identical but for the attribute) get different "
            "decisions from the model, with exact 95% intervals.",
        ),
        html_table(HEADERS, _rows(audit), numeric={2, 3}),
        "</section>",
    ]
