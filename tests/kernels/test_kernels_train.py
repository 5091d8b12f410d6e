"""The optional fused Triton training step of the seed net (napari_cryoden.kernels.train).

The kernels run under Triton's CPU interpreter (``TRITON_INTERPRET=1``, in a subprocess so that
the variable is set before Triton is imported) and are compared with PyTorch's float64 autograd
on the net as fp16 autocast sees it (weights and input rounded to fp16): what is left is the
rounding of the fp16 activations. Those tests skip without Triton (CI has none). The packing of
the weights and gradients, the checks and the refusals are tested in torch alone.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from napari_cryoden.config.sections import ModelConfig
from napari_cryoden.kernels import KernelConfig
from napari_cryoden.kernels._train_pack import pack_training, unpack_gradients
from napari_cryoden.kernels.train import (
    TrainKernelConfig,
    make_fused_step,
    seed_net_loss,
    supports,
)
from napari_cryoden.models.nets import build_model

HAS_TRITON = importlib.util.find_spec("triton") is not None

# Each case: channels, dtype, (B, 1, H, W), strided x and target, TrainKernelConfig kwargs
# (``forward`` as KernelConfig kwargs). Odd sizes leave partial tiles on both axes; 4 x 16 tiles
# on 21 x 53 give interior tiles (unmasked loads) as well as border ones; 3 or 5 persistent
# programs for 40 or more tiles make every program loop over several tiles.
CASES = {
    "fp16, interior and border tiles": (16, "float16", (2, 1, 21, 53), False,
                                        {"tile_w": 16, "programs": 3}),
    "fp32 strided, tiny tiles": (16, "float32", (2, 1, 13, 11), True,
                                 {"forward": {"tile_h": 4, "tile_w": 8, "tile_h3": 2,
                                              "tile_w3": 8},
                                  "tile_h": 1, "tile_w": 16, "programs": 5}),
    "32 channels": (32, "float16", (1, 1, 19, 23), False,
                    {"tile_h": 8, "tile_w": 16, "programs": 2}),
    "more programs than tiles": (16, "float16", (1, 1, 6, 20), False,
                                 {"forward": {"tile_w": 16}, "tile_h": 2, "programs": 100}),
}

INTERPRETER_SCRIPT = r"""
import copy, json, os, sys
os.environ["TRITON_INTERPRET"] = "1"
import torch
import torch.nn.functional as F
from napari_cryoden.config.sections import ModelConfig
from napari_cryoden.kernels import KernelConfig
from napari_cryoden.kernels.train import TrainKernelConfig, make_fused_step, seed_net_loss
from napari_cryoden.models.nets import build_model


def autocast_reference(model, x, target):
    ref = copy.deepcopy(model).double()
    with torch.no_grad():
        for name, p in ref.named_parameters():
            if name.endswith("weight"):
                p.copy_(p.half().double())
    loss = F.mse_loss(ref(x.half().double()), target.double())
    loss.backward()
    return loss, ref


def torch_half_errors(model, x, target, ref):
    half = copy.deepcopy(model).half()
    (F.mse_loss(half(x.half()).float(), target.float()) * 1024).backward()
    return {name: float((p.grad.double() / 1024 - r.grad).norm() / r.grad.norm())
            for (name, p), r in zip(half.named_parameters(), ref.parameters())}


def config(kwargs):
    kwargs = dict(kwargs)
    return TrainKernelConfig(forward=KernelConfig(**kwargs.pop("forward", {})), **kwargs)


