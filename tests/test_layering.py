"""The core runs on a GPU server without Qt or napari: it must never import them."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

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
