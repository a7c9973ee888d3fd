"""``reason explain OUT ID``: the derivation of one audit finding, in prose a reader can check.

``explain_finding(out, identifier)`` looks ``identifier`` up in ``OUT/explanations.parquet``
through its index (``outputs.explanation_file``: a few row groups are read, whatever the size of
the audit):

- an application id: per finding of that application, the finding with its confidence and margin,
  the facts in plain words (its decision and group, its similarly situated comparators, the
  lender's statistics the rules rely on), then every ground formula for and against it with its
  rule, file:line, weight, substitution and the evidence atoms with their sources;
- the LEI of a flagged lender: the verdict, tier, risk score and confidence, the application
  findings at the lender, then per violation its statistics (odds ratios with CI and p, McNemar
  counts, rate-spread gaps, redlining shares) and its ground formulas, then the verdict's own;
- the LEI of a lender that was not flagged (``OUT/lenders.parquet``): that it was not, with its
  tier, score and confidence.

An unknown id is a ``UsageError`` with the closest known ids. ``explanation_json(out, identifier)``
gives the records themselves, as JSON lines (``reason explain OUT ID --format jsonl``), and
``explanations_jsonl(out)`` every record (``--all``). Paths are printed as file names
(``10-matched-pair.mln:29``), so the text does not depend on where the audit ran. When the rule
files and ``audit.toml`` named in ``manifest.json`` are found unchanged (same SHA-256), the text
also quotes the predicates' declared meanings, the groups of each comparison and the cut-offs of
the confidence labels; files changed since the audit are named instead.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from reasoner.constants import GROUND_ATOM
from reasoner.errors import ReasonerError, UsageError, printable, suggestions
from reasoner.lending.evidence.kinds import STATISTIC_TABLES, VIOLATION_TABLES, evidence_kind
from reasoner.lending.outputs.explanation_file import EXPLANATIONS, Found, every_id, find, json_lines, rows_where
from reasoner.reporting.numbers import number

__all__ = ["explain_finding", "explanation_json", "explanations_jsonl"]

# Race and ethnicity estimated (BISG/BIFSG, ``reasoner.lending.proxies``): said in words a lawyer can repeat.
ESTIMATED_LABELS = {
    "white": "White non-Hispanic",
    "black": "Black",
    "hispanic": "Hispanic",
    "api": "Asian or Pacific Islander",
    "aian": "American Indian or Alaska Native",
    "multiracial": "multiracial",
}
ESTIMATED_NOTE = (
    " (race and ethnicity estimated, not reported: counts are sums of each applicant's estimated probability "
    "of the group, and the model weighs applicants by them)"
)
PAIRS_ESTIMATED_NOTE = (
    " (race and ethnicity estimated, not reported: only applicants whose most probable group reaches the "
    "audit's threshold are paired)"
)

Record = dict[str, Any]

LENDERS = "lenders.parquet"
APPLICATIONS = "applications.parquet"
MANIFEST = "manifest.json"
INSUFFICIENT = "INSUFFICIENT_EVIDENCE"
TOP_APPLICATIONS = 5
SUGGESTIONS = 3
LEGEND = (
    "A ground formula is a rule with its variables replaced by this case's values. In the most probable",
    "world, each one of positive weight w that holds makes the world e^w times more probable; one of",
    "negative weight, e^|w| times less probable; a hard rule holds in every world considered. Evidence",
    "sources: the input file and row, a statistics table and row, or the rule that derived the atom;",
    "[inferred] is a value chosen by the most probable world, [closed world] an atom absent from the evidence.",
)

_DECLARATION = re.compile(r"([A-Z][A-Za-z0-9_]*)\(([^()]*)\)\s*(?://\s*(.*))?$")
_CONTINUATION = re.compile(r"\s+//\s*(.*)$")
_ARGUMENT = re.compile(r'"(?:[^"\\]|\\.)*"|[^,]+')
_PATH = re.compile(r"[^\s\[\]()]*/([^\s/\[\]()]+)")


# -- the audit's settings --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Gloss:
    """A predicate's declaration in a rule file and its comment."""

    signature: str
    meaning: str
    location: str


@dataclass(frozen=True, slots=True)
class Context:
    """What the text needs besides the record: the output directory and the audit's settings."""

    out: Path
    facts: str  # the input file's name, for citations
    groups: dict[str, tuple[str, str]] = field(default_factory=dict)  # comparison → (compared, reference)
    covariates: tuple[str, ...] = ()
    pricing_covariates: tuple[str, ...] = ()
    confidence: tuple[tuple[str, float], ...] = ()  # (label, lowest margin), highest first
    glosses: dict[str, Gloss] = field(default_factory=dict)
    changed: tuple[str, ...] = ()  # names of rule files missing or changed since the audit

    def compared(self, comparison: str, fallback: str = "") -> str:
        if comparison in self.groups:
            return self.groups[comparison][0]
        return fallback or "compared-group"

    def reference(self, comparison: str) -> str:
        return self.groups[comparison][1] if comparison in self.groups else "reference-group"

    def describe(self, comparison: str) -> str:
        """``minority, Minority against White non-Hispanic``; the name alone when audit.toml is not at hand."""
        if comparison not in self.groups:
            return comparison
        return f"{comparison}, {self.compared(comparison)} against {self.reference(comparison)}"


def _context(out: Path) -> Context:
    """The settings of the audit that wrote ``out``, from the files its manifest names if unchanged."""
    try:
        manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return Context(out, "the input")
    inputs = manifest.get("inputs", [])
    facts = next((Path(item["path"]).name for item in inputs if item.get("kind") == "facts"), "the input")
    found: list[Path] = []
    changed: list[str] = []
    for item in manifest.get("rules", []):
        path = _unchanged(Path(item["path"]), str(item.get("sha256", "")), out)
        if path is None:
            changed.append(Path(item["path"]).name)
        else:
            found.append(path)
    context = Context(out, facts, glosses=_glosses(p for p in found if p.suffix == ".mln"), changed=tuple(changed))
    config = next((path for path in found if path.suffix == ".toml"), None)
    return _with_config(context, config) if config else context


