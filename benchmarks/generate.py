"""Scalable synthetic MLN benchmarks: rules + evidence written to a directory.

Two programs:

``smokers``
    The classic smokers/friends network (non-Tuffy form: no ``*``; the query
    predicates ``Smokes`` and ``Cancer`` are open world, ``Friends`` is evidence).
    People are split into communities of ``--community`` people; every person
    names ``--friends`` friends inside their own community, so the ground
    network splits into independent components of about ``2 × community``
    atoms. A fraction of people have ``Smokes`` evidence. Evidence is a ``.db``
    file (one atom per line).

``lending``
    Applicants of lenders (skewed lender sizes, capped at ``--max-lender``).
    ``Similar(a, b)`` holds for the ``--k`` nearest applicants ``b`` of ``a``
    (by a synthetic score) inside the same lender only (a blocked join).
    Evidence comes from two parquet tables through ``bind`` statements:
    ``applications.parquet`` (id, lender, approved, minority, score) and
    ``pairs.parquet`` (a, b). Query: ``Disparate`` and ``Flagged``.

Usage::

    python benchmarks/generate.py smokers --people 20000 --out /tmp/smokers
    python benchmarks/generate.py lending --applicants 50000 --out /tmp/lending

``generate(kind, size, out)`` returns a ``Benchmark`` with the rule file,
evidence files, tables and query predicates, ready for ``reasoner.pipeline``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["Benchmark", "generate", "lending", "smokers"]


@dataclass
class Benchmark:
    kind: str
    size: int
    rules: list[str]
    db_files: list[str] = field(default_factory=list)
    tables: dict[str, str] = field(default_factory=dict)
    queries: list[str] = field(default_factory=list)
    info: Mapping[str, object] = field(default_factory=dict)

    def command(self) -> str:
        """The equivalent ``reason`` command line."""
        parts = ["reason", *self.rules, *self.db_files]
        parts += [f"--table {name}={path}" for name, path in self.tables.items()]
        parts += ["--query", ",".join(self.queries), "--margins", "none", "--json"]
        return " ".join(parts)


# -- smokers / friends ---------------------------------------------------------

SMOKERS_RULES = """\
// Smokers and friends (Richardson & Domingos 2006), non-Tuffy declarations.
Smokes(person)
Cancer(person)
Friends(person, person)

1.5  Smokes(x) => Cancer(x)
1.1  Friends(x, y) ^ Smokes(x) => Smokes(y)
-0.8 Smokes(x)
-0.4 Cancer(x)
"""


def smokers(
    people: int,
    out: Path,
    *,
    community: int = 200,
    friends: int = 8,
    evidence_fraction: float = 0.1,
    seed: int = 1,
) -> Benchmark:
    """``people`` people in communities of ``community``, ``friends`` friends each (directed)."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    rules = out / "smokers.mln"
    rules.write_text(SMOKERS_RULES)

    person = np.arange(people)
    group = person // community
    start = group * community
    size = np.minimum(community, people - start)
    # Each person names `friends` others of their community (drawn with
    # replacement; duplicates dropped, so a few people have fewer).
    offsets = rng.integers(1, np.maximum(size, 2)[:, None], (people, friends))
    source = np.repeat(person, friends)
    target = (start[:, None] + ((person - start)[:, None] + offsets) % size[:, None]).ravel()
    keep = source != target
    source, target = source[keep], target[keep]
    pairs = np.unique(np.stack([source, target], axis=1), axis=0)

    chosen = rng.random(people) < evidence_fraction
    smokes = rng.random(people) < 0.4

    lines = [f"Friends(P{a}, P{b})" for a, b in pairs.tolist()]
    evidence = zip(person[chosen].tolist(), smokes[chosen].tolist(), strict=True)
    lines += [f"{'' if s else '!'}Smokes(P{p})" for p, s in evidence]
    db = out / "smokers.db"
    db.write_text("\n".join(lines) + "\n")
    info = {"people": people, "communities": int(group.max()) + 1 if people else 0, "friend_pairs": len(pairs),
            "smokes_evidence": int(chosen.sum())}
    return Benchmark("smokers", people, [str(rules)], db_files=[str(db)], queries=["Smokes", "Cancer"], info=info)


# -- lending ---------------------------------------------------------------------

LENDING_RULES = """\
// Lending: disparate treatment of similar applicants, per lender.
Lender(app, lender)
Approved(app)
Minority(app)
Similar(app, app)
Disparate(app)
Flagged(lender)

bind Lender(id, lender) from applications
bind Approved(id) from applications where approved = 1
bind Minority(id) from applications where minority = 1
bind Similar(a, b) from pairs

// A minority applicant denied while a similar applicant was approved.
2.0  Similar(a, b) ^ Minority(b) ^ !Approved(b) ^ Approved(a) => Disparate(b)
// Disparate treatment of similar minority applicants goes together.
0.6  Similar(a, b) ^ Minority(a) ^ Minority(b) ^ !Approved(b) ^ Disparate(a) => Disparate(b)
// Approved applicants are not disparately treated... mostly.
1.0  Approved(a) => !Disparate(a)
-1   Disparate(a)
// Lender level: a lender with disparately treated applicants is flagged.
0.7  Lender(a, l) ^ Disparate(a) => Flagged(l)
-2.5 Flagged(l)
"""


