"""``Audit`` → the output directory, written whole or not at all.

Files: ``lenders.parquet``, ``applications.parquet``, ``explanations.parquet`` with its index
``explanations.index.parquet`` (``outputs.explanation_file``), ``report.md``, ``report.html`` and
``manifest.json``. They are written to a temporary directory beside the
target and moved into place at the end; an existing non-empty target is replaced only with
``force``. Every file is byte-identical for the same inputs and options, whatever the number of
workers, except the manifest's ``run`` section (workers and timings; ``timings=False`` omits it).
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import shutil
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

try:
    import fcntl
except ImportError:  # Windows: the lock is the file's creation
    fcntl = None  # type: ignore[assignment]

from reasoner import __version__
from reasoner.errors import UsageError
from reasoner.evidence import file_sha256
from reasoner.explain import decimal_json
from reasoner.lending.audit.explanations import Batch, Gathered, flagged_in_order, json_safe
from reasoner.lending.audit.run import Audit
from reasoner.lending.outputs.explanation_file import EXPLANATIONS, EXPLANATIONS_INDEX, write_explanations
from reasoner.lending.outputs.signing import SIGNATURE, sign

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

__all__ = [
    "OUTPUT_FILES",
    "check_output",
    "explanation_lines",
    "explanation_records",
    "manifest",
    "output_lock",
    "staged",
    "write_outputs",
    "write_parquet",
]

OUTPUT_FILES = ("lenders.parquet", "applications.parquet", EXPLANATIONS, EXPLANATIONS_INDEX, "report.md", "report.html")
HOW_OPTIONS = ("workers", "cluster")  # how the audit ran, not what it computed: in the manifest's run section


def write_outputs(
    audit: Audit,
    out: Path,
    *,
    force: bool = False,
    timings: bool = True,
    progress: Callable[[int], None] | None = None,
    signing_key: Ed25519PrivateKey | None = None,
) -> Path:
    """Write every output file; return ``out``. ``progress`` is called with the number of
    explanation records written, chunk after chunk. With ``signing_key`` (``signing.load_private_key``)
    the manifest's bytes are signed into ``manifest.json.sig``. Holds ``output_lock(out)`` and checks ``out``
    (``check_output``) against the audit's inputs."""
    out = Path(out)
    check_output(out, force, inputs=_inputs(audit))
    with output_lock(out):
        check_output(out, force, inputs=_inputs(audit))  # again: another run may have written it meanwhile
        _write(audit, out, timings=timings, progress=progress, signing_key=signing_key)
    return out


def _inputs(audit: Audit) -> list[Path]:
    found = [Path(audit.facts), *(Path(path) for path in audit.rules), Path(audit.config.path)]
    return found + ([Path(audit.pairs_source)] if audit.pairs_source else [])


