"""One device resolver: the same choice means the same device in training, inference and GUI."""

from __future__ import annotations

import pytest
import torch

from napari_cryoden.devices import describe_choice, device_name, resolve_device
from napari_cryoden.errors import InputError


def test_auto_and_cpu_resolve_on_a_cpu_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto").type in ("cpu", "mps")
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert device_name(resolve_device("cpu")) == "cpu"
    assert describe_choice("cpu").startswith("CPU (")


@pytest.mark.parametrize("choice", ["cuda", "cuda:1"])
def test_an_absent_gpu_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch, choice: str) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(InputError, match="CUDA is not available") as info:
        resolve_device(choice)
    assert "\n" not in str(info.value)
    assert describe_choice(choice) == f"{choice}: not available on this machine"
    assert resolve_device(choice, check=False).type == "cuda"  # planning for another machine


def test_a_gpu_index_past_the_last_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == torch.device("cuda:1")
    with pytest.raises(InputError, match="2 CUDA device"):
        resolve_device("cuda:2")


def test_a_nonsense_device_names_itself() -> None:
    with pytest.raises(InputError, match="'tpu'"):
        resolve_device("tpu")
