"""Scaling benchmark: parse/check, evidence, ground, encode, solve for growing sizes.

Every (program, size) runs in a fresh Python process, so its peak RSS is its
own. Stages run in-process through the pipeline functions (no CLI, no JSON
rendering); margins are off. The solve runs twice: ``workers=1`` and
``workers=2`` (both must give the same cost).

    python benchmarks/run.py --quick             # small sizes, < 1 minute
    python benchmarks/run.py                     # up to ~1 million ground formulas
    python benchmarks/run.py --kind smokers --sizes 100000 --profile /tmp/prof
    python benchmarks/run.py --json results.json

Targets (spec): grounding ≥ 1M ground formulas/s for join-shaped clausal rules;
1M ground formulas in components of a few hundred atoms solved exactly in < 60 s.
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

QUICK = {"smokers": [2_000, 10_000], "lending": [5_000, 20_000]}
DEFAULT = {"smokers": [10_000, 30_000, 100_000], "lending": [30_000, 100_000, 300_000]}


def measure(bench: Benchmark, workers: list[int], profile: str | None) -> dict[str, object]:
    """Run every stage of the pipeline once (solve once per worker count)."""
    from reasoner.encode import encode
    from reasoner.evidence import load_evidence, parse_query_names
    from reasoner.ground import ground
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
    for count in workers:
        solution = timed(f"solve_w{count}", solve, encoding, margin_atoms=[], workers=count)
        costs[count] = solution.cost
        solve_stats = solution.stats
        assert solution.status == "optimal", solution.status
    if len(set(costs.values())) > 1:
        raise AssertionError(f"costs differ between worker counts: {costs}")
    if profiler is not None:
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
    result = measure(bench, args.workers, args.profile)
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
    parser.add_argument("--kind", default="smokers,lending", help="programs: smokers,lending")
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
                bench = generate(kind, size, out)
                generated = time.perf_counter() - started
                spec = out / "benchmark.json"
                spec.write_text(json.dumps(bench.__dict__))
                command = [sys.executable, str(Path(__file__).resolve()), "--one", str(spec),
                           "--workers", ",".join(map(str, args.workers))]
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
