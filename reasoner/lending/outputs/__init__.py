"""Outputs of an audit: the files written whole or not at all, the report (Markdown and HTML), one
finding's derivation in prose, signatures and verification.

The names below are imported on first use (``reasoner.lazy``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reasoner.lazy import lazy_names

if TYPE_CHECKING:
    from reasoner.lending.outputs.explain_finding import explain_finding
    from reasoner.lending.outputs.report import render_html, render_markdown
    from reasoner.lending.outputs.signing import load_private_key
    from reasoner.lending.outputs.verify import render_verification, verify
    from reasoner.lending.outputs.write import check_output, output_lock, staged, write_outputs, write_parquet

__all__ = [
    "check_output",
    "explain_finding",
    "load_private_key",
    "output_lock",
    "render_html",
    "render_markdown",
    "render_verification",
    "staged",
    "verify",
    "write_outputs",
    "write_parquet",
]

__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "explain_finding": "explain_finding",
        "render_html": "report",
        "render_markdown": "report",
        "load_private_key": "signing",
        "render_verification": "verify",
        "verify": "verify",
        "check_output": "write",
        "output_lock": "write",
        "staged": "write",
        "write_outputs": "write",
        "write_parquet": "write",
    },
)
