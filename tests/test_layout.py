"""The package's layout: no import cycle anywhere, and no module too long to read in one pass.

The import graph is what Python runs: every ``import`` and ``from ... import`` statement of every
module, read from the source with :mod:`ast` (not from ``sys.modules``), including those inside
functions, so a cycle hidden behind a function-level import is found too. Only the imports
under ``if TYPE_CHECKING:`` are left out (they never run). ``from a import b`` is an edge to
``a.b`` when that is a module, else to ``a``; no edge is added for the parent packages Python
loads on the way, and a package importing its own submodules is an edge like any other.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import geo_crime

PACKAGE = Path(geo_crime.__file__).parent

#: A module longer than this says why in its docstring (a sentence starting "Long because").
MAX_LINES = 700


def _module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules(package: Path = PACKAGE) -> dict[str, Path]:
    return {_module_name(path, package): path for path in sorted(package.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    """``TYPE_CHECKING`` or ``<module>.TYPE_CHECKING`` (``typing.TYPE_CHECKING``)."""
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _import_nodes(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement Python may run: all but those under ``if TYPE_CHECKING:``."""
    found: list[ast.Import | ast.ImportFrom] = []
    todo: list[ast.AST] = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            todo.extend(node.orelse)  # the ``else`` branch does run
            continue
        todo.extend(ast.iter_child_nodes(node))
    return found


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package modules ``name`` imports (a package counts as its ``__init__``)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _import_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                root = package.split(".")
                root = root[: len(root) - node.level + 1]
                base = ".".join([*root, base] if base else root)
            # ``from a import b``: the module ``a.b`` when there is one, else a name of ``a``
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                for alias in node.names
            ]
        for target in targets:
            # the longest known module the target names (``a.b.c`` -> ``a.b`` when c is a name)
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package modules it imports, from the source of every module."""
    modules = _modules(package)
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
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
    # a package re-exporting a submodule that imports the package back is a cycle too
    assert find_cycle({"p": {"p.x"}, "p.x": {"p"}}) == ["p", "p.x", "p"]
    assert find_cycle({"p": {"p.x"}, "p.x": set()}) is None


def test_the_graph_sees_function_level_and_relative_imports(tmp_path):
    graph = import_graph()
    # the CLI imports its stages inside the commands
    assert "geo_crime.pipeline" in graph["geo_crime.cli.runs"]
    assert "geo_crime.cube.panel" in graph["geo_crime.cli.cubes"]
    assert "geo_crime.core.errors" in graph["geo_crime.units"] or any(
        "geo_crime.core.errors" in graph[m] for m in graph if m.startswith("geo_crime.units.")
    )


def test_the_graph_is_what_python_runs(tmp_path):
    """Function-level imports count, ``if TYPE_CHECKING:`` ones do not, no parent-package
    edges are added, and a package's imports of its own submodules are edges."""
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text('"""p."""\nfrom pkg.a import A\n')
    (package / "a.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "import typing\n"
        "if TYPE_CHECKING:\n    from pkg import b\n"
        "if typing.TYPE_CHECKING:\n    import pkg.sub.c\n"
        "else:\n    from pkg import d\n"
        "def f():\n    from .sub import c\n"
        "A = 1\n"
    )
    (package / "b.py").write_text("from pkg import A\n")
    (package / "d.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "c.py").write_text("from .. import b\n")
    graph = import_graph(package)
    assert graph == {
        "pkg": {"pkg.a"},
        "pkg.a": {"pkg.d", "pkg.sub.c"},
        "pkg.b": {"pkg"},
        "pkg.d": set(),
        "pkg.sub": set(),
        "pkg.sub.c": {"pkg.b"},
    }
    # pkg -> pkg.a -> pkg.sub.c -> pkg.b -> pkg: found although the first edge is a re-export
    assert find_cycle(graph) == ["pkg", "pkg.a", "pkg.sub.c", "pkg.b", "pkg"]


def test_no_import_cycle_in_the_package():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_units_do_not_depend_on_rates_or_later_stages():
    graph = import_graph()
    units = [m for m in graph if m == "geo_crime.units" or m.startswith("geo_crime.units.")]
    later = (
        "geo_crime.cube.rates",
        "geo_crime.cube.panel",
        "geo_crime.forecast",
        "geo_crime.pipeline",
    )
    for module in units:
        assert not [t for t in graph[module] if t.startswith(later)], module


def layers(pyproject: Path = PACKAGE.parent / "pyproject.toml") -> list[tuple[list[str], bool]]:
    """The stages' layers, lowest first, from the import-linter contract in ``pyproject.toml``
    (the one declaration ``make lint`` checks too): each layer its top-level names and whether
    they are independent siblings (``a | b``) or may import each other (``a : b``)."""
    contract = tomllib.loads(pyproject.read_text(encoding="utf-8"))["tool"]["importlinter"]
    (layered,) = [c for c in contract["contracts"] if c["type"] == "layers"]
    order = []
    for layer in reversed(layered["layers"]):
        independent = "|" in layer
        names = [n.strip() for n in layer.replace(":", "|").split("|")]
        order.append((names, independent))
    return order


def layer_breaches(graph: dict[str, set[str]], order: list[tuple[list[str], bool]]) -> list[str]:
    """Imports of a higher layer, or of an independent sibling of the same layer.

    ``root.x.y`` is in the layer naming ``x``; a module of no layer (the package face) may import
    any, and only the face imports it."""
    where = {name: i for i, (names, _) in enumerate(order) for name in names}

    def place(module: str) -> tuple[int, str]:
        top = module.split(".")[1] if "." in module else ""
        return (where[top], top) if top in where else (len(order), top)

    breaches = []
    for module, targets in sorted(graph.items()):
        level, top = place(module)
        for target in sorted(targets):
            t_level, t_top = place(target)
            sibling = t_level == level < len(order) and t_top != top and order[level][1]
            if t_level > level or sibling:
                breaches.append(f"{module} -> {target}")
    return breaches


def test_the_layers_are_the_stages_in_the_order_of_the_flow():
    order = [names for names, _ in layers()]
    assert [layer[0] for layer in order[:3]] == ["core", "net", "record"]
    assert order[1] == ["net", "ingest"] and layers()[1][1]  # independent siblings
    assert [layer[0] for layer in order[3:9]] == [
        "units",
        "cube",
        "stats",
        "forecast",
        "publish",
        "report",
    ]
    assert {"cli", "pipeline", "settings", "query"} <= set(order[9])


def test_every_stage_imports_only_its_own_layer_or_lower_ones():
    breaches = layer_breaches(import_graph(), layers())
    assert not breaches, "imports of a higher layer: " + ", ".join(breaches)


def test_the_layer_check_catches_an_upward_and_a_sibling_import():
    order = [(["core"], False), (["net", "ingest"], True), (["cube"], False)]
    order.append((["cli", "pipeline"], False))
    graph = {
        "g.core.a": set(),
        "g.net.x": {"g.core.a"},
        "g.ingest.y": {"g.net.x"},  # independent siblings
        "g.cube.c": {"g.ingest.y", "g.core.a"},
        "g.core.b": {"g.cube.c"},  # upward, even from a function body
        "g.cli": {"g.pipeline", "g.cube.c"},  # wiring siblings may import each other
        "g.pipeline": {"g.cube.c"},
    }
    assert layer_breaches(graph, order) == ["g.core.b -> g.cube.c", "g.ingest.y -> g.net.x"]


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


def test_no_test_module_imports_another_test_module_or_conftest():
    """Tests are built from fixtures (``tests/fakes``, ``conftest.py`` fixtures), never from each
    other: no ``test_*`` module, fake or conftest imports a ``test_*`` module or ``conftest``."""
    tests = Path(__file__).parent
    offenders = []
    for path in sorted(tests.rglob("*.py")):
        for node in _import_nodes(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
            )
            for name in names:
                last = name.rpartition(".")[2]
                if last.startswith("test_") or last == "conftest":
                    offenders.append(f"{path.relative_to(tests)} imports {name}")
    assert not offenders, offenders


#: A function body longer than this (its docstring aside) says why in its docstring.
MAX_FUNCTION_LINES = 80

#: Libraries a function may import where it uses them: optional, or seconds to load.
HEAVY_LIBRARIES = (
    "tensorflow",
    "keras",
    "keras_tuner",
    "sklearn",
    "dask",
    "distributed",
    "matplotlib",
    "folium",
    "branca",
    "libpysal",
    "esda",
    "tobler",
    "mapclassify",
    "selenium",
)

#: Packages whose functions import their stages on use: the command line's commands each load
#: their stage when run, so ``geo-crime --help`` starts without loading every stage.
LAZY_PACKAGES = ("geo_crime.cli",)


def _functions(tree: ast.AST) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]


