"""The seed's 10-point "Validation Checklist", turned into measured pass/fail checks.

The seed report ticked its checklist by eye. Here each item is a number computed from an
evaluation report (:func:`napari_cryoden.evaluation.report.evaluate`) and the training history,
compared with a stated threshold. An item that cannot be judged (e.g. no training history) has
``passed=None`` and a note saying why. docs/checklist.md gives the reason for every threshold.
Items 4 and 7 carry the scramble guards' notes (r <= 0; worse than the noisy input), so every view
of the checklist shows them.

The seed's thresholds are absolute (r > 0.85, PSNR > 20 dB) and say little on realistic low-dose
data, where even the truth correlates weakly with the noisy input and every method "fails" item
4. So each item also carries ``relative``: the same measure judged against the baselines scored
on the same pixels (the noisy input and the fitted Gaussian, else the oracle Gaussian), which
says something true about any data. Items about the training history or artifacts have no
baseline (``relative.passed`` is None, with a note).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from .guards import output_warnings
from .scores import ChecklistInput

__all__ = ["SEED_CHECKLIST", "THRESHOLDS", "format_checklist", "relative_judgement",
           "run_checklist"]

SEED_CHECKLIST = (
    "Training loss decreases smoothly",
    "Validation loss matches training loss",
    "Test MSE matches validation loss (±0.001)",
    "Correlation is positive and >0.85",
    "Brightness distribution aligns with target",
    "Scatter plot hugs 45° line",
    "Visual inspection shows clean denoising",
    "Consistent performance across all patches",
    "PSNR >20 dB",
    "No systematic artifacts",
)

THRESHOLDS: dict[str, float] = {
    "loss_max_rise": 0.10,  # largest epoch-to-epoch rise of the training loss (relative)
    "match_abs": 0.001,  # the seed's ±0.001 ...
    "match_rel": 0.20,  # ... or 20 % of the reference, whichever is larger
    "min_corr": 0.85,
    "max_brightness_sigma": 0.10,  # |mean(pred) − mean(target)| / std(target)
    "min_hist_overlap": 0.85,
    "calib_slope_low": 0.90,
    "calib_slope_high": 1.10,
    "min_gain_db_clean": 3.0,  # PSNR gain over the noisy input, clean targets
    "min_gain_db_noisy": 0.0,  # ... noisy targets cap the gain at 10·log10(2) ≈ 3 dB
    "min_margin_gaussian_db": 0.0,  # PSNR over the best Gaussian filter
    "max_patch_rmse_cv": 0.15,
    "gaussian_cv_factor": 1.25,  # ... or 1.25 x the Gaussian filter's cv on the same patches
    "max_worst_over_median": 1.5,
    "min_psnr_db": 20.0,
    "max_patch_bias_sigma": 0.20,
    "max_border_ratio": 1.25,
    "seam_ratio": 1.10,  # a line is a seam when its residual energy exceeds its neighbours'
    "seam_z": 6.0,  # by this factor AND stands out by this many robust standard deviations
}
_T = THRESHOLDS
_NOISY_TARGET = "target is noisy: the value is capped by the target's own noise"


def run_checklist(summary: ChecklistInput | Mapping[str, Any], history: Any = None,
                  patches: Sequence[Mapping[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Measure the seed's ten checklist items.

    Parameters
    ----------
    summary
        The scores to judge: a :class:`~napari_cryoden.evaluation.scoring.ChecklistInput`
        (:meth:`Scores.checklist_input`), or an evaluation report (read with
        :meth:`ChecklistInput.from_report`). Without the noisy baselines, item 7 is not judged.
    history
        The training history: a list of ``{"epoch", "train_loss", "val_loss", "val_mse"}``
        records, or a history.json mapping with an ``epochs`` list; ``None`` when unknown.
    patches
        Per-patch rows with ``rmse`` and ``bias``, for a report ``summary``; its ``patches``
        by default.

    Returns
    -------
    list of dict
        One per item: ``id``, ``check`` (the seed's wording), ``measure``, ``value``,
        ``threshold``, ``passed`` (True, False or None) and ``note``.
    """
    scores = (summary if isinstance(summary, ChecklistInput)
              else ChecklistInput.from_report(summary, patches))
    epochs = _epochs(history)
    record = _evaluated_epoch(epochs, scores.epoch)
    noisy = scores.target_kind == "noisy"
    items = [_loss_smooth(epochs), _train_val(record), _test_val(scores, record),
             _correlation(scores, noisy), _brightness(scores), _scatter(scores),
             _visual(scores, noisy), _consistency(scores.patches), _psnr(scores, noisy),
             _artifacts(scores)]
    for item in items:
        item["relative"] = relative_judgement(item["id"], scores)
    return items


