"""The ``reason`` command: a thin layer over the pipeline.

    reason RULES... [EVIDENCE...] [TABLES...] --query P,Q [--json] [--explain ATOM]
    reason RULES/ FACTS [PAIRS] [-o OUT]      the lending audit (rules with an audit.toml)
    reason audit FACTS [-o OUT]               the same with the built-in rule library
    reason check RULES...
    reason synth OUT --applications N --lenders M --seed S [--simple] [--names]
    reason evaluate OUT TRUTH
    reason explain OUT APPLICATION_ID|LEI     [--format jsonl]; reason explain OUT --all --format jsonl
    reason audit-model MODEL --data TABLE --protected COLUMNS -o OUT   audit a credit model
    reason verify OUT [--key PUB]             re-check the output digests (and signature) of manifest.json
    reason RULES... EVIDENCE... --query P,Q --marginals [--samples N --burn-in N --seed S]
    reason learn RULES... EVIDENCE... TRUTH.db -o LEARNED.mln   learn the formula weights

Arguments are told apart by what they are: ``*.mln`` files and directories of
them are rules, ``*.db`` files are evidence, any other file (parquet, CSV, a register in any
format the audit reads, optionally .gz/.bz2/.zip) and directories of parquet files are tables.
Exit codes: 0 success, 2 bad input or usage, 3 unsatisfiable hard formulas, 4 outputs
that differ from their manifest (verify).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING

from reasoner import __version__, limits
from reasoner.errors import Option, ReasonerError, UsageError, printable

if TYPE_CHECKING:
    from reasoner.check import QueryPattern

__all__ = ["main"]

EXIT_OK, EXIT_INPUT, EXIT_UNSATISFIABLE, EXIT_ALTERED = 0, 2, 3, 4


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def _run_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="reason",
        description="Exact MAP inference for Markov logic programs (Alchemy/Tuffy syntax).",
        epilog=(
            "A rule directory with an audit.toml and no --query runs the fair-lending audit. Subcommands: "
            "check, audit, synth, evaluate, explain, audit-model, verify, learn (reason SUBCOMMAND --help). "
            "Exit codes: 0 ok, 2 bad input, 3 unsatisfiable, 4 outputs altered (verify). "
            "A rule path named like a subcommand: write ./check."
        ),
    )
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="rule files or directories (*.mln), evidence (*.db), tables (parquet, CSV, HMDA registers)",
    )
    parser.add_argument(
        "--query", "-q", action="append", default=[], metavar="P,Q", help="query predicates (open world, reported)"
    )
    parser.add_argument("--query-file", type=Path, metavar="FILE", help="Tuffy query.db: query predicates or atoms")
    parser.add_argument(
        "--table", action="append", default=[], metavar="NAME=PATH", help="a table for 'bind ... from NAME'"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--explain",
        action="append",
        default=[],
        metavar="ATOM",
        help="print the derivation of an atom, e.g. 'Cancer(Anna)'",
    )
    parser.add_argument(
        "--margins", metavar="P,Q|all|none", help="atoms that get margins (default: all query atoms up to 1,000)"
    )
    _marginal_options(parser)
    parser.add_argument(
        "--solver",
        choices=("auto", "rc2", "highs"),
        default="auto",
        help="exact backend per component (default auto: RC2 for small components, local search then HiGHS for large)",
    )
    parser.add_argument(
        "--hard-weight",
        metavar="W",
        help="hard formulas become soft ones of weight W (as in Tuffy); reports how many the world breaks",
    )
    _common_options(parser)
    _audit_output_options(parser)
    parser.add_argument("--version", action="version", version=f"reason {__version__}")
    return parser


def _marginal_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--marginals",
        action="store_true",
        help="print each query atom's probability (Alchemy .result lines; exact on small components, else MC-SAT)",
    )
    parser.add_argument(
        "--samples", type=int, default=1000, metavar="N", help="MC-SAT samples per chain (default 1000)"
    )
    parser.add_argument(
        "--burn-in", type=int, default=100, metavar="N", help="MC-SAT steps discarded first (default 100)"
    )
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="MC-SAT seed (default 0)")


def _learn_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="reason learn",
        description="Learn the weights of the soft formulas (not hard, '@'-fixed or 'w:') from evidence and the true "
        "query atoms: diagonal Newton on the conditional log-likelihood with a Gaussian prior.",
    )
    parser.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="rule files, evidence (*.db) and tables, then TRUTH.db"
    )
    parser.add_argument(
        "--output", "-o", type=Path, required=True, metavar="LEARNED.mln", help="the rules with learned weights"
    )
    parser.add_argument(
        "--query", "-q", action="append", default=[], metavar="P,Q", help="query predicates (default: those in TRUTH)"
    )
    parser.add_argument(
        "--table", action="append", default=[], metavar="NAME=PATH", help="a table for 'bind ... from NAME'"
    )
    parser.add_argument(
        "--sigma", type=float, default=10.0, help="standard deviation of the prior around the written weights"
    )
    parser.add_argument(
        "--iterations", type=int, default=50, metavar="N", help="diagonal Newton iterations (default 50)"
    )
    parser.add_argument("--samples", type=int, default=500, metavar="N", help="MC-SAT samples on large components")
    parser.add_argument("--seed", type=int, default=0, metavar="S")
    parser.add_argument("--force", action="store_true", help="replace an existing output")
    parser.add_argument("--debug", action="store_true")
    return parser


def _learn(options: argparse.Namespace) -> int:
    *inputs, truth_name = options.inputs
    truth = Path(truth_name)
    if truth.suffix.lower() != ".db" or not truth.is_file():
        raise UsageError(f"{truth_name}: the last input must be the truth file (*.db) listing the true query atoms")
    rules, evidence, tables = _classify(inputs, options.table)
    out = Path(options.output)
    if out.exists() and not options.force:
        raise UsageError(f"{out} exists; pass --force to replace it")
    if any(out.resolve() == path.resolve() for path in [*rules, *evidence, truth]):
        raise UsageError(f"{out} is an input; write the learned rules elsewhere")
    patterns, spans = _queries(options.query, None)
    from reasoner.learn import describe_learning, learn_weights, write_learned

    learning = learn_weights(
        rules,
        evidence,
        truth,
        dict(tables),
        patterns,
        sigma=options.sigma,
        iterations=options.iterations,
        samples=options.samples,
        seed=options.seed,
    )
    written = write_learned(learning, out, evidence=evidence, truth=truth)
    print(describe_learning(learning))
    print(f"wrote {', '.join(str(path) for path in written)}")
    return EXIT_OK


def _common_options(parser: argparse.ArgumentParser) -> None:
    """Options of both the engine and the audit."""
    parser.add_argument(
        "--time-limit", type=float, metavar="SECONDS", help="stop exact solving and report the best world found"
    )
    parser.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="processes (default: 1 for the engine, every core for the audit; results do not depend on it)",
    )
    parser.add_argument(
        "--no-timings", action="store_true", help="leave timings out of the JSON or manifest.json (byte-stable output)"
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--memory-limit", metavar="SIZE", help="stop cleanly past this resident memory, e.g. 4G")
    parser.add_argument("--max-groundings", type=int, metavar="N", help="groundings one formula may have (default 20M)")
    _limit_option(parser)


def _hard_weight(text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        weight = Decimal(text)
    except InvalidOperation:
        raise UsageError(f"--hard-weight must be a positive number, got '{printable(text)}'") from None
    if not weight.is_finite() or weight <= 0:
        raise UsageError(f"--hard-weight must be a positive number, got '{printable(text)}'")
    return weight


def _limit_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--limit",
        action="append",
        default=[],
        metavar="NAME=N",
        help="change a rule-file limit: max-rule-bytes, max-line-length, max-statement-tokens, max-nesting, max-range",
    )


def _limits(options: argparse.Namespace) -> limits.Limits:
    """The limits the options set (``--limit NAME=N``, ``--max-groundings``, ``--memory-limit``)."""
    changes: dict[str, int] = {}
    for item in getattr(options, "limit", []):
        name, sep, value = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name or not value.strip():
            raise UsageError(f"--limit {item}: expected NAME=N, e.g. max-rule-bytes=20000000")
        if name not in limits.limit_names() or name in ("max_groundings", "memory_limit"):
            raise UsageError(
                f"--limit {item}: unknown limit '{name.replace('_', '-')}'; the limits are max-rule-bytes, "
                "max-line-length, max-statement-tokens, max-nesting and max-range"
            )
        try:
            changes[name] = int(value.strip().replace(",", "_"))
        except ValueError:
            raise UsageError(f"--limit {item}: expected a whole number") from None
    if getattr(options, "max_groundings", None) is not None:
        changes["max_groundings"] = options.max_groundings
    if getattr(options, "memory_limit", None) is not None:
        changes["memory_limit"] = limits.parse_size(options.memory_limit)
    return limits.Limits().replaced(**changes)


def _flag(option: Option) -> str:
    """How the command line words an argument of the API: as its flag."""
    if option.name == "queries":
        return "--query P,Q or --query-file FILE"
    dashed = option.name.replace("_", "-")
    if option.name in limits.limit_names() and option.name not in ("max_groundings", "memory_limit"):
        return f"--limit {dashed}" + (f"={option.metavar}" if option.metavar else "")
    return f"--{dashed}" + (f" {option.metavar}" if option.metavar else "")


def _render(error: ReasonerError) -> str:
    """The error's message, arguments of the API worded as flags."""
    if error.options:
        error.args = (error.worded(_flag),)
    return error.render()


