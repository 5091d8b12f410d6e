"""*Denoise files on disk…* in the Denoise panel, driven as a user would.

A folder of small micrographs, a hand-built seed model registered and chosen in the panel's
Model box, device cpu: the outputs must equal ``cryoden denoise``'s for the same model.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import mrcfile
import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from napari.utils.notifications import notification_manager  # noqa: E402
from qtpy.QtCore import Qt  # noqa: E402

from napari_cryoden._qt._models import MODELS  # noqa: E402
from napari_cryoden._qt.denoise.folder import SKIP  # noqa: E402
from napari_cryoden._qt.denoise.widget import DenoiseWidget  # noqa: E402
from napari_cryoden.cli.main import main  # noqa: E402
from napari_cryoden.config.sections import Config  # noqa: E402
from napari_cryoden.io.images import write_mrc  # noqa: E402
from napari_cryoden.models.checkpoint import save_checkpoint  # noqa: E402
from napari_cryoden.models.nets import build_model  # noqa: E402

PIXEL = 1.7
WAIT_MS = 30_000
MAX_GAP_S = 0.1  # as tests/conftest.py
CANCEL_S = 0.5


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = Config()
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    return save_checkpoint(path, build_model(config.model, seed=0), config, epoch=1)


@pytest.fixture(autouse=True)
def empty_registry() -> Iterator[None]:
    MODELS.clear()
    yield
    MODELS.clear()


@pytest.fixture
def notes() -> Iterator[list]:
    seen: list = []
    notification_manager.notification_ready.connect(seen.append)
    yield seen
    notification_manager.notification_ready.disconnect(seen.append)


def write_micrographs(folder: Path, n: int, shape: tuple[int, int] = (96, 80)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    paths = [folder / f"mic_{i:02d}.mrc" for i in range(n)]
    for path in paths:
        write_mrc(path, rng.normal(0.5, 0.2, shape).astype(np.float32), PIXEL)
    return paths


def open_section(make_napari_viewer, qtbot, weights: Path, folder: Path):
    """The Denoise panel with the model chosen, device cpu, the section expanded, folder typed."""
    viewer = make_napari_viewer()
    panel = DenoiseWidget(viewer)
    viewer.window.add_dock_widget(panel, name="Denoise")
    label = MODELS.register("tiny", weights)
    panel.model.native.setCurrentIndex(panel.model.native.findText(label))
    panel.device.value = "cpu"
    section = panel.folder
    qtbot.mouseClick(section.section._toggle_btn, Qt.MouseButton.LeftButton)
    section.inputs.line_edit.value = str(folder)
    return viewer, panel, section


def run(qtbot, section) -> list:
    with qtbot.waitSignal(section.finished, timeout=WAIT_MS) as blocker:
        section.start_button.native.click()
    return blocker.args[0]


def test_a_folder_is_denoised_like_the_cli_with_its_pixel_size(make_napari_viewer, qtbot,
                                                                weights, tmp_path, ui_gaps):
    inputs = write_micrographs(tmp_path / "in", 3)
    viewer, panel, section = open_section(make_napari_viewer, qtbot, weights, tmp_path / "in")
    assert section.section.isExpanded()
    with ui_gaps() as gaps:
        results = run(qtbot, section)
    assert gaps.longest < MAX_GAP_S, gaps
    assert [r.status for r in results] == ["done"] * 3
    out = tmp_path / "in" / "denoised"  # the default output folder
    assert main(["denoise", str(weights), str(tmp_path / "in"), "--out", str(tmp_path / "cli"),
                 "--device", "cpu"]) == 0
    for src in inputs:
        with mrcfile.open(out / src.name) as mrc, mrcfile.open(tmp_path / "cli" / src.name) as cli:
            assert mrc.data.shape == (96, 80)
            assert float(mrc.voxel_size.x) == pytest.approx(PIXEL)
            np.testing.assert_array_equal(mrc.data, cli.data)
    assert section.status.value.startswith("Done: 3 denoised of 3")
    assert section.progress.value == section.progress.max
    assert [name for name, _ in section._outputs] == [p.name for p in inputs]


def test_cancel_stops_within_half_a_second_and_leaves_no_partial_file(
        make_napari_viewer, qtbot, weights, tmp_path):
    write_micrographs(tmp_path / "in", 8, (1024, 1024))
    viewer, panel, section = open_section(make_napari_viewer, qtbot, weights, tmp_path / "in")
    out = tmp_path / "in" / "denoised"
    section.start_button.native.click()
    qtbot.waitUntil(lambda: "left" in section.status.value, timeout=WAIT_MS)  # tiles running
    with qtbot.waitSignal(section.finished, timeout=WAIT_MS) as blocker:
        clicked = time.perf_counter()
        section.cancel_button.native.click()
    took = time.perf_counter() - clicked
    assert took < CANCEL_S, f"Cancel took {took:.2f} s"
    done = [r.output.name for r in blocker.args[0] if r.status == "done"]
    assert len(done) < 8
    assert sorted(p.name for p in out.iterdir()) == done  # no partial or temporary file
    assert section.status.value.startswith("Cancelled")
    assert section.start_button.enabled and not section.cancel_button.enabled


def test_a_bad_file_is_named_in_one_line_and_the_others_are_done(make_napari_viewer, qtbot,
                                                                  weights, tmp_path, notes):
    write_micrographs(tmp_path / "in", 2)
    (tmp_path / "in" / "broken.mrc").write_bytes(b"garbage" * 50)
    viewer, panel, section = open_section(make_napari_viewer, qtbot, weights, tmp_path / "in")
    results = run(qtbot, section)
    assert [r.status for r in results] == ["failed", "done", "done"]
    problem = section.problems.value
    assert section.problems.native.isVisibleTo(section.native)
    assert "broken.mrc" in problem and "\n" not in problem
    assert any("broken.mrc" in str(n.message) for n in notes)
    assert sorted(p.name for p in (tmp_path / "in" / "denoised").iterdir()) == [
        "mic_00.mrc", "mic_01.mrc"]
    assert "2 denoised, 1 failed of 3" in section.status.value


def test_existing_outputs_are_asked_about_and_skipped(make_napari_viewer, qtbot, weights,
                                                       tmp_path):
    write_micrographs(tmp_path / "in", 2)
    viewer, panel, section = open_section(make_napari_viewer, qtbot, weights, tmp_path / "in")
    run(qtbot, section)
    first = tmp_path / "in" / "denoised" / "mic_00.mrc"
    before = first.stat().st_mtime_ns
    section.start_button.native.click()
    box = section.ask_box
    assert box is not None and "2 of the 2 outputs already exist" in box.text()
    skip = next(b for b in box.buttons() if b.text() == "Skip them")
    with qtbot.waitSignal(section.finished, timeout=WAIT_MS) as blocker:
        skip.click()
    assert [r.status for r in blocker.args[0]] == ["skipped", "skipped"]
    assert first.stat().st_mtime_ns == before
    section.existing.value = SKIP  # no question asked when told beforehand
    assert [r.status for r in run(qtbot, section)] == ["skipped", "skipped"]


def test_a_result_opens_as_a_layer_with_its_pixel_size(make_napari_viewer, qtbot, weights,
                                                       tmp_path):
    write_micrographs(tmp_path / "in", 2)
    viewer, panel, section = open_section(make_napari_viewer, qtbot, weights, tmp_path / "in")
    run(qtbot, section)
    items = section.done_list.native
    items.item(1).setSelected(True)
    section.open_button.native.click()
    assert viewer.layers[-1].name == "mic_01 denoised"
    assert viewer.layers[-1].metadata["path"] == str(tmp_path / "in" / "denoised" / "mic_01.mrc")
    np.testing.assert_allclose(viewer.layers[-1].scale, (PIXEL, PIXEL), rtol=1e-5)
    items.itemDoubleClicked.emit(items.item(0))
    assert viewer.layers[-1].name == "mic_00 denoised" and len(viewer.layers) == 2


def test_a_star_file_is_denoised_into_its_tree_and_written_back(make_napari_viewer, qtbot,
                                                                 weights, tmp_path, ui_gaps):
    """A RELION project: the STAR file lists micrographs of MotionCorr/job002 by project path."""
    project = tmp_path / "project"
    inputs = write_micrographs(project / "MotionCorr/job002/Movies", 2)
    star = project / "CtfFind/job003/micrographs_ctf.star"
    star.parent.mkdir(parents=True)
    names = [str(p.relative_to(project)) for p in inputs]
    star.write_text("data_optics\n\nloop_\n_rlnOpticsGroup #1\n_rlnVoltage #2\n1 300.0\n\n"
                    "data_micrographs\n\nloop_\n_rlnMicrographName #1\n_rlnDefocusU #2\n"
                    + "".join(f"{n} 12345.678901\n" for n in names))
    viewer, panel, section = open_section(make_napari_viewer, qtbot, weights, star)
    assert not section.project.native.isHidden()  # a STAR file: its project folder may be given
    assert section.output.line_edit.native.placeholderText() == "<STAR file's folder>/denoised"
    with ui_gaps() as gaps:
        results = run(qtbot, section)
    assert gaps.longest < MAX_GAP_S, gaps
    assert [r.status for r in results] == ["done"] * 2
    out = star.parent / "denoised"
    written = out / "micrographs_ctf.star"
    assert section.status.value.endswith(f"; wrote {written}")
    text = written.read_text()
    for name in names:
        denoised = out / name
        assert f"{denoised.relative_to(project)}\t12345.678901" in text
        with mrcfile.open(denoised) as mrc:
            assert mrc.data.shape == (96, 80)
    assert "data_optics" in text and "300.0" in text
    section.inputs.line_edit.value = str(project / "MotionCorr")
    assert section.project.native.isHidden()  # a folder: no project folder to give


def test_a_star_file_whose_micrographs_are_missing_is_refused_in_one_line(
        make_napari_viewer, qtbot, weights, tmp_path, notes):
    star = tmp_path / "list.star"
    star.write_text("data_\n\nloop_\n_rlnMicrographName #1\nMotionCorr/gone.mrc\n")
    viewer, panel, section = open_section(make_napari_viewer, qtbot, weights, star)
    section.project.line_edit.value = str(tmp_path)
    section.start_button.native.click()
    qtbot.waitUntil(lambda: not section.busy, timeout=WAIT_MS)  # read in a worker
    assert section.start_button.enabled and not section.results
    assert section.status.value == (f"{star}: micrograph MotionCorr/gone.mrc not found (looked "
                                    f"for {tmp_path.resolve() / 'MotionCorr/gone.mrc'})")
    assert "\n" not in section.status.value


def test_float16_output_chosen_in_the_panel(make_napari_viewer, qtbot, weights, tmp_path):
    write_micrographs(tmp_path / "in", 2)
    viewer, panel, section = open_section(make_napari_viewer, qtbot, weights, tmp_path / "in")
    section.out_dtype.value = "float16"
    results = run(qtbot, section)
    assert [r.status for r in results] == ["done"] * 2
    with mrcfile.open(results[0].output) as mrc:
        assert int(mrc.header.mode) == 12 and float(mrc.voxel_size.x) == pytest.approx(PIXEL)


def test_smoothing_set_in_the_panel_reaches_the_files_as_cli_smooth(make_napari_viewer, qtbot,
                                                                     weights, tmp_path):
    inputs = write_micrographs(tmp_path / "in", 2)
    viewer, panel, section = open_section(make_napari_viewer, qtbot, weights, tmp_path / "in")
    panel.smooth.value = 2.5  # the panel's Smoothing and Detail kept rows, above
    panel.keep_detail.value = 0.5
    results = run(qtbot, section)
    assert [r.status for r in results] == ["done"] * 2
    assert main(["denoise", str(weights), str(tmp_path / "in"), "--out", str(tmp_path / "cli"),
                 "--device", "cpu", "--smooth", "2.5", "--keep-detail", "0.5"]) == 0
    for src in inputs:
        with mrcfile.open(tmp_path / "in" / "denoised" / src.name) as mrc, \
                mrcfile.open(tmp_path / "cli" / src.name) as cli:
            np.testing.assert_array_equal(mrc.data, cli.data)
