"""The Denoise panel's working pixel size, driven as a user would (issue 16, scale awareness).

A user bins a run under Advanced › Working pixel size and gets a result of the input's shape;
a micrograph whose header records no pixel size is not denoised at a guessed scale: with a model
that records its training range, the panel asks for the pixel size and runs only once given.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import mrcfile
import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from napari.layers import Image  # noqa: E402

from napari_cryoden._qt._models import MODELS  # noqa: E402
from napari_cryoden._qt.denoise.scale import BIN, RECORDED, layer_pixel_size  # noqa: E402
from napari_cryoden._qt.denoise.widget import DenoiseWidget  # noqa: E402
from napari_cryoden._reader import read_mrc  # noqa: E402
from napari_cryoden.config.sections import Config  # noqa: E402
from napari_cryoden.inference.load import load_denoiser  # noqa: E402
from napari_cryoden.inference.scale import denoise_binned  # noqa: E402
from napari_cryoden.inference.smoothing import FLAT_BACKGROUND  # noqa: E402
from napari_cryoden.models.checkpoint import save_checkpoint  # noqa: E402
from napari_cryoden.models.nets import build_model  # noqa: E402
from napari_cryoden.models.pretrained import shipped_path  # noqa: E402

WAIT_MS = 30_000


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model without a recorded range (as every file written before the field existed)."""
    config = Config()
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    return save_checkpoint(path, build_model(config.model, seed=0), config, epoch=1)


@pytest.fixture(autouse=True)
def empty_registry() -> Iterator[None]:
    MODELS.clear()
    yield
    MODELS.clear()


@pytest.fixture
def micrograph() -> np.ndarray:
    return np.random.default_rng(0).normal(1.0, 0.3, (97, 130)).astype(np.float32)


def panel(make_napari_viewer, image: np.ndarray, model: Path, **layer: object):
    viewer = make_napari_viewer()
    viewer.add_image(image, name="mic", **layer)
    if model.parent != shipped_path().parent:
        MODELS.register("tiny", model)  # as Train or Open weight file… do
    widget = DenoiseWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Denoise")
    widget.model.value = model
    widget.device.value = "cpu"
    return viewer, widget


def shown(row) -> bool:
    """Whether the panel shows the row (the test's window itself is not on screen)."""
    return not row.native.isHidden()


def click_denoise(qtbot, widget: DenoiseWidget) -> Image:
    done: list[Image] = []
    widget.finished.connect(done.append)
    widget.denoise_button.native.click()
    qtbot.waitUntil(lambda: bool(done) and not widget.busy, timeout=WAIT_MS)
    widget.finished.disconnect(done.append)
    return done[0]


def test_binning_by_2_gives_a_result_of_the_input_shape(make_napari_viewer, qtbot, weights,
                                                        micrograph) -> None:
    viewer, widget = panel(make_napari_viewer, micrograph, weights, scale=(1.5, 1.5))
    assert not shown(widget.pixel_size)  # the scale says 1.5 Å: nothing to ask
    widget.advanced_section.expand(animate=False)
    widget.scale_choice.value = BIN
    assert shown(widget.scale_value) and widget.scale_value.label == "Bin factor"
    widget.scale_value.value = 2.0
    layer = click_denoise(qtbot, widget)
    assert layer.data.shape == micrograph.shape
    np.testing.assert_allclose(layer.scale, (1.5, 1.5))
    expected = denoise_binned(load_denoiser(weights, "cpu").denoise, micrograph, 2.0,
                              smooth=FLAT_BACKGROUND)  # the default look, after unbinning
    np.testing.assert_allclose(layer.data, expected, atol=1e-5)
    assert "at 3 Å/px (binned ×2 from 1.5 Å/px)" in widget.status.value
    assert layer.metadata["working_pixel_size"] == 3.0 and layer.metadata["bin_factor"] == 2.0


def test_an_unknown_pixel_size_is_asked_for_not_guessed(make_napari_viewer, qtbot,
                                                        micrograph) -> None:
    viewer, widget = panel(make_napari_viewer, micrograph, shipped_path("general-fast"))
    assert shown(widget.pixel_size) and widget.pixel_size.native.text() == "unknown"  # scale 1
    widget.denoise_button.native.click()
    assert not widget.busy and "mic denoised" not in viewer.layers
    assert "'mic' records no pixel size: enter it under Pixel size (Å)" in widget.status.value
    assert "1–2.5 Å" in widget.status.value
    widget.pixel_size.value = 0.5  # the user fills the field
    layer = click_denoise(qtbot, widget)
    assert layer.data.shape == micrograph.shape
    assert "at 1 Å/px (binned ×2 from 0.5 Å/px)" in widget.status.value
    assert layer.metadata["pixel_size"] == 0.5


def test_as_recorded_runs_without_a_pixel_size_and_says_so(make_napari_viewer, qtbot,
                                                           micrograph) -> None:
    viewer, widget = panel(make_napari_viewer, micrograph, shipped_path("general-fast"))
    widget.scale_choice.value = RECORDED
    layer = click_denoise(qtbot, widget)
    assert layer.data.shape == micrograph.shape
    assert "at the recorded sampling (pixel size unknown)" in widget.status.value


def test_the_pixel_size_comes_from_the_header_the_reader_read(tmp_path: Path) -> None:
    for name, size, expected in (("known", 0.83, 0.83), ("one", 1.0, 1.0), ("none", 0.0, None)):
        path = tmp_path / f"{name}.mrc"
        with mrcfile.new(path) as mrc:
            mrc.set_data(np.zeros((8, 8), np.float32))
            mrc.voxel_size = size
        data, kwargs, _ = read_mrc(path)[0]
        found = layer_pixel_size(Image(data, **kwargs))
        assert found == (pytest.approx(expected) if expected else None), name
    assert layer_pixel_size(Image(np.zeros((8, 8)))) is None  # another reader, scale 1
    assert layer_pixel_size(Image(np.zeros((8, 8)), scale=(1.2, 1.2))) == 1.2


def test_denoise_files_on_disk_follows_the_bin_choice(make_napari_viewer, qtbot, weights,
                                                     tmp_path: Path) -> None:
    from qtpy.QtCore import Qt

    from napari_cryoden.cli.main import main

    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a", "b"):
        with mrcfile.new(folder / f"{name}.mrc") as mrc:
            mrc.set_data(np.random.default_rng(1).normal(size=(64, 90)).astype(np.float32))
            mrc.voxel_size = 1.2
    viewer, widget = panel(make_napari_viewer, np.zeros((8, 8), np.float32), weights)
    widget.scale_choice.value = BIN
    widget.scale_value.value = 2.0
    section = widget.folder
    qtbot.mouseClick(section.section._toggle_btn, Qt.MouseButton.LeftButton)
    section.inputs.line_edit.value = str(folder)
    with qtbot.waitSignal(section.finished, timeout=WAIT_MS) as blocker:
        section.start_button.native.click()
    assert [r.status for r in blocker.args[0]] == ["done", "done"]
    assert section.status.value.endswith(", at 2.4 Å/px (binned ×2 from 1.2 Å/px)")
    assert main(["denoise", str(weights), str(folder / "a.mrc"), "--out", str(tmp_path / "cli"),
                 "--device", "cpu", "--bin", "2"]) == 0
    np.testing.assert_array_equal(mrcfile.read(folder / "denoised" / "a.mrc"),
                                  mrcfile.read(tmp_path / "cli" / "a.mrc"))
