"""The GPU training step and forward pass alone, by precision, memory layout and batch size.

Usage::

    python benchmarks/bench_step.py [--patch 1024] [--batches 8 16 32 64]
                                    [--infer-batches 1 4 16 64] [--compile] [--json OUT.json]

No disk, no loader: every variant trains (or runs) the seed net on a few batches of random
patches held in GPU memory, rotated so the inputs do not sit in L2, timed with CUDA events after a
warm-up (median of ``--repeat`` timed windows of ``--steps`` steps). The first variant,
``fp32 NCHW`` with cuDNN autotuning off, is the plain PyTorch loop: every other figure is also
printed as a ratio to it. Training variants step Adam on the MSE loss; inference variants report
Gpx/s (10⁹ output pixels per second).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import cuda_time  # noqa: E402

from napari_cryoden.models.nets import build_model  # noqa: E402
from napari_cryoden.training.steps import compiled_step, make_step  # noqa: E402


def _time(fn: Callable[[int], object], steps: int, repeat: int) -> float:
    return cuda_time(fn, steps, repeat, warmup=3)


def _inputs(batch: int, patch: int, dtype: torch.dtype, channels_last: bool, sets: int = 4):
    gen = torch.Generator(device="cuda").manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    return [(torch.randn(batch, 1, patch, patch, device="cuda", generator=gen)
             .to(dtype).contiguous(memory_format=fmt),
             torch.randn(batch, 1, patch, patch, device="cuda", generator=gen)
             .to(dtype).contiguous(memory_format=fmt)) for _ in range(sets)]


class _ChannelsLastGrad(torch.autograd.Function):
    """Identity whose gradient is made channels_last (a 1-channel tensor's grad arrives NCHW)."""

    @staticmethod
    def forward(ctx, x):  # noqa: ANN001, ANN205
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):  # noqa: ANN001, ANN205
        return grad.contiguous(memory_format=torch.channels_last)


class _ClGradNet(torch.nn.Module):
    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _ChannelsLastGrad.apply(self.net(x))


TRAIN_VARIANTS = {
    # name: (precision, channels_last, cudnn.benchmark, compile)
    "fp32 NCHW (plain loop)": ("fp32", False, False, False),
    "fp32 NCHW autotuned (cryoden's fp32)": ("fp32", False, True, False),
    "tf32 NCHW": ("tf32", False, True, False),
    "fp16 AMP channels_last": ("fp16", True, True, False),
    "bf16 AMP channels_last": ("bf16", True, True, False),
    "fp16 AMP NCHW": ("fp16", False, True, False),
    "fp16 AMP channels_last + CL grads": ("fp16", True, True, "clgrad"),
    "fp16 AMP channels_last + compile": ("fp16", True, True, True),
    "bf16 AMP channels_last + compile": ("bf16", True, True, True),
}


def bench_train(patch: int, batches: list[int], steps: int, repeat: int,
                with_compile: bool, only: list[str] | None = None) -> list[dict]:
    rows = []
    for name, (precision, cl, autotune, comp) in TRAIN_VARIANTS.items():
        if comp is True and not with_compile:
            continue
        if only and not name.startswith("fp32") and not any(o in name for o in only):
            continue
        torch.backends.cudnn.benchmark = autotune
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = (
            precision == "tf32")
        for batch in batches:
            model = build_model(seed=0).cuda()
            if cl:
                model = model.to(memory_format=torch.channels_last)
            opt = torch.optim.Adam(model.parameters(), lr=1e-4)
            if comp == "clgrad":
                step = make_step(_ClGradNet(model), opt, precision)
            else:
                step = (compiled_step if comp else make_step)(model, opt, precision)
            data = _inputs(batch, patch, torch.float16 if precision != "fp32" else torch.float32,
                           cl)
            try:
                seconds = _time(lambda i, s=step, d=data: s(*d[i % len(d)]), steps, repeat)
            except torch.cuda.OutOfMemoryError:
                print(f"{name:36s} batch {batch:3d}: out of memory", flush=True)
                continue
            rows.append({"kind": "train", "variant": name, "batch": batch,
                         "patches_per_s": batch / seconds, "peak_gb":
                         torch.cuda.max_memory_allocated() / 1e9})
            print(f"{name:36s} batch {batch:3d}: {batch / seconds:8.0f} patches/s", flush=True)
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
    return rows


INFER_VARIANTS = {
    "fp32 NCHW (plain)": (torch.float32, False, False, False),
    "tf32 NCHW": (torch.float32, False, True, False),
    "fp16 channels_last": (torch.float16, True, True, False),
    "bf16 channels_last": (torch.bfloat16, True, True, False),
    "fp16 channels_last + compile": (torch.float16, True, True, True),
}


