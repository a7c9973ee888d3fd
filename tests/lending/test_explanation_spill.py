"""Application records spilled cut at their citations and joined again, renumbered, in Arrow; the
explanation file's row groups, whatever the batches the records come in."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from reasoner.explain import EvidenceCitation, GroundFormulaProof, Proof
from reasoner.lending.audit.explanations import (
    _ENCODER,
    MARK,
    Numbering,
    _cited_text,
    _cut,
    _encode_text,
    _joined,
    _ProofText,
)
from reasoner.lending.outputs.explanation_file import (
    EXPLANATIONS,
    RECORD_CHARACTERS,
    RECORD_ROWS,
    json_lines,
    write_explanations,
)

FACTS = 'año "2024".parquet'
SOURCES = [
    f"{FACTS} row 3",
    f"{FACTS} row 1",
    "pairs row 9",
    "pairs row 2",
    "lenders row 2",
    "pricing row 40",
    "other row 4",  # not a table of the whole register: its row is kept
    "closed world",
    "a row b row 1",  # the label is everything before the last " row "
    "facts row x",
    "",
]


def _numbering() -> Numbering:
    return Numbering(FACTS, np.arange(100, 130), {"lenders": 3, "pricing": 40}, ((0, 5), (4, 50)))


def _record(rng: np.random.Generator, cite: object) -> str:
    """A record's text citing a few sources (``cite`` writes a "source" value) beside look-alikes."""
    parts = []
    for _ in range(int(rng.integers(0, 6))):
        source = SOURCES[int(rng.integers(len(SOURCES)))]
        parts.append(f'{{"atom": {_encode_text(f"A({source})")}, "source": {cite(source)}, "n": "pairs row 1"}}')  # type: ignore[operator]
    return "{" + f'"id": "x\\", \\"source\\": \\"pairs row 1", "atoms": [{", ".join(parts)}]' + "}"


def test_records_cut_and_joined_are_those_renumbered_as_text() -> None:
    numbering = _numbering()
    labels: dict[str, int] = {}
    marked, plain = [], []
    for seed in range(300):
        marked.append(_record(np.random.default_rng(seed), lambda source: _cited_text(source, labels)))
        plain.append(_record(np.random.default_rng(seed), _encode_text))
    assert all(MARK not in text for text in plain)
    pieces, codes, rows = _cut(pa.array(marked, pa.large_string()))
    joined = _joined(pieces, codes, rows, list(labels), numbering).to_pylist()
    assert joined == [numbering.renumber(text) for text in plain]
    assert any(json.loads(text) != json.loads(numbering.renumber(text)) for text in plain)  # some were renumbered
    # a slice of the cut records (as a batch of the spilled stream may be)
    joined = _joined(pieces.slice(7, 50), codes.slice(7, 50), rows.slice(7, 50), list(labels), numbering)
    assert joined.to_pylist() == [numbering.renumber(text) for text in plain[7:57]]


def test_a_record_without_citations_and_one_that_is_only_a_citation() -> None:
    labels: dict[str, int] = {}
    records = ['{"a": 1}', _cited_text("pairs row 3", labels), ""]
    pieces, codes, rows = _cut(pa.array(records, pa.large_string()))
    assert codes.to_pylist() == [[], [0], []] and rows.to_pylist() == [[], [3], []]
    assert _joined(pieces, codes, rows, list(labels), _numbering()).to_pylist() == ['{"a": 1}', '"pairs row 8"', ""]


