"""Simulate micrographs and score a denoiser on them: the data half of the public API."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config.sections import ConfigError
from ._models import ModelSpec, as_model

if TYPE_CHECKING:
    from ..simulation.micrographs import SimulatedDataset

__all__ = ["evaluate", "simulate"]


def simulate(out_dir: str | os.PathLike[str], n: int = 8, *, size: int = 512,
                     seed: int = 0, vary: dict[str, tuple[float, float]] | None = None,
                     **params: Any) -> SimulatedDataset:
    """Write simulated noisy/clean micrograph pairs, for trying out training and evaluation.

    Files go to ``out_dir/noisy/mic_0000.mrc`` and ``out_dir/clean/mic_0000.mrc`` …, with
    ``out_dir/simulation.json`` recording the parameters, the seed and each micrograph's defocus
    and particles. The same seed gives the same files.

    Parameters
    ----------
    out_dir
        Folder to write (created if needed).
    n
        Number of micrographs (>= 1).
    size
        Edge of each micrograph in pixels (>= 16).
    seed
        Seed of every random draw.
    vary
        Fields drawn per micrograph from a range, e.g. ``{"dose": (10.0, 60.0)}``.
    **params
        Fields of :class:`napari_cryoden.simulation.micrographs.SimulationParams`, in the
        microscopist's units: ``dose`` (e/Å², default 20), ``pixel_size`` (Å), ``clean_dose``
        (None: noise-free targets), ``defocus_min``/``defocus_max`` (µm), ``contrast_scale``
        (1: physical; 20 makes particles plain, as in the demo) and more.

    Returns
    -------
    napari_cryoden.simulation.micrographs.SimulatedDataset
        The files written; ``.noisy_dir`` and ``.clean_dir`` are the two folders.

    Raises
    ------
    ConfigError
        An unknown or out-of-range parameter.

    Examples
    --------
    >>> data = cryoden.simulate("sim", n=4, size=256, dose=30.0, contrast_scale=20.0)
    >>> data.noisy_dir
    PosixPath('sim/noisy')
    """
    from ..simulation.micrographs import simulate_dataset as run
    from ..simulation.params import SimulationParams

    if n < 1 or size < 16:
        raise ConfigError(f"simulation: n must be >= 1 and size >= 16 (got {n}, {size})")
    return run(out_dir, n, size, seed, SimulationParams.from_dict(params), vary=vary)


def evaluate(model: ModelSpec, noisy: str | os.PathLike[str], clean: str | os.PathLike[str], *,
             target_kind: str = "clean", patch_size: int | None = None, data_range: float = 1.0,
             device: str = "auto", history: Any = None,
             figures_dir: str | os.PathLike[str] | None = None,
             json_path: str | os.PathLike[str] | None = None,
             gaussian_sigma: float | None = None) -> dict[str, Any]:
    """Score a denoiser on pairs of noisy micrographs and their targets, as ``cryoden evaluate``.

    Parameters
    ----------
    model
        A :class:`Model`, a ``.safetensors`` path or a shipped model's name (``"general"``).
    noisy, clean
        Folders of micrographs paired by file name.
    target_kind
        ``"clean"`` (noise-free ground truth) or ``"noisy"`` (the targets are themselves noisy,
        e.g. a second exposure: PSNR is then capped by their noise).
    patch_size
        Edge of the patches of the per-patch metrics; default: the model's training patch size.
    data_range
        Data range for PSNR (1.0 for micrographs in [0, 1]).
    device
        ``auto`` (cuda > mps > cpu), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
    history
        The run's ``history.json`` contents for the loss-curve checks; default: the
        ``history.json`` next to the weight file, if there is one.
    figures_dir
        Also save PNG figures (loss curves, scatter, histograms, a panel) in this folder.
    json_path
        Also write the report to this JSON file.
    gaussian_sigma
        The Gaussian baseline's width (px); default: the one recorded with the model (chosen
        on its validation set), else for each micrograph the width best on the others.

    Returns
    -------
    dict
        The report (docs/metrics.md): per-micrograph means of ``mse``, ``rmse``, ``psnr``,
        ``corr`` and ``ssim`` (``per_patch``: the means over patches), ``baselines`` (the noisy
        input, the fitted Gaussian, the oracle Gaussian as an upper bound), ``checklist`` and
        ``warnings`` (empty for a plausible denoiser).

    Examples
    --------
    >>> report = cryoden.evaluate("run/best.safetensors", "sim/noisy", "sim/clean")
    >>> report["psnr"] > report["baselines"]["noisy"]["psnr"]
    True
    """
    from ..evaluation.report import evaluate as run
    from ..evaluation.report import write_report

    loaded = as_model(model, device)
    beside = loaded.path.parent / "history.json"
    if history is None and beside.is_file():
        history = json.loads(beside.read_text())
    report = run(loaded.net, noisy, clean, device=device, normalization=loaded.normalization,
                 patch_size=patch_size or loaded.config.data.patch_size, data_range=data_range,
                 target_kind=target_kind, figures_dir=figures_dir, history=history,
                 checkpoint=loaded.checkpoint, gaussian_sigma=gaussian_sigma)
    if json_path is not None:
        write_report(report, Path(json_path))
    return report
