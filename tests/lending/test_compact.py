"""The cleaned register held compact (``registers.compact``): restored exactly, in fewer bytes."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from support import REPOSITORY

from reasoner.errors import EvidenceError
from reasoner.lending.registers import files
from reasoner.lending.registers.compact import CompactFrame, code_type, compact, concat
from reasoner.lending.registers.hmda import clean_hmda, read_clean

SAMPLE = REPOSITORY / "examples" / "hmda" / "sample.parquet"


@pytest.fixture(scope="module")
def whole() -> pd.DataFrame:
    return read_clean(SAMPLE, SAMPLE.name).frame


def _same(restored: pd.DataFrame, expected: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(restored, expected, check_exact=True)
    assert list(restored.dtypes) == list(expected.dtypes)
    for name in expected.columns:  # the same bits: floats (NaN, -0.0) and text alike
        if expected[name].dtype == np.float64:
            assert restored[name].to_numpy().tobytes() == expected[name].to_numpy().tobytes(), name


@pytest.mark.parametrize("batch", [700, 5000, 10**6])
def test_read_compact_restores_the_frame_of_one_piece(
    monkeypatch: pytest.MonkeyPatch, whole: pd.DataFrame, batch: int
) -> None:
    monkeypatch.setattr(files, "BATCH_ROWS", batch)
    cleaned = read_clean(SAMPLE, SAMPLE.name, compact=True)
    held = cleaned.held
    assert held is not None and len(held) == len(whole)
    assert len(cleaned.frame) == 0 and list(cleaned.frame.dtypes) == list(whole.dtypes)
    _same(held.restore(), whole)
    rows = np.sort(np.random.default_rng(batch).choice(len(whole), 400, replace=False))
    _same(held.restore(rows=rows), whole.iloc[rows])
    _same(held.restore(["excluded", "lei", "row"], rows), whole.iloc[rows][["excluded", "lei", "row"]])
    assert cleaned.provenance_notes() == read_clean(SAMPLE, SAMPLE.name).provenance_notes()


def test_a_partition_task_pickles_as_before(whole: pd.DataFrame) -> None:
    """What a worker receives is the slice of the cleaned frame, to the byte."""
    rows = np.flatnonzero((whole["lei"] == whole["lei"].iloc[0]).to_numpy())
    restored = compact(whole).restore(rows=rows)
    assert pickle.loads(pickle.dumps(restored)).equals(whole.iloc[rows])
    _same(pickle.loads(pickle.dumps(restored)), whole.iloc[rows])


@pytest.mark.parametrize("ids", ["given", "rows"])
def test_rows_taken_compact_restore_as_the_rows_restored(whole: pd.DataFrame, ids: str) -> None:
    """What a worker restores from the rows sent compact (``CompactFrame.take``) is what the main
    process restored before, index, dtypes and bits, after a pickle too; a take of a take as well."""
    frame = whole.copy()  # the sample's ids are its row numbers: held as those, and ``row`` as a range
    if ids == "given":
        frame["application_id"] = ("A" + frame["row"].astype("str")).astype(frame["application_id"].dtype)
    held = compact(frame)
    assert held.first_row is not None and held.ids_are_rows == (ids == "rows") and held.encoded
    for rows in (
        np.flatnonzero((frame["lei"] == frame["lei"].iloc[0]).to_numpy()),
        np.sort(np.random.default_rng(5).choice(len(frame), 300, replace=False)),
        np.arange(0),
    ):
        taken = pickle.loads(pickle.dumps(held.take(rows)))
        assert len(taken) == len(rows)
        _same(taken.restore(), held.restore(rows=rows))
        _same(taken.restore(), frame.iloc[rows])
        _same(taken.restore(["lei", "row"], np.arange(len(rows))[::2]), frame.iloc[rows[::2]][["lei", "row"]])
        _same(taken.take(np.arange(len(rows))[1::3]).restore(), frame.iloc[rows[1::3]])
        _same(taken.drop(["race"]).restore(), frame.iloc[rows].drop(columns=["race"]))


def test_the_held_register_takes_an_eighth_of_the_bytes(whole: pd.DataFrame) -> None:
    frame = pd.concat([whole] * 20, ignore_index=True)  # 100,000 rows: the dictionaries are amortised
    frame["row"] = np.arange(1, len(frame) + 1)
    frame["application_id"] = frame["row"].astype("str")
    before = frame.memory_usage(deep=True).sum() / len(frame)
    held = compact(frame)
    after = held.memory_usage() / len(frame)
    assert before > 350  # 420 bytes a row measured on the 100,000-row synth register
    assert after < 60  # 53 measured
    assert held.first_row == 1 and held.ids_are_rows
    _same(held.restore(), frame)


def test_columns_are_held_as_dictionaries_only_when_they_come_back_bit_for_bit() -> None:
    count = 1000
    zeros = np.where(np.arange(count) % 2 == 0, 0.0, -0.0)  # 0.0 and -0.0 factorize as one value
    payload = np.full(count, np.nan)
    payload[::3] = np.frombuffer(np.uint64(0x7FF8000000000001).tobytes(), dtype=np.float64)[0]  # another NaN
    frame = pd.DataFrame(
        {
            "row": np.arange(5, 5 + count, dtype=np.int64),
            "application_id": pd.Series([f"A{number}" for number in range(count)], dtype="str"),
            "zeros": zeros,
            "nans": payload,
            "code": np.where(np.arange(count) % 3 == 0, np.nan, np.arange(count) % 4 + 1.0),
            "wide": np.arange(count, dtype=np.float64) / 7,  # every value distinct: kept as it is
            "text": pd.Series(np.where(np.arange(count) % 5 == 0, None, "x"), dtype="str"),
            "count": np.arange(count, dtype=np.int64) % 3,
            "objects": pd.Series(["a"] * count, dtype=object),  # not a cleaned dtype: kept as it is
        }
    )
    held = compact(frame)
    assert held.encoded == {"code", "text", "count"}
    assert held.first_row == 5 and not held.ids_are_rows
    _same(held.restore(), frame)
    rows = np.array([999, 0, 3, 3])
    _same(held.restore(rows=rows), frame.iloc[rows])


def test_pieces_with_different_values_join_into_one_dictionary() -> None:
    def piece(first_row: int, leis: list[str | None], codes: list[float]) -> pd.DataFrame:
        count = 10 * len(leis)  # ten times over: few values for the rows, as in a register
        return pd.DataFrame(
            {
                "row": np.arange(first_row, first_row + count),
                "lei": pd.Series(leis * 10, dtype="str"),
                "code": codes * 10,
            }
        )

    first = piece(1, ["B", "A", None, "B"], [1.0, np.nan, 2.0, 1.0])
    second = piece(41, ["C", "A", "C"], [3.0, 3.0, np.nan])
    whole = pd.concat([first, second], ignore_index=True)
    joined = concat([compact(first), compact(second)])
    assert joined.encoded == {"lei", "code"} and joined.first_row == 1
    assert list(joined.held["lei"].cat.categories) == ["A", "B", "C"]
    _same(joined.restore(), whole)
    gap = second.assign(row=np.arange(50, 80))  # not consecutive: the row numbers are held
    joined = concat([compact(first), compact(gap)])
    assert joined.first_row is None
    _same(joined.restore(), pd.concat([first, gap], ignore_index=True))
    mixed = concat([compact(first), compact(second.assign(code=np.arange(30) / 7))])  # a piece of many values
    assert mixed.encoded == {"lei"}
    _same(mixed.restore(), pd.concat([first, second.assign(code=np.arange(30) / 7)], ignore_index=True))


def test_a_register_with_ids_keeps_them_and_finds_duplicates_across_pieces(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    raw = pq.read_table(SAMPLE).to_pandas()
    raw["application_id"] = [f"ID{number:05d}" for number in range(len(raw))]
    path = tmp_path / "ids.parquet"
    pq.write_table(pa.Table.from_pandas(raw, preserve_index=False), path)
    monkeypatch.setattr(files, "BATCH_ROWS", 1000)
    cleaned = read_clean(path, path.name, compact=True)
    assert cleaned.id_column == "application_id" and cleaned.held is not None
    assert not cleaned.held.ids_are_rows
    _same(cleaned.held.restore(), read_clean(path, path.name).frame)
    raw.loc[4000, "application_id"] = raw.loc[3, "application_id"]  # rows 4 and 4001: different pieces
    pq.write_table(pa.Table.from_pandas(raw, preserve_index=False), path)
    with pytest.raises(EvidenceError, match="duplicate application ids 'ID00003'"):
        read_clean(path, path.name, compact=True)


def test_partitions_from_the_held_lei_codes_are_those_from_the_text(whole: pd.DataFrame) -> None:
    from reasoner.lending.audit.run import _partitions

    lei = compact(whole).dictionary("lei")
    assert lei is not None and list(lei.cat.categories) == sorted(lei.cat.categories)
    for target in (1, 400, 1500, 10**6):
        expected = _partitions(whole["lei"], target, whole=False)
        found = _partitions(lei, target, whole=False)
        assert [rows.tolist() for rows in found] == [rows.tolist() for rows in expected]


def test_partitions_keep_each_lender_whole_and_rows_in_input_order() -> None:
    from reasoner.lending.audit.run import _partitions

    rng = np.random.default_rng(3)
    lei = pd.Series(rng.choice([f"L{number:03d}" for number in range(300)], 20_000).astype(object))
    lei[rng.choice(len(lei), 50, replace=False)] = None  # no lender: the first partition
    found = _partitions(lei, 60, whole=False)
    assert len(found) > 100 and sorted(np.concatenate(found).tolist()) == list(range(len(lei)))
    assert all((np.diff(rows) > 0).all() for rows in found)
    assert set(np.flatnonzero(lei.isna().to_numpy())) <= set(found[0].tolist())
    leis = [set(lei.iloc[rows].dropna()) for rows in found]
    assert sum(map(len, leis)) == lei.nunique() and max(leis[0]) < min(leis[1])


def test_text_as_held_gives_the_values_in_the_order_of_the_text(whole: pd.DataFrame) -> None:
    held = compact(whole)
    names = ["lei", "excluded", "msa", "income", "application_id"]
    frame = held.restore(names, text_as_held=True)
    assert isinstance(frame["lei"].dtype, pd.CategoricalDtype) and frame["income"].dtype == np.float64
    for name in names:
        _same(frame[[name]].astype({name: whole[name].dtype}), whole[[name]])
        codes, values = pd.factorize(frame[name], sort=True)
        expected_codes, expected_values = pd.factorize(whole[name], sort=True)
        assert codes.tolist() == expected_codes.tolist() and list(values) == list(expected_values)
    assert (frame["excluded"] == "").tolist() == (whole["excluded"] == "").tolist()
    rows = np.array([5, 1, 4000])
    _same(held.restore(["lei"], rows, text_as_held=True).astype("str"), whole.iloc[rows][["lei"]])


def test_pieces_whose_zeros_differ_in_sign_keep_both_signs() -> None:
    """One piece of -0.0 and one of 0.0, each a dictionary alone: their union would keep one zero
    (found in review), so the column is held as it is and both signs come back."""

    def piece(first_row: int, zero: float) -> pd.DataFrame:
        return pd.DataFrame({"row": np.arange(first_row, first_row + 40), "spread": [zero, 1.5] * 20})

    first, second = piece(1, -0.0), piece(41, 0.0)
    assert compact(first).encoded == {"spread"} and compact(second).encoded == {"spread"}
    joined = concat([compact(first), compact(second)])
    assert "spread" not in joined.encoded
    restored = joined.restore()["spread"].to_numpy()
    assert restored.tobytes() == pd.concat([first, second], ignore_index=True)["spread"].to_numpy().tobytes()
    same_sign = concat([compact(first), compact(piece(41, -0.0))])
    assert "spread" in same_sign.encoded  # one sign: still one dictionary


def test_pieces_that_encoded_a_column_with_different_dtypes_are_not_joined() -> None:
    first = pd.DataFrame({"row": np.arange(1, 41), "count": np.array([1, 2] * 20, dtype=np.int64)})
    second = pd.DataFrame({"row": np.arange(41, 81), "count": [1.5, np.nan] * 20})
    joined = concat([compact(first), compact(second)])
    assert "count" not in joined.encoded
    expected = pd.concat([first, second], ignore_index=True)
    _same(joined.restore(), expected)


def _held_columns(held: CompactFrame) -> dict[str, bytes]:
    return {name: pickle.dumps(held.held[name]) for name in held.held.columns}


@pytest.mark.parametrize("form", ["parquet", "text", "odd values"])
def test_columns_held_from_the_cleanings_codes_are_those_factorized_from_the_rows(form: str) -> None:
    """``compact(frame, coded)`` holds what ``compact(frame)`` holds, to the pickled byte, and each
    coded column is its frame's column: categories, codes, dtypes and the columns kept as they are."""
    raw = pq.read_table(SAMPLE).to_pandas()
    if form != "parquet":
        raw = raw.astype("str").astype(object)  # as a text register reads: every value a string
    if form == "odd values":
        count = len(raw)
        raw["income"] = np.where(np.arange(count) % 2 == 0, "0", "-0")  # 0.0 and -0.0: both come back
        raw["loan_amount"] = [str(number) for number in range(count)]  # too many values: kept as they are
        raw["derived_sex"] = np.where(np.arange(count) % 3 == 0, "male", "Male")  # two spellings, one value
        raw["derived_msa-md"] = np.where(np.arange(count) % 4 == 0, "NA", " 12345 ")
        raw["application_id"] = [f"ID{number:05d}" for number in range(count)]
    cleaned = clean_hmda(raw, "register.parquet", keep_codes=True)
    plain = clean_hmda(raw, "register.parquet")
    assert plain.coded == {}  # only when asked: a caller holds no codes
    assert {"race", "lei", "income", "excluded", "decision"} <= set(cleaned.coded)
    assert cleaned.exclusions == plain.exclusions
    assert dict(cleaned.frame.dtypes) == dict(plain.frame.dtypes)  # the coded columns stand in: dtypes, no rows
    assert cleaned.frame["race"].isna().all() and not plain.frame["race"].isna().all()
    for name, coded in cleaned.coded.items():
        rows = pd.Series(coded.rows(), dtype=plain.frame[name].dtype)
        pd.testing.assert_series_equal(rows, plain.frame[name], check_names=False, check_exact=True)
    given, factorized = compact(cleaned.frame, cleaned.coded), compact(plain.frame)
    assert given.encoded == factorized.encoded
    assert _held_columns(given) == _held_columns(factorized)
    assert pickle.dumps(given.held) == pickle.dumps(factorized.held)  # what a partition's worker is sent, too
    if form == "odd values":
        assert {"loan_amount", "application_id"}.isdisjoint(given.encoded)
        assert list(given.held["sex"].cat.categories) == ["Male"]
    _same(given.restore(), plain.frame)


