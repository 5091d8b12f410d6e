"""napari sample-data hook: a simulated micrograph with its noise-free target (File ▸ Open Sample).

Nothing here imports napari, Qt or torch; the simulator needs only numpy and scipy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .io.intensity import contrast_limits

__all__ = ["SAMPLE_SEED", "SAMPLE_SIZE", "make_synthetic_micrograph"]

SAMPLE_SEED = 2024
SAMPLE_SIZE = 1024

LayerData = tuple[np.ndarray, dict[str, Any], str]


def make_synthetic_micrograph() -> list[LayerData]:
    """Simulate a seeded 1024² micrograph as two image layers: clean target, then noisy (on top).

    The specimen is :data:`~napari_cryoden.simulation.micrographs.HIGH_CONTRAST` (the demo's), so a
    model trained on it for a few minutes on a laptop visibly denoises it.

    Both layers have the pixel size (Å) as their scale and contrast limits at the 0.5 and 99.5
    percentiles of their own pixels (:func:`~napari_cryoden.io.intensity.contrast_limits`, as the
    reader sets them for a user's micrograph); their metadata record the defocus and the
    simulation.
    """
    from .simulation.micrographs import simulate_exposure
    from .simulation.params import HIGH_CONTRAST

    params = HIGH_CONTRAST
    shot = simulate_exposure(params, np.random.default_rng(SAMPLE_SEED), SAMPLE_SIZE)
    metadata = {
        "pixel_size": params.pixel_size,
        "defocus_um": shot.defocus,
        "seed": SAMPLE_SEED,
        "simulation": params.to_dict(),
    }
    return [
        (image, _layer_kwargs(name, image, params.pixel_size, metadata), "image")
        # napari adds a sample's layers in this order, the last on top: the noisy one is seen
        for name, image in (("clean (simulated)", shot.clean), ("noisy (simulated)", shot.noisy))
    ]


def _layer_kwargs(
    name: str, image: np.ndarray, pixel_size: float, metadata: dict[str, Any]
) -> dict[str, Any]:
    return {
        "name": name,
        "scale": (pixel_size, pixel_size),
        "contrast_limits": contrast_limits(image),
        "metadata": dict(metadata),
    }
