"""How a run uses its device: precision, fused Triton kernels, memory format, batch size, streams.

:class:`Engine` holds the model and the decisions made once before the first step, plus the one
made later: the number of micro-batches per step, doubled on each out-of-memory error
(:meth:`Engine.split_batches`). :func:`open_streams` turns file pairs or packed patches into the
run's batch streams.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..config.sections import Config, TrainConfig
from ..data.packed import Packed
from ..data.packed_stream import PackedStream
from ..data.stream import PatchStream
from ..devices import device_name
from ..errors import InputError
from ..models.nets import build_model
from . import distributed, steps
from .distributed import World
from .modes import ModeBatches

__all__ = ["Data", "Engine", "Pairs", "Streams", "open_streams", "run_precision",
           "store_patch_size_note"]

Pairs = Sequence[tuple[Path, Path]]
Data = Pairs | Packed
Stream = PatchStream | PackedStream


def run_precision(tc: TrainConfig, device: torch.device) -> str:
    """Return the precision a run steps in: the configured one on CUDA, fp32 elsewhere.

    Parameters
    ----------
    tc
        The train section (``precision``).
    device
        The run's device.

    Returns
    -------
    str
        ``"fp32"``, ``"bf16"`` or ``"fp16"``.
    """
    return tc.effective_precision if device.type == "cuda" else "fp32"


@dataclass
class Engine:
    """The model on the run's device and how one step updates it.

    ``net`` is ``model`` wrapped in DDP when several ranks train (else ``model`` itself);
    ``fused`` says the fused Triton kernels step it; ``chunks`` is the number of micro-batches
    a batch runs as (1 until an out-of-memory error).
    """

    device: torch.device
    precision: str
    model: torch.nn.Module
    net: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    fused: bool
    batch_size: int
    chunks: int = 1

    @classmethod
    def build(cls, config: Config, world: World, modes: ModeBatches) -> Engine:
        """Build the seeded model, its optimizer and the step settings of ``config``.

        Parameters
        ----------
        config
            The run's configuration.
        world
            The process group (its device; DDP when enabled).
        modes
            The mode's batch maker (masked modes cannot use the fused kernels).

        Returns
        -------
        Engine
            Ready for :meth:`make_update`.
        """
        tc, dc, device = config.train, config.data, world.device
        precision = run_precision(tc, device)
        if device.type == "cuda":
            steps.prepare_cuda(precision)
        model = build_model(config.model, seed=tc.seed).to(device)
        fused = (not modes.masked and tc.fused and precision == "fp16"
                 and device.type == "cuda" and not world.enabled and _fused_supported(model))
        if steps.uses_channels_last(precision, device) and not fused:
            # torch's stubs omit the memory_format overload of Module.to that it documents
            model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        net = distributed.wrap_model(model, world)
        optimizer = torch.optim.Adam(model.parameters(), lr=tc.lr)
        batch_size = tc.batch_size or steps.choose_batch_size(
            model, dc.crop or dc.patch_size, precision, device, fused=fused)
        scaler = torch.amp.GradScaler("cuda", enabled=precision == "fp16")
        return cls(device, precision, model, net, optimizer, scaler, fused, batch_size)

    def make_update(self) -> steps.Step:
        """Return the step function: the fused Triton kernels, or PyTorch's (also after an OOM).

        Returns
        -------
        steps.Step
            Updates the model on one batch.
        """
        if self.fused and self.chunks == 1:
            from ..kernels.train import make_fused_step

            return make_fused_step(self.model, self.optimizer)
        return steps.make_step(self.net, self.optimizer, self.precision, self.scaler,
                               chunks=self.chunks)

    def split_batches(self, size: int, patch_side: int) -> str:
        """Run each batch of ``size`` as twice as many micro-batches (same update, less memory).

        Parameters
        ----------
        size
            Patches in the batch that ran out of memory.
        patch_side
            Its patch side (px), for the error message.

        Returns
        -------
        str
            The warning to show.

        Raises
        ------
        InputError
            Already one patch per micro-batch.
        """
        if self.chunks >= size:
            raise InputError(f"out of memory training even one {patch_side}² "
                             f"patch at a time on {device_name(self.device)}: use a "
                             f"smaller --crop or --patch-size")
        self.chunks *= 2
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        return (f"out of memory at a batch of {size}: each batch now runs as {self.chunks} "
                f"micro-batches of about {math.ceil(size / self.chunks)} (same updates, slower)")

    def precision_text(self) -> str:
        """Return the precision as shown to the user, e.g. ``fp16, fused Triton kernels``.

        Returns
        -------
        str
            The precision, and whether the fused kernels step the model.
        """
        return f"{self.precision}, fused Triton kernels" if self.fused else self.precision


@dataclass(frozen=True)
class Streams:
    """The batch streams of a run; the validation ones are None when not given or empty."""

    train: Stream
    val: Stream | None
    clean_val: Stream | None


def open_streams(config: Config, engine: Engine, world: World, train: Data, val: Data | None,
                 clean_val: Data | None) -> Streams:
    """Open the training and validation streams of a run.

    Parameters
    ----------
    config
        The run's configuration (data section, seed).
    engine
        Device, precision and batch size.
    world
        This rank's share of the data.
    train, val, clean_val
        ``(noisy, clean)`` file pairs or :class:`~napari_cryoden.data.packed.Packed` patches.

    Returns
    -------
    Streams
        The train stream shuffles; the others do not.

    Raises
    ------
    InputError
        Too few training patches for the number of processes.
    """
    train_stream = _stream(config, engine, world, train, shuffle=True)
    if train_stream.n_patches == 0:
        raise InputError(f"too few training patches ({train_stream.n_dropped}) for "
                         f"{world.world_size} processes: use fewer or a smaller --patch-size")

    def optional(data: Data | None) -> Stream | None:
        return (_stream(config, engine, world, data, shuffle=False)
                if data is not None and len(data) else None)

    return Streams(train_stream, optional(val), optional(clean_val))


def store_patch_size_note(config: Config, data: Data) -> str | None:
    """Return the warning that a store's patch size replaces the configured one.

    Parameters
    ----------
    config
        The run's configuration (``data.patch_size``).
    data
        The training data.

    Returns
    -------
    str or None
        One line naming the store, or None for file pairs and for a store of that patch size.
    """
    if not isinstance(data, Packed) or data.store.patch_size == config.data.patch_size:
        return None
    return (f"{data.store.path}: training on the store's {data.store.patch_size} px patches, "
            f"not the configured patch size {config.data.patch_size} px (a store is cut at "
            f"pack time)")


def _stream(config: Config, engine: Engine, world: World, data: Data, *,
            shuffle: bool) -> Stream:
    """Batches of ``data``: streamed from a packed store or cut from micrograph files."""
    dc, tc, device = config.data, config.train, engine.device
    common: dict[str, Any] = dict(
        batch_size=engine.batch_size, shuffle=shuffle, seed=tc.seed, crop=dc.crop,
        reader_threads=dc.reader_threads, device=device, rank=world.rank,
        world_size=world.world_size)
    if isinstance(data, Packed):
        half = device.type == "cuda" and engine.precision in ("fp16", "bf16")
        return PackedStream(data.store, data.indices, normalization=dc.normalization,
                            dtype=torch.float16 if half else torch.float32, **common)
    return PatchStream(list(data), patch_size=dc.patch_size, normalization=dc.normalization,
                       shuffle_buffer=dc.shuffle_buffer, **common)


def _fused_supported(model: torch.nn.Module) -> bool:
    """Whether the fused Triton training kernels handle ``model``'s architecture."""
    from ..kernels.train import supports

    return supports(model)
