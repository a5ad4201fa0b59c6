"""ferkit's import structure: no cycles, and every import points down the layers.

Every module under ``src/ferkit`` is parsed with :mod:`ast` (nothing is imported), and
every ``import``/``from … import`` of a ferkit module counts, at module level and inside
functions alike: an import inside a function that closes a cycle is still a cycle, only
a delayed one.  Two kinds of import are left out, each for a stated reason:

- ``if TYPE_CHECKING:`` blocks: they never run;
- imports inside a module-level ``__getattr__`` (PEP 562): deprecated aliases of names that
  moved up a layer (``ferkit.checkpoint.load_checkpoint`` -> ``ferkit.weights``), kept for one
  release so old code keeps working; they are listed in ``DEPRECATED_ALIASES`` so a new one
  is a decision, not an accident.

The layers, lowest first (docs/architecture.md draws the same map).  A module may import
its own layer and the layers below; ``ferkit`` itself (``__version__`` and the lazy public
names, resolved by ``importlib`` on first use) sits at the bottom.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation", ("ferkit", "ferkit.errors", "ferkit.atomic", "ferkit.labels",
                    "ferkit.config", "ferkit.registry", "ferkit.devices", "ferkit.progress",
                    "ferkit.boxes", "ferkit.calibration", "ferkit.figures")),
    ("checkpoint files", ("ferkit.checkpoint",)),
    ("architectures", ("ferkit.models",)),
    ("trained weights", ("ferkit.weights",)),
    ("faces", ("ferkit.faces",)),
    ("data", ("ferkit.data",)),
    ("losses", ("ferkit.losses",)),
    ("evaluation, export", ("ferkit.evaluation", "ferkit.export", "ferkit.quantize")),
    ("training", ("ferkit.training",)),
    ("inference", ("ferkit.inference",)),
    ("explanations", ("ferkit.explain",)),
    ("applications", ("ferkit.batch", "ferkit.serve", "ferkit.ui")),
    ("command line", ("ferkit.cli", "ferkit.__main__")),
]

#: module -> the modules its ``__getattr__`` deprecated aliases import (see the docstring)
DEPRECATED_ALIASES = {
    "ferkit.checkpoint": {"ferkit.weights", "ferkit.models", "ferkit.models.base"},
    "ferkit.calibration": {"ferkit.evaluation"},
    "ferkit.training.dataspec": {"ferkit.data.spec"},  # downwards: listed for completeness
}


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted((SRC / "ferkit").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _layer_of(module: str) -> int:
    best, depth = None, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            matches = module == prefix or (prefix != "ferkit" and module.startswith(prefix + "."))
            if matches and prefix.count(".") > depth:
                best, depth = index, prefix.count(".")
    if best is None:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS")
    return best


def _target(name: str) -> str | None:
    """The ferkit module an imported name lives in (``ferkit.models.create_model`` ->
    ``ferkit.models``), or None for other packages."""
    if name != "ferkit" and not name.startswith("ferkit."):
        return None
    while name not in MODULES and "." in name:
        name = name.rsplit(".", 1)[0]
    return name if name in MODULES else None


def _is_type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def _imports(module: str, path: Path) -> tuple[set[str], set[str]]:
    """(imports that count, imports inside a module-level ``__getattr__``)."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    counted: set[str] = set()
    aliases: set[str] = set()

    def visit(node: ast.AST, into: set[str]) -> None:
        if _is_type_checking(node):
            return
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        for name in names:
            target = _target(name)
            if target is not None and target != module:
                into.add(target)
        for child in ast.iter_child_nodes(node):
            visit(child, into)

    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for statement in tree.body:
        is_alias = isinstance(statement, ast.FunctionDef) and statement.name == "__getattr__"
        visit(statement, aliases if is_alias else counted)
    # a package's own submodules appear as "from ferkit.x import sub": importing a parent
    # package from its child is implied by Python anyway, not an edge of the design
    return ({t for t in counted if not module.startswith(t + ".")},
            {t for t in aliases if not module.startswith(t + ".")})


GRAPH: dict[str, set[str]] = {}
ALIASES: dict[str, set[str]] = {}
for _name, _path in MODULES.items():
    GRAPH[_name], ALIASES[_name] = _imports(_name, _path)


def test_every_module_has_a_layer():
    for module in MODULES:
        _layer_of(module)


def test_the_parser_sees_imports_of_every_kind():
    # a guard against a test that cannot fail: these edges exist in the code
    assert "ferkit.models.registry" in GRAPH["ferkit.models.dan"]  # from-import, module level
    assert "ferkit.weights" in GRAPH["ferkit.evaluation"]  # inside a function
    assert "ferkit.faces.base" in GRAPH["ferkit.faces.retinaface"]
    assert "ferkit.models" not in GRAPH["ferkit"]  # TYPE_CHECKING only
    assert GRAPH["ferkit.faces.retinaface"] >= {"ferkit.devices", "ferkit.errors"}


def test_no_import_cycles():
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []
    cycles: list[str] = []

    def walk(module: str) -> None:
        state[module] = 1
        stack.append(module)
        for target in sorted(GRAPH[module]):
            if state.get(target) == 1:
                cycles.append(" -> ".join([*stack[stack.index(target):], target]))
            elif target not in state:
                walk(target)
        stack.pop()
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            walk(module)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_imports_point_down_the_layers():
    upward = []
    for module, targets in sorted(GRAPH.items()):
        for target in sorted(targets):
            if _layer_of(target) > _layer_of(module):
                upward.append(f"{module} ({LAYERS[_layer_of(module)][0]}) imports {target} "
                              f"({LAYERS[_layer_of(target)][0]})")
    assert not upward, "imports from a lower layer to a higher one:\n" + "\n".join(upward)


def test_deprecated_aliases_are_the_listed_ones():
    found = {module: targets for module, targets in ALIASES.items() if targets}
    assert found == DEPRECATED_ALIASES


@pytest.mark.parametrize("module", ["ferkit.checkpoint", "ferkit.models.registry",
                                    "ferkit.models.convert"])
def test_the_weights_stack_is_layered(module):
    """The three former homes of weights: files at the bottom, architectures above them,
    naming and loading trained weights above both."""
    assert not any(t.startswith(("ferkit.weights", "ferkit.training")) for t in GRAPH[module])
    assert not any(t.startswith("ferkit.models") for t in GRAPH["ferkit.checkpoint"])
