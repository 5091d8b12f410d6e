"""Load, save and run denoisers: the model half of the public API.

Thin calls into :mod:`napari_cryoden.models` and :mod:`napari_cryoden.inference`; torch is
imported by the functions, not by this module.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np

from ..config.sections import Config
from ..errors import InputError
from ..inference.load import Denoiser, load_denoiser
from ..inference.smoothing import Smoothing, as_smoothing

if TYPE_CHECKING:
    import torch


__all__ = ["Model", "ModelSpec", "denoise", "denoise_file", "load_model", "save_model"]


Model = Denoiser
"""A denoiser ready to run (:class:`~napari_cryoden.inference.load.Denoiser`): ``net``,
``checkpoint``, ``config``, ``normalization``, ``path`` and ``device``."""


ModelSpec: TypeAlias = Model | str | os.PathLike[str] | None
"""A loaded :class:`Model`, a ``.safetensors`` path, a shipped model's name, or None."""


def load_model(model: str | os.PathLike[str] | None = "general", *,
               device: str = "auto") -> Model:
    """Load a weight file, or a model that ships with the package, ready to denoise.

    Parameters
    ----------
    model
        A ``.safetensors`` file written by training or :func:`save_model`, or the name of a
        shipped model: ``"general"`` (default; the ``unet-small`` preset) or
        ``"general-fast"`` (the 3-layer seed net, ~10x faster on a CPU). None: ``"general"``.
    device
        ``auto`` (cuda > mps > cpu), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.

    Returns
    -------
    Model
        The network on ``device`` with its checkpoint (config, normalisation, metadata).

    Raises
    ------
    WeightFileError
        The file is missing, not safetensors, or its tensors do not fit its config.
    InputError
        No shipped model has that name.

    Examples
    --------
    >>> import napari_cryoden as cryoden
    >>> model = cryoden.load_model("general-fast", device="cpu")
    >>> model.config.model.preset
    'seed'
    """
    return load_denoiser(model, device)


def save_model(model: Model | torch.nn.Module, path: str | os.PathLike[str],
               config: Config | None = None, **metadata: Any) -> Path:
    """Save a model with its configuration to a ``.safetensors`` weight file, atomically.

    Parameters
    ----------
    model
        A :class:`Model` (its config and normalisation are kept), or a bare torch module built
        by :func:`napari_cryoden.models.nets.build_model` (then ``config`` is required).
    path
        The file to write; its folder must exist. An existing file is replaced only once the
        new one is complete.
    config
        The configuration to store; default: the :class:`Model`'s own.
    **metadata
        JSON-able extras stored with the weights, e.g. ``epoch=12, note="grid 3"``.

    Returns
    -------
    pathlib.Path
        The file written; :func:`load_model` reads it back.

    Raises
    ------
    InputError
        A bare torch module was given without its ``config``.
    SaveError
        The file cannot be written (disk full, read-only folder, no such folder).

    Examples
    --------
    >>> model = cryoden.load_model("general-fast", device="cpu")
    >>> cryoden.save_model(model, "my-copy.safetensors", note="before fine-tuning")
    PosixPath('my-copy.safetensors')
    """
    from ..models.checkpoint import save_checkpoint

    if isinstance(model, Model):
        metadata = {"normalization": model.normalization, **metadata}
        return save_checkpoint(path, model.net, config or model.config, **metadata)
    if config is None:
        raise InputError(f"{path}: save_model needs the config of a bare torch module")
    return save_checkpoint(path, model, config, **metadata)


