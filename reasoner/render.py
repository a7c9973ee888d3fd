"""Printing a run: the JSON object and the readable summary."""

from __future__ import annotations

import json

from reasoner.explain import (
    GroundFormulaProof,
    Proof,
    decimal_json,
    decimal_text,
    ground_formula_citations,
    render_proof,
)
from reasoner.pipeline import Run

__all__ = ["render_json", "render_text", "unsat_core"]


def unsat_core(run: Run) -> list[GroundFormulaProof]:
    """The ground hard formulas of an unsatisfiable core, with their evidence."""
    solution, encoding = run.solution, run.encoding
    pairs = list(solution.core_evidence)
    for formula in solution.core:
        pairs.append((int(encoding.formula_block[formula]), int(encoding.formula_row[formula])))
    return [ground_formula_citations(run.network, solution, block, row) for block, row in pairs]


def _stats(run: Run) -> dict[str, object]:
    network_stats = run.network.stats
    return {
        "ground_formulas": network_stats.ground_formulas,
        "groundings": network_stats.total_groundings,
        "violated_by_evidence": network_stats.violated_by_evidence,
        "unknown_atoms": network_stats.unknown_atoms,
        "clauses": run.encoding.num_clauses,
        "variables": run.encoding.num_vars,
        "components": len(run.encoding.components),
        "largest_component": int(run.encoding.components.sizes().max(initial=0)),
        "zero_weight_formulas": network_stats.zero_weight_formulas,
        "skipped_rows": dict(run.evidence.skipped),
        "seconds": {stage: round(value, 4) for stage, value in run.seconds.items()},
    }


def render_json(run: Run, proofs: list[Proof] | None = None, timings: bool = True) -> str:
    solution = run.solution
    margins: dict[str, float | int | str | None] = {}
    for atom in run.atoms:
        if run.has_margin(atom):
            margin = run.margin(atom)
            margins[atom.text] = None if margin is None else decimal_json(margin)
    result: dict[str, object] = {
        "status": solution.status,
        "cost": decimal_json(run.cost(solution.cost)),
    }
    if solution.status == "feasible":
        result["lower_bound"] = decimal_json(run.cost(solution.lower_bound))
        result["gap"] = _gap(solution.cost, solution.lower_bound)
    if "hard_broken" in solution.stats:
        result["hard_broken"] = solution.stats["hard_broken"]
    if solution.status == "unsatisfiable":
        result["unsat_core"] = [_core_json(item) for item in unsat_core(run)]
    else:
        result["query_atoms"] = {atom.text: atom.value for atom in run.atoms}
        result["margins"] = margins
    stats = _stats(run)
    if not timings:
        stats.pop("seconds")
    result["stats"] = stats
    if run.notes:
        result["notes"] = list(run.notes)
    if proofs:
        result["explanations"] = [proof.to_json() for proof in proofs]
    return json.dumps(result, indent=None, ensure_ascii=False)


def _gap(cost: int, lower_bound: int) -> float:
    """The relative gap between a world's cost and the proven lower bound."""
    return 0.0 if cost <= 0 else round((cost - lower_bound) / cost, 6)


def _core_json(item: GroundFormulaProof) -> dict[str, object]:
    return {
        "rule": item.rule,
        "location": item.location,
        "substitution": dict(item.substitution),
        "atoms": [
            {"atom": a.atom, "value": None, "source": "open"} if a.source == "open"
            else {"atom": a.atom, "value": a.value, "source": a.source}
            for a in item.atoms
        ],
    }


def render_text(run: Run, proofs: list[Proof] | None = None) -> str:
    solution = run.solution
    stats = _stats(run)
    lines = [
        f"status: {solution.status}",
        "cost: n/a (no world satisfies the hard formulas)" if solution.status == "unsatisfiable" else
        f"cost: {decimal_text(run.cost(solution.cost))}"
        + (f" (lower bound {decimal_text(run.cost(solution.lower_bound))}, "
           f"gap {_gap(solution.cost, solution.lower_bound):.4%})" if solution.status == "feasible" else "")
        + (f"; {solution.stats['hard_broken']:,} hard ground formulas broken"
           if "hard_broken" in solution.stats else ""),
        f"ground formulas: {stats['ground_formulas']:,} in {_count(stats['components'], 'component')} "
        f"(largest {_count(stats['largest_component'], 'variable')}); "
        f"{stats['violated_by_evidence']:,} violated by evidence",
    ]
    if solution.status == "unsatisfiable":
        lines.append("the hard formulas cannot all hold; this set of ground hard formulas is contradictory:")
        for item in unsat_core(run):
            lines.append(f"  {item.rule}    ({item.location})")
            if item.substitution:
                lines.append("      with " + ", ".join(f"{n}={v}" for n, v in item.substitution))
            for atom in item.atoms:
                value = "open" if atom.source == "open" else ("true" if atom.value else "false")
                source = "" if atom.source == "open" else f"  [{atom.source}]"
                lines.append(f"      {atom.atom} = {value}{source}")
    else:
        lines.append("")
        width = max((len(atom.text) for atom in run.atoms), default=0)
        for query in run.atoms:
            margin = ""
            if query.fixed:
                margin = "  (evidence)"
            elif run.has_margin(query):
                amount = run.margin(query)
                margin = "  margin hard" if amount is None else f"  margin {decimal_text(amount)}"
            lines.append(f"{query.text:<{width}}  {'true ' if query.value else 'false'}{margin}")
    for note in run.notes:
        lines.append(f"note: {note}")
    for proof in proofs or []:
        lines.append("")
        lines.append(render_proof(proof))
    return "\n".join(lines)


def _count(number: object, noun: str) -> str:
    value = int(str(number))
    return f"{value:,} {noun}{'' if value == 1 else 's'}"
