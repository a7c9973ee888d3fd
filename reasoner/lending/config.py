"""The audit's settings: ``audit.toml`` beside the rule files → ``AuditConfig``.

Everything a policy author may want to change without touching Python lives there: the
groups compared, what makes applicants similarly situated, the statistical settings, which
rule predicates are findings, and the risk-tier and confidence cut-offs with the action
recommended for each tier. Weights and thresholds of the rules live in the ``.mln`` files.

A mistake in the file is reported with its file, line and column and what was expected.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reasoner.errors import Diagnostic, RuleError, UsageError, closest, did_you_mean
from reasoner.lending.covariates import Covariates, category_levels
from reasoner.lending.registers.fields import DERIVED_ETHNICITY, DERIVED_RACE, DERIVED_SEX
from reasoner.syntax import Span

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "COLUMN_FIELDS",
    "CONFIDENCE_LABELS",
    "CONFIG_NAME",
    "NOT_TESTED",
    "PROXY_FIELDS",
    "STATUS_TIERS",
    "TIERS",
    "UNDERPOWERED",
    "AuditConfig",
    "ColumnMap",
    "Comparison",
    "ProxySettings",
    "RedliningSettings",
    "check_config_columns",
    "check_covariate_types",
    "check_proxy_columns",
    "find_config",
    "load_column_map",
    "load_config",
    "proxy_settings",
    "redlining_settings",
]

CONFIG_NAME = "audit.toml"
TIERS = ("TIER_1_CRITICAL", "TIER_2_HIGH_RISK", "TIER_3_ELEVATED_RISK", "TIER_4_MONITORING", "TIER_5_LOW_RISK")
CONFIDENCE_LABELS = ("VERY_HIGH_CONFIDENCE", "HIGH_CONFIDENCE", "MEDIUM_CONFIDENCE", "LOW_CONFIDENCE")
INSUFFICIENT = "INSUFFICIENT_EVIDENCE"
REDLINING_KEYS = ("redlining", "bands", "peer_volume", "min_peers", "assessment_areas")
# Tiers of lenders that are not flagged and whose tests could not tell (score.py): no comparison
# could be computed, or none could have detected the configured odds ratio.
NOT_TESTED = "NOT_TESTED"
UNDERPOWERED = "UNDERPOWERED"
STATUS_TIERS = (UNDERPOWERED, NOT_TESTED)
STATUS_ACTIONS = {  # used when audit.toml's [scoring.actions] does not say
    NOT_TESTED: "Not tested: collect more data (combine HMDA years or products) before drawing any conclusion",
    UNDERPOWERED: "Too few applications to detect a doubling of the denial odds: combine years or products and "
    "review files directly before drawing any conclusion",
}
UNDERPOWERED_ODDS_RATIO = 2.0
MARGINAL_SAMPLES = 1000  # MC-SAT samples per chain of a lender component too large to enumerate
MARGINAL_EXACT_ATOMS = 12  # a lender component of at most this many atoms is enumerated (2^12 worlds)
EXACT_LIMIT = 20  # reasoner.sample's (2^20 worlds), not imported: this module imports no numpy
KNOWN_KEYS = frozenset(
    (
        "comparisons",
        "similarity",
        "statistics",
        "findings",
        "scoring",
        "name",
        "column",
        "reference",
        "compared",
        "columns",
        "log_columns",
        "scaling",
        "blocks",
        "neighbours",
        "max_distance",
        "covariates",
        "pricing_covariates",
        "categorical_covariates",
        "bands",
        "pricing_categorical_covariates",
        "pricing_bands",
        "alternative_odds_ratio",
        "alternative_pricing_gap",
        "theory",
        "comparator_tolerance",
        "min_group",
        "majority_minority_percent",
        "outlier_min_neighbours",
        "outlier_share",
        "lender_verdict",
        "lender_kinds",
        "application_findings",
        "tiers",
        "confidence",
        "actions",
        *TIERS,
        *CONFIDENCE_LABELS,
        *REDLINING_KEYS,
        *STATUS_TIERS,
        "underpowered_odds_ratio",
        "marginal_samples",
        "marginal_seed",
        "marginal_exact_atoms",
        "proxies",
        "race_not_available",
        "pair_threshold",
        "surname",
        "first_name",
        "zip",
        "address",
    )
)
GROUP_COLUMNS = ("race", "ethnicity", "sex", "age", "race_ethnicity", "minority", "minority_sex", "minority_tract")


@dataclass(frozen=True, slots=True)
class Comparison:
    """Applicants of ``compared`` groups against applicants of ``reference``, by ``column``."""

    name: str
    column: str
    reference: str
    compared: tuple[str, ...]
    theory: str = "treatment"  # "treatment": evidence of disparate treatment; "redlining": of redlining only


@dataclass(frozen=True, slots=True)
class RedliningSettings:
    """``[redlining]``: tract bands (minority percentage exceeded), the volume band of peers
    (lenders with ``peer_volume`` times the lender's applications in the market; all lenders
    when fewer than ``min_peers``), and an optional CSV of assessment areas (``lei``, ``county``
    or ``msa``), relative to ``audit.toml``."""

    bands: tuple[float, ...] = (50.0, 80.0)
    peer_volume: tuple[float, float] = (0.5, 2.0)
    min_peers: int = 5
    assessment_areas: Path | None = None


@dataclass(frozen=True, slots=True)
class ProxySettings:
    """``[proxies]`` of ``audit.toml``: estimate race and ethnicity (BISG/BIFSG) for the rows of a
    register with a race column whose race is not available (``race_not_available``, off by
    default; a register without a race column is proxied whenever ``[columns]`` maps a surname);
    ``pair_threshold``: the probability an estimated applicant's most probable group must reach for
    matched pairs; ``surname``, ``first_name``, ``zip``, ``address`` (a one-line address ending in its
    ZIP code, read when there is no ZIP column): the register's columns, for a register read without
    ``[columns]`` (``[columns]`` may map them instead)."""

    race_not_available: bool = False
    pair_threshold: float = 0.8
    surname: str = ""
    first_name: str = ""
    zip: str = ""
    address: str = ""


@dataclass(frozen=True, slots=True)
class AuditConfig:
    path: Path
    comparisons: tuple[Comparison, ...]
    similarity_columns: tuple[str, ...]
    log_columns: tuple[str, ...]
    scaling: str
    blocks: tuple[str, ...]
    neighbours: int
    max_distance: float | None
    covariates: tuple[str, ...]
    pricing_covariates: tuple[str, ...]
    min_group: int
    majority_minority_percent: float
    outlier_min_neighbours: int
    outlier_share: float
    lender_verdict: str
    lender_kinds: tuple[tuple[str, str], ...]  # (predicate, label)
    application_findings: tuple[tuple[str, str], ...]
    tiers: tuple[tuple[str, float], ...]  # (tier, lowest risk score), highest tier first
    confidence: tuple[tuple[str, float], ...]  # (label, lowest margin), highest first
    actions: tuple[tuple[str, str], ...]  # (tier or status tier, action)
    kind_actions: tuple[tuple[str, str], ...] = ()  # (violation label, action), from the lender_kinds predicates
    underpowered_odds_ratio: float = UNDERPOWERED_ODDS_RATIO  # a lender no test could detect this for is underpowered
    marginal_samples: int = MARGINAL_SAMPLES  # per MC-SAT chain, for a lender component too large to enumerate
    marginal_seed: int = 0  # with the LEI, seeds a lender's MC-SAT chains
    marginal_exact_atoms: int = MARGINAL_EXACT_ATOMS  # larger lender components are sampled
    categorical_covariates: tuple[str, ...] = ()
    bands: tuple[tuple[str, tuple[float, ...]], ...] = ()
    pricing_categorical_covariates: tuple[str, ...] = ()
    pricing_bands: tuple[tuple[str, tuple[float, ...]], ...] = ()
    alternative_odds_ratio: float = 2.0
    alternative_pricing_gap: float = 0.2
    category_levels: tuple[tuple[str, tuple[str, ...]], ...] = ()  # register-wide (``with_levels``)
    comparator_tolerance: tuple[tuple[str, float], ...] = (("cltv", 2.0), ("dti", 2.0), ("income", 0.05))
    redlining: RedliningSettings = RedliningSettings()
    proxies: ProxySettings = ProxySettings()

    def action(self, tier: str, violations: tuple[str, ...] | list[str] = ()) -> str:
        """The tier's action, then each violation's (``violations``: labels of ``lender_kinds``)."""
        known = dict(self.actions)
        text = known.get(tier, STATUS_ACTIONS.get(tier, ""))
        by_kind = dict(self.kind_actions)
        extra = [f"{label}: {by_kind[label]}" for label in violations if label in by_kind]
        return "; ".join([text, *extra]) if extra else text

    @property
    def denial_model(self) -> Covariates:
        """What the denial models (odds, matched-pair probabilities) control for."""
        return self._model(self.covariates, self.categorical_covariates, self.bands)

    @property
    def pricing_model(self) -> Covariates:
        """What the rate-spread model controls for."""
        return self._model(self.pricing_covariates, self.pricing_categorical_covariates, self.pricing_bands)

    def _model(
        self, numeric: tuple[str, ...], categorical: tuple[str, ...], bands: tuple[tuple[str, tuple[float, ...]], ...]
    ) -> Covariates:
        levels = dict(self.category_levels)
        known = tuple((name, levels[name]) for name in categorical if name in levels)
        return Covariates(numeric, categorical, bands, known)

    def with_levels(self, frame: pd.DataFrame) -> AuditConfig:
        """The settings with each categorical covariate's values read from the whole register
        ``frame``: every partition then fits the same indicator columns (outputs do not depend
        on how the register is partitioned)."""
        names = dict.fromkeys((*self.categorical_covariates, *self.pricing_categorical_covariates))
        return dataclasses.replace(self, category_levels=tuple((name, category_levels(frame[name])) for name in names))


def read_config_text(path: Path) -> str:
    """The text of ``audit.toml``; a ``UsageError`` naming the file and the byte offset when it is not UTF-8."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise UsageError(f"{path}: not UTF-8 text (byte {error.start}); save it as UTF-8") from None
    except OSError as error:
        raise UsageError(f"{path}: cannot read: {error.strerror or error}") from None


