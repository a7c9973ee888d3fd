"""The finding files' parquet (``outputs.write.write_parquet``): their bytes depend on the values alone."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa

from reasoner.lending.outputs.write import write_parquet


def test_the_bytes_do_not_depend_on_the_chunks_a_column_was_gathered_from(tmp_path: Path) -> None:
    """Arrow-backed columns keep the chunks of the partitions they were gathered from; a dictionary past the
    writer's 1 MiB (40,000 distinct ids of 40 characters) falls back to plain encoding where a chunk ends."""
    ids = pa.array([f"{number:040d}" for number in range(40_000)])
    lists = pa.ListArray.from_arrays(pa.array(range(0, 40_001, 2), pa.int32()), ids)

    def frame(bounds: list[int]) -> pd.DataFrame:
        spans = list(zip(bounds, bounds[1:], strict=False))
        chunked = pa.chunked_array([lists.slice(start, stop - start) for start, stop in spans])
        ids_chunked = pa.chunked_array([ids.slice(start, stop - start) for start, stop in spans])
        return pd.DataFrame(
            {"comparators": pd.arrays.ArrowExtensionArray(chunked), "id": pd.arrays.ArrowExtensionArray(ids_chunked)}
        )

    written = []
    for number, bounds in enumerate(([0, 20_000], [0, 3_000, 11_000, 20_000], [0, 9_000, 9_001, 20_000])):
        write_parquet(frame(bounds), tmp_path / f"{number}.parquet")
        written.append((tmp_path / f"{number}.parquet").read_bytes())
    assert written[1] == written[0] and written[2] == written[0]
