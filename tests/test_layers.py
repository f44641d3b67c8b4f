"""Every import points down: the import contracts of pyproject.toml hold and no module imports
one that imports it back."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_the_import_contracts_hold() -> None:
    command = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if command is None:
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    done = subprocess.run([command], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "0 broken" in done.stdout


def test_no_module_imports_one_that_imports_it_back() -> None:
    """alseg's own modules as a graph (function-level and TYPE_CHECKING imports included), which
    must have no cycle."""
    import ast

    modules = {
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): path
        for path in (ROOT / "alseg").rglob("*.py")
    }
    edges: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("alseg"):
                target = node.module
                edges[name] |= {
                    t for t in (target, *(f"{target}.{a.name}" for a in node.names)) if t in modules
                }
            elif isinstance(node, ast.Import):
                edges[name] |= {a.name for a in node.names if a.name in modules}
    visiting, done, cycle = set(), set(), []

    def visit(node: str, trail: list[str]) -> None:
        if node in done or cycle:
            return
        if node in visiting:
            cycle.extend([*trail[trail.index(node) :], node])
            return
        visiting.add(node)
        for nxt in sorted(edges[node] - {node}):
            visit(nxt, [*trail, nxt])
        visiting.discard(node)
        done.add(node)

    for name in sorted(modules):
        visit(name, [name])
    assert not cycle, " -> ".join(cycle)