def check_config_predicates(config: AuditConfig, declared: Collection[str]) -> None:
    """A ``RuleError`` at the line of ``audit.toml``'s ``[findings]`` that names a predicate the
    rule files do not declare."""
    named = [("lender_verdict", config.lender_verdict)]
    named += [(name, name) for name, _ in (*config.lender_kinds, *config.application_findings)]
    for key, name in named:
        if name not in declared:
            text = read_config_text(config.path)
            notes = did_you_mean(name, sorted(declared))
            raise config_error(
                config.path,
                text,
                "findings",
                key,
                f"[findings] names predicate '{name}', which no rule file declares",
                notes,
            )


def find_config(rule_paths: list[Path]) -> Path | None:
    """The ``audit.toml`` of the first rule directory (or rule file's directory) that has one."""
    for path in rule_paths:
        folder = path if path.is_dir() else path.parent
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return candidate
    return None


class _Reader:
    """Typed access to one TOML table with positioned errors."""

    def __init__(self, path: Path, text: str, data: dict[str, Any], section: str, occurrence: int = 0) -> None:
        self.path, self.text, self.data, self.section = path, text, data, section
        self.occurrence = occurrence  # the entry of an array of tables ([[comparisons]])
        self.used: set[str] = set()

    def error(self, key: str | None, message: str, notes: tuple[str, ...] = ()) -> RuleError:
        return config_error(self.path, self.text, self.section, key, message, notes, occurrence=self.occurrence)

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        self.used.add(key)
        if key not in self.data:
            unknown = [str(name) for name in self.data if str(name) not in KNOWN_KEYS]
            misspelt = closest(key, unknown)
            if misspelt is not None:  # a misspelling: point at it
                raise self.error(misspelt, f"unknown key '{misspelt}' in [{self.section}]", (f"did you mean '{key}'?",))
            if default is ...:
                raise self.error(None, f"[{self.section}] has no '{key}'")
            return default
        value = self.data[key]
        if isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
            names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise self.error(key, f"'{key}' must be {_article(names)}, not {type(value).__name__} {value!r}")
        return value

    def strings(self, key: str, default: Any = ...) -> tuple[str, ...]:
        value = self.get(key, list, default)
        if not all(isinstance(item, str) for item in value):
            raise self.error(key, f"'{key}' must be a list of strings")
        return tuple(value)

    def number(self, key: str, low: float | None = None, high: float | None = None, default: Any = ...) -> float:
        value = float(self.get(key, (int, float), default))
        if (low is not None and value < low) or (high is not None and value > high):
            raise self.error(key, f"'{key}' must be between {low} and {high}, not {value}")
        return value

    def table(self, key: str) -> dict[str, Any]:
        return dict(self.get(key, dict))

    def finish(self) -> None:
        for key in sorted(self.data):
            if key not in self.used:
                notes = did_you_mean(key, sorted(self.used), otherwise=f"known keys: {', '.join(sorted(self.used))}")
                raise self.error(key, f"unknown key '{key}' in [{self.section}]", notes)


