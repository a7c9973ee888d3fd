"""A model file or callable → ``Model``: one ``predict(frame)`` that returns scores and decisions.

Kinds, told apart by the name given:

==================  ============================================================================
``*.skops``         a scikit-learn estimator or pipeline saved with ``skops.io.dump``. Loading
                    never runs code: only types skops knows to be safe are allowed; a file that
                    needs other types is refused and its untrusted types named.
``*.joblib``,       a pickle (joblib or ``pickle``). **Unpickling runs whatever code the file
``*.pkl``,          contains**: refused unless ``trust_pickle`` (``--trust-pickle``) says the file
``*.pickle``        comes from a trusted source. Prefer skops or ONNX.
``*.onnx``          an ONNX graph (scikit-learn through skl2onnx, TensorFlow/Keras through
                    tf2onnx, PyTorch, ...) run with onnxruntime (the ``model`` extra).
``module:function`` a Python callable (imported, so the module is trusted code) that takes a
                    DataFrame and returns one score or decision per row.
==================  ============================================================================

Outputs are read the same way for every kind: a probability of the favourable class is a
*score* and the decision is ``score >= threshold``; a label output is a decision (favourable
when it equals the favourable label). Estimators with ``predict_proba`` give both.
"""

from __future__ import annotations

import hashlib
import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reasoner.errors import ReasonerError, UsageError

__all__ = ["Model", "ModelError", "Predictions", "load_model"]

PICKLE_SUFFIXES = (".joblib", ".pkl", ".pickle")


class ModelError(ReasonerError):
    """The model cannot be loaded, or fails or answers wrongly on the data."""


@dataclass(frozen=True, slots=True)
class Predictions:
    scores: np.ndarray  # float64 probability of the favourable outcome; NaN when the model gives none
    decisions: np.ndarray  # bool: favourable (approved)


@dataclass(frozen=True, slots=True)
class Model:
    name: str  # the path or module:function as given
    kind: str  # skops, pickle, onnx, callable
    sha256: str  # of the file ('' for a callable: its module file's digest when it has one)
    predictor: Callable[[pd.DataFrame], Any]  # frame → raw output
    classes: tuple[Any, ...]  # class labels of a classifier, in output order ('' when unknown)
    favourable: Any  # the label or class meaning approval
    threshold: float

    def predict(self, frame: pd.DataFrame) -> Predictions:
        """Scores and decisions for every row of ``frame``, or a ``ModelError`` saying what is wrong."""
        try:
            raw = self.predictor(frame)
        except ReasonerError:
            raise
        except Exception as error:  # the model's own failure on the data: report it, no traceback
            raise ModelError(
                f"{self.name}: the model failed on the data: {type(error).__name__}: {_first_line(error)}"
            ) from None
        return _interpret(self, raw, len(frame))


def load_model(spec: str, *, trust_pickle: bool = False, favourable: Any = 1, threshold: float = 0.5) -> Model:
    """Load ``spec`` (a file or ``module:function``) as a ``Model``."""
    path = Path(spec)
    suffix = path.suffix.lower()
    if not path.exists() and ":" in spec and suffix not in (".skops", ".onnx", *PICKLE_SUFFIXES):
        return _callable(spec, favourable, threshold)
    if not path.is_file():
        raise UsageError(f"{spec}: no such model file (expected a .skops, .onnx, .joblib/.pkl file or module:function)")
    digest = _sha256(path)
    if suffix == ".skops":
        return _estimator(spec, "skops", digest, _load_skops(path), favourable, threshold)
    if suffix in PICKLE_SUFFIXES:
        if not trust_pickle:
            raise UsageError(
                f"{spec}: a pickle runs arbitrary code when loaded; pass --trust-pickle only if the file comes "
                "from a source you trust, or save the model with skops (skops.io.dump) or as ONNX"
            )
        return _estimator(spec, "pickle", digest, _load_pickle(path), favourable, threshold)
    if suffix == ".onnx":
        return _onnx(spec, digest, favourable, threshold)
    raise UsageError(f"{spec}: unknown kind of model (expected .skops, .onnx, .joblib, .pkl or module:function)")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else "(no message)"


def _load_skops(path: Path) -> Any:
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as error:
        raise ModelError(f"{path}: not a readable skops file: {_first_line(error)}") from None
    if untrusted:
        raise ModelError(
            f"{path}: the skops file needs types that are not known to be safe: {', '.join(untrusted)}; "
            "inspect them, then save the model with only scikit-learn types or load it as ONNX"
        )
    try:
        return sio.load(path)
    except Exception as error:
        raise ModelError(f"{path}: cannot load the skops file: {_first_line(error)}") from None


def _load_pickle(path: Path) -> Any:
    import joblib

    try:
        return joblib.load(path)
    except Exception as error:
        raise ModelError(f"{path}: cannot unpickle: {type(error).__name__}: {_first_line(error)}") from None


def _estimator(name: str, kind: str, digest: str, estimator: Any, favourable: Any, threshold: float) -> Model:
    if not hasattr(estimator, "predict"):
        raise ModelError(f"{name}: the file holds a {type(estimator).__name__}, not an estimator with predict()")
    classes = tuple(getattr(estimator, "classes_", ()))
    if hasattr(estimator, "predict_proba") and classes:
        if _label(favourable, classes) is None:
            raise ModelError(
                f"{name}: the favourable label {favourable!r} is not one of the model's classes {list(classes)}"
            )

        def predictor(frame: pd.DataFrame) -> Any:
            return ("probabilities", estimator.predict_proba(frame))
    else:

        def predictor(frame: pd.DataFrame) -> Any:
            return estimator.predict(frame)

    return Model(name, kind, digest, predictor, classes, favourable, threshold)


