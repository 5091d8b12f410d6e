"""Pick readers: RELION STAR, EMAN .box, .coord; bad files refused in one line naming them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from napari_cryoden.errors import InputError
from napari_cryoden.io.picks import match_picks, read_picks

STAR = """
data_particles

loop_
_rlnCoordinateX #1
_rlnCoordinateY #2
_rlnMicrographName #3
100.0 200.0 MotionCorr/job002/mic_0001.mrc
150.5 250.0 MotionCorr/job002/mic_0001.mrc
300.0 40.0 MotionCorr/job002/mic_0002.mrc
"""


def test_star_groups_picks_by_micrograph(tmp_path: Path) -> None:
    path = tmp_path / "particles.star"
    path.write_text(STAR)
    picks = read_picks(path)
    assert sorted(picks) == ["mic_0001", "mic_0002"]
    np.testing.assert_allclose(picks["mic_0001"].xy, [[100, 200], [150.5, 250]])
    assert len(picks["mic_0002"]) == 1


def test_star_without_micrograph_names_belongs_to_its_stem(tmp_path: Path) -> None:
    path = tmp_path / "mic_0007_autopick.star"
    path.write_text("data_\nloop_\n_rlnCoordinateX\n_rlnCoordinateY\n10 20\n30 40\n")
    picks = match_picks(tmp_path, ["even/mic_0007.mrc", "even/mic_0008.mrc"])
    assert list(picks) == ["mic_0007"]
    np.testing.assert_allclose(picks["mic_0007"].xy, [[10, 20], [30, 40]])


def test_box_corners_become_centres(tmp_path: Path) -> None:
    path = tmp_path / "mic.box"
    path.write_text("10\t20\t64\t64\n100 50 64 64\n")
    picks = read_picks(path)["mic"]
    np.testing.assert_allclose(picks.xy, [[42, 52], [132, 82]])
    assert picks.box_size == 64


def test_coord_skips_comments_and_extra_columns(tmp_path: Path) -> None:
    path = tmp_path / "mic.coord"
    path.write_text("# x y score\n\n12 34 0.9\n56.5 78\n")
    np.testing.assert_allclose(read_picks(path)["mic"].xy, [[12, 34], [56.5, 78]])


@pytest.mark.parametrize(("name", "text", "problem"), [
    ("a.coord", "12 34\nx y\n", "line 2 is not numbers"),
    ("a.coord", "12\n", "line 1 needs 2 finite numbers"),
    ("a.box", "1 2 3\n", "line 1 needs 4 finite numbers"),
    ("a.coord", "# nothing\n", "no picks"),
    ("a.star", "data_\nloop_\n_rlnAngleRot\n1\n", "no table with _rlnCoordinateX"),
    ("a.star", "data_\nloop_\n_rlnCoordinateX\n_rlnCoordinateY\n1 abc\n", "not"),
    ("a.txt", "1 2\n", "not a pick file"),
])
def test_bad_files_are_refused_in_one_line(tmp_path: Path, name: str, text: str,
                                           problem: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InputError, match=problem) as info:
        read_picks(path)
    message = str(info.value)
    assert message.startswith(str(path)) and "\n" not in message


def test_binary_coord_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.coord"
    path.write_bytes(b"\xff\xfe\x00\x81" * 10)
    with pytest.raises(InputError, match="cannot read it as text"):
        read_picks(path)


def test_no_match_names_both_sides(tmp_path: Path) -> None:
    (tmp_path / "other.coord").write_text("1 2\n")
    with pytest.raises(InputError, match="no picks match.*other.*mic_0001"):
        match_picks(tmp_path, ["mic_0001.mrc"])