def _unchanged(path: Path, sha256: str, out: Path) -> Path | None:
    """``path`` (as is, or relative to the directory holding ``out``) if its SHA-256 is ``sha256``."""
    candidates = [path] if path.is_absolute() else [path, out.resolve().parent / path]
    for candidate in candidates:
        try:
            if candidate.is_file() and _sha256(candidate) == sha256:
                return candidate
        except OSError:
            continue
    return None


def _with_config(context: Context, path: Path) -> Context:
    from reasoner.lending.config import load_config

    try:
        config = load_config(path)
    except (ReasonerError, OSError):
        return context
    return dataclasses.replace(
        context,
        groups={c.name: (" or ".join(c.compared), c.reference) for c in config.comparisons},
        covariates=config.denial_model.phrases(),
        pricing_covariates=config.pricing_model.phrases(),
        confidence=config.confidence,
    )


def _glosses(paths: Iterable[Path]) -> dict[str, Gloss]:
    """Predicate → its declaration: a line ``Name(types)  // meaning``; indented comment lines continue it."""
    glosses: dict[str, Gloss] = {}
    for path in paths:
        lines = path.read_text(encoding="utf-8").splitlines()
        for at, line in enumerate(lines):
            match = _DECLARATION.match(line)
            if not match or match.group(1) in glosses:
                continue
            meaning = [match.group(3) or ""]
            for following in lines[at + 1 :] if meaning[0] else []:
                more = _CONTINUATION.match(following)
                if not more:
                    break
                meaning.append(more.group(1))
            signature = f"{match.group(1)}({match.group(2).strip()})"
            glosses[match.group(1)] = Gloss(signature, " ".join(meaning).strip(), f"{path.name}:{at + 1}")
    return glosses


# -- finding the record ----------------------------------------------------------------------------


def explain_finding(out: Path, identifier: str) -> str:
    """The derivation of the finding ``identifier`` (an application id or a LEI) of the audit in
    ``out``. Ids are compared as parsed, whatever quotes, backslashes or control characters they
    hold; every value from the data is shown with its control characters escaped (``\\n``), so
    that a value is one line of the text."""
    out = Path(out)
    identifier = str(identifier).strip()
    found = _found(out, identifier)
    if found and found[0].finding == "lender":
        return _lender_text(_escaped(found[0].record), _escaped(_lender_row(out, identifier)), _context(out))
    if found:
        context = _context(out)
        lei = str(found[0].record.get("lei", ""))
        lenders = find(out, lei, "lender")
        lender = _escaped(lenders[0].record) if lenders else None
        row = _escaped(_lender_row(out, lei))
        return "\n\n".join(_application_text(_escaped(item.record), lender, row, context) for item in found)
    row = _lender_row(out, identifier)
    if row is not None:
        return _unflagged_text(_escaped(row), _context(out))
    raise UsageError(_unknown(out, identifier))


def explanation_json(out: Path, identifier: str) -> str:
    """The explanation records of ``identifier`` as JSON lines, as the audit wrote them."""
    out = Path(out)
    identifier = str(identifier).strip()
    found = _found(out, identifier)
    if not found:
        raise UsageError(_unknown(out, identifier))
    return "".join(item.text + "\n" for item in found)


def explanations_jsonl(out: Path) -> Iterator[str]:
    """Every explanation record of the audit in ``out`` as JSON lines, in chunks of whole lines."""
    out = Path(out)
    _explanations(out)
    return json_lines(out)


def _found(out: Path, identifier: str) -> list[Found]:
    """The records of ``identifier``: a flagged lender's one record, else the application's (one per kind)."""
    _explanations(out)
    found = find(out, identifier)
    if found and found[0].finding == "lender":
        return found[:1]
    return [item for item in found if item.finding == "application"]


