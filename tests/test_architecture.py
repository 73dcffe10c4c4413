"""The package's shape (docs/design.md, "Layers"): no import cycle inside helpers, every import
points down the layers, no module imports another's private name, and report/ stays grouped.
Imports are read with `ast` from every module, those inside functions included."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from helpers.core import paths

PACKAGE = paths.ROOT / "src" / "helpers"

# Lowest first: a module may import from its own layer (no cycle) or any layer below it.
LAYERS = ("core", "workloads", "backends", "pipeline", "studies", "report", "runner")
LAYER_OF = {"core": "core", "workloads": "workloads", "backends": "backends", "pipeline": "pipeline"}
LAYER_OF |= {"studies": "studies", "report": "report", "runner": "runner", "study": "runner"}


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(package: Path = PACKAGE) -> dict[str, Path]:
    return {module_name(p, package): p for p in sorted(package.rglob("*.py"))}


def imports_of(path: Path, name: str, known: set[str]) -> list[tuple[str, list[str], int]]:
    """(module imported, names taken from it, line) for every helpers import in the file,
    at any depth; `from package import module` counts as an import of the module."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names if a.name.split(".")[0] == "helpers"]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([node.module] if node.module else []))
            if base.split(".")[0] != "helpers":
                continue
            for alias in node.names:
                child = f"{base}.{alias.name}"
                found.append((child, [], node.lineno) if child in known else (base, [alias.name], node.lineno))
    return found


def with_packages(target: str) -> list[str]:
    """An import of helpers.a.b runs helpers/a/__init__.py first: the module and every package above it."""
    parts = target.split(".")
    return [".".join(parts[:i]) for i in range(2, len(parts) + 1)]


def graph(package: Path = PACKAGE, packages: bool = False) -> dict[str, set[str]]:
    """Module -> the helpers modules it imports; with `packages`, also each package whose
    __init__ those imports run (what a run-time cycle goes through)."""
    mods = modules(package)
    return {
        name: {
            module
            for target, _, _ in imports_of(path, name, set(mods))
            for module in (with_packages(target) if packages else [target])
            if module in mods and module != name
        }
        for name, path in mods.items()
    }


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def layer(module: str) -> str:
    parts = module.split(".")
    return LAYER_OF[parts[1]] if len(parts) > 1 else "package"


def upward(edges: dict[str, set[str]]) -> list[str]:
    """Every import that points to a higher layer, or from one study's module to another's."""
    wrong = []
    for source, targets in sorted(edges.items()):
        for target in sorted(targets):
            if layer(source) == "package" or layer(target) == "package":
                continue
            if LAYERS.index(layer(target)) > LAYERS.index(layer(source)):
                wrong.append(f"{source} -> {target}")
            elif layer(source) == layer(target) == "studies" and study_of(source) != study_of(target):
                wrong.append(f"{source} -> {target} (studies never import each other)")
    return wrong


def study_of(module: str) -> str:
    """A study's notebook: studies.environment_checks belongs to environment, pipeline_time to pipeline."""
    return module.split(".")[2].split("_")[0] if module.count(".") >= 2 else ""


def private_imports(package: Path = PACKAGE) -> list[str]:
    """`from helpers.x import _name`, and `module._name` on a helpers module a file imported."""
    mods = modules(package)
    wrong = []
    for name, path in mods.items():
        found = imports_of(path, name, set(mods))
        wrong += [f"{name}:{line} imports {t}.{n}" for t, names, line in found for n in names if n.startswith("_")]
        bound = _module_names(path, set(mods))
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in bound
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and bound[node.value.id] != name
            ):
                wrong.append(f"{name}:{node.lineno} uses {bound[node.value.id]}.{node.attr}")
    return wrong


def _module_names(path: Path, known: set[str]) -> dict[str, str]:
    """Local name -> helpers module, for each `from helpers.x import module [as name]`."""
    bound = {}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("helpers"):
            for alias in node.names:
                if f"{node.module}.{alias.name}" in known:
                    bound[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return bound


# ---------------------------------------------------------------- the checks, on the package
def test_no_import_cycle_inside_helpers():
    assert cycles(graph(packages=True)) == []


def test_every_import_points_down_the_layers():
    assert upward(graph()) == []


def test_no_module_imports_another_modules_private_name():
    assert private_imports() == []


def test_every_module_belongs_to_a_layer():
    assert {layer(m) for m in modules()} <= set(LAYERS) | {"package"}


def test_report_top_holds_at_most_eight_entries():
    entries = [p.name for p in (PACKAGE / "report").iterdir() if p.name != "__pycache__"]
    assert len(entries) <= 8, entries
    assert {"charts", "claims", "recommend", "prose", "rows.py"} <= set(entries)


# ---------------------------------------------------------------- the checks, on known packages
def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "helpers"
    for name, source in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    for folder in {p.parent for p in root.rglob("*.py")} | {root}:
        (folder / "__init__.py").touch()
    return root


def test_a_cycle_through_an_import_inside_a_function_is_found(tmp_path):
    root = _package(
        tmp_path,
        {
            "core/a.py": "from helpers.core import b\n",
            "core/b.py": "def f():\n    from helpers.core.c import g\n",
            "core/c.py": "import helpers.core.a\ndef g(): pass\n",
            "core/d.py": "from helpers.core import a\n",
        },
    )
    assert cycles(graph(root)) == [["helpers.core.a", "helpers.core.b", "helpers.core.c"]]


def test_a_package_init_that_imports_its_modules_closes_a_cycle(tmp_path):
    root = _package(
        tmp_path,
        {
            "backends/__init__.py": "def every():\n    from helpers.backends import a\n",
            "backends/a.py": "from helpers.backends import b\n",
            "backends/b.py": "x = 1\n",
        },
    )
    assert cycles(graph(root, packages=True)) == [["helpers.backends", "helpers.backends.a"]]
    assert cycles(graph(root)) == []  # a module graph alone misses it


def test_a_relative_import_is_resolved(tmp_path):
    root = _package(tmp_path, {"core/a.py": "from . import b\n", "core/b.py": "from .a import x\n"})
    assert cycles(graph(root)) == [["helpers.core.a", "helpers.core.b"]]


def test_an_upward_import_and_a_study_importing_another_are_found(tmp_path):
    root = _package(
        tmp_path,
        {
            "core/a.py": "def f():\n    from helpers.report import rows\n",
            "report/rows.py": "from helpers.core import a\nfrom helpers.studies import one\n",
            "studies/one.py": "from helpers.studies.two import x\nfrom helpers.studies import one_time\n",
            "studies/one_time.py": "",
            "studies/two.py": "x = 1\n",
        },
    )
    assert upward(graph(root)) == [
        "helpers.core.a -> helpers.report.rows",
        "helpers.studies.one -> helpers.studies.two (studies never import each other)",
    ]


def test_a_private_name_taken_from_another_module_is_found(tmp_path):
    root = _package(
        tmp_path,
        {
            "core/a.py": "def _hidden(): pass\ndef shown(): _hidden()\n",
            "core/b.py": "from helpers.core.a import _hidden\n",
            "core/c.py": "from helpers.core import a\na._hidden()\na.shown()\n",
        },
    )
    assert sorted(private_imports(root)) == [
        "helpers.core.b:1 imports helpers.core.a._hidden",
        "helpers.core.c:2 uses helpers.core.a._hidden",
    ]


@pytest.mark.parametrize("module", ["helpers.study", "helpers.runner.session"])
def test_the_runner_is_the_top_layer(module):
    assert layer(module) == "runner"
