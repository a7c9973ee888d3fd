"""Scaling benchmark: parse/check, evidence, ground, encode, solve for growing sizes.

Every (program, size) runs in a fresh Python process, so its peak RSS is its
own. Stages run in-process through the pipeline functions (no CLI, no JSON
rendering); margins are off. The solve runs twice: ``workers=1`` and
``workers=2`` (both must give the same cost).

    python benchmarks/run.py --quick             # small sizes, < 1 minute
    python benchmarks/run.py                     # up to ~1 million ground formulas
    python benchmarks/run.py --kind smokers --sizes 100000 --profile /tmp/prof
    python benchmarks/run.py --json results.json
    python benchmarks/run.py --kind cse --time-limit 60      # one large hard component (UW-CSE-like)
    python benchmarks/run.py --kind tuffy-cse --tuffy-cse DIR --time-limit 60   # Tuffy's own sample

Targets (spec): grounding ≥ 1M ground formulas/s for join-shaped clausal rules;
1M ground formulas in components of a few hundred atoms solved exactly in < 60 s.

``cse`` is generated here: an advising program in the style of the UW-CSE data
set (people, papers, courses; ``advisedBy`` is the query) whose ground network
is one large component, hard for exact MaxSAT. ``tuffy-cse`` reads Tuffy's
``samples/cse`` (``prog.mln``, ``evidence.db``) from the directory given with
``--tuffy-cse``; it is not part of this project. With ``--time-limit`` the
solve may stop early: the table then shows the status, the cost of the world
(recomputed clause by clause, independently of the solver), the proven lower
bound and the gap.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from generate import Benchmark, generate  # noqa: E402

QUICK = {"smokers": [2_000, 10_000], "lending": [5_000, 20_000], "cse": [40], "tuffy-cse": [0]}
DEFAULT = {"smokers": [10_000, 30_000, 100_000], "lending": [30_000, 100_000, 300_000], "cse": [50, 70],
           "tuffy-cse": [0]}

CSE_RULES = """\
// Who advises whom, from papers and courses (in the style of the UW-CSE data set).
*professor(person)
*student(person)
*publication(paper, person)
*taughtBy(course, person)
*ta(course, person)
*samePerson(person, person)
advisedBy(person, person)

