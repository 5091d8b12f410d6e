"""Importing raw weight folders into ``.safetensors`` weight files, in a given layout or ``auto``.

:func:`import_raw` reads a folder (its ``cryoden_raw.json`` supplies the defaults), optionally
scores the result on validation pairs, and writes the weight file with where it came from.
Layout ``auto`` ranks every axis order on data and refuses to guess when there is no clear
winner (:mod:`napari_cryoden.interop.ranking`, re-exported here).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..config.sections import Config, ConfigError, ModelConfig
from ..errors import InputError, WeightFileError
from ..evaluation.guards import output_warnings
from .ranking import (
    AUTO_MARGIN,
    AUTO_MIN_T,
    Candidate,
    LayoutAmbiguousError,
    LayoutRanking,
    choose_layout,
    distinct_axis_orders,
    rank_layouts,
    score_model,
)
from .raw import RawNames, model_from_buffers, read_raw_buffers, read_sidecar, resolve_layout

__all__ = ["AUTO_MARGIN", "Candidate", "LayoutRanking", "LayoutAmbiguousError", "ImportResult",
           "AUTO_MIN_T", "distinct_axis_orders", "load_validation", "score_model", "rank_layouts",
           "choose_layout", "import_config", "import_raw", "import_raw_folder"]


def load_validation(noisy_dir: str | os.PathLike[str], clean_dir: str | os.PathLike[str],
                    max_images: int = 4, crop: int = 512) -> list[tuple[np.ndarray, np.ndarray]]:
    """Up to ``max_images`` (noisy, clean) pairs, first slice, central ``crop`` px square."""
    from ..data.pairs import find_pairs
    from ..io.images import read_image

    images = []
    for noisy_path, clean_path in find_pairs(noisy_dir, clean_dir)[:max_images]:
        noisy, clean = (_central(read_image(p)[0], crop) for p in (noisy_path, clean_path))
        if noisy.shape != clean.shape:
            raise InputError(f"{noisy_path}: shape {noisy.shape} differs from {clean_path}")
        images.append((noisy, clean))
    return images


def _central(image: np.ndarray, size: int) -> np.ndarray:
    image = image[0] if image.ndim == 3 else image
    y, x = (max((n - size) // 2, 0) for n in image.shape)
    return np.array(image[y:y + size, x:x + size], np.float32)


@dataclass
class ImportResult:
    """What ``import_raw`` did: the file written, the layout used and the validation scores."""

    path: Path
    axes: str
    ranking: LayoutRanking | None = None
    mse: float | None = None
    corr: float | None = None
    noisy_mse: float | None = None
    noisy_corr: float | None = None
    warnings: list[str] = field(default_factory=list)


def import_raw(folder: str | os.PathLike[str], out: str | os.PathLike[str], *,
               layout: str | None = None, model: ModelConfig | None = None,
               normalization: str | None = None, names: RawNames | None = None,
               validation: tuple[Any, Any] | None = None, max_images: int = 4,
               crop: int = 512) -> ImportResult:
    """Read a folder of raw files into a ``.safetensors`` weight file.

    Parameters
    ----------
    folder, out
        The raw folder and the weight file to write.
    layout
        A layout name, an axis string, or ``"auto"`` (needs ``validation``). Default: the
        folder's ``cryoden_raw.json``, else ``oihw``.
    model, normalization, names
        Architecture, intensity normalisation the weights were trained with, and file name
        patterns. Defaults: the folder's ``cryoden_raw.json``, else the seed's net, ``"none"``
        (the Fortran trainer used raw values) and ``conv{k}_weights.bin``/``conv{k}_bias.bin``.
        validation ``(noisy_dir, clean_dir)``: scores the result (and ranks candidates for
        ``auto``) on up
        to ``max_images`` pairs, central ``crop`` px; scramble warnings are returned.

    Raises
    ------
    WeightFileError, InputError, LayoutAmbiguousError
    """
    from ..models.checkpoint import save_checkpoint

    sidecar = read_sidecar(folder) or {}
    config = import_config(folder, sidecar, model, normalization)
    names = names or _sidecar_names(sidecar)
    layout = layout or sidecar.get("layout") or "oihw"
    buffers = read_raw_buffers(folder, config.model, names)
    images = load_validation(*validation, max_images, crop) if validation else None
    norm = config.data.normalization
    if layout == "auto":
        if images is None:
            raise InputError("layout auto needs a validation pair (--validate-noisy DIR "
                             "--validate-clean DIR): it ranks the axis orders by how well each "
                             "denoises them, and without data any choice would be a guess")
        ranking = rank_layouts(buffers, config.model, images, norm)
        result = ImportResult(Path(out), choose_layout(ranking), ranking)
    else:
        result = ImportResult(Path(out), resolve_layout(layout))
    net = model_from_buffers(buffers, config.model, result.axes)
    if images is not None:
        result.mse, result.corr = score_model(net, images, norm)
        result.noisy_mse, result.noisy_corr = score_model(None, images)
        result.warnings = output_warnings(result.corr, result.mse, result.noisy_mse,
                                          result.noisy_corr)
    source = {"raw_dir": str(folder), "layout": layout, "axes": result.axes,
              "validation": None if images is None else {
                  "mse": result.mse, "corr": result.corr, "noisy_mse": result.noisy_mse,
                  "noisy_corr": result.noisy_corr, "n_images": len(images),
                  "warnings": result.warnings}}
    save_checkpoint(out, net, config, source=source)
    return result


def import_raw_folder(folder: str | os.PathLike[str], layout: str, out: str | os.PathLike[str],
                      pair: tuple[np.ndarray, np.ndarray] | None = None) -> str:
    """Write a folder of raw weight files as the weight file ``out``; return the axes used.

    What *Open raw weight folder…* of the Denoise widget runs (in a worker).

    Parameters
    ----------
    folder, out
        The raw folder and the weight file to write.
    layout
        A layout name, an axis string, or ``"auto"``: rank the axis orders on ``pair``.
    pair
        A (noisy, clean) pair of 2D images, needed for ``"auto"``.

    Returns
    -------
    str
        The axis string the folder was read in.

    Raises
    ------
    InputError
        ``"auto"`` without a pair.
    LayoutAmbiguousError
        ``"auto"`` found no clear winner.
    """
    if layout == "auto":
        if pair is None:
            raise InputError("layout auto needs a noisy/clean pair to rank the layouts")
        sidecar = read_sidecar(folder) or {}
        config = import_config(folder, sidecar)
        buffers = read_raw_buffers(folder, config.model, _sidecar_names(sidecar))
        images = [(np.asarray(pair[0], np.float32), np.asarray(pair[1], np.float32))]
        layout = choose_layout(rank_layouts(buffers, config.model, images,
                                            config.data.normalization))
    return import_raw(folder, out, layout=layout).axes


def import_config(folder: str | os.PathLike[str], sidecar: dict[str, Any],
                  model: ModelConfig | None = None, normalization: str | None = None) -> Config:
    """Build the config a raw folder's weights are imported with.

    Parameters
    ----------
    folder
        The raw folder (named in errors).
    sidecar
        Its ``cryoden_raw.json`` (:func:`~napari_cryoden.interop.raw.read_sidecar`), or ``{}``.
    model, normalization
        Given explicitly (flags); default: the sidecar's, else the seed's net and ``"none"``.

    Returns
    -------
    Config
        The architecture and the intensity normalisation of the weights.

    Raises
    ------
    WeightFileError
        The sidecar's model does not make a valid config.
    """
    try:
        model_dict = dict(sidecar.get("model", {})) if model is None else asdict(model)
        norm = normalization or sidecar.get("normalization") or "none"
        return Config.from_dict({"model": model_dict, "data": {"normalization": norm}})
    except ConfigError as exc:
        raise WeightFileError(f"{folder}: {exc}") from None


def _sidecar_names(sidecar: dict[str, Any]) -> RawNames:
    """Return the file name patterns of a sidecar, else the Fortran trainer's."""
    return RawNames(sidecar.get("weights_pattern", RawNames.weights),
                    sidecar.get("bias_pattern", RawNames.bias))
