"""The one place that turns a device choice (``auto|cpu|cuda[:n]|mps``) into a torch device.

Training, inference, the CLI and the widgets all call :func:`resolve_device`, so a choice means
the same everywhere: ``auto`` picks CUDA, then Apple MPS, then the CPU; an explicit device that
this machine lacks is a one-line :class:`~napari_cryoden.errors.InputError`, never a silent fall
back. :func:`device_name` is how a device is shown to a user.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import InputError

if TYPE_CHECKING:
    import torch

__all__ = ["resolve_device", "device_name", "describe_choice"]


def _mps_available() -> bool:
    import torch

    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(choice: str | torch.device = "auto", *, check: bool = True) -> torch.device:
    """Resolve a device choice.

    Parameters
    ----------
    choice
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"`` or a ``torch.device``.
    check
        Whether an explicit device must exist here; ``False`` only parses it (for planning
        tiles or memory for another machine).

    Returns
    -------
    torch.device
        The device to run on.

    Raises
    ------
    InputError
        The choice names a device that this machine does not have.
    """
    import torch

    if isinstance(choice, torch.device):
        choice = str(choice)
    if choice == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if _mps_available() else "cpu")
    if not check:
        return torch.device(choice)
    if choice.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InputError(f"device {choice!r}: CUDA is not available on this machine")
        index = torch.device(choice).index
        if index is not None and index >= torch.cuda.device_count():
            raise InputError(f"device {choice!r}: this machine has "
                             f"{torch.cuda.device_count()} CUDA device(s)")
    if choice == "mps" and not _mps_available():
        raise InputError("device 'mps': Apple MPS is not available on this machine")
    try:
        return torch.device(choice)
    except RuntimeError as exc:
        raise InputError(f"device {choice!r}: {exc}") from None


def device_name(device: torch.device) -> str:
    """Short name of a device as logs and reports show it, e.g. ``"cuda (NVIDIA H100)"``."""
    import torch

    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return device.type


def describe_choice(choice: str) -> str:
    """Say what a device choice will run on, in a user's words, e.g. ``"CPU (8 threads)"``."""
    import torch

    try:
        device = resolve_device(choice)
    except InputError:
        return f"{choice}: not available on this machine"
    if device.type == "cuda":
        return f"GPU: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "Apple MPS"
    return f"CPU ({torch.get_num_threads()} threads)"
