"""Data-parallel training over several processes (``torchrun``) with PyTorch's own DDP.

:func:`join` reads the launcher's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR``/``MASTER_PORT``) and, when ``WORLD_SIZE > 1``, initialises the process group:
NCCL on CUDA (each process on ``cuda:LOCAL_RANK``), gloo on the CPU. A group that the caller has
already initialised is used as it is and left for the caller to destroy. Without a launcher
everything here is a no-op, so single-process training pays nothing.

:func:`launch` is what ``cryoden train --ddp`` runs:
``python -m torch.distributed.run --standalone --nproc-per-node N -m napari_cryoden.cli train
…``. docs/distributed.md describes the whole scheme.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from ..errors import InputError

__all__ = [
    "RANK_WEIGHTS_ENV", "World", "join", "leave", "wrap_model", "all_sum", "any_rank",
    "save_rank_weights", "default_nproc", "launch_command", "launch", "launched",
]

RANK_WEIGHTS_ENV = "CRYODEN_RANK_WEIGHTS"
"""If set to a folder, every rank writes its final weights there as ``rank{r}.safetensors``
(to check that the replicas agree); unset in normal runs."""


@dataclass(frozen=True)
class World:
    """The place of this process in a (possibly one-process) training run.

    ``owns_group`` says that :func:`join` initialised the process group, so :func:`leave`
    destroys it.
    """

    device: torch.device
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes files and yields progress events."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        """More than one process: gradients and metrics are reduced across ranks."""
        return self.world_size > 1


def launched(environ: Mapping[str, str] | None = None) -> bool:
    """Whether this process was started by a launcher for a run of several processes."""
    env = os.environ if environ is None else environ
    return int(env.get("WORLD_SIZE", "1")) > 1


def join(device: torch.device) -> World:
    """Join the run this process belongs to and place it on its device.

    Parameters
    ----------
    device
        The device chosen from the config (``cuda`` without index, ``cpu``…). Under a launcher
        a CUDA device becomes ``cuda:LOCAL_RANK``.

    Raises
    ------
    InputError
        A device that cannot be shared out per process (``mps``, an explicit ``cuda:N``), or
        fewer GPUs than processes on this host.
    """
    initialised = dist.is_available() and dist.is_initialized()
    if not initialised and not launched():
        return World(device)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = _local_device(device, local_rank)
    if not initialised:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    world = World(device, dist.get_rank(), dist.get_world_size(), local_rank,
                  owns_group=not initialised)
    return world


def leave(world: World) -> None:
    """Destroy the process group if :func:`join` created it.

    Drop every DistributedDataParallel wrapper first: one that outlives the group keeps its
    gloo/NCCL threads alive until interpreter exit, where they can abort the process.
    """
    if world.owns_group and dist.is_initialized():
        gc.collect()  # DDP wrappers sit in reference cycles
        dist.destroy_process_group()


def _local_device(device: torch.device, local_rank: int) -> torch.device:
    if device.type == "cpu":
        return device
    if device.type != "cuda":
        raise InputError(f"device {device.type!r}: distributed training runs on cuda or cpu")
    if device.index is not None:
        raise InputError(f"device {device}: with torchrun give --device cuda; each process "
                         f"uses cuda:LOCAL_RANK")
    if local_rank >= torch.cuda.device_count():
        raise InputError(f"process {local_rank} has no GPU: {torch.cuda.device_count()} "
                         f"visible; use --nproc {torch.cuda.device_count()} or fewer")
    torch.cuda.set_device(local_rank)
    return torch.device("cuda", local_rank)


def wrap_model(model: torch.nn.Module, world: World) -> torch.nn.Module:
    """``model`` wrapped in DistributedDataParallel when several processes train, else itself.

    DDP broadcasts rank 0's initial weights and averages gradients over ranks during
    ``backward``: with the same batch size on every rank that is the gradient of the global mean.
    """
    if not world.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [world.device.index] if world.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def all_sum(values: Sequence[torch.Tensor | float], world: World) -> list[float]:
    """Sum scalars (tensors or numbers) over ranks, in float64.

    In a one-process run the values themselves are returned (as floats).
    """
    if not world.enabled:
        return [float(v) for v in values]
    parts = [torch.as_tensor(v, device=world.device).to(torch.float64).reshape(())
             for v in values]
    total = torch.stack(parts)
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return [float(v) for v in total.tolist()]


def any_rank(flag: bool, world: World) -> bool:
    """Whether ``flag`` is set on any rank (e.g. rank 0's stop request), agreed by all ranks."""
    if not world.enabled:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=world.device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


def save_rank_weights(model: torch.nn.Module, world: World) -> Path | None:
    """Write this rank's weights to ``$CRYODEN_RANK_WEIGHTS/rank{r}.safetensors`` if it is set."""
    folder = os.environ.get(RANK_WEIGHTS_ENV)
    if not folder:
        return None
    from safetensors.torch import save_file

    path = Path(folder) / f"rank{world.rank}.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
              str(path))
    return path


def default_nproc(device: str) -> int:
    """Count processes for ``--ddp`` without ``--nproc``: one per visible GPU, else 2 on the CPU."""
    if device != "cpu" and torch.cuda.is_available() and torch.cuda.device_count() > 0:
        return torch.cuda.device_count()
    return 2


def launch_command(cli_args: Sequence[str], nproc: int) -> list[str]:
    """Build the torchrun command line that runs ``cryoden <cli_args>`` in ``nproc`` processes."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc-per-node={nproc}", "-m", "napari_cryoden.cli", *cli_args]


def launch(cli_args: Sequence[str], nproc: int) -> int:
    """Run ``cryoden <cli_args>`` under torchrun on this host and return its exit status.

    Ctrl-C reaches the launcher and the workers alike (one terminal process group); this waits
    for them to save and exit, and returns 130.
    """
    if nproc < 1:
        raise InputError(f"--nproc must be >= 1, got {nproc}")
    with subprocess.Popen(launch_command(cli_args, nproc)) as process:
        try:
            return process.wait()
        except KeyboardInterrupt:
            process.wait()
            return 130
