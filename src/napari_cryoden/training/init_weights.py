"""Start a run from a model's weights (``train.init``) instead of random ones.

``train.init`` names a ``.safetensors`` weight file or a shipped model (``general``,
``general-fast``; :mod:`napari_cryoden.models.pretrained`). Only the weights are loaded, from
safetensors (never a pickle); the optimizer and the schedule start fresh. The run's
architecture must be the init model's: :func:`adopt_init_architecture` takes it when no model
option was given and refuses a contradiction with one line. Every checkpoint and the history
record which model the run started from (:meth:`InitModel.record`: the name or path as given,
the file and its SHA-256).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..config.sections import Config, ConfigError, ModelConfig
from ..errors import InputError
from ..models.checkpoint import load_checkpoint
from ..models.header import read_weight_info
from ..models.pretrained import SHIPPED, resolve_model

__all__ = ["InitModel", "adopt_init_architecture", "load_init_weights", "read_init"]


@dataclass(frozen=True)
class InitModel:
    """The model a run starts from: as named, its file, its SHA-256 and its architecture."""

    spec: str
    path: Path
    sha256: str
    model: ModelConfig

    def record(self) -> dict[str, str]:
        """Return what checkpoints and ``history.json`` store under ``init``.

        Returns
        -------
        dict
            ``model`` (the name or path as given), ``path`` (the file read) and ``sha256``.
        """
        return {"model": self.spec, "path": str(self.path), "sha256": self.sha256}


def read_init(spec: str) -> InitModel:
    """Find the init model ``spec`` names and read its header (not its tensors).

    Parameters
    ----------
    spec
        A weight file, or a shipped model's name.

    Returns
    -------
    InitModel
        Its file, checksum and architecture.

    Raises
    ------
    WeightFileError
        The file is missing, not safetensors or has no cryoden metadata; one line.
    InputError
        No such file, nor a shipped model of that name.
    """
    path = resolve_model(spec)
    if not path.exists():
        raise InputError(f"train.init {spec}: no such weight file, nor a shipped model of that "
                         f"name ({', '.join(SHIPPED)})")
    info = read_weight_info(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return InitModel(spec=spec, path=path, sha256=digest, model=info.config.model)


def adopt_init_architecture(config: Config, given: Mapping[str, Any]) -> Config:
    """Give ``config`` the init model's architecture, overridden by the model options given.

    Parameters
    ----------
    config
        The run's configuration; without ``train.init`` it is returned unchanged.
    given
        The model fields the user set (e.g. ``{"preset": "seed"}``); the others are the
        init model's.

    Returns
    -------
    Config
        ``config`` with the init model's architecture.

    Raises
    ------
    ConfigError
        The options given contradict the init model's architecture; one line naming both.
    """
    if not config.train.init:
        return config
    init = read_init(config.train.init)
    adopted = config.replace(model=dataclasses.asdict(init.model)).replace(model=dict(given))
    check_architecture(adopted.model, init)
    return adopted


def check_architecture(model: ModelConfig, init: InitModel) -> None:
    """Raise :class:`ConfigError` unless ``model`` is the init model's architecture."""
    if model != init.model:
        raise ConfigError(f"train.init {init.spec}: its architecture ({_describe(init.model)}) "
                          f"differs from the configured model ({_describe(model)}); leave "
                          "the model options out to take the init model's, or match them")


def load_init_weights(model: torch.nn.Module, config: Config) -> InitModel:
    """Copy the weights of ``config.train.init`` into ``model`` (in place, on its device).

    Parameters
    ----------
    model
        The run's freshly built model.
    config
        The run's configuration; its architecture must be the init model's.

    Returns
    -------
    InitModel
        What was loaded, for the run's records.

    Raises
    ------
    ConfigError
        The architectures differ.
    WeightFileError
        The file is unreadable or its tensors do not fit its own config.
    """
    init = read_init(config.train.init)
    check_architecture(config.model, init)
    loaded, _ = load_checkpoint(init.path)
    with torch.no_grad():
        model.load_state_dict(loaded.state_dict())
    return init


def _describe(model: ModelConfig) -> str:
    return (f"{model.preset}, {model.channels} channels, depth {model.depth}, "
            f"kernel {model.kernel_size}")
