"""Score a model on a folder of micrograph pairs: metrics, baselines, checklist and figures.

:func:`evaluate` reads one (noisy, target) pair at a time, denoises it and feeds the streaming
:class:`~napari_cryoden.evaluation.scoring.Scorer`, so memory stays flat however large the
dataset. Besides the model it scores baselines on the same pixels: the noisy input itself; a
Gaussian filter whose width is never chosen on the micrograph it is scored on (given, recorded
with the model from its validation set, or else chosen for each micrograph on the others); and
the oracle Gaussian (each micrograph's own best width), labelled as an upper bound. The
headline metrics are per micrograph (each micrograph's whole image, then averaged), so they do
not depend on the patch size; per-patch means stay in ``per_patch``.
Scramble guards (:mod:`napari_cryoden.evaluation.guards`) add ``warnings`` when the model's
correlation is <= 0 or it does worse than the noisy input, the seed's symptoms of scrambled weights.
The returned report is the JSON written by ``cryoden evaluate`` (see docs/metrics.md).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..data.pairs import find_pairs
from ..errors import InputError
from ..io.images import read_image
from .baselines import centre_crop, gaussian_curve, leave_one_out_sigmas, width_best_on
from .checklist import run_checklist
from .guards import report_warnings
from .metrics import METRICS
from .scoring import TARGET_NOTES, GaussianFit, Scorer

__all__ = ["evaluate", "gaussian_fit", "validation_gaussian", "write_report", "summary_lines",
           "model_info", "TARGET_NOTES"]

_PANEL_CROP = 512

ProgressFn = Callable[[int, int, str], None]


def evaluate(model: Any, noisy_dir: str | os.PathLike[str], clean_dir: str | os.PathLike[str],
             *, patch_size: int = 1024, data_range: float = 1.0, device: Any = "cpu",
             normalization: str | None = None, target_kind: str = "clean",
             figures_dir: str | os.PathLike[str] | None = None, history: Any = None,
             denoise_fn: Callable[..., np.ndarray] | None = None,
             progress: ProgressFn | None = None, checkpoint: Any = None,
             gaussian_sigma: float | None = None) -> dict[str, Any]:
    """Evaluate a denoiser on every (noisy, target) pair of two folders.

    Parameters
    ----------
    model
        A weight file path (loaded with :func:`~napari_cryoden.models.checkpoint.load_checkpoint`)
        or an already built torch model.
    noisy_dir, clean_dir
        Folders paired by file name (:func:`~napari_cryoden.data.pairs.find_pairs`).
    patch_size
        Edge of the square patches of the per-patch metrics (last patch aligned to the edge).
    data_range
        Data range for PSNR (1.0: micrographs in [0, 1]).
    device
        Where the model runs.
    normalization
        Passed to the denoiser; default: the checkpoint's, else ``"none"``.
    target_kind
        ``"clean"`` (noise-free ground truth) or ``"noisy"`` (the target is itself noisy).
    figures_dir
        When given, PNG figures are saved there (loss curves if a history is known, scatter,
        histograms, a panel of the first micrograph's centre).
    history
        Training history (history.json mapping or list of epoch records); default: the
        checkpoint's ``epochs`` metadata.
    denoise_fn
        ``denoise_fn(model, image, normalization=..., device=...)``; default
        :func:`napari_cryoden.inference.denoiser.denoise`.
    progress
        Called as ``progress(done, total, file_name)`` after each micrograph.
    checkpoint
        The :class:`~napari_cryoden.models.checkpoint.Checkpoint` of an already loaded ``model``.
    gaussian_sigma
        The fitted Gaussian baseline's width (px). By default the width recorded with the model
        (chosen on its validation set), else for each micrograph the width best on the other
        micrographs (one extra read of each pair, central crops); with one micrograph and
        neither, only the oracle Gaussian is reported.

    Returns
    -------
    dict
        The report; its top level holds the per-micrograph means of ``mse``, ``rmse``,
        ``psnr``, ``corr`` and ``ssim`` (the headline), plus ``per_patch`` (means over patches;
        NaN correlations of flat patches are skipped), ``micrographs``, ``patches``,
        ``pooled``, ``baselines``, ``artifacts``, ``checklist`` and the rest (docs/metrics.md),
        and ``warnings``: scramble-guard messages (Pearson r <= 0, worse than the noisy input;
        :func:`napari_cryoden.evaluation.guards.report_warnings`), empty for a plausible denoiser.
    """
    if target_kind not in TARGET_NOTES:
        raise InputError(f"target_kind must be 'clean' or 'noisy', got {target_kind!r}")
    if isinstance(model, (str, os.PathLike)):
        from ..inference.load import load_denoiser

        loaded = load_denoiser(model, device)
        model, checkpoint, device = loaded.net, loaded.checkpoint, loaded.device
    if normalization is None:
        normalization = checkpoint.normalization if checkpoint is not None else "none"
    if denoise_fn is None:
        from ..inference.denoiser import denoise

        denoise_fn = denoise
    if history is None and checkpoint is not None:
        history = checkpoint.metadata.get("epochs")

    pairs = find_pairs(noisy_dir, clean_dir)
    fit, sigmas, curves = gaussian_fit(pairs, gaussian_sigma, checkpoint)
    scorer, panel = Scorer(patch_size, data_range, fit), None
    for done, (noisy_path, clean_path) in enumerate(pairs, start=1):
        noisy, clean = _read_pair(noisy_path, clean_path)
        denoised = denoise_fn(model, noisy, normalization=normalization, device=device)
        _check_output(denoised, noisy, noisy_path)
        scorer.add(denoised, clean, noisy, file=noisy_path.name,
                   sigma=None if sigmas is None else sigmas[done - 1],
                   curve=None if curves is None else curves[done - 1])
        panel = panel or _panel(noisy, denoised, clean)
        del noisy, clean, denoised
        if progress is not None:
            progress(done, len(pairs), noisy_path.name)

    scores = scorer.result(target_kind)
    report = scores.to_json()
    report["model"] = model_info(model, checkpoint, normalization)
    report["checklist"] = run_checklist(scores.checklist_input(report["model"].get("epoch")),
                                        history)
    report["warnings"] = report_warnings(report)
    if figures_dir is not None:
        report["figures"] = _save_figures(Path(figures_dir), scorer, panel, history)
    return report


def gaussian_fit(pairs: list[tuple[Path, Path]], sigma: float | None, checkpoint: Any = None,
                 ) -> tuple[GaussianFit | None, list[float] | None, list[np.ndarray] | None]:
    """Choose the fitted Gaussian baseline's width, never on the micrograph it is scored on.

    Parameters
    ----------
    pairs
        The (noisy, clean) files to be scored.
    sigma
        A width the caller gives (wins).
    checkpoint
        The model's checkpoint: a width recorded with it (``gaussian_baseline`` metadata,
        chosen on its validation set) comes next.

    Returns
    -------
    fit, sigmas, curves
        The fit (None with one micrograph and no other source) and, when each micrograph has
        its own width (chosen on the others: leave one out), those widths and the micrographs'
        :func:`~.baselines.gaussian_curve` s in ``pairs`` order (the oracle's width is read
        from the latter).
    """
    if sigma is not None:
        if not sigma >= 0:
            raise InputError(f"the Gaussian baseline's width must be >= 0 px, got {sigma}")
        return (GaussianFit(float(sigma), "the width given to evaluate (--gaussian-sigma)"),
                None, None)
    recorded = (checkpoint.metadata.get("gaussian_baseline") or {}) if checkpoint else {}
    if recorded.get("sigma") is not None:
        where = str(recorded.get("fitted_on", "the model's validation set"))
        return GaussianFit(float(recorded["sigma"]), where), None, None
    if len(pairs) < 2:
        return None, None, None
    curves = [gaussian_curve(*_read_pair(noisy, clean)) for noisy, clean in pairs]
    sigmas = leave_one_out_sigmas(curves)
    where = (f"the other {len(pairs) - 1} evaluated micrograph{'s' * (len(pairs) > 2)} "
             "(leave one out: each micrograph's width is the best on the others)")
    return GaussianFit(float(np.mean(sigmas)), where, tuple(sigmas)), sigmas, curves


def validation_gaussian(pairs: Any, most: int = 4) -> dict[str, Any] | None:
    """Choose the Gaussian baseline's width on a run's validation pairs, to record with its model.

    Parameters
    ----------
    pairs
        ``(noisy, target)`` file pairs of the validation set (the target clean, or a second
        noisy exposure: its independent noise leaves the best width unchanged on average);
        anything else (a packed store, nothing) gives None.
    most
        At most this many pairs are read (evenly spaced; each read whole, its central crop of
        at most 1024 px filtered at 26 widths): a few seconds at the start of a run on K3
        micrographs.

    Returns
    -------
    dict or None
        ``{"sigma", "fitted_on"}``, the ``gaussian_baseline`` metadata
        :func:`gaussian_fit` reads back.
    """
    if not isinstance(pairs, (list, tuple)) or not pairs:  # a packed store, or none
        return None
    picked = [pairs[i] for i in np.linspace(0, len(pairs) - 1, min(most, len(pairs)))
              .round().astype(int)]
    sigma = width_best_on([gaussian_curve(*_read_pair(Path(a), Path(b))) for a, b in picked])
    return {"sigma": sigma, "fitted_on": f"the training run's validation set ({len(picked)} of "
                                         f"its {len(pairs)} micrographs)"}


def _read_pair(noisy_path: Path, clean_path: Path) -> tuple[np.ndarray, np.ndarray]:
    noisy, _ = read_image(noisy_path)
    clean, _ = read_image(clean_path)
    if noisy.shape != clean.shape:
        raise InputError(f"{noisy_path}: shape {noisy.shape} differs from {clean_path} "
                         f"shape {clean.shape}")
    return noisy, clean


def _check_output(denoised: np.ndarray, noisy: np.ndarray, path: Path) -> None:
    if denoised.shape != noisy.shape:
        raise ValueError(f"{path}: denoiser returned shape {denoised.shape}, "
                         f"expected {noisy.shape}")
    if not np.isfinite(denoised).all():
        raise InputError(f"{path}: the model's output contains NaN or Inf "
                         "(diverged weights, or wrong normalization for this model?)")


def model_info(model: Any, checkpoint: Any, normalization: str) -> dict[str, Any]:
    """Return the report's ``model`` block: parameters, normalisation, weight file, metadata."""
    params = getattr(model, "parameters", None)
    info: dict[str, Any] = {"normalization": normalization, "path": None,
                            "parameters": sum(int(p.numel()) for p in params()) if params else None}
    if checkpoint is not None:
        meta = {k: v for k, v in checkpoint.metadata.items() if k != "epochs"}
        info.update(meta, path=str(checkpoint.path), config=checkpoint.config.to_dict())
        info["normalization"] = normalization
    return info


