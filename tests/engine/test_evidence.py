"""Evidence that contradicts itself is refused with both places that say it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from reasoner.errors import EvidenceError
from reasoner.evidence import MemoryTable, load_evidence
from reasoner.pipeline import check


def test_an_atom_both_true_and_false_names_where_each_is_said(tmp_path: Path) -> None:
    rules = tmp_path / "rules.mln"
    rules.write_text("P(t)\nQ(t)\nbind P(x) from people\n1 P(x) => Q(x)\n", encoding="utf-8")
    db = tmp_path / "facts.db"
    db.write_text("P(Bob)\n!P(Anna)\n", encoding="utf-8")
    people = MemoryTable.of(pd.DataFrame({"x": pd.Series(["Carl", "Anna"], dtype="str")}), "people.csv")
    with pytest.raises(EvidenceError) as raised:
        load_evidence(check([rules]), [db], {"people": people})
    assert str(raised.value) == (
        f"evidence says both P(Anna) (people.csv row 2) and !P(Anna) ({db}:2); "
        "an atom is either true or false: remove one of them"
    )


def test_a_proposition_both_true_and_false_names_both_lines(tmp_path: Path) -> None:
    rules = tmp_path / "rules.mln"
    rules.write_text("Rain()\nWet()\n1 Rain() => Wet()\n", encoding="utf-8")
    db = tmp_path / "facts.db"
    db.write_text("Rain()\n!Rain()\n", encoding="utf-8")
    with pytest.raises(EvidenceError, match=rf"Rain\(\) \({db}:1\) and !Rain\(\) \({db}:2\)"):
        load_evidence(check([rules]), [db])