def _escaped(value: Any) -> Any:
    """``value`` (a record) with the control characters of its texts escaped."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {key: _escaped(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_escaped(item) for item in value]
    return value


def _explanations(out: Path) -> Path:
    if not out.is_dir():
        raise UsageError(f"{out}: no such directory; give the output directory of an audit (reason RULES FACTS -o OUT)")
    path = out / EXPLANATIONS
    if not path.is_file():
        raise UsageError(f"{path}: not found; is {out} the output directory of an audit (reason RULES FACTS -o OUT)?")
    return path


def _lender_row(out: Path, lei: str) -> Record | None:
    rows = _parquet_rows(out / LENDERS, "lei", lei)
    return rows[0] if rows else None


def _parquet_rows(path: Path, column: str, value: str) -> list[Record]:
    """The rows of a parquet output whose ``column`` (as text) is ``value``; none if the file is unreadable."""
    return rows_where(path, column, value)


def _unknown(out: Path, identifier: str) -> str:
    path = out / EXPLANATIONS
    known = set(every_id(out))
    try:
        known.update(str(lei) for lei in pq.read_table(out / LENDERS, columns=["lei"])["lei"].to_pylist())
    except (OSError, ValueError, KeyError):
        pass
    ordered = sorted(known)
    message = f"'{identifier}' is neither an application with a finding in {path} nor a lender of {out / LENDERS}"
    close = suggestions(identifier, [item for item in ordered if item != identifier], n=SUGGESTIONS)
    if close:
        return f"{message}; did you mean {_listing([repr(item) for item in close], 'or')}?"
    if ordered:
        examples = ", ".join(repr(item) for item in ordered[:SUGGESTIONS])
        return f"{message}; {len(ordered):,} ids are known, e.g. {examples}"
    return f"{message}; the audit has no findings"


# -- applications ----------------------------------------------------------------------------------


def _application_text(record: Record, lender: Record | None, lender_row: Record | None, context: Context) -> str:
    proof = record.get("proof") or {}
    atom = proof.get("atom", "the finding")
    facts = _facts_name(record, context)
    lines = [
        f"Application {record.get('application_id')} (input row {record.get('row')} of {facts}) "
        f"at lender {record.get('lei')}",
        f"Finding: {record.get('kind')}{_meaning(atom, context)}: {atom} is "
        f"{_truth(proof.get('value', True))} in the most probable world.",
        _confidence_sentence(record.get("confidence"), record.get("margin"), proof, context),
        f"Violation score {_number(record.get('violation_score'))}: the weights of the ground formulas for it, "
        "added up.",
        "",
        "Why, in plain words:",
    ]
    lines += _bullets(_application_facts(record, facts, context))
    lines += _bullets(_comparator_lines(record, proof, facts, context))
    lines += _bullets(_lender_lines(record, proof, lender, lender_row, context))
    lines += ["", f"How the rules weigh it (proof of {atom}):", *(f"  {line}" for line in LEGEND)]
    lines += _proof_lines(proof, "  ")
    lines += _glossary(_atoms(proof), context)
    return "\n".join(lines)


def _facts_name(record: Record, context: Context) -> str:
    source = str(record.get("source") or "")
    return _short(source.rsplit(" row ", 1)[0]) if " row " in source else context.facts


def _application_facts(record: Record, facts: str, context: Context) -> list[str]:
    cite = f"[{facts} row {record.get('row')}]"
    rows = _parquet_rows(context.out / APPLICATIONS, "application_id", str(record.get("application_id")))
    if not rows:
        return [f"The application is row {record.get('row')} of {facts} {cite}."]
    row = rows[0]
    source = str(row.get("race_source") or "")
    if source.startswith("estimated"):  # never stated as a fact: the probabilities, named as estimates
        shares = ", ".join(
            f"{label} {_percent(row.get(f'estimated_{race}'))}" for race, label in ESTIMATED_LABELS.items()
        )
        return [
            f"The application was {row.get('decision')}; the applicant's race and ethnicity were not reported: "
            f"{source} (BISG/BIFSG), the estimated probabilities are {shares}; sex {row.get('sex')} {cite}."
        ]
    applicant = f"{row.get('race_ethnicity')}, {row.get('sex')}"
    return [f"The application was {row.get('decision')}; the applicant is {applicant} {cite}."]


def _comparator_lines(record: Record, proof: Record, facts: str, context: Context) -> list[str]:
    comparators = record.get("comparators") or []
    if not comparators:
        return ["No similarly situated applicant of a reference group was found for it."]
    cited = {argument for item in _atoms(proof) for argument in _arguments(item["atom"])}
    by_id: dict[str, list[Record]] = {}
    for item in comparators:
        by_id.setdefault(str(item["application_id"]), []).append(item)
    names = sorted({str(item["comparison"]) for item in comparators})
    groups = "; ".join(context.describe(name) for name in names)
    lines = [
        f"Comparisons: {groups}." if context.groups else f"Comparisons (as declared in audit.toml): {groups}.",
        "Similarly situated applicants of the reference groups at the same lender, nearest first "
        "(distance in robust standard units; * marks those the rules below cite):",
    ]
    for identifier, items in sorted(by_id.items(), key=lambda entry: (float(entry[1][0]["distance"]), entry[0])):
        first = items[0]
        mark = "*" if identifier in cited else " "
        ranks = ", ".join(f"{item['comparison']} #{item['rank']}" for item in items)
        lines.append(
            f"  {mark} {identifier}, {first.get('decision') or 'no decision'}, "
            f"distance {_number(first['distance'], 2)} [{facts} row {first.get('row')}]; "
            f"nearest reference applicants in {ranks}"
        )
    return lines


def _lender_lines(
    record: Record, proof: Record, lender: Record | None, row: Record | None, context: Context
) -> list[str]:
    """The lender's standing and the rows of its statistics that the proof's evidence comes from."""
    lei = record.get("lei")
    if lender is None:
        state = f"was not found in {LENDERS}"
        if row is not None:
            score = _number(row["risk_score"])
            state = f"was not flagged ({row['risk_tier']}, risk score {score}, {row['confidence']})"
        return [f"The lender {lei} {state}; {EXPLANATIONS} holds the statistics of flagged lenders only."]
    atoms = _atoms(proof)
    cited = {_table_of(str(item.get("source"))) for item in atoms}
    mentioned = {argument for item in atoms for argument in _arguments(item["atom"])}
    lines = [
        f"The lender {lei} was flagged: {lender.get('risk_tier')}, risk score {_number(lender.get('risk_score'))}, "
        f"{lender.get('confidence')}; violations: {', '.join(lender.get('violations') or []) or 'none'}."
    ]
    for table in (name for name in STATISTIC_TABLES if name in cited):
        rows = [item for item in (lender.get("statistics") or {}).get(table, []) if _key(item) in mentioned]
        lines += _statistics_lines(table, rows, context, "  ")
    return lines


# -- lenders ---------------------------------------------------------------------------------------


def _lender_text(record: Record, row: Record | None, context: Context) -> str:
    proof = record.get("proof") or {}
    violations = [str(label) for label in record.get("violations") or []]
    lines = [
        f"Lender {record['lei']}: flagged ({proof.get('atom', 'its verdict')} is true in the most probable world).",
        f"Tier {record.get('risk_tier')}; risk score {_number(record.get('risk_score'))}"
        f"{_risk(record.get('risk_interval'))}.",
        _confidence_sentence(record.get("confidence"), record.get("margin"), proof, context, record),
        f"Violations found: {', '.join(violations) or 'none'}.",
        *_lender_summary(row, context),
    ]
    atoms = _atoms(proof)
    proofs = record.get("violation_proofs") or {}
    for nth, label in enumerate(violations, start=1):
        violation = proofs.get(label) or {}
        atoms += _atoms(violation)
        lines += ["", f"Violation {nth} of {len(violations)}: {label}{_meaning(violation.get('atom', ''), context)}"]
        lines += _violation_lines(label, violation, record.get("statistics") or {}, context)
    lines += ["", f"The verdict (proof of {proof.get('atom')}):", *(f"  {line}" for line in LEGEND)]
    lines += _proof_lines(proof, "  ")
    lines += _glossary(atoms, context)
    return "\n".join(lines)


def _lender_summary(row: Record | None, context: Context) -> list[str]:
    """Recommended action, applications and application findings, from ``lenders.parquet``."""
    if row is None:
        return []
    rate = row.get("denial_rate")
    denial = "" if _missing(rate) else f"; denial rate {_percent(rate)}"
    return [
        f"Recommended action: {row.get('recommended_action')}.",
        f"Applications: {_number(row.get('applications'))} in the input, "
        f"{_number(row.get('usable_applications'))} usable for the treatment rules{denial}.",
        *_power_and_effect(row, context),
        _application_findings(str(row["lei"]), int(row.get("flagged_applications") or 0), context),
    ]


POWER_TERMS = "two-sided test at alpha 0.05 with 80% power"


def _power_and_effect(row: Record, context: Context) -> list[str]:
    """The lender's power (the smallest detectable odds ratio) and the effect of the comparison
    that drives its finding, from ``lenders.parquet`` (``reasoner.lending.audit.verdicts``)."""
    lines = []
    status = row.get("verdict_status")
    power = row.get("min_detectable_odds_ratio")
    if status == "NOT_TESTED":
        lines.append(
            "Power: no comparison could be computed (no reference or compared applicants, or every "
            "application decided the same way), so nothing was tested."
        )
    elif not _missing(power):
        lines.append(
            f"Power: the smallest denial odds ratio its best comparison could detect is {_number(power, 2)} "
            f"({POWER_TERMS})"
            + (", so its tests could not have detected a doubling of the odds." if status == "UNDERPOWERED" else ".")
        )
    comparison = row.get("effect_comparison")
    if comparison and not _missing(row.get("marginal_effect")):
        name = str(comparison)
        compared = context.compared(name)
        lines.append(
            f"Denial effect ({context.describe(name)}): odds ratio {_number(row.get('odds_ratio'), 2)}; group "
            "membership "
            f"changes the {compared} applicants' denial probability by {_points(row.get('marginal_effect'))} "
            f"(95% CI {_points(row.get('marginal_effect_ci_low'))} to {_points(row.get('marginal_effect_ci_high'))}), "
            f"{_number(row.get('excess_denials'), 1)} denials beyond those the reference group's odds predict "
            f"(95% CI {_interval(row)})."
        )
    return lines


def _interval(row: Record) -> str:
    """The 95% interval of a row's excess denials."""
    return f"{_number(row.get('excess_denials_ci_low'), 1)} to {_number(row.get('excess_denials_ci_high'), 1)}"


