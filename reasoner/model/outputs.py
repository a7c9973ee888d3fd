"""``ModelAudit`` → the output directory, written whole or not at all.

Files: ``twins.parquet``, ``flips.parquet``, ``flip_rates.parquet``, ``metrics.parquet``,
``weights.parquet`` (with ``--reweigh``), ``report.md``, ``report.html`` and ``manifest.json``
(SHA-256 of the model, the data and every output). Written to a temporary directory beside the
target and moved into place, as the lending audit's outputs are. ``flips``, ``flip_rates`` and
``metrics`` are also the tables the lending audit binds with ``--model-evidence OUT``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from reasoner import __version__
from reasoner.evidence import file_sha256
from reasoner.lending.outputs.write import check_output, staged, write_parquet
from reasoner.model.audit import ModelAudit

__all__ = ["EVIDENCE_FILES", "write_model_outputs"]

EVIDENCE_FILES = ("flips.parquet", "flip_rates.parquet", "metrics.parquet")


def write_model_outputs(result: ModelAudit, out: Path, *, force: bool = False) -> Path:
    """Write every output file of the model audit; return ``out``."""
    from reasoner.model.report import render_model_html, render_model_markdown

    out = Path(out)
    check_output(out, force)
    with staged(out) as staging:
        tables = {
            "twins": result.twins,
            "flips": result.flips,
            "flip_rates": result.flip_rates,
            "metrics": result.metrics,
        }
        if result.weights is not None:
            tables["weights"] = result.weights
        for name, frame in tables.items():
            write_parquet(frame, staging / f"{name}.parquet")
        (staging / "report.md").write_text(render_model_markdown(result), encoding="utf-8")
        (staging / "report.html").write_text(render_model_html(result), encoding="utf-8")
        names = sorted(path.name for path in staging.iterdir())
        digests = {name: file_sha256(staging / name) for name in names}
        (staging / "manifest.json").write_text(
            json.dumps(_manifest(result, digests), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
    return out



def _manifest(result: ModelAudit, outputs: dict[str, str]) -> dict[str, Any]:
    model_rates = result.flip_rates[(result.flip_rates["scope"] == "model") & (result.flip_rates["group_a"] == "*")]
    return {
        "tool": "reasoner audit-model",
        "version": __version__,
        "model": {"path": result.model.name, "kind": result.model.kind, "sha256": result.model.sha256},
        "data": {"path": str(result.data), "sha256": result.data_sha256, "synthetic_bases": result.synthetic},
        "options": result.options,
        "groups": {name: list(values) for name, values in result.groups.items()},
        "references": dict(result.references),
        "followed_columns": {name: list(values) for name, values in result.followed.items()},
        "twins": len(result.twins),
        "flip_rates": {
            row.attribute: {"flips": int(row.flips), "bases": int(row.twins), "rate": float(row.flip_rate)}
            for row in model_rates.itertuples()
        },
        "outputs": {name: {"sha256": digest} for name, digest in outputs.items()},
        "outputs_digest": hashlib.sha256(
            "".join(f"{n}:{d}\n" for n, d in sorted(outputs.items())).encode()
        ).hexdigest(),
    }
