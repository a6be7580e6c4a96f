"""The package's import graph: no cycles, and no heavy module loaded unasked."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "fednet"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(path: Path, known: set[str]) -> set[str]:
    """Return the fednet modules a file imports anywhere (functions, TYPE_CHECKING)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            # ``from fednet.server import api`` imports the module fednet.server.api
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return {name for name in found if name in known}


def import_graph() -> dict[str, set[str]]:
    """Return, for each module of fednet, the fednet modules it imports."""
    modules = _modules()
    known = set(modules)
    return {name: _imports(path, known) - {name} for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """Return one cycle as a path of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)) is not None:
            return cycle
    return None


def test_the_finder_reports_a_cycle() -> None:
    """A graph a -> b -> c -> a is reported as that cycle; a tree is not."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_graph_sees_lazy_and_submodule_imports() -> None:
    """Function-level imports and ``from package import module`` are edges."""
    graph = import_graph()
    assert "fednet.server.api" in graph["fednet.server.routes"]
    assert "fednet.client.main" in graph["fednet.commands"]


def test_fednet_has_no_import_cycles() -> None:
    """No module of fednet imports itself through others."""
    assert find_cycle(import_graph()) is None


def test_a_coordinator_and_a_client_load_no_privacy_accountant() -> None:
    """dp-accounting (with scipy, about 80 MB) loads only when a DP run counts."""
    code = (
        "import sys, fednet.server.app, fednet.client.main, fednet.strategies\n"
        "print(sorted(m for m in ('dp_accounting', 'scipy') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
