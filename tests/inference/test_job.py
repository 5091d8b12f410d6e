"""The denoise job of the widget, headless: one device resolution, whole image or a box."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from napari_cryoden.devices import resolve_device
from napari_cryoden.errors import InputError
from napari_cryoden.inference import denoiser
from napari_cryoden.inference.job import DenoiseJob, run_job
from napari_cryoden.inference.region import Box
from napari_cryoden.models.checkpoint import load_checkpoint


def _micrograph() -> np.ndarray:
    return np.random.default_rng(3).normal(2.0, 0.5, (80, 96)).astype(np.float32)


def _reference(weights: Path, image: np.ndarray) -> np.ndarray:
    model, checkpoint = load_checkpoint(weights)
    return denoiser.denoise(model, image, normalization=checkpoint.normalization)


def test_a_whole_image_job_equals_the_core_result_and_reports_progress(weights: Path) -> None:
    image = _micrograph()
    seen: list[tuple[int, int]] = []
    result = run_job(DenoiseJob(weights, "cpu", image, name="mic"),
                     lambda done, total: seen.append((done, total)))
    np.testing.assert_allclose(result.data, _reference(weights, image), atol=1e-6)
    assert result.seconds >= 0 and seen and seen[-1][0] == seen[-1][1]


def test_a_box_job_equals_the_crop_of_the_whole_image(weights: Path) -> None:
    image = _micrograph()
    result = run_job(DenoiseJob(weights, "auto", image, Box(10, 50, 0, 30), "mic"))
    np.testing.assert_allclose(result.data, _reference(weights, image)[10:50, 0:30], atol=1e-5)


def test_the_device_is_resolved_once_per_job(weights: Path, monkeypatch) -> None:
    """The job resolves its choice once; denoise() takes the torch.device as resolved."""
    calls: list[object] = []

    def counted(choice: object = "auto", *, check: bool = True) -> torch.device:
        calls.extend([choice] if check else [])  # check=False only parses (tile planning)
        return resolve_device(choice, check=check)

    for module in list(sys.modules.values()):
        if module is not None and module.__name__.startswith("napari_cryoden") and \
                getattr(module, "resolve_device", None) is resolve_device:
            monkeypatch.setattr(module, "resolve_device", counted)
    for box in (None, Box(0, 20, 0, 20)):
        run_job(DenoiseJob(weights, "cpu", _micrograph(), box))
        assert calls == ["cpu"]
        calls.clear()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_missing_device_is_a_one_line_error(weights: Path) -> None:
    with pytest.raises(InputError, match="CUDA is not available"):
        run_job(DenoiseJob(weights, "cuda", _micrograph()))


def test_a_job_with_a_pixel_cutoff_clips_hot_pixels_of_the_whole_image_and_of_a_box(
        weights: Path) -> None:
    image = _micrograph()
    hot = image.copy()
    hot[10, 12] = hot[60, 70] = 500.0
    model, checkpoint = load_checkpoint(weights)
    expected = denoiser.denoise(model, hot, normalization=checkpoint.normalization,
                                pixel_cutoff=5.0)
    whole = run_job(DenoiseJob(weights, "cpu", hot, pixel_cutoff=5.0)).data
    np.testing.assert_allclose(whole, expected, rtol=0, atol=1e-5)
    box = Box(40, 80, 50, 90)
    region = run_job(DenoiseJob(weights, "cpu", hot, box=box, pixel_cutoff=5.0)).data
    np.testing.assert_allclose(region, expected[40:80, 50:90], rtol=0, atol=1e-5)
    assert whole.max() < 10.0 < run_job(DenoiseJob(weights, "cpu", hot)).data.max()
