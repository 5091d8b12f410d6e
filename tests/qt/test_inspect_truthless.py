"""Inspect without a clean image: even/odd halves (split-frame SNR) and picks (region-pair SNR).

Run under Xvfb: ``xvfb-run -a python -m pytest tests/qt/test_inspect_truthless.py -q``.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import MAX_GAP_S

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from napari_cryoden._qt._models import MODELS  # noqa: E402
from napari_cryoden._qt.inspect_widget import InspectWidget  # noqa: E402
from napari_cryoden.evaluation.region_snr import region_snr_comparison  # noqa: E402
from napari_cryoden.evaluation.split_frame import db, split_frame_snr  # noqa: E402
from napari_cryoden.inference.load import load_denoiser  # noqa: E402

SIZE, PATCH, BOX = 192, 64, 16
MODEL = "general-fast (shipped)"
SCALE, TRANSLATE = np.array([2.0, 2.0]), np.array([10.0, -30.0])


@pytest.fixture(autouse=True)
def _isolated() -> None:
    MODELS.clear()


@cache
def micrograph() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A simulated micrograph's even and odd halves (half dose each), their sum, and the
    particle centres (y, x px) inside the image."""
    from napari_cryoden.simulation.micrographs import simulate_exposure
    from napari_cryoden.simulation.optics import expose
    from napari_cryoden.simulation.params import SimulationParams

    params = SimulationParams(contrast_scale=20.0, dose=40.0)
    rng = np.random.default_rng(0)
    shot = simulate_exposure(params, rng, SIZE)
    even, odd = (expose(shot.truth, params.dose / 2, params, rng) for _ in range(2))
    centres = shot.particle_centres
    inside = np.all((centres > BOX) & (centres < SIZE - BOX), axis=1)
    return even, odd, even + odd, centres[inside]


def make_viewer(make_napari_viewer: Any, names: list[str]) -> tuple[Any, InspectWidget]:
    viewer = make_napari_viewer()
    even, odd, _, _ = micrograph()
    for name in names:
        viewer.add_image(even if "EVN" in name else odd, name=name,
                         scale=SCALE, translate=TRANSLATE)
    widget = InspectWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Inspect")
    widget.patch_size.value = PATCH
    return viewer, widget


def analyse(qtbot: Any, widget: InspectWidget) -> None:
    assert widget.analyse_button.enabled, widget.problem.text()
    with qtbot.waitSignal(widget.analysed, timeout=60_000):
        widget.analyse_button.native.click()


def test_motioncor_halves_of_one_micrograph_are_chosen(make_napari_viewer: Any) -> None:
    _, widget = make_viewer(make_napari_viewer, ["mic_EVN", "mic_ODD"])
    assert (widget.truthless.even.value.name, widget.truthless.odd.value.name) == \
        ("mic_EVN", "mic_ODD")
    assert not widget.analyse_button.enabled  # the model is not guessed: the panel asks for it
    assert "Choose the model" in widget.problem.text() and not widget.problem.isHidden()
    widget.model.value = MODEL
    assert widget.analyse_button.enabled and widget.problem.isHidden()


def test_ambiguous_halves_are_left_for_the_user(make_napari_viewer: Any) -> None:
    viewer, widget = make_viewer(make_napari_viewer, ["a_EVN", "a_ODD", "b_EVN", "b_ODD"])
    assert widget.truthless.even.value is None and widget.truthless.odd.value is None
    assert not widget.analyse_button.enabled
    assert "even and odd halves" in widget.problem.text()  # says what to choose
    widget.model.value = MODEL
    widget.truthless.even.value = viewer.layers["a_EVN"]
    assert "Choose the even and the odd half" in widget.problem.text()
    widget.truthless.odd.value = viewer.layers["a_EVN"]
    assert "both the even and the odd" in widget.problem.text()
    widget.truthless.odd.value = viewer.layers["b_ODD"]
    assert "halves of different micrographs" in widget.problem.text()
    assert not widget.analyse_button.enabled
    viewer.add_image(np.zeros((32, 32), np.float32), name="a_small")
    widget.truthless.odd.value = viewer.layers["a_small"]
    assert "differ in shape" in widget.problem.text() and not widget.analyse_button.enabled
    widget.truthless.odd.value = viewer.layers["a_ODD"]
    assert widget.analyse_button.enabled, widget.problem.text()