def _check_common(options: argparse.Namespace) -> limits.Limits:
    if options.workers is not None and options.workers < 1:
        raise UsageError("--workers must be at least 1")
    if options.time_limit is not None and options.time_limit <= 0:
        raise UsageError("--time-limit must be a positive number of seconds")
    return _limits(options)


def _configure_audit(run_limits: limits.Limits, *, memory: bool) -> None:
    """The audit's limits, set for this process (its worker processes take them from it);
    ``memory``: start watching the resident memory, once the libraries the run needs are loaded."""
    if memory and run_limits.memory_limit is not None:
        limits.configure(memory_limit=run_limits.memory_limit)
        return
    changes = {name: getattr(run_limits, name) for name in limits.limit_names() if name != "memory_limit"}
    limits.configure(**changes)


def _audit_output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--output",
        "-o",
        type=Path,
        default=Path("reason-out"),
        metavar="OUT",
        help="audit: output directory (default ./reason-out)",
    )
    parser.add_argument("--force", action="store_true", help="audit: replace the outputs of a previous run")
    parser.add_argument(
        "--sign",
        type=Path,
        metavar="KEY",
        help="audit: sign manifest.json with this Ed25519 private key (PEM) into manifest.json.sig",
    )
    parser.add_argument("--quiet", action="store_true", help="audit: no progress bars or timing table on stderr")
    parser.add_argument(
        "--partition-rows",
        type=int,
        default=None,
        metavar="N",
        help="audit: the most rows of a partition of whole lenders (default: the largest lender's, at least "
        "40,000, smaller towards the end with several workers; results do not depend on it)",
    )
    parser.add_argument(
        "--cluster", metavar="ADDRESS", help="audit: run the partitions on a Dask cluster, e.g. tcp://scheduler:8786"
    )
    parser.add_argument(
        "--model-evidence",
        type=Path,
        metavar="OUT_MODEL",
        help="audit: the -o directory of 'reason audit-model', weighed by rules/70-model.mln",
    )


