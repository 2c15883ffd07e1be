"""The package's layout: no import cycle anywhere, and no module too long to read in one pass.

The imports are read from the source (every ``import`` statement, including those inside
functions), not from ``sys.modules``, so a cycle hidden behind a function-level import is found
too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import geo_crime

PACKAGE = Path(geo_crime.__file__).parent

#: A module longer than this says why in its docstring (a sentence starting "Long because").
MAX_LINES = 700


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package modules ``name`` imports (a package counts as its ``__init__``)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                root = package.split(".")
                root = root[: len(root) - node.level + 1]
                base = ".".join([*root, base] if base else root)
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for target in targets:
            # the longest known module the target names (``a.b.c`` -> ``a.b`` when c is a name)
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports, from the source of every module."""
    modules = _modules()
    known = set(modules)
    graph = {name: _imports(name, path, known) for name, path in modules.items()}
    # importing ``a.b`` runs ``a/__init__`` first: a submodule depends on its parent packages
    for name in list(graph):
        parent = name.rpartition(".")[0]
        while parent:
            if parent in graph and parent != name:
                graph[name].add(parent)
            parent = parent.rpartition(".")[0]
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            # a package importing its own submodules is how packages re-export: not a cycle
            if target.startswith(node + "."):
                continue
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_cycle_finder_finds_a_cycle_and_accepts_a_tree():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"p": {"p.x"}, "p.x": {"p"}}) is None  # a package re-exporting


def test_the_graph_sees_function_level_and_relative_imports(tmp_path):
    graph = import_graph()
    # the CLI imports its stages inside the commands
    assert {"geo_crime.pipeline", "geo_crime.cube"} <= graph["geo_crime.cli"]
    assert "geo_crime.errors" in graph["geo_crime.units"] or any(
        "geo_crime.errors" in graph[m] for m in graph if m.startswith("geo_crime.units.")
    )


def test_no_import_cycle_in_the_package():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_units_do_not_depend_on_rates_or_later_stages():
    graph = import_graph()
    units = [m for m in graph if m == "geo_crime.units" or m.startswith("geo_crime.units.")]
    later = ("geo_crime.rates", "geo_crime.cube", "geo_crime.forecast", "geo_crime.pipeline")
    for module in units:
        assert not [t for t in graph[module] if t.startswith(later)], module


def test_every_long_module_says_why():
    long_ones = []
    for name, path in _modules().items():
        text = path.read_text(encoding="utf-8")
        lines = text.count("\n")
        doc = ast.get_docstring(ast.parse(text)) or ""
        if lines > MAX_LINES and "Long because" not in doc:
            long_ones.append(f"{name} ({lines} lines)")
    assert not long_ones, "modules over 700 lines without a reason: " + ", ".join(long_ones)


def test_every_module_has_a_docstring():
    missing = [
        name
        for name, path in _modules().items()
        if not ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert not missing, missing
