"""The fused Triton training step of the seed net against the stock fp16 AMP step, on one GPU.

Usage::

    python benchmarks/bench_kernels_train.py [--batches 16 32 64] [--patch 1024] [--json OUT]

In this order, each part reported and skipped on failure:

1. gradients on one batch (4 × 512²): fused and stock fp16 AMP against stock fp32 (TF32 off),
   relative error ‖g − g32‖/‖g32‖ per tensor;
2. ``--accuracy-steps`` Adam steps (default 300, lr 1e-3) from the same initial weights on the
   same synthetic batches (8 × 256², smooth images plus noise) by stock fp32, stock fp16 AMP and
   fused, then the fp32 loss of each model on a held-out batch after 50 steps and at the end,
   each fast path against fp32 (the goal: within 2 %). Stock AMP's dynamic loss scaler starts
   at 65536 and skips every step whose gradients overflow while it halves the scale, so after
   50 steps it has made fewer updates than fp32: the count of skipped steps is reported, and the
   end figure (after warm-up) is the accuracy one; the 50-step one measures the warm-up;
3. patches/s of the plain fp32 loop (``make_step(model, Adam, "fp32")``, NCHW, no autotuning)
   twice, with the two baselines of ``benchmarks/_baseline.py`` (``strict fp32``: TF32 off;
   ``PyTorch defaults``: TF32 convolutions), every ratio given against both; of the stock step
   (``make_step(model, Adam, "fp16")``, channels_last, cuDNN autotuned: the ``stock fp16``
   ratio) and of ``make_fused_step`` under
   a few tile configurations, at each batch of ``--patch``² patches: the median of
   ``--repeat`` windows of ``--steps`` steps timed with CUDA events after a warm-up, inputs
   float16 alternating between two sets, plus peak memory;
4. each piece of the fastest fused configuration alone at the largest batch that ran.

A watchdog ends the run (with a traceback) after ``--deadline`` seconds, so it never hangs.
"""

from __future__ import annotations

import argparse
import copy
import faulthandler
import json
import sys
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _baseline import BASELINES, plain  # noqa: E402
from _timing import cuda_time  # noqa: E402

from napari_cryoden.kernels import available  # noqa: E402
from napari_cryoden.kernels.train import (  # noqa: E402
    TrainKernelConfig,
    make_fused_step,
    seed_net_loss,
    stage_launchers,
)
from napari_cryoden.models.nets import build_model  # noqa: E402
from napari_cryoden.training.steps import make_step  # noqa: E402

CONFIGS = {
    "bwd 4x32 w4": TrainKernelConfig(),
    "bwd 2x32 w4": TrainKernelConfig(tile_h=2),
    "bwd 8x32 w8": TrainKernelConfig(tile_h=8, num_warps=8),
}
DEFAULT = "bwd 4x32 w4"


def _time(fn: Callable[[int], object], steps: int, repeat: int) -> float:
    return cuda_time(fn, steps, repeat, warmup=2)


def _fail(what: str, exc: BaseException) -> None:
    first = str(exc).splitlines()[0] if str(exc) else ""
    print(f"{what}: FAILED: {type(exc).__name__}: {first}", flush=True)