def _points(value: object) -> str:
    """A probability difference in percentage points, signed."""
    number = _float(value)
    return "–" if math.isnan(number) else f"{number * 100:+.1f} points"


def _application_findings(lei: str, count: int, context: Context) -> str:
    if not count:
        return "Application findings: none."
    rows = _parquet_rows(context.out / APPLICATIONS, "lei", lei)
    kinds: dict[str, int] = {}
    for item in rows:
        kinds[str(item["finding"])] = kinds.get(str(item["finding"]), 0) + 1
    text = f"Application findings: {count:,}"
    if kinds:
        text += " (" + ", ".join(f"{number:,} {kind}" for kind, number in sorted(kinds.items())) + ")"
    rows.sort(key=lambda item: (-float(item["violation_score"]), str(item["application_id"])))
    strongest = "; ".join(
        f"{item['application_id']} ({item['finding']}, score {_number(item['violation_score'])}, {item['confidence']})"
        for item in rows[:TOP_APPLICATIONS]
    )
    if strongest:
        return f"{text}. Strongest: {strongest}. `reason explain OUT ID` prints any of them."
    return f"{text}."


def _violation_lines(label: str, proof: Record, statistics: Record, context: Context) -> list[str]:
    """The violation's statistics (only the rows its evidence names, when it names any) and its proof."""
    lines = []
    mentioned = {argument for item in _atoms(proof) for argument in _arguments(item["atom"])} | {POOLED}
    for table in VIOLATION_TABLES.get(label, STATISTIC_TABLES):
        rows = list(statistics.get(table, []))
        cited = [row for row in rows if _key(row) in mentioned]
        lines += _statistics_lines(table, cited or rows, context, "  ")
        others = len(rows) - len(cited)
        if table == "redlining":  # several rows (bands, measures) per market
            others = len({_key(row) for row in rows} - {_key(row) for row in cited})
        if cited and others:
            lines.append(f"    ({others} other {_unit(table)} of this lender not cited by the rules)")
    lines += _model_flip_lines(proof)
    return lines + (_proof_lines(proof, "  ") if proof else ["  (no proof recorded)"])


MAX_FLIPS_SAID = 5


def _model_flip_lines(proof: Record) -> list[str]:
    """The counterfactual twins of the lender's model the proof cites (rules/70-model.mln), in words."""
    flips = []
    for item in _atoms(proof):
        if _predicate(str(item.get("atom"))) == "CounterfactualFlip" and item.get("value"):
            _lei, application, attribute, denied, approved = _arguments(str(item["atom"]))
            sentence = f"the model denies the {denied} twin and approves the {approved} twin of applicant {application}"
            flips.append(f"{sentence} ({attribute}) [{_short(str(item.get('source')))}]")
    if not flips:
        return []
    lines = [
        f"  The lender's model, on counterfactual twins (identical but for the protected attribute): {len(flips)} flips"
    ]
    lines += [f"    - {flip}" for flip in flips[:MAX_FLIPS_SAID]]
    if len(flips) > MAX_FLIPS_SAID:
        lines.append(f"    ({len(flips) - MAX_FLIPS_SAID} more below)")
    return lines


def _unflagged_text(row: Record, context: Context) -> str:
    margin = row.get("margin")
    if row.get("confidence") == INSUFFICIENT:
        confidence = (
            f"Confidence: {INSUFFICIENT}: no statistical test could be run for this lender, "
            f"so the rules had no evidence either way (margin {_number(margin)}: the presumption of compliance)."
        )
    elif row.get("verdict_status") == "UNDERPOWERED":
        confidence = (
            f"Confidence: {row.get('confidence')}: its comparisons were computed but none could have detected a "
            f"doubling of the denial odds, so not being flagged says little (margin {_number(margin)}: mostly the "
            "presumption of compliance)."
        )
    else:
        cutoff = _lender_cutoff(row.get("confidence"), row, False, context)
        confidence = f"Confidence: {row.get('confidence')}{cutoff}: " + (
            _margin_clause(margin, "the lender is flagged")
        )
    return "\n".join(
        [
            f"Lender {row['lei']}: not flagged ({EXPLANATIONS} has no lender finding for it); "
            f"verdict {row.get('verdict_status') or 'not recorded'}.",
            f"Tier {row.get('risk_tier')}; risk score {_number(row.get('risk_score'))}"
            f"{_risk(row.get('risk_interval'))}.",
            confidence,
            *_lender_summary(row, context),
        ]
    )