def test_marked_proof_texts_are_the_json_of_their_proofs() -> None:
    cited = EvidenceCitation('Q("a \\"b\\"")', False, "table é row 3")
    odd = [
        GroundFormulaProof("1.5 P(x) => Q(x)", "r.mln:2", "1.5", (("source", "pairs row 4"),), True, Decimal("1.5"),
                           (cited, cited, EvidenceCitation("R(a)", True, "closed world"))),
        GroundFormulaProof("P(x).", "r.mln:3", "hard", (), False, Decimal("-Infinity"), ()),
    ]
    proofs = [
        Proof('P("x")', True, "inference", None, Decimal("0.25"), tuple(odd[:1]), tuple(odd[1:]), 2),
        Proof("Q(a)", False, "evidence", "facts.db row 12", None, (), (), 0),
    ]
    labels: dict[str, int] = {}
    text = _ProofText(labels)
    for proof in [*proofs, *proofs]:
        marked = text(proof)
        assert re.sub("\x00[0-9]+\x01([0-9]+)\x00", r"\1", marked) == _ENCODER.encode(proof.to_json())
    assert labels == {"table é": 0, "facts.db": 1}  # a substitution is no citation


def _groups(lengths: list[int]) -> list[int]:
    """The row groups' sizes: a group ends at RECORD_ROWS records or once RECORD_CHARACTERS are reached."""
    sizes, count, size = [], 0, 0
    for length in lengths:
        count, size = count + 1, size + length
        if count == RECORD_ROWS or size >= RECORD_CHARACTERS:
            sizes.append(count)
            count = size = 0
    return [*sizes, count] if count or not sizes else sizes


class _Batch:
    def __init__(self, findings: list[str], ids: list[str], records: list[str], arrow: bool) -> None:
        self.findings = pa.array(findings) if arrow else findings
        self.ids = pa.array(ids, pa.large_string()) if arrow else ids
        self.records = pa.array(records, pa.large_string()) if arrow else records


