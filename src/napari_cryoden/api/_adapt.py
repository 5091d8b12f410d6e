"""Adapt a model to the user's micrographs: the ``cryoden adapt`` command and ``api.adapt``.

Reads the micrographs (and their even/odd halves, and clean targets when given), runs
:func:`~napari_cryoden.training.adapt.adapt_steps`, writes the kept model and returns a report
of what the time bought: held-out loss before and after and, against clean targets, PSNR before
and after. ``split_frame_snr`` is reserved in the report for the split-frame SNR estimator
(issue 15), which needs no clean target.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..inference.load import Denoiser, load_denoiser

__all__ = ["adapt"]

PathLike = str | os.PathLike[str]


def adapt(model: str | os.PathLike[str] | None, micrographs: Sequence[PathLike] = (),
          out: PathLike | None = None, *, even: Sequence[PathLike] = (),
          odd: Sequence[PathLike] = (), clean: Sequence[PathLike] = (),
          seconds: float | None = None, device: str = "auto", seed: int = 0,
          progress: Callable[[Any], None] | None = None, **options: Any) -> dict[str, Any]:
    """Fine-tune a model on one's own micrographs, self-supervised, and keep it only if it helped.

    Parameters
    ----------
    model
        A ``.safetensors`` file or a shipped model's name (``"general"``, ``"general-fast"``).
    micrographs
        Noisy micrographs (blind-spot objective); leave empty when giving ``even``/``odd``.
    out
        Where to write the kept model (``.safetensors``); None: not written.
    even, odd
        Even/odd frame sums of the same exposures, in the same order (Noise2Noise).
    clean
        Optional clean targets, one per micrograph (per even half), for PSNR before/after.
    seconds
        Time box; None: 60 s on a CPU, 10 s on a GPU.
    device, seed
        Where to fine-tune; which patches are held out and how batches are drawn.
    progress
        Called with each :class:`~napari_cryoden.training.adapt.AdaptProgress`.
    **options
        Further :class:`~napari_cryoden.training.adapt.AdaptOptions` fields (``lr``,
        ``patch_size``, ``batch_size``, ``held_out``, ``max_steps``, ...).

    Returns
    -------
    dict
        The report (JSON-able): the start and output model, mode, whether the start was kept,
        held-out loss before/after, steps, seconds, PSNR against ``clean`` when given.

    Raises
    ------
    InputError
        No micrographs, both kinds given, halves or targets that do not pair up, unreadable
        files; the message names the file.
    """
    from ..training.adapt import AdaptOptions, AdaptResult, adapt_steps

    start = load_denoiser(model, device)
    pairs, names = _read_inputs(micrographs, even, odd)
    opts = AdaptOptions(seconds=seconds, device=device, seed=seed, **options)
    result: AdaptResult | None = None
    for event in adapt_steps(start.net, pairs, start.normalization, opts, names=names):
        if isinstance(event, AdaptResult):
            result = event
        elif progress is not None:
            progress(event)
    assert result is not None
    report = _report(start, result, out)
    if clean:
        report["psnr"] = _psnr(start, result, [p[0] for p in pairs], clean, names)
    if out is not None:
        _save(start, result, Path(out), report)
    return report


def _read_inputs(micrographs: Sequence[PathLike], even: Sequence[PathLike],
                 odd: Sequence[PathLike]) -> tuple[list[tuple[np.ndarray, np.ndarray | None]],
                                                   list[str]]:
    """Read the micrographs, or the even/odd halves, as 2D float32 arrays."""
    from ..io.images import read_image

    if micrographs and (even or odd):
        raise InputError("give noisy micrographs or --even/--odd halves, not both")
    if len(even) != len(odd):
        raise InputError(f"{len(even)} even halves but {len(odd)} odd ones: give one odd half "
                         "per even half, in the same order")
    if not micrographs and not even:
        raise InputError("no micrographs to adapt to: give noisy micrographs or --even/--odd")

    def read(path: PathLike) -> np.ndarray:
        image = read_image(path)[0]
        if image.ndim != 2:
            raise InputError(f"{path}: expected a 2D micrograph, got shape {image.shape}")
        return np.asarray(image, dtype=np.float32)

    if micrographs:
        return [(read(p), None) for p in micrographs], [str(p) for p in micrographs]
    return [(read(e), read(o)) for e, o in zip(even, odd, strict=True)], [str(e) for e in even]


def _report(start: Denoiser, result: Any, out: PathLike | None) -> dict[str, Any]:
    """Return the report's numbers, before any PSNR."""
    return {"start_model": str(start.path), "out": None if out is None else str(out),
            **result.summary(), "psnr": None, "split_frame_snr": None}


def _psnr(start: Denoiser, result: Any, noisy: Sequence[np.ndarray],
          clean: Sequence[PathLike], names: Sequence[str]) -> dict[str, Any]:
    """Return PSNR (dB) of the start and the kept model against the clean targets."""
    from ..evaluation.metrics import psnr
    from ..inference.denoiser import denoise
    from ..io.images import read_image

    if len(clean) != len(noisy):
        raise InputError(f"{len(clean)} clean targets for {len(noisy)} micrographs: give one "
                         "clean target per micrograph, in the same order")
    before: list[float] = []
    after: list[float] = []
    for image, target_path, name in zip(noisy, clean, names, strict=True):
        target = np.asarray(read_image(target_path)[0], dtype=np.float32)
        if target.shape != image.shape:
            raise InputError(f"{target_path}: shape {target.shape} differs from {name}'s "
                             f"{image.shape}")
        for net, scores in ((start.net, before), (result.model, after)):
            out = denoise(net, image, normalization=start.normalization, device=start.device)
            scores.append(psnr(float(np.mean((out - target) ** 2))))
    return {"target": [str(p) for p in clean],
            "note": "whole micrographs, the regions learned from included",
            "before": float(np.mean(before)), "after": float(np.mean(after)),
            "per_micrograph": [{"before": b, "after": a} for b, a in zip(before, after,
                                                                          strict=True)]}


def _save(start: Denoiser, result: Any, out: Path, report: dict[str, Any]) -> None:
    """Write the kept model with its start's config and the adaptation in its metadata."""
    from ..models.checkpoint import save_checkpoint

    if out.suffix != ".safetensors":
        raise InputError(f"{out}: the adapted model is written as .safetensors; "
                         "name the file so")
    if not out.parent.is_dir():
        raise InputError(f"{out}: folder {out.parent} does not exist")
    adapted = {k: v for k, v in report.items() if k != "history"}
    config = replace(start.config)
    save_checkpoint(out, result.model, config, adapted_from=str(start.path), adapt=adapted)
