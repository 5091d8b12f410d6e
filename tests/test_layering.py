"""The package's layering, checked on its source (the import-linter job, hand-written).

- The core runs on a GPU server without Qt or napari: it never imports them.
- Dependencies point down the table :data:`LAYERS`; ``config/`` needs only ``errors``, ``io/``
  no torch; nothing imports the faces ``cli/`` and ``_qt/``; no import cycles between
  subpackages when modules load.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "napari_cryoden"
GUI_ROOTS = ("qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "superqt", "napari", "magicgui")
NAPARI_HOOKS = {"_reader.py", "_writer.py", "_sample_data.py"}


def core_modules() -> list[Path]:
    return [p for p in PACKAGE.rglob("*.py")
            if "_qt" not in p.relative_to(PACKAGE).parts and p.name not in NAPARI_HOOKS]


def test_core_sources_do_not_import_gui() -> None:
    offenders = []
    for path in core_modules():
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in GUI_ROOTS]
    assert not offenders


def test_importing_the_whole_core_loads_no_gui() -> None:
    modules = [".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts)
               for p in core_modules() if p.name != "__main__.py"]  # a script: runs the CLI
    code = (f"import sys\nfor m in {modules!r}: __import__(m)\n"
            f"bad = [m for m in sys.modules if m.split('.')[0] in {GUI_ROOTS!r}]\n"
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_napari_hooks_are_light() -> None:
    """napari imports the hooks at start-up and on File > Open: no torch, napari or Qt there."""
    hooks = ", ".join(f"napari_cryoden.{p[:-3]}" for p in sorted(NAPARI_HOOKS))
    code = (f"import sys, {hooks}\n"
            "print(sorted(m for m in ('napari', 'torch', 'qtpy') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=60)
    assert result.stdout.strip() == "[]", "opening napari must not import torch"


# -- the package's import graph, from the source ---------------------------------------------
ROOT = "(root)"  # napari_cryoden/__init__.py: __version__ and the lazy public API
LAYERS: list[tuple[str, ...]] = [
    (ROOT, "errors", "devices"),  # the bottom: imported by anyone
    ("config",),
    ("io",),
    ("data", "simulation"),
    ("models",),
    ("kernels",),
    ("inference", "plotting"),
    ("evaluation",),  # scoring and the scramble guards, which training uses too
    ("training", "interop"),
    ("api",),
    ("cli", "_qt", "_reader", "_writer", "_sample_data"),  # the faces: nothing imports them
]
"""Lowest first. A module may import its own layer and those below; never one above."""
LAYER = {part: level for level, parts in enumerate(LAYERS) for part in parts}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def part_of(module: str) -> str:
    """The subpackage (or top-level module) a module belongs to: ``io``, ``devices``, ROOT."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ROOT


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _load_time_nodes(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements run when the module loads: not in functions nor ``if TYPE_CHECKING``."""
    for node in body:
        yield node
        if isinstance(node, ast.If) and not _is_type_checking(node):
            yield from _load_time_nodes(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            handlers = [n for h in node.handlers for n in h.body]
            yield from _load_time_nodes(node.body + handlers + node.orelse + node.finalbody)
        elif isinstance(node, (ast.With, ast.ClassDef)):
            yield from _load_time_nodes(node.body)


def imports(module: str, source: str, *, load_time: bool = False) -> list[tuple[str, int]]:
    """``(imported module, line)`` for each in-package import of ``module``'s source; with
    ``load_time`` only those run when it loads. Relative imports are resolved; ``from x import
    y`` names the submodule ``x.y`` when there is one."""
    tree = ast.parse(source)
    nodes = _load_time_nodes(tree.body) if load_time else ast.walk(tree)
    package = module if MODULES.get(module, Path()).name == "__init__.py" else (
        module.rpartition(".")[0])
    found = []
    for node in nodes:
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            found += [(f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base, node.lineno)
                      for a in node.names]
    return [(name, line) for name, line in dict.fromkeys(found)
            if name.split(".")[0] == "napari_cryoden"]


def edges(*, load_time: bool = False) -> list[tuple[str, str, str]]:
    """``(from part, to part, "file:line imports module")`` for imports across parts."""
    out = []
    for module, path in MODULES.items():
        for target, line in imports(module, path.read_text(), load_time=load_time):
            if part_of(target) != part_of(module):
                where = f"{path.relative_to(PACKAGE.parent)}:{line} imports {target}"
                out.append((part_of(module), part_of(target), where))
    return out


def test_every_part_of_the_package_has_a_layer() -> None:
    assert {part_of(m) for m in MODULES} == set(LAYER), "place new subpackages in LAYERS"


def test_relative_imports_resolve_to_modules() -> None:
    source = ("from ..config.sections import Config\nfrom . import loop\nfrom .. import __version__"
              "\nimport napari_cryoden.io.images\nimport numpy\n"
              "def f():\n    from ..evaluation import guards\n")
    assert imports("napari_cryoden.training.modes", source) == [
        ("napari_cryoden.config.sections", 1), ("napari_cryoden.training.loop", 2),
        ("napari_cryoden", 3), ("napari_cryoden.io.images", 4),
        ("napari_cryoden.evaluation.guards", 7)]
    assert len(imports("napari_cryoden.training.modes", source, load_time=True)) == 4


_UPWARD_TODAY: dict[str, str] = {}
"""Subpackages with a known upward import (reason as the value); none today."""


@pytest.mark.parametrize("part", [
    pytest.param(p, marks=pytest.mark.xfail(strict=True, reason=_UPWARD_TODAY[p]))
    if p in _UPWARD_TODAY else p for parts in LAYERS for p in parts])
def test_dependencies_point_down(part: str) -> None:
    """Every import, lazy ones included: a lazy import is still a dependency."""
    upward = [f"{where} (layer {LAYER[dst]} > {LAYER[src]})" for src, dst, where in edges()
              if src == part and LAYER[dst] > LAYER[src]]
    assert not upward, "\n".join(upward)


def test_config_imports_only_errors() -> None:
    bad = [where for src, dst, where in edges() if src == "config" and dst != "errors"]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("face", ["cli", "_qt"])
def test_nothing_imports_the_faces(face: str) -> None:
    bad = [where for src, dst, where in edges() if dst == face]
    assert not bad, "\n".join(bad)


def test_io_imports_no_torch() -> None:
    io_modules = sorted(m for m in MODULES if part_of(m) == "io")
    in_source = [f"{m}:{n.lineno}" for m in io_modules
                 for n in ast.walk(ast.parse(MODULES[m].read_text()))
                 for name in ([a.name for a in n.names] if isinstance(n, ast.Import)
                              else [n.module or ""] if isinstance(n, ast.ImportFrom) else [])
                 if name.split(".")[0] == "torch"]
    assert not in_source, in_source
    code = (f"import sys\nfor m in {io_modules!r}: __import__(m)\n"
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=60)
    assert result.stdout.strip() == "False", "io/ pulled in torch through an import"


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle ``[a, b, ..., a]`` of a directed graph, or None."""
    state: dict[str, str] = {}  # "open" while on the path, "done" once explored
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = "done"
        path.pop()
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_find_cycle_names_the_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}}) is None


def test_no_import_cycles_between_subpackages() -> None:
    """Imports run when modules load; lazy ones (in functions) cannot deadlock an import."""
    graph: dict[str, set[str]] = {}
    why: dict[tuple[str, str], str] = {}
    for src, dst, where in edges(load_time=True):
        graph.setdefault(src, set()).add(dst)
        why.setdefault((src, dst), where)
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + "; ".join(
        why[edge] for edge in zip(cycle, cycle[1:], strict=False))
