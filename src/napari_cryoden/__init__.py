"""napari-cryoden: train and run a cryo-EM micrograph denoiser.

The package is importable without torch, Qt or napari; heavy modules are
imported by the functions that need them.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
