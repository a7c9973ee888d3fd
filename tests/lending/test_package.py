"""The lending package's faces: lazy, complete, and free of private cross-imports."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import networkx
import pytest
from support import REPOSITORY

SUBPACKAGES = ("registers", "evidence", "audit", "outputs", "proxies", "synthetic")


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
                private = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
                offenders += [f"{path.name}: {node.module}.{name}" for name in private]
    assert offenders == []


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPOSITORY).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_the_modules_import_one_another_without_a_cycle() -> None:
    """Imports at module level (not those under TYPE_CHECKING, nor the few inside functions that
    keep the command line quick) form a graph without a cycle."""
    graph = networkx.DiGraph()
    modules = {_module_name(path): path for path in (REPOSITORY / "reasoner").rglob("*.py")}
    for name, path in modules.items():
        graph.add_node(name)
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("reasoner"):
                targets = [f"{node.module}.{a.name}" for a in node.names]
                targets = [t if t in modules else node.module for t in targets]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("reasoner")]
            else:
                continue
            graph.add_edges_from((name, target) for target in targets if target in modules and target != name)
    # a package's face imports its own modules only lazily; a module importing its package's face is fine
    cycles = [cycle for cycle in networkx.simple_cycles(graph) if len(cycle) > 1]
    assert cycles == []
