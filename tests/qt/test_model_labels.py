"""The model list's labels, without a window: unique, and named for the file they stand for."""

from __future__ import annotations

from pathlib import Path

from napari_cryoden._qt._models import ModelRegistry, model_label, unique_labels
from napari_cryoden.config.sections import Config
from napari_cryoden.models.header import WeightFileInfo


def info(path: str, epoch: int | None = 12, preset: str = "seed") -> WeightFileInfo:
    config = Config.from_dict({"model": {"preset": preset}})
    return WeightFileInfo(Path(path), config, {"epoch": epoch})


def test_a_label_names_run_file_preset_and_epoch() -> None:
    assert model_label(info("/x/run1/best.safetensors")) == "run1 · best (seed, epoch 12)"
    assert model_label(info("/x/run1/last.safetensors", 3, "unet-small")) == (
        "run1 · last (unet-small, epoch 3)")
    assert model_label(info("/x/r/best.safetensors", None)) == "r · best (seed)"
    assert model_label(info("/x/r/best.safetensors"), training=True) == "r · best (seed, training)"


def test_clashing_labels_get_parent_folders_then_numbers() -> None:
    a, b = Path("/data/grid_a/run1/best.safetensors"), Path("/data/grid_b/run1/best.safetensors")
    c = Path("/tmp/c.safetensors")
    labels = unique_labels([("run1 · best", a), ("run1 · best", b), ("other", c)])
    assert labels == ["grid_a/run1 · best", "grid_b/run1 · best", "other"]
    assert unique_labels([("same", c), ("same", Path("/tmp/d"))]) == ["same", "same [2]"]


def test_one_entry_per_file_and_never_two_files_under_one_label(tmp_path: Path) -> None:
    registry = ModelRegistry()
    first, second = tmp_path / "a" / "w.safetensors", tmp_path / "b" / "w.safetensors"
    assert registry.register("w", first) == "w"
    assert registry.register("w", tmp_path / "a" / ".." / "a" / "w.safetensors") == "w"
    assert registry.registered() == ["w"]  # the same file again: still one entry
    assert registry.register("w", second) == "b/w"  # both now say where they are
    assert registry.registered() == ["a/w", "b/w"]
    assert [registry.get(label).resolve() for label in registry.registered()] == [
        first.resolve(), second.resolve()]
