"""napari finds the plugin: from the editable install, and from a built wheel installed elsewhere.

napari discovers plugins through the ``napari.manifest`` entry point and reads
``napari_cryoden/napari.yaml`` (a symlink to the repository's root ``napari.yaml``). A wheel that
ships a dangling link, a stale copy or no manifest at all would install fine and never show up in
napari; these tests catch that without napari itself.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import npe2
import pytest

from napari_cryoden.io.formats import MRC_SUFFIXES

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "napari.yaml"
SHIPPED = (
    "napari_cryoden/__init__.py",
    "napari_cryoden/napari.yaml",
    "napari_cryoden/_reader.py",
    "napari_cryoden/_sample_data.py",
    "napari_cryoden/data/__init__.py",
    "napari_cryoden/simulation/micrographs.py",
    "napari_cryoden/models/pretrained/__init__.py",
    # the models the Denoise widget defaults to
    "napari_cryoden/models/pretrained/general.safetensors",
    "napari_cryoden/models/pretrained/general-fast.safetensors",
)


def _run(
    args: list[str | Path], env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, env=env, cwd=cwd)


def test_editable_install_exposes_the_manifest() -> None:
    manifest = npe2.PluginManifest.from_distribution("napari-cryoden")
    assert manifest.name == "napari-cryoden" and manifest.display_name == "napari-cryoden"
    [reader] = manifest.contributions.readers
    assert set(reader.filename_patterns) == {f"*{suffix}" for suffix in MRC_SUFFIXES}
    assert reader.accepts_directories is False
    [sample] = manifest.contributions.sample_data
    assert sample.key == "synthetic"
    assert sample.display_name == "Synthetic micrograph (noisy + clean)"
    for command in manifest.contributions.commands:  # every python_name resolves to a callable
        module, _, attribute = command.python_name.partition(":")
        assert callable(getattr(importlib.import_module(module), attribute)), command.python_name
    link = ROOT / "src" / "napari_cryoden" / "napari.yaml"
    assert link.resolve() == MANIFEST.resolve()


def test_npe2_validate_passes() -> None:
    npe2_exe = Path(sys.executable).parent / "npe2"
    result = _run([npe2_exe, "validate", "--imports", "napari-cryoden"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid" in result.stdout


def _source_copy(dest: Path) -> Path:
    """What the build reads: pyproject, README, the root manifest and src/ (links kept)."""
    dest.mkdir()
    for name in ("pyproject.toml", "README.md", "napari.yaml", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, dest / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    shutil.copytree(ROOT / "src", dest / "src", symlinks=True, ignore=ignore)
    return dest


@pytest.mark.slow
def test_wheel_ships_the_manifest_and_npe2_finds_it(tmp_path: Path) -> None:
    # Build from a copy so that a stale build/ folder in the checkout cannot leak into the wheel.
    source = _source_copy(tmp_path / "source")
    wheels = tmp_path / "wheels"
    pip: list[str | Path] = [sys.executable, "-m", "pip"]
    build = _run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", wheels, source])
    assert build.returncode == 0, build.stderr[-2000:]
    [wheel] = wheels.glob("napari_cryoden-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert set(SHIPPED) <= names, sorted(set(SHIPPED) - names)
        assert archive.read("napari_cryoden/napari.yaml") == MANIFEST.read_bytes()
        [entry_points] = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        assert "napari-cryoden = napari_cryoden:napari.yaml" in archive.read(entry_points).decode()

    site = tmp_path / "site"
    install = _run([*pip, "install", "--no-deps", "--target", site, wheel])
    assert install.returncode == 0, install.stderr[-2000:]
    probe = (
        "import importlib.metadata as md, npe2, napari_cryoden, napari_cryoden._reader as r\n"
        "m = npe2.PluginManifest.from_distribution('napari-cryoden')\n"
        "print(m.name, len(m.contributions.readers), len(m.contributions.sample_data))\n"
        "print(napari_cryoden.__file__)\n"
        "print(md.distribution('napari-cryoden')._path)\n"
        "print(r.__file__)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    result = _run([sys.executable, "-c", probe], env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    summary, *files = result.stdout.splitlines()
    assert summary == "napari-cryoden 1 1"
    for file in files:  # the installed wheel, not the checkout, answered
        assert Path(file).resolve().is_relative_to(site.resolve()), file
