"""Chain of custody and determinism: ``reason verify``, byte-identical outputs whatever the order of
rows or rule files, no network, no identifying columns copied, and the behaviour at each limit.

The determinism matrix (workers 1 and 2 is in test_audit.py): the rule directory against the
same files given in reverse order (every byte identical); the rule files copied under other
names into another directory (identical but for the rule files' names in citations); the
sample's rows shuffled, with and without an application id column (lenders.parquet identical;
the application findings identical but for the row numbers and the input's name and digest
they cite).
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
from support import REPOSITORY

from reasoner import limits
from reasoner.errors import EvidenceError
from reasoner.lending.audit.run import Audit, audit
from reasoner.lending.outputs.explain_finding import explanations_jsonl
from reasoner.lending.outputs.report import render_markdown
from reasoner.lending.outputs.write import write_outputs

pytestmark = pytest.mark.slow  # end-to-end audits: outside the inner loop, pytest -m "not slow"

ROOT = REPOSITORY
SAMPLE = ROOT / "examples" / "hmda" / "sample.parquet"
ROWS = 2500
PERSONAL = {"applicant_name": "Zebulon Quixote", "ssn": "078-05-1120", "street_address": "1 Ozymandias Lane"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Output directories of in-process audits of a 2,500-row part of the sample, all run from
    one folder with relative paths (so only what a case changes can differ). The first runs
    with every socket operation made to fail."""
    folder = tmp_path_factory.mktemp("determinism")
    previous = Path.cwd()
    import os

    os.chdir(folder)
    try:
        shutil.copytree(ROOT / "rules", "rules")
        other = Path("elsewhere")
        other.mkdir()
        names = {}
        for number, path in enumerate(sorted(Path("rules").glob("*.mln"))):
            copy = other / f"{9 - number}-renamed-{path.stem[3:]}.mln"  # reversed order of names
            shutil.copy(path, copy)
            names[str(copy)] = str(path)
        shutil.copy(Path("rules") / "audit.toml", other / "audit.toml")
        frame = pd.read_parquet(SAMPLE).head(ROWS)
        frame.to_parquet("facts.parquet")
        frame.sample(frac=1.0, random_state=11).to_parquet("shuffled.parquet")
        with_ids = frame.assign(application_id=[f"APP{i:05d}" for i in range(len(frame))], **PERSONAL)
        with_ids.to_parquet("ids.parquet")
        with_ids.sample(frac=1.0, random_state=5).to_parquet("ids-shuffled.parquet")
        reversed_files = sorted(Path("rules").glob("*.mln"), reverse=True)
        cases: dict[str, tuple[list[Path], str]] = {
            "base": ([Path("rules")], "facts.parquet"),
            "reversed": (reversed_files, "facts.parquet"),
            "renamed": ([other], "facts.parquet"),
            "shuffled": ([Path("rules")], "shuffled.parquet"),
            "ids": ([Path("rules")], "ids.parquet"),
            "ids-shuffled": ([Path("rules")], "ids-shuffled.parquet"),
        }
        outs: dict[str, Path] = {}
        for name, (rules, facts) in cases.items():
            with _no_network() if name == "base" else _nothing():
                result = audit(rules, Path(facts))
                outs[name] = folder / write_outputs(result, Path(f"out-{name}"), timings=False)
            if name == "base":
                outs["audit"] = folder  # the base Audit is kept for the limit tests
                _AUDITS["base"] = result
        _RENAMED.update(names)
        yield outs
    finally:
        os.chdir(previous)


_AUDITS: dict[str, Audit] = {}
_RENAMED: dict[str, str] = {}


class _Refused(AssertionError):
    pass


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


class _no_network:
    """Every way of opening a connection or resolving a name raises (and is counted)."""

    def __enter__(self) -> None:
        def refuse(*args: object, **kwargs: object) -> object:
            raise _Refused("the audit tried to use the network")

        self.saved = {name: getattr(socket, name) for name in ("socket", "create_connection", "getaddrinfo")}
        self.connect = socket.socket.connect
        for name in self.saved:
            setattr(socket, name, refuse)

    def __exit__(self, *exc: object) -> None:
        for name, value in self.saved.items():
            setattr(socket, name, value)


# -- determinism -------------------------------------------------------------------------------