_NO_BASELINE = {1: "a property of the training run: no baseline applies",
                2: "a property of the training run: no baseline applies",
                3: "a property of the training run: no baseline applies",
                10: "artifacts are not measured on the baselines"}


def relative_judgement(n: int, scores: ChecklistInput) -> dict[str, Any]:
    """Judge item ``n``'s measure against the baselines on the same pixels.

    Returns
    -------
    dict
        ``measure``, ``value`` (the model's and the baselines' numbers), ``passed`` (None when
        no baseline applies or none was scored) and ``note``.
    """
    if n in _NO_BASELINE:
        return _not_compared(_NO_BASELINE[n])
    noisy, gauss = scores.noisy_pooled, scores.gaussian_pooled
    if noisy is None or gauss is None:
        return _not_compared("needs the noisy image (the baselines)")
    label = "fitted Gaussian" if scores.gaussian_kind == "fitted" else "oracle Gaussian"
    model = scores.pooled
    needed = {4: ("corr",), 5: ("brightness_diff", "std_target", "hist_overlap"),
              6: ("calib_slope",), 7: ("psnr",), 9: ("psnr",)}.get(n, ())
    if any(key not in p for p in (model, noisy, gauss) for key in needed):
        return _not_compared("the baselines' scores lack this measure")
    if n in (4, 9):
        key = "corr" if n == 4 else "psnr"
        ok = model[key] > noisy[key] and model[key] > gauss[key]
        return _relative(f"{key} above the noisy input's and the {label}'s",
                         {"model": model[key], "noisy": noisy[key], "gaussian": gauss[key]}, ok)
    if n == 5:
        shift = {name: abs(p["brightness_diff"]) / p["std_target"] if p["std_target"] else 0.0
                 for name, p in (("model", model), ("noisy", noisy), ("gaussian", gauss))}
        overlap = {"model": model["hist_overlap"], "gaussian": gauss["hist_overlap"]}
        ok = (shift["model"] <= shift["noisy"] + 0.05
              and model["hist_overlap"] >= gauss["hist_overlap"] - 0.01)
        return _relative("brightness shift at most the noisy input's + 0.05 std; histogram "
                         f"overlap at least the {label}'s − 0.01",
                         {"diff_over_std": shift, "hist_overlap": overlap}, ok)
    if n == 6:
        value = {"model": model["calib_slope"], "gaussian": gauss["calib_slope"]}
        ok = abs(model["calib_slope"] - 1) <= abs(gauss["calib_slope"] - 1)
        return _relative(f"calibration slope at least as close to 1 as the {label}'s", value,
                         ok)
    if n == 7:
        gain, margin = model["psnr"] - noisy["psnr"], model["psnr"] - gauss["psnr"]
        return _relative(f"PSNR above the noisy input's and the {label}'s",
                         {"gain_over_noisy_db": gain, "margin_over_gaussian_db": margin},
                         gain > 0 and margin > 0)
    return _relative_consistency(scores.patches, label)


def _relative_consistency(patches: Sequence[Mapping[str, Any]], label: str) -> dict[str, Any]:
    """Item 8 against the Gaussian on the same patches: no more spread, no worse outlier."""
    gauss = [float(p["gaussian_rmse"]) for p in patches if p.get("gaussian_rmse") is not None]
    if len(patches) < 2 or len(gauss) != len(patches):
        return _not_compared("needs >= 2 patches with the baselines")
    cv, worst = _spread([float(p["rmse"]) for p in patches])
    gauss_cv, gauss_worst = _spread(gauss)
    value = {"cv": {"model": cv, "gaussian": gauss_cv},
             "worst_over_median": {"model": worst, "gaussian": gauss_worst}}
    return _relative(f"per-patch RMSE spread (cv) and worst/median at most the {label}'s",
                     value, cv <= gauss_cv and worst <= gauss_worst)