def lending(
    applicants: int,
    out: Path,
    *,
    k: int = 8,
    mean_lender: int = 150,
    max_lender: int = 400,
    minority_rate: float = 0.3,
    seed: int = 1,
) -> Benchmark:
    """``applicants`` applicants in lenders of skewed size (lognormal, mean ≈ ``mean_lender``)."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    rules = out / "lending.mln"
    rules.write_text(LENDING_RULES)

    sizes: list[int] = []
    remaining = applicants
    while remaining > 0:
        draw = int(np.clip(rng.lognormal(np.log(mean_lender) - 0.5, 1.0), 10, max_lender))
        draw = min(draw, remaining)
        sizes.append(draw)
        remaining -= draw
    lender = np.repeat(np.arange(len(sizes)), sizes)
    minority = rng.random(applicants) < minority_rate
    score = rng.normal(0.0, 1.0, applicants)
    approve_probability = 1 / (1 + np.exp(-(1.5 * score + 0.4 - 0.6 * minority)))
    approved = rng.random(applicants) < approve_probability

    # k nearest by score within each lender: sort by (lender, score); in one
    # dimension the k nearest are among the k neighbours on either side.
    order = np.lexsort((score, lender))
    sorted_lender = lender[order]
    sorted_score = score[order]
    candidates_a, candidates_b, distance = [], [], []
    for shift in range(1, k + 1):
        for sign in (1, -1):
            other = np.arange(applicants) + sign * shift
            valid = (other >= 0) & (other < applicants)
            valid[valid] &= sorted_lender[other[valid]] == sorted_lender[valid]
            here = np.flatnonzero(valid)
            candidates_a.append(here)
            candidates_b.append(other[here])
            distance.append(np.abs(sorted_score[here] - sorted_score[other[here]]))
    a = np.concatenate(candidates_a)
    b = np.concatenate(candidates_b)
    d = np.concatenate(distance)
    pick = np.lexsort((d, a))  # by applicant, nearest first
    a, b = a[pick], b[pick]
    rank = np.arange(len(a)) - np.searchsorted(a, a)
    keep = rank < k
    a, b = order[a[keep]], order[b[keep]]

    ids = np.array([f"A{i}" for i in range(applicants)], dtype=object)
    applications = pd.DataFrame(
        {
            "id": ids,
            "lender": np.array([f"L{i}" for i in lender], dtype=object),
            "approved": approved.astype(np.int64),
            "minority": minority.astype(np.int64),
            "score": score,
        }
    )
    pairs = pd.DataFrame({"a": ids[a], "b": ids[b]})
    applications_path = out / "applications.parquet"
    pairs_path = out / "pairs.parquet"
    applications.to_parquet(applications_path, index=False)
    pairs.to_parquet(pairs_path, index=False)
    info = {"applicants": applicants, "lenders": len(sizes), "largest_lender": max(sizes, default=0),
            "similar_pairs": len(pairs), "approved": int(approved.sum()), "minority": int(minority.sum())}
    return Benchmark(
        "lending",
        applicants,
        [str(rules)],
        tables={"applications": str(applications_path), "pairs": str(pairs_path)},
        queries=["Disparate", "Flagged"],
        info=info,
    )


def generate(kind: str, size: int, out: Path, **options: object) -> Benchmark:
    if kind == "smokers":
        return smokers(size, out, **options)  # type: ignore[arg-type]
    if kind == "lending":
        return lending(size, out, **options)  # type: ignore[arg-type]
    raise ValueError(f"unknown benchmark '{kind}' (smokers, lending)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="kind", required=True)
    s = sub.add_parser("smokers")
    s.add_argument("--people", type=int, required=True)
    s.add_argument("--community", type=int, default=200)
    s.add_argument("--friends", type=int, default=8)
    s.add_argument("--evidence-fraction", type=float, default=0.1)
    le = sub.add_parser("lending")
    le.add_argument("--applicants", type=int, required=True)
    le.add_argument("--k", type=int, default=8)
    le.add_argument("--mean-lender", type=int, default=150)
    le.add_argument("--max-lender", type=int, default=400)
    le.add_argument("--minority-rate", type=float, default=0.3)
    for p in (s, le):
        p.add_argument("--out", type=Path, required=True)
        p.add_argument("--seed", type=int, default=1)
    args = vars(parser.parse_args())
    kind, out = args.pop("kind"), args.pop("out")
    size = args.pop("people" if kind == "smokers" else "applicants")
    bench = generate(kind, size, out, **args)
    print(json.dumps(asdict(bench), indent=2))
    print(bench.command())


if __name__ == "__main__":
    main()