def _audit_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="reason audit", description="Fair-lending audit of an HMDA table with the built-in rule library."
    )
    parser.add_argument(
        "facts", type=Path, metavar="FACTS", help="HMDA loan/application register: parquet, CSV or pipe-delimited text"
    )
    parser.add_argument(
        "--rules",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="rule directory (default: the built-in library)",
    )
    parser.add_argument(
        "--pairs",
        type=Path,
        metavar="TABLE",
        help="precomputed similar pairs (columns comparison, b, a, distance, rank, lei)",
    )
    _common_options(parser)
    _audit_output_options(parser)
    return parser


def _synth_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="reason synth", description="Write an HMDA-format table with planted discrimination, and its truth."
    )
    parser.add_argument(
        "out", type=Path, metavar="OUT", help="output table (.parquet, else CSV); the truth goes to OUT-stem.truth.csv"
    )
    parser.add_argument("--applications", type=int, default=50_000, metavar="N")
    parser.add_argument("--lenders", type=int, default=100, metavar="M")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--simple", action="store_true", help="the generator without confounds (registers made before they were added)"
    )
    parser.add_argument(
        "--names",
        action="store_true",
        help="add applicant_surname, applicant_first_name and zip_code drawn from the Census tables by group and state",
    )
    parser.add_argument("--debug", action="store_true")
    return parser


