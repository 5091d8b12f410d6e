"""Denoising files into a folder (inference.batch): results per file, bad files, cancel, names."""

from __future__ import annotations

import threading
from pathlib import Path

import mrcfile
import numpy as np
import pytest

from napari_cryoden.errors import Cancelled, InputError
from napari_cryoden.inference.batch import (
    FolderJob,
    default_output_folder,
    denoise_files,
    existing_outputs,
    micrographs_in,
    output_path,
    plan_outputs,
    remaining_seconds,
    run_folder_job,
)
from napari_cryoden.inference.denoiser import denoise
from napari_cryoden.inference.load import load_denoiser
from napari_cryoden.io.images import write_mrc

PIXEL = 1.7


def micrographs(folder: Path, n: int = 3, shape: tuple[int, int] = (48, 40)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    paths = [folder / f"mic_{i}.mrc" for i in range(n)]
    for path in paths:
        write_mrc(path, rng.normal(0.5, 0.2, shape).astype(np.float32), PIXEL)
    return paths


def test_each_file_is_denoised_into_the_folder_with_its_pixel_size(tmp_path, weights):
    files = micrographs(tmp_path / "in")
    denoiser = load_denoiser(weights, "cpu")
    results = list(denoise_files(denoiser, micrographs_in([tmp_path / "in"]), tmp_path / "out"))
    assert [r.status for r in results] == ["done"] * 3
    assert [(r.index, r.total) for r in results] == [(0, 3), (1, 3), (2, 3)]
    for src, result in zip(files, results, strict=True):
        assert result.output == tmp_path / "out" / src.name
        with mrcfile.open(result.output) as mrc:
            assert float(mrc.voxel_size.x) == pytest.approx(PIXEL)
            with mrcfile.open(src) as original:
                expected = denoise(denoiser.net, original.data, **denoiser.options())
            np.testing.assert_array_equal(mrc.data, expected)


def test_a_bad_file_is_one_line_naming_it_and_the_others_are_done(tmp_path, weights):
    micrographs(tmp_path / "in", 2)
    (tmp_path / "in" / "broken.mrc").write_bytes(b"not an MRC file" * 10)
    files = micrographs_in([tmp_path / "in"])
    results = list(denoise_files(load_denoiser(weights, "cpu"), files, tmp_path / "out"))
    failed = [r for r in results if r.status == "failed"]
    assert len(failed) == 1 and "broken.mrc" in failed[0].message
    assert "\n" not in failed[0].message
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["mic_0.mrc", "mic_1.mrc"]


def test_existing_outputs_are_skipped_unless_overwrite(tmp_path, weights):
    files = micrographs(tmp_path / "in", 2)
    out = tmp_path / "out"
    out.mkdir()
    (out / "mic_0.mrc").write_bytes(b"old")
    assert existing_outputs(files, out) == [out / "mic_0.mrc"]
    denoiser = load_denoiser(weights, "cpu")
    assert [r.status for r in denoise_files(denoiser, files, out)] == ["skipped", "done"]
    assert (out / "mic_0.mrc").read_bytes() == b"old"
    assert [r.status for r in denoise_files(denoiser, files, out, overwrite=True)] == ["done"] * 2
    assert (out / "mic_0.mrc").read_bytes() != b"old"


def test_an_output_over_an_input_or_twice_is_refused(tmp_path):
    files = micrographs(tmp_path / "in", 1)
    with pytest.raises(InputError, match="overwrite an input"):
        plan_outputs(files, tmp_path / "in")
    tif = tmp_path / "in" / "mic_0.tif"
    with pytest.raises(InputError, match="mic_0.mrc"):
        plan_outputs([files[0], tif], tmp_path / "out")


def test_stop_cancels_between_tile_batches_and_writes_nothing(tmp_path, weights):
    files = micrographs(tmp_path / "in", 2, (256, 256))
    stop = threading.Event()
    seen: list[tuple[int, int]] = []

    def tiles(done: int, total: int) -> None:
        seen.append((done, total))
        if done > 0:
            stop.set()  # the user clicks Cancel after the first batch of tiles

    run = denoise_files(load_denoiser(weights, "cpu"), files, tmp_path / "out", stop=stop,
                        progress=tiles, tile_size=64, batch_size=1)
    with pytest.raises(Cancelled):
        list(run)
    assert seen[-1][0] == 1 and seen[-1][1] > 1  # stopped after one batch of many
    assert list((tmp_path / "out").iterdir()) == []  # no output, no temporary file


def test_stop_ends_the_run_and_keeps_every_finished_file(tmp_path, weights):
    """Stop after the first result: no new file is denoised; those already denoised are written
    (each whole) and reported, in input order; the run raises Cancelled."""
    files = micrographs(tmp_path / "in", 40)
    stop = threading.Event()
    job = FolderJob(tuple(files), tmp_path / "out", weights, "cpu")
    done = []
    with pytest.raises(Cancelled):
        for result in run_folder_job(job, stop):
            done.append(result.index)
            stop.set()
    written = sorted(int(p.stem.split("_")[1]) for p in (tmp_path / "out").iterdir())
    assert done[0] == 0 and done == sorted(done), done
    assert done == written, (done, written)  # every file written is reported
    assert len(written) < 40, written  # the pipeline holds a few files, not all
    for index in written:
        assert mrcfile.read(tmp_path / "out" / f"mic_{index}.mrc").shape == (48, 40)


def test_names_defaults_and_estimates(tmp_path):
    assert output_path(tmp_path / "a.tif", tmp_path / "o") == tmp_path / "o" / "a.mrc"
    assert output_path(tmp_path / "s.mrcs", tmp_path / "o") == tmp_path / "o" / "s.mrcs"
    assert default_output_folder([tmp_path]) == tmp_path / "denoised"
    assert default_output_folder([tmp_path / "x.mrc"]) == tmp_path / "denoised"
    assert remaining_seconds(10.0, 0.25) == pytest.approx(30.0)
    assert remaining_seconds(0.0, 0.0) is None
    with pytest.raises(InputError, match="missing.mrc: file not found"):
        micrographs_in([tmp_path / "missing.mrc"])


def test_cudnn_autotuner_only_for_runs_long_enough_to_pay_it_back(tmp_path, weights,
                                                                   monkeypatch):
    """5.2 s on the first K3 micrograph buys 0.02-0.03 s on each later one (H100): off if short."""
    from napari_cryoden.inference import batch, loops

    seen: list[bool] = []
    real = loops.fast_backend

    def recording(dev, precision, autotune=False):
        seen.append(autotune)
        return real(dev, precision, autotune)

    monkeypatch.setattr(loops, "fast_backend", recording)
    files = micrographs(tmp_path / "in", 2)
    denoiser = load_denoiser(weights, "cpu")
    list(denoise_files(denoiser, files, tmp_path / "short"))
    assert seen == [False, False]
    monkeypatch.setattr(batch, "AUTOTUNE_MIN_FILES", 2)
    list(denoise_files(denoiser, files, tmp_path / "long"))
    assert seen[2:] == [True, True]
    list(denoise_files(denoiser, files, tmp_path / "forced", autotune=False))
    assert seen[4:] == [False, False]
    seen.clear()  # a resumed run counts only the files still to do: 1 of 3 here
    third = tmp_path / "in" / "mic_third.mrc"
    third.write_bytes(files[0].read_bytes())
    list(denoise_files(denoiser, [*files, third], tmp_path / "long"))
    assert seen == [False]


def test_the_backend_flags_are_set_inside_and_restored_after():
    import torch

    from napari_cryoden.inference.loops import fast_backend

    cudnn = torch.backends.cudnn
    saved = cudnn.benchmark, cudnn.allow_tf32
    try:
        cudnn.benchmark, cudnn.allow_tf32 = True, True
        for autotune in (False, True):
            with fast_backend(torch.device("cuda"), "fp32", autotune):
                assert (cudnn.benchmark, cudnn.allow_tf32) == (autotune, False)
            assert (cudnn.benchmark, cudnn.allow_tf32) == (True, True)
        with fast_backend(torch.device("cuda"), "tf32"):
            assert (cudnn.benchmark, cudnn.allow_tf32) == (False, True)
    finally:
        cudnn.benchmark, cudnn.allow_tf32 = saved
