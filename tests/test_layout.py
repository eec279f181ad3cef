"""The package's shape: one subpackage per stage, imports only downward, no cycles."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import knn_genre

ROOT = Path(knn_genre.__file__).parent
COMMANDS = {"build_features", "evaluate", "train", "predict", "similar", "serve", "demo"}
STAGES = ("audio", "features", "store", "classifiers", "evaluation", "pipeline", "web")

#: What each part of the package may import from the package (besides itself and errors).
ALLOWED = {
    "audio": set(),
    "features": {"audio"},
    "store": {"features.gaussian", "features.params", "__init__"},  # __init__: the version
    "classifiers": {"features.gaussian", "features.params", "store"},
    "evaluation": {"classifiers", "store"},
    "pipeline": {"audio", "features", "store", "classifiers", "__init__"},  # __init__: the version workers must match
    "web": {"audio", "features", "store", "classifiers", "pipeline"},
    "cli": {"__init__"},
}
#: The pure-numpy modules of the features stage, which the store and classifiers rely on.
PURE = {"features.gaussian": set(), "features.params": set()}


def package_modules():
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        yield ".".join(rel.parts), path


MODULES = dict(package_modules())


def resolve(dotted: str) -> str:
    """A dotted name inside the package as one of MODULES (a package as its ``__init__``)."""
    if dotted in MODULES:
        return dotted
    package = f"{dotted}.__init__" if dotted else "__init__"
    assert package in MODULES, f"no module {dotted!r} in the package"
    return package


def imports_of(name: str, path: Path) -> set:
    """Modules of the package that ``name`` imports, anywhere in its source (functions too)."""
    parts = name.split(".")[:-1]  # the package the module is in ("" at the top)
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = parts[: len(parts) - (node.level - 1)]
            elif (node.module or "").split(".")[0] == "knn_genre":
                base = []
                node.module = node.module.removeprefix("knn_genre").lstrip(".") or None
            else:
                continue
            module = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                member = f"{module}.{alias.name}" if module else alias.name
                found.add(member if member in MODULES or f"{member}.__init__" in MODULES else module)
        elif isinstance(node, ast.Import):
            found.update(a.name.removeprefix("knn_genre.") for a in node.names if a.name.startswith("knn_genre."))
    return {resolve(f) for f in found}


GRAPH = {name: imports_of(name, path) for name, path in MODULES.items()}


def part_of(module: str) -> str:
    head = module.split(".")[0]
    return head if head in STAGES or head == "cli" else module.removesuffix(".__init__")


def test_the_top_level_holds_only_commands_and_the_package_entry_points():
    top = {p.stem for p in ROOT.glob("*.py")}
    assert top == COMMANDS | {"__init__", "__main__", "errors"}
    assert {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()} == set(STAGES) | {"cli"}


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if part_of(m) in ALLOWED))
def test_stages_import_only_the_stages_below_them(module):
    part = part_of(module)
    allowed = ALLOWED[part]
    for target in GRAPH[module]:
        if target == "errors" or part_of(target) == part:
            continue
        assert target.removesuffix(".__init__") in allowed or part_of(target) in allowed, f"{module} imports {target}"


@pytest.mark.parametrize("module", sorted(PURE))
def test_the_gaussian_layout_imports_no_other_module(module):
    assert GRAPH[module] <= {"errors"}, GRAPH[module]


def test_there_are_no_import_cycles():
    state = {}

    def visit(node, trail):
        if state.get(node) == "done":
            return
        assert state.get(node) != "open", " -> ".join(trail + [node])
        state[node] = "open"
        for target in sorted(GRAPH.get(node, ())):
            if target != node and not node.startswith(target.removesuffix("__init__")):
                visit(target, trail + [node])
        state[node] = "done"

    for node in sorted(GRAPH):
        visit(node, [])


def test_classifiers_load_without_any_dsp_library():
    code = (
        "import sys, knn_genre.classifiers.knn, knn_genre.classifiers.registry, knn_genre.store;"
        "bad = [m for m in ('python_speech_features', 'knn_genre.audio', 'knn_genre.evaluation', 'scipy.signal') if m in sys.modules];"
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