def _evaluate_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="reason evaluate",
        description="Lender-level precision, recall, F1 and ROC AUC against a truth file, with baselines.",
    )
    parser.add_argument("out", type=Path, metavar="OUT", help="an audit output directory")
    parser.add_argument(
        "truth", type=Path, metavar="TRUTH", help="truth CSV from 'reason synth' (lei, discriminates, kind)"
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--debug", action="store_true")
    return parser


def _explain_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="reason explain", description="Print the derivation of one finding of an audit in prose.")
    parser.add_argument("out", type=Path, metavar="OUT", help="an audit output directory")
    parser.add_argument("id", metavar="APPLICATION_ID|LEI", nargs="?")
    parser.add_argument("--all", action="store_true", help="every finding's record (with --format jsonl)")
    parser.add_argument(
        "--format", choices=("text", "jsonl"), default="text",
        help="text: the derivation in prose (default); jsonl: the explanation records as JSON lines",
    )
    parser.add_argument("--debug", action="store_true")
    return parser


def _verify_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="reason verify", description="Re-check an audit's output files against manifest.json.")
    parser.add_argument("out", type=Path, metavar="OUT", help="an audit output directory")
    parser.add_argument(
        "--key", type=Path, metavar="PUBLIC_KEY", help="check manifest.json.sig with this Ed25519 public key (PEM)"
    )
    parser.add_argument("--debug", action="store_true")
    return parser


def _check_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="reason check", description="Check rule files: syntax, names, arities, types, safety.")
    parser.add_argument("rules", nargs="+", metavar="RULES")
    parser.add_argument("--query", "-q", action="append", default=[], metavar="P,Q")
    parser.add_argument("--query-file", type=Path, metavar="FILE")
    _limit_option(parser)
    parser.add_argument("--debug", action="store_true")
    return parser


class _Terminated(KeyboardInterrupt):
    """SIGTERM, handled as Ctrl-C: the run stops, cleans up and writes nothing."""


def _terminate(signum: int, frame: object) -> None:
    raise _Terminated