# -- statistics ------------------------------------------------------------------------------------

POOLED = "all markets"  # the market of a lender's pooled redlining rows, always shown with its cited markets


def _unit(table: str) -> str:
    kind = evidence_kind(table)
    return kind.unit if kind is not None else "rows"


def _key(row: Record) -> str:
    """What a statistics row is about: its comparison, its market or its interaction."""
    return str(row.get("comparison", row.get("market", row.get("interaction", ""))))


def _statistics_lines(table: str, rows: list[Record], context: Context, indent: str) -> list[str]:
    if not rows:
        return []
    heading, render = STATISTICS.get(table, (lambda _: f"{table}:", _generic_row))
    return [f"{indent}{heading(context)}", *(f"{indent}  - {render(row, context)}" for row in rows)]


def _denial_heading(context: Context) -> str:
    covariates = _listing(list(context.covariates), "and") or "the financials"
    return f"Denial odds adjusted for {covariates} (logistic regression, Wald test):"


def _pairs_heading(context: Context) -> str:
    return (
        "Matched pairs (nearest similar reference applicant; exact test of the discordant pairs against the "
        "split their financials predict, and McNemar's test against an even split):"
    )


def _pricing_heading(context: Context) -> str:
    covariates = _listing(list(context.pricing_covariates), "and") or "the loan terms"
    return (
        f"Rate spread of originated loans in percentage points, adjusted for {covariates} "
        "(least squares, HC3 robust standard errors, t test):"
    )


def _redlining_heading(context: Context) -> str:
    return (
        "Minority tracts against peer lenders of similar volume (applications: actions 1-5; one-sided Fisher "
        "exact tests per market, Holm-adjusted over the lender's markets; pooled: Mantel-Haenszel ratio and "
        "Cochran-Mantel-Haenszel test):"
    )


def _denial_row(row: Record, context: Context) -> str:
    name = str(row["comparison"])
    compared, reference = context.compared(name, str(row.get("group") or "")), context.reference(name)
    raw = (
        f"raw denial rates {_percent(row.get('compared_denial_rate'))} of "
        f"{_count(row.get('compared_applications'), compared + ' application')}, "
        f"{_percent(row.get('reference_denial_rate'))} of "
        f"{_count(row.get('reference_applications'), reference + ' application')}"
    )
    if row.get("groups_estimated"):
        raw += ESTIMATED_NOTE
    if row.get("reason") or _missing(row.get("odds_ratio")):
        return f"{name}: not tested ({row.get('reason') or 'no estimate'}); {raw}"
    text = (
        f"{name}: the odds of denying {compared} applicants are {_number(row['odds_ratio'], 2)} times those of "
        f"{reference} applicants (95% CI {_number(row.get('ci_low'), 2)}–{_number(row.get('ci_high'), 2)}, "
        f"p = {_p(row.get('p_value'))}{_holm(row)}); {raw}"
    )
    if not _missing(row.get("marginal_effect")):
        text += (
            f"; marginal effect {_points(row.get('marginal_effect'))}, "
            f"{_number(row.get('excess_denials'), 1)} excess denials "
            f"(95% CI {_interval(row)})"
        )
    if not _missing(row.get("min_detectable_odds_ratio")):
        text += f"; smallest detectable odds ratio {_number(row.get('min_detectable_odds_ratio'), 2)}"
    return text + _adjustment_notes(row, "odds of denial twice the reference group's", "equal odds")


def _adjustment_notes(row: Record, alternative: str, null: str) -> str:
    """What the fit could not adjust for at this lender, and the graded evidence the rules weigh."""
    text = ""
    if row.get("not_controlled"):
        text += f"; not adjusted for {row['not_controlled']} (the same for every applicant of this lender)"
    if row.get("strongest") == 1 and not _missing(row.get("llr")):
        text += (
            f"; the lender's strongest comparison: the data are e^{_number(row['llr'], 2)} times as likely under "
            f"{alternative} as under {null}, weight {_number(row.get('evidence_weight'), 2)} after the cost of "
            "looking at every comparison"
        )
    return text


def _pairs_row(row: Record, context: Context) -> str:
    name = str(row["comparison"])
    compared, reference = context.compared(name), context.reference(name)
    counts = (
        f"{_count(row.get('pairs'), 'matched pair')}: both approved {_number(row.get('both_approved'))}, "
        f"both denied {_number(row.get('both_denied'))}, only the {reference} applicant approved "
        f"{_number(row.get('reference_favoured'))}, only the {compared} applicant approved "
        f"{_number(row.get('compared_favoured'))}"
    )
    if row.get("groups_estimated"):
        counts += PAIRS_ESTIMATED_NOTE
    if row.get("reason") or _missing(row.get("p_value")):
        return f"{name}: not tested ({row.get('reason') or 'no discordant pair'}); {counts}"
    ratio = _number(row.get("discordant_ratio"), 2)
    return (
        f"{name}: {counts} (ratio {ratio}; the financials predict "
        f"{_number(row.get('expected_reference_favoured'), 1)} of the "
        f"{_number(row.get('discordant'))} discordant pairs to favour the {reference} applicant: adjusted ratio "
        f"{_number(row.get('adjusted_ratio'), 2)}, exact p = {_p(row.get('p_value'))}{_holm(row)}; McNemar p = "
        f"{_p(row.get('mcnemar_p_value'))})"
    )


