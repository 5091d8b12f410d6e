"""*Fit to these micrographs* in the Denoise panel, driven as a user would.

A small noisy micrograph (smooth blobs under strong noise, noisier than what ``general-fast-v1``
learned from), ``general-fast-v1`` (a fixed start) chosen as the start, device cpu, a time box
of seconds.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from qtpy.QtCore import Qt  # noqa: E402
from scipy.ndimage import gaussian_filter  # noqa: E402

from napari_cryoden._qt._models import MODELS  # noqa: E402
from napari_cryoden._qt.denoise import fit_work  # noqa: E402
from napari_cryoden._qt.denoise.widget import DenoiseWidget  # noqa: E402

WAIT_MS = 60_000
MAX_GAP_S = 0.1  # as tests/conftest.py
STOP_S = 0.5


@pytest.fixture(autouse=True)
def setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # where layers' fits go
    # small patches and a brisk learning rate: a 2 s fit on a 256² micrograph learns something
    monkeypatch.setattr(fit_work, "OPTIONS", {"patch_size": 32, "lr": 2e-3})
    MODELS.clear()
    yield
    MODELS.clear()


def micrograph(seed: int = 0, size: int = 256, noise: float = 0.6) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    truth = gaussian_filter(rng.random((size, size)), 3.0)
    truth = (0.3 + 0.5 * (truth - truth.min()) / np.ptp(truth)).astype(np.float32)
    return tuple((truth + rng.normal(0, noise, truth.shape)).astype(np.float32)
                 for _ in range(3))


def open_fit(make_napari_viewer, qtbot, layers: dict[str, np.ndarray], seconds: float = 2.0):
    """The Denoise panel with general-fast-v1 on cpu, the Fit section expanded, the time box set."""
    viewer = make_napari_viewer()
    for name, data in layers.items():
        viewer.add_image(data, name=name)
    panel = DenoiseWidget(viewer)
    viewer.window.add_dock_widget(panel, name="Denoise")
    start = panel.model.native.findText("general-fast-v1 (shipped, first release)")
    panel.model.native.setCurrentIndex(start)
    panel.device.value = "cpu"
    fit = panel.fit
    qtbot.mouseClick(fit.section._toggle_btn, Qt.MouseButton.LeftButton)
    fit.seconds.value = seconds
    qtbot.waitUntil(lambda: fit.ready, timeout=WAIT_MS)  # the user reads the section first
    return viewer, panel, fit


def click_fit(qtbot, fit) -> None:
    qtbot.mouseClick(fit.fit_button.native, Qt.MouseButton.LeftButton)


def test_fit_adds_the_adapted_model_selects_it_and_reports(make_napari_viewer, qtbot, ui_gaps,
                                                           tmp_path):
    noisy, _, _ = micrograph()
    viewer, panel, fit = open_fit(make_napari_viewer, qtbot, {"mic": noisy})
    assert fit.micrographs.value.startswith("mic")
    assert fit.even.value is None and fit.odd.value is None  # no halves by name: blind spot
    with ui_gaps() as gaps:
        with qtbot.waitSignal(fit.finished, timeout=WAIT_MS) as done:
            click_fit(qtbot, fit)
            assert fit.fit_button.text == "Stop"
        qtbot.waitUntil(lambda: not fit.busy, timeout=WAIT_MS)
    assert gaps.longest < MAX_GAP_S, gaps
    report = done.args[0]
    assert not report["kept_start"] and report["held_out_loss_after"] < report[
        "held_out_loss_before"]
    label = "adapted · mic (from general-fast-v1)"
    assert label in MODELS.registered()
    saved = tmp_path / "cache" / "napari-cryoden" / "adapted" / "mic_adapted.safetensors"
    assert saved.is_file() and panel.model.value == saved
    assert panel.model.native.currentText() == label
    text = fit.report.value.replace("\u200b", "")  # wrap points in long paths
    assert f"{report['held_out_loss_before']:.4g} before" in text and "Kept start: no" in text
    assert str(saved) in text and fit.fit_button.text == "Fit"


def test_stop_ends_the_fit_within_half_a_second_keeping_the_best(make_napari_viewer, qtbot):
    noisy, _, _ = micrograph(1)
    viewer, panel, fit = open_fit(make_napari_viewer, qtbot, {"mic": noisy}, seconds=120)
    click_fit(qtbot, fit)
    shown = fit.progress.native.format
    qtbot.waitUntil(lambda: "steps" in shown() and "held-out loss" in shown(), timeout=WAIT_MS)
    assert " s left" in shown() and fit.progress.value < fit.progress.max
    t0 = time.perf_counter()
    click_fit(qtbot, fit)  # the button reads Stop
    qtbot.waitUntil(lambda: not fit.busy, timeout=WAIT_MS)
    assert time.perf_counter() - t0 < STOP_S
    assert fit.fit_button.text == "Fit" and "Held-out loss" in fit.report.value


def test_a_fit_that_does_not_help_keeps_the_start_and_says_so(make_napari_viewer, qtbot,
                                                              monkeypatch):
    monkeypatch.setattr(fit_work, "OPTIONS", {"patch_size": 32, "lr": 1e4})  # it diverges
    noisy, _, _ = micrograph(2)
    viewer, panel, fit = open_fit(make_napari_viewer, qtbot, {"mic": noisy})
    start = panel.model.value
    with qtbot.waitSignal(fit.finished, timeout=WAIT_MS) as done:
        click_fit(qtbot, fit)
    qtbot.waitUntil(lambda: not fit.busy, timeout=WAIT_MS)
    assert done.args[0]["kept_start"]
    assert "Kept start: yes" in fit.report.value
    assert "did not beat the starting model on held-out patches; kept it" in fit.report.value
    assert MODELS.registered() == [] and panel.model.value == start


def test_halves_named_like_motioncor_are_used_and_split_frame_snr_reported(
        make_napari_viewer, qtbot):
    noisy, even, odd = micrograph(3, noise=0.15)
    viewer, panel, fit = open_fit(make_napari_viewer, qtbot,
                                  {"mic": noisy, "mic_EVN": even, "mic_ODD": odd})
    panel.image.value = viewer.layers["mic"]
    assert fit.even.value is viewer.layers["mic_EVN"]
    assert fit.odd.value is viewer.layers["mic_ODD"]
    with qtbot.waitSignal(fit.finished, timeout=WAIT_MS) as done:
        click_fit(qtbot, fit)
    qtbot.waitUntil(lambda: not fit.busy, timeout=WAIT_MS)
    snr = done.args[0]["split_frame_snr"]
    assert done.args[0]["mode"] == "n2n" and snr is not None
    assert f"{snr['before_db']:.2f} dB before, {snr['after_db']:.2f} dB after" in \
        fit.report.value
    caution = "Caution: Noise2Noise learned from one half at a time"
    assert (caution in fit.report.value) == (not done.args[0]["kept_start"])


def test_halves_of_another_micrograph_are_not_guessed(make_napari_viewer, qtbot):
    noisy, even, odd = micrograph(4, size=64)
    viewer, panel, fit = open_fit(make_napari_viewer, qtbot,
                                  {"mic": noisy, "other_EVN": even, "other_ODD": odd})
    panel.image.value = viewer.layers["mic"]
    assert fit.even.value is None and fit.odd.value is None


def test_without_an_image_fit_says_why_in_one_line(make_napari_viewer, qtbot):
    viewer, panel, fit = open_fit(make_napari_viewer, qtbot, {})
    click_fit(qtbot, fit)
    assert not fit.busy and fit.fit_button.text == "Fit"
    assert fit.status.value.startswith("Cannot fit: No micrograph")
    assert "\n" not in fit.status.value


def test_a_blind_spot_fit_on_noise_that_pixels_share_says_to_give_halves(make_napari_viewer,
                                                                         qtbot):
    noisy, _, _ = micrograph(5)
    noise = gaussian_filter(np.random.default_rng(5).normal(0, 1, noisy.shape), 0.8)
    shared = (gaussian_filter(noisy, 3.0) + 0.3 * noise / noise.std()).astype(np.float32)
    viewer, panel, fit = open_fit(make_napari_viewer, qtbot, {"mic": shared})
    start = panel.model.value
    with qtbot.waitSignal(fit.finished, timeout=WAIT_MS) as done:
        click_fit(qtbot, fit)
    qtbot.waitUntil(lambda: not fit.busy, timeout=WAIT_MS)
    assert done.args[0] is None and fit.fit_button.text == "Fit"
    assert fit.status.value.startswith("Cannot fit: mic: its noise is shared")
    assert "even/odd" in fit.status.value and "\n" not in fit.status.value
    assert MODELS.registered() == [] and panel.model.value == start
