"""The seed's checklist as measured checks: each item passes and fails at its threshold."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from napari_cryoden.evaluation.checklist import SEED_CHECKLIST, format_checklist, run_checklist


def _summary(**pooled: float) -> dict[str, Any]:
    """A summary like the seed's trained model (r 0.87, PSNR 21.6 dB), clean targets."""
    base = {"mse": 0.00696, "psnr": 21.57, "corr": 0.87, "brightness_diff": 0.0003,
            "std_target": 0.17, "hist_overlap": 0.93, "slope": 0.76, "calib_slope": 1.0,
            "calib_intercept": 0.0, "min_target": 0.0, "max_target": 1.0}
    return {
        "target_kind": "clean", "data_range": 1.0, "model": {"epoch": 5},
        "pooled": {**base, **pooled},
        "baselines": {"noisy": {"pooled": {"psnr": 12.0}},
                      "gaussian": {"sigma": 1.5, "pooled": {"psnr": 19.0}}},
        "artifacts": {"border_ratio": 1.05, "seam_ratio": 1.02, "seam_z": 2.0,
                      "seam_line": "row 7 of 64x64"},
        "patches": [{"rmse": 0.0828 + 0.0001 * i, "bias": 0.001} for i in range(11)],
    }


HISTORY = [
    {"epoch": 1, "train_loss": 0.008058, "val_loss": 0.006967, "val_mse": 0.006967},
    {"epoch": 3, "train_loss": 0.007008, "val_loss": 0.006963, "val_mse": 0.006963},
    {"epoch": 5, "train_loss": 0.007059, "val_loss": 0.006961, "val_mse": 0.006961},
]


def _passed(summary: dict[str, Any], history: Any = HISTORY) -> dict[int, bool | None]:
    return {item["id"]: item["passed"] for item in run_checklist(summary, history)}


def test_seed_like_model_passes_every_item() -> None:
    items = run_checklist(_summary(), HISTORY)
    assert [i["id"] for i in items] == list(range(1, 11))
    assert [i["check"] for i in items] == list(SEED_CHECKLIST)
    failed = [(i["id"], i["value"]) for i in items if i["passed"] is not True]
    assert failed == []
    for item in items:
        assert item["measure"] and item["threshold"]


def test_without_history_training_items_are_not_judged() -> None:
    items = run_checklist(_summary(), None)
    for item in items[:3]:
        assert item["passed"] is None and item["note"]
    assert all(item["passed"] is True for item in items[3:])


@pytest.mark.parametrize(("item", "pooled", "good", "bad"), [
    (4, "corr", 0.86, 0.84),
    (9, "psnr", 20.1, 19.9),
    (6, "calib_slope", 0.92, 0.88),
    (6, "calib_slope", 1.08, 1.12),
    (5, "hist_overlap", 0.86, 0.84),
    (5, "brightness_diff", -0.016, -0.018),  # 0.1 x std_target 0.17 = 0.017
])
def test_pooled_items_at_their_thresholds(item: int, pooled: str, good: float,
                                          bad: float) -> None:
    assert _passed(_summary(**{pooled: good}))[item] is True
    assert _passed(_summary(**{pooled: bad}))[item] is False


@pytest.mark.parametrize(("val_mse", "good", "bad"), [
    (0.003, 0.0039, 0.0041),  # small MSE (< 0.005): the seed's absolute ±0.001
    (0.1, 0.119, 0.121),  # large MSE: 20 % of the validation MSE
])
def test_test_mse_must_match_validation_mse(val_mse: float, good: float, bad: float) -> None:
    history = copy.deepcopy(HISTORY)
    history[-1]["val_mse"] = val_mse
    assert _passed(_summary(mse=good), history)[3] is True
    assert _passed(_summary(mse=bad), history)[3] is False


def test_checklist_uses_the_evaluated_checkpoints_epoch() -> None:
    history = copy.deepcopy(HISTORY)
    history[0]["val_mse"] = 0.02  # epoch 1 does not match the test MSE
    summary = _summary()
    assert _passed(summary, history)[3] is True  # the model is epoch 5
    summary["model"] = {"epoch": 1}
    item = run_checklist(summary, history)[2]
    assert item["passed"] is False and item["value"]["epoch"] == 1


def test_training_loss_must_decrease_smoothly() -> None:
    rising = copy.deepcopy(HISTORY)
    rising.insert(2, {"epoch": 4, "train_loss": 0.0079, "val_loss": 0.007, "val_mse": 0.007})
    assert _passed(_summary(), rising)[1] is False  # +12.7 % from epoch 3 to 4
    diverging = [{"epoch": 1, "train_loss": 0.01}, {"epoch": 2, "train_loss": 0.0105}]
    assert _passed(_summary(), diverging)[1] is False  # small rise, but ends above its start
    assert _passed(_summary(), {"epochs": HISTORY, "steps": []})[1] is True  # history.json form


def test_validation_loss_must_match_training_loss() -> None:
    history = copy.deepcopy(HISTORY)
    history[-1]["train_loss"] = 0.0050  # val 0.006961 is 39 % above: overfitting
    assert _passed(_summary(), history)[2] is False


@pytest.mark.parametrize(("kind", "noisy_psnr", "expected"), [
    ("clean", 18.0, True), ("clean", 19.0, False), ("noisy", 21.0, True),
])
def test_visual_check_needs_gain_over_noisy_input(kind: str, noisy_psnr: float,
                                                  expected: bool) -> None:
    summary = _summary()
    summary["target_kind"] = kind
    summary["baselines"]["noisy"]["pooled"]["psnr"] = noisy_psnr  # model 21.57 dB
    assert _passed(summary)[7] is expected


