"""RELION STAR micrograph lists: read, resolve against the project, denoise, write back."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import starfile

from napari_cryoden.cli.main import main
from napari_cryoden.errors import InputError
from napari_cryoden.inference.denoiser import denoise
from napari_cryoden.inference.smoothing import FLAT_BACKGROUND, smoothed
from napari_cryoden.io.images import read_image, write_mrc
from napari_cryoden.io.star import denoised_paths, read_micrograph_star, write_denoised_star
from napari_cryoden.models.checkpoint import load_checkpoint
from napari_cryoden.models.pretrained import resolve_model

OPTICS = """
# version 30001

data_optics

loop_
_rlnOpticsGroupName #1
_rlnOpticsGroup #2
_rlnMicrographOriginalPixelSize #3
_rlnVoltage #4
_rlnSphericalAberration #5
_rlnAmplitudeContrast #6
_rlnMicrographPixelSize #7
opticsGroup1            1     0.885000   300.000000     2.700000     0.100000     1.770000

"""

MICROGRAPHS = """
# version 30001

data_micrographs

loop_
_rlnMicrographName #1
_rlnOpticsGroup #2
_rlnCtfImage #3
_rlnDefocusU #4
_rlnDefocusV #5
_rlnCtfAstigmatism #6
_rlnDefocusAngle #7
_rlnCtfFigureOfMerit #8
_rlnCtfMaxResolution #9
{rows}
"""


def _project(root: Path, n: int = 3, size: int = 96) -> Path:
    """A RELION project: MotionCorr outputs in two movie folders, a CtfFind STAR listing them."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        folder = "Movies" if i < 2 else "Movies2"
        name = f"MotionCorr/job002/{folder}/mic_{i:03d}.mrc"
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        write_mrc(root / name, rng.normal(1.0, 0.3, (size, size)).astype(np.float32), 1.77)
        rows.append(f"{name} 1 CtfFind/job003/{folder}/mic_{i:03d}.ctf:mrc "
                    f"12345.678901 12001.5 344.178901 -45.5 0.123456789 4.12345678")
    star = root / "CtfFind/job003/micrographs_ctf.star"
    star.parent.mkdir(parents=True)
    star.write_text(OPTICS + MICROGRAPHS.format(rows="\n".join(rows)) + "\n")
    return star


def test_names_are_found_from_the_project_folder_above_the_star_file(tmp_path: Path) -> None:
    star = read_micrograph_star(_project(tmp_path))
    assert star.project == tmp_path.resolve()
    assert star.block == "micrographs"
    assert star.names[2] == "MotionCorr/job002/Movies2/mic_002.mrc"
    assert star.files[2] == tmp_path.resolve() / star.names[2]
    out = denoised_paths(star, tmp_path / "Denoise/job010")
    assert out[2] == tmp_path / "Denoise/job010/MotionCorr/job002/Movies2/mic_002.mrc"


