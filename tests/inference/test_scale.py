"""Scale awareness end to end: the pixel size a micrograph is denoised at, and the binning."""

from __future__ import annotations

from pathlib import Path

import mrcfile
import numpy as np
import pytest
import tifffile

from napari_cryoden.cli.main import main
from napari_cryoden.errors import InputError
from napari_cryoden.inference.scale import denoise_binned, plan_scale
from napari_cryoden.io.images import read_info

RANGE = (0.6, 2.5)


def _mrc(path: Path, pixel_size: float, shape: tuple[int, int] = (90, 128)) -> Path:
    data = np.random.default_rng(0).normal(10.0, 2.0, size=shape).astype(np.float32)
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(data)
        mrc.voxel_size = pixel_size
    return path


def test_an_unrecorded_pixel_size_is_not_mistaken_for_1_angstrom(tmp_path: Path) -> None:
    assert read_info(_mrc(tmp_path / "u.mrc", 0.0)).recorded_pixel_size is None
    assert read_info(_mrc(tmp_path / "one.mrc", 1.0)).recorded_pixel_size == 1.0
    info = read_info(_mrc(tmp_path / "u.mrc", 0.0))
    assert info.pixel_size == 1.0  # older callers still get a number
    tifffile.imwrite(tmp_path / "t.tif", np.zeros((4, 4), np.float32))
    assert read_info(tmp_path / "t.tif").recorded_pixel_size is None


@pytest.mark.parametrize(("pixel", "factor", "noted"), [
    (0.4, 1.5, False),  # super-resolution: binned to the range's lower end
    (0.83, 1.0, False),  # in range: as recorded (Topaz's default, too)
    (3.0, 1.0, True),  # coarser than the range: never upsampled, a note
    (None, 1.0, True),  # unknown: nothing guessed, a note
])
def test_auto_bins_only_what_the_model_needs(pixel, factor, noted) -> None:
    plan = plan_scale(pixel, RANGE)
    assert plan.factor == pytest.approx(factor) and (plan.note is not None) == noted


def test_explicit_choices() -> None:
    assert plan_scale(1.0, None, working=2.0).factor == 2.0
    assert plan_scale(1.0, RANGE, working=0.5).factor == 1.0  # never upsample
    assert plan_scale(None, RANGE, bin_factor=2.0).factor == 2.0
    assert plan_scale(1.2, None).note == "the model records no pixel-size range: not resampled"
    with pytest.raises(InputError, match="needs the micrograph's pixel size"):
        plan_scale(None, RANGE, working=1.5)


def test_denoise_binned_runs_the_model_on_the_binned_image() -> None:
    seen: list[tuple[int, ...]] = []

    def identity(image: np.ndarray, **_: object) -> np.ndarray:
        seen.append(np.shape(image))
        return np.asarray(image, np.float32)

    image = np.random.default_rng(0).normal(size=(3, 63, 80)).astype(np.float32)
    out = denoise_binned(identity, image, 2.0)
    assert seen == [(3, 32, 40)] and out.shape == image.shape
    np.testing.assert_allclose(out.mean(axis=(1, 2)), image.mean(axis=(1, 2)), atol=1e-5)
    assert denoise_binned(identity, image, 1.0) is image  # bin 1: the model sees the pixels


