"""napari sample-data hook: a simulated micrograph with its noise-free target (File ▸ Open Sample).

napari calls this hook on its UI thread, so the window is frozen while it runs. The first open
simulates the micrograph (0.1–0.3 s on a 2-core machine, more under load) and stores it in the
disk cache (:mod:`napari_cryoden.io.disk_cache`, keyed by the simulation parameters, seed, size
and package version); later opens, in any session, read it back in ~10 ms. A corrupt cache file
is ignored and rewritten.

Nothing here imports napari, Qt or torch; the simulator needs only numpy and scipy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import __version__
from .io.disk_cache import cache_folder, cache_key, read_arrays, write_arrays
from .io.intensity import contrast_limits

__all__ = ["SAMPLE_SEED", "SAMPLE_SIZE", "make_synthetic_micrograph"]

SAMPLE_SEED = 2024
SAMPLE_SIZE = 1024

LayerData = tuple[np.ndarray, dict[str, Any], str]


def make_synthetic_micrograph() -> list[LayerData]:
    """Simulate a seeded 1024² micrograph as two image layers: clean target, then noisy (on top).

    The simulation runs the first time only; later calls read it from the disk cache.

    The specimen is :data:`~napari_cryoden.simulation.micrographs.HIGH_CONTRAST` (the demo's), so a
    model trained on it for a few minutes on a laptop visibly denoises it.

    Both layers have the pixel size (Å) as their scale and contrast limits at the 0.5 and 99.5
    percentiles of their own pixels (:func:`~napari_cryoden.io.intensity.contrast_limits`, as the
    reader sets them for a user's micrograph); their metadata record the defocus and the
    simulation.
    """
    from .simulation.params import HIGH_CONTRAST

    params = HIGH_CONTRAST
    arrays = _cached_exposure(params)
    metadata = {
        "pixel_size": params.pixel_size,
        "defocus_um": float(arrays["defocus"]),
        "seed": SAMPLE_SEED,
        "simulation": params.to_dict(),
    }
    return [
        (arrays[key], _layer_kwargs(name, arrays[key], tuple(arrays[f"{key}_limits"]),
                                    params.pixel_size, metadata), "image")
        # napari adds a sample's layers in this order, the last on top: the noisy one is seen
        for key, name in (("clean", "clean (simulated)"), ("noisy", "noisy (simulated)"))
    ]


_ARRAYS = ("clean", "noisy", "defocus", "clean_limits", "noisy_limits")


def _cached_exposure(params: Any) -> dict[str, np.ndarray]:
    """Return the exposure and its contrast limits: from the disk cache, else simulated."""
    from .simulation.micrographs import simulate_exposure

    key = cache_key(simulation=params.to_dict(), seed=SAMPLE_SEED, size=SAMPLE_SIZE,
                    version=__version__)
    path = cache_folder() / f"sample-{key}.npz"
    arrays = read_arrays(path, _ARRAYS)
    if arrays is not None:
        return arrays
    shot = simulate_exposure(params, np.random.default_rng(SAMPLE_SEED), SAMPLE_SIZE)
    arrays = {"clean": shot.clean, "noisy": shot.noisy, "defocus": np.asarray(shot.defocus),
              "clean_limits": np.asarray(contrast_limits(shot.clean)),
              "noisy_limits": np.asarray(contrast_limits(shot.noisy))}
    write_arrays(path, arrays)
    return arrays


def _layer_kwargs(
    name: str, image: np.ndarray, limits: tuple[float, ...], pixel_size: float,
    metadata: dict[str, Any]
) -> dict[str, Any]:
    return {
        "name": name,
        "scale": (pixel_size, pixel_size),
        "contrast_limits": tuple(float(v) for v in limits),
        "metadata": dict(metadata),
    }
