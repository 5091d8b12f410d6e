"""The optional fused Triton kernels of the seed net (napari_cryoden.kernels).

Model checks, input checks and the weight packing are tested in torch alone. The kernels
themselves run under Triton's CPU interpreter (``TRITON_INTERPRET=1``, in a subprocess so that the
variable is set before Triton is imported); those tests skip when Triton is not installed, which
is the case in CI: Triton is not a dependency of the project.
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
from napari_cryoden.kernels import check_model, fused_forward, pack_weights
from napari_cryoden.models.nets import build_model

HAS_TRITON = importlib.util.find_spec("triton") is not None

# Each case: channels, dtype, (B, 1, H, W), KernelConfig kwargs, strided input. Odd sizes leave
# partial tiles on both axes; out and workspace are filled with NaN first, so a pixel that no
# program writes shows up.
CASES = {
    "fp16 dot": (16, "float16", (2, 1, 37, 53), {}, False),
    "fp32 strided, tiny tiles": (16, "float32", (2, 1, 13, 11),
                                 {"tile_h": 4, "tile_w": 4, "tile_h3": 1, "tile_w3": 16}, True),
    "fp16 fma": (16, "float16", (1, 1, 13, 19), {"conv1": "fma", "tile_w": 16}, False),
    "32 channels": (32, "float16", (2, 1, 19, 23), {"tile_h": 16, "tile_w": 16}, False),
}

INTERPRETER_SCRIPT = r"""
import json, os, sys
os.environ["TRITON_INTERPRET"] = "1"
import torch
from napari_cryoden.config.sections import ModelConfig
from napari_cryoden.kernels import KernelConfig, fused_forward
from napari_cryoden.models.nets import build_model

results = {}
for name, (chans, dtype, shape, kwargs, strided) in json.loads(sys.argv[1]).items():
    torch.manual_seed(len(name))
    model = build_model(ModelConfig(channels=chans))
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.3)
    x = torch.randn(shape).to(getattr(torch, dtype))
    if strided:
        x = x.transpose(2, 3).contiguous().transpose(2, 3)
    out = torch.full_like(x, float("nan"))
    work = torch.full((shape[0], shape[2], shape[3], chans), float("nan"), dtype=torch.float16)
    y = fused_forward(model, x, config=KernelConfig(**kwargs), out=out, workspace=work)
    ref = model.double()(x.double())
    results[name] = {"rel": float((y.double() - ref).norm() / ref.norm()),
                     "ref_std": float(ref.std()), "nan": int(y.isnan().sum()),
                     "dtype": str(y.dtype), "is_out": y is out}

from napari_cryoden.kernels import FusedForward  # what denoise() runs for fp16 on CUDA
model = build_model(seed=1)
run = FusedForward(model, "cpu")
x = torch.randn(2, 1, 20, 24)
first = run(x)
workspace = run._workspace
second = run(x + 1.0)
rel = [float((y.double() - model.double()(v.double())).norm() / model.double()(v.double()).norm())
       for y, v in ((first, x), (second, x + 1.0))]