def _tolerance(reader: _Reader) -> tuple[tuple[str, float], ...]:
    """``comparator_tolerance = { income = 0.05, dti = 2, cltv = 2 }``: how much better qualified an
    approved comparator may be (income as a share, DTI and CLTV in points); each key optional."""
    given = reader.get("comparator_tolerance", dict, {})
    tolerance = {"cltv": 2.0, "dti": 2.0, "income": 0.05}
    for key, value in given.items():
        if key not in tolerance:
            notes = did_you_mean(key, tolerance, otherwise="known keys: cltv, dti, income")
            raise reader.error(key, f"unknown key '{key}' in comparator_tolerance", notes)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise reader.error(key, f"'comparator_tolerance.{key}' must be a number of at least 0, not {value!r}")
        tolerance[key] = float(value)
    return tuple(sorted(tolerance.items()))


def _bands(reader: _Reader, key: str) -> tuple[tuple[str, tuple[float, ...]], ...]:
    """``bands = { dti = [36, 43, 50], cltv = [80, 95] }``: increasing cut points per column."""
    found = []
    for column, edges in sorted(reader.get(key, dict, {}).items()):
        if (
            not isinstance(edges, list)
            or not edges
            or not all(isinstance(edge, int | float) and not isinstance(edge, bool) for edge in edges)
            or any(later <= earlier for earlier, later in zip(edges, edges[1:], strict=False))
        ):
            raise reader.error(column, f"'{key}.{column}' must be a list of increasing numbers (the cut points)")
        found.append((str(column), tuple(float(edge) for edge in edges)))
    return tuple(found)


