"""The house's rules (docs/architecture.md), measured on the import graph of ``src/recexp``:
every import (lazy ones inside functions too) points down the list of layers, at most four
modules sit loose at the top of the package, and no source file is longer than 300 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "src" / "recexp"
# lowest first: a module may import only from its own layer or one listed before it
LAYERS = ["errors", "runtime", "data", "config", "models", "losses", "eval", "training", "record",
          "analysis", "serving", "job", "jobs", "api", "cli", "__init__", "__main__"]
LOOSE = {"__init__.py", "api.py", "errors.py", "job.py"}


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def modules() -> dict[str, Path]:
    out = {}
    for f in PKG.rglob("*.py"):
        rel = f.relative_to(PKG.parent).with_suffix("")
        out[".".join(p for p in rel.parts if p != "__init__") if rel.name == "__init__" else ".".join(rel.parts)] = f
    return out


def imports(path: Path, module: str) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("recexp")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("recexp"):
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}  # `from recexp.x import module`
    return found


def test_imports_point_down_the_layers():
    mods = modules()
    up = []
    for name, path in mods.items():
        here = LAYERS.index(layer(name))
        for target in imports(path, name):
            if target not in mods and target.rsplit(".", 1)[0] in mods:
                target = target.rsplit(".", 1)[0]  # a name imported from a module, not a module
            if target == "recexp" or target not in mods:
                continue
            if LAYERS.index(layer(target)) > here:
                up.append(f"{name} -> {target}")
    assert not up, "imports that run back up the layers: " + ", ".join(sorted(up))


def test_at_most_four_loose_modules_and_no_long_files():
    loose = {f.name for f in PKG.glob("*.py")}
    assert loose <= LOOSE, f"loose modules at the top of the package: {sorted(loose - LOOSE)}"
    long = [f"{f.relative_to(PKG)} ({n})" for f in PKG.rglob("*.py") if (n := len(f.read_text().splitlines())) > 300]
    assert not long, f"source files over 300 lines: {long}"


@pytest.mark.parametrize("folder", [d.name for d in PKG.iterdir() if d.is_dir() and d.name != "__pycache__"])
def test_every_folder_is_a_layer(folder):
    assert folder in LAYERS, f"src/recexp/{folder}/ is not in the layer list of docs/architecture.md"