def denoise(image: np.ndarray, model: ModelSpec = "general", *, device: str = "auto",
            precision: str = "fp32", tile_size: int | None = None,
            batch_size: int | None = None, pixel_cutoff: float | None = None,
            smooth: float | Smoothing = 0.0, keep_detail: float | None = None,
            smooth_where: str | None = None) -> np.ndarray:
    """Denoise a micrograph ``(y, x)`` or a stack ``(z, y, x)`` of any size.

    The image is processed in overlapping tiles that fit the device's memory; the result equals
    one whole-image pass (docs/inference.md). Intensities keep their scale: the model's
    normalisation is fitted on each slice and undone on the output.

    Parameters
    ----------
    image
        Any real dtype, e.g. the data of an MRC file (a memory map is read tile by tile).
    model
        A :class:`Model` from :func:`load_model` (load it once for many images), a
        ``.safetensors`` path, or a shipped model's name (``"general"``, ``"general-fast"``).
    device
        ``auto`` (cuda > mps > cpu), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
    precision
        ``fp32`` (exact), ``tf32``, ``fp16`` or ``bf16`` (fastest on CUDA GPUs).
    tile_size, batch_size
        Tile edge in pixels and tiles per batch; None: chosen from the free memory.
    pixel_cutoff
        Off by default. If given, pixels at least this many standard deviations from each
        micrograph's mean are first set to the mean (hot pixels; Topaz's ``--pixel-cutoff``).
    smooth
        Off (0) by default here: the model's output, as faithful to the noise-free image as
        it can be. Otherwise σ in pixels of a Gaussian applied to each denoised slice, by
        default only where the denoised image has little detail (``smooth_where``): a flat
        background, as Topaz's output, with particles kept; or a
        :class:`~napari_cryoden.inference.smoothing.Smoothing`. ``cryoden denoise`` and the
        Denoise panel use ``FLAT_BACKGROUND`` (σ 16 px on the background) by default: on our
        two held-out physics-grade sets 0.6–1.0 dB less PSNR against the truth than the model
        alone, 4.7–4.8 dB more region-pair SNR, above Topaz's ``unet`` on both
        (docs/quality.md).
    keep_detail
        With ``smooth``: the share (0 to 1) of the detail finer than the Gaussian that is kept
        where it is smoothed, ``blurred + keep_detail · (denoised − blurred)``; None: 0 (a
        plain blur there), or the given Smoothing's.
    smooth_where
        ``"background"``: where the detail is weak, keeping it where it is strong (particles,
        carbon edges); ``"everywhere"``: over the whole image alike (σ 3.5 px on the first
        physics-grade test set: PSNR 38.1 → 31.6 dB, region-pair SNR 0.1 → 2.9 dB). None:
        ``"background"``, or the given Smoothing's.

    Returns
    -------
    numpy.ndarray
        float32 array of the input's shape.

    Examples
    --------
    >>> import numpy as np
    >>> noisy = np.random.default_rng(0).normal(0.5, 0.1, (256, 256)).astype(np.float32)
    >>> cryoden.denoise(noisy, "general-fast", device="cpu").shape
    (256, 256)
    """
    from ..inference.denoiser import denoise as run
    from ..inference.smoothing import smoothed

    smoothing = _smoothing(smooth, keep_detail, smooth_where)
    loaded = as_model(model, device)
    return smoothed(run(loaded.net, image, **loaded.options(), precision=precision,
                        tile_size=tile_size, batch_size=batch_size, pixel_cutoff=pixel_cutoff),
                    smoothing, source=image)


def denoise_file(path: str | os.PathLike[str], out: str | os.PathLike[str],
                 model: ModelSpec = "general", *, device: str = "auto", precision: str = "fp32",
                 tile_size: int | None = None, batch_size: int | None = None,
                 pixel_cutoff: float | None = None, smooth: float | Smoothing = 0.0,
                 keep_detail: float | None = None, smooth_where: str | None = None) -> Path:
    """Denoise a micrograph file (MRC or TIFF) into a float32 MRC file with its pixel size.

    Parameters
    ----------
    path
        The micrograph or stack to read.
    out
        The MRC file to write, or an existing folder: the file then keeps its name, with the
        suffix ``.mrc`` (``.mrcs`` for a ``.mrcs`` stack).
    model, device, precision, tile_size, batch_size, pixel_cutoff
        As for :func:`denoise`.
    smooth, keep_detail, smooth_where
        As for :func:`denoise`.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    InputError
        The input cannot be read (missing, truncated, not an image), naming the file.

    Examples
    --------
    >>> cryoden.denoise_file("noisy/mic_0000.mrc", "denoised/", device="cpu")
    PosixPath('denoised/mic_0000.mrc')
    """
    from ..inference.denoiser import denoise_file as run

    smoothing = _smoothing(smooth, keep_detail, smooth_where)
    src, dst = Path(path), Path(out)
    if dst.is_dir():
        dst = dst / (src.stem + (".mrcs" if src.suffix.lower() == ".mrcs" else ".mrc"))
    loaded = as_model(model, device)
    return run(loaded.net, src, dst, **loaded.options(), precision=precision,
               tile_size=tile_size, batch_size=batch_size, pixel_cutoff=pixel_cutoff,
               smooth=smoothing)


def _smoothing(smooth: float | Smoothing, keep_detail: float | None,
               smooth_where: str | None) -> Smoothing:
    """Check the API's smoothing arguments and build one Smoothing (a σ: on the background)."""
    if smooth_where is None and not isinstance(smooth, Smoothing):
        smooth_where = "background"
    return as_smoothing(smooth, keep_detail, where=smooth_where)


def as_model(model: ModelSpec, device: str) -> Model:
    return model if isinstance(model, Model) else load_model(model, device=device)