def _panel(noisy: np.ndarray, denoised: np.ndarray,
           clean: np.ndarray) -> tuple[np.ndarray, ...]:
    """Central crops of the first slice, for the report's noisy | denoised | clean panel."""
    return tuple(centre_crop(a if a.ndim == 2 else a[0], _PANEL_CROP).copy()
                 for a in (noisy, denoised, clean))


def _save_figures(folder: Path, scorer: Scorer, panel: tuple[np.ndarray, ...] | None,
                  history: Any) -> dict[str, str]:
    from ..plotting import reports as plotting

    epochs = history.get("epochs") if isinstance(history, Mapping) else history
    steps = history.get("steps") if isinstance(history, Mapping) else None
    model, noisy = scorer.accumulators["model"], scorer.accumulators["noisy"]
    figures = {
        "scatter": plotting.scatter_figure(*model.sample()),
        "histograms": plotting.histogram_figure(model.bin_edges, {
            "noisy": noisy.hist_pred, "denoised": model.hist_pred, "clean": model.hist_target}),
    }
    if panel is not None:
        figures["panel"] = plotting.panel_figure(*panel)
    if epochs or steps:
        figures["loss"] = plotting.loss_figure(steps, epochs)
    return {name: str(plotting.save_figure(fig, folder / f"{name}.png"))
            for name, fig in figures.items()}