def test_decoded_floats_have_missing_as_nan_with_any_code_width() -> None:
    from reasoner.lending.registers.compact import _decode

    categories = pd.Index([-0.0, 0.5, 2.0])
    for width in (np.int8, np.int16, np.int64):
        codes = np.array([2, -1, 0, 1, -1], dtype=width)
        decoded = _decode(codes, categories, np.float64).to_numpy()
        expected = np.array([2.0, np.nan, -0.0, 0.5, np.nan])
        assert decoded.tobytes() == expected.tobytes()
    assert np.isnan(_decode(np.array([-1, -1], dtype=np.int8), pd.Index([], dtype=float), np.float64)).all()


def test_pieces_are_a_twelfth_of_the_register_between_the_least_and_the_most() -> None:
    from reasoner.lending.registers.files import BATCH_ROWS, SMALL_BATCH_ROWS, piece_rows

    assert piece_rows(None) == BATCH_ROWS  # a register of unknown size: the largest pieces
    assert piece_rows(100_000) == piece_rows(1_000_000) == SMALL_BATCH_ROWS  # at 1,000,000 rows: four pieces
    assert piece_rows(6_000_000) == 500_000
    assert piece_rows(12_000_000) == piece_rows(50_000_000) == BATCH_ROWS
    assert piece_rows(3_000_001) == 250_001  # rounded up: never a thirteenth piece of one row


