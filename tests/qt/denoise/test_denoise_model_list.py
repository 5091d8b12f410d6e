"""The Denoise panel's model list: one entry per weight file, each named for what it is.

Run under Xvfb: ``xvfb-run -a python -m pytest tests/qt/denoise/test_denoise_model_list.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from napari.layers import Image  # noqa: E402

from napari_cryoden._qt._models import MODELS, SHIPPED_LABELS  # noqa: E402
from napari_cryoden._qt.denoise.widget import DenoiseWidget  # noqa: E402
from napari_cryoden.config.sections import Config  # noqa: E402
from napari_cryoden.inference.denoiser import denoise  # noqa: E402
from napari_cryoden.inference.smoothing import FLAT_BACKGROUND, Smoothing, smoothed  # noqa: E402
from napari_cryoden.models.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from napari_cryoden.models.nets import build_model  # noqa: E402

WAIT_MS = 20_000


@pytest.fixture(autouse=True)
def empty_registry() -> Iterator[None]:
    MODELS.clear()
    yield
    MODELS.clear()


def save(path: Path, seed: int, epoch: int, val_loss: float, mode: str = "n2c") -> Path:
    config = Config.from_dict({"train": {"mode": mode}})
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_checkpoint(path, build_model(config.model, seed=seed), config, epoch=epoch,
                           val_loss=val_loss)


@pytest.fixture
def two_runs(tmp_path: Path) -> tuple[Path, Path]:
    """``run1/best.safetensors`` and ``run_n2v/best.safetensors``: the same name, other nets."""
    return (save(tmp_path / "run1" / "best.safetensors", seed=1, epoch=12, val_loss=0.0123),
            save(tmp_path / "run_n2v" / "best.safetensors", seed=2, epoch=3, val_loss=0.5,
                 mode="n2v"))


@pytest.fixture
def panel(make_napari_viewer: Any) -> tuple[Any, DenoiseWidget]:
    rng = np.random.default_rng(0)
    viewer = make_napari_viewer()
    viewer.add_image(rng.normal(1.0, 0.2, (64, 64)).astype(np.float32), name="mic")
    widget = DenoiseWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Denoise")
    return viewer, widget


def open_file(widget: DenoiseWidget, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Click "Open weight file…" and pick ``path`` in the (patched) file dialog."""
    from qtpy.QtWidgets import QFileDialog

    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    widget.open_button.native.click()


def entries(widget: DenoiseWidget) -> list[str]:
    """The Model list's entries, the shipped models left out (they are always there)."""
    combo = widget.model.native
    texts = [combo.itemText(i) for i in range(combo.count())]
    assert [t for t in texts if t in SHIPPED_LABELS] == list(SHIPPED_LABELS)
    return [t for t in texts if t not in SHIPPED_LABELS]


def tooltip(widget: DenoiseWidget, text: str) -> str:
    from qtpy.QtCore import Qt

    combo = widget.model.native
    return str(combo.itemData(combo.findText(text), Qt.ItemDataRole.ToolTipRole))


def choose(widget: DenoiseWidget, text: str) -> None:
    widget.model.native.setCurrentIndex(widget.model.native.findText(text))


def click_denoise(qtbot: Any, widget: DenoiseWidget) -> Image:
    with qtbot.waitSignal(widget.finished, timeout=WAIT_MS) as blocker:
        widget.denoise_button.native.click()
    qtbot.waitUntil(lambda: not widget.busy, timeout=WAIT_MS)
    return blocker.args[0]


def reference(weights: Path, image: np.ndarray,
              smoothing: Smoothing = FLAT_BACKGROUND) -> np.ndarray:
    """What the panel gives with its default rows: the model's output, background flattened."""
    model, checkpoint = load_checkpoint(weights)
    return smoothed(denoise(model, image, normalization=checkpoint.normalization), smoothing,
                    source=image)


