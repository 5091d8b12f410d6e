"""The Browse panel, driven as a user would: open a folder or STAR file, step, pick, denoise.

Run under Xvfb: ``xvfb-run -a python -m pytest tests/qt/test_browse.py -q``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from napari.layers import Image, Points  # noqa: E402

from napari_cryoden._qt._models import MODELS  # noqa: E402
from napari_cryoden._qt.browse import BrowseWidget  # noqa: E402
from napari_cryoden.io.images import read_image, write_mrc  # noqa: E402
from napari_cryoden.models.pretrained import shipped_path  # noqa: E402

WAIT_MS = 30_000
HOT = 5000.0  # a hot pixel's value, ~100x the micrographs' range


@pytest.fixture(autouse=True)
def _isolated() -> None:
    MODELS.clear()


def micrograph(seed: int, shape: tuple[int, int]) -> np.ndarray:
    rng = np.random.default_rng(seed)
    data = (10.0 * (seed + 1) + rng.normal(0, 3, shape)).astype(np.float32)
    data[rng.integers(0, shape[0], 5), rng.integers(0, shape[1], 5)] = HOT  # hot pixels
    return data


def write_folder(folder: Path, n: int = 3) -> list[Path]:
    """``n`` micrographs of different sizes and pixel sizes, with hot pixels."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        paths.append(folder / f"mic_{i}.mrc")
        write_mrc(paths[-1], micrograph(i, (96 + 16 * (i % 2), 128)), 1.0 + 0.25 * i)
    return paths


def write_box(path: Path, xy: list[tuple[float, float]], box: int = 20) -> Path:
    path.write_text("".join(f"{x - box / 2:.1f}\t{y - box / 2:.1f}\t{box}\t{box}\n"
                            for x, y in xy))
    return path


def opened(qtbot: Any, make_napari_viewer: Any, source: Path,
           project: Path | None = None) -> tuple[Any, BrowseWidget]:
    viewer = make_napari_viewer()
    widget = BrowseWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Browse")
    widget.open(source, project)
    qtbot.waitUntil(lambda: widget.layer is not None, timeout=WAIT_MS)
    return viewer, widget


def test_a_folder_is_listed_and_stepped_through_one_layer(make_napari_viewer: Any, qtbot: Any,
                                                          tmp_path: Path) -> None:
    paths = write_folder(tmp_path / "mics")
    viewer, widget = opened(qtbot, make_napari_viewer, tmp_path / "mics")
    assert [widget.list.item(i).text() for i in range(widget.list.count())] == [
        "mic_0.mrc", "mic_1.mrc", "mic_2.mrc"]
    layer = widget.layer
    assert layer.name == "mic_0" and layer.data.shape == (96, 128)
    assert tuple(layer.scale) == (1.0, 1.0)
    low, high = layer.contrast_limits
    assert high < 100 < HOT, "hot pixels set the contrast: the micrograph would look black"
    assert not widget.previous_button.enabled and widget.next_button.enabled
    widget.next_button.native.click()
    qtbot.waitUntil(lambda: widget.layer.name == "mic_1", timeout=WAIT_MS)
    images = [lay for lay in viewer.layers if isinstance(lay, Image)]
    assert images == [layer], "one layer, its data replaced"
    assert layer.data.shape == (112, 128) and tuple(layer.scale) == (1.25, 1.25)
    np.testing.assert_array_equal(layer.data, read_image(paths[1])[0])
    assert layer.contrast_limits[0] > high - 10, "contrast of this micrograph, not the last"
    assert "2/3 · mic_1.mrc · 128×112 px, 1.25 Å/px" in widget.status.value
    widget.list.setCurrentRow(2)  # a click in the list
    qtbot.waitUntil(lambda: widget.layer.name == "mic_2", timeout=WAIT_MS)
    assert not widget.next_button.enabled and widget.previous_button.enabled
    widget.previous_button.native.click()
    qtbot.waitUntil(lambda: widget.layer.name == "mic_1", timeout=WAIT_MS)


def test_only_the_last_micrograph_asked_for_is_shown(make_napari_viewer: Any, qtbot: Any,
                                                     tmp_path: Path) -> None:
    write_folder(tmp_path / "mics", n=4)
    _, widget = opened(qtbot, make_napari_viewer, tmp_path / "mics")
    for row in (1, 2, 3, 1):  # quicker than the files are read
        widget.list.setCurrentRow(row)
    qtbot.wait(1000)
    qtbot.waitUntil(lambda: widget.layer.name == "mic_1", timeout=WAIT_MS)
    qtbot.wait(500)
    assert widget.layer.name == "mic_1" and widget.current == 1


def test_a_relion_star_file_lists_its_micrographs_under_the_project(
        make_napari_viewer: Any, qtbot: Any, tmp_path: Path) -> None:
    project = tmp_path / "proj"
    write_folder(project / "MotionCorr/job002/Movies", n=2)
    star = project / "CtfFind/job003/micrographs_ctf.star"
    star.parent.mkdir(parents=True)
    star.write_text("data_micrographs\nloop_\n_rlnMicrographName #1\n_rlnDefocusU #2\n"
                    "MotionCorr/job002/Movies/mic_1.mrc 12000.0\n"
                    "MotionCorr/job002/Movies/mic_0.mrc 15000.0\n")
    _, widget = opened(qtbot, make_napari_viewer, star)
    assert [widget.list.item(i).text() for i in range(2)] == [
        "MotionCorr/job002/Movies/mic_1.mrc", "MotionCorr/job002/Movies/mic_0.mrc"]
    assert widget.layer.name == "mic_1"
    assert widget.dataset is not None and widget.dataset.project == project.resolve()


