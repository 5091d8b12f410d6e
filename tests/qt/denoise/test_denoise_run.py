"""A Denoise run as the user watches it: loading, a percentage with the time left, Cancel.

The shipped ``general`` model on a 2048² micrograph on the CPU: long enough (121 tiles) to
cancel mid-run, and the case where a user most wants to.
"""

from __future__ import annotations

import re
import time

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from napari_cryoden._qt.denoise.progress import LOADING  # noqa: E402
from napari_cryoden._qt.denoise.widget import DenoiseWidget  # noqa: E402
from napari_cryoden.models.pretrained import shipped_path  # noqa: E402

WAIT_MS = 60_000
CANCEL_S = 0.5
ETA = re.compile(r"^\d+ % · ~\d+ s left$")


def setup(make_napari_viewer):
    viewer = make_napari_viewer()
    image = np.random.default_rng(0).normal(1.0, 0.3, (2048, 2048)).astype(np.float32)
    viewer.add_image(image, name="mic", scale=(1.06, 1.06))  # in the model's range: no binning
    widget = DenoiseWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Denoise")
    widget.model.value = shipped_path("general")
    widget.device.value = "cpu"
    return viewer, widget


def bar_text(widget: DenoiseWidget) -> str:
    return widget.progress.native.text()


def start_and_wait_for_tiles(qtbot, widget: DenoiseWidget) -> None:
    widget.denoise_button.native.click()
    assert widget.busy and widget.denoise_button.text == "Cancel"
    qtbot.waitUntil(lambda: widget.progress.value >= 2, timeout=WAIT_MS)


def test_progress_shows_loading_then_a_percentage_with_the_time_left(make_napari_viewer, qtbot):
    viewer, widget = setup(make_napari_viewer)
    widget.denoise_button.native.click()
    assert bar_text(widget) == LOADING  # not a silent 0 %
    qtbot.waitUntil(lambda: ETA.match(bar_text(widget)) is not None, timeout=WAIT_MS)
    widget.cancel()
    qtbot.waitUntil(lambda: not widget.busy, timeout=WAIT_MS)


def test_cancel_stops_within_half_a_second_and_adds_nothing(make_napari_viewer, qtbot):
    viewer, widget = setup(make_napari_viewer)
    start_and_wait_for_tiles(qtbot, widget)
    clicked = time.perf_counter()
    widget.denoise_button.native.click()  # the button reads Cancel now
    qtbot.waitUntil(lambda: not widget.busy, timeout=WAIT_MS)
    latency = time.perf_counter() - clicked
    print(f"cancel latency {latency:.3f} s")
    assert latency < CANCEL_S, f"cancel took {latency:.2f} s"
    assert "mic denoised" not in viewer.layers
    assert widget.status.value.startswith("Cancelled")
    assert widget.denoise_button.enabled and widget.denoise_button.text == "Denoise"
    qtbot.wait(300)  # nothing arrives late either
    assert "mic denoised" not in viewer.layers


def test_removing_the_input_layer_cancels_its_run(make_napari_viewer, qtbot):
    viewer, widget = setup(make_napari_viewer)
    start_and_wait_for_tiles(qtbot, widget)
    viewer.layers.remove("mic")  # the cancel is asked for inside; napari's own teardown of the
    removed = time.perf_counter()  # layer (up to 0.5 s on a loaded CI machine) is not ours
    qtbot.waitUntil(lambda: not widget.busy, timeout=WAIT_MS)
    assert time.perf_counter() - removed < CANCEL_S
    assert "mic denoised" not in viewer.layers and widget.denoise_button.text == "Denoise"