def _article(name: str) -> str:
    return {"int": "an integer", "float": "a number", "str": "a string", "list": "a list", "dict": "a table"}.get(
        name, "an integer or a number" if name == "int or float" else name
    )


def config_error(
    path: Path,
    text: str,
    section: str,
    key: str | None,
    message: str,
    notes: tuple[str, ...] = (),
    *,
    occurrence: int = 0,
) -> RuleError:
    line, column = _locate(text, section, key, occurrence)
    source_line = text.splitlines()[line - 1] if text and 0 < line <= len(text.splitlines()) else ""
    width = len(key) if key else 1
    span = Span(str(path), line, column, line, column + width, source_line)
    return RuleError([Diagnostic(span, message, notes=notes)])


def _locate(text: str, section: str, key: str | None, occurrence: int = 0) -> tuple[int, int]:
    """Line and column of ``key`` in ``[section]`` (or of the section header; 1, 1 if not found).

    ``occurrence`` is the entry of an array of tables (``[[comparisons]]``: the third entry's
    ``column`` is looked up under the third header). The key is looked for up to the next
    header first, then anywhere after the section's header (a key of an inline table)."""
    lines = text.splitlines()
    headers = [(number, line.strip()) for number, line in enumerate(lines) if _HEADER.match(line)]
    head = section.split(".")[0]
    exact = [number for number, header in headers if header in (f"[{section}]", f"[[{section}]]")]
    loose = [
        number
        for number, header in headers
        if header in (f"[{head}]", f"[[{head}]]") or header.startswith((f"[{head}.", f"[[{head}."))
    ]
    found = exact or loose
    start = found[min(occurrence, len(found) - 1)] if found else 0
    if key is None:
        return (start + 1, lines[start].index("[") + 1) if found else (1, 1)
    end = next((number for number, _ in headers if number > start), len(lines))
    pattern = re.compile(rf"^\s*\"?{re.escape(key)}\"?\s*=")
    inline = re.compile(rf"(?<![A-Za-z0-9_]){re.escape(key)}\s*=")
    for numbers in (range(start, end), range(start, len(lines))):
        for number in numbers:
            if pattern.match(lines[number]):
                return number + 1, lines[number].index(key) + 1
            match = inline.search(lines[number])
            if match and number > start:
                return number + 1, match.start() + 1
    return start + 1, 1


_HEADER = re.compile(r"^\s*\[")


