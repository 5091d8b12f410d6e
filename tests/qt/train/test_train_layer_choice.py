"""The Train widget picks layers only from unambiguous evidence and refuses bad pairs in the panel.

Run under Xvfb: ``xvfb-run -a python -m pytest tests/qt/train/test_train_layer_choice.py -q``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from qtpy.QtCore import Qt  # noqa: E402

from napari_cryoden._qt._models import MODELS  # noqa: E402
from napari_cryoden._qt.train.widget import TrainWidget  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    MODELS.clear()


def open_train(make_napari_viewer: Any, names: list[str], mode: str = "n2c",
               shapes: dict[str, tuple[int, int]] | None = None) -> tuple[Any, TrainWidget]:
    """A viewer with one Image layer per name, the Train panel docked, ``mode`` picked."""
    viewer = make_napari_viewer()
    rng = np.random.default_rng(0)
    for name in names:
        viewer.add_image(rng.random((shapes or {}).get(name, (64, 64))).astype(np.float32),
                         name=name)
    widget = TrainWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Train")
    widget.form.widget("train.mode").value = mode  # as a user picks it
    return viewer, widget


def chosen(widget: TrainWidget) -> tuple[str | None, str | None]:
    layers = widget.data.noisy_layer.value, widget.data.clean_layer.value
    return tuple(None if layer is None else layer.name for layer in layers)  # type: ignore


def refused(widget: TrainWidget, *words: str) -> bool:
    """The red reason is shown under the data rows and Start cannot be pressed."""
    problem = widget.data.problem.native
    return (not problem.isHidden() and all(w in problem.text() for w in words)
            and not widget.start_button.isEnabled())


def test_motioncor_halves_pair_even_and_odd_of_the_same_micrograph(make_napari_viewer):
    names = ["noisy (simulated)", "clean (simulated)", "mic07_ODD", "mic07_EVN"]
    _, widget = open_train(make_napari_viewer, names, "n2n")
    assert chosen(widget) == ("mic07_EVN", "mic07_ODD")
    assert widget.start_button.isEnabled() and widget.data.problem.native.isHidden()


def test_halves_of_two_micrographs_are_left_for_the_user(make_napari_viewer, qtbot):
    viewer, widget = open_train(make_napari_viewer,
                                ["a_EVN", "a_ODD", "b_even", "b_odd"], "n2n")
    assert chosen(widget) == (None, None)
    assert refused(widget, "Choose the even and the odd layer")
    widget.data.noisy_layer.value = viewer.layers["b_even"]  # the user picks one half ...
    assert chosen(widget) == ("b_even", "b_odd")  # ... its partner follows by name
    assert widget.start_button.isEnabled()
    widget.data.clean_layer.value = viewer.layers["a_ODD"]
    assert refused(widget, "'b_even'", "'a_ODD'", "different micrographs")
    qtbot.mouseClick(widget.start_button, Qt.MouseButton.LeftButton)
    assert widget.worker is None


def test_noisy_and_clean_are_never_guessed_as_even_and_odd(make_napari_viewer):
    _, widget = open_train(make_napari_viewer, ["noisy (simulated)", "clean (simulated)"])
    assert chosen(widget) == ("noisy (simulated)", "clean (simulated)")
    widget.form.widget("train.mode").value = "n2n"
    assert chosen(widget) == (None, None)
    assert refused(widget, "even", "odd")
    widget.form.widget("train.mode").value = "n2v"
    assert chosen(widget)[0] == "noisy (simulated)" and widget.start_button.isEnabled()


@pytest.mark.parametrize("names", [["a", "b"],  # no names to go by
                                   ["mic1 noisy", "mic2 noisy", "mic1 clean", "mic2 clean"]])
def test_no_guess_without_one_pair_by_name(make_napari_viewer, names):
    _, widget = open_train(make_napari_viewer, names)
    assert chosen(widget) == (None, None)
    assert refused(widget, "Choose the noisy and the clean layer")


def test_one_pair_named_alike_is_picked_among_several(make_napari_viewer):
    names = ["mic1 noisy", "mic2 noisy", "mic2 clean"]
    _, widget = open_train(make_napari_viewer, names)
    assert chosen(widget) == ("mic2 noisy", "mic2 clean")


def test_a_shape_mismatch_is_no_pair(make_napari_viewer):
    _, widget = open_train(make_napari_viewer, ["noisy", "clean"],
                           shapes={"clean": (64, 80)})
    assert chosen(widget) == (None, None)


def test_the_same_layer_twice_is_refused_in_the_panel(make_napari_viewer, qtbot):
    viewer, widget = open_train(make_napari_viewer, ["noisy", "clean"])
    widget.data.clean_layer.value = viewer.layers["noisy"]
    assert refused(widget, "'noisy'", "both the noisy and the clean layer")
    qtbot.mouseClick(widget.start_button, Qt.MouseButton.LeftButton)
    assert widget.worker is None and not widget.is_running
    assert widget.start() is False  # also refused when called directly
    widget.form.widget("train.mode").value = "n2n"
    widget.data.noisy_layer.value = widget.data.clean_layer.value = viewer.layers["clean"]
    assert refused(widget, "'clean'", "both the even and the odd layer")