@pytest.mark.slow
def test_rule_files_in_another_order_give_identical_bytes(runs: dict[str, Path]) -> None:
    for path in sorted(runs["base"].iterdir()):
        assert (runs["reversed"] / path.name).read_bytes() == path.read_bytes(), path.name


@pytest.mark.slow
def test_rule_files_copied_under_other_names_give_the_same_outputs_but_for_the_names(runs: dict[str, Path]) -> None:
    base, renamed = runs["base"], runs["renamed"]
    assert (renamed / "lenders.parquet").read_bytes() == (base / "lenders.parquet").read_bytes()

    def back(text: str) -> str:
        for new, old in _RENAMED.items():
            text = text.replace(new, old).replace(Path(new).name, Path(old).name)
        return text.replace("elsewhere", "rules")

    assert back("".join(explanations_jsonl(renamed))) == "".join(explanations_jsonl(base))
    # The report lists the rule files by name, sorted: the same names, in another order.
    def listing(text: str) -> tuple[list[str], list[str]]:
        files = [line for line in text.splitlines() if line.startswith("- `") and line.endswith(".mln`")]
        return [line for line in text.splitlines() if line not in files], sorted(files)

    assert listing(back((renamed / "report.md").read_text())) == listing((base / "report.md").read_text())
    renamed_rules = pd.read_parquet(renamed / "applications.parquet")["rules"].map(lambda cited: list(map(back, cited)))
    base_rules = pd.read_parquet(base / "applications.parquet")["rules"].map(list)
    assert renamed_rules.tolist() == base_rules.tolist()


_ROW_CITATION = re.compile(r"[\w.-]+\.parquet row \d+")


def _without_rows(value: object) -> object:
    if isinstance(value, dict):
        return {key: _without_rows(item) for key, item in value.items() if key != "row"}
    if isinstance(value, list):
        return [_without_rows(item) for item in value]
    return value


def _findings_without_row_citations(out: Path) -> list[object]:
    lines = "".join(explanations_jsonl(out)).splitlines()
    return [_without_rows(json.loads(_ROW_CITATION.sub("INPUT ROW", line))) for line in lines]


@pytest.mark.slow
def test_shuffled_rows_give_identical_lender_findings(runs: dict[str, Path]) -> None:
    assert (runs["shuffled"] / "lenders.parquet").read_bytes() == (runs["base"] / "lenders.parquet").read_bytes()
    assert (runs["ids-shuffled"] / "lenders.parquet").read_bytes() == (runs["ids"] / "lenders.parquet").read_bytes()


@pytest.mark.slow
def test_shuffled_rows_with_ids_give_the_same_application_findings_but_the_rows_cited(runs: dict[str, Path]) -> None:
    ids, shuffled = runs["ids"], runs["ids-shuffled"]
    assert _findings_without_row_citations(shuffled) == _findings_without_row_citations(ids)
    first = pd.read_parquet(ids / "applications.parquet").drop(columns=["row"])
    second = pd.read_parquet(shuffled / "applications.parquet").drop(columns=["row"])
    for frame in (first, second):
        frame["comparators"] = frame["comparators"].map(lambda items: [_without_rows(dict(item)) for item in items])
    pd.testing.assert_frame_equal(first, second)
    # The row cited is the row of the file given, whose digest the manifest records.
    manifest = json.loads((shuffled / "manifest.json").read_text())
    assert manifest["inputs"][0]["path"] == "ids-shuffled.parquet" and len(manifest["inputs"][0]["sha256"]) == 64
    frame = pd.read_parquet(Path(shuffled).parent / "ids-shuffled.parquet")
    for row in pd.read_parquet(shuffled / "applications.parquet").itertuples():
        assert frame.iloc[row.row - 1]["application_id"] == row.application_id


# -- no network, no identifying columns --------------------------------------------------------


@pytest.mark.slow
def test_the_audit_runs_without_the_network(runs: dict[str, Path]) -> None:
    assert (runs["base"] / "report.html").is_file()  # written while every socket call raised
    html = (runs["base"] / "report.html").read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), "the report links an outside asset"


@pytest.mark.slow
def test_identifying_columns_are_not_copied_into_the_outputs(runs: dict[str, Path]) -> None:
    out = runs["ids"]
    for path in out.iterdir():
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
            assert not set(PERSONAL) & set(frame.columns), path.name
            text = frame.astype(str).to_csv()
        else:
            text = path.read_text()
        for column, value in PERSONAL.items():
            assert value not in text and column not in text, (path.name, column)


