"""The lending audit end to end: `reason rules/ facts.parquet -o OUT` on the bundled sample."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from support import REPOSITORY

from reasoner.lending.config import STATUS_TIERS, TIERS, load_config
from reasoner.lending.outputs.explain_finding import explanations_jsonl

pytestmark = pytest.mark.slow  # end-to-end audits: outside the inner loop, pytest -m "not slow"

ROOT = REPOSITORY
RULES = ROOT / "rules"
SAMPLE = ROOT / "examples" / "hmda" / "sample.parquet"
TRUTH = ROOT / "examples" / "hmda" / "sample.truth.csv"
CONFIDENCE = {"VERY_HIGH_CONFIDENCE", "HIGH_CONFIDENCE", "MEDIUM_CONFIDENCE", "LOW_CONFIDENCE", "INSUFFICIENT_EVIDENCE"}


def reason(*args: object, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reasoner", *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300
    )


@pytest.fixture(scope="module")
def out(sample_audit: tuple[Path, Path]) -> Path:
    return sample_audit[1]


def test_outputs_are_complete_and_described_by_the_manifest(out: Path) -> None:
    names = sorted(path.name for path in out.iterdir())
    assert names == sorted(
        [
            "lenders.parquet", "applications.parquet", "explanations.parquet", "explanations.index.parquet",
            "report.md", "report.html", "manifest.json",
        ]
    )
    manifest = json.loads((out / "manifest.json").read_text())
    for name, entry in manifest["outputs"].items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == entry["sha256"]
    assert manifest["inputs"][0]["sha256"] == hashlib.sha256(SAMPLE.read_bytes()).hexdigest()
    assert {Path(rule["path"]).name for rule in manifest["rules"]} >= {"audit.toml", "10-matched-pair.mln"}
    rows = manifest["rows"]
    assert rows["read"] == 5000 and rows["usable"] + sum(rows["excluded"].values()) == rows["read"]
    assert manifest["application_id"] == "row"
    assert "run" not in manifest


def test_lenders_table_has_one_row_per_lender_and_the_documented_columns(out: Path) -> None:
    lenders = pd.read_parquet(out / "lenders.parquet")
    truth = pd.read_csv(TRUTH)
    assert lenders.columns[0] == "lei"
    assert sorted(lenders["lei"]) == sorted(truth["lei"])
    assert set(lenders["risk_tier"]) <= set(TIERS) | set(STATUS_TIERS)
    assert set(lenders["confidence"]) <= CONFIDENCE
    assert lenders["risk_score"].between(0, 100).all()
    assert (lenders["flagged"] == lenders["risk_tier"].isin(TIERS[:3])).all()
    assert lenders["recommended_action"].str.len().gt(0).all()


def test_the_planted_lenders_of_the_sample_are_flagged_and_no_fair_one(out: Path) -> None:
    lenders = pd.read_parquet(out / "lenders.parquet").merge(pd.read_csv(TRUTH), on="lei")
    assert (lenders["flagged"] == lenders["discriminates"]).all(), lenders[["lei", "kind", "risk_score"]]
    kinds = dict(zip(lenders["kind"], lenders["violations"].map(list), strict=False))
    assert "disparate treatment" in kinds["disparate_treatment"]
    assert kinds["redlining"] == ["redlining"]
    assert kinds["pricing"] == ["pricing disparity"]


def test_application_findings_cite_input_rows_and_comparators(out: Path) -> None:
    applications = pd.read_parquet(out / "applications.parquet")
    assert not applications.empty
    disparate = applications[applications["finding"] == "disparate treatment"]
    assert (disparate["decision"] == "denied").all()
    assert disparate["comparators"].map(len).gt(0).all()
    records = [json.loads(line) for line in "".join(explanations_jsonl(out)).splitlines()]
    kinds = {record["finding"] for record in records}
    assert kinds == {"lender", "application"}
    first = next(record for record in records if record["finding"] == "application")
    assert first["source"] == f"sample.parquet row {first['row']}"
    cited = [atom["source"] for formula in first["proof"]["supporting"] for atom in formula["atoms"]]
    assert f"sample.parquet row {first['row']}" in cited


def test_same_inputs_give_identical_bytes_whatever_the_workers(sample_audit: tuple[Path, Path], tmp_path: Path) -> None:
    folder, out = sample_audit
    again = tmp_path / "again"
    done = reason(RULES, "sample.parquet", "-o", again, "--no-timings", "--workers", "2", cwd=folder)
    assert done.returncode == 0, done.stderr
    for path in sorted(out.iterdir()):
        assert (again / path.name).read_bytes() == path.read_bytes(), path.name


def test_a_non_empty_output_directory_is_kept_without_force(out: Path, tmp_path: Path) -> None:
    target = tmp_path / "existing"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    done = reason(RULES, SAMPLE, "-o", target)
    assert done.returncode == 2
    assert "--force" in done.stderr and "Traceback" not in done.stderr
    assert [path.name for path in target.iterdir()] == ["keep.txt"]


def test_a_precomputed_pair_table_replaces_the_search(out: Path, tmp_path: Path) -> None:
    records = [json.loads(line) for line in "".join(explanations_jsonl(out)).splitlines()]
    first = next(record for record in records if record["finding"] == "application" and record["comparators"])
    pairs = pd.DataFrame(
        [
            {
                "comparison": c["comparison"],
                "b": first["application_id"],
                "a": c["application_id"],
                "distance": c["distance"],
                "rank": c["rank"],
                "lei": first["lei"],
            }
            for c in first["comparators"]
        ]
    )
    table = tmp_path / "pairs.parquet"
    pairs.to_parquet(table)
    done = reason(RULES, SAMPLE, table, "-o", tmp_path / "given", "--no-timings")
    assert done.returncode == 0, done.stderr
    manifest = json.loads((tmp_path / "given" / "manifest.json").read_text())
    assert manifest["pairs"]["given"] is True and manifest["pairs"]["rows"] == len(pairs)
    assert [entry["kind"] for entry in manifest["inputs"]] == ["facts", "pairs"]


def test_the_built_in_library_is_used_by_reason_audit(out: Path, tmp_path: Path) -> None:
    done = reason("audit", SAMPLE, "-o", tmp_path / "builtin", "--no-timings")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "builtin" / "lenders.parquet").read_bytes() == (out / "lenders.parquet").read_bytes()


# --- audit.toml mistakes are positioned ---------------------------------------------------------


def _config_with(tmp_path: Path, old: str, new: str) -> Path:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    path = rules / "audit.toml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return rules


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("neighbours = 5", "neighbors = 5", "unknown key 'neighbors' in [similarity]"),
        ("neighbours = 5", 'neighbours = "five"', "'neighbours' must be an integer or a number, not str"),
        ('scaling = "robust"', "scaling = robust", "not valid TOML"),
        ('column = "sex"', 'column = "gender"', "unknown group column 'gender'"),  # the 5th [[comparisons]]
        ("TIER_2_HIGH_RISK = 95", "TIER_2_HIGH_RISK = 99.9", "TIER_2_HIGH_RISK = 99.9 is above TIER_1_CRITICAL"),
    ],
)
def test_config_mistakes_name_file_line_and_column(tmp_path: Path, old: str, new: str, expected: str) -> None:
    rules = _config_with(tmp_path, old, new)
    done = reason(rules, SAMPLE, "-o", tmp_path / "out")
    assert done.returncode == 2, done.stderr
    assert expected in done.stderr and "Traceback" not in done.stderr
    line = next(number for number, text in enumerate((rules / "audit.toml").read_text().splitlines(), 1) if new in text)
    assert f"audit.toml:{line}:" in done.stderr
    assert not (tmp_path / "out").exists()


def test_the_shipped_config_loads() -> None:
    config = load_config(RULES / "audit.toml")
    assert [c.name for c in config.comparisons][:2] == ["minority", "black"]
    assert config.lender_verdict == "Flagged"


def test_a_pair_table_without_its_columns_is_refused_with_what_is_expected(tmp_path: Path) -> None:
    table = tmp_path / "pairs.parquet"
    pd.DataFrame({"x": [1]}).to_parquet(table)
    done = reason(RULES, SAMPLE, table, "-o", tmp_path / "out")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "pairs.parquet: the pair table has no column 'comparison'" in done.stderr
    assert "expected columns comparison, b, a, distance, rank, lei" in done.stderr
    assert not (tmp_path / "out").exists()


def test_synth_to_an_unwritable_place_says_so(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    done = reason("synth", blocker / "s.parquet", "--applications", 10)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "s.parquet: cannot write" in done.stderr


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [("rank", None, "whole number from 1"), ("rank", 1.5, "whole number from 1"), ("distance", "far", "at least 0")],
)
def test_a_pair_table_with_bad_values_names_column_and_row(
    tmp_path: Path, column: str, value: object, expected: str
) -> None:
    from reasoner.errors import EvidenceError
    from reasoner.lending.audit.run import _read_pairs

    rows = [{"comparison": "minority", "b": "1", "a": "2", "distance": 0.5, "rank": 1, "lei": "L"} for _ in range(3)]
    rows[1][column] = value
    table = tmp_path / "pairs.csv"
    pd.DataFrame(rows).to_csv(table, index=False)
    with pytest.raises(EvidenceError, match=rf"pairs.csv: column '{column}': expected a .*{expected}.*\(row 2\)"):
        _read_pairs(table)


def test_an_input_named_like_a_computed_table_is_refused(tmp_path: Path) -> None:
    import shutil

    from reasoner.errors import UsageError
    from reasoner.lending.audit.run import audit

    named = tmp_path / "pairs"
    shutil.copy(SAMPLE, named)
    with pytest.raises(UsageError, match="may not be named 'pairs'"):
        audit([RULES], named, workers=1)


def test_first_rows_of_codes_are_those_of_numpy_unique() -> None:
    import numpy as np

    from reasoner.lending.audit.run import _first_rows

    rng = np.random.default_rng(5)
    for size, late in ((0, 0), (10, 0), (70_000, 0), (300_000, 1), (300_000, 3)):
        codes = rng.integers(-1, 6, size).astype(np.int8)
        if late:  # values first seen past the first prefixes (65,536 rows, then doubled)
            codes[-late:] = np.arange(6, 6 + late)
        assert _first_rows(codes).tolist() == np.unique(codes, return_index=True)[1].tolist()


def test_covariate_levels_from_the_first_row_of_each_value_are_those_of_every_row() -> None:
    import numpy as np

    from reasoner.lending.audit.run import _covariate_rows, _covariates
    from reasoner.lending.config import check_covariate_types
    from reasoner.lending.registers.compact import compact
    from reasoner.lending.registers.hmda import read_clean

    config = load_config(RULES / "audit.toml")
    frame = read_clean(SAMPLE, SAMPLE.name, lambda rows: None).frame
    frame.loc[frame.index[-3:], "loan_type"] = np.nan  # a missing value last: its first row is late
    held = compact(frame)
    names = [name for name in held.columns if name in _covariates(config)]
    rows = _covariate_rows(held, config)
    assert rows is not None and 0 < len(rows) < len(frame) and len(frame) - 3 in rows
    every, few = held.restore(names), held.restore(names, rows=rows)
    assert dict(few.dtypes) == dict(every.dtypes)
    check_covariate_types(config, few)
    assert config.with_levels(few).category_levels == config.with_levels(every).category_levels
    assert "\x00missing" in dict(config.with_levels(few).category_levels)["loan_type"]
    assert _covariate_rows(held.drop(["loan_type"]), config) is not None  # a covariate absent: skipped
    import dataclasses

    plain = dataclasses.replace(held, encoded=held.encoded - {"loan_type"})  # not a dictionary: every row
    assert _covariate_rows(plain, config) is None
