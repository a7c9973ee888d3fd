"""The explanation file written by a process of its own, beside the other outputs: the same bytes,
its errors reported as the writing's, and nothing left behind when the writing fails or is interrupted."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
from support import REPOSITORY, SAMPLE

from reasoner.errors import UsageError
from reasoner.lending.audit.run import Audit, audit
from reasoner.lending.outputs import write
from reasoner.lending.outputs.write import write_outputs

pytestmark = pytest.mark.slow  # end-to-end audits: outside the inner loop, pytest -m "not slow"

RULES = REPOSITORY / "rules"


@pytest.fixture(scope="module")
def partitioned() -> Audit:
    """The sample audited in partitions by two worker processes (its records spilled by them)."""
    return audit([RULES], SAMPLE, workers=2, partition_rows=1500)


def _written(result: Audit, out: Path, monkeypatch: pytest.MonkeyPatch, own_process: bool) -> list[int]:
    monkeypatch.setattr(write, "OWN_PROCESS_FINDINGS", 0 if own_process else 10**12)
    counted: list[int] = []
    write_outputs(result, out, timings=False, progress=counted.append)
    return counted


def _writers() -> list[str]:
    return [process.name for process in multiprocessing.active_children() if process.name == "reasoner-explanations"]


def test_the_explanation_file_of_its_own_process_is_the_same_bytes(
    partitioned: Audit, sample_audit: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = int(partitioned.findings.lenders["flagged"].sum()) + len(partitioned.findings.applications)
    assert records > 100 and partitioned.options["workers"] == 2
    own = _written(partitioned, tmp_path / "own", monkeypatch, own_process=True)
    here = _written(partitioned, tmp_path / "here", monkeypatch, own_process=False)
    assert sum(own) == sum(here) == records  # progress: every record, from either process
    assert not _writers()
    _, expected = sample_audit  # one partition, written here, by the command line (its manifest names other paths)
    names = sorted(path.name for path in expected.iterdir())
    for out in (tmp_path / "own", tmp_path / "here"):
        assert sorted(path.name for path in out.iterdir()) == names
        for name in names:
            if name != "manifest.json":
                assert (out / name).read_bytes() == (expected / name).read_bytes(), (out.name, name)
    assert (tmp_path / "own" / "manifest.json").read_bytes() == (tmp_path / "here" / "manifest.json").read_bytes()


def test_an_error_of_the_writing_process_is_the_writings_and_leaves_nothing(
    partitioned: Audit, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    aside = tmp_path / "aside"
    aside.mkdir()
    spilled = sorted(Path(partitioned.explanations.directory).glob("*.arrows"))
    assert spilled
    for path in spilled:
        path.rename(aside / path.name)  # the records are gone: the writing process cannot read them
    try:
        outputs = tmp_path / "outputs"
        with pytest.raises(UsageError, match="cannot write the outputs") as caught:
            _written(partitioned, outputs / "out", monkeypatch, own_process=True)
    finally:
        for path in spilled:
            (aside / path.name).rename(path)
    assert ".arrows" in caught.value.render() and "\n" not in caught.value.render()
    assert list(outputs.iterdir()) == []  # no output, no staging directory, no lock
    assert not _writers()


def test_an_interrupt_while_writing_ends_the_writing_process_and_leaves_nothing(
    partitioned: Audit, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reasoner.lending.outputs import report

    seen: list[list[str]] = []

    def interrupted(result: Audit) -> tuple[str, str]:
        seen.append(_writers())  # the explanation file is being written meanwhile
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "render_reports", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _written(partitioned, tmp_path / "out", monkeypatch, own_process=True)
    assert seen == [["reasoner-explanations"]]
    assert not _writers()
    assert list(tmp_path.iterdir()) == []
