"""MAP world of the rule library (``pipeline.Run``) → lender and application findings.

Per lender: the verdict atom (``[findings] lender_verdict``, ``Flagged``), its MAP value
(``flagged``) and margin ``m`` (cost of the best world with the verdict reversed, minus the MAP
cost). ``risk_score = 100 · P(verdict atom)``, the atom's marginal probability in the ground
network (``marginal.atom_marginals``): enumerated exactly when the lender's component has at
most ``[scoring] marginal_exact_atoms`` atoms (12; the rule library's has 6: the verdict and
``Cleared`` with the four kinds of violation), sampled with MC-SAT otherwise (``[scoring]
marginal_samples`` per chain, 2 chains, seeded from ``[scoring] marginal_seed`` and the LEI,
so a lender's score does not depend on the partition it was audited in). ``risk_interval`` is
the half-width of its 95% interval in score points (0 when exact). The tier is the first whose
cut-off the risk score reaches, except that tiers 1-3 mean flagged: a flagged lender below
TIER_3's cut-off is TIER_3, an unflagged one above it TIER_4. ``confidence`` is the label whose
cut-off (``[scoring.confidence]``, in log-odds) the verdict's log-odds ``ln(q / (1 − q))``
reaches, ``q`` the probability of the MAP verdict (``P`` when flagged, ``1 − P`` when not) at
the low end of its interval. A lender that is not flagged and whose comparisons could not tell
(``verdicts``: ``verdict_status`` ``NOT_TESTED`` or ``UNDERPOWERED``) is not presented as low
risk: its tier is its status instead of ``TIER_5_LOW_RISK`` (a ``TIER_4_MONITORING`` lender
stays monitored), its confidence ``INSUFFICIENT_EVIDENCE`` (not tested) or at most
``LOW_CONFIDENCE`` (underpowered); its score is then mostly the presumption of compliance, not
evidence. A flagged lender's confidence is its
probability's whatever its denial comparisons (it may be flagged on redlining shares or
pricing). The recommended action is the tier's, then each violation's (``[scoring.actions]``).
``violation_score`` adds the weights of the ground formulas that push the lender's finding
atoms (``[findings] lender_kinds``) towards a violation.

Per application: every true atom of an application finding (``[findings]
application_findings``), with its margin, confidence (from ``|margin|`` with the same
cut-offs) and ``violation_score`` (the weights of the ground formulas that support it), and the
rules that do.
"""

from __future__ import annotations

import gc
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from reasoner.evidence import arrow_text, is_text
from reasoner.explain import Occurrences, Proof, ProofColumns, explain_columns, explain_keys
from reasoner.ground import TRUE, UNKNOWN
from reasoner.lending.audit.verdicts import VERDICT_COLUMNS, lender_evidence
from reasoner.lending.config import INSUFFICIENT, NOT_TESTED, STATUS_TIERS, TIERS, UNDERPOWERED, AuditConfig
from reasoner.lending.evidence.tables import PartitionTables
from reasoner.lending.proxies.groups import ESTIMATED_COLUMNS, has_estimates
from reasoner.marginal import atom_marginals
from reasoner.pipeline import Run

__all__ = ["APPLICATION_COLUMNS", "COMPARATORS", "LENDER_COLUMNS", "Findings", "positions_of", "score"]

LENDER_COLUMNS = (
    "lei",
    "risk_tier",
    "risk_score",
    "risk_interval",
    "confidence",
    "verdict_status",
    "flagged",
    "violation_score",
    "margin",
    "violations",
    "flagged_applications",
    "applications",
    "usable_applications",
    "denial_rate",
    "recommended_action",
    *VERDICT_COLUMNS,
)
APPLICATION_COLUMNS = (
    "application_id",
    "row",
    "lei",
    "finding",
    "race_ethnicity",
    "sex",
    "decision",
    "violation_score",
    "margin",
    "confidence",
    "rules",
    "comparators",
)


# A finding's comparators, one Arrow list a row: columnar, about a tenth of the memory of Python dicts
# (a national register has half a million findings with ~15 comparators each).
COMPARATORS = pa.list_(
    pa.struct(
        [
            ("application_id", pa.string()),
            ("row", pa.int64()),
            ("comparison", pa.string()),
            ("distance", pa.float64()),
            ("rank", pa.int64()),
            ("decision", pa.string()),
        ]
    )
)