-1.2 advisedBy(s, p)
1.9  advisedBy(s, p) => student(s)
2.4  advisedBy(s, p) => professor(p)
1.3  publication(t, s) ^ publication(t, p) ^ student(s) ^ professor(p) => advisedBy(s, p)
0.9  ta(c, s) ^ taughtBy(c, p) => advisedBy(s, p)
0.7  advisedBy(s, p) ^ advisedBy(s, q) => samePerson(p, q)
0.6  publication(t, s) ^ publication(t, r) ^ student(s) ^ student(r) ^ advisedBy(s, p) => advisedBy(r, p)
-0.3 advisedBy(s, p) ^ advisedBy(r, p) ^ !samePerson(s, r)
advisedBy(s, p) => !advisedBy(p, s).
"""


def cse_like(people: int, out: Path, seed: int = 1) -> Benchmark:
    """``people`` people (a quarter professors), two or three papers per student, mostly with
    an advisor, two courses per professor with student TAs: one component of ``people²``
    ``advisedBy`` atoms and ``people³`` one-advisor clauses."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    rules = out / "cse.mln"
    rules.write_text(CSE_RULES)
    professors = max(2, people // 4)
    lines = [f"professor(P{p})" for p in range(professors)]
    lines += [f"student(P{s})" for s in range(professors, people)]
    lines += [f"samePerson(P{p}, P{p})" for p in range(people)]
    paper = 0
    for student in range(professors, people):
        advisor = int(rng.integers(professors))
        for _ in range(int(rng.integers(2, 4))):
            coauthor = advisor if rng.random() < 0.7 else int(rng.integers(people))
            lines += [f"publication(T{paper}, P{student})", f"publication(T{paper}, P{coauthor})"]
            paper += 1
    for course in range(2 * professors):
        lines.append(f"taughtBy(C{course}, P{course % professors})")
        for ta in rng.choice(np.arange(professors, people), size=min(2, people - professors), replace=False).tolist():
            lines.append(f"ta(C{course}, P{ta})")
    db = out / "cse.db"
    db.write_text("\n".join(sorted(set(lines))) + "\n")
    info = {"people": people, "professors": professors, "papers": paper}
    return Benchmark("cse", people, [str(rules)], db_files=[str(db)], queries=["advisedBy"], info=info)


def tuffy_cse(folder: Path) -> Benchmark:
    """Tuffy's ``samples/cse`` as it is (read from ``folder``)."""
    return Benchmark("tuffy-cse", 0, [str(folder / "prog.mln")], db_files=[str(folder / "evidence.db")],
                     queries=["advisedBy"], info={"source": str(folder)})


def measure(
    bench: Benchmark, workers: list[int], profile: str | None, time_limit: float | None = None, solver: str = "auto"
) -> dict[str, object]:
    """Run every stage of the pipeline once (solve once per worker count)."""
    from reasoner.encode import encode
    from reasoner.evidence import load_evidence, parse_query_names
    from reasoner.ground import ground
    from reasoner.local_search import clause_costs
    from reasoner.pipeline import check, query_atoms
    from reasoner.solve import solve

    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
    seconds: dict[str, float] = {}
    cpu: dict[str, float] = {}  # this process and its (worker) children, all threads

    def timed(stage: str, function, *args, **kwargs):  # type: ignore[no-untyped-def]
        if profiler is not None:
            profiler.enable()
        before = os.times()
        start = time.perf_counter()
        result = function(*args, **kwargs)
        seconds[stage] = time.perf_counter() - start
        after = os.times()
        cpu[stage] = sum(after[i] - before[i] for i in range(4))
        if profiler is not None:
            profiler.disable()
        return result

    queries = parse_query_names(",".join(bench.queries))
    program = timed("parse", check, [Path(rule) for rule in bench.rules], queries=queries)
    tables = {name: Path(path) for name, path in bench.tables.items()}
    evidence = timed("evidence", load_evidence, program, [Path(p) for p in bench.db_files], tables)
    network = timed("ground", ground, program, evidence)
    encoding = timed("encode", encode, network)
    atoms, _notes = timed("query_atoms", query_atoms, network, program.queries)
    costs = {}
    solve_stats = {}
    answers = {}
    for count in workers:
        solution = timed(f"solve_w{count}", solve, encoding, margin_atoms=[], workers=count, time_limit=time_limit,
                         backend=solver)
        costs[count] = solution.cost
        solve_stats = solution.stats
        recomputed, broken = clause_costs(encoding.offsets, encoding.literals, encoding.weights, solution.values)
        if broken or recomputed + encoding.fixed_cost != solution.cost:
            raise AssertionError(f"the world's cost is {recomputed + encoding.fixed_cost}, reported {solution.cost}")
        answers[count] = {
            "status": solution.status,
            "cost": str(solution.cost / encoding.scale),
            "lower_bound": str(solution.lower_bound / encoding.scale),
            "gap": (solution.cost - solution.lower_bound) / solution.cost if solution.cost else 0.0,
        }
        assert time_limit is not None or solution.status == "optimal", solution.status
    if time_limit is None and len(set(costs.values())) > 1:
        raise AssertionError(f"costs differ between worker counts: {costs}")
    if profiler is not None and profile is not None:
        profiler.dump_stats(profile)
    sizes = [len(component.variables) for component in encoding.components]
    self_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {
        "kind": bench.kind,
        "size": bench.size,
        "info": bench.info,
        "ground_formulas": network.stats.ground_formulas,
        "candidates": network.stats.candidate_groundings,
        "unknown_atoms": network.stats.unknown_atoms,
        "clauses": int(encoding.num_clauses),
        "query_atoms": len(atoms),
        "components": len(encoding.components),
        "largest_component": max(sizes, default=0),
        "median_component": sorted(sizes)[len(sizes) // 2] if sizes else 0,
        "cost": str(costs[workers[0]]),
        "answers": answers,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "load_average": os.getloadavg(),
        "solve_stats": {k: v for k, v in solve_stats.items() if isinstance(v, (int, float))},
        "peak_rss_mb": round(self_peak, 1),
        "worker_peak_rss_mb": round(child_peak, 1),
    }


def one(args: argparse.Namespace) -> None:
    """Child process: generate (untimed, before any engine import) is done by the parent."""
    bench = Benchmark(**json.loads(Path(args.one).read_text()))
    result = measure(bench, args.workers, args.profile, args.time_limit, args.solver)
    print("RESULT " + json.dumps(result), flush=True)


def row(result: dict) -> dict[str, str]:
    s = result["seconds"]
    gf = result["ground_formulas"]
    out = {
        "program": result["kind"],
        "size": f"{result['size']:,}",
        "ground formulas": f"{gf:,}",
        "atoms": f"{result['unknown_atoms']:,}",
        "parse s": f"{s['parse']:.2f}",
        "evidence s": f"{s['evidence']:.2f}",
        "ground s": f"{s['ground']:.2f}",
        "gf/s": f"{gf / s['ground'] / 1e6:.2f}M" if s["ground"] else "-",
        "encode s": f"{s['encode']:.2f}",
    }
    for key in sorted(k for k in s if k.startswith("solve_w")):
        out[f"solve {key[6:]} s"] = f"{s[key]:.2f}"
    answers = result.get("answers") or {}
    answer = answers[min(answers, key=int)] if answers else None  # the fewest workers'
    if answer is not None and (answer["status"] != "optimal" or result["kind"] in ("cse", "tuffy-cse")):
        out["status"] = answer["status"]
        out["cost"] = f"{float(answer['cost']):,.2f}"
        out["lower bound"] = f"{float(answer['lower_bound']):,.2f}"
        out["gap"] = f"{answer['gap']:.3%}"
    out["components"] = f"{result['components']:,}"
    out["largest"] = f"{result['largest_component']:,}"
    out["peak RSS MB"] = f"{result['peak_rss_mb']:,.0f}"
    return out


def table(rows: list[dict[str, str]]) -> str:
    if not rows:
        return ""
    headers = list(rows[0])
    widths = {h: max(len(h), *(len(r.get(h, "")) for r in rows)) for h in headers}
    lines = ["| " + " | ".join(h.rjust(widths[h]) for h in headers) + " |"]
    lines.append("|" + "|".join("-" * (widths[h] + 1) + ":" for h in headers) + "|")
    for r in rows:
        lines.append("| " + " | ".join(r.get(h, "").rjust(widths[h]) for h in headers) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes (< 1 minute in all)")
    parser.add_argument("--kind", default="smokers,lending", help="programs: smokers,lending,cse,tuffy-cse")
    parser.add_argument("--time-limit", type=float, metavar="SECONDS", help="solve with this time limit")
    parser.add_argument("--solver", default="auto", help="backend: auto, rc2 or highs")
    parser.add_argument("--tuffy-cse", type=Path, metavar="DIR",
                        help="Tuffy's samples/cse folder (for --kind tuffy-cse)")
    parser.add_argument("--sizes", help="comma-separated sizes (people / applicants), overrides the defaults")
    parser.add_argument("--workers", type=lambda t: [int(x) for x in t.split(",")], default=[1, 2],
                        help="worker counts to solve with (default 1,2)")
    parser.add_argument("--profile", metavar="DIR", help="write a cProfile file per run into DIR")
    parser.add_argument("--dir", type=Path, help="where to generate (default: a temporary directory)")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one(args)
        return

    sizes_for = QUICK if args.quick else DEFAULT
    kinds = [k.strip() for k in args.kind.split(",") if k.strip()]
    results = []
    rows = []
    with tempfile.TemporaryDirectory(prefix="reasoner-bench-") as scratch:
        base = args.dir or Path(scratch)
        for kind in kinds:
            sizes = [int(x) for x in args.sizes.split(",")] if args.sizes else sizes_for[kind]
            for size in sizes:
                out = base / f"{kind}-{size}"
                started = time.perf_counter()
                if kind == "cse":
                    bench = cse_like(size, out)
                elif kind == "tuffy-cse":
                    if args.tuffy_cse is None:
                        parser.error("--kind tuffy-cse needs --tuffy-cse DIR (Tuffy's samples/cse)")
                    bench = tuffy_cse(args.tuffy_cse.resolve())
                else:
                    bench = generate(kind, size, out)
                generated = time.perf_counter() - started
                out.mkdir(parents=True, exist_ok=True)
                spec = out / "benchmark.json"
                spec.write_text(json.dumps(bench.__dict__))
                command = [sys.executable, str(Path(__file__).resolve()), "--one", str(spec),
                           "--workers", ",".join(map(str, args.workers)), "--solver", args.solver]
                if args.time_limit is not None:
                    command += ["--time-limit", str(args.time_limit)]
                if args.profile:
                    os.makedirs(args.profile, exist_ok=True)
                    command += ["--profile", str(Path(args.profile) / f"{kind}-{size}.prof")]
                started = time.perf_counter()
                done = subprocess.run(command, capture_output=True, text=True)
                wall = time.perf_counter() - started
                lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
                if done.returncode or not lines:
                    print(f"{kind} {size}: failed (exit {done.returncode})\n{done.stderr[-3000:]}", file=sys.stderr)
                    continue
                result = json.loads(lines[-1][7:])
                result["generate_seconds"] = generated
                result["process_seconds"] = wall
                results.append(result)
                rows.append(row(result))
                c = result["cpu_seconds"]
                print(f"# {kind} {size:,}: generated in {generated:.1f} s, measured in {wall:.1f} s; "
                      f"clauses {result['clauses']:,}, components median {result['median_component']}; "
                      f"CPU s: ground {c['ground']:.2f}, "
                      + ", ".join(f"solve {k[6:]} {v:.2f}" for k, v in c.items() if k.startswith("solve_w"))
                      + f"; worker peak RSS {result['worker_peak_rss_mb']:,.0f} MB; "
                      f"load average {result['load_average'][0]:.1f}", file=sys.stderr, flush=True)
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