def test_two_best_files_of_two_runs_are_two_entries_each_with_its_own_weights(
        panel, qtbot, two_runs, monkeypatch):
    viewer, widget = panel
    first, second = two_runs
    open_file(widget, first, monkeypatch)
    open_file(widget, second, monkeypatch)
    assert entries(widget) == ["run1 · best (seed, epoch 12)", "run_n2v · best (seed, epoch 3)"]
    assert widget.model.native.currentText() == "run_n2v · best (seed, epoch 3)"
    image = viewer.layers["mic"].data
    for text, path in zip(entries(widget), two_runs, strict=True):
        choose(widget, text)
        layer = click_denoise(qtbot, widget)
        np.testing.assert_allclose(layer.data, reference(path, image), atol=1e-6)
    assert not np.allclose(reference(first, image), reference(second, image), atol=1e-3)


def test_tooltips_give_the_path_mode_epoch_and_validation_loss(panel, two_runs, monkeypatch):
    _, widget = panel
    for path in two_runs:
        open_file(widget, path, monkeypatch)
    first = tooltip(widget, "run1 · best (seed, epoch 12)")
    assert str(two_runs[0].resolve()) in first and "validation loss 0.0123" in first
    second = tooltip(widget, "run_n2v · best (seed, epoch 3)")
    assert str(two_runs[1].resolve()) in second and "validation loss 0.5" in second
    assert "Noise2Void" in second and "epoch 3" in second


def test_the_same_file_opened_twice_stays_one_entry(panel, two_runs, monkeypatch):
    _, widget = panel
    first = two_runs[0]
    open_file(widget, first, monkeypatch)
    choose(widget, "general (shipped)")
    open_file(widget, first.parent / ".." / "run1" / "best.safetensors", monkeypatch)
    assert entries(widget) == ["run1 · best (seed, epoch 12)"]
    assert widget.model.native.currentText() == "run1 · best (seed, epoch 12)"


def test_two_runs_with_the_same_folder_name_get_their_parent_folder(panel, tmp_path,
                                                                    monkeypatch):
    _, widget = panel
    a = save(tmp_path / "grid_a" / "run1" / "best.safetensors", seed=1, epoch=4, val_loss=0.1)
    b = save(tmp_path / "grid_b" / "run1" / "best.safetensors", seed=2, epoch=4, val_loss=0.2)
    open_file(widget, a, monkeypatch)
    open_file(widget, b, monkeypatch)
    labels = entries(widget)
    assert labels == ["grid_a/run1 · best (seed, epoch 4)", "grid_b/run1 · best (seed, epoch 4)"]
    assert [MODELS.get(label) for label in labels] == [a, b]


@pytest.mark.parametrize(("content", "reason"), [
    (b"pixel size 1.06\nthis is a text file\n", "it looks like a text file"),
    (np.random.default_rng(3).bytes(4096), "no header length that fits in its 4,096 bytes"),
    (b"\x80\x04 a pickle renamed", "looks like a pickle"),
])
def test_a_file_that_is_not_a_weight_file_is_refused_in_the_panel(
        panel, two_runs, tmp_path, monkeypatch, content, reason):
    _, widget = panel
    open_file(widget, two_runs[0], monkeypatch)
    before, selected = entries(widget), widget.model.value
    bad = tmp_path / "notes.safetensors"
    bad.write_bytes(content)
    open_file(widget, bad, monkeypatch)
    shown = widget.status.value
    assert shown.startswith("Not added: ") and str(bad) in shown and reason in shown
    assert "\n" not in shown and "not a safetensors weight file" in shown
    assert entries(widget) == before and widget.model.value == selected == two_runs[0]


def test_a_training_run_s_model_is_listed_not_chosen_and_loses_training_at_the_end(
        panel, tmp_path):
    _, widget = panel
    best = save(tmp_path / "run" / "best.safetensors", seed=1, epoch=1, val_loss=0.3)
    MODELS.add_training(best)  # as the Train widget does at a new best epoch
    assert entries(widget)[0] == "run · best (seed, training)"
    assert widget.model.native.currentText() == "general (shipped)"  # not switched for you
    choose(widget, "run · best (seed, training)")  # the user chooses it mid-run
    save(best, seed=2, epoch=2, val_loss=0.2)
    MODELS.add_training(best)  # the next best epoch re-writes the file
    assert "epoch 2" in tooltip(widget, "run · best (seed, training)")
    MODELS.end_training(best)  # as the Train widget does when the run ends
    assert entries(widget) == ["run · best (seed, epoch 2)"]
    assert widget.model.native.currentText() == "run · best (seed, epoch 2)"
    assert widget.model.value == best
