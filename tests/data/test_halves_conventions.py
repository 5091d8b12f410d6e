"""Even/odd halves as motion-correction programs name them, in folders, the CLI and napari."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from napari_cryoden._reader import napari_get_reader
from napari_cryoden.cli.main import main
from napari_cryoden.data.pairs import (
    find_half_pairs,
    halves_folders,
    micrograph_name,
    split_half,
)
from napari_cryoden.errors import InputError
from napari_cryoden.io.images import write_mrc


def _write(path: Path, seed: int, size: int = 96) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    write_mrc(path, (0.5 + 0.1 * rng.normal(size=(size, size))).astype(np.float32), 1.2)
    return path


def _motioncor2(folder: Path, n: int = 2) -> None:
    """MotionCor2 -SplitSum 1 / RELION 5: the sum, dose-weighted sum and halves side by side."""
    for i in range(n):
        for suffix in ("", "_DW", "_EVN", "_ODD"):
            _write(folder / f"FoilHole_{i}{suffix}.mrc", 10 * i + len(suffix))


def _warp(folder: Path, n: int = 2) -> None:
    """Warp: average/NAME.mrc, average/even/NAME.mrc, average/odd/NAME.mrc."""
    for i in range(n):
        for sub in ("", "even", "odd"):
            _write(folder / sub / f"mic_{i}.mrc", 10 * i + len(sub))


def test_motioncor2_halves_beside_the_sums_pair_from_one_folder(tmp_path: Path) -> None:
    _motioncor2(tmp_path / "MotionCorr/job002/Movies")
    even, odd = halves_folders(tmp_path / "MotionCorr/job002/Movies")
    assert even == odd == tmp_path / "MotionCorr/job002/Movies"
    pairs = find_half_pairs(even, odd)
    assert [(e.name, o.name) for e, o in pairs] == [("FoilHole_0_EVN.mrc", "FoilHole_0_ODD.mrc"),
                                                    ("FoilHole_1_EVN.mrc", "FoilHole_1_ODD.mrc")]


def test_warp_halves_are_the_even_and_odd_subfolders(tmp_path: Path) -> None:
    _warp(tmp_path / "average")
    even, odd = halves_folders(tmp_path / "average")
    assert (even, odd) == (tmp_path / "average/even", tmp_path / "average/odd")
    assert [(e.parent.name, e.name, o.parent.name) for e, o in find_half_pairs(even, odd)] == [
        ("even", "mic_0.mrc", "odd"), ("even", "mic_1.mrc", "odd")]


def test_a_folder_without_halves_is_refused_in_one_line(tmp_path: Path) -> None:
    _write(tmp_path / "sums/a.mrc", 0)
    with pytest.raises(InputError, match=r"sums: no even frame sums in it \(named NAME_EVN"):
        find_half_pairs(*halves_folders(tmp_path / "sums"))
    with pytest.raises(InputError, match=r"missing: no such folder of even/odd frame sums"):
        halves_folders(tmp_path / "missing")


def test_warp_files_are_named_by_their_half_for_napari_layers(tmp_path: Path) -> None:
    _warp(tmp_path / "average", n=1)
    assert micrograph_name(tmp_path / "average/even/mic_0.mrc") == "mic_0_even"
    assert micrograph_name(tmp_path / "average/mic_0.mrc") == "mic_0"
    assert micrograph_name(tmp_path / "x/even/a_EVN.mrc") == "a_EVN"  # already named
    layers = [napari_get_reader(str(p))(str(p))[0]
              for p in (tmp_path / "average/even/mic_0.mrc", tmp_path / "average/odd/mic_0.mrc")]
    names = [kwargs["name"] for _, kwargs, _ in layers]
    assert names == ["mic_0_even", "mic_0_odd"]
    assert [split_half(n) for n in names] == [("mic_0", "even"), ("mic_0", "odd")]


@pytest.mark.parametrize("layout", ["motioncor2", "warp"])
def test_cli_takes_a_motion_correction_folder_as_halves(tmp_path: Path, layout: str,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / ("Movies" if layout == "motioncor2" else "average")
    (_motioncor2 if layout == "motioncor2" else _warp)(folder)
    assert main(["evaluate", "general-fast", "--halves", str(folder), "--json",
                 str(tmp_path / "r.json"), "--device", "cpu"]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert len(report["split_frame"]["micrographs"]) == 2
    assert main(["adapt", "general-fast", "--halves", str(folder), "-o",
                 str(tmp_path / "a.safetensors"), "--seconds", "1", "--patch-size", "32",
                 "--device", "cpu", "--json", str(tmp_path / "a.json")]) == 0
    assert json.loads((tmp_path / "a.json").read_text())["mode"] == "n2n"


def test_cli_refuses_halves_with_even_and_odd(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    _warp(tmp_path / "average", n=1)
    even = str(tmp_path / "average/even")
    for command in (["evaluate", "general-fast", "--json", str(tmp_path / "r.json")],
                    ["adapt", "general-fast", "-o", str(tmp_path / "a.safetensors")],
                    ["train", "--out", str(tmp_path / "run")]):
        assert main(command + ["--halves", str(tmp_path / "average"), "--even", even]) == 2
        err = capsys.readouterr().err.strip()
        assert err.endswith("give --halves or --even/--odd, not both") and "\n" not in err


def test_train_takes_a_motioncor2_folder_as_noise2noise_halves(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _motioncor2(tmp_path / "Movies", n=3)
    assert main(["train", "--halves", str(tmp_path / "Movies"), "--out", str(tmp_path / "run"),
                 "--epochs", "1", "--patch-size", "48", "--batch-size", "4", "--device", "cpu",
                 "--val-fraction", "0.34"]) == 0
    out = capsys.readouterr().out
    assert "2 train / 1 val micrographs (Noise2Noise on even/odd halves)" in out
    assert (tmp_path / "run/best.safetensors").exists()


def _relion5_star(project: Path, n: int = 3) -> Path:
    """A RELION 5 motion-correction output: sums and halves under per-grid-square folders (the
    movies' tree), listed with _rlnMicrographNameEven/Odd in corrected_micrographs.star."""
    job = project / "MotionCorr/job002"
    rows = []
    for i in range(n):
        sub = f"Movies/GridSquare_{i % 2}"
        for suffix in ("", "_EVN", "_ODD"):
            _write(job / sub / f"FoilHole_{i}{suffix}.mrc", 10 * i + len(suffix))
        names = [f"MotionCorr/job002/{sub}/FoilHole_{i}{s}.mrc" for s in ("", "_EVN", "_ODD")]
        rows.append(f"{names[0]} {names[1]} {names[2]} 1")
    star = job / "corrected_micrographs.star"
    star.write_text(
        "\n# version 50001\n\ndata_optics\n\nloop_\n_rlnOpticsGroupName #1\n_rlnOpticsGroup #2\n"
        "_rlnMicrographPixelSize #3\noptics1 1 1.2\n\n# version 50001\n\ndata_micrographs\n\n"
        "loop_\n_rlnMicrographName #1\n_rlnMicrographNameEven #2\n_rlnMicrographNameOdd #3\n"
        "_rlnOpticsGroup #4\n" + "\n".join(rows) + "\n")
    return star


def test_a_relion5_star_lists_halves_across_folders(tmp_path: Path) -> None:
    from napari_cryoden.io.star import read_halves_star

    star = _relion5_star(tmp_path / "proj")
    pairs = read_halves_star(star)
    assert [(e.relative_to(tmp_path / "proj").as_posix(), o.name) for e, o in pairs] == [
        ("MotionCorr/job002/Movies/GridSquare_0/FoilHole_0_EVN.mrc", "FoilHole_0_ODD.mrc"),
        ("MotionCorr/job002/Movies/GridSquare_1/FoilHole_1_EVN.mrc", "FoilHole_1_ODD.mrc"),
        ("MotionCorr/job002/Movies/GridSquare_0/FoilHole_2_EVN.mrc", "FoilHole_2_ODD.mrc")]
    # the folder route cannot see them: each grid square is a folder of its own
    with pytest.raises(InputError, match="Movies: no micrographs found"):
        find_half_pairs(*halves_folders(tmp_path / "proj/MotionCorr/job002/Movies"))


def test_bad_halves_stars_are_one_line_errors(tmp_path: Path) -> None:
    from napari_cryoden.io.star import read_halves_star

    star = _relion5_star(tmp_path / "proj", n=2)
    plain = tmp_path / "proj/plain.star"
    plain.write_text("data_micrographs\nloop_\n_rlnMicrographName #1\n"
                     "MotionCorr/job002/Movies/GridSquare_0/FoilHole_0.mrc\n")
    with pytest.raises(InputError, match=r"plain\.star: no _rlnMicrographNameEven/"):
        read_halves_star(plain)
    (tmp_path / "proj/MotionCorr/job002/Movies/GridSquare_1/FoilHole_1_ODD.mrc").unlink()
    with pytest.raises(InputError, match=r"corrected_micrographs\.star: frame sum .*"
                                         r"FoilHole_1_ODD\.mrc not found"):
        read_halves_star(star)
    empty = tmp_path / "proj/none.star"
    empty.write_text("data_micrographs\nloop_\n_rlnMicrographName #1\n_rlnMicrographNameEven #2"
                     "\n_rlnMicrographNameOdd #3\na.mrc None None\n")
    with pytest.raises(InputError, match="no row names both an even and an odd sum"):
        read_halves_star(empty)


def test_cli_takes_a_relion5_star_as_halves(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    star = _relion5_star(tmp_path / "proj")
    assert main(["evaluate", "general-fast", "--halves", str(star), "--json",
                 str(tmp_path / "r.json"), "--device", "cpu"]) == 0
    assert len(json.loads((tmp_path / "r.json").read_text())["split_frame"]["micrographs"]) == 3
    assert main(["adapt", "general-fast", "--halves", str(star), "--project",
                 str(tmp_path / "proj"), "-o", str(tmp_path / "a.safetensors"), "--seconds", "1",
                 "--patch-size", "32", "--device", "cpu", "--json", str(tmp_path / "a.json")]) == 0
    assert json.loads((tmp_path / "a.json").read_text())["mode"] == "n2n"
    capsys.readouterr()
    assert main(["train", "--halves", str(star), "--out", str(tmp_path / "run"), "--epochs", "1",
                 "--patch-size", "48", "--batch-size", "4", "--device", "cpu",
                 "--val-fraction", "0.34"]) == 0
    assert "2 train / 1 val micrographs (Noise2Noise on even/odd halves)" in capsys.readouterr().out
    assert main(["train", "--halves", str(tmp_path / "proj/MotionCorr"), "--project",
                 str(tmp_path), "--out", str(tmp_path / "run2")]) == 2
    assert "--project goes with a STAR file as --halves" in capsys.readouterr().err
