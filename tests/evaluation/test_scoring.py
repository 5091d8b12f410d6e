"""One scorer for `cryoden evaluate` and the Inspect widget: same numbers, typed results."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from napari_cryoden.evaluation.checklist import run_checklist
from napari_cryoden.evaluation.inspection import analyse, metric_map
from napari_cryoden.evaluation.metrics import METRICS
from napari_cryoden.evaluation.report import summary_lines
from napari_cryoden.evaluation.scores import ChecklistInput
from napari_cryoden.evaluation.scoring import GaussianFit, Scorer


def trio(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    clean = ndimage.gaussian_filter(rng.random((96, 128)), 3)
    clean = (0.3 + 0.5 * (clean - clean.min()) / np.ptp(clean)).astype(np.float32)
    noisy = (clean + 0.1 * rng.standard_normal(clean.shape)).astype(np.float32)
    return noisy, ndimage.uniform_filter(noisy, 3), clean


def test_inspect_scores_an_image_as_evaluate_does() -> None:
    noisy, denoised, clean = trio()
    scorer = Scorer(32)
    scorer.add(denoised, clean, noisy, file="a.mrc")
    report = scorer.result().to_json()
    analysis = analyse(noisy, denoised, clean, 32)
    assert [{"file": "a.mrc", "z": 0, **row} for row in analysis.rows] == report["patches"]
    assert analysis.checklist == run_checklist(report)
    # one image and no width from elsewhere: only the oracle Gaussian, labelled as such
    assert "gaussian" not in report["baselines"]
    assert report["baselines"]["gaussian_oracle"]["sigma"] > 0
    assert "upper bound" in report["baselines"]["gaussian_oracle"]["note"]


def test_scores_are_frozen_and_their_json_is_the_reports() -> None:
    noisy, denoised, clean = trio()
    scorer = Scorer(48, data_range=2.0)
    scorer.add(denoised, clean, noisy, file="a.mrc")
    scorer.add(np.stack([denoised] * 2), np.stack([clean] * 2), np.stack([noisy] * 2),
               file="b.mrc")
    scores = scorer.result("noisy")
    with pytest.raises(AttributeError):
        scores.sigma = 1.0  # type: ignore[misc]
    report = scores.to_json()
    assert report["n_micrographs"] == 2 and report["n_patches"] == 3 * 6
    assert report["target_kind"] == "noisy" and "capped" in report["target_note"]
    assert [(p["file"], p["z"]) for p in report["patches"][::6]] == [
        ("a.mrc", 0), ("b.mrc", 0), ("b.mrc", 1)]
    assert report["patches"][0]["mse"] == report["patches"][6]["mse"]  # same image, same score
    assert report["worst_patch"]["rmse"] == max(p["rmse"] for p in report["patches"])
    assert report["pooled"]["n_pixels"] == 3 * clean.size
    assert ChecklistInput.from_report(report) == ChecklistInput.from_report(
        report, report["patches"])


def test_without_the_noisy_image_there_are_no_baselines_and_item_7_is_not_judged() -> None:
    _, denoised, clean = trio()
    analysis = analyse(None, denoised, clean, 32)
    assert analysis.scores is not None and analysis.scores.noisy is None
    assert "noisy_rmse" not in analysis.rows[0]
    item = analysis.checklist[6]
    assert item["passed"] is None and item["value"] is None
    assert item["note"] == "needs the noisy image"


def test_the_noisy_image_is_given_for_every_micrograph_or_none() -> None:
    noisy, denoised, clean = trio()
    scorer = Scorer(32)
    scorer.add(denoised, clean, noisy)
    with pytest.raises(ValueError, match="every micrograph or for none"):
        scorer.add(denoised, clean)


def test_every_metric_of_the_table_reaches_the_report_and_the_summary() -> None:
    noisy, denoised, clean = trio()
    scorer = Scorer(32, gaussian=GaussianFit(1.5, "a width from elsewhere"))
    scorer.add(denoised, clean, noisy, file="a.mrc")
    report = scorer.result().to_json()
    lines = summary_lines(report)
    for m in METRICS:
        assert np.isfinite(report[m.key]) and np.isfinite(report["pooled"][m.key]), m.key
        assert np.isfinite(report["per_patch"][m.key]), m.key
        assert np.isfinite(report["micrographs"][0][m.key]), m.key
        for name in ("noisy", "gaussian", "gaussian_oracle"):
            assert np.isfinite(report["baselines"][name][m.key]), (name, m.key)
        assert all(m.key in row for row in report["patches"])
        assert metric_map(report["patches"], m.key).shape == (3, 4)
        assert m.name in lines[0]
        assert m.format(report[m.key]) in lines[1]
    assert [line.split()[0] for line in lines[1:6]] == ["model", "noisy", "Gaussian", "Gaussian",
                                                         "model,"]
    assert "σ=1.50" in lines[3] and "oracle" in lines[4]
    assert lines[6].startswith("target: clean (1 micrographs, 12 patches")
    assert "a width from elsewhere" in lines[7] and "upper" in lines[8]