def load_config(path: Path) -> AuditConfig:
    """Read and check ``audit.toml``; a ``RuleError`` names the line of any mistake."""
    text = read_config_text(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        match = re.search(r"\(at line (\d+), column (\d+)\)", str(error))
        line, column = (int(match.group(1)), int(match.group(2))) if match else (1, 1)
        message = re.sub(r"\s*\(at line.*\)$", "", str(error))
        lines = text.splitlines()
        span = Span(str(path), line, column, line, column + 1, lines[line - 1] if 0 < line <= len(lines) else "")
        raise RuleError([Diagnostic(span, f"not valid TOML: {message}")]) from None

    top = _Reader(path, text, data, "audit.toml")
    top.used.add("columns")  # a bank's own register: load_column_map
    comparisons = []
    for occurrence, entry in enumerate(top.get("comparisons", list)):
        reader = _Reader(path, text, entry, "comparisons", occurrence)
        name = reader.get("name", str)
        column = reader.get("column", str)
        if column not in GROUP_COLUMNS:
            raise reader.error(
                "column", f"unknown group column '{column}'", (f"expected one of: {', '.join(GROUP_COLUMNS)}",)
            )
        theory = reader.get("theory", str, "treatment")
        if theory not in ("treatment", "redlining"):
            raise reader.error("theory", f"unknown theory '{theory}'", ("expected 'treatment' or 'redlining'",))
        comparison = Comparison(name, column, reader.get("reference", str), reader.strings("compared"), theory)
        if not comparison.compared or comparison.reference in comparison.compared:
            raise reader.error("compared", "'compared' must list groups other than the reference")
        reader.finish()
        comparisons.append(comparison)
    if not comparisons or len({c.name for c in comparisons}) != len(comparisons):
        raise top.error("comparisons", "[[comparisons]] must name at least one comparison, each name once")

    similarity = _Reader(path, text, top.table("similarity"), "similarity")
    statistics = _Reader(path, text, top.table("statistics"), "statistics")
    findings = _Reader(path, text, top.table("findings"), "findings")
    scoring = _Reader(path, text, top.table("scoring"), "scoring")
    max_distance = similarity.get("max_distance", (int, float), None)
    tiers_table = _Reader(path, text, scoring.table("tiers"), "scoring.tiers")
    tiers = tuple((tier, tiers_table.number(tier, 0, 100)) for tier in TIERS[:-1])
    tiers_table.finish()
    for (name, low), (next_name, high) in zip(tiers, tiers[1:], strict=False):
        if high > low:
            raise tiers_table.error(
                next_name,
                f"tier cut-offs must not increase from TIER_1 to TIER_4: {next_name} = {high} is above {name} = {low}",
            )
    confidence_table = _Reader(path, text, scoring.table("confidence"), "scoring.confidence")
    confidence = tuple((label, confidence_table.number(label, 0)) for label in CONFIDENCE_LABELS[:-1])
    confidence_table.finish()
    actions_table = _Reader(path, text, scoring.table("actions"), "scoring.actions")
    actions = tuple((tier, actions_table.get(tier, str)) for tier in TIERS)
    actions += tuple((tier, actions_table.get(tier, str, STATUS_ACTIONS[tier])) for tier in STATUS_TIERS)
    lender_kinds = tuple(sorted(findings.table("lender_kinds").items()))
    kind_actions = tuple(
        (label, actions_table.get(predicate, str))
        for predicate, label in lender_kinds
        if predicate in actions_table.data
    )
    actions_table.used.update(
        predicate for predicate, _ in lender_kinds
    )  # optional keys: named in a misspelling's note
    actions_table.finish()
    underpowered = scoring.number("underpowered_odds_ratio", default=UNDERPOWERED_ODDS_RATIO)
    if underpowered <= 1:
        raise scoring.error("underpowered_odds_ratio", f"'underpowered_odds_ratio' must be above 1, not {underpowered}")
    marginal_samples = scoring.get("marginal_samples", int, MARGINAL_SAMPLES)
    if not 2 <= marginal_samples <= 1_000_000:
        message = f"'marginal_samples' must be between 2 and 1000000, not {marginal_samples}"
        raise scoring.error("marginal_samples", message)
    marginal_seed = scoring.get("marginal_seed", int, 0)
    if marginal_seed < 0:
        raise scoring.error("marginal_seed", f"'marginal_seed' must be 0 or more, not {marginal_seed}")
    exact_atoms = scoring.get("marginal_exact_atoms", int, MARGINAL_EXACT_ATOMS)
    if not 0 <= exact_atoms <= EXACT_LIMIT:
        message = f"'marginal_exact_atoms' must be between 0 and {EXACT_LIMIT}, not {exact_atoms}"
        raise scoring.error("marginal_exact_atoms", message)
    config = AuditConfig(
        path=path,
        comparisons=tuple(comparisons),
        similarity_columns=similarity.strings("columns"),
        log_columns=similarity.strings("log_columns", []),
        scaling=similarity.get("scaling", str, "robust"),
        blocks=similarity.strings("blocks"),
        neighbours=int(similarity.number("neighbours", 1, 100)),
        max_distance=None if max_distance is None else float(max_distance),
        comparator_tolerance=_tolerance(similarity),
        covariates=statistics.strings("covariates"),
        pricing_covariates=statistics.strings("pricing_covariates"),
        categorical_covariates=statistics.strings("categorical_covariates", []),
        bands=_bands(statistics, "bands"),
        pricing_categorical_covariates=statistics.strings("pricing_categorical_covariates", []),
        pricing_bands=_bands(statistics, "pricing_bands"),
        alternative_odds_ratio=statistics.number("alternative_odds_ratio", 1.01, 100, default=2.0),
        alternative_pricing_gap=statistics.number("alternative_pricing_gap", 0.001, 10, default=0.2),
        min_group=int(statistics.number("min_group", 2)),
        majority_minority_percent=statistics.number("majority_minority_percent", 0, 100),
        outlier_min_neighbours=int(statistics.number("outlier_min_neighbours", 1)),
        outlier_share=statistics.number("outlier_share", 0.5, 1),
        lender_verdict=findings.get("lender_verdict", str),
        lender_kinds=lender_kinds,
        application_findings=tuple(sorted(findings.table("application_findings").items())),
        tiers=tiers,
        confidence=confidence,
        actions=actions,
        redlining=redlining_settings(path, text, top),
        proxies=proxy_settings(path, text, top),
        kind_actions=kind_actions,
        underpowered_odds_ratio=underpowered,
        marginal_samples=marginal_samples,
        marginal_seed=marginal_seed,
        marginal_exact_atoms=exact_atoms,
    )
    for reader in (similarity, statistics, findings, scoring, top):
        reader.finish()
    return config


def proxy_settings(path: Path, text: str, top: _Reader) -> ProxySettings:
    """The optional ``[proxies]`` table of ``audit.toml`` (``ProxySettings``; defaults when absent)."""
    if "proxies" not in top.data:
        top.used.add("proxies")
        return ProxySettings()
    reader = _Reader(path, text, top.table("proxies"), "proxies")
    settings = ProxySettings(
        race_not_available=reader.get("race_not_available", bool, False),
        pair_threshold=reader.number("pair_threshold", 0.5, 1.0, 0.8),
        surname=reader.get("surname", str, ""),
        first_name=reader.get("first_name", str, ""),
        zip=reader.get("zip", str, ""),
        address=reader.get("address", str, ""),
    )
    reader.finish()
    return settings


def redlining_settings(path: Path, text: str, top: _Reader) -> RedliningSettings:
    """The optional ``[redlining]`` table of ``audit.toml`` (defaults when absent)."""
    if "redlining" not in top.data:
        top.used.add("redlining")
        return RedliningSettings()
    reader = _Reader(path, text, top.table("redlining"), "redlining")
    given = reader.get("bands", list, [50, 80])
    numbers = all(isinstance(value, int | float) and not isinstance(value, bool) for value in given)
    bands = tuple(float(value) for value in given) if numbers else ()
    if not bands or not all(0 <= band < 100 for band in bands) or list(bands) != sorted(set(bands)):
        raise reader.error("bands", "'bands' must list increasing tract minority percentages from 0 to below 100")
    volume = reader.get("peer_volume", list, [0.5, 2.0])
    if len(volume) != 2 or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in volume):
        raise reader.error("peer_volume", "'peer_volume' must be two numbers [low, high], e.g. [0.5, 2.0]")
    low, high = float(volume[0]), float(volume[1])
    if not 0 < low <= 1 <= high:
        raise reader.error("peer_volume", f"'peer_volume' must satisfy 0 < low <= 1 <= high, not [{low}, {high}]")
    areas = reader.get("assessment_areas", str, "")
    settings = RedliningSettings(
        bands=bands,
        peer_volume=(low, high),
        min_peers=int(reader.number("min_peers", 1, 1000, 5)),
        assessment_areas=(path.parent / areas) if areas else None,
    )
    if settings.assessment_areas is not None and not settings.assessment_areas.is_file():
        raise reader.error("assessment_areas", f"assessment-area file '{areas}' not found (looked in {path.parent})")
    reader.finish()
    return settings