results = {}
for name, (chans, dtype, shape, strided, kwargs) in json.loads(sys.argv[1]).items():
    torch.manual_seed(len(name))
    model = build_model(ModelConfig(channels=chans))
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.3)
    x, target = (torch.randn(shape).to(getattr(torch, dtype)) for _ in range(2))
    if strided:
        x, target = (t.transpose(2, 3).contiguous().transpose(2, 3) for t in (x, target))
    batch, _, height, width = shape
    hidden = torch.full((batch, height, width, chans), float("nan"), dtype=torch.float16)
    error = torch.full((batch, height, width), float("nan"), dtype=torch.float16)
    loss = seed_net_loss(model, x, target, config=config(kwargs), hidden=hidden, error=error)
    loss.backward()
    ref_loss, ref = autocast_reference(model, x, target)
    rel = {"loss": abs(loss.item() - ref_loss.item()) / ref_loss.item()}
    for (pname, p), r in zip(model.named_parameters(), ref.parameters()):
        rel[pname] = float((p.grad.double() - r.grad).norm() / r.grad.norm())
    results[name] = {"rel": rel, "torch_half": torch_half_errors(model, x, target, ref),
                     "nan": sum(int(p.grad.isnan().sum()) for p in model.parameters()),
                     "loss_dtype": str(loss.dtype), "loss_dim": loss.dim()}

torch.manual_seed(7)
model = build_model(seed=7)
ref = copy.deepcopy(model).double()
start = [p.detach().clone() for p in model.parameters()]
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
ref_opt = torch.optim.SGD(ref.parameters(), lr=0.05, momentum=0.9)
step = make_fused_step(model, opt, TrainKernelConfig(programs=2))
seen, step_out = [], {}
for i in range(2):
    x = torch.rand(2, 1, 12, 20)
    target = (x + 0.1 * torch.randn_like(x)).half()
    before = [p.detach().clone() for p in model.parameters()]
    hook = lambda loss: seen.append({
        "loss": loss.item(),
        "unchanged": all(torch.equal(p, q) for p, q in zip(model.parameters(), before)),
        "grads": [p.grad.detach().clone() for p in model.parameters()]})
    _, here = autocast_reference(model, x, target)  # autograd at the weights of this step
    loss = step(x, target, before_update=hook)
    grad_rel = max(float((g.double() - r.grad).norm() / r.grad.norm())
                   for g, r in zip(seen[-1]["grads"], here.parameters()))
    ref_opt.zero_grad()
    ref_loss = F.mse_loss(ref(x.half().double()), target.double())
    ref_loss.backward()
    ref_opt.step()
    step_out[f"step{i}"] = {"loss": loss.item(), "ref_loss": ref_loss.item(),
                            "seen": seen[-1]["loss"], "unchanged": seen[-1]["unchanged"],
                            "grad_rel": grad_rel, "requires_grad": loss.requires_grad,
                            "dim": loss.dim()}
