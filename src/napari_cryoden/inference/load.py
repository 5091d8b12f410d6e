"""A denoiser ready to run: a model loaded once, with its checkpoint and its resolved device.

Every face denoises the same way: resolve the model (a ``.safetensors`` path or a shipped model's
name, :mod:`napari_cryoden.models.pretrained`), resolve the device once
(:func:`napari_cryoden.devices.resolve_device`), load the checkpoint there, and run the tiled
denoiser with the checkpoint's normalisation. :func:`load_denoiser` does the first three and
:class:`Denoiser` the last, so the CLI, the Denoise widget's job, evaluation and the public API
stop composing them. Torch is imported when a model is loaded, not with this module.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

    from ..config.sections import Config
    from ..models.checkpoint import Checkpoint
    from .region import Box

__all__ = ["Denoiser", "load_denoiser"]


@dataclass(frozen=True)
class Denoiser:
    """A loaded model (``net``) on ``device``, with the checkpoint it came from."""

    net: torch.nn.Module
    checkpoint: Checkpoint
    device: torch.device

    @property
    def config(self) -> Config:
        """The configuration the model was trained with."""
        return self.checkpoint.config

    @property
    def normalization(self) -> str:
        """The per-micrograph normalisation the model was trained with."""
        return self.checkpoint.normalization

    @property
    def path(self) -> Path:
        """The weight file the model was loaded from."""
        return self.checkpoint.path

    def options(self) -> dict[str, Any]:
        """Return the keyword arguments of ``denoise`` that come from the model.

        These are the options of :func:`~napari_cryoden.inference.denoiser.denoise` that the
        model fixes: its normalisation and its (resolved) device.
        """
        return {"normalization": self.normalization, "device": self.device}

    def denoise(self, image: Any, **options: Any) -> np.ndarray:
        """Denoise a micrograph (y, x) or a stack (z, y, x) with this model.

        Parameters
        ----------
        image
            Any real dtype; see :func:`~napari_cryoden.inference.denoiser.denoise`.
        **options
            Further keyword arguments of that function (``tile_size``, ``precision``,
            ``progress``, ``name``, ...).

        Returns
        -------
        numpy.ndarray
            float32 array of the input's shape.
        """
        from .denoiser import denoise

        return denoise(self.net, image, **self.options(), **options)

    def denoise_region(self, image: Any, box: Box, **options: Any) -> np.ndarray:
        """Denoise the pixels ``box`` of a 2D image exactly as a whole-image run would.

        Parameters
        ----------
        image
            A 2D micrograph.
        box
            The pixels to denoise.
        **options
            ``progress``, ``name`` and ``normalizer`` of
            :func:`~napari_cryoden.inference.region.denoise_region`.

        Returns
        -------
        numpy.ndarray
            float32 array of ``box.shape``.
        """
        from .region import denoise_region

        return denoise_region(self.net, image, box, **self.options(), **options)


def load_denoiser(model: str | os.PathLike[str] | None = None,
                  device: str | torch.device = "auto") -> Denoiser:
    """Load a model to denoise with, on a device resolved once.

    Parameters
    ----------
    model
        A ``.safetensors`` weight file, or the name of a shipped model (``"general"``,
        ``"general-fast"``; a file of that name in the working folder wins); None: the shipped
        default, ``"general"``.
    device
        ``auto`` (cuda > mps > cpu), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``; a ``torch.device``
        is used as given.

    Returns
    -------
    Denoiser
        The model on its device, with its checkpoint.

    Raises
    ------
    WeightFileError
        The file is missing, not safetensors, or its tensors do not fit its config.
    InputError
        The device is not available here.
    """
    from ..models.checkpoint import load_checkpoint
    from ..models.pretrained import resolve_model
    from .options import to_device

    dev = to_device(device)
    net, checkpoint = load_checkpoint(resolve_model(model), dev)
    return Denoiser(net, checkpoint, dev)