def _relative(measure: str, value: Any, passed: bool) -> dict[str, Any]:
    return {"measure": measure, "value": value, "passed": bool(passed), "note": None}


def _not_compared(note: str) -> dict[str, Any]:
    return {"measure": None, "value": None, "passed": None, "note": note}


def _item(n: int, measure: str, value: Any, threshold: str, passed: bool | None,
          note: str | None = None) -> dict[str, Any]:
    return {"id": n, "check": SEED_CHECKLIST[n - 1], "measure": measure, "value": value,
            "threshold": threshold, "passed": passed, "note": note}


def _epochs(history: Any) -> list[Mapping[str, Any]]:
    if history is None:
        return []
    if isinstance(history, Mapping):
        history = history.get("epochs") or []
    return sorted(history, key=lambda e: e.get("epoch", 0))


def _evaluated_epoch(epochs: list[Mapping[str, Any]],
                     epoch: int | None) -> Mapping[str, Any] | None:
    """Return the history record of the evaluated checkpoint's epoch, else of the best val loss."""
    if not epochs:
        return None
    match = [e for e in epochs if epoch is not None and e.get("epoch") == epoch]
    if match:
        return match[0]
    scored = [e for e in epochs if e.get("val_loss") is not None]
    return min(scored, key=lambda e: e["val_loss"]) if scored else epochs[-1]


def _matches(value: float, reference: float) -> tuple[float, bool]:
    tolerance = max(_T["match_abs"], _T["match_rel"] * abs(reference))
    return tolerance, abs(value - reference) <= tolerance


def _loss_smooth(epochs: list[Mapping[str, Any]]) -> dict[str, Any]:
    losses = [float(e["train_loss"]) for e in epochs if e.get("train_loss") is not None]
    measure = "training loss per epoch: last vs first, largest epoch-to-epoch rise"
    threshold = f"last <= first and no rise > {_T['loss_max_rise']:.0%}"
    if len(losses) < 2:
        return _item(1, measure, None, threshold, None,
                     f"needs >= 2 epochs of training history, got {len(losses)}")
    rise = max((b - a) / abs(a) if a else 0.0 for a, b in zip(losses, losses[1:], strict=False))
    value = {"first": losses[0], "last": losses[-1], "max_rise": max(rise, 0.0)}
    return _item(1, measure, value, threshold,
                 losses[-1] <= losses[0] and rise <= _T["loss_max_rise"])


def _train_val(record: Mapping[str, Any] | None) -> dict[str, Any]:
    measure = "|val_loss − train_loss| at the evaluated epoch"
    threshold = f"<= max({_T['match_abs']}, {_T['match_rel']:.0%} of train_loss)"
    if record is None or record.get("val_loss") is None or record.get("train_loss") is None:
        return _item(2, measure, None, threshold, None, "no training/validation loss in history")
    train, val = float(record["train_loss"]), float(record["val_loss"])
    tolerance, ok = _matches(val, train)
    return _item(2, measure, {"train_loss": train, "val_loss": val, "gap": abs(val - train),
                              "tolerance": tolerance}, threshold, ok)


def _test_val(scores: ChecklistInput, record: Mapping[str, Any] | None) -> dict[str, Any]:
    measure = "|test MSE − validation MSE| (pooled test MSE; val_mse of the evaluated epoch)"
    threshold = f"<= max({_T['match_abs']}, {_T['match_rel']:.0%} of val_mse)"
    if record is None or record.get("val_mse") is None:
        return _item(3, measure, None, threshold, None, "no validation MSE in history")
    test, val = float(scores.pooled["mse"]), float(record["val_mse"])
    tolerance, ok = _matches(test, val)
    return _item(3, measure, {"test_mse": test, "val_mse": val, "gap": abs(test - val),
                              "tolerance": tolerance, "epoch": record.get("epoch")}, threshold, ok)


def _correlation(scores: ChecklistInput, noisy: bool) -> dict[str, Any]:
    corr = float(scores.pooled["corr"])
    notes = output_warnings(corr, None) + ([_NOISY_TARGET] if noisy else [])
    return _item(4, "Pearson r of denoised vs target (all pixels)", corr,
                 f"> {_T['min_corr']}", _finite(corr) and corr > _T["min_corr"],
                 "; ".join(notes) or None)


