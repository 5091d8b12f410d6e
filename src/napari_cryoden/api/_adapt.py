"""Adapt a model to the user's micrographs: the ``cryoden adapt`` command and ``api.adapt``.

Reads the micrographs (and their even/odd halves, and clean targets when given), runs
:func:`adapt_events` (the fine-tune of
:func:`~napari_cryoden.training.adapt.adapt_steps`, then, with halves, the split-frame SNR of the
start and the kept model on the held-out patches), writes the kept model and returns a report of
what the time bought: held-out loss, split-frame SNR and, against clean targets, PSNR before and
after. The Denoise widget's *Fit to these micrographs* runs :func:`adapt_events` on its layers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError
from ..inference.load import Denoiser, load_denoiser

if TYPE_CHECKING:
    from ..training.adapt import AdaptOptions, AdaptProgress, AdaptResult

__all__ = ["Adapted", "Measuring", "adapt", "adapt_events", "save_adapted",
           "split_frame_line", "sums_line", "HALVES_CAUTION"]

PathLike = str | os.PathLike[str]
Pairs = Sequence[tuple[np.ndarray, np.ndarray | None]]


@dataclass(frozen=True)
class Measuring:
    """Yielded by :func:`adapt_events` when the fine-tune is over and a measurement begins."""

    what: str


@dataclass(frozen=True)
class Adapted:
    """The end of :func:`adapt_events`: the kept model (in ``result``) and the report."""

    result: AdaptResult
    report: dict[str, Any]


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
    from ..training.adapt import AdaptOptions

    start = load_denoiser(model, device)
    pairs, names = _read_inputs(micrographs, even, odd)
    opts = AdaptOptions(seconds=seconds, device=device, seed=seed, **options)
    adapted: Adapted | None = None
    for event in adapt_events(start, pairs, opts, names=names):
        if isinstance(event, Adapted):
            adapted = event
        elif progress is not None and not isinstance(event, Measuring):
            progress(event)
    assert adapted is not None
    if clean:
        adapted.report["psnr"] = _psnr(start, adapted.result, [p[0] for p in pairs], clean,
                                       names)
    if out is not None:
        save_adapted(start, adapted, Path(out))
    return adapted.report


def adapt_events(start: Denoiser, pairs: Pairs, options: AdaptOptions, *,
                 names: Sequence[str] | None = None, stop: Callable[[], bool] | None = None,
                 ) -> Iterator[AdaptProgress | Measuring | Adapted]:
    """Fine-tune ``start`` on in-memory micrographs; yield progress, then :class:`Adapted`.

    Parameters
    ----------
    start
        The starting model (:func:`~napari_cryoden.inference.load.load_denoiser`); unchanged.
    pairs
        ``(noisy, None)`` per micrograph (blind spot) or ``(even, odd)`` (Noise2Noise).
    options
        Time box, learning rate, patches, seed, device.
    names
        The micrographs' names, for error messages.
    stop
        Polled before every step (and during the split-frame SNR, which it skips): True ends
        the fine-tune early; the best state so far is kept, never worse than the start.

    Yields
    ------
    AdaptProgress, Measuring or Adapted
        Scorings on the held-out patches; :class:`Measuring` before the split-frame SNR (only
        with halves); last, the kept model and its report (``out`` still None).
    """
    from ..training.adapt import AdaptResult, adapt_steps

    result: AdaptResult | None = None
    for event in adapt_steps(start.net, pairs, start.normalization, options, names=names,
                             stop=stop):
        if isinstance(event, AdaptResult):
            result = event
        else:
            yield event
    assert result is not None
    report = _report(start, result, None)
    if pairs and all(odd is not None for _, odd in pairs) and not (stop and stop()):
        yield Measuring("split-frame SNR on the held-out patches")
        report["split_frame_snr"] = _split_frame(start, result, pairs, options, names, stop)
    yield Adapted(result, report)


def _split_frame(start: Denoiser, result: AdaptResult, pairs: Pairs, options: AdaptOptions,
                 names: Sequence[str] | None,
                 stop: Callable[[], bool] | None) -> dict[str, Any] | None:
    """Split-frame SNR of the start and the kept model on the held-out patches."""
    from ..devices import resolve_device
    from ..training.adapt_snr import held_out_split_frame

    halves = [(even, odd) for even, odd in pairs if odd is not None]
    return held_out_split_frame(start.net, result.model, halves, start.normalization,
                                patch_size=options.patch_size, held_out=options.held_out,
                                seed=options.seed, device=resolve_device(options.device),
                                names=names, stop=stop,
                                by_micrograph=options.hold_out_micrographs)


HALVES_CAUTION = (
    "caution: Noise2Noise learned from one half at a time, twice as noisy as the sum, and the "
    "check on the sums assumes Gaussian noise: compare both models on your sums before relying "
    "on the adapted one (docs/quality.md)")
"""Said after a Noise2Noise fit that replaced the start."""


def sums_line(check: dict[str, Any]) -> str:
    """Word the Noise2Noise fit's check on the sums, as the CLI and the Denoise panel say it.

    ``on the held-out patches of even + odd (SURE): squared error -0.0012 ± 0.0004 per pixel
    with the fine-tune, so it is kept``.
    """
    verdict = "so it is kept" if check["passed"] else (
        f"not {check['evidence']:g} standard errors below 0, so the start is kept")
    return (f"on the {check['n_patches']} held-out patches of even + odd (SURE): squared error "
            f"{check['mse_change']:+.2g} ± {check['error']:.1g} per pixel with the fine-tune, "
            f"{verdict}")


def split_frame_line(snr: dict[str, Any]) -> str:
    """One line of a report's ``split_frame_snr`` block, as the CLI and the Denoise panel say it.

    ``split-frame SNR on 13 held-out patches: raw half -9.10 dB; denoised 1.20 dB before,
    1.90 dB after (+0.70 dB)``.
    """
    return (f"split-frame SNR on {snr['n_patches']} held-out patches: raw half "
            f"{snr['raw_half_db']:.2f} dB; denoised {snr['before_db']:.2f} dB before, "
            f"{snr['after_db']:.2f} dB after ({snr['after_db'] - snr['before_db']:+.2f} dB)")


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


def save_adapted(start: Denoiser, adapted: Adapted, out: PathLike) -> Path:
    """Write the kept model with its start's config and the adaptation in its metadata.

    Parameters
    ----------
    start
        The starting model (its config and path go into the file).
    adapted
        The end of :func:`adapt_events`; its report's ``out`` is set to ``out``.
    out
        A ``.safetensors`` file in an existing folder.

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    InputError
        ``out`` is not a ``.safetensors`` name or its folder does not exist.
    """
    from ..models.checkpoint import save_checkpoint

    out = Path(out)
    if out.suffix != ".safetensors":
        raise InputError(f"{out}: the adapted model is written as .safetensors; "
                         "name the file so")
    if not out.parent.is_dir():
        raise InputError(f"{out}: folder {out.parent} does not exist")
    adapted.report["out"] = str(out)
    metadata = {k: v for k, v in adapted.report.items() if k != "history"}
    config = replace(start.config)
    save_checkpoint(out, adapted.result.model, config, adapted_from=str(start.path),
                    adapt=metadata, pixel_size_range=start.checkpoint.pixel_size_range)
    return out