def test_cli_bins_a_fine_micrograph_and_keeps_shape_and_pixel_size(tmp_path: Path,
                                                                   capsys) -> None:
    src = _mrc(tmp_path / "fine.mrc", 0.5)
    assert main(["denoise", "general-fast", str(src), "--out", str(tmp_path / "out"),
                 "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "at 1 Å/px (binned ×2 from 0.5 Å/px)" in out  # the shipped range starts at 1 Å
    with mrcfile.open(tmp_path / "out" / "fine.mrc") as mrc:
        assert mrc.data.shape == (90, 128) and mrc.voxel_size.x == pytest.approx(0.5)


@pytest.mark.parametrize("flags", [["--bin", "2"], ["--working-pixel-size", "2.4"]])
def test_cli_bin_and_working_pixel_size_differ_from_no_binning(tmp_path: Path, flags) -> None:
    src = _mrc(tmp_path / "m.mrc", 1.2)
    for out, extra in (("plain", []), ("binned", flags)):
        assert main(["denoise", "general-fast", str(src), "--out", str(tmp_path / out),
                     "--device", "cpu", "--smooth", "0", *extra]) == 0  # the model's output
    plain = mrcfile.read(tmp_path / "plain" / "m.mrc")
    binned = mrcfile.read(tmp_path / "binned" / "m.mrc")
    assert binned.shape == plain.shape == (90, 128)
    assert not np.allclose(binned, plain)
    spectrum = np.abs(np.fft.rfft2(binned - binned.mean()))
    assert spectrum[:, 40:].max() < 1e-3 * spectrum.max()  # nothing above the binned Nyquist


def test_cli_says_in_one_line_that_an_unknown_pixel_size_is_not_resampled(tmp_path: Path,
                                                                          capsys) -> None:
    src = _mrc(tmp_path / "u.mrc", 0.0)
    assert main(["denoise", "general-fast", str(src), "--out", str(tmp_path / "o"),
                 "--device", "cpu"]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if "note:" in line]
    assert len(err) == 1 and "u.mrc: pixel size unknown" in err[0]
    assert main(["denoise", "general-fast", str(src), "--out", str(tmp_path / "o"),
                 "--device", "cpu", "--pixel-size", "0.3"]) == 0
    assert "binned ×3.33 from 0.3 Å/px" in capsys.readouterr().out  # to the range's 1 Å


@pytest.mark.parametrize(("flags", "message"), [
    (["--bin", "2", "--working-pixel-size", "1.5"],
     "denoise: give --working-pixel-size or --bin, not both"),
    (["--working-pixel-size", "1.5"], "u.mrc: working pixel size 1.5 Å needs the micrograph's"),
])
def test_cli_conflicting_or_impossible_choices_are_one_line_errors(tmp_path: Path, capsys,
                                                                   flags, message) -> None:
    src = _mrc(tmp_path / "u.mrc", 0.0)
    assert main(["denoise", "general-fast", str(src), "--out", str(tmp_path / "o"),
                 *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("cryoden: error:") and message in err[0]
    assert not (tmp_path / "o").exists()


def test_a_folder_run_bins_each_file_by_its_own_header(tmp_path: Path) -> None:
    from napari_cryoden.inference.batch import FolderJob, run_folder_job
    from napari_cryoden.models.pretrained import shipped_path

    files = (_mrc(tmp_path / "fine.mrc", 0.5), _mrc(tmp_path / "u.mrc", 0.0),
             _mrc(tmp_path / "ok.mrc", 1.06))
    job = FolderJob(files, tmp_path / "out", shipped_path("general-fast"), "cpu")
    results = list(run_folder_job(job))
    assert [r.status for r in results] == ["done"] * 3
    assert results[0].scale == "at 1 Å/px (binned ×2 from 0.5 Å/px)"
    assert results[1].scale.startswith("at the recorded sampling (pixel size unknown) (pixel "
                                       "size unknown (the header records none): not resampled")
    assert results[2].scale == "at 1.06 Å/px as recorded"
    assert mrcfile.read(tmp_path / "out" / "fine.mrc").shape == (90, 128)
    working = FolderJob(files, tmp_path / "w", shipped_path("general-fast"), "cpu", working=2.0)
    failed = [r for r in run_folder_job(working) if r.status == "failed"]
    assert [r.source.name for r in failed] == ["u.mrc"]  # no pixel size: one line, run goes on
    assert "u.mrc: working pixel size 2 Å needs the micrograph's pixel size" in failed[0].message