def _onnx(name: str, digest: str, favourable: Any, threshold: float) -> Model:
    try:
        import onnxruntime as ort
    except ImportError:
        raise UsageError(f"{name}: ONNX models need onnxruntime: pip install 'reasoner[model]'") from None
    try:
        session = ort.InferenceSession(name, providers=["CPUExecutionProvider"])
    except Exception as error:
        raise ModelError(f"{name}: not a loadable ONNX model: {_first_line(error)}") from None
    inputs = session.get_inputs()
    outputs = [output.name for output in session.get_outputs()]

    def feed(frame: pd.DataFrame) -> dict[str, np.ndarray]:
        if len(inputs) == 1 and inputs[0].name not in frame.columns:  # one tensor of every numeric column
            return {inputs[0].name: frame.to_numpy(dtype=np.float32)}
        missing = [item.name for item in inputs if item.name not in frame.columns]
        if missing:
            raise ModelError(
                f"{name}: the data has no column {', '.join(map(repr, missing))} that the ONNX model takes as input"
            )
        found = {}
        for item in inputs:
            column = frame[item.name]
            if "string" in item.type:
                found[item.name] = column.astype(str).to_numpy(dtype=object).reshape(-1, 1)
            elif "int64" in item.type:
                found[item.name] = column.to_numpy(dtype=np.int64).reshape(-1, 1)
            else:
                found[item.name] = column.to_numpy(dtype=np.float32).reshape(-1, 1)
        return found

    def predictor(frame: pd.DataFrame) -> Any:
        results = dict(zip(outputs, session.run(None, feed(frame)), strict=True))
        probabilities = next((value for key, value in results.items() if "prob" in key.lower()), None)
        if probabilities is not None:
            if isinstance(probabilities, list):  # skl2onnx's ZipMap: one {class: probability} per row
                classes = sorted(probabilities[0]) if probabilities else []
                probabilities = np.array([[row[c] for c in classes] for row in probabilities])
                return ("probabilities", probabilities, tuple(classes))
            return ("probabilities", np.asarray(probabilities), None)
        return np.asarray(results[outputs[0]])

    return Model(name, "onnx", digest, predictor, (), favourable, threshold)


def _callable(spec: str, favourable: Any, threshold: float) -> Model:
    module_name, _, function_name = spec.partition(":")
    if not module_name or not function_name:
        raise UsageError(f"{spec}: expected a model file or module:function")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise UsageError(f"{spec}: cannot import module '{module_name}': {_first_line(error)}") from None
    except Exception as error:
        raise ModelError(
            f"{spec}: importing '{module_name}' failed: {type(error).__name__}: {_first_line(error)}"
        ) from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise UsageError(f"{spec}: module '{module_name}' has no function '{function_name}'")
    source = getattr(sys.modules[module_name], "__file__", None)
    digest = _sha256(Path(source)) if source and Path(source).is_file() else ""
    return Model(spec, "callable", digest, function, (), favourable, threshold)


def _label(favourable: Any, classes: tuple[Any, ...]) -> int | None:
    """Position of the favourable class among ``classes`` (compared as text too: '1' and 1 match)."""
    for position, label in enumerate(classes):
        if label == favourable or str(label) == str(favourable):
            return position
    return None


def _interpret(model: Model, raw: Any, rows: int) -> Predictions:
    if isinstance(raw, tuple) and raw and raw[0] == "probabilities":
        probabilities = np.asarray(raw[1], dtype=np.float64)
        classes = raw[2] if len(raw) > 2 and raw[2] is not None else model.classes
        if probabilities.ndim != 2 or probabilities.shape[0] != rows:
            raise ModelError(
                f"{model.name}: expected class probabilities of shape ({rows}, classes), got {probabilities.shape}"
            )
        position = _label(model.favourable, tuple(classes)) if classes else (1 if probabilities.shape[1] == 2 else None)
        if position is None or position >= probabilities.shape[1]:
            raise ModelError(
                f"{model.name}: cannot tell which probability column is the favourable label {model.favourable!r}"
            )
        scores = probabilities[:, position]
        return Predictions(scores, scores >= model.threshold)
    if isinstance(raw, (pd.DataFrame, pd.Series)):
        raw = raw.to_numpy()
    values = np.asarray(raw)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1 or values.shape[0] != rows:
        raise ModelError(
            f"{model.name}: expected one score or decision per row ({rows} values), "
            f"got an output of shape {values.shape}"
        )
    if values.dtype == bool:
        return Predictions(np.full(rows, np.nan), values.copy())
    if values.dtype.kind == "f":
        if np.isnan(values).any():
            raise ModelError(
                f"{model.name}: the model returned NaN for row {int(np.flatnonzero(np.isnan(values))[0]) + 1}"
            )
        if ((values < 0) | (values > 1)).any():
            raise ModelError(
                f"{model.name}: scores must be probabilities between 0 and 1; "
                f"got {float(values.min()):g} … {float(values.max()):g}"
            )
        if not np.isin(values, (0.0, 1.0)).all():
            return Predictions(values.astype(np.float64), values >= model.threshold)
    decisions = np.array(
        [value == model.favourable or str(value) == str(model.favourable) for value in values.tolist()], dtype=bool
    )
    return Predictions(np.full(rows, np.nan), decisions)