# --- [columns]: a bank's own register ----------------------------------------------------------

# The audit's fields a [columns] section may map, and the register field each stands for.
COLUMN_FIELDS = {
    "lender": "lei",
    "application_id": "application_id",
    "decision": "action_taken",
    "race": "derived_race",
    "ethnicity": "derived_ethnicity",
    "sex": "derived_sex",
    "income": "income",
    "dti": "debt_to_income_ratio",
    "ltv": "combined_loan_to_value_ratio",
    "amount": "loan_amount",
    "product": "loan_type",
    "purpose": "loan_purpose",
    "lien": "lien_status",
    "tract": "census_tract",
    "tract_minority_pct": "tract_minority_population_percent",
    "msa": "derived_msa_md",
    "rate_spread": "rate_spread",
    "age": "applicant_age",
}
COLUMN_REQUIRED = ("lender", "decision", "race", "ethnicity", "sex", "income", "dti", "amount")
# ltv may be left out for unsecured lending (cards, personal loans): every row then reads 0
# (``column_map.UNSECURED``), so leave cltv out of the covariates and similarity columns too.
# Columns the race and ethnicity proxy reads (``reasoner.lending.proxies``); with one of them mapped,
# race, ethnicity and sex may be absent (a card or auto register reports none of them).
PROXY_FIELDS = ("surname", "first_name", "zip", "address")
PROXY_OPTIONAL = ("race", "ethnicity", "sex")
# What the values of a field may be mapped to: the published values (or decisions)
COLUMN_TARGETS: dict[str, dict[str, str]] = {
    "decision": {"approved": "1", "denied": "3", "other": "4"},
    "race": {name: name for name in DERIVED_RACE},
    "ethnicity": {name: name for name in DERIVED_ETHNICITY},
    "sex": {name: name for name in DERIVED_SEX},
    "product": {"Conventional": "1", "FHA": "2", "VA": "3", "FSA/RHS": "4"},
    "purpose": {
        "Home purchase": "1",
        "Home improvement": "2",
        "Refinancing": "31",
        "Cash-out refinancing": "32",
        "Other purpose": "4",
        "Not applicable": "5",
    },
    "lien": {"First lien": "1", "Subordinate lien": "2"},
}
INCOME_UNITS = {"dollars": 1000.0, "thousands": 1.0}  # divisor to the published thousands


