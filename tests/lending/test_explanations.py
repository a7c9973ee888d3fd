"""Explanations rendered per partition and renumbered as rows of the whole register's tables."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from support import REPOSITORY, SAMPLE

from reasoner.explain import Proof
from reasoner.lending.audit.explanations import Numbering, numberings

pytestmark = pytest.mark.slow  # end-to-end audits: outside the inner loop, pytest -m "not slow"

RULES = REPOSITORY / "rules"


def _citations(record: object) -> list[tuple[str, str]]:
    """(atom, source) of every cited evidence atom of a record."""
    found: list[tuple[str, str]] = []
    if isinstance(record, dict):
        if "atom" in record and isinstance(record.get("source"), str) and isinstance(record.get("value"), bool):
            found.append((str(record["atom"]), record["source"]))
        for value in record.values():
            found.extend(_citations(value))
    elif isinstance(record, list):
        for value in record:
            found.extend(_citations(value))
    return found


@pytest.fixture(scope="module")
def partitioned() -> tuple[object, list[dict[str, object]]]:
    from reasoner.lending.audit.run import audit
    from reasoner.lending.outputs.write import explanation_records

    result = audit([RULES], SAMPLE, workers=1, partition_rows=400)
    return result, explanation_records(result)


def test_proofs_arrow_cannot_hold_are_written_from_objects_alike(partitioned, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Scoring keeps the application findings' proofs as columns; should a text be one Arrow cannot
    hold (a lone surrogate), they are ``Proof`` objects instead, and the records are the same."""
    import pyarrow as pa

    from reasoner.lending.audit import score
    from reasoner.lending.audit.run import audit
    from reasoner.lending.outputs.write import explanation_records

    def refused(*args: object, **kwargs: object) -> None:
        raise pa.ArrowInvalid("not UTF-8")

    monkeypatch.setattr(score, "explain_columns", refused)
    result, records = partitioned
    again = audit([RULES], SAMPLE, workers=1, partition_rows=400)
    assert any(record["finding"] == "application" for record in records)
    assert explanation_records(again) == records
    assert again.findings.applications.equals(result.findings.applications)


def test_citations_of_partitions_are_rows_of_the_whole_registers_tables(partitioned) -> None:  # type: ignore[no-untyped-def]
    from reasoner.lending.config import load_config
    from reasoner.lending.evidence.tables import audit_tables
    from reasoner.lending.registers.files import read_hmda
    from reasoner.lending.registers.hmda import INPUT_COLUMNS, clean_hmda

    _, records = partitioned
    cleaned = clean_hmda(read_hmda(SAMPLE, INPUT_COLUMNS), SAMPLE.name).frame
    whole = audit_tables(cleaned, load_config(RULES / "audit.toml"))
    checked: dict[str, int] = {}
    for record in records:
        for atom, source in _citations(record):
            label, _, number = source.rpartition(" row ")
            if not number.isdigit():
                continue
            row = int(number) - 1
            if label == "pairs":
                pair = whole.pairs.iloc[row]
                expected = [f'"{pair["a"]}"', f'"{pair["b"]}"', str(pair["comparison"])]
            elif label == SAMPLE.name:
                expected = [str(cleaned["application_id"].iat[row])]
                if not atom.startswith(("Applicant", "Minority", "Denied", "Approved")):
                    expected = []  # an application's column cited for another atom: only its row is checked
                assert 0 <= row < len(cleaned)
            else:
                table = getattr(whole, label)
                key = "application_id" if "application_id" in table.columns else "lei"
                expected = [str(table[key].iat[row])]  # a lender's rows come from its partition
            assert all(text in atom for text in expected), (atom, source, expected)
            checked[label] = checked.get(label, 0) + 1
    assert checked.get("pairs", 0) > 50 and checked.get("denial_odds", 0) > 50 and checked.get(SAMPLE.name, 0) > 50


def test_application_records_cite_their_input_row(partitioned) -> None:  # type: ignore[no-untyped-def]
    _, records = partitioned
    applications = [record for record in records if record["finding"] == "application"]
    assert applications
    assert all(record["source"] == f"{SAMPLE.name} row {record['row']}" for record in applications)