def test_cli_denoises_the_list_keeps_the_tree_and_writes_the_star(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = _project(tmp_path)
    monkeypatch.chdir(tmp_path)  # as RELION users run: from the project folder
    status = main(["denoise", "general-fast", "--star", "CtfFind/job003/micrographs_ctf.star",
                   "--out", "Denoise/job010", "--device", "cpu"])
    assert status == 0
    assert "Denoise/job010/micrographs_ctf.star" in capsys.readouterr().out
    written = starfile.read(tmp_path / "Denoise/job010/micrographs_ctf.star", always_dict=True)
    original = starfile.read(source, always_dict=True)
    assert list(written) == ["optics", "micrographs"]
    assert written["optics"].equals(original["optics"])
    names = list(written["micrographs"]["rlnMicrographName"])
    assert names == [f"Denoise/job010/{n}" for n in original["micrographs"]["rlnMicrographName"]]
    others = [c for c in original["micrographs"].columns if c != "rlnMicrographName"]
    assert written["micrographs"][others].equals(original["micrographs"][others])
    text = (tmp_path / "Denoise/job010/micrographs_ctf.star").read_text()
    assert "12345.678901" in text and "0.123456789" in text  # values kept as written
    net, checkpoint = load_checkpoint(resolve_model("general-fast"))
    for name, new in zip(original["micrographs"]["rlnMicrographName"], names, strict=True):
        image, pixel = read_image(tmp_path / new)
        source = read_image(tmp_path / name)[0]
        expected = smoothed(denoise(net, source, normalization=checkpoint.normalization),
                            FLAT_BACKGROUND, source=source)  # the default look
        np.testing.assert_allclose(image, expected, rtol=1e-5, atol=1e-5)
        assert pixel == pytest.approx(1.77, abs=1e-3)


def test_an_output_folder_outside_the_project_gets_absolute_paths(tmp_path: Path) -> None:
    star = read_micrograph_star(_project(tmp_path / "project"))
    outputs = denoised_paths(star, tmp_path / "elsewhere")
    written = write_denoised_star(star, outputs, tmp_path / "elsewhere/list.star")
    names = starfile.read(written, always_dict=True)["micrographs"]["rlnMicrographName"]
    assert [Path(n) for n in names] == [o.resolve() for o in outputs]
    assert [p.name for p in (tmp_path / "elsewhere").iterdir()] == ["list.star"]


def test_a_single_table_star_file_with_a_given_project_folder(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    write_mrc(tmp_path / "data/a.mrc", np.ones((32, 32), np.float32), 1.0)
    star = tmp_path / "lists/mics.star"
    star.parent.mkdir()
    star.write_text("data_\n\nloop_\n_rlnMicrographName #1\ndata/a.mrc\n")
    listed = read_micrograph_star(star, project=tmp_path)
    assert listed.block == "" and listed.files == [tmp_path.resolve() / "data/a.mrc"]


@pytest.mark.parametrize(("change", "message"), [
    ("missing", r"micrograph MotionCorr/job002/Movies/mic_001.mrc not found"),
    ("no column", r"no table with _rlnMicrographName"),
    ("nowhere", r"is in no folder at or above the STAR file; give the project folder"),
    ("twice", r"exists under both .*; give the project folder"),
    ("no file", r"no such STAR file"),
])
def test_bad_star_files_are_refused_in_one_line_naming_them(tmp_path: Path, change: str,
                                                             message: str) -> None:
    star = _project(tmp_path / "p")
    if change == "missing":
        os.remove(tmp_path / "p/MotionCorr/job002/Movies/mic_001.mrc")
    elif change == "no column":
        star.write_text(star.read_text().replace("_rlnMicrographName", "_rlnImageName"))
    elif change == "nowhere":
        star.write_text(star.read_text().replace("MotionCorr/", "Elsewhere/"))
    elif change == "twice":
        first = tmp_path / "p/CtfFind/MotionCorr/job002/Movies/mic_000.mrc"
        first.parent.mkdir(parents=True)
        first.write_bytes((tmp_path / "p/MotionCorr/job002/Movies/mic_000.mrc").read_bytes())
    else:
        star = tmp_path / "p/none.star"
    with pytest.raises(InputError, match=message) as info:
        read_micrograph_star(star)
    assert "\n" not in str(info.value) and str(star) in str(info.value)


def test_cli_refuses_to_overwrite_the_inputs(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    star = _project(tmp_path)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    for out in (tmp_path, star.parent):  # the micrographs, then the STAR file itself
        assert main(["denoise", "general-fast", "--star", str(star), "--out", str(out),
                     "--device", "cpu"]) == 2
        err = capsys.readouterr().err.strip()
        assert "would overwrite" in err and "\n" not in err
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_cli_refuses_micrographs_and_a_star_file_together(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    star = _project(tmp_path)
    mic = tmp_path / "MotionCorr/job002/Movies/mic_000.mrc"
    assert main(["denoise", str(mic), "--star", str(star), "--out", str(tmp_path / "o")]) == 2
    assert "give micrographs or --star, not both" in capsys.readouterr().err
    assert main(["denoise", str(mic), "--project", str(tmp_path),
                 "--out", str(tmp_path / "o")]) == 2
    assert "--project goes with --star" in capsys.readouterr().err


def test_two_micrographs_of_the_same_name_are_not_written_over_each_other(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        write_mrc(tmp_path / folder / "mic.mrc", np.ones((32, 32), np.float32), 1.0)
    assert main(["denoise", "general-fast", str(tmp_path / "a"), str(tmp_path / "b"),
                 "--out", str(tmp_path / "o"), "--device", "cpu"]) == 2
    assert "is also that of" in capsys.readouterr().err
    assert not (tmp_path / "o/mic.mrc").exists()


def _cs(path: Path, names: list[str], pixel: float = 0.83) -> Path:
    """A cryoSPARC exposures file as its numpy format stores one: fixed-width byte strings."""
    data = np.zeros(len(names), dtype=[("uid", "<u8"), ("micrograph_blob/path", "S64"),
                                       ("micrograph_blob/psize_A", "<f4")])
    data["uid"] = np.arange(len(names)) + 100
    data["micrograph_blob/path"] = [n.encode() for n in names]
    data["micrograph_blob/psize_A"] = pixel
    with path.open("wb") as handle:  # np.save would add .npy to the name
        np.save(handle, data)
    return path


def test_a_cryosparc_cs_file_is_denoised_and_listed_as_star(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    names = [f"J3/motioncorrected/{i:03d}_patch_aligned_doseweighted.mrc" for i in range(2)]
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        write_mrc(tmp_path / name, np.random.default_rng(1).normal(5, 1, (64, 64))
                  .astype(np.float32), 0.83)
    (tmp_path / "J7").mkdir()  # the Patch CTF job's folder in the cryoSPARC project
    cs = _cs(tmp_path / "J7/exposures.cs", names)
    assert main(["denoise", "general-fast", "--star", str(cs), "--out", str(tmp_path / "den"),
                 "--device", "cpu"]) == 0
    written = starfile.read(tmp_path / "den/exposures.star", always_dict=True)["micrographs"]
    assert list(written["rlnMicrographName"]) == [f"den/{n}" for n in names]
    assert list(written["rlnMicrographPixelSize"]) == pytest.approx([0.83, 0.83])
    assert all((tmp_path / "den" / n).exists() for n in names)


def test_a_cs_file_numpy_cannot_read_is_refused_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "new.cs").write_bytes(b"CSDAT\x00compressed")
    with pytest.raises(InputError, match=r"new.cs: not a numpy-format cryoSPARC .cs file .*"
                                          r"export the exposures as a STAR file"):
        read_micrograph_star(tmp_path / "new.cs")
    particles = np.zeros(2, dtype=[("uid", "<u8"), ("blob/path", "S8")])
    with (tmp_path / "particles.cs").open("wb") as handle:
        np.save(handle, particles)
    with pytest.raises(InputError, match=r"particles.cs: no micrograph_blob/path field"):
        read_micrograph_star(tmp_path / "particles.cs")