@dataclass(frozen=True, slots=True)
class ColumnMap:
    """A bank's register described in ``[columns]``: ``columns`` is (field, the register's column,
    where it is mapped: 'audit.toml:12'), ``values`` (field, {the register's value: the published
    value or code}); ``income_divisor`` turns its income into thousands."""

    path: Path
    columns: tuple[tuple[str, str, str], ...]
    values: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]
    income_divisor: float
    proxy_columns: tuple[tuple[str, str, str], ...] = ()  # (PROXY_FIELDS field, the register's column, where)

    def proxy_column(self, field: str) -> str:
        """The register's column mapped to a ``PROXY_FIELDS`` field ('' when none is)."""
        return next((name for mapped, name, _ in self.proxy_columns if mapped == field), "")


def load_column_map(path: Path) -> ColumnMap | None:
    """The ``[columns]`` section of ``audit.toml`` (None when it has none); a ``RuleError`` names the
    file, line and key of a mistake.

    ``[columns]`` maps each audit field (``COLUMN_FIELDS``) to the register's column name, and
    ``income_unit`` says whether income is in 'dollars' (default) or 'thousands'.
    ``[columns.values.FIELD]`` lists, for each published value (``COLUMN_TARGETS``), the register's
    values that mean it: ``denied = ["D", "DECLINED"]``.
    """
    text = path.read_text(encoding="utf-8")
    data = tomllib.loads(text)  # load_config has already reported invalid TOML with its position
    if "columns" not in data:
        return None
    section = data["columns"]
    if not isinstance(section, dict):
        raise config_error(path, text, "audit.toml", "columns", "'columns' must be a table ([columns])")
    reader = _Reader(path, text, section, "columns")
    allowed = [*COLUMN_FIELDS, *PROXY_FIELDS, "income_unit", "values"]
    for key in section:
        if key not in allowed:
            notes = did_you_mean(key, allowed, otherwise=f"known keys: {', '.join(allowed)}")
            raise reader.error(key, f"unknown key '{key}' in [columns]", notes)
    columns = []
    proxied = any(field in section for field in PROXY_FIELDS)
    proxy_columns = []
    for field in PROXY_FIELDS:
        if field in section:
            line, _ = _locate(text, "columns", field)
            proxy_columns.append((field, reader.get(field, str), f"{path.name}:{line}"))
    for field in COLUMN_FIELDS:
        if field not in section:
            if field in COLUMN_REQUIRED and not (proxied and field in PROXY_OPTIONAL):
                notes = (f"the audit needs: {', '.join(COLUMN_REQUIRED)}",)
                raise reader.error(None, f"[columns] has no '{field}'", notes)
            continue
        name = reader.get(field, str)
        line, _ = _locate(text, "columns", field)
        columns.append((field, name, f"{path.name}:{line}"))
    unit = reader.get("income_unit", str) if "income_unit" in section else "dollars"
    if unit not in INCOME_UNITS:
        raise reader.error("income_unit", f"'income_unit' must be 'dollars' or 'thousands', not {unit!r}")
    values_table = reader.get("values", dict) if "values" in section else {}
    values = []
    values_reader = _Reader(path, text, values_table, "columns.values")
    mapped = {field for field, _, _ in columns}
    for field in sorted(values_table):
        if field not in COLUMN_TARGETS:
            notes = did_you_mean(field, COLUMN_TARGETS, otherwise=f"fields with values: {', '.join(COLUMN_TARGETS)}")
            raise _header_error(path, text, f"columns.values.{field}", f"no values can be mapped for '{field}'", notes)
        if field not in mapped:
            message = f"values for '{field}', but [columns] maps no column to it"
            raise _header_error(path, text, f"columns.values.{field}", message)
        table = _Reader(path, text, values_reader.table(field), f"columns.values.{field}")
        pairs: dict[str, str] = {}
        for target in sorted(table.data):
            if target not in COLUMN_TARGETS[field]:
                known = ", ".join(COLUMN_TARGETS[field])
                notes = did_you_mean(target, COLUMN_TARGETS[field], otherwise=f"expected one of: {known}")
                raise table.error(target, f"unknown {field} '{target}'", notes)
            for value in table.strings(target):
                if value in pairs:
                    twice = f"the value '{value}' is mapped twice (to '{pairs[value]}' and '{target}')"
                    raise table.error(target, twice)
                pairs[value] = target
        values.append((field, tuple((value, COLUMN_TARGETS[field][target]) for value, target in pairs.items())))
    if "decision" not in dict(values):
        raise config_error(
            path,
            text,
            "columns",
            "decision",
            "[columns.values.decision] must list the register's values for approved, denied and other decisions",
        )
    return ColumnMap(path, tuple(columns), tuple(values), INCOME_UNITS[unit], tuple(proxy_columns))