def main(argv: Sequence[str] | None = None) -> int:
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if on_main_thread else None
    try:
        return _main(argv)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main(argv: Sequence[str] | None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in arguments
    options: argparse.Namespace | None = None
    try:
        commands = {
            "check": (_check_parser, _check),
            "audit": (_audit_parser, _audit_command),
            "synth": (_synth_parser, _synth),
            "evaluate": (_evaluate_parser, _evaluate),
            "explain": (_explain_parser, _explain),
            "audit-model": (_audit_model_parser, _audit_model),
            "verify": (_verify_parser, _verify),
            "learn": (_learn_parser, _learn),
        }
        if arguments and arguments[0] in commands:  # by name, never by what is on disk (a path: './check')
            make_parser, command = commands[arguments[0]]
            options = make_parser().parse_args(arguments[1:])
            return command(options)
        options = _run_parser().parse_args(arguments)
        return _run(options)
    except ReasonerError as error:
        if debug:
            raise
        print(_render(error), file=sys.stderr)
        return error.exit_code
    except BrokenPipeError:  # e.g. 'reason ... | head': the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except _Terminated:
        print("terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        return _out_of_memory(options)
    except Exception as error:  # a bug, not bad input: say so without a traceback
        if type(error).__name__ == "OutOfMemoryException" and not debug:  # DuckDB's, outside Python's heap
            return _out_of_memory(options)
        reached = limits.memory_limit_reached()
        if reached is not None and not debug:  # the watchdog's signal interrupted a library call
            print(_render(reached), file=sys.stderr)
            return reached.exit_code
        if debug:
            raise
        print(printable(f"internal error: {type(error).__name__}: {error}"), file=sys.stderr)
        print("note: this is a bug in reasoner; rerun with --debug for a traceback and report it", file=sys.stderr)
        return 1


def _out_of_memory(options: argparse.Namespace | None) -> int:
    text = getattr(options, "memory_limit", None)
    try:
        budget = limits.parse_size(text) if text else None
    except ReasonerError:
        budget = None
    print(_render(limits.memory_limit_error(budget)), file=sys.stderr)
    return EXIT_INPUT


def _queries(names: list[str], query_file: Path | None):  # type: ignore[no-untyped-def]
    from reasoner.syntax import Span

    patterns: list[QueryPattern] = []
    spans: dict[str, Span] = {}
    if not names and query_file is None:
        return patterns, spans  # without importing the evidence stage (pandas): 'reason check' stays quick
    from reasoner.evidence import parse_query_file, parse_query_names

    for text in names:
        found_names = parse_query_names(text)
        patterns.extend(found_names)
        for pattern in found_names:
            match = re.search(rf"(?<![A-Za-z0-9_]){pattern.predicate}(?![A-Za-z0-9_])", text)
            column = match.start() + 1 if match else 1
            spans.setdefault(pattern.predicate, Span("--query", 1, column, 1, column + len(pattern.predicate), text))
    if query_file is not None:
        found, file_spans = parse_query_file(query_file)
        patterns.extend(found)
        for name, span in file_spans.items():
            spans.setdefault(name, span)
    return patterns, spans


def _check(options: argparse.Namespace) -> int:
    from reasoner.check import check_program
    from reasoner.parse import parse_program

    rule_limits = _limits(options)
    patterns, spans = _queries(options.query, options.query_file)
    program = check_program(parse_program(options.rules, limits=rule_limits), patterns, spans)
    for warning in program.warnings:
        print(warning.render(), file=sys.stderr)
    formulas = len(program.formulas)
    print(f"ok: {len(program.program.files)} file(s), {len(program.predicates)} predicates, {formulas} formulas")
    return EXIT_OK


def _is_dataset(path: Path) -> bool:
    """A directory of parquet files (e.g. one per year, or hive partitions) and no rule files."""
    if any(path.glob("*.mln")) or (path / "audit.toml").exists():
        return False
    return any(path.rglob("*.parquet"))


COMPRESSIONS = (".gz", ".bz2", ".zip")


def _table_name(path: Path) -> str:
    """A table's name: its file name without the compression and data suffixes (lar.csv.gz → lar)."""
    name = path.name
    for suffix in COMPRESSIONS:
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return Path(name).stem if Path(name).suffix else name


def _classify(inputs: list[str], table_options: list[str]) -> tuple[list[Path], list[Path], dict[str, Path]]:
    rules: list[Path] = []
    evidence: list[Path] = []
    tables: dict[str, Path] = {}
    for raw in inputs:
        path = Path(raw)
        suffix = path.suffix.lower()
        if path.is_dir() and _is_dataset(path):
            if path.name in tables:
                raise UsageError(f"{raw}: a table named '{path.name}' was given twice; use --table NAME=PATH")
            tables[path.name] = path
        elif path.is_dir():
            rules.append(path)
        elif not path.exists():
            raise UsageError(f"{raw}: no such file or directory")
        elif suffix == ".mln":
            rules.append(path)
        elif suffix == ".db":
            evidence.append(path)
        else:  # a table: parquet, CSV, or a register in any format the audit reads (told from its content)
            name = _table_name(path)
            if name in tables:
                raise UsageError(f"{raw}: a table named '{name}' was given twice; use --table NAME=PATH")
            tables[name] = path
    for option in table_options:
        name, sep, value = option.partition("=")
        if not sep or not name or not value:
            raise UsageError(f"--table {option}: expected NAME=PATH")
        if not Path(value).is_file():
            raise UsageError(f"--table {option}: no such file")
        tables[name] = Path(value)
    if not rules:
        raise UsageError("no rule files given (*.mln or a directory of them)")
    return rules, evidence, tables


def _run(options: argparse.Namespace) -> int:
    # Options are checked before the pipeline is imported, so usage errors are quick.
    rules, evidence, tables = _classify(options.inputs, options.table)
    run_limits = _check_common(options)
    patterns, spans = _queries(options.query, options.query_file)
    if not patterns and not evidence:
        from reasoner.lending.config import find_config

        if find_config(rules) is not None:
            return _audit(rules, list(tables.values()), options)

    if options.marginals:
        return _marginals(rules, evidence, tables, patterns, spans, options, run_limits)

    from reasoner.pipeline import explain, run
    from reasoner.render import render_json, render_text

    margins = None
    if options.margins is not None:
        choice = options.margins.strip()
        if choice == "none":
            margins = []
        elif choice != "all":
            margins = [name.strip() for name in choice.split(",") if name.strip()]
        else:
            margins = sorted({pattern.predicate for pattern in patterns})
    result = run(
        list(rules),
        evidence,
        tables=dict(tables),
        queries=patterns,
        query_spans=spans,
        margins=margins,
        time_limit=options.time_limit,
        workers=options.workers or 1,
        explain_atoms=options.explain,
        limits=run_limits,
        solver=options.solver,
        hard_weight=_hard_weight(options.hard_weight),
    )
    solved = result.solution.status != "unsatisfiable"
    proofs = [explain(result, text) for text in options.explain] if solved else []
    output = (
        render_json(result, proofs, timings=not options.no_timings) if options.json else render_text(result, proofs)
    )
    sys.stdout.write(output + "\n")
    return EXIT_UNSATISFIABLE if result.solution.status == "unsatisfiable" else EXIT_OK


def _marginals(
    rules: list[Path],
    evidence: list[Path],
    tables: dict[str, Path],
    patterns: list[QueryPattern],
    spans: dict,  # type: ignore[type-arg]
    options: argparse.Namespace,
    run_limits: limits.Limits,
) -> int:
    if options.explain:
        raise UsageError("--explain explains the MAP world; run it without --marginals")
    if options.hard_weight is not None:
        raise UsageError("--hard-weight is for MAP inference; marginals keep hard formulas hard")
    if options.samples < 2 or options.burn_in < 0:
        raise UsageError("--samples must be at least 2 and --burn-in at least 0")
    import json

    from reasoner.marginal import marginal_json, result_lines, run_marginals

    result = run_marginals(
        rules,
        evidence,
        dict(tables),
        patterns,
        spans,
        samples=options.samples,
        burn_in=options.burn_in,
        seed=options.seed,
        limits=run_limits,
        workers=options.workers or 1,
    )
    if result.marginals.status == "unsatisfiable":
        if options.json:
            sys.stdout.write(json.dumps(marginal_json(result, timings=not options.no_timings)) + "\n")
        print("error: the hard formulas cannot all hold; run without --marginals for a minimal core", file=sys.stderr)
        return EXIT_UNSATISFIABLE
    if options.json:
        sys.stdout.write(json.dumps(marginal_json(result, timings=not options.no_timings)) + "\n")
        return EXIT_OK
    sys.stdout.write("".join(line + "\n" for line in result_lines(result)))
    summary = result.marginals
    if summary.sampled_components:
        print(
            f"MC-SAT: {summary.sampled_components} component(s), {summary.sampled_atoms} atoms, "
            f"{summary.chains} chains x {summary.samples} samples after {summary.burn_in} burn-in (seed "
            f"{summary.seed}); split-R-hat "
            f"{summary.r_hat:.3f}, chains differ by at most {summary.chain_difference:.3f}; "
            f"{summary.exact_components} component(s) exact",
            file=sys.stderr,
        )
    return EXIT_OK


def _audit(rules: list[Path], tables: list[Path], options: argparse.Namespace, pairs: Path | None = None) -> int:
    if len(tables) > 2 or not tables:
        raise UsageError(
            "the audit takes one facts table and optionally one pairs table, e.g. 'reason rules/ facts.parquet'"
        )
    facts = tables[0]
    if len(tables) == 2:
        pairs = tables[1]
    run_limits = _check_common(options)
    _configure_audit(run_limits, memory=False)
    if options.partition_rows is not None and options.partition_rows < 1:
        raise UsageError("--partition-rows must be at least 1")
    from reasoner.lending.audit.progress import Progress, StageTiming, timing_table
    from reasoner.lending.audit.run import audit
    from reasoner.lending.outputs.write import check_output, output_lock, write_outputs

    signing_key = None
    if options.sign is not None:  # before the work: a wrong key fails at once
        from reasoner.lending.outputs.signing import load_private_key

        signing_key = load_private_key(options.sign)
    _configure_audit(run_limits, memory=True)

    out = Path(options.output)
    inputs = [*rules, *tables, *([options.model_evidence] if options.model_evidence else [])]
    check_output(out, options.force, inputs=inputs)  # before the work, not only when writing
    with output_lock(out):  # one run per OUT, from the check to the last rename
        check_output(out, options.force, inputs=inputs)

        progress = Progress.for_terminal(options.quiet)
        result = audit(
            rules,
            facts,
            pairs=pairs,
            workers=options.workers,
            time_limit=options.time_limit,
            progress=progress,
            partition_rows=options.partition_rows,
            cluster=options.cluster,
            model_evidence=options.model_evidence,
        )
        started = time.perf_counter()
        records = int(result.findings.lenders["flagged"].sum()) + len(result.findings.applications)
        with progress.bar(f"writing {out}", records, "findings") as bar:
            write_outputs(
                result,
                out,
                force=options.force,
                timings=not options.no_timings,
                progress=bar.update,
                signing_key=signing_key,
            )
    if progress.enabled:
        writing = StageTiming("writing", time.perf_counter() - started, len(result.findings.applications), "findings")
        print(timing_table([*result.stages, writing]), file=sys.stderr)
        memory = ", ".join(f"{name} {size / 2**20:,.0f} MB" for name, size in result.peak_memory.items())
        print(f"peak resident memory: {memory}", file=sys.stderr)
    lenders = result.findings.lenders
    flagged = int(lenders["flagged"].sum())
    print(
        f"{len(lenders):,} lenders audited, {flagged:,} flagged, {len(result.findings.applications):,} application "
        "findings"
    )
    for tier, count in lenders["risk_tier"].value_counts().sort_index().items():
        print(f"  {tier:<22} {count:,}")
    print(
        f"outputs in {out}/ (report.html, report.md, lenders.parquet, applications.parquet, explanations.parquet, "
        "manifest.json)"
    )
    for warning in result.cleaned.warnings:
        print(f"warning: {printable(str(result.facts))}: {warning}", file=sys.stderr)
    return EXIT_UNSATISFIABLE if result.engine.status == "unsatisfiable" else EXIT_OK


def _audit_command(options: argparse.Namespace) -> int:
    if not options.facts.is_file() and not options.facts.is_dir():  # before any import: answered at once
        raise UsageError(f"{options.facts}: no such file or directory")
    from reasoner.lending.audit.run import builtin_rules

    rules = list(options.rules) or [builtin_rules()]
    return _audit(rules, [options.facts], options, options.pairs)


def _synth(options: argparse.Namespace) -> int:
    from reasoner.lending.synthetic.synth import write_synth

    if options.applications < 1 or options.lenders < 1:
        raise UsageError("--applications and --lenders must be at least 1")
    out = write_synth(
        options.out, options.applications, options.lenders, options.seed, simple=options.simple, names=options.names
    )
    print(
        f"wrote {out} ({options.applications:,} applications, {options.lenders:,} lenders) and "
        f"{out.with_name(out.stem + '.truth.csv')}"
    )
    return EXIT_OK


def _evaluate(options: argparse.Namespace) -> int:
    from reasoner.lending.synthetic.evaluate import evaluate, render_evaluation

    result = evaluate(options.out, options.truth)
    sys.stdout.write(render_evaluation(result, as_json=options.json) + "\n")
    return EXIT_OK


def _explain(options: argparse.Namespace) -> int:
    from reasoner.lending.outputs.explain_finding import explain_finding, explanation_json, explanations_jsonl

    if options.all == (options.id is not None):
        raise UsageError("reason explain: give either an APPLICATION_ID|LEI or --all (with --format jsonl)")
    if options.all:
        if options.format != "jsonl":
            raise UsageError("reason explain: --all prints every record as JSON lines: add --format jsonl")
        for chunk in explanations_jsonl(options.out):
            sys.stdout.write(chunk)
    elif options.format == "jsonl":
        sys.stdout.write(explanation_json(options.out, options.id))
    else:
        sys.stdout.write(printable(explain_finding(options.out, options.id), keep="\n") + "\n")  # values escaped
    return EXIT_OK


# -- reason audit-model ----------------------------------------------------------------------


def _audit_model_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="reason audit-model",
        description="Audit a credit model: counterfactual twins, flip rates, group fairness metrics, reweighing.",
        epilog="Pickles (.joblib, .pkl) run code when loaded: they need --trust-pickle. Prefer .skops or .onnx.",
    )
    parser.add_argument(
        "model", metavar="MODEL", help="a .skops, .onnx, .joblib/.pkl file, or module:function taking a DataFrame"
    )
    parser.add_argument(
        "--data",
        type=Path,
        required=True,
        metavar="TABLE",
        help="applications (parquet or CSV): base applicants and the data for the group metrics",
    )
    parser.add_argument(
        "--protected",
        required=True,
        metavar="COLUMNS",
        help="protected columns, comma-separated, e.g. derived_race,derived_sex",
    )
    parser.add_argument("--output", "-o", type=Path, required=True, metavar="OUT", help="output directory")
    parser.add_argument(
        "--outcome",
        metavar="COLUMN",
        help="known outcomes (1/0, approved/denied, or HMDA action_taken) for the error-rate metrics and --reweigh",
    )
    parser.add_argument(
        "--reference",
        action="append",
        default=[],
        metavar="COLUMN=GROUP",
        help="reference (privileged) group of a protected column "
        "(default White, Not Hispanic or Latino, Male, else the largest)",
    )
    parser.add_argument(
        "--proxies",
        metavar="COLUMNS",
        help="numeric columns that follow the twin by quantile mapping in a second set of twins",
    )
    parser.add_argument(
        "--lender", metavar="LEI", help="the lender that decides with the model (default: each row's lei)"
    )
    parser.add_argument(
        "--synthetic",
        type=int,
        metavar="N",
        help="N synthetic base applicants drawn from --data (Gaussian copula) instead of its rows",
    )
    parser.add_argument("--identities", action="store_true", help="give synthetic applicants names and ids (mimesis)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic profiles and the bootstrap")
    parser.add_argument(
        "--reweigh", action="store_true", help="write Kamiran-Calders weights for the data (needs --outcome)"
    )
    parser.add_argument("--favourable", default="1", metavar="LABEL", help="the model's label for approval (default 1)")
    parser.add_argument(
        "--threshold", type=float, default=0.5, help="a score at or above it is an approval (default 0.5)"
    )
    parser.add_argument(
        "--min-group", type=int, default=20, metavar="N", help="smallest group with metrics (default 20)"
    )
    parser.add_argument(
        "--bootstrap",
        type=int,
        default=2000,
        metavar="N",
        help="bootstrap replicates of the metric intervals (default 2000)",
    )
    parser.add_argument("--trust-pickle", action="store_true", help="allow loading a pickle: it runs arbitrary code")
    parser.add_argument("--force", action="store_true", help="replace a non-empty output directory")
    parser.add_argument("--debug", action="store_true")
    return parser


def _audit_model(options: argparse.Namespace) -> int:
    from reasoner.lending.outputs.write import check_output

    protected = [name.strip() for name in options.protected.split(",") if name.strip()]
    references = {}
    for item in options.reference:
        name, sep, group = item.partition("=")
        if not sep or not name or not group:
            raise UsageError(f"--reference {item}: expected COLUMN=GROUP")
        references[name] = group
    if options.synthetic is not None and options.synthetic < 1:
        raise UsageError("--synthetic must be at least 1")
    if options.bootstrap < 100 or options.min_group < 1:
        raise UsageError("--bootstrap must be at least 100 and --min-group at least 1")
    if not 0 < options.threshold < 1:
        raise UsageError("--threshold must be between 0 and 1")
    model_file = [Path(options.model)] if Path(options.model).exists() else []  # not module:function
    check_output(options.output, options.force, inputs=[*model_file, options.data])
    from reasoner.model.audit import audit_model
    from reasoner.model.metrics import four_fifths_breaches
    from reasoner.model.outputs import write_model_outputs

    favourable: object = int(options.favourable) if options.favourable.lstrip("-").isdigit() else options.favourable
    result = audit_model(
        options.model,
        options.data,
        protected,
        outcome=options.outcome,
        synthetic=options.synthetic,
        seed=options.seed,
        reweigh=options.reweigh,
        trust_pickle=options.trust_pickle,
        lender=options.lender,
        references=references,
        favourable=favourable,
        threshold=options.threshold,
        min_group=options.min_group,
        replicates=options.bootstrap,
        identities=options.identities,
        proxies=[name.strip() for name in (options.proxies or "").split(",") if name.strip()],
    )
    write_model_outputs(result, options.output, force=options.force)
    rates = result.flip_rates[(result.flip_rates["scope"] == "model") & (result.flip_rates["group_a"] == "*")]
    for row in rates.itertuples(index=False):
        print(
            f"{row.attribute}: {row.flips:,} of {row.twins:,} base applicants flip ({100 * row.flip_rate:.2f}%, 95% "
            f"CI {100 * row.ci_low:.2f}-{100 * row.ci_high:.2f}%)"
        )
    breaches = four_fifths_breaches(result.metrics[result.metrics["scope"] == "model"])
    print(
        f"{len(breaches):,} group(s) below the four-fifths rule; outputs in {options.output}/ (report.md, "
        "report.html, manifest.json, *.parquet)"
    )
    return EXIT_OK


def _verify(options: argparse.Namespace) -> int:
    from reasoner.lending.outputs.verify import render_verification, verify

    result = verify(options.out, key=options.key)
    print(printable(render_verification(result, options.out), keep="\n"), file=sys.stdout if result.ok else sys.stderr)
    return EXIT_OK if result.ok else EXIT_ALTERED


def entry() -> None:
    """Console-script entry point."""
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