def _brightness(scores: ChecklistInput) -> dict[str, Any]:
    pooled = scores.pooled
    shift = abs(pooled["brightness_diff"]) / pooled["std_target"] if pooled["std_target"] else 0.0
    value = {"brightness_diff": pooled["brightness_diff"], "diff_over_std": shift,
             "hist_overlap": pooled["hist_overlap"]}
    ok = shift <= _T["max_brightness_sigma"] and pooled["hist_overlap"] >= _T["min_hist_overlap"]
    return _item(5, "|mean(denoised) − mean(target)| / std(target); histogram overlap", value,
                 f"<= {_T['max_brightness_sigma']}; overlap >= {_T['min_hist_overlap']}", ok)


def _scatter(scores: ChecklistInput) -> dict[str, Any]:
    pooled = scores.pooled
    slope = float(pooled["calib_slope"])
    value = {"calib_slope": slope, "calib_intercept": pooled["calib_intercept"],
             "slope_pred_on_target": pooled["slope"]}
    low, high = _T["calib_slope_low"], _T["calib_slope_high"]
    return _item(6, "slope of the least-squares fit of target on denoised (calibration)", value,
                 f"in [{low}, {high}]", _finite(slope) and low <= slope <= high,
                 "the fit of denoised on target has slope ≈ r² for an ideal denoiser; see "
                 "docs/checklist.md")


def _visual(scores: ChecklistInput, noisy: bool) -> dict[str, Any]:
    measure = "PSNR gain over the noisy input; PSNR margin over the best Gaussian filter"
    need = _T["min_gain_db_noisy" if noisy else "min_gain_db_clean"]
    threshold = f"gain > {need} dB; margin > {_T['min_margin_gaussian_db']} dB"
    if scores.noisy_pooled is None or scores.gaussian_pooled is None:
        return _item(7, measure, None, threshold, None, "needs the noisy image")
    gain = scores.pooled["psnr"] - scores.noisy_pooled["psnr"]
    margin = scores.pooled["psnr"] - scores.gaussian_pooled["psnr"]
    ok = gain > need and margin > _T["min_margin_gaussian_db"]
    value = {"gain_over_noisy_db": gain, "margin_over_gaussian_db": margin,
             "gaussian_sigma": scores.gaussian_sigma}
    notes = ["noisy target: the gain cannot exceed 10·log10(2) ≈ 3 dB"] if noisy else []
    if scores.gaussian_kind == "oracle":
        notes.append("no fitted Gaussian (one micrograph, no width recorded with the model): "
                     "the margin is over the oracle Gaussian, whose width was chosen on this "
                     "target, a stricter bar than a fitted one")
    if gain < 0:  # PSNR below the noisy input's: the model is worse than the identity
        notes.insert(0, "the model is worse than the identity (the noisy input itself): "
                        "scrambled weights or the wrong normalisation?")
    return _item(7, measure, value, threshold, ok, "; ".join(notes) or None)