def _write(
    audit: Audit,
    out: Path,
    *,
    timings: bool,
    progress: Callable[[int], None] | None,
    signing_key: Ed25519PrivateKey | None,
) -> None:
    from reasoner.lending.outputs.report import render_reports

    with staged(out) as staging:
        explanations = _ExplanationFile(audit, staging, progress)
        try:
            write_parquet(audit.findings.lenders, staging / "lenders.parquet")
            write_parquet(audit.findings.applications, staging / "applications.parquet")
            markdown, html = render_reports(audit)
            (staging / "report.md").write_text(markdown, encoding="utf-8")
            (staging / "report.html").write_text(html, encoding="utf-8")
            del markdown, html
            digests = {name: file_sha256(staging / name) for name in OUTPUT_FILES if name not in EXPLANATION_FILES}
            digests |= explanations.finish()
        finally:
            explanations.stop()
        record = manifest(audit, {name: digests[name] for name in OUTPUT_FILES}, timings=timings)
        text = (json.dumps(record, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
        (staging / "manifest.json").write_bytes(text)
        if signing_key is not None:
            (staging / SIGNATURE).write_text(sign(text, signing_key), encoding="ascii")


EXPLANATION_FILES = (EXPLANATIONS, EXPLANATIONS_INDEX)
OWN_PROCESS_FINDINGS = 10_000  # application findings from which an audit run on several cores writes its
# explanation file in a process of its own, beside the other files (at 1,000,000 rows, 26,764)
PROGRESS_SECONDS = 0.1


class _ExplanationFile:
    """``explanations.parquet`` and its index (``write_explanations``) and their digests.

    An audit run on several cores (``--workers`` above 1) with at least ``OWN_PROCESS_FINDINGS``
    application findings has them written by a process of its own, started here (the partitions'
    cores are idle by now), while this one writes the other files and the reports (Arrow and zstd
    there, Python here: in one process, one waited for the other). Otherwise they are written here
    by ``finish``.
    Either way the same function writes the same bytes; ``stop`` ends the process if it still runs
    (an error or an interrupt: the staging directory is removed next)."""

    def __init__(self, audit: Audit, staging: Path, progress: Callable[[int], None] | None) -> None:
        self._flagged = flagged_in_order(audit.findings.lenders)
        self._gathered = audit.explanations.gathered()
        self._staging = staging
        self._progress = progress
        self._process: Any = None
        workers = audit.options.get("workers")
        if isinstance(workers, int) and workers > 1 and len(audit.findings.applications) >= OWN_PROCESS_FINDINGS:
            self._start()

    def _start(self) -> None:
        from reasoner.lending.audit.run import run_process_context

        context: Any = run_process_context()  # a forkserver or spawn context (typeshed: BaseContext has no Process)
        self._answer, answer = context.Pipe(duplex=False)
        self._written = context.RawValue("q", 0)
        self._reported = 0
        self._process = context.Process(
            target=_write_explanation_file,
            args=(self._gathered, self._flagged, self._staging, self._written, answer, os.getpid()),
            name="reasoner-explanations",
            daemon=True,
        )
        self._process.start()
        answer.close()

    def finish(self) -> dict[str, str]:
        """The explanation files written (waiting for their process); their digests by name."""
        if self._process is None:
            write_explanations(self._gathered.batches(self._flagged), self._staging, self._progress)
            return _digests(self._staging)
        while not self._answer.poll(PROGRESS_SECONDS):
            self._report()
        self._report()
        try:
            found = self._answer.recv()
        except EOFError:  # it died without a word (killed)
            found = OSError(f"the process writing {EXPLANATIONS} ended (exit code {self._process.exitcode})")
        self._process.join()
        self._process = None
        if isinstance(found, BaseException):
            raise found
        return dict(found)

    def _report(self) -> None:
        written = int(self._written.value)
        if self._progress is not None and written > self._reported:
            self._progress(written - self._reported)
        self._reported = written

    def stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.join()
            self._process = None


def _write_explanation_file(
    gathered: Gathered, flagged: list[str], staging: Path, written: Any, answer: Any, parent: int
) -> None:
    """``_ExplanationFile``'s process: the files, then their digests or the error through ``answer``."""
    from reasoner.lending.audit.run import die_with_run

    die_with_run(parent)

    def progress(records: int) -> None:
        written.value += records

    try:
        write_explanations(_ahead(gathered.batches(flagged)), staging, progress)
        found: object = _digests(staging)
    except BaseException as error:  # noqa: BLE001 - the writing process reports every error, Ctrl-C included
        found = error
    try:
        answer.send(found)
    except Exception as error:  # an error that does not pickle: its text
        answer.send(OSError(f"writing {EXPLANATIONS}: {found!r} ({error})"))


def _ahead(batches: Iterator[Batch]) -> Iterator[Batch]:
    """``batches``, each made by a thread while the one before is written: both are Arrow's and zstd's
    work, which runs without the interpreter lock, so once the main process is done with the reports
    the writing process has both cores (one batch made ahead: 8,192 records at most)."""
    made: queue.Queue[Batch | BaseException | None] = queue.Queue(maxsize=1)

    def make() -> None:
        try:
            for batch in batches:
                made.put(batch)
            made.put(None)
        except BaseException as error:  # noqa: BLE001 - handed to the writer, which raises it
            made.put(error)

    threading.Thread(target=make, name="reasoner-explanation-batches", daemon=True).start()
    while (batch := made.get()) is not None:
        if isinstance(batch, BaseException):
            raise batch
        yield batch


def _digests(staging: Path) -> dict[str, str]:
    return {name: file_sha256(staging / name) for name in EXPLANATION_FILES}


@contextmanager
def staged(out: Path) -> Iterator[Path]:
    """A temporary directory beside ``out`` (``.OUT.partial``) that replaces ``out`` (whole, by
    renames) when the block ends, or is removed when it raises: a reader sees the previous output
    or the new one, never a half-written one. Leftovers of a killed run (``.OUT.partial``,
    ``.OUT.old``) are removed first; hold ``output_lock(out)`` so that no other run is writing
    them. Directories follow the umask. A file-system error (no space, no permission, a parent
    that is a file) is a ``UsageError`` naming the path and the cause; nothing is left behind."""
    out = Path(out)
    staging, old = _beside(out, "partial"), _beside(out, "old")
    existed = out.exists()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        for leftover in (staging, old):
            if leftover.exists() or leftover.is_symlink():
                _remove(leftover)
        staging.mkdir()
    except OSError as error:
        raise _write_error(out, error, existed) from None
    try:
        yield staging
        if out.exists() or out.is_symlink():
            old.mkdir()
            os.replace(out, old / "previous")
            try:
                os.replace(staging, out)
            except OSError:
                os.replace(old / "previous", out)  # put the previous outputs back
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, out)
    except OSError as error:
        _remove(staging)
        _remove(old)
        raise _write_error(out, error, existed) from None
    except BaseException:
        _remove(staging)
        _remove(old)
        raise


def _beside(out: Path, role: str) -> Path:
    """``.OUT.role`` beside ``out`` (``..`` and ``.`` resolved as names, not links)."""
    absolute = Path(os.path.abspath(out))
    return absolute.parent / f".{absolute.name}.{role}"


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with suppress(OSError):
            path.unlink()


def _write_error(out: Path, error: OSError, existed: bool) -> UsageError:
    where = error.filename or out
    kept = f"; the previous outputs in {out} are kept" if existed else "; nothing was written"
    return UsageError(f"{where}: cannot write the outputs: {error.strerror or error}{kept}")


@contextmanager
def output_lock(out: Path) -> Iterator[None]:
    """Hold ``OUT.lock`` beside ``out`` for the block: a second run into the same ``out`` gets a
    ``UsageError`` at once. The lock is the kernel's (``flock``), so a killed run holds it no
    more; the file is removed when the block ends (or taken over by the next run). Re-entrant
    within a process."""
    out = Path(out)
    key = os.path.abspath(out)
    if key in _HELD:
        _HELD[key] += 1
        try:
            yield
        finally:
            _HELD[key] -= 1
        return
    absolute = Path(os.path.abspath(out))
    path = absolute.parent / f"{absolute.name}.lock"
    handle = _acquire(path, out)
    _HELD[key] = 1
    try:
        yield
    finally:
        del _HELD[key]
        with suppress(OSError):
            path.unlink()
        os.close(handle)


_HELD: dict[str, int] = {}


def _acquire(path: Path, out: Path) -> int:
    """An open descriptor of ``path`` holding its lock (the file may have been replaced by the
    holder's clean-up between our open and our lock: then try again)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _write_error(out, error, False) from None
    while True:
        try:
            handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as error:
            raise _write_error(out, error, out.exists()) from None
        if fcntl is None:  # not on Linux or macOS: the lock is the file
            return handle
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(handle, 32).decode("ascii", "replace").strip()
            os.close(handle)
            who = f" (process {holder})" if holder.isdigit() else ""
            raise UsageError(
                f"{out}: another run{who} is writing to it ({path} is locked); wait for it to finish or choose "
                "another -o"
            ) from None
        try:
            same = os.fstat(handle).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(handle, 0)
            os.write(handle, f"{os.getpid()}\n".encode())
            return handle
        os.close(handle)


def check_output(out: Path, force: bool, *, inputs: Sequence[Path] = ()) -> None:
    """A ``UsageError`` unless the outputs may go to ``out``: never an input, a directory holding
    or inside one, ``/``, the working or home directory or a mount point; an existing non-empty
    ``out`` only with ``force``, and only when it holds a previous run's outputs (its
    manifest.json and the files it lists), never arbitrary files."""
    out = Path(out)
    if out.is_symlink() and not out.exists():
        raise UsageError(f"{out}: is a symbolic link to {os.readlink(out)}, which does not exist; choose another -o")
    target = out.resolve()
    for given in inputs:
        source = Path(given).resolve()
        if target == source or target in source.parents or source in target.parents:
            relation = "is" if target == source else "contains" if target in source.parents else "lies inside"
            raise UsageError(
                f"{out}: refusing to write the outputs there: it {relation} the input {given}; choose another -o"
            )
    if target == Path(target.anchor) or target == Path.cwd().resolve() or target == Path.home().resolve():
        raise UsageError(
            f"{out}: refusing to write the outputs to the root, working or home directory; choose another -o"
        )
    if os.path.ismount(target):
        raise UsageError(f"{out}: refusing to write the outputs to a mount point; choose another -o")
    for parent in target.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UsageError(f"{parent}: cannot write the outputs: not a directory")
            break
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return
    if not force:
        raise UsageError(f"{out}: exists and is not empty; choose another -o or pass --force to replace it")
    stray = _not_outputs(out)
    if stray is not None:
        raise UsageError(
            f"{out}: --force replaces only the outputs of a previous run; {stray}: not the outputs of a previous run "
            "(not listed in its manifest.json); choose another -o"
        )


def _not_outputs(out: Path) -> str | None:
    """The first thing in ``out`` a previous run did not write, or None."""
    if not out.is_dir():
        return str(out)
    manifest_path = out / "manifest.json"
    try:
        record = json.loads(manifest_path.read_text(encoding="utf-8"))
        listed = set(record["outputs"]) if str(record.get("tool", "")).startswith("reasoner") else set()
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        return str(manifest_path)
    for path in sorted(out.iterdir()):
        if path.name not in ("manifest.json", SIGNATURE) and (
            path.name not in listed or not path.is_file() or path.is_symlink()
        ):
            return str(path)
    return None


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """``frame`` as zstd parquet without pandas metadata (stable bytes across pandas versions), each column one
    chunk: an Arrow-backed column keeps the chunks of the partitions it was gathered from, and the writer
    checks a column's dictionary size chunk by chunk, so where it falls back to plain encoding (a dictionary
    past 1 MiB: the comparators' ids at 12,000,000 rows) followed the partitions: other bytes with 1 and 2
    workers, whose plans differ."""
    table = pa.Table.from_pandas(frame, preserve_index=False).combine_chunks()
    table = table.replace_schema_metadata(None)  # no pandas metadata: stable bytes across pandas versions
    pq.write_table(table, path, compression="zstd")


def explanation_lines(audit: Audit) -> Iterator[str]:
    """The explanation records as JSON lines, in chunks of whole lines: one record per finding, flagged
    lenders first (by risk, as lenders.parquet), then applications (as applications.parquet); see
    ``reasoner.lending.audit.explanations``. ``explanations.parquet`` holds them, one per row."""
    return audit.explanations.lines(flagged_in_order(audit.findings.lenders))


def explanation_records(audit: Audit) -> list[dict[str, Any]]:
    """The explanation records, parsed (for small audits and tests: holds every record at once)."""
    return [json.loads(line) for chunk in explanation_lines(audit) for line in chunk.split("\n") if line]


def _limits() -> dict[str, int | None]:
    from reasoner.limits import current

    limits = current()
    return {"max_groundings": limits.max_groundings, "memory_limit": limits.memory_limit}


def manifest(audit: Audit, outputs: dict[str, str], *, timings: bool = True) -> dict[str, Any]:
    cleaned = audit.cleaned
    engine = audit.engine
    usable = cleaned.usable
    pair_counts = {name: json_safe(asdict(counts)) for name, counts in audit.tables.pair_counts.items()}
    record: dict[str, Any] = {
        "tool": "reasoner",
        "version": __version__,
        "inputs": [{"path": str(audit.facts), "sha256": audit.facts_sha256, "kind": "facts"}]
        + (
            [{"path": str(audit.pairs_source), "sha256": audit.pairs_sha256, "kind": "pairs"}]
            if audit.pairs_source
            else []
        )
        + ([{**audit.model_source, "kind": "model evidence"}] if audit.model_source else []),
        "rules": [  # sorted: the results do not depend on the order the files were given in
            {"path": str(path), "sha256": file_sha256(path)}
            for path in sorted((*audit.rules, audit.config.path), key=str)
        ],
        "options": json_safe({name: value for name, value in audit.options.items() if name not in HOW_OPTIONS})
        | _limits(),
        "application_id": cleaned.id_column,
        "rows": {
            "read": cleaned.rows_read,
            "usable": usable,
            "excluded": dict(cleaned.exclusions),
            "absent_columns": list(cleaned.absent_columns),
        },
        "pairs": {"given": audit.tables.pairs_given, "rows": audit.tables.pair_rows, "by_comparison": pair_counts},
        "engine": {
            "solver": "RC2 (python-sat), exact MaxSAT per connected component",
            "status": engine.status,
            "cost": decimal_json(engine.cost),
            "lower_bound": decimal_json(engine.lower_bound),  # equals cost when optimal
            "proven_optimal": engine.status == "optimal",
            "unfinished_components": engine.unfinished_components,
            "ground_formulas": engine.ground_formulas,
            "components": engine.components,
        },
        "findings": {
            "lenders": len(audit.findings.lenders),
            "flagged_lenders": int(audit.findings.lenders["flagged"].sum()),
            "flagged_applications": len(audit.findings.applications),
        },
        "outputs": {name: {"sha256": digest} for name, digest in outputs.items()},
        "outputs_digest": hashlib.sha256(
            "".join(f"{n}:{d}\n" for n, d in sorted(outputs.items())).encode()
        ).hexdigest(),
    }
    if timings:  # how the run went, not what it computed: left out for byte-stable manifests
        record["run"] = {name: audit.options[name] for name in HOW_OPTIONS if name in audit.options}
        record["run"]["timings"] = dict(audit.seconds)
        record["run"]["peak_memory_mb"] = {name: round(size / 2**20) for name, size in audit.peak_memory.items()}
    return record
