"""Data flows one way (DESIGN.md, "Layers"): a module imports only its own layer or lower ones.

Every import in streid_core counts, those inside functions too (a lazy import is still a
dependency), resolved to the top-level module or subpackage it names.
"""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "streid_core"

LAYERS = [
    {"errors", "atomic", "numerics", "device", "seeding", "__init__"},
    {"data"},
    {"models", "losses"},
    {"evaluation"},
    {"training"},
    {"tracking"},
    {"viz"},
    {"reporting"},
    {"experiments"},
    {"cli", "__main__"},
]
LEVEL = {name: level for level, names in enumerate(LAYERS) for name in names}


def imports(path: Path):
    """(line, top-level name, import text) of every streid_core import in `path`."""
    package = ["streid_core", *path.relative_to(PACKAGE).parts[:-1]]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
            module = ".".join(p for p in (base, node.module) if p)
            # `from . import x` and `from streid_core import x` name modules, not attributes
            targets = [f"{module}.{a.name}" for a in node.names] if module == "streid_core" or not node.module \
                else [module]
        else:
            continue
        for target in targets:
            parts = target.split(".")
            if parts[0] == "streid_core" and len(parts) > 1:
                yield node.lineno, parts[1], target


def layer_of(path: Path) -> str:
    return path.relative_to(PACKAGE).with_suffix("").parts[0]


def test_every_module_has_a_layer():
    unplaced = sorted({layer_of(p) for p in PACKAGE.rglob("*.py")} - set(LEVEL))
    assert not unplaced, f"put {unplaced} into a layer of LAYERS (and DESIGN.md)"


def test_no_module_imports_a_higher_layer():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel, own = path.relative_to(PACKAGE).as_posix(), layer_of(path)
        for line, top, target in imports(path):
            if LEVEL.get(top, -1) <= LEVEL[own]:
                continue
            upward.append(f"streid_core/{rel}:{line}: {own} (layer {LEVEL[own]}) imports {target} "
                          f"(layer {LEVEL[top]})")
    assert not upward, "imports from a higher layer:\n" + "\n".join(upward)