def _pricing_row(row: Record, context: Context) -> str:
    name = str(row["comparison"])
    compared, reference = context.compared(name, str(row.get("group") or "")), context.reference(name)
    means = (
        f"mean spreads {_number(row.get('compared_mean_spread'))} over "
        f"{_count(row.get('compared_loans'), compared + ' loan')}, "
        f"{_number(row.get('reference_mean_spread'))} over {_count(row.get('reference_loans'), reference + ' loan')}"
    )
    if row.get("groups_estimated"):
        means += ESTIMATED_NOTE
    if row.get("reason") or _missing(row.get("adjusted_gap")):
        return f"{name}: not tested ({row.get('reason') or 'no estimate'}); {means}"
    interval = f"{_signed(row.get('ci_low'))} to {_signed(row.get('ci_high'))}"
    return (
        f"{name}: {compared} borrowers paid {_signed(row['adjusted_gap'])} points against {reference} borrowers "
        f"after adjustment (95% CI {interval}, p = {_p(row.get('p_value'))}{_holm(row)}; "
        f"raw gap {_signed(row.get('raw_gap'))}); "
        f"{means}"
    ) + _adjustment_notes(row, "a higher price of the configured gap", "equal prices")


def _redlining_row(row: Record, context: Context) -> str:
    measure = str(row.get("measure", "applications"))
    pooled = row.get("market_kind") == "pooled"
    where = f"{row.get('market')} ({row.get('market_kind')})"
    if pooled:
        where = f"{_count(row.get('markets'), 'market')} pooled"
    head = f"{where}, tracts over {_number(row.get('band'), 0)}% minority, {measure}"
    peers = "its peers" if pooled else f"{_count(row.get('peers'), 'peer lender')} ({row.get('peer_basis')})"
    share = (
        f"{_percent(row.get('share'))} of its {_number(row.get('count'))} against {_percent(row.get('peer_share'))} "
        f"of {_number(row.get('peer_count'))} at {peers}"
    )
    if row.get("reason") or _missing(row.get("p_value")):
        return f"{head}: not tested ({row.get('reason') or 'no estimate'}); {share}"
    if pooled:
        test = f"Mantel-Haenszel ratio {_number(row.get('share_ratio'), 2)}, one-sided CMH p = {_p(row.get('p_value'))}"
        set_aside = [
            _count(row.get(name), noun)
            for name, noun in (
                ("purchased", "purchased loan"),
                ("preapprovals", "preapproval request"),
                ("other_segments", "loan of another segment"),
                ("unplaced", "application without tract or market"),
                ("outside_area", "application outside the assessment area"),
            )
            if not _missing(row.get(name)) and float(row[name]) > 0
        ]
        if set_aside:
            test += f"; set aside: {', '.join(set_aside)}"
    else:
        test = (
            f"ratio {_number(row.get('share_ratio'), 2)}, one-sided Fisher p = {_p(row.get('p_value'))}, "
            f"{_p(row.get('p_adjusted'))} adjusted over its markets (Holm)"
        )
    return f"{head}: {share} ({test})"


def _interactions_heading(context: Context) -> str:
    covariates = _listing(list(context.covariates), "and") or "the financials"
    return (
        "Interaction of two bases (logistic regression of denial on minority, the second basis and their product, "
        f"adjusted for {covariates}; Wald test of the product):"
    )


_SECOND_BASIS = {
    "race_sex": ("women", "men", "minority women"),
    "race_tract": ("majority-minority tracts", "other tracts", "minority applicants in majority-minority tracts"),
}


def _interactions_row(row: Record, context: Context) -> str:
    name = str(row["interaction"])
    second, other, both = _SECOND_BASIS.get(name, ("the second basis", "the rest", "applicants of both bases"))
    rates = (
        f"raw denial rates: {both} {_percent(row.get('both_denial_rate'))} of {_number(row.get('both_applications'))}, "
        f"other minority applicants {_percent(row.get('minority_only_denial_rate'))} of "
        f"{_number(row.get('minority_only_applications'))}, White non-Hispanic applicants in {second} "
        f"{_percent(row.get('second_only_denial_rate'))} of {_number(row.get('second_only_applications'))}, in {other} "
        f"{_percent(row.get('neither_denial_rate'))} of {_number(row.get('neither_applications'))}"
    )
    if row.get("reason") or _missing(row.get("odds_ratio")):
        return f"{name}: not tested ({row.get('reason') or 'no estimate'}); {rates}"
    return (
        f"{name}: the odds of denying {both} are {_number(row['odds_ratio'], 2)} times what the race effect and "
        f"the other basis's effect predict together (95% CI {_number(row.get('ci_low'), 2)}–"
        f"{_number(row.get('ci_high'), 2)}, p = {_p(row.get('p_value'))}{_holm(row, 'interactions')}); {rates}"
    )


def _holm(row: Record, family: str = "comparisons") -> str:
    """The p-value adjusted over the lender's comparisons (what the rules weigh), when there is one."""
    adjusted = row.get("p_adjusted")
    return "" if _missing(adjusted) else f", {_p(adjusted)} adjusted over the lender's {family} (Holm)"


def _generic_row(row: Record, context: Context) -> str:
    return ", ".join(f"{name} = {_number(value)}" for name, value in row.items() if name != "lei")


# How `reason explain` words each evidence kind (``evidence.kinds``): a heading and a row.
STATISTICS: dict[str, tuple[Callable[[Context], str], Callable[[Record, Context], str]]] = {
    "denial_odds": (_denial_heading, _denial_row),
    "matched_pairs": (_pairs_heading, _pairs_row),
    "pricing": (_pricing_heading, _pricing_row),
    "redlining": (_redlining_heading, _redlining_row),
    "interactions": (_interactions_heading, _interactions_row),
}


# -- proofs ----------------------------------------------------------------------------------------


# Evidence that an application stands beside a comparator (or a cluster) in one comparison, its last
# argument (rules/10-matched-pair.mln): a rule with an existential over the comparisons is grounded
# once per pair and cites every comparison; the text shows those in which the pair appears.
PER_COMPARISON = ("MatchedDenial", "ClusterOutlier")


def _atoms(proof: Record) -> list[Record]:
    """The evidence atoms of a proof's ground formulas, without the atom it explains and without
    the instances of an existential over comparisons in which the pair does not appear."""
    explained = proof.get("atom")
    return [
        item
        for formula in (*proof.get("supporting", []), *proof.get("opposing", []))
        for item in _split_comparisons(formula.get("atoms", []))[0]
        if item.get("atom") != explained
    ]