moved = [(p.detach().double() - s.double()) for p, s in zip(model.parameters(), start)]
ref_moved = [(r.detach() - s.double()) for r, s in zip(ref.parameters(), start)]
step_out["update_rel"] = max(float((m - rm).norm() / rm.norm()) for m, rm in zip(moved, ref_moved))
step_out["calls"] = len(seen)
results["step"] = step_out
print(json.dumps(results))
"""


def _triton_version() -> tuple[int, ...]:
    from importlib.metadata import version

    return tuple(int(p) for p in version("triton").split(".")[:2])


@pytest.fixture(scope="module")
def interpreted() -> dict:
    if not HAS_TRITON:
        pytest.skip("triton is not installed (not a project dependency)")
    if _triton_version() < (3, 9):
        # Seen with Triton 3.6 (torch 2.11's): its interpreter raises "only 0-dimensional arrays
        # can be converted to Python scalars" in the backward kernel. On such a GPU box the
        # compiled kernels are tested by the CUDA tests below and by bench_kernels_train.py.
        pytest.skip("the interpreter of Triton < 3.9 cannot run the backward kernel")
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    proc = subprocess.run([sys.executable, "-c", INTERPRETER_SCRIPT, json.dumps(CASES)],
                          capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("case", list(CASES))
def test_interpreted_loss_and_gradients_match_autograd(interpreted: dict, case: str) -> None:
    result = interpreted[case]
    assert result["nan"] == 0
    assert result["loss_dtype"] == "torch.float32" and result["loss_dim"] == 0
    assert result["rel"]["loss"] < 5e-4
    # fp16 activations: within 2e-3 of float64, or as close as PyTorch's own fp16 path gets
    # (a few seeds make a gradient ill-conditioned: ReLU masks flip on fp16 rounding)
    worst = {k: (v, result["torch_half"][k]) for k, v in result["rel"].items()
             if k != "loss" and v >= max(2e-3, 1.5 * result["torch_half"][k])}
    assert not worst, f"relative error (fused, torch fp16) too large: {worst}"


def test_interior_and_border_tiles_both_occur_in_the_first_case() -> None:
    """The first case is meant to run both load paths of the backward kernel."""
    _, _, (_, _, height, width), _, kwargs = CASES["fp16, interior and border tiles"]
    th, tw = TrainKernelConfig().tile_h, kwargs["tile_w"]
    interior = [r0 >= 2 and r0 + th + 2 <= height and c0 >= 2 and c0 + tw + 2 <= width
                for r0 in range(0, height, th) for c0 in range(0, width, tw)]
    assert any(interior) and not all(interior)


def test_interpreted_step_follows_the_make_step_contract(interpreted: dict) -> None:
    out = interpreted["step"]
    assert out["calls"] == 2
    for i in range(2):
        s = out[f"step{i}"]
        assert s["unchanged"], "before_update must run before the optimizer step"
        assert s["seen"] == s["loss"]
        assert abs(s["loss"] - s["ref_loss"]) < 1e-3 * s["ref_loss"]
        assert s["grad_rel"] < 1e-3  # the 2nd step's gradients are not added to the 1st's
        assert not s["requires_grad"] and s["dim"] == 0
    assert out["update_rel"] < 5e-3


def _kernel_algorithm(model: torch.nn.Module, x: torch.Tensor,
                      target: torch.Tensor) -> list[torch.Tensor]:
    """The backward kernel's algorithm in float64 torch, from the packed weights."""
    params = [p.detach() for p in model.parameters()]
    _, bw = pack_training(*params)
    w1x, w3d, w2t = (bw[k].double() for k in ("w1x", "w3_dot", "w2t"))
    batch, _, height, width = x.shape
    chans = params[0].shape[0]
    with torch.no_grad():
        h2 = torch.relu(model.conv2(torch.relu(model.conv1(x))))
        e = model.conv3(h2) - target
    ones = torch.ones(batch, height * width, 1, dtype=torch.float64)
    x16 = torch.cat([F.unfold(x, 3, padding=1).transpose(1, 2), ones, 0 * ones.expand(-1, -1, 6)],
                    -1)
    e32 = torch.cat([F.unfold(e, 5, padding=2).transpose(1, 2), 0 * ones.expand(-1, -1, 7)], -1)
    h1 = torch.relu(x16 @ w1x)
    hpad = F.pad(h2.permute(0, 2, 3, 1), (0, 0, 1, 1, 1, 1))
    dh1 = torch.zeros_like(h1)
    g2 = []
    for s in range(9):
        sy, sx = s // 3 - 1, s % 3 - 1
        h2s = hpad[:, 1 - sy:1 - sy + height, 1 - sx:1 - sx + width].reshape(batch, -1, chans)
        dz2 = (e32 @ w3d[s]) * (h2s > 0)
        dh1 += dz2 @ w2t[s]
        g2.append(torch.einsum("bpi,bpo->io", h1, dz2))
        if s == 4:
            gb2 = dz2.sum((0, 1))
            gw3 = torch.einsum("bpc,bpk->ck", h2s, e32)
    gw1 = torch.einsum("bpk,bpc->kc", x16, dh1 * (h1 > 0))
    total = torch.cat([torch.stack(g2).flatten(), gw1.flatten(), gw3.flatten(), gb2])
    scale = 2.0 / e.numel()
    return unpack_gradients(total * scale, e.sum() * scale, chans, torch.device("cpu"))


@pytest.mark.parametrize("channels", [16, 32])
def test_packing_and_unpacking_give_autograd_gradients(channels: int) -> None:
    model = build_model(ModelConfig(channels=channels), seed=1).double()
    with torch.no_grad():  # fp16-exact weights: the packing rounds them to fp16
        for p in model.parameters():
            p.copy_(p.half().double())
    x = torch.randn(2, 1, 9, 13, dtype=torch.float64)
    target = torch.randn_like(x)
    F.mse_loss(model(x), target).backward()
    grads = _kernel_algorithm(model, x, target)
    for (name, p), g in zip(model.named_parameters(), grads, strict=True):
        assert g.shape == p.shape, name
        assert torch.allclose(g, p.grad, rtol=1e-9, atol=1e-12), name


