"""The package's shape: layers import downwards only, and modules stay small."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parent.parent / "llm_engineering"


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def _imports() -> dict[str, set[str]]:
    """Each module's imports of the package's modules, wherever they are written: at the top,
    under TYPE_CHECKING or inside a function (``from a import b`` imports ``a``, and ``a.b``
    when that is a module)."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = (
                    here.split(".")[: len(here.split(".")) - node.level + 1] if node.level else []
                )
                target = ".".join([*base, *([node.module] if node.module else [])])
                named = [target, *(f"{target}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Import):
                named = [alias.name for alias in node.names]
            else:
                continue
            graph[name] |= {other for other in named if other in modules and other != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        order[node] = low[node] = len(order)
        stack.append(node)
        for other in graph[node]:
            if other not in order:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], order[other])
        if low[node] == order[node]:
            component = []
            while (top := stack.pop()) != node:
                component.append(top)
            if component:
                found.append(sorted([node, *component]))

    for node in graph:
        if node not in order:
            visit(node)
    return found


def test_no_module_imports_one_that_imports_it_back_by_any_route() -> None:
    cycles = _cycles(_imports())
    assert not cycles, "import cycles:\n" + "\n".join(", ".join(cycle) for cycle in cycles)


def test_only_the_command_line_imports_the_server() -> None:
    above = ("llm_engineering.server", "llm_engineering.cli", "llm_engineering.__main__")
    upwards = [
        f"{name} -> {other}"
        for name, others in sorted(_imports().items())
        if not name.startswith(above)
        for other in sorted(others)
        if other.startswith("llm_engineering.server")
    ]
    assert not upwards, "imports of server/ from below it:\n" + "\n".join(upwards)


def test_no_module_is_over_420_lines() -> None:
    long = {
        name: lines
        for name, path in _modules().items()
        if (lines := len(path.read_text().splitlines())) > 420
    }
    assert not long, f"modules over 420 lines (split them): {long}"