def test_row_groups_follow_the_records_not_the_batches(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    for case in range(4):
        count = (20_000, 3, 700, 9000)[case]
        big = (50, RECORD_CHARACTERS // 2, RECORD_CHARACTERS // 40, 200)[case]  # the row limit, then the characters
        lengths = rng.integers(1, big, size=count).tolist()
        records = [("é" if number % 3 == 0 else "r") * length for number, length in enumerate(lengths)]
        ids = [f"id{number}" for number in range(count)]
        kinds = ["lender" if number < 5 else "application" for number in range(count)]
        cuts = sorted(set(rng.integers(0, count, size=int(rng.integers(0, 30))).tolist()) | {0, count})
        batches = [
            _Batch(kinds[start:stop], ids[start:stop], records[start:stop], arrow=bool(case % 2))
            for start, stop in zip(cuts, cuts[1:], strict=False)
        ]
        directory = tmp_path / str(case)
        directory.mkdir()
        assert write_explanations(batches, directory) == count
        file = pq.ParquetFile(directory / EXPLANATIONS)
        groups = [file.metadata.row_group(group).num_rows for group in range(file.metadata.num_row_groups)]
        assert groups == _groups(lengths), case
        assert "".join(json_lines(directory)) == "".join(record + "\n" for record in records)
        one = tmp_path / f"{case}-one"
        one.mkdir()
        write_explanations([_Batch(kinds, ids, records, arrow=False)], one)
        assert (one / EXPLANATIONS).read_bytes() == (directory / EXPLANATIONS).read_bytes()


def test_no_records_is_an_empty_file(tmp_path: Path) -> None:
    assert write_explanations([], tmp_path) == 0
    assert pq.ParquetFile(tmp_path / EXPLANATIONS).metadata.num_rows == 0


def test_a_stream_cut_batch_by_batch_holds_every_record(monkeypatch: pytest.MonkeyPatch) -> None:
    """``_stream`` cuts and writes ``SPILL_BATCH`` records at a time: read back, batch after batch,
    and joined, the records and ids are all there, in order, whatever the batch size."""
    from reasoner.lending.audit import explanations

    numbering = _numbering()
    plain = [_record(np.random.default_rng(seed), _encode_text) for seed in range(23)]
    labels: dict[str, int] = {}
    marked = [_record(np.random.default_rng(seed), lambda source: _cited_text(source, labels)) for seed in range(23)]
    ids = [f"id{seed}" for seed in range(23)]
    for size in (1, 5, 8192):
        monkeypatch.setattr(explanations, "SPILL_BATCH", size)
        reader = pa.ipc.open_stream(pa.BufferReader(explanations._stream(ids, marked, labels)))
        found_labels = json.loads(reader.schema.metadata[b"labels"])
        found_ids: list[str] = []
        joined: list[str] = []
        batches = 0
        for batch in reader:
            batches += 1
            found_ids += batch.column("id").to_pylist()
            pieces, codes, rows = (batch.column(name) for name in ("pieces", "codes", "rows"))
            joined += _joined(pieces, codes, rows, found_labels, numbering).to_pylist()
        assert batches == -(-23 // size)
        assert found_ids == ids
        assert joined == [numbering.renumber(text) for text in plain]


def test_sources_marked_in_arrow_are_marked_as_one_by_one() -> None:
    """``_cited_texts`` writes each source as ``_cited_text`` does (a last " row " and a row number as
    ``str`` writes it: marked; anything else: JSON text) and adds the labels in the same order."""
    from reasoner.lending.audit.explanations import _cited_texts

    sources = [
        "pairs row 17", "facts.parquet row 0", "x row 01", "inferred", "closed world", 'a "q" \\ row 3',
        "pairs row 5 row x", "t\nrow row 9", "denial_odds row 2", "é ✓ row 12", " row 5", "pairs row 4", "row 5",
    ]
    one_by_one, at_once = {"facts.parquet": 0}, {"facts.parquet": 0}
    expected = [_cited_text(source, one_by_one) for source in sources]
    assert _cited_texts(pa.array(sources, pa.large_string()), at_once).to_pylist() == expected
    assert list(at_once.items()) == list(one_by_one.items())
    assert _cited_texts(pa.array(["inferred"], pa.large_string()), at_once).to_pylist() == ['"inferred"']


def test_floats_written_in_arrow_are_written_as_python_writes_them() -> None:
    """``_float_texts`` takes Arrow's text only where it is Python's (``_floats``): fractions from 1e-4
    to 1e16; integral values, exponents, NaN, ±inf and missing values are written by Python."""
    from reasoner.lending.audit.explanations import _float_texts, _floats

    rng = np.random.default_rng(5)
    values: list[float | None] = [
        *rng.random(2000).round(6).tolist(),
        *(10 ** rng.uniform(-8, 20, 2000) * rng.choice([-1, 1], 2000)).tolist(),
        0.0, -0.0, 1.0, -2.0, 1e-4, 9.999999e-5, 1e16, 9999999999999998.0, 5e-324,
        float("nan"), float("inf"), -float("inf"), None,
    ]
    array = pa.array(values, pa.float64())
    assert _float_texts(array).to_pylist() == _floats(values)
    assert _float_texts(array.slice(3, 2500)).to_pylist() == _floats(values[3:2503])
    assert _float_texts(pa.array([], pa.float64())).to_pylist() == []


def test_record_fields_written_in_arrow_are_their_json() -> None:
    """``_column_texts`` writes a column's values as the encoder writes them ``json_safe``: text with
    escapes, integers, floats (NaN, ±inf), and a column Arrow cannot hold as one type value by value."""
    import pandas as pd

    from reasoner.lending.audit.explanations import _column_texts, json_safe

    columns = [
        pd.Series(["a1", 'quote " and \\ back', "tab\tand é ✓", ""]),
        pd.Series([3, 0, -7, 2**40]),
        pd.Series([0.5, float("nan"), float("inf"), 1.0]),
        pd.Series(["a", 1, 2.5, None], dtype=object),
        pd.Series([True, False, True, True]),
        pd.Series([1, 2.5, 3], dtype=object),  # Arrow would make every one a float: 1.0
        pd.Series([2**63, 1], dtype=object),  # beyond int64
    ]
    for column in columns:
        expected = [_ENCODER.encode(json_safe(value)) for value in column.tolist()]
        assert _column_texts(column).to_pylist() == expected