def long_functions(package: Path = PACKAGE, limit: int = MAX_FUNCTION_LINES) -> list[str]:
    """Functions whose body (docstring aside) is longer than ``limit`` lines and whose docstring
    does not say why ("Long because")."""
    found = []
    for name, path in _modules(package).items():
        for fn in _functions(ast.parse(path.read_text(encoding="utf-8"))):
            doc = ast.get_docstring(fn) or ""
            body = fn.body[1:] if ast.get_docstring(fn) is not None else fn.body
            lines = fn.end_lineno - body[0].lineno + 1 if body else 0
            if lines > limit and "Long because" not in doc:
                found.append(f"{name}.{fn.name} ({lines} lines)")
    return found


def _package_of(name: str, path: Path) -> str:
    """The package a module belongs to (a package's face belongs to the package itself)."""
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def private_crossings(package: Path = PACKAGE) -> list[str]:
    """``_private`` names used outside their package: imported by name, or read as an attribute
    of an imported module of another package (``other._name``)."""
    modules = _modules(package)
    found = []
    for name, path in modules.items():
        home = _package_of(name, path)
        aliases: dict[str, str] = {}  # local name -> module it stands for
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in _import_nodes(tree):
            if isinstance(node, ast.Import):
                aliases.update({a.asname or a.name: a.name for a in node.names if a.asname})
                continue
            source = node.module or ""
            if source not in modules:
                continue
            for alias in node.names:
                full = f"{source}.{alias.name}"
                if full in modules:
                    aliases[alias.asname or alias.name] = full
                elif (
                    alias.name.startswith("_")
                    and not alias.name.startswith("__")
                    and _package_of(source, modules[source]) != home
                ):
                    found.append(f"{name} imports {full}")
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and node.value.id in aliases
            ):
                target = aliases[node.value.id]
                if target in modules and _package_of(target, modules[target]) != home:
                    found.append(f"{name} reads {target}.{node.attr}")
    return sorted(set(found))