def _split_comparisons(atoms: list[Record]) -> tuple[list[Record], list[tuple[str, list[Record]]], list[str]]:
    """A ground formula's atoms: (those shown, in order; the comparisons in which the pair appears,
    each with its atoms; the comparisons in which it does not). A formula without per-comparison
    evidence (``PER_COMPARISON``) has every atom shown and no comparison."""
    comparisons: dict[str, bool] = {}
    for item in atoms:
        arguments = _arguments(str(item.get("atom")))
        if _predicate(str(item.get("atom"))) in PER_COMPARISON and arguments:
            comparisons[arguments[-1]] = comparisons.get(arguments[-1], False) or bool(item.get("value"))
    if not comparisons:
        return atoms, [], []
    shown: list[Record] = []
    groups: dict[str, list[Record]] = {name: [] for name, present in comparisons.items() if present}
    for item in atoms:
        arguments = _arguments(str(item.get("atom")))
        last = arguments[-1] if arguments else ""
        if last not in comparisons:
            shown.append(item)
        elif last in groups:
            groups[last].append(item)
            shown.append(item)
    absent = sorted(name for name, present in comparisons.items() if not present)
    return shown, list(groups.items()), absent


def _proof_lines(proof: Record, indent: str) -> list[str]:
    """Every ground formula for and against the proof's atom, grouped by rule."""
    atom, value = proof.get("atom"), bool(proof.get("value", True))
    lines = []
    sides = (
        ("For", proof.get("supporting") or [], "would cost its weight{} if " + f"{atom} were {_truth(not value)}"),
        ("Against", proof.get("opposing") or [], "costs its weight{} because " + f"{atom} is {_truth(value)}"),
    )
    for title, formulas, meaning in sides:
        if not formulas:
            continue
        total = _total(formulas)
        hard = " (or, for a hard rule, be broken)" if total == "hard" else ""
        lines.append(
            f"{indent}{title}: {_plural(len(formulas), 'ground formula')}, {total} in all; each {meaning.format(hard)}:"
        )
        for group in _by_rule(formulas):
            lines += _rule_lines(group, atom, indent + "  ")
    if not lines:
        lines.append(f"{indent}No ground formula weighs for or against it: {_decided(proof)}.")
    neutral = int(proof.get("neutral_formulas") or 0)
    if neutral:
        verb = "mentions" if neutral == 1 else "mention"
        lines.append(f"{indent}{_plural(neutral, 'other ground formula')} {verb} it without effect.")
    return lines


def _decided(proof: Record) -> str:
    if proof.get("decided_by") == "evidence":
        return f"given as evidence [{_short(str(proof.get('source')))}]"
    return f"decided by {proof.get('decided_by')}"


def _by_rule(formulas: list[Record]) -> list[list[Record]]:
    """The ground formulas grouped by rule, in their order."""
    groups: dict[tuple[str, str], list[Record]] = {}
    for formula in formulas:
        groups.setdefault((str(formula.get("location")), str(formula.get("rule"))), []).append(formula)
    return list(groups.values())


def _rule_lines(formulas: list[Record], explained: str | None, indent: str) -> list[str]:
    """One rule (location, weight, text), then each of its ground formulas with its evidence."""
    first = formulas[0]
    weight = "hard rule" if first.get("weight") == "hard" else f"weight {first.get('weight')}"
    effect = _effect(first.get("effect"))
    same = len({_effect(formula.get("effect")) for formula in formulas}) == 1
    if len(formulas) == 1:
        count = f", {effect}"
    else:
        count = f": {_plural(len(formulas), 'ground formula')}" + (f", {effect} each" if same else "")
    location = _short(str(first.get("location")))
    lines = [f"{indent}Rule {location} ({weight}){count}:", f"{indent}    {first.get('rule')}"]
    for ordinal, formula in enumerate(formulas, start=1):
        values = ", ".join(f"{name} = {value}" for name, value in (formula.get("substitution") or {}).items())
        state = "holds" if formula.get("satisfied") else "does not hold"
        own = "" if same else f", {_effect(formula.get('effect'))}"
        prefix = f"{ordinal}. " if len(formulas) > 1 else ""
        lines.append(f"{indent}  {prefix}with {values or 'no variables'}: {state}{own}")
        shown, groups, absent = _split_comparisons(formula.get("atoms", []))
        grouped = {id(item) for _, items in groups for item in items}
        for item in shown:
            if item.get("atom") != explained and id(item) not in grouped:
                lines.append(f"{indent}       {_atom_line(item)}")
        for name, items in groups:
            lines.append(f"{indent}       in comparison {name}:")
            lines += [f"{indent}         {_atom_line(item)}" for item in items]
        if groups:
            lines.append(
                f"{indent}       appears in {_plural(len(groups), 'comparison')}, counted once"
                + (f"; not in {', '.join(absent)}" if absent else "")
            )
    return lines


def _atom_line(item: Record) -> str:
    return f"{item['atom']} is {_truth(item.get('value'))}  [{_short(str(item.get('source')))}]"


def _glossary(atoms: Iterable[Record], context: Context) -> list[str]:
    """The declared meaning of every predicate cited; the rule files that could not be quoted."""
    names = sorted({_predicate(str(item.get("atom"))) for item in atoms} - {""})
    known = [context.glosses[name] for name in names if name in context.glosses]
    lines = []
    if known:
        lines += ["", "Predicates cited, as declared in the rule files:"]
        lines += [f"  {g.signature}: {g.meaning or '(declared without a comment)'}  [{g.location}]" for g in known]
    if context.changed:
        lines += ["", "Not quoted, as not found unchanged since the audit: " + ", ".join(context.changed) + "."]
    return lines


def _predicate(atom: str) -> str:
    match = GROUND_ATOM.match(atom)
    return match.group(2) if match else ""


def _arguments(atom: str) -> list[str]:
    """The constants of an atom, unquoted: ``P("a",b)`` → ``['a', 'b']``."""
    match = GROUND_ATOM.match(atom)
    if not match:
        return []
    return [_unquote(part.strip()) for part in _ARGUMENT.findall(match.group(3))]


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return text


def _table_of(source: str) -> str:
    """``denial_odds row 32`` → ``denial_odds``."""
    return source.rsplit(" row ", 1)[0] if " row " in source else ""


# -- words and numbers -----------------------------------------------------------------------------


