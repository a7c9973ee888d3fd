"""Marginal inference benchmark: MC-SAT throughput on the smokers sizes of ``run.py``, and
the samples MC-SAT needs to come within a stated accuracy of exact marginals.

    python benchmarks/marginals.py --quick            # smokers 2,000 and 10,000 people
    python benchmarks/marginals.py --sizes 2000 --samples 200 --json out.json

Throughput: every component is sampled with MC-SAT (``method="mcsat"``), ``chains`` chains
of ``burn_in + samples`` steps; a *step* is one MC-SAT iteration on one component (one
SampleSAT call of as many flips as the component has atoms). Accuracy: smokers in
communities of 6 people (components of at most 12 atoms, enumerated exactly), the largest
and mean absolute error of MC-SAT against the exact marginals for growing sample counts.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from generate import generate  # noqa: E402

from reasoner.encode import Encoding, encode  # noqa: E402
from reasoner.evidence import load_evidence, parse_query_names  # noqa: E402
from reasoner.ground import ground  # noqa: E402
from reasoner.marginal import infer_marginals  # noqa: E402
from reasoner.pipeline import check  # noqa: E402

QUICK = [2_000, 10_000]
DEFAULT = [2_000, 10_000, 30_000]


def encoded(people: int, directory: Path, **options: object) -> tuple[Encoding, float]:
    bench = generate("smokers", people, directory, **options)
    started = time.perf_counter()
    program = check([Path(rule) for rule in bench.rules], queries=parse_query_names(",".join(bench.queries)))
    evidence = load_evidence(program, [Path(p) for p in bench.db_files], {})
    encoding = encode(ground(program, evidence))
    return encoding, time.perf_counter() - started


def throughput(people: int, samples: int, burn_in: int, chains: int, workers: int = 1) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as directory:
        encoding, prepare = encoded(people, Path(directory))
    started = time.perf_counter()
    result = infer_marginals(
        encoding, method="mcsat", samples=samples, burn_in=burn_in, chains=chains, seed=1, workers=workers
    )
    seconds = time.perf_counter() - started
    steps = (samples + burn_in) * chains * result.sampled_components
    return {
        "people": people,
        "workers": workers,
        "unknown_atoms": encoding.num_atoms,
        "clauses": encoding.num_clauses,
        "components": len(encoding.components),
        "largest_component": int(encoding.components.sizes().max(initial=0)),
        "sampled_components": result.sampled_components,
        "ground_and_encode_seconds": round(prepare, 2),
        "marginal_seconds": round(seconds, 2),
        "steps_per_second": round(steps / seconds, 1),
        "atom_samples_per_second": round((samples + burn_in) * chains * result.sampled_atoms / seconds),
        "r_hat": round(result.r_hat, 3),
        "chain_difference": round(result.chain_difference, 3),
    }


def accuracy(people: int, sample_counts: list[int]) -> list[dict[str, object]]:
    with tempfile.TemporaryDirectory() as directory:
        encoding, _ = encoded(people, Path(directory), community=6, friends=2)
    exact = infer_marginals(encoding, method="exact")
    rows: list[dict[str, object]] = []
    for samples in sample_counts:
        started = time.perf_counter()
        sampled = infer_marginals(encoding, method="mcsat", samples=samples, burn_in=50, seed=1)
        seconds = time.perf_counter() - started
        error = np.abs(sampled.probabilities[1:] - exact.probabilities[1:])
        rows.append({
            "people": people, "atoms": encoding.num_atoms, "components": len(encoding.components),
            "samples": samples, "seconds": round(seconds, 2), "max_error": round(float(error.max()), 4),
            "mean_error": round(float(error.mean()), 4), "r_hat": round(sampled.r_hat, 3),
        })
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sizes", type=int, nargs="*")
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--burn-in", type=int, default=10)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--workers", default="1", help="sampling processes, e.g. 1,2 (the marginals are the same)")
    parser.add_argument("--no-accuracy", action="store_true", help="only the throughput table")
    parser.add_argument("--accuracy-people", type=int, default=300)
    parser.add_argument("--json", type=Path)
    options = parser.parse_args()
    sizes = options.sizes or (QUICK if options.quick else DEFAULT)
    results: dict[str, list[dict[str, object]]] = {"throughput": [], "accuracy": []}
    for people in sizes:
        for workers in (int(text) for text in options.workers.split(",")):
            row = throughput(people, options.samples, options.burn_in, options.chains, workers)
            results["throughput"].append(row)
            print(json.dumps(row), flush=True)
    for row in [] if options.no_accuracy else accuracy(options.accuracy_people, [100, 300, 1000, 3000]):
        results["accuracy"].append(row)
        print(json.dumps(row), flush=True)
    if options.json:
        options.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
