"""Picks written back: STAR/.box/.coord round trips, and a napari Points layer saved as picks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from napari_cryoden._writer import write_points
from napari_cryoden.errors import InputError
from napari_cryoden.io.picks import read_picks, write_picks

XY = np.array([[10.5, 20.25], [300.0, 41.0], [77.75, 500.5]])  # x column, y row


@pytest.mark.parametrize("suffix", [".star", ".box", ".coord"])
def test_written_picks_read_back_to_the_same_centres(tmp_path: Path, suffix: str) -> None:
    path = write_picks(tmp_path / f"mic_001{suffix}", XY, box_size=64)
    picks = read_picks(path)["mic_001"]
    np.testing.assert_allclose(picks.xy, XY, atol=0.005)
    assert picks.box_size == (64 if suffix == ".box" else None)


def test_a_star_file_is_a_relion_coordinate_table(tmp_path: Path) -> None:
    import starfile

    table = starfile.read(write_picks(tmp_path / "mic.star", XY))
    assert list(table.columns) == ["rlnCoordinateX", "rlnCoordinateY"]
    np.testing.assert_allclose(table.to_numpy(), XY)


def test_a_points_layer_saves_its_row_col_as_x_y(tmp_path: Path) -> None:
    rows_cols = XY[:, ::-1]  # napari keeps (row, col)
    written = write_points(tmp_path / "mic.box", rows_cols, {"size": np.full(3, 48.0)})
    assert written == [str(tmp_path / "mic.box")]
    picks = read_picks(tmp_path / "mic.box")["mic"]
    np.testing.assert_allclose(picks.xy, XY, atol=0.005)
    assert picks.box_size == 48


@pytest.mark.parametrize(("name", "data", "meta", "message"), [
    ("a.box", XY, {"size": np.array([10.0, 20.0, 10.0])}, "several sizes"),
    ("a.box", XY, {}, "needs the box size"),
    ("a.coord", np.zeros((3, 3)), {}, "have 3 coordinates"),
    ("a.coord", np.zeros((0, 2)), {}, "no points to write"),
    ("a.txt", XY, {}, "picks are written as .star, .box, .coord"),
])
def test_what_a_pick_file_cannot_hold_is_refused_in_one_line(tmp_path: Path, name: str, data,
                                                             meta: dict, message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        write_points(tmp_path / name, data, meta)
    assert str(info.value).startswith(str(tmp_path / name)) and "\n" not in str(info.value)
    assert not (tmp_path / name).exists()


def test_napari_saves_a_points_layer_made_on_a_micrograph_as_its_pixels(
        make_napari_viewer, tmp_path: Path) -> None:
    """A Points layer from napari's New points button copies the micrograph's scale."""
    viewer = make_napari_viewer()
    image = viewer.add_image(np.zeros((600, 400), np.float32), scale=(1.7, 1.7), name="mic")
    viewer.layers.selection.active = image
    from napari._app_model.actions._file import new_points

    new_points(viewer)
    points = viewer.layers[-1]
    assert tuple(points.scale) == pytest.approx((1.7, 1.7))
    points.add(XY[:, ::-1])  # clicks at these (row, col) pixels of the micrograph
    points.size = 64
    written = points.save(str(tmp_path / "mic.star"), plugin="napari-cryoden")
    assert written == [str(tmp_path / "mic.star")]
    np.testing.assert_allclose(read_picks(tmp_path / "mic.star")["mic"].xy, XY, atol=0.005)
