"""Train a denoiser from a script: the training half of the public API.

:func:`train` iterates the same generator of progress events as ``cryoden train`` and the
napari Train widget (:func:`napari_cryoden.training.loop.train`), and finds the training
pairs as they do (:func:`napari_cryoden.data.sources.training_data`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config.sections import Config, ModelConfig

if TYPE_CHECKING:
    from ..training.events import Event, TrainEnd

__all__ = ["TrainResult", "train"]

Folder = str | os.PathLike[str] | None


@dataclass(frozen=True)
class TrainResult:
    """What a finished (or stopped) training run left in its folder.

    Attributes
    ----------
    run_dir : pathlib.Path
        The run folder.
    best_path : pathlib.Path or None
        ``best.safetensors``: the weights of the best epoch; None if no epoch finished.
    last_path : pathlib.Path or None
        ``last.safetensors``: the latest weights with the optimizer state, for ``resume``.
    history : dict
        ``history.json``: per-epoch and per-step losses, warnings and the config.
    epochs_completed : int
        Epochs finished, counting those of resumed runs.
    best_epoch : int or None
        The epoch whose weights are in ``best_path``.
    best_val_loss : float or None
        Its validation loss (the training loss when there was no validation set).
    stopped : bool
        Whether the run was stopped (``stop`` set) before its last epoch.
    """

    run_dir: Path
    best_path: Path | None
    last_path: Path | None
    history: dict[str, Any]
    epochs_completed: int
    best_epoch: int | None
    best_val_loss: float | None
    stopped: bool


def train(config: Config, *, run_dir: str | os.PathLike[str], noisy: Folder = None,
          clean: Folder = None, even: Folder = None, odd: Folder = None, store: Folder = None,
          val_noisy: Folder = None, val_clean: Folder = None, resume: bool = False,
          callback: Callable[[Event], None] | None = None,
          stop: threading.Event | None = None) -> TrainResult:
    """Train a denoiser on folders of micrographs (or a packed store) and return the run.

    Which folders to give depends on ``config.train.mode``: ``n2c`` (default) ``noisy`` and
    ``clean``; ``n2n`` ``even`` and ``odd`` half sums (giving them switches an ``n2c`` config
    to ``n2n``); ``n2v`` ``noisy`` alone. Files are paired by name; ``config.data.val_fraction``
    of them is held out for validation. Interrupting (Ctrl-C) still saves the history and the
    last weights.

    With ``config.train.init`` (a weight file or a shipped model's name) the run starts from
    that model's weights; a config whose model section is the default takes the init model's
    architecture, any other must match it.

    Parameters
    ----------
    config
        The run's configuration, e.g. ``Config().replace(train={"epochs": 20})``.
    run_dir
        Folder for ``best.safetensors``, ``last.safetensors`` and ``history.json``.
    noisy, clean, even, odd
        Folders of MRC/TIFF micrographs, by mode as above.
    store
        A packed store (``cryoden pack``) instead of folders.
    val_noisy, val_clean
        A validation set of (noisy, clean) folders; with ``n2c`` it replaces the held-out
        files, with ``n2n``/``n2v`` each epoch is also scored on it.
    resume
        Continue the run in ``run_dir`` from its ``last.safetensors``.
    callback
        Called with each progress event (:mod:`napari_cryoden.training.events`): one
        ``TrainStart``, per step ``TrainStep``, per epoch ``EpochEnd`` and
        ``CheckpointSaved``, then ``TrainEnd``.
    stop
        Set it (from another thread or the callback) to end training at the next step.

    Returns
    -------
    TrainResult
        Paths of the best and last weights and the history.

    Raises
    ------
    CryodenError
        Missing or contradictory folders, unreadable micrographs, a bad config.

    Examples
    --------
    >>> config = cryoden.Config().replace(train={"epochs": 10})
    >>> result = cryoden.train(config, noisy="data/noisy", clean="data/clean", run_dir="run")
    >>> model = cryoden.load_model(result.best_path)
    """
    from ..data.sources import TrainSources, training_data
    from ..training.events import TrainEnd
    from ..training.init_weights import adopt_init_architecture
    from ..training.loop import train as run_training

    given = {} if config.model == ModelConfig() else dataclasses.asdict(config.model)
    config = adopt_init_architecture(config, given)
    if (even is not None or odd is not None) and config.train.mode == "n2c":
        config = config.replace(train={"mode": "n2n"})  # even/odd halves mean Noise2Noise
    sources = TrainSources(noisy=_path(noisy), clean=_path(clean), even=_path(even),
                           odd=_path(odd), store=_path(store), val_noisy=_path(val_noisy),
                           val_clean=_path(val_clean))
    train_set, val_set, clean_val = training_data(sources, config)
    events = run_training(config, train_set, val_set, Path(run_dir), stop=stop, resume=resume,
                          clean_val_pairs=clean_val)
    end: TrainEnd | None = None
    # closing: an exception (Ctrl-C, a failing callback) still saves history and last weights
    with closing(events):
        for event in events:
            if callback is not None:
                callback(event)
            if isinstance(event, TrainEnd):
                end = event
    return _result(Path(run_dir), end)


def _result(run_dir: Path, end: TrainEnd | None) -> TrainResult:
    history_path = run_dir / "history.json"
    history = json.loads(history_path.read_text()) if history_path.is_file() else {}
    best, last = run_dir / "best.safetensors", run_dir / "last.safetensors"
    return TrainResult(
        run_dir=run_dir, best_path=best if best.is_file() else None,
        last_path=last if last.is_file() else None, history=history,
        epochs_completed=end.epochs_completed if end else len(history.get("epochs", [])),
        best_epoch=end.best_epoch if end else None,
        best_val_loss=end.best_val_loss if end else None,
        stopped=end.stopped if end else True)


def _path(folder: Folder) -> Path | None:
    return None if folder is None else Path(folder)
