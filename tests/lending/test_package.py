"""The lending package's faces: lazy, complete, and free of private cross-imports."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys

import pytest
from support import REPOSITORY

SUBPACKAGES = ("registers", "evidence", "audit", "outputs", "synthetic")


@pytest.mark.parametrize("name", SUBPACKAGES)
def test_every_exported_name_resolves(name: str) -> None:
    package = importlib.import_module(f"reasoner.lending.{name}")
    for exported in package.__all__:
        assert getattr(package, exported) is not None
    with pytest.raises(AttributeError, match="has no attribute 'nothing_here'"):
        package.nothing_here  # noqa: B018


def test_importing_the_faces_imports_no_data_library() -> None:
    code = (
        "import sys, reasoner, reasoner.lending, reasoner.lending.config\n"
        + "".join(f"import reasoner.lending.{name}\n" for name in SUBPACKAGES)
        + "print(sorted(m for m in ('pandas', 'pyarrow', 'numpy', 'duckdb') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_no_module_imports_another_modules_private_name() -> None:
    offenders = []
    for path in sorted((REPOSITORY / "reasoner").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("reasoner"):
                offenders += [f"{path.name}: {node.module}.{a.name}" for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
    assert offenders == []