def test_a_bad_source_is_one_line_and_keeps_the_list(make_napari_viewer: Any, qtbot: Any,
                                                     tmp_path: Path) -> None:
    write_folder(tmp_path / "mics", n=2)
    _, widget = opened(qtbot, make_napari_viewer, tmp_path / "mics")
    (tmp_path / "empty").mkdir()
    widget.source.line_edit.value = str(tmp_path / "empty")  # typed, or chosen in the dialog
    qtbot.waitUntil(lambda: "no micrographs found" in widget.status.value, timeout=WAIT_MS)
    assert "\n" not in widget.status.value and str(tmp_path / "empty") in widget.status.value
    assert widget.list.count() == 2 and widget.layer.name == "mic_0"


def test_picks_follow_the_micrograph_shown(make_napari_viewer: Any, qtbot: Any,
                                           tmp_path: Path) -> None:
    write_folder(tmp_path / "mics")
    picks = tmp_path / "picks"
    picks.mkdir()
    write_box(picks / "mic_0.box", [(30.0, 40.0), (60.0, 50.0), (100.0, 20.0)])
    write_box(picks / "mic_2.box", [(10.0, 70.0)])
    viewer, widget = opened(qtbot, make_napari_viewer, tmp_path / "mics")
    widget.picks_file.line_edit.value = str(picks)
    qtbot.waitUntil(lambda: widget.points is not None, timeout=WAIT_MS)
    points = widget.points
    assert isinstance(points, Points) and points.name == "mic_0 picks"
    np.testing.assert_allclose(points.data, [[40, 30], [50, 60], [20, 100]])  # (row, col)
    assert "4 picks on 2 of the 3 micrographs" in widget.status.value
    widget.next_button.native.click()  # mic_1 has none
    qtbot.waitUntil(lambda: widget.layer.name == "mic_1", timeout=WAIT_MS)
    assert len(points.data) == 0 and "no picks" in widget.status.value
    widget.next_button.native.click()
    qtbot.waitUntil(lambda: widget.layer.name == "mic_2", timeout=WAIT_MS)
    assert points.name == "mic_2 picks" and len(points.data) == 1
    assert tuple(points.scale) == tuple(widget.layer.scale) == (1.5, 1.5)
    assert [lay for lay in viewer.layers if isinstance(lay, Points)] == [points]


def test_denoise_this_and_all_go_through_the_denoise_panel(make_napari_viewer: Any, qtbot: Any,
                                                           tmp_path: Path) -> None:
    write_folder(tmp_path / "mics", n=2)
    viewer, widget = opened(qtbot, make_napari_viewer, tmp_path / "mics")
    panel = widget._denoise_panel()
    panel.model.value = shipped_path("general-fast")
    widget.denoise_button.native.click()
    qtbot.waitUntil(lambda: "mic_0 denoised" in viewer.layers, timeout=60_000)
    assert viewer.layers["mic_0 denoised"].data.shape == (96, 128)
    assert widget.denoised is viewer.layers["mic_0 denoised"]
    assert "not saved" in widget.status.value
    widget.next_button.native.click()  # moving on closes the unsaved result
    qtbot.waitUntil(lambda: widget.layer.name == "mic_1", timeout=WAIT_MS)
    assert "mic_0 denoised" not in viewer.layers
    panel.folder.output.line_edit.value = str(tmp_path / "out")
    widget.all_button.native.click()
    qtbot.waitUntil(lambda: panel.folder.worker is None and len(panel.folder.results) == 2,
                    timeout=120_000)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["mic_0.mrc", "mic_1.mrc"]
    qtbot.waitUntil(lambda: "mic_1 denoised" in viewer.layers, timeout=WAIT_MS)
    np.testing.assert_array_equal(viewer.layers["mic_1 denoised"].data,
                                  read_image(tmp_path / "out/mic_1.mrc")[0])
    widget.previous_button.native.click()  # a written result is shown beside its micrograph
    qtbot.waitUntil(lambda: "mic_0 denoised" in viewer.layers, timeout=WAIT_MS)
    assert "mic_1 denoised" not in viewer.layers


def test_stepping_keeps_the_window_responsive(make_napari_viewer: Any, qtbot: Any,
                                              tmp_path: Path, ui_gaps: Any) -> None:
    folder = tmp_path / "big"
    folder.mkdir()
    for i in range(3):
        write_mrc(folder / f"m{i}.mrc", micrograph(i, (2048, 2048)), 1.0)
    _, widget = opened(qtbot, make_napari_viewer, folder)
    qtbot.wait(300)
    with ui_gaps() as gaps:
        for name in ("m1", "m2"):
            widget.next_button.native.click()
            qtbot.waitUntil(lambda name=name: widget.layer.name == name, timeout=WAIT_MS)
            qtbot.wait(200)
    print(gaps)
    assert gaps.longest < 0.1, gaps


def test_a_late_read_from_a_list_left_is_not_shown(make_napari_viewer: Any, qtbot: Any,
                                                   tmp_path: Path) -> None:
    from napari_cryoden._qt.browse import load_micrograph

    first = write_folder(tmp_path / "a", n=2)
    _, widget = opened(qtbot, make_napari_viewer, tmp_path / "a")
    other = tmp_path / "b"
    other.mkdir()
    write_mrc(other / "other_0.mrc", micrograph(7, (64, 64)), 2.0)
    widget.open(other)
    qtbot.waitUntil(lambda: widget.layer.name == "other_0", timeout=WAIT_MS)
    widget._on_loaded(load_micrograph(0, first[0]))  # row 0 of the list left, arriving late
    widget._on_read_ahead(load_micrograph(1, first[1]))
    assert widget.layer.name == "other_0" and widget.layer.data.shape == (64, 64)
    assert widget._ahead is None