def _consistency(patches: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    measure = ("coefficient of variation (cv) of per-patch RMSE, vs the Gaussian filter's on the "
               "same patches; worst / median patch RMSE")
    threshold = (f"cv <= max({_T['max_patch_rmse_cv']}, {_T['gaussian_cv_factor']} x Gaussian "
                 f"cv); worst/median <= {_T['max_worst_over_median']}")
    if len(patches) < 2:
        return _item(8, measure, None, threshold, None, f"needs >= 2 patches, got {len(patches)}")
    cv, worst = _spread([float(p["rmse"]) for p in patches])
    gauss = [float(p["gaussian_rmse"]) for p in patches if p.get("gaussian_rmse") is not None]
    gauss_cv = _spread(gauss)[0] if len(gauss) == len(patches) else None
    allowed = max(_T["max_patch_rmse_cv"], _T["gaussian_cv_factor"] * (gauss_cv or 0.0))
    rmse = [float(p["rmse"]) for p in patches]
    value = {"cv": cv, "gaussian_cv": gauss_cv, "worst_over_median": worst,
             "best_rmse": min(rmse), "worst_rmse": max(rmse)}
    return _item(8, measure, value, threshold,
                 cv <= allowed and worst <= _T["max_worst_over_median"])


def _spread(values: Sequence[float]) -> tuple[float, float]:
    """Coefficient of variation and worst (largest) over median."""
    mean, middle = statistics.fmean(values), statistics.median(values)
    cv = statistics.pstdev(values) / mean if mean else 0.0
    return cv, (max(values) / middle if middle else 1.0)


def _psnr(scores: ChecklistInput, noisy: bool) -> dict[str, Any]:
    pooled = scores.pooled
    value = float(pooled["psnr"])
    notes = [_NOISY_TARGET] if noisy else []
    data_range = scores.data_range
    span = pooled.get("max_target", 0.0) - pooled.get("min_target", 0.0)
    if span > 1.05 * data_range or span < 0.05 * data_range:
        notes.append(f"target spans {span:.3g} but data_range is {data_range:g}: PSNR depends "
                     "on the stated range")
    return _item(9, "PSNR of the pooled MSE, 10·log10(data_range² / MSE)", value,
                 f"> {_T['min_psnr_db']} dB", value > _T["min_psnr_db"],
                 "; ".join(notes) or None)


def _artifacts(scores: ChecklistInput) -> dict[str, Any]:
    art, std = scores.artifacts or {}, scores.pooled["std_target"]
    biases = [abs(float(p["bias"])) for p in scores.patches if p.get("bias") is not None]
    bias = max(biases) / std if biases and std else None
    value = {"max_patch_bias_over_std": bias, "border_ratio": art.get("border_ratio"),
             "seam_ratio": art.get("seam_ratio"), "seam_z": art.get("seam_z"),
             "seam_line": art.get("seam_line")}
    verdicts = []
    if bias is not None:
        verdicts.append(bias <= _T["max_patch_bias_sigma"])
    if art.get("border_ratio") is not None:
        verdicts.append(art["border_ratio"] <= _T["max_border_ratio"])
    if art.get("seam_z") is not None:
        seam = art["seam_ratio"] > _T["seam_ratio"] and art["seam_z"] > _T["seam_z"]
        verdicts.append(not seam)
    threshold = (f"max |patch mean residual| <= {_T['max_patch_bias_sigma']}·std(target); "
                 f"border/interior RMSE <= {_T['max_border_ratio']}; no line with residual > "
                 f"{_T['seam_ratio']}× its neighbours at z > {_T['seam_z']:g}")
    note = None if len(verdicts) == 3 else "some measures unavailable (image too small?)"
    return _item(10, "per-patch mean residual; border vs interior residual RMSE; seams",
                 value, threshold, all(verdicts) if verdicts else None, note)


def _finite(x: float) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def format_checklist(items: Sequence[Mapping[str, Any]]) -> str:
    """Format :func:`run_checklist`'s items as a text table: one row each, notes indented below.

    ``seed`` is the verdict against the seed's absolute threshold, ``vs base`` against the
    baselines (``better``, ``worse`` or ``n/a``).
    """
    lines = [f"{'#':>2}  {'seed':<6}  {'vs base':<7}  {'check':<44}  value"]
    for item in items:
        verdict = {True: "PASS", False: "FAIL", None: "n/a"}[item["passed"]]
        rel = (item.get("relative") or {}).get("passed")
        versus = {True: "better", False: "worse", None: "n/a"}[rel]
        lines.append(f"{item['id']:>2}  {verdict:<6}  {versus:<7}  {item['check']:<44}  "
                     f"{_format_value(item['value'])}  (need {item['threshold']})")
        if item.get("note"):
            lines.append(f"{'':>21}note: {item['note']}")
        if rel is not None:
            relative = item["relative"]
            lines.append(f"{'':>21}vs baselines: {relative['measure']}: "
                         f"{_format_value(relative['value'])}")
    passed = sum(item["passed"] is True for item in items)
    judged = sum(item["passed"] is not None for item in items)
    better = sum((item.get("relative") or {}).get("passed") is True for item in items)
    compared = sum((item.get("relative") or {}).get("passed") is not None for item in items)
    line = (f"checklist: {passed}/{judged} judged items pass the seed's absolute thresholds, "
            f"{len(items) - judged} not judged")
    if compared:
        line += f"; {better}/{compared} compared items are at least as good as the baselines"
    lines.append(line)
    return "\n".join(lines)


def _format_value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_format_value(v)}" for k, v in value.items() if v is not None)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