def bench_infer(patch: int, batches: list[int], steps: int, repeat: int,
                with_compile: bool) -> list[dict]:
    rows = []
    base = build_model(seed=0).cuda().eval()
    x32 = torch.randn(4, 1, 512, 512, device="cuda")
    with torch.inference_mode():
        ref = base.double()(x32.double()).float()
    base.float()
    for name, (dtype, cl, autotune, comp) in INFER_VARIANTS.items():
        if comp and not with_compile:
            continue
        torch.backends.cudnn.benchmark = autotune
        torch.backends.cudnn.allow_tf32 = name.startswith("tf32")
        model = build_model(seed=0).cuda().eval().to(dtype)
        if cl:
            model = model.to(memory_format=torch.channels_last)
        fn = torch.compile(model) if comp else model
        with torch.inference_mode():
            err = float((fn(x32.to(dtype).contiguous(memory_format=torch.channels_last
                                                       if cl else torch.contiguous_format))
                         .float() - ref).abs().max())
            for batch in batches:
                data = _inputs(batch, patch, dtype, cl, sets=2)
                try:
                    seconds = _time(lambda i, f=fn, d=data: f(d[i % 2][0]), steps, repeat)
                except torch.cuda.OutOfMemoryError:
                    print(f"{name:36s} batch {batch:3d}: out of memory", flush=True)
                    continue
                gpx = batch * patch * patch / seconds / 1e9
                rows.append({"kind": "infer", "variant": name, "batch": batch,
                             "gpx_per_s": gpx, "patches_per_s": batch / seconds,
                             "max_abs_err_vs_fp64": err})
                print(f"{name:36s} batch {batch:3d}: {gpx:6.2f} Gpx/s "
                      f"({batch / seconds:6.0f} patches/s)  max|err| {err:.1e}", flush=True)
                torch.cuda.empty_cache()
    return rows


def profile(patch: int, batch: int, precision: str) -> None:
    """Per-kernel GPU time of a few channels_last steps: which kernels bound the step."""
    torch.backends.cudnn.benchmark = True
    model = build_model(seed=0).cuda().to(memory_format=torch.channels_last)
    step = make_step(model, torch.optim.Adam(model.parameters(), lr=1e-4), precision)
    data = _inputs(batch, patch, torch.float16, True)
    for i in range(5):
        step(*data[i % len(data)])
    torch.cuda.synchronize()
    activities = [torch.profiler.ProfilerActivity.CUDA]
    with torch.profiler.profile(activities=activities) as prof:
        for i in range(5):
            step(*data[i % len(data)])
        torch.cuda.synchronize()
    print(f"\nprofile: {precision} channels_last, batch {batch}, 5 steps")
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=14,
                                    max_name_column_width=70))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patch", type=int, default=1024)
    parser.add_argument("--batches", type=int, nargs="+", default=[8, 16, 32, 64])
    parser.add_argument("--infer-batches", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--compile", action="store_true", help="also torch.compile variants")
    parser.add_argument("--only", nargs="+", help="training variants whose names contain one of "
                        "these (the fp32 plain loop always runs)")
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--skip-infer", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--profile", action="store_true",
                        help="print the per-kernel GPU times of the fp16 step at batch 32")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        sys.exit("bench_step.py needs a CUDA GPU")
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}, "
          f"cuDNN {torch.backends.cudnn.version()}, patch {args.patch}²", flush=True)
    rows = []
    if not args.skip_train:
        rows += bench_train(args.patch, args.batches, args.steps, args.repeat, args.compile,
                            args.only)
    if not args.skip_infer:
        rows += bench_infer(args.patch, args.infer_batches, args.steps, args.repeat,
                            args.compile)
    summarise(rows)
    if args.profile:
        profile(args.patch, 32, "fp16")
    if args.json:
        args.json.write_text(json.dumps({"device": torch.cuda.get_device_name(),
                                         "torch": torch.__version__, "rows": rows}, indent=1))


def summarise(rows: list[dict]) -> None:
    """Best batch per variant, as a ratio to the plain fp32 loop's best."""
    for kind, key, unit in (("train", "patches_per_s", "patches/s"),
                            ("infer", "gpx_per_s", "Gpx/s")):
        best: dict[str, dict] = {}
        for row in rows:
            if row["kind"] == kind and (row["variant"] not in best
                                        or row[key] > best[row["variant"]][key]):
                best[row["variant"]] = row
        if not best:
            continue
        plain = next(iter(best.values()))[key]
        print(f"\n{kind}: best batch per variant (ratio to {next(iter(best))})")
        for name, row in best.items():
            print(f"  {name:36s} {row[key]:9.2f} {unit} at batch {row['batch']:3d}  "
                  f"x{row[key] / plain:.2f}")


if __name__ == "__main__":
    main()