def re_exports(package: Path = PACKAGE) -> list[str]:
    """Names a module (not a package face) lists in ``__all__`` but imports from another."""
    modules = _modules(package)
    found = []
    for name, path in modules.items():
        if path.name == "__init__.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {
            alias.asname or alias.name: node.module
            for node in _import_nodes(tree)
            if isinstance(node, ast.ImportFrom) and (node.module or "") in modules
            for alias in node.names
        }
        for node in tree.body:
            targets = node.targets if isinstance(node, ast.Assign) else []
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
                listed = [
                    e.value for e in getattr(node.value, "elts", []) if isinstance(e, ast.Constant)
                ]
                found += [
                    f"{name} re-exports {n} of {imported[n]}" for n in listed if n in imported
                ]
    return found


def unexplained_function_imports(package: Path = PACKAGE) -> list[str]:
    """Imports inside functions that are not of a heavy library, not in a lazy package and carry
    no reason (a comment on the import or on the line above it)."""
    found = []
    for name, path in _modules(package).items():
        if name.startswith(LAZY_PACKAGES):
            continue
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        for fn in _functions(ast.parse(text)):
            for node in ast.walk(fn):
                if not isinstance(node, ast.Import | ast.ImportFrom):
                    continue
                targets = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                )
                if all(t.split(".")[0] in HEAVY_LIBRARIES for t in targets):
                    continue
                source = " ".join(lines[node.lineno - 1 : node.end_lineno])
                above = lines[node.lineno - 2].strip() if node.lineno > 1 else ""
                if "#" not in source and not above.startswith("#"):
                    found.append(f"{name}:{node.lineno} {source.strip()}")
    return sorted(set(found))


def test_no_function_is_long_without_a_reason():
    found = long_functions()
    assert not found, "functions over 80 lines without 'Long because': " + ", ".join(found)


def test_no_private_name_crosses_a_package_boundary():
    assert private_crossings() == []


def test_only_package_faces_re_export():
    assert re_exports() == []


def test_function_level_imports_are_heavy_libraries_or_say_why():
    assert unexplained_function_imports() == []


def test_the_boundary_checks_catch_what_they_look_for(tmp_path):
    """Each check on a throwaway package: a long function, a private name imported and read
    across packages, a re-export, and an unexplained function-level import."""
    package = tmp_path / "pkg"
    (package / "a").mkdir(parents=True)
    (package / "b").mkdir()
    (package / "__init__.py").write_text('"""p."""\n')
    (package / "a" / "__init__.py").write_text('"""a."""\n')
    (package / "b" / "__init__.py").write_text('"""b."""\n')
    (package / "a" / "x.py").write_text("_SECRET = 1\nPUBLIC = 2\n")
    (package / "a" / "y.py").write_text("from pkg.a.x import _SECRET\n")  # same package: fine
    long_body = "".join(f"    v{i} = {i}\n" for i in range(81))
    (package / "b" / "z.py").write_text(
        "from pkg.a.x import _SECRET, PUBLIC\n"
        "from pkg.a import x\n"
        "__all__ = ['PUBLIC']\n"
        "def f():\n    import json\n    return x._SECRET\n"
        "def g():\n    # json only here\n    import json\n    import matplotlib\n"
        f"def h():\n    '''Long because it is a test.'''\n{long_body}"
        f"def k():\n    '''Short.'''\n{long_body}"
    )
    assert long_functions(package) == ["pkg.b.z.k (81 lines)"]
    assert private_crossings(package) == [
        "pkg.b.z imports pkg.a.x._SECRET",
        "pkg.b.z reads pkg.a.x._SECRET",
    ]
    assert re_exports(package) == ["pkg.b.z re-exports PUBLIC of pkg.a.x"]
    assert unexplained_function_imports(package) == ["pkg.b.z:5 import json"]
