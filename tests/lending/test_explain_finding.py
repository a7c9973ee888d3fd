"""``reason explain OUT ID``: the derivation of one audit finding in prose.

The session's audit of the bundled sample (``sample_audit`` in conftest) is explained. The texts of one application
finding and one flagged lender are golden files under ``tests/golden/findings/``; they depend
on the rule files, so after a change to ``rules/`` run ``pytest --update-golden
tests/lending/test_explain_finding.py`` and review the diff.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from support import GOLDEN as GOLDEN_ROOT
from support import REPOSITORY

from reasoner.errors import UsageError
from reasoner.lending.outputs.explain_finding import explain_finding, explanations_jsonl
from reasoner.lending.outputs.explanation_file import (
    EXPLANATIONS,
    EXPLANATIONS_INDEX,
    RECORD_ROWS,
    find,
    write_records,
)

Reason = Callable[..., subprocess.CompletedProcess[str]]

RULES = REPOSITORY / "rules"
GOLDEN = GOLDEN_ROOT / "findings"


@dataclass(frozen=True)
class Audit:
    folder: Path
    out: Path
    lenders: pd.DataFrame
    applications: pd.DataFrame


@pytest.fixture(scope="module")
def audit(sample_audit: tuple[Path, Path]) -> Audit:
    folder, out = sample_audit
    return Audit(folder, out, pd.read_parquet(out / "lenders.parquet"), pd.read_parquet(out / "applications.parquet"))


def _flagged(audit: Audit) -> pd.DataFrame:
    return audit.lenders[audit.lenders["flagged"]]


def _application(audit: Audit) -> str:
    """A short-proof application finding at a flagged lender, disparate treatment if there is one."""
    apps = audit.applications
    if apps.empty:
        pytest.skip("the audit has no application finding")
    at_flagged = apps[apps["lei"].isin(_flagged(audit)["lei"])]
    apps = at_flagged if not at_flagged.empty else apps
    preferred = apps[apps["finding"] == "disparate treatment"]
    apps = preferred if not preferred.empty else apps
    apps = apps.assign(key=apps["application_id"].astype(str)).sort_values(["violation_score", "key"], kind="stable")
    return str(apps["key"].iat[0])


def _lender(audit: Audit) -> str:
    flagged = _flagged(audit)
    if flagged.empty:
        pytest.skip("the audit flagged no lender")
    return str(flagged["lei"].iat[0])


def test_application_finding(audit: Audit, golden: Callable[[Path, str], None]) -> None:
    identifier = _application(audit)
    text = explain_finding(audit.out, identifier)
    assert text.startswith(f"Application {identifier} (input row ")
    assert "of sample.parquet" in text and "Confidence:" in text and "For:" in text
    assert str(audit.folder) not in text and str(RULES) not in text
    golden(GOLDEN / "expected_application.txt", text + "\n")


def test_flagged_lender(audit: Audit, golden: Callable[[Path, str], None]) -> None:
    lei = _lender(audit)
    row = audit.lenders.set_index("lei").loc[lei]
    text = explain_finding(audit.out, lei)
    assert text.startswith(f"Lender {lei}: flagged")
    assert row["risk_tier"] in text and row["confidence"] in text
    for violation in row["violations"]:
        assert f": {violation}" in text
    assert str(audit.folder) not in text and str(RULES) not in text
    golden(GOLDEN / "expected_lender.txt", text + "\n")


def test_unflagged_lender(audit: Audit) -> None:
    unflagged = audit.lenders[~audit.lenders["flagged"]]
    if unflagged.empty:
        pytest.skip("the audit flagged every lender")
    row = unflagged.iloc[0]
    text = explain_finding(audit.out, str(row["lei"]))
    assert text.startswith(f"Lender {row['lei']}: not flagged")
    assert f"Tier {row['risk_tier']}" in text and str(row["confidence"]) in text
    assert f"risk score {row['risk_score']:g}" in text


def test_application_ids_match_as_text(audit: Audit) -> None:
    identifier = _application(audit)
    assert explain_finding(audit.out, f" {identifier} ") == explain_finding(audit.out, identifier)


def test_unknown_id_through_the_command_line(audit: Audit, reason: Reason) -> None:
    result = reason(["explain", audit.out, "nonsense"])
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error: 'nonsense' is neither an application")
    assert "explanations.parquet" in result.stderr and "Traceback" not in result.stderr


def test_near_miss_gets_did_you_mean(audit: Audit, reason: Reason) -> None:
    lei = str(audit.lenders["lei"].iat[0])
    result = reason(["explain", audit.out, lei[:-1]])
    assert result.returncode == 2
    assert f"did you mean '{lei}'" in result.stderr


def test_missing_out(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such directory"):
        explain_finding(tmp_path / "missing", "1")
    with pytest.raises(UsageError, match=r"explanations\.parquet: not found"):
        explain_finding(tmp_path, "1")


def _with_record_replaced(source: Path, target: Path, identifier: str, text: str) -> None:
    """A copy of the outputs in ``target`` whose record of ``identifier`` reads ``text``."""
    shutil.copytree(source, target)
    table = pq.read_table(source / EXPLANATIONS)
    records = table.column("record").to_pylist()
    records[table.column("id").to_pylist().index(identifier)] = text
    table = table.set_column(table.schema.get_field_index("record"), "record", pa.array(records, pa.large_string()))
    pq.write_table(table, target / EXPLANATIONS, row_group_size=RECORD_ROWS)


def test_only_the_records_of_the_id_are_read(audit: Audit, tmp_path: Path) -> None:
    """A damaged record elsewhere is never parsed; the damaged record itself is reported with its position."""
    lei, identifier = _lender(audit), _application(audit)
    _with_record_replaced(audit.out, tmp_path / "out", identifier, '{"finding": "application", damaged')
    assert explain_finding(tmp_path / "out", lei) == explain_finding(audit.out, lei)
    with pytest.raises(UsageError, match=r"explanations\.parquet: record \d+: not a JSON record"):
        explain_finding(tmp_path / "out", identifier)


def test_a_record_the_index_does_not_match_is_damage(audit: Audit, tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(audit.out, out)
    index = pq.read_table(out / EXPLANATIONS_INDEX)
    index = index.set_column(1, "position", pc.add(index.column("position"), 1))  # every record one off
    pq.write_table(index, out / EXPLANATIONS_INDEX)
    with pytest.raises(UsageError, match="the outputs are damaged"):
        explain_finding(out, _lender(audit))
    (out / EXPLANATIONS_INDEX).write_bytes(b"not parquet")
    with pytest.raises(UsageError, match=r"explanations\.index\.parquet: cannot read it"):
        explain_finding(out, _lender(audit))


@pytest.mark.slow
def test_every_record_exports_as_json_lines(audit: Audit, reason: Reason) -> None:
    """``--all --format jsonl`` gives one record a line, in output order; an id's records are among them."""
    done = reason(["explain", audit.out, "--all", "--format", "jsonl"])
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    flagged = _flagged(audit)
    assert len(lines) == len(flagged) + len(audit.applications)
    records = [json.loads(line) for line in lines]
    assert [record["lei"] for record in records[: len(flagged)]] == flagged["lei"].tolist()
    applications = [record["application_id"] for record in records[len(flagged):]]
    assert applications == audit.applications["application_id"].tolist()
    identifier = _application(audit)
    one = reason(["explain", audit.out, identifier, "--format", "jsonl"])
    assert one.returncode == 0 and one.stdout.splitlines() == [
        line for line, record in zip(lines, records, strict=True) if record.get("application_id") == identifier
    ]
    assert reason(["explain", audit.out, "--all"]).returncode == 2  # --all is JSON lines only
    assert reason(["explain", audit.out]).returncode == 2


@pytest.mark.slow
def test_a_look_up_reads_no_more_than_its_row_groups(tmp_path: Path) -> None:
    """200,000 records: a look-up reads the index's and the records' row groups that can hold the id, in well
    under a second, and the file is a small fraction of the JSON lines it stores."""
    import time

    records = [
        {"finding": "application", "application_id": f"{number:07d}", "lei": f"L{number % 97:03d}",
         "proof": {"atom": f'Disparate("{number:07d}")', "supporting": [{"rule": "2.0 A(b) => Disparate(b)"}]}}
        for number in range(200_000)
    ]
    write_records(records, tmp_path)
    text = "".join(explanations_jsonl(tmp_path))
    assert text.splitlines()[123_456] == json.dumps(records[123_456], ensure_ascii=False)
    started = time.perf_counter()
    found = find(tmp_path, "0123456")
    assert time.perf_counter() - started < 1.0
    assert [item.record for item in found] == [records[123_456]] and found[0].position == 123_456
    assert find(tmp_path, "nonsense") == [] and find(tmp_path, "0123456", "lender") == []
    stored = (tmp_path / EXPLANATIONS).stat().st_size + (tmp_path / EXPLANATIONS_INDEX).stat().st_size
    assert stored < len(text.encode()) / 10