def test_renumber_touches_only_source_values() -> None:
    numbering = Numbering("facts.parquet", np.array([10, 20, 30]), {"denial_odds": 5}, ((0, 0),))
    text = (
        json.dumps(
            {
                "source": "denial_odds row 2",
                "atoms": [{"atom": 'A("denial_odds row 2")', "source": "facts.parquet row 3"}],
                "note": {"source": "other row 1"},
                "id": 'x", "source": "denial_odds row 1',
            },
            ensure_ascii=False,
        )
        + "\n"
    )
    record = json.loads(numbering.renumber(text))
    assert record["source"] == "denial_odds row 7"
    assert record["atoms"] == [{"atom": 'A("denial_odds row 2")', "source": "facts.parquet row 30"}]
    assert record["note"] == {"source": "other row 1"}  # not one of our tables
    assert record["id"] == 'x", "source": "denial_odds row 1'  # inside another string: left alone


def test_renumber_a_label_with_quotes_and_non_ascii() -> None:
    label = 'año "2024".parquet'
    numbering = Numbering(label, np.array([7, 8]), {}, ((0, 0),))
    text = json.dumps({"source": f"{label} row 2"}, ensure_ascii=False) + "\n"
    assert json.loads(numbering.renumber(text)) == {"source": f"{label} row 8"}


def test_pair_rows_follow_comparisons_then_partitions() -> None:
    # Two partitions, comparisons x then y; the whole table: x of part 0 (3 rows), x of part 1 (2),
    # y of part 0 (1), y of part 1 (4).
    parts = [
        (np.arange(1, 4), {"lenders": 2}, {"x": 3, "y": 1}),
        (np.arange(4, 9), {"lenders": 1}, {"x": 2, "y": 4}),
    ]
    first, second = numberings(parts, ["x", "y"], "f")
    assert [first.convert("pairs", row) for row in (1, 2, 3, 4)] == [1, 2, 3, 6]
    assert [second.convert("pairs", row) for row in (1, 2, 3, 4, 5, 6)] == [4, 5, 7, 8, 9, 10]
    assert (first.convert("lenders", 2), second.convert("lenders", 1)) == (2, 3)
    assert second.convert("f", 2) == 5


def test_spill_is_removed_with_the_audit(partitioned) -> None:  # type: ignore[no-untyped-def]
    from reasoner.lending.audit.run import audit

    result = audit([RULES], SAMPLE, workers=1)
    directory = Path(result.explanations.directory)
    assert any(directory.iterdir())
    result.explanations.close()
    assert not directory.exists()