def _one_byte_changed(path: Path) -> bytes:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    return bytes(data)


# -- reason verify ------------------------------------------------------------------------------


@pytest.fixture
def copied(sample_audit: tuple[Path, Path], tmp_path: Path) -> Path:
    out = tmp_path / "out"
    shutil.copytree(sample_audit[1], out)
    return out


def test_verify_passes_an_untouched_output(copied: Path, reason: Callable[..., object]) -> None:
    done = reason(["verify", copied])
    assert done.returncode == 0, done.stderr  # type: ignore[attr-defined]
    assert done.stdout == f"verified 6 files in {copied} against manifest.json\n"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda out: (out / "report.md").write_text("changed\n"), "report.md: altered after the run"),
        (lambda out: (out / "lenders.parquet").unlink(), "lenders.parquet: missing (recorded in manifest.json)"),
        (lambda out: (out / "notes.txt").write_text("mine"), "notes.txt: added after the run"),
        (
            lambda out: (out / "explanations.parquet").write_bytes(_one_byte_changed(out / "explanations.parquet")),
            "explanations.parquet: altered after the run",
        ),
    ],
    ids=["altered", "missing", "added", "one-byte"],
)
def test_verify_reports_what_changed_after_the_run(
    copied: Path, reason: Callable[..., object], change: Callable[[Path], object], expected: str
) -> None:
    change(copied)
    done = reason(["verify", copied])
    assert done.returncode == 4  # type: ignore[attr-defined]
    assert f"{copied}/{expected}" in done.stderr and "Traceback" not in done.stderr  # type: ignore[attr-defined]


def test_verify_notices_a_manifest_edited_to_match_a_file(copied: Path, reason: Callable[..., object]) -> None:
    import hashlib

    (copied / "report.md").write_text("forged\n")
    manifest = json.loads((copied / "manifest.json").read_text())
    manifest["outputs"]["report.md"]["sha256"] = hashlib.sha256(b"forged\n").hexdigest()
    (copied / "manifest.json").write_text(json.dumps(manifest))
    done = reason(["verify", copied])
    assert done.returncode == 4  # type: ignore[attr-defined]
    assert "outputs_digest does not match" in done.stderr  # type: ignore[attr-defined]


def test_verify_of_something_else_is_a_usage_error(tmp_path: Path, reason: Callable[..., object]) -> None:
    done = reason(["verify", tmp_path])
    assert done.returncode == 2  # type: ignore[attr-defined]
    assert "manifest.json: missing" in done.stderr  # type: ignore[attr-defined]
    (tmp_path / "manifest.json").write_text("{not json")
    done = reason(["verify", tmp_path])
    assert done.returncode == 2 and "expected the JSON manifest" in done.stderr  # type: ignore[attr-defined]


# -- limits --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "size"), [("4G", 4 * 2**30), ("512M", 512 * 2**20), ("1.5g", int(1.5 * 2**30)), ("2GiB", 2 * 2**30)]
)
def test_memory_sizes_are_read_with_their_units(text: str, size: int) -> None:
    assert limits.parse_size(text) == size


@pytest.mark.parametrize("text", ["lots", "4X", "-1G", "10M"])
def test_unusable_memory_sizes_are_usage_errors(text: str, reason: Callable[..., object]) -> None:
    with pytest.raises(ValueError, match=f"^memory_limit {text}: "):  # the command line: '--memory-limit {text}: '
        limits.parse_size(text)
    smokers = ROOT / "examples" / "smokers"
    done = reason([smokers / "smokers.mln", smokers / "evidence.db", "-q", "Cancer", f"--memory-limit={text}"])
    assert done.returncode == 2  # type: ignore[attr-defined]
    assert done.stderr.startswith(f"error: --memory-limit {text}: ")  # type: ignore[attr-defined]