results["runner"] = {"rel": max(rel), "reused": run._workspace is workspace}
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def interpreted() -> dict:
    if not HAS_TRITON:
        pytest.skip("triton is not installed (not a project dependency)")
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    proc = subprocess.run([sys.executable, "-c", INTERPRETER_SCRIPT, json.dumps(CASES)],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("case", list(CASES))
def test_interpreted_kernels_match_the_model_in_float64(interpreted: dict, case: str) -> None:
    result = interpreted[case]
    assert result["nan"] == 0, "some output pixels were never written"
    assert result["ref_std"] > 0.5  # the check below is not dominated by the bias
    assert result["rel"] < 1e-3
    assert result["dtype"] == f"torch.{CASES[case][1]}"
    assert result["is_out"]


def test_fused_forward_keeps_its_workspace_and_computes_the_model(interpreted: dict) -> None:
    assert interpreted["runner"]["rel"] < 1e-3
    assert interpreted["runner"]["reused"]


@pytest.mark.skipif(not (HAS_TRITON and torch.cuda.is_available()), reason="needs CUDA + Triton")
def test_denoise_in_fp16_on_cuda_runs_the_fused_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    from napari_cryoden import kernels
    from napari_cryoden.inference.denoiser import denoise

    calls = []
    real = kernels.FusedForward.__call__

    def counting(self: kernels.FusedForward, x: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(x.shape))
        return real(self, x)

    monkeypatch.setattr(kernels.FusedForward, "__call__", counting)
    model = build_model(seed=2)
    image = torch.randn(700, 900).numpy()
    exact = denoise(model, image, device="cuda")
    fast = denoise(model, image, device="cuda", precision="fp16")
    assert calls  # the fused kernels ran
    assert abs(fast - exact).max() < 1e-2 * image.std()
    calls.clear()
    denoise(model, image, device="cuda", precision="fp16", fused=False)
    assert not calls


def _emulate(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The kernels' algorithm in float64 torch, from the packed weights (tensor-core conv1)."""
    p = pack_weights(model, "cpu")
    batch, _, height, width = x.shape
    x25 = F.unfold(x, 5, padding=2).transpose(1, 2)  # (B, HW, 25): 5x5 window of each pixel
    x32 = torch.cat([x25, torch.ones_like(x25[..., :1]), torch.zeros_like(x25[..., :6])], -1)
    r = torch.arange(height).repeat_interleave(width)
    c = torch.arange(width).repeat(height)
    acc = torch.zeros(batch, height * width, p.channels, dtype=torch.float64)
    for s in range(9):
        sy, sx = s // 3 - 1, s % 3 - 1
        inside = ((r + sy >= 0) & (r + sy < height) & (c + sx >= 0) & (c + sx < width))
        h1 = torch.relu(x32 @ p.w1_dot[s].double()) * inside[:, None]
        acc += h1 @ p.w2[s].double()
    h2 = torch.relu(acc + p.b2.double()).reshape(batch, height, width, p.channels)
    h2 = F.pad(h2, (0, 0, 1, 1, 1, 1))
    y = p.b3.double().expand(batch, height, width).clone()
    for s in range(9):
        y += h2[:, s // 3:s // 3 + height, s % 3:s % 3 + width] @ p.w3[s].double()
    return y[:, None]


@pytest.mark.parametrize("channels", [16, 32])
def test_packed_weights_compute_the_model(channels: int) -> None:
    model = build_model(ModelConfig(channels=channels), seed=3).double()
    x = torch.randn(2, 1, 11, 14, dtype=torch.float64)
    ref = model(x)
    assert (_emulate(model, x) - ref).norm() / ref.norm() < 2e-3  # fp16-rounded w1, w2


def test_packed_fma_weights_are_conv1() -> None:
    model = build_model(seed=4)
    p = pack_weights(model, "cpu")
    x = torch.randn(1, 1, 9, 10)
    taps = F.unfold(x, 3, padding=1).transpose(1, 2)  # (1, HW, 9)
    assert torch.allclose(taps @ p.w1_fma + p.b1, model.conv1(x).flatten(2).transpose(1, 2),
                          atol=1e-5)


@pytest.mark.parametrize("config, message", [
    (ModelConfig(depth=4), "exactly 3 layers"),
    (ModelConfig(channels=8), "multiple of 16"),
    (ModelConfig(channels=80), "multiple of 16"),
    (ModelConfig(kernel_size=5), "conv1 = Conv2d"),
])
def test_other_nets_are_refused(config: ModelConfig, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_model(build_model(config))


def test_check_model_gives_the_channels() -> None:
    assert check_model(build_model(ModelConfig(channels=48))) == 48
    with pytest.raises(ValueError, match="DenoiseCNN"):
        check_model(torch.nn.Conv2d(1, 1, 3))


@pytest.mark.parametrize("x, message", [
    (torch.zeros(1, 2, 8, 8), r"\(B, 1, H, W\)"),
    (torch.zeros(1, 1, 8, 8, dtype=torch.float64), "float16 or float32"),
    (torch.zeros(1, 1, 8, 8), "CUDA"),
])
def test_bad_inputs_are_refused(x: torch.Tensor, message: str,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(ValueError, match=message):
        fused_forward(build_model(seed=0), x)


def test_package_imports_without_triton() -> None:
    code = ("import sys; sys.modules['triton'] = None\n"
            "import napari_cryoden.kernels as k, napari_cryoden.kernels._triton_seed\n"
            "print(k.available())")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    assert proc.stdout.strip() == "False"