def test_supports_the_seed_net_only_where_kernels_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert supports(build_model(seed=0))
    assert supports(build_model(ModelConfig(channels=32), seed=0))
    assert not supports(build_model(ModelConfig(depth=4), seed=0))
    assert not supports(build_model(ModelConfig(channels=8), seed=0))
    assert not supports(build_model(seed=0).double())
    assert not supports(torch.nn.Conv2d(1, 1, 3))
    monkeypatch.delenv("TRITON_INTERPRET")
    if not torch.cuda.is_available():
        assert not supports(build_model(seed=0))  # a CPU model outside the interpreter


def test_make_fused_step_refuses_other_nets() -> None:
    model = build_model(ModelConfig(depth=4), seed=0)
    with pytest.raises(ValueError, match="seed net"):
        make_fused_step(model, torch.optim.Adam(model.parameters()))


@pytest.mark.parametrize("x, target, message", [
    (torch.zeros(1, 2, 8, 8), torch.zeros(1, 2, 8, 8), r"\(B, 1, H, W\)"),
    (torch.zeros(1, 1, 8, 8, dtype=torch.float64), torch.zeros(1, 1, 8, 8), "float16 or float32"),
    (torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 9), "must match"),
    (torch.zeros(0, 1, 8, 8), torch.zeros(0, 1, 8, 8), "non-empty"),
    (torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8), "CUDA"),
])
def test_bad_inputs_are_refused(x: torch.Tensor, target: torch.Tensor, message: str,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(ValueError, match=message):
        seed_net_loss(build_model(seed=0), x, target)


def test_tile_sides_must_be_powers_of_two() -> None:
    with pytest.raises(ValueError, match="powers of two"):
        TrainKernelConfig(tile_w=24).validate()
    with pytest.raises(ValueError, match=">= 16"):
        TrainKernelConfig(tile_h=2, tile_w=4).validate()
    with pytest.raises(ValueError, match="'dot'"):
        TrainKernelConfig(forward=KernelConfig(conv1="fma")).validate()


def test_training_modules_import_without_triton() -> None:
    code = ("import sys; sys.modules['triton'] = None\n"
            "import napari_cryoden.kernels._triton_train\n"
            "from napari_cryoden.kernels.train import supports\n"
            "from napari_cryoden.models.nets import build_model\n"
            "print(supports(build_model(seed=0)))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True, env={**os.environ, "TRITON_INTERPRET": "0"})
    assert proc.stdout.strip() == "False"


@pytest.mark.skipif(not (HAS_TRITON and torch.cuda.is_available()), reason="needs CUDA + Triton")
def test_fp16_training_on_cuda_runs_the_fused_step(make_pairs, tmp_path) -> None:
    from napari_cryoden.config.sections import Config
    from napari_cryoden.data.pairs import find_pairs
    from napari_cryoden.training import EpochEnd, train

    noisy, clean = make_pairs(n=6, size=128)
    pairs = find_pairs(noisy, clean)
    losses = {}
    for fused in (True, False):
        config = Config().replace(data={"patch_size": 64, "val_fraction": 0.0},
                                  train={"epochs": 3, "batch_size": 8, "device": "cuda",
                                         "precision": "fp16", "fused": fused, "lr": 3e-3})
        run = tmp_path / f"run_{fused}"
        events = list(train(config, pairs, None, run))
        losses[fused] = [e.train_loss for e in events if isinstance(e, EpochEnd)]
        precision = json.loads((run / "history.json").read_text())["precision"]
        assert precision == ("fp16, fused Triton kernels" if fused else "fp16")
    assert losses[True][-1] < losses[True][0]  # it learns
    assert losses[True][-1] < 1.1 * losses[False][-1]  # as well as cuDNN's fp16 step
