"""``reason audit-model``: metrics against hand-computed values, twins, loaders, the example models,
the command end to end, its error messages, and model evidence in the lending audit."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from hypothesis import given, settings
from hypothesis import strategies as st
from support import REPOSITORY

from reasoner.cli import main
from reasoner.errors import UsageError
from reasoner.model import (
    ModelError,
    clopper_pearson,
    flip_rates,
    flips,
    group_metrics,
    load_model,
    make_twins,
    reweighing_weights,
    synthetic_profiles,
)
from reasoner.model.audit import audit_model
from reasoner.model.twins import ENCODINGS

pytestmark = pytest.mark.slow  # end-to-end audits: outside the inner loop, pytest -m "not slow"

TRAIN = REPOSITORY / "examples" / "model" / "train.py"
PROXY = "tract_minority_population_percent"


def _train_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("example_model_train", TRAIN)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example's models and development table, trained once in a temporary directory."""
    folder = tmp_path_factory.mktemp("models")
    assert _train_module().main([str(folder)]) == 0
    return folder


# -- metrics against hand-computed values -------------------------------------------------------


def _tiny() -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Reference r: 10 rows, 8 approved; group g: 10 rows, 4 approved; outcomes chosen by hand.

    r: y=1 on 6 rows (5 approved), y=0 on 4 rows (3 approved) → TPR 5/6, FPR 3/4, rate 0.8
    g: y=1 on 5 rows (3 approved), y=0 on 5 rows (1 approved) → TPR 3/5, FPR 1/5, rate 0.4
    """
    group = ["r"] * 10 + ["g"] * 10
    y = [1] * 6 + [0] * 4 + [1] * 5 + [0] * 5
    yhat = [1] * 5 + [0] + [1] * 3 + [0] + [1] * 3 + [0] * 2 + [1] + [0] * 4
    return pd.DataFrame({"a": group}), np.array(yhat, dtype=bool), np.array(y, dtype=float)


def test_group_metrics_match_hand_computed_values() -> None:
    groups, decisions, outcomes = _tiny()
    metrics = group_metrics(groups, decisions, outcomes, {"a": "r"}, min_group=5, replicates=500, seed=1)
    value = metrics[metrics["group"] == "g"].set_index("metric")["value"]
    assert value["disparate_impact"] == pytest.approx(0.4 / 0.8)
    assert value["statistical_parity_difference"] == pytest.approx(0.4 - 0.8)
    assert value["equal_opportunity_difference"] == pytest.approx(3 / 5 - 5 / 6)
    assert value["average_odds_difference"] == pytest.approx(((1 / 5 - 3 / 4) + (3 / 5 - 5 / 6)) / 2)
    spread = metrics[metrics["group"] == "*"].set_index("metric")["value"]  # Fairlearn's summaries
    assert spread["demographic_parity_difference"] == pytest.approx(0.8 - 0.4)
    assert spread["demographic_parity_ratio"] == pytest.approx(0.4 / 0.8)
    assert spread["equalized_odds_difference"] == pytest.approx(max(5 / 6 - 3 / 5, 3 / 4 - 1 / 5))
    for row in metrics.itertuples():
        assert row.ci_low <= row.value <= row.ci_high
    again = group_metrics(groups, decisions, outcomes, {"a": "r"}, min_group=5, replicates=500, seed=1)
    pd.testing.assert_frame_equal(metrics, again)  # the bootstrap has a fixed seed


def test_group_metrics_without_outcomes_and_intersections() -> None:
    groups, decisions, _ = _tiny()
    groups["b"] = ["x", "y"] * 10
    metrics = group_metrics(groups, decisions, None, {"a": "r", "b": "x"}, min_group=3, replicates=200)
    assert set(metrics["attribute"]) == {"a", "b", "a × b"}
    undefined = metrics[metrics["metric"].isin(["equal_opportunity_difference", "equalized_odds_difference"])]
    assert undefined["value"].isna().all()  # no outcomes: no error rates
    joint = metrics[(metrics["attribute"] == "a × b") & (metrics["group"] == "g × y")].set_index("metric")["value"]
    # g × y: positions 11, 13, 15, 17, 19 → approved at 11 and 15: 2 of 5; r × x: positions 0, 2, ..., 8 all approved
    assert joint["disparate_impact"] == pytest.approx((2 / 5) / (5 / 5))


def test_small_groups_get_no_metrics() -> None:
    groups, decisions, outcomes = _tiny()
    assert group_metrics(groups, decisions, outcomes, {"a": "r"}, min_group=11).empty


def test_clopper_pearson_is_the_exact_interval() -> None:
    low, high = clopper_pearson(3, 10)
    assert (round(low, 4), round(high, 4)) == (0.0667, 0.6525)  # the textbook values
    assert clopper_pearson(0, 20)[0] == 0.0 and clopper_pearson(0, 20)[1] == pytest.approx(1 - 0.025 ** (1 / 20))


def test_flips_and_flip_rates_count_pairs_of_twins() -> None:
    base = np.array([0, 0, 0, 1, 1, 1])
    attribute = np.array(["race"] * 6, dtype=object)
    group = np.array(["A", "B", "C"] * 2, dtype=object)
    decisions = np.array([True, False, True, True, True, True])
    scores = np.array([0.7, 0.4, 0.6, 0.9, 0.9, 0.9])
    found = flips(base, attribute, group, decisions, scores)
    assert found[["base", "denied_group", "approved_group"]].values.tolist() == [[0, "B", "A"], [0, "B", "C"]]
    assert found["score_shift"].tolist() == pytest.approx([0.3, 0.2])
    rates = flip_rates(base, attribute, group, decisions, scores).set_index(["group_a", "group_b"])
    assert rates.loc[("*", "*"), "flips"] == 1 and rates.loc[("*", "*"), "twins"] == 2
    assert rates.loc[("A", "C"), "flips"] == 0 and rates.loc[("A", "B"), "flip_rate"] == 0.5
    assert rates.loc[("A", "B"), "ci_low"] == pytest.approx(clopper_pearson(1, 2)[0])


# -- twins ----------------------------------------------------------------------------------------

RACES = ["White", "Black or African American", "Asian"]


@settings(max_examples=40, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(RACES + ["Race Not Available"]),
            st.floats(0, 1e6),
            st.sampled_from(["1", "2"]),
            st.text(max_size=5),
        ),
        min_size=1,
        max_size=8,
    ),
    groups=st.lists(st.sampled_from(RACES), min_size=2, max_size=3, unique=True),
)
def test_twins_hold_every_other_column_fixed(rows: list[tuple[str, float, str, str]], groups: list[str]) -> None:
    base = pd.DataFrame(rows, columns=["derived_race", "income", "applicant_sex", "name"])
    base["applicant_race-1"] = "5"
    base["applicant_race-2"] = "3"
    twins = make_twins(base, {"derived_race": groups})
    assert len(twins.frame) == len(base) * len(groups)
    followed = set(ENCODINGS["derived_race"][0])
    for position, (row, group) in enumerate(zip(twins.base, twins.group, strict=True)):
        twin, original = twins.frame.iloc[position], base.iloc[row]
        assert twin["derived_race"] == group
        for column in base.columns:
            if column != "derived_race" and column not in followed:
                assert twin[column] == original[column] or (
                    twin[column] != twin[column] and original[column] != original[column]
                )
        assert twin["applicant_race-2"] == ""  # the encoding follows the twin: one race, the others emptied
    assert twins.followed["derived_race"] == ("applicant_race-1", "applicant_race-2")


def test_proxy_twins_move_the_proxy_to_the_same_percentile_of_the_twins_group() -> None:
    base = pd.DataFrame(
        {"derived_race": ["White"] * 4 + ["Black or African American"] * 4, "tract": [10.0, 20, 30, 40, 60, 70, 80, 90]}
    )
    twins = make_twins(base, {"derived_race": ["White", "Black or African American"]}, proxies=["tract"])
    proxied = twins.frame[twins.attribute == "derived_race+proxies"].reset_index(drop=True)
    groups = twins.group[twins.attribute == "derived_race+proxies"]
    black_twins = proxied[groups == "Black or African American"]
    assert black_twins["tract"].tolist() == [60, 70, 80, 90, 60, 70, 80, 90]  # White rows mapped, Black rows kept
    plain = twins.frame[twins.attribute == "derived_race"]
    assert plain["tract"].tolist() == base["tract"].tolist() * 2  # without proxies: held fixed


def test_twins_need_two_groups_and_a_column() -> None:
    base = pd.DataFrame({"derived_race": ["White"]})
    with pytest.raises(UsageError, match="at least two groups"):
        make_twins(base, {"derived_race": ["White"]})
    with pytest.raises(UsageError, match="no column 'derived_sex'"):
        make_twins(base, {"derived_sex": ["Male", "Female"]})


# -- reweighing and synthetic profiles ------------------------------------------------------------


def test_reweighing_weights_are_kamiran_calders() -> None:
    group = pd.Series(["a", "a", "a", "a", "b", "b", "b", None])
    outcome = pd.Series([1, 1, 1, 0, 1, 0, 0, 1])
    weights = reweighing_weights(group, outcome)
    # n = 7 usable: P(a) = 4/7, P(b) = 3/7, P(y=1) = 4/7; weight P(g) P(y) / P(g, y)
    expected = [16 / 21] * 3 + [12 / 7] + [12 / 7] + [9 / 14] * 2 + [1.0]
    assert weights.tolist() == pytest.approx(expected)
    for name in ("a", "b"):  # in the weighted data the outcome no longer depends on the group
        mask = (group == name).to_numpy()
        assert (weights[mask] * outcome[mask]).sum() / weights[mask].sum() == pytest.approx(4 / 7)


def test_synthetic_profiles_are_reproducible_and_keep_marginals_and_correlation() -> None:
    rng = np.random.default_rng(0)
    income = rng.lognormal(11, 0.5, 2000)
    reference = pd.DataFrame(
        {"income": income, "loan": income * 3 + rng.normal(0, 5000, 2000), "state": rng.choice(["TX", "IL"], 2000)}
    )
    first = synthetic_profiles(reference, 3000, seed=7, identities=True)
    second = synthetic_profiles(reference, 3000, seed=7, identities=True)
    pd.testing.assert_frame_equal(first, second)
    assert first["income"].between(income.min(), income.max()).all()
    assert abs(first["income"].median() / np.median(income) - 1) < 0.05
    assert first[["income", "loan"]].corr(method="spearman").iloc[0, 1] > 0.9
    assert first["applicant_first_name"].str.len().gt(0).all() and first["application_id"].is_unique
    assert not synthetic_profiles(reference, 10, seed=8).equals(synthetic_profiles(reference, 10, seed=7))


# -- loaders ----------------------------------------------------------------------------------------


def test_skops_joblib_onnx_and_callable_models_agree(
    models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = pd.read_parquet(models / "applications.parquet").head(300)
    skops_model = load_model(str(models / "race.skops"))
    expected = skops_model.predict(data)
    assert skops_model.kind == "skops" and len(skops_model.sha256) == 64

    joblib.dump(sio.load(models / "race.skops"), tmp_path / "race.joblib")
    with pytest.raises(UsageError, match="runs arbitrary code"):
        load_model(str(tmp_path / "race.joblib"))
    trusted = load_model(str(tmp_path / "race.joblib"), trust_pickle=True).predict(data)
    assert (trusted.decisions == expected.decisions).all()

    onnx = load_model(str(models / "race.onnx")).predict(data)
    assert (onnx.decisions == expected.decisions).mean() > 0.99  # float32 arithmetic
    assert np.allclose(onnx.scores, expected.scores, atol=1e-4)

    (tmp_path / "bank_model.py").write_text(
        "def decide(frame):\n    return (frame['income'] > 80000).astype(int)\n\n"
        "def score(frame):\n    return (frame['income'] / frame['income'].max()).to_numpy()\n\n"
        "def short(frame):\n    return [1, 0]\n\n"
        "def broken(frame):\n    raise KeyError('credit_score')\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    decided = load_model("bank_model:decide").predict(data)
    assert (decided.decisions == (data["income"] > 80000).to_numpy()).all() and np.isnan(decided.scores).all()
    scored = load_model("bank_model:score", threshold=0.3).predict(data)
    assert (scored.decisions == (scored.scores >= 0.3)).all()
    with pytest.raises(ModelError, match=r"one score or decision per row \(300 values\)"):
        load_model("bank_model:short").predict(data)
    with pytest.raises(ModelError, match="the model failed on the data: KeyError: 'credit_score'"):
        load_model("bank_model:broken").predict(data)
    with pytest.raises(UsageError, match="has no function 'missing'"):
        load_model("bank_model:missing")
    sys.modules.pop("bank_model", None)


class Opaque:
    """A type skops does not know: loading it would need trust."""

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.ones(len(frame))


def test_skops_refuses_untrusted_types_and_garbage(tmp_path: Path) -> None:
    sio.dump(Opaque(), tmp_path / "opaque.skops")
    with pytest.raises(ModelError, match="not known to be safe: .*Opaque"):
        load_model(str(tmp_path / "opaque.skops"))
    (tmp_path / "garbage.skops").write_bytes(b"not a zip file")
    with pytest.raises(ModelError, match="not a readable skops file"):
        load_model(str(tmp_path / "garbage.skops"))
    with pytest.raises(UsageError, match="no such model file"):
        load_model(str(tmp_path / "absent.skops"))


# -- the example: fair and proxy models told apart --------------------------------------------------


def test_the_audit_tells_the_fair_and_the_proxy_model_apart(models: Path) -> None:
    data = models / "applications.parquet"
    results = {
        name: audit_model(str(models / f"{name}.skops"), data, ["derived_race"], proxies=[PROXY], replicates=200)
        for name in ("fair", "proxy", "race")
    }

    def rate(name: str, attribute: str) -> pd.Series:
        rates = results[name].flip_rates
        return rates[(rates["scope"] == "model") & (rates["attribute"] == attribute) & (rates["group_a"] == "*")].iloc[
            0
        ]

    # Neither the fair nor the proxy model reads race: their plain twins never flip.
    assert rate("fair", "derived_race")["flips"] == 0 and rate("proxy", "derived_race")["flips"] == 0
    # With the proxy following the twin, only the proxy model flips, and materially (exact CI above 1%).
    assert rate("fair", "derived_race+proxies")["flips"] == 0
    assert rate("proxy", "derived_race+proxies")["ci_low"] > 0.01
    # The model that reads race flips on the attribute itself.
    assert rate("race", "derived_race")["ci_low"] > 0.01

    def impact(name: str) -> float:
        metrics = results[name].metrics
        row = metrics[
            (metrics["scope"] == "model")
            & (metrics["metric"] == "disparate_impact")
            & (metrics["group"] == "Black or African American")
        ]
        return float(row["value"].iloc[0])

    assert impact("proxy") < impact("fair")


# -- the command -------------------------------------------------------------------------------------


def test_audit_model_command_end_to_end(models: Path, tmp_path: Path, reason) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    done = reason(
        [
            "audit-model",
            models / "race.skops",
            "--data",
            models / "applications.parquet",
            "--protected",
            "derived_race,derived_sex",
            "--outcome",
            "approved",
            "--reweigh",
            "--bootstrap",
            "200",
            "-o",
            out,
        ]  # fmt: skip
    )
    assert done.returncode == 0, done.stderr
    assert "derived_race:" in done.stdout and "base applicants flip" in done.stdout
    names = {path.name for path in out.iterdir()}
    assert names == {
        "twins.parquet",
        "flips.parquet",
        "flip_rates.parquet",
        "metrics.parquet",
        "weights.parquet",
        "report.md",
        "report.html",
        "manifest.json",
    }
    manifest = json.loads((out / "manifest.json").read_text())
    import hashlib

    assert manifest["model"]["sha256"] == hashlib.sha256((models / "race.skops").read_bytes()).hexdigest()
    assert manifest["data"]["sha256"] == hashlib.sha256((models / "applications.parquet").read_bytes()).hexdigest()
    for name, entry in manifest["outputs"].items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == entry["sha256"]
    report = (out / "report.md").read_text()
    assert "the model denies the" in report and "disparate_impact" in report
    assert "<svg" in (out / "report.html").read_text()
    weights = pd.read_parquet(out / "weights.parquet")
    assert len(weights) == len(pd.read_parquet(models / "applications.parquet")) and (weights["weight"] > 0).all()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["absent.skops"], "absent.skops: no such model file"),
        (["garbage.skops"], "garbage.skops: not a readable skops file"),
        (["model.joblib"], "a pickle runs arbitrary code when loaded; pass --trust-pickle"),
        (["race.skops", "--protected", "race"], "--protected: the data"),
        (["broken_model:decide"], "broken_model:decide: the model failed on the data: ValueError: no credit score"),
        (["broken_model:short"], "broken_model:short: expected one score or decision per row"),
        (
            ["race.skops", "--outcome", "derived_sex"],
            "column 'derived_sex': expected 1/0, true/false or approved/denied",
        ),
        (["race.skops", "--reweigh"], "--reweigh needs --outcome"),
    ],
)
def test_bad_inputs_give_a_message_and_exit_2(
    arguments: list[str],
    message: str,
    models: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "garbage.skops").write_bytes(b"junk")
    (tmp_path / "model.joblib").write_bytes(b"junk")
    (tmp_path / "broken_model.py").write_text(
        "def decide(frame):\n    raise ValueError('no credit score')\n\ndef short(frame):\n    return [[1, 2, 3]]\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    model = (
        arguments[0]
        if arguments[0] in ("absent.skops", "garbage.skops", "model.joblib") or ":" in arguments[0]
        else str(models / arguments[0])
    )
    options = arguments[1:]
    if "--protected" not in options:
        options = [*options, "--protected", "derived_race"]
    code = main(
        ["audit-model", model, "--data", str(models / "applications.parquet"), "-o", str(tmp_path / "out"), *options]
    )
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()  # nothing half-written
    sys.modules.pop("broken_model", None)


# -- model evidence in the lending audit -------------------------------------------------------------


def test_model_evidence_must_be_a_model_audit_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sample = REPOSITORY / "examples" / "hmda" / "sample.parquet"
    (tmp_path / "empty").mkdir()
    for folder, message in (("absent", "not a directory"), ("empty", "not a model audit output: manifest.json")):
        code = main(["audit", str(sample), "--model-evidence", str(tmp_path / folder), "-o", str(tmp_path / "out")])
        err = capsys.readouterr().err
        assert code == 2 and message in err and "Traceback" not in err


def test_model_evidence_is_weighed_in_the_lending_audit(models: Path, tmp_path: Path) -> None:
    from reasoner.lending.audit.run import audit, builtin_rules
    from reasoner.lending.outputs.report import render_html, render_markdown
    from reasoner.lending.outputs.write import explanation_records
    from reasoner.model.outputs import write_model_outputs

    evidence = write_model_outputs(
        audit_model(str(models / "race.skops"), models / "applications.parquet", ["derived_race"], replicates=200),
        tmp_path / "model",
    )
    sample = REPOSITORY / "examples" / "hmda" / "sample.parquet"
    with_model = audit([builtin_rules()], sample, model_evidence=evidence)
    flagged = with_model.findings.lenders.set_index("lei")["flagged"]
    assert flagged.sum() > 3  # the sample alone flags 3 lenders (tests/lending/test_audit.py)
    records = [record for record in explanation_records(with_model) if record["finding"] == "lender"]
    cited = json.dumps(records)
    assert "CounterfactualFlip(" in cited and "model_flips row" in cited
    assert "## Model evidence" in render_markdown(with_model) and 'id="model"' in render_html(with_model)
    from reasoner.lending.outputs.explain_finding import explain_finding
    from reasoner.lending.outputs.write import write_outputs

    out = write_outputs(with_model, tmp_path / "audit", timings=False)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["inputs"][-1]["kind"] == "model evidence"
    lender = next(record["lei"] for record in records if "CounterfactualFlip(" in json.dumps(record))
    text = explain_finding(out, lender)
    assert "the model denies the" in text and "twin of applicant" in text and "[model_flips row" in text


def test_synthetic_bases_are_reproducible_and_belong_to_no_lender(models: Path) -> None:
    data = models / "applications.parquet"
    runs = [
        audit_model(
            str(models / "race.skops"), data, ["derived_race"], synthetic=150, seed=4, identities=True, replicates=100
        )
        for _ in range(2)
    ]
    pd.testing.assert_frame_equal(runs[0].twins, runs[1].twins)
    twins = runs[0].twins
    assert twins["application_id"].nunique() == 150 and twins["application_id"].str.startswith("SYN").all()
    assert (twins["lei"] == "").all() and runs[0].synthetic
    assert (runs[0].flip_rates["scope"] == "model").all()  # no lender: nothing for the lending audit


def test_model_evidence_tables_keep_flips_against_the_reference_and_attributed_rows(tmp_path: Path) -> None:
    from reasoner.model.evidence import MODEL_TABLES, empty_model_evidence, read_model_evidence

    (tmp_path / "manifest.json").write_text(
        json.dumps({"references": {"derived_race": "White"}, "model": {"path": "m.skops", "sha256": "ab"}})
    )
    flips = pd.DataFrame(
        {
            "application_id": ["1", "2", "3", "4"],
            "lei": ["L1", "L1", "L2", ""],
            "attribute": ["derived_race", "derived_race", "derived_race+proxies", "derived_race"],
            "denied_group": ["Black or African American", "Asian", "White", "Asian"],
            "approved_group": ["White", "Black or African American", "Asian", "White"],
            "denied_score": [0.4, 0.45, 0.4, 0.4],
            "approved_score": [0.6, 0.55, 0.6, 0.6],
            "score_shift": [0.2, 0.1, 0.2, 0.2],
        }
    )
    flips.to_parquet(tmp_path / "flips.parquet")
    rates = pd.DataFrame(
        {
            "scope": ["model", "lender", "lender"],
            "lei": ["", "L1", "L1"],
            "attribute": ["derived_race"] * 3,
            "group_a": ["*", "*", "Asian"],
            "group_b": ["*", "*", "White"],
            "twins": [10, 5, 5],
            "flips": [3, 2, 1],
            "flip_rate": [0.3, 0.4, 0.2],
            "ci_low": [0.07, 0.05, 0.01],
            "ci_high": [0.65, 0.85, 0.72],
        }  # fmt: skip
    )
    rates.to_parquet(tmp_path / "flip_rates.parquet")
    metrics = pd.DataFrame(
        {
            "scope": ["lender"],
            "lei": ["L1"],
            "attribute": ["derived_race"],
            "group": ["Asian"],
            "reference": ["White"],
            "metric": ["disparate_impact"],
            "value": [0.5],
            "ci_low": [0.3],
            "ci_high": [0.7],
            "rows": [30],
            "reference_rows": [40],
        }  # fmt: skip
    )
    metrics.to_parquet(tmp_path / "metrics.parquet")
    tables, source = read_model_evidence(tmp_path)
    # Asian/Black is no comparison with the reference; the row without a lender is not attributable.
    assert tables["model_flips"][["application_id", "via"]].values.tolist() == [["1", "attribute"], ["3", "proxies"]]
    assert tables["model_flips"]["attribute"].tolist() == ["derived_race", "derived_race"]
    assert tables["model_flip_rates"][["lei", "flips"]].values.tolist() == [["L1", 2]]
    assert len(tables["model_metrics"]) == 1 and source["model_sha256"] == "ab"
    for name, frame in empty_model_evidence().items():
        assert tuple(frame.columns) == MODEL_TABLES[name] == tuple(tables[name].columns) and frame.empty


def test_one_four_fifths_rule_tests_the_ratio_or_its_whole_interval() -> None:
    from reasoner.model.metrics import four_fifths_breaches

    metrics = pd.DataFrame(
        {
            "metric": ["disparate_impact", "disparate_impact", "disparate_impact", "demographic_parity_difference"],
            "value": [0.7, 0.75, 0.9, -0.3],
            "ci_high": [0.78, 0.85, 0.95, -0.1],
        }
    )
    assert four_fifths_breaches(metrics)["value"].tolist() == [0.7, 0.75]
    assert four_fifths_breaches(metrics, whole_interval=True)["value"].tolist() == [0.7]
