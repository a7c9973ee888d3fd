"""Race and ethnicity proxies: speed, and a validation in the manner of the CFPB's for BISG.

Speed: surnames, first names and ZIP codes of ``--rows`` applicants (drawn by ``synthetic.names``)
proxied with ``proxy_probabilities`` (the Census tables read once first, timed apart).

Validation: on synthetic registers whose race is known (``reason synth --names``), the per-lender
adjusted denial odds ratios and pricing gaps of the race and ethnicity comparisons of
``rules/audit.toml`` are computed twice: with the reported race, and with race hidden and estimated
(BIFSG from surname, first name and ZIP code; every applicant weighted by its probabilities). Per
comparison, over the lender x comparison rows estimated both ways: the bias (mean of the estimated
minus the reported log odds ratio, or pricing gap), the mean absolute difference, the correlation,
and the coverage (share of the estimated 95% CIs that contain the reported-race estimate); and
against the truth, for lenders that discriminate against the compared group, the share of them
whose estimate is significant at 5% both ways.

    python benchmarks/proxies.py                       # 1M rows for speed; 3 registers of 60,000
    python benchmarks/proxies.py --rows 100000 --applications 20000 --seeds 1
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from reasoner.lending.config import load_config
from reasoner.lending.evidence.statistics import lender_denial_odds, pricing_disparity
from reasoner.lending.evidence.tables import add_group_columns
from reasoner.lending.proxies.bayes import proxy_probabilities
from reasoner.lending.proxies.census import census_tables
from reasoner.lending.proxies.groups import group_weights
from reasoner.lending.proxies.register import ProxyColumns, with_proxies
from reasoner.lending.registers.hmda import clean_hmda
from reasoner.lending.synthetic.names import draw_names
from reasoner.lending.synthetic.synth import synthesize

COMPARED = {"black": "Black", "hispanic": "Hispanic", "asian": "Asian", "minority": "minority"}


def speed(rows: int) -> dict[str, float]:
    started = time.perf_counter()
    census_tables()
    loaded = time.perf_counter() - started
    rng = np.random.default_rng(0)
    group = rng.choice(5, rows, p=[0.6, 0.13, 0.18, 0.07, 0.02])
    state = rng.choice(np.array(["CA", "TX", "NY", "FL", "IL", "GA", "DC", "MS"], dtype=object), rows)
    names = draw_names(group, state, rng)
    started = time.perf_counter()
    frame, counts = proxy_probabilities(
        pd.Series(names["applicant_surname"]), pd.Series(names["applicant_first_name"]), pd.Series(names["zip_code"])
    )
    seconds = time.perf_counter() - started
    top = frame[["white", "black", "hispanic", "api", "aian"]].to_numpy().argmax(axis=1)
    accuracy = float((top == group).mean())
    return {"rows": rows, "tables_seconds": loaded, "proxy_seconds": seconds, "top_group_accuracy": accuracy,
            "no_source": counts.no_source}


def _estimates(frame: pd.DataFrame, config, weighted: bool) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    parts = []
    for comparison in config.comparisons:
        if comparison.name not in COMPARED:
            continue
        weights = None
        data = frame
        if weighted:
            found = group_weights(frame, comparison.column, (comparison.reference, *comparison.compared),
                                  config.majority_minority_percent)
            if found is not None:
                weights = {group: f"w {group}" for group in found}
                data = frame.assign(**{f"w {group}": values for group, values in found.items()})
        for kind, fit, model, estimate in (
            ("denial", lender_denial_odds, config.denial_model, "log_odds_ratio"),
            ("pricing", pricing_disparity, config.pricing_model, "adjusted_gap"),
        ):
            table = fit(data, comparison.column, comparison.reference, comparison.compared, model,
                        min_group=config.min_group, weights=weights)
            table = table.assign(comparison=comparison.name, kind=kind, estimate=table[estimate])
            if kind == "denial":
                table = table.assign(low=np.log(table["ci_low"]), high=np.log(table["ci_high"]))
            else:
                table = table.assign(low=table["ci_low"], high=table["ci_high"])
            parts.append(table[["lei", "comparison", "kind", "estimate", "low", "high", "p_value"]])
    return pd.concat(parts, ignore_index=True)


def validate(applications: int, lenders: int, seeds: list[int]) -> pd.DataFrame:
    config = load_config(__import__("reasoner.lending.audit.run", fromlist=["builtin_rules"]).builtin_rules()
                         / "audit.toml")
    rows = []
    for seed in seeds:
        raw, truth = synthesize(applications, lenders, seed, names=True)
        cleaned = clean_hmda(raw.drop(columns=["applicant_surname", "applicant_first_name", "zip_code"]).astype(str),
                             "synthetic").frame
        config_here = config.with_levels(cleaned)
        reported = _estimates(add_group_columns(cleaned, config.majority_minority_percent), config_here, False)
        hidden = cleaned.assign(race="Race Not Available", ethnicity="Ethnicity Not Available",
                                surname=raw["applicant_surname"].astype(str).to_numpy(),
                                first=raw["applicant_first_name"].astype(str).to_numpy(),
                                zip=raw["zip_code"].astype(str).to_numpy())
        hidden = hidden.drop(columns=["census_tract"])  # synthetic tracts are no Census tracts
        proxied, _ = with_proxies(hidden, ProxyColumns("surname", "first", "zip"), all_rows=True)
        estimated = _estimates(add_group_columns(proxied, config.majority_minority_percent), config_here, True)
        both = reported.merge(estimated, on=["lei", "comparison", "kind"], suffixes=("_reported", "_estimated"))
        both = both.merge(truth[["lei", "kind", "group"]].rename(columns={"kind": "truth"}), on="lei")
        both["seed"] = seed
        rows.append(both)
    return pd.concat(rows, ignore_index=True)


def summary(both: pd.DataFrame) -> pd.DataFrame:
    good = both[np.isfinite(both["estimate_reported"]) & np.isfinite(both["estimate_estimated"])]
    records = []
    for (kind, comparison), part in good.groupby(["kind", "comparison"], sort=True):
        difference = part["estimate_estimated"] - part["estimate_reported"]
        reported = part["estimate_reported"]
        covered = (part["low_estimated"] <= reported) & (reported <= part["high_estimated"])
        target = COMPARED[comparison]
        aimed = part["group"].isin([target, "minority"] if comparison != "minority" else ["minority"])
        planted = part[(part["truth"] == ("pricing" if kind == "pricing" else "disparate_treatment")) & aimed]
        records.append(
            {
                "model": kind,
                "comparison": comparison,
                "lender rows": len(part),
                "bias": difference.mean(),
                "mean |difference|": difference.abs().mean(),
                "correlation": np.corrcoef(part["estimate_estimated"], part["estimate_reported"])[0, 1],
                "CI coverage": covered.mean(),
                "planted found (reported)": (planted["p_value_reported"] < 0.05).mean() if len(planted) else np.nan,
                "planted found (estimated)": (planted["p_value_estimated"] < 0.05).mean() if len(planted) else np.nan,
                "planted lenders": len(planted),
            }
        )
    return pd.DataFrame(records)


def markdown(table: pd.DataFrame) -> str:
    """The table as Markdown (numbers to three decimals)."""
    def cell(value: object) -> str:
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--applications", type=int, default=60_000)
    parser.add_argument("--lenders", type=int, default=30)
    parser.add_argument("--seeds", type=int, default=3)
    options = parser.parse_args()
    print("speed:", speed(options.rows))
    both = validate(options.applications, options.lenders, list(range(1, options.seeds + 1)))
    table = summary(both)
    print(markdown(table))


if __name__ == "__main__":
    main()