def _meaning(atom: str, context: Context) -> str:
    """`` (the declared meaning)`` of the atom's predicate, without a leading 'finding:'."""
    gloss = context.glosses.get(_predicate(atom))
    meaning = re.sub(r"^finding\b:?\s*", "", gloss.meaning) if gloss else ""
    return f" ({meaning})" if meaning else ""


def _confidence_sentence(
    label: object, margin: object, proof: Record, context: Context, lender: Record | None = None
) -> str:
    """The label, the value its cut-offs apply to (a lender's: the log-odds of its verdict), what the margin says."""
    flipped = f"{proof.get('atom', 'the finding')} is {_truth(not proof.get('value', True))}"
    cutoff = _cutoff(label, margin, context) if lender is None else _lender_cutoff(label, lender, True, context)
    return f"Confidence: {label}{cutoff}: " + _margin_clause(margin, flipped)


def _lender_cutoff(label: object, row: Record, flagged: bool, context: Context) -> str:
    """A lender's confidence cut-offs apply to the log-odds of its verdict's probability at the low end of its
    interval (``score.py``), from the risk score (rounded to 2 decimals) and its interval."""
    score, interval = _float(row.get("risk_score")), _float(row.get("risk_interval"))
    verdict = (score if flagged else 100 - score) / 100 - (0.0 if math.isnan(interval) else interval / 100)
    if math.isnan(verdict):
        return _cutoff(label, math.nan, context)
    log_odds = math.inf if verdict >= 1 else -math.inf if verdict <= 0 else math.log(verdict / (1 - verdict))
    return _cutoff(label, log_odds, context, "log-odds of the verdict", absolute=False)


def _cutoff(label: object, margin: object, context: Context, name: str = "margin", absolute: bool = True) -> str:
    """The margin (or another log-odds) and the cut-offs of its confidence label (audit.toml
    [scoring.confidence]), when known."""
    shown = f"{name} {_number(_magnitude(margin) if absolute else margin)}"
    labels = [name for name, _ in context.confidence]
    lows = [low for _, low in context.confidence]
    if label in labels:
        index = labels.index(label)
        below = f", below {_number(lows[index - 1])}" if index else ""
        return f" ({shown}: at least {_number(lows[index])}{below})"
    if lows and label != INSUFFICIENT:
        return f" ({shown}: below {_number(min(lows))})"
    return f" ({shown})"


def _magnitude(margin: object) -> object:
    value = _float(margin)
    return margin if math.isnan(value) else abs(value)


def _margin_clause(margin: object, flipped: str) -> str:
    """What the margin says: how much less probable the best world with the finding reversed is."""
    value = _float(margin)
    if math.isinf(value) or margin == "hard":
        return f"no world in which {flipped} satisfies the hard rules."
    if math.isnan(value):
        return "its margin was not computed."
    return (
        f"the most probable world in which {flipped} is e^{_number(abs(value))} ≈ {_times(math.exp(abs(value)))} "
        "times less probable than the most probable world."
    )


def _risk(interval: object) -> str:
    """What the risk score is (``score.py``): the verdict's probability, with its interval when sampled."""
    value = _float(interval)
    sampled = f" ± {_number(value)} (95% interval of MC-SAT)" if value > 0 else ""
    return f"{sampled} (100 × the probability that the lender is flagged, over every world of its rules)"


def _times(value: float) -> str:
    if value < 100:
        return f"{value:.3g}"
    if value < 1e6:
        return f"{value:,.0f}"
    for size, word in ((1e6, "million"), (1e9, "billion"), (1e12, "trillion")):
        if value < size * 1000:
            return f"{value / size:.1f} {word}"
    return f"{value:.1e}"


def _effect(effect: object) -> str:
    return "hard" if effect in ("hard", "-hard") else _signed(effect)


def _total(formulas: list[Record]) -> str:
    if any(formula.get("effect") in ("hard", "-hard") for formula in formulas):
        return "hard"
    return _signed(sum(_float(formula.get("effect")) for formula in formulas))


def _truth(value: object) -> str:
    return "true" if value else "false"


def _count(value: object, noun: str) -> str:
    return f"{_number(value)} {noun}" + ("" if value == 1 else "s")


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def _listing(items: list[str], conjunction: str) -> str:
    """``a, b and c``."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + f" {conjunction} " + items[-1]


def _bullets(lines: list[str]) -> list[str]:
    """The first-level lines as bullets; lines that start indented continue the bullet above."""
    return [f"  {line}" if line.startswith("  ") else f"  - {line}" for line in lines]


def _short(text: str) -> str:
    """Every path in ``text`` reduced to its file name, so that the text does not depend on directories."""
    return _PATH.sub(r"\1", text)


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _float(value: object) -> float:
    """A JSON number as a float: ``"inf"``/``"hard"`` are infinite, null and other text NaN."""
    if isinstance(value, str):
        return {"inf": math.inf, "hard": math.inf, "-inf": -math.inf, "-hard": -math.inf}.get(value, math.nan)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return math.nan


def _number(value: object, digits: int = 3) -> str:
    """A figure of an explanation record (JSON: ``"inf"``/``"hard"`` are infinite) as prose prints
    it: ``reporting.number`` with trailing zeros dropped."""
    if isinstance(value, str):
        parsed = _float(value)
        return value if math.isnan(parsed) else number(parsed, digits, trim=True)
    if isinstance(value, bool) or not isinstance(value, (int, float)) and value is not None:
        return str(value)
    return number(value, digits, trim=True)


def _signed(value: object, digits: int = 3) -> str:
    text = _number(value, digits)
    return text if text.startswith(("-", "–")) or text == "0" else f"+{text}"


def _percent(value: object) -> str:
    number = _float(value)
    return "–" if math.isnan(number) else f"{number:.1%}"


def _p(value: object) -> str:
    """A p-value: two significant digits, in scientific notation below 0.0001."""
    number = _float(value)
    if math.isnan(number):
        return "not computed"
    if number == 0:
        return "< 1e-300"
    return f"{number:.2g}" if number >= 1e-4 else f"{number:.1e}"


def _sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, in hex (as ``reasoner.evidence.file_sha256``, which would import pandas)."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