def _header_error(path: Path, text: str, header: str, message: str, notes: tuple[str, ...] = ()) -> RuleError:
    """An error pointing at the ``[header]`` line of a table."""
    lines = text.splitlines()
    number = next((index for index, line in enumerate(lines) if line.strip() == f"[{header}]"), 0)
    source_line = lines[number] if lines else ""
    column = source_line.find("[") + 1 or 1
    span = Span(str(path), number + 1, column, number + 1, column + len(header) + 2, source_line)
    return RuleError([Diagnostic(span, message, notes=notes)])


def check_proxy_columns(config: AuditConfig, available: Iterable[str]) -> None:
    """A ``RuleError`` at its line in ``[proxies]`` when a surname, first-name or ZIP column named there
    is not a column of the register (``available``), with a did-you-mean."""
    known = sorted(set(available))
    settings = config.proxies
    named = (
        ("surname", settings.surname),
        ("first_name", settings.first_name),
        ("zip", settings.zip),
        ("address", settings.address),
    )
    for key, name in named:
        if name and name not in known:
            notes = did_you_mean(name, known, cutoff=0.75)
            raise config_error(
                config.path,
                read_config_text(config.path),
                "proxies",
                key,
                f"the register has no column '{name}' ({key} of [proxies])",
                notes,
            )


def check_config_columns(config: AuditConfig, available: Iterable[str]) -> None:
    """A ``RuleError`` at the line and column of a similarity, block or covariate column of
    ``audit.toml`` that the cleaned register does not have (``available``), with a did-you-mean."""
    known = sorted(set(available))
    for section, key, names in _column_keys(config):
        for name in names:
            if name in known:
                continue
            notes = did_you_mean(name, known, otherwise="columns of the cleaned register: " + ", ".join(known))
            raise _column_error(config, section, key, name, f"unknown column '{name}' in '{key}' of [{section}]", notes)


def check_covariate_types(config: AuditConfig, frame: pd.DataFrame) -> None:
    """A ``RuleError`` at its line when a numeric covariate or a banded column is not numbers, or a
    categorical covariate has more values than a model can take."""
    from pandas.api.types import is_numeric_dtype  # here: reading the configuration needs no pandas

    for key, names in (
        ("covariates", config.covariates),
        ("pricing_covariates", config.pricing_covariates),
        ("bands", tuple(name for name, _ in config.bands)),
        ("pricing_bands", tuple(name for name, _ in config.pricing_bands)),
    ):
        for name in names:
            if name in frame.columns and not is_numeric_dtype(frame[name]):
                message = f"covariate '{name}' in '{key}' is not numeric ({frame[name].dtype})"
                raise _column_error(config, "statistics", key, name, message, ("name it in categorical_covariates",))
    for key, names in (
        ("categorical_covariates", config.categorical_covariates),
        ("pricing_categorical_covariates", config.pricing_categorical_covariates),
    ):
        for name in names:
            try:
                category_levels(frame[name])
            except UsageError as error:
                raise _column_error(config, "statistics", key, name, str(error)) from None


def _column_keys(config: AuditConfig) -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    return (
        ("similarity", "columns", config.similarity_columns),
        ("similarity", "log_columns", config.log_columns),
        ("similarity", "blocks", config.blocks),
        ("statistics", "covariates", config.covariates),
        ("statistics", "pricing_covariates", config.pricing_covariates),
        ("statistics", "categorical_covariates", config.categorical_covariates),
        ("statistics", "pricing_categorical_covariates", config.pricing_categorical_covariates),
        ("statistics", "bands", tuple(name for name, _ in config.bands)),
        ("statistics", "pricing_bands", tuple(name for name, _ in config.pricing_bands)),
    )


def _column_error(
    config: AuditConfig, section: str, key: str, name: str, message: str, notes: tuple[str, ...] = ()
) -> RuleError:
    """A diagnostic at ``name`` where ``key`` of ``[section]`` lists it (a string, or an inline-table key)."""
    text = config.path.read_text(encoding="utf-8")
    lines = text.splitlines()
    line, column = _locate(text, section, key)
    source_line = lines[line - 1] if 0 < line <= len(lines) else ""
    found = source_line.find(f'"{name}"')
    column = found + 2 if found >= 0 else column
    bare = re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}\s*=", source_line) if found < 0 else None
    column = bare.start() + 1 if bare else column  # a key of an inline table: bands = { dti = [...] }
    span = Span(str(config.path), line, column, line, column + len(name), source_line)
    return RuleError([Diagnostic(span, message, notes=notes)])