def test_visual_check_needs_to_beat_the_gaussian_filter() -> None:
    summary = _summary()
    summary["baselines"]["gaussian"]["pooled"]["psnr"] = 21.6
    assert _passed(summary)[7] is False


def test_patch_consistency() -> None:
    summary = _summary()
    summary["patches"][-1]["rmse"] = 0.13  # one patch 1.57x the median
    assert _passed(summary)[8] is False
    summary["patches"] = [{"rmse": r, "bias": 0.0} for r in (0.05, 0.07) * 5]  # cv 0.17
    assert _passed(summary)[8] is False
    for patch, gaussian in zip(summary["patches"], (0.06, 0.08) * 5, strict=True):
        patch["gaussian_rmse"] = gaussian  # the content varies: the filter's cv is 0.14 too
    assert _passed(summary)[8] is True
    summary["patches"] = summary["patches"][:1]
    assert _passed(summary)[8] is None


@pytest.mark.parametrize(("change", "expected"), [
    ({"border_ratio": 1.24}, True),
    ({"border_ratio": 1.3}, False),
    ({"seam_ratio": 1.3, "seam_z": 8.0}, False),
    ({"seam_ratio": 1.3, "seam_z": 4.0}, True),  # within the lines' natural spread
    ({"seam_ratio": 1.05, "seam_z": 9.0}, True),  # stands out, but too faint to matter
])
def test_artifact_check(change: dict[str, float], expected: bool) -> None:
    summary = _summary()
    summary["artifacts"].update(change)
    assert _passed(summary)[10] is expected


def test_artifact_check_flags_local_bias() -> None:
    summary = _summary()
    summary["patches"][3]["bias"] = 0.04  # 0.24 x std_target
    assert _passed(summary)[10] is False


def test_noisy_target_and_odd_range_are_noted() -> None:
    summary = _summary(max_target=3.0)
    summary["target_kind"] = "noisy"
    items = run_checklist(summary, HISTORY)
    assert "noisy" in items[3]["note"] and "noisy" in items[8]["note"]
    assert "data_range" in items[8]["note"]


def test_format_checklist_lists_every_item() -> None:
    summary = _summary(corr=0.5)
    text = format_checklist(run_checklist(summary, None))
    lines = text.splitlines()
    for check in SEED_CHECKLIST:
        assert sum(check in line for line in lines) == 1
    assert "FAIL" in next(line for line in lines if SEED_CHECKLIST[3] in line)
    assert "n/a" in next(line for line in lines if SEED_CHECKLIST[0] in line)
    assert lines[-1] == ("checklist: 6/7 judged items pass the seed's absolute thresholds, 3 not "
                         "judged; 2/2 compared items are at least as good as the baselines")


def _low_dose(corr: float, noisy_corr: float, gaussian_corr: float) -> dict[str, Any]:
    """Realistic low-dose scores: even the best output correlates weakly with the truth."""
    pooled = {"mse": 0.004, "psnr": 24.0, "corr": corr, "brightness_diff": 0.001,
              "std_target": 0.05, "hist_overlap": 0.80, "slope": 0.4, "calib_slope": 1.02,
              "calib_intercept": 0.0, "min_target": 0.0, "max_target": 1.0}
    summary = _summary(**pooled)

    def baseline(r: float, psnr: float, overlap: float, slope: float) -> dict[str, Any]:
        return {"pooled": {**pooled, "corr": r, "psnr": psnr, "hist_overlap": overlap,
                           "calib_slope": slope}}

    summary["baselines"] = {"noisy": baseline(noisy_corr, 12.0, 0.3, 0.05),
                            "gaussian": {"sigma": 3.0, **baseline(gaussian_corr, 21.0, 0.6,
                                                                  0.8)}}
    summary["patches"] = [{"rmse": 0.06 + 0.001 * i, "bias": 0.0, "gaussian_rmse": 0.09 + 0.003 * i}
                          for i in range(11)]
    return summary


def test_relative_judgements_say_something_true_on_low_dose_data() -> None:
    items = {i["id"]: i for i in run_checklist(_low_dose(0.62, 0.15, 0.55), HISTORY)}
    # the seed's absolute r > 0.85 fails every method on such data; beating the baselines does not
    assert items[4]["passed"] is False and items[4]["relative"]["passed"] is True
    assert items[4]["relative"]["value"] == {"model": 0.62, "noisy": 0.15, "gaussian": 0.55}
    assert items[5]["passed"] is False and items[5]["relative"]["passed"] is True
    assert items[6]["relative"]["passed"] is True and items[8]["relative"]["passed"] is True
    assert items[7]["relative"]["passed"] is True and items[9]["relative"]["passed"] is True
    assert all(items[n]["relative"]["passed"] is None for n in (1, 2, 3, 10))
    # a model the fitted Gaussian beats is told so, whatever the absolute thresholds say
    worse = {i["id"]: i for i in run_checklist(_low_dose(0.50, 0.15, 0.55), HISTORY)}
    assert worse[4]["relative"]["passed"] is False
    text = format_checklist(list(items.values()))
    assert "vs baselines: corr above the noisy input's and the fitted Gaussian's" in text