def test_halves_give_the_core_split_frame_snr(make_napari_viewer: Any, qtbot: Any) -> None:
    _, widget = make_viewer(make_napari_viewer, ["mic_EVN", "mic_ODD"])
    widget.model.value = MODEL
    analyse(qtbot, widget)
    even, odd, _, _ = micrograph()
    denoiser = load_denoiser(MODELS.get(MODEL))
    expected = split_frame_snr(even, odd, denoiser.denoise(even), denoiser.denoise(odd),
                               patch_size=PATCH)
    panel = widget.truthless
    assert not panel.results.isHidden()
    assert panel.value("raw", "split SNR") == pytest.approx(db(expected.snr_raw_half))
    assert panel.value("model", "split SNR") == pytest.approx(db(expected.snr_denoised))
    assert panel.value("model", "Frank SNR") == pytest.approx(db(expected.snr_denoised_frank))
    assert panel.value("model", "var_B/var_S") == pytest.approx(expected.bias_ratio)
    assert panel.value("Gaussian", "var_B/var_S") > panel.value("model", "var_B/var_S")
    assert panel.value("model", "region SNR") is None  # no picks
    qtbot.waitUntil(lambda: panel.canvas.figure is not None, timeout=30_000)
    assert panel.canvas.figure.axes[0].get_title() == "split-frame SNR"
    chips = [widget.chips.itemAt(i).widget().text() for i in range(widget.chips.count())]
    assert [c.split(" · ")[0][2:] for c in chips] == ["11", "12", "13"]
    assert chips[2].startswith("–")  # region-pair SNR not judged: no picks
    text = widget.summary.text()
    assert "items 1–10 not judged" in text and "13 (needs picks" in text
    assert widget.table.rowCount() == 0 and widget.canvas.figure is None


def test_picks_give_region_pair_snr_beside_the_gaussian(make_napari_viewer: Any,
                                                       qtbot: Any) -> None:
    viewer, widget = make_viewer(make_napari_viewer, ["mic_EVN", "mic_ODD"])
    even, odd, total, centres = micrograph()
    # picks in world coordinates of a Points layer with its own transform
    points_scale, points_shift = np.array([0.5, 0.5]), np.array([4.0, 6.0])
    world = centres * SCALE + TRANSLATE
    viewer.add_points((world - points_shift) / points_scale, name="particles",
                      scale=points_scale, translate=points_shift)
    assert widget.truthless.picks.value.name == "particles"  # the only Points layer
    widget.model.value = MODEL
    widget.truthless.box_size.value = BOX
    analyse(qtbot, widget)
    denoised = widget.truthless.result.denoised_halves
    expected = region_snr_comparison(total, denoised[0] + denoised[1], centres[:, ::-1], BOX)
    panel = widget.truthless
    assert panel.value("raw", "region SNR") == pytest.approx(expected.raw.snr_db, rel=1e-4)
    assert panel.value("model", "region SNR") == pytest.approx(expected.denoised.snr_db,
                                                               rel=1e-4)
    assert panel.value("Gaussian", "region SNR") == pytest.approx(expected.gaussian.snr_db,
                                                                  rel=1e-4)
    assert panel.table.verticalHeaderItem(2).text() == "Gaussian σ=8"
    assert panel.value("model", "var_B/var_S") is not None  # the fidelity measure beside it
    assert f"{len(expected.raw.terms)} box pairs of {BOX} px" in panel.note.text()
    assert widget.chips.itemAt(2).widget().text()[0] in "✓✗"  # item 13 judged


def test_picks_alone_are_never_scored(make_napari_viewer: Any) -> None:
    """Without halves or a clean image there is no fidelity measure: the panel says so."""
    viewer = make_napari_viewer()
    even, _, _, centres = micrograph()
    viewer.add_image(even, name="noisy")
    viewer.add_image(even, name="noisy denoised")
    viewer.add_points(centres, name="particles")
    widget = InspectWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Inspect")
    assert not widget.analyse_button.enabled
    assert "beside a fidelity measure" in widget.problem.text()


def test_a_picks_file_becomes_a_points_layer_on_the_half(make_napari_viewer: Any, qtbot: Any,
                                                        tmp_path: Path) -> None:
    viewer, widget = make_viewer(make_napari_viewer, ["mic_EVN", "mic_ODD"])
    path = tmp_path / "mic.box"
    path.write_text("10 20 16 16\n40 50 16 16\n")  # EMAN corners: centres (18, 28), (48, 58)
    widget.truthless.open_picks_file(path)
    qtbot.waitUntil(lambda: widget.truthless.picks.value is not None, timeout=30_000)
    layer = viewer.layers["mic"]
    assert widget.truthless.picks.value is layer and widget.truthless.box_size.value == 16
    world = np.asarray([layer.data_to_world(p) for p in layer.data])
    assert world == pytest.approx(np.array([[28, 18], [58, 48]]) * SCALE + TRANSLATE)


def test_analyse_with_halves_keeps_the_window_responsive(make_napari_viewer: Any, qtbot: Any,
                                                         ui_gaps: Any) -> None:
    _, widget = make_viewer(make_napari_viewer, ["mic_EVN", "mic_ODD"])
    widget.model.value = MODEL
    analyse(qtbot, widget)  # torch, the model and matplotlib loaded once, as a session would
    with ui_gaps() as gaps, qtbot.waitSignal(widget.truthless.canvas.rendered, timeout=60_000):
        widget.analyse_button.native.click()  # denoise both halves, score, draw the figure
    assert widget.analyse_button.enabled

    assert gaps.longest < MAX_GAP_S, gaps
