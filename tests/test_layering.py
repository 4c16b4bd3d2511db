"""Layers import one way: serflow_env <- agents <- serflow_eval <- CLIs, never back.

Every module's imports are read with ``ast`` (module level and inside functions or classes,
absolute and relative), so a lazy import inside a function counts like a top-level one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: package -> its layer (a package may import only packages of its layer or lower)
LAYERS = {"serflow_env": 0, "agents": 1, "serflow_eval": 2}
CLIS = ("train.py", "evaluate.py", "quickstart.py")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports, at any depth of its syntax tree."""
    return imports_in(path.read_text(encoding="utf-8"), module_name(path),
                      path.name == "__init__.py")


def imports_in(source: str, module: str, is_package: bool) -> set[str]:
    """Absolute names imported by the source of ``module`` (relative imports resolved)."""
    tree = ast.parse(source)
    package = module.split(".") if is_package else module.split(".")[:-1]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                names.add(".".join(base + ([node.module] if node.module else [])))
            else:
                names.add(node.module or "")
    return names


def layer_of(module: str) -> int | None:
    return LAYERS.get(module.split(".")[0])


def package_modules() -> list[Path]:
    return sorted(p for pkg in LAYERS for p in (ROOT / pkg).rglob("*.py"))


def upward(imports: set[str], own_layer: int) -> list[str]:
    return sorted(m for m in imports if (layer := layer_of(m)) is not None and layer > own_layer)


def test_every_package_module_imports_only_its_layer_or_lower() -> None:
    modules = package_modules()
    assert len(modules) > 30  # the walk found the packages
    arrows = {module_name(p): upward(imported_modules(p), LAYERS[module_name(p).split(".")[0]])
              for p in modules}
    bad = {name: ups for name, ups in arrows.items() if ups}
    assert not bad, f"imports against the layering (serflow_env <- agents <- serflow_eval): {bad}"


@pytest.mark.parametrize("cli", CLIS)
def test_clis_exist_and_sit_above_every_package(cli: str) -> None:
    """Nothing in the packages imports a CLI module."""
    path = ROOT / cli
    assert path.is_file()
    importers = [module_name(p) for p in package_modules()
                 if Path(cli).stem in imported_modules(p)]
    assert not importers


def test_checker_sees_function_level_and_relative_imports() -> None:
    """The checker itself: a lazy import inside a method and relative imports are found."""
    source = ("import numpy\n"
              "class A:\n"
              "    def f(self):\n"
              "        from agents.policy import Policy\n"
              "def g():\n"
              "    import serflow_eval.metrics as m\n"
              "from .observation import column\n"
              "from . import core\n")
    found = imports_in(source, "serflow_env.probe", is_package=False)
    assert found == {"numpy", "agents.policy", "serflow_eval.metrics",
                     "serflow_env.observation", "serflow_env"}
    assert upward(found, LAYERS["serflow_env"]) == ["agents.policy", "serflow_eval.metrics"]
    assert imports_in("from ..core import x\n", "serflow_env.reference", True) == \
        {"serflow_env.core"}