def summary_lines(report: Mapping[str, Any]) -> list[str]:
    """Return the text table of the model's and baselines' metrics that ``cryoden evaluate`` prints.

    Parameters
    ----------
    report
        An evaluation report (:func:`evaluate`, or its JSON read back).

    Returns
    -------
    list of str
        A header of every :data:`~napari_cryoden.evaluation.metrics.METRICS` name, one row of
        per-micrograph means each for the model, the noisy input, the fitted Gaussian and the
        oracle Gaussian (an upper bound), the model's means over patches, and lines saying what
        was evaluated and where the Gaussian's width came from.
    """
    baselines = report.get("baselines") or {}
    rows: list[tuple[str, Mapping[str, Any]]] = [("model", report)]
    if baselines:
        rows.append(("noisy input", baselines["noisy"]))
        if "gaussian" in baselines:
            rows.append((f"Gaussian σ={baselines['gaussian']['sigma']:.2f}",
                         baselines["gaussian"]))
        if "gaussian_oracle" in baselines:
            rows.append(("Gaussian oracle", baselines["gaussian_oracle"]))
    if report.get("per_patch"):
        rows.append(("model, per patch", report["per_patch"]))
    lines = [f"{'':>18}" + "".join(f" {m.name:>10}" for m in METRICS)]
    lines += [f"{name:>18}" + "".join(f" {m.format(row.get(m.key)):>10}" for m in METRICS)
              for name, row in rows]
    lines.append(f"target: {report['target_kind']} ({report['n_micrographs']} micrographs, "
                 f"{report['n_patches']} patches of {report.get('patch_size')} px, data range "
                 f"{report['data_range']}); rows are means over micrographs of each whole "
                 "micrograph's value")
    if "gaussian" in baselines:
        lines.append(f"Gaussian: σ chosen on {baselines['gaussian']['fitted_on']}")
    elif baselines:
        lines.append("Gaussian: no fitted baseline (one micrograph, no width recorded with the "
                     "model): give --gaussian-sigma or more micrographs")
    if "gaussian_oracle" in baselines:
        lines.append("Gaussian oracle: σ chosen on each micrograph's own clean target, an upper "
                     "bound no user can choose")
    return lines


def write_report(report: Mapping[str, Any], json_path: str | os.PathLike[str]) -> Path:
    """Write the report as JSON (NaN and infinities become ``null``); parent folders are made."""
    from ..io.atomic import atomic_write_bytes

    path = Path(json_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(_jsonable(report), indent=2, allow_nan=False)
    atomic_write_bytes(path, text.encode())
    return path


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer, np.bool_)):
        return value.item()
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, (Path, np.ndarray)):
        return str(value) if isinstance(value, Path) else value.tolist()
    return value