def synthetic(batch: int, side: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(noisy, clean) on CUDA: smooth images in [0, 1] plus Gaussian noise of σ = 0.3."""
    gen = torch.Generator(device="cuda").manual_seed(seed)
    low = torch.randn(batch, 1, side // 16, side // 16, device="cuda", generator=gen)
    clean = F.interpolate(low, size=(side, side), mode="bicubic", align_corners=False)
    lo, hi = clean.amin((2, 3), keepdim=True), clean.amax((2, 3), keepdim=True)
    clean = (clean - lo) / (hi - lo)
    noise = torch.randn(clean.shape, device="cuda", generator=gen)
    return clean + 0.3 * noise, clean


def check_gradients() -> dict:
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    model = build_model(seed=0).cuda()
    x, y = synthetic(4, 512, 1)
    F.mse_loss(model(x), y).backward()
    ref = [p.grad.clone() for p in model.parameters()]
    model.zero_grad(set_to_none=True)
    seed_net_loss(model, x, y).backward()
    fused = [p.grad.clone() for p in model.parameters()]
    model.zero_grad(set_to_none=True)
    cl = model.to(memory_format=torch.channels_last)
    with torch.autocast("cuda", dtype=torch.float16):
        out = cl(x.contiguous(memory_format=torch.channels_last))
    (F.mse_loss(out.float(), y) * 65536.0).backward()  # static loss scale, as GradScaler's
    amp = [p.grad / 65536.0 for p in model.parameters()]
    rows = {}
    for (name, _), r, f, a in zip(model.named_parameters(), ref, fused, amp, strict=True):
        rows[name] = {"fused": float((f - r).norm() / r.norm()),
                      "amp": float((a - r).norm() / r.norm())}
        print(f"gradient {name:13s} rel err vs fp32: fused {rows[name]['fused']:.1e}   "
              f"stock fp16 AMP {rows[name]['amp']:.1e}", flush=True)
    return rows


def train_50(steps: int = 300) -> dict:
    """Held-out loss after 50 steps and after ``steps``, per path; AMP's skipped steps."""
    torch.backends.cudnn.allow_tf32 = False
    data = [synthetic(8, 256, i) for i in range(5)]
    held = synthetic(8, 256, 99)
    init = build_model(seed=0).cuda()
    results = {}

    def held_out(model: torch.nn.Module) -> float:
        with torch.no_grad():
            return float(F.mse_loss(model.float()(held[0]), held[1]))

    for name in ("stock fp32", "stock fp16 AMP", "fused"):
        try:
            model = copy.deepcopy(init)
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
            scaler = None
            if name == "fused":
                step = make_fused_step(model, opt)
            elif name == "stock fp16 AMP":
                model = model.to(memory_format=torch.channels_last)
                scaler = torch.amp.GradScaler("cuda")
                step = make_step(model, opt, "fp16", scaler)
            else:
                step = make_step(model, opt, "fp32")
            trace, skipped, at_50 = [], 0, None
            for i in range(steps):
                scale = scaler.get_scale() if scaler is not None else None
                trace.append(float(step(*data[i % len(data)])))
                if scaler is not None and scaler.get_scale() < scale:
                    skipped += 1  # the scaler halved its scale: this step's update was skipped
                if i + 1 == 50:
                    at_50 = held_out(model)
            results[name] = {"trace": trace, "held_out_50": at_50, "held_out": held_out(model),
                             "steps": steps, "skipped_steps": skipped}
            print(f"{steps} Adam steps {name:15s} train loss 1/10/50/last: "
                  + " ".join(f"{trace[i]:.5f}" for i in (0, 9, min(49, steps - 1), steps - 1))
                  + f"   held-out at 50 {at_50}, at {steps} {results[name]['held_out']:.5f}"
                  + (f"   ({skipped} steps skipped by the loss scaler)" if scaler else ""),
                  flush=True)
        except Exception as exc:  # report and go on
            _fail(f"{steps} Adam steps {name}", exc)
    reference = results.get("stock fp32", {})
    for name in ("stock fp16 AMP", "fused"):
        if reference and name in results:
            for key, when in (("held_out_50", "after 50 steps (warm-up)"),
                              ("held_out", f"after {steps} steps")):
                if reference.get(key) and results[name].get(key) is not None:
                    diff = results[name][key] / reference[key] - 1
                    print(f"{name} held-out loss {when}: {diff:+.2%} vs fp32 "
                          f"({'within' if abs(diff) < 0.02 else 'OUTSIDE'} 2 %)", flush=True)
    return results


def bench_batch(batch: int, patch: int, steps: int, repeat: int) -> list[dict]:
    rows: list[dict] = []
    xs = [tuple(t.half() for t in synthetic(batch, patch, 10 + i)) for i in range(2)]

    def report(name: str, seconds: float) -> None:
        rate = batch / seconds
        strict = rows[0]["patches_per_s"] if rows else rate
        defaults = rows[1]["patches_per_s"] if len(rows) > 1 else rate
        base = rows[2]["patches_per_s"] if len(rows) > 2 else rate
        peak = torch.cuda.max_memory_allocated() / 2**30
        rows.append({"batch": batch, "variant": name, "patches_per_s": rate,
                     "ms_per_step": seconds * 1e3, "vs_stock": rate / base,
                     "vs_plain": rate / strict, "vs_strict_fp32": rate / strict,
                     "vs_pytorch_defaults": rate / defaults, "peak_gib": peak})
        print(f"batch {batch:3d}  {name:36s} {rate:7.0f} patches/s  "
              f"{seconds * 1e3:7.2f} ms/step  x{rate / strict:5.2f} strict fp32  "
              f"x{rate / defaults:5.2f} defaults  x{rate / base:5.2f} stock fp16  "
              f"peak {peak:5.1f} GiB", flush=True)

    plains = {f"plain fp32 loop ({kind})": kind for kind in BASELINES}
    for name in [*plains, "stock fp16 AMP", *CONFIGS]:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        try:
            model = build_model(seed=0).cuda()
            if name in CONFIGS:
                opt = torch.optim.Adam(model.parameters(), lr=1e-4)
                step = make_fused_step(model, opt, CONFIGS[name])
            elif name in plains:  # NCHW, fp32 inputs, the baseline's backend settings
                opt = torch.optim.Adam(model.parameters(), lr=1e-4)
                step = make_step(model, opt, "fp32")
                with plain(plains[name]):
                    report(name, _time(lambda i, s=step: s(*(t.float() for t in xs[i % 2])),
                                       steps, repeat))
                continue
            else:
                torch.backends.cudnn.benchmark = True
                model = model.to(memory_format=torch.channels_last)
                opt = torch.optim.Adam(model.parameters(), lr=1e-4)
                step = make_step(model, opt, "fp16")
            report(name, _time(lambda i, s=step: s(*xs[i % 2]), steps, repeat))
        except Exception as exc:  # a config that fails to compile or run is skipped
            _fail(f"batch {batch:3d}  {name}", exc)
        finally:
            model = opt = step = None
    return rows


def bench_stages(name: str, batch: int, patch: int, steps: int, repeat: int) -> dict:
    config = CONFIGS[name]
    model = build_model(seed=0).cuda()
    noisy, clean = (t.half() for t in synthetic(batch, patch, 3))
    stages = stage_launchers(model, noisy, clean, config)
    compiled = stages["backward"]()
    regs, spills = getattr(compiled, "n_regs", "?"), getattr(compiled, "n_spills", "?")
    print(f"{name} backward kernel: {regs} registers, {spills} spills", flush=True)
    times, total = {}, 0.0
    for stage, fn in stages.items():
        seconds = _time(lambda i, f=fn: f(), steps, repeat)
        times[stage] = seconds
        total += seconds
        gpx = batch * patch * patch / seconds / 1e9
        print(f"batch {batch:3d}  {name}: {stage:13s} alone {seconds * 1e3:7.2f} ms "
              f"({gpx:6.2f} Gpx/s)", flush=True)
    print(f"batch {batch:3d}  {name}: sum of pieces {total * 1e3:7.2f} ms "
          f"({batch / total:.0f} patches/s without the optimizer and autograd)", flush=True)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--patch", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--deadline", type=float, default=300.0, help="watchdog, seconds")
    parser.add_argument("--accuracy-steps", type=int, default=300,
                        help="Adam steps of the accuracy comparison (part 2)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    if not available():
        print("bench_kernels_train: needs CUDA and an importable triton", flush=True)
        return 1
    faulthandler.dump_traceback_later(args.deadline, exit=True)
    import triton

    print(f"{torch.cuda.get_device_name()}  torch {torch.__version__}  triton "
          f"{triton.__version__}  cuDNN {torch.backends.cudnn.version()}", flush=True)
    out: dict = {"rows": []}
    parts: tuple[tuple[str, Callable[[], dict]], ...] = (
        ("gradients", check_gradients), ("train_50", lambda: train_50(args.accuracy_steps)))
    for part, fn in parts:
        try:
            out[part] = fn()
        except Exception as exc:  # report and go on
            _fail(part, exc)
        torch.cuda.empty_cache()
    for batch in args.batches:
        try:
            out["rows"] += bench_batch(batch, args.patch, args.steps, args.repeat)
        except Exception as exc:  # out of memory or worse: go on with the next batch
            _fail(f"batch {batch}", exc)
        torch.cuda.empty_cache()
    fused = [r for r in out["rows"] if r["variant"] in CONFIGS]
    if fused:
        batch = max(r["batch"] for r in fused)
        best = max((r for r in fused if r["batch"] == batch), key=lambda r: r["patches_per_s"])
        try:
            out["stages"] = bench_stages(best["variant"], batch, args.patch, args.steps,
                                         args.repeat)
        except Exception as exc:  # report and go on
            _fail("stages", exc)
    faulthandler.cancel_dump_traceback_later()
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