def test_no_room_for_the_explanations_is_a_limit_not_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    from reasoner.errors import LimitError
    from reasoner.lending.audit.run import audit

    def full(self: Path, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(LimitError, match="No space left on device.*set TMPDIR"):
        audit([RULES], SAMPLE, workers=1)



def test_a_failed_audit_removes_its_spilled_files_at_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A partition that fails after another was spilled: the records and held results go with the
    error, not when the process exits (a long-lived process may keep the traceback)."""
    import tempfile

    from reasoner.lending.audit import run

    real = run._execute

    def second_fails(*args, **kwargs):  # type: ignore[no-untyped-def]
        for count, result in enumerate(real(*args, **kwargs)):
            if count == 1:
                raise RuntimeError("a partition failed")
            yield result

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(run, "_execute", second_fails)
    with pytest.raises(RuntimeError, match="a partition failed") as failure:
        run.audit([RULES], SAMPLE, workers=1, partition_rows=400)
    assert failure.traceback  # kept: it holds the audit's frame, as a long-lived process would
    assert list(tmp_path.iterdir()) == []


def smokers_proofs() -> list[Proof]:
    """The proof of every query atom of the smokers example."""
    import reasoner
    from reasoner.explain import Occurrences, explain_key, find_atom

    smokers = REPOSITORY / "examples" / "smokers"
    result = reasoner.run(smokers / "smokers.mln", smokers / "evidence.db", queries=["Cancer", "Smokes", "Friends"])
    occurrences = Occurrences(result.network)
    return [
        explain_key(result.network, result.solution, *find_atom(result.network, atom.text), occurrences)
        for atom in result.atoms
    ]

def test_proof_json_is_json_safe_as_built() -> None:
    """``explanations.render`` leaves proofs out of ``json_safe``: they must need nothing of it."""
    from reasoner.lending.audit.explanations import json_safe

    proofs = smokers_proofs()
    assert any(proof.supporting or proof.opposing for proof in proofs)

    def plain(value: object) -> bool:
        if isinstance(value, dict):
            return all(type(key) is str and plain(item) for key, item in value.items())
        if isinstance(value, list):
            return all(plain(item) for item in value)
        return value is None or type(value) in (str, int, bool) or (type(value) is float and np.isfinite(value))

    for proof in proofs:
        built = proof.to_json()
        assert plain(built), built
        assert json.dumps(json_safe(built)) == json.dumps(built)


def test_proof_texts_are_the_json_of_their_proofs() -> None:
    """``explanations.render`` writes a proof from the texts of its parts: the encoder's text of
    ``Proof.to_json``, for every proof of the smokers example and for margins, effects and texts of
    every kind (infinite, fractional, none; quotes and non-ASCII)."""
    from decimal import Decimal

    from reasoner.explain import EvidenceCitation, GroundFormulaProof
    from reasoner.lending.audit.explanations import _ENCODER, _ProofText

    proofs = smokers_proofs()
    cited = EvidenceCitation('Q("a \\"b\\"")', False, "table é row 3")
    odd = [
        GroundFormulaProof("1.5 P(x) => Q(x)", "r.mln:2", "1.5", (("x", "\t✓"),), True, Decimal("1.5"), (cited, cited)),
        GroundFormulaProof("P(x).", "r.mln:3", "hard", (), False, Decimal("-Infinity"), ()),
        GroundFormulaProof("-2 P(x)", "r.mln:4", "2", (("x", "a"), ("y", "b")), True, Decimal("0"), (cited,)),
    ]
    for margin in (None, Decimal("Infinity"), Decimal("0.25"), Decimal(3)):
        proofs.append(Proof("P(\"x\")", True, "inference", None, margin, tuple(odd[:1]), tuple(odd[1:]), 2))
    proofs.append(Proof("Q(a)", False, "evidence", "facts.db:3", None, (), (), 0))
    assert any(proof.supporting and proof.opposing for proof in proofs)
    text = _ProofText()
    for proof in [*proofs, *proofs]:  # the second time from the texts kept
        assert text(proof) == _ENCODER.encode(proof.to_json())


def test_proof_texts_from_columns_are_those_of_their_proofs() -> None:
    """``_ProofText.columns`` writes the citations in Arrow: the text ``_ProofText`` gives each proof
    (every proof of the smokers example as ``explain_columns`` holds them, and texts that need escapes:
    quotes, backslashes, control characters, non-ASCII), with and without marked table rows."""
    from decimal import Decimal

    import pyarrow as pa

    import reasoner
    from reasoner.explain import Occurrences, ProofColumns, explain_columns
    from reasoner.lending.audit.explanations import _ProofText

    smokers = REPOSITORY / "examples" / "smokers"
    result = reasoner.run(smokers / "smokers.mln", smokers / "evidence.db", queries=["Cancer", "Smokes", "Friends"])
    network, solution = result.network, result.solution
    made = [
        explain_columns(network, solution, name, np.arange(index.num_atoms, dtype=np.int64), Occurrences(network))
        for name, index in network.predicates.items()
    ]
    assert sum(len(columns.citation_values) for columns in made) > 0
    odd = ProofColumns(
        atoms=['P("x")', "Q(a)"],
        values=[True, False],
        decided_by=["inference", "evidence"],
        sources=[None, "facts.db:3"],
        margins=[Decimal("0.25"), None],
        neutral=[2, 0],
        formula_offsets=np.array([0, 2, 3]),
        supporting=[1, 0],
        rules=["1.5 P(x) => Q(x)", "P(x).", "-2 P(x)"],
        locations=["r.mln:2", "r.mln:3", "r.mln:4"],
        weights=["1.5", "hard", "2"],
        substitutions=[(("x", "\t✓"),), (), (("x", "a"), ("y", "b"))],
        satisfied=[True, False, True],
        effects=[Decimal("1.5"), Decimal("-Infinity"), Decimal("-2")],
        citation_offsets=np.array([0, 3, 3, 6]),
        citation_atoms=pa.array(
            ['Q("a \\"b\\"")', "R(\\)", 'S("\n\x01é")', "Q(a)", "R(\\)", "Q(a)"], pa.large_string()
        ),
        citation_values=np.array([False, True, True, False, True, True]),
        citation_sources=pa.array(
            ["table é row 3", "pairs row 17", "closed world", "inferred", "pairs row 17", "inferred"], pa.large_string()
        ),
    )
    for columns in [*made, odd]:
        for labels in (None, {"x": 0}):
            text, alone = _ProofText(None if labels is None else dict(labels)), _ProofText(labels)
            proofs = [columns.proof(number) for number in range(len(columns))]  # alive: texts kept by id
            expected = [alone(proof) for proof in proofs]
            assert text.columns(columns) == expected
            assert text.columns(columns) == expected  # the second time from the texts kept


def test_citations_are_numbered_as_distinct_atom_value_and_source() -> None:
    """``_distinct_citations``: a citation repeats only with its atom, value and source all equal,
    numbered in the order of first occurrence; the same atom with another value or source is another."""
    import pyarrow as pa

    from reasoner.lending.audit.explanations import _distinct_citations

    atoms = pa.array(["P(a)", "Q(b)", "P(a)", "P(a)", "P(a)", "Q(b)", "R(\\)"], pa.large_string())
    values = np.array([True, False, True, False, True, False, True])
    sources = pa.array([0, 1, 0, 0, 2, 1, 0], pa.int32())
    numbers, first = _distinct_citations(atoms, values, sources)
    assert numbers.tolist() == [0, 1, 0, 2, 3, 1, 4]
    assert first.tolist() == [0, 1, 3, 4, 6]


def test_partition_results_wait_on_disk_until_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    import pandas as pd

    from reasoner.errors import LimitError
    from reasoner.lending.audit.explanations import Explanations, Rendered, spill

    explanations = Explanations()
    try:
        value = {"tables": pd.DataFrame({"lei": ["A", "B"], "count": [1, 2]}), "rows": np.arange(3)}
        spilled = spill(explanations.directory, 7, 3, Rendered({"A": "{}"}, b"records"), value)
        explanations.adopt(spilled)
        assert sorted(path.name for path in explanations.directory.iterdir() if path.suffix != ".lock") == [
            "00000007.arrows",
            "00000007.result.pickle",
        ]
        assert (spilled.index, spilled.applications, spilled.records) == (7, 3, True)
        assert explanations.lenders == {"A": (7, "{}")} and explanations.spilled == [7]
        taken = explanations.take(7)
        assert taken["tables"].equals(value["tables"]) and taken["rows"].tolist() == [0, 1, 2]
        assert not list(explanations.directory.glob("*.result.pickle"))  # removed once taken
        explanations.adopt(spill(explanations.directory, 9, 0, Rendered({}, b""), value))  # no records: no file
        assert explanations.spilled == [7] and not (explanations.directory / "00000009.arrows").exists()

        def full(*args: object, **kwargs: object) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr("reasoner.lending.audit.explanations.pickle.dump", full)
        with pytest.raises(LimitError, match="No space left on device.*set TMPDIR"):
            spill(explanations.directory, 8, 1, Rendered({}, b""), value)
    finally:
        explanations.close()


@pytest.mark.parametrize(
    "distances", [[0.25, 1.5, 1e-06, 1.0, 3.0e16], [0.25, float("inf")], [float("nan"), -float("inf")], [None], []]
)
def test_comparator_texts_are_the_json_of_their_lists(distances: list[float | None]) -> None:
    """``explanations.render`` writes the comparators field by field in Arrow: the text the encoder
    gives their ``json_safe`` Python lists, whatever the values (escapes, non-finite and missing ones)."""
    import pandas as pd
    import pyarrow as pa

    from reasoner.lending.audit.explanations import _ENCODER, _comparator_texts, json_safe
    from reasoner.lending.audit.score import COMPARATORS

    ids = ["a1", 'quote " and \\ back', "tab\tand é ✓", "", "z"]
    lists = [
        [
            {
                "application_id": ids[(number + place) % len(ids)],
                "row": 3 + place if place != 2 else None,
                "comparison": "minority",
                "distance": distance,
                "rank": place + 1,
                "decision": None if place == 1 else "approved",
            }
            for place in range(number % 3 + 1)
        ]
        for number, distance in enumerate(distances)
    ] + [[]]
    column = pd.arrays.ArrowExtensionArray(pa.array(lists, type=COMPARATORS))
    frame = pd.DataFrame({"comparators": pd.Series(column)})
    expected = [_ENCODER.encode(json_safe(found)) for found in pa.array(lists, type=COMPARATORS).to_pylist()]
    assert _comparator_texts(frame) == expected
    assert _comparator_texts(frame.iloc[1:]) == expected[1:]  # a slice of the column
    assert _comparator_texts(frame.iloc[:0]) == []
    with_missing = pd.arrays.ArrowExtensionArray(pa.array([None, *lists], COMPARATORS))
    missing = pd.DataFrame({"comparators": pd.Series(with_missing)})
    assert _comparator_texts(missing) == ["null", *expected]  # a missing list: the long way


def test_renumber_many_citations_as_one_at_a_time() -> None:
    # Every label of ours, many times and out of order, beside values that only look like citations.
    numbering = Numbering("f.parquet", np.arange(100, 130), {"lenders": 3, "pricing": 40}, ((0, 5), (4, 50)))
    rng = np.random.default_rng(1)
    cited = [("f.parquet", 30), ("pairs", 9), ("lenders", 2), ("pricing", 1), ("other", 4), ("pairs", 2)]
    records = []
    for _ in range(200):
        label, top = cited[int(rng.integers(len(cited)))]
        row = int(rng.integers(1, top + 1))
        records.append(json.dumps({"source": f"{label} row {row}", "atom": f"A({label} row {row})", "n": row}))
    renumbered = [json.loads(line) for line in numbering.renumber("\n".join(records)).split("\n")]
    for text, record in zip(records, renumbered, strict=True):
        original = json.loads(text)
        label, _, row = original["source"].rpartition(" row ")
        expected = numbering.convert(label, int(row))
        assert record["source"] == (original["source"] if expected is None else f"{label} row {expected}")
        assert (record["atom"], record["n"]) == (original["atom"], original["n"])
    assert numbering.convert("pairs", 5) == 51 and numbering.convert("f.parquet", 1) == 100


def test_statistics_records_are_to_dict_records() -> None:
    """``explanations._records`` gives the values and types ``DataFrame.to_dict("records")`` gives."""
    import math

    import pandas as pd

    from reasoner.lending.audit.explanations import _records

    frame = pd.DataFrame(
        {
            "lei": pd.Series(["A", None, "É"], dtype="str"),
            "count": np.array([1, 2, 3], dtype=np.int64),
            "share": [0.5, float("nan"), float("inf")],
            "flag": [True, False, True],
            "note": pd.Series(["x", None, 3], dtype=object),
            "small": np.array([1, 2, 3], dtype=np.int32),
        }
    )
    expected, found = frame.to_dict("records"), _records(frame)
    assert [list(row) for row in found] == [list(row) for row in expected]
    for got, want in zip(found, expected, strict=True):
        for name, value in want.items():
            assert type(got[name]) is type(value), name
            assert got[name] == value or (isinstance(value, float) and math.isnan(value) and math.isnan(got[name]))
    assert _records(frame.iloc[:0]) == []


def test_an_arrow_memory_error_in_the_proofs_is_not_taken_for_a_text_arrow_cannot_hold(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Only a text Arrow cannot hold sends the proofs to ``Proof`` objects: Arrow running out of
    memory (or another Arrow error) is not hidden behind the slower path."""
    import pyarrow as pa

    from reasoner.lending.audit import score
    from reasoner.lending.audit.run import audit

    def exhausted(*args: object, **kwargs: object) -> None:
        raise pa.ArrowMemoryError("malloc of 1 GB failed")

    monkeypatch.setattr(score, "explain_columns", exhausted)
    with pytest.raises(pa.ArrowMemoryError):
        audit([RULES], SAMPLE, workers=1, partition_rows=400)