@pytest.mark.slow
def test_reaching_the_memory_limit_is_a_message_and_exit_2(tmp_path: Path, reason: Callable[..., object]) -> None:
    # the sample's audit peaks near 296 MB (302 MB while the similarity search imported scikit-learn)
    done = reason([ROOT / "rules", SAMPLE, "-o", tmp_path / "out", "--memory-limit", "250M"], timeout=120)
    assert done.returncode == 2, done.stderr  # type: ignore[attr-defined]
    assert done.stderr.startswith("error: the memory limit (0.24 GiB, --memory-limit) was reached")  # type: ignore[attr-defined]
    assert "Traceback" not in done.stderr and not (tmp_path / "out").exists()  # type: ignore[attr-defined]


@pytest.mark.parametrize("where", ["audit", "spill"])
def test_a_worker_interrupted_by_the_memory_watchdog_reports_the_limit(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, where: str
) -> None:
    """In a worker process the watchdog's signal may land inside DuckDB, which raises its own
    'Query interrupted', or inside the write of the partition's result: the worker reports the limit
    instead (worker processes get the run's limits from the pool's initializer)."""
    from types import SimpleNamespace

    from reasoner import limits
    from reasoner.errors import LimitError
    from reasoner.lending.audit import run as audit_module

    def interrupted(*arguments: object) -> object:
        raise (RuntimeError("Query interrupted") if where == "audit" else OSError("Interrupted system call"))

    monkeypatch.setattr(audit_module, "audit_partition", interrupted if where == "audit" else lambda task: task)
    if where == "spill":
        monkeypatch.setattr(audit_module, "_spill", interrupted)
    shipped = SimpleNamespace(restored=lambda: None)
    monkeypatch.setattr(limits, "_reached", LimitError("the memory limit (1.00 GiB, --memory-limit) was reached"))
    with pytest.raises(LimitError, match="the memory limit"):
        audit_module._audit_and_spill(shipped, tmp_path)  # type: ignore[arg-type]
    monkeypatch.setattr(limits, "_reached", None)
    with pytest.raises((RuntimeError, OSError), match="Interrupt|interrupt"):  # not the limit: reported as it is
        audit_module._audit_and_spill(shipped, tmp_path)  # type: ignore[arg-type]


def test_a_read_interrupted_by_the_memory_watchdog_reports_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """pyarrow interrupted by the watchdog's signal raises its own error, which reading would
    otherwise report as a corrupt file."""
    from reasoner import limits
    from reasoner.errors import LimitError
    from reasoner.lending.registers import files

    def interrupted(*arguments: object) -> object:
        raise OSError("Interrupted")

    monkeypatch.setattr(files, "_read_parquet", interrupted)
    monkeypatch.setattr(limits, "_reached", LimitError("the memory limit (1.00 GiB, --memory-limit) was reached"))
    with pytest.raises(LimitError, match="the memory limit"):
        files.read_hmda(SAMPLE)
    monkeypatch.setattr(limits, "_reached", None)
    with pytest.raises(EvidenceError, match="cannot read as HMDA data"):
        files.read_hmda(SAMPLE)


def test_the_grounding_limit_names_the_formula_and_the_option(tmp_path: Path, reason: Callable[..., object]) -> None:
    done = reason([ROOT / "rules", SAMPLE, "-o", tmp_path / "out", "--max-groundings", "10"], timeout=120)
    assert done.returncode == 2, done.stderr  # type: ignore[attr-defined]
    assert re.match(r"error: \S+\.mln:\d+:\d+: formula has (more than )?[\d,]+ groundings", done.stderr)  # type: ignore[attr-defined]
    assert "--max-groundings N" in done.stderr and not (tmp_path / "out").exists()  # type: ignore[attr-defined]


@pytest.mark.slow
def test_a_world_not_proven_optimal_is_said_in_the_report_and_the_manifest(runs: dict[str, Path]) -> None:
    from reasoner.lending.outputs.write import manifest

    base = _AUDITS["base"]
    assert "Not proven optimal" not in render_markdown(base)
    engine = dataclasses.replace(
        base.engine, status="feasible", lower_bound=base.engine.cost - 7, unfinished_components=3
    )
    stopped = dataclasses.replace(base, engine=engine, options={**base.options, "time_limit": 0.5})
    text = render_markdown(stopped)
    assert "**Not proven optimal:** the time limit (0.5 s) stopped the solver on 3 component(s)" in text
    record = manifest(stopped, {})
    assert record["engine"]["proven_optimal"] is False and record["engine"]["unfinished_components"] == 3
    assert record["engine"]["lower_bound"] < record["engine"]["cost"]
