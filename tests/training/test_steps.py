"""The training step's fast paths: precision handling, the pre-update hook, batch-size choice,
and a fused run's validation."""

from __future__ import annotations

import pytest
import torch

from napari_cryoden.config.sections import Config, ConfigError
from napari_cryoden.data.batches import Batch
from napari_cryoden.models.nets import build_model
from napari_cryoden.training.distributed import World
from napari_cryoden.training.setup import Engine
from napari_cryoden.training.steps import (
    FUSED_MOST_BATCH,
    autocast,
    choose_batch_size,
    make_step,
    most_batch,
    uses_channels_last,
)
from napari_cryoden.training.validation import validate


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    clean = torch.rand(2, 1, 24, 24, generator=gen)
    return clean + 0.3 * torch.randn(2, 1, 24, 24, generator=gen), clean


def test_fp32_step_matches_a_plain_adam_loop() -> None:
    noisy, clean = _batch()
    a, b = build_model(seed=1), build_model(seed=1)
    opt_a = torch.optim.Adam(a.parameters(), lr=1e-3)
    opt_b = torch.optim.Adam(b.parameters(), lr=1e-3)
    step = make_step(a, opt_a, "fp32")
    for _ in range(3):
        loss = step(noisy, clean)
        opt_b.zero_grad()
        ref = torch.nn.functional.mse_loss(b(noisy), clean)
        ref.backward()
        opt_b.step()
        assert float(loss) == pytest.approx(float(ref.detach()), rel=1e-6)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(pa, pb)


def test_float16_batches_are_promoted_off_cuda() -> None:
    noisy, clean = _batch()
    model = build_model(seed=1)
    loss = make_step(model, torch.optim.Adam(model.parameters()), "fp16")(noisy.half(),
                                                                          clean.half())
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


def test_before_update_sees_the_loss_and_can_veto_the_update() -> None:
    noisy, clean = _batch()
    model = build_model(seed=1)
    before = [p.detach().clone() for p in model.parameters()]
    seen: list[float] = []

    def refuse(loss: torch.Tensor) -> None:
        seen.append(float(loss))
        raise FloatingPointError("refused")

    step = make_step(model, torch.optim.Adam(model.parameters(), lr=1e-2), "fp32")
    with pytest.raises(FloatingPointError):
        step(noisy, clean, before_update=refuse)
    assert len(seen) == 1 and seen[0] > 0
    for old, new in zip(before, model.parameters(), strict=True):
        torch.testing.assert_close(old, new.detach())  # no update happened


def test_reduced_precision_is_cuda_only() -> None:
    cpu = torch.device("cpu")
    assert not uses_channels_last("fp16", cpu)
    assert uses_channels_last("bf16", torch.device("cuda"))
    assert not uses_channels_last("tf32", torch.device("cuda"))
    with autocast("fp16", cpu):
        assert not torch.is_autocast_enabled("cpu")
    with pytest.raises(ValueError, match="precision"):
        make_step(build_model(), torch.optim.SGD(build_model().parameters(), lr=0.1), "fp8")


def test_batch_size_choice_on_cpu_is_the_default() -> None:
    assert choose_batch_size(build_model(), 256, "fp32", torch.device("cpu")) == 4


def test_the_automatic_batch_stays_where_each_step_is_fastest_per_patch() -> None:
    """H100, seed net, 1024²: fp32 runs 320 patches/s at batch 16 and 115-183 at 32-64."""
    assert most_batch(1024, "fp32", fused=False) == 16
    assert most_batch(1024, "tf32", fused=False) == 16
    assert most_batch(2048, "fp32", fused=False) == 4
    assert most_batch(8192, "fp32", fused=False) == 1
    assert most_batch(256, "fp32", fused=False) == 64  # small patches: not capped below most
    assert most_batch(1024, "fp16", fused=False) == 64  # AMP steps get faster up to 64
    assert most_batch(1024, "bf16", fused=False, most=128) == 128
    assert most_batch(1024, "fp16", fused=True) == FUSED_MOST_BATCH


def test_precision_config_is_validated() -> None:
    assert Config().train.effective_precision == "fp32"
    assert Config().replace(train={"amp": True}).train.effective_precision == "fp16"
    assert Config().replace(train={"precision": "bf16"}).train.effective_precision == "bf16"
    with pytest.raises(ConfigError, match="precision"):
        Config().replace(train={"precision": "fp8"})
    with pytest.raises(ConfigError, match="contradicts"):
        Config().replace(train={"amp": True, "precision": "bf16"})
    assert Config().replace(train={"batch_size": 0}).train.batch_size == 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_auto_batch_fits_and_is_a_power_of_two() -> None:
    model = build_model(seed=0).cuda()
    batch = choose_batch_size(model, 512, "fp16", torch.device("cuda"))
    assert batch >= 1 and batch & (batch - 1) == 0


def _engine(fused: bool) -> Engine:
    model = build_model(seed=3)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return Engine(torch.device("cpu"), "fp32", model, model, optimizer,
                  torch.amp.GradScaler("cpu", enabled=False), fused, 2)


def test_a_fused_run_validates_with_the_fused_forward_never_the_pytorch_model(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A run the fused kernels train must not touch cuDNN (370 MB of host memory) to validate:
    its validation goes through the fused forward; a stock run's through the model."""
    import napari_cryoden.kernels as kernels

    calls = []

    class Recorded:  # the fused forward, computed by a copy of the model (no Triton here)
        def __init__(self, model: torch.nn.Module, device: torch.device) -> None:
            self.copy = build_model(seed=3)
            self.copy.load_state_dict(model.state_dict())

        def __call__(self, x: torch.Tensor) -> torch.Tensor:
            calls.append(x.dtype)
            return self.copy(x.float()).half()

    monkeypatch.setattr(kernels, "FusedForward", Recorded)
    noisy, clean = _batch(5)
    stream = [Batch(noisy, clean, torch.zeros(2), torch.full((2,), 2.0))] * 3
    world = World(torch.device("cpu"))

    fused = _engine(fused=True)
    touched = fused.model.register_forward_pre_hook(lambda *_: pytest.fail("model called"))
    loss, mse = validate(fused, stream, None, world)
    touched.remove()
    assert calls == [torch.float16] * 3  # fp16, as the autocast forward it replaces

    stock = _engine(fused=False)
    ref_loss, ref_mse = validate(stock, stream, None, world)
    assert len(calls) == 3  # the stock run never used it
    assert loss == pytest.approx(ref_loss, rel=1e-3)  # same model, fp16 output rounding
    assert mse == pytest.approx(4 * ref_loss, rel=1e-3) and ref_mse == pytest.approx(4 * ref_loss)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fused_batch_choice_probes_the_fused_step_and_stays_at_most_32() -> None:
    from napari_cryoden.kernels.train import supports

    model = build_model(seed=0).cuda()
    if not supports(model):
        pytest.skip("needs Triton")
    before = [p.detach().clone() for p in model.parameters()]
    batch = choose_batch_size(model, 1024, "fp16", torch.device("cuda"), fused=True)
    assert batch == FUSED_MOST_BATCH  # 1024² fits 32 on any GPU this project trains on
    for p, q in zip(model.parameters(), before, strict=True):
        assert torch.equal(p, q)