@dataclass(frozen=True, slots=True)
class Findings:
    """``proofs``: (kind, id) → proof, kind 'lender' or the finding predicate; the application findings'
    proofs are in ``columns`` instead (finding predicate → its proofs as columns, and each application id's
    number among them), but for a predicate whose texts Arrow cannot hold (a lone surrogate): those are in
    ``proofs``."""

    lenders: pd.DataFrame
    applications: pd.DataFrame
    proofs: dict[tuple[str, str], Proof]
    columns: dict[str, tuple[ProofColumns, dict[str, int]]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Atom:
    key: int
    constant: object
    value: bool
    margin: float  # inf when no world reverses it; nan when not computed
    atom_id: int = 0  # in the encoding; 0 when fixed by evidence or in no formula
    fixed: bool = False  # given by evidence


def _atoms(run: Run, predicate: str, *, true_only: bool = False) -> list[_Atom]:
    """Every ground atom of a unary predicate (only the true ones with ``true_only``), with its
    value and margin.

    An atom fixed by evidence has an infinite margin; one in no formula is false with margin 0;
    one whose margin was not asked for has NaN.
    """
    network, solution = run.network, run.solution
    index = network.predicates[predicate]
    keys = np.arange(index.num_atoms, dtype=np.int64)
    state, _rows = index.lookup(keys)
    ids = network.atoms.ids(predicate, keys)
    fixed = state != UNKNOWN
    truth = np.where(fixed, state == TRUE, solution.values[ids].astype(bool) & (ids != 0))  # values[0]: unused
    if true_only:
        keys, state, ids, fixed, truth = keys[truth], state[truth], ids[truth], fixed[truth], truth[truth]
    constants = index.args(network.constants, keys)[0]
    values = network.constants.values[constants]
    margins, found = solution.margins, []
    for key, value, atom_id, is_fixed, true in zip(
        keys.tolist(), values.tolist(), ids.tolist(), fixed.tolist(), truth.tolist(), strict=True
    ):
        if is_fixed:
            margin = math.inf
        elif not atom_id:
            margin = 0.0
        elif atom_id not in margins:
            margin = math.nan
        else:  # None: no world with it reversed satisfies the hard rules
            scaled = margins[atom_id]
            margin = math.inf if scaled is None else float(run.cost(scaled))
        found.append(_Atom(key, value, true, margin, 0 if is_fixed else atom_id, is_fixed))
    return found


def _lender_seed(lei: str, seed: int) -> tuple[int, ...]:
    """The entropy of a lender's MC-SAT chains: the configured seed and the LEI's SHA-256, so that
    the lender's score is the same whichever partition, worker or run order audits it."""
    return (seed, int.from_bytes(hashlib.sha256(lei.encode()).digest()[:16], "big"))


def _probabilities(
    run: Run, atoms: Sequence[_Atom | None], leis: Sequence[str], config: AuditConfig
) -> tuple[list[float], list[float]]:
    """P(verdict atom) of each lender and the half-width of its 95% interval (module docstring).

    An atom fixed by evidence has probability 1 or 0, one in no formula (or no atom) 0.5.
    Should the hard formulas have no world, the MAP values stand (interval 0)."""
    probability = [0.5 if atom is None else float(atom.value) if atom.fixed else 0.5 for atom in atoms]
    interval = [0.0] * len(atoms)
    asked = [(i, atom) for i, atom in enumerate(atoms) if atom is not None and atom.atom_id]
    if not asked:
        return probability, interval
    found = atom_marginals(
        run.encoding,
        [atom.atom_id for _, atom in asked],
        [_lender_seed(leis[i], config.marginal_seed) for i, _ in asked],
        samples=config.marginal_samples,
        auto_limit=config.marginal_exact_atoms,
    )
    for position, (i, atom) in enumerate(asked):
        if found is None:
            probability[i] = float(atom.value)
        else:
            probability[i] = float(found.probability[position])
            interval[i] = float(found.interval[position])
    return probability, interval


def _proofs(run: Run, predicate: str, atoms: Sequence[_Atom], occurrences: Occurrences) -> list[Proof]:
    """The proofs of ``atoms`` of ``predicate``, in their order."""
    keys = np.array([atom.key for atom in atoms], dtype=np.int64)
    return explain_keys(run.network, run.solution, predicate, keys, occurrences)


def _effects(proof: Proof, towards_true: bool) -> float:
    """Finite weight of the ground formulas pushing the atom towards true (or false)."""
    items = proof.supporting if proof.value == towards_true else proof.opposing
    return float(sum((abs(item.effect) for item in items if not item.effect.is_infinite()), Decimal(0)))


def _explained(
    run: Run, predicate: str, atoms: Sequence[_Atom], occurrences: Occurrences
) -> ProofColumns | list[Proof]:
    """The proofs of ``atoms`` of ``predicate`` as ``ProofColumns`` (``explain_columns``), or as ``Proof``
    objects should a text be one Arrow cannot hold (a lone surrogate)."""
    keys = np.array([atom.key for atom in atoms], dtype=np.int64)
    try:
        return explain_columns(run.network, run.solution, predicate, keys, occurrences)
    except (UnicodeEncodeError, pa.ArrowInvalid):  # a text Arrow cannot hold; not memory errors or Arrow's bugs
        return explain_keys(run.network, run.solution, predicate, keys, occurrences)


class _Supported:
    """What scoring reads of an application finding's proof: the finite weight pushing it towards true
    (``_effects``) and the locations of the rules that support it; from a ``Proof`` or ``ProofColumns``."""

    def __init__(self, proofs: list[Proof] | ProofColumns) -> None:
        self._proofs = proofs

    def effects(self, number: int) -> float:
        proofs = self._proofs
        if not isinstance(proofs, ProofColumns):
            return _effects(proofs[number], True)
        start, stop = proofs.formula_offsets[number : number + 2].tolist()
        middle = start + proofs.supporting[number]
        effects = proofs.effects[start:middle] if proofs.values[number] else proofs.effects[middle:stop]
        return float(sum((abs(effect) for effect in effects if not effect.is_infinite()), Decimal(0)))

    def rules(self, number: int) -> list[str]:
        proofs = self._proofs
        if not isinstance(proofs, ProofColumns):
            return sorted({item.location for item in proofs[number].supporting})
        start = int(proofs.formula_offsets[number])
        return sorted(set(proofs.locations[start : start + proofs.supporting[number]]))


def score(run: Run, tables: PartitionTables, config: AuditConfig) -> Findings:
    # Proofs are many small objects: keep the collector from rescanning the long-lived ones (the network,
    # evidence, tables) on every pass; a quarter of scoring's time went to it. Collection never changes results.
    gc.freeze()
    try:
        return _score(run, tables, config)
    finally:
        gc.unfreeze()


def _score(run: Run, tables: PartitionTables, config: AuditConfig) -> Findings:
    occurrences = Occurrences(run.network)
    proofs: dict[tuple[str, str], Proof] = {}

    verdict = {str(atom.constant): atom for atom in _atoms(run, config.lender_verdict)}
    kinds: dict[str, list[str]] = {}
    violation: dict[str, float] = {}
    for predicate, label in config.lender_kinds:
        atoms = _atoms(run, predicate)
        for atom, proof in zip(atoms, _proofs(run, predicate, atoms, occurrences), strict=True):
            lei = str(atom.constant)
            violation[lei] = violation.get(lei, 0.0) + _effects(proof, True)
            if atom.value:
                kinds.setdefault(lei, []).append(label)
                proofs[(predicate, lei)] = proof

    lenders = tables.lenders.set_index("lei")
    flagged_apps: dict[str, int] = {}
    app_rows = []
    frame = tables.applications
    findings = [
        (predicate, label, atom)
        for predicate, label in config.application_findings
        for atom in _atoms(run, predicate, true_only=True)
    ]
    # the application findings' proofs as columns (``ProofColumns``): rendered in blocks, no object per citation
    supported: dict[str, _Supported] = {}
    columns: dict[str, tuple[ProofColumns, dict[str, int]]] = {}
    for predicate, _ in config.application_findings:
        atoms = [atom for kind, _, atom in findings if kind == predicate]
        explained = _explained(run, predicate, atoms, occurrences)
        supported[predicate] = _Supported(explained)
        if isinstance(explained, ProofColumns):
            columns[predicate] = (explained, {str(atom.constant): number for number, atom in enumerate(atoms)})
        else:
            proofs.update({(predicate, str(atom.constant)): item for atom, item in zip(atoms, explained, strict=True)})
    numbers = dict.fromkeys(supported, 0)
    # Each finding's row of the frame, and the values of the columns it reports there: taken for all
    # findings at once (a pandas lookup per value cost more than the rest of the loop); an element of
    # ``column[name]`` is what ``frame[name].iat[where]`` gives.
    ids = [str(atom.constant) for _, _, atom in findings]
    wheres = positions_of(frame, ids)
    column = {name: _take(frame[name], wheres) for name in ("lei", "row", "race_ethnicity", "sex", "decision")}
    for number, (predicate, label, atom) in enumerate(findings):
        app = ids[number]
        of_predicate = numbers[predicate]
        numbers[predicate] += 1
        lei = str(column["lei"][number])
        flagged_apps[lei] = flagged_apps.get(lei, 0) + 1
        app_rows.append(
            {
                "application_id": app,
                "row": int(column["row"][number]),
                "lei": lei,
                "finding": label,
                "race_ethnicity": column["race_ethnicity"][number],
                "sex": column["sex"][number],
                "decision": column["decision"][number],
                "violation_score": supported[predicate].effects(of_predicate),
                "margin": atom.margin,
                "confidence": _confidence(config, atom.margin, True),
                "rules": supported[predicate].rules(of_predicate),
                "comparators": None,  # the column is made at once below
            }
        )

    rows = []
    evidence = lender_evidence(tables.denial_odds, [comparison.name for comparison in config.comparisons])
    leis = lenders.index.astype(str).tolist()
    probabilities, intervals = _probabilities(run, [verdict.get(lei) for lei in leis], leis, config)
    for lei, probability, interval in zip(leis, probabilities, intervals, strict=True):
        found = verdict.get(lei)
        flagged = bool(found.value) if found else False
        margin = found.margin if found else 0.0
        risk = round(100.0 * probability, 2)
        tier = next((name for name, low in config.tiers if risk >= low), TIERS[-1])
        if flagged != (tier in TIERS[:3]):  # tiers 1-3 mean flagged, whatever the probability
            tier = TIERS[2] if flagged else TIERS[3]
        usable = int(lenders.at[lei, "usable"])
        status = evidence.status(lei, flagged, config.underpowered_odds_ratio)
        verdict_probability = (probability if flagged else 1.0 - probability) - interval
        confidence = _lender_confidence(config, verdict_probability, flagged or status != NOT_TESTED)
        if status in STATUS_TIERS and tier == TIERS[-1]:
            tier = status
        if status == UNDERPOWERED and confidence != INSUFFICIENT:
            confidence = "LOW_CONFIDENCE"
        violations = sorted(kinds.get(lei, [])) if flagged else []
        rows.append(
            {
                "lei": lei,
                "risk_tier": tier,
                "risk_score": risk,
                "risk_interval": round(100.0 * interval, 2),
                "confidence": confidence,
                "verdict_status": status,
                "flagged": flagged,
                "violation_score": round(violation.get(lei, 0.0), 6),
                "margin": margin,
                "violations": violations,
                "flagged_applications": flagged_apps.get(lei, 0),
                "applications": int(lenders.at[lei, "applications"]),
                "usable_applications": usable,
                "denial_rate": round(int(lenders.at[lei, "denied"]) / usable, 6) if usable else math.nan,
                "recommended_action": config.action(tier, violations),
                **evidence.columns(lei, violations),
            }
        )
    flagged_atoms = [verdict[lei] for lei in leis if lei in verdict and verdict[lei].value]
    for atom, proof in zip(flagged_atoms, _proofs(run, config.lender_verdict, flagged_atoms, occurrences), strict=True):
        proofs[("lender", str(atom.constant))] = proof
    lender_frame = pd.DataFrame(rows, columns=list(LENDER_COLUMNS))
    order = np.lexsort((lender_frame["lei"].to_numpy(), -lender_frame["risk_score"].to_numpy()))
    lender_frame = lender_frame.iloc[order].reset_index(drop=True)
    applications = pd.DataFrame(app_rows, columns=list(APPLICATION_COLUMNS))
    if has_estimates(frame):  # estimated race and ethnicity: the probabilities, named as estimates
        where = positions_of(frame, applications["application_id"].astype(str).tolist())
        for name in ("race_source", *ESTIMATED_COLUMNS):
            applications[name] = frame[name].to_numpy()[where]
    applications["comparators"] = pd.Series(
        pd.arrays.ArrowExtensionArray(_comparators(tables, applications["application_id"].astype(str).tolist())),
        index=applications.index,
    )
    applications = applications.sort_values(["lei", "application_id", "finding"], kind="stable").reset_index(drop=True)
    return Findings(lender_frame, applications, proofs, columns)


def positions_of(frame: pd.DataFrame, ids: Sequence[str]) -> np.ndarray:
    """The position in ``frame`` of each application of ``ids`` (its ``application_id`` as text),
    as ``tables.application_positions(frame)[id]`` gives it, matched as Arrow text (a ``KeyError``
    for an id that is not there)."""
    found = pc.index_in(pa.array(list(ids), pa.large_string()), value_set=_text(frame["application_id"]))
    if found.null_count:
        raise KeyError(ids[int(np.flatnonzero(found.is_null().to_numpy(zero_copy_only=False))[0])])
    return np.asarray(found.to_numpy(zero_copy_only=False), dtype=np.int64)


def _take(values: pd.Series, where: np.ndarray) -> list[Any]:
    """``[values.iat[i] for i in where]``, taken at once: the same Python values (a missing text is NaN)."""
    return list(values.iloc[where].array)


def _confidence(config: AuditConfig, margin: float, tested: bool) -> str:
    """The label whose cut-off ``|margin|`` reaches."""
    if not tested or math.isnan(margin):
        return INSUFFICIENT
    return _label(config, abs(margin))


def _label(config: AuditConfig, log_odds: float) -> str:
    return next((label for label, low in config.confidence if log_odds >= low), "LOW_CONFIDENCE")


def _lender_confidence(config: AuditConfig, probability: float, tested: bool) -> str:
    """The label whose cut-off the log-odds of the verdict's probability (low end) reaches; a
    verdict more likely wrong than right (below 0.5) is LOW_CONFIDENCE."""
    if not tested:
        return INSUFFICIENT
    if probability < 0.5:
        return "LOW_CONFIDENCE"
    return _label(config, math.inf if probability >= 1.0 else math.log(probability / (1.0 - probability)))


def _comparators(tables: PartitionTables, applications: list[str]) -> pa.ListArray:
    """Per application of ``applications`` (in order; one may come twice): its similar reference
    applicants, in the pair table's order (nearest first), as one ``COMPARATORS`` array. The ids
    are matched as Arrow text (each application's position by a hash lookup, not a pandas index)."""
    pairs, frame = tables.pairs, tables.applications
    wanted = pa.array(applications, pa.large_string())
    compared_of = _text(pairs["b"])
    selected = np.flatnonzero(pc.is_in(compared_of, value_set=wanted).to_numpy(zero_copy_only=False))
    compared_of = compared_of.take(selected)
    compared = _text(pairs["a"]).take(selected)
    where = pc.index_in(compared, value_set=_text(frame["application_id"]))  # null: not an application here
    known = where.is_valid().to_numpy(zero_copy_only=False)
    located = where.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    row = np.where(known, frame["row"].to_numpy()[located], 0).astype(np.int64)
    distances = pairs["distance"].to_numpy(dtype=float)[selected]
    values = pa.StructArray.from_arrays(
        [
            compared.cast(pa.string()),
            pa.array(row, pa.int64()),
            _text(pairs["comparison"]).take(selected).cast(pa.string()),
            pa.array([round(distance, 6) for distance in distances.tolist()], pa.float64()),
            pa.array(pairs["rank"].to_numpy(dtype=np.int64)[selected], pa.int64()),
            _text(frame["decision"]).take(where).cast(pa.string()),
        ],
        fields=list(COMPARATORS.value_type),
    )
    # the pairs of one compared applicant together, in the table's order
    encoded = pc.dictionary_encode(compared_of)
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    order = np.argsort(codes, kind="stable")
    counts = np.bincount(codes, minlength=len(encoded.dictionary))
    starts = np.cumsum(counts) - counts
    groups = pc.index_in(wanted, value_set=encoded.dictionary).fill_null(-1).to_numpy(zero_copy_only=False)
    groups = groups.astype(np.int64)
    lengths = np.where(groups >= 0, counts[np.maximum(groups, 0)] if len(counts) else 0, 0)
    first = np.repeat(np.where(groups >= 0, starts[np.maximum(groups, 0)] if len(starts) else 0, 0), lengths)
    offsets = np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    taken = values.take(pa.array(order[first + offsets]))
    bounds = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32), pa.int32())
    return pa.ListArray.from_arrays(bounds, taken, type=COMPARATORS)


def _text(values: pd.Series) -> pa.Array:
    """A column's values as the text ``values.astype(str)`` gives, one Arrow ``large_string`` array."""
    return arrow_text(values if is_text(values) else values.astype(str))