@pytest.mark.parametrize("categories", [1, 126, 127, 128, 32766, 32767, 32768])
def test_codes_made_in_the_code_type_are_kept_by_pandas_as_they_are(categories: int) -> None:
    """``code_type`` is the type pandas narrows a categorical's codes to: codes made in it are not copied."""
    codes = np.array([0, categories - 1, -1], dtype=code_type(categories))
    held = pd.Categorical.from_codes(codes, dtype=pd.CategoricalDtype(range(categories)), validate=False)
    assert held.codes.dtype == codes.dtype and np.shares_memory(held.codes, codes)
    assert pd.Categorical.from_codes(codes.astype(np.int64), categories=range(categories)).codes.dtype == codes.dtype


def test_a_read_piece_held_compact_pickles_as_the_cleaned_frame_compacted(tmp_path: Path) -> None:
    """The compact frame that ``read_clean`` holds (from the codes, stand-ins in the frame) pickles to the
    bytes of the one ``compact`` makes from the cleaned frame's rows: what the partitions' workers are sent."""
    raw = pq.read_table(SAMPLE).to_pandas()
    held = read_clean(SAMPLE, SAMPLE.name, compact=True).held
    assert held is not None
    assert pickle.dumps(held.held) == pickle.dumps(compact(clean_hmda(raw, SAMPLE.name).frame).held)
