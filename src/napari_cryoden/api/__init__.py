"""The public API: train, run and score a denoiser from a Python script.

Everything here is also at the package root (``import napari_cryoden as cryoden``;
``cryoden.train(...)``); docs/api.md has a worked example. The functions are thin calls into the
subsystems that ``cryoden`` (the CLI) and the napari widgets use, so all three behave alike.
Importing this module does not import torch; the functions do.
"""

from ..config.sections import Config
from ._adapt import adapt
from ._data import evaluate, simulate
from ._models import Model, ModelSpec, denoise, denoise_file, load_model, save_model
from ._train import TrainResult, train

__all__ = [
    "Config", "Model", "ModelSpec", "TrainResult", "adapt", "denoise", "denoise_file", "evaluate",
    "load_model", "save_model", "simulate", "train",
]
